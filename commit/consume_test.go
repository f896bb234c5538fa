package commit_test

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// consumeErr returns the *ConsumeError of err, failing the test if there
// is none.
func consumeErr(t *testing.T, err error) *commit.ConsumeError {
	t.Helper()
	var ce *commit.ConsumeError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *commit.ConsumeError", err)
	}
	return ce
}

// keptMap gives each kept path relative to root, with its reason.
func keptMap(root string, kept []commit.KeptPath) map[string]commit.KeptReason {
	m := map[string]commit.KeptReason{}
	for _, k := range kept {
		m[strings.TrimPrefix(k.Path, root+"/")] = k.Reason
	}
	return m
}

// Consuming removes only what the commit holds as it is on disk. Entries
// made after the walk, a file replaced by another and one written in
// place after being read, a directory replaced by a symlink to itself
// moved outside the source, and one replaced by another directory, all
// during the commit, are kept and
// reported, and nothing outside the source is touched; the rest goes,
// hardlinks included (removing one name moves the other's ctime), and the
// branch is at the commit.
func TestConsumeKeepsWhatTheCommitDoesNotHold(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{
		"a/f":      testtree.File("f", 0o644),
		"g":        testtree.File("old g", 0o644),
		"keep/x":   testtree.File("old x", 0o644),
		"sub/y":    testtree.File("y", 0o644),
		"ldir/s":   testtree.File("secret", 0o600),
		"rdir/q":   testtree.File("q", 0o644),
		"h1":       testtree.File("linked", 0o644),
		"a/b/c/ln": testtree.Symlink("../../../g"),
	})
	must(t, os.Link(filepath.Join(src, "h1"), filepath.Join(src, "a/h2")))
	outside := t.TempDir()
	// Past the racy window: the stat alone vouches for these entries.
	time.Sleep(150 * time.Millisecond)
	restore := commit.SetConsumeHook(func() {
		must(t, os.WriteFile(filepath.Join(src, "newfile"), []byte("precious"), 0o644))
		must(t, os.MkdirAll(filepath.Join(src, "newdir"), 0o755))
		must(t, os.WriteFile(filepath.Join(src, "newdir/p"), []byte("p2"), 0o644))
		// g: new content through a new inode; keep/x: in place, same size.
		must(t, os.WriteFile(filepath.Join(src, "g.tmp"), []byte("new g"), 0o644))
		must(t, os.Rename(filepath.Join(src, "g.tmp"), filepath.Join(src, "g")))
		f, err := os.OpenFile(filepath.Join(src, "keep/x"), os.O_WRONLY, 0)
		must(t, err)
		_, err = f.WriteAt([]byte("new"), 0)
		must(t, err)
		must(t, f.Close())
		// ldir: the very directory walked, now reached through a symlink.
		must(t, os.Rename(filepath.Join(src, "ldir"), filepath.Join(outside, "ldir")))
		must(t, os.Symlink(filepath.Join(outside, "ldir"), filepath.Join(src, "ldir")))
		// rdir: another directory in its place, with a file alike.
		must(t, os.Rename(filepath.Join(src, "rdir"), filepath.Join(outside, "rdir")))
		must(t, os.Mkdir(filepath.Join(src, "rdir"), 0o755))
		must(t, os.WriteFile(filepath.Join(src, "rdir/q"), []byte("q"), 0o644))
	})
	defer restore()
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Consume: true, NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	ce := consumeErr(t, err)
	if res == nil || ce.Commit != res.Commit {
		t.Fatalf("result %v with error for commit %s", res, ce.Commit)
	}
	if got := mustRef(t, r, "main"); got != res.Commit {
		t.Errorf("main is at %s, want the commit %s", got, res.Commit)
	}
	want := map[string]commit.KeptReason{
		"g": commit.KeptChanged, "keep/x": commit.KeptChanged, "ldir": commit.KeptChanged, "rdir": commit.KeptChanged,
		"newdir": commit.KeptNotCommitted, "newfile": commit.KeptNotCommitted,
	}
	if d := cmp.Diff(want, keptMap(src, ce.Kept)); d != "" {
		t.Errorf("kept (-want +got):\n%s", d)
	}
	// The message names the first five and counts the rest.
	for _, k := range ce.Kept[:5] {
		if !strings.Contains(err.Error(), k.String()) {
			t.Errorf("error %q does not name %s", err, k)
		}
	}
	if !strings.HasSuffix(err.Error(), " and 1 more") {
		t.Errorf("error %q does not count the sixth", err)
	}
	wantDisk := testtree.Tree{
		"g":        testtree.File("new g", 0o644),
		"keep":     testtree.Dir(0o755),
		"keep/x":   testtree.File("new x", 0o644),
		"ldir":     testtree.Symlink(filepath.Join(outside, "ldir")),
		"newdir":   testtree.Dir(0o755),
		"newdir/p": testtree.File("p2", 0o644),
		"newfile":  testtree.File("precious", 0o644),
		"rdir":     testtree.Dir(0o755),
		"rdir/q":   testtree.File("q", 0o644),
	}
	if d := cmp.Diff(wantDisk, testtree.Read(t, src, testtree.ReadOptions{})); d != "" {
		t.Errorf("source after consuming (-want +got):\n%s", d)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "ldir/s")); err != nil || string(b) != "secret" {
		t.Errorf("the directory moved outside lost its file: %q, %v", b, err)
	}
	got := readCommit(t, r, res.Commit, false)
	if got["g"].Content != "old g" || got["keep/x"].Content != "old x" || got["a/h2"].Content != "linked" {
		t.Errorf("commit holds g %q, keep/x %q, a/h2 %q", got["g"].Content, got["keep/x"].Content, got["a/h2"].Content)
	}
}

// An entry whose stat was taken too close to a change to vouch for it is
// read again, and kept when it no longer makes the object committed; a
// fresh one that does is removed. Here the change after the commit read
// the file is a write through a mapping already written to, which leaves
// its stat as it was (as a write in the same timestamp tick can).
func TestConsumeRereadsEntriesTooNewForTheirStat(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	big := strings.Repeat("b", 2<<20)
	src := makeTree(t, testtree.Tree{"big": testtree.File(big, 0o644), "small": testtree.File("s", 0o644), "l": testtree.Symlink("small")})
	f, err := os.OpenFile(filepath.Join(src, "big"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, len(big), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	m[0] = 'b' // maps the page writable: the write below changes no time
	restore := commit.SetConsumeHook(func() { m[0] = 'X' })
	defer restore()
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", Consume: true, NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	ce := consumeErr(t, err)
	if d := cmp.Diff(map[string]commit.KeptReason{"big": commit.KeptChanged}, keptMap(src, ce.Kept)); d != "" {
		t.Errorf("kept (-want +got):\n%s", d)
	}
	if b, err := os.ReadFile(filepath.Join(src, "big")); err != nil || string(b) != "X"+big[1:] {
		t.Errorf("big after consuming: %d bytes, %v", len(b), err)
	}
	for _, p := range []string{"small", "l"} {
		if _, err := os.Lstat(filepath.Join(src, p)); !os.IsNotExist(err) {
			t.Errorf("%s not consumed: %v", p, err)
		}
	}
}

// What the commit does not hold of a source stays: an entry the skip list
// leaves out, and one a later source lays another over (an identical one
// goes: the commit holds it). Tar sources are not consumed, as in OSTree.
func TestConsumeOverlaidSkippedAndTar(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	s1 := makeTree(t, testtree.Tree{"x": testtree.File("1", 0o644), "y": testtree.File("same", 0o644),
		"only1": testtree.File("o", 0o644), "skip/z": testtree.File("z", 0o644)})
	s2 := makeTree(t, testtree.Tree{"x": testtree.File("2", 0o644), "y": testtree.File("same", 0o644)})
	tarFile := writeTar(t, []*tar.Header{{Name: "t", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}}, map[string]string{"t": "t"})
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Consume: true, NoSync: true, SkipList: []string{"/skip"},
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: s1}, {Kind: commit.SourceDir, Path: s2}, {Kind: commit.SourceTar, Path: tarFile}}})
	ce := consumeErr(t, err)
	if d := cmp.Diff(map[string]commit.KeptReason{"x": commit.KeptNotCommitted, "skip": commit.KeptNotCommitted}, keptMap(s1, ce.Kept)); d != "" {
		t.Errorf("kept (-want +got):\n%s", d)
	}
	want := testtree.Tree{"x": testtree.File("1", 0o644), "skip": testtree.Dir(0o755), "skip/z": testtree.File("z", 0o644)}
	if d := cmp.Diff(want, testtree.Read(t, s1, testtree.ReadOptions{})); d != "" {
		t.Errorf("first source after consuming (-want +got):\n%s", d)
	}
	if _, err := os.Lstat(s2); !os.IsNotExist(err) {
		t.Errorf("second source not consumed: %v", err)
	}
	if _, err := os.Stat(tarFile); err != nil {
		t.Errorf("tar source: %v", err)
	}
	if got := readCommit(t, r, res.Commit, false); got["x"].Content != "2" || got["t"].Content != "t" {
		t.Errorf("commit: %v", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}

// A symlink is refused as a consumed source before anything is committed,
// as in OSTree; the working directory as the source is emptied but stays,
// also as in OSTree.
func TestConsumeSymlinkAndWorkingDirectory(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"d/x": testtree.File("x", 0o644)})
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(src, link))
	_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Consume: true, NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: link}}})
	if err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("consuming a symlink: %v", err)
	}
	if _, err := r.ReadRef("main"); err == nil {
		t.Error("the refused commit made the branch")
	}
	t.Chdir(src)
	if _, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Consume: true, NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: "."}}}); err != nil {
		t.Fatal(err)
	}
	if got := testtree.Read(t, src, testtree.ReadOptions{}); len(got) != 0 {
		t.Errorf("working directory after consuming it: %v", got)
	}
}

// A re-commit whose directories the stat cache vouches for, unread,
// consumes them just the same, and keeps a file changed after the walk.
func TestConsumeAfterCachedWalk(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	tree := testtree.Tree{"a/f": testtree.File("f", 0o644), "a/g": testtree.File("g", 0o644), "h": testtree.File("h", 0o644)}
	src := makeTree(t, tree)
	time.Sleep(150 * time.Millisecond) // past the racy window: the cache records the entries
	first := commitDir(t, r, "main", src)
	restore := commit.SetConsumeHook(func() {
		must(t, os.WriteFile(filepath.Join(src, "a/g"), []byte("G"), 0o644))
	})
	defer restore()
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Consume: true, NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	ce := consumeErr(t, err)
	if res.Stats.FilesCached != 3 {
		t.Errorf("%d files from the stat cache, want 3", res.Stats.FilesCached)
	}
	if rootTree(t, r, res.Commit) != rootTree(t, r, first.Commit) {
		t.Error("the re-commit's tree differs")
	}
	if d := cmp.Diff(map[string]commit.KeptReason{"a/g": commit.KeptChanged}, keptMap(src, ce.Kept)); d != "" {
		t.Errorf("kept (-want +got):\n%s", d)
	}
	if d := cmp.Diff(testtree.Tree{"a": testtree.Dir(0o755), "a/g": testtree.File("G", 0o644)}, testtree.Read(t, src, testtree.ReadOptions{})); d != "" {
		t.Errorf("source after consuming (-want +got):\n%s", d)
	}
}

// A file swapped for a FIFO between consuming's lstat and its reading it
// again is kept, as changed, instead of the open waiting for a writer
// forever.
func TestConsumeFileReplacedByFIFOBeforeReread(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"f": testtree.File("data", 0o644)})
	p := filepath.Join(src, "f")
	restore := commit.SetRereadHook(func(path string) {
		if path != p {
			return
		}
		must(t, os.Remove(p))
		must(t, unix.Mkfifo(p, 0o644))
	})
	defer restore()
	type result struct {
		res *commit.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Consume: true, NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		done <- result{res, err}
	}()
	var got result
	select {
	case got = <-done:
	case <-time.After(time.Minute):
		// Only so that the failure is reported: open the FIFO for
		// writing, which lets the waiting open return.
		t.Error("consuming waits on the FIFO")
		if w, err := os.OpenFile(p, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		got = <-done
	}
	ce := consumeErr(t, got.err)
	if d := cmp.Diff(map[string]commit.KeptReason{"f": commit.KeptChanged}, keptMap(src, ce.Kept)); d != "" {
		t.Errorf("kept (-want +got):\n%s", d)
	}
	if st, err := os.Lstat(p); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO after consuming: %v, %v", st, err)
	}
	if c := readCommit(t, r, got.res.Commit, false); c["f"].Content != "data" {
		t.Errorf("commit holds f %q, want %q", c["f"].Content, "data")
	}
}
