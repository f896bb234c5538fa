package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// unsyncedMarker (in tmp/) exists while objects published without a sync
// (TxnOptions.NoSync, --fsync=false, --disable-fsync) may not be durable.
// A durable transaction may depend on such objects without writing them:
// it deduplicates against them, or takes the stat cache's word for them.
// So before it publishes or writes a ref it syncs the filesystem when the
// marker is there (docs/FORMAT.md §11).
const unsyncedMarker = "unsynced"

// unsyncedHook, when set (by tests), is called at the steps of the
// marker's protocol where another process may act: "hold: opened" (a
// transaction that does not sync has opened the marker, not yet locked
// it), "sync: opened" (a durable one has opened it) and "sync: synced"
// (it has synced the filesystem).
var unsyncedHook func(step string)

// holdUnsynced creates the marker for a transaction that does not sync, and
// holds it flock'ed shared until the transaction ends, so that no one
// removes it while that transaction may still publish. A durable
// transaction syncing holds it exclusively: that wait is bounded as the
// repository lock's is, by ctx and the lock timeout.
func (r *Repo) holdUnsynced(ctx context.Context) (*os.File, error) {
	p := r.Path("tmp", unsyncedMarker)
	for {
		f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("marking unsynced objects: %w", err)
		}
		if unsyncedHook != nil {
			unsyncedHook("hold: opened")
		}
		if err := r.flockWaiting(ctx, f, unix.LOCK_SH, p); err != nil {
			f.Close()
			return nil, fmt.Errorf("marking unsynced objects: %w", err)
		}
		// A durable transaction may have removed it between the open and
		// the lock: then the lock is on a file no one will look at.
		if sameFile(f, p) {
			return f, nil
		}
		f.Close()
	}
}

// syncUnsynced makes durable whatever transactions that do not sync have
// published, when the marker says there may be such objects, and removes
// the marker unless one of them is still running.
//
// It takes the marker's flock before the sync and holds it until the
// marker is gone: taken after, it could find free a marker whose last
// holder published objects after the sync and ended before the lock, and
// remove the only record of them. While it is held, a transaction without
// syncs that begins waits for the sync (holdUnsynced), then makes a new
// marker.
func (r *Repo) syncUnsynced() error {
	p := r.Path("tmp", unsyncedMarker)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		defer f.Close()
	}
	if unsyncedHook != nil {
		unsyncedHook("sync: opened")
	}
	// No transaction without syncs holds it, and it is still the marker
	// (not one removed since the open, with a new one made in its place).
	free := f != nil && unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil && sameFile(f, p)
	// A marker this user cannot open still asks for the sync.
	if err := unix.Syncfs(r.objects()); err != nil {
		return fmt.Errorf("syncing objects published without a sync in %s: %w", r.Path("objects"), err)
	}
	if unsyncedHook != nil {
		unsyncedHook("sync: synced")
	}
	if free {
		// Not synced: should the removal be lost, the next durable
		// transaction only syncs once more.
		os.Remove(p)
	}
	return nil
}

// sameFile tells whether the open f is the file at p.
func sameFile(f *os.File, p string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(p, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}
