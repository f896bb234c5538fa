package commit_test

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/fsattr"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// The benchmarks commit a generated tree of mixed file sizes and, when
// OTREE_BENCH_TREE names a directory, that real tree too:
//
//	go test ./commit/ -run '^$' -bench . -benchtime 5x
//	OTREE_BENCH_TREE=/usr/local/go go test ./commit/ -run '^$' -bench . -benchtime 3x
//
// Commits use the default durability (fsync on), as `otree commit` does.

// benchTree is a tree to commit and its size.
type benchTree struct {
	name  string
	path  string
	files int64 // non-directory entries
	bytes int64 // content bytes of regular files
}

// genBenchTree writes 2000 files of mixed sizes (mostly small, some of a few
// hundred KiB, a few above the 1 MiB streaming threshold, a few duplicates)
// into 40 directories under dir.
func genBenchTree(tb testing.TB, dir string) benchTree {
	tb.Helper()
	src := rand.NewChaCha8([32]byte{1})
	rng := rand.New(src)
	bt := benchTree{name: "gen2000", path: dir}
	var dup []byte
	for i := 0; i < 2000; i++ {
		var size int
		switch r := rng.IntN(1000); {
		case r < 5: // 0.5%
			size = 1<<20 + rng.IntN(2<<20)
		case r < 100: // 9.5%
			size = 16<<10 + rng.IntN(240<<10)
		default:
			size = rng.IntN(8 << 10)
		}
		data := make([]byte, size)
		src.Read(data)
		if i%100 == 0 && dup != nil {
			data = dup // same content as an earlier file: one object
		}
		if i%100 == 50 {
			dup = data
		}
		p := filepath.Join(dir, fmt.Sprintf("d%02d/s%d", i%40, i%3), fmt.Sprintf("f%04d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if i%7 == 0 {
			mode = 0o755
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			tb.Fatal(err)
		}
		bt.files++
		bt.bytes += int64(len(data))
	}
	syncFS(tb, dir)
	return bt
}

// syncFS writes back the filesystem holding path, so that a timed commit's
// own syncfs does not also pay for the set-up's dirty pages.
func syncFS(tb testing.TB, path string) {
	tb.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		tb.Fatal(err)
	}
}

// realBenchTree measures the tree named by OTREE_BENCH_TREE.
func realBenchTree(tb testing.TB, path string) benchTree {
	tb.Helper()
	bt := benchTree{name: "tree=" + filepath.Base(path), path: path}
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		bt.files++
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			bt.bytes += fi.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("OTREE_BENCH_TREE: %v", err)
	}
	return bt
}

// forEachBenchTree runs fn as a sub-benchmark on the generated tree and on
// OTREE_BENCH_TREE if set. mkTree is called inside the sub-benchmark so the
// generated tree lives in its TempDir.
func forEachBenchTree(b *testing.B, fn func(b *testing.B, bt benchTree)) {
	b.Run("gen2000", func(b *testing.B) {
		dir := filepath.Join(b.TempDir(), "src")
		fn(b, genBenchTree(b, dir))
	})
	if p := os.Getenv("OTREE_BENCH_TREE"); p != "" {
		bt := realBenchTree(b, p)
		b.Run(bt.name, func(b *testing.B) { fn(b, bt) })
	}
}

func benchCommit(b *testing.B, r *repo.Repo, src string) *commit.Result {
	res, err := commit.Commit(context.Background(), r, commit.Options{
		Branch: "main", Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

func reportRates(b *testing.B, bt benchTree) {
	b.SetBytes(bt.bytes) // MB/s
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(bt.files)*float64(b.N)/s, "files/s")
	}
}

// BenchmarkCommitCold commits a tree into a fresh repository each time:
// every file is read, hashed and stored.
func BenchmarkCommitCold(b *testing.B) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		b.Run(mode.String(), func(b *testing.B) {
			forEachBenchTree(b, func(b *testing.B, bt benchTree) {
				base := b.TempDir()
				if err := fsattr.SetTopDir(base); err != nil {
					b.Fatal(err)
				}
				n := 0
				for b.Loop() {
					b.StopTimer()
					path := filepath.Join(base, fmt.Sprint("repo", n))
					n++
					r, err := repo.Init(path, repo.InitOptions{Mode: mode})
					if err != nil {
						b.Fatal(err)
					}
					syncFS(b, base)
					b.StartTimer()
					res := benchCommit(b, r, bt.path)
					b.StopTimer()
					if res.Stats.FilesHashed == 0 {
						b.Fatal("a cold commit hashed no file")
					}
					r.Close()
					if err := os.RemoveAll(path); err != nil {
						b.Fatal(err)
					}
					syncFS(b, base)
					b.StartTimer()
				}
				reportRates(b, bt)
			})
		})
	}
}

// BenchmarkRecommitUnchanged commits a tree already committed, with the
// stat cache primed: the cost is a stat per file plus the commit itself.
func BenchmarkRecommitUnchanged(b *testing.B) {
	forEachBenchTree(b, func(b *testing.B, bt benchTree) {
		r, err := repo.Init(filepath.Join(b.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		// Files changed within the stat cache's racy window (2 s) of a
		// commit are not cached; a freshly generated tree must age first.
		if bt.name == "gen2000" {
			time.Sleep(2100 * time.Millisecond)
		}
		benchCommit(b, r, bt.path)
		var hashed int64
		for b.Loop() {
			hashed += benchCommit(b, r, bt.path).Stats.FilesHashed
		}
		reportRates(b, bt)
		b.ReportMetric(float64(hashed)/float64(b.N), "hashed/op")
	})
}

// BenchmarkCommitHardlinkCheckout commits a hardlink checkout of a commit,
// as one of a deployment: every file is a hardlink of an object, taken
// without reading it once its inode is checked against the object's header
// (the stat cache is off, so each commit checks every file).
func BenchmarkCommitHardlinkCheckout(b *testing.B) {
	modes := []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly}
	if os.Getuid() == 0 {
		modes = append(modes, repo.ModeBare)
	}
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			forEachBenchTree(b, func(b *testing.B, bt benchTree) {
				r, err := repo.Init(filepath.Join(b.TempDir(), "repo"), repo.InitOptions{Mode: mode})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				farm := linkFarm(b, r, benchCommit(b, r, bt.path).Commit)
				var hashed int64
				for b.Loop() {
					res, err := commit.Commit(context.Background(), r, commit.Options{
						Branch: "farm", NoStatCache: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: farm}},
					})
					if err != nil {
						b.Fatal(err)
					}
					hashed += res.Stats.FilesHashed
				}
				reportRates(b, bt)
				b.ReportMetric(float64(hashed)/float64(b.N), "hashed/op")
			})
		})
	}
}

// benchLargeDirEntries is how many files BenchmarkCommitTarLargeDir puts in
// its one directory.
const benchLargeDirEntries = 50000

// writeLargeDirTar writes a tar of one directory holding n small files,
// their entries in sorted, reverse or random order (GNU tar writes them
// in readdir's order), and returns its path.
func writeLargeDirTar(tb testing.TB, dir string, n int, order string) string {
	tb.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("d/f%07d", i)
	}
	switch order {
	case "reverse":
		slices.Reverse(names)
	case "random":
		rand.New(rand.NewChaCha8([32]byte{2})).Shuffle(n, func(i, j int) { names[i], names[j] = names[j], names[i] })
	}
	p := filepath.Join(dir, order+".tar")
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	tw := tar.NewWriter(bw)
	if err := tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		tb.Fatal(err)
	}
	for _, name := range names {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(name))}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write([]byte(name)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkCommitTarLargeDir commits a tar whose one directory holds
// benchLargeDirEntries files, their entries in sorted, reverse and random
// order, into a repository that has their objects already: the cost is
// reading the tar and building the tree.
func BenchmarkCommitTarLargeDir(b *testing.B) {
	for _, order := range []string{"sorted", "reverse", "random"} {
		b.Run(order, func(b *testing.B) {
			dir := b.TempDir()
			p := writeLargeDirTar(b, dir, benchLargeDirEntries, order)
			r, err := repo.Init(filepath.Join(dir, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			opts := commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceTar, Path: p}}}
			if _, err := commit.Commit(context.Background(), r, opts); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := commit.Commit(context.Background(), r, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchLargeDirEntries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
