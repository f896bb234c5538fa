package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteFileReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ref")
	for _, content := range []string{"first\n", "second, longer\n", ""} {
		if err := WriteFile(p, []byte(content), 0o640, true); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("content %q, %v; want %q", got, err, content)
		}
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(ents))
	}
}

// A staged file is not in its place until Replace; Abort leaves the
// place as it was and nothing beside it.
func TestStageReplaceAbort(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sa, err := Stage(a, []byte("new a"), 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := Stage(b, []byte("new b"), 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(a); string(got) != "old" {
		t.Errorf("staging replaced %s: %q", a, got)
	}
	sb.Abort()
	if err := sa.Replace(); err != nil {
		t.Fatal(err)
	}
	ga, _ := os.ReadFile(a)
	gb, _ := os.ReadFile(b)
	if string(ga) != "new a" || string(gb) != "old" {
		t.Errorf("a = %q (want new a), b = %q (want old)", ga, gb)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("directory holds %d entries, want a and b alone", len(ents))
	}
}

func TestWriteFileErrorNamesPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing-dir", "f")
	err := WriteFile(p, []byte("x"), 0o644, true)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want an error naming %s", err, p)
	}
	if err := SyncDir(filepath.Dir(p)); err == nil || !strings.Contains(err.Error(), "missing-dir") {
		t.Fatalf("SyncDir of a missing directory: %v", err)
	}
}

func TestRemoveAbandoned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "staging")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(held.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if RemoveAbandoned(dir) {
		t.Fatal("removed a directory whose lock is held")
	}
	held.Close() // the holder dies
	if !RemoveAbandoned(dir) {
		t.Fatal("kept an abandoned directory")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("still there: %v", err)
	}
	if RemoveAbandoned(dir) {
		t.Fatal("reported removing what does not exist")
	}
}

// MkdirAll creates every missing directory, with sync or without; an
// existing path is no error, and a file in the way is. (That it syncs the
// parents is TestNewDirectoriesSynced's, under strace.)
func TestMkdirAll(t *testing.T) {
	base := t.TempDir()
	p := filepath.Join(base, "a", "b", "c")
	for _, sync := range []bool{true, false} {
		if err := MkdirAll(p, 0o755, sync); err != nil {
			t.Fatalf("sync=%v: %v", sync, err)
		}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			t.Fatalf("sync=%v: %s not made: %v", sync, p, err)
		}
	}
	f := filepath.Join(base, "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(filepath.Join(f, "x"), 0o755, true); err == nil {
		t.Error("MkdirAll through a file succeeded")
	}
}

// MkdirAll that fails part-way (here: the last name is too long) removes
// the directories it had made; MakeDirs returns those it made, deepest
// first, and RemoveDirs takes them away again.
func TestMkdirAllLeavesNothingOnFailure(t *testing.T) {
	root := t.TempDir()
	if err := MkdirAll(filepath.Join(root, "a", "b", strings.Repeat("x", 256)), 0o755, true); err == nil {
		t.Fatal("MkdirAll of a 256-byte name succeeded")
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("a failed MkdirAll left %d entries", len(ents))
	}
	made, err := MakeDirs(filepath.Join(root, "a", "b"), 0o755, false)
	if err != nil || len(made) != 2 || made[0] != filepath.Join(root, "a", "b") {
		t.Fatalf("MakeDirs = %q, %v; want a/b then a", made, err)
	}
	RemoveDirs(made)
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("RemoveDirs left %d entries", len(ents))
	}
}

func TestWriteNewRefusesExistingAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := WriteNew(p, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(p, []byte("other\n"), 0o600); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("writing over an existing file: %v, want an error matching fs.ErrExist naming %s", err, p)
	}
	got, err := os.ReadFile(p)
	if fi, _ := os.Stat(p); err != nil || string(got) != "secret\n" || fi.Mode().Perm() != 0o600 {
		t.Errorf("content %q (%v), mode %v; want the first write's, 0600", got, err, fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(ents))
	}
}

// CreateNew's file, unnamed or under a temporary name, is at its path
// only once Link names it, which refuses an existing file; Close leaves
// no temporary name behind, linked or not.
func TestCreateNewBothWays(t *testing.T) {
	for _, unnamed := range []bool{true, false} {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		f, err := CreateNew(p, unnamed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("unnamed=%v: %s is there before Link (%v)", unnamed, p, err)
		}
		if err := f.Link(true); err != nil {
			t.Fatalf("unnamed=%v: %v", unnamed, err)
		}
		f.Close()
		if b, err := os.ReadFile(p); err != nil || string(b) != "data" {
			t.Errorf("unnamed=%v: %s holds %q (%v)", unnamed, p, b, err)
		}
		g, err := CreateNew(p, unnamed)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Link(true); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), p) {
			t.Errorf("unnamed=%v: Link over an existing file: %v, want an error matching fs.ErrExist naming %s", unnamed, err, p)
		}
		g.Close()
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("unnamed=%v: directory holds %d entries, want only the file", unnamed, len(ents))
		}
	}
}

// Replace puts CreateNew's file in place of an existing one, leaving no
// temporary name behind, unnamed or not.
func TestCreateNewReplace(t *testing.T) {
	for _, unnamed := range []bool{true, false} {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := CreateNew(p, unnamed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("new")); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "old" {
			t.Errorf("unnamed=%v: %s holds %q before Replace", unnamed, p, b)
		}
		if err := f.Replace(true); err != nil {
			t.Fatalf("unnamed=%v: %v", unnamed, err)
		}
		f.Close()
		if b, err := os.ReadFile(p); err != nil || string(b) != "new" {
			t.Errorf("unnamed=%v: %s holds %q (%v), want \"new\"", unnamed, p, b, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("unnamed=%v: directory holds %d entries, want only the file", unnamed, len(ents))
		}
	}
}
