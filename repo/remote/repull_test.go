package remote_test

import (
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// A pull that finds a ref already naming the commit it would write leaves
// the ref's file alone: a mirror's re-pull of many unchanged branches
// rewrites none of them, and moves only the one that changed.
func TestPullLeavesUnchangedRefsUnwritten(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("base", tree, 1700000000)
	const n = 200 // more than a transaction writes one by one
	for i := range n {
		if err := o.r.SetRef(fmt.Sprintf("m/b%03d", i), id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	dest := newDest(t, repo.ModeArchive, o.srv.URL)
	opts := fastOpts()
	opts.Mirror = true
	opts.DisableVerifyBindings = true // every branch names a commit bound to base
	if _, err := remote.Pull(ctx, dest, opts); err != nil {
		t.Fatal(err)
	}
	inodes := func() map[string]uint64 {
		out := map[string]uint64{}
		refs, err := dest.ListRefs("")
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range refs {
			fi, err := os.Stat(dest.Path("refs", "heads", ref.Name))
			if err != nil {
				t.Fatal(err)
			}
			out[ref.Name] = fi.Sys().(*syscall.Stat_t).Ino
		}
		return out
	}
	before := inodes()
	if len(before) != n+1 {
		t.Fatalf("mirror has %d refs, want %d", len(before), n+1)
	}
	moved := o.commit("m/b007", testtree.Tree{"a": testtree.File("a\n", 0o644)}, 1700000100)
	res, err := remote.Pull(ctx, dest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refs) != n+1 {
		t.Errorf("re-pull reported %d refs, want all %d", len(res.Refs), n+1)
	}
	rewritten := 0
	for name, ino := range inodes() {
		if ino != before[name] {
			rewritten++
			if name != "m/b007" {
				t.Errorf("unchanged ref %s was rewritten", name)
			}
		}
	}
	if rewritten != 1 || mustRef(t, dest, "m/b007") != moved {
		t.Errorf("re-pull rewrote %d refs, m/b007 = %s; want 1 and %s", rewritten, mustRef(t, dest, "m/b007"), moved)
	}
}
