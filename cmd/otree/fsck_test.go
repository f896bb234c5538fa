package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// integrityCLI runs otree in-process against one bare-user repository
// created with `otree init`.
type integrityCLI struct {
	t    *testing.T
	repo string
}

func newIntegrityCLI(t *testing.T) *integrityCLI {
	t.Helper()
	c := &integrityCLI{t: t, repo: filepath.Join(t.TempDir(), "repo")}
	if _, _, code := c.run("init", "--mode=bare-user"); code != 0 {
		t.Fatal("init failed")
	}
	return c
}

func (c *integrityCLI) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"--repo=" + c.repo}, args...), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// must runs a command that must exit with code and returns its output.
func (c *integrityCLI) must(code int, args ...string) (string, string) {
	c.t.Helper()
	out, errs, got := c.run(args...)
	if got != code {
		c.t.Fatalf("otree %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, code, out, errs)
	}
	return out, errs
}

// commit commits a fresh tree to branch with the CLI and returns the id.
func (c *integrityCLI) commit(branch string, tree testtree.Tree, ts int64) repo.ID {
	c.t.Helper()
	dir := filepath.Join(c.t.TempDir(), "src")
	os.Mkdir(dir, 0o755)
	testtree.Create(c.t, dir, tree)
	out, _ := c.must(0, "commit", "--branch="+branch, "--fsync=false", "--timestamp=@"+strconv.FormatInt(ts, 10), dir)
	id, err := repo.ParseID(strings.TrimSpace(out))
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

func (c *integrityCLI) open() *repo.Repo {
	c.t.Helper()
	r, err := repo.Open(c.repo)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { r.Close() })
	return r
}

// pullTip pulls the tip of main from good, --depth=1, and returns the
// repository, the tip and its parent, which the pull left out.
func (c *integrityCLI) pullTip(good *integrityCLI) (r *repo.Repo, head, parent repo.ID) {
	c.t.Helper()
	c.must(0, "pull-local", "--depth=1", good.repo, "main")
	r = c.open()
	head, err := r.ResolveRev("main")
	if err != nil {
		c.t.Fatal(err)
	}
	cm, err := r.ReadCommit(head)
	if err != nil {
		c.t.Fatal(err)
	}
	return r, head, cm.Parent
}

// junkObject replaces the object file at obj (a hardlink, maybe, to
// another repository's) with junk.
func junkObject(t *testing.T, obj string) {
	t.Helper()
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rootFile returns the id of a file at the root of a commit's tree.
func integrityRootFile(t *testing.T, r *repo.Repo, c repo.ID, name string) repo.ID {
	t.Helper()
	cm, err := r.ReadCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	dt, err := r.ReadDirTree(cm.RootTree)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := dt.File(name)
	if !ok {
		t.Fatalf("no %s in %s", name, c)
	}
	return f.ID
}

var integrityCLITree = testtree.Tree{
	"a.conf":   testtree.File("alpha\n", 0o644),
	"bin/tool": testtree.File("#!/bin/sh\nexit 0\n", 0o755),
}

func TestFsckCommand(t *testing.T) {
	c := newIntegrityCLI(t)
	id := c.commit("main", integrityCLITree, 1700000000)
	out, _ := c.must(0, "fsck")
	for _, want := range []string{"Validated 1 ref", "No problems found", "1 commit"} {
		if !strings.Contains(out, want) {
			t.Errorf("clean fsck output %q lacks %q", out, want)
		}
	}
	if out, _ := c.must(0, "fsck", "--quiet"); out != "" {
		t.Errorf("--quiet printed %q", out)
	}

	// Corrupt one file object and delete another: both are reported.
	r := c.open()
	flipped := integrityRootFile(t, r, id, "a.conf")
	p := r.ObjectPath(repo.KindFile, flipped)
	b, _ := os.ReadFile(p)
	b[0] ^= 1
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt(b[:1], 0)
	f.Close()
	cm, _ := r.ReadCommit(id)
	dt, _ := r.ReadDirTree(cm.RootTree)
	binTree := dt.Dirs[0].TreeID
	bt, _ := r.ReadDirTree(binTree)
	missing := bt.Files[0].ID
	os.Remove(r.ObjectPath(repo.KindFile, missing))

	out, errs := c.must(exitError, "fsck")
	for _, want := range []string{flipped.String(), "corrupt", missing.String(), "missing", "/bin/tool", "2 problems"} {
		if !strings.Contains(errs, want) {
			t.Errorf("fsck stderr %q lacks %q", errs, want)
		}
	}
	// main's commit lacks objects: it is not counted as validated. Of the
	// objects checked, the corrupt one is counted as such.
	if !strings.Contains(out, "Checked ") || !strings.Contains(out, "\n1 of them damaged or unreadable") {
		t.Errorf("fsck output %q does not count the damaged object", out)
	}
	if !strings.Contains(out, "Validated 0 of 1 refs (1 with problems)") {
		t.Errorf("fsck output %q does not count main as a ref with problems", out)
	}

	out, _ = c.must(exitError, "fsck", "--json")
	var rep struct {
		Problems []struct {
			Type, Kind, ID, Path, TreePath string
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	got := map[string]string{}
	for _, p := range rep.Problems {
		got[p.ID] = p.Type + " " + p.Kind
	}
	if got[flipped.String()] != "corrupt file" || got[missing.String()] != "missing file" || len(got) != 2 {
		t.Errorf("--json problems %+v", rep.Problems)
	}

	out, _ = c.must(exitError, "fsck", "--delete")
	if !strings.Contains(out, "Deleted 1 corrupt object") || !strings.Contains(out, "Marked 1 commit partial") || !strings.Contains(out, id.String()) {
		t.Errorf("fsck --delete output %q", out)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("corrupt object not deleted: %v", err)
	}
	// The commit cannot be checked out: later runs keep failing, as
	// OSTree's do, until a pull completes it.
	out, errs = c.must(exitError, "fsck")
	if !strings.Contains(errs, "partial from fsck-detected corruption") || !strings.Contains(errs, id.String()) ||
		!strings.Contains(errs, "ref main") || strings.Contains(out, "No problems found") || strings.Contains(out, "pulled in part") {
		t.Errorf("fsck after --delete: stdout %q, stderr %q", out, errs)
	}
	// Committed again, every object is here again: the mark stays, and
	// the hint says what takes it away.
	c.commit("again", integrityCLITree, 1700000000)
	_, errs = c.must(exitError, "fsck")
	if !strings.Contains(errs, "every object it needs is here again") || !strings.Contains(errs, "\nhint: `otree fsck --delete` takes the mark away\n") {
		t.Errorf("fsck of a marked commit complete again: %q", errs)
	}
	// A commit whose pull was interrupted (an empty marker) is no error.
	if err := os.WriteFile(r.Path("state", id.String()+".commitpartial"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ = c.must(0, "fsck")
	if !strings.Contains(out, "1 partial commit (pulled in part") || !strings.Contains(out, "No problems found") {
		t.Errorf("fsck with a partially pulled commit: %q", out)
	}
}

// fsck --delete rewrites an object chmod-ed through a checkout's hardlink
// and says so; the repository is clean after it.
func TestFsckDeleteRewritesChmodded(t *testing.T) {
	c := newIntegrityCLI(t)
	id := c.commit("main", integrityCLITree, 1700000000)
	r := c.open()
	obj := r.ObjectPath(repo.KindFile, integrityRootFile(t, r, id, "a.conf"))
	link := filepath.Join(t.TempDir(), "a.conf")
	if err := os.Link(obj, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(link, 0o755); err != nil {
		t.Fatal(err)
	}
	out, errs := c.must(exitError, "fsck", "--delete")
	if !strings.Contains(out, "Rewrote 1 object with the permissions recorded") || strings.Contains(out, "Deleted") ||
		strings.Contains(out, "partial") || !strings.Contains(errs, "rewritten with its recorded permissions") {
		t.Errorf("fsck --delete: stdout %q, stderr %q", out, errs)
	}
	if out, _ := c.must(0, "fsck"); !strings.Contains(out, "No problems found") {
		t.Errorf("fsck after the rewrite: %q", out)
	}
	if fi, err := os.Stat(link); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the checkout's file: %v, %v", fi.Mode(), err)
	}
}

// A directory in an object's place (empty or not) is found corrupt. An
// empty one fsck --delete removes, so that a pull can store the object
// again; one with entries it keeps, saying how to remove it, and until
// then a pull fails naming it rather than counting the object stored and
// taking the commit's partial mark away.
func TestFsckDeleteDirectoryInObjectsPlace(t *testing.T) {
	for _, kind := range []repo.Kind{repo.KindFile, repo.KindDirTree} {
		t.Run(kind.String(), func(t *testing.T) {
			good := newIntegrityCLI(t)
			c := newIntegrityCLI(t)
			id := good.commit("main", integrityCLITree, 1700000000)
			c.must(0, "pull-local", good.repo, "main")
			r := c.open()
			cm, err := r.ReadCommit(id)
			if err != nil {
				t.Fatal(err)
			}
			obj := r.ObjectPath(repo.KindDirTree, cm.RootTree)
			if kind == repo.KindFile {
				obj = r.ObjectPath(repo.KindFile, integrityRootFile(t, r, id, "a.conf"))
			}
			if err := os.Remove(obj); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(obj, 0o755); err != nil {
				t.Fatal(err)
			}
			junk := filepath.Join(obj, "junk")
			if err := os.WriteFile(junk, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			_, errs := c.must(exitError, "fsck", "--delete")
			if !strings.Contains(errs, obj+") is corrupt:") || !strings.Contains(errs, "regular file") {
				t.Errorf("fsck --delete: %q, want %s named as no regular file", errs, obj)
			}
			if !strings.Contains(errs, "rm -r "+obj) {
				t.Errorf("fsck --delete of a directory with entries: %q, want it to say to remove %s", errs, obj)
			}
			if _, err := os.Stat(junk); err != nil {
				t.Errorf("fsck --delete removed what the directory held: %v", err)
			}
			partial := filepath.Join(c.repo, "state", id.String()+".commitpartial")
			if _, errs := c.must(exitError, "pull-local", good.repo, "main"); !strings.Contains(errs, obj) {
				t.Errorf("pull-local past a directory in an object's place: %q, want it named", errs)
			}
			if _, err := os.Stat(partial); err != nil {
				t.Errorf("the commit's partial mark after a pull that could not store %s: %v", obj, err)
			}
			if err := os.Remove(junk); err != nil {
				t.Fatal(err)
			}
			c.must(exitError, "fsck", "--delete")
			if _, err := os.Lstat(obj); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("fsck --delete left the empty directory at %s: %v", obj, err)
			}
			c.must(0, "pull-local", good.repo, "main")
			if _, err := os.Stat(partial); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("partial mark after the pull: %v", err)
			}
			if out, _ := c.must(0, "fsck"); !strings.Contains(out, "No problems found") {
				t.Errorf("fsck after the pull: %q", out)
			}
		})
	}
}

// A commit fsck --delete marked partial that no ref points at, only
// reaches through its history, is not completed by a pull of the branch,
// which fetches the tip alone: the problem names the ref and the --depth
// that reaches it, and a pull with that depth leaves fsck clean. One no ref
// reaches is to be pulled by its id.
func TestFsckPartialAncestorSaysHowToPull(t *testing.T) {
	good := newIntegrityCLI(t)
	c := newIntegrityCLI(t)
	good.commit("main", testtree.Tree{"old": testtree.File("only in the parent\n", 0o644)}, 1700000000)
	good.commit("main", testtree.Tree{"new": testtree.File("the tip\n", 0o644)}, 1700000001)
	r, _, parent := c.pullTip(good)
	// A new file: pull-local hardlinked the good copy's.
	obj := r.ObjectPath(repo.KindFile, integrityRootFile(t, r, parent, "old"))
	junkObject(t, obj)
	c.must(exitError, "fsck", "--delete")
	c.must(0, "pull-local", good.repo, "main")
	_, errs := c.must(exitError, "fsck")
	if want := "ref main has it 1 back in its history (pull that branch with --depth=1, or pull the commit by its id)"; !strings.Contains(errs, parent.String()) || !strings.Contains(errs, want) {
		t.Errorf("fsck of a partial parent: %q, want it to name %s and say %q", errs, parent, want)
	}
	c.must(0, "refs", "--delete", "main")
	if _, errs := c.must(exitError, "fsck"); !strings.Contains(errs, "pull it again by its id to complete it") {
		t.Errorf("fsck of a partial commit no ref reaches: %q, want it to say to pull it by its id", errs)
	}
	c.must(0, "pull-local", "--depth=1", good.repo, "main")
	if out, _ := c.must(0, "fsck"); !strings.Contains(out, "No problems found") {
		t.Errorf("fsck after a pull with --depth=1: %q", out)
	}
}

// A corrupt commit in a branch's history is named with the ref and the
// --depth that fetch it again: once fsck --delete removed it, a missing
// parent is no problem, and nothing else would say it was lost.
func TestFsckCorruptAncestorSaysHowToPull(t *testing.T) {
	good := newIntegrityCLI(t)
	c := newIntegrityCLI(t)
	good.commit("main", integrityCLITree, 1700000000)
	good.commit("main", integrityCLITree, 1700000001)
	r, _, parent := c.pullTip(good)
	obj := r.ObjectPath(repo.KindCommit, parent)
	junkObject(t, obj)
	_, errs := c.must(exitError, "fsck", "--delete")
	if want := "ref main has it 1 back in its history (a pull of that branch with --depth=1 fetches it again)"; !strings.Contains(errs, obj) || !strings.Contains(errs, want) {
		t.Errorf("fsck --delete of a corrupt parent: %q, want it to name %s and say %q", errs, obj, want)
	}
	c.must(0, "pull-local", "--depth=1", good.repo, "main")
	if _, err := r.ReadCommit(parent); err != nil {
		t.Errorf("the parent after a pull with --depth=1: %v", err)
	}
}

// Corrupt detached metadata fsck --delete removes leaves its commit whole,
// so no later fsck reports it: the problem says which pull fetches it
// again (the branch for its tip, the commit by id for an ancestor, whose
// metadata a pull of the branch does not fetch), and those pulls do.
func TestFsckCorruptCommitMetaSaysHowToPull(t *testing.T) {
	good := newIntegrityCLI(t)
	c := newIntegrityCLI(t)
	dir := filepath.Join(t.TempDir(), "src")
	os.Mkdir(dir, 0o755)
	testtree.Create(t, dir, integrityCLITree)
	for _, v := range []string{"1", "2"} {
		good.must(0, "commit", "--branch=main", "--fsync=false", "--add-detached-metadata-string=k="+v, dir)
	}
	r, head, parent := c.pullTip(good)
	for _, id := range []repo.ID{head, parent} {
		junkObject(t, r.ObjectPath(repo.KindCommitMeta, id))
	}
	_, errs := c.must(exitError, "fsck", "--delete")
	for _, want := range []string{
		r.ObjectPath(repo.KindCommitMeta, head) + ") is corrupt: ",
		"; ref main points at its commit (a pull of that branch fetches it again); deleted",
		r.ObjectPath(repo.KindCommitMeta, parent) + ") is corrupt: ",
		"; a pull of its commit by id fetches it again; deleted",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("fsck --delete: %q, want %q", errs, want)
		}
	}
	c.must(0, "pull-local", good.repo, "main")
	c.must(0, "pull-local", good.repo, parent.String())
	for _, id := range []repo.ID{head, parent} {
		if _, err := os.Stat(r.ObjectPath(repo.KindCommitMeta, id)); err != nil {
			t.Errorf("detached metadata of %s after the pulls: %v", id, err)
		}
	}
	if out, _ := c.must(0, "fsck"); !strings.Contains(out, "No problems found") {
		t.Errorf("fsck after the pulls: %q", out)
	}
}

// The objects below a dirtree fsck cannot read are counted as no tree
// reaches them, not as unreferenced objects prune may remove: the commit
// needs them, before and after --delete marks it partial, until a pull
// completes it.
func TestFsckDamagedTreeObjectsNotCalledUnreferenced(t *testing.T) {
	c := newIntegrityCLI(t)
	id := c.commit("main", integrityCLITree, 1700000000)
	r := c.open()
	cm, err := r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	root, err := r.ReadDirTree(cm.RootTree)
	if err != nil {
		t.Fatal(err)
	}
	bin, ok := root.Dir("bin")
	if !ok {
		t.Fatal("no bin in the tree")
	}
	if err := os.WriteFile(r.ObjectPath(repo.KindDirTree, bin.TreeID), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"fsck"}, {"fsck", "--delete"}, {"fsck"}} {
		out, _ := c.must(exitError, args...)
		if !strings.Contains(out, "1 object no readable tree reaches (a commit or tree reported above may need them") || strings.Contains(out, "unreferenced") {
			t.Errorf("otree %s: %q, want the file below bin counted as no readable tree reaches it", strings.Join(args, " "), out)
		}
	}
}

func TestPruneCommand(t *testing.T) {
	c := newIntegrityCLI(t)
	c.commit("main", integrityCLITree, 1700000000)
	c.commit("main", testtree.Tree{"a.conf": testtree.File("beta, a longer version\n", 0o644)}, 1700001000)
	c.commit("main", testtree.Tree{"a.conf": testtree.File("gamma\n", 0o644)}, 1700002000)
	r := c.open()

	out, _ := c.must(0, "prune")
	if !strings.Contains(out, "Total objects: ") || !strings.Contains(out, "No unreachable objects") {
		t.Errorf("prune of a tidy repository: %q", out)
	}
	before := integrityCountFiles(t, r.Path("objects"))
	out, _ = c.must(0, "prune", "--refs-only", "--depth=1", "--no-prune")
	if !regexp.MustCompile(`Would delete: \d+ objects, freeing \d`).MatchString(out) {
		t.Errorf("--no-prune output %q", out)
	}
	if n := integrityCountFiles(t, r.Path("objects")); n != before {
		t.Fatalf("--no-prune deleted %d objects", before-n)
	}
	out, _ = c.must(0, "prune", "--refs-only", "--depth=1")
	m := regexp.MustCompile(`Deleted (\d+) objects, (.+) freed`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "commit: 1,") {
		t.Fatalf("prune output %q", out)
	}
	if n, _ := strconv.Atoi(m[1]); integrityCountFiles(t, r.Path("objects")) != before-n {
		t.Errorf("prune said %s deleted, store lost %d", m[1], before-integrityCountFiles(t, r.Path("objects")))
	}
	c.must(0, "fsck")

	out, _ = c.must(0, "prune", "--refs-only", "--depth=0", "--json")
	var rep repo.PruneReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Commits) != 1 || rep.ByKind["commit"].Objects != 1 || rep.Freed == 0 {
		t.Errorf("--json report %+v", rep)
	}
	c.must(0, "fsck")

	// Usage errors.
	c.must(exitUsage, "prune", "--delete-commit=main", "--no-prune")
	c.must(exitUsage, "prune", "--keep-younger-than=whenever")
	_, errs := c.must(exitError, "prune", "--delete-commit=main")
	if !strings.Contains(errs, "referenced by main") {
		t.Errorf("deleting a ref's commit: %q", errs)
	}
	// An id no stored commit has is refused, the all-zero one too.
	for _, id := range []string{strings.Repeat("0", 64), strings.Repeat("1", 64)} {
		before := integrityCountFiles(t, r.Path("objects"))
		_, errs := c.must(exitError, "prune", "--delete-commit="+id)
		if !strings.Contains(errs, "commit object "+id+" is missing") || strings.Contains(errs, "hint:") {
			t.Errorf("--delete-commit=%s: %q", id, errs)
		}
		if n := integrityCountFiles(t, r.Path("objects")); n != before {
			t.Errorf("--delete-commit=%s deleted %d objects", id, before-n)
		}
	}
	// A tree object gone: prune refuses, naming it, and points at fsck.
	head, _ := r.ReadRef("main")
	cm, err := r.ReadCommit(head)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(r.ObjectPath(repo.KindDirTree, cm.RootTree))
	_, errs = c.must(exitError, "prune")
	if !strings.Contains(errs, "commit "+head.String()+": dirtree object "+cm.RootTree.String()+" is missing") || !strings.Contains(errs, "\nhint: run `otree fsck`\n") {
		t.Errorf("prune with a tree object gone: %q", errs)
	}
}

func integrityCountFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// fsck --verify-bindings and --verify-back-refs pass and fail where OSTree's
// do, for the same commands.
func TestFsckBindingsParityWithOSTree(t *testing.T) {
	src := source(t, fixture)
	for _, cs := range []struct {
		name  string
		steps [][]string
		// whether --verify-bindings and --verify-back-refs pass
		bindings, backRefs bool
	}{
		{"one commit", [][]string{{"commit", "-b", "main", src}}, true, true},
		{"history", [][]string{{"commit", "-b", "main", src}, {"commit", "-b", "main", src}}, true, false},
		{"unbound ref", [][]string{{"commit", "-b", "main", src}, {"refs", "--create=copy", "main"}}, false, false},
		{"no bindings", [][]string{{"commit", "-b", "main", "--no-bindings", src}, {"refs", "--create=copy", "main"}}, true, true},
	} {
		t.Run(cs.name, func(t *testing.T) {
			c := newCLIMode(t, repo.ModeArchive)
			o := needOSTree(t, "archive")
			for _, s := range cs.steps {
				c.ok(s...)
				o.ok(s...)
			}
			for flag, pass := range map[string]bool{"--verify-bindings": cs.bindings, "--verify-back-refs": cs.backRefs} {
				// OSTree 2022.7 turns --verify-back-refs into
				// --verify-bindings only after it has checked the refs,
				// so its --verify-back-refs alone passes an unbound
				// ref; otree's implies --verify-bindings, as both say.
				if _, oerr := o.run("fsck", "-q", flag); (oerr == nil) != pass && !(cs.name == "unbound ref" && flag == "--verify-back-refs") {
					t.Fatalf("OSTree fsck %s: %v, test expects pass=%v", flag, oerr, pass)
				}
				if res := c.run("fsck", "-q", flag); (res.code == 0) != pass {
					t.Errorf("otree fsck %s: exit %d (%s), OSTree pass=%v", flag, res.code, res.stderr, pass)
				}
			}
		})
	}
}

// fsck --delete killed at any of its deletions leaves no commit that lacks
// an object and looks whole, and no cache naming the deleted object.
func TestFsckDeleteKilled(t *testing.T) {
	testbin.NeedStrace(t)
	src := source(t, fixture)
	for when := 1; ; when++ {
		c := newCLIMode(t, repo.ModeBareUser)
		c.ok("commit", "-b", "b", src)
		c.ok("commit", "-b", "b", src) // a stat cache
		id, err := c.r.ResolveRev("b")
		if err != nil {
			t.Fatal(err)
		}
		obj := c.r.ObjectPath(repo.KindFile, mustLookup(t, c.r, id, "/a.txt").ID)
		if err := os.WriteFile(obj, []byte("bad\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		killed, out := c.killedAt("unlinkat", when, "fsck", "--delete")
		if _, err := os.Stat(obj); errors.Is(err, fs.ErrNotExist) {
			if !c.r.IsCommitPartial(id) {
				t.Errorf("fsck --delete killed at unlinkat %d: the object is gone and commit %s is not marked partial", when, id)
			}
			if _, err := os.Stat(c.r.CacheDir()); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("fsck --delete killed at unlinkat %d: the object is gone and the caches are not: %v", when, err)
			}
		}
		if !killed {
			if when < 3 {
				t.Fatalf("fsck --delete finished after %d unlinks: the test kills it nowhere\n%s", when-1, out)
			}
			break
		}
		if when > 50 {
			t.Fatalf("fsck --delete never finished:\n%s", out)
		}
	}
}

// fsck --delete makes its repair durable in order: the partial marker of
// the damaged commit is written and synced (file and state/) before the
// corrupt object is deleted, and the deletion is synced (a syncfs) before
// it reports, so that a crash brings back neither a commit that looks
// whole nor the bad object.
func TestFsckDeleteIsDurable(t *testing.T) {
	testbin.NeedStrace(t)
	c := newCLIMode(t, repo.ModeBareUser)
	c.ok("commit", "-b", "b", source(t, fixture))
	id, err := c.r.ResolveRev("b")
	if err != nil {
		t.Fatal(err)
	}
	file := mustLookup(t, c.r, id, "/a.txt").ID
	obj := c.r.ObjectPath(repo.KindFile, file)
	if err := os.WriteFile(obj, []byte("bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, _ := straced(t, "-e trace=fsync,syncfs,unlinkat,rename,renameat,renameat2", "--repo="+c.path, "fsck", "--delete")
	out := tr.out
	if _, err := os.Stat(obj); !errors.Is(err, fs.ErrNotExist) || !c.r.IsCommitPartial(id) {
		t.Fatalf("fsck --delete left the object (%v) or did not mark %s partial:\n%s", err, id, out)
	}
	data, lines := tr.log, tr.lines
	find := func(from int, match func(string) bool) int { return indexFrom(lines, from, match) }
	state := filepath.Join(c.path, "state")
	marker := find(0, func(l string) bool {
		return strings.Contains(l, "rename") && strings.Contains(l, filepath.Join(state, id.String()+".commitpartial"))
	})
	unlink := find(0, func(l string) bool {
		return strings.Contains(l, "unlinkat(") && strings.Contains(l, filepath.Base(obj)+"\"")
	})
	if marker < 0 || unlink < 0 || marker > unlink {
		t.Fatalf("the marker (line %d) is not written before the object is deleted (line %d):\n%s", marker, unlink, data)
	}
	if sync := find(marker, func(l string) bool { return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+state+">") }); sync < 0 || sync > unlink {
		t.Errorf("no fsync of %s between the marker's rename (line %d) and the deletion (line %d):\n%s", state, marker, unlink, data)
	}
	if find(unlink, func(l string) bool { return strings.Contains(l, "syncfs(") }) < 0 {
		t.Errorf("the deletion (line %d) is not followed by a syncfs:\n%s", unlink, data)
	}
}

// TestFsckDeleteDropsCachesForMissingObjects: after fsck --delete found an
// object missing (and marked its commit partial), the next commit of the
// same tree must store the object again, not take the stat cache's word
// that it is stored and reference it.
func TestFsckDeleteDropsCachesForMissingObjects(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, testtree.Tree{"a": testtree.File("content a\n", 0o644), "b": testtree.File("content b\n", 0o644)})
	// Old enough for the stat cache to record them (its racy rule).
	time.Sleep(150 * time.Millisecond)
	c.ok("commit", "-b", "main", src)
	id, err := c.r.ReadRef("main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.path, "tmp", "cache", "stat-cache")); err != nil {
		t.Fatalf("the commit kept no stat cache, so this test tests nothing: %v", err)
	}
	e := mustLookup(t, c.r, id, "/a")
	os.Remove(c.r.ObjectPath(repo.KindFile, e.ID))
	c.fails(exitError, []string{e.ID.String(), "missing"}, "fsck", "--delete")

	c.ok("commit", "-b", "main", src)
	next, err := c.r.ReadRef("main")
	if err != nil {
		t.Fatal(err)
	}
	if has, _ := c.r.HasObject(repo.KindFile, e.ID); !has {
		t.Errorf("the commit after fsck --delete did not store /a again (it trusted the stat cache)")
	}
	if next == id {
		t.Fatal("the same commit again")
	}
	// Only the old commit is still partial.
	res := c.run("fsck")
	if strings.Contains(res.stderr, e.ID.String()+" is missing") {
		t.Errorf("fsck after the new commit: %s", res.stderr)
	}
}

// fsck --delete, run where object files cannot all be opened for want of
// descriptors (a low RLIMIT_NOFILE, many workers), deletes nothing: an
// object it could not open is reported unreadable, not corrupt, and no
// commit is marked partial. (It deleted every object whose open failed
// with EMFILE, sound as it was.)
func TestFsckDeleteOutOfDescriptors(t *testing.T) {
	c := newCLIMode(t, repo.ModeBare)
	c.ok("commit", "-b", "b", source(t, randomTree(rand.New(rand.NewPCG(1, 2)), 300, 16<<10, 3)))
	before, _ := storedSet(t, c.path)
	exe, env := otreeBinary(t)
	unreadable := false
	// Where the descriptors run out depends on how the workers are
	// scheduled, so the window of counts at which an object's open (and
	// not the repository's) fails can be missed: scan up to three times.
	var outs []string
	for scan := 0; scan < 3 && !unreadable; scan++ {
		unreadable = fsckWithDescriptors(t, c.path, exe, env, before, &outs)
	}
	if !unreadable {
		t.Fatalf("no run failed to open an object: the test tested nothing; the runs said:\n%s", strings.Join(outs, "\n"))
	}
}

// fsckWithDescriptors runs fsck --delete with 6, 7, ... descriptors until
// one run verifies everything, failing t if any deletes an object of
// before or marks a commit partial; it tells whether a run reported an
// object unreadable, and adds each run's output to outs.
func fsckWithDescriptors(t *testing.T, path, exe string, env []string, before map[string]bool, outs *[]string) bool {
	t.Helper()
	unreadable := false
	for n := 6; n <= 64; n++ {
		cmd := exec.Command("sh", "-c", `ulimit -n "$0" && exec "$@"`, strconv.Itoa(n), exe, "--repo="+path, "fsck", "--delete")
		cmd.Env = append(env, "GOMAXPROCS=64")
		out, err := cmd.CombinedOutput()
		*outs = append(*outs, fmt.Sprintf("%d descriptors: %v\n%s", n, err, lastLines(string(out), 3)))
		after, _ := storedSet(t, path)
		for o := range before {
			if !after[o] {
				t.Fatalf("fsck --delete with %d descriptors deleted %s:\n%s", n, o, out)
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(path, "state")); len(ents) > 0 {
			t.Fatalf("fsck --delete with %d descriptors marked commits partial (%s):\n%s", n, ents[0].Name(), out)
		}
		if bytes.Contains(out, []byte("is unreadable: could not be read")) {
			unreadable = true
		}
		if err == nil {
			break // enough descriptors to verify everything
		}
	}
	return unreadable
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// fsck --delete marks every commit that needs a damaged object partial,
// and makes the marks durable together, before the object goes: a file
// a long history shares used to cost two fsyncs a commit (601 for 300
// commits). Once they are complete again it unmarks them together too.
func TestFsckDeleteMarksAndUnmarksWithOneSync(t *testing.T) {
	testbin.NeedStrace(t)
	const n = 20
	src := source(t, testtree.Tree{"shared": testtree.File("shared by every commit\n", 0o644)})
	c := newCLIMode(t, repo.ModeBareUser)
	for i := range n {
		if err := os.WriteFile(filepath.Join(src, "counter"), []byte(strconv.Itoa(i)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.ok("commit", "-b", "main", "-s", "c"+strconv.Itoa(i), src)
	}
	var obj string
	filepath.WalkDir(filepath.Join(c.path, "objects"), func(p string, d fs.DirEntry, err error) error {
		if b, rerr := os.ReadFile(p); err == nil && !d.IsDir() && rerr == nil && string(b) == "shared by every commit\n" {
			obj = p
		}
		return nil
	})
	if obj == "" {
		t.Fatal("no file object holds the shared file")
	}
	if err := os.Chmod(obj, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, []byte("damaged\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := straced(t, "-z -e trace=rename,renameat,renameat2,unlinkat,fsync,fdatasync,syncfs", "--repo="+c.path, "fsck", "--delete")
	if err == nil {
		t.Fatalf("fsck --delete of a damaged object succeeded:\n%s", tr.out)
	}
	lines := tr.lines
	marks, lastMark, syncs := 0, -1, 0
	for i, l := range lines {
		switch {
		case strings.Contains(l, "rename") && strings.Contains(l, `.commitpartial"`):
			marks++
			lastMark = i
		case strings.Contains(l, "fsync(") || strings.Contains(l, "fdatasync(") || strings.Contains(l, "syncfs("):
			syncs++
		}
	}
	if marks != n {
		t.Fatalf("fsck --delete wrote %d partial marks, want %d:\n%s", marks, n, tr.log)
	}
	if syncs > 4 {
		t.Errorf("fsck --delete synced %d times to mark %d commits partial and delete one object, want at most 4", syncs, n)
	}
	name := filepath.Base(obj)
	removal := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "unlinkat(") && strings.Contains(l, name) })
	if removal < lastMark || !slices.ContainsFunc(lines[lastMark:removal], func(l string) bool { return strings.Contains(l, "syncfs(") || strings.Contains(l, "fsync(") }) {
		t.Errorf("the last partial mark (line %d) is not made durable before the object's removal (line %d):\n%s", lastMark+1, removal+1, tr.log)
	}

	// Committed again, every commit is complete: --delete takes all
	// the marks away, with one sync too.
	c.ok("commit", "-b", "again", src)
	tr, err = straced(t, "-z -e trace=unlink,unlinkat,fsync,fdatasync,syncfs", "--repo="+c.path, "fsck", "--delete")
	if err != nil {
		t.Fatalf("fsck --delete of a repository complete again: %v\n%s", err, tr.out)
	}
	unmarks, syncs := 0, 0
	for _, l := range tr.lines {
		switch {
		case strings.Contains(l, "unlink") && strings.Contains(l, `.commitpartial"`):
			unmarks++
		case strings.Contains(l, "fsync(") || strings.Contains(l, "fdatasync(") || strings.Contains(l, "syncfs("):
			syncs++
		}
	}
	if unmarks != n || syncs > 2 {
		t.Errorf("fsck --delete removed %d partial marks with %d syncs, want %d with at most 2:\n%s", unmarks, syncs, n, tr.log)
	}
}
