// Package hash is the one place otree touches its hash function, so that the
// choice of BLAKE3 implementation (and its performance quirks) stays local.
//
// lukechampine.com/blake3 is pinned at v1.3.0: v1.4.x starts goroutines
// inside Write and hashes 4 KiB inputs about 3-4x slower on this class of
// machine (see internal/hash/hash_test.go for the benchmark).
package hash

import "lukechampine.com/blake3"

// Size is the length of a digest in bytes.
const Size = 32

// Hasher computes BLAKE3-256 digests. It is not safe for concurrent use; keep
// one per worker and Reset it between inputs.
type Hasher struct {
	h *blake3.Hasher
}

// New returns a ready Hasher.
func New() *Hasher { return &Hasher{h: blake3.New(Size, nil)} }

// Write adds p to the running digest. It never fails.
func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Reset forgets everything written so far.
func (h *Hasher) Reset() { h.h.Reset() }

// Sum returns the digest of everything written since the last Reset.
func (h *Hasher) Sum() (out [Size]byte) {
	h.h.Sum(out[:0])
	return out
}

// Sum returns the BLAKE3-256 digest of the concatenation of parts.
func Sum(parts ...[]byte) [Size]byte {
	h := blake3.New(Size, nil)
	for _, p := range parts {
		h.Write(p)
	}
	var out [Size]byte
	h.Sum(out[:0])
	return out
}
