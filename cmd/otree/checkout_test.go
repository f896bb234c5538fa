package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/internal/xattr"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

func TestCheckoutCommand(t *testing.T) {
	c := newCLI(t) // archive
	id := c.commitTree("os/stable", source(t, fixture), "one", 1700000000)

	dest := filepath.Join(t.TempDir(), "co")
	if out := c.ok("checkout", "-U", "os/stable", dest); out != "" {
		t.Errorf("checkout printed %q", out)
	}
	if d := cmp.Diff(fixture, testtree.Read(t, dest, testtree.ReadOptions{})); d != "" {
		t.Errorf("checkout (-want +got):\n%s", d)
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(dest, "a.txt"), &st)
	if st.Mtim.Sec != 0 {
		t.Errorf("mtime %d, want 0", st.Mtim.Sec)
	}

	// --json reports the work; --subpath takes one directory.
	sub := filepath.Join(t.TempDir(), "sub")
	var js struct {
		Commit repo.ID `json:"commit"`
		Dest   string  `json:"dest"`
		Stats  struct {
			Files      int64 `json:"files"`
			Dirs       int64 `json:"dirs"`
			Bytes      int64 `json:"bytes"`
			Hardlinked int64 `json:"hardlinked"`
			Copied     int64 `json:"copied"`
			FromCache  int64 `json:"from_cache"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(c.ok("checkout", "--json", "-U", "--subpath=/sub", id.String(), sub)), &js); err != nil {
		t.Fatal(err)
	}
	if js.Commit != id || js.Dest != sub || js.Stats.Files != 2 || js.Stats.Dirs != 1 || js.Stats.Bytes != 4 ||
		// The first checkout put sub/secret in the uncompressed-object
		// cache; the symlink is copied.
		js.Stats.Hardlinked != 1 || js.Stats.FromCache != 1 || js.Stats.Copied != 1 {
		t.Errorf("--json = %+v", js)
	}
	if d := cmp.Diff(testtree.Tree{"secret": fixture["sub/secret"], "up": fixture["sub/up"]}, testtree.Read(t, sub, testtree.ReadOptions{})); d != "" {
		t.Errorf("--subpath (-want +got):\n%s", d)
	}

	// Union modes on an existing DEST.
	os.WriteFile(filepath.Join(dest, "a.txt"), []byte("local\n"), 0o644)
	os.Remove(filepath.Join(dest, "run.sh"))
	c.fails(exitError, []string{dest, "already exists"}, "checkout", "-U", "os/stable", dest)
	c.fails(exitError, []string{filepath.Join(dest, "a.txt"), "differs"}, "checkout", "-U", "--union-identical", "os/stable", dest)
	c.ok("checkout", "-U", "--union-add", "os/stable", dest)
	if b, _ := os.ReadFile(filepath.Join(dest, "a.txt")); string(b) != "local\n" {
		t.Errorf("--union-add replaced a.txt: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dest, "run.sh")); err != nil {
		t.Errorf("--union-add did not add run.sh: %v", err)
	}
	c.ok("checkout", "-U", "--union", "os/stable", dest)
	if b, _ := os.ReadFile(filepath.Join(dest, "a.txt")); string(b) != "hello\n" {
		t.Errorf("--union kept a.txt: %q", b)
	}
	c.ok("checkout", "-U", "--union-identical", "os/stable", dest)

	// --whiteouts applies ".wh." entries.
	wh := c.commitTree("wh", source(t, testtree.Tree{".wh.a.txt": testtree.File("", 0o644)}), "wh", 1700000001)
	c.ok("checkout", "-U", "--union", "--whiteouts", wh.String(), dest)
	if _, err := os.Lstat(filepath.Join(dest, "a.txt")); err == nil {
		t.Error("--whiteouts left a.txt")
	}

	// Errors: archive objects cannot be hardlinked; bad flag combinations
	// are usage errors; a missing rev or subpath is named.
	c.fails(exitError, []string{"archive", "hardlink"}, "checkout", "-U", "-H", "os/stable", filepath.Join(t.TempDir(), "h"))
	c.fails(exitUsage, []string{"--union"}, "checkout", "--union", "--union-add", "os/stable", filepath.Join(t.TempDir(), "u"))
	c.fails(exitUsage, []string{"--force-copy"}, "checkout", "-C", "-H", "os/stable", filepath.Join(t.TempDir(), "u"))
	c.fails(exitError, []string{"nope"}, "checkout", "nope", filepath.Join(t.TempDir(), "u"))
	c.fails(exitError, []string{"/nope"}, "checkout", "--subpath=/nope", "os/stable", filepath.Join(t.TempDir(), "u"))
	c.fails(exitUsage, nil, "checkout", "os/stable", "a", "b")
}

func TestCheckoutHardlinks(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	r := c.r
	id := c.commitTree("main", source(t, fixture), "one", 1700000000)
	obj := r.ObjectPath(repo.KindFile, mustLookup(t, r, id, "/a.txt").ID)
	ino := func(p string) uint64 {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}

	dest := filepath.Join(t.TempDir(), "co")
	c.ok("checkout", "-U", "-H", "main", dest)
	if ino(filepath.Join(dest, "a.txt")) != ino(obj) {
		t.Error("-U -H from bare-user did not hardlink a.txt")
	}
	cp := filepath.Join(t.TempDir(), "cp")
	c.ok("checkout", "-U", "-C", "main", cp)
	if ino(filepath.Join(cp, "a.txt")) == ino(obj) {
		t.Error("-C hardlinked a.txt")
	}
	if d := cmp.Diff(fixture, testtree.Read(t, cp, testtree.ReadOptions{})); d != "" {
		t.Errorf("-C (-want +got):\n%s", d)
	}
	if os.Geteuid() == 0 {
		// Without -U, as root: copies with owners restored.
		full := filepath.Join(t.TempDir(), "full")
		c.ok("checkout", "main", full)
		if d := cmp.Diff(fixture, testtree.Read(t, full, testtree.ReadOptions{Owners: true, Xattrs: true})); d != "" {
			t.Errorf("checkout as root (-want +got):\n%s", d)
		}
		c.fails(exitError, []string{"user mode"}, "checkout", "-H", "main", filepath.Join(t.TempDir(), "h"))
	}
}

// On a terminal, checkout draws progress and prints a summary, which says
// where links came from.
func TestCheckoutProgressOnTerminal(t *testing.T) {
	c := newCLI(t)
	c.commitTree("x", source(t, fixture), "one", 1700000000)
	for _, want := range []string{
		"Checked out 5 files (0 hardlinked, 5 copied), 2 directories",
		// a.txt, run.sh and sub/secret: cached by the first checkout.
		"Checked out 5 files (3 hardlinked from the uncompressed cache, 2 copied), 2 directories",
	} {
		m, s := openPTY(t)
		var out bytes.Buffer
		code := run(context.Background(), []string{"--repo=" + c.path, "checkout", "-U", "x", filepath.Join(t.TempDir(), "co")}, strings.NewReader(""), &out, s)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		s.Close()
		screen := readScreen(m, "directories")
		for _, want := range []string{"Checking out: 5 files", want} {
			if !strings.Contains(screen, want) {
				t.Errorf("terminal output %q lacks %q", screen, want)
			}
		}
	}
}

// A user re-runs a hardlink union checkout over a tree with a read-only
// directory: the files there are already the objects' inodes, so nothing
// needs writing and it succeeds, as OSTree's does.
func TestCheckoutUnionRerunAsUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run otree as another user")
	}
	dir, bin, env := nobodyDir(t)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "ro/", Typeflag: tar.TypeDir, Mode: 0o555})
	tw.WriteHeader(&tar.Header{Name: "ro/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("y\n"))
	tw.Close()
	if err := os.WriteFile(filepath.Join(dir, "t.tar"), tb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	co := filepath.Join(dir, "co")
	for _, args := range [][]string{
		{"init", "--mode=bare-user"},
		{"commit", "-b", "m", "--tree=tar=t.tar"},
		{"checkout", "-U", "m", co},
		{"checkout", "-U", "--union", "m", co},
		{"checkout", "-U", "--union-add", "m", co},
		{"checkout", "-U", "--union-identical", "m", co},
	} {
		cmd := exec.Command(bin, append([]string{"--repo=" + filepath.Join(dir, "repo")}, args...)...)
		cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, env, asNobody()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("otree %v as nobody: %v\n%s", args, err, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(co, "ro", "f")); err != nil || string(b) != "y\n" {
		t.Errorf("ro/f after the re-runs: %q, %v", b, err)
	}
}

// nobody is the uid and gid tests run otree (and OSTree) as, to act as a
// user other than root.
const nobody = 65534

// asNobody makes a command run as nobody.
func asNobody() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
}

// nobodyDir makes a scratch directory owned by nobody, outside the test's
// temporary directory (which nobody cannot enter), holding a copy of the
// otree binary; it returns the directory, the binary and the environment
// to run it in. Its cleanup makes the directories the tools left read-only
// writable again, so that root can remove them.
func nobodyDir(t *testing.T) (dir, bin string, env []string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "otree-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
		os.RemoveAll(dir)
	})
	exe, env := otreeBinary(t)
	bin = filepath.Join(dir, "otree")
	copyFile(t, exe, bin, 0o755)
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin, env
}

// Root's checkout from a bare-user-only repository gives directories 0:0
// and no xattrs, as it gives files, whatever owner and xattrs a pulled
// dirmeta carries; OSTree's does the same.
func TestCheckoutBareUserOnlyDirOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown and trusted.* xattrs of the source tree")
	}
	tree := source(t, testtree.Tree{"d/f": testtree.File("f\n", 0o644)})
	d := filepath.Join(tree, "d")
	if err := os.Chown(d, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	for _, x := range [][2]string{{"trusted.overlay.opaque", "y"}, {"user.evil", "1"}} {
		if err := xattr.Set(d, x[0], []byte(x[1])); err != nil {
			t.Fatal(err)
		}
	}
	check := func(tool, co string) {
		t.Helper()
		for _, p := range []string{co, filepath.Join(co, "d")} {
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				t.Fatal(err)
			}
			xs, err := xattr.List(p, nil)
			if st.Uid != 0 || st.Gid != 0 || err != nil || len(xs) != 0 {
				t.Errorf("%s: %s is %d:%d with xattrs %v (%v), want 0:0 and none", tool, p, st.Uid, st.Gid, xs, err)
			}
		}
	}

	src := newCLI(t) // archive: records the owner and xattrs
	src.ok("commit", "-b", "b", tree)
	dst := newCLIMode(t, repo.ModeBareUserOnly)
	dst.ok("pull-local", src.path, "b")
	for _, args := range [][]string{{}, {"-M"}} {
		co := filepath.Join(t.TempDir(), "co")
		dst.ok(append(append([]string{"checkout"}, args...), "b", co)...)
		check("otree", co)
	}

	o := needOSTree(t, "archive")
	o.ok("commit", "-b", "b", tree)
	ob := needOSTree(t, "bare-user-only")
	ob.ok("pull-local", o.path, "b")
	co := filepath.Join(t.TempDir(), "oco")
	ob.ok("checkout", "b", co)
	check("ostree", co)
}

// A bare-user repository stores a symlink of the longest target Linux
// allows (4095 bytes), as OSTree's does: the target is the object's
// content, and the header in user.otreemeta goes without it when it is
// long (all of an inode's xattrs must fit in one ext4 block).
func TestBareUserLongSymlinkTarget(t *testing.T) {
	long := strings.Repeat("t/", 2047) + "t" // 4095 bytes
	src := source(t, testtree.Tree{"long": testtree.Symlink(long), "short": testtree.Symlink("a.txt"), "a.txt": testtree.File("a\n", 0o644)})
	c := newCLIMode(t, repo.ModeBareUser)
	c.ok("commit", "-b", "b", src)
	for _, args := range [][]string{{"-U"}, {"-U", "-C"}} {
		co := filepath.Join(t.TempDir(), "co")
		c.ok(append(append([]string{"checkout"}, args...), "b", co)...)
		for name, want := range map[string]string{"long": long, "short": "a.txt"} {
			if got, err := os.Readlink(filepath.Join(co, name)); err != nil || got != want {
				t.Errorf("checkout %v: %s -> %d bytes (%v), want %d", args, name, len(got), err, len(want))
			}
		}
	}
	if got := c.ok("ls", "b", "/long"); !strings.Contains(got, " -> "+long+"\n") {
		t.Errorf("ls of the long symlink: %d bytes", len(got))
	}
	if res := c.run("fsck"); res.code != 0 {
		t.Errorf("fsck: %s", res.stderr)
	}
	commitID, err := c.r.ResolveRev("b")
	if err != nil {
		t.Fatal(err)
	}
	id := mustLookup(t, c.r, commitID, "/long").ID
	meta, err := xattr.Get(c.r.ObjectPath(repo.KindFile, id), repo.UserMetaXattr)
	if err != nil || strings.Contains(string(meta), long) {
		t.Errorf("user.otreemeta holds the long target (%d bytes, %v)", len(meta), err)
	}
	o := needOSTree(t, "bare-user")
	o.ok("commit", "-b", "b", src)
	co := filepath.Join(t.TempDir(), "oco")
	o.ok("checkout", "-U", "b", co)
	if got, err := os.Readlink(filepath.Join(co, "long")); err != nil || got != long {
		t.Errorf("ostree: long -> %d bytes (%v)", len(got), err)
	}
}

// --allow-noent allows a --subpath the commit lacks, not one whose objects
// this repository lacks: that checkout fails, naming the object.
func TestCheckoutAllowNoentMissingObject(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	id := c.commitTree("b", source(t, testtree.Tree{"d/e/f": testtree.File("f\n", 0o644)}), "one", 1700000000)
	none := filepath.Join(t.TempDir(), "none")
	c.ok("checkout", "-U", "--subpath=/nope", "--allow-noent", "b", none)
	if _, err := os.Lstat(none); !os.IsNotExist(err) {
		t.Errorf("--allow-noent of a missing subpath made DEST (%v)", err)
	}
	d := mustLookup(t, c.r, id, "/d")
	if err := os.Remove(c.r.ObjectPath(repo.KindDirTree, d.ID)); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "co")
	c.fails(exitError, []string{d.ID.String()}, "checkout", "-U", "--subpath=/d/e", "--allow-noent", "b", dest)
}

// TestCheckoutUncompressedCacheAndPrune: checkout -U from an archive
// repository fills its uncompressed-object cache and links from it the
// next time, unless --disable-cache; prune removes the entries no checkout
// uses and those of the objects it deletes, and --no-prune only counts
// them.
// prune counts an unused uncompressed-cache entry of a sparse file by its
// blocks: a 256 MiB file with 5 bytes of data frees well under 1 MiB.
func TestPruneSparseCacheEntry(t *testing.T) {
	c := newCLI(t) // archive
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("data!"), 128<<20); err != nil {
		t.Fatal(err)
	}
	f.Truncate(256 << 20)
	f.Close()
	id := c.ok("commit", "-b", "main", dir)
	co := filepath.Join(t.TempDir(), "co")
	c.ok("checkout", "-U", strings.TrimSpace(id), co)
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(co, "sparse"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink != 2 || st.Blocks*512 > 1<<20 {
		t.Skipf("the checkout is no sparse link of a cache entry (%d links, %d bytes allocated)", st.Nlink, st.Blocks*512)
	}
	os.RemoveAll(co)
	var js struct {
		Cache struct{ Objects, Bytes int64 } `json:"uncompressed_cache"`
	}
	if err := json.Unmarshal([]byte(c.ok("prune", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if js.Cache.Objects != 1 || js.Cache.Bytes != st.Blocks*512 {
		t.Errorf("prune --json: uncompressed_cache %+v; want 1 entry, %d bytes (its blocks)", js.Cache, st.Blocks*512)
	}
}

func TestCheckoutUncompressedCacheAndPrune(t *testing.T) {
	c := newCLI(t) // archive
	id := c.commitTree("main", source(t, fixture), "one", 1700000000)
	e := mustLookup(t, c.r, id, "/a.txt")
	entry := c.r.Path(repo.UncompressedCacheDir, repo.UncompressedCacheEntry(e.ID))
	ino := func(p string) uint64 {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	entries := func() []string {
		var names []string
		filepath.WalkDir(c.r.Path(repo.UncompressedCacheDir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				names = append(names, p)
			}
			return nil
		})
		return names
	}

	off := filepath.Join(t.TempDir(), "off")
	c.ok("checkout", "-U", "--disable-cache", "main", off)
	if n := entries(); len(n) != 0 {
		t.Errorf("--disable-cache filled the cache: %v", n)
	}
	first, second := filepath.Join(t.TempDir(), "first"), filepath.Join(t.TempDir(), "second")
	c.ok("checkout", "-U", "main", first)
	c.ok("checkout", "-U", "main", second)
	// fixture's non-empty regular files: a.txt, run.sh, sub/secret.
	if n := entries(); len(n) != 3 {
		t.Errorf("the cache holds %v; want a.txt, run.sh and sub/secret", n)
	}
	if ino(filepath.Join(first, "a.txt")) != ino(entry) || ino(filepath.Join(second, "a.txt")) != ino(entry) {
		t.Error("checkout -U from archive did not link a.txt from the cache")
	}
	again := filepath.Join(t.TempDir(), "again")
	c.ok("checkout", "-U", "--disable-cache", "main", again)
	if ino(filepath.Join(again, "a.txt")) == ino(entry) {
		t.Error("--disable-cache linked a.txt from the cache")
	}
	for _, d := range []string{first, second, again} {
		if diff := cmp.Diff(fixture, testtree.Read(t, d, testtree.ReadOptions{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", d, diff)
		}
	}

	// Every entry is in use: prune removes none.
	if out := c.ok("prune"); strings.Contains(out, "uncompressed") {
		t.Errorf("prune with every entry in use:\n%s", out)
	}
	// Unused: counted by a dry run, removed by prune.
	os.RemoveAll(first)
	os.RemoveAll(second)
	if out := c.ok("prune", "--no-prune"); !strings.Contains(out, "Would remove 3 uncompressed-cache entries, freeing 13 bytes\n") {
		t.Errorf("prune --no-prune:\n%s", out)
	}
	if n := entries(); len(n) != 3 {
		t.Errorf("prune --no-prune removed cache entries: %v left", n)
	}
	var js struct {
		Cache struct{ Objects, Bytes int64 } `json:"uncompressed_cache"`
	}
	if err := json.Unmarshal([]byte(c.ok("prune", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if js.Cache.Objects != 3 || js.Cache.Bytes != 13 {
		t.Errorf("prune --json: uncompressed_cache %+v; want 3 entries, 13 bytes", js.Cache)
	}
	if n := entries(); len(n) != 0 {
		t.Errorf("prune left cache entries no checkout uses: %v", n)
	}

	// An entry whose object prune deletes goes with it, even in use; the
	// checkout that uses it keeps its file.
	in := filepath.Join(t.TempDir(), "in")
	c.ok("checkout", "-U", "main", in)
	c.ok("refs", "--delete", "main")
	if out := c.ok("prune", "--refs-only"); !strings.Contains(out, "Removed 3 uncompressed-cache entries, freeing 0 bytes\n") {
		t.Errorf("prune of the commit whose files a checkout uses:\n%s", out)
	}
	if n := entries(); len(n) != 0 {
		t.Errorf("prune kept the entries of objects it deleted: %v", n)
	}
	if diff := cmp.Diff(fixture, testtree.Read(t, in, testtree.ReadOptions{})); diff != "" {
		t.Errorf("the checkout changed when prune removed its cache entries (-want +got):\n%s", diff)
	}
}

// TestFsckUncompressedCache: a file of a checkout changed in place, then
// given back the epoch as its time (as rsync --inplace -t could), passes
// the checks a checkout makes before it links a cache entry; fsck finds it
// by content, names the entry, and with --delete removes it, after which
// a checkout decompresses the file again.
func TestFsckUncompressedCache(t *testing.T) {
	c := newCLI(t) // archive
	id := c.commitTree("main", source(t, fixture), "one", 1700000000)
	co := filepath.Join(t.TempDir(), "co")
	c.ok("checkout", "-U", "main", co)
	c.ok("fsck")

	// Touched, or chmod'ed: a checkout would not link it, so it is not
	// fsck's problem.
	if err := os.Chtimes(filepath.Join(co, "run.sh"), time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(co, "sub/secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("fsck")

	entry := rewriteCachedInPlace(t, c, id, co)
	res := c.fails(exitError, []string{"uncompressed-cache entry " + entry, "content is not the object's", "hint: the object is sound"}, "fsck")
	if strings.Count(res.stderr, "error: ") != 2 { // the entry, and the closing count
		t.Errorf("fsck reported more than the entry:\n%s", res.stderr)
	}
	var js struct {
		Problems []struct{ Type, Path string }
	}
	json.Unmarshal([]byte(c.fails(exitError, nil, "fsck", "--json").stdout), &js)
	if len(js.Problems) != 1 || js.Problems[0].Type != "cache" || js.Problems[0].Path != entry {
		t.Errorf("fsck --json problems %+v", js.Problems)
	}
	if res := c.fails(exitError, []string{entry, "deleted"}, "fsck", "--delete"); !strings.Contains(res.stdout, "Removed 1 uncompressed-cache entry\n") {
		t.Errorf("fsck --delete:\n%s", res.stdout)
	}
	if _, err := os.Lstat(entry); !os.IsNotExist(err) {
		t.Errorf("fsck --delete left the entry (%v)", err)
	}
	c.ok("fsck")
	again := filepath.Join(t.TempDir(), "again")
	c.ok("checkout", "-U", "main", again)
	if diff := cmp.Diff(fixture, testtree.Read(t, again, testtree.ReadOptions{})); diff != "" {
		t.Errorf("checkout after fsck --delete (-want +got):\n%s", diff)
	}
}

// rewriteCachedInPlace writes other bytes of the same size into a.txt of
// the checkout co of commit id, which shares its inode with the
// uncompressed-object cache, and puts its time back to the epoch (as
// rsync --inplace -t could): the entry still fits. It returns the entry.
func rewriteCachedInPlace(t *testing.T, c *cli, id repo.ID, co string) string {
	t.Helper()
	a := filepath.Join(co, "a.txt")
	if err := os.WriteFile(a, []byte("HELLO\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, time.Unix(0, 0), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	return c.r.Path(repo.UncompressedCacheDir, repo.UncompressedCacheEntry(mustLookup(t, c.r, id, "/a.txt").ID))
}

// fsck --delete that removes only uncompressed-cache entries still makes
// the removal durable: a crash must not bring back an entry it found bad.
func TestFsckDeleteCacheEntrySynced(t *testing.T) {
	strace := testbin.NeedStrace(t)
	exe, env := otreeBinary(t)
	c := newCLI(t) // archive
	id := c.commitTree("main", source(t, fixture), "one", 1700000000)
	co := filepath.Join(t.TempDir(), "co")
	c.ok("checkout", "-U", "main", co)
	entry := rewriteCachedInPlace(t, c, id, co)
	log := filepath.Join(t.TempDir(), "strace")
	cmd := exec.Command(strace, "-f", "-o", log, "-e", "trace=unlink,unlinkat,syncfs,fsync", exe, "--repo="+c.path, "fsck", "--delete")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), entry) {
		t.Fatalf("fsck --delete of a bad cache entry: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(log)
	lines := strings.Split(string(b), "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, entry) })
	if i < 0 || !slices.ContainsFunc(lines[i+1:], func(l string) bool { return strings.Contains(l, "syncfs(") || strings.Contains(l, "fsync(") }) {
		t.Errorf("fsck --delete removed %s without syncing after:\n%s", entry, b)
	}
}

// A user-mode checkout gives the same modes as OSTree's: regular files get
// their owner's read bit and lose setuid and setgid (0000 -> 0400, 0070 ->
// 0470), directories keep theirs (a 0000 one stays 0000), from every
// repository mode, linked or copied (-C); and the repository stays intact.
// The tree comes from a tar, so that a user other than root can commit
// it; bare and bare-user-only (whose 0000 objects only root can copy)
// need root.
func TestCheckoutUserModeOwnerReadParity(t *testing.T) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./d/", Typeflag: tar.TypeDir, Mode: 0},
		{Name: "./f", Typeflag: tar.TypeReg, Mode: 0, Size: 1},
		{Name: "./g", Typeflag: tar.TypeReg, Mode: 0o070, Size: 1},
		{Name: "./t", Typeflag: tar.TypeReg, Mode: 0o2070, Size: 1},
		{Name: "./s", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1},
	} {
		tw.WriteHeader(h)
		if h.Size > 0 {
			tw.Write([]byte("x"))
		}
	}
	tw.Close()
	tarFile := filepath.Join(t.TempDir(), "modes.tar")
	if err := os.WriteFile(tarFile, tb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	modes := func(t *testing.T, dir string) map[string]string {
		t.Helper()
		m := map[string]string{}
		for _, name := range []string{"d", "f", "g", "t", "s"} {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, name), &st); err != nil {
				t.Fatal(err)
			}
			m[name] = strconv.FormatUint(uint64(st.Mode&0o7777), 8)
		}
		return m
	}
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive, repo.ModeBare, repo.ModeBareUserOnly} {
		t.Run(mode.String(), func(t *testing.T) {
			if (mode == repo.ModeBare || mode == repo.ModeBareUserOnly) && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			c := newCLIMode(t, mode)
			c.ok("commit", "-b", "m", "--tree=tar="+tarFile)
			o := findOSTree(t, mode.String())
			if o != nil {
				o.ok("commit", "-b", "m", "--tree=tar="+tarFile)
			}
			for _, args := range [][]string{{"-U"}, {"-U", "-C"}} {
				dir := t.TempDir()
				mine := filepath.Join(dir, "otree")
				c.ok(append(append([]string{"checkout"}, args...), "m", mine)...)
				got := modes(t, mine)
				// OSTree 2022.7's, where it is not installed.
				want := map[string]string{"d": "0", "f": "400", "g": "470", "t": "470", "s": "755"}
				if mode == repo.ModeBareUserOnly { // committed masked with 0755
					want["g"], want["t"] = "450", "450"
				}
				if o != nil {
					theirs := filepath.Join(dir, "ostree")
					o.ok(append(append([]string{"checkout"}, args...), "m", theirs)...)
					want = modes(t, theirs)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("checkout %v: modes differ from OSTree's (-ostree +otree):\n%s", args, d)
				}
			}
			if res := c.run("fsck"); res.code != 0 {
				t.Errorf("fsck after the checkouts: %s", res.stderr)
			}
		})
	}
}

// checkout --subpath with a trailing "/" names a directory, as in ls, cat,
// export and OSTree's checkout: a file so named is refused and DEST is not
// made; a directory so named checks out.
func TestCheckoutSubpathTrailingSlash(t *testing.T) {
	src := source(t, testtree.Tree{"plain": testtree.File("p", 0o644), "dir/f": testtree.File("f", 0o644)})
	c := newCLIMode(t, repo.ModeBareUser)
	c.ok("commit", "-b", "m", src)
	dir := t.TempDir()
	c.fails(1, []string{"/plain", "not a directory"}, "checkout", "-U", "--subpath=/plain/", "m", filepath.Join(dir, "co"))
	c.fails(1, []string{"/plain", "not a directory"}, "ls", "m", "/plain/")
	if _, err := os.Lstat(filepath.Join(dir, "co")); !os.IsNotExist(err) {
		t.Errorf("a refused checkout made DEST: %v", err)
	}
	c.ok("checkout", "-U", "--subpath=/dir/", "m", filepath.Join(dir, "co2"))
	if _, err := os.Lstat(filepath.Join(dir, "co2", "f")); err != nil {
		t.Errorf("--subpath=/dir/: %v", err)
	}
	if o := findOSTree(t, "bare-user"); o != nil {
		o.ok("commit", "-b", "m", src)
		if out, err := o.run("checkout", "-U", "--subpath=/plain/", "m", filepath.Join(dir, "oco")); err == nil {
			t.Errorf("ostree accepts --subpath=/plain/ (%s): the test's premise is wrong", out)
		}
	}
}

// A checkout from a bare-user-only repository gives directories only the
// 0775 bits of their mode, with or without -U or -M, as OSTree's does: a
// pulled dirmeta may ask for a sticky, setgid or world-writable directory.
func TestCheckoutBareUserOnlyDirModes(t *testing.T) {
	tree := source(t, testtree.Tree{
		"tmp":  testtree.Dir(fs.ModeSticky | 0o777),
		"sg":   testtree.Dir(fs.ModeSetgid | 0o775),
		"ww":   testtree.Dir(0o777),
		"priv": testtree.Dir(0o700),
		"ww/f": testtree.File("f\n", 0o644),
	})
	want := map[string]uint32{"tmp": 0o775, "sg": 0o775, "ww": 0o775, "priv": 0o700}
	check := func(tool, co string) {
		t.Helper()
		for p, w := range want {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(co, p), &st); err != nil {
				t.Fatal(err)
			}
			if got := st.Mode & 0o7777; got != w {
				t.Errorf("%s: %s has mode %04o, want %04o", tool, p, got, w)
			}
		}
	}

	src := newCLI(t) // archive: records the modes as they are
	src.ok("commit", "--owner-uid=0", "--owner-gid=0", "-b", "b", tree)
	dst := newCLIMode(t, repo.ModeBareUserOnly)
	dst.ok("pull-local", src.path, "b")
	for _, args := range [][]string{{}, {"-U"}, {"-M"}} {
		co := filepath.Join(t.TempDir(), "co")
		dst.ok(append(append([]string{"checkout"}, args...), "b", co)...)
		check("otree checkout "+strings.Join(args, " "), co)
		// The masked modes are what the commit is compared as: no drift.
		dst.ok("diff", "--verify", "b", co)
	}

	o := needOSTree(t, "archive")
	o.ok("commit", "--owner-uid=0", "--owner-gid=0", "-b", "b", tree)
	ob := needOSTree(t, "bare-user-only")
	ob.ok("pull-local", o.path, "b")
	co := filepath.Join(t.TempDir(), "oco")
	ob.ok("checkout", "b", co)
	check("ostree checkout", co)
}
