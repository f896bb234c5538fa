package repo_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// A branch name that is no local branch resolves, as in OSTree, to the
// remote-tracking ref of that name; a local branch wins; remotes that
// disagree make the name ambiguous, listing them, instead of one picked
// at random as OSTree does.
func TestResolveRemoteBranch(t *testing.T) {
	r, ids := newCommits(t, 3)
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
	_, err := resolve("os/stable")
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

// newCommits returns a repository holding n commits of the empty tree.
func newCommits(t *testing.T, n int) (*repo.Repo, []repo.ID) {
	t.Helper()
	return newCommitsIn(t, t.TempDir(), n)
}

// newCommitsIn is newCommits with the repository made in dir.
func newCommitsIn(t *testing.T, dir string, n int) (*repo.Repo, []repo.ID) {
	t.Helper()
	r, err := repo.Init(filepath.Join(dir, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := txn.WriteMeta(repo.KindDirTree, (&repo.DirTree{}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	meta, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	var ids []repo.ID
	for i := range n {
		c := &repo.Commit{Subject: strings.Repeat("c", i+1), RootTree: tree, RootMeta: meta}
		id, err := txn.WriteMeta(repo.KindCommit, c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return r, ids
}

// A ref is a file, so "a" and "a/b" cannot both exist. A transaction
// whose refs clash as paths, with stored refs or among themselves, fails
// before it writes any of them, naming both refs; CheckRefPlace tells
// beforehand.
func TestTxnRefClash(t *testing.T) {
	r, ids := newCommits(t, 2)
	a, b := ids[0], ids[1]
	for _, n := range []string{"origin:z/x", "br/x/y", "keep"} {
		if err := r.SetRef(n, a); err != nil {
			t.Fatal(err)
		}
	}
	before, err := r.ListRefs("")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		refs        []string
		ref, other  string
		above, both bool
	}{
		{[]string{"origin:a", "origin:z"}, "origin:z", "origin:z/x", false, false},
		{[]string{"br/x", "keep"}, "br/x", "br/x/y", false, false},
		{[]string{"br/a", "br/x/y/z"}, "br/x/y/z", "br/x/y", true, false},
		{[]string{"a", "a/b", "b"}, "a/b", "a", true, true},
		{[]string{"origin:q", "origin:q/r/s"}, "origin:q/r/s", "origin:q", true, true},
	}
	for _, c := range cases {
		txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.refs {
			if err := txn.SetRef(n, b); err != nil {
				t.Fatal(err)
			}
		}
		err = txn.Commit()
		var ce *repo.RefClashError
		if !errors.As(err, &ce) || ce.Ref != c.ref || ce.Other != c.other || ce.Above != c.above || ce.Together != c.both ||
			!strings.Contains(err.Error(), c.ref) || !strings.Contains(err.Error(), c.other) {
			t.Errorf("%v: Commit = %#v (%v), want a clash of %s with %s", c.refs, ce, err, c.ref, c.other)
		}
		after, err := r.ListRefs("")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("%v: a failed transaction changed refs (-before +after):\n%s", c.refs, diff)
		}
	}

	for name, want := range map[string]string{"br/x": "br/x/y", "br/x/y/z": "br/x/y", "origin:z": "origin:z/x", "br/x/y": "", "br/q": "", "origin:z/y": ""} {
		err := r.CheckRefPlace(name)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckRefPlace(%s) = %v, want a clash with %q", name, err, want)
		}
	}
	if err := r.CheckRefPlace("a b"); err == nil {
		t.Error("CheckRefPlace of an invalid name succeeded")
	}

	// Deleting the refs in the way in the same transaction makes room.
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	txn.SetRef("br/x/y", repo.ID{})
	txn.SetRef("br/x", b)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadRef("br/x"); err != nil || got != b {
		t.Errorf("br/x = %v, %v", got, err)
	}
}

// Txn.ReadCommitMeta sees the detached metadata the transaction staged,
// else the stored one.
func TestTxnReadCommitMeta(t *testing.T) {
	r, ids := newCommits(t, 1)
	id := ids[0]
	stored := repo.Metadata{}.Set("k", []byte("stored"))
	staged := repo.Metadata{}.Set("k", []byte("staged"))
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := txn.ReadCommitMeta(id); err != nil || m != nil {
		t.Errorf("none: %v, %v", m, err)
	}
	txn.WriteCommitMeta(id, stored)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn, err = r.Begin(context.Background(), repo.TxnOptions{NoSync: true, Publishable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if m, err := txn.ReadCommitMeta(id); err != nil || !cmp.Equal(m, stored) {
		t.Errorf("stored: %v, %v", m, err)
	}
	txn.WriteCommitMeta(id, staged)
	if m, err := txn.ReadCommitMeta(id); err != nil || !cmp.Equal(m, staged) {
		t.Errorf("staged: %v, %v", m, err)
	}
	if _, err := txn.Publish(); err != nil {
		t.Fatal(err)
	}
	if m, err := txn.ReadCommitMeta(id); err != nil || !cmp.Equal(m, staged) {
		t.Errorf("published: %v, %v", m, err)
	}
}

// A ref name component may be as long as the filesystem allows a file
// name (255 bytes), as in OSTree: the temporary file a ref or an alias is
// written through has a name that does not grow with the ref's.
func TestLongRefNames(t *testing.T) {
	r, ids := newCommits(t, 1)
	long := strings.Repeat("k", 255)
	for _, name := range []string{long, "d" + long[1:] + "/" + long, "origin:" + long, long + ":x/" + long} {
		if err := r.SetRef(name, ids[0]); err != nil {
			t.Fatalf("SetRef of a %d-byte name: %v", len(name), err)
		}
		if got, err := r.ReadRef(name); err != nil || got != ids[0] {
			t.Fatalf("ReadRef of a %d-byte name = %v, %v", len(name), got, err)
		}
	}
	alias := strings.Repeat("a", 255)
	if err := r.SetAlias(alias, long); err != nil {
		t.Fatalf("SetAlias of a 255-byte name: %v", err)
	}
	if got, err := r.ReadRef(alias); err != nil || got != ids[0] {
		t.Fatalf("ReadRef of a 255-byte alias = %v, %v", got, err)
	}
}

// A ref or an alias that cannot be written (here: the filesystem is
// full) leaves neither the directories made for it nor a temporary file.
func TestFailedRefWriteLeavesNothing(t *testing.T) {
	mnt := testtree.SmallFS(t, 1<<20)
	r, ids := newCommitsIn(t, mnt, 1)
	// A link text of 128 bytes or more takes a block of tmpfs.
	target := strings.Repeat("t", 130)
	if err := r.SetRef(target, ids[0]); err != nil {
		t.Fatal(err)
	}
	heads := r.Path("refs", "heads")
	before, err := os.ReadDir(heads)
	if err != nil {
		t.Fatal(err)
	}
	testtree.FillTo(t, mnt, 0)
	if err := r.SetRef("a/b/c", ids[0]); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "a/b/c") {
		t.Fatalf("SetRef on a full filesystem: %v, want ENOSPC naming the ref", err)
	}
	if err := r.SetAlias("x/y/z", target); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "x/y/z") {
		t.Fatalf("SetAlias on a full filesystem: %v, want ENOSPC naming the alias", err)
	}
	after, err := os.ReadDir(heads)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		var names []string
		for _, e := range after {
			names = append(names, e.Name())
		}
		t.Errorf("refs/heads after failed writes holds %v, want only %s", names, target)
	}
}

// ListRefs returns the readable refs with an *UnreadableRefsError naming
// each unreadable one below the prefix (a *CorruptRefError for a ref file
// that holds no id); a corrupt ref is still in the way of a ref below it.
func TestListRefsCorrupt(t *testing.T) {
	r, ids := newCommits(t, 1)
	for _, n := range []string{"a", "b/c", "origin:d"} {
		if err := r.SetRef(n, ids[0]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(r.Path("refs", "heads", "b", "c"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	refs, err := r.ListRefs("")
	var bad *repo.UnreadableRefsError
	var corrupt *repo.CorruptRefError
	if !errors.As(err, &bad) || !errors.As(err, &corrupt) || len(bad.Refs) != 1 || bad.Refs[0] != "b/c" ||
		corrupt.Ref != "b/c" || corrupt.Path != r.Path("refs", "heads", "b", "c") {
		t.Fatalf("ListRefs: %v, want an UnreadableRefsError of b/c", err)
	}
	if diff := cmp.Diff([]repo.Ref{{Name: "a", Commit: ids[0]}, {Name: "origin:d", Commit: ids[0]}}, refs); diff != "" {
		t.Errorf("refs listed with b/c corrupt (-want +got):\n%s", diff)
	}
	if refs, err := r.ListRefs("origin:"); err != nil || len(refs) != 1 {
		t.Errorf("ListRefs(origin:) = %v, %v; want origin:d alone", refs, err)
	}
	var clash *repo.RefClashError
	if err := r.CheckRefPlace("b"); !errors.As(err, &clash) || clash.Other != "b/c" {
		t.Errorf("CheckRefPlace(b) with b/c corrupt = %v, want a clash with b/c", err)
	}
}

// An ambiguous prefix lists two of its matches, with "..." only when
// there are more.
func TestAmbiguousPrefixMessage(t *testing.T) {
	ids := []repo.ID{repo.Sum([]byte("a")), repo.Sum([]byte("b")), repo.Sum([]byte("c"))}
	for n, want := range map[int]string{2: ids[1].Short() + ")", 3: ids[1].Short() + ", ...)"} {
		msg := (&repo.AmbiguousPrefixError{Prefix: "abcd", Matches: ids[:n]}).Error()
		if !strings.HasSuffix(msg, want) || !strings.Contains(msg, ids[0].Short()) {
			t.Errorf("%d matches: %q, want it to name %s and end in %q", n, msg, ids[0].Short(), want)
		}
	}
	// Ids that share their first ten digits are written long enough to
	// tell apart.
	a, b := ids[0], ids[0]
	b[31] ^= 1
	msg := (&repo.AmbiguousPrefixError{Prefix: "abcd", Matches: []repo.ID{a, b}}).Error()
	if want := "(" + a.String() + ", " + b.String() + ")"; !strings.HasSuffix(msg, want) {
		t.Errorf("ids differing in the last digit: %q, want it to end in %q", msg, want)
	}
	b = ids[0]
	b[6] ^= 0x10
	msg = (&repo.AmbiguousPrefixError{Prefix: "abcd", Matches: []repo.ID{a, b}}).Error()
	if want := "(" + a.String()[:13] + ", " + b.String()[:13] + ")"; !strings.HasSuffix(msg, want) {
		t.Errorf("ids differing in the 13th digit: %q, want it to end in %q", msg, want)
	}
}

// A ref name is one or more components of letters, digits and "._-",
// none empty or starting with '.' or '-' (so none is "." or ".."), and at
// most one "remote:" without a '/': anything else is refused by
// ValidateRefName, Repo.SetRef and Txn.SetRef alike, and nothing is
// written, inside refs/ or out of it.
func TestInvalidRefNamesRefused(t *testing.T) {
	r, ids := newCommits(t, 1)
	for _, name := range []string{"", "/", "a/", "/a", "a//b", "..", "../escape", "a/../../escape", "a/./b",
		".hidden", "a/.b", "-dash", "a/-b", "a b", "a\nb", "a*", "origin:", ":main", "or/igin:main", "../x:main", "a:b:c"} {
		if err := repo.ValidateRefName(name); err == nil {
			t.Errorf("ValidateRefName(%q) accepted it", name)
		}
		if err := r.SetRef(name, ids[0]); err == nil {
			t.Errorf("SetRef(%q) succeeded", name)
		}
		txn, err := r.Begin(context.Background(), repo.TxnOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.SetRef(name, ids[0]); err == nil {
			t.Errorf("Txn.SetRef(%q) accepted it", name)
		}
		txn.Commit() // writes whatever SetRef queued

	}
	for _, name := range []string{"a", "_a", "a.b-c_d/e", "A9/b.", "origin:os/x", "o.r-g_1:main"} {
		if err := repo.ValidateRefName(name); err != nil {
			t.Errorf("ValidateRefName(%q): %v", name, err)
		}
	}
	if refs, err := r.ListRefs(""); err != nil || len(refs) != 0 {
		t.Errorf("after refused names the refs are %v, %v; want none", refs, err)
	}
	if err := filepath.WalkDir(r.Path(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && (d.Name() == "escape" || d.Name() == "main" || d.Name() == "b") {
			t.Errorf("a refused ref name left %s", p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// A FIFO among the refs (or a device) is an unreadable ref, named, not a
// read that blocks every command listing or reading refs; the other refs
// are listed.
func TestRefFIFONotRead(t *testing.T) {
	r, ids := newCommits(t, 1)
	if err := r.SetRef("good", ids[0]); err != nil {
		t.Fatal(err)
	}
	fifo := r.Path("refs", "heads", "bad")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		refs, err := r.ListRefs("")
		var bad *repo.UnreadableRefsError
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), fifo) || len(refs) != 1 || refs[0].Name != "good" {
			t.Errorf("ListRefs with a FIFO among the refs = %v, %v; want good and an error naming %s", refs, err, fifo)
		}
		if _, err := r.ReadRef("bad"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("ReadRef of a FIFO: %v, want not a regular file", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("reading refs blocked on a FIFO")
	}
}

// A refused character is named as it is: a byte that is not UTF-8 as its
// escape, not as the U+FFFD that ranging over the name gives.
func TestValidateNameQuotesBadCharacter(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{repo.ValidateRefName("a\xffb"), `character '\xff' not allowed`},
		{repo.ValidateRefName("a/\xe9"), `character '\xe9' not allowed`},
		{repo.ValidateRefName("a\x1b[31m"), `character '\x1b' not allowed`},
		{repo.ValidateRefName("caf\u00e9"), `character 'é' not allowed`},
		{repo.ValidateRefName("a\ufffd"), `character '�' not allowed`},
		{repo.ValidateCollectionID("org.ex\xffample"), `character '\xff' not allowed`},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("error %v, want it to say %s", tc.err, tc.want)
		}
	}
}

// A ref file that holds no id is reported by its path and size, its
// content unquoted: a refs/heads that links elsewhere (followed, as OSTree
// follows it) makes any readable file a ref.
func TestCorruptRefContentNotQuoted(t *testing.T) {
	r, _ := newCommits(t, 1)
	secrets := t.TempDir()
	if err := os.WriteFile(filepath.Join(secrets, "shadow"), []byte("root:$y$j9T$SECRETHASH:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "long"), []byte(strings.Repeat("SECRET", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	heads := r.Path("refs", "heads")
	if err := os.RemoveAll(heads); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secrets, heads); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"shadow": "holds 34 bytes,", "long": "holds 256 bytes or more,"} {
		_, err := r.ReadRef(name)
		var corrupt *repo.CorruptRefError
		if !errors.As(err, &corrupt) || corrupt.Path != filepath.Join(heads, name) || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadRef(%s): %v, want a CorruptRefError saying it %s", name, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("ReadRef(%s) quotes the file: %v", name, err)
		}
	}
	_, err := r.ListRefs("")
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("ListRefs: %v", err)
	}
}

// A ref write or deletion killed half-way can leave, at a ref's place, a
// directory holding no ref: empty (a deletion killed before it removed the
// directories it emptied) or with a temporary file (a write killed before
// its rename). Writing that ref, or an alias there, replaces such a
// directory, as OSTree's write replaces an empty one, instead of failing
// for good with "is a directory"; one holding anything else still stops
// it.
func TestRefWriteReplacesKilledWritesLeftovers(t *testing.T) {
	r, ids := newCommits(t, 1)
	heads := r.Path("refs", "heads")
	for _, d := range []string{"empty", "temp/deep", "junk", "alias/deep"} {
		if err := os.MkdirAll(filepath.Join(heads, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"temp/.tmp-123", "temp/deep/.tmp-456", "junk/notes"} {
		if err := os.WriteFile(filepath.Join(heads, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.CheckRefPlace("empty"); err != nil {
		t.Errorf("CheckRefPlace over an empty directory: %v", err)
	}
	if err := r.SetRef("empty", ids[0]); err != nil {
		t.Errorf("SetRef over an empty directory: %v", err)
	}
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if err := txn.SetRef("temp", ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Errorf("a transaction writing a ref over a directory of temporary files: %v", err)
	}
	if err := r.SetAlias("alias", "empty"); err != nil {
		t.Errorf("SetAlias over an empty directory: %v", err)
	}
	for _, name := range []string{"empty", "temp", "alias"} {
		if got, err := r.ReadRef(name); err != nil || got != ids[0] {
			t.Errorf("ref %s = %s, %v; want %s", name, got, err, ids[0])
		}
	}
	if err := r.SetRef("junk", ids[0]); err == nil || !strings.Contains(err.Error(), "junk") {
		t.Errorf("SetRef over a directory holding another file: %v, want an error naming it", err)
	}
	if _, err := os.Stat(filepath.Join(heads, "junk", "notes")); err != nil {
		t.Errorf("the refused write touched the directory in its place: %v", err)
	}
}

// A ref two or more levels below a ref ("x/a/1" below "x") is in the way
// of that ref as one just below it is: writing it is a *RefClashError
// naming both, reading it finds no ref, rather than both failing with
// the "not a directory" of a path through the file "x".
func TestRefDeepBelowRefClashes(t *testing.T) {
	r, ids := newCommits(t, 1)
	if err := r.SetRef("x", ids[0]); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"x/a", "x/a/1", "x/a/b/c"} {
		var clash *repo.RefClashError
		if err := r.CheckRefPlace(name); !errors.As(err, &clash) || clash.Other != "x" || !clash.Above {
			t.Errorf("CheckRefPlace(%s) = %v, want a clash with ref x above it", name, err)
		}
		if err := r.SetRef(name, ids[0]); !errors.As(err, &clash) || clash.Other != "x" || !clash.Above {
			t.Errorf("SetRef(%s) = %v, want a clash with ref x above it", name, err)
		}
		if _, err := r.ReadRef(name); !errors.Is(err, repo.ErrNotFound) {
			t.Errorf("ReadRef(%s) = %v, want not found", name, err)
		}
	}
}
