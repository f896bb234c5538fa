// Package canon decodes the canonical binary encoding that otree's objects,
// summary and delta superblocks share (docs/FORMAT.md §1): minimal
// uvarints, length-prefixed byte strings, 32-byte ids and list counts that
// the remaining bytes can hold. A decoder accepts exactly one encoding of
// each value, so that the bytes, and therefore their hash, are determined
// by the value.
//
// Reads never panic. The first failure is kept and every later read
// returns a zero value, so a decode function reads straight through and
// checks the error once, with End.
package canon

import (
	"encoding/binary"
	"fmt"
)

// Decoder reads one encoding.
type Decoder struct {
	b    []byte
	off  int
	err  error
	what error // wrapped by every failure, naming what is decoded
}

// NewDecoder returns a decoder of b whose failures wrap what, such as
// errors.New("non-canonical summary"), followed by the offset and reason.
func NewDecoder(b []byte, what error) *Decoder {
	return &Decoder{b: b, what: what}
}

// Err returns the first failure, or nil.
func (d *Decoder) Err() error { return d.err }

// Offset returns how many bytes were read.
func (d *Decoder) Offset() int { return d.off }

// Fail records a failure at the current offset, unless one is recorded.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w at byte %d: %s", d.what, d.off, fmt.Sprintf(format, args...))
	}
}

// Uvarint reads an unsigned varint in its minimal encoding.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.Fail("truncated or overlong varint")
		return 0
	}
	if n != uvarintLen(v) {
		d.Fail("varint not minimally encoded")
		return 0
	}
	d.off += n
	return v
}

// uvarintLen is the length of v's minimal encoding.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// Raw returns the next n bytes, aliasing the input.
func (d *Decoder) Raw(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.Fail("length %d past the end", n)
		return nil
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p
}

// Bytes reads a length-prefixed byte string, aliasing the input.
func (d *Decoder) Bytes() []byte { return d.Raw(d.Uvarint()) }

// ID reads a 32-byte id.
func (d *Decoder) ID() (id [32]byte) {
	copy(id[:], d.Raw(32))
	return id
}

// Count reads a list length, refusing one that even the smallest entries
// (min bytes each) could not fill, before the caller allocates for it.
func (d *Decoder) Count(min int) int {
	n := d.Uvarint()
	if d.err == nil && n > uint64(len(d.b)-d.off)/uint64(min) {
		d.Fail("count %d past the end", n)
		return 0
	}
	return int(n)
}

// End fails on trailing bytes and returns the first failure.
func (d *Decoder) End() error {
	if d.err == nil && d.off != len(d.b) {
		d.Fail("%d trailing bytes", len(d.b)-d.off)
	}
	return d.err
}
