package commit

import (
	"encoding/binary"
	"testing"

	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/repo"
)

// A stat cache made when --mode-ro-executables came after the stat
// overrides holds ids of the other order: its fingerprint must not match
// the one of the same options now.
func TestFingerprintROExecutablesWithOverrides(t *testing.T) {
	so := StatOverride{Path: "/bin/x", Set: true, Mode: 0o755}
	m := newModifier(&Options{ModeROExecutables: true, StatOverrides: []StatOverride{so}}, repo.ModeBareUser)
	// The bytes an earlier otree hashed for these options.
	b := []byte{byte(repo.ModeBareUser), 4, 0, 0}
	b = binary.AppendUvarint(b, uint64(len(so.Path)))
	b = append(b, so.Path...)
	b = binary.LittleEndian.AppendUint32(append(b, 1), so.Mode)
	if m.fingerprint(repo.ModeBareUser) == hash.Sum(b) {
		t.Error("the fingerprint of --mode-ro-executables with stat overrides is the one of the earlier order")
	}
	// Without overrides the order does not matter: no flag 16.
	plain := newModifier(&Options{ModeROExecutables: true}, repo.ModeBareUser)
	if plain.fingerprint(repo.ModeBareUser) != hash.Sum([]byte{byte(repo.ModeBareUser), 4 | 32, 0, 0}) {
		t.Error("the fingerprint of --mode-ro-executables alone is not flags 4 and 32")
	}
}
