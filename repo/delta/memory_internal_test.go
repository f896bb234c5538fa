package delta

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// liveHeap returns the bytes the heap holds after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// commitInternal commits tr into r and returns the commit.
func commitInternal(t *testing.T, r *repo.Repo, tr testtree.Tree) repo.ID {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	testtree.Create(t, src, tr)
	zero := uint32(0)
	res, err := commit.Commit(context.Background(), r, commit.Options{Branch: "main", Subject: "s", Timestamp: time.Unix(1700000000, 0),
		NoSync: true, NoParent: true, OwnerUID: &zero, OwnerGID: &zero, Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Commit
}

// The index of a delta's from-commit holds its objects and names, not its
// paths: two trees of the same files, one under a directory 800 bytes
// deep, give indexes of about the same size. Holding every path cost
// 35 MiB of the 320 MiB a delta of /usr took to generate.
func TestFromIndexHoldsNoPaths(t *testing.T) {
	const n = 4000
	deep := strings.Repeat(strings.Repeat("d", 39)+"/", 20)
	held := map[string]uint64{}
	for _, dir := range []string{"x/", deep} {
		tr := testtree.Tree{}
		for i := range n {
			tr[dir+"f"+strconv.Itoa(i)] = testtree.File(strconv.Itoa(i), 0o644)
		}
		r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		c := commitInternal(t, r, tr)
		before := liveHeap()
		from, err := indexFrom(context.Background(), r, c)
		if err != nil {
			t.Fatal(err)
		}
		after := liveHeap()
		runtime.KeepAlive(from)
		if len(from.objects) < n {
			t.Fatalf("index of %d files holds %d objects", n, len(from.objects))
		}
		held[dir] = after - min(before, after)
	}
	short, long := held["x/"], held[deep]
	t.Logf("index of %d files: %d bytes with short paths, %d with paths of %d bytes", n, short, long, len(deep))
	// Each path of the deep tree is 800 bytes longer: n of them would be
	// 3.2 MB more.
	if long > short+n*80 {
		t.Errorf("index of %d files under %d-byte paths holds %d bytes, %d with short paths: it grows with the paths", n, len(deep), long, short)
	}
}

// A large patch drops the encoders kept for later entries (the best
// level's holds tables of some 36 MiB) before making its own, so that they
// do not add to its memory: the generator holds tens of MiB less after it.
func TestLargePatchDropsKeptEncoders(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	small := make([]byte, 64<<10)
	rng.Read(small)
	big := make([]byte, 4<<20)
	rng.Read(big)
	g := &generator{}
	defer g.close()
	// What an update's entries leave kept: the estimating encoder and
	// the shared encoder of small patches.
	if _, err := g.estimate(small); err != nil {
		t.Fatal(err)
	}
	if _, err := g.encodePatch(small, append(small[1:], 1)); err != nil {
		t.Fatal(err)
	}
	base := liveHeap()
	var p []byte
	var err error
	if p, err = g.encodePatch(big, append(big[1:], 1)); err != nil {
		t.Fatal(err)
	}
	held := int64(liveHeap()) - int64(base)
	runtime.KeepAlive(p)
	t.Logf("held after a large patch: %d MiB more than before", held>>20)
	if held > -24<<20 {
		t.Errorf("after a patch of window 8 MiB the generator holds %d MiB more than before it, want at least 24 MiB less: the kept encoders were not dropped", held>>20)
	}
	// They are made again when needed.
	if n, err := g.estimate(small); err != nil || n == 0 {
		t.Fatalf("estimate after a large patch: %d, %v", n, err)
	}
}
