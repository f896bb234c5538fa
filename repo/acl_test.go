package repo_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// posixACL encodes a system.posix_acl_access value: version 2, then each
// entry as tag, permissions and id ((tag, perm, id) triples).
func posixACL(entries ...uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for i := 0; i+2 < len(entries); i += 3 {
		b = binary.LittleEndian.AppendUint16(b, uint16(entries[i]))
		b = binary.LittleEndian.AppendUint16(b, uint16(entries[i+1]))
		b = binary.LittleEndian.AppendUint32(b, entries[i+2])
	}
	return b
}

// A bare object given an ACL the kernel does not keep as it is (a tar may
// carry one at odds with its mode: the kernel rewrites the mask to the
// mode's group bits, and drops an ACL that says no more than the mode)
// fails to store, naming the xattr, rather than lands as an object that
// does not match its id; an ACL that agrees with the mode is stored.
func TestBareACLAtOddsWithModeRefused(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBare)
	const userObj, user, groupObj, mask, other, none = 0x01, 0x02, 0x04, 0x10, 0x20, 0xffffffff
	// mask r--: agrees with mode 0644 only.
	named := posixACL(userObj, 6, none, user, 4, 1234, groupObj, 4, none, mask, 4, none, other, 4, none)
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(probe, "system.posix_acl_access", named, 0); err != nil {
		t.Skipf("the test directory's filesystem takes no POSIX ACLs (CI needs one that does, ext4 or tmpfs): %v", err)
	}
	for _, c := range []struct {
		name  string
		typ   repo.FileType
		mode  uint32
		acl   []byte
		fails bool
	}{
		{"agrees", repo.TypeRegular, 0o644, named, false},
		{"mask at odds", repo.TypeRegular, 0o664, named, true},
		{"no more than the mode", repo.TypeRegular, 0o644, posixACL(userObj, 6, none, groupObj, 4, none, other, 4, none), true},
		{"no entries", repo.TypeRegular, 0o644, posixACL(), true},
		{"fifo mask at odds", repo.TypeFIFO, 0o664, named, true},
	} {
		txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		var content []byte
		if c.typ == repo.TypeRegular {
			content = []byte(c.name)
		}
		h := &repo.FileHeader{Type: c.typ, Mode: c.mode, Size: uint64(len(content)),
			Xattrs: []repo.Xattr{{Name: "system.posix_acl_access", Value: c.acl}}}
		_, err = txn.WriteFile(h, repo.FileID(h, content), content)
		switch {
		case c.fails && (err == nil || !strings.Contains(err.Error(), "xattr system.posix_acl_access")):
			t.Errorf("%s: err = %v, want one naming the ACL", c.name, err)
		case !c.fails && err != nil:
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil {
			txn.Abort()
			continue
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	res, err := r.Fsck(context.Background(), repo.FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 0 {
		t.Errorf("fsck: %v", res.Problems)
	}
}
