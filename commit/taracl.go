package commit

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/otree/otree/repo"
)

// The PAX records of a POSIX ACL in text form: `tar --acls` (GNU tar)
// writes them, and `tar --xattrs --acls` the system.posix_acl_* xattr
// beside them; bsdtar writes only the text.
var paxACLs = []struct{ record, xattr string }{
	{"SCHILY.acl.access", "system.posix_acl_access"},
	{"SCHILY.acl.default", "system.posix_acl_default"},
}

// The tags of a POSIX ACL's entries, as the kernel encodes them.
const (
	aclTagUserObj  = 0x01
	aclTagUser     = 0x02
	aclTagGroupObj = 0x04
	aclTagGroup    = 0x08
	aclTagMask     = 0x10
	aclTagOther    = 0x20
	aclNoID        = 0xffffffff
)

// textACLXattrs adds to xattrs the POSIX ACLs that the entry's records give
// only in text, encoded as the system.posix_acl_* xattr the kernel would
// hold: dropping them would lose who may read the file. The xattr, where
// the tar has it too, wins. An access ACL that says no more than the mode
// is not kept (the kernel drops it). A named entry must carry its number,
// as a number or after the permissions (libarchive's form): GNU tar writes
// only the name, which means nothing on another host.
//
// It returns the mode with an access ACL's owner, mask and other
// permissions in place of its own, as setting the ACL on extraction
// leaves it: libarchive writes the group entry's permissions in the
// header's mode, not the mask's that the file had.
func textACLXattrs(records map[string]string, xattrs []repo.Xattr, mode uint32) ([]repo.Xattr, uint32, error) {
	for _, a := range paxACLs {
		text, ok := records[a.record]
		if !ok || slices.ContainsFunc(xattrs, func(x repo.Xattr) bool { return x.Name == a.xattr }) {
			continue
		}
		access := a.xattr == "system.posix_acl_access"
		v, bits, err := encodeTextACL(text, access)
		if err != nil {
			return nil, 0, fmt.Errorf("PAX record %s: %w", a.record, err)
		}
		if v != nil {
			xattrs = append(xattrs, repo.Xattr{Name: a.xattr, Value: v})
			if access {
				mode = mode&^0o777 | bits
			}
		}
	}
	repo.SortXattrs(xattrs)
	return xattrs, mode, nil
}

// encodeTextACL encodes a POSIX ACL in text form (entries separated by
// newlines or commas, "#" starting a comment); nil when it has no entries,
// or, for an access ACL, no entries beyond the mode's. bits are the
// permission bits it gives a file: its owner, mask and other entries'.
func encodeTextACL(text string, access bool) (v []byte, bits uint32, err error) {
	type entry struct {
		tag  uint16
		perm uint16
		id   uint32
	}
	var entries []entry
	extended := false
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 || len(f) > 4 {
			return nil, 0, fmt.Errorf("entry %q: not TAG:QUALIFIER:PERMS", line)
		}
		var e entry
		named := f[1] != ""
		switch f[0] {
		case "user", "u":
			e.tag = aclTagUserObj
			if named {
				e.tag = aclTagUser
			}
		case "group", "g":
			e.tag = aclTagGroupObj
			if named {
				e.tag = aclTagGroup
			}
		case "mask", "m":
			e.tag = aclTagMask
		case "other", "o":
			e.tag = aclTagOther
		default:
			return nil, 0, fmt.Errorf("entry %q: unknown tag %q", line, f[0])
		}
		if named && e.tag != aclTagUser && e.tag != aclTagGroup {
			return nil, 0, fmt.Errorf("entry %q: a %s entry takes no qualifier", line, f[0])
		}
		for i, c := range []byte(strings.TrimSpace(f[2])) {
			switch {
			case c == '-' && i < 3:
			case i < 3 && c == "rwx"[i]:
				e.perm |= 4 >> i
			default:
				return nil, 0, fmt.Errorf("entry %q: permissions %q are not rwx", line, f[2])
			}
		}
		e.id = aclNoID
		if named {
			num := f[1]
			if len(f) == 4 {
				num = f[3]
			}
			id, err := strconv.ParseUint(num, 10, 32)
			if err != nil || id == aclNoID {
				return nil, 0, fmt.Errorf("entry %q names %q without its number, which another host may give another one (make the tar with --xattrs too, which stores the ACL with numbers)", line, f[1])
			}
			e.id = uint32(id)
		}
		extended = extended || e.tag == aclTagUser || e.tag == aclTagGroup || e.tag == aclTagMask
		entries = append(entries, e)
	}
	if len(entries) == 0 || access && !extended {
		return nil, 0, nil
	}
	// The kernel's order: by tag, named entries by id.
	slices.SortStableFunc(entries, func(a, b entry) int {
		if a.tag != b.tag {
			return int(a.tag) - int(b.tag)
		}
		return cmp.Compare(a.id, b.id)
	})
	v = binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		v = binary.LittleEndian.AppendUint16(v, e.tag)
		v = binary.LittleEndian.AppendUint16(v, e.perm)
		v = binary.LittleEndian.AppendUint32(v, e.id)
		switch e.tag {
		case aclTagUserObj:
			bits |= uint32(e.perm) << 6
		case aclTagMask:
			bits |= uint32(e.perm) << 3
		case aclTagOther:
			bits |= uint32(e.perm)
		}
	}
	return v, bits, nil
}
