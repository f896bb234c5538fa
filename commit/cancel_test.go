package commit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/ctxread/ctxreadtest"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// A cancel stops an archive-mode commit of a large file soon, rather than
// once all of it is hashed and compressed: cancelled a part of the way
// into the file, the commit reads little more of it and returns the
// context's error naming the file, the branch stays where it was and
// nothing is left staged in tmp/.
func TestCancelStopsLargeArchiveCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and commits 32 MiB")
	}
	const size, at = 32 << 20, 4 << 20
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(src, "big"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("otree cancels a long compression\n"), (1<<20)/33+1)[:1<<20]
	for i := 0; i < size>>20; i++ {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	opts := func(path string) commit.Options {
		return commit.Options{Branch: "main", NoSync: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: path}}}
	}

	r := newRepo(t, repo.ModeArchive)
	small := t.TempDir()
	if err := os.WriteFile(filepath.Join(small, "f"), []byte("small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first, err := commit.Commit(ctx, r, opts(small))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var c *ctxreadtest.CancelAfter
	defer commit.SetLargeReadHook(func(rd io.Reader) io.Reader {
		c = &ctxreadtest.CancelAfter{R: rd, At: at, Cancel: cancel}
		return c
	})()
	_, err = commit.Commit(cctx, r, opts(src))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "big") {
		t.Fatalf("cancelled commit: %v, want context.Canceled naming big", err)
	}
	c.CheckStoppedSoon(t, "the commit", size)
	if got, err := r.ReadRef("main"); err != nil || got != first.Commit {
		t.Errorf("after the cancelled commit main is %s, %v; want %s", got, err, first.Commit)
	}
	ents, err := os.ReadDir(r.Path("tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "txn-") || strings.HasPrefix(e.Name(), "new-") {
			t.Errorf("staging left in tmp/: %s", e.Name())
		}
	}
}

// waitingReader is a pipe whose writer stopped: its first Read says so on
// reading and then waits for release.
type waitingReader struct {
	reading, release chan struct{}
	once             sync.Once
}

func (w *waitingReader) Read(p []byte) (int, error) {
	w.once.Do(func() { close(w.reading) })
	<-w.release
	return 0, io.ErrUnexpectedEOF
}

// A cancel ends a commit whose tar Source.Reader waits for bytes that do
// not come (a pipe, a stalled download): Commit returns the context's
// error naming the source without waiting for the Read, and the branch
// stays where it was.
func TestCancelEndsCommitWaitingOnTarReader(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	w := &waitingReader{reading: make(chan struct{}), release: make(chan struct{})}
	defer close(w.release)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := commit.Commit(cctx, r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceTar, Path: "stalled.tar", Reader: w}}})
		done <- err
	}()
	<-w.reading
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("Commit still waits on its tar reader a minute after the cancel")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stalled.tar") {
		t.Fatalf("cancelled commit: %v, want context.Canceled naming stalled.tar", err)
	}
	if _, err := r.ReadRef("main"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("after the cancelled commit main: %v, want not found", err)
	}
}

// A tar source named by path that is a pipe (what a shell's <(...) gives)
// is read as a pipe, so a cancel ends a commit waiting on it too.
func TestCancelEndsCommitWaitingOnTarPipePath(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	path := fmt.Sprintf("/proc/self/fd/%d", pr.Fd())
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := commit.Commit(cctx, r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceTar, Path: path}}})
		done <- err
	}()
	// The start of a header: once the commit has read it, it waits for
	// the rest.
	if _, err := pw.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := unix.IoctlGetInt(int(pr.Fd()), unix.TIOCINQ) // FIONREAD: bytes unread
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("Commit still waits on its tar pipe a minute after the cancel")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), path) {
		t.Fatalf("cancelled commit: %v, want context.Canceled naming %s", err, path)
	}
}

// A tar source that is a FIFO no writer has opened (its producer died
// before) keeps open(2) waiting: a cancel ends that wait too, and the
// repository lock the commit held is free again.
func TestCancelEndsCommitWaitingToOpenFIFO(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	fifo := filepath.Join(t.TempDir(), "in.tar")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := commit.Commit(cctx, r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceTar, Path: fifo}}})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a hang, not a slow machine
		// Release the open, so that the test ends.
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		t.Fatal("Commit still waits to open its tar FIFO a minute after the cancel")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), fifo) {
		t.Fatalf("cancelled commit: %v, want context.DeadlineExceeded naming %s", err, fifo)
	}
	r.SetLockTimeout(0)
	lk, err := r.LockExclusive(ctx)
	if err != nil {
		t.Fatalf("repository lock after the cancelled commit: %v", err)
	}
	lk.Unlock()
	// The open left behind ends too, rather than waiting for a writer.
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines a while after the cancelled commit, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ending the wait to open a tar FIFO leaves alone every other reader of
// that FIFO: a process waiting for the same producer still gets the
// producer's bytes, not an end of file no writer sent.
func TestCancelOpenOfFIFOLeavesOtherReaders(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	fifo := filepath.Join(t.TempDir(), "in.tar")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	other := exec.Command("cat", fifo)
	other.Stdout = &out
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- other.Wait() }()
	defer func() {
		other.Process.Kill()
		<-exited
	}()
	time.Sleep(100 * time.Millisecond) // cat is waiting in open(2)
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := commit.Commit(cctx, r, commit.Options{Branch: "main", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceTar, Path: fifo}}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled commit: %v, want context.DeadlineExceeded", err)
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("the other reader of %s ended (%v, %q read) with no writer", fifo, err, out.String())
	case <-time.After(500 * time.Millisecond):
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("data")
	w.Close()
	select {
	case err := <-exited:
		exited <- err
		if err != nil || out.String() != "data" {
			t.Fatalf("the other reader of %s: %v, read %q, want \"data\"", fifo, err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the other reader of %s still waits after its writer closed", fifo)
	}
}
