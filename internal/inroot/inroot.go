// Package inroot reads the files of a tree that is not the running
// system's, such as a deployment, as the tree itself would once booted:
// symlinks resolve inside the tree's root, an absolute one from that root
// and ".." never above it, so that a tree's links never lead a read to the
// machine's own files (an os-release linked to /etc/shadow). Files are
// opened so that a FIFO cannot block the read.
package inroot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Open opens rel below root with flags, to which it adds O_RDONLY,
// O_NONBLOCK, O_NOCTTY and O_CLOEXEC. A kernel without openat2 gets
// os.Root's resolution, which refuses links that leave root, absolute
// ones included.
func Open(root, rel string, flags int) (*os.File, error) {
	flags |= unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, rel, &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if errors.Is(err, unix.ENOSYS) {
		r, err := os.OpenRoot(root)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return r.OpenFile(rel, flags, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(root, rel), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
}

// ReadFile reads the regular file rel below root, refusing anything else
// (a FIFO or device could block or never end) and a file of more than max
// bytes, with errors naming the file.
func ReadFile(root, rel string, max int64) ([]byte, error) {
	f, err := Open(root, rel, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", f.Name())
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes", f.Name(), max)
	}
	return data, nil
}
