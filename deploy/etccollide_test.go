package deploy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
)

// The admin added /etc/Foo.conf and the new defaults bring foo.conf: a
// directory that does not tell the names apart (ext4 casefolding) finds
// Foo.conf when the merge creates foo.conf. No filesystem of the test's
// has that, so the test builds the view: once Foo.conf is made, foo.conf
// is another link of it, which the listing does not show. The merge fails,
// naming both paths and where each came from, rather than only
// "foo.conf: file exists", and leaves no new /etc behind.
func TestMergeEtcCaseCollisionNamed(t *testing.T) {
	f := newEtcFixture(t, testtree.Tree{"base.conf": file("b\n")},
		testtree.Tree{"base.conf": file("b\n"), "Foo.conf": file("admin\n")},
		testtree.Tree{"base.conf": file("b\n"), "foo.conf": file("new\n")})
	m := &merger{ctx: context.Background(), buf: make([]byte, 32<<10)}
	m.listDir = func(fd int, path string) ([]string, error) {
		names, err := dirent.NamesApart(fd, path)
		return slices.DeleteFunc(names, func(s string) bool { return s == "foo.conf" }), err
	}
	m.created = func(dirfd int, _, name string) {
		if name == "Foo.conf" {
			if err := unix.Linkat(dirfd, "Foo.conf", dirfd, "foo.conf", 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := mergeEtc(m, f.od, f.oe, f.nd, f.dest)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		t.Fatalf("merge: %v; want a file-exists error", err)
	}
	for _, want := range []string{f.dest + "/foo.conf", f.dest + "/Foo.conf, kept from the old /etc", "foo.conf the new default"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("merge: %v; want it to name %q", err, want)
		}
	}
	if _, err := os.Lstat(f.dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s left behind: %v", f.dest, err)
	}
}
