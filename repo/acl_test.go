package repo_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
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

// CheckACLXattrs accepts an ACL exactly when the kernel keeps it as given
// once set on a file or directory and the mode set after it, as a bare
// repository and a checkout set them: each case is tried on disk too.
func TestCheckACLXattrsAgreesWithKernel(t *testing.T) {
	const userObj, user, groupObj, group, mask, other, none = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0xffffffff
	named := posixACL(userObj, 6, none, user, 4, 1234, groupObj, 4, none, mask, 4, none, other, 4, none)
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(probe, "system.posix_acl_access", named, 0); err != nil {
		t.Skipf("the test directory's filesystem takes no POSIX ACLs (CI needs one that does, ext4 or tmpfs): %v", err)
	}
	for i, c := range []struct {
		name  string
		xattr string
		isDir bool
		mode  uint32
		acl   []byte
		ok    bool
	}{
		{"agrees", "access", false, 0o644, named, true},
		{"mask at odds", "access", false, 0o664, named, false},
		{"owner at odds", "access", false, 0o744, named, false},
		{"other at odds", "access", false, 0o640, named, false},
		{"mask only", "access", false, 0o640, posixACL(userObj, 6, none, groupObj, 6, none, mask, 4, none, other, 0, none), true},
		{"minimal", "access", false, 0o644, posixACL(userObj, 6, none, groupObj, 4, none, other, 4, none), false},
		{"no entries", "access", false, 0o644, posixACL(), false},
		{"named group", "access", true, 0o750, posixACL(userObj, 7, none, groupObj, 5, none, group, 7, 50, mask, 5, none, other, 0, none), true},
		{"owner with an id", "access", false, 0o644, posixACL(userObj, 6, 0, user, 4, 1234, groupObj, 4, none, mask, 4, none, other, 4, none), false},
		{"no mask", "access", false, 0o644, posixACL(userObj, 6, none, user, 4, 1234, groupObj, 4, none, other, 4, none), false},
		{"out of order", "access", false, 0o644, posixACL(userObj, 6, none, groupObj, 4, none, user, 4, 1234, mask, 4, none, other, 4, none), false},
		{"bad permissions", "access", false, 0o644, posixACL(userObj, 6, none, user, 8, 1234, groupObj, 4, none, mask, 4, none, other, 4, none), false},
		{"default on a directory", "default", true, 0o755, posixACL(userObj, 7, none, groupObj, 5, none, other, 0, none), true},
		{"default on a file", "default", false, 0o644, posixACL(userObj, 7, none, groupObj, 5, none, other, 0, none), false},
		{"empty default", "default", true, 0o755, posixACL(), false},
		{"bad version", "access", false, 0o644, append([]byte{3}, named[1:]...), false},
		{"truncated", "access", false, 0o644, named[:len(named)-1], false},
	} {
		name := "system.posix_acl_" + c.xattr
		p := filepath.Join(dir, strconv.Itoa(i))
		var typ repo.FileType
		var err error
		if c.isDir {
			err = os.Mkdir(p, 0o700)
		} else {
			typ, err = repo.TypeRegular, os.WriteFile(p, nil, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		kept := unix.Setxattr(p, name, c.acl, 0) == nil
		if err := unix.Chmod(p, c.mode); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(c.acl)+64)
		n, err := unix.Getxattr(p, name, buf)
		kept = kept && err == nil && bytes.Equal(buf[:n], c.acl)
		if kept != c.ok {
			t.Errorf("%s: the kernel keeps it %v, want %v", c.name, kept, c.ok)
		}
		err = repo.CheckACLXattrs([]repo.Xattr{{Name: name, Value: c.acl}}, c.mode, typ)
		if (err == nil) != c.ok {
			t.Errorf("%s: CheckACLXattrs = %v, want ok %v", c.name, err, c.ok)
		} else if err != nil && !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name %s", c.name, err, name)
		}
	}
	if err := repo.CheckACLXattrs([]repo.Xattr{{Name: "system.posix_acl_access", Value: named}}, 0o777, repo.TypeSymlink); err == nil {
		t.Error("an ACL on a symlink passes")
	}
}
