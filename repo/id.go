package repo

import (
	"encoding/hex"
	"fmt"

	"github.com/otree/otree/internal/hash"
)

// ID names an object: the BLAKE3-256 digest of its canonical encoding. The
// zero ID means "none" (for example a commit without a parent).
type ID [32]byte

// ParseID parses a full 64-character hexadecimal id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid object id %q: want 64 hex characters, got %d", s, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid object id %q: %v", s, err)
	}
	return id, nil
}

// String returns the full lowercase hexadecimal form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 10 hexadecimal characters, for humans.
func (id ID) Short() string { return hex.EncodeToString(id[:5]) }

// IsZero reports whether id is the zero ("none") value.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler; the zero ID marshals as "".
func (id ID) MarshalText() ([]byte, error) {
	if id.IsZero() {
		return []byte{}, nil
	}
	return []byte(id.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*id = ID{}
		return nil
	}
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Sum returns the ID of the concatenation of parts.
func Sum(parts ...[]byte) ID { return ID(hash.Sum(parts...)) }
