package checkout_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// BenchmarkCheckout checks the tree OTREE_BENCH_TREE (for example
// /usr/local/go), committed once into a bare-user repository, out into a
// fresh directory per iteration, with hardlinks (-U) and with copies
// (-U -C); "hardlinks-noindex" drops the file-header index before each
// checkout (which then reads every object's header and rebuilds the index);
// "union-identical" checks out with Union over a hardlink checkout of the
// same commit, where every file is linked already (and left, uncounted).
// bench/compare.sh compares the same operations with OSTree.
func BenchmarkCheckout(b *testing.B) {
	src := os.Getenv("OTREE_BENCH_TREE")
	if src == "" {
		b.Skip("set OTREE_BENCH_TREE to a directory to check out")
	}
	ctx := context.Background()
	r, err := repo.Init(filepath.Join(b.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		opts checkout.Options
		drop bool // drop the file-header index first
		same bool // a union into one checkout of the same commit
	}{
		{"hardlinks", checkout.Options{UserMode: true}, false, false},
		{"hardlinks-noindex", checkout.Options{UserMode: true}, true, false},
		{"copies", checkout.Options{UserMode: true, ForceCopy: true}, false, false},
		{"union-identical", checkout.Options{UserMode: true, Union: true}, false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			base := b.TempDir()
			if bc.same {
				if _, err := checkout.Checkout(ctx, r, res.Commit, filepath.Join(base, "co"), checkout.Options{UserMode: true}); err != nil {
					b.Fatal(err)
				}
			}
			n := 0
			for b.Loop() {
				// A fresh name each time: deleting a large tree leaves
				// the filesystem busy for a while, which would be
				// measured as the next checkout's time.
				dest := filepath.Join(base, fmt.Sprint("co", n))
				if bc.same {
					dest = filepath.Join(base, "co")
				}
				n++
				if bc.drop {
					b.StopTimer()
					if err := os.RemoveAll(r.CacheDir()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				st, err := checkout.Checkout(ctx, r, res.Commit, dest, bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				if st.Files == 0 && !bc.same {
					b.Fatal("checked out no file")
				}
				if bc.opts.ForceCopy { // copies fill the disk
					b.StopTimer()
					if err := os.RemoveAll(dest); err != nil {
						b.Fatal(err)
					}
					syncFS(b, base)
					b.StartTimer()
				}
			}
		})
	}
}

func syncFS(b *testing.B, dir string) {
	f, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
}
