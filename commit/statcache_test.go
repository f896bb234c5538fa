package commit_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/limitread/limitreadtest"
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
	// A tree of hardlinks to the objects, as a hardlink checkout makes.
	farm := linkFarm(t, r, res.Commit)
	c := mustCommit(t, r, res.Commit)
	again := commitDir(t, r, "main", farm, func(o *commit.Options) { o.NoStatCache = true })
	if again.Stats.FilesHashed != 0 {
		t.Errorf("hashed %d hardlinked files, want 0", again.Stats.FilesHashed)
	}
	if mustCommit(t, r, again.Commit).RootTree != c.RootTree {
		t.Error("hardlink farm committed as a different tree")
	}
}

// A stat override applies to a hardlink of an object too: the object's
// id is taken from the inode only for a file no override names, since the
// override changes the header and so the id.
func TestHardlinkOfObjectWithStatOverride(t *testing.T) {
	r := newRepo(t, repo.ModeBareUserOnly)
	src := makeTree(t, testtree.Tree{"x/a": testtree.File("aaaa", 0o644), "b": testtree.File("bb", 0o755)})
	first := commitDir(t, r, "main", src, func(o *commit.Options) { o.NoStatCache = true })
	farm := linkFarm(t, r, first.Commit)
	res := commitDir(t, r, "main", farm, func(o *commit.Options) {
		o.NoStatCache = true
		o.StatOverrides = []commit.StatOverride{{Path: "/x/a", Set: true, Mode: 0o600}}
	})
	got := readCommit(t, r, res.Commit, false)
	if m := got["x/a"].Mode; m != 0o600 {
		t.Errorf("hardlink of an object with a stat override 0600: committed mode %04o", m)
	}
	if m := got["b"].Mode; m != 0o755 {
		t.Errorf("hardlink of an object without an override: committed mode %04o, want 0755", m)
	}
}

// A file too new to trust (here its mtime is in the future) is recorded
// without its stat, and so read again by every commit until it is old
// enough: a write in the same tick would not have changed its stat.
func TestStatCacheRereadsTooNewFile(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"f": testtree.File("ffff", 0o644)})
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(src, "f"), future, future); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if n := commitDir(t, r, "main", src).Stats.FilesHashed; n != 1 {
			t.Errorf("commit %d read %d files, want 1 (the file too new to trust)", i+1, n)
		}
	}
}

// linkFarm hardlinks every file of a commit's tree into a new directory,
// as a hardlink checkout does.
func linkFarm(t testing.TB, r *repo.Repo, commitID repo.ID) string {
	t.Helper()
	farm := filepath.Join(t.TempDir(), "farm")
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
	link(farm, mustCommit(t, r, commitID).RootTree)
	return farm
}

// A hardlink of an object shares the object's inode, so a chmod, chown,
// setfattr or write through it changes the object as well. Such a file is
// taken unread only while its inode still matches the object's header;
// once changed it is read, and the commit records it as it now is. In the
// bare modes nothing but the inode and the file-header index records the
// header: an object the index lacks is read once, and indexed.
func TestChangedHardlinksOfObjectsAreRead(t *testing.T) {
	modes := []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly}
	root := os.Getuid() == 0
	if root {
		modes = append(modes, repo.ModeBare)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			r := newRepo(t, mode)
			noCache := func(o *commit.Options) { o.NoStatCache = true }
			src := makeTree(t, testtree.Tree{"a": testtree.File("aaaa", 0o644), "b": testtree.File("bbbb", 0o644),
				"c": testtree.File("cccc", 0o644), "d/e": testtree.File("eeee", 0o755),
				"x": {Mode: 0o640, Content: "xxxx", Xattrs: map[string]string{"user.k": "v"}}})
			first := commitDir(t, r, "main", src, noCache)
			farm := linkFarm(t, r, first.Commit)
			before := readCommit(t, r, first.Commit, true)

			if mode == repo.ModeBare {
				trusted := commitDir(t, r, "main", farm, noCache, func(o *commit.Options) { o.DevinoCanonical = true })
				if trusted.Stats.FilesHashed != 0 {
					t.Errorf("DevinoCanonical: hashed %d hardlinks, want 0", trusted.Stats.FilesHashed)
				}
			}
			again := commitDir(t, r, "main", farm, noCache)
			if again.Stats.FilesHashed != 0 {
				t.Errorf("unchanged hardlinks: hashed %d, want 0", again.Stats.FilesHashed)
			}
			if mustCommit(t, r, again.Commit).RootTree != mustCommit(t, r, first.Commit).RootTree {
				t.Error("unchanged hardlinks committed as a different tree")
			}
			if mode != repo.ModeBareUser { // there the object's xattr gives its header
				if err := os.Remove(filepath.Join(r.CacheDir(), "file-headers")); err != nil {
					t.Fatal(err)
				}
				for i, want := range []int64{5, 0} {
					res := commitDir(t, r, "main", farm, noCache)
					if res.Stats.FilesHashed != want {
						t.Errorf("without a file-header index, commit %d: hashed %d hardlinks, want %d", i+1, res.Stats.FilesHashed, want)
					}
				}
			}

			want := before
			if err := os.Chmod(filepath.Join(farm, "a"), 0o600); err != nil {
				t.Fatal(err)
			}
			want["a"] = testtree.Entry{Mode: 0o600, Content: "aaaa"}
			// Same size, new content: the write shows in the mtime.
			if err := os.WriteFile(filepath.Join(farm, "c"), []byte("CCCC"), 0o644); err != nil {
				t.Fatal(err)
			}
			want["c"] = testtree.Entry{Mode: 0o644, Content: "CCCC"}
			changed := 2
			if mode != repo.ModeBareUserOnly { // there xattrs and owners are not recorded
				if err := unix.Lsetxattr(filepath.Join(farm, "b"), "user.z", []byte("1"), 0); err != nil {
					t.Fatal(err)
				}
				want["b"] = testtree.Entry{Mode: 0o644, Content: "bbbb", Xattrs: map[string]string{"user.z": "1"}}
				// Same names, another value.
				if err := unix.Lsetxattr(filepath.Join(farm, "x"), "user.k", []byte("w"), 0); err != nil {
					t.Fatal(err)
				}
				want["x"] = testtree.Entry{Mode: 0o640, Content: "xxxx", Xattrs: map[string]string{"user.k": "w"}}
				changed += 2
				if root {
					if err := os.Chown(filepath.Join(farm, "d/e"), 1234, 5678); err != nil {
						t.Fatal(err)
					}
					want["d/e"] = testtree.Entry{Mode: 0o755, Content: "eeee", UID: 1234, GID: 5678}
					changed++
				}
			}
			res := commitDir(t, r, "main", farm, noCache)
			if got := res.Stats.FilesHashed; got != int64(changed) {
				t.Errorf("after changes: hashed %d files, want %d", got, changed)
			}
			if d := cmp.Diff(want, readCommit(t, r, res.Commit, true)); d != "" {
				t.Errorf("changed hardlinks (-want +got):\n%s", d)
			}
		})
	}
}

// The stat cache is an optimisation only: after any sequence of changes to
// a tree, a commit that uses it must give exactly the tree a commit without
// it gives. Rounds change files in place (same size, mtime put back),
// re-mode files and directories, set xattrs, add, delete and rename
// entries, swap files and directories, retarget symlinks, and commit a
// subdirectory as a root of its own in between, with and without waiting
// past the racy window.
func TestStatCacheMatchesUncachedCommits(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{})
	rng := rand.New(rand.NewPCG(7, 11))
	put := func(rel, content string) {
		p := filepath.Join(src, rel)
		if os.MkdirAll(filepath.Dir(p), 0o755) != nil {
			return // a parent is a file now
		}
		os.RemoveAll(p)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for d := 0; d < 4; d++ {
		for f := 0; f < 6; f++ {
			put(fmt.Sprintf("d%d/s%d/f%d", d, f%2, f), fmt.Sprintf("file %d %d", d, f))
		}
		os.Symlink("s0/f0", filepath.Join(src, fmt.Sprintf("d%d/link", d)))
	}
	existing := func(dirs bool) []string {
		var out []string
		filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
			if err == nil && p != src && e.IsDir() == dirs {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	pick := func(dirs bool) string {
		l := existing(dirs)
		if len(l) == 0 {
			return ""
		}
		return l[rng.IntN(len(l))]
	}
	check := func(round int, root, what string) {
		t.Helper()
		cached := commitDir(t, r, "cached", root)
		plain := commitDir(t, r, "plain", root, func(o *commit.Options) { o.NoStatCache = true })
		a, b := mustCommit(t, r, cached.Commit), mustCommit(t, r, plain.Commit)
		if a.RootTree != b.RootTree || a.RootMeta != b.RootMeta {
			t.Fatalf("round %d (%s), %s: with the stat cache the tree is %s/%s, without %s/%s",
				round, what, root, a.RootTree, a.RootMeta, b.RootTree, b.RootMeta)
		}
	}
	for round := 0; round < 40; round++ {
		var did []string
		for n := 1 + rng.IntN(3); n > 0; n-- {
			switch op := rng.IntN(10); op {
			case 0: // same size, mtime put back: only ctime moves
				if p := pick(false); p != "" {
					if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
						b, _ := os.ReadFile(p)
						b[0] ^= 0x20
						os.WriteFile(p, b, 0)
						os.Chtimes(p, fi.ModTime(), fi.ModTime())
						did = append(did, "rewrite "+p)
					}
				}
			case 1:
				if p := pick(false); p != "" {
					os.Chmod(p, os.FileMode(0o600+rng.IntN(2)*0o155))
					did = append(did, "chmod "+p)
				}
			case 2:
				if p := pick(true); p != "" {
					os.Chmod(p, os.FileMode(0o700+rng.IntN(2)*0o55))
					did = append(did, "chmod dir "+p)
				}
			case 3:
				put(fmt.Sprintf("d%d/s%d/n%d", rng.IntN(5), rng.IntN(3), round), fmt.Sprint("new ", round))
				did = append(did, "add")
			case 4:
				if p := pick(rng.IntN(4) == 0); p != "" {
					os.RemoveAll(p)
					did = append(did, "delete "+p)
				}
			case 5:
				if p := pick(false); p != "" {
					q := filepath.Join(filepath.Dir(p), fmt.Sprint("r", round))
					os.Rename(p, q)
					did = append(did, "rename "+p)
				}
			case 6: // a file becomes a directory and a directory a file
				if p := pick(false); p != "" {
					os.Remove(p)
					os.MkdirAll(filepath.Join(p, "in"), 0o755)
					os.WriteFile(filepath.Join(p, "in", "x"), []byte("x"), 0o644)
					did = append(did, "file to dir "+p)
				}
				if p := pick(true); p != "" && rng.IntN(2) == 0 {
					os.RemoveAll(p)
					os.WriteFile(p, []byte("was a dir"), 0o644)
					did = append(did, "dir to file "+p)
				}
			case 7:
				if p := pick(true); p != "" {
					l := filepath.Join(p, "link")
					os.Remove(l)
					os.Symlink(fmt.Sprint("target", rng.IntN(3)), l)
					did = append(did, "symlink "+l)
				}
			case 8:
				if p := pick(rng.IntN(2) == 0); p != "" {
					unix.Lsetxattr(p, "user.round", []byte(fmt.Sprint(round)), 0)
					did = append(did, "xattr "+p)
				}
			case 9: // a whole directory moves
				if p := pick(true); p != "" && p != src {
					q := filepath.Join(src, fmt.Sprint("moved", round))
					os.Rename(p, q)
					did = append(did, "move "+p)
				}
			}
		}
		if rng.IntN(3) > 0 {
			time.Sleep(150 * time.Millisecond) // past the racy window: entries get recorded
		}
		what := strings.Join(did, "; ")
		if sub := pick(true); sub != "" && rng.IntN(4) == 0 {
			check(round, sub, what) // a nested root shares the cache's records
		}
		check(round, src, what)
	}
}

// A damaged cache file is ignored (every file is hashed again) and
// replaced; it never gives a wrong id.
func TestStatCacheDamagedFile(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"a": testtree.File("aaaa", 0o644), "d/b": testtree.File("bbbb", 0o644)})
	time.Sleep(150 * time.Millisecond)
	want := mustCommit(t, r, commitDir(t, r, "main", src).Commit).RootTree
	path := commit.StatCachePath(r)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-7] },
		"empty":        func([]byte) []byte { return nil },
		"foreign":      func(b []byte) []byte { return append([]byte("otree-statcache0"), b[16:]...) },
	} {
		if err := os.WriteFile(path, damage(append([]byte(nil), good...)), 0o644); err != nil {
			t.Fatal(err)
		}
		res := commitDir(t, r, "main", src)
		if res.Stats.FilesHashed != 2 {
			t.Errorf("%s: hashed %d files, want 2 (the cache should be ignored)", name, res.Stats.FilesHashed)
		}
		if got := mustCommit(t, r, res.Commit).RootTree; got != want {
			t.Fatalf("%s: tree %s, want %s", name, got, want)
		}
		if again := commitDir(t, r, "main", src); again.Stats.FilesHashed != 0 {
			t.Errorf("%s: the cache was not rewritten: the next commit hashed %d files", name, again.Stats.FilesHashed)
		}
	}
}

// A file too new to trust when a directory was recorded must still keep
// the record from vouching for the directory's dirtree: deleting the file
// later leaves entries that all match, and a dirtree that still listed it
// would bring it back.
func TestStatCacheNewFileThenDeleted(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"d/a": testtree.File("old", 0o644), "d/sub/x": testtree.File("x", 0o644)})
	time.Sleep(150 * time.Millisecond)
	commitDir(t, r, "main", src) // d/a recorded
	os.WriteFile(filepath.Join(src, "d/b"), []byte("new"), 0o644)
	commitDir(t, r, "main", src) // d/b too new to trust
	time.Sleep(150 * time.Millisecond)
	os.Remove(filepath.Join(src, "d/b"))
	cached := mustCommit(t, r, commitDir(t, r, "main", src).Commit)
	plain := mustCommit(t, r, commitDir(t, r, "plain", src, func(o *commit.Options) { o.NoStatCache = true }).Commit)
	if cached.RootTree != plain.RootTree {
		t.Fatalf("after deleting a file recorded as too new, the cached commit gave tree %s, want %s", cached.RootTree, plain.RootTree)
	}
}

// With a skip list and nothing changed, the cache answers for every
// directory and is not rewritten.
func TestStatCacheSkipListUnchanged(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"a/b/c": testtree.File("c", 0o644), "a/keep": testtree.File("k", 0o644)})
	time.Sleep(150 * time.Millisecond)
	skip := func(o *commit.Options) { o.SkipList = []string{"/a/b"} }
	first := commitDir(t, r, "main", src, skip)
	commitDir(t, r, "main", src, skip)
	var before, after unix.Stat_t
	if err := unix.Stat(commit.StatCachePath(r), &before); err != nil {
		t.Fatal(err)
	}
	again := commitDir(t, r, "main", src, skip)
	unix.Stat(commit.StatCachePath(r), &after)
	if before.Ino != after.Ino || before.Mtim != after.Mtim {
		t.Error("an unchanged re-commit with a skip list rewrote the stat cache")
	}
	if mustCommit(t, r, again.Commit).RootTree != mustCommit(t, r, first.Commit).RootTree {
		t.Error("the tree changed")
	}
	if _, ok := readCommit(t, r, again.Commit, false)["a/b/c"]; ok {
		t.Error("a skipped path was committed")
	}
}

// A file that DevinoCanonical takes unchecked as the object it is a
// hardlink of is not recorded in the stat cache: a later commit without
// the option would otherwise take the object's header from the cache for
// a file chmod-ed through its link.
func TestDevinoCanonicalLeavesStatCacheUnfilled(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"a": testtree.File("aaaa", 0o644), "b": testtree.File("bbbb", 0o644)})
	first := commitDir(t, r, "main", src, func(o *commit.Options) { o.NoStatCache = true })
	farm := linkFarm(t, r, first.Commit)
	if err := os.Chmod(filepath.Join(farm, "a"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Past the racy window, so that the cache would record the file.
	time.Sleep(2100 * time.Millisecond)
	trusted := commitDir(t, r, "main", farm, func(o *commit.Options) { o.DevinoCanonical = true })
	if m := readCommit(t, r, trusted.Commit, false)["a"].Mode; m != 0o644 {
		t.Fatalf("DevinoCanonical committed a as %v, want the object's 0644", m)
	}
	res := commitDir(t, r, "main", farm)
	if m := readCommit(t, r, res.Commit, false)["a"].Mode; m != 0o600 {
		t.Errorf("after a DevinoCanonical commit, a commit without it recorded a as %v, want 0600 as on disk", m)
	}
}

// A stat cache whose fingerprint lacks flag 32 comes from a build that
// could record a hardlink of an object as the object it linked to, whose
// header the file no longer had: such a cache is not used, and a commit
// reads the files it lists.
func TestStatCacheOfEarlierBuildsNotUsed(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"a": testtree.File("same", 0o644), "b": testtree.File("same", 0o600)})
	// Past the racy window, so that the cache records both files.
	time.Sleep(2100 * time.Millisecond)
	first := commitDir(t, r, "main", src)
	dt, err := r.ReadDirTree(mustCommit(t, r, first.Commit).RootTree)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]repo.ID{}
	for _, f := range dt.Files {
		ids[f.Name] = f.ID
	}

	// Make the cache what such a build wrote: its fingerprint (bare-user,
	// no flags, no overrides, per FORMAT.md §12) and a's entry naming the
	// object of b, which differs from a's only by its mode.
	path := commit.StatCachePath(r)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const magicLen = 16
	old := hash.Sum([]byte{2, 0, 0, 0})
	copy(data[magicLen:], old[:])
	body := data[:len(data)-4]
	a, b := ids["a"], ids["b"]
	if n := bytes.Count(body, a[:]); n != 1 {
		t.Fatalf("a's id found %d times in the cache, want once", n)
	}
	copy(body[bytes.Index(body, a[:]):], b[:])
	binary.LittleEndian.PutUint32(data[len(body):], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// A new file, so that the directory's dirtree is built from entries.
	if err := os.WriteFile(filepath.Join(src, "c"), []byte("c"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := commitDir(t, r, "main", src)
	if m := readCommit(t, r, second.Commit, false)["a"].Mode; m != 0o644 {
		t.Errorf("with an earlier build's stat cache, a was recorded as %v, want 0644 as on disk", m)
	}
	if second.Stats.FilesHashed != 3 {
		t.Errorf("with an earlier build's stat cache, hashed %d files, want 3", second.Stats.FilesHashed)
	}
}

// Saving the stat cache holds it once: a commit of a small directory into a
// repository whose cache holds the records of a large tree writes them all
// again (other trees' records are kept), and used to build the file by
// appending to a growing buffer, allocating about five times its size.
func TestStatCacheSaveAllocatesItOnce(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	big := t.TempDir()
	name := strings.Repeat("n", 60)
	for d := range 400 {
		dir := filepath.Join(big, fmt.Sprintf("dir%03d-%s", d, name))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 20 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d-%s", f, name)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	commitDir(t, r, "big", big)
	// A first small commit saves stamps of the fan-out directories the big
	// one filled, so that the next does not check the big tree's objects
	// one by one: what is left to measure is the save itself.
	time.Sleep(200 * time.Millisecond)
	commitDir(t, r, "small1", makeTree(t, testtree.Tree{"a": testtree.File("a", 0o644)}))
	st, err := os.Stat(commit.StatCachePath(r))
	if err != nil {
		t.Fatal(err)
	}
	small := makeTree(t, testtree.Tree{"b": testtree.File("b", 0o644)})
	alloc := limitreadtest.Allocated(func() { commitDir(t, r, "small2", small) })
	after, err := os.Stat(commit.StatCachePath(r))
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() <= st.Size() {
		t.Fatalf("stat cache went from %d to %d bytes; want it rewritten with the small tree's record", st.Size(), after.Size())
	}
	// What the same commit allocates where the cache is small: the walk's
	// buffers and the rest that does not grow with the cache.
	r0 := newRepo(t, repo.ModeBareUser)
	commitDir(t, r0, "small1", makeTree(t, testtree.Tree{"a": testtree.File("a", 0o644)}))
	base := limitreadtest.Allocated(func() { commitDir(t, r0, "small2", small) })
	if limit := base + uint64(st.Size())*3/2; alloc > limit {
		t.Errorf("committing one file with a stat cache of %d KiB allocated %d KiB, %d KiB without it; want at most %d KiB", st.Size()>>10, alloc>>10, base>>10, limit>>10)
	}
}

// The records of another tree are kept while that tree is there, and
// dropped once it is gone: a build server committing a fresh directory
// each time otherwise grew its cache, and the checks of each save, by one
// tree per commit, for good.
func TestStatCacheDropsGoneTrees(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	tree := testtree.Tree{"a": testtree.File("a", 0o644), "d/b": testtree.File("b", 0o644), "d/e/c": testtree.File("c", 0o644)}
	kept, gone, current := makeTree(t, tree), makeTree(t, tree), makeTree(t, tree)
	// A source given as a link to a directory is recorded under the link.
	linked := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(makeTree(t, tree), linked); err != nil {
		t.Fatal(err)
	}
	commitDir(t, r, "kept", kept)
	commitDir(t, r, "gone", gone)
	commitDir(t, r, "linked", linked)
	holds := func(dir string) bool {
		t.Helper()
		data, err := os.ReadFile(commit.StatCachePath(r))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(data, []byte(dir))
	}
	commitDir(t, r, "current", current)
	if !holds(kept) || !holds(gone) || !holds(linked) {
		t.Fatal("the records of the other trees were not kept")
	}
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(current, "new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	commitDir(t, r, "current", current)
	if holds(gone) {
		t.Errorf("the stat cache still holds records of %s, which is gone", gone)
	}
	if !holds(kept) || !holds(current) || !holds(linked) {
		t.Error("records of trees still there were dropped")
	}
	// Nothing changed but a tree going: the records still go.
	if err := os.RemoveAll(kept); err != nil {
		t.Fatal(err)
	}
	commitDir(t, r, "current", current)
	if holds(kept) {
		t.Errorf("the stat cache still holds records of %s, which is gone", kept)
	}
	// A link whose directory is gone: its tree is gone too.
	target, err := os.Readlink(linked)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(target); err != nil {
		t.Fatal(err)
	}
	commitDir(t, r, "current", current)
	if holds(linked) {
		t.Errorf("the stat cache still holds records of %s, whose directory is gone", linked)
	}
}

// A read-only image filesystem stores no change time: every time a file
// shows is one the image's builder chose, and a reproducible build gives
// another image's changed file the same inode, size and times. Mounted
// in place of the first on the same device, it must still be read.
func TestStatCacheImageReplaced(t *testing.T) {
	for _, tc := range []struct {
		name, tool string
		mkfs       func(src, img string) []string
	}{
		{"squashfs", "mksquashfs", func(src, img string) []string {
			return []string{"mksquashfs", src, img, "-quiet", "-noappend", "-all-time", "1700000000"}
		}},
		{"erofs", "mkfs.erofs", func(src, img string) []string {
			return []string{"mkfs.erofs", "--quiet", "-T1700000000", img, src}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := exec.LookPath(tc.tool); err != nil {
				t.Skipf("%s is not installed", tc.tool)
			}
			dir := t.TempDir()
			var imgs [2][]byte
			for i, content := range []string{"version one\n", "version TWO\n"} {
				src := filepath.Join(dir, fmt.Sprint("src", i))
				testtree.Create(t, src, testtree.Tree{"d/f": testtree.File(content, 0o644), "d/g": testtree.File("same\n", 0o644)})
				img := filepath.Join(dir, fmt.Sprint("img", i))
				cmd := tc.mkfs(src, img)
				if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", cmd[0], err, out)
				}
				b, err := os.ReadFile(img)
				if err != nil {
					t.Fatal(err)
				}
				// Both the same size, so that the loop device's does
				// not change when one replaces the other.
				imgs[i] = append(b, make([]byte, 1<<20-len(b))...)
			}
			img := filepath.Join(dir, "disk")
			if err := os.WriteFile(img, imgs[0], 0o644); err != nil {
				t.Fatal(err)
			}
			mnt, dev := testtree.MountImage(t, img, tc.name, unix.MS_RDONLY)
			r := newRepo(t, repo.ModeBareUser)
			var before unix.Stat_t
			if err := unix.Lstat(filepath.Join(mnt, "d/f"), &before); err != nil {
				t.Fatal(err)
			}
			// The image is committed as the source, as a mount below
			// it (bound into a directory of another filesystem), and
			// as the lower layer of an overlay, whose files show the
			// image's inodes and times.
			parent := t.TempDir()
			sub := filepath.Join(parent, "image")
			ovl, empty := t.TempDir(), t.TempDir()
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			commitBoth := func(want string) {
				t.Helper()
				if err := unix.Mount(mnt, sub, "", unix.MS_BIND, ""); err != nil {
					t.Fatal(err)
				}
				defer unix.Unmount(sub, 0)
				srcs := map[string]string{"main": mnt, "nested": parent}
				// An overlay needs two lower layers when it has no upper.
				switch err := unix.Mount("overlay", ovl, "overlay", unix.MS_RDONLY, "lowerdir="+mnt+":"+empty); {
				case err == nil:
					defer unix.Unmount(ovl, 0)
					srcs["overlay"] = ovl
				case errors.Is(err, unix.ENODEV):
					t.Log("the kernel lacks overlayfs: the overlay is not committed")
				default:
					t.Fatalf("mounting an overlay of %s: %v", mnt, err)
				}
				for branch, src := range srcs {
					res := commitDir(t, r, branch, src)
					p := "d/f"
					if branch == "nested" {
						p = "image/d/f"
					}
					if got := readCommit(t, r, res.Commit, false)[p].Content; got != want {
						t.Errorf("commit of %s has %s %q, want %q", src, p, got, want)
					}
				}
			}
			commitBoth("version one\n")

			// The second image in place of the first, through the same
			// loop device: the same st_dev.
			testtree.ReplaceImage(t, mnt, dev, img, imgs[1], tc.name, unix.MS_RDONLY)
			var after unix.Stat_t
			if err := unix.Lstat(filepath.Join(mnt, "d/f"), &after); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(mnt, "d/f")); string(b) != "version TWO\n" || after != before {
				t.Fatalf("second image: d/f reads %q with stat %+v, want \"version TWO\\n\" with the first's stat %+v", b, after, before)
			}
			commitBoth("version TWO\n")
		})
	}
}

// A directory whose path is longer than the cache takes (64 KiB, reached
// here 260 directories of 255-byte names deep) is left out of it; its
// record once made the whole file one that loading refused, so that every
// commit after it hashed every file again.
func TestStatCacheDeepPath(t *testing.T) {
	if testing.Short() {
		t.Skip("commits trees thousands of directories deep")
	}
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"a": testtree.File("a", 0o644), "b/c": testtree.File("c", 0o644)})
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("n", 255)
	for range 260 {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	leaf, err := unix.Openat(fd, "leaf", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(leaf, []byte("leaf"))
	unix.Close(leaf)
	// Entries are cached only once their ctime is safely in the past.
	time.Sleep(2100 * time.Millisecond)

	first := commitDir(t, r, "main", src)
	if first.Stats.FilesHashed != 3 {
		t.Fatalf("first commit hashed %d files, want 3", first.Stats.FilesHashed)
	}
	second := commitDir(t, r, "main", src)
	if second.Stats.FilesHashed != 1 {
		t.Fatalf("unchanged re-commit hashed %d files, want 1 (the leaf, below the longest path cached)", second.Stats.FilesHashed)
	}
	if mustCommit(t, r, second.Commit).RootTree != mustCommit(t, r, first.Commit).RootTree {
		t.Fatal("re-commit from the cache gave a different tree")
	}
}

// The records of a tree thousands of directories deep are carried through
// the commit of another tree, and answer for it when it is committed
// again; those of one whose topmost directory is gone are dropped. Each
// record once climbed every directory above it, cleaning each path, so
// that such a tree in the cache cost every later commit minutes (2600
// directories deep: 129 s for a commit of another tree, now under 1 s).
func TestStatCacheCarriesDeepTrees(t *testing.T) {
	if testing.Short() {
		t.Skip("commits trees thousands of directories deep")
	}
	r := newRepo(t, repo.ModeBareUser)
	deep := func() string {
		src := makeTree(t, testtree.Tree{"top": testtree.File("top", 0o644)})
		p := src + strings.Repeat("/d", 2000)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p+"/leaf", []byte("leaf"), 0o644); err != nil {
			t.Fatal(err)
		}
		return src
	}
	kept, gone := deep(), deep()
	other := makeTree(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	// Entries are cached only once their ctime is safely in the past.
	time.Sleep(2100 * time.Millisecond)
	commitDir(t, r, "kept", kept)
	commitDir(t, r, "gone", gone)
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	commitDir(t, r, "other", other)
	data, err := os.ReadFile(commit.StatCachePath(r))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(gone)) {
		t.Errorf("the stat cache still holds records of %s, which is gone", gone)
	}
	if again := commitDir(t, r, "kept", kept); again.Stats.FilesHashed != 0 {
		t.Errorf("re-commit of the deep tree after another's hashed %d files, want 0", again.Stats.FilesHashed)
	}
}

// A write through a hardlink of an object that keeps the size and puts
// mtime 0 back (rsync --inplace between two checkouts, touch -d @0) leaves
// the inode looking as the object's header says, though the object's
// content changed with it. Where the stat cache recorded that inode at
// that path, its ctime shows the change: the file is read, and the commit
// records its content as it now is, not the object's id.
func TestHardlinkWrittenWithMtimeRestoredIsRead(t *testing.T) {
	modes := []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly}
	if os.Getuid() == 0 {
		modes = append(modes, repo.ModeBare)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			r := newRepo(t, mode)
			src := makeTree(t, testtree.Tree{"a": testtree.File("aaaa", 0o644), "b": testtree.File("bbbb", 0o644)})
			first := commitDir(t, r, "main", src, func(o *commit.Options) { o.NoStatCache = true })
			farm := linkFarm(t, r, first.Commit)
			time.Sleep(150 * time.Millisecond) // past the racy window: the cache records the links
			commitDir(t, r, "main", farm)
			p := filepath.Join(farm, "a")
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("AAAA"), 0); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := os.Chtimes(p, time.Unix(0, 0), time.Unix(0, 0)); err != nil {
				t.Fatal(err)
			}
			res := commitDir(t, r, "main", farm)
			got := readCommit(t, r, res.Commit, false)
			if got["a"].Content != "AAAA" || got["b"].Content != "bbbb" {
				t.Errorf("after a write through a hardlink, mtime put back: a %q, b %q; want \"AAAA\", \"bbbb\"", got["a"].Content, got["b"].Content)
			}
			if res.Stats.FilesHashed != 1 {
				t.Errorf("hashed %d files, want 1 (the one written)", res.Stats.FilesHashed)
			}
		})
	}
}

// A writable filesystem's times can be a builder's choice too: mke2fs -d
// copies the source's (in whole seconds), and debugfs sets any. Another
// image mounted in place of the first on the same device, its changed file
// with the first's inode, size and times, must still be read.
func TestStatCacheWritableImageReplaced(t *testing.T) {
	for _, tool := range []string{"mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	const uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	var imgs [2][]byte
	for i, content := range []string{"version one\n", "version TWO\n"} {
		src := filepath.Join(dir, fmt.Sprint("src", i))
		testtree.Create(t, src, testtree.Tree{"d/f": testtree.File(content, 0o644), "d/g": testtree.File("same\n", 0o644)})
		img := filepath.Join(dir, fmt.Sprint("img", i))
		if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-U", uuid, "-E", "hash_seed="+uuid, "-d", src, img, "8M").CombinedOutput(); err != nil {
			t.Fatalf("mke2fs: %v\n%s", err, out)
		}
		var cmds strings.Builder
		for _, p := range []string{"/", "/d", "/d/f", "/d/g"} {
			for _, field := range []string{"ctime", "mtime", "atime"} {
				fmt.Fprintf(&cmds, "sif %s %s @1700000000\n", p, field)
			}
		}
		cmdFile := filepath.Join(dir, "cmds")
		if err := os.WriteFile(cmdFile, []byte(cmds.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("debugfs", "-w", "-f", cmdFile, img).CombinedOutput(); err != nil {
			t.Fatalf("debugfs: %v\n%s", err, out)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		imgs[i] = b
	}
	img := filepath.Join(dir, "disk")
	if err := os.WriteFile(img, imgs[0], 0o644); err != nil {
		t.Fatal(err)
	}
	mnt, dev := testtree.MountImage(t, img, "ext4", unix.MS_RDONLY)
	var before unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, "d/f"), &before); err != nil {
		t.Fatal(err)
	}
	r := newRepo(t, repo.ModeBareUser)
	for range 2 { // the second through the cache the first saved
		res := commitDir(t, r, "main", mnt)
		if got := readCommit(t, r, res.Commit, false)["d/f"].Content; got != "version one\n" {
			t.Fatalf("commit of the first image has d/f %q", got)
		}
	}

	testtree.ReplaceImage(t, mnt, dev, img, imgs[1], "ext4", unix.MS_RDONLY)
	var after unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, "d/f"), &after); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(mnt, "d/f")); string(b) != "version TWO\n" || after != before {
		t.Fatalf("second image: d/f reads %q with stat %+v, want \"version TWO\\n\" with the first's stat %+v", b, after, before)
	}
	res := commitDir(t, r, "main", mnt)
	if got := readCommit(t, r, res.Commit, false)["d/f"].Content; got != "version TWO\n" {
		t.Errorf("commit of the second image in the first's place has d/f %q, want %q", got, "version TWO\n")
	}
}

// A stat override names a path from the source's root, so one directory
// committed as part of two sources meets different overrides. What a
// record holds for it under one must not stand under the other: here
// a/b/f and the directory a/b/b are overridden when a is the source, and
// a/b/b/f and a/b/b/b when a/b is.
func TestStatCacheOverrideFollowsSourceRoot(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{
		"a/b/f":   testtree.File("ffff", 0o644),
		"a/b/b/f": testtree.File("ffff", 0o644),
		"a/b/b/b": testtree.Dir(0o755),
	})
	time.Sleep(2100 * time.Millisecond) // old enough to be cached
	overrides := func(o *commit.Options) {
		o.StatOverrides = []commit.StatOverride{{Path: "/b/f", Set: true, Mode: 0o700}, {Path: "/b/b", Set: true, Mode: 0o750}}
	}
	for _, root := range []string{"a", "a/b", "a", "a/b"} {
		dir := filepath.Join(src, root)
		got := readCommit(t, r, commitDir(t, r, "cached", dir, overrides).Commit, false)
		want := readCommit(t, r, commitDir(t, r, "uncached", dir, overrides, func(o *commit.Options) { o.NoStatCache = true }).Commit, false)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("commit of %s through the stat cache differs from one without it (-want +got):\n%s", root, diff)
		}
	}
}

// FAT keeps no change time: Linux shows a file's mtime as its ctime, so a
// same-size write that puts the mtime back leaves the stat as it was. The
// file must still be read.
func TestStatCacheFATMtimePutBack(t *testing.T) {
	if _, err := exec.LookPath("mkfs.vfat"); err != nil {
		t.Skip("mkfs.vfat is not installed")
	}
	img := filepath.Join(t.TempDir(), "fat.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.vfat", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	mnt, _ := testtree.MountImage(t, img, "vfat", 0)
	p := filepath.Join(mnt, "f")
	old := time.Unix(1700000000, 0)
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	write("version one\n")
	time.Sleep(2100 * time.Millisecond) // past the racy window, whatever the ctime shows
	r := newRepo(t, repo.ModeBareUser)
	for range 2 {
		commitDir(t, r, "main", mnt)
	}
	write("version TWO\n")
	res := commitDir(t, r, "main", mnt)
	if got := readCommit(t, r, res.Commit, false)["f"].Content; got != "version TWO\n" {
		t.Errorf("commit after a same-size write with the mtime put back has f %q, want %q", got, "version TWO\n")
	}
}

// A re-commit the stat cache answers whole allocates little beyond what
// the walk keeps: a fresh process pays for each page its heap grows by,
// and such a re-commit is otherwise a stat per entry. The walk's workers
// used to allocate their 1 MiB read buffers before reading anything, and
// to keep each entry's whole stat and grow their lists entry by entry.
func TestRecommitUnchangedAllocatesLittle(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := t.TempDir()
	entries := 0
	for d := range 20 {
		n := 50
		if d == 0 {
			n = 2000 // one large directory, as /usr/bin
		}
		dir := filepath.Join(src, fmt.Sprintf("dir%02d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range n {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%04d", f)), []byte{byte(f)}, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		entries += n + 1
	}
	commitDir(t, r, "main", src)
	time.Sleep(200 * time.Millisecond) // past the racy window: the cache vouches for every entry
	commitDir(t, r, "main", src)
	var res *commit.Result
	alloc := limitreadtest.Allocated(func() { res = commitDir(t, r, "main", src) })
	if res.Stats.FilesHashed != 0 {
		t.Fatalf("the re-commit hashed %d files; want 0", res.Stats.FilesHashed)
	}
	if per := alloc / uint64(entries); per > 400 {
		t.Errorf("re-committing %d unchanged entries allocated %d KiB, %d bytes an entry; want at most 400", entries, alloc>>10, per)
	}
}
