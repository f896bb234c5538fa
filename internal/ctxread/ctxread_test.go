package ctxread

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
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
