// Command floor measures the least work a cold commit of a tree has to do on
// this machine: read every regular file once, write its content (or, with
// -zstd, its compressed content) to a new file of its own, then syncfs. It
// hashes nothing, records no metadata, creates no directory objects and
// renames nothing, so no tool that stores a tree file by file, durably, can
// commit it faster than this runs. bench/compare.sh prints its time beside
// the cold commits as a ratio to OSTree's.
//
// Usage:
//
//	floor [-zstd=none|default|better] SRC DST
//
// DST must not exist. Files go to DST/xx/N, 256 directories as a repository
// fans objects out; the workers are as many as otree's commit uses. It
// prints "files bytes-read bytes-written seconds".
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

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

func run(src, dst, level string) error {
	var enc *zstd.Encoder
	switch level {
	case "none":
	case "default", "better":
		lv := map[string]zstd.EncoderLevel{"default": zstd.SpeedDefault, "better": zstd.SpeedBetterCompression}[level]
		var err error
		enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(lv), zstd.WithEncoderConcurrency(workq.Workers()),
			zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("-zstd=%s: want none, default or better", level)
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
	var n, read, written atomic.Int64
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	for range workq.Workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf, out []byte
			for p := range paths {
				data, err := readFile(p, &buf)
				if err != nil {
					fail(err)
					continue
				}
				read.Add(int64(len(data)))
				if enc != nil {
					out = enc.EncodeAll(data, out[:0])
					data = out
				}
				i := n.Add(1)
				if err := writeFile(fmt.Sprintf("%s/%02x/%d", dst, i%256, i), data); err != nil {
					fail(err)
					continue
				}
				written.Add(int64(len(data)))
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
	f, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return err
	}
	fmt.Printf("%d %d %d %.3f\n", n.Load(), read.Load(), written.Load(), time.Since(start).Seconds())
	return nil
}

// readFile reads the file at p whole into *buf (grown as needed).
func readFile(p string, buf *[]byte) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if int64(cap(*buf)) < st.Size+1 {
		*buf = make([]byte, st.Size+1)
	}
	b := (*buf)[:cap(*buf)]
	n := 0
	for {
		c, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if c == 0 || int64(n+c) > st.Size {
			return b[:n+c], nil
		}
		n += c
		if int64(n) == st.Size {
			return b[:n], nil
		}
	}
}

// writeFile creates p and writes data to it.
func writeFile(p string, data []byte) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: p, Err: err}
	}
	for len(data) > 0 {
		c, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return &os.PathError{Op: "write", Path: p, Err: err}
		}
		data = data[c:]
	}
	return unix.Close(fd)
}
