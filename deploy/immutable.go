package deploy

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// fsImmutable is FS_IMMUTABLE_FL of linux/fs.h (chattr +i).
const fsImmutable = 0x10

// setImmutable sets (on) or clears the immutable flag of the directory
// dir. A written deployment's directory, / on the running system, is made
// immutable as OSTree makes its deployments: nothing can then be created,
// removed or renamed at its top level, so a stray `rm -rf /` or a file
// dropped into / fails, while its subdirectories (/etc, the mounts on /usr,
// /var and /sysroot) are as writable as they were. Filesystems without the
// flag, and a process without CAP_LINUX_IMMUTABLE (in a user namespace),
// leave the directory as it is: the flag guards against mistakes, and a
// deployment is sound without it.
func setImmutable(dir string, on bool) error {
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
	want := flags &^ fsImmutable
	if on {
		want |= fsImmutable
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

// mutably runs fn with dir's immutable flag cleared, and sets it again
// after, whatever fn returned.
func mutably(dir string, fn func() error) error {
	if err := setImmutable(dir, false); err != nil {
		return err
	}
	ferr := fn()
	if err := setImmutable(dir, true); ferr == nil {
		ferr = err
	}
	return ferr
}
