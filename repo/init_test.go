package repo_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/fsattr/fsattrtest"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// names lists a directory's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// Init refuses a directory that holds anything but a repository's
// beginnings, names it and what it holds, and leaves it as it was: a
// user's file named like a lock file keeps its content.
func TestInitRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"important.txt": "user data", "lock": "a user's file"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := names(t, dir)
	r, err := repo.Init(dir, repo.InitOptions{})
	if err == nil {
		r.Close()
		t.Fatal("Init of a directory holding files succeeded")
	}
	if !errors.Is(err, repo.ErrNotEmpty) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "important.txt") {
		t.Errorf("Init of a non-empty directory: %v; want ErrNotEmpty naming %s and its files", err, dir)
	}
	if after := names(t, dir); !slices.Equal(after, before) {
		t.Errorf("a refused Init changed the directory: %v, was %v", after, before)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "lock")); string(got) != "a user's file" {
		t.Errorf("a refused Init changed the user's file lock to %q", got)
	}
}

// Init accepts a directory holding only a lost+found (a filesystem's
// root), and carries on from what an interrupted Init left.
func TestInitAcceptsLostFoundAndInterruptedInit(t *testing.T) {
	fsRoot := t.TempDir()
	if err := os.Mkdir(filepath.Join(fsRoot, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(fsRoot, repo.InitOptions{})
	if err != nil {
		t.Fatalf("Init of a directory holding only lost+found: %v", err)
	}
	r.Close()

	half := t.TempDir()
	for _, d := range []string{"objects/00", "refs/heads", "tmp", "state"} {
		if err := os.MkdirAll(filepath.Join(half, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The config's temporary file, as written now and by older versions.
	for _, f := range []string{"lock", "lock.intent", ".tmp-123", ".config.tmp-123"} {
		if err := os.WriteFile(filepath.Join(half, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err = repo.Init(half, repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatalf("Init where an interrupted Init left its directories: %v", err)
	}
	defer r.Close()
	if r.Mode() != repo.ModeArchive {
		t.Errorf("mode %s, want archive", r.Mode())
	}
}

// Open's errors tell a missing path and a directory that is no
// repository from other failures.
func TestOpenNotRepository(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := repo.Open(missing)
	if !errors.Is(err, repo.ErrNotRepository) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open of a missing path: %v; want ErrNotRepository and fs.ErrNotExist, naming it", err)
	}
	empty := t.TempDir()
	_, err = repo.Open(empty)
	if !errors.Is(err, repo.ErrNotRepository) || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), empty) {
		t.Errorf("Open of a directory that is no repository: %v; want ErrNotRepository naming it", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = repo.Open(file); !errors.Is(err, repo.ErrNotRepository) {
		t.Errorf("Open of a file: %v; want ErrNotRepository", err)
	}
}

// A Repo used after Close fails with ErrClosed, never through a
// descriptor number reused since, and closing again does nothing.
func TestUseAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "repo")
	r, err := repo.Init(path, repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	src := integritySource(t, integrityTree)
	id := integrityCommit(t, r, "main", src, 1700000000)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// Directories opened now take the numbers Close freed.
	victim := t.TempDir()
	for i := 0; i < 4; i++ {
		f, err := os.Open(victim)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	checks := map[string]func() error{
		"Begin": func() error {
			txn, err := r.Begin(context.Background(), repo.TxnOptions{})
			if err == nil {
				txn.Abort()
			}
			return err
		},
		"commit": func() error {
			_, err := commit.Commit(context.Background(), r, commit.Options{Branch: "main", NoSync: true,
				Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
			return err
		},
		"ReadRaw":    func() error { _, err := r.ReadRaw(repo.KindCommit, id); return err },
		"ReadCommit": func() error { _, err := r.ReadCommit(id); return err },
		"HasObject":  func() error { _, err := r.HasObject(repo.KindCommit, id); return err },
		"ResolveRev": func() error { _, err := r.ResolveRev("main"); return err },
		"ReadRef":    func() error { _, err := r.ReadRef("main"); return err },
		"ListRefs":   func() error { _, err := r.ListRefs(""); return err },
		"LockRefs": func() error {
			lk, err := r.LockRefs(context.Background())
			lk.Unlock()
			return err
		},
		"Prune":               func() error { _, err := r.Prune(context.Background(), repo.PruneOptions{}); return err },
		"Fsck":                func() error { _, err := r.Fsck(context.Background(), repo.FsckOptions{}); return err },
		"ListCommits":         func() error { _, err := r.ListCommits(context.Background()); return err },
		"ListAliases":         func() error { _, err := r.ListAliases(""); return err },
		"BranchNames":         func() error { _, err := r.BranchNames("main"); return err },
		"CheckRefPlace":       func() error { return r.CheckRefPlace("other") },
		"MarkCommitPartial":   func() error { return r.MarkCommitPartial(id) },
		"UnmarkCommitPartial": func() error { return r.UnmarkCommitPartial(id) },
		"AddToHeaderIndex": func() error {
			return r.AddToHeaderIndex([]repo.IndexedHeader{repo.IndexedHeaderOf(repo.ID{1}, &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644})})
		},
	}
	for name, fn := range checks {
		if err := fn(); !errors.Is(err, repo.ErrClosed) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s after Close: %v; want ErrClosed naming %s", name, err, path)
		}
	}
	if got := names(t, victim); len(got) != 0 {
		t.Errorf("a closed Repo wrote into a directory holding its old descriptor numbers: %v", got)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A transaction open when its Repo is closed commits nothing (ErrClosed)
// and still lets go of its lock and staging directory.
func TestCloseWithTxnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "repo")
	r, err := repo.Init(path, repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	// One that does not sync first: the durable one then has to sync
	// what it published.
	fast, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fast.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o700}).Encode()); err != nil {
		t.Fatal(err)
	}
	if err := fast.Commit(); err != nil {
		t.Fatal(err)
	}
	txn, err := r.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := txn.Commit(); !errors.Is(err, repo.ErrClosed) {
		t.Errorf("Commit of a transaction whose Repo was closed: %v; want ErrClosed", err)
	}
	for _, n := range names(t, filepath.Join(path, "tmp")) {
		if strings.HasPrefix(n, "txn-") || strings.HasPrefix(n, "new-") {
			t.Errorf("staging left in tmp/: %s", n)
		}
	}
	r2, err := repo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if has, err := r2.HasObject(repo.KindDirMeta, meta); has || err != nil {
		t.Errorf("the closed Repo's transaction stored dirmeta %s: %v, %v", meta, has, err)
	}
	r2.SetLockTimeout(0)
	lk, err := r2.LockExclusive(context.Background())
	if err != nil {
		t.Fatalf("the transaction still holds the repository lock: %v", err)
	}
	lk.Unlock()
}

// A repository's first transaction marks tmp/ with ext4's top-directory
// flag, so that each transaction's staging directory (where its objects'
// inodes are made) starts in a block group of its own; a staging
// directory does not carry the flag itself, so the objects it stages stay
// together. A repository made without the flag gets it too.
func TestStagingSpread(t *testing.T) {
	dir := t.TempDir()
	fsattrtest.Require(t, dir, 'T')
	path := filepath.Join(dir, "r")
	r, err := repo.Init(path, repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	hasT := func(p string) bool { return fsattrtest.Has(t, p, 'T') }
	// As a repository made before the flag was set.
	fsattrtest.Unset(t, filepath.Join(path, "tmp"), 'T')
	if r, err = repo.Open(path); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if !hasT(filepath.Join(path, "tmp")) {
		t.Errorf("%s/tmp has no top-directory flag", path)
	}
	for _, d := range []string{"", "objects", "objects/00", "refs/heads", "state"} {
		if hasT(filepath.Join(path, d)) {
			t.Errorf("%s/%s has the top-directory flag", path, d)
		}
	}
	staging, err := filepath.Glob(filepath.Join(path, "tmp", "txn-*"))
	if err != nil || len(staging) != 1 {
		t.Fatalf("staging directories %v (%v), want one", staging, err)
	}
	if hasT(staging[0]) {
		t.Errorf("the staging directory %s has the top-directory flag", staging[0])
	}
}

// An empty path, a setting left unset, is refused by Init and Open, and
// Init writes nothing into the current directory, however full it is.
func TestEmptyPathRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "important.txt"), []byte("user data"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if r, err := repo.Init("", repo.InitOptions{}); err == nil {
		r.Close()
		t.Error(`Init("") succeeded`)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"important.txt"}) {
		t.Errorf(`Init("") wrote into the current directory: %v`, got)
	}
	if _, err := repo.Init(".", repo.InitOptions{}); !errors.Is(err, repo.ErrNotEmpty) {
		t.Errorf(`Init("."): %v; want ErrNotEmpty`, err)
	}
	r, err := repo.Init("repo", repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Chdir(filepath.Join(dir, "repo"))
	if r, err := repo.Open(""); !errors.Is(err, repo.ErrNotRepository) {
		if err == nil {
			r.Close()
		}
		t.Errorf(`Open("") in a repository: %v; want ErrNotRepository`, err)
	}
}

// A bare-user repository cannot live on a filesystem without user xattrs
// (ramfs here): Init refuses it, as OSTree's does, naming the xattr and
// the modes that need none, rather than make a repository no commit can
// be written to; a bare-user-only one is then made in the same directory.
func TestInitBareUserNeedsUserXattrs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a ramfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("none", dir, "ramfs", 0, ""); err != nil {
		t.Skipf("cannot mount a ramfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "repo")
	_, err := repo.Init(path, repo.InitOptions{Mode: repo.ModeBareUser})
	if !errors.Is(err, unix.ENOTSUP) || !strings.Contains(err.Error(), repo.UserMetaXattr) || !strings.Contains(err.Error(), "bare-user-only") || !strings.Contains(err.Error(), path) {
		t.Fatalf("bare-user init on a ramfs: %v, want ENOTSUP naming %s, bare-user-only and the path", err, repo.UserMetaXattr)
	}
	if _, err := os.Stat(filepath.Join(path, "config")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused init wrote a config: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused init left the directory it made: %v", err)
	}
	// With the directories above it: all it made go.
	deep := filepath.Join(dir, "a", "b", "repo")
	if _, err := repo.Init(deep, repo.InitOptions{Mode: repo.ModeBareUser}); !errors.Is(err, unix.ENOTSUP) {
		t.Fatalf("bare-user init of %s on a ramfs: %v, want ENOTSUP", deep, err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("the refused init of %s left %v in %s", deep, got, dir)
	}
	// Into a directory that was there, it leaves that directory as it was.
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(path, repo.InitOptions{Mode: repo.ModeBareUser}); !errors.Is(err, unix.ENOTSUP) {
		t.Fatalf("bare-user init into an existing directory on a ramfs: %v, want ENOTSUP", err)
	}
	if got := names(t, path); len(got) != 0 {
		t.Errorf("the refused init left %v in the directory", got)
	}
	r, err := repo.Init(path, repo.InitOptions{Mode: repo.ModeBareUserOnly})
	if err != nil {
		t.Fatalf("bare-user-only init after the refused one: %v", err)
	}
	r.Close()
}

// A bare-user Init that cannot make its probe file (a read-only mount
// here; a directory of root's, for a user) fails with that error, naming
// the directory, not with the refusal of user xattrs and its advice to
// pick another mode, which would fail the same way.
func TestInitBareUserProbeUnwritable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("none", dir, "tmpfs", unix.MS_RDONLY, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	_, err := repo.Init(dir, repo.InitOptions{Mode: repo.ModeBareUser})
	if !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("bare-user init on a read-only tmpfs: %v, want EROFS naming %s", err, dir)
	}
	if strings.Contains(err.Error(), "xattr") || strings.Contains(err.Error(), "bare-user-only") {
		t.Errorf("bare-user init on a read-only tmpfs blames user xattrs: %v", err)
	}
}
