// Package fsattr sets inode flags, as chattr does: the immutable flag
// otree puts on deployment directories, and the top-directory flag a
// repository's tmp/ and the benchmarks' scratch directories carry.
package fsattr

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Flags of linux/fs.h.
const (
	immutable = 0x10    // FS_IMMUTABLE_FL, chattr +i
	topDir    = 0x20000 // FS_TOPDIR_FL, chattr +T
)

// SetImmutable sets (on) or clears the immutable flag of the directory
// dir: while it is set, nothing can be created, removed or renamed in the
// directory itself. A filesystem without inode flags, and setting the flag
// without CAP_LINUX_IMMUTABLE (in a user namespace), leave the directory
// as it is without an error: the flag only guards against mistakes.
func SetImmutable(dir string, on bool) error {
	err := setFlag(dir, immutable, on)
	if on && errors.Is(err, unix.EPERM) {
		return nil
	}
	return err
}

// SetTopDir sets the top-directory flag of dir: ext4 then spreads the
// directories made in dir over its block groups, as it does top-level
// ones. On an ext4 without a journal, allocating inodes next to ones just
// deleted scans them all (recently_deleted): a repository's staging
// directories, and a benchmark that makes and deletes a tree per run,
// start elsewhere with it. Filesystems without the flag ignore it.
func SetTopDir(dir string) error { return setFlag(dir, topDir, true) }

// setFlag sets (on) or clears flag on the directory dir.
func setFlag(dir string, flag uint32, on bool) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dir, err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		if unsupported(err) {
			return nil
		}
		return fmt.Errorf("reading the flags of %s: %w", dir, err)
	}
	want := flags &^ flag
	if on {
		want |= flag
	}
	if want == flags {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(want)); err != nil && !unsupported(err) {
		return fmt.Errorf("setting the flags of %s: %w", dir, err)
	}
	return nil
}

func unsupported(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)
}
