package repo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

func mustPrune(t *testing.T, r *repo.Repo, opts repo.PruneOptions) *repo.PruneReport {
	t.Helper()
	rep, err := r.Prune(context.Background(), opts)
	if err != nil {
		t.Fatalf("prune %+v: %v", opts, err)
	}
	return rep
}

// countObjects counts the entries of objects/ and their total size.
func countStored(t *testing.T, r *repo.Repo) (n, size int64) {
	t.Helper()
	err := filepath.Walk(r.Path("objects"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			n++
			size += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}

func stored(t *testing.T, r *repo.Repo, kind repo.Kind, id repo.ID) bool {
	t.Helper()
	ok, err := r.HasObject(kind, id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// mustFsck asserts the repository checks clean and returns the report.
func mustFsckClean(t *testing.T, r *repo.Repo) *repo.FsckReport {
	t.Helper()
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err != nil {
		t.Fatalf("fsck: %v", err)
	}
	return rep
}

// commitHistory commits four versions of a tree to main, each with a file
// only it has ("v<i>"), and returns the commits oldest first and those files.
func commitHistory(t *testing.T, r *repo.Repo) (commits, files []repo.ID) {
	t.Helper()
	return branchHistory(t, r, "main")
}

// branchHistory is commitHistory on another branch, whose files differ from
// every other branch's (timestamps 1700001000 ... 1700004000).
func branchHistory(t *testing.T, r *repo.Repo, branch string) (commits, files []repo.ID) {
	t.Helper()
	src := integritySource(t, integrityTree)
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("v%d", i)
		if i > 1 {
			os.Remove(filepath.Join(src, fmt.Sprintf("v%d", i-1)))
		}
		os.WriteFile(filepath.Join(src, name), []byte(branch+" version "+name+" with some bytes\n"), 0o644)
		c := integrityCommit(t, r, branch, src, int64(1700000000+i*1000))
		commits = append(commits, c)
		files = append(files, integrityFileID(t, r, c, name))
	}
	return commits, files
}

func TestPruneDefaultKeepsEveryCommit(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	integrityCommit(t, r, "main", src, 1700000000)
	os.WriteFile(filepath.Join(src, "orphan-only"), []byte("orphan\n"), 0o644)
	orphan := integrityCommit(t, r, "", src, 1700000100, func(o *commit.Options) { o.Orphan = true })

	// An object no commit needs, as an interrupted commit leaves.
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("loose object nobody references\n")
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
	loose := repo.FileID(h, content)
	if _, err := txn.WriteFile(h, loose, content); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	before, _ := countStored(t, r)

	rep := mustPrune(t, r, repo.PruneOptions{Depth: repo.InfiniteDepth})
	if rep.Deleted != 1 || rep.ByKind["file"].Objects != 1 || rep.Total != before {
		t.Fatalf("report %+v: want exactly the loose file deleted of %d", rep, before)
	}
	if rep.Freed < int64(len(content)) {
		t.Errorf("freed %d bytes, want at least %d", rep.Freed, len(content))
	}
	if stored(t, r, repo.KindFile, loose) {
		t.Error("loose object survived")
	}
	if !stored(t, r, repo.KindCommit, orphan) {
		t.Error("default prune deleted an unreferenced commit (every commit is a root)")
	}
	// Depth without RefsOnly removes no history either.
	if rep := mustPrune(t, r, repo.PruneOptions{Depth: 0}); rep.Deleted != 0 {
		t.Fatalf("depth 0 without refs-only deleted %d objects", rep.Deleted)
	}
}

func TestPruneRefsOnlyRemovesUnreferencedCommits(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	other := integritySource(t, testtree.Tree{
		"etc/demo.conf": testtree.File("key=value\n", 0o644), // shared with main
		"big":           testtree.File(string(make([]byte, 100000)), 0o644),
	})
	oc := integrityCommit(t, r, "other", other, 1700000100, func(o *commit.Options) {
		o.DetachedMetadata = repo.Metadata{{Key: "sig", Value: []byte("signature")}}
	})
	big := integrityFileID(t, r, oc, "big")
	shared := integrityFileID(t, r, oc, "etc/demo.conf")
	os.WriteFile(r.Path("state", oc.String()+".commitpartial"), nil, 0o644)
	os.MkdirAll(r.CacheDir(), 0o755)
	os.WriteFile(filepath.Join(r.CacheDir(), "stat-cache"), []byte("x"), 0o644)
	if err := r.SetRef("other", repo.ID{}); err != nil {
		t.Fatal(err)
	}
	n0, size0 := countStored(t, r)

	rep := mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth})
	n1, size1 := countStored(t, r)
	if rep.Deleted != n0-n1 || rep.Freed != size0-size1 {
		t.Fatalf("report says %d objects / %d bytes, store lost %d / %d", rep.Deleted, rep.Freed, n0-n1, size0-size1)
	}
	// The commit, its detached metadata, its two dirtrees and the big file.
	if rep.Deleted != 5 || rep.ByKind["dirtree"].Objects != 2 || rep.ByKind["commit"].Objects != 1 || rep.ByKind["commitmeta"].Objects != 1 ||
		rep.ByKind["file"].Objects != 1 || rep.ByKind["file"].Bytes != 100000 {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Commits) != 1 || rep.Commits[0] != oc {
		t.Fatalf("deleted commits %v, want [%s]", rep.Commits, oc)
	}
	if stored(t, r, repo.KindCommit, oc) || stored(t, r, repo.KindFile, big) || stored(t, r, repo.KindCommitMeta, oc) {
		t.Fatal("unreferenced commit's objects survived")
	}
	if !stored(t, r, repo.KindFile, shared) {
		t.Fatal("an object main still needs was deleted")
	}
	if _, err := os.Stat(r.Path("state", oc.String()+".commitpartial")); !os.IsNotExist(err) {
		t.Errorf("partial marker of the deleted commit survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.CacheDir(), "stat-cache")); !os.IsNotExist(err) {
		t.Errorf("caches not dropped: %v", err)
	}
	if rep := mustFsckClean(t, r); rep.Unreferenced != 0 {
		t.Errorf("%d unreferenced objects remain", rep.Unreferenced)
	}
}

func TestPruneDepth(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, files := commitHistory(t, r)
	rep := mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 1})
	for i, c := range commits {
		keep := i >= 2 // the ref's commit and one parent
		if stored(t, r, repo.KindCommit, c) != keep || stored(t, r, repo.KindFile, files[i]) != keep {
			t.Errorf("commit %d: kept=%v, want %v", i+1, !keep, keep)
		}
	}
	if rep.ByKind["commit"].Objects != 2 {
		t.Errorf("report %+v: want 2 commits deleted", rep)
	}
	mustFsckClean(t, r)
	// Walking history stops quietly at the pruned parent.
	if rep := mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth}); rep.Deleted != 0 {
		t.Errorf("second prune deleted %d", rep.Deleted)
	}
	mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 0})
	if stored(t, r, repo.KindCommit, commits[2]) || !stored(t, r, repo.KindCommit, commits[3]) {
		t.Error("depth 0 must keep exactly the ref's commit")
	}
	mustFsckClean(t, r)
}

// Only -1 means all history: a depth below it is refused, for Depth and
// for a BranchDepth, before anything is deleted.
func TestPruneDepthBelowInfiniteRefused(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	refs, err := r.ListRefs("")
	if err != nil || len(refs) == 0 {
		t.Fatalf("refs %v: %v", refs, err)
	}
	for _, o := range []repo.PruneOptions{
		{RefsOnly: true, Depth: -2},
		{BranchDepth: map[string]int{refs[0].Name: -5}},
	} {
		if _, err := r.Prune(context.Background(), o); err == nil || !strings.Contains(err.Error(), "invalid depth") {
			t.Errorf("%+v: err = %v, want an invalid depth", o, err)
		}
	}
	for i, c := range commits {
		if !stored(t, r, repo.KindCommit, c) {
			t.Errorf("a refused prune deleted commit %d", i+1)
		}
	}
}

func TestPruneKeepYoungerThan(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r) // timestamps 1700001000 ... 1700004000
	mustPrune(t, r, repo.PruneOptions{KeepYoungerThan: time.Unix(1700002500, 0)})
	for i, c := range commits {
		if keep := i >= 2; stored(t, r, repo.KindCommit, c) != keep {
			t.Errorf("commit %d kept=%v, want %v", i+1, !keep, keep)
		}
	}
	// A commit made at the very second given is not older than it: kept,
	// as OSTree's prune keeps it.
	mustPrune(t, r, repo.PruneOptions{KeepYoungerThan: time.Unix(1700003000, 0)})
	if !stored(t, r, repo.KindCommit, commits[2]) {
		t.Error("the commit made at the --keep-younger-than time was pruned")
	}
	// The ref's commit is kept however old.
	mustPrune(t, r, repo.PruneOptions{KeepYoungerThan: time.Unix(1800000000, 0)})
	if !stored(t, r, repo.KindCommit, commits[3]) || stored(t, r, repo.KindCommit, commits[2]) {
		t.Error("want only the ref's commit left")
	}
	mustFsckClean(t, r)
}

// Refs that share history walk it once under KeepYoungerThan: with a ref
// at each commit of a chain, prune reads each commit a bounded number of
// times, not once per ref below it (which made the walk quadratic).
func TestPruneKeepYoungerThanWalksSharedHistoryOnce(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	const n = 30
	var commits []repo.ID
	for i := 0; i < n; i++ {
		os.WriteFile(filepath.Join(src, "counter"), []byte(fmt.Sprintf("%d\n", i)), 0o644)
		c := integrityCommit(t, r, "main", src, int64(1700000000+i*100))
		if err := r.SetRef(fmt.Sprintf("at/%d", i), c); err != nil {
			t.Fatal(err)
		}
		commits = append(commits, c)
	}
	reads := 0
	defer repo.SetPruneReadHook(func(repo.ID) { reads++ })()
	mustPrune(t, r, repo.PruneOptions{KeepYoungerThan: time.Unix(1700000000, 0)})
	if got := kept(t, r, commits); slices.Contains(got, false) {
		t.Fatalf("kept %v, want every commit (all are young enough)", got)
	}
	// Each ref reads its own commit, and the walks read each parent once
	// between them; n refs and one branch: 2n+1.
	if reads > 2*n+1 {
		t.Errorf("prune read %d commits for %d refs on a chain of %d: want at most %d", reads, n+1, n, 2*n+1)
	}
	mustFsckClean(t, r)
}

// Roots sharing history read each commit once, whatever their order:
// with a ref at each commit of a chain, named so that the newest sorts
// first, each ref used to walk again all the history below it, since it
// left every commit one more parent to keep than the ref before it did.
func TestPruneSharedHistoryReadOnce(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	const n = 40
	var commits []repo.ID
	for i := 0; i < n; i++ {
		os.WriteFile(filepath.Join(src, "counter"), []byte(fmt.Sprintf("%d\n", i)), 0o644)
		c := integrityCommit(t, r, "main", src, int64(1700000000+i*100))
		if err := r.SetRef(fmt.Sprintf("at/%03d", 999-i), c); err != nil {
			t.Fatal(err)
		}
		commits = append(commits, c)
	}
	for _, c := range []struct {
		name string
		opts repo.PruneOptions
		keep int // commits kept, newest
	}{
		{"every commit a root", repo.PruneOptions{Depth: repo.InfiniteDepth, NoPrune: true}, n},
		{"refs, all history", repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth, NoPrune: true}, n},
		{"refs, depth n", repo.PruneOptions{RefsOnly: true, Depth: n, NoPrune: true}, n},
		{"depth 2 from the newest", repo.PruneOptions{RefsOnly: true, Depth: 0, BranchDepth: map[string]int{"main": 2}}, n},
	} {
		reads := 0
		restore := repo.SetPruneReadHook(func(repo.ID) { reads++ })
		mustPrune(t, r, c.opts)
		restore()
		if reads > n {
			t.Errorf("%s: prune read %d commits on a chain of %d with a ref at each: want at most %d", c.name, reads, n, n)
		}
		if got := kept(t, r, commits); slices.Contains(got, false) {
			t.Errorf("%s: kept %v, want every commit (each is a ref's)", c.name, got)
		}
	}
	mustFsckClean(t, r)
}

// kept reports which of commits are still stored, oldest first.
func kept(t *testing.T, r *repo.Repo, commits []repo.ID) []bool {
	t.Helper()
	out := make([]bool, len(commits))
	for i, c := range commits {
		out[i] = stored(t, r, repo.KindCommit, c)
	}
	return out
}

// OnlyBranches trims the refs it names and keeps all of every other's
// history; BranchDepth gives a ref its own depth, over Depth and
// KeepYoungerThan; both refuse names that are not refs.
func TestPruneOnlyBranchAndBranchDepth(t *testing.T) {
	all := []bool{true, true, true, true}
	for _, c := range []struct {
		name  string
		opts  repo.PruneOptions
		a, b  []bool
		error string
		alias bool // "al", an alias of a, exists
	}{
		{name: "only a", opts: repo.PruneOptions{Depth: 0, OnlyBranches: []string{"a"}},
			a: []bool{false, false, false, true}, b: all},
		{name: "only a, own depth", opts: repo.PruneOptions{Depth: 0, OnlyBranches: []string{"a"}, BranchDepth: map[string]int{"a": 2}},
			a: []bool{false, true, true, true}, b: all},
		{name: "a's depth 0 over depth 2", opts: repo.PruneOptions{Depth: 2, BranchDepth: map[string]int{"a": 0}},
			a: []bool{false, false, false, true}, b: []bool{false, true, true, true}},
		{name: "b's depth over depth", opts: repo.PruneOptions{Depth: 0, BranchDepth: map[string]int{"b": 1}},
			a: []bool{false, false, false, true}, b: []bool{false, false, true, true}},
		{name: "b's depth over keep-younger-than", opts: repo.PruneOptions{KeepYoungerThan: time.Unix(1700002500, 0), BranchDepth: map[string]int{"b": -1}},
			a: []bool{false, false, true, true}, b: all},
		{name: "only the alias of a", alias: true, opts: repo.PruneOptions{Depth: 0, OnlyBranches: []string{"al"}},
			a: []bool{false, false, false, true}, b: all},
		{name: "only a, which has an alias", alias: true, opts: repo.PruneOptions{Depth: 1, OnlyBranches: []string{"a"}},
			a: []bool{false, false, true, true}, b: all},
		{name: "alias of a's depth", alias: true, opts: repo.PruneOptions{Depth: 0, BranchDepth: map[string]int{"al": 2}},
			a: []bool{false, true, true, true}, b: []bool{false, false, false, true}},
		{name: "a's depth, a having an alias", alias: true, opts: repo.PruneOptions{Depth: 2, BranchDepth: map[string]int{"a": 0}},
			a: []bool{false, false, false, true}, b: []bool{false, true, true, true}},
		{name: "not a ref", opts: repo.PruneOptions{Depth: 0, BranchDepth: map[string]int{"c": 1}}, error: "no ref c to keep 1 deep"},
		{name: "only not a ref", opts: repo.PruneOptions{Depth: 0, OnlyBranches: []string{"a", "c"}}, error: "no ref c to trim"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newIntegrityRepo(t, repo.ModeBareUser)
			a, af := branchHistory(t, r, "a")
			b, _ := branchHistory(t, r, "b")
			if c.alias {
				if err := r.SetAlias("al", "a"); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := r.Prune(t.Context(), c.opts)
			if c.error != "" {
				if err == nil || !strings.Contains(err.Error(), c.error) {
					t.Fatalf("prune: %v, want an error with %q", err, c.error)
				}
				if got := kept(t, r, append(a, b...)); !slices.Equal(got, append(all, all...)) {
					t.Errorf("a refused prune deleted commits: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := kept(t, r, a); !slices.Equal(got, c.a) {
				t.Errorf("a kept %v, want %v", got, c.a)
			}
			if got := kept(t, r, b); !slices.Equal(got, c.b) {
				t.Errorf("b kept %v, want %v", got, c.b)
			}
			if stored(t, r, repo.KindFile, af[0]) != c.a[0] {
				t.Errorf("a's first file kept=%v, its commit %v", !c.a[0], c.a[0])
			}
			gone := 0
			for _, k := range append(slices.Clone(c.a), c.b...) {
				if !k {
					gone++
				}
			}
			if n := rep.ByKind["commit"].Objects; int(n) != gone {
				t.Errorf("report deleted %d commits, want %d", n, gone)
			}
			mustFsckClean(t, r)
		})
	}
}

// CommitOnly deletes the commits a full prune would and nothing else; the
// next full prune takes what only they needed.
func TestPruneCommitOnly(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, files := commitHistory(t, r)
	before, _ := countStored(t, r)
	rep := mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 1, CommitOnly: true})
	if got := kept(t, r, commits); !slices.Equal(got, []bool{false, false, true, true}) {
		t.Errorf("kept %v, want the ref's commit and its parent", got)
	}
	if rep.Total != 4 || rep.Deleted != 2 || rep.ByKind["commit"].Objects != 2 {
		t.Errorf("report %+v: want 4 commits counted, 2 deleted, nothing else", rep)
	}
	if after, _ := countStored(t, r); after != before-2 {
		t.Errorf("%d objects stored after, %d before: only the two commits may go", after, before)
	}
	if !stored(t, r, repo.KindFile, files[0]) {
		t.Error("--commit-only deleted content")
	}
	rep = mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth})
	if stored(t, r, repo.KindFile, files[0]) || !stored(t, r, repo.KindFile, files[2]) || rep.ByKind["commit"].Objects != 0 {
		t.Errorf("the full prune after --commit-only: %+v", rep)
	}
	mustFsckClean(t, r)

	// It reads no trees: a kept commit's missing tree, which stops a full
	// prune, does not stop it.
	r = newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ = commitHistory(t, r)
	c, err := r.ReadCommit(commits[3])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.ObjectPath(repo.KindDirTree, c.RootTree)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Prune(t.Context(), repo.PruneOptions{RefsOnly: true, Depth: 0}); err == nil {
		t.Fatal("a full prune ignored a missing tree")
	}
	mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 0, CommitOnly: true})
	if got := kept(t, r, commits); !slices.Equal(got, []bool{false, false, false, true}) {
		t.Errorf("kept %v, want the ref's commit", got)
	}
}

func TestPruneDeleteCommit(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, files := commitHistory(t, r)
	if _, err := r.Prune(context.Background(), repo.PruneOptions{DeleteCommit: commits[3]}); err == nil {
		t.Fatal("deleting the commit a ref points at was allowed")
	}
	if !stored(t, r, repo.KindCommit, commits[3]) {
		t.Fatal("refused deletion deleted the commit")
	}
	if _, err := r.Prune(context.Background(), repo.PruneOptions{DeleteCommit: commits[1], NoPrune: true}); err == nil {
		t.Fatal("DeleteCommit with NoPrune was allowed")
	}
	os.WriteFile(r.Path("state", commits[1].String()+".commitpartial"), nil, 0o644)
	rep := mustPrune(t, r, repo.PruneOptions{DeleteCommit: commits[1], Depth: repo.InfiniteDepth})
	if stored(t, r, repo.KindCommit, commits[1]) || stored(t, r, repo.KindFile, files[1]) {
		t.Fatal("deleted commit or the file only it had survived")
	}
	if !stored(t, r, repo.KindCommit, commits[0]) {
		t.Fatal("the older commit went too (it is a root without --refs-only)")
	}
	if len(rep.Commits) != 1 || rep.Commits[0] != commits[1] || rep.ByKind["file"].Objects != 1 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := os.Stat(r.Path("state", commits[1].String()+".commitpartial")); !os.IsNotExist(err) {
		t.Error("partial marker of the deleted commit survived")
	}
	mustFsckClean(t, r)
	_, err := r.Prune(context.Background(), repo.PruneOptions{DeleteCommit: commits[1]})
	if !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("deleting a missing commit: %v, want ErrNotFound", err)
	}
}

func TestPruneNoPrune(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commitHistory(t, r)
	os.MkdirAll(r.CacheDir(), 0o755)
	os.WriteFile(filepath.Join(r.CacheDir(), "stat-cache"), []byte("x"), 0o644)
	n0, size0 := countStored(t, r)
	dry := mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 0, NoPrune: true})
	if n, size := countStored(t, r); n != n0 || size != size0 {
		t.Fatalf("dry run changed the store: %d/%d objects", n, n0)
	}
	if !dry.DryRun || dry.Deleted == 0 || dry.ByKind["commit"].Objects != 3 {
		t.Fatalf("dry run report %+v", dry)
	}
	if _, err := os.Stat(filepath.Join(r.CacheDir(), "stat-cache")); err != nil {
		t.Fatalf("dry run dropped caches: %v", err)
	}
	real := mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 0})
	if real.Deleted != dry.Deleted || real.Freed != dry.Freed {
		t.Fatalf("dry run said %d/%d, prune did %d/%d", dry.Deleted, dry.Freed, real.Deleted, real.Freed)
	}
}

func TestPruneRemovesStaleStaging(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	stale := r.Path("tmp", "txn-dead")
	if err := os.MkdirAll(filepath.Join(stale, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustPrune(t, r, repo.PruneOptions{})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale staging directory survived: %v", err)
	}
}

// TestPruneRemovesStaleMarkers checks prune drops the partial marker of a
// commit that is not stored (a killed pull's) and keeps a stored one's.
func TestPruneRemovesStaleMarkers(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	ids, _ := commitHistory(t, r)
	if err := r.MarkCommitPartial(ids[0]); err != nil {
		t.Fatal(err)
	}
	ghost := repo.Sum([]byte("a commit that never arrived"))
	if err := r.MarkCommitPartial(ghost); err != nil {
		t.Fatal(err)
	}
	mustPrune(t, r, repo.PruneOptions{NoPrune: true})
	if !r.IsCommitPartial(ghost) {
		t.Fatal("a dry run removed a marker")
	}
	mustPrune(t, r, repo.PruneOptions{})
	if r.IsCommitPartial(ghost) {
		t.Error("the marker of a commit that is not stored survived prune")
	}
	if !r.IsCommitPartial(ids[0]) {
		t.Error("prune removed the marker of a stored partial commit")
	}
}

func TestPruneRefusesBrokenTree(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	c := integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	cm, _ := r.ReadCommit(c)
	os.Remove(r.ObjectPath(repo.KindDirTree, cm.RootTree))
	n0, _ := countStored(t, r)
	if _, err := r.Prune(context.Background(), repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth}); err == nil {
		t.Fatal("prune went ahead with a commit whose tree is missing")
	}
	if n, _ := countStored(t, r); n != n0 {
		t.Fatal("prune deleted objects although it failed")
	}
	// Once the commit is marked partial (fsck --delete does that), prune
	// proceeds and deletes what the missing tree would have named.
	if _, err := runFsck(t, r, repo.FsckOptions{Delete: true}); err == nil {
		t.Fatal("fsck found nothing")
	}
	if rep := mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: repo.InfiniteDepth}); rep.Deleted == 0 {
		t.Fatal("nothing pruned below a partial commit")
	}
}

// readTree reads a commit back as path -> content (files) or target.
func commitContents(t *testing.T, r *repo.Repo, c repo.ID) map[string]string {
	t.Helper()
	cm, err := r.ReadCommit(c)
	if err != nil {
		t.Fatalf("commit %s: %v", c, err)
	}
	out := map[string]string{}
	var walk func(string, repo.ID)
	walk = func(prefix string, id repo.ID) {
		dt, err := r.ReadDirTree(id)
		if err != nil {
			t.Fatalf("commit %s: %v", c, err)
		}
		for _, f := range dt.Files {
			h, rc, err := r.OpenFile(f.ID)
			if err != nil {
				t.Fatalf("commit %s %s%s: %v", c, prefix, f.Name, err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("commit %s %s%s: %v", c, prefix, f.Name, err)
			}
			out[prefix+f.Name] = string(b) + h.Target
		}
		for _, d := range dt.Dirs {
			walk(prefix+d.Name+"/", d.TreeID)
		}
	}
	walk("", cm.RootTree)
	return out
}

// TestPruneRace commits to two branches while prune (trimming history)
// and fsck run again and again beside them: every ref must always point at
// a commit whose whole tree exists, and fsck beside running commits must
// never see a commit without the objects it needs. Each goroutine does a
// fixed number of rounds, paced by the commits made, not by the clock: a
// prune starts only once more commits are done, and the commits run no
// more than a few prunes ahead, so that prunes fall among the commits
// however the goroutines are scheduled.
func TestPruneRace(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	ctx := context.Background()
	const (
		perBranch = 30                    // commits to each of the two branches
		every     = 4                     // commits done before each further prune starts
		ahead     = 2                     // commits begin no more than ahead*every past the prunes started
		prunes    = 2 * perBranch / every // the last starts near the end of the commits
		fscks     = 6
	)
	var (
		wg       sync.WaitGroup
		pruned   atomic.Int64
		errMu    sync.Mutex
		firstErr error

		mu          sync.Mutex
		paced       = sync.NewCond(&mu)
		begun, done int // commits
		started     int // prunes
		committing  = 2 // goroutines still committing
		pruning     = true
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	// waitDone waits until n commits are done or no more will be.
	waitDone := func(n int) {
		mu.Lock()
		for done < n && committing > 0 {
			paced.Wait()
		}
		mu.Unlock()
	}
	last := make([]map[string]string, 2)
	for w := 0; w < 2; w++ {
		branch := fmt.Sprintf("race/%d", w)
		src := integritySource(t, integrityTree)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				committing--
				paced.Broadcast()
				mu.Unlock()
			}()
			for i := 0; i < perBranch; i++ {
				mu.Lock()
				for pruning && begun >= (started+ahead)*every {
					paced.Wait()
				}
				begun++
				mu.Unlock()
				// Change, add and remove files; "common" is shared by both
				// branches, so one branch's commits dedupe against the
				// other's objects.
				os.WriteFile(filepath.Join(src, "counter"), []byte(fmt.Sprintf("%s %d\n", branch, i)), 0o644)
				os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i%5)), []byte(fmt.Sprintf("%s file %d\n", branch, i)), 0o644)
				os.Remove(filepath.Join(src, fmt.Sprintf("f%d", (i+2)%5)))
				os.WriteFile(filepath.Join(src, "common"), []byte(fmt.Sprintf("common %d\n", i/3)), 0o644)
				_, err := commit.Commit(ctx, r, commit.Options{Branch: branch, Subject: "race", NoSync: true,
					Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
				if err != nil {
					fail(fmt.Errorf("commit to %s: %w", branch, err))
					return
				}
				mu.Lock()
				done++
				paced.Broadcast()
				mu.Unlock()
			}
			tree := map[string]string{}
			for p, e := range testtree.Read(t, src, testtree.ReadOptions{}) {
				if e.Mode.IsRegular() {
					tree[p] = e.Content
				} else if e.Target != "" {
					tree[p] = e.Target
				}
			}
			last[w] = tree
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer func() {
			mu.Lock()
			pruning = false
			paced.Broadcast()
			mu.Unlock()
		}()
		opts := []repo.PruneOptions{
			{RefsOnly: true, Depth: 0},
			{RefsOnly: true, Depth: 1},
			{Depth: repo.InfiniteDepth},
		}
		for i := 0; i < prunes; i++ {
			waitDone(i * every)
			mu.Lock()
			started++
			paced.Broadcast()
			mu.Unlock()
			rep, err := r.Prune(ctx, opts[i%len(opts)])
			if err != nil {
				fail(fmt.Errorf("prune: %w", err))
				return
			}
			pruned.Add(rep.Deleted)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < fscks; i++ {
			waitDone(i * 2 * perBranch / fscks)
			if _, err := r.Fsck(ctx, repo.FsckOptions{Workers: 2}); err != nil {
				fail(fmt.Errorf("fsck beside commits: %w", err))
				return
			}
		}
	}()
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	// A prune of history once a dozen commits are done has old ones to
	// delete, unless an earlier prune deleted them.
	t.Logf("%d commits, %d prunes deleting %d objects, %d fscks", 2*perBranch, prunes, pruned.Load(), fscks)
	if pruned.Load() == 0 {
		t.Fatal("the prunes beside the commits deleted nothing")
	}
	mustFsckClean(t, r)
	for w := 0; w < 2; w++ {
		id, err := r.ReadRef(fmt.Sprintf("race/%d", w))
		if err != nil {
			t.Fatal(err)
		}
		got := commitContents(t, r, id)
		if len(got) != len(last[w]) {
			t.Fatalf("branch %d: commit has %d files, source %d", w, len(got), len(last[w]))
		}
		for p, want := range last[w] {
			if got[p] != want {
				t.Errorf("branch %d: %s is %q in the commit, %q in the source", w, p, got[p], want)
			}
		}
	}
	// With history trimmed to the refs, nothing is left unreferenced.
	mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 0})
	if rep := mustFsckClean(t, r); rep.Unreferenced != 0 || rep.Objects["commit"] != 2 {
		t.Fatalf("after a final prune: %d unreferenced, %d commits", rep.Unreferenced, rep.Objects["commit"])
	}
}

// Prune drops the caches while readers that take no lock (checkout, which
// adds to the header index) may be writing there: that never fails it.
func TestPruneDropsCachesBesideWriters(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			os.MkdirAll(r.CacheDir(), 0o755)
			os.WriteFile(filepath.Join(r.CacheDir(), fmt.Sprintf("w%d", i%64)), []byte("x"), 0o644)
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range 100 {
		// Something to delete, so that the caches are dropped.
		txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755, UID: uint32(i + 1)}).Encode()); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		rep, err := r.Prune(context.Background(), repo.PruneOptions{})
		if err != nil {
			t.Fatalf("prune %d beside a cache writer: %v", i, err)
		}
		if rep.Deleted == 0 {
			t.Fatalf("prune %d deleted nothing", i)
		}
	}
}

// Prune removes the temporary files that ref, config and summary writes
// killed half-way leave in the repository and its refs, once they are
// old enough that no write can still be making them.
func TestPruneRemovesAbandonedTempFiles(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	integrityCommit(t, r, "main", integritySource(t, integrityTree), 1700000000)
	old := []string{
		filepath.Join(r.Path(), ".tmp-1"),
		filepath.Join(r.Path(), "refs", "heads", ".tmp-2"),
		filepath.Join(r.Path(), "refs", "remotes", ".tmp-3"),
	}
	fresh := filepath.Join(r.Path(), "refs", "heads", ".tmp-4")
	for _, p := range append(old, fresh) {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range old {
		if err := os.Chtimes(p, time.Unix(0, 0), time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	mustPrune(t, r, repo.PruneOptions{Depth: repo.InfiniteDepth})
	for _, p := range old {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s survived the prune", p)
		}
	}
	if _, err := os.Lstat(fresh); err != nil {
		t.Errorf("a temporary file being written now was removed: %v", err)
	}
	mustFsckClean(t, r)
}

// A commit reached again from another ref with more depth left is walked
// again, that far: depth counts from each ref. Here main walks its commit
// and one parent (c2, with no depth left), then other, at c2, keeps c1
// too. The detached metadata of a kept commit is kept with it; that of a
// deleted one goes.
func TestPruneDepthFromEachRef(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, files := commitHistory(t, r)
	if err := r.SetRef("other", commits[2]); err != nil {
		t.Fatal(err)
	}
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commits {
		if err := txn.WriteCommitMeta(c, repo.Metadata{{Key: "note", Value: []byte(c.Short())}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	mustPrune(t, r, repo.PruneOptions{RefsOnly: true, Depth: 1})
	for i, c := range commits {
		keep := i >= 1
		if got := stored(t, r, repo.KindCommit, c); got != keep {
			t.Errorf("commit %d: kept %v, want %v", i+1, got, keep)
		}
		if got := stored(t, r, repo.KindFile, files[i]); got != keep {
			t.Errorf("commit %d's own file: kept %v, want %v", i+1, got, keep)
		}
		if got := stored(t, r, repo.KindCommitMeta, c); got != keep {
			t.Errorf("commit %d: detached metadata kept %v, want %v", i+1, got, keep)
		}
	}
	mustFsckClean(t, r)
}

// KeepYoungerThan walks on from a ref's commit made at the very second
// given: its parent of that second is kept too, an older one is not.
func TestPruneKeepYoungerThanAtTheSecond(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	var commits []repo.ID
	for i, ts := range []int64{1700001000, 1700002000, 1700002000} {
		os.WriteFile(filepath.Join(src, "v"), []byte(fmt.Sprintf("version %d\n", i)), 0o644)
		commits = append(commits, integrityCommit(t, r, "main", src, ts))
	}
	mustPrune(t, r, repo.PruneOptions{KeepYoungerThan: time.Unix(1700002000, 0)})
	if got, want := kept(t, r, commits), []bool{false, true, true}; !slices.Equal(got, want) {
		t.Errorf("commits kept %v, want %v", got, want)
	}
	mustFsckClean(t, r)
}

// KeepYoungerThan reads a commit stamped past the int64 range (as OSTree
// stores one dated before 1970) as the far future, as OSTree's prune does:
// kept, and the walk goes on to its parent.
func TestPruneKeepYoungerThanFarFuture(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, integrityTree)
	base := integrityCommit(t, r, "main", src, 1700001000)
	bc, err := r.ReadCommit(base)
	if err != nil {
		t.Fatal(err)
	}
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	commits := []repo.ID{base}
	for _, ts := range []uint64{1700002000, math.MaxUint64, 1<<63 + 5, 1700004000} {
		c := repo.Commit{Parent: commits[len(commits)-1], Timestamp: ts, Subject: "s", RootTree: bc.RootTree, RootMeta: bc.RootMeta}
		id, err := txn.WriteMeta(repo.KindCommit, c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		commits = append(commits, id)
	}
	if err := txn.SetRef("main", commits[len(commits)-1]); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	mustPrune(t, r, repo.PruneOptions{KeepYoungerThan: time.Unix(1700003000, 0)})
	if got, want := kept(t, r, commits), []bool{false, false, true, true, true}; !slices.Equal(got, want) {
		t.Errorf("commits kept %v, want %v", got, want)
	}
	// A time before 1970 is older than every commit: all are kept.
	r2 := newIntegrityRepo(t, repo.ModeBareUser)
	all, _ := commitHistory(t, r2)
	mustPrune(t, r2, repo.PruneOptions{KeepYoungerThan: time.Unix(-86400, 0)})
	if got := kept(t, r2, all); slices.Contains(got, false) {
		t.Errorf("a time before 1970 pruned commits: kept %v", got)
	}
}

// Without RefsOnly every stored commit is a root, so prune reads no refs
// (as OSTree does): an unreadable ref neither stops it nor costs it a
// read, while with refs as roots, or a commit to delete, it still does.
func TestPruneDefaultReadsNoRefs(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	commits, _ := commitHistory(t, r)
	if err := os.WriteFile(r.Path("refs", "heads", "broken"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		rep := mustPrune(t, r, repo.PruneOptions{Depth: repo.InfiniteDepth, NoPrune: dry})
		if rep.Deleted != 0 {
			t.Errorf("dry=%v: deleted %d objects, want none (every commit is a root)", dry, rep.Deleted)
		}
	}
	for _, opts := range []repo.PruneOptions{
		{RefsOnly: true, Depth: repo.InfiniteDepth, NoPrune: true},
		{Depth: repo.InfiniteDepth, DeleteCommit: commits[0]},
	} {
		var bad *repo.UnreadableRefsError
		if _, err := r.Prune(context.Background(), opts); !errors.As(err, &bad) || !slices.Contains(bad.Refs, "broken") {
			t.Errorf("prune %+v: %v; want it refused, naming ref broken", opts, err)
		}
	}
	if !stored(t, r, repo.KindCommit, commits[0]) {
		t.Error("a refused prune deleted the commit")
	}
}
