package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/repo"
)

// pruneHistory commits four versions to each of the branches main and
// stable, a day apart (2020-01-01 to -04), through run (otree's or OSTree's
// CLI). (OSTree reads a name that is also hex, like "a", as a commit id
// prefix when one matches.)
func pruneHistory(t *testing.T, run func(...string) string) {
	t.Helper()
	src := t.TempDir()
	for _, b := range []string{"main", "stable"} {
		for i := 1; i <= 4; i++ {
			if err := os.WriteFile(filepath.Join(src, "f"), []byte(fmt.Sprintf("%s%d\n", b, i)), 0o644); err != nil {
				t.Fatal(err)
			}
			run("commit", "-b", b, fmt.Sprintf("--timestamp=2020-01-0%d 00:00:00", i), src)
		}
	}
}

// historyLen counts the commits log shows of a branch (it stops where
// pruned history begins).
func historyLen(log string) int { return strings.Count("\n"+log, "\ncommit ") }

// The prune options that choose history per branch keep the same commits
// in otree as in OSTree.
func TestPruneBranchOptionsParityWithOSTree(t *testing.T) {
	for _, args := range [][]string{
		{"--refs-only", "--depth=0", "--only-branch=main"},
		{"--depth=1", "--only-branch=stable"},
		{"--depth=0", "--only-branch=main", "--retain-branch-depth=main=2"},
		{"--refs-only", "--depth=0", "--retain-branch-depth=stable=1"},
		{"--keep-younger-than=2020-01-02 12:00:00", "--retain-branch-depth=stable=-1"},
		{"--keep-younger-than=2020-01-02 12:00:00", "--retain-branch-depth=main=1", "--only-branch=stable"},
		// Not compared: OSTree 2022.7 ignores --retain-branch-depth=BRANCH=0
		// (it keeps BRANCH to --depth); otree keeps BRANCH's commit alone.
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			o := needOSTree(t, "archive")
			c := newCLIMode(t, repo.ModeArchive)
			pruneHistory(t, c.ok)
			pruneHistory(t, o.ok)
			c.ok(append([]string{"prune"}, args...)...)
			o.ok(append([]string{"prune"}, args...)...)
			for _, b := range []string{"main", "stable"} {
				got, want := historyLen(c.ok("log", b)), historyLen(o.ok("log", b))
				if got != want {
					t.Errorf("branch %s: otree keeps %d commits, OSTree %d", b, got, want)
				}
			}
		})
	}
}

func TestPruneCommandOptions(t *testing.T) {
	c := newCLIMode(t, repo.ModeArchive)
	pruneHistory(t, c.ok)
	c.fails(exitUsage, []string{"BRANCH=DEPTH"}, "prune", "--retain-branch-depth=main")
	c.fails(exitUsage, []string{"BRANCH=DEPTH"}, "prune", "--retain-branch-depth=main=x")
	c.fails(exitError, []string{"no ref nosuch"}, "prune", "--only-branch=nosuch")
	c.fails(exitUsage, []string{"needs --delete-commit"}, "prune", "--static-deltas-only")
	// Only -1 means all history; OSTree 2022.7's prune takes -2 as 0 (by
	// accident: its walk tests for -1 alone) and its pull aborts on it.
	// Every command taking a depth refuses one below -1 alike.
	c.fails(exitUsage, []string{"--depth=-2", "-1 (all history) or 0 or more"}, "prune", "--refs-only", "--depth=-2")
	c.fails(exitUsage, []string{"--retain-branch-depth=main=-2", "-1 (all history) or 0 or more"}, "prune", "--retain-branch-depth=main=-2")
	c.fails(exitUsage, []string{"--depth=-2", "-1 (all history) or 0 or more"}, "pull-local", "--depth=-2", c.path)
	c.fails(exitUsage, []string{"--depth=-3", "-1 (all history) or 0 or more"}, "pull", "--depth=-3", "origin")
	if got := historyLen(c.ok("log", "main")) + historyLen(c.ok("log", "stable")); got != 8 {
		t.Fatalf("a refused prune deleted commits: %d left", got)
	}

	// --commit-only: the commits go, their content waits for a full prune.
	out := c.ok("prune", "--commit-only", "--refs-only", "--depth=0", "--only-branch=main")
	if !strings.HasPrefix(out, "Total (commit only) objects: 8\nDeleted 3 objects") {
		t.Errorf("prune --commit-only printed %q", out)
	}
	if got := historyLen(c.ok("log", "main")); got != 1 {
		t.Errorf("main has %d commits after --commit-only --depth=0", got)
	}
	if out := c.ok("prune", "--refs-only"); !strings.Contains(out, "dirtree: 3") || strings.Contains(out, "commit:") {
		t.Errorf("the full prune after --commit-only printed %q, want the three old trees and no commit", out)
	}

	// --static-deltas-only: the deltas to the commit go, the commit stays.
	b := strings.TrimSpace(c.ok("rev-parse", "stable"))
	c.ok("static-delta", "generate", "--to="+b)
	if got := c.ok("static-delta", "indexes"); got != b+"\n" {
		t.Errorf("indexes after generate = %q", got)
	}
	c.ok("prune", "--delete-commit="+b, "--static-deltas-only")
	if got := c.ok("static-delta", "list"); strings.Contains(got, b[:8]) {
		t.Errorf("delta to %s survived --static-deltas-only: %q", b, got)
	}
	// Its index goes with it.
	if got := c.ok("static-delta", "indexes"); got != "(No static deltas indexes)\n" {
		t.Errorf("indexes after prune = %q", got)
	}
	if got := c.ok("rev-parse", "stable"); strings.TrimSpace(got) != b {
		t.Errorf("--static-deltas-only moved or deleted stable: %q", got)
	}
}

// prune reports what OSTree's reports, in its words and size format: a
// script that reads OSTree's lines reads otree's. otree's per-kind lines
// come after them.
func TestPruneOutputParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "archive")
	c := newCLIMode(t, repo.ModeArchive)
	pruneHistory(t, c.ok)
	pruneHistory(t, o.ok)
	for _, args := range [][]string{
		{"prune", "--refs-only", "--depth=1", "--no-prune"},
		{"prune", "--refs-only", "--depth=1"},
		{"prune", "--refs-only", "--depth=1"},
	} {
		mine, theirs := normSizes(c.ok(args...)), normSizes(o.ok(args...))
		if !strings.HasPrefix(mine, theirs) {
			t.Errorf("%v: otree\n%s\nOSTree\n%s", args, mine, theirs)
		}
	}
}

// prune counts objects as OSTree's does, and prints its two lines first,
// in a history whose commits carry detached metadata (as signed ones do),
// with a tombstone and with a static delta that goes with its commit:
// OSTree counts a commit with its detached metadata as one object, and no
// tombstone.
func TestPruneOutputParityWithOSTreeDetachedMetadata(t *testing.T) {
	o := needOSTree(t, "archive")
	c := newCLIMode(t, repo.ModeArchive)
	for _, run := range []func(...string) string{c.ok, o.ok} {
		pruneHistory(t, run)
		src := t.TempDir()
		for i := 1; i <= 3; i++ {
			if err := os.WriteFile(filepath.Join(src, "f"), []byte(fmt.Sprintf("signed%d\n", i)), 0o644); err != nil {
				t.Fatal(err)
			}
			run("commit", "-b", "signed", fmt.Sprintf("--timestamp=2020-01-0%d 00:00:00", i),
				fmt.Sprintf("--add-detached-metadata-string=n=%d", i), src)
		}
		run("static-delta", "generate", "--empty", "--to=main^^^")
		// Its tombstone stays, and turns tombstones on for the prunes below.
		run("prune", "--delete-commit="+strings.TrimSpace(run("rev-parse", "signed^^")))
	}
	for _, args := range [][]string{
		{"prune", "--refs-only", "--depth=1", "--no-prune"},
		{"prune", "--refs-only", "--depth=1"},
		{"prune", "--refs-only", "--depth=0", "--commit-only"},
		{"prune", "--refs-only", "--depth=0"},
	} {
		mine, theirs := normSizes(c.ok(args...)), normSizes(o.ok(args...))
		if !strings.HasPrefix(mine, theirs) {
			t.Errorf("%v: otree\n%s\nOSTree\n%s", args, mine, theirs)
		}
	}
}

// A prune killed at any of its deletions leaves no cache naming a deleted
// object: the next commit of the same tree, which would take the stat
// cache's and the header index's word, writes what it needs, and fsck
// finds its branch whole.
func TestPruneKilledLeavesNoStaleCache(t *testing.T) {
	testbin.NeedStrace(t)
	src := source(t, fixture)
	for when := 1; ; when++ {
		c := newCLIMode(t, repo.ModeBareUser)
		c.ok("commit", "-b", "b", src)
		if err := os.WriteFile(filepath.Join(src, "extra"), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.ok("commit", "-b", "b", src)
		c.ok("refs", "--delete", "b")
		killed, out := c.killedAt("unlinkat", when, "prune", "--refs-only", "--depth=0")
		if !killed && !strings.Contains(out, "Freed") && !strings.Contains(out, "Deleted") {
			t.Fatalf("prune: %s", out)
		}
		c.ok("commit", "-b", "c", src)
		if res := c.run("fsck"); res.code != 0 {
			t.Errorf("prune killed at unlinkat %d, then commit: fsck exit %d\n%s%s", when, res.code, res.stdout, res.stderr)
		}
		c.ok("checkout", "-U", "c", filepath.Join(t.TempDir(), "co"))
		if err := os.Remove(filepath.Join(src, "extra")); err != nil {
			t.Fatal(err)
		}
		if !killed {
			if when < 5 {
				t.Fatalf("prune finished after %d unlinks: the test kills it nowhere", when-1)
			}
			break
		}
	}
}

// Prune deletes the commits it drops first and makes their removal
// durable (a syncfs) before it deletes any object they needed: a crash
// part-way never leaves a commit whose tree is partly gone.
func TestPruneSyncsCommitRemovalsFirst(t *testing.T) {
	testbin.NeedStrace(t)
	src := source(t, fixture)
	c := newCLIMode(t, repo.ModeBareUser)
	c.ok("commit", "-b", "b", src)
	if err := os.WriteFile(filepath.Join(src, "extra"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("commit", "-b", "b", src)
	c.ok("refs", "--delete", "b")
	tr, err := straced(t, "-e trace=unlinkat,syncfs", "--repo="+c.path, "prune", "--refs-only", "--depth=0")
	if err != nil {
		t.Fatalf("prune: %v\n%s", err, tr.out)
	}
	data, lines := tr.log, tr.lines
	object := regexp.MustCompile(`unlinkat\(\d+<[^>]*/objects>, "[0-9a-f]{2}/[0-9a-f]{62}\.(commit|dirtree|dirmeta|file)"`)
	lastCommit, firstOther, commits := -1, -1, 0
	for i, l := range lines {
		m := object.FindStringSubmatch(l)
		switch {
		case m == nil:
		case m[1] == "commit":
			lastCommit = i
			commits++
		case firstOther < 0:
			firstOther = i
		}
	}
	if commits != 2 || firstOther < 0 {
		t.Fatalf("prune deleted %d commits (want 2) and other objects from line %d:\n%s", commits, firstOther, data)
	}
	if lastCommit > firstOther || !slices.ContainsFunc(lines[lastCommit:firstOther], func(l string) bool { return strings.Contains(l, "syncfs(") }) {
		t.Errorf("the last commit's removal (line %d) is not followed by a syncfs before the first other object's (line %d):\n%s", lastCommit, firstOther, data)
	}
}

// With tombstones on, prune stores the tombstone of each commit it deletes
// and makes it durable before it removes the commit: a crash in between
// leaves at worst a tombstone beside its commit (the next prune removes
// it), never a commit gone without one, which a pull would then take for
// a parent missing by accident rather than deleted on purpose. Both ways
// a commit goes: unreachable with core.tombstone-commits set, and by
// --delete-commit.
func TestPruneTombstonesDurableBeforeCommitsGo(t *testing.T) {
	testbin.NeedStrace(t)
	for _, tc := range []struct {
		name string
		// prune readies c (ref b at second, whose parent is first) and
		// returns prune's arguments and the commits it deletes.
		prune func(c *cli, first, second string) ([]string, []string)
	}{
		{"unreachable", func(c *cli, first, second string) ([]string, []string) {
			c.ok("config", "set", repo.ConfigTombstoneCommits, "true")
			c.ok("refs", "--delete", "b")
			return []string{"prune", "--refs-only", "--depth=0"}, []string{first, second}
		}},
		{"delete-commit", func(c *cli, first, second string) ([]string, []string) {
			return []string{"prune", "--delete-commit=" + first}, []string{first}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := source(t, fixture)
			c := newCLIMode(t, repo.ModeBareUser)
			first := strings.TrimSpace(c.ok("commit", "-b", "b", src))
			if err := os.WriteFile(filepath.Join(src, "extra"), []byte("x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			second := strings.TrimSpace(c.ok("commit", "-b", "b", src))
			args, gone := tc.prune(c, first, second)

			tr, err := straced(t, "-z -e trace=renameat2,unlinkat,fsync,syncfs", append([]string{"--repo=" + c.path}, args...)...)
			if err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, tr.out)
			}
			data, lines := tr.log, tr.lines
			for _, id := range gone {
				if _, err := os.Stat(tombstonePath(c.path, id)); err != nil {
					t.Errorf("commit %s deleted without a tombstone: %v", id, err)
				}
				name := id[:2] + "/" + id[2:]
				tomb := slices.IndexFunc(lines, func(l string) bool {
					return strings.Contains(l, "renameat2(") && strings.Contains(l, `"`+name+`.tombstone-commit"`) && strings.HasSuffix(l, " = 0")
				})
				removal := slices.IndexFunc(lines, func(l string) bool {
					return strings.Contains(l, "unlinkat(") && strings.Contains(l, `"`+name+`.commit"`) && strings.HasSuffix(l, " = 0")
				})
				if tomb < 0 || removal < 0 || tomb > removal {
					t.Fatalf("commit %s: its tombstone published at line %d, the commit removed at line %d; want both, the tombstone first:\n%s", id, tomb+1, removal+1, data)
				}
				dir := "<" + filepath.Join(c.path, "objects", id[:2]) + ">"
				if !slices.ContainsFunc(lines[tomb:removal], func(l string) bool {
					return strings.Contains(l, "syncfs(") || (strings.Contains(l, "fsync(") && strings.Contains(l, dir))
				}) {
					t.Errorf("commit %s: no fsync of objects/%s (or syncfs) between its tombstone's publication (line %d) and its removal (line %d):\n%s", id, id[:2], tomb+1, removal+1, data)
				}
			}
		})
	}
}

// Prune with refs as roots refuses to run while a ref is unreadable,
// since what it needs is unknown, and says which ref and how to repair
// it; once it is repaired prune runs. (OSTree skips the ref and prunes
// what it needed.) Without --refs-only every commit is a root: prune
// reads no refs, as OSTree, and runs.
func TestPruneRefusesUnreadableRef(t *testing.T) {
	c := newCLI(t)
	pruneHistory(t, c.ok)
	file := filepath.Join(c.path, "refs", "heads", "stable")
	if err := os.WriteFile(file, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := storedSet(t, c.path)
	want := []string{"not pruning while ref stable cannot be read", file, "otree refs --delete stable", "--create=stable --force"}
	c.fails(exitError, want, "prune", "--refs-only", "--no-prune")
	c.fails(exitError, want, "prune", "--refs-only")
	c.ok("prune")
	if after, _ := storedSet(t, c.path); len(after) != len(before) {
		t.Errorf("a refused prune, or one without --refs-only, deleted %d objects", len(before)-len(after))
	}
	c.ok("refs", "--create=stable", "--force", "main")
	c.ok("prune", "--refs-only", "--no-prune")
}
