package checkout_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// hiLinked returns the regular files of want that share their object's
// inode in dest.
func hiLinked(t *testing.T, r *repo.Repo, id repo.ID, dest string, want testtree.Tree) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for p, e := range want {
		if e.Mode.IsRegular() {
			got, obj := coStat(t, filepath.Join(dest, p)), coObject(t, r, id, "/"+p)
			out[p] = got.Ino == obj.Ino && got.Dev == obj.Dev
		}
	}
	return out
}

// hiIndex returns what the repository's file-header index says of the
// regular files of tree (nil entries for those it lacks).
func hiIndex(t *testing.T, r *repo.Repo, id repo.ID, tree testtree.Tree) map[string]*repo.IndexedHeader {
	t.Helper()
	x := r.LoadHeaderIndex()
	defer x.Close()
	out := map[string]*repo.IndexedHeader{}
	for p, e := range tree {
		if !e.Mode.IsRegular() {
			continue
		}
		le, err := r.Lookup(id, "/"+p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = nil
		if e, ok := x.Lookup(le.ID); ok {
			out[p] = &e
		}
	}
	return out
}

// A bare-user hardlink checkout takes modes and sizes from the file-header
// index where it has them and adds what it lacked: with the index commit
// wrote, without one, and with the one that checkout wrote, the checkouts
// are the same and link the same files, and the rebuilt index is the one
// commit wrote.
func TestCheckoutHeaderIndex(t *testing.T) {
	tree := coTree()
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, tree))
	want := coExpect(tree, repo.ModeBareUser, true)
	fromCommit := hiIndex(t, r, id, tree)
	for p, h := range fromCommit {
		if h == nil {
			t.Fatalf("commit did not index %s", p)
		}
		e := tree[p]
		mode := uint32(e.Mode.Perm())
		if e.Mode&fs.ModeSetuid != 0 {
			mode |= 0o4000
		}
		if e.Mode&fs.ModeSetgid != 0 {
			mode |= 0o2000
		}
		if h.Mode != mode || h.Size != uint64(len(e.Content)) {
			t.Errorf("%s indexed as mode %o size %d; the tree has %v, %d bytes", p, h.Mode, h.Size, e.Mode, len(e.Content))
		}
	}
	var firstStats *checkout.Stats
	var firstLinked map[string]bool
	for _, run := range []string{"index from commit", "no index", "index from checkout"} {
		if run == "no index" {
			if err := os.RemoveAll(r.CacheDir()); err != nil {
				t.Fatal(err)
			}
		}
		st, dest := coCheckout(t, r, id, "", checkout.Options{UserMode: true})
		if d := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); d != "" {
			t.Fatalf("%s: checkout differs from the tree (-want +got):\n%s", run, d)
		}
		linked := hiLinked(t, r, id, dest, want)
		if firstStats == nil {
			firstStats, firstLinked = st, linked
			continue
		}
		if *st != *firstStats {
			t.Errorf("%s: stats %+v, want %+v", run, *st, *firstStats)
		}
		if d := cmp.Diff(firstLinked, linked); d != "" {
			t.Errorf("%s: other files hardlinked (-first +this):\n%s", run, d)
		}
	}
	if d := cmp.Diff(fromCommit, hiIndex(t, r, id, tree)); d != "" {
		t.Errorf("the index a checkout rebuilt differs from commit's (-commit +checkout):\n%s", d)
	}
}

// The index is what a hardlink checkout consults: with it, an object whose
// header xattr is gone (which fsck reports) is still linked; without it,
// the checkout reports the object corrupt, naming it.
func TestCheckoutHeaderIndexSkipsHeaderRead(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{"f": testtree.File("content", 0o644)}))
	e, err := r.Lookup(id, "/f")
	if err != nil {
		t.Fatal(err)
	}
	obj := r.ObjectPath(repo.KindFile, e.ID)
	if err := unix.Removexattr(obj, "user.otreemeta"); err != nil {
		t.Fatal(err)
	}
	_, dest := coCheckout(t, r, id, "", checkout.Options{UserMode: true})
	if got, o := coStat(t, filepath.Join(dest, "f")), coStat(t, obj); got.Ino != o.Ino {
		t.Error("with the index, f was not hardlinked")
	}
	os.RemoveAll(r.CacheDir())
	_, err = checkout.Checkout(coCtx, r, id, filepath.Join(t.TempDir(), "co"), checkout.Options{UserMode: true})
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.ID != e.ID {
		t.Errorf("without the index: %v, want the object reported corrupt", err)
	}
}
