package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// Lock is a held repository lock (one or more flock'ed files).
type Lock struct{ files []*os.File }

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil {
		return nil
	}
	var first error
	for i := len(l.files) - 1; i >= 0; i-- {
		// Closing the descriptor drops its flock.
		if err := l.files[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	l.files = nil
	return first
}

// lockFile takes an flock on the file at path (created if missing).
func (r *Repo) lockFile(ctx context.Context, path string, exclusive bool) (*os.File, error) {
	f, cerr := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if cerr != nil {
		// A read-only repository: existing files and directories can
		// still be flocked.
		var err error
		f, err = os.Open(path)
		if errors.Is(err, fs.ErrNotExist) && (errors.Is(cerr, unix.EROFS) || errors.Is(cerr, unix.EACCES)) {
			// No lock file, and none can be made: no process can write
			// to this repository either, so there is nothing to
			// exclude; whatever writes it later fails on the same
			// filesystem or permissions.
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("opening lock %s: %w", path, err)
		}
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := flock(ctx, int(f.Fd()), how, time.Duration(r.lockTimeout.Load()), path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// take acquires the named locks in order, releasing all on failure.
func (r *Repo) take(ctx context.Context, steps ...lockStep) (*Lock, error) {
	l := &Lock{}
	for _, s := range steps {
		f, err := r.lockFile(ctx, r.Path(s.name), s.exclusive)
		if err != nil {
			l.Unlock()
			return nil, err
		}
		if f != nil {
			l.files = append(l.files, f)
		}
	}
	return l, nil
}

type lockStep struct {
	name      string
	exclusive bool
}

// The repository lock is "lock". Whoever wants it exclusively first takes
// "lock.intent" exclusively and keeps it; new shared lockers pass through
// "lock.intent" shared, so a waiting prune is not starved by a steady
// stream of commits.

// LockShared takes the repository lock shared: any number of transactions
// may hold it together, but not while prune holds it exclusively.
func (r *Repo) LockShared(ctx context.Context) (*Lock, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	l, err := r.take(ctx, lockStep{"lock.intent", false}, lockStep{"lock", false})
	if err != nil {
		return nil, err
	}
	// The intent lock has done its job once the shared lock is held.
	if len(l.files) == 2 {
		l.files[0].Close()
		l.files = l.files[1:]
	}
	return l, nil
}

// LockExclusive takes the repository lock exclusively (prune, fsck --delete).
func (r *Repo) LockExclusive(ctx context.Context) (*Lock, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	return r.take(ctx, lockStep{"lock.intent", true}, lockStep{"lock", true})
}

// LockRefs serialises ref updates: whoever holds it may read a ref, decide,
// and write it (SetRef) without another process moving it in between. It
// also holds the repository lock shared, so prune cannot delete the commit
// being pointed at; it skips the intent lock, because a transaction that
// already holds the repository lock shared takes it too.
func (r *Repo) LockRefs(ctx context.Context) (*Lock, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	return r.take(ctx, lockStep{"lock", false}, lockStep{"refs", true})
}
