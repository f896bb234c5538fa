// Package limitreadtest gives tests of bounded reads what they measure
// with: a reader that counts what is read through it, an endless source
// standing for a hostile stream, and the bytes allocated meanwhile, so
// that a test bounds what a reader of untrusted input reads and holds.
package limitreadtest

import (
	"io"
	"runtime"
)

// Counting counts the bytes read from R.
type Counting struct {
	R io.Reader
	N int64
}

// Read reads from R and counts what it gave.
func (c *Counting) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}

// Endless reads as an endless run of its byte.
type Endless byte

// Read fills p with the byte, never ending.
func (e Endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// Allocated returns the bytes allocated while f ran.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
