package specread

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"
)

// Limits readers apply (§5, §6.2).
const (
	maxMetaObject   = 256 << 20 // dirtree, dirmeta, commit, commitmeta, tombstone
	maxArchiveHead  = 16 << 20  // archive header and compression byte lie within this
	maxSymlinkBytes = 64 << 10  // a bare-user symlink's content
)

// ObjectError is a problem with one object.
type ObjectError struct {
	ID   ID
	Kind string // file extension: "file", "dirtree", ...
	Err  error
}

// Error names the object and what is wrong with it.
func (e *ObjectError) Error() string { return fmt.Sprintf("%s.%s: %v", e.ID, e.Kind, e.Err) }

// Unwrap returns the cause.
func (e *ObjectError) Unwrap() error { return e.Err }

// ObjectPath returns where an object of a kind is stored (§5).
func (r *Repo) ObjectPath(id ID, kind string) string {
	h := id.String()
	return filepath.Join(r.Path, "objects", h[:2], h[2:]+"."+kind)
}

// readSmall reads a non-file object, refusing one over 256 MiB.
func (r *Repo) readSmall(id ID, kind string) ([]byte, error) {
	f, err := os.Open(r.ObjectPath(id, kind))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaObject+1))
	if err == nil && len(b) > maxMetaObject {
		err = errors.New("object larger than 256 MiB")
	}
	return b, err
}

// readMeta reads a content-addressed metadata object, checks its id and
// decodes it with dec.
func readMeta[T any](r *Repo, id ID, kind string, dec func([]byte) (T, error)) (T, error) {
	b, err := r.readSmall(id, kind)
	if err == nil && Sum(b) != id {
		err = fmt.Errorf("content hashes to %s", Sum(b))
	}
	var v T
	if err == nil {
		v, err = dec(b)
	}
	if err != nil {
		return v, &ObjectError{id, kind, err}
	}
	return v, nil
}

// ReadCommit reads and verifies a commit object.
func (r *Repo) ReadCommit(id ID) (*Commit, error) { return readMeta(r, id, "commit", DecodeCommit) }

// ReadDirTree reads and verifies a dirtree object.
func (r *Repo) ReadDirTree(id ID) (*DirTree, error) { return readMeta(r, id, "dirtree", DecodeDirTree) }

// ReadDirMeta reads and verifies a dirmeta object.
func (r *Repo) ReadDirMeta(id ID) (*DirMeta, error) { return readMeta(r, id, "dirmeta", DecodeDirMeta) }

// ReadCommitMeta reads a commit's detached metadata (§2.5), which is
// stored under the commit's id and not hashed. A commit without any gives
// an error matching fs.ErrNotExist.
func (r *Repo) ReadCommitMeta(commit ID) ([]KV, error) {
	b, err := r.readSmall(commit, "commitmeta")
	if err != nil {
		return nil, err
	}
	kv, err := DecodeCommitMeta(b)
	if err != nil {
		return nil, &ObjectError{commit, "commitmeta", err}
	}
	return kv, nil
}

// File is an open file object: its header and exactly its content.
type File struct {
	Header  *FileHeader
	Comp    int       // archive: the compression byte (0 or 1); -1 elsewhere
	Content io.Reader // fails if the stored content is not exactly Header.Size bytes
	closers []io.Closer
}

// Close releases the object.
func (f *File) Close() error {
	var errs []error
	for _, c := range f.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// OpenFile opens a file object as the repository's mode stores it (§6).
func (r *Repo) OpenFile(id ID) (*File, error) {
	f, err := r.openFile(r.ObjectPath(id, "file"))
	if err != nil {
		return nil, &ObjectError{id, "file", err}
	}
	return f, nil
}

func (r *Repo) openFile(p string) (*File, error) {
	switch r.Mode {
	case ModeArchive:
		return openArchive(p)
	case ModeBareUser:
		return openBareUser(p)
	}
	return openBare(p, r.Mode == ModeBareUserOnly)
}

// openArchive reads header, compression byte and payload (§6.1).
func openArchive(p string) (*File, error) {
	fd, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	f := &File{closers: []io.Closer{fd}}
	prefix, err := io.ReadAll(io.LimitReader(fd, maxArchiveHead))
	var rest []byte
	if err == nil {
		f.Header, f.Comp, rest, err = archiveHeader(prefix)
	}
	if err != nil {
		fd.Close()
		return nil, err
	}
	payload := io.MultiReader(bytes.NewReader(rest), fd)
	if f.Comp == 1 {
		// One or more frames, skippable ones allowed, windows up to 512 MiB.
		zr, err := zstd.NewReader(payload, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(512<<20))
		if err != nil {
			fd.Close()
			return nil, err
		}
		f.closers = append(f.closers, closerFunc(func() error { zr.Close(); return nil }))
		payload = zr
	}
	f.Content = &exactReader{r: payload, left: int64(f.Header.Size)}
	return f, nil
}

// archiveHeader decodes the header and compression byte from the first
// bytes of an archive object, and returns the payload bytes that follow.
func archiveHeader(prefix []byte) (*FileHeader, int, []byte, error) {
	h, n, err := DecodeFileHeader(prefix, false)
	if err != nil {
		return nil, 0, nil, err
	}
	if n >= len(prefix) {
		return nil, 0, nil, errors.New("no compression byte within the first 16 MiB")
	}
	switch comp := int(prefix[n]); {
	case comp > 1:
		return nil, 0, nil, fmt.Errorf("compression byte %d", comp)
	case comp == 1 && h.Type != TypeRegular:
		return nil, 0, nil, errors.New("compressed payload on a non-regular file")
	default:
		return h, comp, prefix[n+1:], nil
	}
}

// openBareUser reads the header from user.otreemeta (§6.2).
func openBareUser(p string) (*File, error) {
	fd, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	f, err := bareUserFile(fd)
	if err != nil {
		fd.Close()
		return nil, err
	}
	return f, nil
}

func bareUserFile(fd *os.File) (*File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(fd.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("bare-user object is not a regular file")
	}
	meta, err := fgetxattr(int(fd.Fd()), "user.otreemeta")
	if err != nil {
		return nil, fmt.Errorf("user.otreemeta: %w", err)
	}
	h, n, err := DecodeFileHeader(meta, true)
	if err == nil && n != len(meta) {
		err = fmt.Errorf("%d trailing bytes", len(meta)-n)
	}
	if err != nil {
		return nil, fmt.Errorf("user.otreemeta: %w", err)
	}
	f := &File{Header: h, Comp: -1, closers: []io.Closer{fd}}
	switch h.Type {
	case TypeRegular:
		disk := st.Mode & 0o7777
		if disk != h.Mode&0o775|0o400 && disk != h.Mode&0o777|0o400 {
			return nil, fmt.Errorf("disk mode %#o for header mode %#o", disk, h.Mode)
		}
		f.Content = &exactReader{r: fd, left: int64(h.Size)}
	case TypeSymlink:
		if st.Mode&0o7777 != 0o644 {
			return nil, fmt.Errorf("symlink object's disk mode %#o, not 0644", st.Mode&0o7777)
		}
		target, err := io.ReadAll(io.LimitReader(fd, maxSymlinkBytes+1))
		switch {
		case err != nil:
			return nil, err
		case len(target) > maxSymlinkBytes:
			return nil, errors.New("symlink content over 64 KiB")
		case h.Target == "":
			h.Target = string(target)
			if err := h.check(false); err != nil {
				return nil, err
			}
		case h.Target != string(target):
			return nil, errors.New("symlink content differs from its header's target")
		}
		f.Content = bytes.NewReader(nil)
	default:
		return nil, fmt.Errorf("file type %d cannot be stored in bare-user", h.Type)
	}
	return f, nil
}

// openBare reconstructs the header from the object's own metadata (§6.3,
// §6.4).
func openBare(p string, userOnly bool) (*File, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, err
	}
	h := &FileHeader{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
	f := &File{Header: h, Comp: -1, Content: bytes.NewReader(nil)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		h.Type, h.Size = TypeRegular, uint64(st.Size)
	case unix.S_IFLNK:
		h.Type = TypeSymlink
		target, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		h.Target = target
	case unix.S_IFCHR:
		h.Type, h.Rdev = TypeChar, st.Rdev
	case unix.S_IFBLK:
		h.Type, h.Rdev = TypeBlock, st.Rdev
	case unix.S_IFIFO:
		h.Type = TypeFIFO
	default:
		return nil, fmt.Errorf("file type %#o", st.Mode&unix.S_IFMT)
	}
	if userOnly {
		if h.Type > TypeSymlink {
			return nil, fmt.Errorf("file type %d cannot be stored in bare-user-only", h.Type)
		}
		h.UID, h.GID = 0, 0
		if h.Type == TypeSymlink {
			h.Mode = 0o777
		}
	} else {
		xs, err := listXattrs(p)
		if err != nil {
			return nil, err
		}
		h.Xattrs = xs
	}
	if err := h.check(false); err != nil {
		return nil, err
	}
	if h.Type == TypeRegular {
		fd, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return nil, err
		}
		f.closers = []io.Closer{fd}
		f.Content = &exactReader{r: fd, left: int64(h.Size)}
	}
	return f, nil
}

// listXattrs returns every xattr of p, not following a symlink, sorted.
func listXattrs(p string) ([]Xattr, error) {
	names, err := xattrBuf(func(b []byte) (int, error) { return unix.Llistxattr(p, b) })
	if err != nil {
		return nil, err
	}
	var xs []Xattr
	for _, n := range strings.Split(string(names), "\x00") {
		if n == "" {
			continue
		}
		v, err := xattrBuf(func(b []byte) (int, error) { return unix.Lgetxattr(p, n, b) })
		if err != nil {
			return nil, fmt.Errorf("xattr %s: %w", n, err)
		}
		xs = append(xs, Xattr{n, v})
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
	return xs, nil
}

func fgetxattr(fd int, name string) ([]byte, error) {
	return xattrBuf(func(b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

// xattrBuf calls get with a buffer large enough for its answer.
func xattrBuf(get func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := get(nil)
		if err != nil || n == 0 {
			return []byte{}, err
		}
		b := make([]byte, n)
		n, err = get(b)
		if err != unix.ERANGE {
			return b[:n], err
		}
	}
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

// exactReader gives exactly left bytes of r, and fails if r holds fewer or
// more.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		n, err := io.ReadFull(e.r, make([]byte, 1))
		if n > 0 {
			return 0, errors.New("content longer than the header's size")
		}
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			return n, errors.New("content shorter than the header's size")
		}
		err = nil
	}
	return n, err
}

// hashFile reads a file object and returns the id its header and content
// hash to, and the BLAKE3-256 of its content alone.
func (r *Repo) hashFile(id ID) (*FileHeader, ID, ID, error) {
	f, err := r.OpenFile(id)
	if err != nil {
		return nil, ID{}, ID{}, err
	}
	defer f.Close()
	idh, ch := blake3.New(32, nil), blake3.New(32, nil)
	idh.Write(f.Header.Encode())
	if _, err := io.Copy(io.MultiWriter(idh, ch), f.Content); err != nil {
		return nil, ID{}, ID{}, &ObjectError{id, "file", err}
	}
	var got, sum ID
	idh.Sum(got[:0])
	ch.Sum(sum[:0])
	return f.Header, got, sum, nil
}

// VerifyFile reads a file object and checks that it hashes to its id.
func (r *Repo) VerifyFile(id ID) error {
	_, got, _, err := r.hashFile(id)
	if err == nil && got != id {
		err = &ObjectError{id, "file", fmt.Errorf("content hashes to %s", got)}
	}
	return err
}

// Verify checks every object in objects/: each content-addressed one must
// decode and hash to its name; a commitmeta must decode; a tombstone must
// name its own commit. It returns one *ObjectError per bad object. Names
// that are not objects are ignored (§5).
func (r *Repo) Verify() []error {
	var errs []error
	for i := 0; i < 256; i++ {
		dir := filepath.Join(r.Path, "objects", fmt.Sprintf("%02x", i))
		ents, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range ents {
			rest, kind, _ := strings.Cut(e.Name(), ".")
			id, err := ParseID(dir[len(dir)-2:] + rest)
			if err != nil || strings.ToLower(rest) != rest || !kinds[kind] {
				continue
			}
			if err := r.verifyObject(id, kind); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

func (r *Repo) verifyObject(id ID, kind string) error {
	var err error
	switch kind {
	case "file":
		return r.VerifyFile(id)
	case "dirtree":
		_, err = r.ReadDirTree(id)
	case "dirmeta":
		_, err = r.ReadDirMeta(id)
	case "commit":
		_, err = r.ReadCommit(id)
	case "commitmeta":
		_, err = r.ReadCommitMeta(id)
	case "tombstone-commit":
		var b []byte
		if b, err = r.readSmall(id, kind); err == nil {
			var c ID
			if c, err = DecodeTombstone(b); err == nil && c != id {
				err = fmt.Errorf("tombstone of %s", c)
			}
		}
		if err != nil {
			err = &ObjectError{id, kind, err}
		}
	}
	return err
}

var kinds = map[string]bool{"file": true, "dirtree": true, "dirmeta": true, "commit": true, "commitmeta": true, "tombstone-commit": true}

// Entry is one path of a commit's tree.
type Entry struct {
	Path     string // "." for the root, else relative with '/'
	Type     string // "dir", "regular", "symlink", "char", "block", "fifo"
	Mode     uint32
	UID, GID uint32
	Rdev     uint64
	Target   string
	Xattrs   []Xattr
	Size     uint64
	Sum      ID // BLAKE3-256 of a regular file's content
	ID       ID // the file object; a directory's dirtree
	Meta     ID // a directory's dirmeta
}

var typeNames = [...]string{TypeRegular: "regular", TypeSymlink: "symlink", TypeChar: "char", TypeBlock: "block", TypeFIFO: "fifo"}

// List walks a commit's tree, verifying every object it reads, and returns
// its entries sorted by path.
func (r *Repo) List(commit ID) ([]Entry, error) {
	c, err := r.ReadCommit(commit)
	if err != nil {
		return nil, err
	}
	var out []Entry
	var walk func(p string, tree, meta ID) error
	walk = func(p string, tree, meta ID) error {
		m, err := r.ReadDirMeta(meta)
		if err != nil {
			return err
		}
		t, err := r.ReadDirTree(tree)
		if err != nil {
			return err
		}
		out = append(out, Entry{Path: p, Type: "dir", Mode: m.Mode, UID: m.UID, GID: m.GID, Xattrs: m.Xattrs, ID: tree, Meta: meta})
		for _, fe := range t.Files {
			h, got, sum, err := r.hashFile(fe.ID)
			if err == nil && got != fe.ID {
				err = &ObjectError{fe.ID, "file", fmt.Errorf("content hashes to %s", got)}
			}
			if err != nil {
				return err
			}
			if h.Type != TypeRegular {
				sum = ID{}
			}
			out = append(out, Entry{Path: join(p, fe.Name), Type: typeNames[h.Type], Mode: h.Mode, UID: h.UID, GID: h.GID,
				Rdev: h.Rdev, Target: h.Target, Xattrs: h.Xattrs, Size: h.Size, Sum: sum, ID: fe.ID})
		}
		for _, de := range t.Dirs {
			if err := walk(join(p, de.Name), de.TreeID, de.MetaID); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(".", c.RootTree, c.RootMeta); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}
