package main

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
)

// A ref is a file, so "br/x" cannot be committed to while "br/x/y" exists
// (nor "br/x/y/z"): commit refuses before it stores anything, naming the
// ref in the way, as refs --create does.
func TestCommitBranchClash(t *testing.T) {
	c := newCLI(t)
	c.ok("commit", "-b", "br/x/y", source(t, fixture))
	before, _ := storedSet(t, c.path)
	other := source(t, testtree.Tree{"new": testtree.File("not stored\n", 0o644)})
	for _, branch := range []string{"br/x", "br/x/y/z"} {
		c.fails(exitError, []string{"cannot write ref " + branch, "ref br/x/y exists"}, "commit", "-b", branch, "-s", "new", other)
		c.fails(exitError, []string{"cannot write ref " + branch, "ref br/x/y exists"}, "refs", "--create="+branch, "br/x/y")
		// Checked before the source is even read.
		c.fails(exitError, []string{"cannot write ref " + branch, "ref br/x/y exists"}, "commit", "-b", branch, filepath.Join(t.TempDir(), "missing"))
	}
	after, _ := storedSet(t, c.path)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("a refused commit stored objects (-before +after):\n%s", diff)
	}
	if got := c.ok("refs"); got != "br/x/y\n" {
		t.Errorf("refs = %q", got)
	}
}

// refs REMOTE: and refs REMOTE:PREFIX print a remote's refs with their
// "REMOTE:", taking off only the branch part of the prefix, as OSTree
// does; a local prefix is taken off whole; --list prints full names.
func TestRefsRemotePrefix(t *testing.T) {
	c := newCLI(t)
	c.ok("commit", "-b", "os/l", source(t, fixture))
	for _, r := range []string{"origin:foo", "origin:os/x", "other:bar"} {
		c.ok("refs", "--create="+r, "os/l")
	}
	for prefix, want := range map[string]string{
		"origin:":    "origin:foo\norigin:os/x\n",
		"origin:os":  "origin:x\n",
		"origin:os/": "origin:x\n",
		"origin:foo": "origin:foo\n",
		"os":         "l\n",
		"os/l":       "os/l\n",
	} {
		if got := c.ok("refs", prefix); got != want {
			t.Errorf("refs %s = %q, want %q", prefix, got, want)
		}
	}
	if got := c.ok("refs", "--list", "origin:os"); got != "origin:os/x\n" {
		t.Errorf("refs --list origin:os = %q", got)
	}
}
