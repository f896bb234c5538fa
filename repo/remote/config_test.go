package remote_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"golang.org/x/sys/unix"
)

func TestRemoteConfig(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "r"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	add := func(rm remote.Remote, o remote.AddOptions) (bool, error) { return remote.AddRemote(r, rm, o) }

	if ok, err := add(remote.Remote{Name: "origin", URL: "https://example.com/repo", Branches: []string{"os/stable", "os/testing"}}, remote.AddOptions{}); !ok || err != nil {
		t.Fatalf("add: %v, %v", ok, err)
	}
	if _, err := add(remote.Remote{Name: "b", URL: "http://h/"}, remote.AddOptions{Set: map[string]string{"sign-verify": "false"}}); err != nil {
		t.Fatal(err)
	}
	// The config file has OSTree's shape, read back by a fresh open.
	data, _ := os.ReadFile(r.Path("config"))
	want := "[core]\nmode=bare-user\nrepo_version=1\n\n" +
		"[remote \"origin\"]\nbranches=os/stable;os/testing;\nurl=https://example.com/repo\n\n" +
		"[remote \"b\"]\nsign-verify=false\nurl=http://h/\n"
	if diff := cmp.Diff(want, string(data)); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	r2, err := repo.Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	got := remote.ListRemotes(r2)
	if len(got) != 2 || got[0].Name != "b" || got[1].Name != "origin" || got[0].Options["sign-verify"] != "false" ||
		!cmp.Equal(got[1].Branches, []string{"os/stable", "os/testing"}) {
		t.Errorf("ListRemotes = %+v", got)
	}
	rm, err := remote.GetRemote(r2, "origin")
	if err != nil || rm.URL != "https://example.com/repo" {
		t.Errorf("GetRemote = %+v, %v", rm, err)
	}

	// Adding again: an error, nothing with IfNotExists, replaced with Force.
	_, err = add(remote.Remote{Name: "origin", URL: "http://other/"}, remote.AddOptions{})
	if !errors.Is(err, remote.ErrRemoteExists) {
		t.Errorf("re-add: %v", err)
	}
	if ok, err := add(remote.Remote{Name: "origin", URL: "http://other/"}, remote.AddOptions{IfNotExists: true}); ok || err != nil {
		t.Errorf("re-add if not exists: %v, %v", ok, err)
	}
	if _, err := add(remote.Remote{Name: "origin", URL: "http://other/"}, remote.AddOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	rm, _ = remote.GetRemote(r, "origin")
	if rm.URL != "http://other/" || len(rm.Branches) != 0 || len(rm.Options) != 1 {
		t.Errorf("forced remote = %+v", rm)
	}

	for _, bad := range []remote.Remote{
		{Name: "a/b", URL: "http://h/"},
		{Name: "a:b", URL: "http://h/"},
		{Name: ".x", URL: "http://h/"},
		{Name: "", URL: "http://h/"},
		{Name: "x", URL: "ftp://h/"},
		{Name: "x", URL: "http:///nohost"},
		{Name: "x", URL: "relative/path"},
		{Name: "x", URL: "http://h/", Branches: []string{"a:b"}},
		{Name: "x", URL: "http://h/", Branches: []string{"../x"}},
	} {
		if _, err := add(bad, remote.AddOptions{}); err == nil {
			t.Errorf("AddRemote(%+v) succeeded", bad)
		}
	}

	// A key that cannot be written back leaves the config as it was.
	before := string(r.Config().Bytes())
	if _, err := add(remote.Remote{Name: "origin", URL: "http://y/"}, remote.AddOptions{Force: true, Set: map[string]string{"a=b": "c"}}); err == nil {
		t.Error("AddRemote with key a=b succeeded")
	}
	if after := string(r.Config().Bytes()); after != before {
		t.Errorf("failed AddRemote changed the config:\n%s", after)
	}

	if err := remote.DeleteRemote(r, "b"); err != nil {
		t.Fatal(err)
	}
	if err := remote.DeleteRemote(r, "b"); !errors.Is(err, remote.ErrRemoteNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := remote.GetRemote(r, "b"); !errors.Is(err, remote.ErrRemoteNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if got := remote.ListRemotes(r); len(got) != 1 || got[0].Name != "origin" {
		t.Errorf("after delete: %+v", got)
	}
}

// A repository's remotes directory (the deploy package points a system
// repository at the booted deployment's /etc/otree/remotes.d) defines
// remotes beside its config: they are listed and used, marked with their
// file; adding or deleting one of that name through the config is refused
// naming the file, and a remote defined twice, or a file that does not
// parse, is an error naming both places.
func TestRemotesDir(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := remote.AddRemote(r, remote.Remote{Name: "local", URL: "https://local.example/repo"}, remote.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vendor := filepath.Join(dir, "vendor.conf")
	os.WriteFile(vendor, []byte("[remote \"vendor\"]\nurl=https://updates.example/os\nbranches=os/stable;\nsign-verify=true\ncollection-id=org.example.Os\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ignored.txt"), []byte("[remote \"txt\"]\nurl=https://x/\n"), 0o644)
	if _, err := remote.GetRemote(r, "vendor"); !errors.Is(err, remote.ErrRemoteNotFound) {
		t.Fatalf("without a remotes directory: %v", err)
	}
	r.SetRemotesDir(dir)
	rm, err := remote.GetRemote(r, "vendor")
	if err != nil || rm.URL != "https://updates.example/os" || rm.File != vendor || rm.Options["sign-verify"] != "true" || len(rm.Branches) != 1 {
		t.Fatalf("GetRemote(vendor) = %+v, %v", rm, err)
	}
	// Its collection ID counts for pulls and fsck, as a configured one's.
	if got := r.RemoteCollectionID("vendor"); got != "org.example.Os" {
		t.Errorf("RemoteCollectionID(vendor) = %q", got)
	}
	var names []string
	for _, rm := range remote.ListRemotes(r) {
		names = append(names, rm.Name)
	}
	if strings.Join(names, " ") != "local vendor" {
		t.Errorf("ListRemotes = %v, want local vendor", names)
	}
	if _, err := remote.AddRemote(r, remote.Remote{Name: "vendor", URL: "https://other/"}, remote.AddOptions{Force: true}); !errors.Is(err, remote.ErrRemoteExists) || !strings.Contains(err.Error(), vendor) {
		t.Errorf("adding a remote the directory defines: %v", err)
	}
	if err := remote.DeleteRemote(r, "vendor"); err == nil || !strings.Contains(err.Error(), vendor) {
		t.Errorf("deleting a remote the directory defines: %v", err)
	}
	twice := filepath.Join(dir, "zz-local.conf")
	os.WriteFile(twice, []byte("[remote \"local\"]\nurl=https://elsewhere/\n"), 0o644)
	if _, err := remote.GetRemote(r, "vendor"); err == nil || !strings.Contains(err.Error(), twice) || !strings.Contains(err.Error(), r.Path("config")) {
		t.Errorf("a remote defined twice: %v, want an error naming both", err)
	}
	os.WriteFile(twice, []byte("not ini\n"), 0o644)
	if _, err := remote.GetRemote(r, "local"); err == nil || !strings.Contains(err.Error(), twice) {
		t.Errorf("a file that does not parse: %v, want an error naming it", err)
	}
}

// A FIFO among the remotes directory's files (a tree ships that directory
// in its /etc) is an error naming it, not a read that blocks every command
// listing remotes; the other files' remotes are still listed.
func TestRemotesDirFIFO(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vendor.conf"), []byte("[remote \"vendor\"]\nurl=https://updates.example/os\n"), 0o644)
	fifo := filepath.Join(dir, "a.conf")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	r.SetRemotesDir(dir)
	// Before, this blocked for good on the FIFO.
	if rms := remote.ListRemotes(r); len(rms) != 1 || rms[0].Name != "vendor" {
		t.Errorf("ListRemotes = %+v, want vendor", rms)
	}
	if _, err := remote.GetRemote(r, "vendor"); err == nil || !strings.Contains(err.Error(), fifo+": not a regular file") {
		t.Errorf("GetRemote with a FIFO in the remotes directory: %v, want an error naming it", err)
	}
}

// Remote changes through a handle opened before another handle changed the
// config see that change: a remote added since is not added again without
// Force, one deleted since is not found, and the other's remotes stay.
func TestRemoteConfigOtherHandle(t *testing.T) {
	a, err := repo.Init(filepath.Join(t.TempDir(), "r"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := repo.Open(a.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := remote.AddRemote(a, remote.Remote{Name: "origin", URL: "https://a.example.com/"}, remote.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.AddRemote(b, remote.Remote{Name: "origin", URL: "https://b.example.com/"}, remote.AddOptions{}); !errors.Is(err, remote.ErrRemoteExists) {
		t.Errorf("adding origin again through another handle: %v, want ErrRemoteExists", err)
	}
	if _, err := remote.AddRemote(b, remote.Remote{Name: "mirror", URL: "https://m.example.com/"}, remote.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := remote.DeleteRemote(a, "mirror"); err != nil {
		t.Fatal(err)
	}
	if err := remote.DeleteRemote(b, "mirror"); !errors.Is(err, remote.ErrRemoteNotFound) {
		t.Errorf("deleting mirror again through another handle: %v, want ErrRemoteNotFound", err)
	}
	fresh, err := repo.Open(a.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	rms := remote.ListRemotes(fresh)
	if len(rms) != 1 || rms[0].Name != "origin" || rms[0].URL != "https://a.example.com/" {
		t.Errorf("remotes at the end: %+v, want origin at https://a.example.com/", rms)
	}
}

// On a read-only filesystem, adding or deleting a remote fails naming the
// config it could not write (not a cookie file that is not there), deleting
// one that is not configured says so, and the config is left as it was.
func TestRemoteConfigReadOnly(t *testing.T) {
	mnt := testtree.SmallFS(t, 8<<20)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.AddRemote(r, remote.Remote{Name: "origin", URL: "http://example.com/repo"}, remote.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	cfg := filepath.Join(mnt, "repo", "config")
	before, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	r, err = repo.Open(filepath.Join(mnt, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	_, err = remote.AddRemote(r, remote.Remote{Name: "other", URL: "http://example.com/other"}, remote.AddOptions{})
	if !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), cfg) || strings.Contains(err.Error(), "cookies") {
		t.Errorf("adding a remote: %v, want EROFS naming %s", err, cfg)
	}
	if err := remote.DeleteRemote(r, "nosuch"); !errors.Is(err, remote.ErrRemoteNotFound) {
		t.Errorf("deleting a remote that is not configured: %v, want ErrRemoteNotFound", err)
	}
	if err := remote.DeleteRemote(r, "origin"); !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), cfg) {
		t.Errorf("deleting a remote: %v, want EROFS naming %s", err, cfg)
	}
	if after, err := os.ReadFile(cfg); err != nil || string(after) != string(before) {
		t.Errorf("config after the failed changes: %q (%v), want %q", after, err, before)
	}
}

// A branch given to AddRemote that the ;-separated branches key cannot
// hold as one branch is refused, naming the remote: an empty one would
// vanish (and pull fetch every branch), one holding ';' would split in two.
func TestAddRemoteRefusesBranchTheKeyCannotHold(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "r"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, bs := range [][]string{{""}, {"a;b"}, {"main", ""}} {
		_, err := remote.AddRemote(r, remote.Remote{Name: "origin", URL: "https://example.com/repo", Branches: bs}, remote.AddOptions{})
		if err == nil || !strings.Contains(err.Error(), "remote origin") {
			t.Errorf("AddRemote with branches %q: %v, want an error naming the remote", bs, err)
		}
	}
	if rms := remote.ListRemotes(r); len(rms) != 0 {
		t.Errorf("refused adds left remotes: %+v", rms)
	}
	if _, err := remote.AddRemote(r, remote.Remote{Name: "origin", URL: "https://example.com/repo", Branches: []string{"a", "b/c"}}, remote.AddOptions{}); err != nil {
		t.Fatal(err)
	}
}

// file:PATH with a relative PATH is refused as such: there is a path, and
// OSTree's pull of it fails to open "(null)".
func TestAddRemoteRefusesRelativeFileURL(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "r"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, u := range []string{"file:repo", "file:./a/repo"} {
		_, err := remote.AddRemote(r, remote.Remote{Name: "o", URL: u}, remote.AddOptions{})
		if err == nil || !strings.Contains(err.Error(), "relative path") || !strings.Contains(err.Error(), u) {
			t.Errorf("add %s: %v, want it refused as a relative path", u, err)
		}
	}
	if _, err := remote.AddRemote(r, remote.Remote{Name: "o", URL: "file:" + r.Path()}, remote.AddOptions{}); err != nil {
		t.Errorf("add file:ABSOLUTE: %v", err)
	}
}

// A contenturl refused for a file:// url names that url without its
// password.
func TestAddRemoteContentURLOfFileURLHidesPassword(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "r"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = remote.AddRemote(r, remote.Remote{Name: "o", URL: "file://u:sekret@localhost/srv/repo"},
		remote.AddOptions{Set: map[string]string{"contenturl": "https://h/repo"}})
	if err == nil || strings.Contains(err.Error(), "sekret") || !strings.Contains(err.Error(), "file://u:***@localhost/srv/repo") {
		t.Errorf("add: %v, want it refused naming the url without its password", err)
	}
}

// A port out of range is refused by remote add, in url and contenturl,
// rather than every request of a pull failing to dial.
func TestAddRemoteRefusesPortOutOfRange(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "r"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, u := range []string{"http://h:99999/repo", "https://u:pw@[::1]:65536/repo", "http://h:0/repo"} {
		_, err := remote.AddRemote(r, remote.Remote{Name: "o", URL: u}, remote.AddOptions{})
		if err == nil || !strings.Contains(err.Error(), "out of range") || strings.Contains(err.Error(), "pw") {
			t.Errorf("add %s: %v, want it refused for its port", u, err)
		}
		_, err = remote.AddRemote(r, remote.Remote{Name: "o", URL: "https://h/repo"}, remote.AddOptions{Set: map[string]string{"contenturl": u}})
		if err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("add contenturl %s: %v, want it refused for its port", u, err)
		}
	}
	if _, err := remote.AddRemote(r, remote.Remote{Name: "o", URL: "http://h:65535/repo"}, remote.AddOptions{}); err != nil {
		t.Errorf("add port 65535: %v", err)
	}
}
