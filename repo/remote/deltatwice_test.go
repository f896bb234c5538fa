package remote_test

import (
	"strings"
	"testing"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

// deltaHits counts the requests for the files of delta n: its superblock
// and its parts.
func (o *origin) deltaHits(n delta.Name) (superblock, parts int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	dir := "/" + n.Rel() + "/"
	for p, k := range o.hits {
		switch {
		case p == dir+delta.SuperblockFile:
			superblock += k
		case strings.HasPrefix(p, dir):
			parts += k
		}
	}
	return superblock, parts
}

// twoRefOrigin serves commits A, B and C of os/stable, C also as
// os/other (bound to both) and as os/unbound (bound to os/stable only),
// with static deltas B→C and from scratch to C.
func twoRefOrigin(t *testing.T) (o *origin, b, c repo.ID) {
	t.Helper()
	o, _, b, c = depthOrigin(t, "os/other")
	for _, ref := range []string{"os/other", "os/unbound"} {
		if err := o.r.SetRef(ref, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	return o, b, c
}

// Two refs of one pull that name the same commit take its static delta
// once: the second finds the commit the first staged complete.
func TestPullDeltaTwoRefsOneCommit(t *testing.T) {
	for _, c := range []struct {
		what   string
		atB    bool // the client has os/stable at B, so B→C is used
		depth  int
		refs   []string
		commit bool // the second ref is named by commit id
	}{
		{what: "from scratch", refs: []string{"os/stable", "os/other"}},
		{what: "from scratch reversed", refs: []string{"os/other", "os/stable"}},
		{what: "from scratch depth 1", depth: 1, refs: []string{"os/stable", "os/other"}},
		{what: "from B", atB: true, refs: []string{"os/stable", "os/other"}},
		{what: "from B reversed", atB: true, refs: []string{"os/other", "os/stable"}},
		{what: "from B depth 1", atB: true, depth: 1, refs: []string{"os/stable", "os/other"}},
		{what: "branch and commit id", refs: []string{"os/stable"}, commit: true},
		{what: "branch and commit id depth 1", depth: 1, refs: []string{"os/stable"}, commit: true},
	} {
		t.Run(c.what, func(t *testing.T) {
			o, b, cc := twoRefOrigin(t)
			var dest *repo.Repo
			if c.atB {
				dest = setupClientAt(t, o, b)
			} else {
				dest = newDest(t, repo.ModeBareUser, o.srv.URL)
			}
			o.resetHits()
			refs := c.refs
			if c.commit {
				refs = append(refs, cc.String())
			}
			opts := fastOpts(refs...)
			opts.Depth = c.depth
			res, err := remote.Pull(ctx, dest, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Deltas) != 1 {
				t.Errorf("deltas used %v, want one", res.Deltas)
			}
			total := 0
			for _, n := range []delta.Name{{From: b, To: cc}, {To: cc}} {
				sb, parts := o.deltaHits(n)
				total += sb
				if sb > 1 {
					t.Errorf("requested the superblock of %s %d times", n, sb)
				}
				if parts > 1 {
					t.Errorf("requested the parts of %s %d times", n, parts)
				}
			}
			if total != 1 {
				t.Errorf("requested %d superblocks, want 1", total)
			}
			checkNotFetched(t, o, cc)
			for _, ref := range c.refs {
				if got := mustRef(t, dest, "origin:"+ref); got != cc {
					t.Errorf("ref %s = %s, want %s", ref, got, cc)
				}
			}
			checkComplete(t, o, dest, cc)
			if c.depth == 1 {
				checkComplete(t, o, dest, b)
			}
			checkFsck(t, dest)
		})
	}
}

// A ref that names a commit another ref of the pull took by delta is
// still held to its own ref binding: the pull fails and writes no ref.
func TestPullDeltaTwoRefsBinding(t *testing.T) {
	for _, refs := range [][]string{{"os/stable", "os/unbound"}, {"os/unbound", "os/stable"}} {
		t.Run(strings.Join(refs, ","), func(t *testing.T) {
			o, _, _ := twoRefOrigin(t)
			dest := newDest(t, repo.ModeBareUser, o.srv.URL)
			_, err := remote.Pull(ctx, dest, fastOpts(refs...))
			errContains(t, err, "superblock", "not to \"os/unbound\"")
			checkNothingMoved(t, dest)
		})
	}
}
