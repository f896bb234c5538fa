// Package cachefile reads and writes a repository's cache files (commit's
// stat cache, the file-header index): a magic, a body and a CRC-32C of both.
// They are not mapped from their files, whose pages fault (SIGBUS, which
// kills the process) once the file is truncated in place (truncate, cp
// over it) while mapped; nor read into the Go heap (the cache of a large
// tree is megabytes, which would raise the collector's target by as
// much). The kernel copies each into a memfd sealed against change,
// which is mapped: nothing can shrink that, and the copy costs a fifth of
// a read into fresh anonymous pages, each of which faults. They are
// written with a temp file and rename without fsync: a torn file fails
// its checksum, and a cache that is missing or damaged only costs speed.
package cachefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/otree/otree/internal/durable"
	"golang.org/x/sys/unix"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrDamaged is returned by Map for a file that exists but is not a valid
// cache file of the magic asked for.
var ErrDamaged = errors.New("damaged or foreign cache file")

// File is a cache file's content, in memory.
type File struct {
	data []byte
	// Body is what lies between the magic and the checksum. It is valid
	// until Close.
	Body []byte
}

// ErrOtherOwner is returned by Map for a file written by a user other than
// root and the one this process runs as: a cache is worth only as much as
// its writer, and in a repository others may write to (a group's), one of
// them could otherwise steer this user's commits and checkouts.
var ErrOtherOwner = errors.New("cache file written by another user")

// Map reads the file at path and checks its owner, magic and checksum. A
// missing file gives an error satisfying errors.Is(err, fs.ErrNotExist);
// one of another owner gives ErrOtherOwner, one that fails a check
// ErrDamaged.
func Map(path, magic string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return nil, ErrOtherOwner
	}
	if st.Size < int64(len(magic))+4 || st.Size > 1<<34 || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, ErrDamaged
	}
	data, err := load(f, int(st.Size))
	if errors.Is(err, errShort) {
		return nil, ErrDamaged // truncated since the fstat
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	body, sum := data[:len(data)-4], data[len(data)-4:]
	if !bytes.HasPrefix(data, []byte(magic)) || crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(sum) {
		unix.Munmap(data)
		return nil, ErrDamaged
	}
	return &File{data: data, Body: body[len(magic):]}, nil
}

// errShort is a file that ended before the size its fstat gave.
var errShort = errors.New("file shorter than its size")

// memfdCreate is unix.MemfdCreate; tests make it fail to exercise the
// fallback.
var memfdCreate = unix.MemfdCreate

// load returns a read-only mapping of the n bytes of f, copied by the
// kernel into a memfd sealed against any change, so that no truncation
// of f (nor anything else) can fault a page of it; or, where memfds are
// not allowed (a seccomp filter, say), read into an anonymous mapping.
func load(f *os.File, n int) ([]byte, error) {
	fd, err := memfdCreate("otree-cache", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return loadAnon(f, n)
	}
	defer unix.Close(fd) // the mapping keeps the memfd's pages
	for done := 0; done < n; {
		k, err := unix.Sendfile(fd, int(f.Fd()), nil, n-done)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if k == 0 {
			return nil, errShort
		}
		done += k
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return nil, err
	}
	return unix.Mmap(fd, 0, n, unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
}

// loadAnon reads the n bytes of f into an anonymous mapping, made
// read-only once filled, as load's is: a stray write faults rather than
// corrupting what callers hold views into.
func loadAnon(f *os.File, n int) ([]byte, error) {
	data, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(f, data); err != nil {
		unix.Munmap(data)
		// Cut short since the fstat: io.EOF when cut to nothing.
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, errShort
		}
		return nil, err
	}
	if err := unix.Mprotect(data, unix.PROT_READ); err != nil {
		unix.Munmap(data)
		return nil, err
	}
	return data, nil
}

// Close frees the content. It may be called on nil.
func (f *File) Close() {
	if f != nil && f.data != nil {
		unix.Munmap(f.data)
		f.data, f.Body = nil, nil
	}
}

// Write replaces the file at path with out, which must begin with the
// magic, followed by its checksum; it creates the directory if need be.
func Write(path string, out []byte) error {
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
	if err := os.MkdirAll(filepath.Dir(path), durable.DirPerm); err != nil {
		return err
	}
	return durable.WriteFile(path, out, 0o644, false)
}
