package checkout

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// Two workers that decompress one object at once (two paths of the same
// content) both miss the cache; the one whose link into the cache finds
// the other's entry there replaces its file with a link of that entry, so
// that both paths share one inode, as in a checkout that links them from
// the cache.
func TestDecompressedTwiceSharesTheEntry(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("one content at two paths\n")
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
	id := repo.FileID(h, content)
	if _, err := txn.WriteFile(h, id, content); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}

	dest := filepath.Join(t.TempDir(), "co")
	if err := unix.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := newCheckouter(ctx, r, dest, Options{UserMode: true, UncompressedCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c.objFd)
	defer c.heads.Close()
	if c.cacheFd < 0 {
		t.Fatal("the checkout does not use the cache")
	}
	defer unix.Close(c.cacheFd)
	fd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	n := &dirNode{path: dest, fd: fd}

	var ws [2]*worker
	var objs [2]object
	names := [2]string{"a", "b"}
	for i := range ws {
		ws[i] = newWorker(c)
		objs[i] = object{id: id, rel: objectRel(id), fd: -1}
		if err := ws[i].load(&objs[i]); err != nil {
			t.Fatal(err)
		}
		defer objs[i].close()
		if cached, err := ws[i].linkCached(n, names[i], &objs[i]); cached || err != nil {
			t.Fatalf("%s: linked from an empty cache (%v)", names[i], err)
		}
	}
	for i := range ws {
		if err := ws[i].copyRegular(n, names[i], &objs[i], c.wantMode(h)); err != nil {
			t.Fatal(err)
		}
	}
	var a, b, e unix.Stat_t
	for p, st := range map[string]*unix.Stat_t{
		filepath.Join(dest, "a"): &a, filepath.Join(dest, "b"): &b,
		r.Path(repo.UncompressedCacheDir, repo.UncompressedCacheEntry(id)): &e,
	} {
		if err := unix.Lstat(p, st); err != nil {
			t.Fatal(err)
		}
	}
	if a.Ino != e.Ino || b.Ino != e.Ino {
		t.Errorf("a, b and the cache entry are inodes %d, %d and %d; want one", a.Ino, b.Ino, e.Ino)
	}
	if ents, _ := filepath.Glob(filepath.Join(dest, ".otree-*")); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}
