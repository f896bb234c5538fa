// Package rawfd writes to and reads from raw file descriptors. Hot paths that create a
// file, write it once and close it use descriptors directly: wrapping each
// in an os.File would cost a system call per file and buy nothing.
package rawfd

import (
	"bytes"
	"io"
	"sync/atomic"

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

// Extents calls fn, in order, for each stretch [start, end) of the first
// size bytes of the file fd that may hold data, leaving out its holes
// (SEEK_DATA and SEEK_HOLE), so that a copy of a sparse file can leave
// them out too and keep it sparse. A file without holes, or on a
// filesystem that cannot tell them, or shorter than size, is one stretch,
// [0, size), found with one lseek; one under HoleRun is, unasked: the
// room its holes could save is not worth the system call on every small
// file a checkout copies. Each call starts where the previous one ended or
// in a hole after it.
func Extents(fd int, size int64, fn func(start, end int64) error) error {
	if size <= 0 {
		return nil
	}
	if size < HoleRun {
		return fn(0, size)
	}
	if hole, err := unix.Seek(fd, 0, unix.SEEK_HOLE); err != nil || hole >= size {
		return fn(0, size)
	}
	// A file shorter than size ends in what SEEK_HOLE calls a hole: it is
	// one stretch, so that the copy finds it short rather than padding it.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size < size {
		return fn(0, size)
	}
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			return nil // only a hole from off to the end
		}
		if err != nil {
			return err
		}
		if start >= size {
			return nil
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		end = min(end, size)
		if err := fn(start, end); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// ReadSparse writes the first size bytes of the file fd to w, reading only
// the stretches Extents finds and writing its holes as the zeros they
// read as; buf is the read buffer.
func ReadSparse(w io.Writer, fd int, size int64, buf []byte) error {
	zeros := func(n int64) error {
		for n > 0 {
			c := min(n, HoleRun)
			if _, err := w.Write(zeroRun[:c]); err != nil {
				return err
			}
			n -= c
		}
		return nil
	}
	var last int64
	err := Extents(fd, size, func(start, end int64) error {
		if err := zeros(start - last); err != nil {
			return err
		}
		last = end
		_, err := io.CopyBuffer(w, io.NewSectionReader(ReaderAt(fd), start, end-start), buf)
		return err
	})
	if err != nil {
		return err
	}
	return zeros(size - last)
}

// HoleRun is the run of zeros that WriteSparse leaves as a hole when it
// starts at a multiple of HoleRun. Content read from a stream brings no
// holes to keep, but a sparse file's runs of zeros become holes again.
const HoleRun = 64 << 10

var zeroRun = make([]byte, HoleRun)

// SparseFile is what WriteSparse writes to: a file written at offsets,
// and truncated to make a hole at its end. WriterAt is one.
type SparseFile interface {
	io.WriterAt
	Truncate(size int64) error
}

// WriteSparse writes what r gives, to its end, at the start of the empty
// file dst, leaving each HoleRun of zeros at a multiple of HoleRun as a
// hole, and returns the bytes read. buf, at least HoleRun long, is scratch.
func WriteSparse(dst SparseFile, r io.Reader, buf []byte) (int64, error) {
	buf = buf[:HoleRun]
	var off int64
	hole := false // the file ends in a hole not yet made part of it
	for {
		// Not io.ReadFull: it drops an error that comes with the last
		// bytes of a full buffer.
		m := 0
		var err error
		for m < len(buf) && err == nil {
			var k int
			k, err = r.Read(buf[m:])
			m += k
		}
		if m == len(buf) && bytes.Equal(buf, zeroRun) {
			hole = true
		} else if m > 0 {
			if _, err := dst.WriteAt(buf[:m], off); err != nil {
				return off, err
			}
			hole = false
		}
		off += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return off, err
		}
	}
	if hole {
		return off, dst.Truncate(off)
	}
	return off, nil
}

// CopyExtents copies the first size bytes of src to the same offsets of
// the empty file dst, stretch by stretch of data (Extents), so that the
// holes of a sparse src stay holes in dst, and makes dst size bytes long.
// It copies with copy_file_range where the kernel can (which shares
// extents where the filesystem does), else reads and writes through buf,
// scratch of any length (nil: made when needed). A src shorter than size
// gives io.ErrUnexpectedEOF. cfrOff, when not nil, remembers across calls
// that copy_file_range does not work between the two filesystems (its
// first call failed), so that a copy of many files tries it once.
func CopyExtents(dst, src int, size int64, buf []byte, cfrOff *atomic.Bool) error {
	var last int64
	err := Extents(src, size, func(start, end int64) error {
		last = end
		return copyStretch(dst, src, start, end, &buf, cfrOff)
	})
	if err != nil {
		return err
	}
	return extend(dst, last, size)
}

// extend makes dst, written up to written, size bytes long. Only a file
// that ends in a hole needs the ftruncate: a copy that wrote its last
// byte made it that long already, and a checkout copies thousands.
func extend(dst int, written, size int64) error {
	if written >= size {
		return nil
	}
	return unix.Ftruncate(dst, size)
}

// Stretch is one stretch [Start, End) of a file that may hold data.
type Stretch struct{ Start, End int64 }

// ListExtents returns the stretches Extents gives, for a caller that
// needs them before it copies (to count the bytes of data) and then
// copies them with CopyStretches, without listing them twice.
func ListExtents(fd int, size int64) ([]Stretch, error) {
	var out []Stretch
	err := Extents(fd, size, func(start, end int64) error {
		out = append(out, Stretch{start, end})
		return nil
	})
	return out, err
}

// CopyStretches is CopyExtents over the stretches ListExtents gave for
// src and size.
func CopyStretches(dst, src int, size int64, stretches []Stretch, buf []byte, cfrOff *atomic.Bool) error {
	var last int64
	for _, st := range stretches {
		if err := copyStretch(dst, src, st.Start, st.End, &buf, cfrOff); err != nil {
			return err
		}
		last = st.End
	}
	return extend(dst, last, size)
}

// copyStretch copies [start, end) of src to dst, as CopyExtents says.
func copyStretch(dst, src int, start, end int64, buf *[]byte, cfrOff *atomic.Bool) error {
	off := start
	for off < end && (cfrOff == nil || !cfrOff.Load()) {
		roff, woff := off, off
		k, err := unix.CopyFileRange(src, &roff, dst, &woff, int(min(end-off, 1<<30)), 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil && off == start && cfrOff != nil {
			cfrOff.Store(true)
		}
		if err != nil || k == 0 {
			break // read and write the rest, which reports any error
		}
		off += int64(k)
	}
	if off < end && len(*buf) == 0 {
		*buf = make([]byte, 256<<10)
	}
	for off < end {
		k, err := ReaderAt(src).ReadAt((*buf)[:min(int64(len(*buf)), end-off)], off)
		if k > 0 {
			if _, err := WriterAt(dst).WriteAt((*buf)[:k], off); err != nil {
				return err
			}
			off += int64(k)
		}
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// WriterAt writes to the descriptor it is at given offsets (pwrite),
// retrying short writes and EINTR.
type WriterAt int

// WriteAt writes all of p at off unless an error stops it.
func (w WriterAt) WriteAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pwrite(int(w), p[done:], off+int64(done))
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

// Truncate sets the file's size (ftruncate).
func (w WriterAt) Truncate(size int64) error { return unix.Ftruncate(int(w), size) }
