package rawfd_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/otree/otree/internal/rawfd"
	"golang.org/x/sys/unix"
)

func TestWriterWritesAll(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("rawfd "), 1<<20)
	n, err := rawfd.Writer(fd).Write(data)
	unix.Close(fd)
	if err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(data))
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("the file holds %d bytes, not the %d written", len(got), len(data))
	}
}

// A pipe's reader gone: the write fails and says how much went through.
func TestWriterReportsErrors(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(p[0])
	defer unix.Close(p[1])
	n, err := rawfd.Writer(p[1]).Write([]byte("lost"))
	if !errors.Is(err, unix.EPIPE) || n != 0 {
		t.Fatalf("Write to a pipe without reader = %d, %v; want 0, EPIPE", n, err)
	}
}
