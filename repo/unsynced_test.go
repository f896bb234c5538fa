package repo_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/otree/otree/repo"
)

// A transaction that does not sync leaves tmp/unsynced; a durable one
// syncs because of it and removes it, unless a transaction that does not
// sync is still open, which may yet publish objects unsynced.
func TestUnsyncedMarker(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	marker := r.Path("tmp", "unsynced")
	present := func() bool {
		_, err := os.Stat(marker)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return err == nil
	}
	store := func(txn *repo.Txn, text string) {
		t.Helper()
		if _, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755, Xattrs: []repo.Xattr{{Name: "user.t", Value: []byte(text)}}}).Encode()); err != nil {
			t.Fatal(err)
		}
	}
	begin := func(noSync bool) *repo.Txn {
		t.Helper()
		txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: noSync})
		if err != nil {
			t.Fatal(err)
		}
		return txn
	}

	if present() {
		t.Fatal("a new repository has the marker")
	}
	fast := begin(true)
	store(fast, "fast")
	if err := fast.Commit(); err != nil {
		t.Fatal(err)
	}
	if !present() {
		t.Fatal("no marker after a transaction without syncs")
	}

	// One still open: a durable commit syncs, but the marker stays.
	open := begin(true)
	store(open, "open")
	durable := begin(false)
	store(durable, "durable")
	if err := durable.Commit(); err != nil {
		t.Fatal(err)
	}
	if !present() {
		t.Fatal("a durable commit removed the marker while a transaction without syncs was open")
	}
	if err := open.Commit(); err != nil {
		t.Fatal(err)
	}
	// None open: the next durable commit removes it.
	durable = begin(false)
	store(durable, "durable 2")
	if err := durable.Commit(); err != nil {
		t.Fatal(err)
	}
	if present() {
		t.Error("the marker outlived a durable commit with no transaction open")
	}
}

// A commit is unmarked partial only once what completed it is durable:
// objects published without a sync are synced first (the marker goes).
func TestUnmarkPartialSyncsUnsynced(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode()); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	marker := r.Path("tmp", "unsynced")
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no marker after a transaction without syncs: %v", err)
	}
	var c repo.ID
	c[0] = 7
	if err := r.MarkCommitPartial(c); err != nil {
		t.Fatal(err)
	}
	if err := r.UnmarkCommitPartial(c); err != nil {
		t.Fatal(err)
	}
	if r.IsCommitPartial(c) {
		t.Fatal("still marked partial")
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unmarking left objects published without a sync unsynced (marker: %v)", err)
	}
}

// Repo.SetRef makes a ref durable only once what it points at is: objects
// published without a sync are synced first (the marker goes), as a
// durable transaction does before its refs.
func TestSetRefSyncsUnsynced(t *testing.T) {
	r, good, _, _ := refRepo(t) // its objects published without a sync
	marker := r.Path("tmp", "unsynced")
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no marker after a transaction without syncs: %v", err)
	}
	if err := r.SetRef("other", good); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SetRef left objects published without a sync unsynced (marker: %v)", err)
	}
}
