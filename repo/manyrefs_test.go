package repo_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/repo"
)

// A transaction that moves more refs than are written one by one writes
// each as it says, through aliases, deleting first those it deletes (so
// that a ref may take the place of a directory of deleted ones), and
// leaves nothing staged beside them.
func TestTxnManyRefs(t *testing.T) {
	r, first, second := aliasRepo(t)
	if err := r.SetAlias("os/stable", "os/x86_64/stable"); err != nil {
		t.Fatal(err)
	}
	// Refs under old/ are deleted; old becomes a ref in the same
	// transaction.
	for i := range 5 {
		if err := r.SetRef(fmt.Sprintf("old/r%d", i), first); err != nil {
			t.Fatal(err)
		}
	}
	txn, err := r.Begin(t.Context(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []repo.Ref{{Name: "old", Commit: second}, {Name: "os/stable", Commit: second, Alias: "os/x86_64/stable"},
		{Name: "os/x86_64/stable", Commit: second}, {Name: "other", Commit: second}}
	for i := range 5 {
		txn.SetRef(fmt.Sprintf("old/r%d", i), repo.ID{})
	}
	txn.SetRef("old", second)
	txn.SetRef("os/stable", second)
	for i := range 200 {
		name := fmt.Sprintf("m/%d/r%03d", i%3, i)
		txn.SetRef(name, first)
		want = append(want, repo.Ref{Name: name, Commit: first})
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := r.ListRefs("")
	if err != nil {
		t.Fatal(err)
	}
	sortRefs := cmp.Transformer("sort", func(in []repo.Ref) map[string]repo.Ref {
		m := map[string]repo.Ref{}
		for _, ref := range in {
			m[ref.Name] = ref
		}
		return m
	})
	if diff := cmp.Diff(want, got, sortRefs); diff != "" {
		t.Errorf("refs after the transaction (-want +got):\n%s", diff)
	}
	filepath.WalkDir(r.Path("refs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}
