package repo_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/otree/otree/repo"
)

// raw builds encodings byte by byte, so tests can write what the encoders
// never would: non-minimal varints, bad tags, lengths past the end.
type raw struct{ b []byte }

func (r *raw) head(tag byte) *raw        { r.b = append(r.b, tag, 1); return r }
func (r *raw) byte1(c byte) *raw         { r.b = append(r.b, c); return r }
func (r *raw) uv(v uint64) *raw          { r.b = binary.AppendUvarint(r.b, v); return r }
func (r *raw) str(s string) *raw         { r.uv(uint64(len(s))); r.b = append(r.b, s...); return r }
func (r *raw) id(id repo.ID) *raw        { r.b = append(r.b, id[:]...); return r }
func (r *raw) bytes(p ...byte) *raw      { r.b = append(r.b, p...); return r }
func (r *raw) u64be(v uint64) *raw       { r.b = binary.BigEndian.AppendUint64(r.b, v); return r }
func newRaw() *raw                       { return &raw{} }
func idOf(c byte) (id repo.ID)           { id[0], id[31] = c, c; return id }
func dup(b []byte, extra ...byte) []byte { return append(bytes.Clone(b), extra...) }

// Valid sample values, one per object kind.

func sampleRegular() *repo.FileHeader {
	return &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o4755, UID: 1000, GID: 100,
		Xattrs: []repo.Xattr{{Name: "security.capability", Value: []byte{1, 2, 3}}, {Name: "user.empty", Value: []byte{}}}, Size: 300}
}

func sampleHeaders() map[string]*repo.FileHeader {
	return map[string]*repo.FileHeader{
		"regular":  sampleRegular(),
		"empty":    {Type: repo.TypeRegular, Mode: 0o644},
		"symlink":  {Type: repo.TypeSymlink, Mode: 0o777, Target: "../usr/bin/tool"},
		"chardev":  {Type: repo.TypeCharDevice, Mode: 0o666, Rdev: 0x103},
		"blockdev": {Type: repo.TypeBlockDevice, Mode: 0o660, GID: 6, Rdev: 0x800},
		"fifo":     {Type: repo.TypeFIFO, Mode: 0o600, UID: 0xffffffff, GID: 0xffffffff},
	}
}

func sampleDirMeta() *repo.DirMeta {
	return &repo.DirMeta{Mode: 0o1777, UID: 0, GID: 1000, Xattrs: []repo.Xattr{{Name: "user.a", Value: []byte("1")}, {Name: "user.b", Value: []byte("22")}}}
}

func sampleDirTree() *repo.DirTree {
	return &repo.DirTree{
		Files: []repo.FileEntry{{Name: "B", ID: idOf(1)}, {Name: "a", ID: idOf(2)}, {Name: "a.b", ID: idOf(3)}, {Name: "\xc3\xa4", ID: idOf(4)}},
		Dirs:  []repo.DirEntry{{Name: "a-b", TreeID: idOf(5), MetaID: idOf(6)}, {Name: "bin", TreeID: idOf(7), MetaID: idOf(8)}},
	}
}

func sampleCommit() *repo.Commit {
	return &repo.Commit{Parent: idOf(9), Timestamp: 1700000000, Subject: "subject", Body: "body\nmore\n",
		RootTree: idOf(10), RootMeta: idOf(11),
		Metadata: repo.Metadata{{Key: "a", Value: []byte{}}, {Key: "version", Value: []byte("1.0")}}}
}

func sampleCommitMeta() repo.Metadata {
	return repo.Metadata{{Key: "otree.sig.ed25519", Value: bytes.Repeat([]byte{0xaa}, 64)}, {Key: "z", Value: []byte("last")}}
}

var equateEmpty = cmpopts.EquateEmpty()

func TestObjectRoundTrip(t *testing.T) {
	for name, h := range sampleHeaders() {
		enc := repo.AppendFileHeader(nil, h)
		got, n, err := repo.DecodeFileHeader(dup(enc, []byte("content")...))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n != len(enc) {
			t.Errorf("%s: decoder used %d bytes, header is %d", name, n, len(enc))
		}
		if d := cmp.Diff(h, got, equateEmpty); d != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", name, d)
		}
	}
	m := sampleDirMeta()
	gm, err := repo.DecodeDirMeta(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(m, gm, equateEmpty); d != "" {
		t.Errorf("dirmeta (-want +got):\n%s", d)
	}
	for _, tr := range []*repo.DirTree{sampleDirTree(), {}} {
		gt, err := repo.DecodeDirTree(tr.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tr, gt, equateEmpty); d != "" {
			t.Errorf("dirtree (-want +got):\n%s", d)
		}
	}
	c := sampleCommit()
	gc, err := repo.DecodeCommit(c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(c, gc, equateEmpty); d != "" {
		t.Errorf("commit (-want +got):\n%s", d)
	}
	cm := sampleCommitMeta()
	gcm, err := repo.DecodeCommitMeta(repo.EncodeCommitMeta(cm))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(cm, gcm, equateEmpty); d != "" {
		t.Errorf("commitmeta (-want +got):\n%s", d)
	}
	if got, err := repo.DecodeTombstone(repo.EncodeTombstone(idOf(7))); err != nil || got != idOf(7) {
		t.Errorf("tombstone round trip: %s, %v", got, err)
	}
}

// A stored tombstone must name the commit it is stored under.
func TestCheckTombstone(t *testing.T) {
	if err := repo.CheckTombstone(repo.EncodeTombstone(idOf(7)), idOf(7)); err != nil {
		t.Errorf("a tombstone under its own commit: %v", err)
	}
	err := repo.CheckTombstone(repo.EncodeTombstone(idOf(8)), idOf(7))
	if err == nil || !strings.Contains(err.Error(), "names commit "+idOf(8).String()) {
		t.Errorf("a tombstone under another commit: %v", err)
	}
	if err := repo.CheckTombstone([]byte{'x', 1}, idOf(7)); err == nil {
		t.Error("a truncated tombstone passed")
	}
}

// decoders adapts every whole-object decoder to one signature.
var decoders = map[string]func([]byte) error{
	"file": func(b []byte) error {
		_, n, err := repo.DecodeFileHeader(b)
		if err == nil && n != len(b) {
			return errors.New("decoder left bytes (fine for a header followed by content)")
		}
		return err
	},
	"dirmeta":          func(b []byte) error { _, err := repo.DecodeDirMeta(b); return err },
	"dirtree":          func(b []byte) error { _, err := repo.DecodeDirTree(b); return err },
	"commit":           func(b []byte) error { _, err := repo.DecodeCommit(b); return err },
	"commitmeta":       func(b []byte) error { _, err := repo.DecodeCommitMeta(b); return err },
	"tombstone-commit": func(b []byte) error { _, err := repo.DecodeTombstone(b); return err },
}

type rejectCase struct {
	name, kind string
	in         []byte
	want       string // substring of the error
}

func fileHeaderCases() []rejectCase {
	h := func(mut func(*repo.FileHeader)) []byte {
		x := sampleRegular()
		mut(x)
		return repo.AppendFileHeader(nil, x)
	}
	sym := func(mut func(*repo.FileHeader)) []byte {
		x := &repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "t"}
		mut(x)
		return repo.AppendFileHeader(nil, x)
	}
	// hdr writes a header field by field from raw parts.
	hdr := func(typ byte, mode, uid, gid, rdev uint64, target string, tail ...byte) []byte {
		return newRaw().head('f').byte1(typ).uv(mode).uv(uid).uv(gid).uv(rdev).str(target).bytes(tail...).b
	}
	return []rejectCase{
		{"wrong tag", "file", newRaw().head('m').b, "not a version 1 file encoding"},
		{"wrong version", "file", []byte{'f', 2, 1, 0, 0, 0, 0, 0, 0, 0}, "not a version 1 file encoding"},
		{"empty input", "file", nil, "past the end"},
		{"type 0", "file", hdr(0, 0o644, 0, 0, 0, "", 0, 0), "unknown file type 0"},
		{"type 6", "file", hdr(6, 0o644, 0, 0, 0, "", 0, 0), "unknown file type 6"},
		{"mode beyond 07777", "file", h(func(x *repo.FileHeader) { x.Mode = 0o10644 }), "bits beyond 07777"},
		{"mode with type bits", "file", h(func(x *repo.FileHeader) { x.Mode = 0o100644 }), "bits beyond 07777"},
		{"mode past u32", "file", hdr(1, 1<<32, 0, 0, 0, "", 0, 0), "mode 4294967296 out of range"},
		{"uid past u32", "file", hdr(1, 0o644, 1<<32, 0, 0, "", 0, 0), "uid 4294967296 out of range"},
		{"gid past u32", "file", hdr(1, 0o644, 0, 1<<40, 0, "", 0, 0), "gid 1099511627776 out of range"},
		{"symlink without target", "file", sym(func(x *repo.FileHeader) { x.Target = "" }), "invalid symlink target"},
		{"symlink target with NUL", "file", sym(func(x *repo.FileHeader) { x.Target = "a\x00b" }), "invalid symlink target"},
		{"symlink with content size", "file", sym(func(x *repo.FileHeader) { x.Size = 1 }), "symlink has content size 1"},
		{"symlink with rdev", "file", sym(func(x *repo.FileHeader) { x.Rdev = 1 }), "symlink has a device number"},
		{"regular with target", "file", h(func(x *repo.FileHeader) { x.Target = "t" }), "regular has a symlink target"},
		{"regular with rdev", "file", h(func(x *repo.FileHeader) { x.Rdev = 0x103 }), "regular has a device number"},
		{"chardev with target", "file", hdr(3, 0o600, 0, 0, 0x103, "t", 0, 0), "chardev has a symlink target"},
		{"fifo with size", "file", hdr(5, 0o600, 0, 0, 0, "", 0, 7), "fifo has content size 7"},
		{"fifo with rdev", "file", hdr(5, 0o600, 0, 0, 9, "", 0, 0), "fifo has a device number"},
		{"xattrs unsorted", "file", h(func(x *repo.FileHeader) { x.Xattrs[0], x.Xattrs[1] = x.Xattrs[1], x.Xattrs[0] }), "xattrs not sorted or duplicated"},
		{"xattrs duplicated", "file", h(func(x *repo.FileHeader) { x.Xattrs[1].Name = x.Xattrs[0].Name }), "xattrs not sorted or duplicated"},
		{"xattr name empty", "file", h(func(x *repo.FileHeader) { x.Xattrs[0].Name = "" }), "invalid xattr name"},
		{"xattr name with NUL", "file", h(func(x *repo.FileHeader) { x.Xattrs[0].Name = "security\x00x" }), "invalid xattr name"},
		{"xattr count past the end", "file", hdr(1, 0o644, 0, 0, 0, "", 100), "count 100 past the end"},
		{"target length past the end", "file", newRaw().head('f').byte1(2).uv(0o777).uv(0).uv(0).uv(0).uv(50).bytes('x').b, "length 50 past the end"},
		{"non-minimal mode", "file", newRaw().head('f').byte1(1).bytes(0xa4, 0x83, 0x00).uv(0).uv(0).uv(0).str("").uv(0).uv(0).b, "varint not minimally encoded"},
		{"non-minimal zero uid", "file", newRaw().head('f').byte1(1).uv(0o644).bytes(0x80, 0x00).uv(0).uv(0).str("").uv(0).uv(0).b, "varint not minimally encoded"},
		{"non-minimal size", "file", newRaw().head('f').byte1(1).uv(0o644).uv(0).uv(0).uv(0).str("").uv(0).bytes(0x85, 0x80, 0x00).b, "varint not minimally encoded"},
		{"overlong varint", "file", newRaw().head('f').byte1(1).uv(0o644).uv(0).uv(0).bytes(bytes.Repeat([]byte{0xff}, 10)...).bytes(0x01).b, "truncated or overlong varint"},
		{"varint past 64 bits", "file", newRaw().head('f').byte1(1).uv(0o644).uv(0).uv(0).bytes(bytes.Repeat([]byte{0xff}, 9)...).bytes(0x02).str("").uv(0).uv(0).b, "truncated or overlong varint"},
	}
}

func dirMetaCases() []rejectCase {
	m := func(mut func(*repo.DirMeta)) []byte {
		x := sampleDirMeta()
		mut(x)
		return x.Encode()
	}
	valid := sampleDirMeta().Encode()
	return []rejectCase{
		{"wrong tag", "dirmeta", dup(valid[:0], 'f', 1, 0, 0, 0, 0), "not a version 1 dirmeta encoding"},
		{"wrong version", "dirmeta", []byte{'m', 0, 0, 0, 0, 0}, "not a version 1 dirmeta encoding"},
		{"trailing byte", "dirmeta", dup(valid, 0), "1 trailing bytes"},
		{"trailing bytes", "dirmeta", dup(valid, []byte("abc")...), "3 trailing bytes"},
		{"mode beyond 07777", "dirmeta", m(func(x *repo.DirMeta) { x.Mode = 0o40755 }), "bits beyond 07777"},
		{"uid past u32", "dirmeta", newRaw().head('m').uv(0o755).uv(1 << 32).uv(0).uv(0).b, "uid 4294967296 out of range"},
		{"xattrs unsorted", "dirmeta", m(func(x *repo.DirMeta) { x.Xattrs[0], x.Xattrs[1] = x.Xattrs[1], x.Xattrs[0] }), "xattrs not sorted or duplicated"},
		{"xattrs duplicated", "dirmeta", m(func(x *repo.DirMeta) { x.Xattrs[0].Name = x.Xattrs[1].Name }), "xattrs not sorted or duplicated"},
		{"xattr name empty", "dirmeta", m(func(x *repo.DirMeta) { x.Xattrs[0].Name = "" }), "invalid xattr name"},
		{"xattr name with NUL", "dirmeta", m(func(x *repo.DirMeta) { x.Xattrs[1].Name = "user.\x00" }), "invalid xattr name"},
		{"non-minimal mode", "dirmeta", newRaw().head('m').bytes(0xed, 0x83, 0x80, 0x00).uv(0).uv(0).uv(0).b, "varint not minimally encoded"},
		{"non-minimal xattr count", "dirmeta", newRaw().head('m').uv(0o755).uv(0).uv(0).bytes(0x80, 0x00).b, "varint not minimally encoded"},
	}
}

func dirTreeCases() []rejectCase {
	tr := func(mut func(*repo.DirTree)) []byte {
		x := sampleDirTree()
		mut(x)
		return x.Encode()
	}
	valid := sampleDirTree().Encode()
	var cases []rejectCase
	for _, bad := range []struct{ what, name string }{
		{"empty name", ""}, {"dot", "."}, {"dotdot", ".."}, {"slash", "a/b"}, {"leading slash", "/a"},
		{"trailing slash", "a/"}, {"NUL", "a\x00b"}, {"only NUL", "\x00"},
	} {
		cases = append(cases,
			rejectCase{"file name " + bad.what, "dirtree", tr(func(x *repo.DirTree) { x.Files[0].Name = bad.name }), "invalid name"},
			rejectCase{"dir name " + bad.what, "dirtree", tr(func(x *repo.DirTree) { x.Dirs[0].Name = bad.name }), "invalid name"},
		)
	}
	return append(cases, []rejectCase{
		{"wrong tag", "dirtree", []byte{'c', 1, 0, 0}, "not a version 1 dirtree encoding"},
		{"wrong version", "dirtree", []byte{'t', 2, 0, 0}, "not a version 1 dirtree encoding"},
		{"trailing byte", "dirtree", dup(valid, 0), "1 trailing bytes"},
		{"trailing byte after empty tree", "dirtree", []byte{'t', 1, 0, 0, 0}, "1 trailing bytes"},
		{"files unsorted", "dirtree", tr(func(x *repo.DirTree) { x.Files[0], x.Files[1] = x.Files[1], x.Files[0] }), `names not sorted or duplicated at "B"`},
		{"files not bytewise sorted", "dirtree", tr(func(x *repo.DirTree) { x.Files[2], x.Files[3] = x.Files[3], x.Files[2] }), "names not sorted or duplicated"},
		{"files duplicated", "dirtree", tr(func(x *repo.DirTree) { x.Files[1].Name = "B" }), `names not sorted or duplicated at "B"`},
		{"dirs unsorted", "dirtree", tr(func(x *repo.DirTree) { x.Dirs[0], x.Dirs[1] = x.Dirs[1], x.Dirs[0] }), `names not sorted or duplicated at "a-b"`},
		{"dirs duplicated", "dirtree", tr(func(x *repo.DirTree) { x.Dirs[1].Name = "a-b" }), `names not sorted or duplicated at "a-b"`},
		{"name both file and dir", "dirtree", tr(func(x *repo.DirTree) { x.Dirs[1].Name = "a.b" }), `name "a.b" is both a file and a directory`},
		{"first dir is a file", "dirtree", tr(func(x *repo.DirTree) { x.Dirs[0].Name = "B" }), `name "B" is both a file and a directory`},
		{"file count past the end", "dirtree", []byte{'t', 1, 1, 1, 'a'}, "count 1 past the end"},
		{"dir count past the end", "dirtree", newRaw().head('t').uv(0).uv(1).str("a").id(idOf(1)).b, "count 1 past the end"},
		{"huge file count", "dirtree", newRaw().head('t').uv(1 << 62).b, "past the end"},
		{"name length past the end", "dirtree", newRaw().head('t').uv(1).uv(40).bytes(make([]byte, 33)...).uv(0).b, "length 40 past the end"},
		{"non-minimal file count", "dirtree", newRaw().head('t').bytes(0x80, 0x00).uv(0).b, "varint not minimally encoded"},
		{"non-minimal name length", "dirtree", newRaw().head('t').uv(1).bytes(0x81, 0x00, 'a').id(idOf(1)).uv(0).b, "varint not minimally encoded"},
	}...)
}

func commitCases() []rejectCase {
	c := func(mut func(*repo.Commit)) []byte {
		x := sampleCommit()
		mut(x)
		return x.Encode()
	}
	valid := sampleCommit().Encode()
	return []rejectCase{
		{"wrong tag", "commit", dup(valid[:0], 'd', 1), "not a version 1 commit encoding"},
		{"wrong version", "commit", dup([]byte{'c', 0}, valid[2:]...), "not a version 1 commit encoding"},
		{"trailing byte", "commit", dup(valid, 0), "1 trailing bytes"},
		{"metadata unsorted", "commit", c(func(x *repo.Commit) { x.Metadata[0], x.Metadata[1] = x.Metadata[1], x.Metadata[0] }), `metadata keys not sorted or duplicated at "a"`},
		{"metadata duplicated", "commit", c(func(x *repo.Commit) { x.Metadata[1].Key = "a" }), `metadata keys not sorted or duplicated at "a"`},
		{"metadata key empty", "commit", c(func(x *repo.Commit) { x.Metadata[0].Key = "" }), "empty metadata key"},
		{"subject past the end", "commit", newRaw().head('c').id(repo.ID{}).u64be(1).uv(5).bytes('a').b, "length 5 past the end"},
		{"metadata count past the end", "commit", newRaw().head('c').id(repo.ID{}).u64be(1).str("").str("").id(idOf(1)).id(idOf(2)).uv(3).str("k").b, "count 3 past the end"},
		{"non-minimal subject length", "commit", newRaw().head('c').id(repo.ID{}).u64be(1).bytes(0x80, 0x00).str("").id(idOf(1)).id(idOf(2)).uv(0).b, "varint not minimally encoded"},
		{"short timestamp", "commit", newRaw().head('c').id(repo.ID{}).bytes(0, 0, 0).b, "length 8 past the end"},
	}
}

func commitMetaCases() []rejectCase {
	valid := repo.EncodeCommitMeta(sampleCommitMeta())
	return []rejectCase{
		{"wrong tag", "commitmeta", []byte{'c', 1, 0}, "not a version 1 commitmeta encoding"},
		{"wrong version", "commitmeta", []byte{'d', 7, 0}, "not a version 1 commitmeta encoding"},
		{"trailing byte", "commitmeta", dup(valid, 0), "1 trailing bytes"},
		{"keys unsorted", "commitmeta", repo.EncodeCommitMeta(repo.Metadata{{Key: "b"}, {Key: "a"}}), `metadata keys not sorted or duplicated at "a"`},
		{"keys duplicated", "commitmeta", repo.EncodeCommitMeta(repo.Metadata{{Key: "a"}, {Key: "a", Value: []byte("x")}}), `metadata keys not sorted or duplicated at "a"`},
		{"key empty", "commitmeta", repo.EncodeCommitMeta(repo.Metadata{{Key: ""}}), "empty metadata key"},
		{"value past the end", "commitmeta", newRaw().head('d').uv(1).str("k").uv(9).bytes(1, 2).b, "length 9 past the end"},
		{"non-minimal count", "commitmeta", []byte{'d', 1, 0x80, 0x00}, "varint not minimally encoded"},
		{"non-minimal value length", "commitmeta", newRaw().head('d').uv(1).str("k").bytes(0x80, 0x80, 0x00).b, "varint not minimally encoded"},
	}
}

func tombstoneCases() []rejectCase {
	valid := repo.EncodeTombstone(idOf(7))
	return []rejectCase{
		{"wrong tag", "tombstone-commit", dup([]byte{'c', 1}, valid[2:]...), "not a version 1 tombstone-commit encoding"},
		{"wrong version", "tombstone-commit", dup([]byte{'x', 2}, valid[2:]...), "not a version 1 tombstone-commit encoding"},
		{"trailing byte", "tombstone-commit", dup(valid, 0), "1 trailing bytes"},
		{"zero id", "tombstone-commit", repo.EncodeTombstone(repo.ID{}), "tombstone of the zero id"},
		{"short id", "tombstone-commit", valid[:33], "past the end"},
	}
}

func TestDecodersRejectNonCanonical(t *testing.T) {
	var all []rejectCase
	all = append(all, fileHeaderCases()...)
	all = append(all, dirMetaCases()...)
	all = append(all, dirTreeCases()...)
	all = append(all, commitCases()...)
	all = append(all, commitMetaCases()...)
	all = append(all, tombstoneCases()...)
	for _, c := range all {
		t.Run(c.kind+"/"+c.name, func(t *testing.T) {
			err := decoders[c.kind](c.in)
			if err == nil {
				t.Fatalf("decoded %x without error", c.in)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "non-canonical encoding at byte ") {
				t.Errorf("error %q does not say where", err)
			}
		})
	}
}

// validEncodings returns one valid encoding per kind (file: header only).
func validEncodings() map[string][][]byte {
	v := map[string][][]byte{}
	for _, h := range sampleHeaders() {
		v["file"] = append(v["file"], repo.AppendFileHeader(nil, h))
	}
	v["dirmeta"] = [][]byte{sampleDirMeta().Encode(), (&repo.DirMeta{Mode: 0o755}).Encode()}
	v["dirtree"] = [][]byte{sampleDirTree().Encode(), (&repo.DirTree{}).Encode()}
	v["commit"] = [][]byte{sampleCommit().Encode(), (&repo.Commit{}).Encode()}
	v["commitmeta"] = [][]byte{repo.EncodeCommitMeta(sampleCommitMeta()), repo.EncodeCommitMeta(nil)}
	v["tombstone-commit"] = [][]byte{repo.EncodeTombstone(idOf(7))}
	return v
}

func TestDecodersRejectTruncation(t *testing.T) {
	for kind, encs := range validEncodings() {
		for _, enc := range encs {
			if err := decoders[kind](enc); err != nil {
				t.Fatalf("%s: valid encoding %x rejected: %v", kind, enc, err)
			}
			for n := 0; n < len(enc); n++ {
				err := decoders[kind](enc[:n])
				if err == nil {
					t.Errorf("%s: truncation to %d of %d bytes decoded", kind, n, len(enc))
					continue
				}
				if msg := err.Error(); !strings.Contains(msg, "past the end") && !strings.Contains(msg, "truncated") {
					t.Errorf("%s: truncation to %d bytes: error %q does not say it is truncated", kind, n, msg)
				}
			}
		}
	}
}

func TestDecodersRejectTrailingBytes(t *testing.T) {
	for kind, encs := range validEncodings() {
		if kind == "file" {
			continue // a header is followed by content; see TestFileHeaderTrailingContent
		}
		for _, enc := range encs {
			for _, extra := range [][]byte{{0}, {0xff}, enc} {
				err := decoders[kind](dup(enc, extra...))
				if err == nil || !strings.Contains(err.Error(), "trailing bytes") {
					t.Errorf("%s with %d extra bytes: got %v, want a trailing bytes error", kind, len(extra), err)
				}
			}
		}
	}
}

func TestFileHeaderTrailingContent(t *testing.T) {
	enc := repo.AppendFileHeader(nil, sampleRegular())
	h, n, err := repo.DecodeFileHeader(dup(enc, make([]byte, 300)...))
	if err != nil {
		t.Fatal(err)
	}
	if n != len(enc) || h.Size != 300 {
		t.Errorf("used %d bytes (want %d), size %d", n, len(enc), h.Size)
	}
}

// A bare-user symlink's UserMetaXattr repeats a target of up to 1 KiB and
// leaves a longer one out, to be read from the content (docs/FORMAT.md
// §6.2); either way it decodes to the symlink's header.
func TestUserMetaLongTarget(t *testing.T) {
	for _, n := range []int{1, 1024, 1025, 4095} {
		h := &repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: strings.Repeat("t", n)}
		want := h
		if n > 1024 {
			want = &repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777}
		}
		enc := repo.AppendUserMeta(nil, h)
		if !bytes.Equal(enc, repo.AppendFileHeader(nil, want)) {
			t.Errorf("target of %d bytes: user meta of %d bytes, want the header with a target of %d bytes", n, len(enc), len(want.Target))
		}
		read := false
		got, err := repo.DecodeUserMeta(enc, func() (string, error) { read = true; return h.Target, nil })
		if err != nil || got.Target != h.Target || got.Mode != 0o777 {
			t.Errorf("target of %d bytes: decoded %+v, %v", n, got, err)
		}
		if read != (n > 1024) {
			t.Errorf("target of %d bytes: content read %v, want %v", n, read, n > 1024)
		}
	}
}

// A target of one byte 0x01 in UserMetaXattr is that target: only an
// empty one is read from the content, so content that differs from a
// target the xattr holds is not taken in its place (docs/FORMAT.md §6.2).
func TestUserMetaShortTargetNotReplaced(t *testing.T) {
	h := &repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "\x01"}
	read := false
	got, err := repo.DecodeUserMeta(repo.AppendUserMeta(nil, h), func() (string, error) { read = true; return "abc", nil })
	if err != nil || got.Target != "\x01" || read {
		t.Errorf("decoded %+v, %v, content read %v; want the target \"\\x01\" without reading the content", got, err, read)
	}
}

// A bare-user object's UserMetaXattr holds its header and nothing more.
func TestUserMetaTrailingBytes(t *testing.T) {
	enc := repo.AppendUserMeta(nil, sampleRegular())
	if _, err := repo.DecodeUserMeta(enc, nil); err != nil {
		t.Fatal(err)
	}
	if h, err := repo.DecodeUserMeta(dup(enc, 0), nil); err == nil || !strings.Contains(err.Error(), "1 trailing bytes") {
		t.Errorf("user meta with a trailing byte: %+v, %v", h, err)
	}
}

func TestFileHeaderValidate(t *testing.T) {
	for name, h := range sampleHeaders() {
		if err := h.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]struct {
		h    repo.FileHeader
		want string
	}{
		"unsorted xattrs": {repo.FileHeader{Type: repo.TypeRegular, Xattrs: []repo.Xattr{{Name: "b"}, {Name: "a"}}}, "xattrs not sorted, duplicated or badly named"},
		"dup xattrs":      {repo.FileHeader{Type: repo.TypeRegular, Xattrs: []repo.Xattr{{Name: "a"}, {Name: "a"}}}, "xattrs not sorted, duplicated or badly named"},
		"empty xattr":     {repo.FileHeader{Type: repo.TypeRegular, Xattrs: []repo.Xattr{{Name: ""}}}, "xattrs not sorted, duplicated or badly named"},
		"type 0":          {repo.FileHeader{}, "unknown file type 0"},
		"mode":            {repo.FileHeader{Type: repo.TypeFIFO, Mode: 0o20000}, "bits beyond 07777"},
		"blockdev size":   {repo.FileHeader{Type: repo.TypeBlockDevice, Size: 1}, "blockdev has content size 1"},
		"symlink size":    {repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "x", Size: 1}, "symlink has content size 1"},
		"type 6":          {repo.FileHeader{Type: repo.TypeFIFO + 1}, "unknown file type 6"},
		// A symlink's mode is always 0777: any other would give one link
		// several ids.
		"symlink mode":           {repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o755, Target: "x"}, "symlink mode 755 is not 0777"},
		"symlink without target": {repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777}, "invalid symlink target"},
		"target with NUL":        {repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "a\x00b"}, "invalid symlink target"},
		"regular with target":    {repo.FileHeader{Type: repo.TypeRegular, Target: "x"}, "regular has a symlink target"},
		"fifo rdev":              {repo.FileHeader{Type: repo.TypeFIFO, Rdev: 1}, "fifo has a device number"},
		"regular rdev":           {repo.FileHeader{Type: repo.TypeRegular, Rdev: 1}, "regular has a device number"},
		"xattr name with NUL":    {repo.FileHeader{Type: repo.TypeRegular, Xattrs: []repo.Xattr{{Name: "user.a\x00"}}}, "xattrs not sorted, duplicated or badly named"},
	}
	for name, c := range bad {
		err := c.h.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", name, err, c.want)
		}
	}
}

func TestFileMode(t *testing.T) {
	for _, c := range []struct {
		h    repo.FileHeader
		want fs.FileMode
	}{
		{repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644}, 0o644},
		{repo.FileHeader{Type: repo.TypeRegular, Mode: 0o7755}, fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o755},
		{repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "x"}, fs.ModeSymlink | 0o777},
		{repo.FileHeader{Type: repo.TypeCharDevice, Mode: 0o600}, fs.ModeDevice | fs.ModeCharDevice | 0o600},
		{repo.FileHeader{Type: repo.TypeBlockDevice, Mode: 0o600}, fs.ModeDevice | 0o600},
		{repo.FileHeader{Type: repo.TypeFIFO, Mode: 0o600}, fs.ModeNamedPipe | 0o600},
	} {
		if got := c.h.FileMode(); got != c.want {
			t.Errorf("%v %o: FileMode %v, want %v", c.h.Type, c.h.Mode, got, c.want)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "..a", "a..", "...", ".hidden", "a b", "\xff\xfe", "\n", strings.Repeat("x", 300)} {
		if !repo.ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
	for _, n := range []string{"", ".", "..", "/", "a/", "/a", "a/b", "\x00", "a\x00"} {
		if repo.ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
	}
}

func TestKindAndTypeNames(t *testing.T) {
	for k, want := range map[repo.Kind]string{repo.KindFile: "file", repo.KindDirTree: "dirtree", repo.KindDirMeta: "dirmeta", repo.KindCommit: "commit", repo.KindCommitMeta: "commitmeta", repo.KindTombstoneCommit: "tombstone-commit"} {
		if k.String() != want {
			t.Errorf("Kind %d String %q, want %q", k, k, want)
		}
		if got, err := repo.ParseKind(want); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", want, got, err)
		}
	}
	if _, err := repo.ParseKind("blob"); err == nil {
		t.Error("ParseKind(blob) succeeded")
	}
}

// A Kind that is none of the kinds is refused, not looked up under the
// name its String gives: a file so named does not make it stored.
func TestInvalidKindRefused(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var id repo.ID
	id[0] = 0xab
	for _, k := range []repo.Kind{0, repo.KindTombstoneCommit + 1, 99} {
		p := r.ObjectPath(k, id)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if has, err := r.HasObject(k, id); err == nil || has {
			t.Errorf("HasObject(%v) = %v, %v; want an error", k, has, err)
		} else if !strings.Contains(err.Error(), id.String()) {
			t.Errorf("HasObject(%v): %v does not name the object", k, err)
		}
		if _, err := r.ReadRaw(k, id); err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("ReadRaw(%v) = %v, want invalid kind", k, err)
		}
	}
}

func TestMetadataSetGet(t *testing.T) {
	var m repo.Metadata
	for _, k := range []string{"b", "a", "c", "a"} {
		m = m.Set(k, []byte(k+"!"))
	}
	if len(m) != 3 {
		t.Fatalf("metadata %v: want 3 keys", m)
	}
	if _, err := repo.DecodeCommitMeta(repo.EncodeCommitMeta(m)); err != nil {
		t.Errorf("Set did not keep metadata canonical: %v", err)
	}
	if v, ok := m.Get("c"); !ok || string(v) != "c!" {
		t.Errorf("Get(c) = %q, %v", v, ok)
	}
	if _, ok := m.Get("zz"); ok {
		t.Error("Get(zz) found a value")
	}
}
