// Package ctxread stops a long read once its context is done. The context
// is checked once per stretch of bytes, not on every read: a copy of a
// large file makes many small reads, and each check costs.
package ctxread

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
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
	r, ok := await(b.ctx, b.res, func() (int, error) { return b.r.Read(buf) })
	if !ok {
		b.buf = nil // the running Read still writes the old one
		return 0, b.ctx.Err()
	}
	return copy(p, buf[:r.n]), r.err
}

// await runs op on a goroutine and returns what it returned, or false as
// soon as ctx is done: op is then left to end on its own, its result sent
// to res, whose capacity of 1 keeps it from waiting (the caller returns
// ctx's error from then on, and awaits no more).
func await(ctx context.Context, res chan result, op func() (int, error)) (result, bool) {
	go func() {
		n, err := op()
		res <- result{n, err}
	}()
	select {
	case <-ctx.Done():
		return result{}, false
	case r := <-res:
		return r, true
	}
}

// BlockingWriter returns a writer to w whose Write returns ctx's error
// once ctx is done, even while a Write to w waits (on a pipe whose reader
// stopped reading): that Write is left to end on its own with a copy of
// the bytes, and may still write them. Each Write to w runs on a
// goroutine, so give it large writes (through a bufio.Writer).
func BlockingWriter(ctx context.Context, w io.Writer) io.Writer {
	if ctx.Done() == nil {
		return w
	}
	return &blockingWriter{ctx: ctx, w: w, res: make(chan result, 1)}
}

type blockingWriter struct {
	ctx context.Context
	w   io.Writer
	buf []byte // the goroutine's copy of p: the caller may reuse p once Write returns
	res chan result
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	b.buf = append(b.buf[:0], p...)
	buf := b.buf
	r, ok := await(b.ctx, b.res, func() (int, error) { return b.w.Write(buf) })
	if !ok {
		b.buf = nil // the running Write still reads the old one
		return 0, b.ctx.Err()
	}
	return r.n, r.err
}

// MayWait reports whether a Read or Write of x may wait indefinitely, as
// on a pipe, a socket or a terminal, for a peer that may never come: what
// Blocking and BlockingWriter are for. A regular file and bytes in memory
// do not wait, and are better used directly, without a goroutine and a
// copy per call.
func MayWait(x any) bool {
	switch x := x.(type) {
	case *bytes.Reader, *strings.Reader, *bytes.Buffer:
		return false
	case *os.File:
		st, err := x.Stat()
		return err != nil || !st.Mode().IsRegular()
	}
	return x != io.Discard
}
