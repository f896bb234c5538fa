package repo

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// An object open for reading reads as an *os.File does: io.EOF at the
// end, ReadAt within the file, and errors that are *fs.PathError naming
// the object (which readers tell from corruption). A second Close fails
// and leaves alone a descriptor the number was given to since.
func TestObjFileReadsAsOSFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "obj"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	path := filepath.Join(dir, "obj")
	f, err := openObjectAt(dfd, "obj", path, KindFile, ID{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(f); err != nil || string(b) != "content" {
		t.Fatalf("ReadAll = %q, %v; want content", b, err)
	}
	if n, err := f.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end = %d, %v; want 0, io.EOF", n, err)
	}
	p := make([]byte, 4)
	if n, err := f.ReadAt(p, 3); n != 4 || err != nil || string(p) != "tent" {
		t.Fatalf("ReadAt(4, 3) = %d %q, %v; want 4 tent", n, p[:n], err)
	}
	if n, err := f.ReadAt(p, 5); n != 2 || err != io.EOF {
		t.Fatalf("ReadAt past the end = %d, %v; want 2, io.EOF", n, err)
	}
	if _, err := openObjectAt(dfd, "gone", filepath.Join(dir, "gone"), KindFile, ID{}); !errors.As(err, new(*ObjectMissingError)) {
		t.Fatalf("opening a missing object: %v; want ObjectMissingError", err)
	}

	// A directory in an object's place: EISDIR, as os says it.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := openObjectAt(dfd, "d", filepath.Join(dir, "d"), KindFile, ID{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Read(make([]byte, 1))
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != filepath.Join(dir, "d") || !errors.Is(err, unix.EISDIR) {
		t.Errorf("Read of a directory: %v; want a *fs.PathError naming it, EISDIR", err)
	}
	d.Close()

	fd := f.fd
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The next open takes the number the object had.
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if int(other.Fd()) != fd {
		t.Skipf("descriptor %d not reused (got %d)", fd, other.Fd())
	}
	if err := f.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close: %v; want fs.ErrClosed", err)
	}
	if _, err := f.Read(make([]byte, 1)); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Read after Close: %v; want fs.ErrClosed", err)
	}
	if _, err := other.Stat(); err != nil {
		t.Errorf("the file that reused the descriptor: %v", err)
	}
}
