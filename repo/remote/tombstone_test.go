package remote_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// prunedOrigin is an origin whose config keeps tombstones, with three
// commits on os/stable of which prune kept only the last: the other two
// left tombstones.
func prunedOrigin(t *testing.T) (o *origin, commits []repo.ID) {
	t.Helper()
	o = newOrigin(t)
	commits = tombstoneHistory(o)
	if err := o.r.UpdateConfig(func(c *repo.Config) error { return c.Set(repo.ConfigTombstoneCommits, "true") }); err != nil {
		t.Fatal(err)
	}
	if _, err := o.r.Prune(ctx, repo.PruneOptions{RefsOnly: true, Depth: 0}); err != nil {
		t.Fatal(err)
	}
	for _, c := range commits[:2] {
		if has, _ := o.r.HasObject(repo.KindTombstoneCommit, c); !has {
			t.Fatalf("the origin's prune left no tombstone for %s", c)
		}
	}
	return o, commits
}

// tombstoneHistory commits three versions to os/stable, the same commits
// in every origin.
func tombstoneHistory(o *origin) []repo.ID {
	return []repo.ID{
		o.commit("os/stable", tree, 1700000000),
		o.commit("os/stable", testtree.Tree{"a": testtree.File("2\n", 0o644)}, 1700000100),
		o.commit("os/stable", testtree.Tree{"a": testtree.File("3\n", 0o644)}, 1700000200),
	}
}

// A deep pull from a source that keeps tombstones ends quietly at a
// tombstoned parent, and keeps the tombstone.
func TestPullEndsAtTombstone(t *testing.T) {
	o, commits := prunedOrigin(t)
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	opts := fastOpts("os/stable")
	opts.Depth = -1
	res, err := remote.Pull(ctx, dst, opts)
	if err != nil {
		t.Fatalf("deep pull of a history ending at a tombstone: %v", err)
	}
	// The tombstone is metadata, fetched on its own.
	if res.MetadataFetched+res.ContentFetched != res.ObjectsFetched || res.DeltaParts != 0 {
		t.Errorf("pull fetched %d objects: %d metadata, %d content, %d delta parts; the tombstone is not counted as metadata",
			res.ObjectsFetched, res.MetadataFetched, res.ContentFetched, res.DeltaParts)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != commits[2] {
		t.Errorf("ref %s, want %s", got, commits[2])
	}
	if n := o.hitsOf(objectURLPath(repo.KindTombstoneCommit, commits[1])); n != 1 {
		t.Errorf("the parent's tombstone was requested %d times, want 1", n)
	}
	if has, _ := dst.HasObject(repo.KindTombstoneCommit, commits[1]); !has {
		t.Error("the pull did not keep the parent's tombstone")
	}
	checkFsck(t, dst)

	// The same from a local source.
	local := newDest(t, repo.ModeBareUser, o.srv.URL)
	opts.Refs = []string{"os/stable"}
	if _, err := remote.PullLocal(ctx, local, o.dir, opts); err != nil {
		t.Fatalf("deep local pull of a history ending at a tombstone: %v", err)
	}
	if has, _ := local.HasObject(repo.KindTombstoneCommit, commits[1]); !has {
		t.Error("the local pull did not keep the parent's tombstone")
	}
}

// A parent missing from a source that keeps tombstones, without one, was
// not deleted on purpose: the pull fails, naming it, and writes no ref.
func TestPullFailsAtMissingParentWithoutTombstone(t *testing.T) {
	o, commits := prunedOrigin(t)
	if err := os.Remove(o.r.ObjectPath(repo.KindTombstoneCommit, commits[1])); err != nil {
		t.Fatal(err)
	}
	for _, local := range []bool{false, true} {
		dst := newDest(t, repo.ModeBareUser, o.srv.URL)
		opts := fastOpts("os/stable")
		opts.Depth = -1
		err := pullFrom(dst, o, opts, local)
		if !errors.Is(err, repo.ErrNotFound) {
			t.Fatalf("local %v: pull past a missing parent: %v, want a not-found error", local, err)
		}
		errContains(t, err, commits[1].String(), commits[2].String(), repo.ConfigTombstoneCommits)
		checkNothingMoved(t, dst)
		if has, _ := dst.HasObject(repo.KindTombstoneCommit, commits[1]); has {
			t.Errorf("local %v: a failed pull stored a tombstone", local)
		}
	}
	// A shallow pull does not reach the parent.
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
		t.Fatalf("depth 0: %v", err)
	}
}

// A tombstone that names another commit is corrupt, and fails the pull.
func TestPullRefusesCorruptTombstone(t *testing.T) {
	o, commits := prunedOrigin(t)
	if err := os.WriteFile(o.r.ObjectPath(repo.KindTombstoneCommit, commits[1]), repo.EncodeTombstone(commits[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	opts := fastOpts("os/stable")
	opts.Depth = -1
	_, err := remote.Pull(ctx, dst, opts)
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.Kind != repo.KindTombstoneCommit || ce.ID != commits[1] {
		t.Fatalf("pull with a corrupt tombstone: %v, want a corrupt tombstone-commit error", err)
	}
	checkNothingMoved(t, dst)
}

// A commit pulled again, from a source that still has it, takes the
// tombstone away.
func TestPullRemovesTombstoneOfCommitStoredAgain(t *testing.T) {
	o, commits := prunedOrigin(t)
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	opts := fastOpts("os/stable")
	opts.Depth = -1
	if _, err := remote.Pull(ctx, dst, opts); err != nil {
		t.Fatal(err)
	}
	full := newOrigin(t)
	if got := tombstoneHistory(full); got[1] != commits[1] {
		t.Fatalf("the same history has other ids: %v, %v", got, commits)
	}
	if _, err := remote.PullLocal(ctx, dst, full.dir, opts); err != nil {
		t.Fatal(err)
	}
	for _, c := range commits {
		if has, _ := dst.HasObject(repo.KindTombstoneCommit, c); has {
			t.Errorf("commit %s pulled again kept its tombstone", c)
		}
	}
	if rep := checkFsck(t, dst); rep.Objects["tombstone-commit"] != 0 {
		t.Errorf("fsck found %d tombstones", rep.Objects["tombstone-commit"])
	}
}

// A source config that sets core.tombstone-commits to something else
// than a boolean fails the pull, naming the key.
func TestPullRefusesBadTombstoneConfig(t *testing.T) {
	o := newOrigin(t)
	o.commit("os/stable", tree, 1700000000)
	if err := o.r.UpdateConfig(func(c *repo.Config) error { return c.Set(repo.ConfigTombstoneCommits, "maybe") }); err != nil {
		t.Fatal(err)
	}
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	_, err := remote.Pull(ctx, dst, fastOpts("os/stable"))
	errContains(t, err, repo.ConfigTombstoneCommits, "maybe")
	checkNothingMoved(t, dst)
}

// A commit requested by id that the source deleted, keeping a tombstone,
// fails the pull with an error that says so and names it (OSTree fails
// with a bare 404); nothing is stored.
func TestPullOfTombstonedCommit(t *testing.T) {
	o, commits := prunedOrigin(t)
	for _, local := range []bool{false, true} {
		dst := newDest(t, repo.ModeBareUser, o.srv.URL)
		opts := fastOpts(commits[1].String())
		err := pullFrom(dst, o, opts, local)
		if !errors.Is(err, repo.ErrNotFound) {
			t.Fatalf("local %v: pull of a deleted commit: %v, want a not-found error", local, err)
		}
		errContains(t, err, "commit "+commits[1].String()+" was deleted at the source", "tombstone")
		checkNothingMoved(t, dst)
		if has, _ := dst.HasObject(repo.KindTombstoneCommit, commits[1]); has {
			t.Errorf("local %v: a failed pull stored a tombstone", local)
		}
	}
}

// pullFrom pulls into dst from o: over HTTP, or from its directory when
// local.
func pullFrom(dst *repo.Repo, o *origin, opts remote.PullOptions, local bool) error {
	var err error
	if local {
		_, err = remote.PullLocal(ctx, dst, o.dir, opts)
	} else {
		_, err = remote.Pull(ctx, dst, opts)
	}
	return err
}

// A commit the source lacks, met first as a parent (where the history may
// end) and then named by another ref of the same pull, fails the pull as a
// missing target: no ref is written for a commit this pull never read.
func TestPullParentThenTargetMissing(t *testing.T) {
	o := newOrigin(t)
	old := o.commit("b", tree, 1700000000)
	cur := o.commit("b", testtree.Tree{"a": testtree.File("2\n", 0o644)}, 1700000100)
	for ref, id := range map[string]repo.ID{"a": cur, "b": old} {
		if err := o.r.SetRef(ref, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(o.r.ObjectPath(repo.KindCommit, old)); err != nil {
		t.Fatal(err)
	}
	for _, refs := range [][]string{{"a", "b"}, {"b", "a"}} {
		dst := newDest(t, repo.ModeBareUser, o.srv.URL)
		opts := fastOpts(refs...)
		opts.Depth, opts.DisableVerifyBindings = -1, true
		_, err := remote.Pull(ctx, dst, opts)
		if err == nil || !strings.Contains(err.Error(), objectURLPath(repo.KindCommit, old)) {
			t.Errorf("pull %v: %v, want an error naming %s", refs, err, objectURLPath(repo.KindCommit, old))
		}
		if got, err := dst.ReadRef("origin:b"); err == nil {
			t.Errorf("pull %v wrote origin:b = %s, a commit it never fetched", refs, got)
		}
	}
}

// A branch whose commit, as the summary lists it, the server no longer
// has (the branch moved and the commit was pruned, the summary not
// written anew) fails the pull with an error naming the branch and the
// summary, not only the object's URL.
func TestPullOfBranchMissingFromStaleSummary(t *testing.T) {
	o := newOrigin(t)
	gone := o.commit("os/stable", tree, 1700000000)
	o.commit("os/testing", tree, 1700000001)
	if err := os.Remove(o.r.ObjectPath(repo.KindCommit, gone)); err != nil {
		t.Fatal(err)
	}
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	_, err := remote.Pull(ctx, dst, fastOpts("os/testing", "os/stable"))
	if !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("pull of a branch whose commit is gone: %v, want a not-found error", err)
	}
	errContains(t, err, "os/stable (commit "+gone.String()+")", "summary of "+o.srv.URL, "stale", "404")
	checkNothingMoved(t, dst)
}
