package repo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/otree/otree/internal/hash"
	"golang.org/x/sys/unix"
)

// A pull from a repository of the same mode on the same filesystem stores
// file objects as hardlinks of the source's, as OSTree's pull-local does:
// in every mode the object file is the object (FORMAT.md §6), so a link
// is what a copy would be, without the writing. Unlike OSTree's, each
// link is verified before it is published: staged under the transaction's
// directory, read back as this repository reads its objects and hashed to
// its id. The inode is shared, so what was verified is what lands.

// ErrNotLinkable is matched by the error of Txn.LinkFileVerified when an
// object cannot be stored as a hardlink (another mode or filesystem, a
// link the filesystem refuses, an inode that differs from what a copy
// would be): the caller stores it by copying instead.
var ErrNotLinkable = errors.New("cannot be hardlinked")

// Linkable reports, as an error matching ErrNotLinkable, why no file
// object of src can be stored in the transaction as a hardlink: src is of
// another mode, or on another filesystem. A pull asks once per source
// rather than failing a link per object.
func (t *Txn) Linkable(src *Repo) error {
	if err := t.live(); err != nil {
		return err
	}
	if src.mode != t.r.mode {
		return fmt.Errorf("%s is %s and %s is %s: %w", src.path, src.mode, t.r.path, t.r.mode, ErrNotLinkable)
	}
	sfd, err := src.objDir()
	if err != nil {
		return err
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(sfd, &a); err != nil {
		return fmt.Errorf("stat %s: %w", src.Path("objects"), err)
	}
	if err := unix.Fstat(t.dirFd, &b); err != nil {
		return fmt.Errorf("stat %s: %w", t.dir, err)
	}
	if a.Dev != b.Dev {
		return fmt.Errorf("%s and %s are on different filesystems: %w", src.path, t.r.path, ErrNotLinkable)
	}
	return nil
}

// LinkFileVerified stores file object id of src, a repository of the same
// mode on the same filesystem, as a hardlink of src's object: it links the
// object into the staging directory, reads the link as this repository
// reads its objects and checks that header and content hash to id, and
// only then lets Commit or Publish move it into objects/. It reports
// whether the object was new.
//
// accept, if not nil, sees the verified header before the object is
// staged and may refuse it with an error, which is returned. Content that does not match is a
// *CorruptObjectError naming src's object, and stages nothing. An object
// that cannot be linked, or whose inode differs from what a copy would
// be (owner, disk mode, times: FORMAT.md §6), gives an error matching
// ErrNotLinkable, and also stages nothing: store it with
// WriteArchiveVerified instead.
//
// The object then shares its inode with src's: a chmod of one is a chmod
// of both, and damage to either is damage to both (fsck of either finds
// it). It is linked only when it has the owner a copy would have (in bare
// mode as root, the header's; otherwise this process's), so no one who
// could not write a copy can write the link.
func (t *Txn) LinkFileVerified(src *Repo, id ID, accept func(*FileHeader) error) (bool, error) {
	if src.mode != t.r.mode {
		return false, fmt.Errorf("file object %s: %s is %s: %w", id, src.path, src.mode, ErrNotLinkable)
	}
	sfd, err := src.objDir()
	if err != nil {
		return false, err
	}
	ok, err := t.claim(KindFile, id)
	if err != nil || !ok {
		return false, err
	}
	err = t.stageLink(src, sfd, id, accept)
	t.settle(KindFile, id, err)
	return err == nil, err
}

// stageLink links src's file object id (objects/ open at sfd) into the
// staging directory and verifies the link; on any error it removes it.
func (t *Txn) stageLink(src *Repo, sfd int, id ID, accept func(*FileHeader) error) error {
	if err := t.space.object(); err != nil {
		return err
	}
	name, err := t.stageName(KindFile, id)
	if err != nil {
		return err
	}
	if err := unix.Linkat(sfd, objectPath(KindFile, id), t.dirFd, name, 0); err != nil {
		return fmt.Errorf("file object %s: linking %s: %w: %w", id, src.ObjectPath(KindFile, id), ErrNotLinkable, err)
	}
	h, stored, err := t.verifyLink(name, id)
	if err == nil && accept != nil {
		err = accept(h)
	}
	if err != nil {
		unix.Unlinkat(t.dirFd, name, 0)
		if ce := (*CorruptObjectError)(nil); errors.As(err, &ce) {
			ce.Path = src.ObjectPath(KindFile, id)
		}
		return err
	}
	t.objects.Add(1)
	t.files.Add(1)
	t.linked.Add(1)
	t.noteSize(objKey{KindFile, id}, stored, int64(h.Size))
	if h.Type == TypeRegular {
		if t.r.mode == ModeBareUser {
			t.addHead(id, h)
		} else {
			t.IndexHeader(id, h)
		}
	} else if t.r.mode == ModeBare || t.r.mode == ModeBareUserOnly {
		t.special.Store(true) // a symlink, device or FIFO: syncfs, not fsync
	}
	return nil
}

// verifyLink reads the staged file object name as the repository reads
// its objects, checks that it is storable and hashes to id, and that its
// inode is what stageFile would have made of that header (else an error
// matching ErrNotLinkable). It returns the header and the object's size
// on disk.
func (t *Txn) verifyLink(name string, id ID) (*FileHeader, int64, error) {
	var st unix.Stat_t
	path := filepath.Join(t.dir, name)
	h, c, body, err := t.r.openFileAt(t.dirFd, name, path, id, true, &st)
	if c != nil {
		defer c.Close()
	}
	if errors.Is(err, unix.EACCES) {
		// A bare-user-only object its owner may not read: copied, it
		// fails as it would have.
		return nil, 0, fmt.Errorf("file object %s: %w: %w", id, ErrNotLinkable, err)
	}
	if err != nil {
		return nil, 0, err
	}
	if err := t.checkStorable(h); err != nil {
		return nil, 0, fmt.Errorf("file object %s: %w", id, err)
	}
	if why := t.unlikeCopy(h, &st); why != "" {
		return nil, 0, fmt.Errorf("file object %s: %s: %w", id, why, ErrNotLinkable)
	}
	if err := t.r.checkStoredTarget(id, h, c); err != nil {
		return nil, 0, err
	}
	w := linkWork.Get().(*linkWorker)
	defer linkWork.Put(w)
	w.h.Reset()
	w.h.Write(AppendFileHeader(w.buf[:0], h))
	rc := &fileReader{r: body, size: h.Size, h: w.h, id: id, path: path}
	for {
		_, err := rc.Read(w.buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
	}
	return h, st.Size, nil
}

// linkWorker is what verifying a link reads and hashes with: kept for the
// next, since a hasher is 16 KiB to clear and pulls link thousands.
type linkWorker struct {
	h   *hash.Hasher
	buf []byte
}

var linkWork = sync.Pool{New: func() any { return &linkWorker{h: hash.New(), buf: make([]byte, 128<<10)} }}

// unlikeCopy says how the inode st of a file object with header h, linked
// from another repository, differs from what stageFile makes of h, or ""
// when it does not: owner (bare, as root: the header's, which st gave;
// otherwise whoever writes a copy), mode on disk, and times (the epoch, but
// in archive mode). A payload longer than a pull would keep is refused too.
func (t *Txn) unlikeCopy(h *FileHeader, st *unix.Stat_t) string {
	// In bare mode a copy takes the header's owner, which only root can
	// give away; anyone else links only what it owns, so that the owner
	// of a source object cannot rewrite it once it is verified here.
	if uid, gid := t.copyOwner(); t.r.mode != ModeBare || uid != 0 {
		if st.Uid != uid || st.Gid != gid {
			return fmt.Sprintf("owned by %d:%d, not %d:%d", st.Uid, st.Gid, uid, gid)
		}
	}
	perm := st.Mode & 0o7777
	switch t.r.mode {
	case ModeArchive:
		if perm != 0o644 {
			return fmt.Sprintf("mode %04o on disk, not 0644", perm)
		}
		// WriteArchiveVerified keeps no payload longer than this.
		if hl := int64(len(AppendFileHeader(nil, h))); uint64(st.Size-hl-1) > MaxPayload(h.Size) {
			return fmt.Sprintf("%d bytes on disk, more than a pull keeps", st.Size)
		}
		return ""
	case ModeBareUser:
		want := uint32(0o644)
		if h.Type == TypeRegular {
			want = BareUserDiskMode(h.Mode)
		}
		if perm != want {
			return fmt.Sprintf("mode %04o on disk, not %04o", perm, want)
		}
	}
	if st.Mtim.Sec != 0 || st.Mtim.Nsec != 0 {
		return "its mtime is not the epoch"
	}
	return ""
}

// copyOwner is the owner of the files this transaction creates: this
// process's, with the staging directory's group when it is setgid.
func (t *Txn) copyOwner() (uid, gid uint32) {
	t.ownerOnce.Do(func() {
		t.uid, t.gid = uint32(os.Geteuid()), uint32(os.Getegid())
		var st unix.Stat_t
		if unix.Fstat(t.dirFd, &st) == nil && st.Mode&unix.S_ISGID != 0 {
			t.gid = st.Gid
		}
	})
	return t.uid, t.gid
}
