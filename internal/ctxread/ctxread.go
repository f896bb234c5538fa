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

// Blocking returns a reader of r whose Read returns ctx's error once ctx
// is done, even while a Read of r waits (on a pipe or a terminal, for a
// writer that may never come): that Read is left to end on its own, and
// what it returns is dropped. Each Read of r runs on a goroutine, so this
// is for standard input, not for files read by the gigabyte.
func Blocking(ctx context.Context, r io.Reader) io.Reader {
	if ctx.Done() == nil {
		return r
	}
	return &blocking{ctx: ctx, r: r, res: make(chan result, 1)}
}

type blocking struct {
	ctx context.Context
	r   io.Reader
	buf []byte // the goroutine's, never the caller's: it may outlive Read
	res chan result
}

type result struct {
	n   int
	err error
}

func (b *blocking) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err // also after a Read the context left running
	}
	if cap(b.buf) < len(p) {
		b.buf = make([]byte, len(p))
	}
	buf := b.buf[:len(p)]
	go func() {
		n, err := b.r.Read(buf)
		b.res <- result{n, err}
	}()
	select {
	case <-b.ctx.Done():
		b.buf = nil // the running Read still writes the old one
		return 0, b.ctx.Err()
	case r := <-b.res:
		return copy(p, buf[:r.n]), r.err
	}
}
