package commit_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/mountinfo"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// A skip-list path that no source has fails the commit, as in OSTree, so a
// misspelt line cannot let through what it meant to keep out; a path
// below another skipped one is not missing. Every kind of source counts.
func TestSkipListPathsMustExist(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"usr/share/doc/a": testtree.File("a", 0o644), "etc/conf": testtree.File("c", 0o644)})
	commitDir(t, r, "main", src)
	tarFile := writeTar(t, []*tar.Header{{Name: "opt/x", Typeflag: tar.TypeReg, Mode: 0o644}}, map[string]string{"opt/x": "x"})
	for _, c := range []struct {
		name    string
		sources []commit.Source
		skip    []string
		missing string // "" when the commit must succeed
	}{
		{"dir", []commit.Source{{Kind: commit.SourceDir, Path: src}}, []string{"/usr/share/doc", "/usr/share/doc/a"}, ""},
		{"dir, misspelt", []commit.Source{{Kind: commit.SourceDir, Path: src}}, []string{"/usr/share/docs"}, "/usr/share/docs"},
		{"ref", []commit.Source{{Kind: commit.SourceRef, Path: "main"}}, []string{"/etc/conf"}, ""},
		{"ref, misspelt", []commit.Source{{Kind: commit.SourceRef, Path: "main"}}, []string{"/etc/conff"}, "/etc/conff"},
		{"tar", []commit.Source{{Kind: commit.SourceTar, Path: tarFile}}, []string{"/opt/x"}, ""},
		{"tar, misspelt", []commit.Source{{Kind: commit.SourceTar, Path: tarFile}}, []string{"/opt/y"}, "/opt/y"},
		{"two sources", []commit.Source{{Kind: commit.SourceDir, Path: src}, {Kind: commit.SourceTar, Path: tarFile}}, []string{"/opt/x", "/etc"}, ""},
	} {
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: c.sources, SkipList: c.skip})
		switch {
		case c.missing == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.missing == "":
			for _, p := range c.skip {
				if _, err := r.Lookup(res.Commit, p); err == nil {
					t.Errorf("%s: skipped %s is in the tree", c.name, p)
				}
			}
		case err == nil || !strings.Contains(err.Error(), c.missing) || !strings.Contains(err.Error(), "skip list"):
			t.Errorf("%s: got %v, want an error naming %s", c.name, err, c.missing)
		}
	}
	if _, err := commit.Commit(ctx, r, commit.Options{Branch: "other", Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}},
		SkipList: []string{"/nope"}}); err == nil {
		t.Fatal("missing skip path accepted")
	}
	if _, err := r.ReadRef("other"); err == nil {
		t.Error("a refused commit created its branch")
	}
}

// A base (OSTree's --base) is taken as stored: the options and the skip
// list apply to the sources laid over it, not to it.
func TestBaseSource(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	base := makeTree(t, testtree.Tree{"old/tool": testtree.File("t", 0o775), "old/doc": testtree.File("d", 0o644)})
	commitDir(t, r, "base", base)
	over := makeTree(t, testtree.Tree{"new/tool": testtree.File("n", 0o775), "new/doc": testtree.File("d2", 0o644)})
	res := commitDir(t, r, "main", over, func(o *commit.Options) {
		o.Sources = []commit.Source{{Kind: commit.SourceBase, Path: "base"}, {Kind: commit.SourceDir, Path: over}}
		o.CanonicalPermissions, o.SkipList = true, []string{"/new/doc"}
	})
	want := testtree.Tree{
		"old": testtree.Dir(0o755), "old/tool": testtree.File("t", 0o775), "old/doc": testtree.File("d", 0o644),
		"new": testtree.Dir(0o755), "new/tool": testtree.File("n", 0o755),
	}
	if d := cmp.Diff(want, readCommit(t, r, res.Commit, false)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// A skip path only the base has is missing, as in OSTree.
	_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", SkipList: []string{"/old/doc"},
		Sources: []commit.Source{{Kind: commit.SourceBase, Path: "base"}, {Kind: commit.SourceDir, Path: over}}})
	if err == nil || !strings.Contains(err.Error(), "/old/doc") {
		t.Errorf("skip path only in the base: got %v, want an error naming it", err)
	}
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceBase, Path: "nosuch"}}})
	if err == nil || !strings.Contains(err.Error(), "base nosuch") {
		t.Errorf("unknown base: got %v", err)
	}
}

func TestParsePathnameFilter(t *testing.T) {
	for _, c := range []struct{ arg, name, want string }{
		{`b,Q`, "a/b/bb", "a/Q/QQ"},
		{`^a/(b+),\1X`, "a/bb/f", "bbX/f"},
		{`^(?P<top>[^/]+)/,\g<top>-\g<1>/`, "usr/lib/x", "usr-usr/lib/x"},
		{`^,$HOME\\`, "x", `$HOME\x`},
		{`x{1,2},y`, "ax{1", "a2},y"}, // split at the first comma: the expression is "x{1", a literal
		// As in GLib, two digits name one group (group 10 is empty
		// here), a third that is not octal, or 8 or 9, is a digit.
		{`^(a)/,\10/`, "a/b", "/b"},
		{`^(a)/,\128/`, "a/b", "8/b"},
		{`^(a)/,\189/`, "a/b", "9/b"},
		{`^(a)/,\1x\0/`, "a/b", "axa//b"},
	} {
		f, err := commit.ParsePathnameFilter(c.arg)
		if err != nil {
			t.Errorf("%s: %v", c.arg, err)
			continue
		}
		if got := f.Regexp.ReplaceAllString(c.name, f.Template); got != c.want {
			t.Errorf("%s on %q: got %q, want %q", c.arg, c.name, got, c.want)
		}
	}
	for _, bad := range []string{"nocomma", "(,x", `a,\q`, `a,\`, `a,\g<x`, `(a),\123`, `(a),\01`, `(a),\0` + "9"} {
		if _, err := commit.ParsePathnameFilter(bad); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("%q: %v; want it refused, naming it", bad, err)
		}
	}
}

// Renamed tar entries land where the filter puts them, hardlink targets
// too, and a rename that leaves the tree is refused, naming the result.
func TestTarPathnameFilter(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	tarFile := writeTar(t, []*tar.Header{
		{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a/bb", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "a/b/h", Typeflag: tar.TypeReg, Mode: 0o600},
		{Name: "a/b/f", Typeflag: tar.TypeLink, Linkname: "a/b/h"},
	}, map[string]string{"a/bb": "g", "a/b/h": "f"})
	filter, err := commit.ParsePathnameFilter("^a/(b+),\\1X")
	if err != nil {
		t.Fatal(err)
	}
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", TarPathnameFilter: filter,
		Sources: []commit.Source{{Kind: commit.SourceTar, Path: tarFile}}})
	if err != nil {
		t.Fatal(err)
	}
	want := testtree.Tree{
		"a": testtree.Dir(0o755), "bbX": testtree.File("g", 0o644), "bX": testtree.Dir(0o755),
		"bX/h": testtree.File("f", 0o600), "bX/f": testtree.File("f", 0o600),
	}
	if d := cmp.Diff(want, readCommit(t, r, res.Commit, false)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	evil, _ := commit.ParsePathnameFilter("^a,../evil")
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", TarPathnameFilter: evil,
		Sources: []commit.Source{{Kind: commit.SourceTar, Path: tarFile}}})
	if err == nil || !strings.Contains(err.Error(), `renamed to "../evil`) {
		t.Errorf("rename out of the tree: got %v", err)
	}

	// "tar -C DIR -cf x.tar ." names every entry "./...": the filter sees
	// names without that prefix, as in OSTree, hardlink targets too.
	dotTar := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/bin/x", Typeflag: tar.TypeReg, Mode: 0o755},
		{Name: "./usr/bin/y", Typeflag: tar.TypeLink, Linkname: "./usr/bin/x"},
		{Name: "./etc/conf", Typeflag: tar.TypeReg, Mode: 0o644},
	}, map[string]string{"./usr/bin/x": "b", "./etc/conf": "e"})
	for _, c := range []struct {
		filter string
		want   testtree.Tree
	}{
		{"^usr/,opt/", testtree.Tree{"opt": testtree.Dir(0o755), "opt/bin": testtree.Dir(0o755),
			"opt/bin/x": testtree.File("b", 0o755), "opt/bin/y": testtree.File("b", 0o755),
			"etc": testtree.Dir(0o755), "etc/conf": testtree.File("e", 0o644)}},
		{`^\./usr/,./opt/`, testtree.Tree{"usr": testtree.Dir(0o755), "usr/bin": testtree.Dir(0o755),
			"usr/bin/x": testtree.File("b", 0o755), "usr/bin/y": testtree.File("b", 0o755),
			"etc": testtree.Dir(0o755), "etc/conf": testtree.File("e", 0o644)}},
	} {
		f, err := commit.ParsePathnameFilter(c.filter)
		if err != nil {
			t.Fatal(err)
		}
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "dot", TarPathnameFilter: f,
			Sources: []commit.Source{{Kind: commit.SourceTar, Path: dotTar}}})
		if err != nil {
			t.Fatalf("%s: %v", c.filter, err)
		}
		if d := cmp.Diff(c.want, readCommit(t, r, res.Commit, false)); d != "" {
			t.Errorf("%s: (-want +got):\n%s", c.filter, d)
		}
	}
}

// Each skip-list path is taken exactly as written, as OSTree does: "/a "
// leaves out "a " and keeps "a", a carriage return is part of the name;
// a path that could never match (relative, a trailing slash, "/") is
// refused rather than tidied into another path.
func TestSkipListTakenVerbatim(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"a": testtree.File("keep", 0o644), "a ": testtree.File("drop", 0o644),
		"b\r": testtree.File("cr", 0o644), "d/f": testtree.File("f", 0o644)})
	all := readCommit(t, r, commitDir(t, r, "all", src).Commit, false)
	for _, skip := range []string{"/a ", "/b\r", "/d/f", "/d"} {
		res := commitDir(t, r, "main", src, func(o *commit.Options) { o.SkipList = []string{skip} })
		want := testtree.Tree{}
		for p, e := range all {
			if "/"+p != skip && !strings.HasPrefix("/"+p, skip+"/") {
				want[p] = e
			}
		}
		if d := cmp.Diff(want, readCommit(t, r, res.Commit, false)); d != "" {
			t.Errorf("skip %q (-want +got):\n%s", skip, d)
		}
	}
	for _, bad := range []string{"a", " /a", "\t/a", "/a/", "/d/", "/", "//a", "/./a", "/d/../a", ""} {
		_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", SkipList: []string{bad},
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		if err == nil || !strings.Contains(err.Error(), "skip-list path") {
			t.Errorf("skip %q: got %v, want it refused", bad, err)
		}
	}
	// Whitespace is never trimmed: "/a " with no "a " in the tree is
	// missing, not "/a".
	os.Remove(filepath.Join(src, "a "))
	_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", SkipList: []string{"/a "},
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err == nil || !strings.Contains(err.Error(), "/a ") {
		t.Errorf("skip \"/a \" without that file: got %v, want it missing", err)
	}
}

// Bootable records the one kernel the tree ships, and refuses a tree with
// none or several.
func TestBootable(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	one := makeTree(t, testtree.Tree{"usr/lib/modules/6.1.0-9-amd64/vmlinuz": testtree.File("k", 0o644),
		"usr/lib/modules/6.1.0-9-amd64/modules.dep": testtree.File("", 0o644), "usr/lib/modules/extra/x.ko": testtree.File("m", 0o644)})
	res := commitDir(t, r, "os", one, func(o *commit.Options) { o.Bootable = true })
	c := mustCommit(t, r, res.Commit)
	for k, want := range map[string]string{commit.BootableKey: "true", commit.LinuxKey: "6.1.0-9-amd64"} {
		if v, _ := c.Metadata.Get(k); string(v) != want {
			t.Errorf("metadata %s = %q, want %q", k, v, want)
		}
	}
	// Through a ref too (stored directories are read).
	res = commitDir(t, r, "os2", one, func(o *commit.Options) {
		o.Bootable, o.Sources = true, []commit.Source{{Kind: commit.SourceRef, Path: "os"}}
	})
	if v, _ := mustCommit(t, r, res.Commit).Metadata.Get(commit.LinuxKey); string(v) != "6.1.0-9-amd64" {
		t.Errorf("ref source: ostree.linux = %q", v)
	}
	two := makeTree(t, testtree.Tree{"usr/lib/modules/6.1/vmlinuz": testtree.File("k", 0o644), "usr/lib/modules/6.2/vmlinuz": testtree.File("k2", 0o644)})
	none := makeTree(t, testtree.Tree{"usr/lib/x": testtree.File("x", 0o644)})
	// Deploy installs the boot files themselves, and refuses a link.
	link := makeTree(t, testtree.Tree{"usr/lib/modules/6.1/vmlinuz-6.1": testtree.File("k", 0o644), "usr/lib/modules/6.1/vmlinuz": testtree.Symlink("vmlinuz-6.1")})
	for dir, want := range map[string]string{two: "2 kernels", none: "no usr/lib/modules/<version>/vmlinuz",
		link: "usr/lib/modules/6.1/vmlinuz is a symlink, not a regular file"} {
		_, err := commit.Commit(ctx, r, commit.Options{Branch: "bad", Bootable: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: dir}}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error containing %q", err, want)
		}
	}
	if _, err := r.ReadRef("bad"); err == nil {
		t.Error("a refused commit created its branch")
	}
}

// Consume deletes the directory sources once the commit has landed, and
// refuses to when that would delete the repository.
func TestConsume(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	tree := testtree.Tree{"a/f": testtree.File("f", 0o644), "g": testtree.File("g", 0o755)}
	src := makeTree(t, tree)
	res := commitDir(t, r, "main", src, func(o *commit.Options) { o.Consume = true })
	if _, err := os.Lstat(src); !os.IsNotExist(err) {
		t.Errorf("source still there after --consume: %v", err)
	}
	if got := readCommit(t, r, res.Commit, false); got["a/f"].Content != "f" || got["g"].Content != "g" {
		t.Errorf("consumed commit lacks its files: %v", got)
	}

	outer := t.TempDir()
	inner, err := repo.Init(filepath.Join(outer, "sub", "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	os.WriteFile(filepath.Join(outer, "keep"), []byte("k"), 0o644)
	_, err = commit.Commit(ctx, inner, commit.Options{Branch: "main", Consume: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: outer}}})
	if err == nil || !strings.Contains(err.Error(), "would delete the repository") {
		t.Errorf("consuming the repository's parent: got %v", err)
	}
	if _, err := os.Stat(filepath.Join(outer, "keep")); err != nil {
		t.Errorf("refused consume deleted files: %v", err)
	}
}

// Consume refuses a source inside the repository, whose files (objects,
// refs) it would delete, but for a tree staged below the repository's
// tmp/.
func TestConsumeInsideRepositoryRefused(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	first := commitDir(t, r, "main", makeTree(t, testtree.Tree{"a": testtree.File("aaaa", 0o644)}))
	id, err := r.LookupTree(mustCommit(t, r, first.Commit).RootTree, mustCommit(t, r, first.Commit).RootMeta, "/a")
	if err != nil {
		t.Fatal(err)
	}
	obj := r.ObjectPath(repo.KindFile, id.ID)
	for _, src := range []string{filepath.Dir(obj), r.Path("objects"), r.Path("refs"), r.Path("tmp")} {
		_, err := commit.Commit(ctx, r, commit.Options{Branch: "other", Consume: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		if err == nil || !strings.Contains(err.Error(), "would delete files of the repository") || !strings.Contains(err.Error(), src) {
			t.Errorf("consuming %s: got %v, want an error naming it", src, err)
		}
	}
	if _, err := os.Stat(obj); err != nil {
		t.Errorf("a refused consume deleted the object: %v", err)
	}
	if _, err := r.ResolveRev("other"); err == nil {
		t.Error("a refused consume moved a branch")
	}
	staged := filepath.Join(r.Path("tmp"), "staged")
	if err := os.MkdirAll(filepath.Join(staged, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(staged, "d", "f"), []byte("f"), 0o644)
	commitDir(t, r, "staged", staged, func(o *commit.Options) { o.Consume = true })
	if _, err := os.Lstat(staged); !os.IsNotExist(err) {
		t.Errorf("a tree staged below tmp/ was not consumed: %v", err)
	}
}

// The repository reached through a bind mount is the repository: neither
// a directory of it nor a directory holding it may be consumed that way.
func TestConsumeRepositoryThroughBindMountRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bind mounts need root")
	}
	base := t.TempDir()
	r, err := repo.Init(filepath.Join(base, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first := commitDir(t, r, "main", makeTree(t, testtree.Tree{"a": testtree.File("aaaa", 0o644)}))
	bind := func(src string) string {
		t.Helper()
		mnt := t.TempDir()
		if err := unix.Mount(src, mnt, "", unix.MS_BIND, ""); err != nil {
			t.Skipf("bind mount: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
		return mnt
	}
	refs, holder := bind(r.Path("refs")), bind(base)
	// Where the mount table does not show the mounts (a chroot whose root
	// is no mount point lists none of them), devices and inodes tell.
	for _, table := range []string{"as mounted", "unlisted"} {
		if table == "unlisted" {
			defer commit.SetMountTable(func() ([]mountinfo.Mount, error) { return nil, nil })()
		}
		for src, want := range map[string]string{
			refs:                                  "would delete files of the repository",
			filepath.Join(refs, "heads"):          "would delete files of the repository",
			holder:                                "would delete the repository",
			filepath.Join(holder, "repo"):         "would delete the repository",
			filepath.Join(holder, "repo/objects"): "would delete files of the repository",
		} {
			_, err := commit.Commit(ctx, r, commit.Options{Branch: "other", Consume: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("mounts %s: consuming %s: got %v, want %q", table, src, err, want)
			}
		}
	}
	if got, err := r.ResolveRev("main"); err != nil || got != first.Commit {
		t.Errorf("main is %s, %v after the refused consumes; want %s", got, err, first.Commit)
	}
}

// A mount hidden by one over a directory above it does not decide where
// a path is: the repository on the upper filesystem, reached through a
// bind mount, is still the repository.
func TestConsumeRepositoryUnderOvermountRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounts need root")
	}
	base := t.TempDir()
	top := filepath.Join(base, "top")
	hidden := filepath.Join(top, "repo")
	if err := os.MkdirAll(hidden, 0o755); err != nil {
		t.Fatal(err)
	}
	mount := func(src, dst, fstype string, flags uintptr) {
		t.Helper()
		if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
			t.Skipf("mount %s: %v", dst, err)
		}
		t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
	}
	mount("tmpfs", hidden, "tmpfs", 0) // then hidden by the next
	mount("tmpfs", top, "tmpfs", 0)
	r, err := repo.Init(hidden, repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first := commitDir(t, r, "main", makeTree(t, testtree.Tree{"a": testtree.File("aaaa", 0o644)}))
	mnt := t.TempDir()
	mount(hidden, mnt, "", unix.MS_BIND)
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "other", Consume: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: filepath.Join(mnt, "refs")}}})
	if err == nil || !strings.Contains(err.Error(), "would delete files of the repository") {
		t.Errorf("consuming the refs through a bind mount: %v", err)
	}
	if got, err := r.ResolveRev("main"); err != nil || got != first.Commit {
		t.Errorf("main is %s, %v after the consume; want %s", got, err, first.Commit)
	}
}

// A repository inside the directory committed is left out: committing it
// into itself would store a half-written copy each time.
func TestRepositoryInsideSourceLeftOut(t *testing.T) {
	src := makeTree(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	r, err := repo.Init(filepath.Join(src, ".demo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first := commitDir(t, r, "uat", src)
	if d := cmp.Diff(testtree.Tree{"a": testtree.File("a", 0o644)}, readCommit(t, r, first.Commit, false)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	again := commitDir(t, r, "uat", src, func(o *commit.Options) { o.SkipIfUnchanged = true })
	if !again.Unchanged {
		t.Error("re-commit of an unchanged tree holding the repository made a new commit")
	}
}

// Large files of one directory are hashed by several workers at once, not
// one after the other in a single batch: each big file here waits, in the
// hook, until another one is being hashed too, which only a walk that
// spreads them can satisfy.
func TestLargeFilesSpreadOverWorkers(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	tree := testtree.Tree{}
	for _, n := range []string{"a", "b", "c", "d"} {
		tree["bin/"+n] = testtree.File(n+big, 0o755)
	}
	src := makeTree(t, tree)
	var mu sync.Mutex
	active := 0
	together := make(chan struct{})
	var once sync.Once
	restore := commit.SetHashHook(func(path string) {
		if !strings.Contains(path, "/bin/") {
			return
		}
		mu.Lock()
		active++
		if active >= 2 {
			once.Do(func() { close(together) })
		}
		mu.Unlock()
		select {
		case <-together:
		case <-time.After(3 * time.Second):
		}
		mu.Lock()
		active--
		mu.Unlock()
	})
	defer restore()
	commitDir(t, r, "main", src, func(o *commit.Options) { o.NoStatCache = true })
	select {
	case <-together:
	default:
		t.Error("the large files were hashed one at a time")
	}
}

// GenerateSizes lists every object the tree needs, once, with its size on
// disk and unpacked, whether the commit wrote it, found it stored, or took
// it from a stored tree or the stat cache.
func TestGenerateSizes(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	content := map[string]string{"a/f": strings.Repeat("compressible ", 500), "a/g": "g", "b/f": strings.Repeat("compressible ", 500), "c": ""}
	tree := testtree.Tree{"a": testtree.Dir(0o700), "b/link": testtree.Symlink("f")}
	for p, c := range content {
		tree[p] = testtree.File(c, 0o644)
	}
	src := makeTree(t, tree)
	time.Sleep(150 * time.Millisecond) // past the racy window: the second commit takes dirtrees from the stat cache
	check := func(name string, res *commit.Result) {
		t.Helper()
		v, ok := mustCommit(t, r, res.Commit).Metadata.Get(repo.SizesKey)
		if !ok {
			t.Fatalf("%s: no %s", name, repo.SizesKey)
		}
		sizes, err := repo.DecodeSizes(v)
		if err != nil {
			t.Fatal(err)
		}
		// /, a, b: three dirtrees, two dirmetas (0755, 0700); files:
		// a/f = b/f, a/g, c, b/link.
		count := map[repo.Kind]int{}
		for _, s := range sizes {
			count[s.Kind]++
			fi, err := os.Stat(r.ObjectPath(s.Kind, s.ID))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if s.Stored != fi.Size() {
				t.Errorf("%s: %s %s stored %d, on disk %d", name, s.Kind, s.ID, s.Stored, fi.Size())
			}
			want := s.Stored
			if s.Kind == repo.KindFile {
				h, err := r.StatFile(s.ID)
				if err != nil {
					t.Fatal(err)
				}
				want = int64(h.Size)
			}
			if s.Unpacked != want {
				t.Errorf("%s: %s %s unpacked %d, want %d", name, s.Kind, s.ID, s.Unpacked, want)
			}
		}
		if d := cmp.Diff(map[repo.Kind]int{repo.KindDirTree: 3, repo.KindDirMeta: 2, repo.KindFile: 4}, count); d != "" {
			t.Errorf("%s: objects listed (-want +got):\n%s", name, d)
		}
	}
	gen := func(o *commit.Options) { o.GenerateSizes = true }
	check("first", commitDir(t, r, "main", src, gen))
	again := commitDir(t, r, "main", src, gen)
	if again.Stats.FilesHashed != 0 {
		t.Errorf("second commit hashed %d files; the stat cache was meant to answer", again.Stats.FilesHashed)
	}
	check("cached", again)
	check("ref", commitDir(t, r, "ref", src, gen, func(o *commit.Options) {
		o.Sources = []commit.Source{{Kind: commit.SourceRef, Path: "main"}}
	}))

	bare := newRepo(t, repo.ModeBareUser)
	res := commitDir(t, bare, "main", src, gen)
	if _, ok := mustCommit(t, bare, res.Commit).Metadata.Get(repo.SizesKey); ok {
		t.Error("a bare-user repository recorded sizes")
	}
}

// A filter without a Regexp is refused with an error, before anything is
// read, rather than panicking at the first tar entry.
func TestTarPathnameFilterWithoutRegexp(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	tarFile := writeTar(t, []*tar.Header{{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644}}, map[string]string{"a": "a"})
	_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", TarPathnameFilter: &commit.PathnameFilter{Template: "b"},
		Sources: []commit.Source{{Kind: commit.SourceTar, Path: tarFile}}})
	if err == nil || !strings.Contains(err.Error(), "Regexp") {
		t.Errorf("got %v, want an error naming the missing Regexp", err)
	}
	if _, err := r.ReadRef("main"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("branch: %v", err)
	}
}

// Bootable finds a kernel where deploy finds it: without one in
// usr/lib/modules, in the legacy layout of usr/lib/ostree-boot, else
// boot (OSTree's --bootable reads usr/lib/modules only), and refuses
// what deploy would refuse or could not name a version for.
func TestBootableLegacy(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	sum, sum2 := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	for name, tc := range map[string]struct {
		tree testtree.Tree
		want string // the version recorded, or the error
	}{
		"ostree-boot": {testtree.Tree{"usr/lib/ostree-boot/vmlinuz-5.0-" + sum: testtree.File("k", 0o644),
			"usr/lib/ostree-boot/initramfs-5.0.img-" + sum: testtree.File("i", 0o644)}, "5.0"},
		"boot": {testtree.Tree{"boot/vmlinuz-4.19.0-amd64-" + sum: testtree.File("k", 0o644)}, "4.19.0-amd64"},
		"ostree-boot before boot": {testtree.Tree{"usr/lib/ostree-boot/vmlinuz-5.0-" + sum: testtree.File("k", 0o644),
			"boot/vmlinuz-4.0-" + sum: testtree.File("k", 0o644)}, "5.0"},
		"modules first": {testtree.Tree{"usr/lib/modules/6.1/vmlinuz": testtree.File("k", 0o644),
			"boot/vmlinuz-4.0-" + sum: testtree.File("k", 0o644)}, "6.1"},
		"modules without a kernel": {testtree.Tree{"usr/lib/modules/6.1/modules.dep": testtree.File("", 0o644),
			"boot/vmlinuz-4.0-" + sum: testtree.File("k", 0o644)}, "4.0"},
		"ostree-boot without a kernel hides boot": {testtree.Tree{"usr/lib/ostree-boot/config-5.0": testtree.File("c", 0o644),
			"boot/vmlinuz-4.0-" + sum: testtree.File("k", 0o644)}, "error: no usr/lib/modules/<version>/vmlinuz, nor vmlinuz-<version>-<sha256> in usr/lib/ostree-boot or boot"},
		"two kernels": {testtree.Tree{"boot/vmlinuz-4.0-" + sum: testtree.File("k", 0o644), "boot/vmlinuz-4.1-" + sum2: testtree.File("k", 0o644)},
			"error: 2 vmlinuz files (vmlinuz-4.0-" + sum + ", vmlinuz-4.1-" + sum2 + ") in boot"},
		"initramfs of another kernel": {testtree.Tree{"boot/vmlinuz-4.0-" + sum: testtree.File("k", 0o644), "boot/initramfs-4.0.img-" + sum2: testtree.File("i", 0o644)},
			"error: boot/initramfs-4.0.img-" + sum2 + " does not carry the checksum of the kernel"},
		"no version": {testtree.Tree{"boot/vmlinuz-" + sum: testtree.File("k", 0o644)},
			"error: the tree's kernel boot/vmlinuz-" + sum + " has no version in its name, which ostree.linux records"},
		"space in version":         {testtree.Tree{"boot/vmlinuz-4.0 x-" + sum: testtree.File("k", 0o644)}, "error: space or control character"},
		"space in modules version": {testtree.Tree{"usr/lib/modules/6.1 x/vmlinuz": testtree.File("k", 0o644)}, "error: space or control character"},
		"ostree-boot a file": {testtree.Tree{"usr/lib/ostree-boot": testtree.File("x", 0o644), "boot/vmlinuz-4.0-" + sum: testtree.File("k", 0o644)},
			"error: usr/lib/ostree-boot is not a directory"},
		"boot a link": {testtree.Tree{"boot": testtree.Symlink("kb"), "kb/vmlinuz-4.0-" + sum: testtree.File("k", 0o644)},
			"error: boot is not a directory (a link there is not followed)"},
		"kernel a link": {testtree.Tree{"boot/vmlinuz-4.0-" + sum: testtree.Symlink("k"), "boot/k": testtree.File("k", 0o644)},
			"error: boot/vmlinuz-4.0-" + sum + " is a symlink, not a regular file"},
		"initramfs a link": {testtree.Tree{"boot/vmlinuz-4.0-" + sum: testtree.File("k", 0o644), "boot/initramfs-4.0.img-" + sum: testtree.Symlink("i")},
			"error: boot/initramfs-4.0.img-" + sum + " is a symlink, not a regular file"},
	} {
		branch := strings.ReplaceAll(name, " ", "-")
		res, err := commit.Commit(ctx, r, commit.Options{Branch: branch, Bootable: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: makeTree(t, tc.tree)}}})
		if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %v, want an error containing %q", name, err, want)
			}
			if _, err := r.ReadRef(branch); err == nil {
				t.Errorf("%s: a refused commit created its branch", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		c := mustCommit(t, r, res.Commit)
		for k, want := range map[string]string{commit.BootableKey: "true", commit.LinuxKey: tc.want} {
			if v, _ := c.Metadata.Get(k); string(v) != want {
				t.Errorf("%s: metadata %s = %q, want %q", name, k, v, want)
			}
		}
	}
	// A kernel link stored by an earlier commit, not staged by this one,
	// is refused alike.
	linked := makeTree(t, testtree.Tree{"boot/vmlinuz-4.0-" + sum: testtree.Symlink("k"), "boot/k": testtree.File("k", 0o644)})
	if _, err := commit.Commit(ctx, r, commit.Options{Branch: "linked", Sources: []commit.Source{{Kind: commit.SourceDir, Path: linked}}}); err != nil {
		t.Fatal(err)
	}
	_, err := commit.Commit(ctx, r, commit.Options{Branch: "linked-bootable", Bootable: true, Sources: []commit.Source{{Kind: commit.SourceRef, Path: "linked"}}})
	if err == nil || !strings.Contains(err.Error(), "is a symlink, not a regular file") {
		t.Errorf("kernel link from a ref: got %v, want it refused", err)
	}
}
