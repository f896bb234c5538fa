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
// With -objects it also does the work each file object costs in otree's
// on-disk format (docs/FORMAT.md), and no more: it reads the source's xattr
// names, dedupes by BLAKE3 instead of maphash, names each object by that
// hash and checks that it is not stored yet, stages it under DST/tmp/ with
// its header (in a user.otreemeta xattr and with times zeroed, as a
// bare-user object; in front of the content with -zstd, as an archive
// object) and renames it into place. Renames follow each write at once,
// since ordering them after a sync only adds waiting. Still no directory
// objects, no commit, no stat cache: a commit in this format cannot be
// faster than that.
//
// With -stat it measures instead the least a re-commit of an unchanged tree
// has to do: list every directory and stat every entry (a file's change shows
// in nothing but its own stat), walking as otree's commit walks, directories
// opened one by one and the entries stat-ed relative to them, on as many
// workers. It reads no file, writes nothing and takes no DST.
//
// Usage:
//
//	floor [-zstd=none|default|better] [-objects] SRC DST
//	floor -stat SRC
//
// DST must not exist. Files go to DST/xx/N (DST/xx/ID with -objects), 256
// directories as a repository fans objects out; the workers are as many as
// otree's commit uses, and as in otree's archive mode, files of 1 MiB or
// more are compressed by a streaming encoder and smaller ones whole. It
// prints "files written, bytes read, bytes written, seconds", or with -stat
// "entries stat-ed, seconds".
package main

import (
	"context"
	"encoding/binary"
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

	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/rawfd"
	"github.com/otree/otree/internal/workq"
	"github.com/otree/otree/internal/zenc"
	"github.com/otree/otree/repo"
)

func main() {
	level := flag.String("zstd", "none", "compress each file: none, default or better (otree's archive level)")
	objects := flag.Bool("objects", false, "also do the per-object work of otree's format: BLAKE3 ids, headers, staging and renames")
	stat := flag.Bool("stat", false, "only list every directory and stat every entry, as a re-commit of an unchanged tree must")
	flag.Parse()
	if *stat && flag.NArg() == 1 {
		n, secs, err := statTree(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		fmt.Printf("%d %.3f\n", n, secs)
		return
	}
	if *stat || flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor [-zstd=none|default|better] [-objects] SRC DST\n       floor -stat SRC")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *level, *objects); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// streamMin is the size from which otree's archive mode compresses a file
// streaming instead of whole.
const streamMin = 1 << 20

// levels are the -zstd values besides none.
var levels = map[string]zstd.EncoderLevel{"default": zstd.SpeedDefault, "better": zenc.Level}

// floor is one run's shared state.
type floor struct {
	dst     string
	level   zstd.EncoderLevel
	enc     *zstd.Encoder // whole-file encoder, nil without -zstd
	objects bool          // -objects
	seed    maphash.Seed
	mu      sync.Mutex
	inodes  map[[2]uint64]bool
	sums    map[[32]byte]bool // BLAKE3, or maphash and size

	n, read, written atomic.Int64
}

func run(src, dst, level string, objects bool) error {
	f := &floor{dst: dst, objects: objects, seed: maphash.MakeSeed(), inodes: map[[2]uint64]bool{}, sums: map[[32]byte]bool{}}
	if level != "none" {
		var ok bool
		if f.level, ok = levels[level]; !ok {
			return fmt.Errorf("-zstd=%s: want none, default or better", level)
		}
		var err error
		f.enc, err = zenc.Whole(f.level, workq.Workers())
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
		if objects {
			if err := os.MkdirAll(fmt.Sprintf("%s/tmp/%02x", dst, i), 0o755); err != nil {
				return err
			}
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
	buf, out, head []byte
	stream         *zstd.Encoder
	hasher         *hash.Hasher
	xattrs         [4096]byte
}

// first reports whether key is new to set, adding it.
func first[K comparable](f *floor, set map[K]bool, key K) bool {
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
	if w.objects {
		// A commit reads every file's xattrs for its header.
		if _, err := unix.Flistxattr(int(f.Fd()), w.xattrs[:]); err != nil && err != unix.ENOTSUP {
			return &os.PathError{Op: "listxattr", Path: p, Err: err}
		}
	}
	if sys.Nlink > 1 && !first(w.floor, w.inodes, [2]uint64{sys.Dev, sys.Ino}) {
		return nil
	}
	size := st.Size()
	var data []byte
	var h io.Writer
	var mh maphash.Hash
	if w.objects {
		if w.hasher == nil {
			w.hasher = hash.New()
		}
		w.hasher.Reset()
		h = w.hasher
	} else {
		mh.SetSeed(w.seed)
		h = &mh
	}
	if size < streamMin {
		w.buf = slices.Grow(w.buf[:0], int(size))[:size]
		n, err := io.ReadFull(f, w.buf)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		data = w.buf[:n]
		h.Write(data)
	} else {
		w.buf = slices.Grow(w.buf[:0], streamMin)[:streamMin]
		if _, err := io.CopyBuffer(h, io.LimitReader(f, size), w.buf); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	w.read.Add(size)
	var key [32]byte
	if w.objects {
		key = w.hasher.Sum()
	} else {
		binary.LittleEndian.PutUint64(key[:], mh.Sum64())
		binary.LittleEndian.PutUint64(key[8:], uint64(size))
	}
	if !first(w.floor, w.sums, key) {
		return nil
	}
	i := w.n.Add(1)
	name := fmt.Sprintf("%s/%02x/%d", w.dst, i%256, i)
	staged := name
	if w.objects {
		name = fmt.Sprintf("%s/%02x/%x.file", w.dst, key[0], key)
		var have unix.Stat_t
		if err := unix.Stat(name, &have); err != unix.ENOENT {
			return fmt.Errorf("%s: not a fresh object (%v)", name, err)
		}
		staged = fmt.Sprintf("%s/tmp/%02x/%x.file", w.dst, key[0], key)
		w.head = repo.AppendFileHeader(w.head[:0], &repo.FileHeader{Type: repo.TypeRegular,
			Mode: uint32(st.Mode().Perm()), UID: sys.Uid, GID: sys.Gid, Size: uint64(size)})
	}
	fd, err := unix.Open(staged, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: staged, Err: err}
	}
	out := &countWriter{w: rawfd.Writer(fd)}
	if w.objects && w.enc != nil {
		_, err = out.Write(w.head) // archive: the header leads the content
	}
	switch {
	case err != nil:
	case data == nil && w.enc == nil:
		err = copyRange(fd, f, size)
		out.n = size
	case data == nil:
		if w.stream == nil {
			if w.stream, err = zenc.Stream(w.level); err != nil {
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
	if err == nil && w.objects && w.enc == nil {
		// bare-user: the header in an xattr, and times zeroed.
		if err = unix.Fsetxattr(fd, "user.otreemeta", w.head, 0); err == nil {
			err = unix.Futimes(fd, []unix.Timeval{{}, {}})
		}
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err == nil && w.objects {
		err = unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, name, unix.RENAME_NOREPLACE)
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: staged, Err: err}
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

// statTree lists every directory under src and stats every entry, on
// workq.Workers() workers, each directory opened relative to its parent as
// otree's commit walker opens it. It returns the entries stat-ed, src
// included, and the seconds taken.
func statTree(src string) (int64, float64, error) {
	start := time.Now()
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, &os.PathError{Op: "open", Path: src, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return 0, 0, &os.PathError{Op: "stat", Path: src, Err: err}
	}
	var n atomic.Int64
	n.Add(1)
	var q workq.Queue[[]byte]
	var list func(fd int, path string) workq.Task[[]byte]
	list = func(fd int, path string) workq.Task[[]byte] {
		return func(buf []byte) error {
			defer unix.Close(fd)
			var names []string
			if err := dirent.Each(fd, buf, path, func(name []byte, _ uint64) { names = append(names, string(name)) }); err != nil {
				return err
			}
			for _, name := range names {
				var st unix.Stat_t
				if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return &os.PathError{Op: "stat", Path: path + "/" + name, Err: err}
				}
				n.Add(1)
				if st.Mode&unix.S_IFMT != unix.S_IFDIR {
					continue
				}
				sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return &os.PathError{Op: "open", Path: path + "/" + name, Err: err}
				}
				q.Push(list(sub, path+"/"+name))
			}
			return nil
		}
	}
	q.Push(list(fd, src))
	if err := q.Run(context.Background(), workq.Workers(), func() []byte { return make([]byte, 32<<10) }); err != nil {
		return 0, 0, err
	}
	return n.Load(), time.Since(start).Seconds(), nil
}
