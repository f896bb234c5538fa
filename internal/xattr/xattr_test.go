package xattr

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
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
