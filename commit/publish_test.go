package commit_test

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// A commit publishes finished objects while it still reads its source: the
// first file of a tar fed through a FIFO is in objects/ before the rest of
// the tar is written. When the tar then turns out broken, the commit fails,
// the branch stays where it was, and fsck finds nothing wrong: the early
// object is complete, merely unreferenced.
func TestCommitPublishesAsItGoes(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	old, err := commitTar(r, "main", writeTar(t, []*tar.Header{{Name: "old", Typeflag: tar.TypeReg, Mode: 0o644}}, map[string]string{"old": "old\n"}))
	if err != nil {
		t.Fatal(err)
	}
	before := old.Commit
	fifo := filepath.Join(t.TempDir(), "in.tar")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res *commit.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "main",
			Sources: []commit.Source{{Kind: commit.SourceTar, Path: fifo}}})
		done <- result{res, err}
	}()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	content := "published before the commit ends\n"
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "first", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	id := repo.FileID(&repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}, []byte(content))
	for deadline := time.Now().Add(20 * time.Second); ; {
		if has, err := r.HasObject(repo.KindFile, id); err != nil {
			t.Fatal(err)
		} else if has {
			break
		}
		select {
		case res := <-done:
			t.Fatalf("the commit ended (%v) before the tar did", res.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the first file's object did not appear in objects/ while the commit ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A block that is no tar header: the commit fails.
	w.Write([]byte(strings.Repeat("not a tar header ", 64)[:1024]))
	w.Close()
	res := <-done
	if res.err == nil || !strings.Contains(res.err.Error(), fifo) {
		t.Fatalf("commit of a broken tar: %v, want an error naming %s", res.err, fifo)
	}
	if got, err := r.ReadRef("main"); err != nil || got != before {
		t.Errorf("main is %s (%v) after the failed commit, want %s", got, err, before)
	}
	rep, err := r.Fsck(ctx, repo.FsckOptions{})
	if err != nil {
		t.Fatalf("fsck after the failed commit: %v", err)
	}
	if rep.Unreferenced != 1 {
		t.Errorf("fsck: %d unreferenced objects, want 1 (the early one)", rep.Unreferenced)
	}
}

// A directory's dirtree is stored and published as soon as everything below
// it is done, while the walk still works elsewhere: with the walk held on
// one file of z/, the dirtrees of a/ and a/sub/ reach objects/ and the
// root's does not. Let go, the commit equals one made without the hold.
func TestCommitPublishesDirTreesAsItGoes(t *testing.T) {
	src := t.TempDir()
	for name, data := range map[string]string{"a/one": "1\n", "a/two": "2\n", "a/sub/three": "3\n", "z/block": "held\n"} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := commit.Options{Branch: "main", Timestamp: time.Unix(1e9, 0),
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}}
	ref := newRepo(t, repo.ModeBareUser)
	want, err := commit.Commit(ctx, ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ref.ReadCommit(want.Commit)
	if err != nil {
		t.Fatal(err)
	}
	tree := func(id repo.ID, name string) repo.ID {
		dt, err := ref.ReadDirTree(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dt.Dirs {
			if d.Name == name {
				return d.TreeID
			}
		}
		t.Fatalf("no directory %s in dirtree %s", name, id)
		return repo.ID{}
	}
	aTree := tree(c.RootTree, "a")
	subTree := tree(aTree, "sub")

	r := newRepo(t, repo.ModeBareUser)
	release := make(chan struct{})
	restore := commit.SetHashHook(func(path string) {
		if strings.HasSuffix(path, "/z/block") {
			<-release
		}
	})
	defer restore()
	type result struct {
		res *commit.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := commit.Commit(ctx, r, opts)
		done <- result{res, err}
	}()
	has := func(id repo.ID) bool {
		ok, err := r.HasObject(repo.KindDirTree, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for deadline := time.Now().Add(20 * time.Second); !has(aTree) || !has(subTree); {
		select {
		case res := <-done:
			t.Fatalf("the commit ended (%v) while a file was held", res.err)
		default:
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the dirtrees of a/ and a/sub/ did not reach objects/ while the walk was held in z/")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if has(c.RootTree) {
		t.Error("the root's dirtree was stored before z/ was done")
	}
	close(release)
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.res.Commit != want.Commit {
		t.Errorf("commit %s, want %s as without the hold", res.res.Commit, want.Commit)
	}
}
