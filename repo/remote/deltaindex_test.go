package remote_test

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

// The delta index list in a summary, byte by byte (docs/DELTAS.md §5).
func TestSummaryDeltaIndexesEncoding(t *testing.T) {
	s := &remote.Summary{
		Refs:         []repo.Ref{{Name: "a", Commit: id(0x22)}},
		DeltaIndexes: []delta.IndexRef{{To: id(0x22), Index: id(0x55)}, {To: id(0x33), Index: id(0x66)}},
	}
	key := hex.EncodeToString([]byte(remote.DeltaIndexesKey))
	value := "01" + "02" + strings.Repeat("22", 32) + strings.Repeat("55", 32) + strings.Repeat("33", 32) + strings.Repeat("66", 32)
	want := "7301" + "01" + "0161" + strings.Repeat("22", 32) + "01" + "1a" + key + "8201" + value
	if got := hex.EncodeToString(s.Encode()); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	back, err := remote.DecodeSummary(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDecodeSummaryRejectsDeltaIndexes(t *testing.T) {
	key := hex.EncodeToString([]byte(remote.DeltaIndexesKey))
	entry := func(to, sum byte) string {
		return strings.Repeat(hex.EncodeToString([]byte{to}), 32) + strings.Repeat(hex.EncodeToString([]byte{sum}), 32)
	}
	md := func(v string) string {
		return "7301" + "00" + "01" + "1a" + key + hex.EncodeToString(binary.AppendUvarint(nil, uint64(len(v)/2))) + v
	}
	rejectSummaries(t, []summaryCase{
		{"version", md("02" + "00"), "unsupported delta index list version"},
		{"empty", md("01" + "00"), "empty delta index list"},
		{"past the end", md("01" + "02" + entry(1, 2)), "past the end"},
		{"zero commit", md("01" + "01" + entry(0, 2)), "zero commit"},
		{"zero checksum", md("01" + "01" + entry(1, 0)), "zero checksum"},
		{"unsorted", md("01" + "02" + entry(2, 3) + entry(1, 3)), "not sorted or duplicated"},
		{"repeated", md("01" + "02" + entry(2, 3) + entry(2, 4)), "not sorted or duplicated"},
		{"trailing", md("01" + "01" + entry(1, 2) + "00"), "1 trailing bytes"},
	}, remote.DeltaIndexesKey)
}

// indexedOrigin is deltaOrigin's server with core.no-deltas-in-summary
// set: its summary lists the delta index of B, not the deltas.
func indexedOrigin(t *testing.T, scratch bool) (o *origin, a, b repo.ID, name delta.Name) {
	t.Helper()
	o, a, b, name = deltaOrigin(t, scratch)
	if err := o.r.UpdateConfig(func(c *repo.Config) error { return c.Set(repo.ConfigNoDeltasInSummary, "true") }); err != nil {
		t.Fatal(err)
	}
	s, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	_, raw, err := delta.ReadIndex(o.r, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []delta.IndexRef{{To: b, Index: repo.Sum(raw)}}
	if len(s.Deltas) != 0 || !cmp.Equal(s.DeltaIndexes, want) {
		t.Fatalf("summary lists deltas %v and indexes %v, want none and %v", s.Deltas, s.DeltaIndexes, want)
	}
	return o, a, b, name
}

func setupClientAt(t *testing.T, o *origin, a repo.ID) *repo.Repo {
	t.Helper()
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts(a.String())); err != nil {
		t.Fatal(err)
	}
	if err := dest.SetRef("origin:os/stable", a); err != nil {
		t.Fatal(err)
	}
	o.resetHits()
	return dest
}

// A summary that lists only delta indexes: the client fetches the index
// of the commit it wants, once, and then the delta it names.
func TestPullViaDeltaIndex(t *testing.T) {
	o, a, b, name := indexedOrigin(t, true)
	indexPath := "/" + delta.IndexRel(b)
	for _, c := range []struct {
		what  string
		from  repo.ID
		delta delta.Name
	}{{"update", a, name}, {"first pull", repo.ID{}, delta.Name{To: b}}} {
		t.Run(c.what, func(t *testing.T) {
			dest := newDest(t, repo.ModeBareUser, o.srv.URL)
			if !c.from.IsZero() {
				dest = setupClientAt(t, o, c.from)
			}
			o.resetHits()
			res, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
			if err != nil {
				t.Fatal(err)
			}
			if n := o.hitsOf(indexPath); n != 1 {
				t.Errorf("index requested %d times", n)
			}
			o.mu.Lock()
			delete(o.hits, indexPath)
			o.mu.Unlock()
			if sb, parts := deltaHits(t, o, c.delta); sb != 1 || parts < 1 {
				t.Errorf("requested the superblock %d times and %d parts", sb, parts)
			}
			if diff := cmp.Diff([]string{c.delta.String()}, res.Deltas); diff != "" {
				t.Errorf("deltas used (-want +got):\n%s", diff)
			}
			checkSameTree(t, o.r, dest, b)
			checkFsck(t, dest)
		})
	}

	// A dry run plans with the index too.
	dest := setupClientAt(t, o, a)
	opts := fastOpts("os/stable")
	opts.DryRun = true
	res, err := remote.Pull(ctx, dest, opts)
	if err != nil || len(res.Plan) != 1 || res.Plan[0].Delta != name.String() {
		t.Fatalf("dry run: %v, %+v", err, res)
	}

	// The index gone from the server (a mirror without deltas): objects.
	os.Remove(o.r.Path(delta.IndexRel(b)))
	dest = setupClientAt(t, o, a)
	res, err = remote.Pull(ctx, dest, fastOpts("os/stable"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deltas) != 0 || o.objectHits() == 0 {
		t.Errorf("index gone: deltas %v, %d object requests", res.Deltas, o.objectHits())
	}
	checkSameTree(t, o.r, dest, b)
}

// A summary listing the deltas and the indexes: the list settles the
// best delta without requesting the index.
func TestPullDeltaListBeforeIndex(t *testing.T) {
	o, a, _, name := deltaOrigin(t, true)
	s, err := remote.ReadSummary(o.r)
	if err != nil || len(s.DeltaIndexes) != 1 || len(s.Deltas) != 2 {
		t.Fatalf("summary: %v, %d indexes, %d deltas", err, len(s.DeltaIndexes), len(s.Deltas))
	}
	dest := setupClientAt(t, o, a)
	res, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
	if err != nil {
		t.Fatal(err)
	}
	if sb, parts := deltaHits(t, o, name); sb != 1 || parts < 1 || len(res.Deltas) != 1 {
		t.Errorf("superblock %d, parts %d, deltas %v", sb, parts, res.Deltas)
	}
}

// An index that is not the one the summary lists fails the pull, before
// any superblock is requested, and changes nothing: a server (or anyone
// between it and a client of a signed summary) cannot point a client at
// deltas the summary does not vouch for.
func TestPullTamperedDeltaIndex(t *testing.T) {
	for _, c := range []struct {
		name   string
		tamper func(o *origin, a, b repo.ID) []byte
	}{
		{"flipped byte", func(o *origin, a, b repo.ID) []byte {
			data, _ := os.ReadFile(o.r.Path(delta.IndexRel(b)))
			data[len(data)-1] ^= 1
			return data
		}},
		// A well-formed index naming another superblock for the same delta.
		{"other superblock", func(o *origin, a, b repo.ID) []byte {
			return (&delta.Index{To: b, Deltas: []delta.IndexEntry{{From: a, Superblock: id(0x99)}}}).Encode()
		}},
		// A valid index, but of another commit.
		{"another commit's index", func(o *origin, a, b repo.ID) []byte {
			if _, err := delta.Generate(ctx, o.r, delta.GenerateOptions{To: a, NoSync: true}); err != nil {
				o.t.Fatal(err)
			}
			data, _ := os.ReadFile(o.r.Path(delta.IndexRel(a)))
			return data
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, a, b, name := indexedOrigin(t, false)
			dest := setupClientAt(t, o, a)
			body := c.tamper(o, a, b)
			indexPath := "/" + delta.IndexRel(b)
			o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
				if req.URL.Path != indexPath {
					return false
				}
				w.Write(body)
				return true
			}
			before := storedObjects(t, dest)
			_, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
			errContains(t, err, o.srv.URL+indexPath, "delta index hashes to", "the summary says")
			if n := strings.Count(err.Error(), o.srv.URL+indexPath); n != 1 {
				t.Errorf("the error names the index's URL %d times: %v", n, err)
			}
			if n := o.hitsOf("/" + name.Rel() + "/superblock"); n != 0 {
				t.Errorf("superblock requested %d times after a bad index", n)
			}
			if got := storedObjects(t, dest); len(got) != len(before) {
				t.Errorf("%d objects stored", len(got)-len(before))
			}
			if got := mustRef(t, dest, "origin:os/stable"); got != a {
				t.Errorf("ref moved to %s", got)
			}
		})
	}

	// The index matches the summary but names a superblock the server
	// then does not serve: the superblock check names the index.
	o, a, b, name := indexedOrigin(t, false)
	dest := setupClientAt(t, o, a)
	sbPath := "/" + name.Rel() + "/superblock"
	other, err := delta.Generate(ctx, o.r, delta.GenerateOptions{To: b, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	otherRaw := other.Encode()
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if req.URL.Path != sbPath {
			return false
		}
		w.Write(otherRaw)
		return true
	}
	// The summary is written after the scratch delta, so the index lists
	// both, the real A->B superblock among them.
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	_, err = remote.Pull(ctx, dest, fastOpts("os/stable"))
	errContains(t, err, o.srv.URL+sbPath, "superblock hashes to", "its delta index says")
	checkNothingMovedFrom(t, dest, a)
}

func checkNothingMovedFrom(t *testing.T, dest *repo.Repo, a repo.ID) {
	t.Helper()
	if got := mustRef(t, dest, "origin:os/stable"); got != a {
		t.Errorf("ref moved to %s", got)
	}
}

// hugeContent is 600 KiB that neither compress nor patch.
var hugeContent = func() string {
	b := make([]byte, 600<<10)
	rand.New(rand.NewSource(5)).Read(b)
	return string(b)
}()

// A delta with fallback objects: the pull fetches them as objects and
// applies the delta. The summary's own list leaves such a delta out, for
// clients that cannot apply it; the index lists it.
func TestPullDeltaFallbacks(t *testing.T) {
	o := newOrigin(t)
	a := o.commit("os/stable", tree, 1700000000)
	changed := testtree.Tree{}
	for k, v := range tree {
		changed[k] = v
	}
	changed["usr/new"] = testtree.File("new\n", 0o644)
	changed["usr/share/huge.bin"] = testtree.File(hugeContent, 0o644)
	b := o.commit("os/stable", changed, 1700000100)
	huge := lookup(t, o.r, b, "/usr/share/huge.bin").ID
	sb, err := delta.Generate(ctx, o.r, delta.GenerateOptions{From: a, To: b, MinFallbackSize: 512 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.Fallbacks) != 1 || sb.Fallbacks[0].ID != huge {
		t.Fatalf("fallbacks %v, want %s", sb.Fallbacks, huge)
	}
	s, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Deltas) != 0 || len(s.DeltaIndexes) != 1 {
		t.Fatalf("summary lists deltas %v and indexes %v", s.Deltas, s.DeltaIndexes)
	}

	dest := setupClientAt(t, o, a)
	// The dry run counts the fallback object.
	opts := fastOpts("os/stable")
	opts.DryRun = true
	res, err := remote.Pull(ctx, dest, opts)
	if err != nil || len(res.Plan) != 1 || res.Plan[0].Fallbacks != 1 || res.Plan[0].FallbackSize != uint64(len(hugeContent)) {
		t.Fatalf("dry run: %v, %+v", err, res.Plan)
	}
	o.resetHits()
	res, err = remote.Pull(ctx, dest, fastOpts("os/stable"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{sb.Name.String()}, res.Deltas); diff != "" {
		t.Errorf("deltas used (-want +got):\n%s", diff)
	}
	if n := o.hitsOf(objectURLPath(repo.KindFile, huge)); n != 1 {
		t.Errorf("fallback object requested %d times", n)
	}
	if n := o.objectHits(); n != 1 {
		t.Errorf("%d object requests, want only the fallback", n)
	}
	var parts int64
	for i := range sb.Parts {
		parts += o.servedOf("/" + sb.Name.Rel() + "/" + string(rune('0'+i)))
	}
	if parts <= 0 || parts > 64<<10 {
		t.Errorf("parts carried %d bytes: the large file went into the delta", parts)
	}
	checkSameTree(t, o.r, dest, b)
	checkFsck(t, dest)

	// A client that already has the object fetches only the delta.
	dest = setupClientAt(t, o, a)
	storeFile(t, o.r, dest, huge)
	o.resetHits()
	if res, err = remote.Pull(ctx, dest, fastOpts("os/stable")); err != nil || len(res.Deltas) != 1 {
		t.Fatalf("pull: %v, deltas %v", err, res)
	}
	if n := o.objectHits(); n != 0 {
		t.Errorf("%d object requests with the fallback stored", n)
	}
	checkSameTree(t, o.r, dest, b)

	// A fallback object the server lacks fails the pull.
	os.Remove(o.r.ObjectPath(repo.KindFile, huge))
	dest = setupClientAt(t, o, a)
	_, err = remote.Pull(ctx, dest, fastOpts("os/stable"))
	errContains(t, err, "fallback objects", objectURLPath(repo.KindFile, huge))
	checkNothingMovedFrom(t, dest, a)
}

// storeFile copies file object id of src into dst.
func storeFile(t *testing.T, src, dst *repo.Repo, id repo.ID) {
	t.Helper()
	h, rc, err := src.OpenFile(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	txn, err := dst.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if _, err := txn.WriteFileVerified(h, id, rc); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
}
