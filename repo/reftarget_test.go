package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// checkRefTargetError checks that err refuses to point ref at commit
// because the object kind id is missing, naming all three.
func checkRefTargetError(t *testing.T, err error, ref string, commit repo.ID, kind repo.Kind, id repo.ID) {
	t.Helper()
	var te *repo.RefTargetError
	var me *repo.ObjectMissingError
	switch {
	case !errors.As(err, &te):
		t.Errorf("got %v; want a *RefTargetError", err)
	case te.Ref != ref || te.Commit != commit:
		t.Errorf("RefTargetError for ref %s, commit %s; want %s, %s", te.Ref, te.Commit, ref, commit)
	case !errors.As(err, &me) || me.Kind != kind || me.ID != id:
		t.Errorf("%v: want it to wrap %s object %s missing", err, kind, id)
	case !errors.Is(err, repo.ErrNotFound):
		t.Errorf("%v: want it to match ErrNotFound", err)
	}
	if err == nil {
		return
	}
	for _, s := range []string{"ref " + ref, commit.String(), kind.String() + " object " + id.String()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%v: does not name %q", err, s)
		}
	}
}

// A ref is never pointed at a commit that is missing, or whose root
// dirtree or root dirmeta is: neither by a transaction that stages the
// commit (which then moves nothing at all), nor by one that names a
// stored commit, nor by Repo.SetRef. The error names the ref, the commit
// and the object missing, and every ref stays where it was.
func TestRefToIncompleteCommit(t *testing.T) {
	ctx := context.Background()
	r, good, tree, meta := refRepo(t)
	noTree := repo.Sum([]byte("a dirtree never stored"))
	noMeta := repo.Sum([]byte("a dirmeta never stored"))
	cases := []struct {
		name   string
		commit repo.Commit
		kind   repo.Kind // of the object missing; a commit: the commit itself
	}{
		{"root dirtree missing", repo.Commit{Subject: "no tree", RootTree: noTree, RootMeta: meta}, repo.KindDirTree},
		{"root dirmeta missing", repo.Commit{Subject: "no meta", RootTree: tree, RootMeta: noMeta}, repo.KindDirMeta},
		{"both missing", repo.Commit{Subject: "neither", RootTree: noTree, RootMeta: noMeta}, repo.KindDirTree},
		{"commit missing", repo.Commit{Subject: "never stored", RootTree: tree, RootMeta: meta}, repo.KindCommit},
	}
	for _, c := range cases {
		id := repo.Sum(c.commit.Encode())
		missing := map[repo.Kind]repo.ID{repo.KindDirTree: noTree, repo.KindDirMeta: noMeta, repo.KindCommit: id}[c.kind]
		unchanged := func(how string) {
			t.Helper()
			for ref, want := range map[string]repo.ID{"main": good, "other": {}} {
				got, err := r.ReadRef(ref)
				if want.IsZero() && errors.Is(err, repo.ErrNotFound) {
					continue
				}
				if err != nil || got != want {
					t.Errorf("%s, %s: ref %s = %s, %v; want it left at %s", c.name, how, ref, got, err, want)
				}
			}
		}
		t.Run(c.name, func(t *testing.T) {
			// Staged by the transaction that moves the refs, beside a
			// ref that is fine on its own.
			txn, err := r.Begin(ctx, repo.TxnOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c.kind != repo.KindCommit {
				if _, err := txn.WriteMeta(repo.KindCommit, c.commit.Encode()); err != nil {
					t.Fatal(err)
				}
			}
			txn.SetRef("other", good)
			txn.SetRef("main", id)
			checkRefTargetError(t, txn.Commit(), "main", id, c.kind, missing)
			unchanged("transaction staging the commit")
			if has, err := r.HasObject(repo.KindCommit, id); err != nil || has {
				t.Errorf("the refused transaction stored commit %s (%v)", id, err)
			}

			if c.kind != repo.KindCommit {
				storeCommit(t, r, &c.commit)
			}
			// Stored before, by another transaction.
			txn, err = r.Begin(ctx, repo.TxnOptions{})
			if err != nil {
				t.Fatal(err)
			}
			txn.SetRef("main", id)
			checkRefTargetError(t, txn.Commit(), "main", id, c.kind, missing)
			unchanged("transaction naming a stored commit")

			checkRefTargetError(t, r.SetRef("main", id), "main", id, c.kind, missing)
			unchanged("Repo.SetRef")
		})
	}

	// A tombstone says the commit was deleted on purpose: there is still
	// no commit to point at.
	gone := repo.Sum([]byte("a commit deleted on purpose"))
	txn, err := r.Begin(ctx, repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.WriteTombstone(gone); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	checkRefTargetError(t, r.SetRef("main", gone), "main", gone, repo.KindCommit, gone)
	if got, err := r.ReadRef("main"); err != nil || got != good {
		t.Errorf("main after refusing a tombstoned commit = %s, %v; want %s", got, err, good)
	}

	// A commit whose tree is all there gets the ref, and deleting a ref
	// needs no commit.
	fine := storeCommit(t, r, &repo.Commit{Subject: "fine", RootTree: tree, RootMeta: meta})
	if err := r.SetRef("main", fine); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRef("main", repo.ID{}); err != nil {
		t.Fatal(err)
	}
}

// A commit marked partial (pulled as commit metadata only, or a subpath;
// or damaged, by fsck with Delete) may lack its tree: it still gets a ref,
// through a transaction or Repo.SetRef. The commit itself must be there.
func TestRefToPartialCommit(t *testing.T) {
	ctx := context.Background()
	r, _, _, meta := refRepo(t)
	c := repo.Commit{Subject: "metadata only", RootTree: repo.Sum([]byte("not pulled")), RootMeta: meta}
	id := repo.Sum(c.Encode())
	if err := r.MarkCommitPartial(id); err != nil {
		t.Fatal(err)
	}
	txn, err := r.Begin(ctx, repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txn.WriteMeta(repo.KindCommit, c.Encode()); err != nil {
		t.Fatal(err)
	}
	txn.SetRef("origin:os/stable", id)
	if err := txn.Commit(); err != nil {
		t.Fatalf("ref to a partial commit staged with it: %v", err)
	}
	if err := r.SetRef("main", id); err != nil {
		t.Fatalf("SetRef to a stored partial commit: %v", err)
	}
	for _, ref := range []string{"origin:os/stable", "main"} {
		if got, err := r.ReadRef(ref); err != nil || got != id {
			t.Errorf("ref %s = %s, %v; want %s", ref, got, err, id)
		}
	}

	absent := repo.Sum([]byte("a partial commit never fetched"))
	if err := r.MarkCommitPartial(absent); err != nil {
		t.Fatal(err)
	}
	checkRefTargetError(t, r.SetRef("main", absent), "main", absent, repo.KindCommit, absent)
}
