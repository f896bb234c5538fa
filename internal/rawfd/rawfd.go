// Package rawfd writes to and reads from raw file descriptors. Hot paths that create a
// file, write it once and close it use descriptors directly: wrapping each
// in an os.File would cost a system call per file and buy nothing.
package rawfd

import (
	"io"

	"golang.org/x/sys/unix"
)

// Writer writes to the descriptor it is, retrying short writes and EINTR,
// so that Write returns an error whenever it wrote less than asked.
type Writer int

// Write writes all of p unless an error stops it.
func (w Writer) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(int(w), p[done:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// ReaderAt reads from the descriptor it is at given offsets (pread), for
// a descriptor someone else owns and closes.
type ReaderAt int

// ReadAt reads len(p) bytes from offset off, or fewer and io.EOF at the
// end.
func (r ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pread(int(r), p[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}
