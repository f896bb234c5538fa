package repo_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otree/otree/repo"
)

// WriteMeta refuses bytes that do not decode strictly, naming the kind,
// and stages nothing: a hand-built DirTree with unsorted entries, a
// DirMeta with unsorted xattrs, a commit with unsorted metadata, and a
// kind it does not store.
func TestWriteMetaRefusesNonCanonical(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeArchive)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	unsortedTree := &repo.DirTree{Files: []repo.FileEntry{{Name: "zeta", ID: idOf(1)}, {Name: "alpha", ID: idOf(2)}}}
	unsortedMeta := &repo.DirMeta{Mode: 0o755, Xattrs: []repo.Xattr{{Name: "user.z"}, {Name: "user.a"}}}
	unsortedCommit := &repo.Commit{Timestamp: 1, RootTree: idOf(3), RootMeta: idOf(4),
		Metadata: repo.Metadata{{Key: "zeta", Value: []byte("1")}, {Key: "alpha", Value: []byte("2")}}}
	for _, tc := range []struct {
		kind repo.Kind
		data []byte
	}{
		{repo.KindDirTree, unsortedTree.Encode()},
		{repo.KindDirMeta, unsortedMeta.Encode()},
		{repo.KindCommit, unsortedCommit.Encode()},
		{repo.KindDirTree, (&repo.DirMeta{Mode: 0o755}).Encode()},
		{repo.KindFile, []byte("content")},
	} {
		id, err := txn.WriteMeta(tc.kind, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.kind.String()+" object") {
			t.Errorf("WriteMeta(%s) of non-canonical bytes: id %s, err %v; want an error naming the kind", tc.kind, id, err)
		}
		if has, _ := txn.Has(tc.kind, repo.Sum(tc.data)); has {
			t.Errorf("WriteMeta(%s) of non-canonical bytes staged them", tc.kind)
		}
	}
	if s := txn.Stats(); s.Objects != 0 {
		t.Errorf("refused writes staged %d objects", s.Objects)
	}
	sorted := &repo.DirTree{Files: []repo.FileEntry{{Name: "alpha", ID: idOf(2)}, {Name: "zeta", ID: idOf(1)}}}
	if _, err := txn.WriteMeta(repo.KindDirTree, sorted.Encode()); err != nil {
		t.Errorf("WriteMeta of a canonical dirtree: %v", err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Fsck(context.Background(), repo.FsckOptions{})
	if err != nil || !rep.OK() {
		t.Errorf("fsck after refused writes: %+v, %v", rep, err)
	}
}

// The setters may be called while other goroutines begin transactions,
// take the ref lock and read objects (run with -race).
func TestSettersRaceFree(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeArchive)
	meta := (&repo.DirMeta{Mode: 0o755}).Encode()
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			r.SetLockTimeout(time.Duration(i+1) * time.Second)
			r.SetVerify(i%2 == 0)
			r.SetRemotesDir(t.TempDir())
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: true})
			if err != nil {
				t.Error(err)
				return
			}
			id, err := txn.WriteMeta(repo.KindDirMeta, meta)
			if err == nil {
				err = txn.Commit()
			} else {
				txn.Abort()
			}
			if err != nil {
				t.Error(err)
				return
			}
			lk, err := r.LockRefs(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			lk.Unlock()
			if _, err := r.ReadRaw(repo.KindDirMeta, id); err != nil {
				t.Error(err)
			}
			if _, err := r.RemoteSections(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
}
