package commit_test

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// NoXattrs and ModeROExecutables change what is recorded, on files and
// directories alike, and each gives the tree a stat-cache fingerprint of
// its own: committing the same tree with and without them, in any order,
// records each time what the options ask, never a cached answer made
// under other options.
func TestNoXattrsAndROExecutables(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	x := map[string]string{"user.note": "kept"}
	src := makeTree(t, testtree.Tree{
		"bin":      {Mode: fs.ModeDir | 0o755, Xattrs: x},
		"bin/tool": {Mode: 0o775, Content: "#!/bin/sh\n", Xattrs: x},
		"bin/user": {Mode: 0o744, Content: "u"},
		"conf":     {Mode: 0o664, Content: "c", Xattrs: x},
	})
	time.Sleep(150 * time.Millisecond) // past the racy window: the stat cache records the files
	dirXattrs := func(id repo.ID) []repo.Xattr {
		t.Helper()
		e, err := r.Lookup(id, "/bin")
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.ReadDirMeta(e.MetaID)
		if err != nil {
			t.Fatal(err)
		}
		return m.Xattrs
	}
	plain := testtree.Tree{
		"bin":      testtree.Dir(0o755),
		"bin/tool": {Mode: 0o775, Content: "#!/bin/sh\n", Xattrs: x},
		"bin/user": testtree.File("u", 0o744),
		"conf":     {Mode: 0o664, Content: "c", Xattrs: x},
	}
	stripped := testtree.Tree{
		"bin":      testtree.Dir(0o755),
		"bin/tool": testtree.File("#!/bin/sh\n", 0o775),
		"bin/user": testtree.File("u", 0o744),
		"conf":     testtree.File("c", 0o664),
	}
	readOnly := testtree.Tree{
		"bin":      testtree.Dir(0o755),
		"bin/tool": {Mode: 0o555, Content: "#!/bin/sh\n", Xattrs: x},
		"bin/user": testtree.File("u", 0o544),
		"conf":     {Mode: 0o664, Content: "c", Xattrs: x},
	}
	for round, c := range []struct {
		name       string
		noX, roExe bool
		want       testtree.Tree
		dirXattrs  int
	}{
		{"plain", false, false, plain, 1},
		{"no-xattrs", true, false, stripped, 0},
		{"mode-ro-executables", false, true, readOnly, 1},
		{"plain again", false, false, plain, 1},
		{"no-xattrs again", true, false, stripped, 0},
	} {
		res := commitDir(t, r, "main", src, func(o *commit.Options) { o.NoXattrs, o.ModeROExecutables = c.noX, c.roExe })
		if d := cmp.Diff(c.want, readCommit(t, r, res.Commit, false)); d != "" {
			t.Errorf("round %d, %s (-want +got):\n%s", round, c.name, d)
		}
		if got := len(dirXattrs(res.Commit)); got != c.dirXattrs {
			t.Errorf("round %d, %s: /bin has %d xattrs, want %d", round, c.name, got, c.dirXattrs)
		}
	}
}

// KeepMetadata copies keys from the parent commit unless Metadata gives
// them, and refuses a key the parent lacks or a commit without a parent,
// leaving the branch where it was.
func TestKeepMetadata(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"f": testtree.File("1", 0o644)})
	first := commitDir(t, r, "main", src, func(o *commit.Options) {
		o.Metadata = repo.Metadata{}.Set("version", []byte("1.0")).Set("os", []byte("demo"))
	})
	second := commitDir(t, r, "main", src, func(o *commit.Options) {
		o.Metadata = repo.Metadata{}.Set("version", []byte("2.0")).Set("build", []byte("7"))
		o.KeepMetadata = []string{"os", "version"}
	})
	c, err := r.ReadCommit(second.Commit)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"os": "demo", "version": "2.0", "build": "7"} {
		if v, _ := c.Metadata.Get(k); string(v) != want {
			t.Errorf("metadata %s = %q, want %q", k, v, want)
		}
	}
	if second.Parent != first.Commit {
		t.Fatalf("parent %s, want %s", second.Parent, first.Commit)
	}

	for _, bad := range []struct {
		opts commit.Options
		want string
	}{
		{commit.Options{Branch: "main", KeepMetadata: []string{"missing"}}, `no key "missing"`},
		{commit.Options{Branch: "new", KeepMetadata: []string{"os"}}, "no parent"},
		{commit.Options{Branch: "main", NoParent: true, KeepMetadata: []string{"os"}}, "no parent"},
	} {
		bad.opts.Sources = []commit.Source{{Kind: commit.SourceDir, Path: src}}
		_, err := commit.Commit(ctx, r, bad.opts)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("KeepMetadata %v on %s: got %v, want an error containing %q", bad.opts.KeepMetadata, bad.opts.Branch, err, bad.want)
		}
	}
	if head, _ := r.ReadRef("main"); head != second.Commit {
		t.Errorf("a refused commit moved main to %s", head)
	}
	if _, err := r.ReadRef("new"); err == nil {
		t.Error("a refused commit created a branch")
	}
}
