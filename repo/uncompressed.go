package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sync"

	"github.com/otree/otree/internal/rawfd"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// An archive repository stores file content compressed, so a checkout of
// it decompresses every file. A user-mode checkout may instead keep each
// file it writes in the repository's uncompressed-object cache, a
// hardlink of the checked-out file named by object id, and hardlink
// files from there in later checkouts, as OSTree's does (FORMAT.md §16).
// The checkout package reads and fills the cache; the repository knows
// where it is, whether its config allows it, and removes what no
// checkout uses.

// UncompressedCacheDir is the directory, below an archive repository, of
// its uncompressed-object cache: XX/<62 hex>.file, as objects/ is laid
// out, each a regular file holding a file object's content with the mode
// a user-mode checkout gives it (FORMAT.md §16).
const UncompressedCacheDir = "uncompressed-objects-cache"

// ConfigUncompressedCache is OSTree's config key that turns an archive
// repository's uncompressed-object cache off when false (default true).
const ConfigUncompressedCache = "core.enable-uncompressed-cache"

// UncompressedCache reports whether checkouts may use and fill the
// repository's uncompressed-object cache: an archive repository, opened
// for writing, whose config does not turn it off.
func (r *Repo) UncompressedCache() bool {
	if r.mode != ModeArchive || r.readOnly != nil {
		return false
	}
	on, err := r.config.Bool(ConfigUncompressedCache, true)
	return on && err == nil
}

// UncompressedCacheable reports whether a file with header h goes through
// the uncompressed-object cache: a regular file with content whose mode
// without setuid and setgid (the mode a user-mode checkout gives it) lets
// its owner read it and no one else write it. (A user-mode checkout adds
// the owner's read bit to a file that lacks it, so its mode is not the
// header's: such files are decompressed each time, as OSTree does.) Through an inode shared
// with the cache, anyone who could write one checkout's file could change
// every later checkout's; such a file is decompressed each time, as
// bare-user repositories copy it rather than link it (BareUserDiskMode).
func UncompressedCacheable(h *FileHeader) bool {
	m := h.Mode &^ 0o6000
	return h.Type == TypeRegular && h.Size > 0 && m&0o400 != 0 && m&0o002 == 0
}

// UncompressedCacheEntryFits reports whether st, the stat of the cache
// entry of a file with header h, is as a checkout wrote it: a regular file
// of h's size, with h's mode without setuid and setgid, modification time
// the epoch. A write sets the time to now, a chmod changes the mode, and a
// crash before the content reached the disk leaves the file shorter. Who
// may link it (its owner and group) is the caller's question.
func UncompressedCacheEntryFits(st *unix.Stat_t, h *FileHeader) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o7777 == h.Mode&^0o6000 && st.Size == int64(h.Size) &&
		st.Mtim.Sec == 0 && st.Mtim.Nsec == 0
}

// UncompressedCacheEntry is the path, relative to UncompressedCacheDir,
// of file object id's entry in the uncompressed-object cache.
func UncompressedCacheEntry(id ID) string { return objectPath(KindFile, id) }

// pruneUncompressedCache removes the entries of the uncompressed-object
// cache that no checkout uses (one link: the cache's own) and those whose
// object is gone (or, in a dry run, is unreachable), counting them in
// rep.Cache. Removing an entry a checkout still uses frees only its name.
// A checkout that meets an entry removed under it copies the file instead.
// The cache is its writer's, the repository's owner (a user-mode checkout
// of anyone else leaves it alone): the entries and directories of it that
// another member of a shared repository may not list or remove, made
// under that owner's umask, are left, as OSTree's prune leaves the whole
// cache, rather than failing a prune whose objects are gone already.
func (r *Repo) pruneUncompressedCache(ctx context.Context, gone func(ID) bool, dryRun bool, rep *PruneReport) error {
	entries, err := r.cacheEntries()
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("prune %s: %w", r.path, err)
		}
		var st unix.Stat_t
		if unix.Lstat(e.path, &st) != nil || st.Nlink > 1 && !gone(e.id) {
			continue
		}
		if !dryRun {
			err := unix.Unlink(e.path)
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
				continue
			}
			if err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("prune: removing %s: %w", e.path, err)
			}
		}
		rep.Cache.Objects++
		if st.Nlink <= 1 {
			rep.Cache.Bytes += StoredBytes(&st)
		}
	}
	return nil
}

// cacheEntry is one entry of the uncompressed-object cache.
type cacheEntry struct {
	id   ID
	path string
}

// cacheEntries lists the entries of the uncompressed-object cache: the
// names that parse as file objects' (XX/<62 hex>.file); anything else
// there is ignored, and so are the directories of it this user may not
// list (the cache of another user of a shared repository, made under a
// umask of 077): only its owner links their entries.
func (r *Repo) cacheEntries() ([]cacheEntry, error) {
	root := r.Path(UncompressedCacheDir)
	dirs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []cacheEntry
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 || !isHex(d.Name()) {
			continue
		}
		dir := root + "/" + d.Name()
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if o, ok := parseObjectName(d.Name(), e.Name()); ok && o.kind == KindFile {
				entries = append(entries, cacheEntry{o.id, dir + "/" + e.Name()})
			}
		}
	}
	return entries, nil
}

// fsckUncompressedCache verifies the entries of the uncompressed-object
// cache whose object verified and that a checkout would link
// (UncompressedCacheable, UncompressedCacheEntryFits): such an entry must
// hash, after the object's header, to the object's id. One that does not
// is a ProblemCache, which Delete removes. Entries a checkout would not
// link are left to checkouts and prune, which drop them.
func (f *fsckRun) fsckUncompressedCache(ctx context.Context) error {
	all, err := f.r.cacheEntries()
	if err != nil {
		return fmt.Errorf("fsck: %w", err)
	}
	var entries []cacheEntry
	for _, e := range all {
		if f.state[objKey{KindFile, e.id}] == stateOK {
			entries = append(entries, e)
		}
	}
	workers := f.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	pool := sync.Pool{New: func() any { return newFsckWorker() }}
	for _, e := range entries {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			w := pool.Get().(*fsckWorker)
			defer pool.Put(w)
			if why := f.r.checkCacheEntry(w, e); why != "" {
				f.mu.Lock()
				f.order = append(f.order, &FsckProblem{Type: ProblemCache, Kind: KindFile, ID: e.id, Path: e.path, Reason: why,
					Err: &CorruptObjectError{Kind: KindFile, ID: e.id, Path: e.path, Reason: why}})
				f.mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("fsck %s: %w", f.r.path, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fsck %s: %w", f.r.path, err)
	}
	return nil
}

// checkCacheEntry says what is wrong with cache entry e, or "" when a
// checkout may link it (or would not link it anyway).
func (r *Repo) checkCacheEntry(w *fsckWorker, e cacheEntry) string {
	h, rc, err := r.OpenFile(e.id)
	if err != nil {
		return "" // the object changed since it verified: not the entry's fault
	}
	rc.Close()
	var st unix.Stat_t
	if !UncompressedCacheable(h) || unix.Lstat(e.path, &st) != nil || !UncompressedCacheEntryFits(&st, h) {
		return ""
	}
	// Cacheable files are readable by their owner, who wrote the entry
	// and whose checkouts alone link it: one another user may not read
	// (0600, in a shared repository) is left to its owner's fsck.
	fd, err := unix.Open(e.path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.EACCES) && int(st.Uid) != os.Geteuid() {
		return ""
	}
	if err != nil {
		return fmt.Sprintf("opening: %v", err)
	}
	defer unix.Close(fd)
	if unix.Fstat(fd, &st) != nil || !UncompressedCacheEntryFits(&st, h) {
		return "" // changed since
	}
	w.h.Reset()
	w.h.Write(AppendFileHeader(w.buf[:0], h))
	n, err := io.CopyBuffer(w.h, io.NewSectionReader(rawfd.ReaderAt(fd), 0, st.Size+1), w.buf)
	switch {
	case err != nil:
		return fmt.Sprintf("reading: %v", err)
	case n != st.Size:
		return fmt.Sprintf("%d bytes read, but it has %d", n, st.Size)
	case ID(w.h.Sum()) != e.id:
		return "its content is not the object's"
	}
	return ""
}
