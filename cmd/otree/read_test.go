package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// cli runs otree in-process against one repository.
type cli struct {
	t    *testing.T
	path string
	r    *repo.Repo
}

// result is what one run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"--repo=" + c.path}, args...), strings.NewReader(""), &out, &errb)
	return result{out.String(), errb.String(), code}
}

// ok runs a command that must succeed and returns its standard output.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	res := c.run(args...)
	if res.code != 0 {
		c.t.Fatalf("otree %s: exit %d, stderr %q", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// fails runs a command that must exit with code and name each of want in
// its error.
func (c *cli) fails(code int, want []string, args ...string) result {
	c.t.Helper()
	res := c.run(args...)
	if res.code != code {
		c.t.Fatalf("otree %s: exit %d, want %d (stdout %q, stderr %q)", strings.Join(args, " "), res.code, code, res.stdout, res.stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			c.t.Errorf("otree %s: stderr %q does not mention %q", strings.Join(args, " "), res.stderr, w)
		}
	}
	return res
}

// newCLI makes an archive repository to run otree against.
func newCLI(t *testing.T) *cli {
	t.Helper()
	return newCLIMode(t, repo.ModeArchive)
}

// newCLIMode makes a repository of the given mode to run otree against.
func newCLIMode(t *testing.T, mode repo.Mode) *cli {
	t.Helper()
	p := filepath.Join(t.TempDir(), "repo")
	r, err := repo.Init(p, repo.InitOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &cli{t: t, path: p, r: r}
}

// source creates tree in a fresh directory whose root is 0755.
func source(t *testing.T, tree testtree.Tree) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testtree.Create(t, dir, tree)
	return dir
}

var zero uint32

// commitTree commits dir to branch with owners forced to 0, so listings do
// not depend on who runs the test.
func (c *cli) commitTree(branch, dir, subject string, ts int64, mod ...func(*commit.Options)) repo.ID {
	c.t.Helper()
	o := commit.Options{
		Branch: branch, Subject: subject, Timestamp: time.Unix(ts, 0), NoSync: true,
		OwnerUID: &zero, OwnerGID: &zero,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: dir}},
	}
	for _, m := range mod {
		m(&o)
	}
	res, err := commit.Commit(context.Background(), c.r, o)
	if err != nil {
		c.t.Fatal(err)
	}
	return res.Commit
}

var fixture = testtree.Tree{
	"a.txt":      testtree.File("hello\n", 0o644),
	"run.sh":     testtree.File("#!\n", 0o755),
	"link":       testtree.Symlink("a.txt"),
	"sub":        testtree.Dir(0o700),
	"sub/secret": testtree.File("psst", 0o600),
	"sub/up":     testtree.Symlink("../a.txt"),
}

func TestLs(t *testing.T) {
	c := newCLI(t)
	id := c.commitTree("os/x86_64/stable", source(t, fixture), "one", 1700000000)

	got := c.ok("ls", "os/x86_64/stable")
	want := `d00755 0 0      0 /
-00644 0 0      6 /a.txt
l00777 0 0      0 /link -> a.txt
-00755 0 0      3 /run.sh
d00700 0 0      0 /sub
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ls (-want +got):\n%s", diff)
	}

	got = c.ok("ls", "-R", id.String())
	want += `-00600 0 0      4 /sub/secret
l00777 0 0      0 /sub/up -> ../a.txt
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ls -R (-want +got):\n%s", diff)
	}

	// -d lists a directory alone; a relative path is taken from the root.
	if got := c.ok("ls", "-d", "os/x86_64/stable", "sub/"); got != "d00700 0 0      0 /sub\n" {
		t.Errorf("ls -d sub/ = %q", got)
	}
	// -R overrides -d, in either order, as in OSTree.
	for _, args := range [][]string{{"ls", "-d", "-R", "os/x86_64/stable", "/sub"}, {"ls", "-R", "-d", "os/x86_64/stable", "/sub"}} {
		want := "d00700 0 0      0 /sub\n-00600 0 0      4 /sub/secret\nl00777 0 0      0 /sub/up -> ../a.txt\n"
		if got := c.ok(args...); got != want {
			t.Errorf("%v = %q, want %q", args, got, want)
		}
	}

	// -C prints the ids the library has for each path.
	a, err := c.r.Lookup(id, "/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.r.Lookup(id, "/sub")
	if err != nil {
		t.Fatal(err)
	}
	got = c.ok("ls", "-C", "os/x86_64/stable", "/a.txt", "/sub")
	want = fmt.Sprintf("-00644 0 0      6 %s /a.txt\nd00700 0 0      0 %s %s /sub\n-00600 0 0      4 %s /sub/secret\nl00777 0 0      0 %s /sub/up -> ../a.txt\n",
		a.ID, sub.ID, sub.MetaID, mustLookup(t, c.r, id, "/sub/secret").ID, mustLookup(t, c.r, id, "/sub/up").ID)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ls -C (-want +got):\n%s", diff)
	}

	// -X prints xattrs in GVariant text, as OSTree; --nul-filenames-only just the paths.
	if got := c.ok("ls", "-X", "os/x86_64/stable", "/a.txt"); got != "-00644 0 0      6 { @a(ayay) [] } /a.txt\n" {
		t.Errorf("ls -X = %q", got)
	}
	if got := c.ok("ls", "-R", "--nul-filenames-only", "os/x86_64/stable", "/sub"); got != "/sub\x00/sub/secret\x00/sub/up\x00" {
		t.Errorf("ls --nul-filenames-only = %q", got)
	}

	// --json carries the same facts.
	var entries []lsEntry
	if err := json.Unmarshal([]byte(c.ok("ls", "--json", "os/x86_64/stable", "/link", "/a.txt")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Path != "/link" || entries[0].Type != "symlink" || entries[0].Target != "a.txt" ||
		entries[1].ID != a.ID || entries[1].Mode != 0o644 || entries[1].Size != 6 {
		t.Errorf("ls --json = %+v", entries)
	}

	// Paths that are not there are named.
	c.fails(exitError, []string{"/nope", id.String()}, "ls", "os/x86_64/stable", "/nope")
	c.fails(exitError, []string{"/a.txt/x", "not a directory"}, "ls", "os/x86_64/stable", "/a.txt/x")
	c.fails(exitError, []string{`"/sub/../a.txt"`, `".."`}, "ls", "os/x86_64/stable", "/sub/../a.txt")
	c.fails(exitUsage, []string{"--bogus"}, "ls", "--bogus", "os/x86_64/stable")
	c.fails(exitUsage, nil, "ls")
}

func mustLookup(t *testing.T, r *repo.Repo, commit repo.ID, p string) repo.Entry {
	t.Helper()
	e, err := r.Lookup(commit, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCat(t *testing.T) {
	c := newCLI(t)
	tree := testtree.Tree{"sub/abs": testtree.Symlink("/sub/../a.txt"), "dir": testtree.Symlink("sub"),
		"sub/inner": testtree.Dir(0o755), "deep": testtree.Symlink("sub/inner"), "two\nlines": testtree.Dir(0o755)}
	for name, e := range fixture {
		tree[name] = e
	}
	id := c.commitTree("main", source(t, tree), "one", 1700000000)

	if got := c.ok("cat", "main", "/a.txt"); got != "hello\n" {
		t.Errorf("cat /a.txt = %q", got)
	}
	if got := c.ok("cat", "main", "sub/secret", "/run.sh"); got != "psst#!\n" {
		t.Errorf("cat of two files = %q", got)
	}
	// Symlinks are followed inside the commit, as ostree cat does.
	if got := c.ok("cat", "main", "/link"); got != "hello\n" {
		t.Errorf("cat /link = %q", got)
	}
	if got := c.ok("cat", "main", "/sub/up"); got != "hello\n" {
		t.Errorf("cat /sub/up = %q", got)
	}
	if got := c.ok("cat", "main", "/sub/abs"); got != "hello\n" {
		t.Errorf("cat /sub/abs = %q", got)
	}
	// Links on the way are followed too, and ".." goes up from where a
	// link led: /dir is /sub, so /dir/../a.txt is /a.txt.
	for _, p := range []string{"/dir/up", "/dir/../a.txt", "/dir/abs"} {
		if got := c.ok("cat", "main", p); got != "hello\n" {
			t.Errorf("cat %s = %q", p, got)
		}
	}
	c.fails(exitError, []string{"/dir/nope", "/sub/nope", "not found"}, "cat", "main", "/dir/nope")
	if got := c.ok("cat", "main", "/deep/../secret"); got != "psst" {
		t.Errorf("cat /deep/../secret = %q, want /sub/secret's", got)
	}
	// The path is named once, not again by each layer of the error.
	for _, tc := range []struct{ path, says string }{{"/sub", "directory"}, {"/missing", "not found"}} {
		if res := c.fails(exitError, []string{tc.path, tc.says}, "cat", "main", tc.path); strings.Count(res.stderr, tc.path) != 1 {
			t.Errorf("cat %s: %q names the path more than once", tc.path, res.stderr)
		}
	}
	// A newline in a path is quoted, so that the error stays one line.
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"cat", "main", "/two\nlines"}, `cat: "/two\nlines" is a directory`},
		{[]string{"cat", "main", "/sub/x\ny"}, `"/sub/x\ny": not found`},
		{[]string{"ls", "main", "/x\ny/z"}, `"/x\ny/z": "/x\ny" not found`},
	} {
		if res := c.fails(exitError, []string{tc.says}, tc.args...); strings.Count(res.stderr, "\n") != 1 {
			t.Errorf("%q: error %q is not one line", tc.args, res.stderr)
		}
	}
	c.fails(exitUsage, nil, "cat", "main")
	// An empty path is no file's, and is said to be empty.
	c.fails(exitUsage, []string{"empty PATH"}, "cat", "main", "/a.txt", "")

	// A corrupt object is an error exit, whatever was written before.
	obj := c.r.ObjectPath(repo.KindFile, mustLookup(t, c.r, id, "/a.txt").ID)
	data, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff // the last content byte (stored uncompressed)
	if err := os.WriteFile(obj, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c.fails(exitError, []string{"corrupt", mustLookup(t, c.r, id, "/a.txt").ID.String()}, "cat", "main", "/a.txt")
}

func TestRevParse(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	first := c.commitTree("main", src, "one", 1700000000)
	second := c.commitTree("main", src, "two", 1700000100)

	for rev, want := range map[string]repo.ID{
		"main":                    second,
		second.String():           second,
		second.String()[:12]:      second,
		"main^":                   first,
		"main~1":                  first,
		second.String()[:8] + "^": first,
	} {
		if got := c.ok("rev-parse", rev); got != want.String()+"\n" {
			t.Errorf("rev-parse %s = %q, want %s", rev, got, want)
		}
	}
	var j struct {
		Rev    string  `json:"rev"`
		Commit repo.ID `json:"commit"`
	}
	if err := json.Unmarshal([]byte(c.ok("rev-parse", "--json", "main^")), &j); err != nil || j.Commit != first || j.Rev != "main^" {
		t.Errorf("rev-parse --json = %+v, %v", j, err)
	}

	res := c.fails(exitError, []string{`"nosuch"`, "not found"}, "rev-parse", "nosuch")
	if res.stdout != "" {
		t.Errorf("rev-parse of an unknown ref printed %q", res.stdout)
	}
	c.fails(exitError, []string{"main~5", "commit " + first.String() + " has no parent"}, "rev-parse", "main~5")
	// Counts past any history, however large, find no commit.
	for _, rev := range []string{"main~9223372036854775807~1", "main~1~9223372036854775807", "main~99999999999999999999999", "main~9223372036854775807^", "main^~9223372036854775807"} {
		c.fails(exitError, []string{rev, "has no parent"}, "rev-parse", rev)
	}
	// N is plain decimal digits, without a sign.
	for _, rev := range []string{"main~+1", "main~-0", "main~ 1", "main~1x", "main~+1~2"} {
		c.fails(exitError, []string{`"` + rev + `"`, "bad ~N suffix"}, "rev-parse", rev)
	}
	// A suffix alone names no revision; the error quotes what was given.
	for _, rev := range []string{"^", "~1", "~", "^^~2"} {
		c.fails(exitError, []string{`"` + rev + `"`, "no ref or commit"}, "rev-parse", rev)
	}
	c.fails(exitUsage, nil, "rev-parse")
	c.fails(exitUsage, []string{"--nope"}, "rev-parse", "--nope", "main")
	c.fails(exitUsage, []string{"nosuchcommand"}, "nosuchcommand")
	c.fails(exitUsage, []string{"--depth"}, "log", "--depth=x", "main")
	// An error of the work itself is not a usage error, whatever its
	// words ("invalid argument" is also the text of EINVAL).
	c.fails(exitError, []string{"invalid argument"}, "rev-parse", "invalid argument")
	c.fails(exitError, []string{"accepts "}, "checkout", "accepts ", t.TempDir()+"/co")

	// Several REVs, as OSTree's rev-parse takes: one line each, in order;
	// one unknown REV prints nothing at all.
	head := strings.TrimSpace(c.ok("rev-parse", "main"))
	if got := c.ok("rev-parse", "main^", "main"); got != first.String()+"\n"+head+"\n" {
		t.Errorf("rev-parse main^ main = %q", got)
	}
	if res := c.fails(exitError, []string{`"nosuch"`}, "rev-parse", "main", "nosuch"); res.stdout != "" {
		t.Errorf("rev-parse main nosuch printed %q", res.stdout)
	}
	var js []struct {
		Rev    string  `json:"rev"`
		Commit repo.ID `json:"commit"`
	}
	if err := json.Unmarshal([]byte(c.ok("rev-parse", "--json", "main^", "main")), &js); err != nil || len(js) != 2 || js[0].Commit != first || js[1].Rev != "main" {
		t.Errorf("rev-parse --json of two REVs = %+v, %v", js, err)
	}
}

// rev-parse --single prints a repository's one commit, whatever refs
// point at it, and refuses none or several.
func TestRevParseSingle(t *testing.T) {
	c := newCLI(t)
	c.fails(exitError, []string{"0 commit objects"}, "rev-parse", "--single")
	src := source(t, fixture)
	first := c.commitTree("main", src, "one", 1700000000)
	c.ok("refs", "--delete", "main")
	if got := c.ok("rev-parse", "-S"); got != first.String()+"\n" {
		t.Errorf("rev-parse -S = %q, want %s", got, first)
	}
	c.commitTree("other", src, "two", 1700000100)
	c.fails(exitError, []string{"2 commit objects"}, "rev-parse", "--single")
	c.fails(exitUsage, []string{"--single takes no REV"}, "rev-parse", "--single", "main")
}

// TestRevParseAmbiguous writes two commits whose ids share a 4-digit prefix.
func TestRevParseAmbiguous(t *testing.T) {
	c := newCLI(t)
	base := c.commitTree("main", source(t, fixture), "one", 1700000000)
	bc, err := c.r.ReadCommit(base)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]repo.Commit{}
	var pair [2]repo.Commit
	for i := uint64(0); ; i++ {
		cm := repo.Commit{Timestamp: i, Subject: "twin", RootTree: bc.RootTree, RootMeta: bc.RootMeta}
		p := repo.Sum(cm.Encode()).String()[:4]
		if other, ok := seen[p]; ok {
			pair = [2]repo.Commit{other, cm}
			break
		}
		seen[p] = cm
	}
	txn, err := c.r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids [2]repo.ID
	for i, cm := range pair {
		if ids[i], err = txn.WriteMeta(repo.KindCommit, cm.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	prefix := ids[0].String()[:4]
	res := c.fails(exitError, []string{prefix, "ambiguous", "matches 2 commits", ids[0].Short(), ids[1].Short()}, "rev-parse", prefix)
	if strings.Contains(res.stderr, "...") {
		t.Errorf("two matches listed in full end with \"...\": %q", res.stderr)
	}

	// A longer prefix that tells them apart resolves.
	n := 4
	for ids[0].String()[:n] == ids[1].String()[:n] {
		n++
	}
	if got := c.ok("rev-parse", ids[1].String()[:n]); got != ids[1].String()+"\n" {
		t.Errorf("rev-parse %s = %q, want %s", ids[1].String()[:n], got, ids[1])
	}
}

func TestLogAndShow(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	var ids []repo.ID
	for i, s := range []string{"one", "two", "three"} {
		ids = append(ids, c.commitTree("main", src, s, 1700000000+int64(i)*60, func(o *commit.Options) {
			if i == 0 {
				o.Body = "the body\nsecond line"
				o.Metadata = o.Metadata.Set("version", []byte("1.0"))
			}
		}))
	}

	// OSTree's --print-related lists related objects; otree's commits have
	// none. The revision must still resolve.
	if got := c.ok("show", "--print-related", "main"); got != "" {
		t.Errorf("show --print-related = %q, want nothing", got)
	}
	if got := c.ok("show", "--print-related", "--json", "main"); got != "[]\n" {
		t.Errorf("show --print-related --json = %q, want an empty list", got)
	}
	c.fails(exitError, []string{"nope"}, "show", "--print-related", "nope")

	got := c.ok("log", "main")
	// The three commits hold one tree, so one ContentChecksum.
	first, err := c.r.ReadCommit(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	cc := repo.Sum(first.RootTree[:], first.RootMeta[:])
	want := fmt.Sprintf(`commit %[1]s
Parent:  %[2]s
ContentChecksum:  %[4]s
Date:  2023-11-14 22:15:20 +0000

    three

commit %[2]s
Parent:  %[3]s
ContentChecksum:  %[4]s
Date:  2023-11-14 22:14:20 +0000

    two

commit %[3]s
ContentChecksum:  %[4]s
Date:  2023-11-14 22:13:20 +0000
Version: 1.0

    one

    the body
    second line

`, ids[2], ids[1], ids[0], cc)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}

	var list []commitJSON
	if err := json.Unmarshal([]byte(c.ok("log", "--json", "main^")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != ids[1] || list[1].ID != ids[0] || list[1].Metadata["version"] != "1.0" || !list[1].Parent.IsZero() {
		t.Errorf("log --json = %+v", list)
	}

	// show prints one entry; --print-metadata-key one value, in GVariant
	// text.
	if got := c.ok("show", ids[0].String()); !strings.HasPrefix(got, "commit "+ids[0].String()+"\nContentChecksum:  "+cc.String()+"\nDate:") || !strings.Contains(got, "    the body\n") {
		t.Errorf("show = %q", got)
	}
	if got := c.ok("show", "--print-metadata-key=version", "main~2"); got != "'1.0'\n" {
		t.Errorf("show --print-metadata-key = %q", got)
	}
	c.fails(exitError, []string{`"version"`, ids[2].String()}, "show", "--print-metadata-key=version", "main")
	c.fails(exitError, []string{`no metadata key ""`}, "show", "--print-metadata-key=", "main")
	c.fails(exitError, []string{`detached metadata`}, "show", "--print-detached-metadata-key=", "main")
	var sj commitJSON
	if err := json.Unmarshal([]byte(c.ok("show", "--json", "main")), &sj); err != nil || sj.ID != ids[2] || sj.Parent != ids[1] || sj.Subject != "three" {
		t.Errorf("show --json = %+v, %v", sj, err)
	}
	c.fails(exitError, []string{`"nosuch"`}, "log", "nosuch")

	// History whose parent is not in the repository ends with a note.
	cm, err := c.r.ReadCommit(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	cm.Parent[0], cm.Subject = 0xee, "shallow"
	txn, err := c.r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	shallow, err := txn.WriteMeta(repo.KindCommit, cm.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.SetRef("shallow", shallow); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	got = c.ok("log", "shallow")
	if !strings.HasPrefix(got, "commit "+shallow.String()+"\nParent:  "+cm.Parent.String()+"\n") ||
		!strings.HasSuffix(got, "\n<< History beyond this commit not fetched >>\n") {
		t.Errorf("log of shallow history = %q", got)
	}
}

func TestRefs(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	first := c.commitTree("main", src, "one", 1700000000)
	second := c.commitTree("main", src, "two", 1700000060)

	c.ok("refs", "--create=release/v1/x86_64", "main^")
	if id, err := c.r.ReadRef("release/v1/x86_64"); err != nil || id != first {
		t.Fatalf("created ref = %s, %v; want %s", id, err, first)
	}
	if got := c.ok("refs"); got != "main\nrelease/v1/x86_64\n" {
		t.Errorf("refs = %q", got)
	}
	if got := c.ok("refs", "release"); got != "v1/x86_64\n" {
		t.Errorf("refs release = %q", got)
	}
	if got := c.ok("refs", "--list", "release/v1"); got != "release/v1/x86_64\n" {
		t.Errorf("refs --list release/v1 = %q", got)
	}
	var refs []repo.Ref
	if err := json.Unmarshal([]byte(c.ok("refs", "--json")), &refs); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]repo.Ref{{Name: "main", Commit: second}, {Name: "release/v1/x86_64", Commit: first}}, refs); diff != "" {
		t.Errorf("refs --json (-want +got):\n%s", diff)
	}

	// Creating over an existing ref fails unless --force; so does a ref
	// that would sit above or below another.
	c.fails(exitError, []string{"release/v1/x86_64", "already exists"}, "refs", "--create=release/v1/x86_64", "main")
	c.ok("refs", "--force", "--create=release/v1/x86_64", "main")
	if id, _ := c.r.ReadRef("release/v1/x86_64"); id != second {
		t.Errorf("--force did not move the ref")
	}
	c.fails(exitError, []string{"release/v1", "below"}, "refs", "--create=release/v1", "main")
	c.fails(exitError, []string{"main/x", "above"}, "refs", "--create=main/x", "main")
	c.fails(exitError, []string{`"nosuch"`}, "refs", "--create=new", "nosuch")
	c.fails(exitUsage, nil, "refs", "--create=new")
	c.fails(exitUsage, []string{`invalid ref name "bad..name/"`}, "refs", "--create=bad..name/", "main")

	// --delete removes everything below a prefix; a prefix that matches
	// nothing is noted, and is no failure, as in OSTree.
	c.ok("refs", "--create=release/v2", "main")
	c.ok("refs", "--create=other", "main")
	res := c.run("refs", "--delete", "release", "nosuch")
	if res.code != 0 || res.stderr != "note: no ref matches \"nosuch\"\n" {
		t.Errorf("refs --delete release nosuch: exit %d, stderr %q", res.code, res.stderr)
	}
	if got := c.ok("refs"); got != "main\nother\n" {
		t.Errorf("refs after --delete = %q", got)
	}
	c.ok("refs", "--delete", "other")
	c.ok("refs", "--delete", "other") // again: nothing to do
	if _, err := os.Stat(filepath.Join(c.path, "refs", "heads", "release")); !os.IsNotExist(err) {
		t.Errorf("empty ref directory left behind: %v", err)
	}
	c.fails(exitUsage, nil, "refs", "--delete")
}

func TestReset(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	first := c.commitTree("main", src, "one", 1700000000)
	second := c.commitTree("main", src, "two", 1700000060)
	third := c.commitTree("main", src, "three", 1700000120)
	other := c.commitTree("other", src, "unrelated", 1700000180)

	c.ok("reset", "main", "main~2")
	if id, _ := c.r.ReadRef("main"); id != first {
		t.Fatalf("after reset main = %s, want %s", id, first)
	}
	// The newer commit is no longer an ancestor of main: refused, where
	// OSTree's reset moves the ref anyway, with the command that does.
	c.fails(exitError, []string{"main", third.String(), "not an ancestor", "hint: `otree refs --create=main --force " + third.String() + "`"}, "reset", "main", third.String())
	c.fails(exitError, []string{"main", other.String(), "hint: `otree refs --create=main --force " + other.String() + "`"}, "reset", "main", "other")
	if id, _ := c.r.ReadRef("main"); id != first {
		t.Errorf("a refused reset moved main to %s", id)
	}
	c.ok("reset", "main", "main") // to itself: nothing to do
	c.fails(exitError, []string{`"nosuch"`}, "reset", "nosuch", "main")
	c.fails(exitUsage, nil, "reset", "main")
	_ = second
}

func TestChecksum(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	// Owners as on disk, as checksum sees them.
	id := c.commitTree("main", src, "one", 1700000000, func(o *commit.Options) { o.OwnerUID, o.OwnerGID = nil, nil })
	for _, p := range []string{"/a.txt", "/link", "/run.sh", "/sub/secret"} {
		want := mustLookup(t, c.r, id, p).ID
		if got := c.ok("checksum", filepath.Join(src, p)); got != want.String()+"\n" {
			t.Errorf("checksum %s = %q, want %s", p, got, want)
		}
	}
	want := mustLookup(t, c.r, id, "/sub").MetaID
	if got := c.ok("checksum", filepath.Join(src, "sub")); got != want.String()+"\n" {
		t.Errorf("checksum of a directory = %q, want its dirmeta %s", got, want)
	}
	got := c.ok("checksum", filepath.Join(src, "a.txt"), filepath.Join(src, "link"))
	wantLines := fmt.Sprintf("%s  %s\n%s  %s\n", mustLookup(t, c.r, id, "/a.txt").ID, filepath.Join(src, "a.txt"),
		mustLookup(t, c.r, id, "/link").ID, filepath.Join(src, "link"))
	if got != wantLines {
		t.Errorf("checksum of two paths = %q, want %q", got, wantLines)
	}
	var j []checksumJSON
	if err := json.Unmarshal([]byte(c.ok("checksum", "--json", filepath.Join(src, "sub"))), &j); err != nil ||
		len(j) != 1 || j[0].Kind != "dirmeta" || j[0].ID != want {
		t.Errorf("checksum --json = %+v, %v", j, err)
	}
	c.fails(exitError, []string{filepath.Join(src, "nope")}, "checksum", filepath.Join(src, "nope"))
}

// A /proc file, whose stat gives no size, is refused as such by checksum,
// with its content's length, not as a file being written.
func TestChecksumPseudoFile(t *testing.T) {
	content, err := os.ReadFile("/proc/version")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	c := newCLI(t)
	c.fails(exitError, []string{"/proc/version: a file of procfs", fmt.Sprintf("(%d bytes)", len(content))}, "checksum", "/proc/version")
}

func TestConfig(t *testing.T) {
	c := newCLI(t)
	if got := c.ok("config", "get", "core.mode"); got != "archive\n" {
		t.Errorf("config get core.mode = %q", got)
	}
	c.ok("config", "set", `remote "origin".url`, "https://example.com/repo")
	if got := c.ok("config", "--group", `remote "origin"`, "get", "url"); got != "https://example.com/repo\n" {
		t.Errorf("config get after set = %q", got)
	}
	r2, err := repo.Open(c.path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r2.Config().Get(`remote "origin".url`); v != "https://example.com/repo" {
		t.Errorf("set was not saved: %q", v)
	}
	r2.Close()
	c.ok("config", "unset", `remote "origin".url`)
	c.fails(exitError, []string{`remote \"origin\".url`, "not set"}, "config", "get", `remote "origin".url`)
	c.fails(exitError, []string{"core.mode"}, "config", "set", "core.mode", "bare")
	c.fails(exitUsage, []string{"nodot"}, "config", "get", "nodot")
	c.fails(exitUsage, nil, "config")
	c.fails(exitUsage, []string{"frob"}, "config", "frob")
}

// OSTree's config keys otree does not act on are refused by config set,
// naming the key, unless set to what otree does anyway: set, they would
// pass for having taken effect.
func TestConfigSetRefusesKeysOtreeDoesNotActOn(t *testing.T) {
	c := newCLI(t)
	before, err := os.ReadFile(c.r.Path("config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{
		{"core.disable-xattrs", "true"},
		{"core.payload-link-threshold", "1000"},
		{"core.add-remotes-config-dir", "true"},
		{"core.locking", "false"},
		{"core.parent", "/srv/parent-repo"},
		{"sysroot.readonly", "true"},
		{"sysroot.bls-append-except-default", "quiet=1"},
	} {
		c.fails(exitUsage, []string{kv[0], "does not act on"}, "config", "set", kv[0], kv[1])
	}
	if after, _ := os.ReadFile(c.r.Path("config")); string(after) != string(before) {
		t.Errorf("refused sets changed the config:\n%s", after)
	}
	for _, kv := range [][2]string{
		{"core.disable-xattrs", "false"},
		{"core.add-remotes-config-dir", "false"},
		{"core.locking", "true"},
		{"sysroot.readonly", "false"},
		// GLib's other spellings of the booleans, which OSTree reads.
		{"core.disable-xattrs", "0"},
		{"core.add-remotes-config-dir", "0"},
		{"core.locking", "1"},
		{"sysroot.readonly", "0"},
	} {
		c.ok("config", "set", kv[0], kv[1])
	}
	c.fails(exitUsage, []string{"core.locking", "does not act on"}, "config", "set", "core.locking", "0")
}

// show --raw and log --raw print each commit's stored bytes: they hash to
// the commit id and decode to the commit.
func TestShowLogRaw(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	first := c.commitTree("main", src, "one", 1700000000)
	second := c.commitTree("main", src, "two", 1700000060)
	check := func(entry string, want repo.ID) {
		t.Helper()
		head, hexText, _ := strings.Cut(entry, "\n")
		if head != "commit "+want.String() {
			t.Fatalf("entry starts %q, want commit %s", head, want)
		}
		data, err := hex.DecodeString(strings.ReplaceAll(hexText, "\n", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := repo.Sum(data); got != want {
			t.Errorf("raw bytes of %s hash to %s", want, got)
		}
		if cm, err := repo.DecodeCommit(data); err != nil || cm.Subject == "" {
			t.Errorf("raw bytes of %s do not decode: %v", want, err)
		}
	}
	check(c.ok("show", "--raw", "main"), second)
	// One commit after another with no blank line, as OSTree's log --raw.
	out := c.ok("log", "--raw", "main")
	if strings.Contains(out, "\n\n") {
		t.Errorf("log --raw printed a blank line:\n%s", out)
	}
	i := strings.Index(out, "\ncommit ")
	if i < 0 {
		t.Fatalf("log --raw printed one entry:\n%s", out)
	}
	check(out[:i], second)
	check(out[i+1:], first)
	c.fails(exitUsage, nil, "show", "--raw", "--json", "main")
	c.fails(exitUsage, nil, "log", "--raw", "--json", "main")
}

// Paths that are not UTF-8 cannot be JSON strings: ls --json and diff
// --json give their bytes in path_base64, so two such names stay apart.
func TestJSONNonUTF8Paths(t *testing.T) {
	c := newCLI(t)
	c.commitTree("a", source(t, testtree.Tree{"ok": testtree.File("x", 0o644)}), "one", 1700000000)
	c.commitTree("a", source(t, testtree.Tree{"\xff": testtree.File("1", 0o644), "\xfe": testtree.File("2", 0o644), "ok": testtree.File("x", 0o644)}), "two", 1700000001)
	var ls []struct {
		Path       string `json:"path"`
		PathBase64 string `json:"path_base64"`
	}
	if err := json.Unmarshal([]byte(c.ok("ls", "-R", "--json", "a")), &ls); err != nil {
		t.Fatal(err)
	}
	var diff struct {
		Changes []struct {
			Path       string `json:"path"`
			PathBase64 string `json:"path_base64"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(c.ok("diff", "--json", "a^", "a")), &diff); err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string][][2]string{
		"ls":   {{ls[1].Path, ls[1].PathBase64}, {ls[2].Path, ls[2].PathBase64}, {ls[3].Path, ls[3].PathBase64}},
		"diff": {{diff.Changes[0].Path, diff.Changes[0].PathBase64}, {diff.Changes[1].Path, diff.Changes[1].PathBase64}},
	} {
		var names []string
		for _, p := range got {
			if p[1] == "" {
				names = append(names, p[0])
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(p[1])
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			names = append(names, string(raw))
		}
		slices.Sort(names)
		want := []string{"/\xfe", "/\xff"}
		if what == "ls" {
			want = append(want, "/ok")
			slices.Sort(want)
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s --json names %q, want %q", what, names, want)
		}
	}
}

// ls -X prints xattrs as OSTree's does, in GVariant text: the same lines
// for the same tree.
func TestLsXattrsParity(t *testing.T) {
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, testtree.Tree{"f": testtree.File("f\n", 0o644), "d": testtree.Dir(0o755), "g": testtree.File("g\n", 0o644), "l": testtree.Symlink("f")})
	for _, x := range []struct{ path, name, value string }{
		{"f", "user.a", "x"}, {"f", "user.b", "it's \"q\"\n"}, {"d", "user.c", "\x00\x01"}, {"g", "user.z", "nul-ended\x00"},
	} {
		if err := unix.Setxattr(filepath.Join(src, x.path), x.name, []byte(x.value), 0); err != nil {
			t.Skipf("setxattr: %v", err)
		}
	}
	o.ok("commit", "-b", "m", src)
	c.ok("commit", "-b", "m", src)
	want, got := o.ok("ls", "-X", "-R", "m"), c.ok("ls", "-X", "-R", "m")
	sortLines := func(s string) []string { l := strings.Split(strings.TrimSpace(s), "\n"); slices.Sort(l); return l }
	if d := cmp.Diff(sortLines(want), sortLines(got)); d != "" {
		t.Errorf("ls -X -R (-ostree +otree):\n%s", d)
	}
	if !strings.Contains(got, "[byte 0x78]") {
		t.Errorf("ls -X -R prints no byte array:\n%s", got)
	}
}

// show takes the full id of a file, dirtree or dirmeta object too, and
// prints it as OSTree's show does (ids aside: OSTree's are SHA-256).
func TestShowOtherObjectsParity(t *testing.T) {
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, testtree.Tree{"f": testtree.File("f\n", 0o640), "l": testtree.Symlink("f"), "d/x": testtree.File("", 0o755)})
	if err := unix.Setxattr(filepath.Join(src, "f"), "user.a", []byte("x"), 0); err != nil {
		t.Skipf("setxattr: %v", err)
	}
	o.ok("commit", "-b", "m", src)
	c.ok("commit", "-b", "m", src)
	ids := func(run func(...string) string, p string) []string {
		var out []string
		for _, f := range strings.Fields(run("ls", "-C", "m", p)) {
			if _, err := hex.DecodeString(f); err == nil && len(f) == 64 {
				out = append(out, f)
			}
		}
		return out
	}
	for _, p := range []string{"/f", "/l", "/d"} {
		oid, cid := ids(o.ok, p), ids(c.ok, p)
		for i := range oid {
			want := strings.ReplaceAll(o.ok("show", oid[i]), oid[i], "ID")
			got := strings.ReplaceAll(c.ok("show", cid[i]), cid[i], "ID")
			if got != want {
				t.Errorf("show of %s's object %d: otree %q, ostree %q", p, i, got, want)
			}
		}
	}
	var js struct {
		Kind   string
		Size   uint64
		Mode   uint32
		Xattrs []xattrJSON
	}
	if err := json.Unmarshal([]byte(c.ok("show", "--json", ids(c.ok, "/f")[0])), &js); err != nil || js.Kind != "file" || js.Size != 2 || js.Mode != 0o100640 || len(js.Xattrs) != 1 {
		t.Errorf("show --json of a file object: %+v, %v", js, err)
	}
	// A prefix names commits only, and a missing id is still an error.
	c.fails(exitError, []string{ids(c.ok, "/f")[0][:12], "not found"}, "show", ids(c.ok, "/f")[0][:12])
	c.fails(exitError, []string{"missing"}, "show", strings.Repeat("2", 64))
}

// oddNames are names and texts a tree or commit may hold that a JSON
// string alone cannot carry (not UTF-8) or that a reader must not take
// for structure (newline, quote, backslash, escape sequences, bidi
// override, a leading dash, spaces, 255 bytes).
var oddNames = []string{
	"\xff", "caf\xe9", "\xed\xa0\x80", "nl\nfake  entry", "cr\rx", "tab\tx", `back\slash`, `dq"x`,
	"-dash", " lead", "trail ", "esc\x1b[31mred", "rlo\u202etxt.exe", strings.Repeat("L", 255),
}

// jsonStrings returns every string of the decoded JSON document v, each
// taken from its NAME_base64 sibling when it has one (README: --json).
func jsonStrings(t *testing.T, v any) []string {
	t.Helper()
	dec := func(s any) string {
		raw, err := base64.StdEncoding.DecodeString(s.(string))
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	var out []string
	var walk func(v any, raw any)
	walk = func(v any, raw any) {
		switch v := v.(type) {
		case string:
			if raw != nil {
				out = append(out, dec(raw))
			} else {
				out = append(out, v)
			}
		case []any:
			rl, _ := raw.([]any)
			for i, e := range v {
				var r any
				if i < len(rl) {
					r = rl[i]
				}
				walk(e, r)
			}
		case map[string]any:
			rm, _ := raw.(map[string]any)
			for k, e := range v {
				if strings.HasSuffix(k, "_base64") {
					if _, ok := v[strings.TrimSuffix(k, "_base64")]; ok {
						continue
					}
				}
				r := rm[k]
				if r == nil {
					r = v[k+"_base64"]
				}
				walk(e, r)
			}
		}
	}
	walk(v, nil)
	return out
}

// Every --json output that prints a name or text gives its exact bytes
// back: paths, symlink targets, subjects, bodies, metadata values and
// config values, whatever bytes they hold.
func TestJSONOddNamesRoundTrip(t *testing.T) {
	for _, name := range oddNames {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			c := newCLI(t)
			src := source(t, testtree.Tree{name: testtree.File(name, 0o644), "l": testtree.Symlink("old")})
			c.commitTree("a", src, "one", 1700000000)
			src2 := source(t, testtree.Tree{name: testtree.File(name, 0o644), "l": testtree.Symlink(name)})
			c.commitTree("a", src2, "s"+name, 1700000001, func(o *commit.Options) {
				o.Body = "b" + name
				o.Metadata = repo.Metadata{{Key: "k", Value: []byte(name)}}
			})
			if utf8.ValidString(name) {
				c.ok("config", "set", "--", "x.y", name)
			} else {
				// config set refuses it, which OSTree could not read;
				// written by hand, it is read as it is.
				c.fails(exitUsage, []string{"not valid UTF-8"}, "config", "set", "--", "x.y", name)
				f, err := os.OpenFile(filepath.Join(c.path, "config"), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.WriteString("\n[x]\ny=" + name + "\n") // no byte to escape
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				args []string
				want []string
			}{
				{[]string{"ls", "-R", "a"}, []string{"/" + name, name}},
				{[]string{"ls", "-R", "-C", "-X", "a"}, []string{"/" + name, name}},
				{[]string{"diff", "a^", "a"}, []string{"/l", name}},
				{[]string{"diff", "a", "a^"}, []string{name}},
				{[]string{"diff", "a", src}, []string{"/l", "old"}},
				{[]string{"show", "a"}, []string{"s" + name, "b" + name, name}},
				{[]string{"log", "a"}, []string{"s" + name, "b" + name, name}},
				{[]string{"checksum", filepath.Join(src, name)}, []string{filepath.Join(src, name)}},
				{[]string{"config", "get", "x.y"}, []string{name}},
			} {
				out := c.ok(append(tc.args, "--json")...)
				var v any
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Fatalf("%s: not JSON: %v\n%s", tc.args, err, out)
				}
				got := jsonStrings(t, v)
				for _, w := range tc.want {
					if !slices.Contains(got, w) {
						t.Errorf("%s --json: %q not given back; strings %q\n%s", tc.args, w, got, out)
					}
				}
			}
		})
	}
}

// config's --json gives back the bytes of a key that is not UTF-8, which
// a hand-edited file may hold, in get and unset alike; set refuses one,
// naming it, as OSTree could not read the file.
func TestJSONConfigKeyRoundTrip(t *testing.T) {
	c := newCLI(t)
	for _, k := range []string{"x.\xff", "x.caf\xe9", "x.\xed\xa0\x80"} {
		c.fails(exitUsage, []string{"not valid UTF-8", fmt.Sprintf("%q", strings.TrimPrefix(k, "x."))}, "config", "set", "--json", "--", k, "v")
		cfg, err := os.ReadFile(filepath.Join(c.path, "config"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.path, "config"), append(cfg, "\n[x]\n"+strings.TrimPrefix(k, "x.")+"=v\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"get", "--json", "--", k}, {"unset", "--json", "--", k}} {
			out := c.ok(append([]string{"config"}, args...)...)
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("config %q --json: not JSON: %v\n%s", args, err, out)
			}
			if got := jsonStrings(t, v); !slices.Contains(got, k) {
				t.Errorf("config %q --json: key %q not given back; strings %q\n%s", args, k, got, out)
			}
		}
	}
}

// The text outputs that otree shapes itself (diff's lines, checksum's
// "ID  PATH") print one path per line, valid UTF-8 with nothing that
// moves the cursor or reorders what a terminal shows, and the path reads
// back byte for byte (Go-unquoted when quoted).
func TestTextOddNamesOneLine(t *testing.T) {
	for _, name := range append(oddNames, "c1\u009b31m", "nbsp\u00a0x", `"quoted"`, "ls\u2028x") {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			c := newCLI(t)
			c.commitTree("a", source(t, testtree.Tree{"ok": testtree.File("x", 0o644)}), "one", 1700000000)
			src := source(t, testtree.Tree{"ok": testtree.File("x", 0o644), name: testtree.File("y", 0o644)})
			c.commitTree("a", src, "two", 1700000001)
			for _, tc := range []struct {
				args  []string
				lines int
				path  func(line string) string // the path a line prints
				want  string
			}{
				{[]string{"diff", "a^", "a"}, 1, func(l string) string { return strings.TrimPrefix(l, "A    ") }, "/" + name},
				{[]string{"diff", "a", "a^"}, 1, func(l string) string { return strings.TrimPrefix(l, "D    ") }, "/" + name},
				{[]string{"checksum", filepath.Join(src, name), filepath.Join(src, "ok")}, 2, func(l string) string { _, p, _ := strings.Cut(l, "  "); return p }, filepath.Join(src, name)},
			} {
				out := c.ok(tc.args...)
				if !utf8.ValidString(out) || strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && !strconv.IsPrint(r) }) {
					t.Errorf("otree %s printed raw bytes a terminal acts on: %q", tc.args, out)
				}
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				if len(lines) != tc.lines {
					t.Fatalf("otree %s printed %d lines, want %d: %q", tc.args, len(lines), tc.lines, out)
				}
				p := tc.path(lines[0])
				if strings.HasPrefix(p, `"`) {
					var err error
					if p, err = strconv.Unquote(p); err != nil {
						t.Fatalf("otree %s: %q: %v", tc.args, lines[0], err)
					}
				}
				if p != tc.want {
					t.Errorf("otree %s: path %q reads back as %q", tc.args, tc.want, p)
				}
			}
		})
	}
}

// An error that names an odd path reaches the terminal as valid UTF-8
// with no character that does not print but newline and tab: an escape
// sequence or U+202E in a name is written as its Go escape.
func TestErrorOddNamesPrintable(t *testing.T) {
	for _, name := range append(oddNames, "c1\u009b31m") {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			c := newCLI(t)
			c.commitTree("a", source(t, testtree.Tree{"ok": testtree.File("x", 0o644)}), "one", 1700000000)
			for _, args := range [][]string{
				{"ls", "a", "/" + name},
				{"cat", "a", "/" + name},
				{"commit", "-b", "b", filepath.Join(t.TempDir(), name)},
				{"rev-parse", name + "x"},
			} {
				res := c.run(args...)
				if res.code == 0 {
					t.Fatalf("otree %q succeeded", args)
				}
				if !utf8.ValidString(res.stderr) || strings.ContainsFunc(res.stderr, func(r rune) bool { return r != '\n' && r != '\t' && !strconv.IsPrint(r) }) {
					t.Errorf("otree %q wrote raw bytes a terminal acts on: %q", args, res.stderr)
				}
			}
		})
	}
}
