// Package xattr reads and writes extended attributes without following
// symlinks, returning them sorted by name as otree's encodings require.
package xattr

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Attr is one extended attribute.
type Attr struct {
	Name  string
	Value []byte
}

// unsupported reports errors meaning "this filesystem or file has no xattrs".
func unsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

// xfsACLAliases maps the names under which XFS lists each POSIX ACL a
// second time, to a caller with CAP_SYS_ADMIN, to the ACL's own name: the
// attribute behind both is the one ACL, in XFS's on-disk encoding.
var xfsACLAliases = map[string]string{
	"trusted.SGI_ACL_FILE":    "system.posix_acl_access",
	"trusted.SGI_ACL_DEFAULT": "system.posix_acl_default",
}

// List returns the extended attributes of path (not following a final
// symlink), sorted by name. A filesystem without xattr support gives none.
// skip, when not nil, drops names for which it returns true.
//
// On XFS, trusted.SGI_ACL_FILE and trusted.SGI_ACL_DEFAULT are left out
// where the ACL they repeat (system.posix_acl_access, _default) is listed
// too, and so are they on an overlayfs (of XFS layers) where their value
// is XFS's form of that ACL: recorded, they would make a tree's ids
// depend on the filesystem it was read from, an object stored on XFS
// would read back with an xattr its header lacks, and a checkout onto
// another filesystem would write them as plain trusted.* xattrs.
func List(path string, skip func(string) bool) ([]Attr, error) {
	return list(func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		func(name string, b []byte) (int, error) { return unix.Lgetxattr(path, name, b) },
		func(st *unix.Statfs_t) error { return unix.Statfs(path, st) }, path, skip)
}

// ListAt is List for the entry name of the directory open at dirfd, whose
// path is dirPath: the name is reached through /proc/self/fd, so that a
// path of any length works (a tree deeper than PATH_MAX) and nothing above
// the directory is resolved again; the final name is never followed. Where
// /proc is not mounted it falls back to dirPath/name. dirPath/name names
// the entry in errors.
func ListAt(dirfd int, dirPath, name string, skip func(string) bool) ([]Attr, error) {
	path := dirPath + "/" + name
	p := EntryPath(dirfd, dirPath, name)
	return list(func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		func(name string, b []byte) (int, error) { return unix.Lgetxattr(p, name, b) },
		func(st *unix.Statfs_t) error { return unix.Statfs(p, st) }, path, skip)
}

// EntryPath names the entry name of the directory dirPath, open at dirfd,
// for calls that have no *at form (the L*xattr calls): through
// /proc/self/fd, so that no path is resolved again and a path longer than
// PATH_MAX still works, else (dirfd AT_FDCWD, or no /proc) as
// dirPath/name.
func EntryPath(dirfd int, dirPath, name string) string {
	if dirfd == unix.AT_FDCWD || !haveProcFD() {
		return dirPath + "/" + name
	}
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// haveProcFD reports whether /proc/self/fd is there for ListAt.
var haveProcFD = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
})

// FList is List for an open file descriptor.
func FList(fd int, skip func(string) bool) ([]Attr, error) {
	return list(func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) },
		func(st *unix.Statfs_t) error { return unix.Fstatfs(fd, st) }, fmt.Sprintf("fd %d", fd), skip)
}

// XFSACLAlias returns the POSIX ACL that name stands for where XFS lists
// it (trusted.SGI_ACL_FILE gives system.posix_acl_access), or "" for a
// name that is no such alias.
func XFSACLAlias(name string) string { return xfsACLAliases[name] }

// xfsAliasCandidates returns the names among names (as listxattr gives
// them) that may only repeat a listed ACL, as on XFS: none, mostly.
func xfsAliasCandidates(names [][]byte) []string {
	var out []string
	for _, nb := range names {
		acl, ok := xfsACLAliases[string(nb)]
		if ok && slices.ContainsFunc(names, func(b []byte) bool { return string(b) == acl }) {
			out = append(out, string(nb))
		}
	}
	return out
}

// dropXFSAliases leaves out of attrs the candidates (xfsAliasCandidates)
// that repeat the ACL beside them: all of them on XFS; on overlayfs, whose
// layers may be XFS (a container's storage, often) and which lists a
// layer's names as they are, those whose value is XFS's encoding of that
// ACL. Elsewhere they are xattrs of their own.
func dropXFSAliases(attrs []Attr, candidates []string, statfsFn func(*unix.Statfs_t) error) []Attr {
	var st unix.Statfs_t
	if statfsFn(&st) != nil {
		return attrs
	}
	fsType := uint32(st.Type)
	if fsType != unix.XFS_SUPER_MAGIC && fsType != unix.OVERLAYFS_SUPER_MAGIC {
		return attrs
	}
	value := func(name string) []byte {
		for _, a := range attrs {
			if a.Name == name {
				return a.Value
			}
		}
		return nil
	}
	return slices.DeleteFunc(attrs, func(a Attr) bool {
		if !slices.Contains(candidates, a.Name) {
			return false
		}
		return fsType == unix.XFS_SUPER_MAGIC || IsXFSACL(a.Value, value(xfsACLAliases[a.Name]))
	})
}

// IsXFSACL reports whether xfs, the value of a trusted.SGI_ACL_* name
// (XFSACLAlias), is how XFS stores the POSIX ACL acl (as the
// system.posix_acl_* xattr gives it: a little-endian version 2, then tag,
// perm and id per entry): a big-endian count, then tag, id, perm and
// padding per entry. Only then does the name repeat the ACL.
func IsXFSACL(xfs, acl []byte) bool {
	if len(acl) < 4 || binary.LittleEndian.Uint32(acl) != 2 || (len(acl)-4)%8 != 0 {
		return false
	}
	n := (len(acl) - 4) / 8
	if len(xfs) != 4+12*n || binary.BigEndian.Uint32(xfs) != uint32(n) {
		return false
	}
	for i := range n {
		e, x := acl[4+8*i:], xfs[4+12*i:]
		if binary.BigEndian.Uint32(x) != uint32(binary.LittleEndian.Uint16(e)) ||
			binary.BigEndian.Uint32(x[4:]) != binary.LittleEndian.Uint32(e[4:]) ||
			binary.BigEndian.Uint16(x[8:]) != binary.LittleEndian.Uint16(e[2:]) {
			return false
		}
	}
	return true
}

func list(listFn func([]byte) (int, error), getFn func(string, []byte) (int, error), statfsFn func(*unix.Statfs_t) error, what string, skip func(string) bool) ([]Attr, error) {
	var buf [1024]byte
	names := buf[:]
	for {
		n, err := listFn(names)
		if errors.Is(err, unix.ERANGE) {
			sz, err2 := listFn(nil)
			if err2 != nil {
				return nil, fmt.Errorf("listing xattrs of %s: %w", what, err2)
			}
			names = make([]byte, sz+64)
			continue
		}
		if err != nil {
			if unsupported(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("listing xattrs of %s: %w", what, err)
		}
		names = names[:n]
		break
	}
	if len(names) == 0 {
		return nil, nil
	}
	var out []Attr
	split := bytes.Split(names, []byte{0})
	for _, nb := range split {
		if len(nb) == 0 {
			continue
		}
		name := string(nb)
		if skip != nil && skip(name) {
			continue
		}
		v, err := get(getFn, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue // removed since listing
			}
			return nil, fmt.Errorf("reading xattr %s of %s: %w", name, what, err)
		}
		out = append(out, Attr{name, v})
	}
	if c := xfsAliasCandidates(split); c != nil {
		out = dropXFSAliases(out, c, statfsFn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func get(getFn func(string, []byte) (int, error), name string) ([]byte, error) {
	var small [256]byte
	n, err := getFn(name, small[:])
	if err == nil {
		return bytes.Clone(small[:n]), nil
	}
	if !errors.Is(err, unix.ERANGE) {
		return nil, err
	}
	for {
		sz, err := getFn(name, nil)
		if err != nil {
			return nil, err
		}
		b := make([]byte, sz)
		n, err := getFn(name, b)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
}

// Get returns one attribute of path, not following a final symlink.
func Get(path, name string) ([]byte, error) {
	return get(func(n string, b []byte) (int, error) { return unix.Lgetxattr(path, n, b) }, name)
}

// FGet returns one attribute of an open file.
func FGet(fd int, name string) ([]byte, error) {
	return get(func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) }, name)
}

// Set sets one attribute of path, not following a final symlink.
func Set(path, name string, value []byte) error {
	if err := unix.Lsetxattr(path, name, value, 0); err != nil {
		return fmt.Errorf("setting xattr %s on %s: %w", name, path, err)
	}
	return nil
}
