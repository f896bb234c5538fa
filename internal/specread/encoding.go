// Package specread is a reader of otree repositories written from
// docs/FORMAT.md alone, kept so that the document and the code cannot drift
// apart: its tests commit trees with otree and check that this reader, which
// imports no otree package, decodes, verifies and lists them as the document
// says. The section numbers in comments are FORMAT.md's.
package specread

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"lukechampine.com/blake3"
)

// ID is an object id: the BLAKE3-256 digest of an object's canonical bytes
// (§4). The zero ID means "none".
type ID [32]byte

// String returns the id as 64 lowercase hex characters.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses 64 hex characters, either case.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("id %q: not 64 hex characters", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("id %q: %v", s, err)
	}
	return id, nil
}

// Sum is the id of canonical bytes.
func Sum(b []byte) ID { return blake3.Sum256(b) }

// File types (§2.1).
const (
	TypeRegular = 1
	TypeSymlink = 2
	TypeChar    = 3
	TypeBlock   = 4
	TypeFIFO    = 5
)

// Xattr is one extended attribute; lists of them are sorted by Name.
type Xattr struct {
	Name  string
	Value []byte
}

// KV is one metadata entry of a commit or commitmeta; lists are sorted by Key.
type KV struct {
	Key   string
	Value []byte
}

// FileHeader is the header of a file object (§2.1).
type FileHeader struct {
	Type     uint8
	Mode     uint32 // permission bits only, <= 07777
	UID, GID uint32
	Rdev     uint64
	Target   string
	Xattrs   []Xattr
	Size     uint64
}

// DirMeta is a directory's metadata (§2.2).
type DirMeta struct {
	Mode     uint32
	UID, GID uint32
	Xattrs   []Xattr
}

// DirTree lists a directory's entries (§2.3).
type DirTree struct {
	Files []FileEntry
	Dirs  []DirEntry
}

// FileEntry is a non-directory of a DirTree.
type FileEntry struct {
	Name string
	ID   ID
}

// DirEntry is a subdirectory of a DirTree.
type DirEntry struct {
	Name           string
	TreeID, MetaID ID
}

// Commit is a commit object (§2.4).
type Commit struct {
	Parent    ID
	Timestamp uint64
	Subject   string
	Body      string
	RootTree  ID
	RootMeta  ID
	Metadata  []KV
}

// decoder reads the primitives of §1. The first error sticks: later reads
// return zero values, so decoding functions check it once at the end.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("non-canonical encoding at byte %d: %s", d.off, fmt.Sprintf(format, a...))
	}
}

func (d *decoder) left() int { return len(d.b) - d.off }

func (d *decoder) u8() byte {
	if d.err != nil || d.left() < 1 {
		d.fail("truncated")
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) uvarint() uint64 {
	var v uint64
	for i := 0; i < 10; i++ {
		c := d.u8()
		if d.err != nil {
			return 0
		}
		if i == 9 && c > 1 {
			d.fail("uvarint overflows 64 bits")
			return 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				d.fail("uvarint not minimal")
			}
			return v
		}
	}
	d.fail("uvarint longer than 10 bytes")
	return 0
}

func (d *decoder) u32v(what string) uint32 {
	v := d.uvarint()
	if v > 0xffffffff {
		d.fail("%s above 0xffffffff", what)
	}
	return uint32(v)
}

func (d *decoder) take(n uint64) []byte {
	if d.err == nil && n > uint64(d.left()) {
		d.fail("length %d runs past the end", n)
	}
	if d.err != nil {
		return nil
	}
	d.off += int(n)
	return d.b[d.off-int(n) : d.off]
}

func (d *decoder) bytes() []byte { return d.take(d.uvarint()) }

func (d *decoder) id() (id ID) {
	copy(id[:], d.take(32))
	return id
}

// count reads a list length, refusing one that even entries of minimum size
// minEntry could not fit in the remaining bytes.
func (d *decoder) count(minEntry int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(d.left()/minEntry) {
		d.fail("count %d cannot fit", n)
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *decoder) head(tag byte) {
	if t := d.u8(); d.err == nil && t != tag {
		d.off--
		d.fail("kind tag %#x, want %#x", t, tag)
	}
	if v := d.u8(); d.err == nil && v != 1 {
		d.off--
		d.fail("version %d", v)
	}
}

func (d *decoder) end() error {
	if d.err == nil && d.left() != 0 {
		d.fail("%d trailing bytes", d.left())
	}
	return d.err
}

func (d *decoder) mode() uint32 {
	m := d.u32v("mode")
	if m&^0o7777 != 0 {
		d.fail("mode %#o has bits above 07777", m)
	}
	return m
}

// pairs reads xattrs or metadata: names strictly increasing, non-empty, and
// for xattrs free of NUL.
func (d *decoder) pairs(xattr bool) []KV {
	n := d.count(2)
	var kv []KV
	for i := 0; i < n && d.err == nil; i++ {
		k, v := string(d.bytes()), d.bytes()
		switch {
		case d.err != nil:
		case k == "":
			d.fail("empty name")
		case xattr && strings.IndexByte(k, 0) >= 0:
			d.fail("xattr name %q contains NUL", k)
		case i > 0 && k <= kv[i-1].Key:
			d.fail("name %q not after %q", k, kv[i-1].Key)
		}
		kv = append(kv, KV{k, bytes.Clone(v)})
	}
	return kv
}

func (d *decoder) xattrs() []Xattr {
	var xs []Xattr
	for _, kv := range d.pairs(true) {
		xs = append(xs, Xattr{kv.Key, kv.Value})
	}
	return xs
}

// DecodeFileHeader decodes a header at the start of b and returns how many
// bytes it used. emptyTarget accepts a symlink without target, which only
// bare-user's user.otreemeta may hold (§6.2).
func DecodeFileHeader(b []byte, emptyTarget bool) (*FileHeader, int, error) {
	d := &decoder{b: b}
	d.head('f')
	h := &FileHeader{Type: d.u8()}
	h.Mode = d.mode()
	h.UID = d.u32v("uid")
	h.GID = d.u32v("gid")
	h.Rdev = d.uvarint()
	h.Target = string(d.bytes())
	h.Xattrs = d.xattrs()
	h.Size = d.uvarint()
	if d.err != nil {
		return nil, 0, d.err
	}
	if err := h.check(emptyTarget); err != nil {
		return nil, 0, fmt.Errorf("non-canonical encoding at byte %d: %v", d.off, err)
	}
	return h, d.off, nil
}

// check applies §2.1's field consistency rules.
func (h *FileHeader) check(emptyTarget bool) error {
	switch {
	case h.Type < TypeRegular || h.Type > TypeFIFO:
		return fmt.Errorf("file type %d", h.Type)
	case h.Type == TypeSymlink && h.Mode != 0o777:
		return fmt.Errorf("symlink mode %#o", h.Mode)
	case h.Type == TypeSymlink && h.Target == "" && !emptyTarget:
		return fmt.Errorf("symlink without target")
	case strings.IndexByte(h.Target, 0) >= 0:
		return fmt.Errorf("target contains NUL")
	case h.Type != TypeSymlink && h.Target != "":
		return fmt.Errorf("target on a non-symlink")
	case h.Type != TypeRegular && h.Size != 0:
		return fmt.Errorf("size on a non-regular file")
	case h.Type != TypeChar && h.Type != TypeBlock && h.Rdev != 0:
		return fmt.Errorf("rdev on a non-device")
	}
	return nil
}

// Encode returns the header's canonical encoding, which its id hashes (§4).
func (h *FileHeader) Encode() []byte {
	b := []byte{'f', 1, h.Type}
	b = binary.AppendUvarint(b, uint64(h.Mode))
	b = binary.AppendUvarint(b, uint64(h.UID))
	b = binary.AppendUvarint(b, uint64(h.GID))
	b = binary.AppendUvarint(b, h.Rdev)
	b = appendBytes(b, h.Target)
	b = binary.AppendUvarint(b, uint64(len(h.Xattrs)))
	for _, x := range h.Xattrs {
		b = appendBytes(b, x.Name)
		b = appendBytes(b, string(x.Value))
	}
	return binary.AppendUvarint(b, h.Size)
}

func appendBytes(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// DecodeDirMeta decodes a dirmeta object.
func DecodeDirMeta(b []byte) (*DirMeta, error) {
	d := &decoder{b: b}
	d.head('m')
	m := &DirMeta{Mode: d.mode(), UID: d.u32v("uid"), GID: d.u32v("gid"), Xattrs: d.xattrs()}
	return m, d.end()
}

func validName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00")
}

// DecodeDirTree decodes a dirtree object.
func DecodeDirTree(b []byte) (*DirTree, error) {
	d := &decoder{b: b}
	d.head('t')
	t := &DirTree{}
	files := map[string]bool{}
	// name reads an entry name that must sort after prev.
	name := func(prev *string) string {
		n := string(d.bytes())
		switch {
		case d.err != nil:
		case !validName(n):
			d.fail("invalid name %q", n)
		case *prev != "" && n <= *prev:
			d.fail("name %q not after %q", n, *prev)
		case files[n]:
			d.fail("%q is both a file and a dir", n)
		}
		*prev = n
		return n
	}
	var prev string
	for i, n := 0, d.count(34); i < n && d.err == nil; i++ {
		e := FileEntry{Name: name(&prev), ID: d.id()}
		t.Files = append(t.Files, e)
		files[e.Name] = true
	}
	prev = ""
	for i, n := 0, d.count(66); i < n && d.err == nil; i++ {
		e := DirEntry{Name: name(&prev)}
		e.TreeID, e.MetaID = d.id(), d.id()
		t.Dirs = append(t.Dirs, e)
	}
	return t, d.end()
}

// DecodeCommit decodes a commit object.
func DecodeCommit(b []byte) (*Commit, error) {
	d := &decoder{b: b}
	d.head('c')
	c := &Commit{Parent: d.id()}
	if ts := d.take(8); ts != nil {
		c.Timestamp = binary.BigEndian.Uint64(ts)
	}
	c.Subject = string(d.bytes())
	c.Body = string(d.bytes())
	c.RootTree, c.RootMeta = d.id(), d.id()
	c.Metadata = d.pairs(false)
	return c, d.end()
}

// DecodeCommitMeta decodes detached commit metadata (§2.5).
func DecodeCommitMeta(b []byte) ([]KV, error) {
	d := &decoder{b: b}
	d.head('d')
	kv := d.pairs(false)
	return kv, d.end()
}

// DecodeTombstone decodes a tombstone and returns the commit it marks (§2.6).
func DecodeTombstone(b []byte) (ID, error) {
	d := &decoder{b: b}
	d.head('x')
	id := d.id()
	if d.err == nil && id == (ID{}) {
		d.fail("tombstone of the zero id")
	}
	return id, d.end()
}
