package cachefile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A written file maps back to its body; a missing one is ErrNotExist, and a
// short, foreign, flipped or truncated one is ErrDamaged.
func TestMapWrite(t *testing.T) { eachLoad(t, testMapWrite) }

func testMapWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	p := filepath.Join(dir, "c")
	if _, err := Map(p, "magic"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := Write(p, []byte("magic-body")); err != nil {
		t.Fatal(err)
	}
	f, err := Map(p, "magic")
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Body) != "-body" {
		t.Errorf("body %q, want %q", f.Body, "-body")
	}
	f.Close()
	good, _ := os.ReadFile(p)
	if err := Write(p, []byte("other-body")); err != nil {
		t.Fatal(err)
	}
	foreign, _ := os.ReadFile(p)
	for name, b := range map[string][]byte{
		"short":     good[:6],
		"truncated": good[:len(good)-1],
		"flipped":   append([]byte("magic-bodz"), good[len(good)-4:]...),
		"foreign":   foreign, // a valid checksum, another magic
	} {
		os.WriteFile(p, b, 0o644)
		if _, err := Map(p, "magic"); !errors.Is(err, ErrDamaged) {
			t.Errorf("%s: %v, want ErrDamaged", name, err)
		}
	}
}

// A cache file another user wrote is not mapped, whatever it holds; one of
// root's or this user's is.
func TestMapOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	p := filepath.Join(t.TempDir(), "c")
	if err := Write(p, []byte("magic-body")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		uid  int
		want error
	}{{65534, ErrOtherOwner}, {0, nil}} {
		if err := os.Chown(p, c.uid, 0); err != nil {
			t.Fatal(err)
		}
		f, err := Map(p, "magic")
		if !errors.Is(err, c.want) {
			t.Errorf("owned by %d: %v, want %v", c.uid, err, c.want)
		}
		f.Close()
	}
}

// A file truncated in place while its content is held (by truncate, or cp
// over it) leaves that content as it was read: a mapping of the file
// itself would fault on the next access, killing the process.
func TestMapTruncatedWhileHeld(t *testing.T) { eachLoad(t, testMapTruncatedWhileHeld) }

func testMapTruncatedWhileHeld(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c")
	body := make([]byte, 1<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	if err := Write(p, append([]byte("magic"), body...)); err != nil {
		t.Fatal(err)
	}
	f, err := Map(p, "magic")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Body, body) {
		t.Error("the body read differs from the one written once the file is truncated")
	}
}

// A file cut short between the fstat that sized it and the read, to
// nothing as well as to part of it, is damaged, not an error to report.
func TestLoadCutShort(t *testing.T) { eachLoad(t, testLoadCutShort) }

func testLoadCutShort(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c")
	for _, keep := range []int64{0, 100} {
		if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, keep); err != nil {
			t.Fatal(err)
		}
		if data, err := load(f, 4096); !errors.Is(err, errShort) {
			t.Errorf("cut to %d bytes: %d bytes, %v; want errShort", keep, len(data), err)
		}
		f.Close()
	}
}

// eachLoad runs test with cache files copied into a memfd, and read into
// anonymous memory as where memfds are refused.
func eachLoad(t *testing.T, test func(t *testing.T)) {
	t.Run("memfd", test)
	t.Run("anonymous", func(t *testing.T) {
		defer func(old func(string, int) (int, error)) { memfdCreate = old }(memfdCreate)
		memfdCreate = func(string, int) (int, error) { return -1, unix.ENOSYS }
		test(t)
	})
}
