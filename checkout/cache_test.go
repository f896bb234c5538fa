package checkout_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// cacheEntry is the path of file object path's entry in the
// uncompressed-object cache of r, a repository with commit id.
func cacheEntry(t *testing.T, r *repo.Repo, id repo.ID, path string) string {
	t.Helper()
	e, err := r.Lookup(id, path)
	if err != nil {
		t.Fatal(err)
	}
	return r.Path(repo.UncompressedCacheDir, repo.UncompressedCacheEntry(e.ID))
}

// cachedFiles are the files of tree a checkout from an archive repository
// caches: regular, with content, readable by their owner and writable by
// no one else.
func cachedFiles(tree testtree.Tree) []string {
	var files []string
	for p, e := range tree {
		if e.Mode.IsRegular() && e.Content != "" && e.Mode&0o400 != 0 && e.Mode&0o002 == 0 {
			files = append(files, "/"+p)
		}
	}
	return files
}

// sameInode reports whether a and b are one inode.
func sameInode(t *testing.T, a, b string) bool {
	t.Helper()
	sa, sb := coStat(t, a), coStat(t, b)
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// TestUncompressedCache checks out an archive repository's commit in user
// mode twice with the uncompressed-object cache: the first checkout
// decompresses every file and leaves each non-empty regular file in the
// cache, the second links every one of them from there, and both give the
// tree as committed.
func TestUncompressedCache(t *testing.T) {
	r := coRepo(t, repo.ModeArchive)
	tree := coTree()
	// Anyone may write it: through a shared inode anyone could change
	// every later checkout, so it is never cached.
	tree["anyone"] = testtree.File("anyone writes", 0o666)
	id := coCommit(t, r, coMakeDir(t, tree))
	want := coExpect(tree, repo.ModeArchive, true)
	files := cachedFiles(tree)
	if slices.Contains(files, "/anyone") || !slices.Contains(files, "/big") {
		t.Fatalf("cachedFiles = %v", files)
	}
	opts := checkout.Options{UserMode: true, UncompressedCache: true}

	// Without the option nothing is cached.
	st, _ := coCheckout(t, r, id, "", checkout.Options{UserMode: true})
	if st.Hardlinked != 0 || st.FromCache != 0 {
		t.Errorf("without UncompressedCache: %+v", st)
	}
	if _, err := os.Stat(r.Path(repo.UncompressedCacheDir)); !os.IsNotExist(err) {
		t.Errorf("without UncompressedCache the cache directory was made (%v)", err)
	}

	st, first := coCheckout(t, r, id, "", opts)
	if st.FromCache != 0 || st.Hardlinked != 0 || st.Copied != st.Files {
		t.Errorf("first checkout: %+v; want every file copied", st)
	}
	for _, p := range files {
		if !sameInode(t, first+p, cacheEntry(t, r, id, p)) {
			t.Errorf("first checkout: %s is not in the cache", p)
		}
	}
	if _, err := os.Lstat(cacheEntry(t, r, id, "/anyone")); !os.IsNotExist(err) {
		t.Errorf("a file anyone may write is in the cache (%v)", err)
	}
	st, second := coCheckout(t, r, id, "", opts)
	if st.FromCache != int64(len(files)) || st.Hardlinked != st.FromCache {
		t.Errorf("second checkout: %+v; want the %d cacheable files from the cache", st, len(files))
	}
	for _, p := range files {
		if !sameInode(t, second+p, cacheEntry(t, r, id, p)) {
			t.Errorf("second checkout: %s is not linked from the cache", p)
		}
	}
	for _, dest := range []string{first, second} {
		if diff := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); diff != "" {
			t.Errorf("checkout %s differs from the commit:\n%s", dest, diff)
		}
		coCheckTimes(t, r, dest)
	}

	// Only in user mode, only from archive, only where allowed.
	if coRoot() {
		st, _ := coCheckout(t, r, id, "", checkout.Options{UncompressedCache: true})
		if st.FromCache != 0 {
			t.Errorf("a checkout outside user mode linked %d files from the cache", st.FromCache)
		}
	}
	st, _ = coCheckout(t, r, id, "", checkout.Options{UserMode: true, UncompressedCache: true, ForceCopy: true})
	if st.FromCache != 0 {
		t.Errorf("ForceCopy linked %d files from the cache", st.FromCache)
	}
	if err := repo.CheckConfigValue(repo.ConfigUncompressedCache, "maybe"); err == nil {
		t.Errorf("%s=maybe is accepted", repo.ConfigUncompressedCache)
	}
	if err := r.UpdateConfig(func(c *repo.Config) error { return c.Set(repo.ConfigUncompressedCache, "false") }); err != nil {
		t.Fatal(err)
	}
	st, _ = coCheckout(t, r, id, "", opts)
	if st.FromCache != 0 {
		t.Errorf("with %s=false, %d files came from the cache", repo.ConfigUncompressedCache, st.FromCache)
	}
}

// TestUncompressedCacheChangedEntry changes files of a checkout that share
// their inode with the cache, as an admin might by mistake: written in
// place, truncated, chmod'ed, touched. The next checkout must not hand the
// changes on: it decompresses those files afresh and puts the fresh copies
// in the cache.
func TestUncompressedCacheChangedEntry(t *testing.T) {
	r := coRepo(t, repo.ModeArchive)
	tree := testtree.Tree{
		"written":   testtree.File("original content\n", 0o644),
		"truncated": testtree.File("original content, longer\n", 0o644),
		"chmod":     testtree.File("mode changes\n", 0o644),
		"touched":   testtree.File("time changes\n", 0o644),
		"kept":      testtree.File("left alone\n", 0o644),
	}
	id := coCommit(t, r, coMakeDir(t, tree))
	opts := checkout.Options{UserMode: true, UncompressedCache: true}
	_, first := coCheckout(t, r, id, "", opts)

	// Same size, new bytes: only the time tells.
	f, err := os.OpenFile(filepath.Join(first, "written"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("ORIGINAL"), 0)
	f.Close()
	if err := os.Truncate(filepath.Join(first, "truncated"), 3); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(first, "chmod"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(first, "touched"), time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}

	st, second := coCheckout(t, r, id, "", opts)
	if st.FromCache != 1 {
		t.Errorf("%d files came from the cache; want 1, the one left alone", st.FromCache)
	}
	if diff := cmp.Diff(coExpect(tree, repo.ModeArchive, true), testtree.Read(t, second, testtree.ReadOptions{})); diff != "" {
		t.Errorf("the changes reached the next checkout:\n%s", diff)
	}
	for p := range tree {
		if !sameInode(t, filepath.Join(second, p), cacheEntry(t, r, id, "/"+p)) {
			t.Errorf("%s: the second checkout's file is not the cache's entry", p)
		}
		if p != "kept" && sameInode(t, filepath.Join(first, p), cacheEntry(t, r, id, "/"+p)) {
			t.Errorf("%s: the changed file is still the cache's entry", p)
		}
	}
	// The first checkout keeps its files, changed as they were.
	if b, _ := os.ReadFile(filepath.Join(first, "written")); !strings.HasPrefix(string(b), "ORIGINAL") {
		t.Errorf("the first checkout's changed file is now %q", b)
	}
}

// TestUncompressedCacheCorruptObject: content that fails verification is
// neither left in DEST nor put in the cache.
func TestUncompressedCacheCorruptObject(t *testing.T) {
	r := coRepo(t, repo.ModeArchive)
	id := coCommit(t, r, coMakeDir(t, testtree.Tree{"a": testtree.File("content a\n", 0o644)}))
	e, _ := r.Lookup(id, "/a")
	obj := r.ObjectPath(repo.KindFile, e.ID)
	b, _ := os.ReadFile(obj)
	b[len(b)-1] ^= 1
	os.WriteFile(obj, b, 0o644)
	dest := filepath.Join(t.TempDir(), "co")
	_, err := checkout.Checkout(coCtx, r, id, dest, checkout.Options{UserMode: true, UncompressedCache: true})
	coWritable(t, dest)
	if ce := (*repo.CorruptObjectError)(nil); !errors.As(err, &ce) {
		t.Fatalf("checkout of a corrupt object: %v", err)
	}
	if _, err := os.Lstat(cacheEntry(t, r, id, "/a")); !os.IsNotExist(err) {
		t.Errorf("the corrupt content is in the cache (%v)", err)
	}
}

// TestUncompressedCacheOtherFilesystem: a DEST the cache cannot link into
// is checked out by decompressing, as without the cache.
func TestUncompressedCacheOtherFilesystem(t *testing.T) {
	r := coRepo(t, repo.ModeArchive)
	var a, b unix.Stat_t
	if unix.Stat("/dev/shm", &b) != nil || unix.Stat(r.Path(), &a) != nil || a.Dev == b.Dev {
		t.Skip("no /dev/shm on another filesystem than the test's temporary directory")
	}
	tree := testtree.Tree{"a": testtree.File("content a\n", 0o644)}
	id := coCommit(t, r, coMakeDir(t, tree))
	opts := checkout.Options{UserMode: true, UncompressedCache: true}
	coCheckout(t, r, id, "", opts) // fills the cache
	dir, err := os.MkdirTemp("/dev/shm", "otree-test-")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	st, dest := coCheckout(t, r, id, filepath.Join(dir, "co"), opts)
	if st.FromCache != 0 || st.Copied != 1 {
		t.Errorf("checkout to another filesystem: %+v", st)
	}
	if diff := cmp.Diff(coExpect(tree, repo.ModeArchive, true), testtree.Read(t, dest, testtree.ReadOptions{})); diff != "" {
		t.Errorf("checkout differs:\n%s", diff)
	}
}

// TestUncompressedCacheUnion: a union checkout over a checkout that linked
// from the cache leaves files that are already the cache's entry alone,
// as it leaves files that are already an object's, and leaves no
// temporary name behind.
func TestUncompressedCacheUnion(t *testing.T) {
	r := coRepo(t, repo.ModeArchive)
	tree := testtree.Tree{"a": testtree.File("content a\n", 0o644), "d": testtree.Dir(0o755), "d/b": testtree.File("content b\n", 0o644)}
	id := coCommit(t, r, coMakeDir(t, tree))
	opts := checkout.Options{UserMode: true, UncompressedCache: true}
	_, dest := coCheckout(t, r, id, "", opts)
	opts.Union = true
	coCheckout(t, r, id, dest, opts)
	if diff := cmp.Diff(coExpect(tree, repo.ModeArchive, true), testtree.Read(t, dest, testtree.ReadOptions{})); diff != "" {
		t.Errorf("union checkout over a cached one (-want +got):\n%s", diff)
	}
	for _, p := range []string{"a", "d/b"} {
		if !sameInode(t, filepath.Join(dest, p), cacheEntry(t, r, id, "/"+p)) {
			t.Errorf("%s is no longer the cache's entry", p)
		}
	}
	for _, d := range []string{dest, filepath.Join(dest, "d")} {
		if left, _ := filepath.Glob(filepath.Join(d, ".otree-*")); len(left) != 0 {
			t.Errorf("temporary names left behind: %v", left)
		}
	}
}

// TestLinkFailureFallsBackToCopy: a hardlink checkout whose links the
// kernel refuses (DEST through a bind mount of the repository's
// filesystem: same device, EXDEV) copies every file instead.
func TestLinkFailureFallsBackToCopy(t *testing.T) {
	r := coRepo(t, repo.ModeBareUser)
	tree := testtree.Tree{"a": testtree.File("content a\n", 0o644), "d": testtree.Dir(0o755), "d/b": testtree.File("content b\n", 0o755)}
	id := coCommit(t, r, coMakeDir(t, tree))
	mnt := t.TempDir()
	if err := unix.Mount(t.TempDir(), mnt, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount (CI runs as root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	st, dest := coCheckout(t, r, id, filepath.Join(mnt, "co"), checkout.Options{UserMode: true})
	if st.Hardlinked != 0 || st.Copied != 2 {
		t.Errorf("checkout through a bind mount: %+v; want both files copied", st)
	}
	if diff := cmp.Diff(coExpect(tree, repo.ModeBareUser, true), testtree.Read(t, dest, testtree.ReadOptions{})); diff != "" {
		t.Errorf("checkout through a bind mount (-want +got):\n%s", diff)
	}
}

// TestUncompressedCacheHeaderIndex: a checkout through the cache takes the
// mode and size of an indexed file from the file-header index, and reads
// the object only when it must decompress it. The first checkout indexes
// every regular file it decompresses (a header read without its content
// is not indexed); the next links from the cache without
// opening the objects, so an object whose bytes are damaged since (which
// fsck finds) does not stop it, and without the index it does. An object
// that is gone is still reported, naming it and the path.
func TestUncompressedCacheHeaderIndex(t *testing.T) {
	r := coRepo(t, repo.ModeArchive)
	tree := coTree()
	id := coCommit(t, r, coMakeDir(t, tree))
	want := coExpect(tree, repo.ModeArchive, true)
	opts := checkout.Options{UserMode: true, UncompressedCache: true}

	_, plain := coCheckout(t, r, id, "", checkout.Options{UserMode: true})
	for p, h := range hiIndex(t, r, id, tree) {
		if h != nil {
			t.Errorf("a checkout without the cache indexed %s", p)
		}
	}
	// A header read but not known good (its content not decompressed, no
	// cache entry linked: UnionAdd over files already there) is not
	// indexed.
	coCheckout(t, r, id, plain, checkout.Options{UserMode: true, UncompressedCache: true, UnionAdd: true})
	for p, h := range hiIndex(t, r, id, tree) {
		if h != nil {
			t.Errorf("a UnionAdd checkout that read %s's header but not its content indexed it", p)
		}
	}
	coCheckout(t, r, id, "", opts)
	for p, h := range hiIndex(t, r, id, tree) {
		e := tree[p]
		if h == nil {
			t.Errorf("the checkout filling the cache did not index %s", p)
		} else if h.Mode&0o777 != uint32(e.Mode.Perm()) || h.Size != uint64(len(e.Content)) {
			t.Errorf("%s indexed as mode %o size %d; the tree has %v, %d bytes", p, h.Mode, h.Size, e.Mode, len(e.Content))
		}
	}

	e, err := r.Lookup(id, "/big")
	if err != nil {
		t.Fatal(err)
	}
	obj := r.ObjectPath(repo.KindFile, e.ID)
	sound, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(obj, 10); err != nil {
		t.Fatal(err)
	}
	st, dest := coCheckout(t, r, id, "", opts)
	if diff := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); diff != "" {
		t.Errorf("checkout from the cache differs from the commit:\n%s", diff)
	}
	if n := len(cachedFiles(tree)); st.FromCache != int64(n) {
		t.Errorf("%d files from the cache, want %d", st.FromCache, n)
	}
	if !sameInode(t, filepath.Join(dest, "big"), cacheEntry(t, r, id, "/big")) {
		t.Error("big, whose object is damaged, was not linked from the cache")
	}

	// Without the index the header is read, and the damage found.
	if err := os.RemoveAll(r.CacheDir()); err != nil {
		t.Fatal(err)
	}
	_, err = checkout.Checkout(coCtx, r, id, filepath.Join(t.TempDir(), "co"), opts)
	if ce := (*repo.CorruptObjectError)(nil); !errors.As(err, &ce) || ce.ID != e.ID {
		t.Errorf("without the index: %v; want object %s reported corrupt", err, e.ID)
	}

	// Mended, and indexed again by a checkout that reads every header;
	// then the object goes.
	if err := os.WriteFile(obj, sound, 0o644); err != nil {
		t.Fatal(err)
	}
	coCheckout(t, r, id, "", opts)
	if hiIndex(t, r, id, tree)["big"] == nil {
		t.Fatal("big was not indexed again")
	}
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	_, err = checkout.Checkout(coCtx, r, id, filepath.Join(t.TempDir(), "co"), opts)
	if me := (*repo.ObjectMissingError)(nil); !errors.As(err, &me) || me.ID != e.ID || !strings.Contains(err.Error(), "/big") {
		t.Errorf("with object %s gone: %v; want it reported missing, naming /big", e.ID, err)
	}
}

// TestUncompressedCacheWhoMayUse: the cache holds only verified content of
// the repository's owner. A repository that does not verify what it reads
// neither fills nor uses it; nor does a checkout by anyone but the owner of
// tmp/; and an entry of another group is left alone, neither linked nor
// removed.
func TestUncompressedCacheWhoMayUse(t *testing.T) {
	r := coRepo(t, repo.ModeArchive)
	tree := testtree.Tree{"a": testtree.File("content a\n", 0o644), "b": testtree.File("content b\n", 0o644)}
	id := coCommit(t, r, coMakeDir(t, tree))
	opts := checkout.Options{UserMode: true, UncompressedCache: true}
	missing := func(what string, paths ...string) {
		t.Helper()
		for _, p := range paths {
			if _, err := os.Lstat(cacheEntry(t, r, id, p)); !os.IsNotExist(err) {
				t.Errorf("%s: %s is in the cache (%v)", what, p, err)
			}
		}
	}

	r.SetVerify(false)
	st, _ := coCheckout(t, r, id, "", opts)
	r.SetVerify(true)
	missing("a repository that does not verify", "/a", "/b")
	if st.FromCache != 0 {
		t.Errorf("a repository that does not verify linked %d files from the cache", st.FromCache)
	}
	if !coRoot() {
		return
	}

	tmp := r.Path("tmp")
	if err := os.Chown(tmp, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	st, _ = coCheckout(t, r, id, "", opts)
	if err := os.Chown(tmp, 0, 0); err != nil {
		t.Fatal(err)
	}
	missing("a checkout by another user than the repository's", "/a", "/b")
	if st.FromCache != 0 {
		t.Errorf("a checkout by another user linked %d files from the cache", st.FromCache)
	}

	coCheckout(t, r, id, "", opts)
	other := cacheEntry(t, r, id, "/a")
	if err := os.Chown(other, 0, 65534); err != nil {
		t.Fatal(err)
	}
	st, dest := coCheckout(t, r, id, "", opts)
	if st.FromCache != 1 || sameInode(t, filepath.Join(dest, "a"), other) || !sameInode(t, filepath.Join(dest, "b"), cacheEntry(t, r, id, "/b")) {
		t.Errorf("with a's entry of another group: %+v; want only b linked from the cache", st)
	}
	if fi, err := os.Lstat(other); err != nil || fi.Sys().(*syscall.Stat_t).Gid != 65534 {
		t.Errorf("the entry of another group was not left alone: %v", err)
	}
}
