package checkout_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// The helpers of these tests are prefixed "dt" so they cannot collide with
// those of other test files of package checkout_test.

// dtNode is one path of a tree built object by object (dtBuild): a
// directory when Dir is set, else a file object with header H and Content.
// Building trees from objects lets tests hold devices, FIFOs, any owner and
// any xattr without root.
type dtNode struct {
	Dir     bool
	Meta    repo.DirMeta // directories
	H       repo.FileHeader
	Content string
}

func dtFile(content string, mode uint32) dtNode {
	return dtNode{H: repo.FileHeader{Type: repo.TypeRegular, Mode: mode}, Content: content}
}
func dtDir(mode uint32) dtNode { return dtNode{Dir: true, Meta: repo.DirMeta{Mode: mode}} }
func dtLink(target string) dtNode {
	return dtNode{H: repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: target}}
}

func dtRepo(t *testing.T, mode repo.Mode) *repo.Repo {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// dtBuild stores tree (slash-separated relative paths; "" is the root
// directory, 0755 root-owned when absent; missing parents are 0755) as a
// commit with a fixed timestamp and returns its id.
func dtBuild(t *testing.T, r *repo.Repo, tree map[string]dtNode) repo.ID {
	t.Helper()
	txn, err := r.Begin(t.Context(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	type dirB struct {
		meta  repo.DirMeta
		files map[string]repo.ID
		dirs  map[string]*dirB
	}
	newDir := func() *dirB {
		return &dirB{meta: repo.DirMeta{Mode: 0o755}, files: map[string]repo.ID{}, dirs: map[string]*dirB{}}
	}
	root := newDir()
	var paths []string
	for p := range tree {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	lookup := func(p string) *dirB {
		d := root
		if p == "" {
			return d
		}
		for _, c := range strings.Split(p, "/") {
			sub, ok := d.dirs[c]
			if !ok {
				sub = newDir()
				d.dirs[c] = sub
			}
			d = sub
		}
		return d
	}
	for _, p := range paths {
		n := tree[p]
		if n.Dir {
			lookup(p).meta = n.Meta
			continue
		}
		h := n.H
		h.Size = uint64(len(n.Content))
		repo.SortXattrs(h.Xattrs)
		id := repo.FileID(&h, []byte(n.Content))
		if _, err := txn.WriteFile(&h, id, []byte(n.Content)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		parent, base := "", p
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			parent, base = p[:i], p[i+1:]
		}
		lookup(parent).files[base] = id
	}
	var write func(d *dirB) (repo.ID, repo.ID)
	write = func(d *dirB) (repo.ID, repo.ID) {
		var dt repo.DirTree
		for name, id := range d.files {
			dt.Files = append(dt.Files, repo.FileEntry{Name: name, ID: id})
		}
		for name, sub := range d.dirs {
			tid, mid := write(sub)
			dt.Dirs = append(dt.Dirs, repo.DirEntry{Name: name, TreeID: tid, MetaID: mid})
		}
		sort.Slice(dt.Files, func(i, j int) bool { return dt.Files[i].Name < dt.Files[j].Name })
		sort.Slice(dt.Dirs, func(i, j int) bool { return dt.Dirs[i].Name < dt.Dirs[j].Name })
		tid, err := txn.WriteMeta(repo.KindDirTree, dt.Encode())
		if err != nil {
			t.Fatal(err)
		}
		m := d.meta
		repo.SortXattrs(m.Xattrs)
		mid, err := txn.WriteMeta(repo.KindDirMeta, m.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return tid, mid
	}
	tid, mid := write(root)
	c := repo.Commit{Timestamp: 1700000000, Subject: "built", RootTree: tid, RootMeta: mid}
	id, err := txn.WriteMeta(repo.KindCommit, c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return id
}

// dtLine is the part of a change most tests compare.
type dtLine struct {
	Kind   string
	Path   string
	Meta   bool
	Fields string
}

func dtLines(changes []checkout.Change) []dtLine {
	out := []dtLine{}
	for _, c := range changes {
		out = append(out, dtLine{c.Kind.String(), c.Path, c.Meta, strings.Join(c.Fields, ",")})
	}
	return out
}

func dtCheck(t *testing.T, what string, got []checkout.Change, err error, want []dtLine) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if want == nil {
		want = []dtLine{}
	}
	if d := cmp.Diff(want, dtLines(got)); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

var dtBase = map[string]dtNode{
	"same":          dtFile("unchanged\n", 0o644),
	"content":       dtFile("old content\n", 0o644),
	"grow":          dtFile("short", 0o644),
	"chmod":         dtFile("x", 0o644),
	"chmod+content": dtFile("abc", 0o644),
	"owner":         {H: repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, UID: 1}, Content: "o"},
	"xattr":         {H: repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Xattrs: []repo.Xattr{{Name: "user.a", Value: []byte("1")}}}},
	"link":          dtLink("target-a"),
	"file2link":     dtFile("f", 0o644),
	"file2dir":      dtFile("f", 0o644),
	"dir2file":      dtDir(0o755),
	"dir2file/in":   dtFile("in", 0o644),
	"dev":           {H: repo.FileHeader{Type: repo.TypeCharDevice, Mode: 0o666, Rdev: unix.Mkdev(1, 3)}},
	"gone":          dtFile("bye", 0o644),
	"gonedir/a":     dtFile("a", 0o644),
	"gonedir/sub/b": dtFile("b", 0o644),
	"keep/x":        dtFile("x", 0o644),
	"keep/deep/y":   dtFile("y", 0o644),
	"moddir":        dtDir(0o755),
	"moddir/z":      dtFile("z", 0o644),
}

func dtChanged() map[string]dtNode {
	m := map[string]dtNode{}
	for k, v := range dtBase {
		m[k] = v
	}
	delete(m, "gone")
	delete(m, "gonedir/a")
	delete(m, "gonedir/sub/b")
	delete(m, "dir2file")
	delete(m, "dir2file/in")
	delete(m, "file2dir")
	m["content"] = dtFile("new content\n", 0o644) // same size
	m["grow"] = dtFile("longer now", 0o644)
	m["chmod"] = dtFile("x", 0o600)
	m["chmod+content"] = dtFile("xyz", 0o755)
	m["owner"] = dtNode{H: repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, UID: 2, GID: 3}, Content: "o"}
	m["xattr"] = dtNode{H: repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Xattrs: []repo.Xattr{{Name: "user.a", Value: []byte("2")}}}}
	m["link"] = dtLink("target-b")
	m["file2link"] = dtLink("f")
	m["file2dir/new"] = dtFile("n", 0o644)
	m["dir2file"] = dtFile("now a file", 0o644)
	m["dev"] = dtNode{H: repo.FileHeader{Type: repo.TypeCharDevice, Mode: 0o666, Rdev: unix.Mkdev(1, 5)}}
	m["added"] = dtFile("hi", 0o644)
	m["addeddir/sub/c"] = dtFile("c", 0o644)
	m["moddir"] = dtDir(0o700)
	m["keep/deep/y2"] = dtFile("y2", 0o644)
	m[""] = dtNode{Dir: true, Meta: repo.DirMeta{Mode: 0o750}}
	return m
}

func TestDiffCommits(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	a := dtBuild(t, r, dtBase)
	b := dtBuild(t, r, dtChanged())

	got, err := checkout.Diff(t.Context(), r, a, a, checkout.DiffOptions{})
	dtCheck(t, "a commit against itself", got, err, nil)

	got, err = checkout.Diff(t.Context(), r, a, b, checkout.DiffOptions{})
	want := []dtLine{
		{"M", "/", true, "mode"},
		{"A", "/added", false, ""},
		{"A", "/addeddir", false, ""},
		{"A", "/addeddir/sub", false, ""},
		{"A", "/addeddir/sub/c", false, ""},
		{"M", "/chmod", true, "mode"},
		{"M", "/chmod+content", false, "content,mode"},
		{"M", "/content", false, "content"},
		{"M", "/dev", true, "rdev"},
		{"M", "/dir2file", false, "type"},
		{"M", "/file2dir", false, "type"},
		{"A", "/file2dir/new", false, ""},
		{"M", "/file2link", false, "type"},
		{"D", "/gone", false, ""},
		{"D", "/gonedir", false, ""},
		{"M", "/grow", false, "content"},
		{"A", "/keep/deep/y2", false, ""},
		{"M", "/link", true, "target"},
		{"M", "/moddir", true, "mode"},
		{"M", "/owner", true, "owner"},
		{"M", "/xattr", true, "xattrs"},
	}
	dtCheck(t, "diff", got, err, want)

	// Verify also lists what was below removed directories.
	got, err = checkout.Diff(t.Context(), r, a, b, checkout.DiffOptions{Verify: true})
	var wantV []dtLine
	for _, l := range want {
		wantV = append(wantV, l)
		switch l.Path {
		case "/dir2file":
			wantV = append(wantV, dtLine{"D", "/dir2file/in", false, ""})
		case "/gonedir":
			wantV = append(wantV, dtLine{"D", "/gonedir/a", false, ""}, dtLine{"D", "/gonedir/sub", false, ""}, dtLine{"D", "/gonedir/sub/b", false, ""})
		}
	}
	dtCheck(t, "diff with Verify", got, err, wantV)

	// Reversed, adds and removes swap.
	got, err = checkout.Diff(t.Context(), r, b, a, checkout.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lines := dtLines(got)
	if lines[1] != (dtLine{"D", "/added", false, ""}) || lines[2] != (dtLine{"D", "/addeddir", false, ""}) || lines[3].Path != "/chmod" {
		t.Errorf("reversed diff starts %v", lines[:4])
	}

	// Ignoring owners and xattrs drops those changes only.
	got, err = checkout.Diff(t.Context(), r, a, b, checkout.DiffOptions{IgnoreOwners: true, IgnoreXattrs: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range dtLines(got) {
		if l.Path == "/owner" || l.Path == "/xattr" {
			t.Errorf("ignored change reported: %+v", l)
		}
	}
	if len(got) != len(want)-2 {
		t.Errorf("with IgnoreOwners and IgnoreXattrs: %d changes, want %d", len(got), len(want)-2)
	}

	// Both sides are described.
	for _, c := range got {
		if c.Path == "/chmod+content" {
			if c.Old.Mode != 0o644 || c.New.Mode != 0o755 || c.Old.Size != 3 || c.New.Type != "regular" || c.Old.ID.IsZero() {
				t.Errorf("/chmod+content: old %+v new %+v", c.Old, c.New)
			}
		}
		if c.Path == "/dir2file" && (c.Old.Type != checkout.TypeDirectory || c.New.Type != "regular" || c.Old.MetaID.IsZero()) {
			t.Errorf("/dir2file: old %+v new %+v", c.Old, c.New)
		}
	}

	s := checkout.Summarize(got)
	if s.FilesAdded != 4 || s.DirsAdded != 2 || s.FilesDeleted != 1 || s.DirsDeleted != 1 || s.BytesAdded != 2+1+1+2 {
		t.Errorf("Summarize = %+v", s)
	}
}

// Identical subtrees are skipped without being read: deleting a shared
// dirtree object does not disturb a diff that has no reason to open it.
func TestDiffSkipsSharedSubtrees(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	tree := map[string]dtNode{"usr/lib/big/a": dtFile("a", 0o644), "usr/lib/big/b": dtFile("b", 0o644), "etc/conf": dtFile("1", 0o644)}
	a := dtBuild(t, r, tree)
	tree["etc/conf"] = dtFile("2", 0o644)
	b := dtBuild(t, r, tree)
	e, err := r.Lookup(a, "/usr")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.ObjectPath(repo.KindDirTree, e.ID)); err != nil {
		t.Fatal(err)
	}
	got, err := checkout.Diff(t.Context(), r, a, b, checkout.DiffOptions{Verify: true})
	dtCheck(t, "diff", got, err, []dtLine{{"M", "/etc/conf", false, "content"}})

	// A missing object that is needed is an error naming the path.
	tree["usr/lib/big/a"] = dtFile("A", 0o644)
	c := dtBuild(t, r, tree)
	_, err = checkout.Diff(t.Context(), r, a, c, checkout.DiffOptions{})
	if err == nil || !strings.Contains(err.Error(), "/usr") || !strings.Contains(err.Error(), e.ID.String()) {
		t.Errorf("diff through a missing dirtree: %v", err)
	}
	if _, err := checkout.Diff(t.Context(), r, a, repo.ID{1}, checkout.DiffOptions{}); err == nil || !strings.Contains(err.Error(), repo.ID{1}.String()) {
		t.Errorf("diff with a missing commit: %v", err)
	}
}

// Diff compares whole commits: a Subpath, which only DiffDir honours, is
// refused rather than ignored, which would report changes outside it.
func TestDiffRefusesSubpath(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	tree := map[string]dtNode{"usr/a": dtFile("a", 0o644), "etc/conf": dtFile("1", 0o644)}
	a := dtBuild(t, r, tree)
	tree["etc/conf"] = dtFile("2", 0o644)
	b := dtBuild(t, r, tree)
	got, err := checkout.Diff(t.Context(), r, a, b, checkout.DiffOptions{Subpath: "/usr"})
	if err == nil || !strings.Contains(err.Error(), "/usr") || len(got) != 0 {
		t.Errorf("diff of commits with Subpath /usr: %v, %d changes; want it refused, naming the subpath", err, len(got))
	}
}

// dtCommitDir commits dir to an orphan commit with options applied.
func dtCommitDir(t *testing.T, r *repo.Repo, dir string, mod ...func(*commit.Options)) repo.ID {
	t.Helper()
	o := commit.Options{Orphan: true, NoSync: true, NoStatCache: true, Timestamp: time.Unix(1700000000, 0),
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: dir}}}
	for _, m := range mod {
		m(&o)
	}
	res, err := commit.Commit(t.Context(), r, o)
	if err != nil {
		t.Fatal(err)
	}
	return res.Commit
}

func dtMakeDir(t *testing.T, tree testtree.Tree) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	testtree.Create(t, dir, tree)
	return dir
}

// dtCountObjects counts the files under objects/.
func dtCountObjects(t *testing.T, r *repo.Repo) int {
	t.Helper()
	n := 0
	filepath.WalkDir(r.Path("objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestDiffDir(t *testing.T) {
	r := dtRepo(t, repo.ModeBareUser)
	big := strings.Repeat("0123456789abcdef", 80000) // 1.25 MiB
	dir := dtMakeDir(t, testtree.Tree{
		"same":        testtree.File("same\n", 0o644),
		"content":     testtree.File("old content\n", 0o644),
		"chmod":       testtree.File("x", 0o644),
		"both":        testtree.File("abc", 0o644),
		"big":         testtree.File(big, 0o644),
		"xattr":       {Mode: 0o644, Content: "x", Xattrs: map[string]string{"user.a": "1"}},
		"link":        testtree.Symlink("a"),
		"gone":        testtree.File("bye", 0o644),
		"gonedir/a":   testtree.File("a", 0o644),
		"sub":         testtree.Dir(0o755),
		"sub/x":       testtree.File("x", 0o644),
		"file2dir":    testtree.File("f", 0o644),
		"empty":       testtree.File("", 0o644),
		"with space":  testtree.File("s", 0o644),
		"ünï\ncode":   testtree.File("u", 0o644),
		"setuid":      {Mode: os.ModeSetuid | 0o755, Content: "su"},
		"sub/deep/er": testtree.File("deep", 0o600),
	})
	id := dtCommitDir(t, r, dir)
	objects := dtCountObjects(t, r)

	got, err := checkout.DiffDir(t.Context(), r, id, dir, checkout.DiffOptions{})
	dtCheck(t, "an unchanged directory", got, err, nil)

	// A bare-user checkout's user.otreemeta is not part of the tree.
	if err := unix.Lsetxattr(filepath.Join(dir, "same"), "user.otreemeta", []byte("junk"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "content"), []byte("new content\n"), 0o644)
	os.Chmod(filepath.Join(dir, "chmod"), 0o600)
	os.WriteFile(filepath.Join(dir, "both"), []byte("xyz"), 0o644)
	os.Chmod(filepath.Join(dir, "both"), 0o755)
	os.WriteFile(filepath.Join(dir, "big"), []byte(big[:len(big)-1]+"!"), 0o644)
	unix.Lsetxattr(filepath.Join(dir, "xattr"), "user.a", []byte("2"), 0)
	os.Remove(filepath.Join(dir, "link"))
	os.Symlink("b", filepath.Join(dir, "link"))
	os.Remove(filepath.Join(dir, "gone"))
	os.RemoveAll(filepath.Join(dir, "gonedir"))
	os.Remove(filepath.Join(dir, "file2dir"))
	os.MkdirAll(filepath.Join(dir, "file2dir/in"), 0o755)
	os.WriteFile(filepath.Join(dir, "file2dir/in/f"), []byte("f"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub/new"), []byte("n"), 0o644)
	os.Chmod(filepath.Join(dir, "sub/deep"), 0o700)
	os.WriteFile(filepath.Join(dir, "ünï\ncode"), []byte("U"), 0o644)
	sock := filepath.Join(dir, "sock")
	if l, err := net.Listen("unix", sock); err == nil {
		defer l.Close()
	} else {
		t.Logf("no socket: %v", err)
	}

	got, err = checkout.DiffDir(t.Context(), r, id, dir, checkout.DiffOptions{})
	want := []dtLine{
		{"M", "/big", false, "content"},
		{"M", "/both", false, "content,mode"},
		{"M", "/chmod", true, "mode"},
		{"M", "/content", false, "content"},
		{"M", "/file2dir", false, "type"},
		{"A", "/file2dir/in", false, ""},
		{"A", "/file2dir/in/f", false, ""},
		{"D", "/gone", false, ""},
		{"D", "/gonedir", false, ""},
		{"M", "/link", true, "target"},
		{"A", "/sock", false, ""},
		{"M", "/sub/deep", true, "mode"},
		{"A", "/sub/new", false, ""},
		{"M", "/xattr", true, "xattrs"},
		{"M", "/ünï\ncode", false, "content"},
	}
	dtCheck(t, "changed directory", got, err, want)
	for _, c := range got {
		if c.Path == "/sock" && c.New.Type != "socket" {
			t.Errorf("/sock: %+v", c.New)
		}
		if c.Path == "/content" && (c.New.ID.IsZero() || c.Old.ID.IsZero()) {
			t.Errorf("/content: ids not reported: old %+v new %+v", c.Old, c.New)
		}
	}

	got, err = checkout.DiffDir(t.Context(), r, id, dir, checkout.DiffOptions{Verify: true, IgnoreXattrs: true, Workers: 1})
	var wantV []dtLine
	for _, l := range want {
		if l.Path == "/xattr" {
			continue
		}
		wantV = append(wantV, l)
		if l.Path == "/gonedir" {
			wantV = append(wantV, dtLine{"D", "/gonedir/a", false, ""})
		}
	}
	dtCheck(t, "changed directory, Verify and IgnoreXattrs", got, err, wantV)

	if n := dtCountObjects(t, r); n != objects {
		t.Errorf("DiffDir wrote to the repository: %d objects, was %d", n, objects)
	}
}

// A tree committed with one owner compares clean against a checkout owned
// by someone else once the owner is given (or ignored).
func TestDiffDirOwners(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	dir := dtMakeDir(t, testtree.Tree{"a": testtree.File("a", 0o644), "d/b": testtree.File("b", 0o600), "l": testtree.Symlink("a")})
	owner := uint32(4321)
	id := dtCommitDir(t, r, dir, func(o *commit.Options) { o.OwnerUID, o.OwnerGID = &owner, &owner })

	got, err := checkout.DiffDir(t.Context(), r, id, dir, checkout.DiffOptions{})
	dtCheck(t, "owners differ", got, err, []dtLine{
		{"M", "/", true, "owner"}, {"M", "/a", true, "owner"}, {"M", "/d", true, "owner"},
		{"M", "/d/b", true, "owner"}, {"M", "/l", true, "owner"},
	})
	got, err = checkout.DiffDir(t.Context(), r, id, dir, checkout.DiffOptions{OwnerUID: &owner, OwnerGID: &owner})
	dtCheck(t, "with OwnerUID/OwnerGID", got, err, nil)
	got, err = checkout.DiffDir(t.Context(), r, id, dir, checkout.DiffOptions{IgnoreOwners: true})
	dtCheck(t, "with IgnoreOwners", got, err, nil)

	// Ignoring owners still sees content.
	os.WriteFile(filepath.Join(dir, "d/b"), []byte("B"), 0o600)
	got, err = checkout.DiffDir(t.Context(), r, id, dir, checkout.DiffOptions{IgnoreOwners: true})
	dtCheck(t, "content with IgnoreOwners", got, err, []dtLine{{"M", "/d/b", false, "content"}})
}

// A tree committed with canonical permissions, as a bare-user-only
// repository records every commit, compares clean against its source once
// the directory is taken the same way: always in bare-user-only, with
// CanonicalPermissions elsewhere. Content and the bits that remain still
// count.
func TestDiffDirCanonicalPermissions(t *testing.T) {
	tree := testtree.Tree{
		"a":   {Mode: 0o664, Content: "a", Xattrs: map[string]string{"user.k": "v"}},
		"d/":  {Mode: fs.ModeDir | fs.ModeSetgid | 0o775},
		"d/b": {Mode: 0o4750, Content: "b", UID: 1000, GID: 1000},
		"l":   testtree.Symlink("a"),
	}
	for _, tc := range []struct {
		mode repo.Mode
		opts checkout.DiffOptions
	}{{repo.ModeBareUserOnly, checkout.DiffOptions{}}, {repo.ModeBareUser, checkout.DiffOptions{CanonicalPermissions: true}}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			r := dtRepo(t, tc.mode)
			dir := dtMakeDir(t, tree)
			id := dtCommitDir(t, r, dir, func(o *commit.Options) { o.CanonicalPermissions = true })
			got, err := checkout.DiffDir(t.Context(), r, id, dir, tc.opts)
			dtCheck(t, "the source", got, err, nil)
			os.WriteFile(filepath.Join(dir, "d/b"), []byte("B"), 0o600)
			os.Chmod(filepath.Join(dir, "a"), 0o600)
			got, err = checkout.DiffDir(t.Context(), r, id, dir, tc.opts)
			dtCheck(t, "changed", got, err, []dtLine{{"M", "/a", true, "mode"}, {"M", "/d/b", false, "content"}})
		})
	}
	// Without the option, a bare-user repository's commit differs from
	// its source wherever canonical permissions changed it.
	r := dtRepo(t, repo.ModeBareUser)
	dir := dtMakeDir(t, tree)
	id := dtCommitDir(t, r, dir, func(o *commit.Options) { o.CanonicalPermissions = true })
	if got, err := checkout.DiffDir(t.Context(), r, id, dir, checkout.DiffOptions{}); err != nil || len(got) == 0 {
		t.Errorf("without CanonicalPermissions: %v, %v; want changes", dtLines(got), err)
	}
}

func TestDiffDirErrors(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	dir := dtMakeDir(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	id := dtCommitDir(t, r, dir)
	missing := filepath.Join(dir, "missing")
	if _, err := checkout.DiffDir(t.Context(), r, id, missing, checkout.DiffOptions{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing directory: %v", err)
	}
	file := filepath.Join(dir, "a")
	if _, err := checkout.DiffDir(t.Context(), r, id, file, checkout.DiffOptions{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: %v", err)
	}

	// A cancelled comparison names what it compared.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := checkout.DiffDir(ctx, r, id, dir, checkout.DiffOptions{}); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), id.String()) {
		t.Errorf("cancelled DiffDir: %v; want context.Canceled naming %s and %s", err, id, dir)
	}
	other := dtMakeDir(t, testtree.Tree{"b": testtree.File("b", 0o644)})
	if _, err := checkout.DiffDirs(ctx, dir, other, checkout.DiffOptions{}); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), other) {
		t.Errorf("cancelled DiffDirs: %v; want context.Canceled naming %s and %s", err, dir, other)
	}
	id2 := dtCommitDir(t, r, other)
	if _, err := checkout.Diff(ctx, r, id, id2, checkout.DiffOptions{}); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), id2.String()) {
		t.Errorf("cancelled Diff: %v; want context.Canceled naming %s", err, id2)
	}
}

// Two directories compare as a commit of the first compares with the
// second: the same changes, in the same order, with or without Verify.
func TestDiffDirsMatchesDiffDir(t *testing.T) {
	r := dtRepo(t, repo.ModeBareUser)
	big := strings.Repeat("0123456789abcdef", 80000)
	old := dtMakeDir(t, testtree.Tree{
		"same":        testtree.File("same\n", 0o644),
		"content":     testtree.File("old content\n", 0o644),
		"both":        testtree.File("abc", 0o644),
		"big":         testtree.File(big, 0o644),
		"grow":        testtree.File("ab", 0o644),
		"link":        testtree.Symlink("a"),
		"gonedir/a":   testtree.File("a", 0o644),
		"dir2file/x":  testtree.File("x", 0o644),
		"file2dir":    testtree.File("f", 0o644),
		"sub/deep/er": testtree.File("deep", 0o600),
	})
	nw := filepath.Join(t.TempDir(), "new")
	if out, err := exec.Command("cp", "-a", old, nw).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	opts := checkout.DiffOptions{}
	got, err := checkout.DiffDirs(t.Context(), old, nw, opts)
	dtCheck(t, "a copy", got, err, nil)

	os.WriteFile(filepath.Join(nw, "content"), []byte("new content\n"), 0o644)
	os.WriteFile(filepath.Join(nw, "both"), []byte("xyz"), 0o644)
	os.Chmod(filepath.Join(nw, "both"), 0o755)
	os.WriteFile(filepath.Join(nw, "big"), []byte(big[:len(big)-1]+"!"), 0o644)
	os.WriteFile(filepath.Join(nw, "grow"), []byte("abc"), 0o644)
	os.Remove(filepath.Join(nw, "link"))
	os.Symlink("b", filepath.Join(nw, "link"))
	os.RemoveAll(filepath.Join(nw, "gonedir"))
	os.RemoveAll(filepath.Join(nw, "dir2file"))
	os.WriteFile(filepath.Join(nw, "dir2file"), nil, 0o644)
	os.Remove(filepath.Join(nw, "file2dir"))
	os.MkdirAll(filepath.Join(nw, "file2dir/in"), 0o755)
	os.WriteFile(filepath.Join(nw, "file2dir/in/f"), []byte("f"), 0o644)
	os.Chmod(filepath.Join(nw, "sub/deep"), 0o700)
	os.Chmod(nw, 0o700)

	id := dtCommitDir(t, r, old)
	for _, opts := range []checkout.DiffOptions{{}, {Verify: true, Workers: 1}} {
		want, err := checkout.DiffDir(t.Context(), r, id, nw, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) < 12 {
			t.Fatalf("DiffDir found only %d changes: %v", len(want), dtLines(want))
		}
		got, err := checkout.DiffDirs(t.Context(), old, nw, opts)
		dtCheck(t, fmt.Sprintf("changed copy, %+v", opts), got, err, dtLines(want))
	}
	if _, err := checkout.DiffDirs(t.Context(), old, filepath.Join(nw, "content"), opts); err == nil || !strings.Contains(err.Error(), "content is not a directory") {
		t.Errorf("a file as the new side: %v", err)
	}
}

// DiffDir and DiffDirs compare trees deeper than PATH_MAX, which commit
// and checkout handle: like commit, they read each entry relative to its
// open directory (xattrs, symlink targets and content included).
func TestDiffDeepTree(t *testing.T) {
	r := dtRepo(t, repo.ModeBareUser)
	src := dtMakeDir(t, nil)
	chain := testtree.Deep(t, src, 25, testtree.Tree{
		"f":    {Mode: 0o644, Content: "x", Xattrs: map[string]string{"user.k": "v"}},
		"gone": testtree.File("g", 0o644),
		"l":    testtree.Symlink("f"),
	})
	if len(src)+len(chain) <= 4096 {
		t.Fatalf("the tree is only %d bytes deep", len(src)+len(chain))
	}
	deep := "/" + chain
	id := dtCommitDir(t, r, src)
	got, err := checkout.DiffDir(t.Context(), r, id, src, checkout.DiffOptions{})
	dtCheck(t, "the directory committed", got, err, nil)

	// An xattr deep down is read, not left out.
	sr, err := os.OpenRoot(src)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	f, err := sr.Open(chain + "/f")
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fsetxattr(int(f.Fd()), "user.k", []byte("w"), 0)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	got, err = checkout.DiffDir(t.Context(), r, id, src, checkout.DiffOptions{})
	dtCheck(t, "an xattr changed", got, err, []dtLine{{"M", deep + "/f", true, "xattrs"}})

	co := filepath.Join(t.TempDir(), "co")
	if _, err := checkout.Checkout(t.Context(), r, id, co, checkout.Options{UserMode: true, ForceCopy: true}); err != nil {
		t.Fatal(err)
	}
	noMeta := checkout.DiffOptions{IgnoreXattrs: true, IgnoreOwners: true}
	got, err = checkout.DiffDir(t.Context(), r, id, co, noMeta)
	dtCheck(t, "its user-mode checkout", got, err, nil)

	cr, err := os.OpenRoot(co)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	for _, err := range []error{
		cr.WriteFile(chain+"/f", []byte("changed"), 0o644),
		cr.Remove(chain + "/gone"),
		cr.Symlink("f", chain+"/new"),
		cr.Mkdir(chain+"/newdir", 0o755),
		cr.WriteFile(chain+"/newdir/x", []byte("x"), 0o644),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []dtLine{
		{"M", deep + "/f", false, "content"},
		{"D", deep + "/gone", false, ""},
		{"A", deep + "/new", false, ""},
		{"A", deep + "/newdir", false, ""},
		{"A", deep + "/newdir/x", false, ""},
	}
	got, err = checkout.DiffDir(t.Context(), r, id, co, noMeta)
	dtCheck(t, "the changed checkout", got, err, want)
	got, err = checkout.DiffDirs(t.Context(), src, co, noMeta)
	dtCheck(t, "the directory and the changed checkout", got, err, want)
	got, err = checkout.DiffDirs(t.Context(), co, src, checkout.DiffOptions{Verify: true, IgnoreXattrs: true, IgnoreOwners: true})
	dtCheck(t, "the other way round", got, err, []dtLine{
		{"M", deep + "/f", false, "content"},
		{"A", deep + "/gone", false, ""},
		{"D", deep + "/new", false, ""},
		{"D", deep + "/newdir", false, ""},
		{"D", deep + "/newdir/x", false, ""},
	})
}
