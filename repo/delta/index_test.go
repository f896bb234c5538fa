package delta_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/delta-index.json")

const goldenIndex = "../../testdata/golden/delta-index.json"

// goldenIndexVector is one entry of testdata/golden/delta-index.json.
type goldenIndexVector struct {
	Name     string       `json:"name"`
	Value    *delta.Index `json:"value"`
	Encoding string       `json:"encoding"` // hex
	Sum      repo.ID      `json:"blake3"`   // what a summary lists for it
}

func goldenIndexes() []goldenIndexVector {
	vs := []goldenIndexVector{
		{Name: "scratch-only", Value: &delta.Index{To: id(0x22), Deltas: []delta.IndexEntry{{Superblock: id(0x33)}}}},
		{Name: "scratch-and-two-parents", Value: &delta.Index{To: id(0x22), Deltas: []delta.IndexEntry{
			{Superblock: id(0x33)}, {From: id(0x11), Superblock: id(0x44)}, {From: id(0xee), Superblock: id(0x55)}}}},
	}
	for i := range vs {
		enc := vs[i].Value.Encode()
		vs[i].Encoding, vs[i].Sum = hex.EncodeToString(enc), repo.Sum(enc)
	}
	return vs
}

// The delta index encoding is pinned byte by byte (docs/FORMAT.md §15) by
// testdata/golden/delta-index.json; regenerate it deliberately with
// `go test ./repo/delta/ -run GoldenIndex -update`.
func TestGoldenIndex(t *testing.T) {
	want := goldenIndexes()
	if *update {
		data, err := json.MarshalIndent(want, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenIndex, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(goldenIndex)
	if err != nil {
		t.Fatal(err)
	}
	var got []goldenIndexVector
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("golden file differs from the encoder (-encoder +file):\n%s", diff)
	}
	// The first vector spelled out, so that the file cannot drift with the
	// encoder unnoticed.
	if wantHex := "4901" + strings.Repeat("22", 32) + "01" + strings.Repeat("00", 32) + strings.Repeat("33", 32); got[0].Encoding != wantHex {
		t.Errorf("scratch-only encodes as\n %s\nwant\n %s", got[0].Encoding, wantHex)
	}
	for _, v := range got {
		b, _ := hex.DecodeString(v.Encoding)
		x, err := delta.DecodeIndex(b)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if diff := cmp.Diff(v.Value, x); diff != "" {
			t.Errorf("%s decodes (-want +got):\n%s", v.Name, diff)
		}
	}
}

func indexCases() []struct {
	name, want string
	b          []byte
} {
	good := (&delta.Index{To: id(2), Deltas: []delta.IndexEntry{{Superblock: id(3)}, {From: id(1), Superblock: id(4)}}}).Encode()
	mod := func(f func(x *delta.Index)) []byte {
		x := &delta.Index{To: id(2), Deltas: []delta.IndexEntry{{Superblock: id(3)}, {From: id(1), Superblock: id(4)}}}
		f(x)
		return x.Encode()
	}
	return []struct {
		name, want string
		b          []byte
	}{
		{"empty", "not a delta index", nil},
		{"superblock tag", "not a delta index", append([]byte{'D'}, good[1:]...)},
		{"version", "unsupported delta index version 2", append([]byte{'I', 2}, good[2:]...)},
		{"truncated", "non-canonical delta index", good[:len(good)-1]},
		{"trailing", "1 trailing bytes", append(append([]byte{}, good...), 0)},
		{"zero to", "zero to-commit", mod(func(x *delta.Index) { x.To = repo.ID{} })},
		{"no deltas", "no deltas", mod(func(x *delta.Index) { x.Deltas = nil })},
		{"from is to", "from-commit equal to the to-commit", mod(func(x *delta.Index) { x.Deltas[1].From = id(2) })},
		{"zero superblock", "zero superblock checksum", mod(func(x *delta.Index) { x.Deltas[1].Superblock = repo.ID{} })},
		{"unsorted", "not sorted or duplicated", mod(func(x *delta.Index) { x.Deltas[0], x.Deltas[1] = x.Deltas[1], x.Deltas[0] })},
		{"repeated", "not sorted or duplicated", mod(func(x *delta.Index) { x.Deltas[0].From = id(1) })},
		{"count past the end", "past the end", append(append([]byte{}, good[:34]...), 0x03)},
		{"non-minimal count", "not minimal", append(append(append([]byte{}, good[:34]...), 0x82, 0x00), good[35:]...)},
	}
}

func TestDecodeIndexRejects(t *testing.T) {
	for _, c := range indexCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := delta.DecodeIndex(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func FuzzDecodeIndex(f *testing.F) {
	for _, c := range indexCases() {
		f.Add(c.b)
	}
	for _, v := range goldenIndexes() {
		b, _ := hex.DecodeString(v.Encoding)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := delta.DecodeIndex(b)
		if err != nil {
			return
		}
		// Whatever decodes is canonical: it encodes back to the input.
		if enc := x.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
	})
}

// readIndex reads the index of to in r, failing the test if there is none.
func readIndex(t *testing.T, r *repo.Repo, to repo.ID) *delta.Index {
	t.Helper()
	x, raw, err := delta.ReadIndex(r, to)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, x.Encode()) {
		t.Fatal("raw bytes differ from the decoded index")
	}
	return x
}

func superblockSum(t *testing.T, r *repo.Repo, n delta.Name) repo.ID {
	t.Helper()
	_, raw, err := delta.ReadSuperblock(r, n)
	if err != nil {
		t.Fatal(err)
	}
	return repo.Sum(raw)
}

// Generate and Delete keep the index of the to-commit listing exactly the
// deltas to it; Reindex rebuilds indexes that went missing or stale and
// removes those of commits no delta leads to.
func TestIndexKeptByGenerateDeleteReindex(t *testing.T) {
	src, _, a, b, sb := setup(t, delta.GenerateOptions{NoSync: true})
	x := readIndex(t, src, b)
	want := &delta.Index{To: b, Deltas: []delta.IndexEntry{{From: a, Superblock: superblockSum(t, src, sb.Name)}}}
	if diff := cmp.Diff(want, x); diff != "" {
		t.Fatalf("index after generate (-want +got):\n%s", diff)
	}
	scratch := delta.Name{To: b}
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	want.Deltas = []delta.IndexEntry{{Superblock: superblockSum(t, src, scratch)}, want.Deltas[0]}
	if diff := cmp.Diff(want, readIndex(t, src, b)); diff != "" {
		t.Fatalf("index after a second generate (-want +got):\n%s", diff)
	}
	// A delta generated again (other options, another superblock) is
	// listed with its new sum.
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: b, NoPatches: true, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	want.Deltas[1].Superblock = superblockSum(t, src, sb.Name)
	if diff := cmp.Diff(want, readIndex(t, src, b)); diff != "" {
		t.Fatalf("index after regenerating (-want +got):\n%s", diff)
	}
	if ids, err := delta.ListIndexes(src); err != nil || len(ids) != 1 || ids[0] != b {
		t.Fatalf("ListIndexes = %v, %v", ids, err)
	}

	if err := delta.Delete(context.Background(), src, sb.Name); err != nil {
		t.Fatal(err)
	}
	want.Deltas = want.Deltas[:1]
	if diff := cmp.Diff(want, readIndex(t, src, b)); diff != "" {
		t.Fatalf("index after delete (-want +got):\n%s", diff)
	}
	if err := delta.Delete(context.Background(), src, scratch); err != nil {
		t.Fatal(err)
	}
	if _, _, err := delta.ReadIndex(src, b); !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("index of a commit without deltas: %v", err)
	}

	// Reindex: a missing index is written, a stale one (of a commit
	// without deltas) and a crashed writer's temp file are removed.
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	os.Remove(src.Path(delta.IndexRel(b)))
	stale := (&delta.Index{To: a, Deltas: []delta.IndexEntry{{Superblock: id(9)}}}).Encode()
	os.WriteFile(src.Path(delta.IndexRel(a)), stale, 0o644)
	tmp := filepath.Join(src.Path(delta.IndexDir), "."+b.String()+".index.tmp-1")
	os.WriteFile(tmp, []byte("half"), 0o644)
	// Only the commit asked for.
	refs, err := delta.Reindex(context.Background(), src, delta.ReindexOptions{To: []repo.ID{b}, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	_, raw, _ := delta.ReadIndex(src, b)
	if diff := cmp.Diff([]delta.IndexRef{{To: b, Index: repo.Sum(raw)}}, refs); diff != "" {
		t.Errorf("Reindex(b) (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(src.Path(delta.IndexRel(a))); err != nil {
		t.Errorf("Reindex(b) touched the index of a: %v", err)
	}
	// Everything.
	if refs, err = delta.Reindex(context.Background(), src, delta.ReindexOptions{NoSync: true}); err != nil || len(refs) != 1 || refs[0].To != b {
		t.Fatalf("Reindex() = %v, %v", refs, err)
	}
	for _, p := range []string{src.Path(delta.IndexRel(a)), tmp} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left by Reindex: %v", p, err)
		}
	}
	want.Deltas = []delta.IndexEntry{{Superblock: superblockSum(t, src, scratch)}}
	if diff := cmp.Diff(want, readIndex(t, src, b)); diff != "" {
		t.Fatalf("index after reindex (-want +got):\n%s", diff)
	}

	// A delta written elsewhere (--filename) is not the repository's and
	// is not indexed.
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: b, NoSync: true, Dir: filepath.Join(t.TempDir(), "d")}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, readIndex(t, src, b)); diff != "" {
		t.Fatalf("index after generating into a directory (-want +got):\n%s", diff)
	}
}

// Deleting a delta on a full filesystem, which is how one makes room,
// succeeds though the index of its to-commit, still naming other deltas,
// cannot be rewritten first: it is removed, then written once the delta's
// removal has freed space, never naming the deleted delta.
func TestDeleteOnFullDisk(t *testing.T) {
	mnt := testtree.SmallFS(t, 8<<20)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.UpdateConfig(func(c *repo.Config) error { return c.Set("core.min-free-space-percent", "0") }); err != nil {
		t.Fatal(err)
	}
	a := commitTree(t, r, "main", treeA, false)
	b := commitTree(t, r, "main", treeB, true)
	parent := delta.Name{From: a, To: b}
	scratch := delta.Name{To: b}
	for _, n := range []delta.Name{parent, scratch} {
		if _, err := delta.Generate(ctx, r, delta.GenerateOptions{From: n.From, To: n.To, NoSync: true}); err != nil {
			t.Fatal(err)
		}
	}
	want := &delta.Index{To: b, Deltas: []delta.IndexEntry{{Superblock: superblockSum(t, r, scratch)}}}
	testtree.FillTo(t, mnt, 0)
	if err := delta.Delete(context.Background(), r, parent); err != nil {
		t.Fatalf("deleting delta %s on a full filesystem: %v", parent, err)
	}
	if diff := cmp.Diff(want, readIndex(t, r, b)); diff != "" {
		t.Errorf("index after the delete (-want +got):\n%s", diff)
	}
	if names, err := delta.List(r); err != nil || len(names) != 1 || names[0] != scratch {
		t.Errorf("deltas after the delete: %v, %v; want %s", names, err, scratch)
	}
}

// A reindex of a repository without deltas or indexes (every summary
// update runs one) makes no delta-indexes directory, as OSTree makes
// none: one made by whoever first updated the summary (root, or a member
// of a shared repository under umask 022) would refuse every other
// user's update of a repository with nothing to index.
func TestReindexWithoutDeltasMakesNoDirectory(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	refs, err := delta.Reindex(context.Background(), r, delta.ReindexOptions{NoSync: true})
	if err != nil || len(refs) != 0 {
		t.Fatalf("Reindex without deltas = %v, %v", refs, err)
	}
	if _, err := os.Lstat(r.Path(delta.IndexDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after a reindex without deltas: %v, want none", delta.IndexDir, err)
	}
}

// The indexes' lock is waited for as the repository lock is: a holder that
// hangs (stopped, or on a stalled filesystem) fails a generation, delete,
// reindex or summary update with ErrLocked after the lock timeout, and a
// cancelled context ends the wait, rather than leaving them blocked, deaf
// even to an interrupt, until the holder lets go.
func TestIndexLockWaitEnds(t *testing.T) {
	src, _, a, b, sb := setup(t, delta.GenerateOptions{NoSync: true})
	d, err := os.Open(src.Path(delta.IndexDir))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Another open file description: it conflicts with the flock
	// reindexing takes as another process's would.
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			unix.Flock(int(d.Fd()), unix.LOCK_UN)
		}
	}
	defer release()
	// within runs f, failing the test if it has not returned in 10 s;
	// the lock is then let go, so that f ends.
	within := func(what string, f func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			release()
			<-done
			t.Fatalf("%s still waiting for the delta indexes' lock after 10 s", what)
			return nil
		}
	}

	src.SetLockTimeout(100 * time.Millisecond)
	calls := []struct {
		what string
		f    func() error
	}{
		{"Reindex", func() error {
			_, err := delta.Reindex(context.Background(), src, delta.ReindexOptions{NoSync: true})
			return err
		}},
		{"Delete", func() error { return delta.Delete(context.Background(), src, sb.Name) }},
		{"Generate", func() error {
			_, err := delta.Generate(context.Background(), src, delta.GenerateOptions{To: b, NoSync: true})
			return err
		}},
	}
	for _, c := range calls {
		err := within(c.what, c.f)
		if !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), delta.IndexDir) {
			t.Errorf("%s with the indexes locked: %v, want ErrLocked naming %s", c.what, err, delta.IndexDir)
		}
	}
	if _, _, err := delta.ReadSuperblock(src, sb.Name); err != nil {
		t.Errorf("a Delete that could not lock the indexes removed the delta: %v", err)
	}
	if x := readIndex(t, src, b); len(x.Deltas) != 1 || x.Deltas[0].From != a {
		t.Errorf("index after the failed calls: %+v, want the one delta from %s", x, a)
	}

	src.SetLockTimeout(-1)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err = within("Reindex without a timeout", func() error {
		_, err := delta.Reindex(ctx, src, delta.ReindexOptions{NoSync: true})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Reindex with its context cancelled while waiting: %v, want context.Canceled", err)
	}
}
