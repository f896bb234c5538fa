package checkout_test

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// ptDrop removes the dirtree at p of commit id and marks the commit
// partial, as a pull of other subpaths leaves it.
func ptDrop(t *testing.T, r *repo.Repo, id repo.ID, p string) repo.ID {
	t.Helper()
	e, err := r.Lookup(id, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.ObjectPath(repo.KindDirTree, e.ID)); err != nil {
		t.Fatal(err)
	}
	if err := r.MarkCommitPartial(id); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// ptPartial checks that err reports missing, naming each of commits as
// pulled in part.
func ptPartial(t *testing.T, what string, err error, missing repo.ID, commits ...repo.ID) {
	t.Helper()
	if !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), missing.String()) {
		t.Fatalf("%s: %v, want the missing dirtree %s", what, err, missing)
	}
	for _, c := range commits {
		if !strings.Contains(err.Error(), c.String()) || !strings.Contains(err.Error(), "pulled only in part") {
			t.Errorf("%s: %v, want commit %s named as pulled in part", what, err, c)
		}
	}
	var pce *repo.PartialCommitError
	if len(commits) == 1 && (!errors.As(err, &pce) || pce.Commit != commits[0]) {
		t.Errorf("%s: %v, want a PartialCommitError for %s", what, err, commits[0])
	}
}

// Export and diff of a commit pulled in part say that the object they miss
// was never pulled, naming the commit, as checkout, ls and cat do.
func TestPartialCommitExportDiff(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	a := dtBuild(t, r, map[string]dtNode{"keep/f": dtFile("k", 0o644), "gone/f": dtFile("g1", 0o644)})
	b := dtBuild(t, r, map[string]dtNode{"keep/f": dtFile("k", 0o644), "gone/f": dtFile("g2", 0o644)})
	dir := dtMakeDir(t, testtree.Tree{"keep/f": testtree.File("k", 0o644), "gone/f": testtree.File("g3", 0o644)})

	missingB := ptDrop(t, r, b, "/gone")
	err := checkout.Export(t.Context(), r, b, io.Discard, checkout.ExportOptions{})
	ptPartial(t, "export", err, missingB, b)
	if err := checkout.Export(t.Context(), r, b, io.Discard, checkout.ExportOptions{Subpath: "/keep"}); err != nil {
		t.Errorf("export of the part pulled: %v", err)
	}
	_, err = checkout.Diff(t.Context(), r, a, b, checkout.DiffOptions{})
	ptPartial(t, "diff of a complete and a partial commit", err, missingB, b)
	_, err = checkout.Diff(t.Context(), r, b, a, checkout.DiffOptions{})
	ptPartial(t, "diff of a partial and a complete commit", err, missingB, b)
	_, err = checkout.DiffDir(t.Context(), r, b, dir, checkout.DiffOptions{})
	ptPartial(t, "diff of a partial commit and a directory", err, missingB, b)

	ptDrop(t, r, a, "/gone")
	_, err = checkout.Diff(t.Context(), r, a, b, checkout.DiffOptions{})
	if err == nil || !strings.Contains(err.Error(), a.String()) || !strings.Contains(err.Error(), b.String()) || !strings.Contains(err.Error(), "marked partial") {
		t.Errorf("diff of two partial commits: %v, want both named as pulled in part", err)
	}
}

// A commit fsck --delete marked partial was damaged, not pulled in part:
// the error of a checkout that misses its object says so.
func TestPartialCommitByFsckSaysSo(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	id := dtBuild(t, r, map[string]dtNode{"ok": dtFile("fine", 0o644), "bad": dtFile("will be damaged", 0o644)})
	e, err := r.Lookup(id, "/bad")
	if err != nil {
		t.Fatal(err)
	}
	p := r.ObjectPath(repo.KindFile, e.ID)
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	// It reports the damage it found as an error.
	r.Fsck(t.Context(), repo.FsckOptions{Delete: true})
	if !r.IsCommitPartial(id) {
		t.Fatal("fsck --delete left the damaged commit unmarked")
	}
	err = checkout.Export(t.Context(), r, id, io.Discard, checkout.ExportOptions{})
	var pce *repo.PartialCommitError
	if !errors.As(err, &pce) || pce.Commit != id {
		t.Fatalf("export: %v, want a PartialCommitError saying fsck marked %s", err, id)
	}
	if msg := err.Error(); !strings.Contains(msg, "fsck --delete marked commit "+id.String()+" partial") || strings.Contains(msg, "pulled only in part") {
		t.Errorf("export: %q, want it to say fsck marked the commit, not that it was pulled in part", msg)
	}
}
