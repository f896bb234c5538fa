package remote_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

func id(b byte) repo.ID {
	var i repo.ID
	for k := range i {
		i[k] = b
	}
	return i
}

// The encoding of a fixed summary, byte by byte (docs/PULL.md).
func TestSummaryEncoding(t *testing.T) {
	s := &remote.Summary{
		Refs:     []repo.Ref{{Name: "a", Commit: id(0x11)}, {Name: "os/x", Commit: id(0x22)}},
		Metadata: repo.Metadata{{Key: "k", Value: []byte("v")}},
	}
	want := "7301" + "02" +
		"0161" + strings.Repeat("11", 32) +
		"046f732f78" + strings.Repeat("22", 32) +
		"01" + "016b" + "0176"
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
	if c, ok := back.Lookup("os/x"); !ok || c != id(0x22) {
		t.Errorf("Lookup(os/x) = %s, %v", c, ok)
	}
	if _, ok := back.Lookup("os"); ok {
		t.Error("Lookup(os) found a ref")
	}
	empty, err := remote.DecodeSummary([]byte{0x73, 0x01, 0x00, 0x00})
	if err != nil || len(empty.Refs) != 0 || len(empty.Metadata) != 0 {
		t.Errorf("empty summary: %+v, %v", empty, err)
	}
}

func summaryCases() []summaryCase {
	ref := func(name string, b byte) string {
		return hex.EncodeToString([]byte{byte(len(name))}) + hex.EncodeToString([]byte(name)) + strings.Repeat(hex.EncodeToString([]byte{b}), 32)
	}
	return []summaryCase{
		{"empty input", "", "not a summary"},
		{"wrong tag", "7401" + "00" + "00", "not a summary"},
		{"wrong version", "7302" + "00" + "00", "unsupported summary version 2"},
		{"truncated", "7301", "truncated"},
		{"non-minimal count", "7301" + "8000" + "00", "not minimal"},
		{"count past the end", "7301" + "05" + ref("a", 1) + "00", "past the end"},
		{"unsorted refs", "7301" + "02" + ref("b", 1) + ref("a", 1) + "00", `not sorted or duplicated at "a"`},
		{"duplicate refs", "7301" + "02" + ref("a", 1) + ref("a", 1) + "00", `not sorted or duplicated at "a"`},
		{"remote ref", "7301" + "01" + ref("o:a", 1) + "00", "a remote ref"},
		{"dotdot ref", "7301" + "01" + ref("..", 1) + "00", "invalid ref name"},
		{"empty ref", "7301" + "01" + ref("", 1) + "00", "invalid ref name"},
		{"zero commit", "7301" + "01" + ref("a", 0) + "00", "zero id"},
		{"ref below a ref", "7301" + "03" + ref("a", 1) + ref("a-x", 1) + ref("a/b", 1) + "00", `refs "a" and "a/b" cannot both exist`},
		{"ref deep below a ref", "7301" + "02" + ref("a/b", 1) + ref("a/b/c/d", 1) + "00", `refs "a/b" and "a/b/c/d" cannot both exist`},
		{"name past the end", "7301" + "01" + "4061" + strings.Repeat("11", 32) + "00", "past the end"},
		{"empty metadata key", "7301" + "00" + "01" + "00" + "00", "empty metadata key"},
		{"unsorted metadata", "7301" + "00" + "02" + "016200" + "016100", `not sorted or duplicated at "a"`},
		{"trailing bytes", "7301" + "00" + "00" + "00", "1 trailing bytes"},
		{"missing metadata", "7301" + "00", "truncated"},
	}
}

func TestDecodeSummaryRejects(t *testing.T) {
	rejectSummaries(t, summaryCases())
}

func FuzzDecodeSummary(f *testing.F) {
	f.Add((&remote.Summary{Refs: []repo.Ref{{Name: "a", Commit: id(1)}, {Name: "b/c", Commit: id(2)}}}).Encode())
	f.Add((&remote.Summary{Metadata: repo.Metadata{{Key: "x", Value: []byte{0}}}}).Encode())
	f.Add((&remote.Summary{Deltas: []remote.DeltaRef{{Name: delta.Name{From: id(1), To: id(2)}, Superblock: id(3)}}}).Encode())
	for _, c := range append(summaryCases(), deltaSummaryCases()...) {
		b, _ := hex.DecodeString(c.hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := remote.DecodeSummary(b)
		if err != nil {
			return
		}
		// Whatever decodes is canonical: it encodes back to the input.
		if enc := s.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
	})
}

func TestUpdateSummary(t *testing.T) {
	o := newOrigin(t)
	a := o.commit("b/main", testtree.Tree{"f": testtree.File("x", 0o644)}, 1700000000)
	if err := o.r.SetRef("other:x", a); err != nil {
		t.Fatal(err)
	}
	s, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{Metadata: repo.Metadata{{Key: "title", Value: []byte("demo")}}})
	if err != nil {
		t.Fatal(err)
	}
	// Remote-tracking refs are not the repository's to publish.
	if len(s.Refs) != 1 || s.Refs[0].Name != "b/main" || s.Refs[0].Commit != a {
		t.Errorf("summary refs = %v", s.Refs)
	}
	data, err := os.ReadFile(o.r.Path(remote.SummaryFile))
	if err != nil || !bytes.Equal(data, s.Encode()) {
		t.Fatalf("summary file: %x, %v", data, err)
	}
	back, err := remote.ReadSummary(o.r)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, back); diff != "" {
		t.Errorf("ReadSummary (-want +got):\n%s", diff)
	}
	_, err = remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{Metadata: repo.Metadata{{Key: "otree.x"}}})
	errContains(t, err, "reserved")

	os.Remove(o.r.Path(remote.SummaryFile))
	if _, err := remote.ReadSummary(o.r); !errors.Is(err, repo.ErrNotFound) || !errors.Is(err, remote.ErrNoSummary) {
		t.Errorf("ReadSummary without a file: %v", err)
	}
}

// A branch whose commit object is not in the repository (a copy of refs
// without their objects, say) is not published: UpdateSummary fails
// naming the branch and the commit, and the summary stays as it was.
func TestUpdateSummaryRefusesMissingCommit(t *testing.T) {
	o := newOrigin(t)
	a := o.commit("main", testtree.Tree{"f": testtree.File("x", 0o644)}, 1700000000)
	before, err := os.ReadFile(o.r.Path(remote.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var bogus repo.ID
	bogus[0] = 1
	// Written as another program would, past SetRef's checks.
	if err := os.WriteFile(o.r.Path("refs/heads/bogus"), []byte(bogus.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true})
	if !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("UpdateSummary with a branch at a missing commit: %v, want a not-found error", err)
	}
	errContains(t, err, "branch bogus", bogus.String())
	if after, _ := os.ReadFile(o.r.Path(remote.SummaryFile)); !bytes.Equal(after, before) {
		t.Errorf("the refused update changed the summary")
	}
	if s, err := remote.ReadSummary(o.r); err != nil || len(s.Refs) != 1 || s.Refs[0].Commit != a {
		t.Errorf("summary after the refused update: %+v, %v", s, err)
	}
}
