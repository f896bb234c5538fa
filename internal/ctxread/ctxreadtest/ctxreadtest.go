// Package ctxreadtest gives tests a reader that cancels a context part of
// the way through what it reads, so that a test of cancellation bounds
// what is read after the cancel in bytes rather than in time.
package ctxreadtest

import (
	"io"
	"testing"

	"github.com/otree/otree/internal/ctxread"
)

// CancelAfter reads R and calls Cancel once At bytes have been read,
// counting the bytes read in all (Total) and once Cancel was called
// (After).
type CancelAfter struct {
	R      io.Reader
	At     int64
	Cancel func()
	Total  int64
	After  int64

	cancelled bool
}

// Read reads from R, counting, and cancels once At bytes are in.
func (c *CancelAfter) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	if c.cancelled {
		c.After += int64(n)
	}
	c.Total += int64(n)
	if !c.cancelled && c.Total >= c.At {
		c.Cancel()
		c.cancelled = true
	}
	return n, err
}

// Cancelled reports whether Cancel was called.
func (c *CancelAfter) Cancelled() bool { return c.cancelled }

// CheckStoppedSoon fails t unless c was read through and cancelled, and at
// most 2 × ctxread.Every bytes of the size were read after the cancel (the
// context is checked once per Every bytes); what names the reader.
func (c *CancelAfter) CheckStoppedSoon(t testing.TB, what string, size int64) {
	t.Helper()
	if c == nil {
		t.Fatalf("%s did not read through the hook", what)
	}
	t.Logf("cancelled after %d bytes, read %d more of %d", c.Total-c.After, c.After, size)
	if !c.cancelled || c.After > 2*ctxread.Every {
		t.Errorf("cancelled after %d bytes of %d, %s read %d more", c.Total-c.After, size, what, c.After)
	}
}
