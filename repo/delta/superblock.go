// Package delta builds and applies static deltas: the objects one commit
// needs beyond those of another (or of nothing), packed into a few
// compressed part files described by a small superblock, so that an update
// is fetched with a handful of requests and a fraction of the bytes.
// docs/DELTAS.md specifies the format.
package delta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/otree/otree/internal/canon"
	"github.com/otree/otree/repo"
)

// Dir is the directory of a repository that holds its deltas.
const Dir = "deltas"

// SuperblockFile is the name of a delta's superblock in its directory; the
// parts are named by their index in decimal ("0", "1", ...).
const SuperblockFile = "superblock"

// MaxSuperblock bounds the superblock a reader accepts.
const MaxSuperblock = 64 << 20

const (
	superblockTag = 'D'
	// superblockVersion is written for a delta that carries every object;
	// fallbackVersion, for one that leaves fallback objects out (the
	// format adds their list), so that readers without fallback support
	// refuse it rather than apply it.
	superblockVersion = 1
	fallbackVersion   = 2
)

// Name identifies a delta: the commit it starts from (zero for a delta
// from scratch) and the commit it yields.
type Name struct {
	From repo.ID // zero for a delta from scratch
	To   repo.ID // the commit it yields
}

// String is the delta's name as list prints it and its directory is
// called: "FROM-TO" in hex, or "TO" for a delta from scratch.
func (n Name) String() string {
	if n.From.IsZero() {
		return n.To.String()
	}
	return n.From.String() + "-" + n.To.String()
}

// Rel is the delta's directory relative to the repository root.
func (n Name) Rel() string { return Dir + "/" + n.String() }

// ParseName parses the String form of a Name.
func ParseName(s string) (Name, error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		to, from = from, ""
	} else if from == "" {
		return Name{}, fmt.Errorf("invalid delta name %q (want TO or FROM-TO, each 64 lowercase hex digits)", s)
	}
	var n Name
	var err error
	if n.To, err = parseFullID(to); err == nil && from != "" {
		n.From, err = parseFullID(from)
	}
	if err != nil || n.To.IsZero() || n.From == n.To {
		return Name{}, fmt.Errorf("invalid delta name %q (want TO or FROM-TO, each 64 lowercase hex digits)", s)
	}
	return n, nil
}

func parseFullID(s string) (repo.ID, error) {
	if len(s) != 64 || strings.ToLower(s) != s {
		return repo.ID{}, errors.New("not a full id")
	}
	return repo.ParseID(s)
}

// ObjectRef names one object a part yields.
type ObjectRef struct {
	Kind repo.Kind `json:"kind"` // file, dirtree or dirmeta
	ID   repo.ID   `json:"id"`   // the object's id
}

// Part describes one part file.
type Part struct {
	Size    uint64      // bytes of the part file (compressed)
	RawSize uint64      // bytes of its decompressed stream
	Sum     repo.ID     // BLAKE3-256 of the part file
	Objects []ObjectRef // the objects it yields, in stream order
}

// Fallback is a file object a delta leaves out, for a pull to fetch as an
// ordinary object (GenerateOptions.MinFallbackSize).
type Fallback struct {
	ID   repo.ID `json:"id"`   // the file object
	Size uint64  `json:"size"` // its content size, as its header says
}

// Superblock describes a delta: the commit it yields (whole, with its
// detached metadata), the parts holding the other new objects, and the
// fallback objects it leaves out.
type Superblock struct {
	Name       Name   // the commits it leads from and to
	Commit     []byte // the encoding of the commit Name.To
	CommitMeta []byte // the encoding of its commitmeta; nil if it has none
	Parts      []Part // part files 0, 1, ... in that order
	// Fallbacks lists, sorted by id, the file objects the delta does not
	// carry; nil for a delta that carries every object.
	Fallbacks []Fallback
}

// Encode returns the canonical encoding of s (docs/DELTAS.md). Like the
// object encoders it does not check its input.
func (s *Superblock) Encode() []byte {
	b := []byte{superblockTag, superblockVersion}
	if len(s.Fallbacks) > 0 {
		b[1] = fallbackVersion
	}
	b = append(b, s.Name.To[:]...)
	b = append(b, s.Name.From[:]...)
	b = appendBytes(b, s.Commit)
	b = appendBytes(b, s.CommitMeta)
	b = binary.AppendUvarint(b, uint64(len(s.Parts)))
	for _, p := range s.Parts {
		b = binary.AppendUvarint(b, p.Size)
		b = binary.AppendUvarint(b, p.RawSize)
		b = append(b, p.Sum[:]...)
		b = binary.AppendUvarint(b, uint64(len(p.Objects)))
		for _, o := range p.Objects {
			b = append(b, byte(o.Kind))
			b = append(b, o.ID[:]...)
		}
	}
	if len(s.Fallbacks) > 0 {
		b = binary.AppendUvarint(b, uint64(len(s.Fallbacks)))
		for _, f := range s.Fallbacks {
			b = append(b, f.ID[:]...)
			b = binary.AppendUvarint(b, f.Size)
		}
	}
	return b
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// decoder reads the primitives of docs/FORMAT.md §1 and rejects every
// non-canonical form.
// errSuperblock is wrapped by every failure to decode a superblock.
var errSuperblock = errors.New("non-canonical delta superblock")

// DecodeSuperblock decodes a superblock, rejecting anything but the
// canonical encoding of a valid one: a wrong tag or version, bad or
// non-minimal uvarints, lengths past the end, a zero or repeated to-commit,
// a commit that does not decode strictly or does not hash to the to-commit,
// a commitmeta that does not decode, an empty part, an object kind other
// than file, dirtree or dirmeta, a zero id, an object listed twice;
// in version 2, an empty, unsorted or repeated fallback list, a fallback
// of size zero or also carried by a part; trailing bytes.
func DecodeSuperblock(b []byte) (*Superblock, error) {
	if len(b) < 2 || b[0] != superblockTag {
		return nil, fmt.Errorf("not a delta superblock: does not start with %q", superblockTag)
	}
	if b[1] != superblockVersion && b[1] != fallbackVersion {
		return nil, fmt.Errorf("unsupported delta superblock version %d (want %d or %d)", b[1], superblockVersion, fallbackVersion)
	}
	d := canon.NewDecoder(b, errSuperblock)
	d.Raw(2) // tag and version, checked above
	s := &Superblock{}
	s.Name.To = repo.ID(d.ID())
	s.Name.From = repo.ID(d.ID())
	if d.Err() == nil && (s.Name.To.IsZero() || s.Name.To == s.Name.From) {
		d.Fail("to-commit is zero or equal to the from-commit")
	}
	s.Commit = d.Bytes()
	if d.Err() == nil {
		if got := repo.Sum(s.Commit); got != s.Name.To {
			d.Fail("commit hashes to %s, not %s", got, s.Name.To)
		} else if _, err := repo.DecodeCommit(s.Commit); err != nil {
			d.Fail("commit: %v", err)
		}
	}
	if cm := d.Bytes(); d.Err() == nil && len(cm) > 0 {
		if _, err := repo.DecodeCommitMeta(cm); err != nil {
			d.Fail("commitmeta: %v", err)
		}
		s.CommitMeta = cm
	}
	seen := map[ObjectRef]bool{}
	n := d.Count(1 + 1 + 32 + 1)
	s.Parts = make([]Part, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		var p Part
		p.Size = d.Uvarint()
		p.RawSize = d.Uvarint()
		p.Sum = d.ID()
		m := d.Count(33)
		if d.Err() == nil && (m == 0 || p.Size == 0) {
			d.Fail("part %d is empty", i)
		}
		p.Objects = make([]ObjectRef, 0, m)
		for j := 0; j < m && d.Err() == nil; j++ {
			k := d.Raw(1)
			o := ObjectRef{ID: d.ID()}
			if d.Err() != nil {
				break
			}
			o.Kind = repo.Kind(k[0])
			switch {
			case o.Kind != repo.KindFile && o.Kind != repo.KindDirTree && o.Kind != repo.KindDirMeta:
				d.Fail("part %d: object kind %d is not file, dirtree or dirmeta", i, k[0])
			case o.ID.IsZero():
				d.Fail("part %d: zero object id", i)
			case seen[o]:
				d.Fail("part %d: %s %s listed twice", i, o.Kind, o.ID)
			}
			seen[o] = true
			p.Objects = append(p.Objects, o)
		}
		s.Parts = append(s.Parts, p)
	}
	if b[1] == fallbackVersion {
		n := d.Count(32 + 1)
		if d.Err() == nil && n == 0 {
			d.Fail("version %d with no fallback objects", fallbackVersion)
		}
		s.Fallbacks = make([]Fallback, 0, n)
		for i := 0; i < n && d.Err() == nil; i++ {
			f := Fallback{ID: d.ID(), Size: d.Uvarint()}
			if d.Err() != nil {
				break
			}
			switch {
			case f.ID.IsZero():
				d.Fail("fallback %d: zero object id", i)
			case f.Size == 0:
				d.Fail("fallback %s: size zero", f.ID)
			case i > 0 && bytes.Compare(s.Fallbacks[i-1].ID[:], f.ID[:]) >= 0:
				d.Fail("fallbacks not sorted or duplicated at %s", f.ID)
			case seen[ObjectRef{repo.KindFile, f.ID}]:
				d.Fail("fallback %s is also in a part", f.ID)
			}
			s.Fallbacks = append(s.Fallbacks, f)
		}
	}
	if err := d.End(); err != nil {
		return nil, err
	}
	return s, nil
}

// FallbackSize sums the content sizes of the fallback objects.
func (s *Superblock) FallbackSize() uint64 {
	var n uint64
	for _, f := range s.Fallbacks {
		n += f.Size
	}
	return n
}

// Objects counts the objects the parts yield.
func (s *Superblock) Objects() int {
	n := 0
	for _, p := range s.Parts {
		n += len(p.Objects)
	}
	return n
}

// MarshalText gives the String form, so a Name is a string in JSON.
func (n Name) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText parses the String form.
func (n *Name) UnmarshalText(b []byte) error {
	v, err := ParseName(string(b))
	if err != nil {
		return err
	}
	*n = v
	return nil
}
