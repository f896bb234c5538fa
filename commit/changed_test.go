package commit_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
)

// writeAtEOF reads r and, once r is read to its end, overwrites the first
// byte of the file at path: a writer that changes a file between the read
// that hashes it and the copy that stores it.
type writeAtEOF struct {
	r    io.Reader
	path string
	done bool
}

func (w *writeAtEOF) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err == io.EOF && !w.done {
		w.done = true
		f, ferr := os.OpenFile(w.path, os.O_WRONLY, 0)
		if ferr != nil {
			return n, ferr
		}
		_, ferr = f.WriteAt([]byte("B"), 0)
		f.Close()
		if ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

// A large file is hashed as it is read and then copied into the store, a
// second read. One written in between fails the commit, naming the file:
// nothing of other content is stored under the id that was hashed (fsck
// finds no corrupt object), and the branch is not made.
func TestLargeFileChangedWhileCommitted(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		r := newRepo(t, mode)
		src := t.TempDir()
		p := filepath.Join(src, "big")
		if err := os.WriteFile(p, bytes.Repeat([]byte("a"), 3<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		// Times of long ago, so that the write in the hook changes the
		// modification time whatever the timestamps' granularity.
		if err := os.Chtimes(p, time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
			t.Fatal(err)
		}
		restore := commit.SetLargeReadHook(func(rd io.Reader) io.Reader { return &writeAtEOF{r: rd, path: p} })
		_, err := commit.Commit(context.Background(), r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		restore()
		if !errors.Is(err, repo.ErrSourceChanged) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: commit of a file written while committed: %v; want it refused, naming %s", mode, err, p)
		}
		if _, err := r.ReadRef("main"); err == nil {
			t.Errorf("%s: the failed commit made the branch", mode)
		}
		rep, err := r.Fsck(context.Background(), repo.FsckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range rep.Problems {
			t.Errorf("%s: fsck after the failed commit: %v", mode, pr)
		}
	}
}
