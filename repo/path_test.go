package repo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/quote"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// lookupFixture stores the tree
//
//	/a         file "a"
//	/d/        dir 0700
//	/d/f       file "f"
//	/d/l       symlink -> f
//
// and a commit of it, built directly with a transaction.
type lookupFixture struct {
	r                  *repo.Repo
	commit             repo.ID
	rootTree, rootMeta repo.ID
	dTree, dMeta       repo.ID
	aID, fID, lID      repo.ID
}

func newLookupFixture(t *testing.T) *lookupFixture {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	fx := &lookupFixture{r: r}
	file := func(h repo.FileHeader, content string) repo.ID {
		id := repo.FileID(&h, []byte(content))
		if _, err := txn.WriteFile(&h, id, []byte(content)); err != nil {
			t.Fatal(err)
		}
		return id
	}
	meta := func(s []byte) repo.ID {
		id, err := txn.WriteMeta(repo.KindDirMeta, s)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	tree := func(dt *repo.DirTree) repo.ID {
		id, err := txn.WriteMeta(repo.KindDirTree, dt.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	fx.aID = file(repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 1}, "a")
	fx.fID = file(repo.FileHeader{Type: repo.TypeRegular, Mode: 0o600, Size: 1}, "f")
	fx.lID = file(repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "f"}, "")
	fx.dMeta = meta((&repo.DirMeta{Mode: 0o700}).Encode())
	fx.dTree = tree(&repo.DirTree{Files: []repo.FileEntry{{Name: "f", ID: fx.fID}, {Name: "l", ID: fx.lID}}})
	fx.rootMeta = meta((&repo.DirMeta{Mode: 0o755}).Encode())
	fx.rootTree = tree(&repo.DirTree{
		Files: []repo.FileEntry{{Name: "a", ID: fx.aID}},
		Dirs:  []repo.DirEntry{{Name: "d", TreeID: fx.dTree, MetaID: fx.dMeta}},
	})
	c := repo.Commit{Timestamp: 1, Subject: "s", RootTree: fx.rootTree, RootMeta: fx.rootMeta}
	if fx.commit, err = txn.WriteMeta(repo.KindCommit, c.Encode()); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return fx
}

func TestLookup(t *testing.T) {
	fx := newLookupFixture(t)
	for _, tc := range []struct {
		path string
		want repo.Entry
	}{
		{"/", repo.Entry{Path: "/", Kind: repo.KindDirTree, ID: fx.rootTree, MetaID: fx.rootMeta}},
		{"", repo.Entry{Path: "/", Kind: repo.KindDirTree, ID: fx.rootTree, MetaID: fx.rootMeta}},
		{"/a", repo.Entry{Path: "/a", Kind: repo.KindFile, ID: fx.aID}},
		{"a", repo.Entry{Path: "/a", Kind: repo.KindFile, ID: fx.aID}},
		{"/d", repo.Entry{Path: "/d", Kind: repo.KindDirTree, ID: fx.dTree, MetaID: fx.dMeta}},
		{"d/", repo.Entry{Path: "/d", Kind: repo.KindDirTree, ID: fx.dTree, MetaID: fx.dMeta}},
		{"//d/./f", repo.Entry{Path: "/d/f", Kind: repo.KindFile, ID: fx.fID}},
		{"/d/l", repo.Entry{Path: "/d/l", Kind: repo.KindFile, ID: fx.lID}}, // not followed
	} {
		got, err := fx.r.Lookup(fx.commit, tc.path)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tc.path, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Lookup(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
		if got.IsDir() != (tc.want.Kind == repo.KindDirTree) {
			t.Errorf("Lookup(%q).IsDir() = %v", tc.path, got.IsDir())
		}
	}
}

func TestLookupErrors(t *testing.T) {
	fx := newLookupFixture(t)
	for _, tc := range []struct {
		path    string
		is      error
		message string
	}{
		{"/nope", repo.ErrNotFound, "/nope: not found in commit " + fx.commit.String()},
		{"/nope/x", repo.ErrNotFound, "/nope/x: /nope not found in commit " + fx.commit.String()},
		{"/d/x", repo.ErrNotFound, "/d/x: not found in commit " + fx.commit.String()},
		{"/a/x", repo.ErrNotDir, "/a/x: /a is not a directory in commit " + fx.commit.String()},
		{"/a/", repo.ErrNotDir, "/a: not a directory in commit " + fx.commit.String()},
		{"/d/l/", repo.ErrNotDir, "/d/l: not a directory in commit " + fx.commit.String()},
	} {
		_, err := fx.r.Lookup(fx.commit, tc.path)
		var pe *repo.PathError
		if !errors.As(err, &pe) || !errors.Is(err, tc.is) {
			t.Errorf("Lookup(%q) error = %v, want a *PathError matching %v", tc.path, err, tc.is)
			continue
		}
		if err.Error() != tc.message {
			t.Errorf("Lookup(%q) error = %q, want %q", tc.path, err, tc.message)
		}
	}

	// ".." is refused wherever it is: as written, "/l/../a" would give
	// "/a" whatever the symlink "/l" points at.
	for _, p := range []string{"/d/../a", "/../../a", "..", "d/..", "/d/l/../f", "/d/../"} {
		_, err := fx.r.Lookup(fx.commit, p)
		if !errors.Is(err, repo.ErrDotDot) || !strings.Contains(err.Error(), strconv.Quote(p)) {
			t.Errorf("Lookup(%q) error = %v, want ErrDotDot naming the path", p, err)
		}
		if _, err := fx.r.LookupTree(fx.rootTree, fx.rootMeta, p); !errors.Is(err, repo.ErrDotDot) {
			t.Errorf("LookupTree(%q) error = %v, want ErrDotDot", p, err)
		}
	}

	// A missing commit is reported as the object, not as a path.
	var missing repo.ID
	missing[0] = 1
	_, err := fx.r.Lookup(missing, "/a")
	var me *repo.ObjectMissingError
	if !errors.As(err, &me) || me.ID != missing {
		t.Errorf("Lookup in a missing commit: %v, want *ObjectMissingError", err)
	}
}

func TestLookupTree(t *testing.T) {
	fx := newLookupFixture(t)
	got, err := fx.r.LookupTree(fx.dTree, fx.dMeta, "f")
	if err != nil {
		t.Fatal(err)
	}
	if want := (repo.Entry{Path: "/f", Kind: repo.KindFile, ID: fx.fID}); got != want {
		t.Errorf("LookupTree = %+v, want %+v", got, want)
	}
	_, err = fx.r.LookupTree(fx.dTree, fx.dMeta, "a")
	var pe *repo.PathError
	if !errors.As(err, &pe) || !pe.Commit.IsZero() || err.Error() != "/a: not found" {
		t.Errorf("LookupTree(missing) = %v", err)
	}
	// A name from a tree may hold a newline: the error is still one line.
	_, err = fx.r.LookupTree(fx.dTree, fx.dMeta, "x\ny/z")
	if err == nil || err.Error() != `"/x\ny/z": "/x\ny" not found` {
		t.Errorf("LookupTree(newline) = %v, want the path quoted", err)
	}
	_, err = fx.r.LookupTree(fx.dTree, fx.dMeta, "f/\xff")
	if err == nil || err.Error() != `"/f/\xff": /f is not a directory` {
		t.Errorf("LookupTree(under a file) = %v, want the paths quoted", err)
	}
}

func TestTreePath(t *testing.T) {
	for p, want := range map[string]string{
		"": "/", "/": "/", "usr//bin/": "/usr/bin", "/usr/./bin": "/usr/bin",
		"..a": "/..a", "a..": "/a..", "/.../x": "/.../x", "a/.b..": "/a/.b..",
	} {
		if got, err := repo.TreePath(p); err != nil || got != want {
			t.Errorf("TreePath(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
	for _, p := range []string{"..", "../a", "/a/..", "a/../b", "/a/../../b", "a//..//b", "/../"} {
		if got, err := repo.TreePath(p); !errors.Is(err, repo.ErrDotDot) {
			t.Errorf("TreePath(%q) = %q, %v; want ErrDotDot", p, got, err)
		}
	}
}

// resolveFixture is a committed tree of symlinks of every kind, and a
// check that Resolve finds in the commit what the kernel finds in the
// committed directory used as the root (openat2 with RESOLVE_IN_ROOT):
// the same path, or the same error. check reports false, without
// failing, for a path the kernel refuses for reasons of its own (a NUL
// byte, a name too long).
func resolveFixture(t testing.TB) (check func(t testing.TB, p string) bool) {
	src := t.TempDir()
	tree := testtree.Tree{
		"usr/lib/os-release": testtree.File("ID=x\n", 0o644),
		"usr/lib/sub/f":      testtree.File("f", 0o644),
		"usr/bin/tool":       testtree.File("t", 0o755),
		"lib":                testtree.Symlink("usr/lib"),
		"bin":                testtree.Symlink("/usr/bin"),
		"etc/os-release":     testtree.Symlink("../usr/lib/os-release"),
		"etc/deep":           testtree.Symlink("../lib/sub"),
		"etc/chain":          testtree.Symlink("os-release"),
		"etc/up":             testtree.Symlink("../../../../usr"),
		"etc/dangling":       testtree.Symlink("nowhere"),
		"etc/loop1":          testtree.Symlink("loop2"),
		"etc/loop2":          testtree.Symlink("loop1"),
		"etc/self":           testtree.Symlink("."),
		"etc/file":           testtree.File("x", 0o644),
		"etc/slash":          testtree.Symlink("file/"),
		"etc/parent":         testtree.Symlink(".."),
		"etc/absup":          testtree.Symlink("/usr/../etc/file"),
	}
	// chain/l0 -> l1 -> ... -> l41 -> /etc/file: 41 links from l0, 40 from l1.
	for i := range 42 {
		target := fmt.Sprintf("l%d", i+1)
		if i == 41 {
			target = "/etc/file"
		}
		tree[fmt.Sprintf("chain/l%d", i)] = testtree.Symlink(target)
	}
	testtree.Create(t, src, tree)
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	res, err := commit.Commit(context.Background(), r, commit.Options{Orphan: true, NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err != nil {
		t.Fatal(err)
	}
	root, err := unix.Open(src, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(root) })
	kernel := func(p string) (string, error) {
		fd, err := unix.Openat2(root, p, &unix.OpenHow{Flags: unix.O_PATH, Resolve: unix.RESOLVE_IN_ROOT})
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		got, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			return "", err
		}
		if got == src {
			return "/", nil
		}
		return strings.TrimPrefix(got, src), nil
	}
	return func(t testing.TB, p string) bool {
		t.Helper()
		want, werr := kernel(p)
		got, err := r.Resolve(res.Commit, p)
		switch {
		case werr != nil:
			var is error
			switch {
			case errors.Is(werr, unix.ENOENT):
				is = repo.ErrNotFound
			case errors.Is(werr, unix.ENOTDIR):
				is = repo.ErrNotDir
			case errors.Is(werr, unix.ELOOP):
				is = repo.ErrSymlinkLoop
			default:
				return false // EINVAL (NUL), ENAMETOOLONG: refused before any lookup
			}
			var pe *repo.PathError
			if !errors.Is(err, is) || !errors.As(err, &pe) || pe.Commit != res.Commit || !strings.Contains(err.Error(), quote.Path(p)) {
				t.Errorf("Resolve(%q) = %+v, %v; the kernel says %v", p, got, err, werr)
			}
		case err != nil:
			t.Errorf("Resolve(%q): %v; the kernel found %s", p, err, want)
		case got.Path != want:
			t.Errorf("Resolve(%q) led to %s, the kernel to %s", p, got.Path, want)
		default:
			if e := mustLookupEntry(t, r, res.Commit, want); e != got {
				t.Errorf("Resolve(%q) = %+v, Lookup(%q) = %+v", p, got, want, e)
			}
		}
		return true
	}
}

// resolvePaths are links on the way, at the end, absolute, relative,
// chained, looping, and ".." after a link.
var resolvePaths = []string{
	"/", "usr", "/usr/lib/", "/lib", "/lib/", "/lib/os-release", "/etc/os-release", "etc/chain",
	"/bin/tool", "/etc/deep/f", "/etc/deep/../os-release", "/lib/../bin/tool", "/etc/up/bin",
	"/../../etc/os-release", "/etc/self/self/file", "/lib/sub/../../../usr",
	"/etc/dangling", "/etc/loop1", "/etc/loop2/x", "/lib/nope", "/etc/file/x", "/etc/file/",
	"/etc/os-release/", "/lib/os-release/x", "/etc/deep/", "/nope/..",
	"/etc/slash", "/etc/parent/usr", "/etc/parent/..", "/etc/absup", "/etc/file/.", "/etc/file/..",
	"/chain/l0", "/chain/l1", "/chain/l1/",
}

// Resolve finds what the kernel finds (resolveFixture) for resolvePaths.
func TestResolveMatchesKernel(t *testing.T) {
	check := resolveFixture(t)
	for _, p := range resolvePaths {
		if !check(t, p) {
			t.Errorf("the kernel refused %q", p)
		}
	}
}

// FuzzResolveMatchesKernel: Resolve finds what the kernel finds
// (resolveFixture) for any path but "", which names the root in a tree
// (TreePath) and nothing to the kernel.
func FuzzResolveMatchesKernel(f *testing.F) {
	for _, p := range resolvePaths {
		f.Add(p)
	}
	check := resolveFixture(f)
	f.Fuzz(func(t *testing.T, p string) {
		if p == "" || !check(t, p) {
			t.Skip("the kernel refuses the path itself")
		}
	})
}

func mustLookupEntry(t testing.TB, r *repo.Repo, c repo.ID, p string) repo.Entry {
	t.Helper()
	e, err := r.Lookup(c, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Read /etc/os-release from a commit of a merged-/usr tree, where it is a
// symlink to ../usr/lib/os-release and /lib a symlink to usr/lib: Resolve
// follows both, as the kernel would in a checkout; Lookup follows neither.
func ExampleRepo_Resolve() {
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "tree")
	os.MkdirAll(filepath.Join(src, "usr/lib"), 0o755)
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "usr/lib/os-release"), []byte("ID=demo\n"), 0o644)
	os.Symlink("../usr/lib/os-release", filepath.Join(src, "etc/os-release"))
	os.Symlink("usr/lib", filepath.Join(src, "lib"))

	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	res, err := commit.Commit(context.Background(), r, commit.Options{Branch: "main", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range []string{"/etc/os-release", "/lib/os-release"} {
		e, err := r.Resolve(res.Commit, p)
		if err != nil {
			log.Fatal(err)
		}
		_, content, err := r.OpenFile(e.ID)
		if err != nil {
			log.Fatal(err)
		}
		b, err := io.ReadAll(content)
		content.Close()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s -> %s: %s", p, e.Path, b)
	}
	_, err = r.Lookup(res.Commit, "/lib/os-release")
	fmt.Println("Lookup:", errors.Is(err, repo.ErrNotDir))
	// Output:
	// /etc/os-release -> /usr/lib/os-release: ID=demo
	// /lib/os-release -> /usr/lib/os-release: ID=demo
	// Lookup: true
}
