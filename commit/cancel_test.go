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

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/ctxread/ctxreadtest"
	"github.com/otree/otree/repo"
)

// A cancel stops an archive-mode commit of a large file soon, rather than
// once all of it is hashed and compressed: cancelled a part of the way
// into the file, the commit reads little more of it and returns the
// context's error naming the file, the branch stays where it was and
// nothing is left staged in tmp/.
func TestCancelStopsLargeArchiveCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and commits 32 MiB")
	}
	const size, at = 32 << 20, 4 << 20
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(src, "big"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("otree cancels a long compression\n"), (1<<20)/33+1)[:1<<20]
	for i := 0; i < size>>20; i++ {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	opts := func(path string) commit.Options {
		return commit.Options{Branch: "main", NoSync: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: path}}}
	}

	r := newRepo(t, repo.ModeArchive)
	small := t.TempDir()
	if err := os.WriteFile(filepath.Join(small, "f"), []byte("small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first, err := commit.Commit(ctx, r, opts(small))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var c *ctxreadtest.CancelAfter
	defer commit.SetLargeReadHook(func(rd io.Reader) io.Reader {
		c = &ctxreadtest.CancelAfter{R: rd, At: at, Cancel: cancel}
		return c
	})()
	_, err = commit.Commit(cctx, r, opts(src))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "big") {
		t.Fatalf("cancelled commit: %v, want context.Canceled naming big", err)
	}
	c.CheckStoppedSoon(t, "the commit", size)
	if got, err := r.ReadRef("main"); err != nil || got != first.Commit {
		t.Errorf("after the cancelled commit main is %s, %v; want %s", got, err, first.Commit)
	}
	ents, err := os.ReadDir(r.Path("tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "txn-") || strings.HasPrefix(e.Name(), "new-") {
			t.Errorf("staging left in tmp/: %s", e.Name())
		}
	}
}
