// Package ctxread stops a long read once its context is done. The context
// is checked once per stretch of bytes, not on every read: a copy of a
// large file makes many small reads, and each check costs.
package ctxread

import (
	"context"
	"io"
)

// Every is how many bytes are read between checks of the context: a
// millisecond of hashing, a few of compressing, so a cancelled copy stops
// within a few milliseconds.
const Every = 1 << 20

// Reader returns a reader of r that fails with ctx's error, once ctx is
// done, at its first read or at the first read after Every more bytes.
func Reader(ctx context.Context, r io.Reader) io.Reader {
	if ctx.Done() == nil {
		return r // never done
	}
	return &reader{ctx: ctx, r: r}
}

type reader struct {
	ctx  context.Context
	r    io.Reader
	left int64 // bytes until the next check
}

func (c *reader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		c.left = Every
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
