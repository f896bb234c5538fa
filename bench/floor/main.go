// Command floor measures the least work a cold commit of a tree has to do on
// this machine: read every regular file once, and write each distinct
// content (or, with -zstd, its compressed form) once to a new file of its
// own, then syncfs. Duplicates are found as a commit would find them, by
// hardlink (device and inode) and by content, but with a hash (maphash)
// far cheaper than a commit's cryptographic one. It records no metadata,
// creates no directory objects and renames nothing, so no tool that stores
// a tree file by file, durably, can commit it faster than this runs.
// bench/compare.sh prints its time beside the cold commits as a ratio to
// OSTree's.
//
// Usage:
//
//	floor [-zstd=none|default|better] SRC DST
//
// DST must not exist. Files go to DST/xx/N, 256 directories as a repository
// fans objects out; the workers are as many as otree's commit uses, and as
// in otree's archive mode, files of 1 MiB or more are compressed by a
// streaming encoder and smaller ones whole. It prints "files written,
// bytes read, bytes written, seconds".
package main

import (
	"flag"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/otree/otree/internal/rawfd"
	"github.com/otree/otree/internal/workq"
)

func main() {
	level := flag.String("zstd", "none", "compress each file: none, default or better (otree's archive level)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor [-zstd=none|default|better] SRC DST")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *level); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// streamMin is the size from which otree's archive mode compresses a file
// streaming instead of whole.
const streamMin = 1 << 20

// levels are the -zstd values besides none.
var levels = map[string]zstd.EncoderLevel{"default": zstd.SpeedDefault, "better": zstd.SpeedBetterCompression}

// floor is one run's shared state.
type floor struct {
	dst    string
	level  zstd.EncoderLevel
	enc    *zstd.Encoder // whole-file encoder, nil without -zstd
	seed   maphash.Seed
	mu     sync.Mutex
	inodes map[[2]uint64]bool
	sums   map[[2]uint64]bool // content hash and size

	n, read, written atomic.Int64
}

func run(src, dst, level string) error {
	f := &floor{dst: dst, seed: maphash.MakeSeed(), inodes: map[[2]uint64]bool{}, sums: map[[2]uint64]bool{}}
	if level != "none" {
		var ok bool
		if f.level, ok = levels[level]; !ok {
			return fmt.Errorf("-zstd=%s: want none, default or better", level)
		}
		var err error
		f.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(f.level), zstd.WithEncoderConcurrency(workq.Workers()),
			zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
		if err != nil {
			return err
		}
	}
	start := time.Now()
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	for i := range 256 {
		if err := os.Mkdir(fmt.Sprintf("%s/%02x", dst, i), 0o755); err != nil {
			return err
		}
	}
	paths := make(chan string, 1024)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	for range workq.Workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{floor: f}
			for p := range paths {
				if err := w.store(p); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	walkErr := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			paths <- p
		}
		return nil
	})
	close(paths)
	wg.Wait()
	if walkErr != nil {
		return walkErr
	}
	if firstErr != nil {
		return firstErr
	}
	d, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return err
	}
	fmt.Printf("%d %d %d %.3f\n", f.n.Load(), f.read.Load(), f.written.Load(), time.Since(start).Seconds())
	return nil
}

// worker is one goroutine's buffers.
type worker struct {
	*floor
	buf, out []byte
	stream   *zstd.Encoder
}

// first reports whether key is new to set, adding it.
func (f *floor) first(set map[[2]uint64]bool, key [2]uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if set[key] {
		return false
	}
	set[key] = true
	return true
}

// store reads the file at p and writes its content unless a hardlink of it
// or a file of the same content came first. As in otree's commit, a small
// file is read whole and written from memory; a large one is hashed through
// a 1 MiB buffer and then copied by the kernel or compressed streaming.
func (w *worker) store(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Nlink > 1 && !w.first(w.inodes, [2]uint64{sys.Dev, sys.Ino}) {
		return nil
	}
	size := st.Size()
	var data []byte
	var sum uint64
	if size < streamMin {
		w.buf = slices.Grow(w.buf[:0], int(size))[:size]
		n, err := io.ReadFull(f, w.buf)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		data = w.buf[:n]
		sum = maphash.Bytes(w.seed, data)
	} else {
		var h maphash.Hash
		h.SetSeed(w.seed)
		w.buf = slices.Grow(w.buf[:0], streamMin)[:streamMin]
		if _, err := io.CopyBuffer(&h, io.LimitReader(f, size), w.buf); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		sum = h.Sum64()
	}
	w.read.Add(size)
	if !w.first(w.sums, [2]uint64{sum, uint64(size)}) {
		return nil
	}
	i := w.n.Add(1)
	name := fmt.Sprintf("%s/%02x/%d", w.dst, i%256, i)
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	out := &countWriter{w: rawfd.Writer(fd)}
	switch {
	case data == nil && w.enc == nil:
		err = copyRange(fd, f, size)
		out.n = size
	case data == nil:
		if w.stream == nil {
			if w.stream, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(w.level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false)); err != nil {
				break
			}
		}
		w.stream.Reset(out)
		if _, err = io.CopyBuffer(w.stream, io.NewSectionReader(f, 0, size), w.buf); err == nil {
			err = w.stream.Close()
		}
	case w.enc == nil:
		_, err = out.Write(data)
	default:
		w.out = w.enc.EncodeAll(data, w.out[:0])
		_, err = out.Write(w.out)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: name, Err: err}
	}
	w.written.Add(out.n)
	return nil
}

// copyRange copies the first n bytes of src to dst in the kernel.
func copyRange(dst int, src *os.File, n int64) error {
	var off int64
	for off < n {
		roff, woff := off, off
		c, err := unix.CopyFileRange(int(src.Fd()), &roff, dst, &woff, int(n-off), 0)
		if err != nil {
			return err
		}
		if c == 0 {
			return io.ErrUnexpectedEOF
		}
		off += int64(c)
	}
	return nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
