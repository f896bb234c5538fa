package repo_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// unsyncedRepo is a repository for the tests of tmp/unsynced.
type unsyncedRepo struct {
	t *testing.T
	r *repo.Repo
}

func newUnsyncedRepo(t *testing.T) unsyncedRepo {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return unsyncedRepo{t, r}
}

// present tells whether the marker is there.
func (u unsyncedRepo) present() bool {
	_, err := os.Stat(u.r.Path("tmp", "unsynced"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		u.t.Fatal(err)
	}
	return err == nil
}

func (u unsyncedRepo) begin(noSync bool) *repo.Txn {
	u.t.Helper()
	txn, err := u.r.Begin(context.Background(), repo.TxnOptions{NoSync: noSync})
	if err != nil {
		u.t.Fatal(err)
	}
	return txn
}

// store stages a dirmeta of its own, text.
func (u unsyncedRepo) store(txn *repo.Txn, text string) {
	u.t.Helper()
	if _, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755, Xattrs: []repo.Xattr{{Name: "user.t", Value: []byte(text)}}}).Encode()); err != nil {
		u.t.Fatal(err)
	}
}

func (u unsyncedRepo) commit(txn *repo.Txn) {
	u.t.Helper()
	if err := txn.Commit(); err != nil {
		u.t.Fatal(err)
	}
}

// A transaction that does not sync leaves tmp/unsynced; a durable one
// syncs because of it and removes it, unless a transaction that does not
// sync is still open, which may yet publish objects unsynced.
func TestUnsyncedMarker(t *testing.T) {
	u := newUnsyncedRepo(t)
	if u.present() {
		t.Fatal("a new repository has the marker")
	}
	fast := u.begin(true)
	u.store(fast, "fast")
	u.commit(fast)
	if !u.present() {
		t.Fatal("no marker after a transaction without syncs")
	}

	// One still open: a durable commit syncs, but the marker stays.
	open := u.begin(true)
	u.store(open, "open")
	durable := u.begin(false)
	u.store(durable, "durable")
	u.commit(durable)
	if !u.present() {
		t.Fatal("a durable commit removed the marker while a transaction without syncs was open")
	}
	u.commit(open)
	// None open: the next durable commit removes it.
	durable = u.begin(false)
	u.store(durable, "durable 2")
	u.commit(durable)
	if u.present() {
		t.Error("the marker outlived a durable commit with no transaction open")
	}
}

// A durable commit that removes the marker after a transaction without
// syncs opened it and before that one locked it does not leave that
// transaction holding a lock on a file no one looks at: it makes the
// marker again, so that the next durable commit still syncs what it
// published.
func TestUnsyncedMarkerRemovedBeforeLock(t *testing.T) {
	u := newUnsyncedRepo(t)
	raced, synced := false, 0
	defer repo.SetUnsyncedHook(func(step string) {
		switch {
		case step == "sync: synced":
			synced++
		case step == "hold: opened" && !raced:
			raced = true
			durable := u.begin(false)
			u.store(durable, "durable")
			u.commit(durable)
			if u.present() {
				t.Fatal("the durable commit left the marker: the race was not run")
			}
		}
	})()
	fast := u.begin(true)
	if !raced {
		t.Fatal("the transaction without syncs never opened the marker")
	}
	u.store(fast, "fast")
	u.commit(fast)
	if !u.present() {
		t.Error("no marker after a transaction without syncs whose first marker was removed before it locked it")
	}
	synced = 0
	durable := u.begin(false)
	u.store(durable, "durable 2")
	u.commit(durable)
	if synced == 0 {
		t.Error("a durable commit after a transaction without syncs did not sync")
	}
	if u.present() {
		t.Error("the marker outlived a durable commit with no transaction open")
	}
}

// A durable commit that opened the marker and found it, by the time it
// locked it, removed and made again by others (another durable commit,
// then a transaction without syncs that is still open) leaves the new
// one in place.
func TestUnsyncedMarkerReplacedBeforeLock(t *testing.T) {
	u := newUnsyncedRepo(t)
	fast := u.begin(true)
	u.store(fast, "fast")
	u.commit(fast)
	var open *repo.Txn
	raced := false
	defer repo.SetUnsyncedHook(func(step string) {
		if step != "sync: opened" || raced {
			return
		}
		raced = true // set first: the nested durable commit below reaches this hook too
		other := u.begin(false)
		u.store(other, "other")
		u.commit(other)
		if u.present() {
			t.Fatal("the other durable commit left the marker: the race was not run")
		}
		open = u.begin(true)
		if !u.present() {
			t.Fatal("no marker with a transaction without syncs open")
		}
	})()
	// Open the old marker; the hook removes it, and a transaction
	// without syncs makes a new one.
	durable := u.begin(false)
	u.store(durable, "durable")
	u.commit(durable)
	if !raced {
		t.Fatal("the durable commit never opened the marker")
	}
	if !u.present() {
		t.Fatal("a durable commit removed a marker it had not opened, while a transaction without syncs held it")
	}
	u.store(open, "open")
	u.commit(open)
	if !u.present() {
		t.Fatal("no marker after a transaction without syncs")
	}
}

// A durable commit that syncs while a transaction without syncs is open,
// which then publishes and ends before the commit is through, leaves the
// marker: what that transaction published after the sync is not durable.
func TestUnsyncedMarkerEndsAfterSync(t *testing.T) {
	u := newUnsyncedRepo(t)
	open := u.begin(true)
	u.store(open, "open")
	ended := false
	defer repo.SetUnsyncedHook(func(step string) {
		if step == "sync: synced" && !ended {
			ended = true
			u.commit(open)
		}
	})()
	durable := u.begin(false)
	u.store(durable, "durable")
	u.commit(durable)
	if !ended {
		t.Fatal("the durable commit never synced")
	}
	if !u.present() {
		t.Fatal("a durable commit removed the marker after a transaction without syncs published objects past its sync")
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

// A transaction without syncs waits for a durable one syncing (which holds
// the marker exclusively) as for the repository lock: should that one
// hang there (stopped, say), the wait fails with ErrLocked after the lock
// timeout, naming the marker, or ends with its context, rather than last,
// deaf to an interrupt, until the other lets go.
func TestUnsyncedMarkerWaitEnds(t *testing.T) {
	u := newUnsyncedRepo(t)
	p := u.r.Path("tmp", "unsynced")
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	begin := func(ctx context.Context) error {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			txn, err := u.r.Begin(ctx, repo.TxnOptions{NoSync: true})
			if err == nil {
				txn.Abort()
			}
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
			<-done
			t.Fatal("a transaction without syncs still waiting for the marker after 10 s")
			return nil
		}
	}
	u.r.SetLockTimeout(100 * time.Millisecond)
	if err := begin(context.Background()); !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), p) {
		t.Errorf("Begin with the marker held: %v, want ErrLocked naming %s", err, p)
	}
	u.r.SetLockTimeout(-1)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if err := begin(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Begin with the marker held and its context cancelled: %v, want context.Canceled", err)
	}
	if ents, err := os.ReadDir(u.r.Path("tmp")); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "txn-") || strings.HasPrefix(e.Name(), "new-") {
				t.Errorf("a transaction that could not begin left %s", e.Name())
			}
		}
	}
}
