package repo_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// setConfig sets key in r's config file.
func setConfig(t *testing.T, r *repo.Repo, key, value string) {
	t.Helper()
	if err := r.UpdateConfig(func(c *repo.Config) error { return c.Set(key, value) }); err != nil {
		t.Fatal(err)
	}
}

// configOnDisk reads key from r's config file as another process would.
func configOnDisk(t *testing.T, r *repo.Repo, key string) string {
	t.Helper()
	data, err := os.ReadFile(r.Path("config"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := c.Get(key)
	return v
}

// A repository with core.tombstone-commits leaves a tombstone for every
// commit prune deletes, and prune keeps them; one without leaves none.
func TestPruneWritesTombstones(t *testing.T) {
	for _, on := range []bool{true, false} {
		r := newIntegrityRepo(t, repo.ModeArchive)
		if on {
			setConfig(t, r, repo.ConfigTombstoneCommits, "true")
		}
		commits, _ := commitHistory(t, r)
		rep := mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 0})
		if len(rep.Commits) != 3 {
			t.Fatalf("deleted commits %v, want the three old ones", rep.Commits)
		}
		for i, c := range commits {
			if got, want := stored(t, r, repo.KindTombstoneCommit, c), on && i < 3; got != want {
				t.Errorf("tombstones %v: commit %d has one: %v, want %v", on, i, got, want)
			}
		}
		if _, ok := rep.ByKind["tombstone-commit"]; ok {
			t.Errorf("prune counted tombstones as deleted: %+v", rep.ByKind)
		}
		// Kept by later prunes, and neither problems nor unreferenced.
		mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 0})
		if stored(t, r, repo.KindTombstoneCommit, commits[0]) != on {
			t.Errorf("tombstones %v: a second prune changed the tombstone", on)
		}
		if fr := mustFsckClean(t, r); fr.Unreferenced != 0 {
			t.Errorf("tombstones %v: %d unreferenced objects, want 0", on, fr.Unreferenced)
		}
	}
}

// DeleteCommit turns tombstones on, as OSTree's --delete-commit does, and
// leaves one; a refused deletion changes nothing.
func TestPruneDeleteCommitTombstone(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	ghost := repo.Sum([]byte("no such commit"))
	for _, id := range []repo.ID{commits[3], ghost} {
		if _, err := r.Prune(context.Background(), repo.PruneOptions{DeleteCommit: id}); err == nil {
			t.Fatalf("deleting %s was allowed", id)
		}
		if v := configOnDisk(t, r, repo.ConfigTombstoneCommits); v != "" {
			t.Errorf("a refused deletion of %s set %s=%s", id, repo.ConfigTombstoneCommits, v)
		}
		if stored(t, r, repo.KindTombstoneCommit, id) {
			t.Errorf("a refused deletion left a tombstone for %s", id)
		}
	}
	// An explicit false is overridden, as OSTree does.
	setConfig(t, r, repo.ConfigTombstoneCommits, "false")
	mustPrune(t, r, repo.PruneOptions{DeleteCommit: commits[1]})
	if v := configOnDisk(t, r, repo.ConfigTombstoneCommits); v != "true" {
		t.Errorf("after DeleteCommit %s=%q, want true", repo.ConfigTombstoneCommits, v)
	}
	if !stored(t, r, repo.KindTombstoneCommit, commits[1]) || stored(t, r, repo.KindCommit, commits[1]) {
		t.Fatal("the deleted commit left no tombstone, or stayed")
	}
	// Tombstones on now: the next commit prune deletes leaves one too.
	mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 1})
	if !stored(t, r, repo.KindTombstoneCommit, commits[0]) {
		t.Error("a commit pruned after DeleteCommit left no tombstone")
	}
	mustFsckClean(t, r)
}

// A config value that is not a boolean stops prune before it deletes
// anything, naming the key.
func TestPruneRefusesBadTombstoneConfig(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	setConfig(t, r, repo.ConfigTombstoneCommits, "maybe")
	_, err := r.Prune(context.Background(), repo.PruneOptions{RefsOnly: true, Depth: 0})
	if err == nil || !strings.Contains(err.Error(), repo.ConfigTombstoneCommits) {
		t.Fatalf("prune with %s=maybe: %v, want an error naming the key", repo.ConfigTombstoneCommits, err)
	}
	if !stored(t, r, repo.KindCommit, commits[0]) {
		t.Error("the refused prune deleted a commit")
	}
	if err := repo.CheckConfigValue(repo.ConfigTombstoneCommits, "maybe"); err == nil {
		t.Error("CheckConfigValue accepted a non-boolean")
	}
}

// Storing a commit again removes its tombstone: it is no longer deleted.
func TestTombstoneRemovedWhenCommitStoredAgain(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	data, err := r.ReadRaw(repo.KindCommit, commits[1])
	if err != nil {
		t.Fatal(err)
	}
	mustPrune(t, r, repo.PruneOptions{DeleteCommit: commits[1], CommitOnly: true})
	if !stored(t, r, repo.KindTombstoneCommit, commits[1]) {
		t.Fatal("no tombstone")
	}
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txn.WriteMeta(repo.KindCommit, data); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if !stored(t, r, repo.KindCommit, commits[1]) || stored(t, r, repo.KindTombstoneCommit, commits[1]) {
		t.Error("the commit stored again kept its tombstone")
	}
	mustFsckClean(t, r)
}

// storeTombstone stores the tombstone of commit in r, whether or not the
// commit is stored.
func storeTombstone(t *testing.T, r *repo.Repo, commit repo.ID) {
	t.Helper()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if err := txn.WriteTombstone(commit); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A tombstone beside its commit (a crash between storing the commit and
// removing the tombstone) is no problem; fsck counts it unreferenced and
// prune removes it.
func TestStaleTombstone(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	storeTombstone(t, r, commits[2])
	if fr := mustFsckClean(t, r); fr.Unreferenced != 1 || fr.Objects["tombstone-commit"] != 1 {
		t.Errorf("fsck: %d unreferenced, %d tombstones verified; want 1 and 1", fr.Unreferenced, fr.Objects["tombstone-commit"])
	}
	if rep := mustPrune(t, r, repo.PruneOptions{NoPrune: true}); rep.ByKind["tombstone-commit"].Objects != 1 {
		t.Errorf("a dry run would delete %+v, want the stale tombstone", rep.ByKind)
	}
	rep := mustPrune(t, r, repo.PruneOptions{})
	if rep.Deleted != 1 || rep.ByKind["tombstone-commit"].Objects != 1 {
		t.Errorf("prune deleted %+v, want the stale tombstone alone", rep.ByKind)
	}
	if stored(t, r, repo.KindTombstoneCommit, commits[2]) || !stored(t, r, repo.KindCommit, commits[2]) {
		t.Error("the stale tombstone stayed, or its commit went")
	}
}

// A dry run reports what the prune it stands for deletes: a stale
// tombstone beside a commit that prune deletes is kept, not counted as
// deleted.
func TestDryRunKeepsTombstoneOfPrunedCommit(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	storeTombstone(t, r, commits[0])
	opts := repo.PruneOptions{RefsOnly: true, Depth: 0}
	dry := opts
	dry.NoPrune = true
	want := mustPrune(t, r, dry)
	if _, ok := want.ByKind["tombstone-commit"]; ok {
		t.Errorf("a dry run would delete %+v, with the tombstone of a commit it deletes", want.ByKind)
	}
	got := mustPrune(t, r, opts)
	if got.Deleted != want.Deleted || got.Freed != want.Freed {
		t.Errorf("prune deleted %d objects (%d bytes), its dry run said %d (%d bytes)", got.Deleted, got.Freed, want.Deleted, want.Freed)
	}
	if !stored(t, r, repo.KindTombstoneCommit, commits[0]) || stored(t, r, repo.KindCommit, commits[0]) {
		t.Error("the tombstone of the pruned commit went, or the commit stayed")
	}
}

// Fsck decodes tombstones: one that names another commit than the one it
// is stored under is corrupt.
func TestFsckCorruptTombstone(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	mustPrune(t, r, repo.PruneOptions{DeleteCommit: commits[0]})
	mustFsckClean(t, r)
	path := r.ObjectPath(repo.KindTombstoneCommit, commits[0])
	if err := os.WriteFile(path, repo.EncodeTombstone(commits[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	p := wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindTombstoneCommit, commits[0])
	if !strings.Contains(p.Reason, "names commit "+commits[1].String()) {
		t.Errorf("reason %q does not say which commit the tombstone names", p.Reason)
	}
}

// A corrupt tombstone of a stored commit's parent says how to store it
// again, and Delete with AddTombstones replaces it: the tombstone is
// deleted first, then stored afresh, so the parent's absence still reads
// as a deletion on purpose.
func TestFsckDeleteAddTombstonesReplacesCorrupt(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeArchive)
	commits, _ := commitHistory(t, r)
	mustPrune(t, r, repo.PruneOptions{DeleteCommit: commits[0]})
	path := r.ObjectPath(repo.KindTombstoneCommit, commits[0])
	if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	p := wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindTombstoneCommit, commits[0])
	if !strings.Contains(p.Error(), "fsck --delete --add-tombstones stores it again") {
		t.Errorf("problem %q does not say how to store the tombstone again", p.Error())
	}
	rep, err = runFsck(t, r, repo.FsckOptions{Delete: true, AddTombstones: true})
	if p := wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindTombstoneCommit, commits[0]); !p.Deleted {
		t.Errorf("the corrupt tombstone was not deleted: %v", p)
	}
	if len(rep.Tombstoned) != 1 || rep.Tombstoned[0] != commits[0] {
		t.Errorf("tombstoned %v, want %s", rep.Tombstoned, commits[0].Short())
	}
	if !stored(t, r, repo.KindTombstoneCommit, commits[0]) {
		t.Error("no tombstone stored in place of the corrupt one")
	}
	mustFsckClean(t, r)
}

// Fsck with Delete removes a corrupt commit without leaving a tombstone,
// even where tombstones are kept: it was not deleted on purpose, and a
// pull must not take it for a commit that was.
func TestFsckDeleteLeavesNoTombstone(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	setConfig(t, r, repo.ConfigTombstoneCommits, "true")
	commits, _ := commitHistory(t, r)
	flipLastByte(t, r.ObjectPath(repo.KindCommit, commits[1]))
	if _, err := runFsck(t, r, repo.FsckOptions{Delete: true}); err == nil {
		t.Fatal("fsck found no corrupt commit")
	}
	if stored(t, r, repo.KindCommit, commits[1]) || stored(t, r, repo.KindTombstoneCommit, commits[1]) {
		t.Error("the corrupt commit stayed, or left a tombstone")
	}
}

// AddTombstones stores a tombstone for each parent deleted by hand, turns
// tombstones on, and adds nothing the second time or where no parent is
// missing.
func TestFsckAddTombstones(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeArchive)
	commits, _ := commitHistory(t, r)
	rep, err := runFsck(t, r, repo.FsckOptions{AddTombstones: true})
	if err != nil || len(rep.Tombstoned) != 0 || configOnDisk(t, r, repo.ConfigTombstoneCommits) != "" {
		t.Fatalf("complete history: tombstoned %v, config %q, %v", rep.Tombstoned, configOnDisk(t, r, repo.ConfigTombstoneCommits), err)
	}
	if err := os.Remove(r.ObjectPath(repo.KindCommit, commits[1])); err != nil {
		t.Fatal(err)
	}
	rep, err = runFsck(t, r, repo.FsckOptions{AddTombstones: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tombstoned) != 1 || rep.Tombstoned[0] != commits[1] {
		t.Errorf("tombstoned %v, want the deleted parent %s", rep.Tombstoned, commits[1].Short())
	}
	if !stored(t, r, repo.KindTombstoneCommit, commits[1]) {
		t.Error("no tombstone stored")
	}
	if got := configOnDisk(t, r, repo.ConfigTombstoneCommits); got != "true" {
		t.Errorf("%s = %q, want true", repo.ConfigTombstoneCommits, got)
	}
	again := mustFsckClean(t, r)
	if len(again.Tombstoned) != 0 {
		t.Errorf("a plain fsck tombstoned %v", again.Tombstoned)
	}
	if rep, _ := runFsck(t, r, repo.FsckOptions{AddTombstones: true}); len(rep.Tombstoned) != 0 {
		t.Errorf("second run tombstoned %v again", rep.Tombstoned)
	}
}

// Tombstones go to disk before their commits go, so on a full filesystem
// prune stops before it deletes anything: the error names the repository,
// says that the tombstones could not be stored, that nothing was deleted
// and how to let prune run. Every object is still there, and once space
// is freed the same prune deletes the commits and leaves their tombstones.
func TestPruneFullFilesystemTombstones(t *testing.T) {
	mnt := testtree.SmallFS(t, 4<<20)
	r, err := repo.Init(mnt+"/repo", repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	setConfig(t, r, repo.ConfigTombstoneCommits, "true")
	commits, _ := commitHistory(t, r)
	testtree.FillTo(t, mnt, 0)

	_, err = r.Prune(context.Background(), repo.PruneOptions{RefsOnly: true, Depth: 0})
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), r.Path()) ||
		!strings.Contains(err.Error(), "tombstones") || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("prune on a full filesystem: %v, want ENOSPC naming %s, the tombstones, and that nothing was deleted", err, r.Path())
	}
	for i, c := range commits {
		if !stored(t, r, repo.KindCommit, c) || stored(t, r, repo.KindTombstoneCommit, c) {
			t.Errorf("commit %d after the failed prune: stored %v, tombstone %v; want stored, no tombstone", i,
				stored(t, r, repo.KindCommit, c), stored(t, r, repo.KindTombstoneCommit, c))
		}
	}
	mustFsckClean(t, r)

	if err := os.Remove(mnt + "/fill"); err != nil {
		t.Fatal(err)
	}
	rep := mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 0})
	if len(rep.Commits) != 3 {
		t.Fatalf("deleted commits %v, want the three old ones", rep.Commits)
	}
	for _, c := range commits[:3] {
		if !stored(t, r, repo.KindTombstoneCommit, c) {
			t.Errorf("commit %s deleted without its tombstone", c)
		}
	}
}
