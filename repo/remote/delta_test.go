package remote_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

// The static delta index in a summary, byte by byte (docs/DELTAS.md).
func TestSummaryDeltasEncoding(t *testing.T) {
	s := &remote.Summary{
		Refs:     []repo.Ref{{Name: "a", Commit: id(0x11)}},
		Metadata: repo.Metadata{{Key: "z", Value: []byte("v")}},
		Deltas: []remote.DeltaRef{
			{Name: delta.Name{From: id(0x11), To: id(0x22)}, Superblock: id(0x44)},
			{Name: delta.Name{To: id(0x22)}, Superblock: id(0x33)},
		},
	}
	key := hex.EncodeToString([]byte(remote.DeltasKey))
	value := "01" + "02" + strings.Repeat("11", 32) + strings.Repeat("22", 32) + strings.Repeat("44", 32) +
		strings.Repeat("00", 32) + strings.Repeat("22", 32) + strings.Repeat("33", 32)
	want := "7301" + "01" + "0161" + strings.Repeat("11", 32) +
		"02" + "13" + key + "c201" + value + "017a" + "0176"
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

func deltaSummaryCases() []summaryCase {
	key := hex.EncodeToString([]byte(remote.DeltasKey))
	entry := func(from, to, sb byte) string {
		return strings.Repeat(hex.EncodeToString([]byte{from}), 32) + strings.Repeat(hex.EncodeToString([]byte{to}), 32) + strings.Repeat(hex.EncodeToString([]byte{sb}), 32)
	}
	md := func(v string) string {
		return "7301" + "00" + "01" + "13" + key + hex.EncodeToString(binary.AppendUvarint(nil, uint64(len(v)/2))) + v
	}
	return []summaryCase{
		{"delta index version", md("02" + "00"), "unsupported static delta index version"},
		{"empty delta index", md("01" + "00"), "empty static delta index"},
		{"delta index past the end", md("01" + "02"), "past the end"},
		{"zero to", md("01" + "01" + entry(1, 0, 3)), "to-commit is zero"},
		{"from is to", md("01" + "01" + entry(2, 2, 3)), "to-commit is zero or equal"},
		{"zero superblock", md("01" + "01" + entry(1, 2, 0)), "zero superblock checksum"},
		{"unsorted deltas", md("01" + "02" + entry(2, 3, 3) + entry(1, 3, 3)), "not sorted or duplicated"},
		{"delta index trailing", md("01" + "01" + entry(1, 2, 3) + "00"), "1 trailing bytes"},
	}
}

func TestDecodeSummaryRejectsDeltas(t *testing.T) {
	rejectSummaries(t, deltaSummaryCases(), remote.DeltasKey)
}

// deltaOrigin serves commit A then B of branch os/stable, with the deltas
// given generated and listed in the summary.
func deltaOrigin(t *testing.T, scratch bool) (o *origin, a, b repo.ID, name delta.Name) {
	t.Helper()
	o = newOrigin(t)
	a = o.commit("os/stable", tree, 1700000000)
	changed := testtree.Tree{}
	for k, v := range tree {
		changed[k] = v
	}
	changed["etc/motd"] = testtree.File(strings.Repeat("welcome to the new demo host\n", 20), 0o644)
	changed["usr/share/big.bin"] = testtree.File(bigContent[:1<<20]+"patched"+bigContent[1<<20+7:], 0o644)
	changed["usr/new"] = testtree.File("new\n", 0o644)
	b = o.commit("os/stable", changed, 1700000100)
	name = delta.Name{From: a, To: b}
	for _, n := range []delta.Name{name, {To: b}} {
		if n.From.IsZero() && !scratch {
			continue
		}
		if _, err := delta.Generate(ctx, o.r, delta.GenerateOptions{From: n.From, To: n.To, NoSync: true}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[bool]int{true: 2, false: 1}[scratch]; len(s.Deltas) != want {
		t.Fatalf("summary lists %d deltas, want %d", len(s.Deltas), want)
	}
	return o, a, b, name
}

// deltaHits counts requests under deltas/NAME/ and checks that nothing
// else but config and summary was requested.
func deltaHits(t *testing.T, o *origin, name delta.Name) (superblock, parts int) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for p, n := range o.hits {
		switch {
		case p == "/config" || p == "/summary":
		case p == "/"+name.Rel()+"/superblock":
			superblock += n
		case strings.HasPrefix(p, "/"+name.Rel()+"/"):
			parts += n
		default:
			t.Errorf("requested %s", p)
		}
	}
	return superblock, parts
}

func TestPullUsesDelta(t *testing.T) {
	o, a, b, name := deltaOrigin(t, false)
	// The client has A, as after an earlier pull.
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts(a.String())); err != nil {
		t.Fatal(err)
	}
	if err := dest.SetRef("origin:os/stable", a); err != nil {
		t.Fatal(err)
	}
	o.resetHits()
	res, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
	if err != nil {
		t.Fatal(err)
	}
	if sb, parts := deltaHits(t, o, name); sb != 1 || parts < 1 {
		t.Errorf("requested the superblock %d times and %d parts", sb, parts)
	}
	if diff := cmp.Diff([]string{name.String()}, res.Deltas); diff != "" {
		t.Errorf("deltas used (-want +got):\n%s", diff)
	}
	if got := mustRef(t, dest, "origin:os/stable"); got != b {
		t.Errorf("ref = %s, want %s", got, b)
	}
	if res.BytesFetched <= 0 || res.BytesFetched > 64<<10 {
		t.Errorf("fetched %d bytes for a small change", res.BytesFetched)
	}
	checkSameTree(t, o.r, dest, b)
	checkFsck(t, dest)

	// With deltas disabled, or none offered, objects are fetched.
	for _, disable := range []bool{true, false} {
		dest := newDest(t, repo.ModeBareUser, o.srv.URL)
		if _, err := remote.Pull(ctx, dest, fastOpts(a.String())); err != nil {
			t.Fatal(err)
		}
		dest.SetRef("origin:os/stable", a)
		if !disable {
			if err := delta.Delete(context.Background(), o.r, name); err != nil {
				t.Fatal(err)
			}
			remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true})
		}
		o.resetHits()
		opts := fastOpts("os/stable")
		opts.DisableStaticDeltas = disable
		res, err := remote.Pull(ctx, dest, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Deltas) != 0 || o.objectHits() == 0 || o.hitsOf("/"+name.Rel()+"/superblock") != 0 {
			t.Errorf("disable=%v: deltas %v, %d object requests", disable, res.Deltas, o.objectHits())
		}
		checkSameTree(t, o.r, dest, b)
	}
}

func TestPullScratchDelta(t *testing.T) {
	o, _, b, _ := deltaOrigin(t, true)
	dest := newDest(t, repo.ModeArchive, o.srv.URL)
	o.resetHits()
	res, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
	if err != nil {
		t.Fatal(err)
	}
	if sb, parts := deltaHits(t, o, delta.Name{To: b}); sb != 1 || parts < 1 {
		t.Errorf("requested the superblock %d times and %d parts", sb, parts)
	}
	if len(res.Deltas) != 1 || res.Deltas[0] != b.String() {
		t.Errorf("deltas used: %v", res.Deltas)
	}
	checkSameTree(t, o.r, dest, b)
	checkFsck(t, dest)
}

// A superblock that is not the one the summary lists, or a spoiled part,
// fails the pull and changes nothing.
func TestPullBadDelta(t *testing.T) {
	for _, c := range []struct {
		name, file string
		want       string
	}{
		{"superblock", delta.SuperblockFile, "superblock hashes to"},
		{"part", "0", "part hashes to"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, _, b, _ := deltaOrigin(t, true)
			p := filepath.Join(delta.Path(o.r, delta.Name{To: b}), c.file)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)-1] ^= 1
			os.WriteFile(p, data, 0o644)
			dest := newDest(t, repo.ModeBareUser, o.srv.URL)
			_, err = remote.Pull(ctx, dest, fastOpts("os/stable"))
			errContains(t, err, o.srv.URL+"/deltas/"+b.String(), c.want)
			u := o.srv.URL + "/" + delta.Name{To: b}.Rel() + "/" + c.file
			if n, all := strings.Count(err.Error(), u), strings.Count(err.Error(), o.srv.URL); n != 1 || all != 1 {
				t.Errorf("the error names %s %d times and the server %d times: %v", u, n, all, err)
			}
			checkNothingMoved(t, dest)
		})
	}
}

// TestPullDeltaGone checks a delta the summary lists but the server no
// longer has (deleted since, or a mirror without deltas) falls back to
// fetching objects.
func TestPullDeltaGone(t *testing.T) {
	o, _, b, _ := deltaOrigin(t, true)
	if err := os.RemoveAll(delta.Path(o.r, delta.Name{To: b})); err != nil {
		t.Fatal(err)
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	res, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deltas) != 0 || o.objectHits() == 0 {
		t.Errorf("deltas %v, %d object requests", res.Deltas, o.objectHits())
	}
	checkSameTree(t, o.r, dest, b)
	checkFsck(t, dest)
}

// A superblock or delta index larger than a client accepts (64 MiB, 16
// MiB) fails the pull, naming its URL, and moves nothing; the client stops
// reading at the limit, though the server would send four times as much:
// what the server got to send stays within the limit and what the
// connection buffers.
func TestPullRefusesOversizedDeltaFiles(t *testing.T) {
	for _, c := range []struct {
		name    string
		limit   int64
		indexed bool
	}{
		{"superblock", delta.MaxSuperblock, false},
		{"index", delta.MaxIndex, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o *origin
			var a, b repo.ID
			var name delta.Name
			if c.indexed {
				o, a, b, name = indexedOrigin(t, false)
			} else {
				o, a, b, name = deltaOrigin(t, false)
			}
			dest := setupClientAt(t, o, a)
			p := "/" + name.Rel() + "/" + delta.SuperblockFile
			if c.indexed {
				p = "/" + delta.IndexRel(b)
			}
			// The most one request got to send: a slow machine may time out
			// a request and retry it, which is not reading past the limit.
			var mostSent atomic.Int64
			o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
				if req.URL.Path != p {
					return false
				}
				chunk := make([]byte, 1<<20)
				sent := int64(0)
				for ; sent < 4*c.limit; sent += int64(len(chunk)) {
					if _, err := w.Write(chunk); err != nil {
						break
					}
				}
				for m := mostSent.Load(); sent > m && !mostSent.CompareAndSwap(m, sent); m = mostSent.Load() {
				}
				return true
			}
			_, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
			errContains(t, err, o.srv.URL+p, fmt.Sprintf("larger than %d bytes", c.limit))
			if n, most := mostSent.Load(), c.limit+socketSlack(t); n > most {
				t.Errorf("the server sent %d MiB in one request, want at most %d MiB", n>>20, most>>20)
			}
			checkNothingMovedFrom(t, dest, a)
		})
	}
}

// A delta whose from-commit is stored here complete is used though no ref
// names that commit, as OSTree uses it: after a pull by commit id (rather
// than the larger delta from scratch), and after a --commit-metadata-only
// pull moved the ref to a partial commit, the usual check for an update
// (rather than objects). Among several, the newest from-commit wins.
func TestPullDeltaFromStoredCommit(t *testing.T) {
	o, a, b, name := deltaOrigin(t, true)
	for _, c := range []struct {
		what  string
		setup func(dest *repo.Repo)
	}{
		{"no ref", func(dest *repo.Repo) {}},
		{"ref at a partial commit", func(dest *repo.Repo) {
			opts := fastOpts("os/stable")
			opts.CommitMetadataOnly = true
			if _, err := remote.Pull(ctx, dest, opts); err != nil {
				t.Fatal(err)
			}
			if got := mustRef(t, dest, "origin:os/stable"); got != b || !dest.IsCommitPartial(b) {
				t.Fatalf("after --commit-metadata-only the ref is %s (partial: %v), want %s partial", got, dest.IsCommitPartial(b), b)
			}
		}},
	} {
		t.Run(c.what, func(t *testing.T) {
			dest := newDest(t, repo.ModeBareUser, o.srv.URL)
			if _, err := remote.Pull(ctx, dest, fastOpts(a.String())); err != nil {
				t.Fatal(err)
			}
			c.setup(dest)
			o.resetHits()
			res, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{name.String()}, res.Deltas); diff != "" {
				t.Errorf("deltas used (-want +got):\n%s", diff)
			}
			// (The commit's detached metadata may be asked for again.)
			if n := o.objectHits() - o.hitsOf(objectURLPath(repo.KindCommitMeta, b)); n != 0 {
				t.Errorf("%d object requests", n)
			}
			if got := mustRef(t, dest, "origin:os/stable"); got != b {
				t.Errorf("ref = %s, want %s", got, b)
			}
			checkSameTree(t, o.r, dest, b)
			checkFsck(t, dest)
		})
	}

	// A third commit with deltas from both A and B: a client that stores
	// both (no ref) takes the one from B, the newer.
	changed := testtree.Tree{}
	for k, v := range tree {
		changed[k] = v
	}
	changed["usr/third"] = testtree.File("third\n", 0o644)
	c3 := o.commit("os/stable", changed, 1700000200)
	for _, from := range []repo.ID{a, b} {
		if _, err := delta.Generate(ctx, o.r, delta.GenerateOptions{From: from, To: c3, NoSync: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts(a.String(), b.String())); err != nil {
		t.Fatal(err)
	}
	res, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{delta.Name{From: b, To: c3}.String()}, res.Deltas); diff != "" {
		t.Errorf("deltas used (-want +got):\n%s", diff)
	}
	checkSameTree(t, o.r, dest, c3)
}

// socketSlack is how much a server may write into a connection its client
// no longer reads before a write blocks: the most the kernel lets the two
// sockets hold (tcp_rmem's and tcp_wmem's maximum; Linux 6.x raised the
// former to 32 MiB), and 8 MiB for the HTTP layers' buffers.
func socketSlack(t *testing.T) int64 {
	t.Helper()
	slack := int64(8 << 20)
	for _, f := range []string{"/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"} {
		b, err := os.ReadFile(f)
		fields := strings.Fields(string(b))
		if err != nil || len(fields) != 3 {
			slack += 32 << 20
			continue
		}
		n, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", f, b)
		}
		slack += n
	}
	return slack
}
