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
