package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// Every command that changes a repository on a read-only filesystem fails
// with the one error a pull or commit gives there, naming the repository
// as not writable, rather than with whichever temporary file it tried to
// make first; a change that needs no write (deleting a ref that is not
// there) still succeeds, and the repository is left as it was.
func TestReadOnlyRepositoryRefusesChanges(t *testing.T) {
	mnt := testtree.SmallFS(t, 16<<20)
	p := filepath.Join(mnt, "repo")
	r, err := repo.Init(p, repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, path: p, r: r}
	first := c.commitTree("main", source(t, fixture), "one", 1700000000)
	c.commitTree("main", source(t, testtree.Tree{"b": testtree.File("b", 0o644)}), "two", 1700000100)
	c.ok("remote", "add", "--no-gpg-verify", "origin", "http://127.0.0.1:1/repo")
	c.ok("static-delta", "generate", "main")
	c.ok("summary", "-u")
	deltas := strings.Fields(c.ok("static-delta", "list"))
	r.Close()
	refs := c.ok("refs")
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	c.r = nil
	want := []string{"repository " + p + " is not writable", "read-only file system"}
	for _, args := range [][]string{
		{"summary", "-u"},
		{"refs", "--create=new", "main"},
		{"refs", "--alias", "--create=al", "main"},
		{"refs", "--delete", "main"},
		{"reset", "main", first.String()},
		{"config", "set", "core.foo", "1"},
		{"remote", "add", "--no-gpg-verify", "other", "http://127.0.0.1:1/other"},
		{"remote", "delete", "origin"},
		{"static-delta", "generate", "--empty", "main"},
		{"static-delta", "delete", deltas[0]},
		{"static-delta", "reindex"},
	} {
		res := c.fails(exitError, want, args...)
		if strings.Contains(res.stderr, ".tmp-") || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
			t.Errorf("otree %s: stderr %q, want one line that names no temporary file", strings.Join(args, " "), res.stderr)
		}
	}
	c.ok("refs", "--delete", "nosuch")
	c.ok("static-delta", "generate", "--empty", "main", "--filename="+filepath.Join(t.TempDir(), "d"))
	c.ok("fsck", "-q")
	if got := c.ok("refs"); got != refs {
		t.Errorf("refs after the refused changes: %q, want %q", got, refs)
	}
	if got := c.ok("remote", "list"); got != "origin\n" {
		t.Errorf("remotes after the refused changes: %q, want origin", got)
	}
}

// A repository whose objects/ alone cannot be written (here a read-only
// mount of it; a user who does not own it, likewise) still takes changes
// to refs, config and delta indexes, which write nothing there, as OSTree's
// does; a change that would write objects is still refused up front.
func TestObjectsReadOnlyRefsAndConfigWritable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "repo")
	r, err := repo.Init(p, repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, path: p, r: r}
	c.commitTree("main", source(t, fixture), "one", 1700000000)
	c.ok("static-delta", "generate", "--empty", "main")
	deltas := strings.Fields(c.ok("static-delta", "list"))
	r.Close()
	c.r = nil
	objects := filepath.Join(p, "objects")
	if err := unix.Mount(objects, objects, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount %s: %v", objects, err)
	}
	t.Cleanup(func() { unix.Unmount(objects, unix.MNT_DETACH) })
	if err := unix.Mount("", objects, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot make %s read-only: %v", objects, err)
	}
	for _, args := range [][]string{
		{"refs", "--create=new", "main"},
		{"refs", "--alias", "--create=al", "main"},
		{"refs", "--delete", "new"},
		{"config", "set", "core.foo", "1"},
		{"remote", "add", "--no-gpg-verify", "other", "http://127.0.0.1:1/other"},
		{"remote", "delete", "other"},
		{"static-delta", "reindex"},
		{"static-delta", "delete", deltas[0]},
	} {
		c.ok(args...)
	}
	if got, want := c.ok("refs"), "al\nmain\n"; got != want {
		t.Errorf("refs: %q, want %q", got, want)
	}
	if got := c.ok("config", "get", "core.foo"); got != "1\n" {
		t.Errorf("core.foo: %q, want 1", got)
	}
	c.fails(exitError, []string{"repository " + p + " is not writable", "read-only file system"},
		"commit", "-b", "main", source(t, testtree.Tree{"b": testtree.File("b", 0o644)}))
}
