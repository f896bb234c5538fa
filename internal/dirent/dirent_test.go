package dirent

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Many entries over several getdents calls (a tiny buffer), with inodes
// that match stat.
func TestEachMatchesStat(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := 0; i < 300; i++ {
		n := "entry-" + strconv.Itoa(i) + "-with-a-longer-name"
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
		want = append(want, n)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var got []string
	err = Each(fd, make([]byte, 512), dir, func(name []byte, ino uint64) {
		var st unix.Stat_t
		unix.Lstat(filepath.Join(dir, string(name)), &st)
		if st.Ino != ino {
			t.Errorf("%s: inode %d, stat says %d", name, ino, st.Ino)
		}
		got = append(got, string(name))
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	sort.Strings(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("names (-want +got):\n%s", d)
	}
	if _, err := Names(-1, make([]byte, 512), "/nowhere"); err == nil {
		t.Fatal("reading a bad descriptor succeeded")
	}
}
