package commit_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// lostTree has a directory of its own mode at each level, so that each
// dirmeta is one directory's alone.
var lostTree = testtree.Tree{
	"a":            testtree.File("hello", 0o644),
	"b":            testtree.File("other", 0o644),
	"sub":          testtree.Dir(0o750),
	"sub/c":        testtree.File("sub c", 0o640),
	"sub/deeper":   testtree.Dir(0o700),
	"sub/deeper/d": testtree.File("deeper d", 0o600),
}

// lose deletes, behind the repository's back, the object of kind that path
// names in commit c: a file object, or a directory's dirtree or dirmeta.
func lose(t *testing.T, r *repo.Repo, c repo.ID, path string, kind repo.Kind) repo.ID {
	t.Helper()
	e, err := r.Lookup(c, path)
	if err != nil {
		t.Fatal(err)
	}
	id := e.ID
	if kind == repo.KindDirMeta {
		id = e.MetaID
	}
	if err := os.Remove(r.ObjectPath(kind, id)); err != nil {
		t.Fatal(err)
	}
	return id
}

// checkWhole fails unless fsck finds nothing wrong in r and commit c holds
// exactly the tree at src.
func checkWhole(t *testing.T, r *repo.Repo, c repo.ID, src string) {
	t.Helper()
	rep, err := r.Fsck(ctx, repo.FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("fsck: %v", p)
	}
	if len(rep.Problems) > 0 {
		return
	}
	want := testtree.Read(t, src, testtree.ReadOptions{})
	if d := cmp.Diff(want, readCommit(t, r, c, false)); d != "" {
		t.Errorf("committed tree differs from the source (-want +got):\n%s", d)
	}
}

// An object deleted from objects/ behind the repository's back leaves the
// stat cache naming it. A re-commit stores it again from the source, as
// OSTree's does, instead of recording a commit that needs a missing
// object: it succeeds, fsck finds nothing wrong, and the tree reads back
// whole. The object is lost after a second commit, which saved stamps of
// the object directories, and a moment before the re-commit, so that the
// stamp of the directory it was in is what must tell.
func TestStatCacheRestoresLostObjects(t *testing.T) {
	type lost struct {
		path string
		kind repo.Kind
	}
	cases := []struct {
		name   string
		lose   []lost
		change string // a file written before the re-commit
		hashed int64  // files the re-commit reads
	}{
		{name: "file", lose: []lost{{"/a", repo.KindFile}}, hashed: 1},
		{name: "file, another changed", lose: []lost{{"/a", repo.KindFile}}, change: "b", hashed: 2},
		{name: "file in a subdirectory", lose: []lost{{"/sub/deeper/d", repo.KindFile}}, hashed: 1},
		{name: "dirtree", lose: []lost{{"/sub", repo.KindDirTree}}},
		{name: "dirtree, a file above changed", lose: []lost{{"/sub/deeper", repo.KindDirTree}}, change: "b", hashed: 1},
		{name: "dirtree and a file in it", lose: []lost{{"/sub/c", repo.KindFile}, {"/sub", repo.KindDirTree}}, hashed: 1},
		{name: "root dirtree", lose: []lost{{"/", repo.KindDirTree}}},
		{name: "dirmeta", lose: []lost{{"/sub/deeper", repo.KindDirMeta}}},
		{name: "root dirmeta", lose: []lost{{"/", repo.KindDirMeta}}},
	}
	type state struct {
		r   *repo.Repo
		src string
		c   repo.ID
	}
	st := make([]state, len(cases))
	// The phases run for every case at once, so that the waits past the
	// racy window are shared.
	for i := range cases {
		st[i].r, st[i].src = newRepo(t, repo.ModeBareUser), makeTree(t, lostTree)
		commitDir(t, st[i].r, "main", st[i].src)
	}
	// Files, directories and the object directories the first commit
	// wrote become old enough to be cached and stamped.
	time.Sleep(2100 * time.Millisecond)
	for i, c := range cases {
		st[i].c = commitDir(t, st[i].r, "main", st[i].src).Commit
		for _, l := range c.lose {
			lose(t, st[i].r, st[i].c, l.path, l.kind)
		}
		if c.change != "" {
			if err := os.WriteFile(filepath.Join(st[i].src, c.change), []byte("changed"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(2100 * time.Millisecond) // the deletions too
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := st[i].r
			res := commitDir(t, r, "main", st[i].src)
			if res.Stats.FilesHashed != c.hashed {
				t.Errorf("the re-commit read %d files, want %d", res.Stats.FilesHashed, c.hashed)
			}
			checkWhole(t, r, res.Commit, st[i].src)
		})
	}
}

// A commit keeps the stat cache's records of the trees it did not walk, so
// that committing several trees to one repository keeps them all; it
// checks the objects those name before it stamps an object directory as
// holding them. Here tree x loses an object, tree y is committed (its run
// sees x's records, unchecked otherwise), and x is re-committed.
func TestStatCacheRestoresLostObjectsOfOtherTrees(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	x := makeTree(t, lostTree)
	y := makeTree(t, testtree.Tree{"y": testtree.File("y", 0o644)})
	commitDir(t, r, "x", x)
	commitDir(t, r, "y", y)
	time.Sleep(2100 * time.Millisecond)
	cx := commitDir(t, r, "x", x).Commit
	commitDir(t, r, "y", y)
	lose(t, r, cx, "/sub/c", repo.KindFile)
	// A change to y makes its commit rewrite the cache.
	if err := os.WriteFile(filepath.Join(y, "new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // the deletion is old when y is committed
	commitDir(t, r, "y", y)
	res := commitDir(t, r, "x", x)
	if res.Stats.FilesHashed != 1 {
		t.Errorf("the re-commit of x read %d files, want 1", res.Stats.FilesHashed)
	}
	checkWhole(t, r, res.Commit, x)
}

// The stamps are what keep the check cheap: once a run has saved them, an
// unchanged re-commit takes the object directories that did not change
// since as holding what the records name, without a stat per object.
func TestStatCacheStampsVouch(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, lostTree)
	commitDir(t, r, "main", src)
	time.Sleep(2100 * time.Millisecond) // objects/ old enough to be stamped
	commitDir(t, r, "main", src)
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	commitDir(t, r, "main", src, func(o *commit.Options) { o.Logger = logger })
	m := regexp.MustCompile(`"object directories stamped"=(\d+)`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no stamp count in the debug log:\n%s", log.String())
	}
	// The second commit wrote its commit object, and the objects/
	// directory holding it, after the stamps were taken: all but that one
	// are vouched for.
	if n, _ := strconv.Atoi(m[1]); n < 255 {
		t.Errorf("%s object directories vouched for by their stamps, want at least 255 of 256", m[1])
	}
}

// A stamp vouches for an object directory only when one was recorded and
// the directory still matches it: a directory too new to stamp when the
// cache was saved, and too new now, vouches for nothing, though the two
// empty stamps are equal. Here the first commit's stamps are all empty
// (objects/ was just made); a file object is then lost, and its directory
// given a time in the future (too new for any run) before the re-commit,
// which must store that object again.
func TestStatCacheUnstampedObjectDirectoryNotVouched(t *testing.T) {
	src := makeTree(t, lostTree)
	time.Sleep(2100 * time.Millisecond) // the source is old enough to be cached
	r := newRepo(t, repo.ModeBareUser)
	c := commitDir(t, r, "main", src).Commit
	id := lose(t, r, c, "/a", repo.KindFile)
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Dir(r.ObjectPath(repo.KindFile, id)), future, future); err != nil {
		t.Fatal(err)
	}
	res := commitDir(t, r, "main", src)
	if res.Stats.FilesHashed != 1 {
		t.Errorf("the re-commit read %d files, want 1 (/a, whose object was lost)", res.Stats.FilesHashed)
	}
	checkWhole(t, r, res.Commit, src)
}
