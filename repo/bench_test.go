package repo_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
)

// BenchmarkReadObjects reads every file object of a commit as the commands
// that read a repository do: "stat" reads each header (ls -R), "read" each
// content too, verified (export, cat). The commit is a generated tree of
// 2000 small files in 40 directories or, when OTREE_BENCH_TREE names a
// directory, that tree:
//
//	go test ./repo/ -run '^$' -bench ReadObjects -benchtime 20x
//	OTREE_BENCH_TREE=/usr/local/go go test ./repo/ -run '^$' -bench ReadObjects -benchtime 5x
func BenchmarkReadObjects(b *testing.B) {
	ctx := context.Background()
	src := os.Getenv("OTREE_BENCH_TREE")
	if src == "" {
		src = b.TempDir()
		for i := range 2000 {
			dir := filepath.Join(src, fmt.Sprint("d", i%40))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("f", i)), []byte(fmt.Sprint("file ", i, "\n")), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		r, err := repo.Init(filepath.Join(b.TempDir(), "repo"), repo.InitOptions{Mode: mode})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		if err != nil {
			b.Fatal(err)
		}
		root, err := r.Lookup(res.Commit, "/")
		if err != nil {
			b.Fatal(err)
		}
		for _, op := range []string{"stat", "read"} {
			b.Run(fmt.Sprint(mode, "/", op), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					err := r.Walk(ctx, root, func(e repo.Entry) error {
						if e.IsDir() {
							return nil
						}
						if op == "stat" {
							_, err := r.StatFile(e.ID)
							return err
						}
						_, rc, err := r.OpenFile(e.ID)
						if err != nil {
							return err
						}
						defer rc.Close()
						_, err = io.Copy(io.Discard, rc)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
