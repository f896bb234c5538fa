package commit_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

func TestStatCache(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	tree := testtree.Tree{}
	for _, n := range []string{"a", "b", "c", "d/e", "d/f"} {
		tree[n] = testtree.File("content of "+n, 0o644)
	}
	src := makeTree(t, tree)
	// Entries are cached only once their ctime is safely in the past.
	time.Sleep(2100 * time.Millisecond)

	first := commitDir(t, r, "main", src)
	if first.Stats.FilesHashed != 5 {
		t.Fatalf("first commit hashed %d files, want 5", first.Stats.FilesHashed)
	}
	second := commitDir(t, r, "main", src)
	if second.Stats.FilesHashed != 0 {
		t.Fatalf("unchanged re-commit hashed %d files, want 0", second.Stats.FilesHashed)
	}
	if mustCommit(t, r, second.Commit).RootTree != mustCommit(t, r, first.Commit).RootTree {
		t.Fatal("re-commit from the cache gave a different tree")
	}

	// Same size, mtime put back: only ctime betrays the change.
	p := filepath.Join(src, "d/e")
	fi, _ := os.Stat(p)
	if err := os.WriteFile(p, []byte("CONTENT OF d/e"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	third := commitDir(t, r, "main", src)
	if third.Stats.FilesHashed != 1 {
		t.Errorf("after one change, hashed %d files, want 1", third.Stats.FilesHashed)
	}
	if got := readCommit(t, r, third.Commit, false)["d/e"].Content; got != "CONTENT OF d/e" {
		t.Fatalf("changed file committed as %q", got)
	}

	// A chmod alone must also be seen.
	os.Chmod(filepath.Join(src, "a"), 0o600)
	fourth := commitDir(t, r, "main", src)
	if m := readCommit(t, r, fourth.Commit, false)["a"].Mode; m != 0o600 {
		t.Fatalf("chmod not committed: mode %v", m)
	}

	// Directory metadata comes from the cache too, and must follow chmod,
	// xattr changes, and never keep what an overlay put there.
	os.Chmod(filepath.Join(src, "d"), 0o750)
	if m := readCommit(t, r, commitDir(t, r, "main", src).Commit, false)["d"].Mode; m != fs.ModeDir|0o750 {
		t.Fatalf("directory chmod not committed: %v", m)
	}
	// The overlay's root differs from src's; src's root is old enough to
	// be cached, so a leak of the overlay's metadata would show.
	over := makeTree(t, testtree.Tree{"d/extra": testtree.File("o", 0o644)})
	os.Chmod(over, 0o700)
	commitDir(t, r, "merged", src, func(o *commit.Options) {
		o.Sources = append(o.Sources, commit.Source{Kind: commit.SourceDir, Path: over})
	})
	for i := 0; i < 2; i++ { // the second run answers from the cache
		res := commitDir(t, r, "main", src)
		m, err := r.ReadDirMeta(mustCommit(t, r, res.Commit).RootMeta)
		if err != nil || m.Mode != 0o755 {
			t.Fatalf("after an overlay commit, the root committed as %+v (%v), want 0755 from disk", m, err)
		}
		if _, ok := readCommit(t, r, res.Commit, false)["d/extra"]; ok {
			t.Fatal("an overlay's file leaked into a later plain commit")
		}
	}
	if err := unix.Setxattr(filepath.Join(src, "d"), "user.new", []byte("v"), 0); err == nil {
		res := commitDir(t, r, "main", src)
		c := mustCommit(t, r, res.Commit)
		root, _ := r.ReadDirTree(c.RootTree)
		de, _ := root.Dir("d")
		m, err := r.ReadDirMeta(de.MetaID)
		if err != nil || len(m.Xattrs) != 1 || m.Xattrs[0].Name != "user.new" {
			t.Fatalf("directory xattr not committed: %+v %v", m, err)
		}
	}

	// Options that change what files hash to must not reuse the cache.
	uid := uint32(4242)
	owned := commitDir(t, r, "owned", src, func(o *commit.Options) { o.OwnerUID = &uid })
	for n, e := range readCommit(t, r, owned.Commit, true) {
		if e.UID != 4242 {
			t.Errorf("%s: uid %d, want 4242 (a cached id from other options was used?)", n, e.UID)
		}
	}
}

// A file rewritten right after being committed, with the same size and
// mtime, may keep its ctime within the timestamp granularity; the cache
// must not answer for it.
func TestStatCacheRacyFile(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	for i := 0; i < 20; i++ {
		src := makeTree(t, testtree.Tree{"f": testtree.File("aaaa", 0o644)})
		p := filepath.Join(src, "f")
		fi, _ := os.Stat(p)
		commitDir(t, r, "main", src)
		os.WriteFile(p, []byte("bbbb"), 0o644)
		os.Chtimes(p, fi.ModTime(), fi.ModTime())
		res := commitDir(t, r, "main", src)
		if got := readCommit(t, r, res.Commit, false)["f"].Content; got != "bbbb" {
			t.Fatalf("round %d: racy rewrite committed as %q, want the new content", i, got)
		}
	}
}

// Files that are hardlinks of repository objects are recognised by inode
// without being read.
func TestHardlinksOfObjectsAreNotRead(t *testing.T) {
	r := newRepo(t, repo.ModeBareUserOnly)
	tree := testtree.Tree{"x/a": testtree.File(strings.Repeat("a", 5000), 0o644), "b": testtree.File("bb", 0o755)}
	src := makeTree(t, tree)
	res := commitDir(t, r, "main", src, func(o *commit.Options) { o.NoStatCache = true })
	// Build a tree of hardlinks to the objects, as a hardlink checkout does.
	farm := filepath.Join(t.TempDir(), "farm")
	c := mustCommit(t, r, res.Commit)
	var link func(dir string, tid repo.ID)
	link = func(dir string, tid repo.ID) {
		os.MkdirAll(dir, 0o755)
		dt, err := r.ReadDirTree(tid)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range dt.Files {
			if err := os.Link(r.ObjectPath(repo.KindFile, f.ID), filepath.Join(dir, f.Name)); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range dt.Dirs {
			link(filepath.Join(dir, d.Name), d.TreeID)
		}
	}
	link(farm, c.RootTree)
	again := commitDir(t, r, "main", farm, func(o *commit.Options) { o.NoStatCache = true })
	if again.Stats.FilesHashed != 0 {
		t.Errorf("hashed %d hardlinked files, want 0", again.Stats.FilesHashed)
	}
	if mustCommit(t, r, again.Commit).RootTree != c.RootTree {
		t.Error("hardlink farm committed as a different tree")
	}
	var _ fs.FileMode
}
