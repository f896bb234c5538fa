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
