package repo_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/repo"
)

// refRepo returns a repository whose branch main points at a
// commit of the empty tree, with the ids of that commit and of the stored
// root dirtree and dirmeta.
func refRepo(t *testing.T) (r *repo.Repo, good, tree, meta repo.ID) {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if tree, err = txn.WriteMeta(repo.KindDirTree, (&repo.DirTree{}).Encode()); err != nil {
		t.Fatal(err)
	}
	if meta, err = txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode()); err != nil {
		t.Fatal(err)
	}
	if good, err = txn.WriteMeta(repo.KindCommit, (&repo.Commit{Subject: "good", RootTree: tree, RootMeta: meta}).Encode()); err != nil {
		t.Fatal(err)
	}
	if err := txn.SetRef("main", good); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return r, good, tree, meta
}

// storeCommit stores c without moving any ref and returns its id.
func storeCommit(t *testing.T, r *repo.Repo, c *repo.Commit) repo.ID {
	t.Helper()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := txn.WriteMeta(repo.KindCommit, c.Encode())
	if err == nil {
		err = txn.Commit()
	} else {
		txn.Abort()
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Ref writes take the refs lock unless their Repo holds it: one that
// another holder (another process, or another Repo of the repository)
// has waits for it, and fails with ErrLocked once the lock timeout
// passes, leaving the ref as it was. Through the Repo that holds it
// (LockRefs, or LockExclusive, which keeps every ref writer out) they go
// ahead.
func TestRefWritesTakeRefsLock(t *testing.T) {
	ctx := context.Background()
	holder, a, tree, meta := refRepo(t)
	b := storeCommit(t, holder, &repo.Commit{Subject: "b", RootTree: tree, RootMeta: meta})
	other, err := repo.Open(holder.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetLockTimeout(0)
	holder.SetLockTimeout(0) // a write waiting on its own Repo's lock fails at once

	lk, err := holder.LockRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetRef("main", b); !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "main") {
		t.Errorf("SetRef while another holds the refs lock: %v; want ErrLocked naming the ref", err)
	}
	if err := other.SetRef("main", repo.ID{}); !errors.Is(err, repo.ErrLocked) {
		t.Errorf("deleting a ref while another holds the refs lock: %v; want ErrLocked", err)
	}
	if err := other.SetAlias("latest", "main"); !errors.Is(err, repo.ErrLocked) {
		t.Errorf("SetAlias while another holds the refs lock: %v; want ErrLocked", err)
	}
	txn, err := other.Begin(ctx, repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	txn.SetRef("main", b)
	if err := txn.Commit(); !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "main") {
		t.Errorf("Txn.Commit with a ref while another holds the refs lock: %v; want ErrLocked naming the ref", err)
	}
	if got, err := holder.ReadRef("main"); err != nil || got != a {
		t.Errorf("main = %s, %v; want it left at %s", got, err, a)
	}
	if _, err := holder.ReadRef("latest"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("alias written while another held the refs lock: %v", err)
	}

	// The holder's own writes go ahead.
	if err := holder.SetRef("main", b); err != nil {
		t.Errorf("SetRef through the Repo holding the refs lock: %v", err)
	}
	if err := holder.SetAlias("latest", "main"); err != nil {
		t.Errorf("SetAlias through the Repo holding the refs lock: %v", err)
	}
	txn, err = holder.Begin(ctx, repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	txn.SetRef("main", a)
	if err := txn.Commit(); err != nil {
		t.Errorf("Txn.Commit through the Repo holding the refs lock: %v", err)
	}

	// A writer with time to wait moves the ref once the holder lets go,
	// not before.
	other.SetLockTimeout(time.Minute)
	done := make(chan error, 1)
	go func() { done <- other.SetRef("main", b) }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Errorf("SetRef returned (%v) while another held the refs lock", err)
		done <- nil
	default:
	}
	if got, err := holder.ReadRef("main"); err != nil || got != a {
		t.Errorf("main = %s, %v while the holder has the refs lock; want %s", got, err, a)
	}
	lk.Unlock()
	if err := <-done; err != nil {
		t.Errorf("SetRef once the lock is free: %v", err)
	}
	if got, err := holder.ReadRef("main"); err != nil || got != b {
		t.Errorf("main = %s, %v; want %s", got, err, b)
	}

	// Unlocked, the holder's writes take the lock for themselves.
	lk, err = other.LockRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.SetRef("main", a); !errors.Is(err, repo.ErrLocked) {
		t.Errorf("SetRef after Unlock while another holds the refs lock: %v; want ErrLocked", err)
	}
	lk.Unlock()

	// The repository lock held exclusively (prune) keeps every ref
	// writer out, one through the same Repo too.
	ex, err := holder.LockExclusive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.SetRef("main", a); !errors.Is(err, repo.ErrLocked) {
		t.Errorf("SetRef while its Repo holds the repository lock exclusively: %v; want ErrLocked", err)
	}
	ex.Unlock()
	if got, err := holder.ReadRef("main"); err != nil || got != b {
		t.Errorf("main = %s, %v; want %s", got, err, b)
	}
}

// Unlocking LockRefs waits for the ref writes that went ahead under it
// through its Repo, from other goroutines: a ref write never outlives the
// lock it relies on.
func TestRefsUnlockWaitsForWrites(t *testing.T) {
	r, _, _, _ := refRepo(t)
	lk, err := r.LockRefs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A write in progress, as SetRef from another goroutine holds it.
	done, err := r.HoldRefs()
	if err != nil {
		t.Fatal(err)
	}
	unlocked := make(chan struct{})
	go func() {
		lk.Unlock()
		close(unlocked)
	}()
	select {
	case <-unlocked:
		t.Error("LockRefs' Unlock returned while a ref write under it was in progress")
	case <-time.After(300 * time.Millisecond):
	}
	done()
	<-unlocked
	// Let go, the lock is the next writer's.
	other, err := repo.Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetLockTimeout(0)
	lk, err = other.LockRefs(context.Background())
	if err != nil {
		t.Fatalf("refs lock after Unlock: %v", err)
	}
	lk.Unlock()
}

// core.lock-timeout-secs is read as OSTree reads it: whole seconds, 0
// tries once, and -1 waits without limit (only the context ends the
// wait, never ErrLocked); other negative values keep the default.
func TestLockTimeoutConfig(t *testing.T) {
	holder, _, _, _ := refRepo(t)
	for v, want := range map[string]time.Duration{"": 30 * time.Second, "5": 5 * time.Second, "0": 0, "-1": -time.Second, "-2": 30 * time.Second} {
		if err := holder.UpdateConfig(func(c *repo.Config) error {
			if v == "" {
				c.Unset(repo.ConfigLockTimeout)
				return nil
			}
			return c.Set(repo.ConfigLockTimeout, v)
		}); err != nil {
			t.Fatal(err)
		}
		r, err := repo.Open(holder.Path())
		if err != nil {
			t.Fatal(err)
		}
		if got := r.LockTimeout(); got != want {
			t.Errorf("%s=%q: lock timeout %v, want %v", repo.ConfigLockTimeout, v, got, want)
		}
		r.Close()
	}
	if err := repo.CheckConfigValue(repo.ConfigLockTimeout, "-1"); err != nil {
		t.Errorf("%s=-1 refused: %v", repo.ConfigLockTimeout, err)
	}
	if err := repo.CheckConfigValue(repo.ConfigLockTimeout, "-2"); err == nil {
		t.Errorf("%s=-2 accepted", repo.ConfigLockTimeout)
	}

	other, err := repo.Open(holder.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetLockTimeout(-1)
	lk, err := holder.LockRefs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if l, err := other.LockRefs(ctx); errors.Is(err, repo.ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		l.Unlock()
		t.Errorf("waiting without limit for a held lock: %v; want the context's end, not ErrLocked", err)
	}
}

// cancelWriter ends a context at its first write, keeping what it got.
type cancelWriter struct {
	cancel context.CancelFunc
	got    bytes.Buffer
}

func (w *cancelWriter) Write(b []byte) (int, error) {
	w.got.Write(b)
	w.cancel()
	return len(b), nil
}

// A wait for a lock another process holds, which core.lock-timeout-secs=-1
// lets last for ever, is reported to the Repo's logger, naming the lock;
// a lock taken at once, or a timeout of 0, reports nothing.
func TestLockWaitReported(t *testing.T) {
	holder, _, _, _ := refRepo(t)
	other, err := repo.Open(holder.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// The deadline only keeps a missing report from hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &cancelWriter{cancel: cancel}
	other.SetLogger(slog.New(slog.NewTextHandler(w, nil)))

	l, err := other.LockRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	lk, err := holder.LockRefs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	other.SetLockTimeout(0)
	if _, err := other.LockRefs(ctx); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("timeout 0: %v, want ErrLocked", err)
	}
	if w.got.Len() != 0 {
		t.Fatalf("reported with no wait: %s", w.got.String())
	}
	other.SetLockTimeout(-1)
	// The report ends the context, and so the wait.
	if _, err := other.LockRefs(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting without limit: %v, want the wait ended by its report", err)
	}
	if got := w.got.String(); !strings.Contains(got, "waiting for the repository lock") || !strings.Contains(got, holder.Path()) {
		t.Errorf("the wait was reported as %q; want it named, with its lock", got)
	}
}
