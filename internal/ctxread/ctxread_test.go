package ctxread

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A read stops with the context's error within Every bytes of its
// cancellation, and a context never done reads all.
func TestReaderStopsWithinEvery(t *testing.T) {
	data := make([]byte, 4*Every)
	ctx, cancel := context.WithCancel(context.Background())
	r := Reader(ctx, bytes.NewReader(data))
	buf := make([]byte, 4<<10)
	read := 0
	for read < Every+Every/2 {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		read += n
	}
	cancel()
	for {
		n, err := r.Read(buf)
		read += n
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil {
			t.Fatalf("read after cancel: %v", err)
		}
	}
	if read > 2*Every {
		t.Errorf("read %d bytes, more than %d after the cancel", read, Every)
	}
	if got, err := io.ReadAll(Reader(context.Background(), bytes.NewReader(data))); err != nil || len(got) != len(data) {
		t.Errorf("uncancellable read: %d bytes, %v", len(got), err)
	}
}

// A Blocking reader passes a pipe's bytes through, and a Read waiting on
// the pipe for a writer that sends nothing more returns the context's
// error once it is cancelled.
func TestBlockingStopsWaitingRead(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r := Blocking(ctx, pr)
	pw.Write([]byte("hello"))
	buf := make([]byte, 16)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v; want hello", buf[:n], err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(buf)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // most often, the Read waits by now
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("waiting Read after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Read waiting on the pipe went on after the cancel")
	}
	pw.Write([]byte("late"))
	if n, err := r.Read(buf); !errors.Is(err, context.Canceled) {
		t.Errorf("Read after the cancel = %q, %v; want context.Canceled", buf[:n], err)
	}
}

// MayWait tells pipes and arbitrary readers, which Blocking is for, from
// regular files and bytes in memory, which never wait.
func TestMayWait(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct {
		name string
		x    any
		want bool
	}{
		{"pipe reader", pr, true},
		{"pipe writer", pw, true},
		{"another reader", io.MultiReader(), true},
		{"regular file", f, false},
		{"bytes.Reader", bytes.NewReader(nil), false},
		{"strings.Reader", strings.NewReader(""), false},
		{"bytes.Buffer", new(bytes.Buffer), false},
		{"io.Discard", io.Discard, false},
	} {
		if got := MayWait(c.x); got != c.want {
			t.Errorf("MayWait(%s) = %v, want %v", c.name, got, c.want)
		}
	}
}

// stalled is a writer whose Writes after the first wait for release, as
// on a pipe its reader stopped reading; waiting is closed when one waits.
type stalled struct {
	got              []byte
	waiting, release chan struct{}
}

func (s *stalled) Write(p []byte) (int, error) {
	if s.got == nil {
		s.got = append([]byte{}, p...)
		return len(p), nil
	}
	close(s.waiting)
	<-s.release
	return 0, io.ErrClosedPipe
}

// A BlockingWriter passes bytes through, and a Write waiting on a writer
// that takes nothing more returns the context's error once it is
// cancelled.
func TestBlockingWriterStopsWaitingWrite(t *testing.T) {
	s := &stalled{waiting: make(chan struct{}), release: make(chan struct{})}
	defer close(s.release)
	ctx, cancel := context.WithCancel(context.Background())
	w := BlockingWriter(ctx, s)
	if n, err := w.Write([]byte("hello")); n != 5 || err != nil || string(s.got) != "hello" {
		t.Fatalf("Write = %d, %v; wrote %q", n, err, s.got)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte("more"))
		done <- err
	}()
	<-s.waiting
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("waiting Write after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("a waiting Write went on after the cancel")
	}
}
