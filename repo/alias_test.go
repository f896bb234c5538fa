package repo_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// aliasRepo returns a repository with two commits, first and second, the
// branch os/x86_64/stable at first.
func aliasRepo(t *testing.T) (r *repo.Repo, first, second repo.ID) {
	t.Helper()
	r = newIntegrityRepo(t, repo.ModeBareUser)
	src := integritySource(t, testtree.Tree{"f": testtree.File("1", 0o644)})
	second = integrityCommit(t, r, "other", src, 2)
	first = integrityCommit(t, r, "os/x86_64/stable", src, 1)
	return r, first, second
}

func TestAliasReadsAndWritesItsBranch(t *testing.T) {
	r, first, second := aliasRepo(t)
	if err := r.SetAlias("os/stable", "os/x86_64/stable"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetAlias("latest", "os/stable"); err != nil {
		t.Fatal(err)
	}
	// On disk as OSTree writes it: a symlink climbing to refs/heads.
	if link, err := os.Readlink(filepath.Join(r.Path("refs", "heads"), "os", "stable")); err != nil || link != "../os/x86_64/stable" {
		t.Errorf("alias symlink = %q, %v; want ../os/x86_64/stable", link, err)
	}
	for _, name := range []string{"os/stable", "latest", "latest~0"} {
		if id, err := r.ResolveRev(name); err != nil || id != first {
			t.Errorf("ResolveRev(%s) = %s, %v; want %s", name, id, err, first)
		}
	}
	refs, err := r.ListRefs("")
	if err != nil {
		t.Fatal(err)
	}
	want := []repo.Ref{{Name: "latest", Commit: first, Alias: "os/stable"}, {Name: "os/stable", Commit: first, Alias: "os/x86_64/stable"},
		{Name: "os/x86_64/stable", Commit: first}, {Name: "other", Commit: second}}
	if diff := cmp.Diff(want, refs); diff != "" {
		t.Errorf("ListRefs (-want +got):\n%s", diff)
	}

	// Writing through the chain moves the branch and keeps the aliases.
	if err := r.SetRef("latest", second); err != nil {
		t.Fatal(err)
	}
	txn, err := r.Begin(t.Context(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	txn.SetRef("os/stable", first)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRef("latest", second); err != nil {
		t.Fatal(err)
	}
	if id, _ := r.ReadRef("os/x86_64/stable"); id != second {
		t.Errorf("branch after writing through aliases = %s, want %s", id, second)
	}
	aliases, err := r.ListAliases("")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]repo.Alias{{Name: "latest", Target: "os/stable", Commit: second},
		{Name: "os/stable", Target: "os/x86_64/stable", Commit: second}}, aliases); diff != "" {
		t.Errorf("ListAliases after writes (-want +got):\n%s", diff)
	}
}

func TestAliasedBranchIsNotDeletedFirst(t *testing.T) {
	r, first, _ := aliasRepo(t)
	if err := r.SetAlias("os/stable", "os/x86_64/stable"); err != nil {
		t.Fatal(err)
	}
	err := r.SetRef("os/x86_64/stable", repo.ID{})
	var ae *repo.AliasedRefError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "os/stable") {
		t.Fatalf("deleting an aliased branch: %v, want an AliasedRefError naming os/stable", err)
	}
	if id, err := r.ReadRef("os/stable"); err != nil || id != first {
		t.Fatalf("after the refused delete: %s, %v", id, err)
	}
	// Deleting the alias leaves the branch; then the branch can go.
	if err := r.SetRef("os/stable", repo.ID{}); err != nil {
		t.Fatal(err)
	}
	if id, err := r.ReadRef("os/x86_64/stable"); err != nil || id != first {
		t.Fatalf("deleting the alias touched the branch: %s, %v", id, err)
	}
	if err := r.SetRef("os/x86_64/stable", repo.ID{}); err != nil {
		t.Fatal(err)
	}
}

func TestSetAliasRefuses(t *testing.T) {
	r, _, _ := aliasRepo(t)
	if err := r.SetAlias("a", "os/x86_64/stable"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetAlias("b", "a"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, target, want string }{
		{"x", "nosuch", `"nosuch" not found`},
		{"x", "origin:main", "local branches"},
		{"otree/x", "other", "deployments"},
		{"x", "otree/os/abc.0", "deployments"},
		{"a", "b", "leads back to a"},
		{"x", "x", "leads back to x"},
		{"-bad", "other", "invalid ref name"},
	} {
		err := r.SetAlias(c.name, c.target)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SetAlias(%s, %s) = %v, want an error with %q", c.name, c.target, err, c.want)
		}
	}
	if got, _ := r.ListAliases(""); len(got) != 2 || got[0].Target != "os/x86_64/stable" || got[1].Target != "a" {
		t.Errorf("a refused SetAlias changed the aliases: %+v", got)
	}
}

// Symlinks made by hand that do not resolve are errors naming them, never
// read outside refs/heads, listed with their problem, and reported by
// fsck. Those that end at nothing (a missing branch, a loop) name no
// commit and are left out of ListRefs, so prune and summaries still work;
// those that lead to a file outside refs/heads may name one (OSTree reads
// it), so ListRefs reports them as unreadable and prune refuses to run.
func TestBrokenAliases(t *testing.T) {
	r, _, _ := aliasRepo(t)
	heads := r.Path("refs", "heads")
	outside := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(outside, []byte(strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// climb climbs from refs/heads to outside's file, as abs names it.
	for name, link := range map[string]string{
		"dangling": "nosuch",
		"loop1":    "loop2",
		"loop2":    "loop1",
		"abs":      outside,
		"climb":    "../../../../" + filepath.Base(filepath.Dir(outside)) + "/id",
	} {
		if err := os.Symlink(link, filepath.Join(heads, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{
		"dangling": `"nosuch", which does not exist`,
		"loop1":    "loop",
		"abs":      "outside refs/heads",
		"climb":    "outside refs/heads",
	} {
		_, err := r.ResolveRev(name)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), name) {
			t.Errorf("ResolveRev(%s) = %v, want an error naming it with %q", name, err, want)
		}
	}
	refs, err := r.ListRefs("")
	var bad *repo.UnreadableRefsError
	if !errors.As(err, &bad) || strings.Join(bad.Refs, " ") != "abs climb" {
		t.Errorf("ListRefs: %v; want abs and climb unreadable", err)
	}
	if len(refs) != 2 {
		t.Errorf("ListRefs = %+v, want only the two branches", refs)
	}
	if _, err := r.Prune(t.Context(), repo.PruneOptions{RefsOnly: true}); !errors.As(err, &bad) || !strings.Contains(err.Error(), "not pruning") {
		t.Errorf("prune with aliases leading outside refs/heads: %v; want a refusal naming them", err)
	}
	aliases, err := r.ListAliases("")
	if err != nil {
		t.Fatal(err)
	}
	if len(aliases) != 5 {
		t.Fatalf("ListAliases = %+v, want the five symlinks", aliases)
	}
	for _, a := range aliases {
		if a.Problem == "" || !a.Commit.IsZero() {
			t.Errorf("alias %s: problem %q, commit %s; want a problem and no commit", a.Name, a.Problem, a.Commit)
		}
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	if err == nil {
		t.Fatal("fsck passed a repository with broken aliases")
	}
	got := map[string]bool{}
	for _, p := range rep.Problems {
		if p.Type == repo.ProblemRef {
			got[p.Ref] = true
		}
	}
	if len(got) != 5 || rep.UnreadableRefs != 2 {
		t.Errorf("fsck reported ref problems for %v, %d of them hiding a commit; want all five symlinks, two hiding one", got, rep.UnreadableRefs)
	}
	// Broken aliases can still be deleted, a loop's members in any order;
	// those that end at nothing do not stop a prune.
	for _, name := range []string{"abs", "climb"} {
		if err := r.SetRef(name, repo.ID{}); err != nil {
			t.Errorf("deleting broken alias %s: %v", name, err)
		}
	}
	if _, err := r.Prune(t.Context(), repo.PruneOptions{RefsOnly: true}); err != nil {
		t.Errorf("prune with aliases that end at nothing: %v", err)
	}
	for _, name := range []string{"dangling", "loop1", "loop2"} {
		if err := r.SetRef(name, repo.ID{}); err != nil {
			t.Errorf("deleting broken alias %s: %v", name, err)
		}
	}
	if got, _ := r.ListAliases(""); len(got) != 0 {
		t.Errorf("aliases left: %+v", got)
	}
}

// Whatever text a symlink in refs/heads holds, reading it as an alias
// either fails or names a valid branch inside refs/heads, and never reads
// a file outside it.
func FuzzAliasLink(f *testing.F) {
	for _, s := range []string{"main", "../main", "../../x", "/etc/passwd", "a/../../b", "a//b", ".", "..", "./main", "main/", "../heads/main", "x/../main"} {
		f.Add("al", s)
		f.Add("d/al", s)
	}
	r, err := repo.Init(filepath.Join(f.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	src := f.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	res, err := commit.Commit(context.Background(), r, commit.Options{Branch: "main", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err != nil {
		f.Fatal(err)
	}
	// A decoy outside refs/heads holding a valid id: reading it would
	// succeed, so only confinement keeps it out.
	decoy := filepath.Join(r.Path("refs"), "decoy")
	os.WriteFile(decoy, []byte(strings.Repeat("ab", 32)+"\n"), 0o644)
	heads := r.Path("refs", "heads")
	f.Fuzz(func(t *testing.T, name, link string) {
		if repo.ValidateRefName(name) != nil || strings.Contains(name, ":") || name == "main" || strings.HasPrefix(name, "main/") ||
			link == "" || strings.ContainsRune(link, 0) {
			return
		}
		p := filepath.Join(heads, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(link, p); err != nil {
			return
		}
		defer func() {
			os.Remove(p)
			if d := filepath.Dir(p); d != heads {
				os.Remove(d)
			}
		}()
		id, err := r.ReadRef(name)
		if err == nil && id != res.Commit {
			t.Fatalf("alias %s -> %q read %s, not main's commit %s", name, link, id, res.Commit)
		}
		aliases, err := r.ListAliases("")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range aliases {
			if a.Problem == "" && (repo.ValidateRefName(a.Target) != nil || a.Commit != res.Commit) {
				t.Fatalf("alias %s -> %q listed as %+v", name, link, a)
			}
		}
	})
}

// A directory symlink planted in refs/heads or refs/remotes is never
// followed: reading, writing, deleting and aliasing a ref below it fail,
// naming it, and nothing outside the repository is read or changed.
func TestRefsThroughDirectorySymlinks(t *testing.T) {
	r, first, second := aliasRepo(t)
	outside := t.TempDir()
	decoy := filepath.Join(outside, "x")
	if err := os.WriteFile(decoy, []byte(second.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{r.Path("refs", "heads", "evil"), r.Path("refs", "heads", "os", "evil"), r.Path("refs", "remotes", "rm")} {
		if err := os.Symlink(outside, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"evil/x", "os/evil/x", "rm:x", "rm:y/z"} {
		if _, err := r.ReadRef(name); err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Errorf("ReadRef(%s) = %v, want an error about the symlink", name, err)
		}
		if err := r.SetRef(name, first); err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Errorf("SetRef(%s) = %v", name, err)
		}
		if err := r.SetRef(name, repo.ID{}); err == nil {
			t.Errorf("deleting %s through the symlink: no error", name)
		}
	}
	if err := r.SetAlias("evil/a", "other"); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("SetAlias below a symlink: %v", err)
	}
	if _, err := r.ResolveRev("evil/x"); err == nil {
		t.Error("ResolveRev read the decoy")
	}
	ents, _ := os.ReadDir(outside)
	if b, _ := os.ReadFile(decoy); len(ents) != 1 || string(b) != second.String()+"\n" {
		t.Errorf("outside the repository: %d entries, decoy %q", len(ents), b)
	}
	// Ordinary refs still work, and listing reads nothing through the
	// planted links but names them as unreadable: refs that OSTree reads
	// may lie below them, so prune refuses to run.
	if got, err := r.ReadRef("os/x86_64/stable"); err != nil || got != first {
		t.Errorf("ReadRef(os/x86_64/stable) = %s, %v", got, err)
	}
	refs, err := r.ListRefs("")
	var bad *repo.UnreadableRefsError
	if !errors.As(err, &bad) || strings.Join(bad.Refs, " ") != "evil os/evil rm:" || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("ListRefs: %v; want evil, os/evil and rm: unreadable, as symlinks", err)
	}
	for _, ref := range refs {
		if ref.Commit == second && ref.Name != "other" {
			t.Errorf("ListRefs read the decoy as %s", ref.Name)
		}
	}
	if _, err := r.Prune(t.Context(), repo.PruneOptions{RefsOnly: true}); !errors.As(err, &bad) {
		t.Errorf("prune with symlinked directories of refs: %v; want a refusal", err)
	}
}
