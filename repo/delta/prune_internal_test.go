package delta

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// prunable makes a repository whose main branch was reset from top back
// to old, with the static deltas old-top, scratch-top and scratch-old.
func prunable(t *testing.T) (r *repo.Repo, old, top repo.ID) {
	t.Helper()
	r, err := repo.Init(t.TempDir()+"/repo", repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	old = commitInternal(t, r, testtree.Tree{"f": testtree.File("old\n", 0o644)})
	top = commitInternal(t, r, testtree.Tree{"f": testtree.File("top\n", 0o644), "g": testtree.File("new\n", 0o644)})
	for _, n := range []Name{{From: old, To: top}, {To: top}, {To: old}} {
		if _, err := Generate(context.Background(), r, GenerateOptions{From: n.From, To: n.To, NoSync: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetRef("main", old); err != nil {
		t.Fatal(err)
	}
	return r, old, top
}

func deltaNames(t *testing.T, r *repo.Repo) []string {
	t.Helper()
	names, err := List(r)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, n := range names {
		out = append(out, n.String())
	}
	return out
}

// Prune deletes the deltas to the commits it deletes, and only those (a
// delta from a deleted commit stays: clients may have it); a dry run
// names them and deletes nothing. repo.Prune alone leaves them.
func TestPruneDeletesDeltasToDeletedCommits(t *testing.T) {
	r, old, top := prunable(t)
	all := deltaNames(t, r)
	toTop := []string{Name{From: old, To: top}.String(), Name{To: top}.String()}
	slices.Sort(toTop)

	rep, err := Prune(context.Background(), r, repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth, NoPrune: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(rep.Deltas)); !slices.Equal(got, toTop) || !slices.Equal(deltaNames(t, r), all) {
		t.Errorf("dry run: reported %v, want %v; deltas now %v, want %v", got, toTop, deltaNames(t, r), all)
	}

	plain, err := r.Prune(context.Background(), repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth, NoPrune: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Deltas) != 0 {
		t.Errorf("repo.Prune reports deltas %v", plain.Deltas)
	}

	var size int64
	for _, n := range []Name{{From: old, To: top}, {To: top}} {
		filepath.WalkDir(Path(r, n), func(p string, d fs.DirEntry, err error) error {
			if fi, ierr := os.Lstat(p); err == nil && ierr == nil && !d.IsDir() {
				size += fi.Size()
			}
			return nil
		})
	}
	if size == 0 || rep.DeltaBytes != size {
		t.Errorf("dry run: reported %d bytes of deltas, want the %d their files take", rep.DeltaBytes, size)
	}
	dry := rep.DeltaBytes

	rep, err = Prune(context.Background(), r, repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DeltaBytes != dry {
		t.Errorf("prune reported %d bytes of deltas freed, its dry run %d", rep.DeltaBytes, dry)
	}
	if !slices.Equal(rep.Commits, []repo.ID{top}) {
		t.Fatalf("deleted commits %v, want %v", rep.Commits, top)
	}
	if got := slices.Sorted(slices.Values(rep.Deltas)); !slices.Equal(got, toTop) {
		t.Errorf("reported deltas %v, want %v", got, toTop)
	}
	if got, want := deltaNames(t, r), []string{(Name{To: old}).String()}; !slices.Equal(got, want) {
		t.Errorf("deltas after prune %v, want %v", got, want)
	}
	// Deltas to a commit r lacks (left by an earlier prune that stopped)
	// go at the next one; alsoTo deletes those to a kept commit.
	rep, err = Prune(context.Background(), r, repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth}, old)
	if err != nil {
		t.Fatal(err)
	}
	if got := deltaNames(t, r); len(got) != 0 || len(rep.Deltas) != 1 {
		t.Errorf("with alsoTo %s: deltas left %v, reported %v", old, got, rep.Deltas)
	}
	if has, err := r.HasObject(repo.KindCommit, old); err != nil || !has {
		t.Errorf("alsoTo deleted commit %s (%v)", old, err)
	}
}

// A delete that runs beside a prune may remove a delta the prune listed.
// That is not a failure: the delta is gone, as the prune wanted, and the
// prune reports only what it deleted. (The hook plays the other delete,
// between the listing and the deleting.)
func TestPruneConcurrentDeleteOfDelta(t *testing.T) {
	r, old, top := prunable(t)
	other, err := repo.Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	testHookOrphans = func() {
		if err := Delete(context.Background(), other, Name{From: old, To: top}); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookOrphans = nil })
	rep, err := Prune(context.Background(), r, repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{(Name{To: top}).String()}; !slices.Equal(rep.Deltas, want) {
		t.Errorf("reported deltas %v, want %v", rep.Deltas, want)
	}
	if got, want := deltaNames(t, r), []string{(Name{To: old}).String()}; !slices.Equal(got, want) {
		t.Errorf("deltas after prune %v, want %v", got, want)
	}
}

// Prune deletes the deltas while it still holds the repository lock:
// after it, a pull could store such a commit again and a generation make
// a delta to it, which the prune would then delete. (The hook, between
// the listing and the deleting, plays a transaction, which must wait.)
func TestPruneDeletesDeltasUnderLock(t *testing.T) {
	r, _, _ := prunable(t)
	other, err := repo.Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetLockTimeout(0)
	lockErr := errors.New("the hook did not run")
	testHookOrphans = func() {
		lk, err := other.LockShared(context.Background())
		if err == nil {
			lk.Unlock()
		}
		lockErr = err
	}
	t.Cleanup(func() { testHookOrphans = nil })
	if _, err := Prune(context.Background(), r, repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(lockErr, repo.ErrLocked) {
		t.Errorf("while prune deleted static deltas, taking the repository lock shared gave %v, want %v", lockErr, repo.ErrLocked)
	}
}
