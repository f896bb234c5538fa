package repo_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otree/otree/repo"
)

// Publish stores what is staged while the transaction stays open: the
// objects survive an Abort, queued refs wait for Commit, and objects staged
// after it are published by Commit.
func TestTxnPublish(t *testing.T) {
	for _, sync := range []bool{false, true} {
		r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: !sync, Publishable: true})
		if err != nil {
			t.Fatal(err)
		}
		content := []byte("published early\n")
		h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
		file := repo.FileID(h, content)
		if _, err := txn.WriteFile(h, file, content); err != nil {
			t.Fatal(err)
		}
		meta, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
		if err != nil {
			t.Fatal(err)
		}
		if n, err := txn.Publish(); err != nil || n != 2 {
			t.Fatalf("Publish = %d, %v; want 2 objects", n, err)
		}
		for _, k := range []struct {
			kind repo.Kind
			id   repo.ID
		}{{repo.KindFile, file}, {repo.KindDirMeta, meta}} {
			if has, err := r.HasObject(k.kind, k.id); err != nil || !has {
				t.Errorf("%s %s not stored after Publish (%v)", k.kind, k.id, err)
			}
		}
		if n, err := txn.Publish(); err != nil || n != 0 {
			t.Errorf("second Publish = %d, %v; want nothing to do", n, err)
		}
		// Writing a published object again is deduplicated.
		if isNew, err := txn.WriteFile(h, file, content); err != nil || isNew {
			t.Errorf("rewrite of a published object: new %v, %v", isNew, err)
		}
		later, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o700}).Encode())
		if err != nil {
			t.Fatal(err)
		}
		// A commit whose root dirmeta was published, and whose dirtree
		// is staged after: the ref to it is written by Commit.
		tree, err := txn.WriteMeta(repo.KindDirTree, (&repo.DirTree{Files: []repo.FileEntry{{Name: "f", ID: file}}}).Encode())
		if err != nil {
			t.Fatal(err)
		}
		c, err := txn.WriteMeta(repo.KindCommit, (&repo.Commit{RootTree: tree, RootMeta: meta}).Encode())
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.SetRef("main", c); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadRef("main"); err == nil {
			t.Error("ref written by Publish")
		}
		if sync {
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			if has, _ := r.HasObject(repo.KindDirMeta, later); !has {
				t.Error("object staged after Publish not stored by Commit")
			}
			if got, err := r.ReadRef("main"); err != nil || got != c {
				t.Errorf("main after Commit = %s, %v; want %s", got, err, c)
			}
		} else {
			txn.Abort()
			if has, _ := r.HasObject(repo.KindDirMeta, later); has {
				t.Error("object staged after Publish stored despite Abort")
			}
			if has, _ := r.HasObject(repo.KindFile, file); !has {
				t.Error("published object lost by Abort")
			}
		}
	}
}

// Partial downloads nobody has written to for a day are removed when a
// transaction begins; recent ones stay.
func TestStalePartialDownloadsRemoved(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	os.MkdirAll(r.PartialDir(), 0o755)
	old, fresh := filepath.Join(r.PartialDir(), "old.file"), filepath.Join(r.PartialDir(), "fresh.file")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-25 * time.Hour)
	os.Chtimes(old, past, past)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	txn.Abort()
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("stale partial download kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("recent partial download removed: %v", err)
	}
}

// TestPublishNeedsPublishable checks a transaction begun without
// Publishable refuses Publish (and so keeps no per-object bookkeeping).
func TestPublishNeedsPublishable(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if _, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode()); err != nil {
		t.Fatal(err)
	}
	if n, err := txn.Publish(); err == nil || n != 0 {
		t.Fatalf("Publish on a plain transaction: %d, %v", n, err)
	}
}
