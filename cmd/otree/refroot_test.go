package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
)

// A symlinked refs/heads (OSTree lists the refs through it): the branches
// committed through it are listed and checked, and prune keeps what they
// need, where it once saw no branch and deleted every commit.
func TestSymlinkedRefsHeadsCLI(t *testing.T) {
	c := newCLI(t)
	outside := filepath.Join(t.TempDir(), "heads")
	heads := filepath.Join(c.path, "refs", "heads")
	if err := os.Rename(heads, outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, heads); err != nil {
		t.Fatal(err)
	}
	src := source(t, testtree.Tree{"x": testtree.File("1\n", 0o644)})
	c.ok("commit", "-b", "main", src)
	testtree.Create(t, src, testtree.Tree{"y": testtree.File("2\n", 0o644)})
	second := strings.TrimSpace(c.ok("commit", "-b", "main", src))

	if got := c.ok("refs"); got != "main\n" {
		t.Errorf("refs = %q, want main", got)
	}
	if got := strings.TrimSpace(c.ok("rev-parse", "main")); got != second {
		t.Errorf("rev-parse main = %s, want %s", got, second)
	}
	if got := c.ok("fsck"); !strings.Contains(got, "Validated 1 ref\n") || strings.Contains(got, "unreferenced") || !strings.Contains(got, "No problems found") {
		t.Errorf("fsck:\n%s", got)
	}
	if got := c.ok("prune", "--refs-only"); !strings.Contains(got, "No unreachable objects") {
		t.Errorf("prune --refs-only:\n%s", got)
	}
	c.ok("log", "main")
}

// Refs hidden behind a symlinked directory are never read; fsck names the
// symlink, and says that the objects no readable ref reaches may be
// theirs and that prune refuses to run, which it does, naming it.
func TestHiddenRefsStopPruneCLI(t *testing.T) {
	c := newCLI(t)
	c.commitTree("main", source(t, fixture), "one", 1700000000)
	c.commitTree("os/stable", source(t, testtree.Tree{"z": testtree.File("only here", 0o644)}), "two", 1700000001)
	// os/ moved out and a symlink left in its place.
	outside := filepath.Join(t.TempDir(), "os")
	os.Rename(filepath.Join(c.path, "refs", "heads", "os"), outside)
	os.Symlink(outside, filepath.Join(c.path, "refs", "heads", "os"))

	res := c.fails(exitError, []string{"ref os", "symlink to a directory"}, "fsck")
	if !strings.Contains(res.stdout, "objects no readable ref reaches") || !strings.Contains(res.stdout, "`otree prune` refuses") || strings.Contains(res.stdout, "unreferenced") {
		t.Errorf("fsck with refs hidden:\n%s", res.stdout)
	}
	before := countObjects(t, c.path)
	c.fails(exitError, []string{"not pruning while ref os cannot be read", "hint: `otree refs --delete os`"}, "prune", "--refs-only")
	if after := countObjects(t, c.path); after != before {
		t.Errorf("the refused prune deleted objects: %d, then %d", before, after)
	}

	// A remote's directory planted as a symlink: no ref command can
	// delete it, and the hint says so.
	os.Remove(filepath.Join(c.path, "refs", "heads", "os"))
	os.Symlink(outside, filepath.Join(c.path, "refs", "remotes", "rm"))
	c.fails(exitError, []string{"refs/remotes/rm of remote rm is a symlink", "hint: rm: names no ref otree can delete"}, "prune", "--refs-only")
}

// countObjects counts the files under a repository's objects/.
func countObjects(t *testing.T, repoPath string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(repoPath, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
