// Package rawfd writes to raw file descriptors. Hot paths that create a
// file, write it once and close it use descriptors directly: wrapping each
// in an os.File would cost a system call per file and buy nothing.
package rawfd

import "golang.org/x/sys/unix"

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
