package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// refs --alias: create, list, read, commit and reset through an alias,
// and delete aliases before what they name.
func TestRefsAlias(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, fixture)
	first := c.commitTree("os/x86_64/stable", src, "one", 1700000000)

	c.ok("refs", "--alias", "--create=os/stable", "os/x86_64/stable")
	c.ok("refs", "-A", "--create=latest", "os/stable")
	if got := c.ok("refs"); got != "latest\nos/stable\nos/x86_64/stable\n" {
		t.Errorf("refs = %q", got)
	}
	if got := c.ok("refs", "--alias"); got != "latest -> os/stable\nos/stable -> os/x86_64/stable\n" {
		t.Errorf("refs --alias = %q", got)
	}
	if got := c.ok("refs", "--alias", "os"); got != "os/stable -> os/x86_64/stable\n" {
		t.Errorf("refs --alias os = %q", got)
	}
	if got := c.ok("rev-parse", "latest"); got != first.String()+"\n" {
		t.Errorf("rev-parse latest = %q, want %s", got, first)
	}

	// A commit through the alias moves the branch; the aliases stay.
	second := strings.TrimSpace(c.ok("commit", "-b", "latest", "-s", "two", src))
	if got := c.ok("rev-parse", "os/x86_64/stable"); got != second+"\n" {
		t.Errorf("branch after commit -b latest = %q, want %s", got, second)
	}
	if got := c.ok("log", "latest"); !strings.Contains(got, "Parent:  "+first.String()) {
		t.Errorf("commit through an alias did not take the branch as parent:\n%s", got)
	}
	// Bound to the branch and its aliases, so a pull by any name takes it.
	if got := c.ok("show", "--print-metadata-key="+repo.RefBindingKey, "latest"); got != "['latest', 'os/stable', 'os/x86_64/stable']\n" {
		t.Errorf("ref binding of a commit through an alias = %q", got)
	}
	c.ok("reset", "os/stable", first.String())
	if got := c.ok("rev-parse", "os/x86_64/stable"); got != first.String()+"\n" {
		t.Errorf("branch after reset os/stable = %q, want %s", got, first)
	}
	if fi, err := os.Lstat(filepath.Join(c.path, "refs", "heads", "latest")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("latest is no longer an alias: %v", err)
	}

	// Refused: an alias of a commit id or of a missing ref, --create
	// --force over an alias without --alias, --alias with --delete.
	c.fails(exitError, []string{first.String(), "not found"}, "refs", "--alias", "--create=x", first.String())
	c.fails(exitError, []string{"nosuch"}, "refs", "--alias", "--create=x", "nosuch")
	c.fails(exitError, []string{"already exists"}, "refs", "--alias", "--create=latest", "os/x86_64/stable")
	c.fails(exitError, []string{"alias of os/stable", "delete the alias first"}, "refs", "--force", "--create=latest", first.String())
	c.fails(exitUsage, nil, "refs", "--alias", "--delete", "latest")

	// A branch goes only with, and after, every alias that names it.
	c.fails(exitError, []string{"os/stable is an alias", "nothing deleted"}, "refs", "--delete", "os/x86_64")
	c.fails(exitError, []string{"latest is an alias", "nothing deleted"}, "refs", "--delete", "os")
	if got := c.ok("refs"); got != "latest\nos/stable\nos/x86_64/stable\n" {
		t.Errorf("a refused --delete deleted something: refs = %q", got)
	}
	c.ok("refs", "--delete", "os", "latest")
	if got := c.ok("refs"); got != "" {
		t.Errorf("refs after deleting all = %q", got)
	}

	// A loop made by hand is listed as broken and can be deleted.
	heads := filepath.Join(c.path, "refs", "heads")
	os.Symlink("l2", filepath.Join(heads, "l1"))
	os.Symlink("l1", filepath.Join(heads, "l2"))
	if got := c.ok("refs", "--alias"); !strings.Contains(got, "l1 -> l2 (broken: ") || !strings.Contains(got, "loop") {
		t.Errorf("refs --alias with a loop = %q", got)
	}
	c.ok("refs", "--delete", "l1", "l2")
	if ents, _ := os.ReadDir(heads); len(ents) != 0 {
		t.Errorf("left in refs/heads: %v", ents)
	}
}

// The same refs --alias commands give the same refs, the same aliases and
// the same symlinks in otree and in OSTree.
func TestRefsAliasParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, fixture)
	steps := [][]string{
		{"commit", "-b", "os/x86_64/stable", src},
		{"commit", "-b", "main", src},
		{"refs", "--alias", "--create=os/stable", "os/x86_64/stable"},
		{"refs", "--alias", "--create=latest", "os/stable"},
		{"refs", "--alias", "--create=a/b/c", "main"},
	}
	for _, s := range steps {
		o.ok(s...)
		c.ok(s...)
	}
	sorted := func(s string) []string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		slices.Sort(lines)
		return lines
	}
	for _, args := range [][]string{{"refs"}, {"refs", "--alias"}, {"refs", "--alias", "a"}, {"refs", "os"}} {
		if got, want := sorted(c.ok(args...)), sorted(o.ok(args...)); !slices.Equal(got, want) {
			t.Errorf("%v: otree %q, OSTree %q", args, got, want)
		}
	}
	for _, name := range []string{"os/stable", "latest", "a/b/c"} {
		want, _ := os.Readlink(filepath.Join(o.path, "refs", "heads", name))
		if got, err := os.Readlink(filepath.Join(c.path, "refs", "heads", name)); err != nil || got != want {
			t.Errorf("symlink %s: otree %q (%v), OSTree %q", name, got, err, want)
		}
		// Each tool resolves the alias to its own branch's commit.
		for tool, rp := range map[string]func(...string) string{"otree": c.ok, "OSTree": o.ok} {
			if a, b := rp("rev-parse", name), rp("rev-parse", strings.Replace(strings.Replace(name, "a/b/c", "main", 1), "latest", "os/stable", 1)); a != b {
				t.Errorf("%s: rev-parse %s = %q, its target %q", tool, name, a, b)
			}
		}
	}
}
