package repo

import (
	"fmt"
	"io"
	"os"

	"github.com/otree/otree/internal/hash"
	"golang.org/x/sys/unix"
)

// rewriteModeDamaged replaces the bare-user file object id, whose record
// and content verify but whose permission bits on disk were changed (a
// chmod through a hardlink in a checkout), with a fresh copy that has the
// bits its record gives. Deleting it would lose sound content, and a chmod
// back would undo the change in every checkout that links it: the old
// inode stays with the names that still link it, and their mode. The copy
// is staged in t, checked against id as it is read, synced, and renamed
// over the object; a crash leaves one or the other.
func (r *Repo) rewriteModeDamaged(t *Txn, id ID) error {
	path := r.ObjectPath(KindFile, id)
	h, c, body, err := r.openFile(id, true)
	if err != nil {
		if c != nil {
			c.Close()
		}
		return err
	}
	if err := r.checkStoredTarget(id, h, c); err != nil {
		c.Close()
		return err
	}
	rc := &fileReader{r: body, c: c, size: h.Size, id: id, repo: r, h: hash.New()}
	rc.h.Write(AppendFileHeader(nil, h))
	defer rc.Close()

	name := "mode-" + id.String()
	fd, err := unix.Openat(t.dirFd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	dst := os.NewFile(uintptr(fd), name)
	defer dst.Close()
	// The content is read through rc, which fails unless it still hashes
	// to id: a checkout may have written through its link since fsck read
	// it. A symlink's object holds its target, which the header records.
	if _, err := io.Copy(dst, rc); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	want := uint32(0o644)
	if h.Type == TypeSymlink {
		if _, err := dst.WriteString(h.Target); err != nil {
			return fmt.Errorf("rewriting %s: %w", path, err)
		}
	} else {
		want = BareUserDiskMode(h.Mode)
	}
	if err := unix.Fsetxattr(fd, UserMetaXattr, AppendUserMeta(nil, h), 0); err != nil {
		return fmt.Errorf("rewriting %s: setting %s: %w", path, UserMetaXattr, err)
	}
	if err := zeroTimes(fd); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	if err := unix.Fchmod(fd, want); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	if t.sync {
		if err := unix.Fsync(fd); err != nil {
			return fmt.Errorf("rewriting %s: %w", path, err)
		}
	}
	if err := unix.Renameat(t.dirFd, name, r.objects(), objectPath(KindFile, id)); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	return nil
}
