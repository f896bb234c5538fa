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

// Canonical permissions mean what they mean in OSTree, and a bare-user-only
// repository applies them always: owner 0:0, no xattrs, and of the mode
// only the bits of 0755, for files and directories alike (setuid, setgid,
// sticky and group or other write bits go; a private file stays private).
func TestCanonicalPermissionsMaskWith0755(t *testing.T) {
	x := map[string]string{"user.note": "dropped"}
	src := makeTree(t, testtree.Tree{
		"suid":        {Mode: fs.ModeSetuid | 0o755, Content: "s"},
		"sgid-grp":    {Mode: fs.ModeSetgid | 0o775, Content: "g"},
		"shared":      {Mode: 0o666, Content: "w", Xattrs: x},
		"private":     testtree.File("p", 0o600),
		"readonly":    testtree.File("r", 0o444),
		"exec-only":   testtree.File("e", 0o711),
		"link":        testtree.Symlink("private"),
		"open":        testtree.Dir(0o777),
		"sticky":      {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		"secret":      {Mode: fs.ModeDir | 0o700, Xattrs: x},
		"group":       {Mode: fs.ModeDir | fs.ModeSetgid | 0o750},
		"group/inner": testtree.File("i", 0o640),
	})
	want := testtree.Tree{
		"suid":        testtree.File("s", 0o755),
		"sgid-grp":    testtree.File("g", 0o755),
		"shared":      testtree.File("w", 0o644),
		"private":     testtree.File("p", 0o600),
		"readonly":    testtree.File("r", 0o444),
		"exec-only":   testtree.File("e", 0o711),
		"link":        testtree.Symlink("private"),
		"open":        testtree.Dir(0o755),
		"sticky":      testtree.Dir(0o755),
		"secret":      testtree.Dir(0o700),
		"group":       testtree.Dir(0o750),
		"group/inner": testtree.File("i", 0o640),
	}
	for _, c := range []struct {
		mode  repo.Mode
		canon bool
	}{{repo.ModeBareUser, true}, {repo.ModeArchive, true}, {repo.ModeBareUserOnly, false}} {
		r := newRepo(t, c.mode)
		res := commitDir(t, r, "main", src, func(o *commit.Options) { o.CanonicalPermissions = c.canon })
		if d := cmp.Diff(want, readCommit(t, r, res.Commit, true)); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.mode, d)
		}
		m, err := r.ReadDirMeta(mustLookup(t, r, res.Commit, "/secret").MetaID)
		if err != nil {
			t.Fatal(err)
		}
		if m.UID != 0 || m.GID != 0 || len(m.Xattrs) != 0 {
			t.Errorf("%s: /secret dirmeta %+v, want owner 0:0 and no xattrs", c.mode, m)
		}
	}
}

func mustLookup(t *testing.T, r *repo.Repo, commitID repo.ID, p string) repo.Entry {
	t.Helper()
	e, err := r.Lookup(commitID, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A --tree=ref= source goes through the modifiers as a directory does, as
// in OSTree: committing a stored tree with an option gives the very tree
// that committing its directory with that option gives. Without options
// the stored tree is reused as it is, no file read.
func TestRefSourceTakesModifiers(t *testing.T) {
	x := map[string]string{"user.note": "x"}
	src := makeTree(t, testtree.Tree{
		"bin":       {Mode: fs.ModeDir | 0o775, Xattrs: x},
		"bin/tool":  {Mode: fs.ModeSetuid | 0o775, Content: "#!/bin/sh\n", Xattrs: x},
		"bin/copy":  {Mode: fs.ModeSetgid | 0o775, Content: "#!/bin/sh\n"},
		"etc/conf":  {Mode: 0o664, Content: "c", Xattrs: x},
		"etc/link":  testtree.Symlink("conf"),
		"priv":      testtree.Dir(0o700),
		"priv/file": testtree.File("p", 0o600),
	})
	uid, gid := uint32(1234), uint32(5678)
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		r := newRepo(t, mode)
		base := commitDir(t, r, "base", src)
		plain, err := commit.Commit(ctx, r, commit.Options{Branch: "same",
			Sources: []commit.Source{{Kind: commit.SourceRef, Path: "base"}}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rootTree(t, r, plain.Commit), rootTree(t, r, base.Commit); got != want {
			t.Errorf("%s: ref source without options: tree %v, want the stored %v", mode, got, want)
		}
		if plain.Stats.FilesHashed != 0 {
			t.Errorf("%s: ref source without options read %d files", mode, plain.Stats.FilesHashed)
		}
		for _, c := range []struct {
			name string
			set  func(*commit.Options)
		}{
			{"canonical-permissions", func(o *commit.Options) { o.CanonicalPermissions = true }},
			{"no-xattrs", func(o *commit.Options) { o.NoXattrs = true }},
			{"mode-ro-executables", func(o *commit.Options) { o.ModeROExecutables = true }},
			{"owner", func(o *commit.Options) { o.OwnerUID, o.OwnerGID = &uid, &gid }},
			{"all", func(o *commit.Options) {
				o.CanonicalPermissions, o.ModeROExecutables, o.OwnerUID = true, true, &uid
			}},
		} {
			fromDir := commitDir(t, r, "dir-"+c.name, src, c.set)
			fromRef := commitDir(t, r, "ref-"+c.name, src, c.set, func(o *commit.Options) {
				o.Sources = []commit.Source{{Kind: commit.SourceRef, Path: "base"}}
			})
			if got, want := rootTree(t, r, fromRef.Commit), rootTree(t, r, fromDir.Commit); got != want {
				t.Errorf("%s, %s: ref source gives tree %v, the directory %v:\n%s", mode, c.name, got, want,
					cmp.Diff(readCommit(t, r, fromDir.Commit, true), readCommit(t, r, fromRef.Commit, true)))
			}
		}
		if d := cmp.Diff(readCommit(t, r, base.Commit, true), readCommit(t, r, mustRef(t, r, "base"), true)); d != "" {
			t.Errorf("%s: base changed:\n%s", mode, d)
		}
		if rep, err := r.Fsck(ctx, repo.FsckOptions{}); err != nil || len(rep.Problems) > 0 {
			t.Errorf("%s: fsck: %v %+v", mode, err, rep)
		}
	}
}

// A hardlink of an object is taken as that object only where the options
// would not change it: in a bare-user-only repository, whose objects are
// canonical already, --mode-ro-executables still takes the write bits off
// an executable one.
func TestROExecutablesOnHardlinksOfObjects(t *testing.T) {
	r := newRepo(t, repo.ModeBareUserOnly)
	src := makeTree(t, testtree.Tree{"bin/tool": testtree.File("t", 0o755), "conf": testtree.File("c", 0o644)})
	first := commitDir(t, r, "main", src, func(o *commit.Options) { o.NoStatCache = true })
	farm := linkFarm(t, r, first.Commit)
	res := commitDir(t, r, "ro", farm, func(o *commit.Options) { o.NoStatCache, o.ModeROExecutables = true, true })
	want := map[string]fs.FileMode{"bin/tool": 0o555, "conf": 0o644}
	got := readCommit(t, r, res.Commit, false)
	for n, m := range want {
		if got[n].Mode != m {
			t.Errorf("%s: mode %v, want %v", n, got[n].Mode, m)
		}
	}
}

// rootTree is a commit's root: its dirtree and dirmeta.
func rootTree(t *testing.T, r *repo.Repo, id repo.ID) [2]repo.ID {
	t.Helper()
	c := mustCommit(t, r, id)
	return [2]repo.ID{c.RootTree, c.RootMeta}
}

func mustRef(t *testing.T, r *repo.Repo, name string) repo.ID {
	t.Helper()
	id, err := r.ReadRef(name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
