package remote_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

// depthOrigin serves commits A, B and C of os/stable, C bound to bindRefs
// too, with static deltas B→C and from scratch to C.
func depthOrigin(t *testing.T, bindRefs ...string) (o *origin, a, b, c repo.ID) {
	t.Helper()
	o = newOrigin(t)
	tr := testtree.Tree{}
	for k, v := range tree {
		tr[k] = v
	}
	tr["usr/a"] = testtree.File("a\n", 0o644)
	a = o.commit("os/stable", tr, 1700000000)
	tr["usr/b"] = testtree.File("b\n", 0o644)
	b = o.commit("os/stable", tr, 1700000100)
	tr["usr/c"] = testtree.File("c\n", 0o644)
	c = o.commit("os/stable", tr, 1700000200, bindRefs...)
	for _, n := range []delta.Name{{From: b, To: c}, {To: c}} {
		if _, err := delta.Generate(ctx, o.r, delta.GenerateOptions{From: n.From, To: n.To, NoSync: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	o.resetHits()
	return o, a, b, c
}

// checkComplete checks each commit is stored here, not marked partial,
// with the tree the origin has.
func checkComplete(t *testing.T, o *origin, dest *repo.Repo, ids ...repo.ID) {
	t.Helper()
	for _, id := range ids {
		if has, err := dest.HasObject(repo.KindCommit, id); err != nil || !has {
			t.Fatalf("commit %s not stored (%v)", id, err)
		}
		if dest.IsCommitPartial(id) {
			t.Errorf("commit %s is still marked partial", id)
		}
		checkSameTree(t, o.r, dest, id)
	}
}

// checkNotFetched checks commit id came by no object request: neither
// the commit nor its root dirtree was requested.
func checkNotFetched(t *testing.T, o *origin, id repo.ID) {
	t.Helper()
	c, err := o.r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{objectURLPath(repo.KindCommit, id), objectURLPath(repo.KindDirTree, c.RootTree)} {
		if n := o.hitsOf(p); n != 0 {
			t.Errorf("requested %s %d times", p, n)
		}
	}
}

// With --depth the requested commit comes by static delta, as with OSTree
// 2022.7, and the walk goes on to its parents, which come as objects.
func TestPullDeltaWithDepth(t *testing.T) {
	t.Run("depth 1 from scratch", func(t *testing.T) {
		o, a, b, c := depthOrigin(t)
		dest := newDest(t, repo.ModeBareUser, o.srv.URL)
		opts := fastOpts("os/stable")
		opts.Depth = 1
		res, err := remote.Pull(ctx, dest, opts)
		if err != nil {
			t.Fatal(err)
		}
		name := delta.Name{To: c}
		if diff := cmp.Diff([]string{name.String()}, res.Deltas); diff != "" {
			t.Errorf("deltas used (-want +got):\n%s", diff)
		}
		if n := o.hitsOf("/" + name.Rel() + "/superblock"); n != 1 {
			t.Errorf("requested the superblock %d times", n)
		}
		checkNotFetched(t, o, c)
		if n := o.hitsOf(objectURLPath(repo.KindCommit, b)); n != 1 {
			t.Errorf("requested parent %s %d times", b, n)
		}
		checkComplete(t, o, dest, c, b)
		if has, _ := dest.HasObject(repo.KindCommit, a); has {
			t.Errorf("commit %s, beyond the depth, was pulled", a)
		}
		if got := mustRef(t, dest, "origin:os/stable"); got != c {
			t.Errorf("ref = %s, want %s", got, c)
		}
		checkFsck(t, dest)
	})
	t.Run("depth -1 from the ref", func(t *testing.T) {
		o, a, b, c := depthOrigin(t)
		dest := setupClientAt(t, o, b)
		opts := fastOpts("os/stable")
		opts.Depth = -1
		res, err := remote.Pull(ctx, dest, opts)
		if err != nil {
			t.Fatal(err)
		}
		name := delta.Name{From: b, To: c}
		if diff := cmp.Diff([]string{name.String()}, res.Deltas); diff != "" {
			t.Errorf("deltas used (-want +got):\n%s", diff)
		}
		if n := o.hitsOf("/" + name.Rel() + "/superblock"); n != 1 {
			t.Errorf("requested the superblock %d times", n)
		}
		checkNotFetched(t, o, c)
		checkNotFetched(t, o, b)
		if n := o.hitsOf(objectURLPath(repo.KindCommit, a)); n != 1 {
			t.Errorf("requested root %s %d times", a, n)
		}
		checkComplete(t, o, dest, c, b, a)
		checkFsck(t, dest)
	})
	t.Run("dry run", func(t *testing.T) {
		o, _, b, c := depthOrigin(t)
		dest := setupClientAt(t, o, b)
		opts := fastOpts("os/stable")
		opts.Depth = 1
		opts.DryRun = true
		res, err := remote.Pull(ctx, dest, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Plan) != 1 || res.Plan[0].Delta != (delta.Name{From: b, To: c}).String() {
			t.Errorf("plan %+v, want the delta %s-%s", res.Plan, b, c)
		}
		checkNothingMovedFrom(t, dest, b)
	})
	t.Run("required", func(t *testing.T) {
		o, _, _, c := depthOrigin(t)
		dest := newDest(t, repo.ModeBareUser, o.srv.URL)
		opts := fastOpts("os/stable")
		opts.Depth = 1
		opts.RequireStaticDeltas = true
		if _, err := remote.Pull(ctx, dest, opts); err != nil {
			t.Fatal(err)
		}
		checkComplete(t, o, dest, c)
	})
}
