package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lockPoll is how often a blocked lock is retried.
const lockPoll = 20 * time.Millisecond

// flock takes an flock(2) lock on fd, waiting until ctx is done or timeout
// passes. what names the lock in errors.
func flock(ctx context.Context, fd int, how int, timeout time.Duration, what string) error {
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("locking %s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s is held by another process (waited %s)", ErrLocked, what, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for lock on %s: %w", what, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// Lock is a held repository lock.
type Lock struct{ f *os.File }

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}

// lockFile takes a lock on the file at path (created if missing).
func (r *Repo) lockFile(ctx context.Context, path string, exclusive bool) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		// A read-only repository: directories can still be flocked.
		f, err = os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("opening lock %s: %w", path, err)
		}
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := flock(ctx, int(f.Fd()), how, r.lockTimeout, path); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f}, nil
}

// LockShared takes the repository lock shared: any number of transactions
// may hold it together, but not while prune holds it exclusively.
func (r *Repo) LockShared(ctx context.Context) (*Lock, error) {
	return r.lockFile(ctx, r.Path("lock"), false)
}

// LockExclusive takes the repository lock exclusively (prune, fsck --delete).
func (r *Repo) LockExclusive(ctx context.Context) (*Lock, error) {
	return r.lockFile(ctx, r.Path("lock"), true)
}

// LockRefs serialises ref updates: whoever holds it may read a ref, decide,
// and write it without another process moving it in between.
func (r *Repo) LockRefs(ctx context.Context) (*Lock, error) {
	return r.lockFile(ctx, r.Path("refs"), true)
}
