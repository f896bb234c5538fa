package commit

import (
	"fmt"
	"os"

	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/internal/xattr"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// SkipXattr reports the attributes commit never records: user.otreemeta is
// where a bare-user repository keeps an object's own header, so a checkout
// of such a repository commits back identically.
func SkipXattr(name string) bool { return name == repo.UserMetaXattr }

// skipXattr is SkipXattr under the name the hot path uses.
var skipXattr = SkipXattr

// DiskHeader returns the header commit records for the non-directory entry
// at path, whose lstat is st, before any owner or permission rewriting.
// Regular files get their Size; reading and hashing the content is the
// caller's. With noXattrs, extended attributes are not read.
func DiskHeader(path string, st *unix.Stat_t, noXattrs bool) (*repo.FileHeader, error) {
	return diskHeader(unix.AT_FDCWD, "", "", path, st, noXattrs)
}

// DiskHeaderAt is DiskHeader for the entry name of the directory open at
// dirfd, whose path dirPath names it in errors: as commit reads a tree,
// relative to the directory, so that an entry deeper than PATH_MAX is
// read as any other.
func DiskHeaderAt(dirfd int, dirPath, name string, st *unix.Stat_t, noXattrs bool) (*repo.FileHeader, error) {
	return diskHeader(dirfd, dirPath, name, dirPath+"/"+name, st, noXattrs)
}

// diskHeader reads the entry name of the directory dirPath open at dirfd,
// or path when dirfd is AT_FDCWD.
func diskHeader(dirfd int, dirPath, name, path string, st *unix.Stat_t, noXattrs bool) (*repo.FileHeader, error) {
	h := &repo.FileHeader{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		h.Type, h.Size = repo.TypeRegular, uint64(st.Size)
	case unix.S_IFLNK:
		var t string
		var err error
		if dirfd == unix.AT_FDCWD {
			t, err = os.Readlink(path)
		} else if t, err = dirent.Readlink(dirfd, name); err != nil {
			err = &os.PathError{Op: "readlink", Path: path, Err: err}
		}
		if err != nil {
			return nil, err
		}
		h.Type, h.Target, h.Mode = repo.TypeSymlink, t, 0o777
	case unix.S_IFCHR:
		h.Type, h.Rdev = repo.TypeCharDevice, st.Rdev
	case unix.S_IFBLK:
		h.Type, h.Rdev = repo.TypeBlockDevice, st.Rdev
	case unix.S_IFIFO:
		h.Type = repo.TypeFIFO
	default:
		return nil, fmt.Errorf("%s: cannot commit a socket or other special file (only regular files, directories, symlinks, and in bare mode devices and FIFOs)", path)
	}
	if !noXattrs {
		var x []repo.Xattr
		var err error
		if dirfd == unix.AT_FDCWD {
			x, err = xattr.List(path, SkipXattr)
		} else {
			x, err = xattr.ListAt(dirfd, dirPath, name, SkipXattr)
		}
		if err != nil {
			return nil, err
		}
		h.Xattrs = x
	}
	return h, nil
}
