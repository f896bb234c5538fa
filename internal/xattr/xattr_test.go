package xattr

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
)

func TestListSortedSkippedAndLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, nil, 0o644)
	big := make([]byte, 3000) // larger than the first read buffer
	for i := range big {
		big[i] = byte(i)
	}
	if err := Set(p, "user.zeta", []byte("z")); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			t.Skip("no user xattrs on this filesystem")
		}
		t.Fatal(err)
	}
	Set(p, "user.alpha", big)
	Set(p, "user.otreemeta", []byte("hidden"))
	got, err := List(p, func(n string) bool { return n == "user.otreemeta" })
	if err != nil {
		t.Fatal(err)
	}
	want := []Attr{{"user.alpha", big}, {"user.zeta", []byte("z")}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("List (-want +got):\n%s", d)
	}
	f, _ := os.Open(p)
	defer f.Close()
	fgot, err := FList(int(f.Fd()), nil)
	if err != nil || len(fgot) != 3 {
		t.Fatalf("FList = %v, %v; want 3 attributes", fgot, err)
	}
	if v, err := FGet(int(f.Fd()), "user.alpha"); err != nil || len(v) != len(big) {
		t.Fatalf("FGet = %d bytes, %v", len(v), err)
	}
	if _, err := Get(p, "user.missing"); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("Get of a missing attribute: %v, want ENODATA", err)
	}
}

func TestListDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0o644)
	if err := Set(target, "user.a", []byte("1")); err != nil {
		t.Skip("no user xattrs on this filesystem")
	}
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	got, err := List(link, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("List of a symlink returned its target's attributes: %v", got)
	}
}

// testACL is a POSIX ACL xattr value granting user 1234 read, as the
// kernel holds it (version 2, then tag, perm and id per entry).
func testACL() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range [][3]uint32{{0x01, 6, 0xffffffff}, {0x02, 4, 1234}, {0x04, 4, 0xffffffff}, {0x10, 4, 0xffffffff}, {0x20, 4, 0xffffffff}} {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// names returns the names of attrs.
func names(attrs []Attr) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, a.Name)
	}
	return out
}

// XFS lists a POSIX ACL to root twice, also as trusted.SGI_ACL_FILE (or
// _DEFAULT): List, ListAt and FList give the ACL once, as on any other
// filesystem. Elsewhere a trusted.SGI_ACL_FILE is an xattr like others.
func TestListLeavesOutXFSACLAliases(t *testing.T) {
	mnt := testtree.MountXFS(t)
	acl := testACL()
	f, d := filepath.Join(mnt, "f"), filepath.Join(mnt, "d")
	os.WriteFile(f, nil, 0o644)
	os.Mkdir(d, 0o755)
	for _, s := range []struct{ path, name string }{{f, "system.posix_acl_access"}, {d, "system.posix_acl_access"}, {d, "system.posix_acl_default"}} {
		if err := unix.Setxattr(s.path, s.name, acl, 0); err != nil {
			t.Skipf("no POSIX ACLs on this XFS: %v", err)
		}
	}
	raw := make([]byte, 1024)
	n, _ := unix.Llistxattr(d, raw)
	if !bytes.Contains(raw[:n], []byte("trusted.SGI_ACL_DEFAULT")) {
		t.Skipf("this kernel's XFS lists no trusted.SGI_ACL_* aliases: %q", raw[:n])
	}
	want := map[string][]string{f: {"system.posix_acl_access"}, d: {"system.posix_acl_access", "system.posix_acl_default"}}
	for p, w := range want {
		got, err := List(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(w, names(got)); d != "" {
			t.Errorf("List(%s) (-want +got):\n%s", p, d)
		}
		if !bytes.Equal(got[0].Value, acl) {
			t.Errorf("List(%s): ACL %x, want %x", p, got[0].Value, acl)
		}
		dir, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err = ListAt(dir, mnt, filepath.Base(p), nil)
		unix.Close(dir)
		if err != nil || !cmp.Equal(w, names(got)) {
			t.Errorf("ListAt(%s) = %v, %v; want %v", p, names(got), err, w)
		}
		fd, err := unix.Open(p, unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err = FList(fd, nil)
		unix.Close(fd)
		if err != nil || !cmp.Equal(w, names(got)) {
			t.Errorf("FList(%s) = %v, %v; want %v", p, names(got), err, w)
		}
	}

	// Not on XFS: a trusted.SGI_ACL_FILE beside an ACL is an xattr of its
	// own, which List keeps.
	other := filepath.Join(t.TempDir(), "f")
	os.WriteFile(other, nil, 0o644)
	if err := unix.Setxattr(other, "system.posix_acl_access", acl, 0); err != nil {
		t.Skipf("no POSIX ACLs in %s: %v", other, err)
	}
	if err := unix.Setxattr(other, "trusted.SGI_ACL_FILE", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	got, err := List(other, nil)
	if w := []string{"system.posix_acl_access", "trusted.SGI_ACL_FILE"}; err != nil || !cmp.Equal(w, names(got)) {
		t.Errorf("List(%s) = %v, %v; want %v", other, names(got), err, w)
	}
}

// overlay mounts an overlayfs of a new lower and upper directory in base
// at base/merged, skipping the test where that cannot be done.
func overlay(t *testing.T, base string) (lower, merged string) {
	t.Helper()
	lower, merged = filepath.Join(base, "lower"), filepath.Join(base, "merged")
	for _, d := range []string{lower, filepath.Join(base, "upper"), filepath.Join(base, "work"), merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount an overlayfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return lower, merged
}

// An overlayfs lists the names of its layers as they are: over XFS, a
// POSIX ACL and its trusted.SGI_ACL_* alias, of which List gives the ACL
// alone, as from XFS itself. A trusted.SGI_ACL_FILE of another value, as
// on an overlay of ext4 or tmpfs, is an xattr like others.
func TestListLeavesOutXFSACLAliasesOnOverlay(t *testing.T) {
	lower, merged := overlay(t, testtree.MountXFS(t))
	acl := testACL()
	os.WriteFile(filepath.Join(lower, "f"), nil, 0o644)
	if err := unix.Setxattr(filepath.Join(lower, "f"), "system.posix_acl_access", acl, 0); err != nil {
		t.Skipf("no POSIX ACLs on this XFS: %v", err)
	}
	f := filepath.Join(merged, "f")
	raw := make([]byte, 1024)
	n, _ := unix.Llistxattr(f, raw)
	if !bytes.Contains(raw[:n], []byte("trusted.SGI_ACL_FILE")) {
		t.Skipf("this kernel's overlay of XFS lists no trusted.SGI_ACL_* aliases: %q", raw[:n])
	}
	got, err := List(f, nil)
	if w := []string{"system.posix_acl_access"}; err != nil || !cmp.Equal(w, names(got)) {
		t.Errorf("List(%s) = %v, %v; want %v", f, names(got), err, w)
	}

	lower, merged = overlay(t, t.TempDir())
	os.WriteFile(filepath.Join(lower, "f"), nil, 0o644)
	if err := unix.Setxattr(filepath.Join(lower, "f"), "system.posix_acl_access", acl, 0); err != nil {
		t.Skipf("no POSIX ACLs in %s: %v", lower, err)
	}
	if err := unix.Setxattr(filepath.Join(lower, "f"), "trusted.SGI_ACL_FILE", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	f = filepath.Join(merged, "f")
	got, err = List(f, nil)
	if w := []string{"system.posix_acl_access", "trusted.SGI_ACL_FILE"}; err != nil || !cmp.Equal(w, names(got)) {
		t.Errorf("List(%s) = %v, %v; want %v", f, names(got), err, w)
	}
}
