package commit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
)

// A cancel stops an archive-mode commit of a large file soon, rather than
// once all of it is hashed and compressed: it returns the context's error
// in a small part of the time the whole commit takes, the branch stays
// where it was and nothing is left staged in tmp/.
func TestCancelStopsLargeArchiveCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and commits 256 MiB")
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	// Written out, not sparse, and compressible: the commit's time goes to
	// hashing and compressing, not to writing the object.
	f, err := os.Create(filepath.Join(src, "big"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("otree cancels a long compression\n"), (1<<20)/33+1)[:1<<20]
	for i := 0; i < 256; i++ {
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

	start := time.Now()
	if _, err := commit.Commit(ctx, newRepo(t, repo.ModeArchive), opts(src)); err != nil {
		t.Fatal(err)
	}
	whole := time.Since(start)

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
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	_, err = commit.Commit(cctx, r, opts(src))
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled commit: %v, want context.Canceled", err)
	}
	t.Logf("whole commit %v, cancelled after 50ms returned after %v", whole, took)
	if took > whole/4 {
		t.Errorf("cancelled 50ms in, the commit returned after %v; the whole commit takes %v", took, whole)
	}
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
