package repo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/limitread"
	"github.com/otree/otree/internal/rawfd"
	"github.com/otree/otree/internal/xattr"
	"golang.org/x/sys/unix"
)

// maxMetaObject bounds the size of a dirtree, dirmeta or commit object we are
// willing to load, so that a hostile object cannot exhaust memory; no such
// object larger is written either (checkMetaSize). A variable for tests.
var maxMetaObject int64 = 256 << 20

// checkMetaSize refuses to write a metadata object of n bytes that no
// reader would load: detached metadata a pull merges from a server, for
// one, could otherwise grow past the bound and leave the commit's
// signatures unreadable.
func checkMetaSize(kind Kind, id ID, n int) error {
	if int64(n) > maxMetaObject {
		return fmt.Errorf("%s %s would be %d bytes, more than the %d readers load", kind, id, n, maxMetaObject)
	}
	return nil
}

// HasObject reports whether the object is stored.
func (r *Repo) HasObject(kind Kind, id ID) (bool, error) {
	if !kind.valid() {
		return false, fmt.Errorf("checking object %s: invalid %s", id, kind)
	}
	dfd, err := r.objDir()
	if err != nil {
		return false, err
	}
	var st unix.Stat_t
	err = unix.Fstatat(dfd, objectPath(kind, id), &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// No object is a directory, and none can be renamed over one:
		// counting it stored would let a pull skip the object and take
		// a commit's partial mark away, or a commit reuse it.
		return false, &CorruptObjectError{Kind: kind, ID: id, Path: r.ObjectPath(kind, id),
			Reason: "a directory stands in its place: remove it (fsck --delete does when it is empty), then pull or commit again"}
	}
	if err == nil {
		return true, nil
	}
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	return false, fmt.Errorf("checking %s object %s: %w", kind, id, err)
}

func (r *Repo) openObject(kind Kind, id ID) (*objFile, error) {
	dfd, err := r.objDir()
	if err != nil {
		return nil, err
	}
	return openObjectAt(dfd, objectPath(kind, id), r.ObjectPath(kind, id), kind, id)
}

// openObjectAt opens object id, stored as rel under the directory dfd
// (objects/, or a transaction's staging directory), as a file named path.
func openObjectAt(dfd int, rel, path string, kind Kind, id ID) (*objFile, error) {
	// O_NONBLOCK: a FIFO put in an object's place must not block the
	// open (fsck then finds it is not a regular file).
	fd, err := unix.Openat(dfd, rel, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, &ObjectMissingError{kind, id}
		}
		return nil, fmt.Errorf("opening %s object %s: %w", kind, id, err)
	}
	return &objFile{fd: fd, name: path}, nil
}

// objFile is an object open for reading: a raw descriptor with the
// methods of an *os.File that readers of objects use. ls, export and
// fsck open objects by the thousand, and an *os.File would cost each a
// poller registration (fcntl and epoll_ctl, which fails for a regular
// file) and a cleanup: about a tenth of the time of ls -R. Errors are the
// *fs.PathError an *os.File gives, which callers tell from corruption.
type objFile struct {
	fd   int // -1 once closed
	name string
}

// Name returns the path the object was opened as.
func (f *objFile) Name() string { return f.name }

// Fd returns the descriptor.
func (f *objFile) Fd() uintptr { return uintptr(f.fd) }

// Read reads from the current offset, io.EOF at the end.
func (f *objFile) Read(p []byte) (int, error) {
	if f.fd < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(f.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// ReadAt reads len(p) bytes at offset off, or fewer and io.EOF at the end.
func (f *objFile) ReadAt(p []byte, off int64) (int, error) {
	if f.fd < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	n, err := rawfd.ReaderAt(f.fd).ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = &fs.PathError{Op: "read", Path: f.name, Err: err}
	}
	return n, err
}

// Close closes the descriptor; closing again is an error, never a close
// of a descriptor since reused.
func (f *objFile) Close() error {
	if f.fd < 0 {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	fd := f.fd
	f.fd = -1
	if err := unix.Close(fd); err != nil {
		return &fs.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// ReadRaw returns the stored bytes of a dirtree, dirmeta, commit,
// commitmeta or tombstone object, verified against id unless verification
// is off (commitmeta and tombstones are stored under their commit's id, so
// are never verified against it).
func (r *Repo) ReadRaw(kind Kind, id ID) ([]byte, error) {
	if kind == KindFile {
		return nil, fmt.Errorf("ReadRaw: file objects are read with OpenFile")
	}
	if !kind.valid() {
		return nil, fmt.Errorf("reading object %s: invalid %s", id, kind)
	}
	// Raw descriptor, one fstat, one read: dirtrees are read by the
	// thousand in checkout, diff and fsck.
	dfd, err := r.objDir()
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dfd, objectPath(kind, id), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, &ObjectMissingError{kind, id}
		}
		return nil, fmt.Errorf("opening %s object %s: %w", kind, id, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("reading %s object %s: %w", kind, id, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &CorruptObjectError{Kind: kind, ID: id, Path: r.ObjectPath(kind, id), Reason: "not a regular file"}
	}
	if st.Size > maxMetaObject {
		return nil, &CorruptObjectError{Kind: kind, ID: id, Path: r.ObjectPath(kind, id), Reason: "larger than any valid object"}
	}
	buf := make([]byte, st.Size+1) // one more byte notices growth
	n := 0
	for n < len(buf) {
		c, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s object %s: %w", kind, id, err)
		}
		if c == 0 || n+c == int(st.Size) {
			n += c
			break
		}
		n += c
	}
	data := buf[:n]
	if r.verify.Load() && kind.ContentAddressed() {
		if got := Sum(data); got != id {
			return nil, &CorruptObjectError{Kind: kind, ID: id, Actual: got, Path: r.ObjectPath(kind, id)}
		}
	}
	return data, nil
}

func (r *Repo) corrupt(kind Kind, id ID, err error) error {
	return &CorruptObjectError{Kind: kind, ID: id, Path: r.ObjectPath(kind, id), Reason: err.Error()}
}

// ReadCommit loads and decodes a commit object.
func (r *Repo) ReadCommit(id ID) (*Commit, error) {
	data, err := r.ReadRaw(KindCommit, id)
	if err != nil {
		return nil, err
	}
	c, err := DecodeCommit(data)
	if err != nil {
		return nil, r.corrupt(KindCommit, id, err)
	}
	return c, nil
}

// ReadDirTree loads and decodes a dirtree object.
func (r *Repo) ReadDirTree(id ID) (*DirTree, error) {
	data, err := r.ReadRaw(KindDirTree, id)
	if err != nil {
		return nil, err
	}
	t, err := DecodeDirTree(data)
	if err != nil {
		return nil, r.corrupt(KindDirTree, id, err)
	}
	return t, nil
}

// ReadDirMeta loads and decodes a dirmeta object.
func (r *Repo) ReadDirMeta(id ID) (*DirMeta, error) {
	data, err := r.ReadRaw(KindDirMeta, id)
	if err != nil {
		return nil, err
	}
	m, err := DecodeDirMeta(data)
	if err != nil {
		return nil, r.corrupt(KindDirMeta, id, err)
	}
	return m, nil
}

// ReadCommitMeta loads the detached metadata of a commit; a commit without
// any gives (nil, nil).
func (r *Repo) ReadCommitMeta(id ID) (Metadata, error) {
	data, err := r.ReadRaw(KindCommitMeta, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := DecodeCommitMeta(data)
	if err != nil {
		return nil, r.corrupt(KindCommitMeta, id, err)
	}
	return m, nil
}

// StatFile returns the header of a file object without reading or verifying
// its content.
func (r *Repo) StatFile(id ID) (*FileHeader, error) {
	h, f, _, err := r.openFile(id, false)
	if f != nil {
		f.Close()
	}
	return h, err
}

// OpenFile opens a file object. The returned reader yields the content (empty
// for non-regular files) and, unless verification is off, fails at EOF with a
// *CorruptObjectError if header and content do not hash to id.
func (r *Repo) OpenFile(id ID) (*FileHeader, io.ReadCloser, error) {
	h, f, body, err := r.openFile(id, true)
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, nil, err
	}
	if r.verify.Load() {
		if err := r.checkStoredTarget(id, h, f); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	// id and repo name the object in errors even when it is not hashed.
	rc := &fileReader{r: body, c: f, size: h.Size, id: id, repo: r}
	if r.verify.Load() {
		rc.h, rc.pooled = hasherPool.Get().(*hash.Hasher), true
		rc.h.Reset()
		rc.h.Write(AppendFileHeader(nil, h))
	}
	return h, rc, nil
}

// hasherPool holds the hashers of OpenFile's readers, each taken back
// at Close: a BLAKE3 hasher is some 18 KiB, and export, cat and diff
// open a reader for every file they read.
var hasherPool = sync.Pool{New: func() any { return hash.New() }}

// checkStoredTarget checks, in bare-user mode, that a symlink object's
// stored content repeats the target its header records (the header alone
// is what the id covers). obj is what openFile returned.
func (r *Repo) checkStoredTarget(id ID, h *FileHeader, obj io.Closer) error {
	src, ok := obj.(io.Reader)
	if r.mode != ModeBareUser || h.Type != TypeSymlink || !ok {
		return nil
	}
	got, err := io.ReadAll(io.LimitReader(src, int64(len(h.Target))+1))
	if err != nil {
		return fmt.Errorf("reading file object %s: %w", id, err)
	}
	if string(got) != h.Target {
		return &CorruptObjectError{Kind: KindFile, ID: id, Path: r.ObjectPath(KindFile, id), Reason: "stored symlink target differs from the recorded one"}
	}
	return nil
}

// openFile returns the header, the open object (nil for bare symlinks and
// devices) and a reader positioned at the content. Without content, bare
// and bare-user-only objects are only stat'ed (the reader is then empty).
func (r *Repo) openFile(id ID, content bool) (*FileHeader, io.Closer, io.Reader, error) {
	dfd, err := r.objDir()
	if err != nil {
		return nil, nil, nil, err
	}
	return r.openFileAt(dfd, objectPath(KindFile, id), r.ObjectPath(KindFile, id), id, content, nil)
}

// openFileAt is openFile of the file object id stored as rel under the
// directory dfd (objects/, or a transaction's staging directory); path is
// the same file's path, which errors name. When st is not nil it receives
// the object's lstat.
func (r *Repo) openFileAt(dfd int, rel, path string, id ID, content bool, st *unix.Stat_t) (*FileHeader, io.Closer, io.Reader, error) {
	open := func() (*objFile, error) {
		f, err := openObjectAt(dfd, rel, path, KindFile, id)
		if err == nil && st != nil {
			if err = unix.Fstat(int(f.Fd()), st); err != nil {
				f.Close()
				return nil, fmt.Errorf("stat file object %s: %w", id, err)
			}
		}
		return f, err
	}
	corrupt := func(err error) error {
		return &CorruptObjectError{Kind: KindFile, ID: id, Path: path, Reason: err.Error()}
	}
	switch r.mode {
	case ModeArchive:
		f, err := open()
		if err != nil {
			return nil, nil, nil, err
		}
		return r.openArchived(id, f)
	case ModeBareUser:
		f, err := open()
		if err != nil {
			return nil, nil, nil, err
		}
		raw, err := xattr.FGet(int(f.Fd()), UserMetaXattr)
		if userMetaReadHook != nil {
			if herr := userMetaReadHook(path); herr != nil {
				raw, err = nil, herr
			}
		}
		if err != nil {
			// A directory or FIFO in the object's place lacks the
			// xattr too; what is wrong then is its type.
			var fst unix.Stat_t
			if unix.Fstat(int(f.Fd()), &fst) == nil && fst.Mode&unix.S_IFMT != unix.S_IFREG {
				return nil, f, nil, corrupt(fmt.Errorf("unexpected file type %o on disk, want a regular file", fst.Mode&unix.S_IFMT))
			}
			if readFailure(err) {
				// The disk or the system failed, not the object.
				return nil, f, nil, fmt.Errorf("file object %s (%s): reading %s xattr: %w", id, path, UserMetaXattr, err)
			}
			return nil, f, nil, corrupt(fmt.Errorf("reading %s xattr: %v", UserMetaXattr, err))
		}
		h, err := DecodeUserMeta(raw, func() (string, error) { return ReadSymlinkTarget(f) })
		if err != nil {
			return nil, f, nil, corrupt(err)
		}
		if h.Type == TypeSymlink {
			// The target is in the header; the stored content repeats it.
			return h, f, bytes.NewReader(nil), nil
		}
		return h, f, f, nil
	default: // bare, bare-user-only: the object is the file itself
		if st == nil {
			st = new(unix.Stat_t)
		}
		if err := unix.Fstatat(dfd, rel, st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, nil, nil, &ObjectMissingError{KindFile, id}
			}
			return nil, nil, nil, fmt.Errorf("stat file object %s: %w", id, err)
		}
		h := &FileHeader{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			h.Type, h.Size = TypeRegular, uint64(st.Size)
		case unix.S_IFLNK:
			h.Type = TypeSymlink
			t, err := os.Readlink(path)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("reading file object %s: %w", id, err)
			}
			h.Target = t
		case unix.S_IFCHR:
			h.Type, h.Rdev = TypeCharDevice, st.Rdev
		case unix.S_IFBLK:
			h.Type, h.Rdev = TypeBlockDevice, st.Rdev
		case unix.S_IFIFO:
			h.Type = TypeFIFO
		default:
			return nil, nil, nil, corrupt(fmt.Errorf("unexpected file type %o on disk", st.Mode&unix.S_IFMT))
		}
		if r.mode == ModeBareUserOnly {
			h.UID, h.GID = 0, 0
			if h.Type == TypeSymlink {
				h.Mode = 0o777
			}
		} else {
			x, err := xattr.List(path, nil)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("reading file object %s: %w", id, err)
			}
			h.Xattrs = x
		}
		if h.Type != TypeRegular || !content {
			// The header is the file's stat: a bare-user-only file its
			// owner may not read (recorded without u+r) still has one.
			return h, nil, bytes.NewReader(nil), nil
		}
		st = nil // stat'ed above: open need not again
		f, err := open()
		if err != nil {
			return nil, nil, nil, err
		}
		return h, f, f, nil
	}
}

// archive file objects: header, one compression byte, payload.
const (
	compNone = 0
	compZstd = 1
)

// archivePrefix is the first read of an archived object; maxArchiveHeader
// bounds how far it may grow for a header with large xattrs.
const (
	archivePrefix    = 4 << 10
	maxArchiveHeader = 16 << 20
)

func (r *Repo) openArchived(id ID, f *objFile) (*FileHeader, io.Closer, io.Reader, error) {
	h, comp, rest, err := r.archivedHeader(id, f)
	if err != nil {
		return nil, f, nil, err
	}
	corrupt := func(err error) error {
		return &CorruptObjectError{Kind: KindFile, ID: id, Path: f.Name(), Reason: err.Error()}
	}
	if h.Type != TypeRegular && comp != compNone {
		// Only regular files have content to compress: any other form is
		// a second encoding of the same object (docs/FORMAT.md §6.1).
		return nil, f, nil, corrupt(fmt.Errorf("compression %d for a %s", comp, h.Type))
	}
	switch comp {
	case compNone:
		return h, f, rest, nil
	case compZstd:
		z := &lazyZstd{r: r, src: rest, corrupt: corrupt}
		return h, closers{f, z}, z, nil
	default:
		return nil, f, nil, corrupt(fmt.Errorf("unknown compression %d", comp))
	}
}

// archivedHeader is ReadArchiveHeader of the archived object id open at f,
// with its path (f's name) in a CorruptObjectError.
func (r *Repo) archivedHeader(id ID, f *objFile) (*FileHeader, byte, io.Reader, error) {
	h, comp, rest, err := ReadArchiveHeader(id, f)
	if ce := (*CorruptObjectError)(nil); errors.As(err, &ce) {
		ce.Path = f.Name()
	}
	return h, comp, rest, err
}

// ReadArchiveHeader reads the header and compression byte of archive file
// object id (docs/FORMAT.md §6.1) from the start of r, and returns a reader
// of the payload after them. Malformed bytes give a *CorruptObjectError; an
// error of r is returned wrapped.
func ReadArchiveHeader(id ID, r io.Reader) (*FileHeader, byte, io.Reader, error) {
	// Read a small prefix (headers are tens of bytes), growing it only for
	// headers with large xattrs. Decoding after each read stops at the
	// first that brings the header and its compression byte in: a small
	// object is one read, not that read and another that finds the end.
	buf := make([]byte, 0, archivePrefix)
	var h *FileHeader
	var hl int
	var err error
	for {
		if len(buf) == cap(buf) {
			if 4*cap(buf) > maxArchiveHeader {
				err = fmt.Errorf("header larger than %d bytes", maxArchiveHeader)
				break
			}
			buf = append(make([]byte, 0, 4*cap(buf)), buf...)
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			if h, hl, err = DecodeFileHeader(buf); err == nil && hl < len(buf) {
				break
			}
		}
		if errors.Is(rerr, io.EOF) {
			if len(buf) == 0 {
				_, _, err = DecodeFileHeader(buf)
			}
			break
		}
		if rerr != nil {
			return nil, 0, nil, fmt.Errorf("reading file object %s: %w", id, rerr)
		}
	}
	if err == nil && hl >= len(buf) {
		err = fmt.Errorf("missing compression byte")
	}
	if err != nil {
		return nil, 0, nil, &CorruptObjectError{Kind: KindFile, ID: id, Reason: err.Error()}
	}
	return h, buf[hl], io.MultiReader(bytes.NewReader(buf[hl+1:]), r), nil
}

// OpenFilePayload returns file object id as an archive repository stores
// it: its header, compression byte and a reader of the payload, unverified
// (Txn.WriteArchiveVerified checks it). Objects of the other modes come as
// compression 0 and their content, as OpenFile gives it. Close the reader.
func (r *Repo) OpenFilePayload(id ID) (*FileHeader, byte, io.ReadCloser, error) {
	if r.mode != ModeArchive {
		h, rc, err := r.OpenFile(id)
		return h, compNone, rc, err
	}
	f, err := r.openObject(KindFile, id)
	if err != nil {
		return nil, 0, nil, err
	}
	h, comp, rest, err := r.archivedHeader(id, f)
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	return h, comp, struct {
		io.Reader
		io.Closer
	}{rest, f}, nil
}

// lazyZstd decompresses src with a decoder from the repository's pool,
// taken at the first Read: a caller that wants only the header (a
// checkout linking from the uncompressed-object cache, fsck of the cache)
// costs no decoder and no read of the content.
type lazyZstd struct {
	r       *Repo
	src     io.Reader
	d       *zstd.Decoder
	corrupt func(error) error // names the object
}

func (z *lazyZstd) Read(p []byte) (int, error) {
	if z.d == nil {
		d, _ := z.r.decs.Get().(*zstd.Decoder)
		if d == nil {
			var err error
			if d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30)); err != nil {
				return 0, err
			}
		}
		if err := d.Reset(z.src); err != nil {
			return 0, z.corrupt(err) // the decoder is dropped, as it stands
		}
		z.d = d
	}
	return z.d.Read(p)
}

// Close returns the decoder, if one was taken, to the pool.
func (z *lazyZstd) Close() error {
	if z.d != nil {
		z.d.Reset(nil)
		z.r.decs.Put(z.d)
		z.d = nil
	}
	return nil
}

type closers []io.Closer

func (c closers) Close() error {
	var first error
	for _, x := range c {
		if err := x.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// fileReader yields exactly size bytes of content and verifies the id at EOF.
type fileReader struct {
	r    io.Reader
	c    io.Closer
	size uint64
	n    uint64
	h    *hash.Hasher
	id   ID
	path string // where it is stored; repo's path for id when empty
	repo *Repo
	err  error
	// pooled: h is hasherPool's, given back at Close.
	pooled bool
}

func (f *fileReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if rem := f.size - f.n; uint64(len(p)) > rem {
		p = p[:rem]
	}
	var n int
	var err error
	if len(p) > 0 {
		n, err = f.r.Read(p)
	} else {
		err = io.EOF
	}
	f.n += uint64(n)
	if f.h != nil {
		f.h.Write(p[:n])
	}
	if errors.Is(err, io.EOF) || f.n == f.size {
		err = f.finish()
	} else if err != nil {
		err = f.readErr(err)
	}
	if err != nil {
		f.err = err
	}
	return n, err
}

// readErr names the object in an error reading its content: an archive
// object's decoder stopping (truncated or garbled bytes) is corruption of
// the object; the stored file not being readable (EIO) is not.
func (f *fileReader) readErr(err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return fmt.Errorf("reading file object %s: %w", f.id, err)
	}
	return f.corrupt(&CorruptObjectError{Reason: err.Error()})
}

func (f *fileReader) finish() error {
	if f.n != f.size {
		return f.corrupt(&CorruptObjectError{Reason: fmt.Sprintf("content is %d bytes, header says %d", f.n, f.size)})
	}
	// Anything past the declared size means the object was appended to.
	// (For archive objects a decoder error here is bytes appended after
	// the compressed content; io.ErrUnexpectedEOF among them, for bytes
	// that begin a frame and end before it does.)
	var one [1]byte
	if n, err := io.ReadFull(f.r, one[:]); n > 0 {
		return f.corrupt(&CorruptObjectError{Reason: "content is longer than its header says"})
	} else if err != nil && !errors.Is(err, io.EOF) {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			// The file could not be read (EIO, closed): that says
			// nothing of the object's bytes.
			return fmt.Errorf("reading file object %s: %w", f.id, err)
		}
		return f.corrupt(&CorruptObjectError{Reason: "unexpected data after the content: " + err.Error()})
	}
	if f.h != nil {
		if got := ID(f.h.Sum()); got != f.id {
			return f.corrupt(&CorruptObjectError{Actual: got})
		}
	}
	return io.EOF
}

// corrupt completes e with the object's kind, id and path (worked out
// only now: most readers never fail).
func (f *fileReader) corrupt(e *CorruptObjectError) error {
	e.Kind, e.ID, e.Path = KindFile, f.id, f.path
	if e.Path == "" && f.repo != nil {
		e.Path = f.repo.ObjectPath(KindFile, f.id)
	}
	return e
}

func (f *fileReader) Close() error {
	if f.pooled && f.h != nil {
		hasherPool.Put(f.h)
		f.h = nil
		if f.err == nil {
			// Never yield content unverified once the hasher is gone.
			f.err = fmt.Errorf("reading file object %s: %w", f.id, fs.ErrClosed)
		}
	}
	if f.c == nil {
		return nil
	}
	return f.c.Close()
}

// maxTarget bounds the symlink target read from a bare-user object's
// content: PATH_MAX, with room.
const maxTarget = 64 << 10

// userMetaReadHook, when set (by tests), gives the error of reading the
// header xattr of the bare-user file object at path, nil for none: where
// a disk may fail.
var userMetaReadHook func(path string) error

// ReadSymlinkTarget reads the symlink target a bare-user object's content
// holds (from its start, whatever f's offset), up to 64 KiB.
func ReadSymlinkTarget(f io.ReaderAt) (string, error) {
	b, err := limitread.ReadAll(io.NewSectionReader(f, 0, maxTarget+1), maxTarget)
	if err != nil {
		return "", fmt.Errorf("symlink target: %w", err)
	}
	return string(b), nil
}
