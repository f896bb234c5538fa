package ctxread

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
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
