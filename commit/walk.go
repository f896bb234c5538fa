package commit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/otree/otree/internal/ctxread"
	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/workq"
	"github.com/otree/otree/internal/xattr"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// smallFile is the size up to which a file is read whole into a worker's
// buffer, hashed and written from memory; larger files are hashed streaming
// and copied by the kernel.
const smallFile = 1 << 20

// fileBatch bounds how many files of one directory one job hashes, so a
// directory of thousands of files still spreads over every worker;
// batchBytes bounds their content, so large files do too.
const (
	fileBatch  = 32
	batchBytes = 1 << 20
)

// walker turns a directory into a *dir, hashing and storing files on a
// bounded pool of workers with per-worker hashers and buffers.
type walker struct {
	ctx   context.Context
	txn   *repo.Txn
	mod   *modifier
	cache *statCache
	start int64 // run start, ns: the racy-entry threshold
	skip  *skipList
	// repo is the repository's directory (device, inode): a walk that
	// meets it leaves it out rather than commit the repository into
	// itself, half-written as it is.
	repo   [2]uint64
	devino *devino
	st     *counters
	// early stores each directory's dirtree as soon as the directory and
	// everything below it are done, instead of after the walk, so that
	// the dirtrees are published with the files while the walk goes on.
	// Only for a tree that no other source is laid over.
	early bool
	// exact records the lstat of every entry in fileKeys, trusted or
	// not, for consuming the source, which checks each entry against it
	// (the stat cache, which wants only trusted keys, is then not saved).
	exact bool

	// inodes maps a hardlinked file's inode to its stat key and the id
	// one of its names was hashed to, so that its other names are not
	// read again (a group of 1,000 names is read once).
	inodes sync.Map // [2]uint64{dev, ino} -> inodeID

	q workq.Queue[*worker]

	// Directory descriptors opened and not yet closed. A failed walk
	// drops its pending tasks, so it closes what they would have.
	fdMu sync.Mutex
	fds  map[int]struct{}
}

// opened and closed track directory descriptors (see fds).
func (wk *walker) opened(fd int) {
	wk.fdMu.Lock()
	if wk.fds == nil {
		wk.fds = map[int]struct{}{}
	}
	wk.fds[fd] = struct{}{}
	wk.fdMu.Unlock()
}

func (wk *walker) closeFD(fd int) {
	wk.fdMu.Lock()
	delete(wk.fds, fd)
	wk.fdMu.Unlock()
	unix.Close(fd)
}

// closeAll closes every descriptor still open after a failed walk.
func (wk *walker) closeAll() {
	wk.fdMu.Lock()
	defer wk.fdMu.Unlock()
	for fd := range wk.fds {
		unix.Close(fd)
	}
	wk.fds = nil
}

// worker is per-goroutine scratch.
type worker struct {
	h      *hash.Hasher
	buf    []byte
	hdr    []byte
	dents  []byte
	refs   []fileRef // the cache record of the directory being read
	byName refIndex  // of refs
	names  []string  // of the directory being read
	ents   []entry
	sts    []unix.Stat_t // of the entries the record does not vouch for
	walker *walker
}

// dirFD is a directory descriptor shared by the jobs hashing its files.
type dirFD struct {
	wk   *walker
	fd   int
	refs atomic.Int32
}

func (d *dirFD) release() {
	if d.refs.Add(-1) == 0 {
		d.wk.closeFD(d.fd)
	}
}

// walkDir builds the tree rooted at the directory root.
func (wk *walker) walkDir(root string) (*dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: abs, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: abs, Err: err}
	}
	d := &dir{noCtime: noChangeTimes(fd), mount: mountToken(fd)}
	if err := wk.dirMeta(d, fd, abs, &st, wk.mod.overrideFor("", "")); err != nil {
		unix.Close(fd)
		return nil, err
	}
	wk.opened(fd)
	d.pending.Store(1)
	wk.q.Push(func(w *worker) error { return w.readDir(d, fd, abs, "") })
	err = wk.q.Run(wk.ctx, workq.Workers(), func() *worker {
		// buf is made by the first file hashed: a re-commit the stat
		// cache answers hashes none, and a fresh process pays for each
		// page its heap grows by.
		return &worker{h: hash.New(), dents: make([]byte, 32<<10), byName: refIndex{seed: maphash.MakeSeed()}, walker: wk}
	})
	if err != nil {
		wk.closeAll()
	}
	return d, err
}

// xattrs lists the xattrs of the file open at fd, or none without reading
// when the commit records none.
func (wk *walker) xattrs(fd int) ([]repo.Xattr, error) {
	if !wk.mod.keepsXattrs() {
		return nil, nil
	}
	return xattr.FList(fd, skipXattr)
}

// dirMeta stores the dirmeta of a directory open at fd; o is its stat
// override, if any.
func (wk *walker) dirMeta(d *dir, fd int, path string, st *unix.Stat_t, o *override) error {
	wk.st.dirs.Add(1)
	// A stat override is named by the path from the source's root, which
	// another source holding this directory gives otherwise: a record
	// vouches only for metadata no override touched.
	d.path, d.key, d.keyOK = path, keyOf(st), trusted(st, wk.start) && !d.noCtime && o == nil
	if d.rec = wk.cache.dir(path); d.rec != nil {
		d.rec.seen = true
		if d.rec.mount != d.mount || d.mount == 0 {
			// Recorded on another mount (or one that cannot be told):
			// its stats may be another filesystem's.
			d.rec = nil
		}
	}
	if d.rec != nil {
		if d.rec.keyOK && o == nil && !d.noCtime && d.rec.key == d.key && wk.cache.present(wk.txn, repo.KindDirMeta, d.rec.meta) {
			// Unchanged since last time, and its dirmeta still stored
			// (one lost since is built and stored again below).
			d.meta = d.rec.meta
			return nil
		}
	}
	x, err := wk.xattrs(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	m := repo.DirMeta{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Xattrs: x}
	if err := wk.mod.dir(&m, o); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	id, err := wk.txn.WriteMeta(repo.KindDirMeta, m.Encode())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	d.meta = id
	return nil
}

// finished records that one piece of d's outstanding work is done. When it
// was the last, d is complete: its dirtree is stored, and so is its
// parent's if d was all the parent waited for, and so on up. Without
// early it does nothing: the dirtrees are written after the walk.
func (wk *walker) finished(d *dir) error {
	if !wk.early {
		return nil
	}
	for ; d != nil && d.pending.Add(-1) == 0; d = d.parent {
		d.sortEntries()
		if _, err := d.writeNode(cachedTxn{wk.txn, wk.cache}); err != nil {
			return fmt.Errorf("%s: %w", d.path, err)
		}
		d.written = true
	}
	return nil
}

// entry is a directory entry that is not a directory, as readDir found it.
type entry struct {
	name string
	ref  int       // index of its matching cache entry, or -1
	st   int       // with ref -1, the index of its stat in worker.sts
	o    *override // its stat override, if any
	// touched: the stat cache recorded this very inode here with other
	// stat, so it changed since (its ctime moved).
	touched bool
}

// readDir lists one directory: subdirectories become new tasks, entries
// the stat cache vouches for are taken from it, and files to hash go out in
// batches. The listing is then one piece of the directory's work done.
func (w *worker) readDir(d *dir, fd int, abs, rel string) error {
	if err := w.listDir(d, fd, abs, rel); err != nil {
		return err
	}
	return w.walker.finished(d)
}

func (w *worker) listDir(d *dir, fd int, abs, rel string) error {
	wk := w.walker
	dfd := &dirFD{wk: wk, fd: fd}
	dfd.refs.Store(1)
	defer dfd.release()
	names := w.names[:0]
	err := dirent.Each(fd, w.dents, abs, func(name []byte, _ uint64) { names = append(names, string(name)) })
	w.names = names
	if err != nil {
		return err
	}
	w.refs = w.refs[:0]
	if d.rec != nil && !d.noCtime {
		w.refs = d.rec.appendFiles(w.refs)
		w.byName.index(w.refs)
	}
	ents, sts := w.ents[:0], w.sts[:0]
	if cap(ents) < len(names) {
		ents = make([]entry, 0, len(names))
	}
	defer func() { w.ents, w.sts = ents[:0], sts[:0] }()
	matched := 0
	var scanned int64
	for _, name := range names {
		o := wk.mod.overrideFor(rel, name) // before skipping: a skipped path is not missing
		if len(wk.skip.paths) > 0 && wk.skip.skips(rel+"/"+name) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "stat", Path: abs + "/" + name, Err: err}
		}
		if listedHook != nil {
			listedHook(abs + "/" + name)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if st.Dev == wk.repo[0] && st.Ino == wk.repo[1] {
				continue
			}
			cabs := abs + "/" + name
			cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: cabs, Err: err}
			}
			// The directory as opened, which may have replaced the one
			// listed: its metadata must be that of the entries read.
			if err := unix.Fstat(cfd, &st); err != nil {
				unix.Close(cfd)
				return &os.PathError{Op: "stat", Path: cabs, Err: err}
			}
			// On the parent's device it is on the parent's filesystem,
			// so on a mount of it that lives as long as the parent's.
			sub := &dir{noCtime: d.noCtime, mount: d.mount}
			if st.Dev != d.key.dev {
				// A mount point.
				sub.noCtime, sub.mount = noChangeTimes(cfd), mountToken(cfd)
			}
			if err := wk.dirMeta(sub, cfd, cabs, &st, o); err != nil {
				unix.Close(cfd)
				return err
			}
			wk.opened(cfd)
			sub.parent = d
			sub.pending.Store(1)
			d.pending.Add(1)
			d.dirNames = append(d.dirNames, name)
			d.dirs = append(d.dirs, sub)
			crel := rel + "/" + name
			wk.q.Push(func(w *worker) error { return w.readDir(sub, cfd, cabs, crel) })
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			scanned += st.Size
		}
		// The record vouches for the file's id, not for its object
		// being stored still: one lost since is read and stored again.
		// Nor for one an override names (see dirMeta): such a file is
		// recorded unkeyed, and hashed each time.
		ref := w.byName.find(w.refs, name)
		if ref >= 0 && o == nil && w.refs[ref].key.matches(&st) && wk.cache.present(wk.txn, repo.KindFile, w.refs[ref].id) {
			matched++
			ents = append(ents, entry{name: name, ref: ref})
			continue
		}
		touched := ref >= 0 && w.refs[ref].key.dev == st.Dev && w.refs[ref].key.ino == st.Ino
		ents = append(ents, entry{name: name, ref: -1, st: len(sts), o: o, touched: touched})
		sts = append(sts, st)
	}
	wk.st.files.Add(int64(len(ents)))
	wk.st.cached.Add(int64(matched))
	wk.st.bytesScanned.Add(scanned)
	if d.rec != nil && matched == len(ents) && matched == d.rec.nfiles {
		// The record holds every entry: nothing to list or hash.
		d.filesClean = true
		return nil
	}
	var todo []int            // slots of files to hash
	var todoSts []unix.Stat_t // theirs
	var ovs []*override
	d.fileNames = make([]string, 0, len(ents))
	d.fileIDs = make([]repo.ID, 0, len(ents))
	d.fileKeys = make([]statKey, 0, len(ents))
	for i := range ents {
		e := &ents[i]
		var key statKey // zero: too new to trust
		var st *unix.Stat_t
		if e.ref >= 0 {
			key = w.refs[e.ref].key
		} else if st = &sts[e.st]; wk.exact || e.o == nil && !d.noCtime && st.Dev == d.key.dev && trusted(st, wk.start) {
			// A file mounted over an entry (st_dev not the directory's)
			// is on a mount the record's token does not cover.
			key = keyOf(st)
		}
		slot := len(d.fileNames)
		d.fileNames = append(d.fileNames, e.name)
		d.fileIDs = append(d.fileIDs, repo.ID{})
		d.fileKeys = append(d.fileKeys, key)
		switch {
		case e.ref >= 0:
			d.fileIDs[slot] = w.refs[e.ref].id
		case st.Mode&unix.S_IFMT != unix.S_IFREG:
			id, err := w.special(fd, abs, e.name, st, e.o)
			if err != nil {
				return err
			}
			d.fileIDs[slot] = id
		default:
			// A hardlink of an object changed since the stat cache saw it
			// is read: a write through the link that put mtime 0 back
			// would pass the metadata check, the object changed with it.
			if st.Nlink > 1 && wk.devino != nil && e.o == nil && (!e.touched || wk.devino.trust) {
				if id, ok := wk.devino.lookup(abs, e.name, st); ok {
					wk.st.cached.Add(1)
					d.fileIDs[slot] = id
					if wk.devino.trust && !wk.exact {
						// Taken unchecked: the stat cache must not
						// vouch for it to commits that check.
						d.fileKeys[slot] = statKey{}
					}
					continue
				}
			}
			todo = append(todo, slot)
			todoSts = append(todoSts, *st)
			ovs = append(ovs, e.o)
		}
	}
	// A batch holds up to fileBatch files and, unless it is one file,
	// batchBytes of content, so that large files (a directory of
	// compilers, say) spread over the workers instead of queueing behind
	// each other. The queue runs the last pushed first: pushing the
	// heaviest batches last starts the longest work first.
	type batch struct {
		i, end int
		bytes  int64
	}
	var batches []batch
	for i := 0; i < len(todo); {
		b := batch{i, i + 1, todoSts[i].Size}
		for b.end < len(todo) && b.end-i < fileBatch && b.bytes+todoSts[b.end].Size <= batchBytes {
			b.bytes += todoSts[b.end].Size
			b.end++
		}
		batches = append(batches, b)
		i = b.end
	}
	slices.SortStableFunc(batches, func(a, b batch) int { return cmp.Compare(a.bytes, b.bytes) })
	for _, b := range batches {
		slots, stats, overs := todo[b.i:b.end], todoSts[b.i:b.end], ovs[b.i:b.end]
		dfd.refs.Add(1)
		d.pending.Add(1)
		wk.q.Push(func(w *worker) error {
			defer dfd.release()
			for j, slot := range slots {
				if id, ok := wk.inodeSeen(&stats[j], overs[j], d.noCtime); ok {
					wk.st.cached.Add(1)
					d.fileIDs[slot] = id
					continue
				}
				id, moved, err := w.hashFile(dfd.fd, abs, d.fileNames[slot], &stats[j], overs[j])
				if err != nil {
					return err
				}
				if !moved {
					wk.inodeHashed(&stats[j], overs[j], d.noCtime, id)
				}
				d.fileIDs[slot] = id
				if moved {
					// The listing's stat is not of what was hashed.
					d.fileKeys[slot] = statKey{}
				}
			}
			return wk.finished(d)
		})
	}
	return nil
}

// inodeID is what walker.inodes keeps for an inode.
type inodeID struct {
	key statKey
	id  repo.ID
}

// inodeSeen returns the id another name of the regular file whose listing
// stat is st was hashed to in this walk, if that name had the same stat.
// Only a stat old enough to trust counts (as for the stat cache): any
// change since the walk started moves its ctime, so the same stat is the
// same content. A name a stat override applies to is always hashed.
func (wk *walker) inodeSeen(st *unix.Stat_t, o *override, noCtime bool) (repo.ID, bool) {
	if st.Nlink < 2 || o != nil || noCtime || !trusted(st, wk.start) {
		return repo.ID{}, false
	}
	v, ok := wk.inodes.Load([2]uint64{st.Dev, st.Ino})
	if !ok {
		return repo.ID{}, false
	}
	e := v.(inodeID)
	return e.id, e.key == keyOf(st)
}

// inodeHashed records that the regular file whose listing stat is st,
// unchanged while it was read, was hashed to id (see inodeSeen).
func (wk *walker) inodeHashed(st *unix.Stat_t, o *override, noCtime bool, id repo.ID) {
	if st.Nlink < 2 || o != nil || noCtime || !trusted(st, wk.start) {
		return
	}
	wk.inodes.Store([2]uint64{st.Dev, st.Ino}, inodeID{keyOf(st), id})
}

// special stores the symlink, device or FIFO name of the directory abs
// open at dfd; o is its stat override, if any.
func (w *worker) special(dfd int, abs, name string, st *unix.Stat_t, o *override) (repo.ID, error) {
	path := abs + "/" + name
	h, err := DiskHeaderAt(dfd, abs, name, st, !w.walker.mod.keepsXattrs())
	if err != nil {
		return repo.ID{}, err
	}
	// The target and xattrs were read by name after the listing's
	// stat: one replaced in between would mix two entries. Times are
	// not compared: writing to a FIFO moves them, and changes nothing
	// the commit records.
	var now unix.Stat_t
	if err := unix.Fstatat(dfd, name, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return repo.ID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || now.Mode != st.Mode || now.Uid != st.Uid || now.Gid != st.Gid || now.Rdev != st.Rdev {
		return repo.ID{}, fmt.Errorf("%s: changed while being committed", path)
	}
	if err := w.walker.mod.file(h, o); err != nil {
		return repo.ID{}, fmt.Errorf("%s: %w", path, err)
	}
	id := repo.FileID(h, nil)
	if _, err := w.walker.txn.WriteFile(h, id, nil); err != nil {
		return repo.ID{}, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

// listedHook, when set (by tests), is called once each entry a walk lists
// is stat'ed, before it is opened.
var listedHook func(path string)

// hashHook, when set (by tests), is called before each file is hashed.
var hashHook func(path string)

// openedHook, when set (by tests), is called once each file to hash is
// open, before it is read.
var openedHook func(path string)

// largeReadHook, when set (by tests), wraps the reader a large file is
// hashed from, so that a test can act once a given part of it is read.
var largeReadHook func(io.Reader) io.Reader

// hashFile reads a regular file once, hashing header and content, and
// stores it if the repository lacks it; o is its stat override, if any.
// The header is taken from the file as opened, not from the listing's
// stat lst: a file replaced or changed in between (moved) would otherwise
// be recorded with one inode's mode and owner and another's content.
func (w *worker) hashFile(dfd int, abs, name string, lst *unix.Stat_t, o *override) (_ repo.ID, moved bool, _ error) {
	path := abs + "/" + name
	if hashHook != nil {
		hashHook(path)
	}
	// O_NONBLOCK: should it have been swapped for a FIFO since the
	// listing, do not wait for a writer (the fstat below refuses it).
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return repo.ID{}, false, &os.PathError{Op: "open", Path: path, Err: err}
	}
	owned := true // false once an os.File owns fd (and will close it)
	defer func() {
		if owned {
			unix.Close(fd)
		}
	}()
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil {
		return repo.ID{}, false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if fst.Mode&unix.S_IFMT != unix.S_IFREG {
		return repo.ID{}, false, fmt.Errorf("%s: file changed while being committed (no longer a regular file)", path)
	}
	st := &fst
	moved = keyOf(st) != keyOf(lst)
	if openedHook != nil {
		openedHook(path)
	}
	id, err := w.hashOpen(fd, path, st, o, &owned)
	return id, moved, err
}

// hashOpen hashes and stores the regular file open at fd, whose fstat is
// st. A small file is checked unchanged after it is read, a large one
// after it is copied: what is stored is then one state the file had, not
// a mix of two writes.
func (w *worker) hashOpen(fd int, path string, st *unix.Stat_t, o *override, owned *bool) (repo.ID, error) {
	wk := w.walker
	h, err := wk.mod.regularHeader(fd, st, o)
	if err != nil {
		return repo.ID{}, fmt.Errorf("%s: %w", path, err)
	}
	w.hdr = repo.AppendFileHeader(w.hdr[:0], &h)
	w.h.Reset()
	w.h.Write(w.hdr)
	var id repo.ID
	var isNew bool
	if w.buf == nil {
		w.buf = make([]byte, smallFile)
	}
	if st.Size <= smallFile {
		// Read whole in (usually) one read; room for one byte more
		// catches a file that grew before the read.
		n, err := readFull(fd, w.buf[:min(int(st.Size)+1, len(w.buf))], int(st.Size))
		if err != nil {
			return repo.ID{}, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if int64(n) != st.Size {
			return repo.ID{}, sizeMismatch(fd, path, st.Size, int64(n))
		}
		var now unix.Stat_t
		if err := unix.Fstat(fd, &now); err != nil {
			return repo.ID{}, &os.PathError{Op: "stat", Path: path, Err: err}
		}
		if now.Size != st.Size || now.Mtim != st.Mtim || now.Ctim != st.Ctim {
			return repo.ID{}, fmt.Errorf("%s: file changed while being committed: %w", path, repo.ErrSourceChanged)
		}
		buf := w.buf[:n]
		w.h.Write(buf)
		id = repo.ID(w.h.Sum())
		if isNew, err = wk.txn.WriteFile(&h, id, buf); err != nil {
			return repo.ID{}, fmt.Errorf("%s: %w", path, err)
		}
	} else {
		// Large files are hashed streaming, then copied by the kernel.
		f := os.NewFile(uintptr(fd), path)
		*owned = false
		defer f.Close()
		var src io.Reader = io.LimitReader(f, st.Size+1)
		if largeReadHook != nil {
			src = largeReadHook(src)
		}
		if st.Size > ctxread.Every {
			// Hashing a large file takes a while: a cancel stops it.
			src = ctxread.Reader(wk.ctx, src)
		}
		n, err := io.CopyBuffer(w.h, src, w.buf)
		if err != nil {
			return repo.ID{}, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n != st.Size {
			return repo.ID{}, sizeMismatch(fd, path, st.Size, n)
		}
		id = repo.ID(w.h.Sum())
		// The copy reads the file again: it must not have changed since
		// it was opened, or the object would not be what was hashed.
		if isNew, err = wk.txn.WriteFileFromUnchanged(&h, id, f, st); err != nil {
			if errors.Is(err, repo.ErrSourceChanged) {
				return repo.ID{}, fmt.Errorf("%s: file changed while being committed: %w", path, repo.ErrSourceChanged)
			}
			return repo.ID{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	wk.st.hashed.Add(1)
	wk.st.bytesHashed.Add(st.Size)
	if isNew {
		wk.st.bytesNew.Add(st.Size)
	} else {
		wk.txn.IndexHeader(id, &h)
	}
	return id, nil
}

// readFull reads until buf is full, EOF, or want bytes have arrived (a
// regular file of the expected size needs no extra read to see EOF).
func readFull(fd int, buf []byte, want int) (int, error) {
	n := 0
	for n < len(buf) && (n < want || n == 0 && want == 0) {
		c, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if c == 0 {
			break
		}
		n += c
	}
	return n, nil
}

// sizeMismatch is the error for a regular file, open at fd, of which size
// bytes were expected and read were read.
func sizeMismatch(fd int, path string, size, read int64) error {
	if err := PseudoFileError(fd, path, size, read); err != nil {
		return err
	}
	return fmt.Errorf("%s: file changed while being committed (size %d, read %d)", path, size, read)
}

// PseudoFileError is the error for a file open at fd, of which size bytes
// were expected and read were read (one byte past size at most), if it is
// a file of the kernel's own filesystems (a /proc or /sys file, bound into
// the source), and nil otherwise. Such a file has no size of its own: it
// shows 0 or 4096 whatever it reads, and no commit could record it as
// read; the error says so, rather than that it is being written, with the
// length of its content.
func PseudoFileError(fd int, path string, size, read int64) error {
	var fs unix.Statfs_t
	if unix.Fstatfs(fd, &fs) != nil {
		return nil
	}
	name, ok := pseudoFS[uint32(fs.Type)]
	if !ok {
		return nil
	}
	return fmt.Errorf("%s: a file of %s, whose size (%d) is not that of its content (%s): copy it into a regular file to commit it", path, name, size, contentLength(fd, size, read))
}

// maxPseudoRead bounds what contentLength reads of a pseudo file's rest.
const maxPseudoRead = 1 << 20

// contentLength gives the length of the content of the file open at fd,
// of which read bytes were read. A read that passed size stopped there,
// one byte on, so the rest is read to the end, up to maxPseudoRead more,
// without waiting: some such files are streams (/proc/kmsg, a tracefs
// trace_pipe) whose read blocks until the kernel has more to say, which
// would hang the command past any signal.
func contentLength(fd int, size, read int64) string {
	if read <= size {
		return fmt.Sprintf("%d bytes", read)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Sprintf("%d bytes or more", read)
	}
	buf := make([]byte, 64<<10)
	for more := int64(0); more < maxPseudoRead; {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Sprintf("%d bytes or more", read)
		}
		if n == 0 {
			return fmt.Sprintf("%d bytes", read)
		}
		read += int64(n)
		more += int64(n)
	}
	return fmt.Sprintf("over %d bytes", read)
}

// pseudoFS names the filesystems whose files' content the kernel makes up
// as they are read.
var pseudoFS = map[uint32]string{
	unix.PROC_SUPER_MAGIC:    "procfs",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroupfs",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2fs",
}

// noChangeTimes reports whether the directory open at fd is on a
// filesystem that stores no change time of its own (noChangeTimesFS), or
// one that cannot be told; nothing there is cached.
func noChangeTimes(fd int) bool {
	var fs unix.Statfs_t
	if unix.Fstatfs(fd, &fs) != nil {
		return true
	}
	return noChangeTimesFS(uint32(fs.Type))
}

// noChangeTimesFS reports whether a filesystem of type fsType (its statfs
// magic) has no ctime that every change moves. A read-only image
// (squashfs, erofs, ISO 9660, cramfs, romfs) shows only times the tool
// that built it chose: another image mounted in its place on the same
// device can show a changed file with the same inode, size and times.
// Overlayfs shows the inodes and times of its layers, which may be such
// images (composefs, a live system's root), and which its mount options
// may name by relative paths. FAT (msdos, vfat) keeps no change time:
// Linux shows the mtime as the ctime, so a write that puts the mtime back
// (touch -r, cp -p, tar) leaves the whole stat as it was.
func noChangeTimesFS(fsType uint32) bool {
	switch fsType {
	case unix.SQUASHFS_MAGIC, unix.EROFS_SUPER_MAGIC_V1, unix.ISOFS_SUPER_MAGIC, unix.CRAMFS_MAGIC, romfsMagic, unix.OVERLAYFS_SUPER_MAGIC,
		unix.MSDOS_SUPER_MAGIC:
		return true
	}
	return false
}

const romfsMagic = 0x7275 // ROMFS_MAGIC of linux/magic.h

// bootID is the kernel's id of this boot, or nil if it cannot be read.
var bootID = sync.OnceValue(func() []byte {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil
	}
	return bytes.TrimSpace(b)
})

// mountToken identifies the mount the directory open at fd is on, among
// every mount of every boot: a hash of the boot id and the mount's id,
// the one the kernel never reuses (Linux 6.8 on) where it gives it, else
// the plain one, which a later mount may take over once this one is gone.
// 0 means it cannot be told, and nothing found there is cached.
func mountToken(fd int) uint64 {
	boot := bootID()
	if len(boot) == 0 {
		return 0
	}
	var stx unix.Statx_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID_UNIQUE, &stx) != nil {
		return 0
	}
	var kind byte
	switch {
	case stx.Mask&unix.STATX_MNT_ID_UNIQUE != 0:
		kind = 'u'
	case stx.Mask&unix.STATX_MNT_ID != 0:
		kind = 'r'
	default:
		return 0
	}
	h := fnv.New64a()
	h.Write(boot)
	h.Write([]byte{kind})
	h.Write(binary.LittleEndian.AppendUint64(nil, stx.Mnt_id))
	return max(h.Sum64(), 1)
}

// devino maps the inodes of a repository's file objects to their ids, so a
// source file that is a hardlink of an object is known without reading it.
//
// A hardlink shares the object's inode: a chmod, chown, setfattr or write
// through it changes the object too, which then no longer matches its
// id. So a hit counts only when the inode still looks as the object's
// header says it must (unchanged), checked without reading the content:
// the mtime every object has (0), the size and disk mode the header
// gives, and in bare-user the owner of the repository's objects and no
// xattr beyond the header's own. In a bare repository the inode is the
// header, so the header the inode now gives must have the digest the
// file-header index recorded when the object was stored; an object the
// index lacks is read. The caller may vouch for every hit instead (trust,
// OSTree's --devino-canonical).
type devino struct {
	r        *repo.Repo
	mode     repo.Mode
	dev      uint64
	uid, gid uint32 // owner of objects/: a bare-user object's on-disk owner
	trust    bool   // take every hit as unchanged, unchecked
	once     sync.Once
	m        map[uint64]repo.ID
	heads    *repo.HeaderIndex
}

// newDevino returns nil when the repository's objects cannot be listed.
func newDevino(r *repo.Repo, trust bool) *devino {
	var st unix.Stat_t
	if unix.Stat(r.Path("objects"), &st) != nil {
		return nil
	}
	return &devino{r: r, mode: r.Mode(), dev: st.Dev, uid: st.Uid, gid: st.Gid, trust: trust}
}

// lookup returns the object the regular file name in directory dir, whose
// lstat is st, is a hardlink of, if it is one and is unchanged.
func (d *devino) lookup(dir, name string, st *unix.Stat_t) (repo.ID, bool) {
	if st.Dev != d.dev {
		return repo.ID{}, false
	}
	d.once.Do(d.load)
	id, ok := d.m[st.Ino]
	if !ok || d.trust {
		return id, ok
	}
	return id, d.unchanged(dir+"/"+name, st, id)
}

// unchanged reports whether the inode of object id, seen at path with
// lstat st, still matches the object's header.
func (d *devino) unchanged(path string, st *unix.Stat_t, id repo.ID) bool {
	if st.Mtim.Sec != 0 || st.Mtim.Nsec != 0 {
		return false // written through the link (objects keep mtime 0)
	}
	perm := st.Mode & 0o7777
	e, ok := d.heads.Lookup(id)
	mode, size := e.Mode, e.Size
	switch d.mode {
	case repo.ModeBare:
		// Owner, mode and xattrs are the inode's own; only the index
		// remembers what they were.
		if !ok || uint64(st.Size) != size || perm != mode {
			return false
		}
		x, err := xattr.List(path, skipXattr)
		if err != nil {
			return false
		}
		h := repo.FileHeader{Type: repo.TypeRegular, Mode: perm, UID: st.Uid, GID: st.Gid, Xattrs: x, Size: size}
		return repo.DigestHeader(&h) == e.Digest
	case repo.ModeBareUserOnly:
		// The header is the inode's mode (canonical: owner and xattrs
		// are not recorded); only the index remembers what it was.
		return ok && perm == mode && uint64(st.Size) == size
	case repo.ModeBareUser:
		if !ok {
			b, err := xattr.Get(path, repo.UserMetaXattr)
			if err != nil {
				return false
			}
			h, err := repo.DecodeUserMeta(b, func() (string, error) { return "", errors.New("not a regular file") })
			if err != nil || h.Type != repo.TypeRegular {
				return false
			}
			mode, size = h.Mode, h.Size
		}
		if uint64(st.Size) != size || perm != repo.BareUserDiskMode(mode) && perm != mode&0o777|0o400 {
			return false
		}
		return st.Uid == d.uid && st.Gid == d.gid && onlyObjectXattrs(path)
	}
	return false
}

// onlyObjectXattrs reports whether the file at path has no xattr but the
// header of a bare-user object and the SELinux label a host gives every
// new file: anything else was set through a hardlink.
func onlyObjectXattrs(path string) bool {
	buf := make([]byte, 128)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		return false
	}
	for _, name := range bytes.Split(buf[:n], []byte{0}) {
		switch string(name) {
		case "", repo.UserMetaXattr, "security.selinux":
		default:
			return false
		}
	}
	return true
}

// close releases the file-header index, if loaded.
func (d *devino) close() {
	if d != nil {
		d.heads.Close()
	}
}

// load scans objects/ once; inode numbers come from the directory entries
// themselves, so this costs one getdents per fan-out directory. It also
// maps the file-header index, which gives most objects' mode and size.
func (d *devino) load() {
	if !d.trust {
		d.heads = d.r.LoadHeaderIndex()
	}
	d.m = map[uint64]repo.ID{}
	buf := make([]byte, 64<<10)
	for i := 0; i < 256; i++ {
		sub := fmt.Sprintf("%02x", i)
		fd, err := unix.Open(d.r.Path("objects", sub), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		dirent.Each(fd, buf, sub, func(name []byte, ino uint64) {
			if len(name) == 62+5 && string(name[62:]) == ".file" {
				if id, err := repo.ParseID(sub + string(name[:62])); err == nil {
					d.m[ino] = id
				}
			}
		})
		unix.Close(fd)
	}
}
