package repo

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// The POSIX ACL xattrs and their encoding (a little-endian version, then
// tag, permissions and id per entry).
const (
	aclAccessXattr  = aclXattrPrefix + "access"
	aclDefaultXattr = aclXattrPrefix + "default"
	aclVersion      = 2
	aclUndefinedID  = 0xffffffff

	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

// CheckACLXattrs reports an error, naming the xattr, for a POSIX ACL among
// xattrs that a filesystem would not keep as given on a file of type t, or
// a directory when t is 0, with the mode: the kernel refuses a malformed ACL
// and one on a symlink, drops an empty one and an access ACL that says no
// more than the mode, rewrites an access ACL's owner, mask (or group) and
// other permissions to the mode's bits, and the ids of entries that take
// none. Such an object could not be checked out or stored in a bare
// repository as it is recorded. Xattrs read from disk always pass.
func CheckACLXattrs(xattrs []Xattr, mode uint32, t FileType) error {
	for _, x := range xattrs {
		if !strings.HasPrefix(x.Name, aclXattrPrefix) {
			continue
		}
		if err := checkACL(x.Name, x.Value, mode, t); err != nil {
			return fmt.Errorf("xattr %s: %w", x.Name, err)
		}
	}
	return nil
}

func checkACL(name string, v []byte, mode uint32, t FileType) error {
	switch {
	case name != aclAccessXattr && name != aclDefaultXattr:
		return fmt.Errorf("not an ACL the kernel knows (only %s and %s)", aclAccessXattr, aclDefaultXattr)
	case t == TypeSymlink:
		return fmt.Errorf("a symlink takes no ACL")
	case name == aclDefaultXattr && t != 0:
		return fmt.Errorf("only a directory takes a default ACL")
	case len(v) < 4 || (len(v)-4)%8 != 0:
		return fmt.Errorf("%d bytes: not a 4-byte header and 8-byte entries", len(v))
	case binary.LittleEndian.Uint32(v) != aclVersion:
		return fmt.Errorf("version %d, want %d", binary.LittleEndian.Uint32(v), aclVersion)
	case len(v) == 4:
		return fmt.Errorf("no entries: the kernel drops it")
	}
	// The entries in the order the kernel requires: the owner's, named
	// users', the group's, named groups', the mask (required with named
	// entries) and others'.
	order := map[uint16]int{aclUserObj: 0, aclUser: 1, aclGroupObj: 2, aclGroup: 3, aclMask: 4, aclOther: 5}
	prev, named := -1, false
	perms := map[uint16]uint32{}
	for i := 4; i < len(v); i += 8 {
		tag, perm, id := binary.LittleEndian.Uint16(v[i:]), binary.LittleEndian.Uint16(v[i+2:]), binary.LittleEndian.Uint32(v[i+4:])
		o, ok := order[tag]
		switch {
		case !ok:
			return fmt.Errorf("entry %d: unknown tag %#x", (i-4)/8, tag)
		case perm&^7 != 0:
			return fmt.Errorf("entry %d: permissions %#o beyond rwx", (i-4)/8, perm)
		case o < prev || o == prev && tag != aclUser && tag != aclGroup:
			return fmt.Errorf("entry %d: tag %#x out of order or repeated", (i-4)/8, tag)
		case tag != aclUser && tag != aclGroup && id != aclUndefinedID:
			return fmt.Errorf("entry %d: tag %#x with id %d, which the kernel reads back as %d", (i-4)/8, tag, id, uint32(aclUndefinedID))
		}
		prev, named = o, named || tag == aclUser || tag == aclGroup
		perms[tag] = uint32(perm)
	}
	for _, tag := range []uint16{aclUserObj, aclGroupObj, aclOther} {
		if _, ok := perms[tag]; !ok {
			return fmt.Errorf("no entry with tag %#x", tag)
		}
	}
	_, hasMask := perms[aclMask]
	if named && !hasMask {
		return fmt.Errorf("named entries and no mask")
	}
	if name == aclDefaultXattr {
		return nil // inherited by new entries: the mode does not bind it
	}
	if !hasMask {
		return fmt.Errorf("it says no more than the mode: the kernel drops it")
	}
	if got := perms[aclUserObj]<<6 | perms[aclMask]<<3 | perms[aclOther]; got != mode&0o777 {
		return fmt.Errorf("its owner, mask and other entries give %04o, not the mode's %04o: the kernel rewrites them", got, mode&0o777)
	}
	return nil
}
