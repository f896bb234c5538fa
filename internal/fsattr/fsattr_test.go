package fsattr

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/otree/otree/internal/fsattr/fsattrtest"
	"golang.org/x/sys/unix"
)

// An immutable directory refuses a new entry and takes one again once
// cleared; setting or clearing twice is harmless.
func TestSetImmutable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting the immutable flag needs root")
	}
	dir := t.TempDir()
	fsattrtest.Require(t, dir, 'i')
	fsattrtest.Clear(t, dir, 'i')
	for range 2 {
		if err := SetImmutable(dir, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); !errors.Is(err, unix.EPERM) {
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

// SetTopDir sets FS_TOPDIR_FL, as lsattr shows it, and leaves the other
// flags as they were.
func TestSetTopDir(t *testing.T) {
	dir := t.TempDir()
	fsattrtest.Require(t, dir, 'T')
	flags := func() uint32 {
		t.Helper()
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		f, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
		if err != nil {
			t.Fatalf("reading the flags of %s: %v", dir, err)
		}
		return f
	}
	before := flags()
	for range 2 {
		if err := SetTopDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	if after := flags(); after != before|topDir {
		t.Errorf("flags %#x, want %#x", after, before|topDir)
	}
	if !fsattrtest.Has(t, dir, 'T') {
		t.Errorf("lsattr does not show T on %s", dir)
	}
}
