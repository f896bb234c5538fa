package commit_test

import (
	"archive/tar"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

func TestParseStatOverrides(t *testing.T) {
	got, err := commit.ParseStatOverrides([]byte("2048 /usr/bin/su\n\n=420 /etc/conf\n+0x10 /usr/lib\n=0 /a b\n=+2 /\n1 /c\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []commit.StatOverride{
		{Path: "/usr/bin/su", Mode: 0o4000},
		{Path: "/etc/conf", Set: true, Mode: 0o644},
		{Path: "/usr/lib", Mode: 0o20},
		{Path: "/a b", Set: true},
		{Path: "/", Set: true, Mode: 2},
		{Path: "/c\r", Mode: 1}, // as OSTree takes it: a CRLF file names "c\r"
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, bad := range []string{"nospace", "abc /x", "4096 /x", "-1 /x", "=0o644 /x", "2048 ", "0644\t/x",
		// OSTree matches each path exactly as written, so these would
		// match nothing there: refused rather than tidied into a match.
		"2 usr/bin/x", "2 /usr/bin/", "2 /usr//bin", "2 /usr/./bin", "2 /usr/../bin", "2  /usr", "2 ./x", "2 "} {
		if _, err := commit.ParseStatOverrides([]byte("0 /fine\n" + bad + "\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: got %v, want an error naming line 2", bad, err)
		}
	}
}

// As in OSTree, a line adding bits wins over one setting them for the
// same path, in either order; otherwise the last line for a path wins.
func TestParseStatOverridesAddWinsOverSet(t *testing.T) {
	got, err := commit.ParseStatOverrides([]byte("2 /a\n=420 /a\n=420 /b\n2 /b\n=420 /c\n=384 /c\n2 /d\n1024 /d\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"a": testtree.File("a", 0o751), "b": testtree.File("b", 0o751), "c": testtree.File("c", 0o751), "d": testtree.File("d", 0o751)})
	res := commitDir(t, r, "main", src, func(o *commit.Options) { o.StatOverrides = got })
	tree := readCommit(t, r, res.Commit, false)
	for p, want := range map[string]fs.FileMode{"a": 0o753, "b": 0o753, "c": 0o600, "d": fs.ModeSetgid | 0o751} {
		if tree[p].Mode != want {
			t.Errorf("/%s: mode %v, want %v (OSTree's)", p, tree[p].Mode, want)
		}
	}
}

// Stat overrides change the modes of the paths they name, whatever the
// source (directory, tar or ref), before the other options, as in OSTree;
// a path no source has fails the commit and moves nothing.
func TestStatOverrides(t *testing.T) {
	tree := testtree.Tree{
		"usr/bin/su":   testtree.File("su", 0o755),
		"usr/bin/ls":   testtree.File("su", 0o755), // same content, no override
		"etc/conf":     testtree.File("c", 0o664),
		"var/lib/priv": testtree.Dir(0o755),
		"link":         testtree.Symlink("etc/conf"),
	}
	src := makeTree(t, tree)
	overrides := []commit.StatOverride{
		{Path: "/usr/bin/su", Mode: 0o4000},
		{Path: "/etc/conf", Set: true, Mode: 0o600},
		{Path: "/var/lib/priv", Set: true, Mode: 0o700},
		{Path: "/link", Mode: 0o4000}, // symlinks keep 0777
	}
	want := testtree.Tree{
		"usr":          testtree.Dir(0o755),
		"usr/bin":      testtree.Dir(0o755),
		"usr/bin/su":   {Mode: fs.ModeSetuid | 0o755, Content: "su"},
		"usr/bin/ls":   testtree.File("su", 0o755),
		"etc":          testtree.Dir(0o755),
		"etc/conf":     testtree.File("c", 0o600),
		"var":          testtree.Dir(0o755),
		"var/lib":      testtree.Dir(0o755),
		"var/lib/priv": testtree.Dir(0o700),
		"link":         testtree.Symlink("etc/conf"),
	}
	tarFile := writeTar(t, []*tar.Header{
		{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o755},
		{Name: "usr/bin/ls", Typeflag: tar.TypeReg, Mode: 0o755},
		{Name: "etc/conf", Typeflag: tar.TypeReg, Mode: 0o664},
		{Name: "var/lib/priv/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "etc/conf"},
	}, map[string]string{"usr/bin/su": "su", "usr/bin/ls": "su", "etc/conf": "c"})

	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		r := newRepo(t, mode)
		commitDir(t, r, "base", src)
		var trees [][2]repo.ID
		for _, s := range []commit.Source{{Kind: commit.SourceDir, Path: src}, {Kind: commit.SourceTar, Path: tarFile}, {Kind: commit.SourceRef, Path: "base"}} {
			res := commitDir(t, r, "over", src, func(o *commit.Options) {
				o.Sources, o.StatOverrides = []commit.Source{s}, overrides
			})
			if d := cmp.Diff(want, readCommit(t, r, res.Commit, false)); d != "" {
				t.Errorf("%s, source kind %d (-want +got):\n%s", mode, s.Kind, d)
			}
			trees = append(trees, rootTree(t, r, res.Commit))
		}
		if trees[0] != trees[1] || trees[0] != trees[2] {
			t.Errorf("%s: directory, tar and ref sources gave trees %v", mode, trees)
		}

		// Canonical permissions apply after the override: setuid goes.
		canon := commitDir(t, r, "canon", src, func(o *commit.Options) {
			o.StatOverrides, o.CanonicalPermissions = overrides, true
			o.Sources = []commit.Source{{Kind: commit.SourceRef, Path: "base"}}
		})
		if g := readCommit(t, r, canon.Commit, false)["usr/bin/su"]; g.Mode != 0o755 {
			t.Errorf("%s: canonical after override: su mode %v, want 0755", mode, g.Mode)
		}

		head := mustRef(t, r, "over")
		for _, s := range []commit.Source{{Kind: commit.SourceDir, Path: src}, {Kind: commit.SourceTar, Path: tarFile}, {Kind: commit.SourceRef, Path: "base"}} {
			_, err := commit.Commit(ctx, r, commit.Options{Branch: "over", Sources: []commit.Source{s},
				StatOverrides: append(overrides, commit.StatOverride{Path: "/usr/bin/gone", Mode: 0o4000})})
			if err == nil || !strings.Contains(err.Error(), "/usr/bin/gone") {
				t.Errorf("%s, source kind %d: override of a missing path: got %v, want an error naming it", mode, s.Kind, err)
			}
		}
		if mustRef(t, r, "over") != head {
			t.Errorf("%s: a refused commit moved the branch", mode)
		}
		// A skipped path is not a missing one.
		skipped := commitDir(t, r, "skipped", src, func(o *commit.Options) {
			o.StatOverrides, o.SkipList = overrides, []string{"/etc"}
		})
		if _, ok := readCommit(t, r, skipped.Commit, false)["etc/conf"]; ok {
			t.Errorf("%s: skipped path committed", mode)
		}
	}
}

// The stat cache and the hardlink shortcut never hand back an object made
// without the override: a cached or hardlinked file that an override names
// is recorded with the override, and without it again afterwards.
func TestStatOverridesWithCaches(t *testing.T) {
	r := newRepo(t, repo.ModeBareUserOnly)
	src := makeTree(t, testtree.Tree{"bin/tool": testtree.File("t", 0o755), "conf": testtree.File("c", 0o644)})
	time.Sleep(150 * time.Millisecond) // past the racy window: the stat cache records the files
	over := []commit.StatOverride{{Path: "/bin/tool", Set: true, Mode: 0o700}}
	for round, withOver := range []bool{false, true, false, true} {
		res := commitDir(t, r, "main", src, func(o *commit.Options) {
			if withOver {
				o.StatOverrides = over
			}
		})
		want := fs.FileMode(0o755)
		if withOver {
			want = 0o700
		}
		if got := readCommit(t, r, res.Commit, false)["bin/tool"].Mode; got != want {
			t.Errorf("round %d: bin/tool mode %v, want %v", round, got, want)
		}
	}

	// A tree of hardlinks to the plain commit's objects.
	plain := mustCommit(t, r, commitDir(t, r, "plain", src).Commit)
	farm := filepath.Join(t.TempDir(), "farm")
	os.MkdirAll(filepath.Join(farm, "bin"), 0o755)
	for _, p := range []string{"bin/tool", "conf"} {
		e, err := r.LookupTree(plain.RootTree, plain.RootMeta, "/"+p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Link(r.ObjectPath(repo.KindFile, e.ID), filepath.Join(farm, p)); err != nil {
			t.Fatal(err)
		}
	}
	res := commitDir(t, r, "farm", farm, func(o *commit.Options) { o.StatOverrides, o.NoStatCache = over, true })
	if got := readCommit(t, r, res.Commit, false)["bin/tool"].Mode; got != 0o700 {
		t.Errorf("hardlink of an object: bin/tool mode %v, want the override's 0700", got)
	}
	if res.Stats.FilesHashed != 1 {
		t.Errorf("hashed %d files, want 1 (only the overridden hardlink)", res.Stats.FilesHashed)
	}
}

// As in OSTree, --mode-ro-executables looks at a file's mode before its
// stat override, and the override's bits stand: "=MODE" records MODE, and
// execute bits an override adds keep the file's write bits.
func TestStatOverridesWithROExecutables(t *testing.T) {
	src := makeTree(t, testtree.Tree{
		"set":   testtree.File("s", 0o644),
		"add":   testtree.File("a", 0o644),
		"exe":   testtree.File("e", 0o755),
		"plain": testtree.File("p", 0o775),
	})
	overrides := []commit.StatOverride{
		{Path: "/set", Set: true, Mode: 0o4755},
		{Path: "/add", Mode: 0o111},
		{Path: "/exe", Mode: 0o20},
	}
	want := map[string]fs.FileMode{"set": fs.ModeSetuid | 0o755, "add": 0o755, "exe": 0o575, "plain": 0o555}
	r := newRepo(t, repo.ModeBareUser)
	commitDir(t, r, "base", src)
	for _, s := range []commit.Source{{Kind: commit.SourceDir, Path: src}, {Kind: commit.SourceRef, Path: "base"}} {
		res := commitDir(t, r, "over", src, func(o *commit.Options) {
			o.Sources, o.StatOverrides, o.ModeROExecutables = []commit.Source{s}, overrides, true
		})
		got := readCommit(t, r, res.Commit, false)
		for n, m := range want {
			if got[n].Mode != m {
				t.Errorf("source kind %d: %s mode %v, want %v", s.Kind, n, got[n].Mode, m)
			}
		}
	}
}
