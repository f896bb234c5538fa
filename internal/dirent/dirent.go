// Package dirent reads directory entries with getdents64 straight into a
// caller's buffer: names and inode numbers, without a stat per entry.
package dirent

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Each calls fn for every entry of the directory open at fd except "." and
// "..", with the entry's name (valid only during the call) and inode
// number. buf is scratch; path names the directory in errors.
func Each(fd int, buf []byte, path string, fn func(name []byte, ino uint64)) error {
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "readdir", Path: path, Err: err}
		}
		if n <= 0 {
			return nil
		}
		// struct linux_dirent64: ino u64, off i64, reclen u16, type u8, name.
		b := buf[:n]
		for len(b) >= 19 {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return fmt.Errorf("readdir %s: malformed directory entry", path)
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if !(len(name) == 1 && name[0] == '.') && !(len(name) == 2 && name[0] == '.' && name[1] == '.') {
				fn(name, binary.NativeEndian.Uint64(b[0:8]))
			}
			b = b[reclen:]
		}
	}
}

// Names returns the entry names of the directory open at fd.
func Names(fd int, buf []byte, path string) ([]string, error) {
	var names []string
	err := Each(fd, buf, path, func(name []byte, _ uint64) { names = append(names, string(name)) })
	return names, err
}

// NamesApart returns the entry names of the directory open at fd, read
// through a descriptor of its own: fd's offset is left alone, for whoever
// else lists or writes into it.
func NamesApart(fd int, path string) ([]string, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(dfd)
	return Names(dfd, make([]byte, 32<<10), path)
}

// Readlink returns the target of the symlink name in the directory open
// at dirfd, however long: readlinkat with a buffer that doubles until the
// target fits.
func Readlink(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}
