package repo_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otree/otree/repo"
)

// Two handles on one repository, both opened before either writes the
// config: what is set through one survives a write through the other,
// whether by UpdateConfig or by prune --delete-commit turning tombstones
// on. Each handle's Config shows the file as its last write left it.
func TestUpdateConfigKeepsOtherHandlesChanges(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	other, err := repo.Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	if err := other.UpdateConfig(func(c *repo.Config) error { return c.Set("test.first", "1") }); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateConfig(func(c *repo.Config) error { return c.Set("test.second", "2") }); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"test.first": "1", "test.second": "2"} {
		if got := configOnDisk(t, r, k); got != want {
			t.Errorf("on disk %s=%q, want %q", k, got, want)
		}
		if got, _ := r.Config().Get(k); got != want {
			t.Errorf("in the handle that wrote last %s=%q, want %q", k, got, want)
		}
	}

	// other has not seen test.second; prune turns tombstones on through it.
	mustPrune(t, other, repo.PruneOptions{DeleteCommit: commits[1]})
	for k, want := range map[string]string{"test.first": "1", "test.second": "2", repo.ConfigTombstoneCommits: "true"} {
		if got := configOnDisk(t, r, k); got != want {
			t.Errorf("after prune --delete-commit: on disk %s=%q, want %q", k, got, want)
		}
	}
}

// Writers at once, through one handle and through handles of their own,
// each setting a key of its own: every key is in the file at the end.
func TestUpdateConfigConcurrent(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := r
			if i%2 == 1 {
				var err error
				if h, err = repo.Open(r.Path()); err != nil {
					errs <- err
					return
				}
				defer h.Close()
			}
			errs <- h.UpdateConfig(func(c *repo.Config) error {
				// Widen the window between reading and writing the file.
				time.Sleep(2 * time.Millisecond)
				return c.Set(fmt.Sprintf("test.key%d", i), fmt.Sprint(i))
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if got := configOnDisk(t, r, fmt.Sprintf("test.key%d", i)); got != fmt.Sprint(i) {
			t.Errorf("test.key%d=%q on disk, want %d", i, got, i)
		}
	}
}

// An error from fn is returned as it is, and neither the file nor Config
// changes; an fn that changes nothing leaves the file unwritten.
func TestUpdateConfigErrorChangesNothing(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	path := r.Path("config")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = r.UpdateConfig(func(c *repo.Config) error {
		c.Set("test.half", "done")
		c.Unset("core.mode")
		return boom
	})
	if err != boom {
		t.Fatalf("UpdateConfig returned %v, want fn's error", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("a failed update changed the file:\n%s\nwas:\n%s", after, before)
	}
	if _, ok := r.Config().Get("test.half"); ok {
		t.Error("a failed update changed Config")
	}
	if v, _ := r.Config().Get("core.mode"); v != "bare-user" {
		t.Errorf("after a failed update core.mode=%q", v)
	}

	var st1, st2 syscall.Stat_t
	syscall.Stat(path, &st1)
	if err := r.UpdateConfig(func(c *repo.Config) error { return nil }); err != nil {
		t.Fatal(err)
	}
	syscall.Stat(path, &st2)
	if st1.Ino != st2.Ino {
		t.Error("an update that changed nothing rewrote the file")
	}
}

// A config that no longer parses fails the update, naming the file, and
// is left as it is.
func TestUpdateConfigUnparsable(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	path := r.Path("config")
	bad := []byte("[core]\nmode=bare-user\nrepo_version=1\nno equals sign\n")
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.UpdateConfig(func(c *repo.Config) error { return c.Set("test.x", "1") })
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("update of an unparsable config: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(bad) {
		t.Errorf("the unparsable config was rewritten:\n%s", got)
	}
}

// Of inits of one directory at once, one makes the repository and the
// others find it (ErrExists); the config is the winner's.
func TestInitConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "repo")
	modes := []repo.Mode{repo.ModeBareUser, repo.ModeArchive, repo.ModeBareUserOnly}
	const n = 6
	var wg sync.WaitGroup
	won := make(chan repo.Mode, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := repo.Init(path, repo.InitOptions{Mode: modes[i%len(modes)]})
			if err != nil {
				errs <- err
				return
			}
			won <- r.Mode()
			r.Close()
		}()
	}
	wg.Wait()
	close(won)
	close(errs)
	for err := range errs {
		if !errors.Is(err, repo.ErrExists) {
			t.Errorf("a losing init: %v, want ErrExists", err)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d inits made the repository, want 1", len(won))
	}
	r, err := repo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if m := <-won; r.Mode() != m {
		t.Errorf("the winner made a %s repository, the config says %s", m, r.Mode())
	}
}

// Keys split at the first dot, as OSTree splits them, except inside a
// quoted part of the section.
func TestSplitConfigKey(t *testing.T) {
	for key, want := range map[string][2]string{
		"core.mode":                   {"core", "mode"},
		"core.a.b":                    {"core", "a.b"},
		`remote "flathub".xa.title`:   {`remote "flathub"`, "xa.title"},
		`remote "org.example.Os".url`: {`remote "org.example.Os"`, "url"},
		`remote "o.x".xa.filter`:      {`remote "o.x"`, "xa.filter"},
		`"a"b.c`:                      {`"a"b`, "c"},
		"nodot":                       {},
		"core.":                       {},
		".mode":                       {},
		`remote "org.example.Os"`:     {},
		`remote "org.example.Os".`:    {},
	} {
		s, n, err := repo.SplitConfigKey(key)
		if want == ([2]string{}) {
			if err == nil {
				t.Errorf("SplitConfigKey(%q) = %q, %q; want an error", key, s, n)
			}
			continue
		}
		if err != nil || s != want[0] || n != want[1] {
			t.Errorf("SplitConfigKey(%q) = %q, %q, %v; want %q, %q", key, s, n, err, want[0], want[1])
		}
	}
	c, err := repo.ParseConfig([]byte("[remote \"flathub\"]\nurl=https://example.com\nxa.title=Flathub\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Get(`remote "flathub".xa.title`); !ok || v != "Flathub" {
		t.Errorf("Get of xa.title = %q, %v", v, ok)
	}
	if !c.Unset(`remote "flathub".xa.title`) || !c.Unset(`remote "flathub".url`) {
		t.Error("Unset found no key")
	}
	if got := string(c.Bytes()); got != "" {
		t.Errorf("config after unsetting every key:\n%s", got)
	}
}

// A change to the config keeps what an admin wrote around it: the order
// of sections and keys (as OSTree keeps it), and comments and blank lines
// (which OSTree drops). A key set anew goes after its section's last key,
// a new section at the end; a key unset takes its line alone, a section
// left empty its comments too, those right above its header included.
func TestUpdateConfigKeepsLayout(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	written := "# Managed by hand: keep 10% free on this box.\n" +
		"[core]\nrepo_version=1\nmode=bare-user\n; reserve\nmin-free-space-percent = 10\n\n" +
		"[remote \"zed\"]\nurl=https://z.example/repo\n# pinned\nbranches=a;\n\n" +
		"# the old mirror\n[remote \"alpha\"]\nurl=https://a.example/repo\n"
	if err := os.WriteFile(r.Path("config"), []byte(written), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateConfig(func(c *repo.Config) error {
		c.Set("core.fsync", "false")
		c.Set(`remote "zed".url`, "https://z2.example/repo")
		c.Set(`remote "new".url`, "https://n.example/repo")
		c.Unset(`remote "alpha".url`)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := "# Managed by hand: keep 10% free on this box.\n" +
		"[core]\nrepo_version=1\nmode=bare-user\n; reserve\nmin-free-space-percent=10\nfsync=false\n\n" +
		"[remote \"zed\"]\nurl=https://z2.example/repo\n# pinned\nbranches=a;\n\n" +
		"[remote \"new\"]\nurl=https://n.example/repo\n"
	if got, _ := os.ReadFile(r.Path("config")); string(got) != want {
		t.Errorf("config after the change:\n%s\nwant:\n%s", got, want)
	}
}
