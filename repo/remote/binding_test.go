package remote_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// TestPullRefBinding serves the commit of one branch under another's name,
// as a compromised or confused server would, and checks pull refuses it
// before storing anything, whether the commit is new here or already
// stored; commits without a binding, and commits pulled by id, pass.
func TestPullRefBinding(t *testing.T) {
	ctx := context.Background()
	o := newOrigin(t)
	stable := o.commit("os/stable", tree, 1700000000)
	testing2 := o.commit("os/testing", testtree.Tree{"etc/motd": testtree.File("testing\n", 0o644)}, 1700000100)

	c, err := o.r.ReadCommit(testing2)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := c.RefBindings(); !ok || len(b) != 1 || b[0] != "os/testing" {
		t.Fatalf("commit bindings = %v, %v; want [os/testing]", b, ok)
	}

	// The server now says os/stable is the testing commit.
	if err := o.r.SetRef("os/stable", testing2); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	_, err = remote.Pull(ctx, dst, fastOpts("os/stable"))
	var be *repo.RefBindingError
	if !errors.As(err, &be) || be.Ref != "os/stable" || be.Commit != testing2 {
		t.Fatalf("pull of a commit bound elsewhere: err = %v, want a RefBindingError", err)
	}
	errContains(t, err, testing2.String(), `"os/stable"`, "os/testing", o.srv.URL)
	checkNothingMoved(t, dst)

	// Already stored here (pulled for its own branch): still refused, and
	// the refs stay as they were.
	if _, err := remote.Pull(ctx, dst, fastOpts("os/testing")); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); !errors.As(err, &be) {
		t.Fatalf("pull of a stored commit bound elsewhere: err = %v", err)
	}
	if _, err := dst.ReadRef("origin:os/stable"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("origin:os/stable written after a refused pull: %v", err)
	}
	// Both refs in one pull: the second names a commit the first already
	// walked, and is still checked.
	for _, refs := range [][]string{{"os/testing", "os/stable"}, {"os/stable", "os/testing"}} {
		fresh := newDest(t, repo.ModeArchive, o.srv.URL)
		if _, err := remote.Pull(ctx, fresh, fastOpts(refs...)); !errors.As(err, &be) || be.Ref != "os/stable" {
			t.Fatalf("pull of %v, os/stable serving os/testing's commit: err = %v, want a RefBindingError for os/stable", refs, err)
		}
		checkNothingMoved(t, fresh)
	}

	// By id, the binding is not checked: the caller named the commit.
	if _, err := remote.Pull(ctx, dst, fastOpts(stable.String())); err != nil {
		t.Fatalf("pull by id: %v", err)
	}

	// A commit made without bindings is accepted for any ref.
	src := filepath.Join(t.TempDir(), "src")
	testtree.Create(t, src, testtree.Tree{"a": testtree.File("a\n", 0o644)})
	res, err := commit.Commit(ctx, o.r, commit.Options{Branch: "os/unbound", NoBindings: true, NoSync: true,
		Timestamp: time.Unix(1700000200, 0), Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.r.SetRef("os/stable", res.Commit); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
		t.Fatalf("pull of an unbound commit: %v", err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != res.Commit {
		t.Errorf("origin:os/stable = %s, want %s", got, res.Commit)
	}
}

// A server's alias is pulled like a branch: the summary lists it, and a
// commit made after the alias is bound to both names, so a pull by either
// accepts it.
func TestPullAlias(t *testing.T) {
	ctx := context.Background()
	o := newOrigin(t)
	o.commit("os/x86_64/stable", tree, 1700000000)
	if err := o.r.SetAlias("os/stable", "os/x86_64/stable"); err != nil {
		t.Fatal(err)
	}
	tip := o.commit("os/stable", testtree.Tree{"etc/motd": testtree.File("new\n", 0o644)}, 1700000100)
	if got := mustRef(t, o.r, "os/x86_64/stable"); got != tip {
		t.Fatalf("commit through the alias left the branch at %s", got)
	}
	for _, summary := range []bool{false, true} {
		if summary {
			if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
				t.Fatal(err)
			}
		}
		dst := newDest(t, repo.ModeArchive, o.srv.URL)
		if _, err := remote.Pull(ctx, dst, fastOpts("os/stable", "os/x86_64/stable")); err != nil {
			t.Fatalf("pull by alias and by branch (summary %v): %v", summary, err)
		}
		for _, name := range []string{"origin:os/stable", "origin:os/x86_64/stable"} {
			if got := mustRef(t, dst, name); got != tip {
				t.Errorf("summary %v: %s = %s, want %s", summary, name, got, tip)
			}
		}
	}
}
