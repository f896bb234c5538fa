package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/otree/otree/internal/canon"
	"github.com/otree/otree/internal/xattr"
	"golang.org/x/sys/unix"
)

// Kind is the kind of an object. Its String form is the file extension used
// in the object store.
type Kind uint8

// The object kinds.
const (
	KindFile Kind = iota + 1
	KindDirTree
	KindDirMeta
	KindCommit
	KindCommitMeta
	// KindTombstoneCommit marks a commit deleted on purpose (OSTree's
	// tombstone commit). Like commitmeta it is stored under the commit's
	// id, not the hash of its bytes.
	KindTombstoneCommit
)

var kindNames = [...]string{"", "file", "dirtree", "dirmeta", "commit", "commitmeta", "tombstone-commit"}

// kindTags are the first byte of each kind's encoding.
var kindTags = [...]byte{0, 'f', 't', 'm', 'c', 'd', 'x'}

// ContentAddressed reports whether an object of kind k is named by the
// hash of its bytes. Commitmeta and tombstones are named by their commit.
func (k Kind) ContentAddressed() bool {
	return k != KindCommitMeta && k != KindTombstoneCommit
}

// valid reports whether k is one of the kinds above.
func (k Kind) valid() bool { return k != 0 && int(k) < len(kindNames) }

// formatVersion is the second byte of every encoding.
const formatVersion = 1

// String returns the kind's name, as in object file names ("file", "commit").
func (k Kind) String() string {
	if k.valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind parses the String form of a Kind.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if i > 0 && n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown object kind %q", s)
}

// FileType is the type of a file object.
type FileType uint8

// The file types a file object can hold.
const (
	TypeRegular FileType = iota + 1
	TypeSymlink
	TypeCharDevice
	TypeBlockDevice
	TypeFIFO
)

var fileTypeNames = [...]string{"", "regular", "symlink", "chardev", "blockdev", "fifo"}

// String returns the type's name ("regular", "symlink", ...).
func (t FileType) String() string {
	if int(t) < len(fileTypeNames) && t != 0 {
		return fileTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// fileTypeBits are the S_IFMT bits of each type, as stat(2) gives them.
var fileTypeBits = [...]uint32{0, unix.S_IFREG, unix.S_IFLNK, unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO}

// UnixType returns the S_IFMT bits of a file of type t (0 for none).
func (t FileType) UnixType() uint32 {
	if int(t) < len(fileTypeBits) {
		return fileTypeBits[t]
	}
	return 0
}

// Xattr is one extended attribute, with two fields: Name, its full name
// with the namespace ("user.comment", "security.selinux"), non-empty and
// without NUL; and Value, its value, any bytes, possibly none. It is the
// type internal/xattr reads, so attributes go from disk into headers
// without conversion.
type Xattr = xattr.Attr

// FileHeader is everything about a file object except its content.
type FileHeader struct {
	Type   FileType // regular file, symlink, char or block device, or FIFO
	Mode   uint32   // permission bits only (07777)
	UID    uint32   // owner's user id
	GID    uint32   // owner's group id
	Rdev   uint64   // devices only
	Target string   // symlinks only
	Xattrs []Xattr  // sorted by name, each name once
	Size   uint64   // content length; regular files only
}

// FileMode returns the header's type and permissions as an fs.FileMode.
func (h *FileHeader) FileMode() fs.FileMode {
	m := fs.FileMode(h.Mode & 0777)
	if h.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if h.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if h.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch h.Type {
	case TypeSymlink:
		m |= fs.ModeSymlink
	case TypeCharDevice:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlockDevice:
		m |= fs.ModeDevice
	case TypeFIFO:
		m |= fs.ModeNamedPipe
	}
	return m
}

// DirMeta is the metadata of a directory.
type DirMeta struct {
	Mode   uint32  // permission bits only
	UID    uint32  // owner's user id
	GID    uint32  // owner's group id
	Xattrs []Xattr // sorted by name, each name once
}

// FileEntry is a non-directory entry of a DirTree.
type FileEntry struct {
	Name string // one path component (docs/FORMAT.md §2.3)
	ID   ID     // a file object
}

// DirEntry is a subdirectory entry of a DirTree.
type DirEntry struct {
	Name   string // one path component (docs/FORMAT.md §2.3)
	TreeID ID     // a dirtree object
	MetaID ID     // a dirmeta object
}

// DirTree lists a directory: its files and subdirectories, each sorted by
// name (bytewise), with no name in both lists.
type DirTree struct {
	Files []FileEntry // every entry but subdirectories
	Dirs  []DirEntry  // subdirectories
}

// Metadata is a sorted list of key/value pairs carried by commits.
type Metadata []MetaEntry

// MetaEntry is one metadata pair.
type MetaEntry struct {
	Key   string // non-empty
	Value []byte // any bytes
}

// Get returns the value for key.
func (m Metadata) Get(key string) ([]byte, bool) {
	i := sort.Search(len(m), func(i int) bool { return m[i].Key >= key })
	if i < len(m) && m[i].Key == key {
		return m[i].Value, true
	}
	return nil, false
}

// Set returns m with key set to value, keeping it sorted.
func (m Metadata) Set(key string, value []byte) Metadata {
	i := sort.Search(len(m), func(i int) bool { return m[i].Key >= key })
	if i < len(m) && m[i].Key == key {
		m[i].Value = value
		return m
	}
	m = append(m, MetaEntry{})
	copy(m[i+1:], m[i:])
	m[i] = MetaEntry{key, value}
	return m
}

// Validate checks keys are non-empty, sorted and unique, as the encoding
// requires (Set keeps them so).
func (m Metadata) Validate() error {
	for i, kv := range m {
		if kv.Key == "" {
			return fmt.Errorf("metadata has an empty key")
		}
		if i > 0 && m[i-1].Key >= kv.Key {
			return fmt.Errorf("metadata keys not sorted or duplicated at %q", kv.Key)
		}
	}
	return nil
}

// Commit is one version of a tree.
type Commit struct {
	Parent    ID       // zero for a root commit
	Timestamp uint64   // seconds since the Unix epoch (UTC)
	Subject   string   // the message's first line; any bytes, conventionally UTF-8
	Body      string   // the rest of the message; may be empty
	RootTree  ID       // the dirtree of the root directory
	RootMeta  ID       // the dirmeta of the root directory
	Metadata  Metadata // key/value pairs covered by the commit's id
}

// --- encoding -------------------------------------------------------------

type encoder struct{ b []byte }

func (e *encoder) uv(v uint64)    { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) str(s string)   { e.uv(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte) { e.uv(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) id(id ID)       { e.b = append(e.b, id[:]...) }
func (e *encoder) head(k Kind)    { e.b = append(e.b, kindTags[k], formatVersion) }
func (e *encoder) xattrs(x []Xattr) {
	e.uv(uint64(len(x)))
	for _, a := range x {
		e.str(a.Name)
		e.bytes(a.Value)
	}
}

// AppendFileHeader appends the canonical encoding of h to b. The header must
// be valid (see Validate); xattrs must be sorted.
func AppendFileHeader(b []byte, h *FileHeader) []byte {
	e := encoder{b}
	e.head(KindFile)
	e.b = append(e.b, byte(h.Type))
	e.uv(uint64(h.Mode))
	e.uv(uint64(h.UID))
	e.uv(uint64(h.GID))
	e.uv(h.Rdev)
	e.str(h.Target)
	e.xattrs(h.Xattrs)
	e.uv(h.Size)
	return e.b
}

// Encode returns the canonical encoding of m.
func (m *DirMeta) Encode() []byte {
	e := encoder{make([]byte, 0, 16)}
	e.head(KindDirMeta)
	e.uv(uint64(m.Mode))
	e.uv(uint64(m.UID))
	e.uv(uint64(m.GID))
	e.xattrs(m.Xattrs)
	return e.b
}

// Encode returns the canonical encoding of t. Entries must be sorted.
func (t *DirTree) Encode() []byte {
	n := 4
	for _, f := range t.Files {
		n += len(f.Name) + 34
	}
	for _, d := range t.Dirs {
		n += len(d.Name) + 66
	}
	e := encoder{make([]byte, 0, n)}
	e.head(KindDirTree)
	e.uv(uint64(len(t.Files)))
	for _, f := range t.Files {
		e.str(f.Name)
		e.id(f.ID)
	}
	e.uv(uint64(len(t.Dirs)))
	for _, d := range t.Dirs {
		e.str(d.Name)
		e.id(d.TreeID)
		e.id(d.MetaID)
	}
	return e.b
}

func (e *encoder) meta(m Metadata) {
	e.uv(uint64(len(m)))
	for _, kv := range m {
		e.str(kv.Key)
		e.bytes(kv.Value)
	}
}

// Encode returns the canonical encoding of c.
func (c *Commit) Encode() []byte {
	e := encoder{make([]byte, 0, 128)}
	e.head(KindCommit)
	e.id(c.Parent)
	e.b = binary.BigEndian.AppendUint64(e.b, c.Timestamp)
	e.str(c.Subject)
	e.str(c.Body)
	e.id(c.RootTree)
	e.id(c.RootMeta)
	e.meta(c.Metadata)
	return e.b
}

// EncodeCommitMeta returns the canonical encoding of detached commit metadata.
func EncodeCommitMeta(m Metadata) []byte {
	e := encoder{nil}
	e.head(KindCommitMeta)
	e.meta(m)
	return e.b
}

// EncodeTombstone returns the encoding of the tombstone of commit.
func EncodeTombstone(commit ID) []byte {
	e := encoder{make([]byte, 0, 34)}
	e.head(KindTombstoneCommit)
	e.id(commit)
	return e.b
}

// --- decoding -------------------------------------------------------------

// errDecode is wrapped by every decoding failure.
var errDecode = errors.New("non-canonical encoding")

// decoder adds the compound values of object encodings to canon's
// primitives.
type decoder struct{ *canon.Decoder }

func newDecoder(b []byte) decoder { return decoder{canon.NewDecoder(b, errDecode)} }

func (d decoder) u32(what string) uint32 {
	v := d.Uvarint()
	if v > 0xffffffff {
		d.Fail("%s %d out of range", what, v)
	}
	return uint32(v)
}

func (d decoder) str() string   { return string(d.Bytes()) }
func (d decoder) bytes() []byte { return bytes.Clone(d.Bytes()) }
func (d decoder) id() ID        { return ID(d.ID()) }

func (d decoder) head(k Kind) {
	p := d.Raw(2)
	if d.Err() == nil && (p[0] != kindTags[k] || p[1] != formatVersion) {
		d.Fail("not a version %d %s encoding", formatVersion, k)
	}
}

func (d decoder) xattrs() []Xattr {
	n := d.Count(2)
	if n == 0 {
		return nil
	}
	x := make([]Xattr, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		a := Xattr{Name: d.str(), Value: d.bytes()}
		if d.Err() != nil {
			break
		}
		if a.Name == "" || strings.IndexByte(a.Name, 0) >= 0 {
			d.Fail("invalid xattr name %q", a.Name)
		}
		if i > 0 && x[i-1].Name >= a.Name {
			d.Fail("xattrs not sorted or duplicated at %q", a.Name)
		}
		x = append(x, a)
	}
	return x
}

func (d decoder) meta() Metadata {
	n := d.Count(2)
	if n == 0 {
		return nil
	}
	m := make(Metadata, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		kv := MetaEntry{Key: d.str(), Value: d.bytes()}
		if d.Err() != nil {
			break
		}
		if kv.Key == "" {
			d.Fail("empty metadata key")
		}
		if i > 0 && m[i-1].Key >= kv.Key {
			d.Fail("metadata keys not sorted or duplicated at %q", kv.Key)
		}
		m = append(m, kv)
	}
	return m
}

// ValidName reports whether name may appear in a dirtree: not empty, not "."
// or "..", and without '/' or NUL.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && strings.IndexByte(name, '/') < 0 && strings.IndexByte(name, 0) < 0
}

// DecodeFileHeader decodes a file header from the start of b and returns it
// and the number of bytes it used. Trailing bytes are allowed here: they are
// the content (archive mode) and are checked by the caller.
func DecodeFileHeader(b []byte) (*FileHeader, int, error) {
	h, n, _, err := decodeFileHeader(b, "")
	return h, n, err
}

// decodeFileHeader is DecodeFileHeader, with target taken for a symlink
// whose encoding holds none (a bare-user object's, UserMeta); it reports
// whether it was.
func decodeFileHeader(b []byte, target string) (*FileHeader, int, bool, error) {
	d := newDecoder(b)
	d.head(KindFile)
	h := &FileHeader{}
	if t := d.Raw(1); d.Err() == nil {
		h.Type = FileType(t[0])
	}
	h.Mode = d.u32("mode")
	h.UID = d.u32("uid")
	h.GID = d.u32("gid")
	h.Rdev = d.Uvarint()
	h.Target = d.str()
	noTarget := h.Type == TypeSymlink && h.Target == "" && target != ""
	if noTarget {
		h.Target = target
	}
	h.Xattrs = d.xattrs()
	h.Size = d.Uvarint()
	if d.Err() == nil {
		if err := h.Validate(); err != nil {
			d.Fail("%v", err)
		}
	}
	return h, d.Offset(), noTarget, d.Err()
}

// Validate checks the header's fields agree with each other.
func (h *FileHeader) Validate() error {
	if h.Type < TypeRegular || h.Type > TypeFIFO {
		return fmt.Errorf("unknown file type %d", h.Type)
	}
	if h.Mode&^0o7777 != 0 {
		return fmt.Errorf("mode %o has bits beyond 07777", h.Mode)
	}
	if h.Type != TypeSymlink && h.Target != "" {
		return fmt.Errorf("%s has a symlink target", h.Type)
	}
	if h.Type == TypeSymlink && (h.Target == "" || strings.IndexByte(h.Target, 0) >= 0) {
		return fmt.Errorf("invalid symlink target %q", h.Target)
	}
	if h.Type == TypeSymlink && h.Mode != 0o777 {
		return fmt.Errorf("symlink mode %o is not 0777", h.Mode)
	}
	if h.Type != TypeRegular && h.Size != 0 {
		return fmt.Errorf("%s has content size %d", h.Type, h.Size)
	}
	if h.Type != TypeCharDevice && h.Type != TypeBlockDevice && h.Rdev != 0 {
		return fmt.Errorf("%s has a device number", h.Type)
	}
	for i, a := range h.Xattrs {
		if a.Name == "" || strings.IndexByte(a.Name, 0) >= 0 || (i > 0 && h.Xattrs[i-1].Name >= a.Name) {
			return fmt.Errorf("xattrs not sorted, duplicated or badly named at %q", a.Name)
		}
	}
	return nil
}

// DecodeDirMeta strictly decodes a dirmeta object.
func DecodeDirMeta(b []byte) (*DirMeta, error) {
	d := newDecoder(b)
	d.head(KindDirMeta)
	m := &DirMeta{Mode: d.u32("mode"), UID: d.u32("uid"), GID: d.u32("gid")}
	m.Xattrs = d.xattrs()
	if d.Err() == nil && m.Mode&^0o7777 != 0 {
		d.Fail("mode %o has bits beyond 07777", m.Mode)
	}
	return m, d.End()
}

// DecodeDirTree strictly decodes a dirtree object.
func DecodeDirTree(b []byte) (*DirTree, error) {
	d := newDecoder(b)
	d.head(KindDirTree)
	t := &DirTree{}
	if n := d.Count(34); n > 0 {
		t.Files = make([]FileEntry, 0, n)
		for i := 0; i < n && d.Err() == nil; i++ {
			f := FileEntry{Name: d.str(), ID: d.id()}
			d.checkName(f.Name, i, func(j int) string { return t.Files[j].Name })
			t.Files = append(t.Files, f)
		}
	}
	if n := d.Count(66); n > 0 {
		t.Dirs = make([]DirEntry, 0, n)
		for i := 0; i < n && d.Err() == nil; i++ {
			e := DirEntry{Name: d.str(), TreeID: d.id(), MetaID: d.id()}
			d.checkName(e.Name, i, func(j int) string { return t.Dirs[j].Name })
			if d.Err() == nil && t.hasFile(e.Name) {
				d.Fail("name %q is both a file and a directory", e.Name)
			}
			t.Dirs = append(t.Dirs, e)
		}
	}
	return t, d.End()
}

func (d decoder) checkName(name string, i int, prev func(int) string) {
	if d.Err() != nil {
		return
	}
	if !ValidName(name) {
		d.Fail("invalid name %q", name)
	} else if i > 0 && prev(i-1) >= name {
		d.Fail("names not sorted or duplicated at %q", name)
	}
}

func (t *DirTree) hasFile(name string) bool {
	i := sort.Search(len(t.Files), func(i int) bool { return t.Files[i].Name >= name })
	return i < len(t.Files) && t.Files[i].Name == name
}

// File returns the file entry called name.
func (t *DirTree) File(name string) (FileEntry, bool) {
	i := sort.Search(len(t.Files), func(i int) bool { return t.Files[i].Name >= name })
	if i < len(t.Files) && t.Files[i].Name == name {
		return t.Files[i], true
	}
	return FileEntry{}, false
}

// Dir returns the directory entry called name.
func (t *DirTree) Dir(name string) (DirEntry, bool) {
	i := sort.Search(len(t.Dirs), func(i int) bool { return t.Dirs[i].Name >= name })
	if i < len(t.Dirs) && t.Dirs[i].Name == name {
		return t.Dirs[i], true
	}
	return DirEntry{}, false
}

// DecodeCommit strictly decodes a commit object.
func DecodeCommit(b []byte) (*Commit, error) {
	d := newDecoder(b)
	d.head(KindCommit)
	c := &Commit{Parent: d.id()}
	if p := d.Raw(8); d.Err() == nil {
		c.Timestamp = binary.BigEndian.Uint64(p)
	}
	c.Subject = d.str()
	c.Body = d.str()
	c.RootTree = d.id()
	c.RootMeta = d.id()
	c.Metadata = d.meta()
	return c, d.End()
}

// DecodeCommitMeta strictly decodes detached commit metadata.
func DecodeCommitMeta(b []byte) (Metadata, error) {
	d := newDecoder(b)
	d.head(KindCommitMeta)
	m := d.meta()
	return m, d.End()
}

// DecodeTombstone strictly decodes a tombstone and returns the commit it
// names, which is never the zero id. A stored tombstone must name the
// commit it is stored under; callers check that.
func DecodeTombstone(b []byte) (ID, error) {
	d := newDecoder(b)
	d.head(KindTombstoneCommit)
	id := d.id()
	if d.Err() == nil && id.IsZero() {
		d.Fail("tombstone of the zero id")
	}
	return id, d.End()
}

// SortXattrs sorts x by name in place.
func SortXattrs(x []Xattr) {
	sort.Slice(x, func(i, j int) bool { return x[i].Name < x[j].Name })
}

// maxUserMetaTarget is the longest symlink target a bare-user object's
// UserMetaXattr repeats: all of an inode's xattrs must fit in one block
// on ext4, and a target may be 4095 bytes.
const maxUserMetaTarget = 1024

// AppendUserMeta appends the value of UserMetaXattr for a bare-user object
// of header h: the canonical header, but for a symlink whose target is
// longer than 1 KiB, which goes without its target (an empty one). The
// object's content holds the target either way (docs/FORMAT.md §6.2).
func AppendUserMeta(b []byte, h *FileHeader) []byte {
	if h.Type == TypeSymlink && len(h.Target) > maxUserMetaTarget {
		short := *h
		short.Target = ""
		return AppendFileHeader(b, &short)
	}
	return AppendFileHeader(b, h)
}

// DecodeUserMeta decodes the value of a bare-user object's UserMetaXattr,
// which must hold nothing more. A symlink's header without a target takes
// it from content, which reads the object's content (the target) and is
// called only then.
func DecodeUserMeta(raw []byte, content func() (string, error)) (*FileHeader, error) {
	// The placeholder stands for an empty target until it is read, so
	// that the header validates meanwhile. A real target of the same byte
	// stays: the content must then repeat it, not replace it.
	const placeholder = "\x01"
	h, n, noTarget, err := decodeFileHeader(raw, placeholder)
	if err == nil && n != len(raw) {
		err = fmt.Errorf("%d trailing bytes in %s", len(raw)-n, UserMetaXattr)
	}
	if err != nil || !noTarget {
		return h, err
	}
	t, err := content()
	if err != nil {
		return nil, fmt.Errorf("reading the symlink target: %w", err)
	}
	h.Target = t
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h, nil
}
