package fsattr

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// An immutable directory refuses a new entry and takes one again once
// cleared; setting or clearing twice is harmless.
func TestSetImmutable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting the immutable flag needs root")
	}
	dir := t.TempDir()
	t.Cleanup(func() { SetImmutable(dir, false) })
	for range 2 {
		if err := SetImmutable(dir, true); err != nil {
			t.Fatal(err)
		}
	}
	err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if err == nil {
		t.Skip("this filesystem has no immutable flag")
	}
	if !errors.Is(err, unix.EPERM) {
		t.Fatalf("creating in an immutable directory: %v, want EPERM", err)
	}
	for range 2 {
		if err := SetImmutable(dir, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Errorf("creating once cleared: %v", err)
	}
	if err := SetImmutable(filepath.Join(dir, "x"), true); err == nil {
		t.Error("a file, not a directory, was accepted")
	}
}
