package repo

import (
	"encoding/binary"
	"fmt"
)

// SizesKey is the commit metadata key listing the size of every object the
// commit's tree needs (commit --generate-sizes, as OSTree's ostree.sizes),
// so that a client that has the commit alone can tell what the rest would
// cost to fetch.
const SizesKey = "ostree.sizes"

// ObjectSize is one entry of a SizesKey value.
type ObjectSize struct {
	Kind     Kind  // KindFile, KindDirTree or KindDirMeta
	ID       ID    // the object's id
	Stored   int64 // as stored in an archive repository: what a pull transfers
	Unpacked int64 // a file's content, a metadata object's bytes
}

// EncodeSizes returns the SizesKey value for sizes: for each entry, in the
// order given, the 32-byte id, uvarint stored size, uvarint unpacked size
// and a kind byte.
func EncodeSizes(sizes []ObjectSize) []byte {
	var b []byte
	for _, s := range sizes {
		b = append(b, s.ID[:]...)
		b = binary.AppendUvarint(b, uint64(s.Stored))
		b = binary.AppendUvarint(b, uint64(s.Unpacked))
		b = append(b, byte(s.Kind))
	}
	return b
}

// DecodeSizes parses a SizesKey value, refusing truncated or malformed
// entries and sizes not in their shortest encoding.
func DecodeSizes(b []byte) ([]ObjectSize, error) {
	var out []ObjectSize
	for len(b) > 0 {
		var s ObjectSize
		if len(b) < len(s.ID) {
			return nil, fmt.Errorf("%s: entry %d truncated", SizesKey, len(out))
		}
		copy(s.ID[:], b)
		b = b[len(s.ID):]
		for _, v := range []*int64{&s.Stored, &s.Unpacked} {
			n, used := binary.Uvarint(b)
			if used <= 0 || n > 1<<62 || used != len(binary.AppendUvarint(nil, n)) {
				return nil, fmt.Errorf("%s: entry %d: bad size", SizesKey, len(out))
			}
			*v, b = int64(n), b[used:]
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("%s: entry %d truncated", SizesKey, len(out))
		}
		s.Kind, b = Kind(b[0]), b[1:]
		if s.Kind != KindFile && s.Kind != KindDirTree && s.Kind != KindDirMeta {
			return nil, fmt.Errorf("%s: entry %d: kind %d is not a file, dirtree or dirmeta", SizesKey, len(out), s.Kind)
		}
		out = append(out, s)
	}
	return out, nil
}
