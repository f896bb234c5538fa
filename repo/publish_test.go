package repo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
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

// Commit objects go into the store after every other object, by Commit
// and by Publish alike: when the move of an object a commit needs fails
// (here its fan-out directory is a file), the commit is not stored, so
// that no commit in objects/ lacks what its transaction was storing, and
// Commit writes no ref it queued.
func TestCommitObjectsPublishedLast(t *testing.T) {
	for _, publish := range []bool{false, true} {
		r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		txn, err := r.Begin(context.Background(), repo.TxnOptions{Publishable: publish})
		if err != nil {
			t.Fatal(err)
		}
		meta, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
		if err != nil {
			t.Fatal(err)
		}
		tree, err := txn.WriteMeta(repo.KindDirTree, (&repo.DirTree{}).Encode())
		if err != nil {
			t.Fatal(err)
		}
		// A commit in another fan-out directory than its tree.
		c := &repo.Commit{RootTree: tree, RootMeta: meta}
		for i := 0; ; i++ {
			c.Subject = fmt.Sprint("commit ", i)
			if id := repo.Sum(c.Encode()); id[0] != tree[0] {
				break
			}
		}
		commit, err := txn.WriteMeta(repo.KindCommit, c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		fan := r.Path("objects", fmt.Sprintf("%02x", tree[0]))
		if err := os.Remove(fan); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fan, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if publish {
			_, err = txn.Publish()
			txn.Abort()
		} else {
			if err := txn.SetRef("main", commit); err != nil {
				t.Fatal(err)
			}
			err = txn.Commit()
		}
		if err == nil {
			t.Fatalf("publish=%v: storing a dirtree into a file succeeded", publish)
		}
		if has, err := r.HasObject(repo.KindCommit, commit); err != nil || has {
			t.Errorf("publish=%v: a failed move of its dirtree left commit %s stored (%v)", publish, commit, err)
		}
		if _, err := r.ReadRef("main"); !errors.Is(err, repo.ErrNotFound) {
			t.Errorf("publish=%v: a failed commit wrote its ref (%v)", publish, err)
		}
	}
}

// Two transactions that stage the same object both commit: the second
// finds it stored and keeps the stored file (the same inode, which
// checkouts may share through hardlinks) rather than failing or moving
// its own copy over it.
func TestConcurrentStagingDeduplicates(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	content := []byte("staged twice\n")
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
	id := repo.FileID(h, content)
	var txns [2]*repo.Txn
	for i := range txns {
		if txns[i], err = r.Begin(context.Background(), repo.TxnOptions{}); err != nil {
			t.Fatal(err)
		}
		if stored, err := txns[i].WriteFile(h, id, content); err != nil || !stored {
			t.Fatalf("transaction %d: WriteFile = %v, %v; want it staged", i, stored, err)
		}
	}
	inode := func() uint64 {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(r.ObjectPath(repo.KindFile, id), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	if err := txns[0].Commit(); err != nil {
		t.Fatal(err)
	}
	first := inode()
	if err := txns[1].Commit(); err != nil {
		t.Fatalf("the second transaction storing the same object: %v", err)
	}
	if got := inode(); got != first {
		t.Errorf("the second transaction replaced the stored object (inode %d, was %d)", got, first)
	}
}

// Detached metadata written while a Publish is under way, before or after
// that Publish moves the commit's earlier metadata into the store, waits
// for it, and Commit then stores the new metadata: it is neither lost
// (forgotten by Publish with its file still staged) nor looked for under
// a name Publish has moved already.
func TestCommitMetaWrittenDuringPublish(t *testing.T) {
	for _, step := range []string{"taken", "moved"} {
		r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		txn, err := r.Begin(context.Background(), repo.TxnOptions{Publishable: true})
		if err != nil {
			t.Fatal(err)
		}
		var c repo.ID // detached metadata is keyed by a commit that need not be stored
		c[0] = 7
		first, second := repo.Metadata{{Key: "n", Value: []byte("first")}}, repo.Metadata{{Key: "n", Value: []byte("second")}}
		if err := txn.WriteCommitMeta(c, first); err != nil {
			t.Fatal(err)
		}
		written := make(chan error, 1)
		started := false
		restore := repo.SetPublishHook(func(s string) {
			if s != step || started {
				return
			}
			started = true
			go func() { written <- txn.WriteCommitMeta(c, second) }()
			select {
			case err := <-written:
				t.Errorf("%s: WriteCommitMeta ran inside Publish (%v)", step, err)
				written <- err
			case <-time.After(100 * time.Millisecond):
			}
		})
		_, err = txn.Publish()
		restore()
		if err != nil {
			t.Fatalf("%s: Publish: %v", step, err)
		}
		if !started {
			t.Fatalf("%s: Publish never reached the step", step)
		}
		if err := <-written; err != nil {
			t.Fatalf("%s: WriteCommitMeta: %v", step, err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatalf("%s: Commit: %v", step, err)
		}
		got, err := r.ReadCommitMeta(c)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := got.Get("n"); string(v) != "second" {
			t.Errorf("%s: stored detached metadata says %q; want the one written last, %q", step, v, "second")
		}
	}
}

// ReadCommitMeta in a transaction, run while WriteCommitMeta replaces the
// staged metadata and Publish moves it into the store, returns one of the
// versions written: never nothing (the staged file between its unlink and
// its rewrite) and never a half-written file taken for a corrupt one.
func TestReadCommitMetaWhileWritten(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true, Publishable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	var c repo.ID
	c[0] = 9
	// Versions of different sizes, the larger ones over a page, so that a
	// read can meet a file that is being written.
	version := func(i int) repo.Metadata {
		return repo.Metadata{{Key: "v", Value: []byte(fmt.Sprintf("%d:%s", i, strings.Repeat("x", i%4*20000)))}}
	}
	if err := txn.WriteCommitMeta(c, version(0)); err != nil {
		t.Fatal(err)
	}
	// Both sides run until each has done its share, the writer
	// publishing every tenth version.
	rounds := int64(400)
	if testing.Short() {
		rounds = 50
	}
	var writes atomic.Int64
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := txn.WriteCommitMeta(c, version(i)); err != nil {
				done <- err
				return
			}
			if i%10 == 0 {
				if _, err := txn.Publish(); err != nil {
					done <- err
					return
				}
			}
			writes.Add(1)
		}
	}()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	for reads := int64(0); reads < rounds || writes.Load() < rounds; reads++ {
		m, err := txn.ReadCommitMeta(c)
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		v, ok := m.Get("v")
		var i int
		if _, err := fmt.Sscanf(string(v), "%d:", &i); !ok || err != nil || !cmp.Equal(m, version(i)) {
			t.Fatalf("read %d: got %.40q, want one of the versions written", reads, v)
		}
	}
}

// No metadata object is written larger than readers load: detached
// metadata grown past the bound (a pull merging what a server adds) is
// refused naming the commit, and what was stored stays readable; so is a
// dirtree.
func TestMetadataLargerThanReadersLoadRefused(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer repo.SetMaxMetaObject(4096)()
	var c repo.ID
	c[0] = 9
	small := repo.Metadata{{Key: "n", Value: []byte("small")}}
	txn, err := r.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.WriteCommitMeta(c, small); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn, err = r.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	big := repo.Metadata{{Key: "n", Value: bytes.Repeat([]byte{1}, 5000)}}
	if err := txn.WriteCommitMeta(c, big); err == nil || !strings.Contains(err.Error(), c.String()) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("WriteCommitMeta of 5000 bytes over a bound of 4096: %v, want a refusal naming %s", err, c)
	}
	if got, err := txn.ReadCommitMeta(c); err != nil || !cmp.Equal(got, small) {
		t.Errorf("detached metadata after the refusal: %v, %v; want %v", got, err, small)
	}
	tree := repo.DirTree{}
	for i := range 200 {
		tree.Files = append(tree.Files, repo.FileEntry{Name: fmt.Sprintf("file-%04d", i)})
	}
	if _, err := txn.WriteMeta(repo.KindDirTree, tree.Encode()); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("WriteMeta of a dirtree over the bound: %v, want a refusal", err)
	}
}
