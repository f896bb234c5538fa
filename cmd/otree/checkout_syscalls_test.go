package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// countCalls counts the calls of syscall in an strace log.
func countCalls(lines []string, syscall string) int {
	n := 0
	for _, l := range lines {
		// "PID name(" with -f, or "name(" for the first thread.
		if f := strings.Fields(l); len(f) > 0 && (strings.HasPrefix(f[0], syscall+"(") || len(f) > 1 && strings.HasPrefix(f[1], syscall+"(")) {
			n++
		}
	}
	return n
}

// A copying checkout sizes each file by writing it: only a file that
// ends in a hole needs an ftruncate, not each of the thousands it copies.
func TestCheckoutCopyTruncatesOnlyFilesEndingInAHole(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, testtree.Tree{
		"small":  testtree.File("x", 0o644),
		"medium": testtree.File(strings.Repeat("m", 70000), 0o644),
		"large":  testtree.File(strings.Repeat("l", 300000), 0o755),
		"sub":    testtree.Dir(0o755),
		"sub/s":  testtree.File(strings.Repeat("s", 5000), 0o644),
		"sparse": testtree.File(strings.Repeat("d", 4096), 0o644),
	})
	// 4 KiB of data, then a hole to 1 MiB.
	if err := os.Truncate(filepath.Join(src, "sparse"), 1<<20); err != nil {
		t.Fatal(err)
	}
	c.ok("commit", "-b", "main", src)
	dest := filepath.Join(t.TempDir(), "co")
	tr, err := straced(t, "-e trace=ftruncate", "--repo="+c.path, "checkout", "-U", "-C", "main", dest)
	if err != nil {
		t.Fatalf("checkout -U -C: %v\n%s", err, tr.out)
	}
	// The sparse file may need one; the four others none.
	if n := countCalls(tr.lines, "ftruncate"); n > 1 {
		t.Errorf("a copying checkout of 5 files, one ending in a hole, made %d ftruncate calls; want at most 1:\n%s", n, tr.log)
	}
	for _, name := range []string{"small", "medium", "large", "sub/s", "sparse"} {
		want, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: checked out %d bytes, not the %d committed", name, len(got), len(want))
		}
	}
}

// A union checkout over an identical hardlink checkout finds each file
// linked already from what the file-header index says: it reads no
// object's header xattr, and leaves every entry as it was.
func TestUnionOverIdenticalCheckoutReadsNoHeader(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	c.ok("commit", "-b", "main", source(t, testtree.Tree{
		"a":     testtree.File("a", 0o644),
		"b":     testtree.File("bb", 0o755),
		"sub":   testtree.Dir(0o755),
		"sub/c": testtree.File("ccc", 0o600),
		"sub/d": testtree.File("dddd", 0o644),
	}))
	dest := filepath.Join(t.TempDir(), "co")
	c.ok("checkout", "-U", "main", dest) // fills the index
	inos := map[string]uint64{}
	for _, name := range []string{"a", "b", "sub/c", "sub/d"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dest, name), &st); err != nil {
			t.Fatal(err)
		}
		inos[name] = st.Ino
	}
	tr, err := straced(t, "-e trace=getxattr,lgetxattr,fgetxattr", "--repo="+c.path, "checkout", "-U", "--union", "main", dest)
	if err != nil {
		t.Fatalf("checkout -U --union: %v\n%s", err, tr.out)
	}
	if n := strings.Count(tr.log, repo.UserMetaXattr); n != 0 {
		t.Errorf("union over an identical checkout read %d object headers; want 0:\n%s", n, tr.log)
	}
	for name, ino := range inos {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dest, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Ino != ino {
			t.Errorf("%s: inode %d after the union, %d before", name, st.Ino, ino)
		}
	}
}
