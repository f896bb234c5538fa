package repo_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// integrityTree has content in several directories, a symlink and an
// executable, and a file shared with integrityTree2.
var integrityTree = testtree.Tree{
	"etc/demo.conf":  testtree.File("key=value\n", 0o644),
	"etc/hostname":   testtree.File("demo\n", 0o644),
	"bin/hello":      testtree.File("#!/bin/sh\necho hello from a file long enough to compress well, hello hello hello hello\n", 0o755),
	"bin/hi":         testtree.Symlink("hello"),
	"usr/share/doc":  testtree.File("shared documentation\n", 0o644),
	"usr/lib/empty":  testtree.File("", 0o600),
	"var/lib/thing/": testtree.Dir(0o750),
}

var integrityModes = []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly, repo.ModeBare, repo.ModeArchive}

func newIntegrityRepo(t *testing.T, mode repo.Mode) *repo.Repo {
	t.Helper()
	if mode == repo.ModeBare && os.Getuid() != 0 {
		t.Skip("bare mode needs root")
	}
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func integritySource(t *testing.T, tree testtree.Tree) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testtree.Create(t, dir, tree)
	return dir
}

func integrityCommit(t *testing.T, r *repo.Repo, branch, dir string, ts int64, mod ...func(*commit.Options)) repo.ID {
	t.Helper()
	o := commit.Options{Branch: branch, Subject: "test", Timestamp: time.Unix(ts, 0), NoSync: true,
		CanonicalPermissions: r.Mode() == repo.ModeBareUserOnly,
		Sources:              []commit.Source{{Kind: commit.SourceDir, Path: dir}}}
	for _, m := range mod {
		m(&o)
	}
	res, err := commit.Commit(context.Background(), r, o)
	if err != nil {
		t.Fatal(err)
	}
	return res.Commit
}

// integrityFileID returns the id of the file at a slash path of a commit's tree.
func integrityFileID(t *testing.T, r *repo.Repo, c repo.ID, path string) repo.ID {
	t.Helper()
	cm, err := r.ReadCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	tree := cm.RootTree
	parts := strings.Split(path, "/")
	for i, seg := range parts {
		dt, err := r.ReadDirTree(tree)
		if err != nil {
			t.Fatal(err)
		}
		if i == len(parts)-1 {
			f, ok := dt.File(seg)
			if !ok {
				t.Fatalf("no file %s in commit %s", path, c)
			}
			return f.ID
		}
		d, ok := dt.Dir(seg)
		if !ok {
			t.Fatalf("no directory %s in commit %s", path, c)
		}
		tree = d.TreeID
	}
	panic("unreachable")
}

// fsck runs Fsck and fails the test if it could not run at all.
func runFsck(t *testing.T, r *repo.Repo, opts repo.FsckOptions) (*repo.FsckReport, error) {
	t.Helper()
	rep, err := r.Fsck(context.Background(), opts)
	if rep == nil {
		t.Fatalf("fsck did not run: %v", err)
	}
	var fe *repo.FsckError
	if err != nil && !errors.As(err, &fe) {
		t.Fatalf("fsck failed to run: %v", err)
	}
	if (err == nil) != rep.OK() {
		t.Fatalf("fsck error %v disagrees with %d problems", err, len(rep.Problems))
	}
	return rep, err
}

// wantProblem asserts the report has exactly one problem, of the given
// type, for the given object, and returns it.
func wantProblem(t *testing.T, rep *repo.FsckReport, err error, typ repo.ProblemType, kind repo.Kind, id repo.ID) *repo.FsckProblem {
	t.Helper()
	if err == nil {
		t.Fatalf("fsck found no problem; want %s %s %s", typ, kind, id)
	}
	if len(rep.Problems) != 1 {
		t.Fatalf("got %d problems, want 1: %v", len(rep.Problems), rep.Problems)
	}
	p := rep.Problems[0]
	if p.Type != typ || p.Kind != kind || p.ID != id {
		t.Fatalf("got problem %v (type %s kind %s id %s); want %s %s %s", p, p.Type, p.Kind, p.ID, typ, kind, id)
	}
	if p.Path == "" || p.Reason == "" {
		t.Fatalf("problem %v lacks path or reason", p)
	}
	return p
}

func TestFsckClean(t *testing.T) {
	for _, mode := range integrityModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, mode)
			src := integritySource(t, integrityTree)
			integrityCommit(t, r, "main", src, 1700000000)
			os.WriteFile(filepath.Join(src, "etc/demo.conf"), []byte("key=other\n"), 0o644)
			integrityCommit(t, r, "main", src, 1700000100)
			rep, err := runFsck(t, r, repo.FsckOptions{})
			if err != nil {
				t.Fatalf("clean repository: %v", err)
			}
			if rep.Objects["commit"] != 2 || rep.Objects["file"] < 6 || rep.Objects["dirtree"] == 0 || rep.Objects["dirmeta"] == 0 {
				t.Fatalf("objects verified: %v", rep.Objects)
			}
			if rep.Refs != 1 || rep.Unreferenced != 0 || len(rep.Partial) != 0 || len(rep.Stray) != 0 {
				t.Fatalf("report: %+v", rep)
			}
		})
	}
}

func TestFsckEmptiedCommit(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	c1 := integrityCommit(t, r, "main", src, 1700000000)
	os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("other\n"), 0o644)
	c2 := integrityCommit(t, r, "main", src, 1700000100)
	if err := os.Truncate(r.ObjectPath(repo.KindCommit, c2), 0); err != nil {
		t.Fatal(err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	p := wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindCommit, c2)
	if p.Ref != "main" {
		t.Errorf("problem does not name the ref pointing at the commit: %v", p)
	}
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.ID != c2 {
		t.Errorf("error %v does not unwrap to a CorruptObjectError for %s", err, c2)
	}
	// The parent is still whole and not reported.
	if len(rep.Incomplete) != 0 {
		t.Errorf("incomplete commits %v; only %s is damaged and it is corrupt itself", rep.Incomplete, c2)
	}
	_ = c1
}

func TestFsckDeletedFileObject(t *testing.T) {
	for _, mode := range integrityModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, mode)
			c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
			id := integrityFileID(t, r, c, "etc/demo.conf")
			if err := os.Remove(r.ObjectPath(repo.KindFile, id)); err != nil {
				t.Fatal(err)
			}
			rep, err := runFsck(t, r, repo.FsckOptions{})
			p := wantProblem(t, rep, err, repo.ProblemMissing, repo.KindFile, id)
			if p.Commit != c || p.TreePath != "/etc/demo.conf" || p.Ref != "main" {
				t.Errorf("problem %v: want commit %s, tree path /etc/demo.conf, ref main", p, c)
			}
			if !errors.Is(err, repo.ErrNotFound) {
				t.Errorf("error %v is not ErrNotFound", err)
			}
			if len(rep.Incomplete) != 1 || rep.Incomplete[0] != c {
				t.Errorf("incomplete commits %v, want [%s]", rep.Incomplete, c)
			}
		})
	}
}

func TestFsckAppendedFileObject(t *testing.T) {
	for _, mode := range integrityModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, mode)
			c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
			paths := []string{"etc/demo.conf", "bin/hello", "usr/lib/empty"}
			if mode == repo.ModeBareUser || mode == repo.ModeArchive {
				paths = append(paths, "bin/hi") // a symlink stored as a file
			}
			for _, path := range paths {
				id := integrityFileID(t, r, c, path)
				f, err := os.OpenFile(r.ObjectPath(repo.KindFile, id), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.Write([]byte("appended"))
				f.Close()
				rep, err := runFsck(t, r, repo.FsckOptions{})
				wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindFile, id)
				var ce *repo.CorruptObjectError
				if !errors.As(err, &ce) || ce.ID != id {
					t.Errorf("error %v does not unwrap to a CorruptObjectError for %s", err, id)
				}
				// Undo, so the next path is the only problem.
				fi, _ := os.Stat(r.ObjectPath(repo.KindFile, id))
				os.Truncate(r.ObjectPath(repo.KindFile, id), fi.Size()-int64(len("appended")))
			}
			if _, err := runFsck(t, r, repo.FsckOptions{}); err != nil {
				t.Fatalf("after undoing: %v", err)
			}
		})
	}
}

// flipLastByte flips the last byte of a file: content in every mode (in
// archive mode possibly the compressed stream).
func flipLastByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x20
	// Write in place: the inode (and its xattrs) stay.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b[len(b)-1:], fi.Size()-1); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestFsckFlippedByte(t *testing.T) {
	for _, mode := range integrityModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, mode)
			c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
			id := integrityFileID(t, r, c, "bin/hello")
			flipLastByte(t, r.ObjectPath(repo.KindFile, id))
			rep, err := runFsck(t, r, repo.FsckOptions{})
			p := wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindFile, id)
			if p.Commit != c || p.TreePath != "/bin/hello" {
				t.Errorf("problem %v does not say which commit needs it where", p)
			}
			if len(rep.Incomplete) != 1 || rep.Incomplete[0] != c {
				t.Errorf("incomplete commits %v, want [%s]", rep.Incomplete, c)
			}
		})
	}
}

// A chmod made through a hardlink (as in a checkout of a bare-user or bare
// repository) changes the object.
func TestFsckChmodThroughHardlink(t *testing.T) {
	for _, tc := range []struct {
		mode repo.Mode
		want repo.ProblemType
	}{{repo.ModeBareUser, repo.ProblemMode}, {repo.ModeBare, repo.ProblemCorrupt}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, tc.mode)
			c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
			id := integrityFileID(t, r, c, "etc/demo.conf")
			link := filepath.Join(t.TempDir(), "checkout-demo.conf")
			if err := os.Link(r.ObjectPath(repo.KindFile, id), link); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(link, 0o666); err != nil {
				t.Fatal(err)
			}
			rep, err := runFsck(t, r, repo.FsckOptions{})
			wantProblem(t, rep, err, tc.want, repo.KindFile, id)
		})
	}
}

// Delete rewrites a bare-user object whose only fault is its permissions
// (a chmod through a checkout's hardlink) with the ones it records, rather
// than deleting sound content; the checkout keeps its file and its mode.
// An object whose content changed too is corrupt, and deleted.
func TestFsckDeleteRewritesModeDamaged(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	// Another commit needs the objects repaired and not the corrupt one.
	other := integrityCommit(t, r, "other", integritySource(t, testtree.Tree{
		"demo.conf": integrityTree["etc/demo.conf"], "hi": integrityTree["bin/hi"]}), 1700000000)
	co := t.TempDir()
	chmodLink := func(path string, mode os.FileMode) (repo.ID, string) {
		id := integrityFileID(t, r, c, path)
		link := filepath.Join(co, filepath.Base(path))
		if err := os.Link(r.ObjectPath(repo.KindFile, id), link); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(link, mode); err != nil {
			t.Fatal(err)
		}
		return id, link
	}
	conf, confLink := chmodLink("etc/demo.conf", 0o606)
	sym, symLink := chmodLink("bin/hi", 0o600) // a symlink's object
	bad, badLink := chmodLink("bin/hello", 0o777)
	if err := os.WriteFile(badLink, []byte("changed through the link\n"), 0o777); err != nil {
		t.Fatal(err)
	}

	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err == nil {
		t.Fatal("fsck of a damaged repository returned no error")
	}
	got := map[repo.ID]repo.ProblemType{}
	for _, p := range rep.Problems {
		got[p.ID] = p.Type
	}
	if want := map[repo.ID]repo.ProblemType{conf: repo.ProblemMode, sym: repo.ProblemMode, bad: repo.ProblemCorrupt}; !maps.Equal(got, want) {
		t.Fatalf("problems %v, want %v", rep.Problems, want)
	}
	// Only the corrupt object makes a commit incomplete.
	if len(rep.Incomplete) != 1 || rep.Incomplete[0] != c {
		t.Errorf("incomplete %v, want [%s]", rep.Incomplete, c)
	}

	rep, err = runFsck(t, r, repo.FsckOptions{Delete: true})
	if err == nil {
		t.Fatal("fsck --delete of a damaged repository returned no error")
	}
	if rep.Repaired != 2 || rep.Deleted != 1 {
		t.Errorf("repaired %d, deleted %d; want 2 and 1", rep.Repaired, rep.Deleted)
	}
	for _, p := range rep.Problems {
		if want := p.ID == conf || p.ID == sym; p.Repaired != want || p.Deleted == want {
			t.Errorf("%s: repaired %v, deleted %v", p, p.Repaired, p.Deleted)
		}
	}
	// Only the commit that needs the corrupt object is partial; the
	// other is whole.
	if id := integrityFileID(t, r, other, "demo.conf"); id != conf {
		t.Fatalf("the other commit's demo.conf is %s, not %s", id, conf)
	}
	if len(rep.MarkedPartial) != 1 || rep.MarkedPartial[0] != c {
		t.Errorf("marked partial %v, want [%s]", rep.MarkedPartial, c)
	}

	for _, tc := range []struct {
		id   repo.ID
		link string
		want os.FileMode // on disk in the repository
		was  os.FileMode // the checkout's
		body string
	}{{conf, confLink, 0o644, 0o606, "key=value\n"}, {sym, symLink, 0o644, 0o600, "hello"}} {
		obj, err := os.Stat(r.ObjectPath(repo.KindFile, tc.id))
		if err != nil {
			t.Fatal(err)
		}
		lnk, err := os.Stat(tc.link)
		if err != nil {
			t.Fatal(err)
		}
		if obj.Mode().Perm() != tc.want || lnk.Mode().Perm() != tc.was {
			t.Errorf("%s: object %04o (want %04o), checkout %04o (want %04o)", tc.id, obj.Mode().Perm(), tc.want, lnk.Mode().Perm(), tc.was)
		}
		if os.SameFile(obj, lnk) {
			t.Errorf("%s: the checkout still links the object", tc.id)
		}
		if !obj.ModTime().Equal(time.Unix(0, 0)) {
			t.Errorf("%s: object mtime %v, want the epoch", tc.id, obj.ModTime())
		}
		if b, err := os.ReadFile(tc.link); err != nil || string(b) != tc.body {
			t.Errorf("checkout file %s: %q, %v", tc.link, b, err)
		}
	}
	if _, rc, err := r.OpenFile(conf); err != nil {
		t.Error(err)
	} else if b, err := io.ReadAll(rc); err != nil || string(b) != "key=value\n" {
		t.Errorf("rewritten object reads %q, %v", b, err)
	} else {
		rc.Close()
	}
	if _, err := r.StatFile(sym); err != nil {
		t.Errorf("rewritten symlink object: %v", err)
	}
	// What is left is the partial commit alone: the rewritten objects
	// verify, and nothing was left behind in tmp/.
	rep, _ = runFsck(t, r, repo.FsckOptions{})
	for _, p := range rep.Problems {
		if p.Type != repo.ProblemPartial {
			t.Errorf("after the repair: %v", p)
		}
	}
	if ents, err := os.ReadDir(r.Path("tmp")); err != nil {
		t.Fatal(err)
	} else {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "txn-") {
				t.Errorf("staging directory %s left in tmp/", e.Name())
			}
		}
	}
}

// The rewrite reads the object again, checking it against its id: content
// changed through a checkout's link since fsck verified it is not copied,
// and the object stays as it is.
func TestRewriteModeDamagedChecksContent(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	id := integrityFileID(t, r, c, "etc/demo.conf")
	obj := r.ObjectPath(repo.KindFile, id)
	link := filepath.Join(t.TempDir(), "demo.conf")
	if err := os.Link(obj, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(link, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(link, []byte("key=VALUE\n"), 0o666); err != nil { // same size
		t.Fatal(err)
	}
	err := r.RewriteModeDamaged(id)
	if err == nil || !strings.Contains(err.Error(), id.String()) {
		t.Fatalf("rewrite of changed content: %v, want an error naming %s", err, id)
	}
	if fi, err := os.Stat(obj); err != nil {
		t.Fatal(err)
	} else if lfi, _ := os.Stat(link); !os.SameFile(fi, lfi) {
		t.Error("the object was replaced by a copy of changed content")
	}
}

func TestFsckReportsEveryProblem(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	missing := integrityFileID(t, r, c, "etc/demo.conf")
	flipped := integrityFileID(t, r, c, "bin/hello")
	os.Remove(r.ObjectPath(repo.KindFile, missing))
	flipLastByte(t, r.ObjectPath(repo.KindFile, flipped))
	if err := os.WriteFile(r.Path("refs", "heads", "gone"), []byte(repo.Sum([]byte("nothing")).String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	got := map[repo.ID]repo.ProblemType{}
	for _, p := range rep.Problems {
		got[p.ID] = p.Type
	}
	want := map[repo.ID]repo.ProblemType{missing: repo.ProblemMissing, flipped: repo.ProblemCorrupt, repo.Sum([]byte("nothing")): repo.ProblemMissing}
	if len(got) != len(want) {
		t.Fatalf("problems %v, want %v", rep.Problems, want)
	}
	for id, typ := range want {
		if got[id] != typ {
			t.Errorf("object %s: got %v, want %v (all: %v)", id, got[id], typ, rep.Problems)
		}
	}
}

func TestFsckDeleteMarksPartial(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	c1 := integrityCommit(t, r, "main", src, 1700000000)
	os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("other\n"), 0o644)
	c2 := integrityCommit(t, r, "main", src, 1700000100)
	id := integrityFileID(t, r, c2, "bin/hello") // in both commits
	flipLastByte(t, r.ObjectPath(repo.KindFile, id))
	cache := filepath.Join(r.CacheDir(), "stat-cache")
	os.MkdirAll(r.CacheDir(), 0o755)
	os.WriteFile(cache, []byte("x"), 0o644)

	rep, err := runFsck(t, r, repo.FsckOptions{Delete: true})
	p := wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindFile, id)
	if !p.Deleted || rep.Deleted != 1 {
		t.Fatalf("problem %v not deleted (report deleted %d)", p, rep.Deleted)
	}
	if has, _ := r.HasObject(repo.KindFile, id); has {
		t.Fatal("corrupt object still stored")
	}
	marked := map[repo.ID]bool{}
	for _, c := range rep.MarkedPartial {
		marked[c] = true
	}
	if len(marked) != 2 || !marked[c1] || !marked[c2] {
		t.Fatalf("marked partial %v, want both %s and %s", rep.MarkedPartial, c1, c2)
	}
	for _, c := range []repo.ID{c1, c2} {
		if _, err := os.Stat(r.Path("state", c.String()+".commitpartial")); err != nil {
			t.Errorf("commit %s not marked partial: %v", c, err)
		}
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("caches not dropped after deleting objects: %v", err)
	}

	// Later runs keep failing for both commits, which cannot be checked
	// out until a pull completes them, and report nothing else.
	rep, err = runFsck(t, r, repo.FsckOptions{})
	if len(rep.Partial) != 2 {
		t.Fatalf("partial commits %v, want 2", rep.Partial)
	}
	var fe *repo.FsckError
	if !errors.As(err, &fe) || len(rep.Problems) != 2 {
		t.Fatalf("after --delete: err %v, problems %v; want 2 partial-commit problems", err, rep.Problems)
	}
	for i, c := range []repo.ID{c2, c1} { // ref'd commit first
		p := rep.Problems[i]
		if p.Type != repo.ProblemPartial || p.ID != c || !errors.Is(p, repo.ErrNotFound) || !strings.Contains(p.Error(), c.String()) {
			t.Errorf("problem %d: %v (type %s); want commit %s partial, wrapping ErrNotFound", i, p, p.Type, c)
		}
	}
	if rep.Problems[0].Ref != "main" {
		t.Errorf("problem %v does not name ref main", rep.Problems[0])
	}
	// The marker is OSTree's: "f" for fsck-detected corruption.
	if b, err := os.ReadFile(r.Path("state", c2.String()+".commitpartial")); err != nil || string(b) != "f" {
		t.Errorf("marker content %q (%v), want \"f\"", b, err)
	}

	// A later commit stores the object again: the two commits are
	// complete, but stay problems (as in OSTree) until fsck --delete,
	// having verified them, takes the mark away.
	os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("third\n"), 0o644)
	integrityCommit(t, r, "main", src, 1700000200)
	if has, _ := r.HasObject(repo.KindFile, id); !has {
		t.Fatal("the later commit did not store the object again")
	}
	rep, err = runFsck(t, r, repo.FsckOptions{})
	if !errors.As(err, &fe) || len(rep.Problems) != 2 || rep.Problems[0].Type != repo.ProblemPartial || !strings.Contains(rep.Problems[0].Error(), "marked partial") || errors.Is(rep.Problems[0], repo.ErrNotFound) {
		t.Fatalf("complete again, before --delete: err %v, problems %v", err, rep.Problems)
	}
	rep, err = runFsck(t, r, repo.FsckOptions{Delete: true})
	if err != nil || len(rep.Unmarked) != 2 || rep.Deleted != 0 {
		t.Fatalf("fsck --delete of complete marked commits: err %v, unmarked %v, deleted %d", err, rep.Unmarked, rep.Deleted)
	}
	if rep, err = runFsck(t, r, repo.FsckOptions{}); err != nil || len(rep.Partial) != 0 {
		t.Fatalf("after the marks were taken away: err %v, partial %v", err, rep.Partial)
	}
}

func TestFsckPartialCommitNotAnError(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	id := integrityFileID(t, r, c, "usr/share/doc")
	os.Remove(r.ObjectPath(repo.KindFile, id))
	if err := os.WriteFile(r.Path("state", c.String()+".commitpartial"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err != nil {
		t.Fatalf("partial commit reported as an error: %v", err)
	}
	if len(rep.Partial) != 1 || rep.Partial[0] != c {
		t.Fatalf("partial %v, want [%s]", rep.Partial, c)
	}
	// A corrupt object is still an error, partial or not.
	flipLastByte(t, r.ObjectPath(repo.KindFile, integrityFileID(t, r, c, "bin/hello")))
	if _, err := runFsck(t, r, repo.FsckOptions{}); err == nil {
		t.Fatal("corrupt object under a partial commit not reported")
	}
}

func TestFsckUnreferenced(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	integrityCommit(t, r, "main", src, 1700000000)
	os.WriteFile(filepath.Join(src, "new"), []byte("only in the orphan\n"), 0o644)
	integrityCommit(t, r, "", src, 1700000100, func(o *commit.Options) { o.Orphan = true })
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The orphan commit, its root dirtree and the new file.
	if rep.Unreferenced != 3 {
		t.Fatalf("unreferenced %d, want 3", rep.Unreferenced)
	}
}

// Bare-user objects are never writable by others, whatever mode they
// record: the bit would let anyone change every hardlinked checkout. fsck
// accepts the mode earlier versions wrote (with the bit), and nothing else.
func TestBareUserObjectsNotWritableByOthers(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	c := integrityCommit(t, r, "main", integritySource(t, testtree.Tree{
		"shared": testtree.File("anyone may write this", 0o666),
		"group":  testtree.File("the group may write this", 0o664),
		"odd":    testtree.File("others may write, not read", 0o602),
	}), 1700000000)
	for p, want := range map[string]os.FileMode{"shared": 0o664, "group": 0o664, "odd": 0o600} {
		id := integrityFileID(t, r, c, p)
		fi, err := os.Stat(r.ObjectPath(repo.KindFile, id))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: object mode %04o on disk, want %04o", p, got, want)
		}
		h, err := r.StatFile(id)
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode&0o002 == 0 && p != "group" {
			t.Errorf("%s: recorded mode %04o lost the others' write bit", p, h.Mode)
		}
	}
	if rep, err := runFsck(t, r, repo.FsckOptions{}); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("fsck: %v %v", err, rep.Problems)
	}
	shared := r.ObjectPath(repo.KindFile, integrityFileID(t, r, c, "shared"))
	if err := os.Chmod(shared, 0o666); err != nil { // as earlier versions stored it
		t.Fatal(err)
	}
	if rep, err := runFsck(t, r, repo.FsckOptions{}); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("fsck of an object in the earlier mode: %v %v", err, rep.Problems)
	}
	if err := os.Chmod(shared, 0o660); err != nil {
		t.Fatal(err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	wantProblem(t, rep, err, repo.ProblemMode, repo.KindFile, integrityFileID(t, r, c, "shared"))
}

// VerifyBindings reports a ref whose commit is bound to other refs (a
// commit with no binding passes); VerifyBackRefs also reports commits bound
// to a ref that points elsewhere. Neither deletes anything.
func TestFsckVerifyBindings(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	old := integrityCommit(t, r, "main", src, 1)
	if err := r.SetAlias("latest", "main"); err != nil {
		t.Fatal(err)
	}
	tip := integrityCommit(t, r, "main", src, 2) // bound to main and latest
	integrityCommit(t, r, "unbound", src, 3, func(o *commit.Options) { o.NoBindings = true })
	if err := r.SetRef("copy", tip); err != nil {
		t.Fatal(err)
	}
	mustFsckClean(t, r)

	problems := func(opts repo.FsckOptions) map[string]repo.ID {
		t.Helper()
		rep, err := runFsck(t, r, opts)
		if err == nil {
			t.Fatalf("fsck %+v passed", opts)
		}
		got := map[string]repo.ID{}
		for _, p := range rep.Problems {
			if p.Type != repo.ProblemBinding || p.Deleted {
				t.Errorf("unexpected problem %v", p)
				continue
			}
			if !strings.Contains(p.Error(), p.ID.String()) || !strings.Contains(p.Error(), p.Ref) {
				t.Errorf("problem %q does not name its commit and ref", p.Error())
			}
			var be *repo.RefBindingError
			if p.Ref == "copy" && (!errors.As(p, &be) || be.Ref != "copy") {
				t.Errorf("problem for copy does not unwrap to a RefBindingError: %#v", p.Err)
			}
			got[p.Ref] = p.ID
		}
		return got
	}
	if got, want := problems(repo.FsckOptions{VerifyBindings: true}), map[string]repo.ID{"copy": tip}; !maps.Equal(got, want) {
		t.Errorf("VerifyBindings reported %v, want %v", got, want)
	}
	if got, want := problems(repo.FsckOptions{VerifyBackRefs: true, Delete: true}), map[string]repo.ID{"copy": tip, "main": old}; !maps.Equal(got, want) {
		t.Errorf("VerifyBackRefs reported %v, want %v", got, want)
	}
	if !stored(t, r, repo.KindCommit, old) {
		t.Error("Delete removed a commit for its binding")
	}
}

// A damaged ref's problem names the ref and its file once each.
func TestFsckRefProblemMessage(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	if err := os.WriteFile(r.Path("refs", "heads", "bad"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("gone", r.Path("refs", "heads", "dangling")); err != nil {
		t.Fatal(err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err == nil || len(rep.Problems) != 2 {
		t.Fatalf("fsck: %v, problems %v; want the two refs", err, rep.Problems)
	}
	for _, p := range rep.Problems {
		msg := p.Error()
		rest := strings.Replace(msg, p.Path, "", 1) // the path ends in the name
		if p.Type != repo.ProblemRef || strings.Count(msg, p.Path) != 1 || strings.Count(rest, p.Ref) != 1 {
			t.Errorf("problem %q (type %s): want the ref %q and its file %s named once each", msg, p.Type, p.Ref, p.Path)
		}
	}
}

// A bare-user-only file object with a mode such a repository refuses
// (stored before it refused them) is reported as damaged, and --delete
// removes it.
func TestFsckBareUserOnlyRefusedMode(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUserOnly)
	content := []byte("setuid\n")
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o4755, Size: uint64(len(content))}
	id := repo.FileID(h, content)
	p := r.ObjectPath(repo.KindFile, id)
	if err := os.WriteFile(p, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(p, 0o4755); err != nil { // os.Chmod would want fs.ModeSetuid
		t.Fatal(err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if prob := wantProblem(t, rep, err, repo.ProblemMode, repo.KindFile, id); !strings.Contains(prob.Error(), "4755") {
		t.Errorf("problem %q does not name the mode", prob.Error())
	}
	if _, err := runFsck(t, r, repo.FsckOptions{Delete: true}); err == nil {
		t.Error("fsck --delete found nothing")
	}
	if has, _ := r.HasObject(repo.KindFile, id); has {
		t.Error("fsck --delete left the object")
	}
	if _, err := runFsck(t, r, repo.FsckOptions{}); err != nil {
		t.Errorf("after --delete: %v", err)
	}
}

// Refs counts every ref, readable or not, and BadRefs those with a
// problem: an unreadable ref, one at a missing commit, one at a commit
// that lacks an object; refs at a good commit are validated.
func TestFsckCountsBadRefs(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	good := integrityCommit(t, r, "good", integritySource(t, testtree.Tree{"f": testtree.File("good\n", 0o644)}), 1700000000)
	c := integrityCommit(t, r, "incomplete", integritySource(t, integrityTree), 1700000001)
	if err := r.SetRef("also-good", good); err != nil {
		t.Fatal(err)
	}
	os.Remove(r.ObjectPath(repo.KindFile, integrityFileID(t, r, c, "etc/demo.conf")))
	for name, content := range map[string]string{"gone": repo.Sum([]byte("nothing")).String() + "\n", "bad": "garbage\n"} {
		if err := os.WriteFile(r.Path("refs", "heads", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err == nil || rep.Refs != 5 || rep.BadRefs != 3 {
		t.Fatalf("fsck: %v, %d refs of which %d bad; want 5 refs, 3 bad", err, rep.Refs, rep.BadRefs)
	}
}

// Detached metadata that does not decode strictly (here a byte appended)
// is a corrupt commitmeta object, though no hash names it.
func TestFsckCorruptCommitMeta(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	c := commits[3]
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.WriteCommitMeta(c, repo.Metadata{{Key: "k", Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	mustFsckClean(t, r)
	path := r.ObjectPath(repo.KindCommitMeta, c)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	rep, err := runFsck(t, r, repo.FsckOptions{})
	p := wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindCommitMeta, c)
	if !strings.Contains(p.Reason, "trailing") {
		t.Errorf("reason %q does not say what is wrong", p.Reason)
	}
}

// A FIFO in a metadata object's place is a corrupt object, found without
// blocking: objects are opened so that a FIFO's open does not wait for a
// writer (which never comes), by fsck and by every read.
func TestFsckFIFOInObjectsPlace(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	c, err := r.ReadCommit(commits[3])
	if err != nil {
		t.Fatal(err)
	}
	path := r.ObjectPath(repo.KindDirMeta, c.RootMeta)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		rep *repo.FsckReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := r.Fsck(context.Background(), repo.FsckOptions{})
		done <- result{rep, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("fsck blocked on the FIFO at %s", path)
	}
	p := wantProblem(t, res.rep, res.err, repo.ProblemCorrupt, repo.KindDirMeta, c.RootMeta)
	if !strings.Contains(p.Reason, "not a regular file") {
		t.Errorf("reason %q, want it to say the object is not a regular file", p.Reason)
	}
	var ce *repo.CorruptObjectError
	if _, err := r.ReadDirMeta(c.RootMeta); !errors.As(err, &ce) || !strings.Contains(err.Error(), path) || ce.Reason != "not a regular file" {
		t.Errorf("ReadDirMeta of a FIFO: %v, want a corrupt object error naming %s: not a regular file", err, path)
	}
}

// A subdirectory's dirmeta deleted by hand is reported missing, with the
// commit, ref and path that need it.
func TestFsckMissingDirMeta(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	c := integrityCommit(t, r, "main", src, 1700000000)
	e, err := r.Lookup(c, "/var/lib/thing")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.ObjectPath(repo.KindDirMeta, e.MetaID)); err != nil {
		t.Fatal(err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	p := wantProblem(t, rep, err, repo.ProblemMissing, repo.KindDirMeta, e.MetaID)
	if p.Commit != c || p.Ref != "main" || p.TreePath != "/var/lib/thing" {
		t.Errorf("missing dirmeta reported as needed by commit %s, ref %q, at %q; want %s, main, /var/lib/thing", p.Commit, p.Ref, p.TreePath, c)
	}
}

// A ref another process deletes while fsck runs (between fsck's listing of
// refs/ and its reading of the ref) is no problem: fsck checks the refs it
// finds, and reports the repository clean.
func TestFsckRefDeletedMeanwhile(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	c := integrityCommit(t, r, "main", src, 1700000000)
	for _, name := range []string{"gone", "origin:gone"} {
		if err := r.SetRef(name, c); err != nil {
			t.Fatal(err)
		}
	}
	other, err := repo.Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	restore := repo.SetFsckRefHook(func(name string) {
		if strings.HasSuffix(name, "gone") {
			if err := other.SetRef(name, repo.ID{}); err != nil {
				t.Errorf("deleting ref %s during fsck: %v", name, err)
			}
		}
	})
	defer restore()
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err != nil {
		t.Fatalf("fsck while refs were deleted: %v", err)
	}
	if rep.Refs != 1 || rep.UnreadableRefs != 0 {
		t.Errorf("report: %d refs, %d unreadable; want main alone", rep.Refs, rep.UnreadableRefs)
	}
}

// fsck --delete marks the commits that need a corrupt object partial
// before it deletes the object, so that a pull fetches them again. Where
// the markers cannot be written (a full filesystem) the object is kept,
// with an error saying why: deleted, it would leave a commit that looks
// whole, which a pull would skip. Once space is freed, the same fsck
// --delete marks the commit and deletes the object.
func TestFsckDeleteFullFilesystemKeepsObjects(t *testing.T) {
	mnt := testtree.SmallFS(t, 4<<20)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	id := integrityFileID(t, r, c, "bin/hello")
	flipLastByte(t, r.ObjectPath(repo.KindFile, id))
	marker := r.Path("state", c.String()+".commitpartial")
	// The caches fsck --delete drops would free the room for a marker.
	if err := os.RemoveAll(r.CacheDir()); err != nil {
		t.Fatal(err)
	}
	testtree.FillTo(t, mnt, 0)

	rep, err := r.Fsck(context.Background(), repo.FsckOptions{Delete: true})
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), "kept 1 corrupt object") {
		t.Errorf("fsck --delete on a full filesystem: %v, want ENOSPC and that the corrupt object was kept", err)
	}
	if has, _ := r.HasObject(repo.KindFile, id); !has || rep == nil || rep.Deleted != 0 {
		t.Errorf("the corrupt object was deleted although commit %s could not be marked partial", c)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("marker of commit %s: %v, want none", c, err)
	}

	if err := os.Remove(filepath.Join(mnt, "fill")); err != nil {
		t.Fatal(err)
	}
	rep, err = runFsck(t, r, repo.FsckOptions{Delete: true})
	p := wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindFile, id)
	if !p.Deleted || rep.Deleted != 1 {
		t.Errorf("once space was freed: problem %v not deleted (report deleted %d)", p, rep.Deleted)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("commit %s not marked partial once space was freed: %v", c, err)
	}
}

// A problem is one line, whatever the name of the file it is at: a tree
// path that holds a newline, another character that does not print, or
// bytes that are not UTF-8 is Go-quoted, so no name starts a line that
// reads as a problem of its own.
func TestFsckProblemOneLine(t *testing.T) {
	names := []string{"new\nerror: forged", "esc\x1b[2J", "bad\xff", `"quoted"`}
	tree := testtree.Tree{"etc/plain": testtree.File("plain\n", 0o644)}
	for i, n := range names {
		tree["etc/"+n] = testtree.File(strings.Repeat("x", i+1), 0o644)
	}
	r := newIntegrityRepo(t, repo.ModeBareUser)
	c := integrityCommit(t, r, "main", integritySource(t, tree), 1700000000)
	for _, n := range append(names, "plain") {
		id := integrityFileID(t, r, c, "etc/"+n)
		if err := os.Remove(r.ObjectPath(repo.KindFile, id)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err == nil || len(rep.Problems) != len(names)+1 {
		t.Fatalf("fsck: %v, problems %v; want one for each of %d files", err, rep.Problems, len(names)+1)
	}
	for _, p := range rep.Problems {
		want := " at " + strconv.Quote(p.TreePath) + " "
		if p.TreePath == "/etc/plain" || p.TreePath == `/etc/"quoted"` {
			want = " at " + p.TreePath + " " // starts with "/", so no quoted path reads as it
		}
		if msg := p.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, want) {
			t.Errorf("problem %q: want one line naming the file as %q", msg, want)
		}
	}
}

// eioReader fails every read as a disk returning EIO does.
type eioReader struct{ path string }

func (e eioReader) Read([]byte) (int, error) {
	return 0, &os.PathError{Op: "read", Path: e.path, Err: unix.EIO}
}

// An object the disk fails to read (EIO) is an I/O error, not
// corruption: fsck reports it unreadable, naming the object, its path and
// the error, and --delete neither deletes it nor marks the commits that
// need it partial, since its content was never seen (OSTree 2022.7 deletes
// it). A file object and a dirtree, in each mode.
func TestFsckIOErrorIsNotCorruption(t *testing.T) {
	for _, mode := range integrityModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, mode)
			c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
			cm, err := r.ReadCommit(c)
			if err != nil {
				t.Fatal(err)
			}
			root, err := r.ReadDirTree(cm.RootTree)
			if err != nil {
				t.Fatal(err)
			}
			etc, ok := root.Dir("etc")
			if !ok {
				t.Fatal("no /etc")
			}
			file := r.ObjectPath(repo.KindFile, integrityFileID(t, r, c, "bin/hello"))
			tree := r.ObjectPath(repo.KindDirTree, etc.TreeID)
			defer repo.SetFsckReadHook(func(path string, rd io.Reader) io.Reader {
				if path == file || path == tree {
					return eioReader{path}
				}
				return rd
			})()
			for _, del := range []bool{false, true} {
				rep, err := runFsck(t, r, repo.FsckOptions{Delete: del})
				if len(rep.Problems) != 2 {
					t.Fatalf("delete=%v: %d problems, want 2: %v", del, len(rep.Problems), err)
				}
				for _, p := range rep.Problems {
					if p.Type != repo.ProblemUnreadable || !errors.Is(p, unix.EIO) || p.Deleted {
						t.Errorf("delete=%v: problem %v: type %s, deleted %v; want unreadable, wrapping EIO, kept", del, p, p.Type, p.Deleted)
					}
					msg := p.Error()
					if !strings.Contains(msg, "I/O error") || !strings.Contains(msg, p.Path) || !strings.Contains(msg, p.ID.String()) || strings.Contains(msg, "corrupt") {
						t.Errorf("delete=%v: message %q does not name the I/O error, object and path", del, msg)
					}
				}
				if rep.Deleted != 0 || len(rep.MarkedPartial) != 0 {
					t.Errorf("delete=%v: deleted %d objects, marked %v partial; want nothing changed", del, rep.Deleted, rep.MarkedPartial)
				}
				for _, path := range []string{file, tree} {
					if _, err := os.Lstat(path); err != nil {
						t.Errorf("delete=%v: %v", del, err)
					}
				}
			}
		})
	}
}

// In a bare-user repository, an I/O error reading a file object's header
// xattr is no more corruption than one reading its content: the object
// is reported unreadable, wrapping EIO, and --delete keeps it and marks no
// commit partial.
func TestFsckXattrIOErrorIsNotCorruption(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	file := r.ObjectPath(repo.KindFile, integrityFileID(t, r, c, "bin/hello"))
	defer repo.SetUserMetaReadHook(func(path string) error {
		if path == file {
			return unix.EIO
		}
		return nil
	})()
	for _, del := range []bool{false, true} {
		rep, err := runFsck(t, r, repo.FsckOptions{Delete: del})
		if len(rep.Problems) != 1 {
			t.Fatalf("delete=%v: %d problems, want 1: %v", del, len(rep.Problems), err)
		}
		p := rep.Problems[0]
		if p.Type != repo.ProblemUnreadable || !errors.Is(p, unix.EIO) || p.Deleted || p.Path != file {
			t.Errorf("delete=%v: problem %v: type %s, deleted %v; want %s unreadable, wrapping EIO, kept", del, p, p.Type, p.Deleted, file)
		}
		if rep.Deleted != 0 || len(rep.MarkedPartial) != 0 {
			t.Errorf("delete=%v: deleted %d objects, marked %v partial; want nothing changed", del, rep.Deleted, rep.MarkedPartial)
		}
		if _, err := os.Lstat(file); err != nil {
			t.Errorf("delete=%v: %v", del, err)
		}
	}
}
