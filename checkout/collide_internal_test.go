package checkout

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// storedFiles makes a bare-user repository holding a 0644 file object of
// each content given, and the dirmeta of a 0755 directory: what the tests
// below lay out through trees of their own.
func storedFiles(t *testing.T, contents ...string) (*repo.Repo, []repo.ID, repo.ID) {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []repo.ID
	for _, content := range contents {
		h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
		id := repo.FileID(h, []byte(content))
		if _, err := txn.WriteFile(h, id, []byte(content)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	meta, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return r, ids, meta
}

// A directory that does not tell "A" from "a" (ext4 casefolding, say)
// finds the commit's "A" when the checkout writes its "a". No filesystem of
// the test's has that, so the test builds the view: once "A" is linked from
// its object, "a" is another link of the same inode, which the listing
// does not show. Every mode must refuse, naming both paths, and leave "A"
// as the commit has it: Union used to write "a" over it, UnionAdd to drop
// "a" and UnionIdentical to compare "a" with "A".
func TestCaseCollisionRefused(t *testing.T) {
	r, ids, meta := storedFiles(t, "upper\n", "lower\n")
	upper, lower := ids[0], ids[1]
	rootID, subID := repo.ID{1}, repo.ID{2}
	root := &repo.DirTree{Dirs: []repo.DirEntry{{Name: "D", TreeID: subID, MetaID: meta}}}
	sub := &repo.DirTree{Files: []repo.FileEntry{{Name: "A", ID: upper}, {Name: "a", ID: lower}}}

	for _, mode := range []string{"none", "Union", "UnionAdd", "UnionIdentical"} {
		t.Run(mode, func(t *testing.T) {
			opts := Options{UserMode: true, RequireHardlinks: true}
			switch mode {
			case "Union":
				opts.Union = true
			case "UnionAdd":
				opts.UnionAdd = true
			case "UnionIdentical":
				opts.UnionIdentical = true
			}
			dest := filepath.Join(t.TempDir(), "dest")
			c, err := newCheckouter(context.Background(), r, dest, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(c.objFd)
			c.readTree = func(id repo.ID) (*repo.DirTree, error) {
				if id == rootID {
					return root, nil
				}
				// D was just made: "a" will be "A" once that is linked.
				obj := r.Path("objects", objectRel(upper))
				if err := os.Link(obj, filepath.Join(dest, "D", "a")); err != nil {
					t.Fatal(err)
				}
				return sub, nil
			}
			c.listDir = func(fd int, path string) ([]string, error) {
				names, err := dirent.NamesApart(fd, path)
				return slices.DeleteFunc(names, func(s string) bool { return s == "a" }), err
			}
			_, err = c.run(&dirNode{tree: rootID, metaID: meta, fd: -1})
			d := filepath.Join(dest, "D")
			if err == nil || !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), d+"/a:") || !strings.Contains(err.Error(), d+"/A,") {
				t.Errorf("checkout: %v; want an error naming %s/a and %s/A", err, d, d)
			}
			if got, err := os.ReadFile(filepath.Join(d, "A")); err != nil || string(got) != "upper\n" {
				t.Errorf("%s/A holds %q (%v), want the commit's %q", d, got, err, "upper\n")
			}
		})
	}
}

// A union into a directory it may write into but not list (mode 0300, for
// a user other than its owner) goes on as before: the check for names the
// directory does not tell apart needs the listing, and is skipped.
func TestUnionUnlistableDirectory(t *testing.T) {
	r, ids, meta := storedFiles(t, "a\n", "b\n")
	files := []repo.FileEntry{{Name: "a", ID: ids[0]}, {Name: "b", ID: ids[1]}}
	dest := filepath.Join(t.TempDir(), "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dest, "a"), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := newCheckouter(context.Background(), r, dest, Options{UserMode: true, Union: true})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c.objFd)
	c.readTree = func(repo.ID) (*repo.DirTree, error) { return &repo.DirTree{Files: files}, nil }
	c.listDir = func(int, string) ([]string, error) { return nil, unix.EACCES }
	if _, err := c.run(&dirNode{tree: repo.ID{1}, metaID: meta, fd: -1}); err != nil {
		t.Fatalf("union: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "a")); err != nil || string(got) != "a\n" {
		t.Errorf("%s/a holds %q (%v), want %q", dest, got, err, "a\n")
	}
}

// A directory of the commit whose name the destination finds taken by
// another entry of the commit is refused as a file is, naming both: a
// union would otherwise merge the two (two directories "X" and "x") or
// fail naming one. The test's view: once the commit's "X" is in place,
// "x" is another link of it, which the listing does not show.
func TestCaseCollisionRefusedForDirectory(t *testing.T) {
	r, ids, meta := storedFiles(t, "upper\n")
	upper := ids[0]
	rootID, subID := repo.ID{1}, repo.ID{2}
	root := &repo.DirTree{Files: []repo.FileEntry{{Name: "X", ID: upper}}, Dirs: []repo.DirEntry{{Name: "x", TreeID: subID, MetaID: meta}}}

	for _, union := range []bool{false, true} {
		dest := filepath.Join(t.TempDir(), "dest")
		c, err := newCheckouter(context.Background(), r, dest, Options{UserMode: true, RequireHardlinks: true, Union: union})
		if err != nil {
			t.Fatal(err)
		}
		c.readTree = func(id repo.ID) (*repo.DirTree, error) {
			if id != rootID {
				return &repo.DirTree{}, nil
			}
			obj := r.Path("objects", objectRel(upper))
			for _, name := range []string{"X", "x"} {
				if err := os.Link(obj, filepath.Join(dest, name)); err != nil {
					t.Fatal(err)
				}
			}
			return root, nil
		}
		c.listDir = func(fd int, path string) ([]string, error) {
			names, err := dirent.NamesApart(fd, path)
			return slices.DeleteFunc(names, func(s string) bool { return s == "x" }), err
		}
		_, err = c.run(&dirNode{tree: rootID, metaID: meta, fd: -1})
		unix.Close(c.objFd)
		if err == nil || !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), dest+"/x:") || !strings.Contains(err.Error(), dest+"/X,") {
			t.Errorf("union=%v: checkout: %v; want an error naming %s/x and %s/X", union, err, dest, dest)
		}
	}
}

// An entry found under a name the commit does not have (an admin's README
// where the commit writes readme, in a directory that does not tell them
// apart) is no collision of the commit's: the union's rules apply, and
// --union writes the commit's file there.
func TestCaseCollisionWithForeignNameLeftToUnion(t *testing.T) {
	r, ids, meta := storedFiles(t, "other\n", "readme\n")
	files := []repo.FileEntry{{Name: "other", ID: ids[0]}, {Name: "readme", ID: ids[1]}}
	dest := filepath.Join(t.TempDir(), "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	// The admin's README, which the directory also finds as readme.
	if err := os.WriteFile(filepath.Join(dest, "README"), []byte("admin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dest, "README"), filepath.Join(dest, "readme")); err != nil {
		t.Fatal(err)
	}
	c, err := newCheckouter(context.Background(), r, dest, Options{UserMode: true, Union: true})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c.objFd)
	c.readTree = func(repo.ID) (*repo.DirTree, error) { return &repo.DirTree{Files: files}, nil }
	c.listDir = func(fd int, path string) ([]string, error) {
		names, err := dirent.NamesApart(fd, path)
		return slices.DeleteFunc(names, func(s string) bool { return s == "readme" }), err
	}
	if _, err := c.run(&dirNode{tree: repo.ID{1}, metaID: meta, fd: -1}); err != nil {
		t.Fatalf("union over a name the commit does not have: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "readme")); err != nil || string(got) != "readme\n" {
		t.Errorf("%s/readme holds %q (%v), want the commit's %q", dest, got, err, "readme\n")
	}
}
