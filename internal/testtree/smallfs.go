package testtree

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/otree/otree/internal/fsattr"
	"golang.org/x/sys/unix"
)

// SmallFS mounts a tmpfs of size bytes for the test and returns its
// directory: a filesystem whose free space is exact and that nothing else
// writes to. It skips the test without root (CI runs as root).
func SmallFS(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("none", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// FillTo writes the file "fill" into dir so that its filesystem has about
// free bytes available.
func FillTo(t testing.TB, dir string, free int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	n := int64(st.Bavail)*int64(st.Bsize) - free
	if err := os.WriteFile(filepath.Join(dir, "fill"), make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ClearImmutable arranges for the immutable flag (chattr +i, which otree
// sets on deployment directories) to be cleared on every directory under
// root when the test ends, before the temporary directories holding root
// are removed.
func ClearImmutable(t testing.TB, root string) {
	t.Cleanup(func() {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				SetImmutable(p, false)
			}
			return nil
		})
	})
}

// SetImmutable sets or clears the immutable flag of directory dir, for a
// test that changes what otree made immutable. Errors are ignored: where
// the flag cannot be read or set, it is not set either.
func SetImmutable(dir string, on bool) { fsattr.SetImmutable(dir, on) }
