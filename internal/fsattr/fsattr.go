// Package fsattr sets inode flags, as chattr does: here the immutable flag
// otree puts on deployment directories.
package fsattr

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// immutable is FS_IMMUTABLE_FL of linux/fs.h (chattr +i).
const immutable = 0x10

// SetImmutable sets (on) or clears the immutable flag of the directory
// dir: while it is set, nothing can be created, removed or renamed in the
// directory itself. A filesystem without inode flags, and setting the flag
// without CAP_LINUX_IMMUTABLE (in a user namespace), leave the directory
// as it is without an error: the flag only guards against mistakes.
func SetImmutable(dir string, on bool) error {
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
	want := flags &^ immutable
	if on {
		want |= immutable
	}
	if want == flags {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(want)); err != nil && !unsupported(err) && !(on && errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("setting the flags of %s: %w", dir, err)
	}
	return nil
}

func unsupported(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)
}
