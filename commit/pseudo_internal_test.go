package commit

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The length of a pseudo file that is a stream (/proc/kmsg) is given from
// what it has to read now: a read that waits for more would hang the
// command past any signal. A pipe whose writer stays open stands for it.
func TestContentLengthDoesNotWaitForMore(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1]) // ends a read that waits, should one
	if _, err := unix.Write(p[1], []byte("abc")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() { got <- contentLength(p[0], 0, 1) }()
	select {
	case s := <-got:
		if want := "4 bytes or more"; s != want {
			t.Errorf("contentLength = %q, want %q", s, want)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("contentLength still reading after 2 s, the writer silent")
	}
}
