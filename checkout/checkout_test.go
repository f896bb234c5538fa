package checkout_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// The helpers of these tests are prefixed "co" so they cannot collide with
// those of other test files of package checkout_test.

var coCtx = context.Background()

func coRoot() bool { return os.Geteuid() == 0 }

func coRepo(t *testing.T, mode repo.Mode) *repo.Repo {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// coMakeDir creates tree in a fresh directory whose root is 0755.
func coMakeDir(t *testing.T, tree testtree.Tree) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testtree.Create(t, dir, tree)
	coWritable(t, dir)
	return dir
}

// coWritable makes the directories below dir writable again before the test's
// temporary directories are removed (a read-only one blocks that when the
// tests do not run as root).
func coWritable(t *testing.T, dir string) {
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}

func coCommit(t *testing.T, r *repo.Repo, dir string) repo.ID {
	t.Helper()
	res, err := commit.Commit(coCtx, r, commit.Options{Branch: "main", Subject: "test", Timestamp: time.Unix(1700000000, 0),
		NoSync: true, NoStatCache: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: dir}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Commit
}

// coCheckout checks out into a fresh DEST (or dest, when given) and fails
// the test on error.
func coCheckout(t *testing.T, r *repo.Repo, id repo.ID, dest string, o checkout.Options) (*checkout.Stats, string) {
	t.Helper()
	if dest == "" {
		dest = filepath.Join(t.TempDir(), "co")
	}
	st, err := checkout.Checkout(coCtx, r, id, dest, o)
	coWritable(t, dest)
	if err != nil {
		t.Fatalf("checkout into %s: %v", dest, err)
	}
	return st, dest
}

func coStat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// coObject returns the stat of the file object behind path in commit id.
func coObject(t *testing.T, r *repo.Repo, id repo.ID, path string) unix.Stat_t {
	t.Helper()
	e, err := r.Lookup(id, path)
	if err != nil {
		t.Fatal(err)
	}
	return coStat(t, r.ObjectPath(repo.KindFile, e.ID))
}

// coTree is the tree most tests check out.
func coTree() testtree.Tree {
	tree := testtree.Tree{
		"a.txt":       testtree.File("hello\n", 0o644),
		"empty":       testtree.File("", 0o644),
		"bin":         testtree.Dir(0o755),
		"bin/run":     testtree.File("#!/bin/sh\n", 0o755),
		"bin/suid":    testtree.File("setuid", fs.ModeSetuid|0o755),
		"bin/sgid":    testtree.File("setgid", fs.ModeSetgid|0o750),
		"link":        testtree.Symlink("a.txt"),
		"abs":         testtree.Symlink("/etc/passwd"),
		"up":          testtree.Symlink("../../outside"),
		"ro":          testtree.Dir(0o555),
		"ro/f":        testtree.File("read only", 0o444),
		"priv":        testtree.Dir(0o700),
		"priv/secret": testtree.File("psst", 0o600),
		"emptydir":    testtree.Dir(0o755),
		"sg":          testtree.Dir(fs.ModeSetgid | 0o755),
		"sg/f":        testtree.File("in setgid dir", 0o640),
		"x.attr":      {Mode: 0o644, Content: "with xattr", Xattrs: map[string]string{"user.k": "v"}},
		"big":         testtree.File(strings.Repeat("0123456789abcdef", 1<<14), 0o644),
	}
	if coRoot() {
		tree["owned"] = testtree.Entry{Mode: 0o640, Content: "owned", UID: 1234, GID: 5678}
		tree["ownedlink"] = testtree.Entry{Mode: fs.ModeSymlink | 0o777, Target: "owned", UID: 1234, GID: 5678}
		tree["odir"] = testtree.Entry{Mode: fs.ModeDir | 0o750, UID: 4321, GID: 8765}
		tree["wo"] = testtree.File("write only", 0o200) // unreadable to its owner
	}
	return tree
}

// coExpect is what a checkout of tree from a repository of mode gives, as
// testtree.Read sees it (owners and xattrs only outside user mode).
func coExpect(tree testtree.Tree, mode repo.Mode, user bool) testtree.Tree {
	out := testtree.Tree{}
	for p, e := range tree {
		if mode == repo.ModeBareUserOnly {
			// Committed with canonical permissions: modes masked with 0755.
			e.UID, e.GID, e.Xattrs = 0, 0, nil
			if e.Mode&fs.ModeSymlink == 0 {
				e.Mode = e.Mode&fs.ModeDir | e.Mode.Perm()&0o755
			}
		}
		if user {
			if !e.Mode.IsDir() { // directories keep setgid, as in OSTree
				e.Mode &^= fs.ModeSetuid | fs.ModeSetgid
			}
			if e.Mode.IsRegular() { // readable by their owner, as in OSTree
				e.Mode |= 0o400
			}
			e.UID, e.GID, e.Xattrs = 0, 0, nil
		}
		if e.Mode&fs.ModeSymlink != 0 {
			e.Mode = fs.ModeSymlink | 0o777
		}
		out[p] = e
	}
	return out
}

// coPerm is m's permission bits as the kernel writes them.
func coPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	for bit, u := range map[fs.FileMode]uint32{fs.ModeSetuid: unix.S_ISUID, fs.ModeSetgid: unix.S_ISGID, fs.ModeSticky: unix.S_ISVTX} {
		if m&bit != 0 {
			p |= u
		}
	}
	return p
}

// coCheckTimes checks every entry below (and including) dest has mtime 0,
// except files sharing their inode with a repository object.
func coCheckTimes(t *testing.T, r *repo.Repo, dest string) {
	t.Helper()
	objDev := coStat(t, r.Path("objects")).Dev
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st := coStat(t, p)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 && st.Dev == objDev {
			return nil // hardlinked: the object's own times
		}
		if st.Mtim.Sec != 0 || st.Mtim.Nsec != 0 {
			t.Errorf("%s: mtime %d.%09d, want 0", p, st.Mtim.Sec, st.Mtim.Nsec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckoutModes(t *testing.T) {
	cases := []struct {
		mode   repo.Mode
		user   bool
		root   bool // needs root
		linked bool // regular files with content are hardlinked
	}{
		{repo.ModeBareUser, true, false, true},
		{repo.ModeBareUser, false, true, false},
		{repo.ModeBareUserOnly, true, false, true},
		{repo.ModeBareUserOnly, false, true, true}, // objects owned by root: linked
		{repo.ModeArchive, true, false, false},
		{repo.ModeArchive, false, true, false},
		{repo.ModeBare, false, true, true},
		{repo.ModeBare, true, true, false},
	}
	tree := coTree()
	src := coMakeDir(t, tree)
	for _, tc := range cases {
		name := tc.mode.String()
		if tc.user {
			name += "/user"
		}
		t.Run(name, func(t *testing.T) {
			if (tc.root || tc.mode == repo.ModeBare) && !coRoot() {
				t.Skip("needs root")
			}
			r := coRepo(t, tc.mode)
			id := coCommit(t, r, src)
			for _, force := range []bool{false, true} {
				st, dest := coCheckout(t, r, id, "", checkout.Options{UserMode: tc.user, ForceCopy: force})
				want := coExpect(tree, tc.mode, tc.user)
				got := testtree.Read(t, dest, testtree.ReadOptions{Owners: !tc.user, Xattrs: !tc.user})
				if d := cmp.Diff(want, got); d != "" {
					t.Fatalf("ForceCopy=%v: checkout differs from the tree (-want +got):\n%s", force, d)
				}
				if m := coStat(t, dest).Mode & 0o7777; m != 0o755 {
					t.Errorf("DEST mode %04o, want the root dirmeta's 0755", m)
				}
				coCheckTimes(t, r, dest)

				var files, bytes, linked int64
				dirs := int64(1) // DEST
				for p, e := range want {
					if e.Mode.IsDir() {
						dirs++
						continue
					}
					files++
					if e.Mode&fs.ModeSymlink != 0 && tc.linked && tc.mode != repo.ModeBareUser && !force {
						linked++ // real symlinks in the repository are linked too
					}
					if !e.Mode.IsRegular() {
						continue
					}
					bytes += int64(len(e.Content))
					got, obj := coStat(t, filepath.Join(dest, p)), coObject(t, r, id, "/"+p)
					same := got.Ino == obj.Ino && got.Dev == obj.Dev
					wantLink := tc.linked && !force && e.Content != ""
					if obj.Mode&0o7777 != coPerm(e.Mode) {
						// "wo": the object's mode on disk is not the
						// file's, which a link would share.
						wantLink = false
					}
					if same != wantLink {
						t.Errorf("ForceCopy=%v: %s shares the object's inode: %v, want %v", force, p, same, wantLink)
					}
					if wantLink {
						linked++
					}
				}
				if wantSt := (checkout.Stats{Files: files, Dirs: dirs, Bytes: bytes, Hardlinked: linked, Copied: files - linked}); *st != wantSt {
					t.Errorf("ForceCopy=%v: stats %+v, want %+v", force, *st, wantSt)
				}
			}
		})
	}
}

func TestRequireHardlinksAndForceCopy(t *testing.T) {
	src := coMakeDir(t, testtree.Tree{"a": testtree.File("a", 0o644), "e": testtree.File("", 0o644), "l": testtree.Symlink("a")})

	ar := coRepo(t, repo.ModeArchive)
	aid := coCommit(t, ar, src)
	dest := filepath.Join(t.TempDir(), "co")
	_, err := checkout.Checkout(coCtx, ar, aid, dest, checkout.Options{UserMode: true, RequireHardlinks: true})
	if err == nil || !strings.Contains(err.Error(), "archive") || !strings.Contains(err.Error(), "cannot be hardlinked") {
		t.Errorf("RequireHardlinks from an archive repository: %v", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused checkout created DEST: %v", err)
	}

	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, src)
	_, err = checkout.Checkout(coCtx, r, id, dest, checkout.Options{RequireHardlinks: true})
	if err == nil || !strings.Contains(err.Error(), "user mode") {
		t.Errorf("RequireHardlinks from bare-user without user mode: %v", err)
	}
	// Empty files and bare-user symlinks are written, not linked, and do
	// not count against RequireHardlinks.
	st, _ := coCheckout(t, r, id, "", checkout.Options{UserMode: true, RequireHardlinks: true})
	if st.Hardlinked != 1 || st.Copied != 2 {
		t.Errorf("stats %+v, want 1 hardlinked and 2 written", *st)
	}
	_, err = checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, RequireHardlinks: true, ForceCopy: true})
	if err == nil {
		t.Error("ForceCopy with RequireHardlinks was accepted")
	}

	// A file whose object cannot be linked as it is names the file: a
	// world-writable one is stored without that bit.
	src2 := coMakeDir(t, testtree.Tree{"ww": testtree.File("world writable", 0o666)})
	id2 := coCommit(t, r, src2)
	_, err = checkout.Checkout(coCtx, r, id2, filepath.Join(t.TempDir(), "co"), checkout.Options{UserMode: true, RequireHardlinks: true})
	if err == nil || !strings.Contains(err.Error(), "/ww") || !strings.Contains(err.Error(), "mode on disk") || !strings.Contains(err.Error(), "hardlinks required") {
		t.Errorf("RequireHardlinks with an unlinkable file: %v", err)
	}

	// Across filesystems: /dev/shm is a tmpfs on most Linux systems.
	if shm, err := os.MkdirTemp("/dev/shm", "otree-co-"); err == nil {
		defer os.RemoveAll(shm)
		if coStat(t, shm).Dev != coStat(t, r.Path("objects")).Dev {
			_, err := checkout.Checkout(coCtx, r, id, filepath.Join(shm, "co"), checkout.Options{UserMode: true, RequireHardlinks: true})
			if err == nil || !strings.Contains(err.Error(), "another filesystem") || !strings.Contains(err.Error(), "hardlinks required") {
				t.Errorf("RequireHardlinks across filesystems: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(shm, "co")); err == nil {
				t.Error("a refused checkout created DEST")
			}
			st, dest := coCheckout(t, r, id, filepath.Join(shm, "co2"), checkout.Options{UserMode: true})
			if st.Hardlinked != 0 || st.Copied != 3 {
				t.Errorf("across filesystems: stats %+v, want everything copied", *st)
			}
			if b, _ := os.ReadFile(filepath.Join(dest, "a")); string(b) != "a" {
				t.Errorf("across filesystems: content %q", b)
			}
		}
	}
}

func TestSubpath(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, coTree()))

	_, dest := coCheckout(t, r, id, "", checkout.Options{UserMode: true, Subpath: "/priv"})
	want := testtree.Tree{"secret": testtree.File("psst", 0o600)}
	if d := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); d != "" {
		t.Errorf("subpath /priv (-want +got):\n%s", d)
	}
	if m := coStat(t, dest).Mode & 0o7777; m != 0o700 {
		t.Errorf("DEST mode %04o, want /priv's 0700", m)
	}

	// A file: DEST is its directory, holding just that file.
	_, dest = coCheckout(t, r, id, "", checkout.Options{UserMode: true, Subpath: "bin/run"})
	want = testtree.Tree{"run": testtree.File("#!/bin/sh\n", 0o755)}
	if d := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); d != "" {
		t.Errorf("subpath bin/run (-want +got):\n%s", d)
	}

	// As in OSTree, a file goes into an existing DEST without a union
	// mode, which keeps DEST's mode and entries, but not over an entry of
	// its name.
	dest = t.TempDir()
	os.WriteFile(filepath.Join(dest, "other"), []byte("mine"), 0o644)
	os.Chmod(dest, 0o751)
	coCheckout(t, r, id, dest, checkout.Options{UserMode: true, Subpath: "bin/run"})
	want = testtree.Tree{"run": testtree.File("#!/bin/sh\n", 0o755), "other": testtree.File("mine", 0o644)}
	if d := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); d != "" {
		t.Errorf("subpath bin/run into an existing DEST (-want +got):\n%s", d)
	}
	if m := coStat(t, dest).Mode & 0o7777; m != 0o751 {
		t.Errorf("existing DEST mode %04o, want its own 0751", m)
	}
	os.Remove(filepath.Join(dest, "run"))
	os.WriteFile(filepath.Join(dest, "run"), []byte("keep"), 0o600)
	_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Subpath: "bin/run"})
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), filepath.Join(dest, "run")) {
		t.Errorf("subpath bin/run over an existing file: %v, want ErrExist naming it", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "run")); string(b) != "keep" {
		t.Errorf("a refused checkout changed the existing file to %q", b)
	}
	// A directory still needs a union mode.
	_, err = checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Subpath: "/priv"})
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("subpath /priv into an existing DEST: %v, want ErrExist", err)
	}

	_, err = checkout.Checkout(coCtx, r, id, filepath.Join(t.TempDir(), "co"), checkout.Options{UserMode: true, Subpath: "/nope/x"})
	if !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), "/nope") {
		t.Errorf("missing subpath: %v", err)
	}

	// A trailing "/" names a directory, as in ls, cat and export: a file
	// so named is refused, and nothing is made; a directory so named is
	// checked out. (OSTree 2022.7 says any path with one does not exist.)
	for _, sp := range []string{"/bin/run/", "bin/run/", "/bin/run//"} {
		dest := filepath.Join(t.TempDir(), "co")
		_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Subpath: sp, AllowNoent: true})
		if !errors.Is(err, repo.ErrNotDir) || !strings.Contains(err.Error(), "/bin/run") {
			t.Errorf("subpath %q: %v, want ErrNotDir naming /bin/run", sp, err)
		}
		if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("subpath %q: DEST was made: %v", sp, err)
		}
	}
	_, dest = coCheckout(t, r, id, "", checkout.Options{UserMode: true, Subpath: "/priv/"})
	if _, err := os.Lstat(filepath.Join(dest, "secret")); err != nil {
		t.Errorf("subpath /priv/: %v", err)
	}

	// ".." is refused, not read as written: "priv/.." would check out the
	// whole tree, and "bin/../priv" would say nothing of symlinks.
	for _, sp := range []string{"priv/..", "/bin/../priv", ".."} {
		dest := filepath.Join(t.TempDir(), "co")
		_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Subpath: sp})
		if !errors.Is(err, repo.ErrDotDot) || !strings.Contains(err.Error(), strconv.Quote(sp)) {
			t.Errorf("subpath %q: %v, want ErrDotDot naming it", sp, err)
		}
		if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("subpath %q: DEST was made: %v", sp, err)
		}
	}
}

// SkipList leaves out the paths it names, relative to what is checked out,
// with everything below them; names the tree lacks are no error.
func TestSkipList(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{
		"a/b/c": testtree.File("c", 0o644),
		"a/d":   testtree.File("d", 0o644),
		"a/e":   testtree.Symlink("d"),
		"e":     testtree.File("e", 0o644),
		"x/a":   testtree.File("xa", 0o644),
		"x/y":   testtree.File("xy", 0o644),
	}))
	for _, c := range []struct {
		name    string
		subpath string
		skip    []string
		want    []string // the checkout's paths
	}{
		{"files and dirs", "", []string{"/a/b", "/e", "x/a", "/a/e", "/nothere", "/x/y/z"}, []string{"a", "a/d", "x", "x/y"}},
		{"trailing slash, unclean", "", []string{"/a/b/", "//x/./"}, []string{"a", "a/d", "a/e", "e"}},
		{"relative to the subpath", "/a", []string{"/b", "/a/d"}, []string{"d", "e"}},
		{"a file subpath", "/a/d", []string{"/d"}, nil},
		{"a name below a file", "", []string{"/e/x"}, []string{"a", "a/b", "a/b/c", "a/d", "a/e", "e", "x", "x/a", "x/y"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, dest := coCheckout(t, r, id, "", checkout.Options{UserMode: true, Subpath: c.subpath, SkipList: c.skip})
			var got []string
			filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
				if rel, _ := filepath.Rel(dest, p); rel != "." {
					got = append(got, rel)
				}
				return err
			})
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("skip %q (-want +got):\n%s", c.skip, d)
			}
		})
	}
	// The root leaves out everything, as in OSTree: nothing is made, and
	// an existing DEST is no error even without a union mode.
	for _, sp := range []string{"", "/a", "/a/d"} {
		for _, root := range []string{"/", "/./"} {
			dest := filepath.Join(t.TempDir(), "co")
			st, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Subpath: sp, SkipList: []string{"/x", root}})
			if err != nil || *st != (checkout.Stats{}) {
				t.Errorf("subpath %q, skipping %q: %+v, %v", sp, root, st, err)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("subpath %q, skipping %q: DEST was made: %v", sp, root, err)
			}
		}
	}
	existing := t.TempDir()
	if _, err := checkout.Checkout(coCtx, r, id, existing, checkout.Options{UserMode: true, SkipList: []string{"/"}}); err != nil {
		t.Errorf("skipping the root, existing DEST: %v", err)
	}
	if ents, _ := os.ReadDir(existing); len(ents) != 0 {
		t.Errorf("skipping the root wrote %v", ents)
	}
	// A missing subpath is still an error.
	if _, err := checkout.Checkout(coCtx, r, id, filepath.Join(t.TempDir(), "co"), checkout.Options{UserMode: true, Subpath: "/nope", SkipList: []string{"/"}}); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("skipping the root, missing subpath: %v, want ErrNotFound", err)
	}
	if _, err := checkout.Checkout(coCtx, r, id, filepath.Join(t.TempDir(), "co"), checkout.Options{UserMode: true, SkipList: []string{""}}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty skip list entry: %v", err)
	}
	for _, p := range []string{"/a/..", "/x/../e"} {
		_, err := checkout.Checkout(coCtx, r, id, filepath.Join(t.TempDir(), "co"), checkout.Options{UserMode: true, SkipList: []string{p}})
		if !errors.Is(err, repo.ErrDotDot) || !strings.Contains(err.Error(), strconv.Quote(p)) {
			t.Errorf("skip list %q: %v, want ErrDotDot naming it", p, err)
		}
	}
}

// AllowNoent turns a missing subpath into a checkout of nothing; other
// lookup failures stay errors.
func TestAllowNoent(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{"f": testtree.File("f", 0o644)}))
	dest := filepath.Join(t.TempDir(), "co")
	st, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Subpath: "/nope", AllowNoent: true})
	if err != nil || *st != (checkout.Stats{}) {
		t.Errorf("AllowNoent, missing subpath: %+v, %v", st, err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("AllowNoent created DEST: %v", err)
	}
	_, err = checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Subpath: "/nope"})
	if !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), id.String()) {
		t.Errorf("missing subpath: %v, want ErrNotFound naming commit %s", err, id)
	}
	_, err = checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Subpath: "/f/x", AllowNoent: true})
	if !errors.Is(err, repo.ErrNotDir) {
		t.Errorf("AllowNoent, subpath below a file: %v, want ErrNotDir", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed checkout created DEST: %v", err)
	}
}

// BareUserOnlyDirs keeps only the 0775 bits of directories, in every mode;
// otherwise directories keep setgid and sticky bits, in user mode too.
func TestBareUserOnlyDirs(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{
		"tmp":   testtree.Dir(fs.ModeSticky | 0o777),
		"sg":    testtree.Dir(fs.ModeSetgid | 0o2775),
		"ww":    testtree.Dir(0o777),
		"priv":  testtree.Dir(0o700),
		"sg/f":  testtree.File("f", fs.ModeSetgid|0o755),
		"tmp/f": testtree.File("f", 0o666),
	}))
	for _, m := range []bool{false, true} {
		_, dest := coCheckout(t, r, id, "", checkout.Options{UserMode: true, BareUserOnlyDirs: m})
		want := map[string]uint32{"tmp": 0o1777, "sg": 0o2775, "ww": 0o777, "priv": 0o700, "sg/f": 0o755, "tmp/f": 0o666}
		if m {
			want["tmp"], want["sg"], want["ww"] = 0o775, 0o775, 0o775
		}
		for p, w := range want {
			if got := coStat(t, filepath.Join(dest, p)).Mode & 0o7777; got != w {
				t.Errorf("BareUserOnlyDirs=%v: %s has mode %04o, want %04o", m, p, got, w)
			}
		}
	}
}

func TestDestMustNotExist(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{"a": testtree.File("a", 0o644)}))
	dest := t.TempDir()
	_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true})
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), dest) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("checkout into an existing directory: %v; want fs.ErrExist naming it", err)
	}
	_, err = checkout.Checkout(coCtx, r, id, filepath.Join(dest, "no", "parent"), checkout.Options{UserMode: true})
	if err == nil || !strings.Contains(err.Error(), "no/parent") {
		t.Errorf("checkout below a missing directory: %v", err)
	}
	_, err = checkout.Checkout(coCtx, r, id, filepath.Join(dest, "x"), checkout.Options{Union: true, UnionAdd: true})
	if err == nil {
		t.Error("two union modes were accepted")
	}
}

func TestUnion(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	tree := testtree.Tree{
		"a.txt": testtree.File("new\n", 0o644),
		"link":  testtree.Symlink("a.txt"),
		"d":     testtree.Dir(0o755),
		"d/new": testtree.File("n", 0o644),
		"e":     testtree.File("", 0o644),
	}
	id := coCommit(t, r, coMakeDir(t, tree))
	existing := testtree.Tree{
		"a.txt": testtree.File("old\n", 0o600),
		"link":  testtree.File("a regular file", 0o644),
		"d":     testtree.Dir(0o700),
		"d/old": testtree.File("o", 0o644),
		"extra": testtree.File("x", 0o644),
	}

	t.Run("union", func(t *testing.T) {
		dest := coMakeDir(t, existing)
		st, _ := coCheckout(t, r, id, dest, checkout.Options{UserMode: true, Union: true})
		want := testtree.Tree{
			"a.txt": testtree.File("new\n", 0o644), "link": testtree.Symlink("a.txt"), "e": testtree.File("", 0o644),
			"d": testtree.Dir(0o700), "d/old": testtree.File("o", 0o644), "d/new": testtree.File("n", 0o644),
			"extra": testtree.File("x", 0o644),
		}
		if d := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); d != "" {
			t.Errorf("union (-want +got):\n%s", d)
		}
		if st.Files != 4 {
			t.Errorf("stats %+v, want 4 files", *st)
		}
		// A directory in the way of a file is an error naming it.
		dest = coMakeDir(t, testtree.Tree{"e": testtree.Dir(0o755)})
		_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Union: true})
		if err == nil || !strings.Contains(err.Error(), dest+"/e") || !strings.Contains(err.Error(), "directory") {
			t.Errorf("union with a directory in the way: %v", err)
		}
		// A file in the way of a directory is refused too, and kept.
		dest = coMakeDir(t, testtree.Tree{"d": testtree.File("mine", 0o644)})
		_, err = checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Union: true})
		if err == nil || !strings.Contains(err.Error(), dest+"/d") || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("union with a file in the way of a directory: %v", err)
		}
		if got, _ := os.ReadFile(filepath.Join(dest, "d")); string(got) != "mine" {
			t.Errorf("the file in the way holds %q after the refused union", got)
		}
	})

	t.Run("union-add", func(t *testing.T) {
		dest := coMakeDir(t, existing)
		coCheckout(t, r, id, dest, checkout.Options{UserMode: true, UnionAdd: true})
		want := testtree.Tree{
			"a.txt": testtree.File("old\n", 0o600), "link": testtree.File("a regular file", 0o644), "e": testtree.File("", 0o644),
			"d": testtree.Dir(0o700), "d/old": testtree.File("o", 0o644), "d/new": testtree.File("n", 0o644),
			"extra": testtree.File("x", 0o644),
		}
		if d := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); d != "" {
			t.Errorf("union-add (-want +got):\n%s", d)
		}
	})

	t.Run("union-identical", func(t *testing.T) {
		for _, force := range []bool{false, true} {
			_, dest := coCheckout(t, r, id, "", checkout.Options{UserMode: true, ForceCopy: force})
			os.WriteFile(filepath.Join(dest, "extra"), []byte("x"), 0o644)
			coCheckout(t, r, id, dest, checkout.Options{UserMode: true, UnionIdentical: true})
			if _, err := os.Stat(filepath.Join(dest, "extra")); err != nil {
				t.Error(err)
			}
			for _, change := range []struct {
				name string
				do   func(p string) error
				why  string
			}{
				// Replace, never write: a.txt may be a hardlink of the object.
				{"a.txt", func(p string) error { os.Remove(p); return os.WriteFile(p, []byte("NEW\n"), 0o644) }, "content differs"},
				{"a.txt", func(p string) error { os.Remove(p); return os.WriteFile(p, []byte("new\n"), 0o600) }, "mode 0600"},
				{"link", func(p string) error { os.Remove(p); return os.Symlink("elsewhere", p) }, "elsewhere"},
				{"e", func(p string) error { os.Remove(p); return os.Mkdir(p, 0o755) }, "is a directory"},
			} {
				_, dest := coCheckout(t, r, id, "", checkout.Options{UserMode: true, ForceCopy: force})
				p := filepath.Join(dest, change.name)
				if err := change.do(p); err != nil {
					t.Fatal(err)
				}
				_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, UnionIdentical: true})
				if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), change.why) {
					t.Errorf("union-identical after changing %s (%s): %v", change.name, change.why, err)
				}
			}
		}
	})
}

func TestWhiteouts(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "keep"), []byte("k"), 0o644)
	lower := coCommit(t, r, coMakeDir(t, testtree.Tree{
		"etc/keep":      testtree.File("k", 0o644),
		"etc/gone":      testtree.File("g", 0o644),
		"etc/gonedir/x": testtree.File("x", 0o644),
		"opq/old":       testtree.File("o", 0o644),
		"opq/older/x":   testtree.File("x", 0o644),
		"lnk":           testtree.Symlink(outside),
	}))
	upper := coCommit(t, r, coMakeDir(t, testtree.Tree{
		"etc/.wh.gone":      testtree.File("", 0o644),
		"etc/.wh.gonedir":   testtree.File("", 0o644),
		"etc/.wh.missing":   testtree.File("", 0o644),
		"etc/.wh..wh.plnk":  testtree.File("", 0o644),
		"etc/added":         testtree.File("a", 0o644),
		"opq/.wh..wh..opq":  testtree.File("", 0o644),
		"opq/new":           testtree.File("n", 0o644),
		".wh.lnk":           testtree.File("", 0o644),
		"fresh/.wh.nothing": testtree.File("", 0o644),
	}))
	_, dest := coCheckout(t, r, lower, "", checkout.Options{UserMode: true})
	coCheckout(t, r, upper, dest, checkout.Options{UserMode: true, Union: true, Whiteouts: true})
	want := testtree.Tree{
		"etc":       testtree.Dir(0o755),
		"etc/keep":  testtree.File("k", 0o644),
		"etc/added": testtree.File("a", 0o644),
		"opq":       testtree.Dir(0o755),
		"opq/new":   testtree.File("n", 0o644),
		"fresh":     testtree.Dir(0o755),
	}
	if d := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); d != "" {
		t.Errorf("whiteouts (-want +got):\n%s", d)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "keep")); err != nil || string(b) != "k" {
		t.Errorf("the whiteout of a symlink touched its target: %q %v", b, err)
	}

	// Without Whiteouts they are ordinary files.
	_, dest = coCheckout(t, r, upper, "", checkout.Options{UserMode: true})
	if _, err := os.Stat(filepath.Join(dest, "opq/.wh..wh..opq")); err != nil {
		t.Errorf("without Whiteouts: %v", err)
	}

	bad := coCommit(t, r, coMakeDir(t, testtree.Tree{".wh...": testtree.File("", 0o644)}))
	_, err := checkout.Checkout(coCtx, r, bad, dest, checkout.Options{UserMode: true, Union: true, Whiteouts: true})
	if err == nil || !strings.Contains(err.Error(), `".."`) {
		t.Errorf("whiteout of \"..\": %v", err)
	}
}

func TestSpecialFiles(t *testing.T) {
	if !coRoot() {
		t.Skip("devices need root")
	}
	tree := testtree.Tree{"fifo": {Mode: fs.ModeNamedPipe | 0o640}}
	src := coMakeDir(t, tree)
	if err := unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("mknod: %v", err)
	}
	if err := os.Chmod(filepath.Join(src, "null"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []repo.Mode{repo.ModeBare, repo.ModeArchive} {
		r := coRepo(t, mode)
		id := coCommit(t, r, src)
		st, dest := coCheckout(t, r, id, "", checkout.Options{})
		fifo, null := coStat(t, filepath.Join(dest, "fifo")), coStat(t, filepath.Join(dest, "null"))
		if fifo.Mode != unix.S_IFIFO|0o640 || null.Mode != unix.S_IFCHR|0o666 || null.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("%s: fifo mode %o, null mode %o rdev %x", mode, fifo.Mode, null.Mode, null.Rdev)
		}
		linked := int64(0)
		if mode == repo.ModeBare {
			linked = 2
		}
		if st.Hardlinked != linked || st.Files != 2 {
			t.Errorf("%s: stats %+v", mode, *st)
		}
		coCheckTimes(t, r, dest)

		// User mode, which clears setuid bits, creates no device nodes
		// either: root's would be root's, open to anyone the mode lets
		// in. A FIFO is no privilege.
		dest = filepath.Join(t.TempDir(), "user")
		_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true})
		if err == nil || !strings.Contains(err.Error(), "null") || !strings.Contains(err.Error(), "no device nodes") {
			t.Errorf("%s: user-mode checkout of a device: %v", mode, err)
		}
		if _, err := os.Lstat(filepath.Join(dest, "null")); err == nil {
			t.Errorf("%s: user-mode checkout made the device", mode)
		}
		fifoOnly := coCommit(t, r, coMakeDir(t, tree))
		_, dest = coCheckout(t, r, fifoOnly, "", checkout.Options{UserMode: true})
		if fifo := coStat(t, filepath.Join(dest, "fifo")); fifo.Mode != unix.S_IFIFO|0o640 {
			t.Errorf("%s: user-mode fifo mode %o", mode, fifo.Mode)
		}
	}
}

func TestProgressAndCancel(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, coTree()))
	var calls atomic.Int32
	var last checkout.Stats
	st, _ := coCheckout(t, r, id, "", checkout.Options{UserMode: true, Progress: func(s checkout.Stats) {
		calls.Add(1)
		last = s
	}})
	if calls.Load() == 0 || last != *st {
		t.Errorf("progress called %d times, last %+v, want the final %+v", calls.Load(), last, *st)
	}

	cctx, cancel := context.WithCancel(coCtx)
	cancel()
	pre := filepath.Join(t.TempDir(), "co")
	_, err := checkout.Checkout(cctx, r, id, pre, checkout.Options{UserMode: true})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), pre) {
		t.Errorf("cancelled checkout: %v; want context.Canceled naming the destination", err)
	}

	// Cancelled once the checkout has started: the error still names it.
	dest := filepath.Join(t.TempDir(), "started")
	_, err = checkout.Checkout(&coLateCancel{Context: coCtx}, r, id, dest, checkout.Options{UserMode: true})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), dest) {
		t.Errorf("checkout cancelled once started: %v; want context.Canceled naming %s", err, dest)
	}
}

// coLateCancel is a context whose first Err call finds it live and every
// later one cancelled: a cancel that comes once a checkout has started.
type coLateCancel struct {
	context.Context
	calls atomic.Int32
}

func (c *coLateCancel) Err() error {
	if c.calls.Add(1) == 1 {
		return nil
	}
	return context.Canceled
}

func (c *coLateCancel) Done() <-chan struct{} {
	if c.calls.Load() == 0 {
		return nil
	}
	ch := make(chan struct{})
	close(ch)
	return ch
}

// An unset destination is refused, not taken as the working directory,
// which a union checkout would otherwise fill.
func TestEmptyDestRefused(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{"planted": testtree.File("x", 0o644)}))
	cwd := t.TempDir()
	t.Chdir(cwd)
	for _, o := range []checkout.Options{{UserMode: true, Union: true}, {UserMode: true}} {
		if _, err := checkout.Checkout(coCtx, r, id, "", o); err == nil || !strings.Contains(err.Error(), "empty destination") {
			t.Errorf("checkout into \"\" with %+v: %v; want it refused", o, err)
		}
	}
	if es, _ := os.ReadDir(cwd); len(es) != 0 {
		t.Errorf("checkout into \"\" wrote %d entries into the working directory", len(es))
	}
}

func TestDamagedRepository(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive, repo.ModeBareUserOnly} {
		r := coRepo(t, mode)
		id := coCommit(t, r, coMakeDir(t, testtree.Tree{"d/a": testtree.File("content", 0o644)}))
		e, _ := r.Lookup(id, "/d/a")
		obj := r.ObjectPath(repo.KindFile, e.ID)
		if mode == repo.ModeArchive {
			// Same length, other content: only verification notices.
			b, _ := os.ReadFile(obj)
			b[len(b)-1] ^= 1
			os.WriteFile(obj, b, 0o644)
			dest := filepath.Join(t.TempDir(), "co")
			_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true})
			coWritable(t, dest)
			var ce *repo.CorruptObjectError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "/d/a") {
				t.Errorf("%s: corrupt object: %v", mode, err)
			}
			// The damaged content was written before the end showed it
			// wrong: the file is removed, not left as if checked out.
			if _, err := os.Lstat(filepath.Join(dest, "d", "a")); !os.IsNotExist(err) {
				t.Errorf("%s: the copy of the corrupt object was left in DEST (%v)", mode, err)
			}
		}
		os.Remove(obj)
		_, err := checkout.Checkout(coCtx, r, id, filepath.Join(t.TempDir(), "co"), checkout.Options{UserMode: true})
		if !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), "/d/a") || !strings.Contains(err.Error(), e.ID.String()) {
			t.Errorf("%s: missing object: %v", mode, err)
		}
	}
}

// coSentinel lays out base/outside (holding a canary file) and returns a
// DEST at base/work/dest, not yet created, and a check that nothing outside
// DEST was created or changed.
func coSentinel(t *testing.T) (dest, outside string, check func(what string)) {
	t.Helper()
	base := t.TempDir()
	outside = filepath.Join(base, "outside")
	testtree.Create(t, base, testtree.Tree{"outside/canary": testtree.File("canary", 0o644), "work": testtree.Dir(0o755)})
	before := testtree.Read(t, base, testtree.ReadOptions{})
	dest = filepath.Join(base, "work", "dest")
	return dest, outside, func(what string) {
		t.Helper()
		after := testtree.Read(t, base, testtree.ReadOptions{})
		for p := range after {
			if p == "work/dest" || strings.HasPrefix(p, "work/dest/") {
				delete(after, p)
			}
		}
		if d := cmp.Diff(before, after); d != "" {
			t.Errorf("%s: something outside DEST changed (-before +after):\n%s", what, d)
		}
	}
}

// coRawDirTree encodes a dirtree byte by byte (docs/FORMAT.md §2.3), so it
// can hold names no encoder would write.
func coRawDirTree(files []repo.FileEntry, dirs []repo.DirEntry) []byte {
	b := []byte{'t', 1}
	b = binary.AppendUvarint(b, uint64(len(files)))
	for _, f := range files {
		b = binary.AppendUvarint(b, uint64(len(f.Name)))
		b = append(b, f.Name...)
		b = append(b, f.ID[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(dirs)))
	for _, d := range dirs {
		b = binary.AppendUvarint(b, uint64(len(d.Name)))
		b = append(b, d.Name...)
		b = append(b, d.TreeID[:]...)
		b = append(b, d.MetaID[:]...)
	}
	return b
}

// coHostileCommit stores a commit whose root dirtree is raw, with a file
// object "evil" and a dirtree holding it at hand for raw to name. The
// root is written straight into objects/, as a hostile repository holds
// it: a transaction refuses what does not decode.
func coHostileCommit(t *testing.T, r *repo.Repo, raw func(file, tree, meta repo.ID) []byte) repo.ID {
	t.Helper()
	txn, err := r.Begin(coCtx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 4}
	file := repo.FileID(h, []byte("evil"))
	if _, err := txn.WriteFile(h, file, []byte("evil")); err != nil {
		t.Fatal(err)
	}
	meta, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := txn.WriteMeta(repo.KindDirTree, coRawDirTree([]repo.FileEntry{{Name: "evil", ID: file}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	rootData := raw(file, tree, meta)
	root := repo.Sum(rootData)
	if err := os.WriteFile(r.ObjectPath(repo.KindDirTree, root), rootData, 0o644); err != nil {
		t.Fatal(err)
	}
	c := repo.Commit{Timestamp: 1, RootTree: root, RootMeta: meta}
	id, err := txn.WriteMeta(repo.KindCommit, c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.SetRef("hostile", id); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return id
}

// Hand-built dirtrees naming "..", "." or paths with "/" are refused, with
// or without verification, in every mode, and nothing outside DEST appears.
func TestEscapeHostileNames(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		r := coRepo(t, mode)
		// An absolute name points into a directory of the test's own, so
		// that a broken checkout cannot write to the real root.
		abs := filepath.Join(t.TempDir(), "abs")
		for _, name := range []string{"..", ".", "", "../escaped", "a/b", abs, "x\x00y"} {
			for _, asDir := range []bool{false, true} {
				id := coHostileCommit(t, r, func(file, tree, meta repo.ID) []byte {
					if asDir {
						return coRawDirTree(nil, []repo.DirEntry{{Name: name, TreeID: tree, MetaID: meta}})
					}
					return coRawDirTree([]repo.FileEntry{{Name: name, ID: file}}, nil)
				})
				for _, verify := range []bool{true, false} {
					r.SetVerify(verify)
					for _, union := range []bool{false, true} {
						dest, _, check := coSentinel(t)
						if union {
							os.Mkdir(dest, 0o755)
						}
						_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, Union: union})
						what := fmt.Sprintf("%s: name %q dir=%v verify=%v union=%v", mode, name, asDir, verify, union)
						if err == nil {
							t.Errorf("%s: checkout succeeded", what)
						}
						check(what)
					}
				}
				r.SetVerify(true)
			}
		}
		if _, err := os.Lstat(abs); err == nil {
			t.Errorf("%s: %s was created", mode, abs)
		}
	}
}

// A symlink written by one checkout, or planted in DEST, is never followed
// by a later union checkout that has a directory or file of that name.
func TestEscapeThroughSymlinks(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	links := func(outside string) repo.ID {
		return coCommit(t, r, coMakeDir(t, testtree.Tree{
			"abs":  testtree.Symlink(outside),
			"rel":  testtree.Symlink("../../outside"),
			"file": testtree.Symlink(filepath.Join(outside, "canary")),
			"d":    testtree.Dir(0o755),
			"d/in": testtree.Symlink("../../../outside"),
		}))
	}
	over := coCommit(t, r, coMakeDir(t, testtree.Tree{
		"abs/evil":    testtree.File("evil", 0o644),
		"rel/evil":    testtree.File("evil", 0o644),
		"file":        testtree.File("evil", 0o644),
		"d/in/evil":   testtree.File("evil", 0o644),
		"abs/sub/x":   testtree.File("evil", 0o644),
		"rel/.wh.zzz": testtree.File("", 0o644),
	}))
	for _, o := range []checkout.Options{
		{UserMode: true, Union: true},
		{UserMode: true, Union: true, Whiteouts: true},
		{UserMode: true, UnionAdd: true},
		{UserMode: true, UnionIdentical: true},
		{UserMode: true, Union: true, ForceCopy: true},
	} {
		dest, outside, check := coSentinel(t)
		coCheckout(t, r, links(outside), dest, checkout.Options{UserMode: true})
		_, err := checkout.Checkout(coCtx, r, over, dest, o)
		what := fmt.Sprintf("after a checkout of symlinks, %+v", o)
		check(what)
		if o.Union {
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
			for _, p := range []string{"abs/evil", "rel/evil", "d/in/evil", "abs/sub/x"} {
				if b, err := os.ReadFile(filepath.Join(dest, p)); err != nil || string(b) != "evil" {
					t.Errorf("%s: %s: %q %v", what, p, b, err)
				}
			}
			if st := coStat(t, filepath.Join(dest, "file")); st.Mode&unix.S_IFMT != unix.S_IFREG {
				t.Errorf("%s: the symlink \"file\" was not replaced", what)
			}
		} else if err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Errorf("%s: want an error naming the symlink in the way, got %v", what, err)
		}

		// The same with symlinks planted in DEST by someone else.
		dest, outside, check = coSentinel(t)
		os.MkdirAll(filepath.Join(dest, "d"), 0o755)
		for name, target := range map[string]string{"abs": outside, "rel": "../../outside", "file": filepath.Join(outside, "canary"), "d/in": "../../../outside"} {
			if err := os.Symlink(target, filepath.Join(dest, name)); err != nil {
				t.Fatal(err)
			}
		}
		checkout.Checkout(coCtx, r, over, dest, o)
		check(fmt.Sprintf("with planted symlinks, %+v", o))
	}
}

// A file recorded writable by others checks out from a bare-user
// repository with that mode, as a copy: the object itself never has the
// bit, so a link would give the wrong mode (and must not hand the bit to
// the object).
func TestCheckoutUserModeOthersWritable(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{
		"shared": testtree.File("anyone may write this", 0o666),
		"plain":  testtree.File("only the owner writes this", 0o644),
	}))
	dest := filepath.Join(t.TempDir(), "co")
	if _, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		mode  os.FileMode
		links uint64
	}{"shared": {0o666, 1}, "plain": {0o644, 2}} {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dest, name), &st); err != nil {
			t.Fatal(err)
		}
		if got := os.FileMode(st.Mode & 0o7777); got != want.mode || st.Nlink != want.links {
			t.Errorf("%s: mode %04o with %d links, want %04o with %d", name, got, st.Nlink, want.mode, want.links)
		}
	}
	e, err := r.Lookup(id, "/shared")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(r.ObjectPath(repo.KindFile, e.ID))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		t.Errorf("object of /shared is writable by others: %v", fi.Mode())
	}
}

// Union over an earlier hardlink checkout leaves entries that are already
// the object's inode alone (relinking them changes nothing and fails in a
// read-only directory), and replaces the others by rename: no temporary
// name is left behind, and a directory in the way is named as such.
func TestUnionRerunKeepsHardlinks(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{
		"a.txt":   testtree.File("hello\n", 0o644),
		"ro":      testtree.Dir(0o555),
		"ro/f":    testtree.File("read only\n", 0o444),
		"changed": testtree.File("from the commit\n", 0o644),
		"link":    testtree.Symlink("a.txt"),
	}))
	_, dest := coCheckout(t, r, id, "", checkout.Options{UserMode: true})
	os.Remove(filepath.Join(dest, "changed"))
	if err := os.WriteFile(filepath.Join(dest, "changed"), []byte("local edit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := map[string]unix.Stat_t{}
	for _, p := range []string{"/a.txt", "/ro/f"} {
		before[p] = coObject(t, r, id, p)
	}
	st, _ := coCheckout(t, r, id, dest, checkout.Options{UserMode: true, Union: true})
	for p, was := range before {
		obj, got := coObject(t, r, id, p), coStat(t, dest+p)
		// Linking and unlinking change the object's ctime and link count.
		if obj.Ctim != was.Ctim || obj.Nlink != was.Nlink || got.Ino != obj.Ino {
			t.Errorf("%s was relinked: object ctime %v -> %v, links %d -> %d", p, was.Ctim, obj.Ctim, was.Nlink, obj.Nlink)
		}
	}
	if got, obj := coStat(t, filepath.Join(dest, "changed")), coObject(t, r, id, "/changed"); got.Ino != obj.Ino {
		t.Error("the locally replaced file was not linked to the object again")
	}
	if st.Files != 2 { // changed and the bare-user symlink, rewritten
		t.Errorf("stats %+v, want 2 files written", *st)
	}
	ents, _ := os.ReadDir(dest)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".otree") {
			t.Errorf("left behind: %s", e.Name())
		}
	}

	// Copies (ForceCopy) replace a hardlink of the object by new inodes
	// (outside ro/, which only root could write into).
	old := coStat(t, filepath.Join(dest, "a.txt"))
	coCheckout(t, r, id, dest, checkout.Options{UserMode: true, Union: true, ForceCopy: true, Subpath: "/a.txt"})
	if got := coStat(t, filepath.Join(dest, "a.txt")); got.Ino == old.Ino {
		t.Error("ForceCopy union kept the hardlink")
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "a.txt")); string(b) != "hello\n" {
		t.Errorf("a.txt after a copying union: %q", b)
	}

	d := coMakeDir(t, testtree.Tree{"a.txt": testtree.Dir(0o755)})
	_, err := checkout.Checkout(coCtx, r, id, d, checkout.Options{UserMode: true, Union: true})
	if err == nil || !strings.Contains(err.Error(), d+"/a.txt is a directory in the way of a regular file") {
		t.Errorf("union with a directory in the way: %v", err)
	}
}

// A union checkout leaves the times of directories that were in DEST (DEST
// itself included, and a directory DEST is a symlink to) to the kernel;
// only the directories it creates get mtime 0.
func TestUnionKeepsExistingDirectoryTimes(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{
		"etc":      testtree.Dir(0o755),
		"etc/f":    testtree.File("f", 0o644),
		"same":     testtree.Dir(0o755),
		"new":      testtree.Dir(0o755),
		"new/file": testtree.File("n", 0o644),
	}))
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, mode := range []string{"union", "union-add", "union-identical", "symlinked"} {
		t.Run(mode, func(t *testing.T) {
			real := coMakeDir(t, testtree.Tree{"etc": testtree.Dir(0o755), "same": testtree.Dir(0o755)})
			for _, p := range []string{real, real + "/etc", real + "/same"} {
				if err := os.Chtimes(p, old, old); err != nil {
					t.Fatal(err)
				}
			}
			dest := real
			if mode == "symlinked" {
				dest = filepath.Join(t.TempDir(), "dest")
				if err := os.Symlink(real, dest); err != nil {
					t.Fatal(err)
				}
			}
			o := checkout.Options{UserMode: true, Union: mode == "union" || mode == "symlinked",
				UnionAdd: mode == "union-add", UnionIdentical: mode == "union-identical"}
			coCheckout(t, r, id, dest, o)
			for _, p := range []string{real, real + "/etc"} { // entries were added: the kernel's time
				if st := coStat(t, p); st.Mtim.Sec == 0 {
					t.Errorf("%s: mtime set to 0", p)
				}
			}
			if st := coStat(t, real+"/same"); st.Mtim.Sec != old.Unix() || st.Atim.Sec != old.Unix() {
				t.Errorf("untouched existing directory: mtime %d atime %d, want %d", st.Mtim.Sec, st.Atim.Sec, old.Unix())
			}
			if st := coStat(t, real+"/new"); st.Mtim.Sec != 0 || st.Mtim.Nsec != 0 {
				t.Errorf("created directory: mtime %d, want 0", st.Mtim.Sec)
			}
		})
	}
}

// As root, a bare-user-only repository's objects are hardlinked without
// user mode, as OSTree does (their mode is the file's and they carry no
// owner or xattrs; root's objects are 0:0, as a copy would be), and -H
// works. An object of another owner is copied, so the file is root's.
func TestBareUserOnlyHardlinksAsRoot(t *testing.T) {
	if !coRoot() {
		t.Skip("needs root")
	}
	r := coRepo(t, repo.ModeBareUserOnly)
	src := coMakeDir(t, testtree.Tree{"f": testtree.File("data\n", 0o644), "g": testtree.File("other\n", 0o755)})
	id := coCommit(t, r, src)
	for _, h := range []bool{false, true} {
		st, dest := coCheckout(t, r, id, "", checkout.Options{RequireHardlinks: h})
		for _, p := range []string{"/f", "/g"} {
			if got, obj := coStat(t, dest+p), coObject(t, r, id, p); got.Ino != obj.Ino || got.Uid != 0 || got.Gid != 0 {
				t.Errorf("RequireHardlinks=%v: %s not a hardlink of its root-owned object (ino %d vs %d, owner %d:%d)", h, p, got.Ino, obj.Ino, got.Uid, got.Gid)
			}
		}
		if st.Hardlinked != 2 {
			t.Errorf("RequireHardlinks=%v: stats %+v, want 2 hardlinked", h, *st)
		}
	}
	e, err := r.Lookup(id, "/g")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(r.ObjectPath(repo.KindFile, e.ID), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, dest := coCheckout(t, r, id, "", checkout.Options{})
	if got := coStat(t, filepath.Join(dest, "g")); got.Ino == coObject(t, r, id, "/g").Ino || got.Uid != 0 || got.Mode&0o7777 != 0o755 {
		t.Errorf("object owned by 65534: checked out as ino %d owner %d mode %04o; want a root-owned 0755 copy", got.Ino, got.Uid, got.Mode&0o7777)
	}
	_, err = checkout.Checkout(coCtx, r, id, filepath.Join(t.TempDir(), "h"), checkout.Options{RequireHardlinks: true})
	if err == nil || !strings.Contains(err.Error(), "/g") || !strings.Contains(err.Error(), "65534:65534") {
		t.Errorf("RequireHardlinks with an object of another owner: %v", err)
	}
}

// The kernel refuses user.* xattrs on devices (an overlayfs whiteout
// here) even to root: the error says so, and does not suggest user mode.
func TestWhiteoutUserXattrMessage(t *testing.T) {
	if !coRoot() {
		t.Skip("needs root")
	}
	// Asked directly, so that a checkout that succeeds can only have
	// dropped the kernel's refusal.
	dev := filepath.Join(t.TempDir(), "dev")
	if err := unix.Mknod(dev, unix.S_IFCHR|0o644, 0); err != nil {
		t.Skipf("cannot make a device node to ask the kernel: %v", err)
	}
	if err := unix.Lsetxattr(dev, "user.q", []byte("v"), 0); err == nil {
		t.Skip("this kernel allows user.* xattrs on devices")
	} else if !errors.Is(err, unix.EPERM) {
		t.Fatalf("setting user.q on a character device: %v, want EPERM", err)
	}
	r := coRepo(t, repo.ModeBare)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{
		".ostree-wh.top": {Mode: 0o644, Content: "", Xattrs: map[string]string{"user.q": "v"}},
	}))
	dest := filepath.Join(t.TempDir(), "co")
	_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{ProcessPassthroughWhiteouts: true})
	coWritable(t, dest)
	if err == nil {
		t.Fatal("the checkout succeeded, though the kernel refuses user.q on a whiteout")
	}
	if msg := err.Error(); !strings.Contains(msg, dest+"/top") || !strings.Contains(msg, "user.q") ||
		!strings.Contains(msg, "only on regular files and directories, not on a character device") || strings.Contains(msg, "-U") {
		t.Errorf("setting user.q on a whiteout: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "top")); !os.IsNotExist(err) {
		t.Errorf("the whiteout that lacks its xattr was left in DEST (%v)", err)
	}
}

// overlayfs refuses a whiteout made through its merged directory, even to
// root: the error names the entry and says so, rather than asking for
// root.
func TestWhiteoutOntoOverlay(t *testing.T) {
	if !coRoot() {
		t.Skip("needs root, to mount an overlay")
	}
	dir := t.TempDir()
	lower, upper, work, merged := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		if errors.Is(err, unix.ENODEV) {
			t.Skip("the kernel lacks overlayfs")
		}
		t.Fatalf("mounting an overlay: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	r := coRepo(t, repo.ModeBare)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{".ostree-wh.top": testtree.File("", 0o644)}))
	dest := filepath.Join(merged, "co")
	_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{ProcessPassthroughWhiteouts: true})
	if err == nil {
		t.Fatal("the checkout made a whiteout through an overlay")
	}
	if msg := err.Error(); !strings.Contains(msg, dest+"/top") || !strings.Contains(msg, "overlayfs") || strings.Contains(msg, "CAP_MKNOD") {
		t.Errorf("a whiteout through an overlay: %v", err)
	}
}

// A passthrough whiteout stands for the name after ".ostree-wh.": one that
// leaves nothing valid ("", "." or "..") is refused and named, in every
// mode, rather than made at DEST itself or its parent, or skipped as
// already there.
func TestPassthroughWhiteoutOfInvalidName(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	for _, entry := range []string{".ostree-wh.", ".ostree-wh..", ".ostree-wh..."} {
		id := coCommit(t, r, coMakeDir(t, testtree.Tree{entry: testtree.File("", 0o644)}))
		for _, o := range []checkout.Options{
			{UserMode: true, ProcessPassthroughWhiteouts: true},
			{UserMode: true, ProcessPassthroughWhiteouts: true, UnionAdd: true},
			{UserMode: true, ProcessPassthroughWhiteouts: true, Union: true},
		} {
			dest, _, check := coSentinel(t)
			if o.UnionAdd || o.Union {
				os.Mkdir(dest, 0o755)
			}
			_, err := checkout.Checkout(coCtx, r, id, dest, o)
			coWritable(t, dest)
			if err == nil || !strings.Contains(err.Error(), "whiteout of an invalid name") || !strings.Contains(err.Error(), dest+"/"+entry) {
				t.Errorf("%q, union=%v add=%v: %v, want a refusal naming %s/%s", entry, o.Union, o.UnionAdd, err, dest, entry)
			}
			check(entry)
		}
	}
}

// A bare-user object shorter than its header says is corrupt when copied:
// the copy ends with an error naming the entry and the object, not with a
// short file, nor without end.
func TestCopyOfTruncatedObject(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{"d/a": testtree.File("twelve bytes", 0o644)}))
	e, _ := r.Lookup(id, "/d/a")
	if err := os.Truncate(r.ObjectPath(repo.KindFile, e.ID), 5); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "co")
	done := make(chan error, 1)
	go func() {
		_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, ForceCopy: true})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the copy of a truncated object did not end")
	}
	coWritable(t, dest)
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.ID != e.ID || !strings.Contains(err.Error(), "/d/a") || !strings.Contains(err.Error(), "shorter than its size") {
		t.Errorf("copy of a truncated object: %v, want a CorruptObjectError naming /d/a and %s", err, e.ID)
	}
}

// coReflinkDir returns a directory on a filesystem whose files can share
// extents (XFS, made in an image and loop-mounted for the test), or skips
// the test where it cannot be made.
func coReflinkDir(t *testing.T) string {
	t.Helper()
	if !coRoot() {
		t.Skip("needs root to mount a filesystem image")
	}
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		t.Skip("mkfs.xfs (xfsprogs) is not installed")
	}
	img := filepath.Join(t.TempDir(), "xfs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(320 << 20) // sparse; XFS wants 300 MiB at least
	f.Close()
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	mnt, _ := testtree.MountImage(t, img, "xfs", 0)
	return mnt
}

// On a filesystem that shares extents a copy is a reflink of the object's
// whole file: one truncated or grown since it was stored must still not
// give a file of other content. The checkout fails, naming the entry and
// the object.
func TestReflinkCopyOfDamagedObject(t *testing.T) {
	mnt := coReflinkDir(t)
	for name, damage := range map[string]func(string) error{
		"truncated": func(p string) error { return os.Truncate(p, 5) },
		"grown": func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte(" and more"))
			return err
		},
	} {
		r, err := repo.Init(filepath.Join(mnt, name, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		id := coCommit(t, r, coMakeDir(t, testtree.Tree{"d/a": testtree.File("twelve bytes", 0o644)}))
		// A sound object is cloned: the same extents, the same content.
		dest := filepath.Join(mnt, name, "sound")
		if _, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, ForceCopy: true}); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dest, "d/a")); err != nil || string(b) != "twelve bytes" {
			t.Fatalf("%s: the copy of the sound object reads %q, %v", name, b, err)
		}
		e, _ := r.Lookup(id, "/d/a")
		if err := damage(r.ObjectPath(repo.KindFile, e.ID)); err != nil {
			t.Fatal(err)
		}
		dest = filepath.Join(mnt, name, "co")
		_, err = checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, ForceCopy: true})
		coWritable(t, dest)
		var ce *repo.CorruptObjectError
		if !errors.As(err, &ce) || ce.ID != e.ID || !strings.Contains(err.Error(), "/d/a") {
			t.Errorf("%s: reflink copy of the object: %v, want a CorruptObjectError naming /d/a and %s", name, err, e.ID)
		}
		if _, err := os.Lstat(filepath.Join(dest, "d/a")); !os.IsNotExist(err) {
			t.Errorf("%s: the damaged copy was left in DEST (%v)", name, err)
		}
	}
}

// A FIFO in a bare-user file object's place is a corrupt object, named in
// the error, where its open waited for a writer for good (SIGTERM did not
// end it).
func TestCheckoutBareUserFIFOObject(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{"a": testtree.File("hello\n", 0o644)}))
	e, err := r.Lookup(id, "/a")
	if err != nil {
		t.Fatal(err)
	}
	obj := r.ObjectPath(repo.KindFile, e.ID)
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(obj, 0o644); err != nil {
		t.Fatal(err)
	}
	// Should the open block, a writer ends the wait so that the test
	// fails rather than hangs.
	done, blocked := make(chan struct{}), make(chan bool, 1)
	go func() {
		select {
		case <-done:
			blocked <- false
		case <-time.After(30 * time.Second):
			if f, err := os.OpenFile(obj, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
			blocked <- true
		}
	}()
	dest := filepath.Join(t.TempDir(), "co")
	_, err = checkout.Checkout(coCtx, r, id, dest, checkout.Options{ForceCopy: true})
	close(done)
	if <-blocked {
		t.Error("checkout blocked opening the FIFO")
	}
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.ID != e.ID {
		t.Fatalf("checkout with a FIFO as object %s: %v, want it corrupt", e.ID, err)
	}
}

// coACL encodes a POSIX ACL xattr value from (tag, perm, id) entries, as
// the kernel holds it.
func coACL(entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// A default ACL on DEST's parent does not pass into a checkout that
// restores xattrs: every entry it creates has the commit's xattrs and mode
// and no others, whether copied or hardlinked.
func TestCheckoutInheritsNoACL(t *testing.T) {
	if !coRoot() {
		t.Skip("needs root to restore owners and xattrs")
	}
	const none = 0xffffffff
	// other::--- would make files made under it 0640 where the commit
	// says 0644; user 4242 would get rwx (up to the mask) on each entry.
	def := coACL([3]uint32{0x01, 7, none}, [3]uint32{0x02, 7, 4242}, [3]uint32{0x04, 5, none}, [3]uint32{0x10, 7, none}, [3]uint32{0x20, 0, none})
	parent := t.TempDir()
	if err := unix.Setxattr(parent, "system.posix_acl_default", def, 0); err != nil {
		t.Skipf("no POSIX ACLs here: %v", err)
	}
	tree := testtree.Tree{
		"a":     testtree.File("a\n", 0o644),
		"d":     testtree.Dir(0o755),
		"d/f":   testtree.File("f\n", 0o644),
		"d/e":   testtree.Dir(0o775),
		"link":  testtree.Symlink("a"),
		"x.txt": {Mode: 0o644, Content: "x", Xattrs: map[string]string{"user.k": "v"}},
	}
	src := coMakeDir(t, tree)
	for _, mode := range []repo.Mode{repo.ModeArchive, repo.ModeBare} {
		r := coRepo(t, mode)
		id := coCommit(t, r, src)
		for _, force := range []bool{false, true} {
			dest := filepath.Join(parent, fmt.Sprintf("co-%s-%v", mode, force))
			coCheckout(t, r, id, dest, checkout.Options{ForceCopy: force})
			got := testtree.Read(t, dest, testtree.ReadOptions{Owners: true, Xattrs: true})
			if d := cmp.Diff(coExpect(tree, mode, false), got); d != "" {
				t.Errorf("%s, ForceCopy=%v: checkout differs from the tree (-want +got):\n%s", mode, force, d)
			}
			for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default"} {
				if _, err := unix.Getxattr(dest, name, nil); !errors.Is(err, unix.ENODATA) {
					t.Errorf("%s, ForceCopy=%v: DEST has %s (err %v), which the commit does not record", mode, force, name, err)
				}
			}
		}
	}
}

// A bind mount of the repository's filesystem refuses hardlinks across it
// (EXDEV) as another filesystem does: RequireHardlinks fails before DEST
// is made, rather than part way with a partial tree; without it, every
// file is copied.
func TestRequireHardlinksAcrossBindMount(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bind mounts need root")
	}
	r := coRepo(t, repo.ModeBareUserOnly)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{"d": testtree.Dir(0o755), "d/a": testtree.File("a", 0o644)}))
	src := filepath.Join(filepath.Dir(r.Path()), "mnt-src")
	mnt := filepath.Join(filepath.Dir(r.Path()), "mnt")
	for _, p := range []string{src, mnt} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(src, mnt, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	if coStat(t, mnt).Dev != coStat(t, r.Path("objects")).Dev {
		t.Skip("the bind mount is not on the repository's filesystem")
	}
	dest := filepath.Join(mnt, "co")
	_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{RequireHardlinks: true})
	if err == nil || !strings.Contains(err.Error(), "another mount") || !strings.Contains(err.Error(), "hardlinks required") {
		t.Errorf("RequireHardlinks across a bind mount: %v", err)
	}
	if _, err := os.Lstat(dest); err == nil {
		t.Error("a refused checkout created DEST")
	}
	st, _ := coCheckout(t, r, id, dest, checkout.Options{})
	if st.Hardlinked != 0 || st.Copied != 1 {
		t.Errorf("stats %+v across a bind mount, want the file copied", *st)
	}
}
