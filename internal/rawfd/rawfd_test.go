package rawfd_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
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

// sparseFile writes a file of size bytes whose data is only the blocks at
// offsets data (each 4 KiB of 'x'), the rest holes; it skips the test where
// the filesystem does not report the holes.
func sparseFile(t *testing.T, size int64, data ...int64) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	for _, off := range data {
		if _, err := f.WriteAt(bytes.Repeat([]byte("x"), 4096), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if hole, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE); err != nil || hole >= size {
		t.Skipf("the filesystem of %s reports no holes (%d, %v)", f.Name(), hole, err)
	}
	return f
}

// Extents gives the stretches of data of a sparse file in order, covering
// every byte written and leaving the holes out; a file without holes, or
// shorter than size, is one stretch, and size bounds what is given.
func TestExtents(t *testing.T) {
	const mb = 1 << 20
	f := sparseFile(t, 8*mb, 0, 3*mb, 3*mb+4096, 5*mb)
	var got [][2]int64
	collect := func(start, end int64) error {
		got = append(got, [2]int64{start, end})
		return nil
	}
	if err := rawfd.Extents(int(f.Fd()), 8*mb, collect); err != nil {
		t.Fatal(err)
	}
	var covered int64
	for i, e := range got {
		if e[0] >= e[1] || i > 0 && e[0] < got[i-1][1] {
			t.Fatalf("stretches %v: not in order, or empty", got)
		}
		covered += e[1] - e[0]
	}
	for _, off := range []int64{0, 3 * mb, 3*mb + 4096, 5 * mb} {
		if !slicesContain(got, off, off+4096) {
			t.Errorf("stretches %v leave out the data at %d", got, off)
		}
	}
	if covered > 4*mb {
		t.Errorf("stretches %v cover %d bytes of an 8 MiB file with 16 KiB of data", got, covered)
	}
	got = nil
	if err := rawfd.Extents(int(f.Fd()), 3*mb+100, collect); err != nil {
		t.Fatal(err)
	}
	if last := got[len(got)-1]; last[1] != 3*mb+100 {
		t.Errorf("stretches to size %d: %v, want the last to end there", 3*mb+100, got)
	}

	got = nil
	if err := rawfd.Extents(int(f.Fd()), 9*mb, collect); err != nil || len(got) != 1 || got[0] != [2]int64{0, 9 * mb} {
		t.Errorf("a file shorter than size: %v, %v; want one stretch [0 9 MiB], for the copy to find it short", got, err)
	}

	whole := filepath.Join(t.TempDir(), "whole")
	os.WriteFile(whole, bytes.Repeat([]byte("y"), 100000), 0o644)
	g, err := os.Open(whole)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got = nil
	if err := rawfd.Extents(int(g.Fd()), 100000, collect); err != nil || len(got) != 1 || got[0] != [2]int64{0, 100000} {
		t.Errorf("a file without holes: %v, %v; want one stretch [0 100000]", got, err)
	}
}

func slicesContain(stretches [][2]int64, start, end int64) bool {
	for _, e := range stretches {
		if e[0] <= start && end <= e[1] {
			return true
		}
	}
	return false
}

// newFile creates an empty file and returns its descriptor, closed at the
// end of the test.
func newFile(t *testing.T) (int, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "new")
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, p
}

func allocated(t *testing.T, fd int) (size, bytes int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}

// lastErr gives the bytes of r, err with the last of them, and then
// io.EOF.
type lastErr struct {
	r   *bytes.Reader
	err error
}

func (l *lastErr) Read(p []byte) (int, error) {
	n, _ := l.r.Read(p)
	if l.r.Len() == 0 {
		err := l.err
		l.err = io.EOF
		return n, err
	}
	return n, nil
}

// WriteSparse leaves each 64 KiB of zeros at a 64 KiB offset as a hole,
// the file's end included, writes everything else (zeros not so placed
// too), and returns an error that comes with the stream's last bytes.
func TestWriteSparse(t *testing.T) {
	const mb = 1 << 20
	for _, size := range []int64{8 * mb, 8*mb + 1000} {
		want := make([]byte, size)
		copy(want, "head")
		copy(want[3*mb+100:], "middle, across no boundary")
		copy(want[5*mb-2:], "across a boundary")
		if size%rawfd.HoleRun != 0 {
			copy(want[size-1000:], "in the last, short run, followed by zeros")
		}
		fd, p := newFile(t)
		n, err := rawfd.WriteSparse(rawfd.WriterAt(fd), bytes.NewReader(want), make([]byte, 256<<10))
		if err != nil || n != size {
			t.Fatalf("WriteSparse = %d, %v; want %d, nil", n, err, size)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
			t.Errorf("size %d: the file differs from what was read", size)
		}
		if sz, alloc := allocated(t, fd); sz != size || alloc > 1*mb {
			t.Errorf("size %d: file of size %d with %d bytes allocated; want at most 1 MiB", size, sz, alloc)
		}
	}

	boom := errors.New("boom")
	fd, _ := newFile(t)
	data := bytes.Repeat([]byte("z"), 2*rawfd.HoleRun)
	if _, err := rawfd.WriteSparse(rawfd.WriterAt(fd), &lastErr{bytes.NewReader(data), boom}, make([]byte, rawfd.HoleRun)); !errors.Is(err, boom) {
		t.Errorf("a stream whose last bytes come with an error: %v, want it", err)
	}
}

// CopyExtents copies a sparse file's bytes and keeps its holes, the one
// at its end included; a source shorter than size is an error.
func TestCopyExtents(t *testing.T) {
	const mb = 1 << 20
	src := sparseFile(t, 8*mb, 0, 3*mb+100, 5*mb)
	want, _ := os.ReadFile(src.Name())
	fd, p := newFile(t)
	if err := rawfd.CopyExtents(fd, int(src.Fd()), 8*mb, make([]byte, 4096), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
		t.Error("the copy differs from the source")
	}
	if sz, alloc := allocated(t, fd); sz != 8*mb || alloc > 1*mb {
		t.Errorf("copy of size %d with %d bytes allocated; want 8 MiB with at most 1 MiB", sz, alloc)
	}
	fd2, _ := newFile(t)
	if err := rawfd.CopyExtents(fd2, int(src.Fd()), 9*mb, make([]byte, 4096), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a source shorter than size: %v, want io.ErrUnexpectedEOF", err)
	}

	// A failed copy_file_range is remembered, and a copy that remembers
	// it reads and writes, with the same result.
	var cfrOff atomic.Bool
	_, ap := newFile(t)
	afd, err := unix.Open(ap, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(afd)
	rawfd.CopyExtents(afd, int(src.Fd()), 8*mb, make([]byte, 4096), &cfrOff) // copy_file_range refuses O_APPEND
	if !cfrOff.Load() {
		t.Error("copy_file_range failed and CopyExtents did not remember it")
	}
	fd3, p3 := newFile(t)
	if err := rawfd.CopyExtents(fd3, int(src.Fd()), 8*mb, make([]byte, 4096), &cfrOff); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p3); !bytes.Equal(got, want) {
		t.Error("the copy made by read and write differs from the source")
	}
}
