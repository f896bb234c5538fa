package checkout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// occupied handles an entry that exists in DEST where the commit has a
// non-directory (to be hardlinked when link is set). It returns the
// temporary name to write the entry at, to be renamed over name (Union), or
// "" when the entry stays: UnionAdd, UnionIdentical and identical, or Union
// and already a hardlink of the object.
func (w *worker) occupied(n *dirNode, name string, o *object, link bool) (string, error) {
	c := w.c
	path := n.path + "/" + name
	switch {
	case c.opts.UnionAdd:
		return "", nil
	case c.opts.UnionIdentical:
		why, err := w.differs(n, name, o)
		if err != nil {
			return "", fmt.Errorf("checkout: %s: %w", path, err)
		}
		if why != "" {
			return "", fmt.Errorf("checkout: %s exists and differs from file object %s: %s (UnionIdentical)", path, o.id, why)
		}
		return "", nil
	case c.opts.Union:
		var st unix.Stat_t
		if err := unix.Fstatat(n.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return "", fmt.Errorf("checkout: %w", &os.PathError{Op: "stat", Path: path, Err: err})
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return "", fmt.Errorf("checkout: %s is a directory in the way of %s (Union replaces files, not directories)", path, typeNoun(o.h.Type))
		}
		// Relinking the object's own inode (or the uncompressed-object
		// cache entry's, when it is fit to link) would change nothing,
		// and fails in a read-only directory.
		if link && w.objectIno(o) && st.Dev == o.dev && st.Ino == o.ino {
			return "", nil
		}
		var cst unix.Stat_t
		if !link && c.cacheable(o) && w.cachedEntry(o, &cst) && st.Dev == cst.Dev && st.Ino == cst.Ino {
			return "", nil
		}
		return tempName("union"), nil
	}
	return "", fmt.Errorf("checkout: %s: %w", path, fs.ErrExist)
}

// objectIno fills in the dev and ino of o's object where load did not (a
// bare-user repository), and reports whether they are known.
func (w *worker) objectIno(o *object) bool {
	if !o.haveIno && w.c.mode == repo.ModeBareUser {
		var st unix.Stat_t
		if unix.Fstatat(w.c.objFd, o.rel, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			o.haveIno, o.dev, o.ino, o.uid, o.gid = true, st.Dev, st.Ino, st.Uid, st.Gid
		}
	}
	return o.haveIno
}

// differs compares the entry at name with the object, as a fresh checkout
// would write it; it returns "" when they are identical, else how they
// differ. Nothing is followed: a symlink is compared as a symlink.
func (w *worker) differs(n *dirNode, name string, o *object) (string, error) {
	c := w.c
	var st unix.Stat_t
	if err := unix.Fstatat(n.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return "", fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT != o.h.Type.UnixType() {
		return fmt.Sprintf("it is %s, the commit has %s", describe(st.Mode), typeNoun(o.h.Type)), nil
	}
	if o.h.Type != repo.TypeSymlink {
		if m := c.fileMode(o); st.Mode&0o7777 != m {
			return fmt.Sprintf("mode %04o, the commit has %04o", st.Mode&0o7777, m), nil
		}
	}
	if c.owners && (st.Uid != o.h.UID || st.Gid != o.h.GID) {
		return fmt.Sprintf("owner %d:%d, the commit has %d:%d", st.Uid, st.Gid, o.h.UID, o.h.GID), nil
	}
	switch o.h.Type {
	case repo.TypeSymlink:
		t, err := w.target(o)
		if err != nil {
			return "", err
		}
		k, err := unix.Readlinkat(n.fd, name, w.link)
		if err != nil {
			return "", fmt.Errorf("readlink: %w", err)
		}
		if got := string(w.link[:k]); got != t {
			return fmt.Sprintf("symlink to %q, the commit has %q", got, t), nil
		}
		return "", nil
	case repo.TypeCharDevice, repo.TypeBlockDevice:
		if st.Rdev != o.h.Rdev {
			return fmt.Sprintf("device %#x, the commit has %#x", st.Rdev, o.h.Rdev), nil
		}
		return "", nil
	case repo.TypeFIFO:
		return "", nil
	}
	if uint64(st.Size) != o.h.Size {
		return fmt.Sprintf("size %d, the commit has %d", st.Size, o.h.Size), nil
	}
	if o.h.Size == 0 {
		return "", nil // nothing to read, of an object that may be unreadable
	}
	if w.objectIno(o) && st.Dev == o.dev && st.Ino == o.ino {
		return "", nil // the object itself, hardlinked
	}
	// O_NONBLOCK: should it have been swapped for a FIFO meanwhile, do
	// not hang; O_NOFOLLOW: nor for a symlink.
	fd, err := unix.Openat(n.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open: %w", err)
	}
	defer unix.Close(fd)
	var src io.Reader = o.rc
	if src == nil {
		if err := w.openObject(o); err != nil {
			return "", err
		}
		src = fdReader(o.fd)
	}
	if w.buf2 == nil {
		w.buf2 = make([]byte, len(w.buf))
	}
	same, err := sameContent(src, fdReader(fd), w.buf, w.buf2)
	if err != nil {
		return "", err
	}
	if !same {
		return "its content differs", nil
	}
	return "", nil
}

// sameContent reports whether a and b yield the same bytes.
func sameContent(a, b io.Reader, bufA, bufB []byte) (bool, error) {
	for {
		na, errA := io.ReadFull(a, bufA)
		if errA != nil && errA != io.EOF && errA != io.ErrUnexpectedEOF {
			return false, errA
		}
		nb, errB := io.ReadFull(b, bufB[:len(bufA)])
		if errB != nil && errB != io.EOF && errB != io.ErrUnexpectedEOF {
			return false, errB
		}
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		if na < len(bufA) {
			return true, nil
		}
	}
}

// fdReader reads from a raw descriptor.
type fdReader int

func (f fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// OCI whiteout names.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// whiteouts applies the whiteout entries among files to DEST (only a
// directory that existed before can hold anything to delete) and returns
// the other entries.
func (w *worker) whiteouts(n *dirNode, files []repo.FileEntry) ([]repo.FileEntry, error) {
	var keep []repo.FileEntry
	var del []string
	opaque := false
	for i, f := range files {
		if !strings.HasPrefix(f.Name, whiteoutPrefix) {
			if keep != nil {
				keep = append(keep, f)
			}
			continue
		}
		if keep == nil {
			keep = append(make([]repo.FileEntry, 0, len(files)), files[:i]...)
		}
		switch {
		case f.Name == whiteoutOpaque:
			opaque = true
		case strings.HasPrefix(f.Name, whiteoutMeta):
			// Other ".wh..wh." names are a layer's bookkeeping: dropped.
		default:
			target := f.Name[len(whiteoutPrefix):]
			if !repo.ValidName(target) {
				return nil, fmt.Errorf("checkout: %s/%s: whiteout of an invalid name %q", n.path, f.Name, target)
			}
			del = append(del, target)
		}
	}
	if keep == nil {
		return files, nil
	}
	if !n.existed {
		return keep, nil
	}
	if opaque {
		if err := w.clearDir(n.fd, n.path); err != nil {
			return nil, fmt.Errorf("checkout: applying %s/%s: %w", n.path, whiteoutOpaque, err)
		}
	}
	for _, name := range del {
		if err := w.removeAll(n.fd, name, n.path+"/"+name); err != nil {
			return nil, fmt.Errorf("checkout: applying whiteout %s/%s%s: %w", n.path, whiteoutPrefix, name, err)
		}
	}
	return keep, nil
}

// removeAll deletes name (and, for a directory, everything below it) from
// the directory open at dirfd. Symlinks are deleted, never followed.
func (w *worker) removeAll(dirfd int, name, path string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return &os.PathError{Op: "unlink", Path: path, Err: err}
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	err = w.clearDir(fd, path)
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

// clearDir deletes everything in the directory open at fd.
func (w *worker) clearDir(fd int, path string) error {
	names, err := dirent.Names(fd, w.dents, path)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := w.removeAll(fd, name, path+"/"+name); err != nil {
			return err
		}
	}
	return nil
}

// tempName returns a name for an entry written beside the one it is to
// replace, then renamed over it: ".otree-KIND-" and a random suffix.
func tempName(kind string) string {
	return ".otree-" + kind + "-" + strconv.FormatUint(rand.Uint64(), 36)
}
