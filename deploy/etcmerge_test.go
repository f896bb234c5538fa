package deploy

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
)

// etcFixture holds the three source trees of a merge and its destination.
type etcFixture struct {
	dir, od, oe, nd, dest string
}

// newEtcFixture creates the trees under a temporary directory; a nil tree is
// left missing.
func newEtcFixture(t *testing.T, od, oe, nd testtree.Tree) etcFixture {
	t.Helper()
	return newEtcFixtureIn(t, t.TempDir(), od, oe, nd)
}

func newEtcFixtureIn(t *testing.T, dir string, od, oe, nd testtree.Tree) etcFixture {
	t.Helper()
	f := etcFixture{dir: dir, od: filepath.Join(dir, "od"), oe: filepath.Join(dir, "oe"),
		nd: filepath.Join(dir, "nd"), dest: filepath.Join(dir, "new")}
	for _, s := range []struct {
		path string
		tree testtree.Tree
	}{{f.od, od}, {f.oe, oe}, {f.nd, nd}} {
		if s.tree == nil {
			continue
		}
		if err := os.Mkdir(s.path, 0o755); err != nil {
			t.Fatal(err)
		}
		testtree.Create(t, s.path, s.tree)
	}
	return f
}

func (f etcFixture) merge(t *testing.T) []EtcChange {
	t.Helper()
	recs, err := MergeEtc(context.Background(), f.od, f.oe, f.nd, f.dest)
	if err != nil {
		t.Fatalf("MergeEtc: %v", err)
	}
	return recs
}

// edit returns a copy of base with set applied and del removed.
func edit(base, set testtree.Tree, del ...string) testtree.Tree {
	out := maps.Clone(base)
	maps.Copy(out, set)
	for _, p := range del {
		delete(out, p)
	}
	return out
}

func checkRecords(t *testing.T, want, got []EtcChange) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
}

func checkTree(t *testing.T, root string, want testtree.Tree) {
	t.Helper()
	got := testtree.Read(t, root, testtree.ReadOptions{Owners: os.Geteuid() == 0, Xattrs: true})
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tree %s (-want +got):\n%s", root, d)
	}
}

func file(s string) testtree.Entry { return testtree.File(s, 0o644) }

var fatesOld = testtree.Tree{
	"hosts":          file("127.0.0.1 localhost\n"),
	"removed.conf":   file("r\n"),
	"os-release":     file("v1\n"),
	"gone.conf":      file("g\n"),
	"both.conf":      file("b1\n"),
	"same.conf":      file("s1\n"),
	"untouched.conf": file("u\n"),
}

var fatesLocal = edit(fatesOld, testtree.Tree{
	"hosts":      file("127.0.0.1 localhost\n10.0.0.1 db\n"),
	"local.conf": file("l\n"),
	"both.conf":  file("b-local\n"),
	"same.conf":  file("s2\n"),
}, "removed.conf")

var fatesNew = edit(fatesOld, testtree.Tree{
	"os-release":       file("v2\n"),
	"new-default.conf": file("n\n"),
	"both.conf":        file("b-default\n"),
	"same.conf":        file("s2\n"),
}, "gone.conf")

var fatesRecords = []EtcChange{
	{Path: "/etc/both.conf", Fate: FateBoth, Local: "M", Default: "M", Fields: []string{"content"},
		Detail: "kept the local version; the new default is /usr/etc/both.conf"},
	{Path: "/etc/gone.conf", Fate: FateDefault, Default: "D"},
	{Path: "/etc/hosts", Fate: FateLocal, Local: "M", Fields: []string{"content"}},
	{Path: "/etc/local.conf", Fate: FateLocal, Local: "A"},
	{Path: "/etc/new-default.conf", Fate: FateDefault, Default: "A"},
	{Path: "/etc/os-release", Fate: FateDefault, Default: "M", Fields: []string{"content"}},
	{Path: "/etc/removed.conf", Fate: FateLocal, Local: "D"},
	{Path: "/etc/same.conf", Fate: FateSame, Local: "M", Default: "M", Fields: []string{"content"}},
}

// Local additions, modifications and deletions are carried, untouched
// defaults follow the new tree, and each path gets its fate.
func TestMergeEtcFates(t *testing.T) {
	f := newEtcFixture(t, fatesOld, fatesLocal, fatesNew)
	checkRecords(t, fatesRecords, f.merge(t))
	checkTree(t, f.dest, testtree.Tree{
		"both.conf":        file("b-local\n"),
		"hosts":            file("127.0.0.1 localhost\n10.0.0.1 db\n"),
		"local.conf":       file("l\n"),
		"new-default.conf": file("n\n"),
		"os-release":       file("v2\n"),
		"same.conf":        file("s2\n"),
		"untouched.conf":   file("u\n"),
	})
}

// A dry run returns the same records and writes nothing; with the old
// defaults as the new ones it lists only the admin's changes.
func TestMergeEtcDryRun(t *testing.T) {
	f := newEtcFixture(t, fatesOld, fatesLocal, fatesNew)
	before := testtree.Read(t, f.dir, testtree.ReadOptions{Owners: true, Xattrs: true})
	recs, err := MergeEtc(context.Background(), f.od, f.oe, f.nd, "")
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, fatesRecords, recs)
	recs, err = MergeEtc(context.Background(), f.od, f.oe, f.od, "")
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, []EtcChange{
		{Path: "/etc/both.conf", Fate: FateLocal, Local: "M", Fields: []string{"content"}},
		{Path: "/etc/hosts", Fate: FateLocal, Local: "M", Fields: []string{"content"}},
		{Path: "/etc/local.conf", Fate: FateLocal, Local: "A"},
		{Path: "/etc/removed.conf", Fate: FateLocal, Local: "D"},
		{Path: "/etc/same.conf", Fate: FateLocal, Local: "M", Fields: []string{"content"}},
	}, recs)
	after := testtree.Read(t, f.dir, testtree.ReadOptions{Owners: true, Xattrs: true})
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("a dry run changed the directory (-before +after):\n%s", d)
	}
}

// Symlinks are read and recreated as symlinks with their target text, never
// followed, wherever they point; new defaults below a directory the admin
// replaced by a symlink are not written through it.
func TestMergeEtcSymlinksNotFollowed(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	testtree.Create(t, dir, testtree.Tree{"outside/secret": file("s\n"), "outside/f": file("outside f\n")})
	old := testtree.Tree{
		"resolv.conf": file("nameserver 1.1.1.1\n"),
		"d":           testtree.Dir(0o755),
		"d/f":         file("default f\n"),
		"sub":         testtree.Dir(0o755),
		"localtime":   testtree.Symlink("../usr/share/zoneinfo/UTC"),
	}
	local := edit(old, testtree.Tree{
		"resolv.conf": testtree.Symlink(filepath.Join(outside, "secret")),
		"d":           testtree.Symlink(outside),
		"sub/up":      testtree.Symlink("../../outside"),
		"shadow":      testtree.Symlink("/etc/shadow"),
	}, "d/f")
	nd := edit(old, testtree.Tree{"d/new": file("new\n"), "resolv.conf": file("nameserver 1.1.1.1\n")})
	f := newEtcFixtureIn(t, dir, old, local, nd)
	checkRecords(t, []EtcChange{
		{Path: "/etc/d", Fate: FateLocal, Local: "M", Fields: []string{"type"}},
		{Path: "/etc/d/f", Fate: FateLocal, Local: "D"},
		{Path: "/etc/d/new", Fate: FateBoth, Default: "A",
			Detail: "not applied: /etc/d is not a directory locally; the new default is /usr/etc/d/new"},
		{Path: "/etc/resolv.conf", Fate: FateLocal, Local: "M", Fields: []string{"type"}},
		{Path: "/etc/shadow", Fate: FateLocal, Local: "A"},
		{Path: "/etc/sub/up", Fate: FateLocal, Local: "A"},
	}, f.merge(t))
	checkTree(t, f.dest, testtree.Tree{
		"resolv.conf": testtree.Symlink(filepath.Join(outside, "secret")),
		"d":           testtree.Symlink(outside),
		"sub":         testtree.Dir(0o755),
		"sub/up":      testtree.Symlink("../../outside"),
		"shadow":      testtree.Symlink("/etc/shadow"),
		"localtime":   testtree.Symlink("../usr/share/zoneinfo/UTC"),
	})
	checkTree(t, outside, testtree.Tree{"secret": file("s\n"), "f": file("outside f\n")})
}

// A directory recreated for a local addition keeps the old /etc's mode and
// owner, also when the new defaults remove it.
func TestMergeEtcParentRecreated(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to set owners")
	}
	old := testtree.Tree{
		"foo.d":        {Mode: fs.ModeDir | 0o750, UID: 5, GID: 6},
		"foo.d/a.conf": file("a\n"),
	}
	local := edit(old, testtree.Tree{
		"foo.d/local.conf": {Mode: 0o640, Content: "l\n", UID: 7, GID: 8},
		"app":              {Mode: fs.ModeDir | 0o750, UID: 12, GID: 34},
		"app/app.conf":     {Mode: 0o640, Content: "x\n", UID: 12, GID: 34},
	})
	f := newEtcFixture(t, old, local, testtree.Tree{"other": file("o\n")})
	checkRecords(t, []EtcChange{
		{Path: "/etc/app", Fate: FateLocal, Local: "A"},
		{Path: "/etc/app/app.conf", Fate: FateLocal, Local: "A"},
		{Path: "/etc/foo.d", Fate: FateBoth, Default: "D",
			Detail: "the new defaults remove this directory; kept for the local changes below it"},
		{Path: "/etc/foo.d/a.conf", Fate: FateDefault, Default: "D"},
		{Path: "/etc/foo.d/local.conf", Fate: FateLocal, Local: "A"},
		{Path: "/etc/other", Fate: FateDefault, Default: "A"},
	}, f.merge(t))
	checkTree(t, f.dest, testtree.Tree{
		"app":              {Mode: fs.ModeDir | 0o750, UID: 12, GID: 34},
		"app/app.conf":     {Mode: 0o640, Content: "x\n", UID: 12, GID: 34},
		"foo.d":            {Mode: fs.ModeDir | 0o750, UID: 5, GID: 6},
		"foo.d/local.conf": {Mode: 0o640, Content: "l\n", UID: 7, GID: 8},
		"other":            file("o\n"),
	})
}

// A chmod is a local modification of the mode alone, on files and
// directories, and new defaults still land in the chmod'ed directory.
func TestMergeEtcModeOnly(t *testing.T) {
	old := testtree.Tree{"ssh": testtree.Dir(0o755), "ssh/sshd_config": file("c\n")}
	local := testtree.Tree{"ssh": testtree.Dir(0o700), "ssh/sshd_config": testtree.File("c\n", 0o600)}
	f := newEtcFixture(t, old, local, edit(old, testtree.Tree{"ssh/new": file("n\n")}))
	checkRecords(t, []EtcChange{
		{Path: "/etc/ssh", Fate: FateLocal, Local: "M", Fields: []string{"mode"}},
		{Path: "/etc/ssh/new", Fate: FateDefault, Default: "A"},
		{Path: "/etc/ssh/sshd_config", Fate: FateLocal, Local: "M", Fields: []string{"mode"}},
	}, f.merge(t))
	checkTree(t, f.dest, testtree.Tree{
		"ssh":             testtree.Dir(0o700),
		"ssh/new":         file("n\n"),
		"ssh/sshd_config": testtree.File("c\n", 0o600),
	})
}

// A changed user.* xattr is a local modification, and is copied.
func TestMergeEtcXattrChange(t *testing.T) {
	x := func(v string) testtree.Entry {
		return testtree.Entry{Mode: 0o644, Content: "x\n", Xattrs: map[string]string{"user.tag": v}}
	}
	old := testtree.Tree{"x.conf": x("1"), "y.conf": x("1")}
	f := newEtcFixture(t, old, testtree.Tree{"x.conf": x("2"), "y.conf": x("1")}, edit(old, testtree.Tree{"y.conf": x("3")}))
	checkRecords(t, []EtcChange{
		{Path: "/etc/x.conf", Fate: FateLocal, Local: "M", Fields: []string{"xattrs"}},
		{Path: "/etc/y.conf", Fate: FateDefault, Default: "M", Fields: []string{"xattrs"}},
	}, f.merge(t))
	checkTree(t, f.dest, testtree.Tree{"x.conf": x("2"), "y.conf": x("3")})
}

// Both kinds of conflict fail the merge after every record is computed, and
// leave nothing at dest.
func TestMergeEtcConflict(t *testing.T) {
	old := testtree.Tree{"motd": file("m\n"), "dir.d": testtree.Dir(0o755), "dir.d/a": file("a\n"), "plain": file("p\n")}
	local := edit(old, testtree.Tree{"motd": file("local\n"), "dir.d/a": file("changed\n")})
	nd := testtree.Tree{"motd": testtree.Dir(0o755), "motd/part": file("x\n"), "dir.d": file("now a file\n"), "plain": file("p2\n")}
	f := newEtcFixture(t, old, local, nd)
	recs, err := MergeEtc(context.Background(), f.od, f.oe, f.nd, f.dest)
	conflicts := []EtcChange{
		{Path: "/etc/dir.d", Fate: FateConflict, Default: "M", Fields: []string{"type"},
			Detail: "the local directory has changes, but the new default /usr/etc/dir.d is not a directory"},
		{Path: "/etc/motd", Fate: FateConflict, Local: "M", Default: "M", Fields: []string{"content"},
			Detail: "changed locally, but the new default /usr/etc/motd is a directory"},
	}
	checkRecords(t, []EtcChange{
		conflicts[0],
		{Path: "/etc/dir.d/a", Fate: FateBoth, Local: "M", Default: "D", Fields: []string{"content"},
			Detail: "kept the local version; the new defaults remove it"},
		conflicts[1],
		{Path: "/etc/motd/part", Fate: FateBoth, Default: "A",
			Detail: "not applied: /etc/motd is not a directory locally; the new default is /usr/etc/motd/part"},
		{Path: "/etc/plain", Fate: FateDefault, Default: "M", Fields: []string{"content"}},
	}, recs)
	var ce *EtcConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *EtcConflictError", err)
	}
	checkRecords(t, conflicts, ce.Conflicts)
	want := "cannot merge /etc: 2 conflicting path(s): /etc/dir.d (the local directory has changes, but the new default /usr/etc/dir.d is not a directory); " +
		"/etc/motd (changed locally, but the new default /usr/etc/motd is a directory)"
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	if _, err := os.Lstat(f.dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dest after a conflict: %v", err)
	}
}

// New defaults below a directory the admin deleted are not applied, and
// each is reported.
func TestMergeEtcUnderLocallyDeletedDir(t *testing.T) {
	old := testtree.Tree{"foo.d": testtree.Dir(0o755), "foo.d/a": file("1\n"), "foo.d/keep": file("k\n"), "foo.d/old": file("o\n")}
	nd := testtree.Tree{"foo.d": testtree.Dir(0o755), "foo.d/a": file("2\n"), "foo.d/b": file("new\n"), "foo.d/keep": file("k\n")}
	f := newEtcFixture(t, old, testtree.Tree{}, nd)
	checkRecords(t, []EtcChange{
		{Path: "/etc/foo.d", Fate: FateLocal, Local: "D"},
		{Path: "/etc/foo.d/a", Fate: FateBoth, Local: "D", Default: "M", Fields: []string{"content"},
			Detail: "not applied: /etc/foo.d was deleted locally; the new default is /usr/etc/foo.d/a"},
		{Path: "/etc/foo.d/b", Fate: FateBoth, Default: "A",
			Detail: "not applied: /etc/foo.d was deleted locally; the new default is /usr/etc/foo.d/b"},
		{Path: "/etc/foo.d/keep", Fate: FateLocal, Local: "D"},
		{Path: "/etc/foo.d/old", Fate: FateSame, Local: "D", Default: "D"},
	}, f.merge(t))
	checkTree(t, f.dest, testtree.Tree{})
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// Files are copied into new inodes, from defaults that hardlink each other
// (as checkouts of one repository do) and from the old /etc.
func TestMergeEtcCopiesAreNewInodes(t *testing.T) {
	old := testtree.Tree{"a": file("a\n"), "b": file("b\n"), "sub/c": file("c\n")}
	f := newEtcFixture(t, old, edit(old, testtree.Tree{"b": file("local b\n")}), nil)
	for _, p := range []string{"", "sub"} {
		if err := os.Mkdir(filepath.Join(f.nd, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p := range old {
		if err := os.Link(filepath.Join(f.od, p), filepath.Join(f.nd, p)); err != nil {
			t.Fatal(err)
		}
	}
	checkRecords(t, []EtcChange{{Path: "/etc/b", Fate: FateLocal, Local: "M", Fields: []string{"content"}}}, f.merge(t))
	for _, p := range []string{"a", "b", "sub/c"} {
		got := inode(t, filepath.Join(f.dest, p))
		for _, src := range []string{f.od, f.oe, f.nd} {
			if got == inode(t, filepath.Join(src, p)) {
				t.Errorf("%s is a hardlink of %s", p, filepath.Join(src, p))
			}
		}
	}
	checkTree(t, f.dest, testtree.Tree{"a": file("a\n"), "b": file("local b\n"), "sub": testtree.Dir(0o755), "sub/c": file("c\n")})
}

// Setuid and setgid bits survive the copy, from either side.
func TestMergeEtcSetuid(t *testing.T) {
	suid := testtree.Entry{Mode: fs.ModeSetuid | 0o755, Content: "#!/bin/sh\n"}
	sgidDir := testtree.Entry{Mode: fs.ModeDir | fs.ModeSetgid | 0o755}
	old := testtree.Tree{"helper": suid}
	local := edit(old, testtree.Tree{"local-helper": {Mode: fs.ModeSetuid | 0o750, Content: "l\n"}, "shared": sgidDir})
	f := newEtcFixture(t, old, local, old)
	checkRecords(t, []EtcChange{
		{Path: "/etc/local-helper", Fate: FateLocal, Local: "A"},
		{Path: "/etc/shared", Fate: FateLocal, Local: "A"},
	}, f.merge(t))
	checkTree(t, f.dest, testtree.Tree{
		"helper":       suid,
		"local-helper": {Mode: fs.ModeSetuid | 0o750, Content: "l\n"},
		"shared":       sgidDir,
	})
}

// Directories changed on both sides keep the admin's metadata; FIFOs are
// copied as FIFOs; sockets are reported and not copied.
func TestMergeEtcDirectoriesAndSpecialFiles(t *testing.T) {
	old := testtree.Tree{"d1": testtree.Dir(0o755), "d2": testtree.Dir(0o755), "d2/f": file("f\n")}
	local := edit(old, testtree.Tree{"d1": testtree.Dir(0o700), "d2": testtree.Dir(0o711), "fifo": {Mode: fs.ModeNamedPipe | 0o640}})
	nd := edit(old, testtree.Tree{"d1": testtree.Dir(0o750), "d2": testtree.Dir(0o711)})
	f := newEtcFixture(t, old, local, nd)
	l, err := net.Listen("unix", filepath.Join(f.oe, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkRecords(t, []EtcChange{
		{Path: "/etc/d1", Fate: FateBoth, Local: "M", Default: "M", Fields: []string{"mode"},
			Detail: "kept the local version; the new default is /usr/etc/d1"},
		{Path: "/etc/d2", Fate: FateSame, Local: "M", Default: "M", Fields: []string{"mode"}},
		{Path: "/etc/fifo", Fate: FateLocal, Local: "A"},
		{Path: "/etc/sock", Fate: FateLocal, Local: "A", Detail: "a socket, not copied"},
	}, f.merge(t))
	checkTree(t, f.dest, testtree.Tree{
		"d1":   testtree.Dir(0o700),
		"d2":   testtree.Dir(0o711),
		"d2/f": file("f\n"),
		"fifo": {Mode: fs.ModeNamedPipe | 0o640},
	})
}

// A missing old /etc is no merge: a copy of the new defaults and no
// records. Missing defaults are empty trees.
func TestMergeEtcMissingTrees(t *testing.T) {
	nd := testtree.Tree{"a": file("x\n"), "c": file("n\n")}
	t.Run("old etc", func(t *testing.T) {
		f := newEtcFixture(t, testtree.Tree{"a": file("old\n")}, nil, nd)
		checkRecords(t, nil, f.merge(t))
		checkTree(t, f.dest, nd)
	})
	t.Run("old defaults", func(t *testing.T) {
		f := newEtcFixture(t, nil, testtree.Tree{"a": file("x\n"), "b": file("local\n")}, nd)
		checkRecords(t, []EtcChange{
			{Path: "/etc/a", Fate: FateSame, Local: "A", Default: "A"},
			{Path: "/etc/b", Fate: FateLocal, Local: "A"},
			{Path: "/etc/c", Fate: FateDefault, Default: "A"},
		}, f.merge(t))
		checkTree(t, f.dest, testtree.Tree{"a": file("x\n"), "b": file("local\n"), "c": file("n\n")})
	})
	t.Run("all", func(t *testing.T) {
		f := newEtcFixture(t, nil, nil, nil)
		checkRecords(t, nil, f.merge(t))
		fi, err := os.Lstat(f.dest)
		if err != nil || fi.Mode() != fs.ModeDir|0o755 {
			t.Fatalf("dest: %v %v, want a 0755 directory", fi, err)
		}
		checkTree(t, f.dest, testtree.Tree{})
	})
}

// The root's own metadata is merged and reported as "/etc".
func TestMergeEtcRootMode(t *testing.T) {
	f := newEtcFixture(t, testtree.Tree{}, testtree.Tree{}, testtree.Tree{})
	if err := os.Chmod(f.oe, 0o750); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, []EtcChange{{Path: "/etc", Fate: FateLocal, Local: "M", Fields: []string{"mode"}}}, f.merge(t))
	if fi, err := os.Lstat(f.dest); err != nil || fi.Mode() != fs.ModeDir|0o750 {
		t.Fatalf("dest: %v %v, want a 0750 directory", fi, err)
	}
}

// An existing dest is an error and is left alone; a canceled merge writes
// nothing.
func TestMergeEtcDestExistsAndCanceled(t *testing.T) {
	f := newEtcFixture(t, fatesOld, fatesLocal, fatesNew)
	testtree.Create(t, f.dir, testtree.Tree{"new/keep": file("k\n")})
	if _, err := MergeEtc(context.Background(), f.od, f.oe, f.nd, f.dest); !errors.Is(err, fs.ErrExist) {
		t.Errorf("existing dest: err = %v, want ErrExist", err)
	}
	checkTree(t, f.dest, testtree.Tree{"keep": file("k\n")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dest := filepath.Join(f.dir, "new2")
	_, err := MergeEtc(ctx, f.od, f.oe, f.nd, dest)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "etc merge of "+f.oe+" with "+f.nd+" into "+dest+": ") {
		t.Errorf("canceled: err = %v, want it canceled, naming the directories", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("canceled merge left dest: %v", err)
	}
	_, err = MergeEtc(ctx, f.od, f.oe, f.nd, "")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "etc merge of "+f.oe+" with "+f.nd+" (dry run): ") {
		t.Errorf("canceled dry run: err = %v, want it canceled, naming the directories", err)
	}
}

// A canceled ConfigDiff names the deployment it compared.
func TestConfigDiffCanceled(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	d := f.deploy("os", DeployOptions{}).Deployment
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.s.ConfigDiff(ctx, 0, nil)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "config diff of deployment "+d.Name()+" of testos: ") {
		t.Errorf("err = %v, want it canceled, naming deployment %s", err, d.Name())
	}
}

func TestEtcChangeString(t *testing.T) {
	got := []string{
		EtcChange{Path: "/etc/hosts", Fate: FateLocal, Local: "M", Fields: []string{"content", "mode"}}.String(),
		EtcChange{Path: "/etc/new.conf", Fate: FateDefault, Default: "A"}.String(),
		EtcChange{Path: "/etc/a", Fate: FateBoth, Local: "D", Default: "M", Fields: []string{"content"}, Detail: "kept the local deletion"}.String(),
		EtcChange{Path: "/etc/motd", Fate: FateConflict, Local: "M", Default: "M"}.String(),
	}
	want := []string{
		"local    M - /etc/hosts (content,mode)",
		"default  - A /etc/new.conf",
		"both     D M /etc/a (content): kept the local deletion",
		"conflict M M /etc/motd",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("String (-want +got):\n%s", d)
	}
}

// What the merge takes from the admin's /etc keeps its mtime (a changed
// file, an added one); what it takes from the new defaults, checked out
// with mtime 0, and a directory or a symlink, even one the admin added,
// get the time of the merge, as in OSTree: not 1970.
func TestMergeEtcTimes(t *testing.T) {
	defaults := testtree.Tree{"a.conf": file("a"), "b.conf": file("b"), "sub/c.conf": file("c")}
	f := newEtcFixture(t, defaults, edit(defaults, testtree.Tree{"a.conf": file("mine"), "added": file("x"), "mine/d": file("d"),
		"link": testtree.Symlink("a.conf")}), defaults)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, p := range []string{"a.conf", "added", "mine/d", "mine", "link"} {
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(f.oe, p), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"a.conf", "b.conf", "sub/c.conf", "sub", ""} {
		os.Chtimes(filepath.Join(f.nd, p), time.Unix(0, 0), time.Unix(0, 0))
	}
	f.merge(t)
	for p, admin := range map[string]bool{"a.conf": true, "added": true, "mine/d": true, "mine": false, "link": false,
		"b.conf": false, "sub/c.conf": false, "sub": false} {
		st, err := os.Lstat(filepath.Join(f.dest, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.ModTime(); admin && !got.Equal(old) {
			t.Errorf("%s, from the admin's /etc: mtime %v, want %v kept", p, got, old)
		} else if !admin && got.Year() < 2025 {
			t.Errorf("%s, a default, a directory or a symlink: mtime %v, want the time of the merge", p, got)
		}
	}
}

// Sparse files keep their holes in the merged /etc, whether they come
// from the new defaults or from the admin's /etc.
func TestMergeEtcSparse(t *testing.T) {
	const size = 64 << 20
	f := newEtcFixture(t, testtree.Tree{}, testtree.Tree{}, testtree.Tree{})
	for _, p := range []string{filepath.Join(f.oe, "local.img"), filepath.Join(f.nd, "default.img")} {
		g, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		g.WriteAt([]byte("data"), 20<<20)
		g.Truncate(size)
		g.Close()
		var st unix.Stat_t
		if unix.Stat(p, &st); st.Blocks*512 >= size/2 {
			t.Skipf("the filesystem of %s does not keep holes", p)
		}
	}
	f.merge(t)
	for _, name := range []string{"local.img", "default.img"} {
		p := filepath.Join(f.dest, name)
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Size != size || st.Blocks*512 >= size/2 {
			t.Errorf("%s: size %d, %d bytes allocated for 4 bytes of data", name, st.Size, st.Blocks*512)
		}
		got, _ := os.ReadFile(p)
		if len(got) != size || string(got[20<<20:20<<20+4]) != "data" {
			t.Errorf("%s: the copy's bytes differ from the source's", name)
		}
	}
}
