package remote

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
)

// A delta that another process deletes between the summary's listing of
// deltas/ and its reading of the superblock is left out of the summary,
// not the cause of a failed "summary -u" (the other deltas are listed).
func TestDeltaRefsSkipsDeletedDelta(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src := t.TempDir()
	var ids []repo.ID
	for i, content := range []string{"one\n", "two\n"} {
		if err := os.WriteFile(filepath.Join(src, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := commit.Commit(context.Background(), r, commit.Options{Branch: "main", Subject: "s",
			Timestamp: time.Unix(1700000000+int64(i), 0), NoSync: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Commit)
	}
	kept, gone := delta.Name{From: ids[0], To: ids[1]}, delta.Name{To: ids[1]}
	for _, n := range []delta.Name{kept, gone} {
		if _, err := delta.Generate(context.Background(), r, delta.GenerateOptions{From: n.From, To: n.To, NoSync: true}); err != nil {
			t.Fatal(err)
		}
	}
	names, err := delta.List(r)
	if err != nil || len(names) != 2 {
		t.Fatalf("deltas listed: %v, %v; want 2", names, err)
	}
	if err := delta.Delete(context.Background(), r, gone); err != nil {
		t.Fatal(err)
	}
	refs, err := deltaRefs(r, names)
	if err != nil {
		t.Fatalf("reading the deltas listed before one was deleted: %v", err)
	}
	if len(refs) != 1 || refs[0].Name != kept {
		t.Errorf("deltas for the summary = %v, want only %s", refs, kept)
	}
}
