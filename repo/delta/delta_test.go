package delta_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
)

var ctx = context.Background()

var zero uint32

// text is a few hundred KiB of line-oriented text, so that an edit in the
// middle is cheap as a patch and dear as a whole file.
var text = func() string {
	rng := rand.New(rand.NewSource(7))
	var b strings.Builder
	for i := 0; b.Len() < 300<<10; i++ {
		b.WriteString("line " + strconv.Itoa(i) + " " + strconv.FormatUint(rng.Uint64(), 36) + "\n")
	}
	return b.String()
}()

// treeA and treeB differ by every kind of change a delta must carry.
var treeA = testtree.Tree{
	"etc/conf":        testtree.File("a=1\n", 0o644),
	"usr/lib/big.txt": testtree.File(text, 0o644),
	"usr/lib/gone":    testtree.File("removed later\n", 0o644),
	"usr/old/moved":   testtree.File(text[:50000], 0o644),
	"usr/bin/tool":    testtree.File("#!/bin/sh\necho 1\n", 0o755),
	"usr/bin/link":    testtree.Symlink("tool"),
	"usr/share/empty": testtree.File("", 0o644),
	"var/x":           {Mode: 0o644, Content: "x\n", Xattrs: map[string]string{"user.a": "1"}},
	"same/dir/keep":   testtree.File("unchanged\n", 0o644),
}

var treeB = testtree.Tree{
	"etc/conf":        testtree.File("a=2\n", 0o600),
	"usr/lib/big.txt": testtree.File(text[:len(text)/2]+"an edit in the middle\n"+text[len(text)/2:], 0o644),
	"usr/new/moved":   testtree.File(text[:50000]+"appended\n", 0o644),
	"usr/bin/tool":    testtree.File("#!/bin/sh\necho 2\n", 0o755),
	"usr/bin/link":    testtree.Symlink("../bin/tool"),
	"usr/bin/added":   testtree.File("new file\n", 0o755),
	"usr/share/empty": testtree.File("", 0o644),
	"usr/share/e2":    testtree.File("", 0o600),
	"var/x":           {Mode: 0o644, Content: "x\n", Xattrs: map[string]string{"user.a": "2", "user.b": ""}},
	"same/dir/keep":   testtree.File("unchanged\n", 0o644),
}

func newRepo(t testing.TB, mode repo.Mode) *repo.Repo {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// commitTree commits tr to branch with fixed owner and time, so the same
// tree gives the same commit id in any repository.
func commitTree(t testing.TB, r *repo.Repo, branch string, tr testtree.Tree, parent bool) repo.ID {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	os.Chmod(src, 0o755)
	testtree.Create(t, src, tr)
	o := commit.Options{Branch: branch, Subject: "s", Timestamp: time.Unix(1700000000, 0), NoSync: true,
		OwnerUID: &zero, OwnerGID: &zero, Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}}
	o.NoParent = !parent
	res, err := commit.Commit(ctx, r, o)
	if err != nil {
		t.Fatal(err)
	}
	return res.Commit
}

func objects(t *testing.T, r *repo.Repo) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.WalkDir(r.Path("objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[filepath.Base(filepath.Dir(p))+filepath.Base(p)] = true
		}
		return err
	})
	return out
}

func readTree(t *testing.T, r *repo.Repo, id repo.ID) testtree.Tree {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "co")
	if _, err := checkout.Checkout(ctx, r, id, dst, checkout.Options{UserMode: true}); err != nil {
		t.Fatal(err)
	}
	return testtree.Read(t, dst, testtree.ReadOptions{Xattrs: true})
}

// appliedClean checks that dst, where a delta to commit id of src was
// applied, passes fsck and checks id out as src does.
func appliedClean(t *testing.T, src, dst *repo.Repo, id repo.ID) {
	t.Helper()
	fsckClean(t, dst)
	if diff := cmp.Diff(readTree(t, src, id), readTree(t, dst, id)); diff != "" {
		t.Errorf("checkout differs (-source +applied):\n%s", diff)
	}
}

func fsckClean(t *testing.T, r *repo.Repo) {
	t.Helper()
	rep, err := r.Fsck(ctx, repo.FsckOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("fsck: %v %v", err, rep.Problems)
	}
}

// setup commits A then B into an archive source and A into a bare-user
// destination, and generates the delta A->B in the source.
func setup(t testing.TB, opts delta.GenerateOptions) (src, dst *repo.Repo, a, b repo.ID, sb *delta.Superblock) {
	t.Helper()
	src = newRepo(t, repo.ModeArchive)
	dst = newRepo(t, repo.ModeBareUser)
	a = commitTree(t, src, "main", treeA, false)
	b = commitTree(t, src, "main", treeB, true)
	if got := commitTree(t, dst, "main", treeA, false); got != a {
		t.Fatalf("same tree committed twice gives %s and %s", a, got)
	}
	opts.From, opts.To = a, b
	sb, err := delta.Generate(ctx, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return src, dst, a, b, sb
}

func TestGenerateApply(t *testing.T) {
	src, dst, a, b, sb := setup(t, delta.GenerateOptions{NoSync: true})
	if sb.Name != (delta.Name{From: a, To: b}) {
		t.Fatalf("name = %v", sb.Name)
	}
	// The delta carries exactly the objects B has and A lacks.
	inA, inB := map[string]bool{}, map[string]bool{}
	before := objects(t, dst)
	for o := range before {
		inA[o] = true
	}
	for o := range objects(t, src) {
		if !inA[o] && !strings.HasSuffix(o, ".commit") && !strings.HasSuffix(o, ".commitmeta") {
			inB[o] = true
		}
	}
	got := map[string]bool{}
	for _, p := range sb.Parts {
		for _, o := range p.Objects {
			s := o.ID.String()
			got[s[:2]+s[2:]+"."+o.Kind.String()] = true
		}
	}
	if diff := cmp.Diff(inB, got); diff != "" {
		t.Errorf("objects in the delta (-want +got):\n%s", diff)
	}

	back, err := delta.ApplyOffline(ctx, dst, delta.Path(src, sb.Name), delta.ApplyOfflineOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if back.Name != sb.Name {
		t.Errorf("applied %v", back.Name)
	}
	if refs, _ := dst.ListRefs(""); len(refs) != 1 || refs[0].Commit != a {
		t.Errorf("apply-offline moved refs: %v", refs)
	}
	appliedClean(t, src, dst, b)

	// Patches against A make the delta smaller than whole files would.
	whole, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: b, NoPatches: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if ps, ws := partBytes(sb), partBytes(whole); ps*3 > ws {
		t.Errorf("delta with patches is %d bytes, without %d", ps, ws)
	}
	// MaxPatchSize below big.txt (300 KiB) stores it whole; above, it is
	// patched as by default.
	for _, c := range []struct {
		limit int64
		small bool
	}{{100 << 10, false}, {1 << 20, true}} {
		limited, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: b, MaxPatchSize: c.limit, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if ls := partBytes(limited); (ls*3 < partBytes(whole)) != c.small {
			t.Errorf("delta with patches up to %d bytes is %d bytes; with all patches %d, with none %d", c.limit, ls, partBytes(sb), partBytes(whole))
		}
	}
}

func partBytes(sb *delta.Superblock) uint64 {
	var n uint64
	for _, p := range sb.Parts {
		n += p.Size
	}
	return n
}

func TestFromScratch(t *testing.T) {
	src := newRepo(t, repo.ModeArchive)
	b := commitTree(t, src, "main", treeB, false)
	// Small parts: an object per part or so, still one delta.
	sb, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, MaxPartSize: 16 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.Parts) < 3 {
		t.Errorf("%d parts, want several", len(sb.Parts))
	}
	if got := sb.Name.String(); got != b.String() {
		t.Errorf("name = %s", got)
	}
	dst := newRepo(t, repo.ModeBareUser)
	if _, err := delta.ApplyOffline(ctx, dst, filepath.Join(delta.Path(src, sb.Name), delta.SuperblockFile), delta.ApplyOfflineOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	appliedClean(t, src, dst, b)
	if len(objects(t, dst)) != len(objects(t, src)) {
		t.Errorf("dest has %d objects, source %d", len(objects(t, dst)), len(objects(t, src)))
	}
}

func TestListDelete(t *testing.T) {
	src, _, a, b, sb := setup(t, delta.GenerateOptions{NoSync: true})
	scratch, err := delta.Generate(ctx, src, delta.GenerateOptions{To: a, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	names, err := delta.List(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []delta.Name{sb.Name, scratch.Name}
	if want[0].String() > want[1].String() {
		want[0], want[1] = want[1], want[0]
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	// Regenerating replaces the delta.
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{From: a, To: b, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if got, data, err := delta.ReadSuperblock(src, sb.Name); err != nil || got.Name != sb.Name || !bytes.Equal(data, sb.Encode()) {
		t.Errorf("ReadSuperblock after regenerating: %v", err)
	}
	if err := delta.Delete(context.Background(), src, sb.Name); err != nil {
		t.Fatal(err)
	}
	if names, _ := delta.List(src); len(names) != 1 || names[0] != scratch.Name {
		t.Errorf("after delete: %v", names)
	}
	if err := delta.Delete(context.Background(), src, sb.Name); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("deleting it again: %v", err)
	}
	if _, _, err := delta.ReadSuperblock(src, sb.Name); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("reading a deleted delta: %v", err)
	}
	ents, _ := os.ReadDir(src.Path(delta.Dir))
	if len(ents) != 1 {
		t.Errorf("deltas/ holds %d entries, want 1", len(ents))
	}
}

// rewritePart replaces part i of the delta in dir with data and fixes
// the superblock's size and checksum, as a hostile server could.
func rewritePart(t *testing.T, dir string, sb *delta.Superblock, i int, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sb.Parts[i].Size = uint64(len(data))
	sb.Parts[i].Sum = repo.Sum(data)
	if err := os.WriteFile(filepath.Join(dir, delta.SuperblockFile), sb.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func decompress(t *testing.T, data []byte) []byte {
	d, _ := zstd.NewReader(nil)
	defer d.Close()
	out, err := d.DecodeAll(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compress(data []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	defer e.Close()
	return e.EncodeAll(data, nil)
}

// Every way a delta can be wrong is refused, naming the part or object,
// and publishes nothing.
func TestApplyRejects(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(t *testing.T, dir string, sb *delta.Superblock)
		want  []string
	}{
		{"flipped byte", func(t *testing.T, dir string, sb *delta.Superblock) {
			p := filepath.Join(dir, "0")
			data, _ := os.ReadFile(p)
			data[len(data)/2] ^= 1
			os.WriteFile(p, data, 0o644)
		}, []string{"part 0", "hashes to"}},
		{"truncated part", func(t *testing.T, dir string, sb *delta.Superblock) {
			p := filepath.Join(dir, "0")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)-1], 0o644)
		}, []string{"part 0", "the superblock says"}},
		{"longer part", func(t *testing.T, dir string, sb *delta.Superblock) {
			p := filepath.Join(dir, "0")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, append(data, 0), 0o644)
		}, []string{"part 0", "more than"}},
		{"missing part", func(t *testing.T, dir string, sb *delta.Superblock) {
			os.Remove(filepath.Join(dir, "0"))
		}, []string{"0: no such file"}},
		{"object hash mismatch", func(t *testing.T, dir string, sb *delta.Superblock) {
			// "new file\n" is stored whole: change its content.
			for i := range sb.Parts {
				data, _ := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)))
				raw := decompress(t, data)
				if j := bytes.Index(raw, []byte("new file\n")); j >= 0 {
					raw[j] = 'N'
					rewritePart(t, dir, sb, i, compress(raw))
					return
				}
			}
			t.Fatal("content not found in any part")
		}, []string{"part ", "file object", "is corrupt: content hashes to"}},
		{"dirtree hash mismatch", func(t *testing.T, dir string, sb *delta.Superblock) {
			// usr/new's dirtree, new in B, is stored whole: rename its
			// entry "moved", which leaves a dirtree that decodes.
			for i := range sb.Parts {
				data, _ := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)))
				raw := decompress(t, data)
				if j := bytes.Index(raw, []byte("\x05moved")); j >= 0 {
					raw[j+5] = 'D'
					rewritePart(t, dir, sb, i, compress(raw))
					return
				}
			}
			t.Fatal("dirtree entry not found in any part")
		}, []string{"part ", "dirtree object", "is corrupt: content hashes to"}},
		{"raw size lies", func(t *testing.T, dir string, sb *delta.Superblock) {
			sb.Parts[0].RawSize--
			os.WriteFile(filepath.Join(dir, delta.SuperblockFile), sb.Encode(), 0o644)
		}, []string{"part 0"}},
		{"trailing bytes", func(t *testing.T, dir string, sb *delta.Superblock) {
			data, _ := os.ReadFile(filepath.Join(dir, "0"))
			raw := append(decompress(t, data), 0)
			rewritePart(t, dir, sb, 0, compress(raw))
			sb.Parts[0].RawSize++
			os.WriteFile(filepath.Join(dir, delta.SuperblockFile), sb.Encode(), 0o644)
		}, []string{"part 0", "bytes left after its last object"}},
		{"object left out", func(t *testing.T, dir string, sb *delta.Superblock) {
			// Drop the part's last object from the list and from the stream
			// by rebuilding the stream without it is not possible; instead
			// drop a whole part, which leaves its objects out.
			sb.Parts = sb.Parts[:len(sb.Parts)-1]
			os.WriteFile(filepath.Join(dir, delta.SuperblockFile), sb.Encode(), 0o644)
		}, []string{"needs", "which neither the delta nor this repository has"}},
		{"bad superblock", func(t *testing.T, dir string, sb *delta.Superblock) {
			os.WriteFile(filepath.Join(dir, delta.SuperblockFile), append(sb.Encode(), 0), 0o644)
		}, []string{"superblock", "1 trailing bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, dst, _, b, _ := setup(t, delta.GenerateOptions{NoSync: true, MaxPartSize: 1 << 10})
			names, _ := delta.List(src)
			dir := filepath.Join(t.TempDir(), "d")
			os.CopyFS(dir, os.DirFS(delta.Path(src, names[0])))
			o, err := delta.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			o.Close()
			sb := o.Superblock
			if len(sb.Parts) < 2 {
				t.Fatalf("%d parts, want 2 or more", len(sb.Parts))
			}
			c.spoil(t, dir, sb)
			before := objects(t, dst)
			_, err = delta.ApplyOffline(ctx, dst, dir, delta.ApplyOfflineOptions{NoSync: true})
			if err == nil {
				t.Fatal("applied")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if diff := cmp.Diff(before, objects(t, dst)); diff != "" {
				t.Errorf("objects published by a failed apply:\n%s", diff)
			}
			if has, _ := dst.HasObject(repo.KindCommit, b); has {
				t.Error("the to-commit was published")
			}
		})
	}
}

func TestApplyNeedsFrom(t *testing.T) {
	src, _, _, _, sb := setup(t, delta.GenerateOptions{NoSync: true})
	empty := newRepo(t, repo.ModeBareUser)
	_, err := delta.ApplyOffline(ctx, empty, delta.Path(src, sb.Name), delta.ApplyOfflineOptions{NoSync: true})
	if !errors.Is(err, delta.ErrFromMissing) {
		t.Fatalf("applying without the from-commit: %v", err)
	}
	if len(objects(t, empty)) != 0 {
		t.Error("objects published")
	}
}

func TestParseName(t *testing.T) {
	a, b := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	for _, s := range []string{a, a + "-" + b} {
		n, err := delta.ParseName(s)
		if err != nil || n.String() != s {
			t.Errorf("ParseName(%q) = %v, %v", s, n, err)
		}
	}
	for _, s := range []string{"", a[:63], strings.ToUpper(a), a + "-" + a, a + "-", "-" + a, a + "-" + b + "-" + a, strings.Repeat("00", 32)} {
		if _, err := delta.ParseName(s); err == nil {
			t.Errorf("ParseName(%q) accepted", s)
		}
	}
}

// superblockCases are encodings DecodeSuperblock must refuse.
func superblockCases(t testing.TB) []struct {
	name, want string
	b          []byte
} {
	c := &repo.Commit{Subject: "x", RootTree: repo.Sum([]byte("t")), RootMeta: repo.Sum([]byte("m"))}
	enc := c.Encode()
	to := repo.Sum(enc)
	valid := &delta.Superblock{Name: delta.Name{To: to}, Commit: enc, Parts: []delta.Part{{Size: 1, RawSize: 2, Sum: to,
		Objects: []delta.ObjectRef{{Kind: repo.KindFile, ID: to}}}}}
	mod := func(f func(s *delta.Superblock)) []byte {
		s := *valid
		s.Parts = append([]delta.Part(nil), valid.Parts...)
		f(&s)
		return s.Encode()
	}
	good := valid.Encode()
	fb := mod(func(s *delta.Superblock) { s.Fallbacks = []delta.Fallback{{ID: id(1), Size: 1}} })
	noParts := mod(func(s *delta.Superblock) { s.Parts = nil })
	noParts = append(noParts[:len(noParts)-1], binary.AppendUvarint(nil, 1<<40)...)
	return []struct {
		name, want string
		b          []byte
	}{
		{"empty", "not a delta superblock", nil},
		{"wrong version", "unsupported delta superblock version 3", append([]byte{'D', 3}, good[2:]...)},
		{"version 2 without fallbacks", "no fallback objects", append(append([]byte{'D', 2}, good[2:]...), 0)},
		{"fallback list in version 1", "trailing bytes", append(append([]byte{}, good...), fb[len(fb)-34:]...)},
		{"fallback zero id", "fallback 0: zero object id", mod(func(s *delta.Superblock) { s.Fallbacks = []delta.Fallback{{Size: 9}} })},
		{"fallback size zero", "size zero", mod(func(s *delta.Superblock) { s.Fallbacks = []delta.Fallback{{ID: id(1)}} })},
		{"fallbacks unsorted", "not sorted or duplicated", mod(func(s *delta.Superblock) { s.Fallbacks = []delta.Fallback{{ID: id(2), Size: 1}, {ID: id(1), Size: 1}} })},
		{"fallback repeated", "not sorted or duplicated", mod(func(s *delta.Superblock) { s.Fallbacks = []delta.Fallback{{ID: id(2), Size: 1}, {ID: id(2), Size: 1}} })},
		{"fallback in a part", "also in a part", mod(func(s *delta.Superblock) { s.Fallbacks = []delta.Fallback{{ID: to, Size: 1}} })},
		{"truncated", "non-canonical delta superblock", good[:len(good)-1]},
		{"trailing", "1 trailing bytes", append(append([]byte{}, good...), 0)},
		{"zero to", "to-commit is zero", mod(func(s *delta.Superblock) { s.Name.To = repo.ID{} })},
		{"from is to", "to-commit is zero or equal", mod(func(s *delta.Superblock) { s.Name.From = to })},
		{"commit hash", "commit hashes to", mod(func(s *delta.Superblock) { s.Commit = append(append([]byte{}, enc...), 0) })},
		{"bad commitmeta", "commitmeta", mod(func(s *delta.Superblock) { s.CommitMeta = []byte{'d', 1, 5} })},
		{"empty part", "part 0 is empty", mod(func(s *delta.Superblock) { s.Parts[0].Objects = nil })},
		{"bad kind", "object kind 4", mod(func(s *delta.Superblock) { s.Parts[0].Objects = []delta.ObjectRef{{Kind: repo.KindCommit, ID: to}} })},
		{"zero object", "zero object id", mod(func(s *delta.Superblock) { s.Parts[0].Objects = []delta.ObjectRef{{Kind: repo.KindFile}} })},
		{"duplicate object", "listed twice", mod(func(s *delta.Superblock) { s.Parts = append(s.Parts, s.Parts[0]) })},
		{"non-minimal uvarint", "not minimal", append(append(append([]byte{}, good[:66]...), 0x80|byte(len(enc)), 0x00), good[67:]...)},
		{"huge part count", "past the end", noParts},
	}
}

func TestDecodeSuperblockRejects(t *testing.T) {
	for _, c := range superblockCases(t) {
		t.Run(c.name, func(t *testing.T) {
			_, err := delta.DecodeSuperblock(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// id returns an id of 32 bytes b.
func id(b byte) repo.ID { return repo.ID(bytes.Repeat([]byte{b}, 32)) }

func FuzzDecodeSuperblock(f *testing.F) {
	for _, c := range superblockCases(f) {
		f.Add(c.b)
	}
	c := &repo.Commit{Subject: "x", RootTree: id(1), RootMeta: id(2)}
	enc := c.Encode()
	withFallbacks := &delta.Superblock{Name: delta.Name{From: id(3), To: repo.Sum(enc)}, Commit: enc,
		Parts:     []delta.Part{{Size: 5, RawSize: 7, Sum: id(4), Objects: []delta.ObjectRef{{Kind: repo.KindDirTree, ID: id(5)}}}},
		Fallbacks: []delta.Fallback{{ID: id(6), Size: 5 << 20}, {ID: id(7), Size: 1}}}
	f.Add(withFallbacks.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := delta.DecodeSuperblock(b)
		if err != nil {
			return
		}
		// Whatever decodes is canonical: it encodes back to the input.
		if enc := s.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
	})
}

// A delta's commits may be pruned between the caller's resolving them and
// Generate's reading them (prune in another process; Generate holds the
// repository lock only from its start): the error says which end of which
// delta is missing, not only that some commit object is.
func TestGenerateNamesPrunedCommit(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	a := commitTree(t, r, "main", treeA, false)
	b := commitTree(t, r, "main", treeB, true)
	if _, err := r.Prune(ctx, repo.PruneOptions{RefsOnly: true, Depth: 0}); err != nil {
		t.Fatal(err)
	}
	name := delta.Name{From: a, To: b}
	_, err := delta.Generate(ctx, r, delta.GenerateOptions{From: a, To: b, NoSync: true})
	var missing *repo.ObjectMissingError
	if !errors.As(err, &missing) || missing.ID != a || !strings.Contains(err.Error(), "delta "+name.String()+": its from-commit") {
		t.Errorf("generating %s after its from-commit was pruned: %v", name, err)
	}
	_, err = delta.Generate(ctx, r, delta.GenerateOptions{From: b, To: a, NoSync: true})
	if !errors.As(err, &missing) || missing.ID != a || !strings.Contains(err.Error(), "its to-commit") {
		t.Errorf("generating to a pruned commit: %v", err)
	}
}
