package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

func TestSummaryCommand(t *testing.T) {
	c := newCLI(t)
	c.fails(exitError, []string{"summary", "hint: create it with `otree summary -u`"}, "summary", "-v")
	a := c.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	b := c.commitTree("main", source(t, testtree.Tree{"f": testtree.File("x", 0o644)}), "two", 1700000000)
	if got := c.ok("summary", "-u", "-m", "title='demo'"); got != "Wrote "+c.r.Path("summary")+": 2 branches\n" {
		t.Errorf("summary -u = %q", got)
	}
	// OSTree's layout: the id on the line after "Latest Commit", with the
	// commit's size and time when it is here.
	size := func(id repo.ID) int {
		data, err := c.r.ReadRaw(repo.KindCommit, id)
		if err != nil {
			t.Fatal(err)
		}
		return len(data)
	}
	at := summaryTime(1700000000) // local time, as OSTree's
	want := fmt.Sprintf("* main\n    Latest Commit (%d bytes):\n      %s\n    Timestamp: %s\n\n"+
		"* os/stable\n    Latest Commit (%d bytes):\n      %s\n    Timestamp: %s\n\ntitle: 'demo'\n", size(b), b, at, size(a), a, at)
	if got := c.ok("summary", "-v"); got != want {
		t.Errorf("summary -v = %q, want %q", got, want)
	}
	for zone, want := range map[string]string{"America/New_York": "2023-11-14T17:13:20-05", "Asia/Kolkata": "2023-11-15T03:43:20+05:30"} {
		if _, err := time.LoadLocation(zone); err == nil {
			if got := inZone(t, zone, otreeIn(t, c.path, "summary", "-v")); !strings.Contains(got, "Timestamp: "+want+"\n") {
				t.Errorf("TZ=%s summary -v = %q, want the time there, %s", zone, got, want)
			}
		}
	}
	// A summary's commit not here: the id alone.
	other := newCLI(t)
	other.ok("remote", "add", "src", "file://"+c.path)
	if got := other.ok("remote", "summary", "src"); !strings.HasPrefix(got, "* main\n    Latest Commit:\n      "+b.String()+"\n\n* os/stable\n") {
		t.Errorf("remote summary of commits not pulled = %q", got)
	}
	var s summaryJSON
	if err := json.Unmarshal([]byte(c.ok("summary", "-v", "--json")), &s); err != nil || len(s.Refs) != 2 || s.Refs[1].Commit != a || s.Metadata["title"] != "demo" {
		t.Errorf("summary -v --json = %+v, %v", s, err)
	}
	c.fails(exitUsage, []string{"-u", "-v"}, "summary")
	c.fails(exitUsage, []string{"-u", "-v"}, "summary", "-u", "--view")
	// As in OSTree, -v beside -u is the global --verbose: it updates.
	if got := c.ok("summary", "-u", "-v"); !strings.HasPrefix(got, "Wrote ") {
		t.Errorf("summary -u -v = %q", got)
	}
	c.fails(exitUsage, []string{"KEY=VALUE"}, "summary", "-u", "-m", "x")
	res := c.run("summary", "-u", "-m", "title=demo") // not GVariant text, as in OSTree
	if res.code != exitUsage || !strings.Contains(res.stderr, "--add-metadata title") || !strings.Contains(res.stderr, "demo") ||
		strings.Contains(res.stderr, "--add-metadata-string") {
		// summary has no --add-metadata-string to suggest (commit has).
		t.Errorf("summary -m title=demo: exit %d, stderr %q", res.code, res.stderr)
	}
	c.fails(exitError, []string{"reserved"}, "summary", "-u", "-m", "otree.deltas='x'")
}

// With core.auto-update-summary (OSTree's key), every command that changes
// refs or deltas writes the summary anew, keeping the admin's metadata;
// without it none does; a signed summary is left alone, with a warning.
func TestAutoUpdateSummary(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	c.ok("commit", "-b", "main", src)
	if _, err := os.Stat(c.r.Path("summary")); !os.IsNotExist(err) {
		t.Fatalf("a commit without core.auto-update-summary wrote a summary: %v", err)
	}
	c.fails(exitUsage, []string{`core.auto-update-summary="yes"`}, "config", "set", "core.auto-update-summary", "yes")
	c.ok("config", "set", "core.auto-update-summary", "true")
	refs := func() string {
		t.Helper()
		var s summaryJSON
		if err := json.Unmarshal([]byte(c.ok("summary", "-v", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range s.Refs {
			out = append(out, r.Name+"="+r.Commit.String()[:8])
		}
		for _, d := range s.Deltas {
			out = append(out, "delta "+d.String())
		}
		for k, v := range s.Metadata {
			out = append(out, k+":"+v)
		}
		return strings.Join(out, " ")
	}
	rev := func(r string) string { return strings.TrimSpace(c.ok("rev-parse", r))[:8] }

	c.ok("commit", "-b", "main", src, "-s", "two")
	if got, want := refs(), "main="+rev("main"); got != want {
		t.Errorf("after commit: summary lists %q, want %q", got, want)
	}
	c.ok("summary", "-u", "-m", "title='demo'")
	c.ok("refs", "--create=stable", "main^")
	if got, want := refs(), "main="+rev("main")+" stable="+rev("main^")+" title:demo"; got != want {
		t.Errorf("after refs --create: %q, want %q", got, want)
	}
	c.ok("reset", "main", "main^")
	c.ok("refs", "--delete", "stable")
	if got, want := refs(), "main="+rev("main")+" title:demo"; got != want {
		t.Errorf("after reset and refs --delete: %q, want %q", got, want)
	}
	c.ok("commit", "-b", "main", src, "-s", "three")
	c.ok("static-delta", "generate", "main")
	name := strings.TrimSpace(c.ok("static-delta", "list"))
	if got := refs(); !strings.Contains(got, "delta "+name) {
		t.Errorf("after static-delta generate: %q, want delta %s", got, name)
	}
	c.ok("static-delta", "delete", name)
	if got := refs(); strings.Contains(got, "delta") {
		t.Errorf("after static-delta delete: %q", got)
	}
	// Listing changes nothing, so writes nothing.
	before, _ := os.Stat(c.r.Path("summary"))
	time.Sleep(10 * time.Millisecond)
	c.ok("refs")
	c.ok("log", "main")
	if after, _ := os.Stat(c.r.Path("summary")); !after.ModTime().Equal(before.ModTime()) {
		t.Error("refs or log rewrote the summary")
	}

	_, secret, _ := generateKey(t, c)
	c.ok("summary", "-u", "--sign="+secret)
	signed, _ := os.ReadFile(c.r.Path("summary"))
	res := c.run("commit", "-b", "main", src, "-s", "four")
	if res.code != 0 || !strings.Contains(res.stderr, "warning:") || !strings.Contains(res.stderr, "signed") ||
		!strings.Contains(res.stderr, "\nhint: write it with `otree summary -u --sign=KEY`\n") {
		t.Errorf("commit beside a signed summary: exit %d, stderr %q; want success and a warning", res.code, res.stderr)
	}
	if now, _ := os.ReadFile(c.r.Path("summary")); string(now) != string(signed) {
		t.Error("the signed summary was rewritten")
	}
}

// core.commit-update-summary, OSTree's older name for
// core.auto-update-summary, turns it on too, whatever
// auto-update-summary says, as in OSTree 2022.7 (either key set to true
// has the summary written anew).
func TestCommitUpdateSummaryAlias(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	c.fails(exitUsage, []string{`core.commit-update-summary="yes"`}, "config", "set", "core.commit-update-summary", "yes")
	c.ok("config", "set", "core.commit-update-summary", "true")
	c.ok("commit", "-b", "main", src)
	if _, err := os.Stat(c.r.Path("summary")); err != nil {
		t.Fatalf("a commit with core.commit-update-summary=true wrote no summary: %v", err)
	}
	c.ok("config", "set", "core.auto-update-summary", "false")
	before, _ := os.ReadFile(c.r.Path("summary"))
	c.ok("commit", "-b", "main", src, "-s", "two")
	if after, _ := os.ReadFile(c.r.Path("summary")); string(after) == string(before) {
		t.Error("with core.auto-update-summary=false and core.commit-update-summary=true a commit left the summary as it was; OSTree writes it anew")
	}
	c.ok("config", "set", "core.commit-update-summary", "false")
	before, _ = os.ReadFile(c.r.Path("summary"))
	c.ok("commit", "-b", "main", src, "-s", "three")
	if after, _ := os.ReadFile(c.r.Path("summary")); string(after) != string(before) {
		t.Error("with both keys false a commit wrote the summary anew")
	}
}

// summary -m takes VALUE in GVariant text, as OSTree's does: a string
// must be quoted, and -v prints it as OSTree prints it.
func TestSummaryMetadataParity(t *testing.T) {
	o := needOSTree(t, "archive")
	c := newCLI(t)
	src := source(t, fixture)
	o.ok("commit", "-b", "main", src)
	c.ok("commit", "-b", "main", src)
	if out, err := o.run("summary", "-u", "-m", "foo=bar"); err == nil {
		t.Errorf("ostree summary -m foo=bar succeeded: %s", out)
	}
	c.fails(exitUsage, []string{"foo", "bar"}, "summary", "-u", "-m", "foo=bar")
	o.ok("summary", "-u", "-m", "foo='bar'", "-m", `say="it's"`)
	c.ok("summary", "-u", "-m", "foo='bar'", "-m", `say="it's"`)
	for _, line := range []string{"foo: 'bar'\n", `say: "it's"` + "\n"} {
		if got := o.ok("summary", "-v"); !strings.Contains(got, line) {
			t.Errorf("ostree summary -v lacks %q:\n%s", line, got)
		}
		if got := c.ok("summary", "-v"); !strings.Contains(got, line) {
			t.Errorf("otree summary -v lacks %q:\n%s", line, got)
		}
	}
}

// A command whose change is made but whose summary (core.auto-update-summary)
// cannot be written for want of space fails saying the change was made and
// the summary is as it was, so that it is not made again: the branch it
// created is there, and summary -u writes the summary once there is room.
func TestAutoUpdateSummaryFullDiskSaysChangeMade(t *testing.T) {
	mnt := testtree.SmallFS(t, 2<<20)
	p := filepath.Join(mnt, "repo")
	r, err := repo.Init(p, repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c := &cli{t: t, path: p, r: r}
	id := c.commitTree("main", source(t, fixture), "one", 1700000000)
	// Enough branches for a summary of several pages; a ref takes one.
	for i := range 400 {
		if err := r.SetRef(fmt.Sprintf("branch-%03d", i), id); err != nil {
			t.Fatal(err)
		}
	}
	c.ok("config", "set", "core.min-free-space-percent", "0")
	c.ok("config", "set", "core.auto-update-summary", "true")
	c.ok("summary", "-u")
	before, err := os.ReadFile(filepath.Join(p, "summary"))
	if err != nil || len(before) < 3*4096 {
		t.Fatalf("summary of %d bytes (%v), want more than three pages", len(before), err)
	}
	testtree.FillTo(t, mnt, 2*4096)
	sum := filepath.Join(p, "summary")
	c.fails(exitError, []string{"the command was done, but " + sum + " is as it was", "otree summary -u", "no space left on device"},
		"refs", "--create=stable", "main")
	if got := strings.TrimSpace(c.ok("rev-parse", "stable")); got != id.String() {
		t.Errorf("stable after the command: %q, want %s", got, id)
	}
	if after, _ := os.ReadFile(sum); string(after) != string(before) {
		t.Error("the summary changed")
	}
	if err := os.Remove(filepath.Join(mnt, "fill")); err != nil {
		t.Fatal(err)
	}
	c.ok("summary", "-u")
	if !strings.Contains(c.ok("summary", "-v"), "stable") {
		t.Error("summary -u after freeing space does not list stable")
	}
}
