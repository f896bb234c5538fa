package repo_test

import (
	"errors"
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

// Listing the refs under a prefix reads only the ref files that match it
// and the directories on the way to them, not every ref of the
// repository, and lists the same refs as filtering the whole list would.
func TestListRefsPrefixReadsOnlyItsRefs(t *testing.T) {
	r, first, _ := aliasRepo(t)
	for _, name := range []string{"g1x", "g10/r0", "origin:g1/r0", "origin:x", "mirror:g1/r0"} {
		if err := r.SetRef(name, first); err != nil {
			t.Fatal(err)
		}
	}
	for g := range 3 {
		for i := range 50 {
			if err := r.SetRef(fmt.Sprintf("g%d/r%02d", g, i), first); err != nil {
				t.Fatal(err)
			}
		}
	}
	all, err := r.ListRefs("")
	if err != nil {
		t.Fatal(err)
	}
	heads, remotes := r.Path("refs", "heads"), r.Path("refs", "remotes")
	for _, tc := range []struct {
		prefix string
		reads  []string // of refs/heads and refs/remotes, what may be read
		want   int
	}{
		{"g1", []string{"g1"}, 50},
		{"g1/", []string{"g1"}, 50},
		{"g1/r07", []string{"g1/r07"}, 1},
		{"os/x86_64", []string{"os/x86_64"}, 1},
		{"origin:", []string{"origin"}, 2},
		{"origin:g1", []string{"origin/g1"}, 1},
	} {
		var read []string
		restore := repo.SetRefReadHook(func(p string) { read = append(read, p) })
		got, err := r.ListRefs(tc.prefix)
		restore()
		if err != nil {
			t.Fatal(err)
		}
		var want []repo.Ref
		for _, ref := range all {
			if ref.Name == tc.prefix || strings.HasPrefix(ref.Name, strings.TrimSuffix(tc.prefix, "/")+"/") ||
				strings.HasSuffix(tc.prefix, ":") && strings.HasPrefix(ref.Name, tc.prefix) {
				want = append(want, ref)
			}
		}
		if len(want) != tc.want {
			t.Fatalf("%s: %d refs match, want %d", tc.prefix, len(want), tc.want)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListRefs(%q) (-want +got):\n%s", tc.prefix, diff)
		}
		for _, p := range read {
			ok := p == heads || p == remotes
			for _, root := range []string{heads, remotes} {
				for _, under := range tc.reads {
					place := filepath.Join(root, under)
					ok = ok || p == place || strings.HasPrefix(p, place+"/") || strings.HasPrefix(place, p+"/")
				}
			}
			if !ok {
				t.Errorf("ListRefs(%q) read %s", tc.prefix, p)
			}
		}
	}
}

// DeleteRefs reads the aliases once, however many refs it deletes (one
// SetRef a ref walked every branch: deleting 10,000 of 100,000 refs ran
// for minutes), deletes an alias before the branch it names, and refuses
// a branch an alias still names, keeping what it deleted before.
func TestDeleteRefsWalksAliasesOnce(t *testing.T) {
	r, first, _ := aliasRepo(t)
	var names []string
	for i := range 200 {
		n := fmt.Sprintf("del/r%03d", i)
		if err := r.SetRef(n, first); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := r.SetAlias("del-alias", "del/r000"); err != nil {
		t.Fatal(err)
	}
	heads := 0
	defer repo.SetRefReadHook(func(p string) {
		if p == r.Path("refs", "heads") {
			heads++
		}
	})()
	// The branch an alias names, before the alias: refused, after one.
	err := r.DeleteRefs([]string{"del/r199", "del/r000", "del-alias"})
	if ae := (*repo.AliasedRefError)(nil); !errors.As(err, &ae) || !strings.Contains(err.Error(), "after deleting 1 of 3") {
		t.Fatalf("DeleteRefs of an aliased branch before its alias: %v; want an AliasedRefError after 1 deletion", err)
	}
	if _, err := r.ReadRef("del/r199"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("del/r199, deleted before the refusal: %v; want it gone", err)
	}
	heads = 0
	if err := r.DeleteRefs(append([]string{"del-alias"}, names[:199]...)); err != nil {
		t.Fatal(err)
	}
	if heads > 1 {
		t.Errorf("deleting 200 refs read refs/heads %d times; want once", heads)
	}
	left, err := r.ListRefs("")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range left {
		if strings.HasPrefix(ref.Name, "del") {
			t.Errorf("ref %s not deleted", ref.Name)
		}
	}
	if _, err := os.Stat(r.Path("refs", "heads", "del")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refs/heads/del left behind: %v", err)
	}
}

// Deleting remote refs, which no alias can name, reads no branch: neither
// DeleteRefs nor a transaction deleting many of them walks refs/heads
// (with 100,000 branches, a walk each), and a refs/heads that cannot be
// listed does not stop them.
func TestDeleteRemoteRefsReadNoBranches(t *testing.T) {
	r, first, _ := aliasRepo(t)
	var names []string
	for i := range 100 {
		n := fmt.Sprintf("origin:r%03d", i)
		if err := r.SetRef(n, first); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	heads := r.Path("refs", "heads")
	var read []string
	defer repo.SetRefReadHook(func(p string) {
		if p == heads || strings.HasPrefix(p, heads+"/") {
			read = append(read, p)
		}
	})()
	if err := r.DeleteRefs(names[:1]); err != nil {
		t.Fatal(err)
	}
	txn, err := r.Begin(t.Context(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names[1:90] {
		if err := txn.SetRef(n, repo.ID{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(read) > 0 {
		t.Errorf("deleting remote refs read %d entries of refs/heads: %v", len(read), read[:min(len(read), 3)])
	}
	// refs/heads moved away, a dangling symlink left in its place.
	if err := os.Rename(heads, heads+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("heads.gone", heads); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteRefs(names[90:]); err != nil {
		t.Errorf("deleting remote refs with refs/heads unreadable: %v", err)
	}
	for _, n := range names {
		if _, err := r.ReadRef(n); !errors.Is(err, repo.ErrNotFound) {
			t.Errorf("%s: %v; want it deleted", n, err)
		}
	}
}
