package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/repo/remote"
)

func TestRemoteCommands(t *testing.T) {
	c := newCLI(t)
	c.ok("remote", "add", "--no-gpg-verify", "origin", "https://example.com/repo", "os/stable", "os/testing")
	c.ok("remote", "add", "--set=sign-verify=false", "--set=branches=main", "mirror2", "file:///srv/repo")
	if got := c.ok("remote", "list"); got != "mirror2\norigin\n" {
		t.Errorf("remote list = %q", got)
	}
	if got := c.ok("remote", "list", "-u"); got != "mirror2  file:///srv/repo\norigin   https://example.com/repo\n" {
		t.Errorf("remote list -u = %q", got)
	}
	if got := c.ok("remote", "show-url", "origin"); got != "https://example.com/repo\n" {
		t.Errorf("show-url = %q", got)
	}
	data, _ := os.ReadFile(c.r.Path("config"))
	if !strings.Contains(string(data), "[remote \"origin\"]\nbranches=os/stable;os/testing;\ngpg-verify=false\nurl=https://example.com/repo\n") ||
		!strings.Contains(string(data), "[remote \"mirror2\"]\nbranches=main\nsign-verify=false\nurl=file:///srv/repo\n") {
		t.Errorf("config:\n%s", data)
	}
	var list []remote.Remote
	if err := json.Unmarshal([]byte(c.ok("remote", "list", "--json")), &list); err != nil || len(list) != 2 || list[1].Branches[1] != "os/testing" {
		t.Errorf("remote list --json = %+v, %v", list, err)
	}

	c.fails(exitError, []string{`"origin"`, "already exists", "hint: pass --force to replace it"}, "remote", "add", "origin", "http://x/")
	c.ok("remote", "add", "--if-not-exists", "origin", "http://x/")
	if got := c.ok("remote", "show-url", "origin"); got != "https://example.com/repo\n" {
		t.Errorf("--if-not-exists changed the remote: %q", got)
	}
	c.ok("remote", "add", "--force", "origin", "http://x/")
	c.ok("remote", "add", "--contenturl=https://cdn.example.com/repo", "cdn", "https://example.com/repo")
	if got := c.ok("config", "get", `remote "cdn".contenturl`); got != "https://cdn.example.com/repo\n" {
		t.Errorf("--contenturl wrote %q", got)
	}
	c.fails(exitError, []string{"contenturl"}, "remote", "add", "--contenturl=file:///srv", "cdn2", "https://example.com/repo")
	// Given both ways, --set wins for contenturl and --collection-id for
	// collection-id, as in OSTree.
	c.ok("remote", "add", "--contenturl=https://a.example.com/", "--set=contenturl=https://b.example.com/",
		"--collection-id=org.example.A", "--set=collection-id=org.example.B", "cdn3", "https://example.com/repo")
	if got := c.ok("config", "get", `remote "cdn3".contenturl`) + c.ok("config", "get", `remote "cdn3".collection-id`); got != "https://b.example.com/\norg.example.A\n" {
		t.Errorf("--contenturl, --collection-id and --set of both wrote %q", got)
	}
	c.ok("remote", "delete", "cdn3")
	c.ok("remote", "delete", "cdn")
	if got := c.ok("remote", "show-url", "origin"); got != "http://x/\n" {
		t.Errorf("--force did not replace: %q", got)
	}
	c.fails(exitUsage, []string{"exclusive"}, "remote", "add", "--force", "--if-not-exists", "o", "http://x/")
	c.fails(exitError, []string{"ftp://x"}, "remote", "add", "o", "ftp://x/")
	c.fails(exitError, []string{"metalink", "not supported"}, "remote", "add", "o", "metalink=http://x/metalink.xml")
	c.fails(exitError, []string{"mirrorlist", "not supported"}, "remote", "add", "o", "mirrorlist=http://x/list")
	c.fails(exitError, []string{`"a/b"`}, "remote", "add", "a/b", "http://x/")
	c.fails(exitUsage, []string{"KEY=VALUE"}, "remote", "add", "--set=novalue", "o", "http://x/")
	// The low-speed keys are checked when added, as the others are, not
	// first at the next pull.
	for _, set := range []string{"low-speed-limit-bytes=x", "low-speed-limit-bytes=-1", "low-speed-time-seconds=0", "low-speed-time-seconds=1.5"} {
		k, _, _ := strings.Cut(set, "=")
		c.fails(exitError, []string{"remote lowspeed", k, "want a whole number"}, "remote", "add", "--set="+set, "lowspeed", "http://x/")
	}
	c.fails(exitError, []string{`"lowspeed"`, "not configured"}, "remote", "show-url", "lowspeed")
	c.ok("remote", "add", "--set=low-speed-limit-bytes=0", "--set=low-speed-time-seconds=5", "lowspeed", "http://x/")
	c.ok("remote", "delete", "lowspeed")
	c.fails(exitUsage, nil, "remote", "add", "o")
	c.fails(exitUsage, []string{"add, add-cookie, delete"}, "remote")
	c.fails(exitUsage, []string{`"frob"`}, "remote", "frob")

	c.ok("remote", "delete", "mirror2")
	c.fails(exitError, []string{`"mirror2"`, "not configured", "hint: pass --if-exists"}, "remote", "delete", "mirror2")
	c.fails(exitError, []string{`"mirror2"`, "not configured", "hint: add it with `otree remote add`"}, "remote", "show-url", "mirror2")
	c.ok("remote", "delete", "--if-exists", "mirror2")
	c.fails(exitError, []string{`"mirror2"`}, "remote", "show-url", "mirror2")
	if got := c.ok("remote", "list"); got != "origin\n" {
		t.Errorf("after delete: %q", got)
	}
}

// remote add-cookie makes pulls send the cookie to a server that demands
// it; delete-cookie stops it; the cookie file has OSTree's format and is
// kept from other users.
func TestRemoteCookies(t *testing.T) {
	src := newCLI(t)
	id := src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	src.ok("summary", "-u")
	url := serve(t, src, func(w http.ResponseWriter, r *http.Request) bool {
		if c, err := r.Cookie("session"); err != nil || c.Value != "let me in" {
			http.Error(w, "no session", http.StatusForbidden)
			return true
		}
		return false
	})
	host := strings.TrimPrefix(url, "http://")
	host = host[:strings.LastIndex(host, ":")]
	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "origin", url)
	dst.fails(exitError, []string{"403"}, "pull", "origin", "os/stable")

	dst.ok("remote", "add-cookie", "origin", host, "/", "session", "wrong")
	dst.ok("remote", "add-cookie", "origin", host, "/", "session", "let me in") // replaces
	if out := dst.ok("remote", "list-cookies", "origin"); out != "--\nDomain: "+host+"\nPath: /\nName: session\nValue: let me in\n" {
		t.Errorf("list-cookies printed %q", out)
	}
	if out := dst.ok("remote", "refs", "origin"); out != "origin:os/stable\n" {
		t.Errorf("remote refs with the cookie: %q", out)
	}
	dst.ok("pull", "origin", "os/stable")
	if got := dst.ok("rev-parse", "origin:os/stable"); got != id.String()+"\n" {
		t.Errorf("pulled %q", got)
	}
	file := dst.r.Path("origin.cookies.txt")
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cookie file: %v, %v; want mode 0600", fi, err)
	}
	// The line OSTree writes for the same cookie, but for the expiry.
	if o := findOSTree(t, "archive"); o != nil {
		o.ok("remote", "add", "--no-gpg-verify", "origin", url)
		o.ok("remote", "add-cookie", "origin", host, "/", "session", "let me in")
		ours, _ := os.ReadFile(file)
		theirs, _ := os.ReadFile(filepath.Join(o.path, "origin.cookies.txt"))
		strip := func(b []byte) []string {
			f := strings.Split(strings.TrimSpace(string(b)), "\t")
			if len(f) == 7 {
				f[4] = "EXPIRY"
			}
			return f
		}
		if d := cmp.Diff(strip(theirs), strip(ours)); d != "" {
			t.Errorf("cookie file line (-OSTree +otree):\n%s", d)
		}
	}

	dst.fails(exitError, []string{"no cookie", "other"}, "remote", "delete-cookie", "origin", host, "/", "other")
	dst.ok("remote", "delete-cookie", "origin", host, "/", "session")
	dst.fails(exitError, []string{"403"}, "pull", "--depth=1", "origin", "os/stable")
	dst.fails(exitError, []string{"nope"}, "remote", "add-cookie", "nope", host, "/", "a", "b")
	dst.fails(exitError, []string{"path"}, "remote", "add-cookie", "origin", host, "nopath", "a", "b")
	dst.fails(exitUsage, nil, "remote", "add-cookie", "origin", host, "/", "a")
	dst.ok("remote", "add-cookie", "origin", host, "/", "a", "b")
	dst.ok("remote", "delete", "origin")
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("remote delete left its cookies: %v", err)
	}
}

// A remote delete killed after it saved the config, before it removed the
// remote's cookies (strace kills it at that unlinkat), leaves them to no
// one: a remote added again under the name does not send them, and a rerun
// of the delete removes them.
func TestRemoteDeleteKilledLeavesNoCookies(t *testing.T) {
	testbin.NeedStrace(t)
	for _, then := range [][]string{{"remote", "add", "--no-sign-verify", "origin", "https://example.org/other"}, {"remote", "delete", "--if-exists", "origin"}} {
		c := newCLI(t)
		c.ok("remote", "add", "--no-sign-verify", "origin", "https://example.com/repo")
		c.ok("remote", "add-cookie", "origin", "example.com", "/", "session", "secret")
		cookies := c.r.Path("origin.cookies.txt")
		if killed, out := c.killedAt("unlinkat", 1, "remote", "delete", "origin"); !killed {
			t.Fatalf("remote delete was not killed at its first unlinkat:\n%s", out)
		}
		if got := c.ok("remote", "list"); got != "" {
			t.Fatalf("killed at the cookies' removal, remote delete left the remotes %q, want the config saved", got)
		}
		c.ok(then...)
		if _, err := os.Stat(cookies); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after the killed delete and %q, %s is still there (%v)", strings.Join(then, " "), cookies, err)
		}
		if then[1] == "add" {
			if got := c.ok("remote", "list-cookies", "origin"); got != "" {
				t.Errorf("the remote added again has the deleted one's cookies:\n%s", got)
			}
		}
	}
}

// A file:// URL is read on this machine, so one naming another host is
// refused, by remote add and by pull of a remote written by hand, rather
// than read with its host dropped: file://srv/repo would read /repo here.
// file://localhost/PATH is PATH, as in OSTree.
func TestRemoteFileURLWithHost(t *testing.T) {
	src := newCLI(t)
	src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	dst := newBareUserCLI(t)
	bad := "file://srv" + src.r.Path()
	dst.fails(exitError, []string{bad, `host "srv"`, "file:///PATH"}, "remote", "add", "origin", bad)
	if got := dst.ok("remote", "list"); got != "" {
		t.Errorf("refused remote add left remotes %q", got)
	}
	dst.ok("config", "set", `remote "origin".url`, bad)
	dst.fails(exitError, []string{"remote origin", bad, `host "srv"`}, "pull", "origin", "os/stable")
	dst.fails(exitError, []string{"remote origin", bad}, "remote", "refs", "origin")
	if got := dst.ok("refs"); got != "" {
		t.Errorf("refused pull left refs %q", got)
	}
	dst.ok("remote", "add", "--force", "origin", "file://localhost"+src.r.Path())
	dst.ok("pull", "origin", "os/stable")
}

// --no-gpg-verify, and --no-sign-verify, write gpg-verify=false over a
// --set of it, as OSTree's remote add does: what OSTree takes is taken,
// and a remote with GPG keys (gpgkeypath, or NAME.trustedkeys.gpg left
// by OSTree's --gpg-import) pulls, since its admin said not to check them.
func TestRemoteAddNoGPGVerify(t *testing.T) {
	src := newCLI(t)
	id := src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	dst := newBareUserCLI(t)
	url := "file://" + src.r.Path()
	if err := os.WriteFile(dst.r.Path("origin.trustedkeys.gpg"), []byte("keys"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst.ok("remote", "add", "--set=gpg-verify=true", "--set=gpgkeypath=/etc/pki/k.gpg", "--no-gpg-verify", "origin", url)
	if got := dst.ok("config", "get", `remote "origin".gpg-verify`); got != "false\n" {
		t.Errorf("--no-gpg-verify wrote gpg-verify=%q", got)
	}
	dst.ok("pull", "origin", "os/stable")
	if got := dst.ok("rev-parse", "origin:os/stable"); got != id.String()+"\n" {
		t.Errorf("pulled %q", got)
	}
	dst.ok("remote", "add", "--no-sign-verify", "--set=gpgkeypath=/etc/pki/k.gpg", "mirror", url)
	for k, want := range map[string]string{"gpg-verify": "false", "sign-verify": "false"} {
		if got := dst.ok("config", "get", `remote "mirror".`+k); got != want+"\n" {
			t.Errorf("--no-sign-verify wrote %s=%q, want %s", k, got, want)
		}
	}
}
