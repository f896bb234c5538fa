package checkout

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/otree/otree/internal/rawfd"
	"github.com/otree/otree/internal/xattr"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// object is the file object behind one entry, as far as it has been read.
type object struct {
	id       repo.ID
	rel      string          // path below objects/
	h        repo.FileHeader // type, true mode, owner, size, rdev; target and xattrs when known
	diskMode uint32          // permission bits of the object on disk (bare modes)
	haveIno  bool            // dev, ino, uid and gid are the object's (bare, bare-user-only)
	indexed  bool            // the file-header index has it
	loaded   bool            // h was read from the object itself
	dev, ino uint64
	uid, gid uint32        // owner of the object on disk, where haveIno
	fd       int           // the object open for reading, or -1
	rc       io.ReadCloser // archive: the (verifying) content reader
}

func (o *object) close() {
	if o.fd >= 0 {
		unix.Close(o.fd)
		o.fd = -1
	}
	if o.rc != nil {
		o.rc.Close()
		o.rc = nil
	}
}

// objectRel returns the path of a file object below objects/.
func objectRel(id repo.ID) string {
	s := id.String()
	return s[:2] + "/" + s[2:] + ".file"
}

// file checks out one non-directory entry of n.
func (w *worker) file(n *dirNode, name string, id repo.ID) error {
	c := w.c
	o := &w.o
	*o = object{id: id, rel: objectRel(id), fd: -1}
	defer o.close()
	var link bool
	var why string
	if c.opts.ProcessPassthroughWhiteouts && strings.HasPrefix(name, passthroughWhiteout) {
		var err error
		if name, err = w.overlayWhiteout(n, name, o); err != nil {
			return err
		}
	} else if link = w.fromIndex(o); !link {
		// An indexed file the cache may give needs its header read
		// only if it has to be decompressed after all.
		if !o.indexed || !c.cacheable(o) {
			if err := w.load(o); err != nil {
				return fmt.Errorf("checkout: %s/%s: %w", n.path, name, err)
			}
		}
		link, why = c.linkable(o)
	}
	// at is where the entry is written: name, or a temporary name renamed
	// over an entry it replaces (Union), so that name never goes missing.
	at := name
	for attempt := 0; ; attempt++ {
		var err error
		if link {
			err = unix.Linkat(c.objFd, o.rel, n.fd, at, 0)
			if err == nil {
				return w.placed(n, at, name, o, true)
			}
			switch {
			case errors.Is(err, unix.EXDEV):
				c.linkOff.Store(true)
				link, why = false, "DEST is on another filesystem or mount than the repository"
			case errors.Is(err, unix.EMLINK):
				link, why = false, "the object has as many links as the filesystem allows"
			case errors.Is(err, unix.EPERM):
				link, why = false, "the kernel refused the link (see fs.protected_hardlinks)"
			case errors.Is(err, unix.ENOENT) && w.missing(o):
				return fmt.Errorf("checkout: %s/%s: %w", n.path, name, &repo.ObjectMissingError{Kind: repo.KindFile, ID: id})
			}
		}
		if !link {
			// A failed link's error is behind us: the entry is linked
			// from the uncompressed-object cache, or copied.
			var cached bool
			if cached, err = w.linkCached(n, at, o); cached {
				return w.placed(n, at, name, o, true)
			}
		}
		if !link && err == nil {
			if err := w.loadIndexed(o); err != nil {
				return fmt.Errorf("checkout: %s/%s: %w", n.path, name, err)
			}
			if c.opts.RequireHardlinks && o.h.Type == repo.TypeRegular && o.h.Size > 0 {
				return fmt.Errorf("checkout: %s/%s: cannot hardlink file object %s: %s (hardlinks required)", n.path, name, id, why)
			}
			if err = w.create(n, at, o); err == nil {
				return w.placed(n, at, name, o, false)
			}
		}
		if !errors.Is(err, unix.EEXIST) || attempt > 0 {
			return fmt.Errorf("checkout: %s/%s: %w", n.path, name, err)
		}
		if err := w.collision(n, name); err != nil {
			return err
		}
		// Union and UnionAdd go by the index's type, mode and size
		// alone: a union over an identical checkout reads no header.
		// UnionIdentical may compare content, which needs the object.
		if c.opts.UnionIdentical {
			if err := w.loadIndexed(o); err != nil {
				return fmt.Errorf("checkout: %s/%s: %w", n.path, name, err)
			}
		}
		if at, err = w.occupied(n, name, o, link); at == "" || err != nil {
			return err
		}
	}
}

// placed finishes an entry written at at: renamed over name when it
// replaces what was there, then counted.
func (w *worker) placed(n *dirNode, at, name string, o *object, linked bool) error {
	if at != name {
		if err := unix.Renameat(n.fd, at, n.fd, name); err != nil {
			unix.Unlinkat(n.fd, at, 0)
			return fmt.Errorf("checkout: replacing %s/%s: %w", n.path, name, err)
		}
		// A rename between two links of one inode does nothing, and
		// leaves at.
		unix.Unlinkat(n.fd, at, 0)
	}
	w.c.count(o, linked)
	return nil
}

// passthroughWhiteout starts the name of a file that stands for an
// overlayfs whiteout (Options.ProcessPassthroughWhiteouts).
const passthroughWhiteout = ".ostree-wh."

// overlayWhiteout turns o, the file entry named ".ostree-wh.NAME" (object
// o.id), into the overlayfs whiteout it stands for: a 0:0 character device
// with the file's mode and, outside user mode, its owner. It returns NAME,
// which the caller creates as it creates any entry.
func (w *worker) overlayWhiteout(n *dirNode, entry string, o *object) (string, error) {
	name := entry[len(passthroughWhiteout):]
	if !repo.ValidName(name) {
		return "", fmt.Errorf("checkout: %s/%s: whiteout of an invalid name %q", n.path, entry, name)
	}
	if err := w.load(o); err != nil {
		return "", fmt.Errorf("checkout: %s/%s: %w", n.path, entry, err)
	}
	o.h = repo.FileHeader{Type: repo.TypeCharDevice, Mode: o.h.Mode & 0o7777, UID: o.h.UID, GID: o.h.GID, Xattrs: o.h.Xattrs}
	return name, nil
}

func (c *checkouter) count(o *object, linked bool) {
	c.files.Add(1)
	if o.h.Type == repo.TypeRegular {
		c.bytes.Add(int64(o.h.Size))
	}
	if linked {
		c.linked.Add(1)
	} else {
		c.copied.Add(1)
	}
}

// load reads what deciding and writing an entry needs: the header, from the
// object's stat (bare modes), its user.otreemeta xattr (bare-user) or its
// first bytes (archive, which also opens the verifying content reader).
func (w *worker) load(o *object) error {
	c := w.c
	switch c.mode {
	case repo.ModeArchive:
		h, rc, err := c.r.OpenFile(o.id)
		if err != nil {
			return err
		}
		// Indexed once the header is known good: its content verified
		// (copyRegular), or a cache entry of its mode and size linked.
		o.h, o.rc, o.loaded = *h, rc, true
		return nil
	case repo.ModeBareUser:
		var raw []byte
		var err error
		if c.link {
			raw, err = w.getxattr(func(b []byte) (int, error) { return unix.Lgetxattr(c.objDir+o.rel, repo.UserMetaXattr, b) })
		} else {
			// A copy opens the object anyway.
			if err := w.openObject(o); err != nil {
				return err
			}
			raw, err = w.getxattr(func(b []byte) (int, error) { return unix.Fgetxattr(o.fd, repo.UserMetaXattr, b) })
		}
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return &repo.ObjectMissingError{Kind: repo.KindFile, ID: o.id}
			}
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
				// Reading a user.* xattr needs read permission on the
				// object (one root stored 0400, say): the object may be
				// sound, so it is not called corrupt.
				return fmt.Errorf("file object %s (%s): reading %s xattr: %w", o.id, c.objDir+o.rel, repo.UserMetaXattr, err)
			}
			return &repo.CorruptObjectError{Kind: repo.KindFile, ID: o.id, Path: c.objDir + o.rel,
				Reason: fmt.Sprintf("reading %s xattr: %v", repo.UserMetaXattr, err)}
		}
		h, err := repo.DecodeUserMeta(raw, func() (string, error) {
			// A long target is only in the content.
			if o.fd >= 0 {
				return repo.ReadSymlinkTarget(rawfd.ReaderAt(o.fd))
			}
			f, err := os.Open(c.objDir + o.rel)
			if err != nil {
				return "", err
			}
			defer f.Close()
			return repo.ReadSymlinkTarget(f)
		})
		if err != nil {
			return &repo.CorruptObjectError{Kind: repo.KindFile, ID: o.id, Path: c.objDir + o.rel, Reason: err.Error()}
		}
		o.h, o.loaded = *h, true
		o.diskMode = 0o644
		if h.Type == repo.TypeRegular {
			o.diskMode = repo.BareUserDiskMode(h.Mode)
			w.indexMiss(o)
		}
		return nil
	}
	// bare, bare-user-only: the object is the file itself.
	var st unix.Stat_t
	if err := unix.Fstatat(c.objFd, o.rel, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return &repo.ObjectMissingError{Kind: repo.KindFile, ID: o.id}
		}
		return fmt.Errorf("file object %s: %w", o.id, err)
	}
	o.h = repo.FileHeader{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
	o.diskMode = o.h.Mode
	o.haveIno, o.dev, o.ino, o.uid, o.gid = true, st.Dev, st.Ino, st.Uid, st.Gid
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		o.h.Type, o.h.Size = repo.TypeRegular, uint64(st.Size)
	case unix.S_IFLNK:
		o.h.Type = repo.TypeSymlink
	case unix.S_IFCHR:
		o.h.Type, o.h.Rdev = repo.TypeCharDevice, st.Rdev
	case unix.S_IFBLK:
		o.h.Type, o.h.Rdev = repo.TypeBlockDevice, st.Rdev
	case unix.S_IFIFO:
		o.h.Type = repo.TypeFIFO
	default:
		return &repo.CorruptObjectError{Kind: repo.KindFile, ID: o.id, Path: c.objDir + o.rel,
			Reason: fmt.Sprintf("unexpected file type %o on disk", st.Mode&unix.S_IFMT)}
	}
	if c.mode == repo.ModeBareUserOnly {
		o.h.UID, o.h.GID = 0, 0
	}
	return nil
}

// fromIndex fills o from the file-header index, when that has it, and
// reports whether that is enough to hardlink the object: the index holds a
// regular file's mode and size only, so anything that is neither linked
// nor linked from the uncompressed-object cache is loaded in full.
func (w *worker) fromIndex(o *object) bool {
	c := w.c
	e, ok := c.heads.Lookup(o.id)
	if !ok {
		return false
	}
	o.indexed = true
	o.h = repo.FileHeader{Type: repo.TypeRegular, Mode: e.Mode, Size: e.Size}
	o.diskMode = repo.BareUserDiskMode(e.Mode)
	link, _ := c.linkable(o)
	return link
}

// indexMiss records o's header, just read from the object, for the
// file-header index when the checkout uses the index and it lacked o.
func (w *worker) indexMiss(o *object) {
	c := w.c
	if c.heads == nil || o.indexed || o.h.Type != repo.TypeRegular {
		return
	}
	c.missMu.Lock()
	c.misses = append(c.misses, repo.IndexedHeaderOf(o.id, &o.h))
	c.missMu.Unlock()
}

// loadIndexed reads the header of an object filled from the index: its
// mode and size were enough to link, not to copy or compare.
func (w *worker) loadIndexed(o *object) error {
	if !o.indexed || o.loaded {
		return nil
	}
	return w.load(o)
}

// missing says whether o's object is absent from the repository (a link
// from the index, which skipped reading the object, failed with ENOENT).
func (w *worker) missing(o *object) bool {
	var st unix.Stat_t
	return errors.Is(unix.Fstatat(w.c.objFd, o.rel, &st, unix.AT_SYMLINK_NOFOLLOW), unix.ENOENT)
}

// getxattr reads one xattr into the worker's buffer, growing it as needed.
func (w *worker) getxattr(get func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := get(w.xbuf)
		if errors.Is(err, unix.ERANGE) {
			sz, err2 := get(nil)
			if err2 != nil {
				return nil, err2
			}
			w.xbuf = make([]byte, sz+64)
			continue
		}
		if err != nil {
			return nil, err
		}
		return w.xbuf[:n], nil
	}
}

// openObject opens the object's file for reading (bare modes).
func (w *worker) openObject(o *object) error {
	if o.fd >= 0 {
		return nil
	}
	// O_NONBLOCK: a FIFO put in the object's place must not block the
	// open; it has no user.otreemeta, and is reported corrupt.
	fd, err := unix.Openat(w.c.objFd, o.rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return &repo.ObjectMissingError{Kind: repo.KindFile, ID: o.id}
		}
		return fmt.Errorf("opening file object %s: %w", o.id, err)
	}
	o.fd = fd
	return nil
}

// linkable says whether the entry is to be hardlinked and, if not, why.
func (c *checkouter) linkable(o *object) (bool, string) {
	if !c.link {
		return false, c.noLink
	}
	if c.linkOff.Load() {
		return false, "DEST is on another filesystem or mount than the repository"
	}
	if o.h.Type == repo.TypeRegular && o.h.Size == 0 {
		return false, "empty files are always copied"
	}
	switch c.mode {
	case repo.ModeBareUser:
		if o.h.Type != repo.TypeRegular {
			return false, "a bare-user repository stores symlinks as regular files"
		}
		if m := c.fileMode(o); o.diskMode != m {
			return false, fmt.Sprintf("the object's mode on disk %04o is not the file's mode %04o", o.diskMode, m)
		}
	case repo.ModeBareUserOnly:
		// The object's mode is its header's (load reads it from disk);
		// user mode clears setuid and setgid and adds the owner's read
		// bit, which a shared inode cannot: such files are copied.
		if m := c.fileMode(o); o.diskMode != m {
			return false, fmt.Sprintf("the object's mode %04o is not the file's mode %04o in user mode", o.diskMode, m)
		}
		// Where root's checkout gives every entry to 0:0, an object
		// of another owner would hand that user the file.
		if c.owners && (o.uid != 0 || o.gid != 0) {
			return false, fmt.Sprintf("the object is owned by %d:%d, and outside user mode the file is 0:0", o.uid, o.gid)
		}
	}
	return true, ""
}

// fileMode is the permission mode the checkout gives o's entry, the one
// that linking, copying and comparing an existing entry go by: wantMode,
// except for a non-empty bare-user-only object that lacks only its
// owner's read bit and that this process cannot read. No copy of that can
// be made, so the object is hardlinked and its entry keeps the object's
// mode, rather than failing a checkout that can only link it.
func (c *checkouter) fileMode(o *object) uint32 {
	want := c.wantMode(&o.h)
	if c.mode == repo.ModeBareUserOnly && o.h.Type == repo.TypeRegular && o.h.Size > 0 &&
		want != o.diskMode && want == o.diskMode|0o400 &&
		errors.Is(unix.Faccessat(c.objFd, o.rel, unix.R_OK, unix.AT_EACCESS), unix.EACCES) {
		return o.diskMode
	}
	return want
}

// target returns a symlink's target.
func (w *worker) target(o *object) (string, error) {
	if o.h.Target != "" || o.h.Type != repo.TypeSymlink {
		return o.h.Target, nil
	}
	n, err := unix.Readlinkat(w.c.objFd, o.rel, w.link)
	if err != nil {
		return "", fmt.Errorf("reading file object %s: %w", o.id, err)
	}
	if n == 0 || n >= len(w.link) {
		return "", &repo.CorruptObjectError{Kind: repo.KindFile, ID: o.id, Path: w.c.objDir + o.rel, Reason: "bad symlink target length"}
	}
	o.h.Target = string(w.link[:n])
	return o.h.Target, nil
}

// xattrs returns the xattrs to restore: from the header (bare-user, archive)
// or the object itself (bare). In user mode there are none.
func (w *worker) xattrs(o *object) ([]repo.Xattr, error) {
	c := w.c
	if c.opts.UserMode || c.mode == repo.ModeBareUserOnly {
		return nil, nil
	}
	if c.mode != repo.ModeBare {
		return o.h.Xattrs, nil
	}
	var x []repo.Xattr
	var err error
	if o.fd >= 0 {
		x, err = xattr.FList(o.fd, nil)
	} else {
		x, err = xattr.List(c.objDir+o.rel, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("file object %s: %w", o.id, err)
	}
	return x, nil
}

// create writes the entry as a new inode: a copy of a regular file, a
// symlink, a device or a FIFO. An existing entry at name gives an error
// wrapping EEXIST; nothing existing is ever opened or followed. An entry it
// made but could not finish (content, owner, mode, xattrs or times) is
// removed again, so that nothing stands at name without them.
func (w *worker) create(n *dirNode, name string, o *object) error {
	c := w.c
	perm := c.fileMode(o)
	switch o.h.Type {
	case repo.TypeRegular:
		return w.copyRegular(n, name, o, perm)
	case repo.TypeSymlink:
		t, err := w.target(o)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(t, n.fd, name); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		return w.finishSpecial(n, name, o, 0)
	default:
		if c.opts.UserMode && o.h.Type != repo.TypeFIFO && o.h.Rdev != 0 {
			// A device node gives access to hardware, as a setuid bit
			// gives privileges: user mode, which clears those, makes
			// none either, as a user other than root could not. (A 0:0
			// character device is an overlayfs whiteout, and harmless.)
			return fmt.Errorf("a user-mode checkout creates no device nodes (%s %d:%d); check out without -U, as root", o.h.Type, unix.Major(o.h.Rdev), unix.Minor(o.h.Rdev))
		}
		if err := unix.Mknodat(n.fd, name, o.h.Type.UnixType()|perm&0o777, int(o.h.Rdev)); err != nil {
			if errors.Is(err, unix.EPERM) {
				if o.h.Type == repo.TypeCharDevice && o.h.Rdev == 0 && onOverlay(n.fd) {
					// overlayfs refuses its own whiteouts, even to root.
					return fmt.Errorf("cannot create a whiteout (chardev 0:0): %w (an overlayfs mount takes none through it; check out into its upper directory, or elsewhere)", err)
				}
				return fmt.Errorf("cannot create %s: %w (device nodes need root or CAP_MKNOD)", o.h.Type, err)
			}
			return fmt.Errorf("mknod: %w", err)
		}
		return w.finishSpecial(n, name, o, perm)
	}
}

// finishSpecial sets owner, mode (not for symlinks: perm 0), xattrs and
// times of a symlink, device or FIFO just created at name in n, or removes
// it when it cannot.
func (w *worker) finishSpecial(n *dirNode, name string, o *object, perm uint32) (err error) {
	c := w.c
	defer func() {
		if err != nil {
			unix.Unlinkat(n.fd, name, 0)
		}
	}()
	if c.owners {
		if err := unix.Fchownat(n.fd, name, int(o.h.UID), int(o.h.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown to %d:%d: %w%s", o.h.UID, o.h.GID, err, userModeHint(err))
		}
	}
	if perm != 0 && (perm&0o7000 != 0 || perm&c.umask != 0) {
		if err := chmodNoFollow(n.fd, name, perm); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	x, err := w.xattrs(o)
	if err != nil {
		return err
	}
	if len(x) > 0 {
		// No fd-based call sets xattrs on a symlink or device: go through
		// the directory's descriptor, without following the final name.
		p := "/proc/self/fd/" + strconv.Itoa(n.fd) + "/" + name
		for _, a := range x {
			if err := unix.Lsetxattr(p, a.Name, a.Value, 0); err != nil {
				return fmt.Errorf("setting xattr %s: %w%s", a.Name, err, xattrHint(err, a.Name, o.h.Type))
			}
		}
	}
	if err := unix.UtimesNanoAt(n.fd, name, zeroTime, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// chmodNoFollow sets the mode of the device or FIFO at name in dirfd,
// never of what a symlink there points to. fchmodat2 refuses a symlink
// (EOPNOTSUPP), as does fchmodat without it: then the inode at name is
// opened without following and changed through its descriptor, unless it
// is a symlink, which another process put in place of the entry (a union
// goes into a directory others may write to).
func chmodNoFollow(dirfd int, name string, perm uint32) error {
	err := unix.Fchmodat(dirfd, name, perm, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("replaced by a symlink meanwhile: %w", unix.ELOOP)
	}
	// An O_PATH descriptor takes no fchmod; its /proc link leads to the
	// inode itself.
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), perm)
}

// copyRegular writes a regular file's content as a new file, or removes
// the file when it cannot finish it.
func (w *worker) copyRegular(n *dirNode, name string, o *object, perm uint32) (err error) {
	c := w.c
	// An empty file's copy reads nothing: a bare object its owner may
	// not read (a 0000 one) is no obstacle.
	if o.rc == nil && o.h.Size > 0 {
		if err := w.openObject(o); err != nil {
			return err
		}
	}
	fd, err := unix.Openat(n.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm&0o777)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer func() {
		unix.Close(fd)
		if err != nil {
			unix.Unlinkat(n.fd, name, 0) // made here (O_EXCL): ours
		}
	}()
	if o.rc != nil {
		// Archive: decompress; reading to EOF verifies the id (also for
		// empty files). The stream has no holes: runs of zeros become
		// holes, as in a pull (docs/FORMAT.md §6).
		if _, err := rawfd.WriteSparse(rawfd.WriterAt(fd), o.rc, w.buf); err != nil {
			return err
		}
	} else if o.h.Size > 0 {
		if err := w.copyContent(fd, o); err != nil {
			return err
		}
	}
	if c.owners {
		if err := unix.Fchown(fd, int(o.h.UID), int(o.h.GID)); err != nil {
			return fmt.Errorf("chown to %d:%d: %w%s", o.h.UID, o.h.GID, err, userModeHint(err))
		}
	}
	x, err := w.xattrs(o)
	if err != nil {
		return err
	}
	for _, a := range x {
		if err := unix.Fsetxattr(fd, a.Name, a.Value, 0); err != nil {
			return fmt.Errorf("setting xattr %s: %w%s", a.Name, err, userModeHint(err))
		}
	}
	// chmod after chown, which clears setuid and setgid.
	if perm&0o7000 != 0 || perm&c.umask != 0 {
		if err := unix.Fchmod(fd, perm); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := unix.UtimesNanoAt(fd, "", zeroTime, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	if o.rc != nil {
		w.indexMiss(o) // decompressed to the end: verified
		if c.cacheable(o) && w.addToCache(fd, o) {
			w.relinkCached(n, name, o)
		}
	}
	return nil
}

// copyContent copies the object's size bytes into dst: by reflink where the
// filesystem shares extents, else copy_file_range, else read and write.
func (w *worker) copyContent(dst int, o *object) error {
	c := w.c
	src := o.fd
	size := int64(o.h.Size)
	if !c.cloneOff.Load() {
		err := unix.IoctlFileClone(dst, src)
		if err == nil {
			// A clone takes the object's file whole, as long as it is:
			// one truncated or grown since it was stored must not pass.
			var st unix.Stat_t
			if err := unix.Fstat(dst, &st); err != nil {
				return fmt.Errorf("reflink from file object %s: %w", o.id, err)
			}
			if st.Size != size {
				return &repo.CorruptObjectError{Kind: repo.KindFile, ID: o.id, Path: c.objDir + o.rel,
					Reason: fmt.Sprintf("is %d bytes, its header says %d", st.Size, size)}
			}
			return nil
		}
		if !notSupported(err) {
			return fmt.Errorf("reflink from file object %s: %w", o.id, err)
		}
		c.cloneOff.Store(true)
	}
	// Stretch by stretch of data, so that the holes of a sparse object
	// stay holes in dst.
	if err := rawfd.CopyExtents(dst, src, size, w.buf, &c.cfrOff); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &repo.CorruptObjectError{Kind: repo.KindFile, ID: o.id, Path: c.objDir + o.rel, Reason: "shorter than its size"}
		}
		return fmt.Errorf("copying file object %s: %w", o.id, err)
	}
	return nil
}

// notSupported reports errors meaning "this way of copying does not work
// here; try the next".
func notSupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EBADF)
}

// onOverlay reports whether the directory open at fd is on overlayfs.
func onOverlay(fd int) bool {
	var fs unix.Statfs_t
	return unix.Fstatfs(fd, &fs) == nil && uint32(fs.Type) == unix.OVERLAYFS_SUPER_MAGIC
}
