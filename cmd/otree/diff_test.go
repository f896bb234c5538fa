package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

var diffFixture = testtree.Tree{
	"etc/demo.conf": testtree.File("level=1\n", 0o644),
	"etc/motd":      testtree.File("hello\n", 0o644),
	"etc/old":       testtree.File("bye\n", 0o644),
	"lib/a/b":       testtree.File("b", 0o644),
	"lib/a/c":       testtree.File("c", 0o644),
	"link":          testtree.Symlink("etc/motd"),
}

// diffChange mutates a copy of diffFixture.
func diffChanged() testtree.Tree {
	t := testtree.Tree{}
	for k, v := range diffFixture {
		t[k] = v
	}
	t["etc/demo.conf"] = testtree.File("level=2\n", 0o644)
	t["etc/motd"] = testtree.File("hello\n", 0o600)
	delete(t, "etc/old")
	delete(t, "lib/a/b")
	delete(t, "lib/a/c")
	t["srv/www/index.html"] = testtree.File("<p>hi</p>\n", 0o644)
	t["srv/new\nline"] = testtree.File("n", 0o644)
	return t
}

func TestDiffCommand(t *testing.T) {
	c := newCLI(t)
	a := c.commitTree("uat", source(t, diffFixture), "one", 1700000000)
	b := c.commitTree("uat", source(t, diffChanged()), "two", 1700000060)

	got := c.ok("diff", "uat^", "uat")
	want := "M    /etc/demo.conf\nM    /etc/motd\nD    /etc/old\nD    /lib\nA    /srv\n" +
		"A    \"/srv/new\\nline\"\nA    /srv/www\nA    /srv/www/index.html\n"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if one := c.ok("diff", "uat"); one != want { // REV alone: its parent against it
		t.Errorf("diff uat:\n%s\nwant:\n%s", one, want)
	}
	c.fails(exitError, []string{"no parent"}, "diff", a.String())
	if got := c.ok("diff", a.String(), a.String()); got != "" {
		t.Errorf("diff of a commit with itself: %q", got)
	}
	// --verify lists what was in the removed directory, and exits 1.
	res := c.fails(exitError, []string{"paths differ", a.String(), b.String()}, "diff", "--verify", "uat^", "uat")
	if !strings.Contains(res.stdout, "D    /lib\nD    /lib/a\nD    /lib/a/b\nD    /lib/a/c\n") {
		t.Errorf("--verify output:\n%s", res.stdout)
	}

	var js struct {
		From, To repo.ID
		Changes  []struct {
			Kind, Path string
			Meta       bool
			Fields     []string
			Old, New   *struct {
				Type   string
				Mode   uint32
				Size   uint64
				ID     repo.ID
				Target string
				Xattrs []xattrJSON
			}
		}
	}
	if err := json.Unmarshal([]byte(c.ok("diff", "--json", "uat^", "uat")), &js); err != nil {
		t.Fatal(err)
	}
	if js.From != a || js.To != b || len(js.Changes) != 8 {
		t.Fatalf("--json: %+v", js)
	}
	motd := js.Changes[1]
	if motd.Kind != "M" || motd.Path != "/etc/motd" || !motd.Meta || strings.Join(motd.Fields, ",") != "mode" ||
		motd.Old.Mode != 0o644 || motd.New.Mode != 0o600 || motd.Old.Type != "regular" || motd.New.ID.IsZero() {
		t.Errorf("--json /etc/motd: %+v old %+v new %+v", motd, motd.Old, motd.New)
	}
	if d := js.Changes[2]; d.Kind != "D" || d.New != nil || d.Old == nil || d.Old.Size != 4 {
		t.Errorf("--json /etc/old: %+v", d)
	}

	got = c.ok("diff", "--stat", "uat^", "uat")
	wantStat := "Files added: 2 (11 B)\nFiles modified: 2 (14 B -> 14 B)\nFiles removed: 3 (6 B)\nDirectories added: 2, modified: 0, removed: 2\n"
	if got != wantStat {
		t.Errorf("--stat:\n%s\nwant:\n%s", got, wantStat)
	}
	var st struct {
		Stats struct {
			FilesDeleted int `json:"files_deleted"`
			DirsAdded    int `json:"dirs_added"`
		}
	}
	if err := json.Unmarshal([]byte(c.ok("diff", "--stat", "--json", "uat^", "uat")), &st); err != nil || st.Stats.FilesDeleted != 3 || st.Stats.DirsAdded != 2 {
		t.Errorf("--stat --json: %+v, %v", st, err)
	}

	// --fs-diff is the default listing; with --stat, the listing (a
	// removed directory still one line) and then the summary, as OSTree
	// prints both.
	if got := c.ok("diff", "--fs-diff", "uat^", "uat"); got != want {
		t.Errorf("--fs-diff:\n%s\nwant:\n%s", got, want)
	}
	if got := c.ok("diff", "--fs-diff", "--stat", "uat^", "uat"); got != want+wantStat {
		t.Errorf("--fs-diff --stat:\n%s\nwant:\n%s", got, want+wantStat)
	}
	var both struct {
		Changes []struct{ Path string }
		Stats   *struct {
			FilesDeleted int `json:"files_deleted"`
		}
	}
	if err := json.Unmarshal([]byte(c.ok("diff", "--fs-diff", "--stat", "--json", "uat^", "uat")), &both); err != nil ||
		len(both.Changes) != 8 || both.Stats == nil || both.Stats.FilesDeleted != 3 {
		t.Errorf("--fs-diff --stat --json: %+v, %v", both, err)
	}

	c.fails(exitError, []string{"nope"}, "diff", "nope", "uat")
	c.fails(exitUsage, []string{"--owner-uid"}, "diff", "--owner-uid=0", "uat^", "uat")
	c.fails(exitUsage, nil, "diff", "uat^", "uat", "uat")
}

func TestDiffCommandDir(t *testing.T) {
	c := newCLI(t)
	dir := source(t, diffFixture)
	c.commitTree("uat", dir, "one", 1700000000)
	owners := []string{"--owner-uid=0", "--owner-gid=0"}
	if got := c.ok(append([]string{"diff", "--verify", "uat", dir}, owners...)...); got != "" {
		t.Errorf("diff against the committed directory: %q", got)
	}
	if os.Getuid() != 0 {
		// Without the owner flags every entry differs in owner.
		if res := c.run("diff", "--verify", "uat", dir); res.code != exitError || !strings.Contains(res.stdout, "M    /etc/motd\n") {
			t.Errorf("without --owner-uid: exit %d, %q", res.code, res.stdout)
		}
	}
	if got := c.ok("diff", "--ignore-owners", "uat", dir); got != "" {
		t.Errorf("--ignore-owners: %q", got)
	}

	os.WriteFile(filepath.Join(dir, "etc/motd"), []byte("changed\n"), 0o644)
	os.RemoveAll(filepath.Join(dir, "lib"))
	os.WriteFile(filepath.Join(dir, "new"), nil, 0o644)
	if err := unix.Lsetxattr(filepath.Join(dir, "etc/demo.conf"), "user.drift", []byte("1"), 0); err != nil {
		t.Skipf("no user xattrs: %v", err)
	}
	// Four differences at the top, seven paths with what was below /lib.
	res := c.fails(exitError, []string{"7 paths differ", dir}, append([]string{"diff", "--verify", "uat", dir}, owners...)...)
	if want := "M    /etc/demo.conf\nM    /etc/motd\nD    /lib\nD    /lib/a\nD    /lib/a/b\nD    /lib/a/c\nA    /new\n"; res.stdout != want {
		t.Errorf("--verify:\n%s\nwant:\n%s", res.stdout, want)
	}
	got := c.ok(append([]string{"diff", "--no-xattrs", "uat", dir}, owners...)...)
	if want := "M    /etc/motd\nD    /lib\nA    /new\n"; got != want {
		t.Errorf("--no-xattrs:\n%s\nwant:\n%s", got, want)
	}

	// A name that is both a directory here and a revision is ambiguous
	// unless written as a path.
	wd := t.TempDir()
	t.Chdir(wd)
	os.Mkdir("uat", 0o755)
	c.fails(exitUsage, []string{"./uat"}, "diff", "uat", "uat")
	c.fails(exitError, []string{"./missing"}, "diff", "uat", "./missing")
	got = c.ok("diff", "--ignore-owners", "uat", "./uat")
	if !strings.Contains(got, "D    /etc\n") {
		t.Errorf("diff against ./uat: %q", got)
	}
}

// A directory written as a path may come first, as in OSTree's diff: it is
// the old side. The paths match OSTree's (which prints some without their
// leading "/" and in another order); a removed directory is one line
// unless --verify; two directories compare as in OSTree.
func TestDiffDirFirstParity(t *testing.T) {
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	dir := source(t, testtree.Tree{"a": testtree.File("a\n", 0o644), "b": testtree.File("b\n", 0o644),
		"sub/deep/x": testtree.File("x\n", 0o644), "gone/g": testtree.File("g\n", 0o644)})
	o.ok("commit", "-b", "main", dir)
	c.ok("commit", "-b", "main", dir)
	os.WriteFile(filepath.Join(dir, "a"), []byte("changed\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "n"), []byte("new\n"), 0o644)
	os.RemoveAll(filepath.Join(dir, "gone"))
	os.MkdirAll(filepath.Join(dir, "newdir"), 0o755)
	os.WriteFile(filepath.Join(dir, "newdir/y"), []byte("y\n"), 0o644)
	os.Remove(filepath.Join(dir, "b"))
	os.MkdirAll(filepath.Join(dir, "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "b/z"), []byte("z\n"), 0o644)
	t.Chdir(filepath.Dir(dir))
	rel := "./" + filepath.Base(dir)
	lines := func(out string) []string {
		var l []string
		for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
			kind, p, _ := strings.Cut(s, "    ")
			l = append(l, kind+" /"+strings.TrimPrefix(p, "/"))
		}
		slices.Sort(l)
		return l
	}
	want := lines(o.ok("diff", rel, "main"))
	got := c.ok("diff", "--ignore-owners", rel, "main")
	if d := cmp.Diff(want, lines(got)); d != "" {
		t.Errorf("diff %s main (-ostree +otree):\n%s", rel, d)
	}
	if wantOrder := "M    /a\nM    /b\nA    /gone\nA    /gone/g\nD    /n\nD    /newdir\n"; got != wantOrder {
		t.Errorf("diff %s main:\n%s\nwant, in tree order:\n%s", rel, got, wantOrder)
	}
	res := c.fails(exitError, []string{"8 paths differ", rel}, "diff", "--verify", "--ignore-owners", rel, "main")
	if !strings.Contains(res.stdout, "D    /newdir/y\n") || !strings.Contains(res.stdout, "D    /b/z\n") {
		t.Errorf("--verify lists every path:\n%s", res.stdout)
	}
	if out := c.ok("diff", rel, rel); out != "" {
		t.Errorf("diff of a directory with itself: %q", out)
	}
	c.fails(exitError, []string{"./missing"}, "diff", "./missing", "main")

	// Two directories, as OSTree compares them; otree lists what a
	// directory that replaced a file holds, as its other diffs do.
	o.ok("checkout", "main", "old")
	want = lines(o.ok("diff", "./old", rel) + "A    /b/z\n")
	got = c.ok("diff", "./old", rel)
	if d := cmp.Diff(want, lines(got)); d != "" {
		t.Errorf("diff ./old %s (-ostree +otree):\n%s", rel, d)
	}
	if got != "M    /a\nM    /b\nA    /b/z\nD    /gone\nA    /n\nA    /newdir\nA    /newdir/y\n" {
		t.Errorf("diff ./old %s:\n%s", rel, got)
	}
	c.fails(exitError, []string{"8 paths differ", "./old", rel}, "diff", "--verify", "./old", rel)
	if out := c.ok("diff", "--repo=/nonexistent", "./old", rel); out != got {
		t.Errorf("two directories need no repository: %q", out)
	}
	// With no repository at all, bare names of directories are directories.
	t.Setenv("OTREE_REPO", "")
	t.Setenv("OSTREE_REPO", "")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"diff", "old", filepath.Base(dir)}, strings.NewReader(""), &out, &errb); code != 0 || out.String() != got {
		t.Errorf("diff old %s with no repository: exit %d, %q %s", filepath.Base(dir), code, out.String(), errb.String())
	}
}

// diff --stats counts a sparse object's blocks in the common size, not its
// size: a 1 GiB file with 5 bytes of data shares well under 1 MiB.
func TestDiffStatsSparseObject(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	dir := source(t, testtree.Tree{"a": testtree.File("a\n", 0o644)})
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("data!"), 512<<20); err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.Close()
	c.ok("commit", "-b", "main", dir)
	var want int64
	filepath.WalkDir(c.r.Path("objects"), func(p string, d fs.DirEntry, err error) error {
		var st unix.Stat_t
		if err == nil && d.Type().IsRegular() && unix.Lstat(p, &st) == nil {
			switch {
			case st.Size < 1<<30:
				want += st.Size
			case st.Blocks*512 > 1<<20:
				t.Skipf("the filesystem of %s keeps no holes", p)
			default:
				want += st.Blocks * 512
			}
		}
		return err
	})
	var got diffObjectStats
	if err := json.Unmarshal([]byte(c.ok("diff", "--stats", "--json", "main", "main")), &got); err != nil {
		t.Fatal(err)
	}
	if got.CommonBytes != want || want > 1<<20 {
		t.Errorf("diff --stats main main = %+v; want %d common bytes: the sparse object's blocks, the others' sizes", got, want)
	}
}

// diff --stats counts the objects two commits need as OSTree's does, on
// the same histories; for a repository holding one commit, the size of
// what a commit shares with itself is the size of every stored object.
func TestDiffStatsParity(t *testing.T) {
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	dir := source(t, testtree.Tree{"a": testtree.File("a\n", 0o644), "b": testtree.File("b\n", 0o644),
		"sub/deep/x": testtree.File("x\n", 0o644), "gone/g": testtree.File("g\n", 0o644), "l": testtree.Symlink("a")})
	commitBoth := func() {
		o.ok("commit", "-b", "main", dir)
		c.ok("commit", "-b", "main", dir)
	}
	commitBoth()

	var size int64
	filepath.WalkDir(c.r.Path("objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			size += fi.Size()
		}
		return err
	})
	var self diffObjectStats
	if err := json.Unmarshal([]byte(c.ok("diff", "--stats", "--json", "main", "main")), &self); err != nil {
		t.Fatal(err)
	}
	if self.A != self.B || self.Common != self.A || self.CommonBytes != size || size == 0 {
		t.Errorf("diff --stats main main = %+v; want all objects common, %d bytes", self, size)
	}
	if got := c.ok("diff", "--stats", "main", "main"); !strings.HasSuffix(got, "\nCommon Object Size: "+siBytes(size)+"\n") {
		t.Errorf("diff --stats main main = %q; want the size as OSTree writes sizes", got)
	}

	os.WriteFile(filepath.Join(dir, "a"), []byte("changed\n"), 0o644)
	os.RemoveAll(filepath.Join(dir, "gone"))
	os.MkdirAll(filepath.Join(dir, "newdir/deep"), 0o755)
	os.WriteFile(filepath.Join(dir, "newdir/deep/x"), []byte("x\n"), 0o644) // the same subtree as sub/deep
	os.WriteFile(filepath.Join(dir, "n"), []byte("b\n"), 0o644)             // the same content as b
	commitBoth()
	os.Chmod(filepath.Join(dir, "sub"), 0o700)
	commitBoth()

	counts := func(out string) string {
		lines := strings.Split(out, "\n")
		if len(lines) < 4 || !strings.HasPrefix(lines[3], "Common Object Size: ") {
			t.Fatalf("diff --stats printed %q", out)
		}
		return strings.Join(lines[:3], "\n")
	}
	for _, revs := range [][]string{{"main^", "main"}, {"main^^", "main"}, {"main^^", "main^"}, {"main"}} {
		args := append([]string{"diff", "--stats"}, revs...)
		if want, got := counts(o.ok(args...)), counts(c.ok(args...)); got != want {
			t.Errorf("diff --stats %s:\n%s\nOSTree:\n%s", strings.Join(revs, " "), got, want)
		}
	}
	// With --fs-diff the changed paths come first, then the counts, as
	// OSTree prints both (OSTree lists the paths in another order).
	split := func(out string) ([]string, string) {
		i := strings.Index(out, "[A] Object Count: ")
		if i <= 0 {
			t.Fatalf("diff --stats --fs-diff printed %q, want paths and then counts", out)
		}
		paths := strings.Split(strings.TrimSuffix(out[:i], "\n"), "\n")
		slices.Sort(paths)
		return paths, counts(out[i:])
	}
	args := []string{"diff", "--stats", "--fs-diff", "main^^", "main"}
	wantPaths, wantCounts := split(o.ok(args...))
	gotPaths, gotCounts := split(c.ok(args...))
	if !slices.Equal(gotPaths, wantPaths) || gotCounts != wantCounts {
		t.Errorf("diff --stats --fs-diff: %q\n%s\nOSTree: %q\n%s", gotPaths, gotCounts, wantPaths, wantCounts)
	}
	var both struct {
		Changes []json.RawMessage `json:"changes"`
		Objects *diffObjectStats  `json:"objects"`
	}
	if err := json.Unmarshal([]byte(c.ok(append(args, "--json")...)), &both); err != nil {
		t.Fatal(err)
	}
	if both.Objects == nil || both.Objects.A == 0 || len(both.Changes) != len(wantPaths) {
		t.Errorf("diff --stats --fs-diff --json = %+v, want the changes and the object counts", both)
	}
	c.fails(exitUsage, []string{"./x", "directory"}, "diff", "--stats", "main", "./x")
}

// diff --stats of a commit pulled in part says that the object it misses
// was never pulled, naming the commit.
func TestDiffStatsPartialCommit(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	c.ok("commit", "-b", "main", source(t, testtree.Tree{"a": testtree.File("a\n", 0o644), "sub/x": testtree.File("x\n", 0o644)}))
	id, err := c.r.ResolveRev("main")
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.r.Lookup(id, "/sub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(c.r.ObjectPath(repo.KindDirTree, e.ID)); err != nil {
		t.Fatal(err)
	}
	if err := c.r.MarkCommitPartial(id); err != nil {
		t.Fatal(err)
	}
	c.fails(1, []string{e.ID.String(), "commit " + id.String() + " was pulled only in part"}, "diff", "--stats", "main", "main")
}
