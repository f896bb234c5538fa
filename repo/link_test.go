package repo_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// storeFiles commits file objects of the given contents (mode 0644) and a
// symlink into r, and returns their ids, the symlink's last.
func storeFiles(t *testing.T, r *repo.Repo, contents ...string) []repo.ID {
	t.Helper()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	var ids []repo.ID
	for _, c := range contents {
		h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(c))}
		id := repo.FileID(h, []byte(c))
		if _, err := txn.WriteFile(h, id, []byte(c)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	h := &repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "somewhere"}
	id := repo.FileID(h, nil)
	if _, err := txn.WriteFile(h, id, nil); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return append(ids, id)
}

// linkOne links file object id of src into dst in a transaction of its
// own, committed when the link succeeds.
func linkOne(t *testing.T, dst, src *repo.Repo, id repo.ID, accept func(*repo.FileHeader) error) (bool, error) {
	t.Helper()
	txn, err := dst.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	isNew, err := txn.LinkFileVerified(src, id, accept)
	if err != nil {
		return isNew, err
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return isNew, nil
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Lstat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Lstat(b)
	if err != nil {
		return false
	}
	return os.SameFile(fa, fb)
}

// LinkFileVerified stores, in every mode, a file object as a hardlink of
// the source's object, which both repositories' fsck accepts; a second
// link finds it stored.
func TestLinkFileVerified(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly, repo.ModeArchive, repo.ModeBare} {
		t.Run(mode.String(), func(t *testing.T) {
			src, dst := newIntegrityRepo(t, mode), newIntegrityRepo(t, mode)
			ids := storeFiles(t, src, "hello\n", strings.Repeat("compress me ", 100))
			for _, id := range ids {
				if isNew, err := linkOne(t, dst, src, id, nil); err != nil || !isNew {
					t.Fatalf("LinkFileVerified(%s) = %v, %v", id, isNew, err)
				}
				if !sameFile(t, src.ObjectPath(repo.KindFile, id), dst.ObjectPath(repo.KindFile, id)) {
					t.Errorf("file object %s is not a hardlink of the source's", id)
				}
				if isNew, err := linkOne(t, dst, src, id, nil); err != nil || isNew {
					t.Errorf("linking %s again = %v, %v; want stored already", id, isNew, err)
				}
			}
			for _, r := range []*repo.Repo{src, dst} {
				if rep, err := r.Fsck(context.Background(), repo.FsckOptions{}); err != nil || !rep.OK() {
					t.Errorf("fsck of %s: %v, %+v", r.Path(), err, rep)
				}
			}
		})
	}
}

// An object is not linked, and nothing is staged, when the repositories'
// modes differ or the source's inode is not what a copy would be (its
// disk mode or mtime changed); content that does not hash to the id is a
// CorruptObjectError naming the source's object; what accept refuses is
// refused.
func TestLinkFileVerifiedRefuses(t *testing.T) {
	src := newIntegrityRepo(t, repo.ModeBareUser)
	ids := storeFiles(t, src, "one\n", "two\n", "three\n", "four\n")
	path := func(i int) string { return src.ObjectPath(repo.KindFile, ids[i]) }
	if _, err := linkOne(t, newIntegrityRepo(t, repo.ModeArchive), src, ids[0], nil); !errors.Is(err, repo.ErrNotLinkable) {
		t.Errorf("linking into another mode: %v, want ErrNotLinkable", err)
	}

	if err := os.Chmod(path(0), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path(1), time.Unix(1, 0), time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path(2))
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if err := os.WriteFile(path(2), b, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path(2), time.Unix(0, 0), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	dst := newIntegrityRepo(t, repo.ModeBareUser)
	txn, err := dst.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	for i, what := range []string{"chmod", "mtime"} {
		if _, err := txn.LinkFileVerified(src, ids[i], nil); !errors.Is(err, repo.ErrNotLinkable) {
			t.Errorf("linking an object after a %s: %v, want ErrNotLinkable", what, err)
		}
	}
	_, err = txn.LinkFileVerified(src, ids[2], nil)
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.ID != ids[2] || ce.Path != path(2) || ce.Actual.IsZero() {
		t.Errorf("linking a corrupt object: %v, want a CorruptObjectError naming %s", err, path(2))
	}
	refused := errors.New("refused")
	if _, err := txn.LinkFileVerified(src, ids[3], func(*repo.FileHeader) error { return refused }); !errors.Is(err, refused) {
		t.Errorf("linking an object accept refuses: %v", err)
	}
	// Each staged link is gone already, before the transaction ends.
	for i := range 4 {
		var st unix.Stat_t
		if err := unix.Stat(path(i), &st); err != nil || st.Nlink != 1 {
			t.Errorf("source object %d: %v, %d links; want the staged link removed", i, err, st.Nlink)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if has, _ := dst.HasObject(repo.KindFile, ids[i]); has {
			t.Errorf("object %d stored after a refused link", i)
		}
	}
	// Once put right, the objects link.
	if err := os.Chmod(path(0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := linkOne(t, dst, src, ids[0], nil); err != nil {
		t.Errorf("linking after the chmod is undone: %v", err)
	}
}

// A link is checked as a copy would be: a bare-user symlink object whose
// stored content no longer repeats its target (the header, which the id
// covers, still verifies) is corrupt, naming the source's object; an
// object this repository would refuse to store (a bare-user-only file
// anyone may write, made by hand with a consistent id) is refused, not
// linked.
func TestLinkFileVerifiedChecksStoredForm(t *testing.T) {
	src := newIntegrityRepo(t, repo.ModeBareUser)
	ids := storeFiles(t, src)
	link := ids[len(ids)-1] // the symlink to "somewhere"
	p := src.ObjectPath(repo.KindFile, link)
	if err := os.WriteFile(p, []byte("elsewhere"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, time.Unix(0, 0), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	_, err := linkOne(t, newIntegrityRepo(t, repo.ModeBareUser), src, link, nil)
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.ID != link || ce.Path != p {
		t.Errorf("linking a symlink object whose stored target was rewritten: %v; want a CorruptObjectError naming %s", err, p)
	}

	buo := newIntegrityRepo(t, repo.ModeBareUserOnly)
	content := []byte("anyone writes\n")
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o666, Size: uint64(len(content))}
	id := repo.FileID(h, content)
	obj := buo.ObjectPath(repo.KindFile, id)
	if err := os.MkdirAll(filepath.Dir(obj), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, content, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(obj, 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Chtimes(obj, time.Unix(0, 0), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	dst := newIntegrityRepo(t, repo.ModeBareUserOnly)
	if _, err := linkOne(t, dst, buo, id, nil); err == nil || !strings.Contains(err.Error(), "refuses mode 0666") || !strings.Contains(err.Error(), id.String()) {
		t.Errorf("linking a bare-user-only object of mode 0666: %v; want it refused, naming the object", err)
	}
	if has, _ := dst.HasObject(repo.KindFile, id); has {
		t.Error("the refused object was stored")
	}
}
