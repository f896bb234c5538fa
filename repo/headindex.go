package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"sort"

	"github.com/otree/otree/internal/cachefile"
)

// The file-header index (FORMAT.md §14), tmp/cache/file-headers, gives the
// mode and size of regular file objects, so that a hardlink checkout of a
// bare-user repository need not read each object's header xattr (a quarter
// of its time), nor a checkout through an archive repository's
// uncompressed-object cache open each object; and a digest of their whole
// header, so that a commit can tell a hardlink of a bare object that was
// changed through the link. An id hashes its header, so an entry can never
// go stale; a damaged file fails its checksum and is ignored, as is one
// another user wrote.
const (
	headIndexName  = "file-headers"
	headIndexMagic = "otree-fileheads2"
	headRecSize    = 64 // [32]id, u64 size, u32 mode, u32 zero, [16]digest
)

// HeaderDigest is the first 16 bytes of the BLAKE3 of a file header's
// canonical encoding: it stands for the owner and xattrs the index does
// not hold.
type HeaderDigest [16]byte

// DigestHeader returns the digest of h.
func DigestHeader(h *FileHeader) HeaderDigest {
	sum := Sum(AppendFileHeader(nil, h))
	return HeaderDigest(sum[:16])
}

// IndexedHeader is one entry of the file-header index: a regular file
// object, the mode and size its header records, and the header's digest.
type IndexedHeader struct {
	ID     ID           // the regular file object
	Mode   uint32       // permission bits, as in FileHeader.Mode
	Size   uint64       // content length in bytes, as in FileHeader.Size
	Digest HeaderDigest // DigestHeader of the object's header
}

// IndexedHeaderOf returns the entry of regular file object id, whose
// header is h.
func IndexedHeaderOf(id ID, h *FileHeader) IndexedHeader {
	return IndexedHeader{ID: id, Mode: h.Mode, Size: h.Size, Digest: DigestHeader(h)}
}

// HeaderIndex is a read-only view of the file-header index. The zero value
// (and nil) is an empty index.
type HeaderIndex struct {
	f    *cachefile.File // the file as read, or nil
	recs []byte          // its records
}

// LoadHeaderIndex maps the repository's file-header index. A missing,
// foreign or damaged index gives an empty one: it is only an optimisation.
// Close releases it.
func (r *Repo) LoadHeaderIndex() *HeaderIndex {
	f, err := cachefile.Map(filepath.Join(r.CacheDir(), headIndexName), headIndexMagic)
	if err != nil {
		return &HeaderIndex{}
	}
	if !validHeaderRecords(f.Body) {
		f.Close()
		return &HeaderIndex{}
	}
	return &HeaderIndex{f: f, recs: f.Body}
}

// validHeaderRecords checks an index's records: whole, sorted, unique,
// modes of permission bits only, reserved field zero.
func validHeaderRecords(recs []byte) bool {
	if len(recs)%headRecSize != 0 {
		return false
	}
	for i := 0; i < len(recs); i += headRecSize {
		r := recs[i : i+headRecSize]
		if binary.LittleEndian.Uint32(r[40:]) > 0o7777 || binary.LittleEndian.Uint32(r[44:]) != 0 {
			return false
		}
		if i > 0 && bytes.Compare(recs[i-headRecSize:i-headRecSize+32], r[:32]) >= 0 {
			return false // unsorted or duplicate
		}
	}
	return true
}

// Len returns the number of entries.
func (x *HeaderIndex) Len() int {
	if x == nil {
		return 0
	}
	return len(x.recs) / headRecSize
}

// Lookup returns the entry of the regular file object id, if the index has
// it.
func (x *HeaderIndex) Lookup(id ID) (IndexedHeader, bool) {
	if x == nil {
		return IndexedHeader{}, false
	}
	i := searchRecs(x.recs, id)
	if i == len(x.recs) || !bytes.Equal(x.recs[i:i+32], id[:]) {
		return IndexedHeader{}, false
	}
	r := x.recs[i : i+headRecSize]
	return IndexedHeader{ID: id, Size: binary.LittleEndian.Uint64(r[32:]), Mode: binary.LittleEndian.Uint32(r[40:]),
		Digest: HeaderDigest(r[48:64])}, true
}

// searchRecs returns the offset of the first record whose id is not below
// id (len(recs) if none).
func searchRecs(recs []byte, id ID) int {
	return headRecSize * sort.Search(len(recs)/headRecSize, func(m int) bool {
		return bytes.Compare(recs[m*headRecSize:m*headRecSize+32], id[:]) >= 0
	})
}

// Close releases the index's mapping.
func (x *HeaderIndex) Close() {
	if x != nil {
		x.f.Close()
		x.f, x.recs = nil, nil
	}
}

// AddToHeaderIndex merges entries into the repository's file-header index.
// Entries the index already has are skipped, and nothing is written when
// all are there. Writers do not lock: of two writing at once, the entries
// of one may be lost, which costs only speed.
func (r *Repo) AddToHeaderIndex(add []IndexedHeader) error {
	if len(add) == 0 {
		return nil
	}
	if err := r.checkOpen(); err != nil {
		return err
	}
	if r.readOnly != nil {
		return fmt.Errorf("file-header index: %w", r.errReadOnly())
	}
	add = slices.Clone(add)
	slices.SortFunc(add, func(a, b IndexedHeader) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	add = slices.CompactFunc(add, func(a, b IndexedHeader) bool { return a.ID == b.ID })
	old := r.LoadHeaderIndex()
	defer old.Close()
	out := make([]byte, 0, len(headIndexMagic)+len(old.recs)+len(add)*headRecSize+4)
	out = append(out, headIndexMagic...)
	recs, added := old.recs, 0
	for _, h := range add {
		if h.Mode > 0o7777 {
			return fmt.Errorf("file-header index: object %s: mode %o is not permission bits", h.ID, h.Mode)
		}
		// Old records before h, then h unless it is there already.
		j := searchRecs(recs, h.ID)
		out = append(out, recs[:j]...)
		recs = recs[j:]
		if len(recs) > 0 && bytes.Equal(recs[:32], h.ID[:]) {
			continue
		}
		out = append(out, h.ID[:]...)
		out = binary.LittleEndian.AppendUint64(out, h.Size)
		out = binary.LittleEndian.AppendUint32(out, h.Mode)
		out = binary.LittleEndian.AppendUint32(out, 0)
		out = append(out, h.Digest[:]...)
		added++
	}
	if added == 0 {
		return nil
	}
	out = append(out, recs...)
	if err := cachefile.Write(filepath.Join(r.CacheDir(), headIndexName), out); err != nil {
		return fmt.Errorf("saving file-header index: %w", err)
	}
	return nil
}
