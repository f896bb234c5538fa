package repo_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// A branch name that is no local branch resolves, as in OSTree, to the
// remote-tracking ref of that name; a local branch wins; remotes that
// disagree make the name ambiguous, listing them, instead of one picked
// at random as OSTree does.
func TestResolveRemoteBranch(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []repo.ID
	for _, s := range []string{"a", "b", "c"} {
		c := &repo.Commit{Subject: s, RootTree: repo.Sum([]byte("t")), RootMeta: repo.Sum([]byte("m"))}
		id, err := txn.WriteMeta(repo.KindCommit, c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	a, b, c := ids[0], ids[1], ids[2]
	set := func(ref string, id repo.ID) {
		t.Helper()
		if err := r.SetRef(ref, id); err != nil {
			t.Fatal(err)
		}
	}
	resolve := func(rev string) (repo.ID, error) { t.Helper(); return r.ResolveRev(rev) }

	set("origin:os/stable", a)
	if got, err := resolve("os/stable"); err != nil || got != a {
		t.Errorf("os/stable with only origin:os/stable = %v, %v; want %s", got, err, a)
	}
	set("mirror:os/stable", a)
	if got, err := resolve("os/stable"); err != nil || got != a {
		t.Errorf("two remotes agreeing: %v, %v", got, err)
	}
	set("other:os/stable", b)
	_, err = resolve("os/stable")
	var amb *repo.AmbiguousRefError
	if !errors.As(err, &amb) || !strings.Contains(err.Error(), "other:os/stable") || !strings.Contains(err.Error(), "origin:os/stable") {
		t.Errorf("remotes disagreeing: %v, want an AmbiguousRefError listing them", err)
	}
	if got, err := resolve("other:os/stable"); err != nil || got != b {
		t.Errorf("other:os/stable = %v, %v", got, err)
	}
	set("os/stable", c)
	if got, err := resolve("os/stable"); err != nil || got != c {
		t.Errorf("with a local branch: %v, %v; want the local %s", got, err, c)
	}
	if _, err := resolve("os/testing"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("a name no ref has: %v", err)
	}
}
