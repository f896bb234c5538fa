package commit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// FuzzTextACL checks that a POSIX ACL read from a tar's text record is
// encoded in the kernel's order, that the same ACL written back as text
// encodes the same, and that an entry refused is named in the error.
func FuzzTextACL(f *testing.F) {
	f.Add("user::rw-\nuser:alice:r--:1000\ngroup::r--\nmask::r--\nother::r--\n", true)
	f.Add("u::rwx,g::r-x,o::---,u:5:rw-,u:3:r--,m::rwx", true)
	f.Add("user::rwx\ngroup::r-x\nother::r-x\n", true)
	f.Add("default:user::rwx # comment\n", false)
	f.Add("group:staff:rwx", false)
	f.Add("user::rw,other::", false)
	f.Fuzz(func(t *testing.T, text string, access bool) {
		v, bits, err := encodeTextACL(text, access)
		if err != nil {
			if !strings.Contains(err.Error(), "entry ") {
				t.Fatalf("encodeTextACL(%q): error %q names no entry", text, err)
			}
			return
		}
		if v == nil {
			return
		}
		if len(v) < 12 || (len(v)-4)%8 != 0 || binary.LittleEndian.Uint32(v) != 2 {
			t.Fatalf("encodeTextACL(%q) = %x: not a version 2 ACL", text, v)
		}
		var lines []string
		var prevTag uint16
		var prevID uint32
		for i := 4; i < len(v); i += 8 {
			tag, perm, id := binary.LittleEndian.Uint16(v[i:]), binary.LittleEndian.Uint16(v[i+2:]), binary.LittleEndian.Uint32(v[i+4:])
			if i > 4 && (tag < prevTag || tag == prevTag && id < prevID) {
				t.Fatalf("encodeTextACL(%q) = %x: entries out of the kernel's order", text, v)
			}
			prevTag, prevID = tag, id
			name, qual := map[uint16]string{aclTagUserObj: "user", aclTagUser: "user", aclTagGroupObj: "group", aclTagGroup: "group", aclTagMask: "mask", aclTagOther: "other"}[tag], ""
			if name == "" || perm&^7 != 0 {
				t.Fatalf("encodeTextACL(%q) = %x: tag %#x, perm %#o", text, v, tag, perm)
			}
			if tag == aclTagUser || tag == aclTagGroup {
				qual = fmt.Sprint(id)
			} else if id != aclNoID {
				t.Fatalf("encodeTextACL(%q) = %x: tag %#x with id %d", text, v, tag, id)
			}
			p := []byte("---")
			for j, c := range "rwx" {
				if perm&(4>>j) != 0 {
					p[j] = byte(c)
				}
			}
			lines = append(lines, name+":"+qual+":"+string(p))
		}
		back := strings.Join(lines, "\n")
		v2, bits2, err := encodeTextACL(back, access)
		if err != nil || !bytes.Equal(v2, v) || bits2 != bits {
			t.Fatalf("encodeTextACL(%q) = %x %o; written back as %q it encodes %x %o, %v", text, v, bits, back, v2, bits2, err)
		}
	})
}
