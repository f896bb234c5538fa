package checkout

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// The decoder refuses invalid names before a checkout sees them; this test
// hands the checkout hostile trees directly, to show it refuses them on its
// own.
func TestOwnNameValidation(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 4}
	file := repo.FileID(h, []byte("evil"))
	if _, err := txn.WriteFile(h, file, []byte("evil")); err != nil {
		t.Fatal(err)
	}
	meta, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	rootID, subID := repo.ID{1}, repo.ID{2}
	sub := &repo.DirTree{Files: []repo.FileEntry{{Name: "evil", ID: file}}}

	// An absolute name points into a directory of the test's own, so that
	// a broken checkout cannot write to the real root.
	abs := filepath.Join(t.TempDir(), "abs")
	for _, name := range []string{"..", ".", "", "../escaped", "a/b", abs, "x\x00y"} {
		for _, asDir := range []bool{false, true} {
			for _, union := range []bool{false, true} {
				base := t.TempDir()
				dest := filepath.Join(base, "work", "dest")
				os.MkdirAll(dest, 0o755)
				if !union {
					os.Remove(dest)
				}
				root := &repo.DirTree{Files: []repo.FileEntry{{Name: name, ID: file}}}
				if asDir {
					root = &repo.DirTree{Dirs: []repo.DirEntry{{Name: name, TreeID: subID, MetaID: meta}}}
				}
				c, err := newCheckouter(context.Background(), r, dest, Options{UserMode: true, Union: union})
				if err != nil {
					t.Fatal(err)
				}
				c.readTree = func(id repo.ID) (*repo.DirTree, error) {
					if id == rootID {
						return root, nil
					}
					return sub, nil
				}
				_, err = c.run(&dirNode{tree: rootID, metaID: meta, fd: -1})
				if err == nil || !strings.Contains(err.Error(), "invalid entry name") {
					t.Errorf("name %q dir=%v union=%v: %v", name, asDir, union, err)
				}
				filepath.Walk(base, func(p string, info os.FileInfo, err error) error {
					if err == nil && p != base && p != filepath.Join(base, "work") && p != dest {
						t.Errorf("name %q dir=%v union=%v: %s was created", name, asDir, union, p)
					}
					return nil
				})
				if _, err := os.Lstat(abs); err == nil {
					t.Errorf("%s exists", abs)
				}
			}
		}
	}
}

// A symlink put in place of a FIFO the checkout just made (another process
// writing into a union's directory) does not lead its chmod to the link's
// target: fchmodat2 refuses a symlink, and the fallback must too.
func TestFinishSpecialChmodsNoLinkTarget(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dest := t.TempDir()
	c, err := newCheckouter(context.Background(), r, dest, Options{UserMode: true, Union: true})
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dest, "fifo")); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	n := &dirNode{path: dest, fd: fd}
	o := &object{h: repo.FileHeader{Type: repo.TypeFIFO, Mode: 0o1666}, fd: -1}
	err = newWorker(c).finishSpecial(n, "fifo", o, 0o1666)
	if err == nil {
		t.Error("finishing a FIFO replaced by a symlink succeeded")
	}
	fi, err := os.Stat(outside)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeSticky); got != 0o600 {
		t.Errorf("the link's target got mode %v", got)
	}
}

// chmodNoFollow still changes a FIFO's mode however it gets there.
func TestChmodNoFollowFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, "p"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := chmodNoFollow(fd, "p", 0o1640); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "p"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o1640 {
		t.Errorf("mode %04o, want 1640", st.Mode&0o7777)
	}
}
