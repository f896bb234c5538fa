package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// Collection IDs: init --collection-id accepts and refuses what OSTree's
// does; refs --collections lists what OSTree's lists; commits are bound to
// the collection, the summary names it, and fsck --verify-bindings checks
// the binding.
func TestCollectionsParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "archive")
	for _, id := range []string{"org.example", "org", "a.b", "a1.b", "1a.b", "a.b-", "a-b.c", "a_b.c", ".a.b", "a..b", "org.example.Os"} {
		_, theirs := o.runIn(filepath.Join(t.TempDir(), "r"), "init", "--collection-id="+id)
		mine := repo.ValidateCollectionID(id)
		if (theirs == nil) != (mine == nil) {
			t.Errorf("collection ID %q: OSTree accepts %v, otree %v", id, theirs == nil, mine)
		}
	}

	src := source(t, fixture)
	p := filepath.Join(t.TempDir(), "repo")
	c := &cli{t: t, path: p}
	c.ok("init", "--mode=archive", "--collection-id=org.example.Os")
	// A second init succeeds and changes nothing, as OSTree's does,
	// unless it asks for another mode or collection.
	cfg, _ := os.ReadFile(filepath.Join(p, "config"))
	c.ok("init", "--mode=archive", "--collection-id=org.example.Os")
	c.ok("init")
	c.fails(exitError, []string{"mode archive", "not bare"}, "init", "--mode=bare")
	c.fails(exitError, []string{`"org.example.Os"`, `not "org.example.Other"`}, "init", "--collection-id=org.example.Other")
	if again, _ := os.ReadFile(filepath.Join(p, "config")); string(again) != string(cfg) {
		t.Errorf("a second init changed the config:\n%s\nto\n%s", cfg, again)
	}
	r, err := repo.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c.r = r
	orepo := filepath.Join(t.TempDir(), "ostree")
	o.okIn(orepo, "init", "--mode=archive", "--collection-id=org.example.Os")
	for _, args := range [][]string{{"commit", "-b", "os/stable", src}, {"refs", "--create=os/two", "os/stable"}} {
		c.ok(args...)
		o.okIn(orepo, args...)
	}
	// OSTree lists in hash-table order; otree sorted.
	mine, theirs := c.ok("refs", "--collections"), o.okIn(orepo, "refs", "--collections")
	lines := func(s string) []string { l := strings.Split(strings.TrimSpace(s), "\n"); slices.Sort(l); return l }
	if !slices.Equal(lines(mine), lines(theirs)) || !slices.IsSorted(strings.Split(strings.TrimSpace(mine), "\n")) || mine == "" {
		t.Errorf("refs --collections: otree %q, OSTree %q", mine, theirs)
	}
	// Its argument is a collection ID, as OSTree's is, not a ref prefix.
	for _, coll := range []string{"org.example.Os", "org.other.Os"} {
		mine, theirs := c.ok("refs", "--collections", coll), o.okIn(orepo, "refs", "--collections", coll)
		if !slices.Equal(lines(mine), lines(theirs)) {
			t.Errorf("refs --collections %s: otree %q, OSTree %q", coll, mine, theirs)
		}
	}
	c.fails(exitUsage, []string{`"os"`, "collection ID"}, "refs", "--collections", "os")
	if got := c.ok("show", "--print-metadata-key="+repo.CollectionBindingKey, "os/stable"); got != "'org.example.Os'\n" {
		t.Errorf("collection binding of a commit: %q", got)
	}
	var js []struct {
		CollectionID string `json:"collection_id"`
		Name         string `json:"name"`
	}
	if err := json.Unmarshal([]byte(c.ok("refs", "-c", "--json")), &js); err != nil || len(js) != 2 || js[1].Name != "os/two" || js[0].CollectionID != "org.example.Os" {
		t.Errorf("refs --collections --json = %+v, %v", js, err)
	}
	c.ok("summary", "-u")
	if got := c.ok("summary", "-v"); !strings.Contains(got, `otree.summary.collection-id: 'org.example.Os'`) {
		t.Errorf("summary -v does not name the collection:\n%s", got)
	}
	c.fails(exitUsage, []string{"collection"}, "init", "--collection-id=org")
	c.fails(exitUsage, []string{"--collections"}, "refs", "-c", "--delete", "os/two")

	// --collections --create=COLLECTION-ID:BRANCH makes a branch of the
	// repository's own collection, as OSTree's does; otree keeps no
	// refs/mirrors/ for another collection's.
	c.ok("refs", "--collections", "--create=org.example.Os:os/three", "os/stable")
	o.okIn(orepo, "refs", "--collections", "--create=org.example.Os:os/three", "os/stable")
	if mine, theirs := c.ok("refs", "--collections"), o.okIn(orepo, "refs", "--collections"); !slices.Equal(lines(mine), lines(theirs)) || !strings.Contains(mine, "os/three") {
		t.Errorf("after refs --collections --create: otree %q, OSTree %q", mine, theirs)
	}
	c.fails(exitError, []string{"already exists", "--force"}, "refs", "-c", "--create=org.example.Os:os/three", "os/stable")
	c.fails(exitError, []string{"(org.other.Os, x)", "refs/mirrors"}, "refs", "-c", "--create=org.other.Os:x", "os/stable")
	c.fails(exitUsage, []string{"COLLECTION-ID:BRANCH", `"os/x"`}, "refs", "-c", "--create=os/x", "os/stable")
	c.ok("refs", "--delete", "os/three")
	o.okIn(orepo, "refs", "--delete", "os/three")

	// A collection ref that a branch and a remote ref both name is listed
	// once, as OSTree lists it.
	for _, args := range [][]string{{"remote", "add", "--collection-id=org.example.Os", "--no-gpg-verify", "self", "file://" + p}, {"pull", "self", "os/stable"}} {
		c.ok(args...)
	}
	o.okIn(orepo, "remote", "add", "--collection-id=org.example.Os", "--no-gpg-verify", "self", "file://"+orepo)
	o.okIn(orepo, "pull", "self", "os/stable")
	if mine, theirs := c.ok("refs", "--collections"), o.okIn(orepo, "refs", "--collections"); !slices.Equal(lines(mine), lines(theirs)) {
		t.Errorf("refs --collections with a remote of the collection: otree %q, OSTree %q", mine, theirs)
	}
	c.ok("refs", "--delete", "self:")
	c.ok("remote", "delete", "self")

	// A repository without a collection ID lists nothing, as OSTree does.
	plain := newCLI(t)
	plain.commitTree("main", src, "one", 1700000000)
	if got := plain.ok("refs", "--collections"); got != "" {
		t.Errorf("refs --collections without a collection ID: %q", got)
	}
	if got := plain.run("show", "--print-metadata-key="+repo.CollectionBindingKey, "main"); got.code == 0 {
		t.Errorf("a commit outside any collection has a collection binding: %q", got.stdout)
	}

	// fsck --verify-bindings: a branch whose commit is bound to another
	// collection is reported.
	c.fails(exitUsage, []string{"collection ID"}, "config", "set", "core.collection-id", "nodots")
	c.ok("config", "set", "core.collection-id", "org.other.Os")
	res := c.fails(exitError, nil, "fsck", "--verify-bindings")
	if !strings.Contains(res.stdout+res.stderr, "org.example.Os") || !strings.Contains(res.stdout+res.stderr, "os/stable") {
		t.Errorf("fsck --verify-bindings with another collection ID:\n%s%s", res.stdout, res.stderr)
	}
}
