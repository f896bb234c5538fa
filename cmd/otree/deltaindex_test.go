package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

// noise is n bytes that neither compress nor patch.
func noise(n int, seed int64) string {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return string(b)
}

// idsByPath maps the object ids `ls -R -C REV` prints (otree's and
// OSTree's lines have the same shape) to their paths, for regular files.
func idsByPath(ls string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(ls, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasPrefix(f[0], "-") {
			out[f[4]] = f[5]
		}
	}
	return out
}

// --min-fallback-size has OSTree's meaning and default: on the same tree,
// a delta from scratch leaves out the same files, those over 4 MB by
// default, and none with 0.
func TestStaticDeltaFallbackParity(t *testing.T) {
	o := needOSTree(t, "archive")
	// OSTree counts megabytes in powers of ten and compares them with
	// its serialized object, a few dozen bytes more than the content:
	// sizes a kilobyte off either side of 4 MB and of 5 MB tell apart
	// both that and the MiB otree's other size options use.
	tree := testtree.Tree{
		"small":          testtree.File("small\n", 0o644),
		"usr/under4":     testtree.File(noise(4_000_000-1000, 1), 0o644),
		"usr/over4":      testtree.File(noise(4_000_000+1000, 2), 0o644),
		"usr/lib/bigger": testtree.File(noise(5<<20, 3), 0o644),
		"usr/link":       testtree.Symlink("over4"),
	}
	dir := source(t, tree)
	c := newCLI(t)
	c.commitTree("main", dir, "one", 1700000000)
	o.ok("commit", "-b", "main", "--owner-uid=0", "--owner-gid=0", "--timestamp=2023-11-14 22:13:20", "-s", "one", dir)

	fallbackPaths := func(extra ...string) (ours, theirs []string) {
		t.Helper()
		args := append([]string{"static-delta", "generate", "--empty", "--to=main"}, extra...)
		var d deltaJSON
		if err := json.Unmarshal([]byte(c.ok(append(args, "--json")...)), &d); err != nil {
			t.Fatal(err)
		}
		paths := idsByPath(c.ok("ls", "-R", "-C", "main"))
		for _, f := range d.Fallbacks {
			ours = append(ours, paths[f.ID.String()])
		}
		o.ok(args...)
		rev := strings.TrimSpace(o.ok("rev-parse", "main"))
		show := o.ok("static-delta", "show", rev)
		paths = idsByPath(o.ok("ls", "-R", "-C", "main"))
		for _, line := range strings.Split(show, "\n") {
			if p, ok := paths[strings.TrimSpace(line)]; ok {
				theirs = append(theirs, p)
			}
		}
		slices.Sort(ours)
		slices.Sort(theirs)
		return ours, theirs
	}
	for _, c := range []struct {
		flags []string
		want  []string
	}{
		{nil, []string{"/usr/lib/bigger", "/usr/over4"}},
		{[]string{"--min-fallback-size=0"}, nil},
		{[]string{"--min-fallback-size=5"}, []string{"/usr/lib/bigger"}},
		{[]string{"--min-fallback-size=6"}, nil},
		{[]string{"--min-fallback-size=3"}, []string{"/usr/lib/bigger", "/usr/over4", "/usr/under4"}},
	} {
		ours, theirs := fallbackPaths(c.flags...)
		if !slices.Equal(ours, c.want) || !slices.Equal(theirs, c.want) {
			t.Errorf("generate %v: fallbacks otree %v, OSTree %v, want %v", c.flags, ours, theirs, c.want)
		}
	}
	c.fails(exitUsage, []string{"--min-fallback-size=-1"}, "static-delta", "generate", "--empty", "--min-fallback-size=-1", "main")
}

// Deltas with fallback objects and apply-offline: a delta written with
// --filename carries every object unless --min-fallback-size is given;
// with it, apply-offline names the objects it lacks, changes nothing, and
// applies once they are stored (OSTree refuses any such delta, without
// naming the objects).
func TestStaticDeltaFallbackApplyOffline(t *testing.T) {
	c := newCLI(t)
	big := noise(2<<20, 4)
	b := c.commitTree("main", source(t, testtree.Tree{"a": testtree.File("a\n", 0o644), "big": testtree.File(big, 0o644)}), "one", 1700000000)
	bigID := idsByPath(c.ok("ls", "-R", "-C", "main"))
	var bigHex string
	for id, p := range bigID {
		if p == "/big" {
			bigHex = id
		}
	}
	all := filepath.Join(t.TempDir(), "all")
	c.ok("static-delta", "generate", "--empty", "--filename="+all, "main")
	left := filepath.Join(t.TempDir(), "left")
	out := c.ok("static-delta", "generate", "--empty", "--min-fallback-size=1", "--filename="+left, "main")
	if !strings.Contains(out, "1 fallback object (2.0 MiB) left out") {
		t.Errorf("generate printed %q", out)
	}
	if show := c.ok("static-delta", "show", left); !strings.Contains(show, "Number of fallback entries: 1\n  "+bigHex+"\nTotal Fallback Size: 2097152 (2.1\u00a0MB)\n") {
		t.Errorf("show printed %q", show)
	}

	dst := newBareUserCLI(t)
	dst.fails(exitError, []string{"leaves out 1 fallback object", "file " + bigHex + " (2097152 bytes)", "hint: pull them first, or generate the delta with --min-fallback-size=0"},
		"static-delta", "apply-offline", left)
	if _, err := dst.r.ReadCommit(b); err == nil {
		t.Error("a refused apply-offline stored the commit")
	}
	dst.ok("static-delta", "apply-offline", all)
	// With the object here (from the complete delta), the other applies.
	other := newBareUserCLI(t)
	other.ok("static-delta", "apply-offline", all)
	other.ok("static-delta", "apply-offline", left)
	if _, err := other.r.ReadCommit(b); err != nil {
		t.Error(err)
	}

	// OSTree: a delta with fallbacks never applies offline.
	if o := findOSTree(t, "archive"); o != nil {
		dir := source(t, testtree.Tree{"big": testtree.File(noise(5<<20, 4), 0o644)})
		o.ok("commit", "-b", "main", dir)
		p := filepath.Join(t.TempDir(), "ostree.delta")
		o.ok("static-delta", "generate", "--empty", "--to=main", "--filename="+p)
		target := filepath.Join(t.TempDir(), "target")
		o.okIn(target, "init", "--mode=bare-user")
		if out, err := o.runIn(target, "static-delta", "apply-offline", p); err == nil || !strings.Contains(string(out), "fallback") {
			t.Errorf("OSTree applied a delta with fallbacks offline: %v\n%s", err, out)
		}
	}
}

// The index commands, the summary's indexed-deltas list, and a pull that
// finds a delta through an index: with core.no-deltas-in-summary the
// summary names no delta, and a delta with fallback objects (a file over
// the default 4 MiB) is listed only by the index.
func TestStaticDeltaIndexes(t *testing.T) {
	c := newCLI(t)
	if got := c.ok("static-delta", "indexes"); got != "(No static deltas indexes)\n" {
		t.Errorf("indexes of none = %q", got)
	}
	a := c.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	changed := testtree.Tree{"huge": testtree.File(noise(5<<20, 6), 0o644)}
	for k, v := range fixture {
		changed[k] = v
	}
	changed["a.txt"] = testtree.File("changed\n", 0o644)
	b := c.commitTree("os/stable", source(t, changed), "two", 1700000100)
	out := c.ok("static-delta", "generate", "--to=os/stable")
	if !strings.Contains(out, "1 fallback object") {
		t.Errorf("generate printed %q", out)
	}
	if got := c.ok("static-delta", "indexes"); got != b.String()+"\n" {
		t.Errorf("indexes = %q", got)
	}
	var ids []repo.ID
	if err := json.Unmarshal([]byte(c.ok("static-delta", "indexes", "--json")), &ids); err != nil || len(ids) != 1 || ids[0] != b {
		t.Errorf("indexes --json = %v, %v", ids, err)
	}
	// reindex restores a removed index; --to names a commit by REV.
	idx := filepath.Join(c.path, delta.IndexRel(b))
	os.Remove(idx)
	if out := c.ok("static-delta", "reindex", "--to=os/stable"); out != "" {
		t.Errorf("reindex --to of a commit with a delta printed %q", out)
	}
	if _, err := os.Stat(idx); err != nil {
		t.Fatalf("reindex --to: %v", err)
	}
	// A commit no delta leads to gets no index, and reindex says so, by
	// ref or full id; a stale index of it is removed.
	want := "No static deltas to " + a.String() + ": no index to write\n"
	for _, rev := range []string{"os/stable^", a.String()} {
		if out := c.ok("static-delta", "reindex", "--to="+rev); out != want {
			t.Errorf("reindex --to=%s printed %q, want %q", rev, out, want)
		}
	}
	stale := filepath.Join(c.path, delta.IndexRel(a))
	if err := os.WriteFile(stale, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, want := c.ok("static-delta", "reindex", "--to="+a.String()), "No static deltas to "+a.String()+": removed its index\n"; out != want {
		t.Errorf("reindex --to with a stale index printed %q, want %q", out, want)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale index is still there: %v", err)
	}
	c.fails(exitError, []string{"nosuchref"}, "static-delta", "reindex", "--to=nosuchref")

	c.ok("config", "set", repo.ConfigNoDeltasInSummary, "true")
	c.ok("summary", "-u")
	view := c.ok("summary", "-v")
	if strings.Contains(view, "Static delta "+a.String()) || !strings.Contains(view, "Indexed deltas: true\nStatic delta index "+b.String()+"\n") {
		t.Errorf("summary -v = %q", view)
	}

	url := serve(t, c, nil)
	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "origin", url)
	dst.ok("pull", "origin", a.String())
	dst.ok("refs", "--create=origin:os/stable", a.String())
	var res remote.PullResult
	if err := json.Unmarshal([]byte(dst.ok("pull", "--json", "origin", "os/stable")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Deltas) != 1 || res.Deltas[0] != a.String()+"-"+b.String() {
		t.Errorf("pull used deltas %v", res.Deltas)
	}
	if res.ObjectsFetched < 1 || res.BytesFetched < 5<<20 {
		t.Errorf("pull fetched %d objects, %d bytes: the fallback object is missing", res.ObjectsFetched, res.BytesFetched)
	}
	if got := dst.ok("ls", "-R", "-C", "origin:os/stable"); got != c.ok("ls", "-R", "-C", "os/stable") {
		t.Errorf("pulled tree differs:\n%s", got)
	}

	// Deleting the delta removes the index.
	c.ok("static-delta", "delete", a.String()+"-"+b.String())
	if got := c.ok("static-delta", "indexes"); got != "(No static deltas indexes)\n" {
		t.Errorf("indexes after delete = %q", got)
	}
}

// pull --dry-run's first line is OSTree's, and counts what the update
// downloads as OSTree's does: each fallback object to fetch is one more
// part and adds its size to both totals.
func TestPullDryRunCountsFallbacks(t *testing.T) {
	big := noise(3<<20, 5)
	one := testtree.Tree{"a": testtree.File("a\n", 0o644)}
	two := testtree.Tree{"a": testtree.File("a, changed\n", 0o644), "big": testtree.File(big, 0o644)}
	src := newCLI(t)
	a := src.commitTree("main", source(t, one), "one", 1700000000)
	src.commitTree("main", source(t, two), "two", 1700000100)
	var d deltaJSON
	if err := json.Unmarshal([]byte(src.ok("static-delta", "generate", "--min-fallback-size=1", "--json", "main")), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Parts) != 1 || len(d.Fallbacks) != 1 {
		t.Fatalf("delta has %d parts and %d fallbacks, want 1 and 1", len(d.Parts), len(d.Fallbacks))
	}
	src.ok("summary", "-u")
	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "origin", serve(t, src, nil))
	dst.ok("pull", "origin", a.String())
	dst.ok("refs", "--create=origin:main", a.String())
	line, _, _ := strings.Cut(dst.ok("pull", "--dry-run", "origin", "main"), "\n")
	fb := uint64(len(big))
	if want := "Delta update: 0/2 parts, 0 bytes/" + siBytes(int64(d.Size+fb)) + ", " + siBytes(int64(d.RawSize+fb)) + " total uncompressed"; line != want {
		t.Errorf("pull --dry-run printed\n%q\nwant\n%q", line, want)
	}

	o := findOSTree(t, "archive")
	if o == nil {
		return // the parity check below needs ostree (CI installs Debian's ostree package)
	}
	for i, tree := range []testtree.Tree{one, two} {
		o.ok("commit", "-b", "main", "--owner-uid=0", "--owner-gid=0", "-s", []string{"one", "two"}[i], source(t, tree))
	}
	o.ok("static-delta", "generate", "--min-fallback-size=1", "--to=main")
	o.ok("summary", "-u")
	p := filepath.Join(t.TempDir(), "ostree-client")
	o.okIn(p, "init", "--mode=bare-user")
	o.okIn(p, "remote", "add", "--no-gpg-verify", "origin", serve(t, &cli{t: t, path: o.path}, nil))
	first := strings.TrimSpace(o.ok("rev-parse", "main^"))
	o.okIn(p, "pull", "origin", first)
	o.okIn(p, "refs", "--create=origin:main", first)
	theirs := o.okIn(p, "pull", "--require-static-deltas", "--dry-run", "origin", "main")
	if !strings.HasPrefix(theirs, "Delta update: 0/2 parts, ") {
		t.Errorf("OSTree's pull --dry-run printed %q; want 0/2 parts, as otree's", theirs)
	}
}

// static-delta show ends with OSTree's total lines, in its names and its
// "N (SIZE)" form, the last two counting the fallback objects too; OSTree
// prints every one of them for the same delta.
func TestStaticDeltaShowTotals(t *testing.T) {
	big := noise(3<<20, 6)
	tree := testtree.Tree{"a": testtree.File("a\n", 0o644), "big": testtree.File(big, 0o644)}
	c := newCLI(t)
	id := c.commitTree("main", source(t, tree), "one", 1700000000)
	var d deltaJSON
	if err := json.Unmarshal([]byte(c.ok("static-delta", "generate", "--empty", "--min-fallback-size=1", "--json", "main")), &d); err != nil {
		t.Fatal(err)
	}
	fb := uint64(len(big))
	totals := regexp.MustCompile(`(?m)^(Total [A-Za-z ]+): \d+ \(.+\)$`)
	show := c.ok("static-delta", "show", id.String())
	want := ""
	for _, l := range []struct {
		label string
		n     uint64
	}{{"Total Part Size", d.Size}, {"Total Part Uncompressed Size", d.RawSize}, {"Total Size", d.Size + fb}, {"Total Uncompressed Size", d.RawSize + fb}} {
		want += fmt.Sprintf("%s: %d (%s)\n", l.label, l.n, siBytes(int64(l.n)))
	}
	if !strings.HasSuffix(show, want) {
		t.Errorf("static-delta show printed\n%s\nwant it to end with\n%s", show, want)
	}

	o := findOSTree(t, "archive")
	if o == nil {
		return // the parity check below needs ostree (CI installs Debian's ostree package)
	}
	o.ok("commit", "-b", "main", "--owner-uid=0", "--owner-gid=0", "-s", "one", source(t, tree))
	o.ok("static-delta", "generate", "--empty", "--min-fallback-size=1", "--to=main")
	theirs := map[string]bool{}
	for _, m := range totals.FindAllStringSubmatch(o.ok("static-delta", "show", strings.TrimSpace(o.ok("rev-parse", "main"))), -1) {
		theirs[m[1]] = true
	}
	for _, m := range totals.FindAllStringSubmatch(show, -1) {
		if !theirs[m[1]] {
			t.Errorf("otree's show prints %q, which OSTree's does not (its totals: %v)", m[0], theirs)
		}
	}
}
