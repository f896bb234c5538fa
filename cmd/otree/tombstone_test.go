package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// tombstonePath is where a repository at dir keeps the tombstone of commit
// (OSTree and otree name it alike).
func tombstonePath(dir, commit string) string {
	return filepath.Join(dir, "objects", commit[:2], commit[2:]+".tombstone-commit")
}

// prune --delete-commit behaves as OSTree's: it turns tombstones on and
// leaves one under the same name, log ends where it did, fsck is content,
// and a deep pull stops quietly at the tombstone but fails at a parent
// the server lacks without one; a server that keeps no tombstones ends
// history quietly at either.
func TestTombstoneParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "archive")
	c := newCLIMode(t, repo.ModeArchive)
	pruneHistory(t, c.ok)
	pruneHistory(t, o.ok)
	oldC := strings.TrimSpace(c.ok("rev-parse", "main^^"))
	oldO := strings.TrimSpace(o.ok("rev-parse", "main^^"))
	c.ok("prune", "--delete-commit="+oldC)
	o.ok("prune", "--delete-commit="+oldO)

	if got, want := strings.TrimSpace(c.ok("config", "get", "core.tombstone-commits")), strings.TrimSpace(o.ok("config", "get", "core.tombstone-commits")); got != want || got != "true" {
		t.Errorf("core.tombstone-commits after --delete-commit: otree %q, OSTree %q", got, want)
	}
	for _, p := range []string{tombstonePath(c.path, oldC), tombstonePath(o.path, oldO)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("no tombstone: %v", err)
		}
	}
	if got, want := lastLine(c.ok("log", "main")), lastLine(o.ok("log", "main")); got != want {
		t.Errorf("log ends with %q, OSTree's with %q", got, want)
	}
	c.ok("fsck")
	o.ok("fsck")

	// Pulled over HTTP, by each into a fresh repository.
	c.ok("summary", "-u")
	o.ok("summary", "-u") // OSTree's pull reads the server's config only then
	urlC := serve(t, c, nil)
	urlO := serve(t, &cli{t: t, path: o.path}, nil)
	pull := func(what string, wantOK bool) {
		t.Helper()
		cc := newCLIMode(t, repo.ModeArchive)
		cc.ok("remote", "add", "--no-gpg-verify", "o", urlC)
		res := cc.run("pull", "--depth=-1", "o", "main")
		oc := filepath.Join(t.TempDir(), "ostree-client")
		o.okIn(oc, "init", "--mode=archive")
		o.okIn(oc, "remote", "add", "--no-gpg-verify", "o", urlO)
		out, err := o.runIn(oc, "pull", "--depth=-1", "o", "main")
		if (res.code == 0) != wantOK || (err == nil) != wantOK {
			t.Fatalf("%s: otree pull exit %d (%s), OSTree pull %v (%s); want success %v", what, res.code, res.stderr, err, out, wantOK)
		}
		if !wantOK && !strings.Contains(res.stderr, oldC) {
			t.Errorf("%s: otree's error %q does not name the missing parent", what, res.stderr)
		}
	}
	pull("tombstoned parent", true)

	for _, p := range []string{tombstonePath(c.path, oldC), tombstonePath(o.path, oldO)} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	pull("parent missing without a tombstone", false)

	c.ok("config", "set", "core.tombstone-commits", "false")
	o.ok("config", "set", "core.tombstone-commits", "false")
	pull("parent missing from a server that keeps no tombstones", true)

	c.fails(exitUsage, []string{"core.tombstone-commits", "maybe"}, "config", "set", "core.tombstone-commits", "maybe")
}

// fsck --add-tombstones stores a tombstone for a parent commit deleted by
// hand, under the name prune would give it, and says so: a deep pull from
// a repository that keeps tombstones then stops quietly where it failed
// before.
func TestFsckAddTombstones(t *testing.T) {
	c := newCLIMode(t, repo.ModeArchive)
	pruneHistory(t, c.ok)
	c.ok("config", "set", "core.tombstone-commits", "true")
	old := strings.TrimSpace(c.ok("rev-parse", "main^^"))
	if err := os.Remove(filepath.Join(c.path, "objects", old[:2], old[2:]+".commit")); err != nil {
		t.Fatal(err)
	}
	c.ok("summary", "-u")
	url := serve(t, c, nil)
	pull := func() result {
		cc := newCLIMode(t, repo.ModeArchive)
		cc.ok("remote", "add", "--no-gpg-verify", "o", url)
		return cc.run("pull", "--depth=-1", "o", "main")
	}
	if res := pull(); res.code == 0 || !strings.Contains(res.stderr, old) {
		t.Fatalf("deep pull past a parent deleted by hand: exit %d, %q; want a failure naming %s", res.code, res.stderr, old)
	}
	out := c.ok("fsck", "--add-tombstones")
	if want := "Adding tombstone for commit " + old + "\n"; !strings.Contains(out, want) {
		t.Errorf("fsck --add-tombstones printed %q, want a line %q", out, want)
	}
	if _, err := os.Stat(tombstonePath(c.path, old)); err != nil {
		t.Errorf("no tombstone: %v", err)
	}
	if out := c.ok("fsck", "--add-tombstones"); strings.Contains(out, "Adding tombstone") {
		t.Errorf("second run added tombstones again:\n%s", out)
	}
	if res := pull(); res.code != 0 {
		t.Errorf("deep pull after --add-tombstones: exit %d, %s", res.code, res.stderr)
	}
}
