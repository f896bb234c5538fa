package delta_test

import (
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/limitread/limitreadtest"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
)

// bigUpdate commits to src and dst a tree of two 1.5 MiB files and a few
// small ones, and to src a second tree where each file has one byte
// changed and a new file of 300 KiB: an update whose two large patches
// (base and result 3 MiB, a window of 4 MiB) and part of a few blocks are
// what a large update is made of.
func bigUpdate(t *testing.T) (src, dst *repo.Repo, a, b repo.ID) {
	t.Helper()
	rng := rand.New(rand.NewSource(3))
	big := func() []byte {
		p := make([]byte, 3<<19)
		rng.Read(p)
		return p
	}
	ta, tb := testtree.Tree{}, testtree.Tree{}
	for i, name := range []string{"usr/lib/one.so", "usr/lib/two.so"} {
		p := big()
		ta[name] = testtree.File(string(p), 0o644)
		p[len(p)/2+i]++
		tb[name] = testtree.File(string(p), 0o644)
	}
	for i := range 20 {
		name := "etc/small" + strconv.Itoa(i)
		ta[name] = testtree.File(text[i*1000:i*1000+5000], 0o644)
		tb[name] = testtree.File(text[i*1000:i*1000+5000]+"changed\n", 0o644)
	}
	tb["usr/share/new.txt"] = testtree.File(text, 0o644)
	src = newRepo(t, repo.ModeArchive)
	dst = newRepo(t, repo.ModeBareUser)
	a = commitTree(t, src, "main", ta, false)
	b = commitTree(t, src, "main", tb, true)
	if got := commitTree(t, dst, "main", ta, false); got != a {
		t.Fatalf("same tree committed twice gives %s and %s", a, got)
	}
	return src, dst, a, b
}

// Generating an update allocates for its part a zstd history sized by
// what the part holds, not two 64 MiB windows, and one best-level patch
// encoder with a history of one window for its two large patches, not a
// fresh one (with two windows) for each; applying it decodes the part
// with a window of its size, not 64 MiB.
func TestDeltaMemoryOfLargeUpdate(t *testing.T) {
	src, dst, a, b := bigUpdate(t)
	out := filepath.Join(t.TempDir(), "d")
	var sb *delta.Superblock
	var err error
	gen := limitreadtest.Allocated(func() {
		sb, err = delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: b, Dir: out, NoSync: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.Parts) != 1 {
		t.Fatalf("%d parts, want 1", len(sb.Parts))
	}
	part, err := os.ReadFile(filepath.Join(out, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(part); err != nil {
		t.Fatal(err)
	}
	raw := sb.Parts[0].RawSize
	if h.SingleSegment {
		t.Fatalf("part of %d raw bytes is a single segment", raw)
	}
	if h.WindowSize < raw || h.WindowSize > max(2*raw, 1<<10) {
		t.Errorf("part of %d raw bytes has a window of %d bytes, want the least power of two holding it", raw, h.WindowSize)
	}
	if sb.Parts[0].Size > 1<<20 {
		t.Errorf("part is %d bytes: the patches did not work", sb.Parts[0].Size)
	}
	const genLimit = 320 << 20
	if gen > genLimit {
		t.Errorf("generating allocated %d MiB, want at most %d", gen>>20, genLimit>>20)
	}
	t.Logf("generate allocated %d MiB; part window %d for %d raw bytes", gen>>20, h.WindowSize, raw)

	txn, err := dst.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	apply := limitreadtest.Allocated(func() {
		err = delta.Apply(ctx, txn, sb, dirFetch(out), nil, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	const applyLimit = 32 << 20
	if apply > applyLimit {
		t.Errorf("applying allocated %d MiB, want at most %d", apply>>20, applyLimit>>20)
	}
	t.Logf("apply allocated %d MiB", apply>>20)
}

// A changed file is patched against the file at its own path in the
// from-commit, which the generator finds by walking both trees together,
// not against the first file of its name there: b/lib.so changed by a byte
// makes a patch of a few bytes, where a patch against a/lib.so, of other
// content, would not pay and the file would travel whole.
func TestPatchBaseIsTheFileAtTheSamePath(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	blob := func() []byte {
		p := make([]byte, 256<<10)
		rng.Read(p)
		return p
	}
	x, y := blob(), blob()
	ta := testtree.Tree{"a/lib.so": testtree.File(string(x), 0o644), "b/lib.so": testtree.File(string(y), 0o644)}
	y[len(y)/2]++
	tb := testtree.Tree{"a/lib.so": testtree.File(string(x), 0o644), "b/lib.so": testtree.File(string(y), 0o644)}
	src, dst := newRepo(t, repo.ModeArchive), newRepo(t, repo.ModeBareUser)
	a := commitTree(t, src, "main", ta, false)
	b := commitTree(t, src, "main", tb, true)
	commitTree(t, dst, "main", ta, false)
	out := filepath.Join(t.TempDir(), "d")
	sb, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: b, Dir: out, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := partBytes(sb); n > 16<<10 {
		t.Errorf("delta of a one-byte change to a 256 KiB file is %d bytes: not patched against the file at its path", n)
	}
	if _, err := delta.ApplyOffline(ctx, dst, out, delta.ApplyOfflineOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	appliedClean(t, src, dst, b)
}
