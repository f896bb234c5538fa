package repo_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// linkOut moves the directory rel of repository r outside it and leaves
// a symlink to it in its place.
func linkOut(t *testing.T, r *repo.Repo, rel string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(r.Path(rel), out); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(out, r.Path(rel)); err != nil {
		t.Fatal(err)
	}
	return out
}

// A symlinked refs/, refs/heads or refs/remotes (a layout OSTree follows
// too) is followed alike by every reader and writer of refs: the refs
// written through it are listed (an alias among them as an alias), fsck
// finds them with nothing unreferenced, and prune deletes nothing they
// need.
func TestSymlinkedRefRoots(t *testing.T) {
	for _, root := range []string{"refs", "refs/heads", "refs/remotes"} {
		t.Run(strings.ReplaceAll(root, "/", "_"), func(t *testing.T) {
			r := newIntegrityRepo(t, repo.ModeArchive)
			linkOut(t, r, root)
			first := integrityCommit(t, r, "os/main", integritySource(t, testtree.Tree{"f": testtree.File("1", 0o644)}), 1)
			second := integrityCommit(t, r, "x", integritySource(t, testtree.Tree{"g": testtree.File("2", 0o644)}), 2)
			if err := r.SetRef("origin:stable", second); err != nil {
				t.Fatal(err)
			}
			if err := r.SetRef("x", repo.ID{}); err != nil {
				t.Fatal(err)
			}
			if err := r.SetAlias("latest", "os/main"); err != nil {
				t.Fatal(err)
			}

			refs, err := r.ListRefs("")
			if err != nil {
				t.Fatal(err)
			}
			want := []repo.Ref{{Name: "latest", Commit: first, Alias: "os/main"}, {Name: "os/main", Commit: first}, {Name: "origin:stable", Commit: second}}
			if len(refs) != len(want) || refs[0] != want[0] || refs[1] != want[1] || refs[2] != want[2] {
				t.Errorf("ListRefs = %+v, want %+v", refs, want)
			}
			if aliases, err := r.ListAliases(""); err != nil || len(aliases) != 1 || aliases[0].Name != "latest" || aliases[0].Problem != "" {
				t.Errorf("ListAliases = %+v, %v; want latest alone, unbroken", aliases, err)
			}
			if names, err := r.BranchNames("os/main"); err != nil || strings.Join(names, " ") != "latest os/main" {
				t.Errorf("BranchNames(os/main) = %q, %v", names, err)
			}
			rep, err := runFsck(t, r, repo.FsckOptions{})
			if err != nil || rep.Refs != 3 || rep.Unreferenced != 0 {
				t.Errorf("fsck: %d refs, %d unreferenced, %v; want 3 refs, none unreferenced, no problem", rep.Refs, rep.Unreferenced, err)
			}
			pr, err := r.Prune(t.Context(), repo.PruneOptions{RefsOnly: true})
			if err != nil || pr.Deleted != 0 {
				t.Fatalf("prune --refs-only: %+v, %v; want nothing deleted", pr, err)
			}
			for _, id := range []repo.ID{first, second} {
				if _, err := r.ReadCommit(id); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// A symlinked refs/heads that leads nowhere (a directory not mounted, say)
// is no empty list of branches: listing refs fails naming it, prune
// refuses to run and deletes nothing, and fsck reports it.
func TestDanglingRefRoot(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeArchive)
	id := integrityCommit(t, r, "main", integritySource(t, testtree.Tree{"f": testtree.File("1", 0o644)}), 1)
	out := linkOut(t, r, "refs/heads")
	if err := os.Rename(out, out+".away"); err != nil {
		t.Fatal(err)
	}
	heads := r.Path("refs", "heads")
	if refs, err := r.ListRefs(""); err == nil || !strings.Contains(err.Error(), heads) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("ListRefs = %+v, %v; want an error naming %s", refs, err, heads)
	}
	if pr, err := r.Prune(t.Context(), repo.PruneOptions{RefsOnly: true}); err == nil {
		t.Errorf("prune --refs-only with refs/heads gone: deleted %d objects, no error", pr.Deleted)
	}
	if _, err := r.ReadCommit(id); err != nil {
		t.Errorf("after the refused prune: %v", err)
	}
	rep, err := runFsck(t, r, repo.FsckOptions{})
	var p *repo.FsckProblem
	if err == nil || !errors.As(err, &p) || p.Type != repo.ProblemRef || !strings.Contains(p.Error(), heads) || !strings.Contains(p.Error(), "cannot be listed") {
		t.Errorf("fsck: %v; want a ref problem naming %s", err, heads)
	}
	if rep.UnreadableRefs != 1 || rep.Unreferenced == 0 {
		t.Errorf("fsck: %d ref problems hiding commits, %d objects unreferenced; want 1 and all", rep.UnreadableRefs, rep.Unreferenced)
	}
	// Back in place, everything is as it was.
	if err := os.Rename(out+".away", out); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadRef("main"); err != nil || got != id {
		t.Errorf("ReadRef(main) = %s, %v", got, err)
	}
}
