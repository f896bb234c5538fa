package commit_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

var ctx = context.Background()

func newRepo(t *testing.T, mode repo.Mode) *repo.Repo {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func makeTree(t *testing.T, tree testtree.Tree) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testtree.Create(t, dir, tree)
	return dir
}

func commitDir(t *testing.T, r *repo.Repo, branch, dir string, mod ...func(*commit.Options)) *commit.Result {
	t.Helper()
	o := commit.Options{Branch: branch, Subject: "test", Timestamp: time.Unix(1700000000, 0),
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: dir}}}
	for _, m := range mod {
		m(&o)
	}
	res, err := commit.Commit(ctx, r, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// readCommit materialises a commit as a testtree.Tree through the library's
// read API, verifying every file's content.
func readCommit(t *testing.T, r *repo.Repo, id repo.ID, owners bool) testtree.Tree {
	t.Helper()
	c, err := r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	tree := testtree.Tree{}
	var walk func(prefix string, tid repo.ID)
	walk = func(prefix string, tid repo.ID) {
		dt, err := r.ReadDirTree(tid)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range dt.Files {
			h, rc, err := r.OpenFile(f.ID)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s: %v", prefix+f.Name, err)
			}
			e := testtree.Entry{Mode: h.FileMode(), Content: string(b), Target: h.Target}
			if owners {
				e.UID, e.GID = int(h.UID), int(h.GID)
			}
			if len(h.Xattrs) > 0 {
				e.Xattrs = map[string]string{}
				for _, x := range h.Xattrs {
					e.Xattrs[x.Name] = string(x.Value)
				}
			}
			tree[prefix+f.Name] = e
		}
		for _, d := range dt.Dirs {
			m, err := r.ReadDirMeta(d.MetaID)
			if err != nil {
				t.Fatal(err)
			}
			e := testtree.Entry{Mode: fs.ModeDir | fs.FileMode(m.Mode&0o777)}
			if owners {
				e.UID, e.GID = int(m.UID), int(m.GID)
			}
			tree[prefix+d.Name] = e
			walk(prefix+d.Name+"/", d.TreeID)
		}
	}
	walk("", c.RootTree)
	return tree
}

// sample is a tree with the shapes commits must keep.
var sample = testtree.Tree{
	"a.txt":                  testtree.File("hello\n", 0o644),
	"empty":                  testtree.File("", 0o600),
	"bin/tool":               testtree.File("#!/bin/sh\necho hi\n", 0o755),
	"bin/suid":               {Mode: fs.ModeSetuid | 0o755, Content: "setuid"},
	"bin/link":               testtree.Symlink("tool"),
	"bin/abs":                testtree.Symlink("/etc/passwd"),
	"deep/a/b/c/d/e":         testtree.File(strings.Repeat("x", 3<<20), 0o644), // large: streamed path
	"deep/a/b/c/d/copy":      testtree.File(strings.Repeat("x", 3<<20), 0o644),
	"priv":                   testtree.Dir(0o700),
	"priv/secret":            testtree.File("s", 0o400),
	"x/attr":                 {Mode: 0o644, Content: "x", Xattrs: map[string]string{"user.b": "2", "user.a": "1"}},
	"weird name\twith tab ü": testtree.File("w", 0o644),
}

func TestCommitRoundTrip(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive, repo.ModeBare} {
		t.Run(mode.String(), func(t *testing.T) {
			if mode == repo.ModeBare && os.Getuid() != 0 {
				t.Skip("bare mode needs root")
			}
			r := newRepo(t, mode)
			src := makeTree(t, sample)
			res := commitDir(t, r, "os/x86_64/stable", src)
			got := readCommit(t, r, res.Commit, false)
			want := testtree.Read(t, src, testtree.ReadOptions{Xattrs: true})
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("committed tree differs from source (-want +got):\n%s", d)
			}
			if ref, err := r.ReadRef("os/x86_64/stable"); err != nil || ref != res.Commit {
				t.Fatalf("branch = %v, %v; want %s", ref, err, res.Commit)
			}
		})
	}
}

func TestSameCommitIDAcrossModes(t *testing.T) {
	src := makeTree(t, sample)
	modes := []repo.Mode{repo.ModeBareUser, repo.ModeArchive}
	if os.Getuid() == 0 {
		modes = append(modes, repo.ModeBare)
	}
	var first repo.ID
	for i, m := range modes {
		res := commitDir(t, newRepo(t, m), "main", src)
		if i == 0 {
			first = res.Commit
		} else if res.Commit != first {
			t.Errorf("%s commit %s differs from %s commit %s", m, res.Commit, modes[0], first)
		}
	}
}

func TestDedupeWithinAndAcrossCommits(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, sample)
	res := commitDir(t, r, "main", src, func(o *commit.Options) { o.NoStatCache = true })
	// "e" and "copy" share one object: files = objects + 1.
	files := 0
	for _, e := range sample {
		if !e.Mode.IsDir() {
			files++
		}
	}
	if res.Stats.Files != int64(files) {
		t.Fatalf("scanned %d files, want %d", res.Stats.Files, files)
	}
	if res.Stats.BytesDeduped != 3<<20 {
		t.Errorf("deduplicated %d bytes within the commit, want %d", res.Stats.BytesDeduped, 3<<20)
	}
	again := commitDir(t, r, "main", src, func(o *commit.Options) { o.NoStatCache = true; o.Subject = "again" })
	if again.Stats.Objects != 1 {
		t.Errorf("second commit of the same tree wrote %d objects, want 1 (the commit)", again.Stats.Objects)
	}
	if again.Parent != res.Commit {
		t.Errorf("parent = %s, want %s", again.Parent, res.Commit)
	}
}

func TestSkipIfUnchanged(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"f": testtree.File("1", 0o644)})
	first := commitDir(t, r, "main", src)
	second := commitDir(t, r, "main", src, func(o *commit.Options) { o.SkipIfUnchanged = true })
	if !second.Unchanged || second.Commit != first.Commit {
		t.Fatalf("unchanged tree: got %+v, want Unchanged at %s", second, first.Commit)
	}
	os.WriteFile(filepath.Join(src, "f"), []byte("2"), 0o644)
	third := commitDir(t, r, "main", src, func(o *commit.Options) { o.SkipIfUnchanged = true })
	if third.Unchanged || third.Parent != first.Commit {
		t.Fatalf("changed tree: got %+v", third)
	}
	// The root directory's metadata is part of the tree too: a new mode
	// with the same entries is a change.
	if err := os.Chmod(src, 0o700); err != nil {
		t.Fatal(err)
	}
	fourth := commitDir(t, r, "main", src, func(o *commit.Options) { o.SkipIfUnchanged = true })
	if fourth.Unchanged || fourth.Parent != third.Commit {
		t.Fatalf("root directory's mode changed: got %+v, want a new commit on %s", fourth, third.Commit)
	}
}

func TestOverlaySkipListAndModifiers(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	base := makeTree(t, testtree.Tree{
		"usr/bin/a":       testtree.File("a1", 0o755),
		"usr/bin/b":       testtree.File("b1", 0o755),
		"usr/share/doc/x": testtree.File("doc", 0o644),
		"etc/conf":        testtree.File("c", 0o600),
		"replaced":        testtree.File("a file", 0o644),
	})
	over := makeTree(t, testtree.Tree{
		"usr/bin/b":   testtree.File("b2", 0o700),
		"usr/bin/new": testtree.File("n", 0o644),
		"replaced":    testtree.Symlink("usr"),
	})
	baseRes := commitDir(t, r, "base", base)
	res, err := commit.Commit(ctx, r, commit.Options{
		Branch: "merged",
		Sources: []commit.Source{
			{Kind: commit.SourceRef, Path: "base"},
			{Kind: commit.SourceDir, Path: over},
		},
		SkipList: []string{"/usr/share/doc", "/etc/conf"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := readCommit(t, r, res.Commit, false)
	want := testtree.Tree{
		"usr":         testtree.Dir(0o755),
		"usr/bin":     testtree.Dir(0o755),
		"usr/bin/a":   testtree.File("a1", 0o755),
		"usr/bin/b":   testtree.File("b2", 0o700),
		"usr/bin/new": testtree.File("n", 0o644),
		"usr/share":   testtree.Dir(0o755),
		"etc":         testtree.Dir(0o755),
		"replaced":    testtree.Symlink("usr"),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("overlay (-want +got):\n%s", d)
	}
	// The base branch is untouched and the ref source was not re-hashed.
	if id, _ := r.ReadRef("base"); id != baseRes.Commit {
		t.Fatal("base branch moved")
	}

	uid, gid := uint32(1234), uint32(5678)
	canon, err := commit.Commit(ctx, r, commit.Options{Branch: "canon", CanonicalPermissions: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: base}}})
	if err != nil {
		t.Fatal(err)
	}
	if g := readCommit(t, r, canon.Commit, true)["etc/conf"]; g.Mode != 0o600 || g.UID != 0 {
		t.Errorf("canonical permissions: etc/conf = %+v, want 0600 owned by 0", g)
	}
	owned, err := commit.Commit(ctx, r, commit.Options{Branch: "owned", OwnerUID: &uid, OwnerGID: &gid,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: base}}})
	if err != nil {
		t.Fatal(err)
	}
	for p, e := range readCommit(t, r, owned.Commit, true) {
		if e.UID != 1234 || e.GID != 5678 {
			t.Errorf("%s owned by %d:%d, want 1234:5678", p, e.UID, e.GID)
		}
	}
}

func TestOrphanAndExplicitParent(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"f": testtree.File("1", 0o644)})
	first := commitDir(t, r, "main", src)
	orphan, err := commit.Commit(ctx, r, commit.Options{Orphan: true, NoParent: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := r.ReadRef("main"); id != first.Commit {
		t.Fatal("an orphan commit moved a branch")
	}
	if c, err := r.ReadCommit(orphan.Commit); err != nil || !c.Parent.IsZero() {
		t.Fatalf("orphan commit: %+v, %v", c, err)
	}
	// Orphan moves no ref: with a Branch it is refused, not ignored.
	_, err = commit.Commit(ctx, r, commit.Options{Orphan: true, Branch: "main",
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err == nil || !strings.Contains(err.Error(), `"main"`) {
		t.Errorf("Orphan with a Branch: got %v, want it refused", err)
	}
	child := commitDir(t, r, "other", src, func(o *commit.Options) { o.Parent = first.Commit })
	if child.Parent != first.Commit {
		t.Fatalf("explicit parent ignored: %s", child.Parent)
	}
}

// A source laid over another may replace files with files, but not a
// directory with a non-directory or the reverse, which would drop a whole
// subtree (OSTree refuses both); the error names the path and the two
// sources, also when the lower entry came from a middle layer.
func TestOverlayTypeConflict(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	withDir := makeTree(t, testtree.Tree{"x/f": testtree.File("a", 0o644), "usr/lib/m": testtree.File("m", 0o644)})
	withFile := makeTree(t, testtree.Tree{"x": testtree.File("c", 0o644)})
	deepFile := makeTree(t, testtree.Tree{"usr/lib": testtree.Symlink("/lib")})
	plain := makeTree(t, testtree.Tree{"y": testtree.File("y", 0o644)})
	commitDir(t, r, "dirs", withDir)
	dir := func(p string) commit.Source { return commit.Source{Kind: commit.SourceDir, Path: p} }
	for _, c := range []struct {
		srcs         []commit.Source
		path         string
		lower, upper string
	}{
		{[]commit.Source{dir(withDir), dir(withFile)}, "/x", withDir, withFile},
		{[]commit.Source{dir(withFile), dir(withDir)}, "/x", withFile, withDir},
		{[]commit.Source{{Kind: commit.SourceRef, Path: "dirs"}, dir(deepFile)}, "/usr/lib", "ref dirs", deepFile},
		{[]commit.Source{{Kind: commit.SourceBase, Path: "dirs"}, dir(withFile)}, "/x", "base dirs", withFile},
		{[]commit.Source{dir(plain), dir(withFile), dir(withDir)}, "/x", withFile, withDir},
		{[]commit.Source{dir(withDir), dir(plain), dir(withFile)}, "/x", withDir, withFile},
	} {
		_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: c.srcs})
		if err == nil || !strings.Contains(err.Error(), c.path+" is ") || !strings.Contains(err.Error(), "cannot replace") {
			t.Errorf("%v: got %v, want a conflict at %s", c.srcs, err, c.path)
			continue
		}
		if i, j := strings.Index(err.Error(), c.lower), strings.Index(err.Error(), c.upper); i < 0 || j < i {
			t.Errorf("%v: %v: want %s named, then %s", c.srcs, err, c.lower, c.upper)
		}
	}
	if _, err := r.ReadRef("main"); err == nil {
		t.Error("a refused overlay created its branch")
	}
}

func TestRefusesWhatItCannotStore(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"ok": testtree.File("1", 0o644)})
	good := commitDir(t, r, "main", src)

	sock := filepath.Join(src, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Skip("no unix sockets here:", err)
	}
	defer l.Close()
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("socket: err = %v, want an error naming %s", err, sock)
	}
	l.Close()
	os.Remove(sock)

	fifo := makeTree(t, testtree.Tree{"p": {Mode: fs.ModeNamedPipe | 0o644}})
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceDir, Path: fifo}}})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(fifo, "p")) {
		t.Fatalf("fifo into bare-user: err = %v, want an error naming the path", err)
	}

	missing := filepath.Join(t.TempDir(), "nope")
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceDir, Path: missing}}})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing source: err = %v", err)
	}
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceRef, Path: "no-such-branch"}}})
	if !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), "no-such-branch") {
		t.Fatalf("unknown ref source: err = %v", err)
	}
	if os.Getuid() != 0 {
		unreadable := makeTree(t, testtree.Tree{"secret": testtree.File("x", 0o000)})
		_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceDir, Path: unreadable}}})
		if err == nil || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("unreadable file: err = %v", err)
		}
	}
	if id, _ := r.ReadRef("main"); id != good.Commit {
		t.Fatal("a failed commit moved the branch")
	}
	if ents, _ := os.ReadDir(r.Path("tmp")); len(ents) > 1 { // only tmp/cache may remain
		t.Errorf("failed commits left staging behind: %v", ents)
	}
}

func TestDevicesInBareMode(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("creating devices needs root")
	}
	r := newRepo(t, repo.ModeBare)
	src := makeTree(t, testtree.Tree{"dev/fifo": {Mode: fs.ModeNamedPipe | 0o600}})
	if err := mknod(filepath.Join(src, "dev/null"), 1, 3); err != nil {
		t.Skip("mknod:", err)
	}
	res := commitDir(t, r, "main", src)
	got := readCommit(t, r, res.Commit, false)
	if m := got["dev/null"].Mode; m&fs.ModeCharDevice == 0 {
		t.Errorf("dev/null mode %v, want a char device", m)
	}
	if m := got["dev/fifo"].Mode; m&fs.ModeNamedPipe == 0 {
		t.Errorf("dev/fifo mode %v, want a FIFO", m)
	}
}

// A tree deeper than PATH_MAX commits: every entry is read relative to
// its directory, a symlink's target (and in bare mode a FIFO) as well as a
// file's content and xattrs.
func TestCommitDeeperThanPathMax(t *testing.T) {
	mode := repo.ModeBareUser
	tree := testtree.Tree{
		"f": {Mode: 0o640, Content: "x", Xattrs: map[string]string{"user.k": "v"}},
		"l": testtree.Symlink("f"),
	}
	if os.Getuid() == 0 {
		mode = repo.ModeBare
		tree["p"] = testtree.Entry{Mode: fs.ModeNamedPipe | 0o600}
	}
	r := newRepo(t, mode)
	src := makeTree(t, nil)
	chain := testtree.Deep(t, src, 25, tree)
	if len(src)+len(chain) <= 4096 {
		t.Fatalf("the tree is only %d bytes deep", len(src)+len(chain))
	}
	got := readCommit(t, r, commitDir(t, r, "main", src).Commit, false)
	for name, e := range tree {
		g, ok := got[chain+"/"+name]
		if !ok || g.Mode != e.Mode || g.Content != e.Content || g.Target != e.Target || len(g.Xattrs) != len(e.Xattrs) {
			t.Errorf("%s: committed %+v (%v), want %+v", name, g, ok, e)
		}
	}
}

// Commits from several independent repository handles (as from several
// processes: flock locks are per open file) all land, chained.
func TestConcurrentCommitsChain(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ids := make(chan repo.ID, n)
	for i := 0; i < n; i++ {
		src := makeTree(t, testtree.Tree{"f": testtree.File(strings.Repeat("x", i+1), 0o644)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := repo.Open(r.Path())
			if err != nil {
				errs <- err
				return
			}
			defer h.Close()
			res, err := commit.Commit(ctx, h, commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
			if err != nil {
				errs <- err
				return
			}
			ids <- res.Commit
		}()
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Fatal(err)
	}
	want := map[repo.ID]bool{}
	for id := range ids {
		want[id] = true
	}
	id, err := r.ReadRef("main")
	if err != nil {
		t.Fatal(err)
	}
	for !id.IsZero() {
		if !want[id] {
			t.Fatalf("history holds %s, which no committer made", id)
		}
		delete(want, id)
		c, err := r.ReadCommit(id)
		if err != nil {
			t.Fatal(err)
		}
		id = c.Parent
	}
	if len(want) != 0 {
		t.Fatalf("%d concurrent commits are missing from the branch history", len(want))
	}
}

// File objects in the bare modes carry mtime 0, so hardlinked checkouts
// look the same on every machine.
func TestObjectsHaveEpochTimes(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly} {
		r := newRepo(t, mode)
		res := commitDir(t, r, "main", makeTree(t, testtree.Tree{"f": testtree.File("x", 0o644), "l": testtree.Symlink("f")}))
		dt, err := r.ReadDirTree(mustCommit(t, r, res.Commit).RootTree)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range dt.Files {
			fi, err := os.Lstat(r.ObjectPath(repo.KindFile, f.ID))
			if err != nil {
				t.Fatal(err)
			}
			if !fi.ModTime().Equal(time.Unix(0, 0)) {
				t.Errorf("%s: object for %s has mtime %v, want the epoch", mode, f.Name, fi.ModTime())
			}
		}
	}
}

// A failed walk closes every directory it opened, however many tasks it
// dropped: a long-running program embedding commit must not leak them.
func TestFailedCommitLeaksNoDescriptors(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	tree := testtree.Tree{}
	for i := 0; i < 40; i++ {
		tree[filepath.Join("d"+strings.Repeat("x", i), "sub", "f")] = testtree.File("x", 0o644)
	}
	src := makeTree(t, tree)
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Skip("no unix sockets here:", err)
	}
	defer l.Close()
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	before := count()
	for i := 0; i < 5; i++ {
		if _, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoStatCache: true,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}}); err == nil {
			t.Fatal("commit of a tree with a socket succeeded")
		}
	}
	if after := count(); after > before {
		t.Fatalf("%d descriptors open after 5 failed commits, %d before", after, before)
	}
}

// A bare-user-only repository records every entry as 0:0, so an owner
// override other than 0 is refused up front, naming the option, rather
// than dropped; 0 is what the repository records anyway.
func TestBareUserOnlyRefusesOwnerOverride(t *testing.T) {
	r := newRepo(t, repo.ModeBareUserOnly)
	src := makeTree(t, testtree.Tree{"f": testtree.File("1", 0o644)})
	seven, zero := uint32(7), uint32(0)
	for _, cs := range []struct {
		name     string
		uid, gid *uint32
	}{{"OwnerUID 7", &seven, nil}, {"OwnerGID 7", nil, &seven}} {
		_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", OwnerUID: cs.uid, OwnerGID: cs.gid,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		if err == nil || !strings.Contains(err.Error(), cs.name) || !strings.Contains(err.Error(), "bare-user-only") {
			t.Errorf("%s: err = %v, want a refusal naming it", cs.name, err)
		}
	}
	if _, err := r.ReadRef("main"); err == nil {
		t.Error("a refused commit moved the branch")
	}
	commitDir(t, r, "main", src, func(o *commit.Options) { o.OwnerUID, o.OwnerGID = &zero, &zero })
}
