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
// passes (negative: until ctx is done). what names the lock in errors.
// waiting, if set, runs once when the wait begins.
func flock(ctx context.Context, fd int, how int, timeout time.Duration, what string, waiting func()) error {
	deadline := time.Now().Add(timeout)
	for first := true; ; first = false {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("locking %s: %w", what, err)
		}
		if timeout >= 0 && time.Now().After(deadline) {
			return fmt.Errorf("%w: %s is held by another process (waited %s)", ErrLocked, what, timeout)
		}
		if first && waiting != nil {
			waiting()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for lock on %s: %w", what, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// Lock is a held repository lock (one or more flock'ed files).
type Lock struct {
	files []*os.File
	// release, if set, runs once before the files are closed: it drops
	// a LockRefs lock from its Repo's count (countRefsLock).
	release func()
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil {
		return nil
	}
	if l.release != nil {
		l.release()
		l.release = nil
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
	if err := r.flockWaiting(ctx, f, how, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// flockWaiting takes an flock on f, the file at path, waiting up to the
// lock timeout, and reporting the wait to the logger.
func (r *Repo) flockWaiting(ctx context.Context, f *os.File, how int, path string) error {
	timeout := time.Duration(r.lockTimeout.Load())
	waiting := func() {
		// The wait may be long (without limit, at
		// core.lock-timeout-secs=-1): say what it is for.
		if l := r.log.Load(); l != nil {
			l.Info("waiting for the repository lock another process holds", "lock", path, "timeout", timeoutText(timeout))
		}
	}
	return flock(ctx, int(f.Fd()), how, timeout, path, waiting)
}

// LockPath takes an flock on the file or directory at path (a file is
// created if missing), exclusively or shared, as the repository's own
// locks are taken: the wait is reported to the logger (SetLogger), ends
// with ctx, and fails with ErrLocked after the lock timeout
// (SetLockTimeout, core.lock-timeout-secs). It is for locks of files
// that packages beside repo keep in the repository, such as the delta
// indexes' directory.
func (r *Repo) LockPath(ctx context.Context, path string, exclusive bool) (*Lock, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	f, err := r.lockFile(ctx, path, exclusive)
	if err != nil {
		return nil, err
	}
	l := &Lock{}
	if f != nil {
		l.files = append(l.files, f)
	}
	return l, nil
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
// Every ref write holds the repository lock shared, so none can happen
// while it is held, not even through the same Repo: a ref write waits for
// it like any other writer.
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
//
// Every ref write takes this lock for itself when the Repo it goes through
// does not hold it (see SetRef), so it only needs taking to span a read
// and a write. It is the Repo's, as an flock is its holder's: while one
// goroutine holds it, ref writes through the same Repo from any goroutine
// go ahead without waiting (and Unlock waits for them to end), and ones
// through another Repo of the same repository wait as another process's
// do.
func (r *Repo) LockRefs(ctx context.Context) (*Lock, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	l, err := r.take(ctx, refsLockSteps...)
	if err != nil {
		return nil, err
	}
	r.countRefsLock(l)
	return l, nil
}

// refsLockSteps are the locks LockRefs takes.
var refsLockSteps = []lockStep{{"lock", false}, {"refs", true}}

// countRefsLock counts l, just taken by LockRefs, among the refs locks
// held through this Repo (refsHeld) until it is unlocked. Unlocking the
// last of them waits for the ref writes that went ahead under it.
func (r *Repo) countRefsLock(l *Lock) {
	r.refsMu.Lock()
	r.refsHeld++
	r.refsMu.Unlock()
	l.release = func() {
		r.refsMu.Lock()
		r.refsHeld--
		last := r.refsHeld == 0
		r.refsMu.Unlock()
		if last {
			// Taking the write side waits for every borrowing write
			// (RLock) to end; there is nothing to do while holding it.
			r.refsBorrow.Lock()
			//lint:ignore SA2001 the empty critical section is the wait
			r.refsBorrow.Unlock()
		}
	}
}

// holdRefs makes sure a ref write holds the refs lock, and returns what
// releases it: without it, a ref could move under a LockRefs holder
// between its read and its write. When LockRefs holds it through this
// Repo, the write goes ahead under that (which is not let go until the
// write is done); otherwise holdRefs takes steps, which are refsLockSteps
// outside a transaction and the refs lock alone in one, which holds the
// repository lock already. The wait is bounded by the lock timeout
// (SetLockTimeout). A repository whose refs/ cannot be written is refused
// first (CheckWritableAt).
func (r *Repo) holdRefs(steps ...lockStep) (func(), error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	if err := r.CheckWritableAt("refs"); err != nil {
		return nil, err
	}
	r.refsMu.Lock()
	if r.refsHeld > 0 {
		// Never waits: refsBorrow is locked only once refsHeld is 0.
		r.refsBorrow.RLock()
		r.refsMu.Unlock()
		return r.refsBorrow.RUnlock, nil
	}
	r.refsMu.Unlock()
	l, err := r.take(context.Background(), steps...)
	if err != nil {
		return nil, err
	}
	return func() { l.Unlock() }, nil
}

// timeoutText says how long a lock wait may last.
func timeoutText(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return d.String()
}
