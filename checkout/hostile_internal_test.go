package checkout

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
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
