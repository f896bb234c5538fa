package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
)

// A ref is a file, so "br/x" cannot be committed to while "br/x/y" exists
// (nor "br/x/y/z"): commit refuses before it stores anything, naming the
// ref in the way, as refs --create does.
func TestCommitBranchClash(t *testing.T) {
	c := newCLI(t)
	c.ok("commit", "-b", "br/x/y", source(t, fixture))
	before, _ := storedSet(t, c.path)
	other := source(t, testtree.Tree{"new": testtree.File("not stored\n", 0o644)})
	for _, branch := range []string{"br/x", "br/x/y/z"} {
		c.fails(exitError, []string{"cannot write ref " + branch, "ref br/x/y exists"}, "commit", "-b", branch, "-s", "new", other)
		c.fails(exitError, []string{"cannot write ref " + branch, "ref br/x/y exists"}, "refs", "--create="+branch, "br/x/y")
		// Checked before the source is even read.
		c.fails(exitError, []string{"cannot write ref " + branch, "ref br/x/y exists"}, "commit", "-b", branch, filepath.Join(t.TempDir(), "missing"))
	}
	after, _ := storedSet(t, c.path)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("a refused commit stored objects (-before +after):\n%s", diff)
	}
	if got := c.ok("refs"); got != "br/x/y\n" {
		t.Errorf("refs = %q", got)
	}
}

// refs REMOTE: and refs REMOTE:PREFIX print a remote's refs with their
// "REMOTE:", taking off only the branch part of the prefix, as OSTree
// does; a local prefix is taken off whole; --list prints full names.
func TestRefsRemotePrefix(t *testing.T) {
	c := newCLI(t)
	c.ok("commit", "-b", "os/l", source(t, fixture))
	for _, r := range []string{"origin:foo", "origin:os/x", "other:bar"} {
		c.ok("refs", "--create="+r, "os/l")
	}
	for prefix, want := range map[string]string{
		"origin:":    "origin:foo\norigin:os/x\n",
		"origin:os":  "origin:x\n",
		"origin:os/": "origin:x\n",
		"origin:foo": "origin:foo\n",
		"os":         "l\n",
		"os/l":       "os/l\n",
	} {
		if got := c.ok("refs", prefix); got != want {
			t.Errorf("refs %s = %q, want %q", prefix, got, want)
		}
	}
	if got := c.ok("refs", "--list", "origin:os"); got != "origin:os/x\n" {
		t.Errorf("refs --list origin:os = %q", got)
	}
}

// The directories a new nested branch needs are synced into their parents
// (as is the layout init makes, before its config), and a ref refs
// --create writes is synced with its directory: a crash after the command
// reports success cannot lose them.
func TestNewDirectoriesSynced(t *testing.T) {
	testbin.NeedStrace(t)
	p := filepath.Join(t.TempDir(), "new", "repo")
	trace := func(args ...string) string {
		t.Helper()
		tr, err := straced(t, "-e trace=fsync", append([]string{"--repo=" + p}, args...)...)
		if err != nil {
			t.Fatalf("otree %v: %v\n%s", args, err, tr.out)
		}
		return tr.log
	}
	fsyncs := func(log string) []string {
		var dirs []string
		for _, m := range regexp.MustCompile(`fsync\(\d+<([^>]*)>`).FindAllStringSubmatch(log, -1) {
			dirs = append(dirs, m[1])
		}
		return dirs
	}
	has := func(list []string, s string) int { return slices.Index(list, s) }

	got := fsyncs(trace("init"))
	cfg := slices.IndexFunc(got, func(f string) bool {
		// The config, or the temporary file it is written through: init
		// writes nothing else in the repository's own directory.
		return filepath.Dir(f) == p && regexp.MustCompile(`^(config|\.tmp-)`).MatchString(filepath.Base(f))
	})
	for _, d := range []string{filepath.Dir(filepath.Dir(p)), filepath.Dir(p), p, filepath.Join(p, "objects"), filepath.Join(p, "refs")} {
		if i := has(got, d); i < 0 || cfg < 0 || i > cfg {
			t.Errorf("init: %s not synced before the config (fsyncs: %q)", d, got)
		}
	}

	src := source(t, fixture)
	got = fsyncs(trace("commit", "-b", "os/x86_64/stable", src))
	for _, d := range []string{"refs/heads", "refs/heads/os", "refs/heads/os/x86_64"} {
		if has(got, filepath.Join(p, d)) < 0 {
			t.Errorf("commit -b os/x86_64/stable: %s not synced (fsyncs: %q)", d, got)
		}
	}
	// A ref written outside a commit: its file, then its directory.
	got = fsyncs(trace("refs", "--create=os/x86_64/testing", "os/x86_64/stable"))
	dir := filepath.Join(p, "refs/heads/os/x86_64")
	file := slices.IndexFunc(got, func(f string) bool { return filepath.Dir(f) == dir && strings.HasPrefix(filepath.Base(f), ".tmp-") })
	if i := has(got, dir); file < 0 || i < file {
		t.Errorf("refs --create=os/x86_64/testing: the ref's file and then %s not synced (fsyncs: %q)", dir, got)
	}
}

// A ref name component longer than a file name may be (255 bytes) is an
// invalid name, refused before commit stores anything; 255 bytes work.
func TestRefNameComponentLimit(t *testing.T) {
	c := newCLI(t)
	c.ok("commit", "-b", "main", source(t, fixture))
	before, _ := storedSet(t, c.path)
	other := source(t, testtree.Tree{"new": testtree.File("not stored\n", 0o644)})
	long := strings.Repeat("k", 256)
	for _, name := range []string{long, "a/" + long, long + ":x"} {
		c.fails(exitUsage, []string{"invalid", "256 bytes", "255"}, "commit", "-b", name, "-s", "new", other)
		c.fails(exitUsage, []string{"invalid", "256 bytes", "255"}, "refs", "--create="+name, "main")
	}
	after, _ := storedSet(t, c.path)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("a refused commit stored objects (-before +after):\n%s", diff)
	}
	c.ok("refs", "--create="+long[1:]+"/"+long[1:], "main")
	c.ok("commit", "-b", "origin:"+long[1:], "-s", "new", other)
}

// One corrupt ref file blocks nothing that lists or repairs refs: refs
// lists the others and fails naming the corrupt one, its file and the
// commands that repair it; deleting it, deleting another ref and
// overwriting it with --force work (OSTree lists it, deletes it).
func TestCorruptRef(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	for _, b := range []string{"main", "other", "zeta"} {
		c.ok("commit", "-b", b, "-s", b, src)
	}
	file := filepath.Join(c.path, "refs", "heads", "main")
	corrupt := func() {
		t.Helper()
		if err := os.WriteFile(file, []byte("garbage\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	corrupt()
	res := c.fails(exitError, []string{"ref main", file, "corrupt", "otree refs --delete main"}, "refs")
	if res.stdout != "other\nzeta\n" {
		t.Errorf("refs with main corrupt printed %q, want the other refs", res.stdout)
	}
	if got := c.ok("refs", "other"); got != "other\n" {
		t.Errorf("refs other = %q", got)
	}
	// Whatever stumbles on it says how to repair it.
	for _, args := range [][]string{{"summary", "-u"}, {"prune", "--refs-only"}} {
		c.fails(exitError, []string{"ref main", "hint: `otree refs --delete main` deletes it"}, args...)
	}
	c.ok("refs", "--delete", "zeta")
	c.fails(exitError, []string{"ref main", "corrupt", "--force"}, "refs", "--create=main", "other")
	c.ok("refs", "--create=main", "--force", "other")
	if got, want := c.ok("rev-parse", "main"), c.ok("rev-parse", "other"); got != want {
		t.Errorf("main after --create --force = %q, want %q", got, want)
	}
	corrupt()
	c.ok("refs", "--delete", "main")
	if got := c.ok("refs"); got != "other\n" {
		t.Errorf("refs after deleting the corrupt ref = %q", got)
	}
}

// What a command removes or finds already written is made durable too: a
// deleted remote's cookie file and a deleted ref (the directory left
// synced after the removal), a delta index summary -u leaves as it was
// (synced, since a run that did not sync may have written it), and the
// repos.d link create-usb makes on a stick (its directory synced).
func TestRemovalsAndLinksSynced(t *testing.T) {
	testbin.NeedStrace(t)
	c := newCLI(t)
	c.ok("config", "set", "core.collection-id", "org.example.Os")
	c.commitTree("main", source(t, fixture), "one", 1700000000)
	// trace runs otree under strace and returns the calls, one a line,
	// with the paths of their descriptors.
	trace := func(args ...string) []string {
		t.Helper()
		tr, err := straced(t, "-e trace=fsync,unlink,unlinkat,symlink,symlinkat", append([]string{"--repo=" + c.path}, args...)...)
		if err != nil {
			t.Fatalf("otree %v: %v\n%s", args, err, tr.out)
		}
		return tr.lines
	}
	// after reports whether a line matching first comes before an fsync
	// of path.
	after := func(lines []string, first, path string) bool {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, first) })
		return i >= 0 && slices.ContainsFunc(lines[i+1:], func(l string) bool { return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+path+">") })
	}

	c.ok("remote", "add", "origin", "http://127.0.0.1:9/")
	c.ok("remote", "add-cookie", "origin", "127.0.0.1", "/", "session", "secret")
	if got := trace("remote", "delete", "origin"); !after(got, "origin.cookies.txt", c.path) {
		t.Errorf("remote delete: the removal of the cookie file is not followed by an fsync of %s:\n%s", c.path, strings.Join(got, "\n"))
	}

	c.ok("static-delta", "generate", "--empty", "--to=main")
	c.ok("summary", "-u")
	id, _ := c.r.ReadRef("main")
	index := filepath.Join(c.path, "delta-indexes", id.String()+".index")
	if got := trace("summary", "-u"); !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+index+">") }) ||
		!after(got, index, filepath.Join(c.path, "delta-indexes")) {
		t.Errorf("summary -u with the index unchanged: %s and then its directory are not synced:\n%s", index, strings.Join(got, "\n"))
	}

	// A deleted ref: its file and the directories it leaves empty go,
	// and the directory that remains is synced.
	c.ok("refs", "--create=gone/deep", "main")
	if got := trace("refs", "--delete", "gone/deep"); !after(got, "refs/heads/gone/deep", filepath.Join(c.path, "refs", "heads")) {
		t.Errorf("refs --delete: the removal of the ref is not followed by an fsync of refs/heads:\n%s", strings.Join(got, "\n"))
	}

	stick := t.TempDir()
	got := trace("create-usb", "--destination-repo=updates/os", stick, "org.example.Os", "main")
	if !after(got, "repos.d/org.example.Os", filepath.Join(stick, ".otree", "repos.d")) {
		t.Errorf("create-usb: the repos.d link is not followed by an fsync of its directory:\n%s", strings.Join(got, "\n"))
	}
}

// A pull that brings many refs makes them durable together: their files
// are not synced one by one, each directory is synced once, and a syncfs
// of the repository comes before the first ref takes its place. (One by
// one, 300 refs cost 600 syncs.)
func TestManyRefsSyncedTogether(t *testing.T) {
	testbin.NeedStrace(t)
	src := newCLI(t)
	id := src.commitTree("main", source(t, fixture), "s", 1700000000)
	const n = 300
	for i := range n {
		if err := src.r.SetRef(fmt.Sprintf("mirror/%d/r%03d", i%3, i), id); err != nil {
			t.Fatal(err)
		}
	}
	dst := newCLI(t)
	tr, err := straced(t, "-e trace=fsync,fdatasync,syncfs,rename,renameat,renameat2", "--repo="+dst.path, "pull-local", "--disable-verify-bindings", src.path)
	if err != nil {
		t.Fatalf("pull-local: %v\n%s", err, tr.out)
	}
	refs := filepath.Join(dst.path, "refs")
	syncRe := regexp.MustCompile(`(fsync|fdatasync|syncfs)\(\d+<([^>]*)>`)
	var fileSyncs, dirSyncs, syncfs int
	firstSyncfs, firstRename := -1, -1
	for i, line := range tr.lines {
		if strings.Contains(line, "rename") && strings.Contains(line, `"`+refs+"/heads/mirror/") && firstRename < 0 {
			firstRename = i
		}
		m := syncRe.FindStringSubmatch(line)
		switch {
		case m == nil:
		case m[1] == "syncfs":
			syncfs++
			if firstSyncfs < 0 {
				firstSyncfs = i
			}
		case !strings.HasPrefix(m[2], refs):
		default:
			if fi, err := os.Stat(m[2]); err == nil && fi.IsDir() {
				dirSyncs++
			} else {
				fileSyncs++
			}
		}
	}
	if fileSyncs > 0 || dirSyncs > 10 || syncfs == 0 || firstRename < 0 || firstSyncfs > firstRename {
		t.Errorf("%d refs: %d ref files synced, %d syncs of directories under refs/, %d syncfs (first at line %d, first ref renamed at line %d)",
			n+1, fileSyncs, dirSyncs, syncfs, firstSyncfs, firstRename)
	}
	for i := range n {
		name := fmt.Sprintf("mirror/%d/r%03d", i%3, i)
		if got, err := dst.r.ReadRef(name); err != nil || got != id {
			t.Fatalf("ref %s = %s, %v; want %s", name, got, err, id)
		}
	}
}

// Listing refs costs each ref file one open, one fstat, one read and one
// close: a ref's size is known once it is open, so no second read looks
// for its end, and a ref file is never handed to the poller (an epoll_ctl
// each, refused), which made a listing of 100,000 refs twice as slow.
func TestRefsListReadsEachRefOnce(t *testing.T) {
	testbin.NeedStrace(t)
	c := newCLI(t)
	id := c.commitTree("main", source(t, fixture), "s", 1700000000)
	const n = 40
	for i := range n {
		if err := c.r.SetRef(fmt.Sprintf("many/r%02d", i), id); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := straced(t, "-e trace=read,epoll_ctl", "--repo="+c.path, "refs")
	if err != nil {
		t.Fatalf("refs: %v\n%s", err, tr.out)
	}
	if got := strings.Count(tr.out, "many/r"); got != n {
		t.Fatalf("refs listed %d of the %d refs under many/:\n%s", got, n, tr.out)
	}
	dir := filepath.Join(c.path, "refs", "heads", "many") + "/"
	var reads, polls int
	for _, l := range tr.lines {
		if !strings.Contains(l, "<"+dir) {
			continue
		}
		switch {
		case countCalls([]string{l}, "read") == 1:
			reads++
		case countCalls([]string{l}, "epoll_ctl") == 1:
			polls++
		}
	}
	if reads != n || polls != 0 {
		t.Errorf("listing %d refs: %d reads and %d epoll_ctl calls on their files; want %d and 0", n, reads, polls, n)
	}
}
