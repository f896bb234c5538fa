package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otree/otree/internal/ctxread"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/fsattr"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/rawfd"
	"github.com/otree/otree/internal/xattr"
	"golang.org/x/sys/unix"
)

// Txn is a write transaction. Objects are staged in a private directory under
// tmp/, and only Commit makes them durable, moves them into objects/ without
// replacing anything, and then writes the queued refs. A transaction that is
// never committed (or a process killed mid-way) leaves the repository as it
// was; its staging directory is removed by the next transaction or prune.
//
// Commit, whatever it returns, and Abort end the transaction: Abort then
// does nothing more, and writes, SetRef, Publish and Commit fail.
//
// The write methods are safe for concurrent use with each other; Commit
// and Abort are not, with them or with each other: call them once the
// writes have returned.
type Txn struct {
	r *Repo
	// ctx is Begin's: it stops long copies into staged objects (see Begin).
	ctx   context.Context
	lock  *Lock // nil when the caller holds the lock (beginHeld)
	dir   string
	dirFd int
	// cfrOff remembers that copy_file_range from the sources failed
	// (rawfd.CopyExtents), so that each large file does not try it again.
	cfrOff atomic.Bool
	dirLk  *os.File
	// ended is set when Commit or Abort releases the transaction: dirFd
	// is closed then, and its number may name another file of the
	// process, so every later use fails with errTxnEnded instead.
	ended atomic.Bool
	// unsynced holds the unsynced-objects marker, for a transaction that
	// does not sync (unsyncedMarker).
	unsynced *os.File
	sync     bool
	// perObject: sync each object (TxnOptions.PerObjectFsync).
	perObject bool
	space     *spaceBudget // nil: no free-space reserve

	// metaMu keeps WriteCommitMeta, ReadCommitMeta's staged read and
	// Publish apart (see Publish).
	metaMu sync.Mutex
	mu     sync.Mutex
	staged map[objKey]struct{}
	ready  map[objKey]struct{} // staged completely and not yet published
	refs   map[string]ID
	// roots holds the root dirtree and dirmeta of each commit this
	// transaction staged, which Commit checks a ref to it against.
	roots map[ID][2]ID
	heads []IndexedHeader // regular file objects for the file-header index (all but archive)
	seq   atomic.Uint64

	objects   atomic.Int64
	bytes     atomic.Int64
	files     atomic.Int64        // of objects, file objects
	fileBytes atomic.Int64        // of bytes, those of file objects
	metas     atomic.Int64        // WriteMeta calls
	linked    atomic.Int64        // of files, those hardlinked (LinkFileVerified)
	sizes     map[objKey][2]int64 // with RecordSizes: stored and unpacked size of each object staged
	fan       [256]atomic.Bool    // fan-out directory made in the staging directory (stageName)
	special   atomic.Bool         // a symlink, device or FIFO is staged

	// The owner of the files the transaction creates (copyOwner).
	ownerOnce sync.Once
	uid, gid  uint32
}

type objKey struct {
	kind Kind
	id   ID
}

// Config keys of a repository's durability, OSTree's: with core.fsync
// false every transaction runs as with TxnOptions.NoSync; with
// core.per-object-fsync true, as with TxnOptions.PerObjectFsync.
const (
	ConfigFsync          = "core.fsync"
	ConfigPerObjectFsync = "core.per-object-fsync"
)

// ConfigAutoUpdateSummary is OSTree's config key asking for the summary
// to be written anew whenever refs or deltas change (remote.AutoUpdateSummary).
const ConfigAutoUpdateSummary = "core.auto-update-summary"

// ConfigCommitUpdateSummary is OSTree's older name for
// ConfigAutoUpdateSummary: either set to true turns it on (as in OSTree).
const ConfigCommitUpdateSummary = "core.commit-update-summary"

// ConfigNoDeltasInSummary is OSTree's config key that keeps the summary
// from listing static deltas one by one: clients find them through the
// delta indexes it lists instead, so it stays small on a server with many
// deltas (docs/DELTAS.md §5).
const ConfigNoDeltasInSummary = "core.no-deltas-in-summary"

// Fsync reports whether the repository's writes are made durable: false
// only when its config sets core.fsync to false (an unreadable value, which
// Begin refuses, counts as true).
func (r *Repo) Fsync() bool {
	on, err := r.config.Bool(ConfigFsync, true)
	return on || err != nil
}

// TxnOptions configure a transaction.
type TxnOptions struct {
	// NoSync skips fsync/syncfs: faster, but a crash may lose or truncate
	// objects the ref then points at. For throwaway repositories only.
	// Such a transaction records that it published objects unsynced
	// (tmp/unsynced); Begin waits while another process's durable
	// transaction is syncing them.
	NoSync bool
	// Publishable keeps track of the objects whose staging finished, which
	// Publish needs; transactions that only Commit skip that bookkeeping.
	Publishable bool
	// RecordSizes remembers the size of each object staged, for
	// ObjectSizes.
	RecordSizes bool
	// PerObjectFsync makes objects durable with an fsync of each and of
	// the directories they land in, never a syncfs, which also waits for
	// every other process's dirty data on the filesystem (OSTree's
	// --per-object-fsync). Symlinks, devices and FIFOs staged in bare
	// modes cannot be fsynced, nor can bare-user-only files recorded
	// without their owner's read bit be opened again; a batch holding one
	// is still synced with syncfs.
	PerObjectFsync bool
}

// TxnStats counts what a transaction wrote.
type TxnStats struct {
	Objects     int64 // objects staged (new to the repository)
	Bytes       int64 // bytes staged, as stored (compressed in archive mode)
	FileObjects int64 // of Objects, file objects
	FileBytes   int64 // of Bytes, those of file objects
	// MetaWrites counts the dirtrees, dirmetas and commits handed to
	// WriteMeta, staged or found present.
	MetaWrites int64
	// LinkedFiles counts the file objects of FileObjects staged as
	// hardlinks of another repository's (LinkFileVerified): their bytes
	// are not in Bytes, since none were written.
	LinkedFiles int64
}

// Begin starts a transaction, holding the repository lock shared until
// Commit or Abort. A ctx already done fails Begin with its error, even
// with the lock free. ctx bounds the wait for the lock and, for the life of
// the transaction, the copies of large contents (WriteFileFrom compressing
// in archive mode, WriteFileStream spooling): once ctx is done they stop
// with its error, staging nothing. Other writes, Commit and Abort do not
// look at it.
func (r *Repo) Begin(ctx context.Context, opts TxnOptions) (*Txn, error) {
	if r.readOnly != nil {
		return nil, r.errReadOnly()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("repository %s: starting a transaction: %w", r.path, err)
	}
	space, err := r.newSpaceBudget()
	if err != nil {
		return nil, err
	}
	lk, err := r.LockShared(ctx)
	if err != nil {
		return nil, err
	}
	r.cleanStaleStaging()
	t, err := r.begin(ctx, opts, space)
	if err != nil {
		lk.Unlock()
		return nil, err
	}
	t.ctx = ctx
	t.lock = lk
	return t, nil
}

// beginHeld starts a transaction for a caller that holds the repository
// lock exclusively (prune), which the transaction neither takes nor
// releases. It has no free-space reserve: what it writes is tiny, and
// prune is what frees space.
func (r *Repo) beginHeld() (*Txn, error) {
	if r.readOnly != nil {
		return nil, r.errReadOnly()
	}
	return r.begin(context.Background(), TxnOptions{}, nil)
}

// begin creates a transaction's staging directory; the caller holds the
// repository lock. ctx bounds the wait for the unsynced marker.
func (r *Repo) begin(ctx context.Context, opts TxnOptions, space *spaceBudget) (*Txn, error) {
	// The repository-wide durability settings, OSTree's.
	fsync, err := r.config.Bool(ConfigFsync, true)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.path, err)
	}
	perObject, err := r.config.Bool(ConfigPerObjectFsync, false)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.path, err)
	}
	opts.NoSync = opts.NoSync || !fsync
	opts.PerObjectFsync = opts.PerObjectFsync || perObject
	// The staging directory is flock'ed while in use so that cleanup can
	// tell a live transaction from one whose process died. It is created
	// under a name cleanup ignores and renamed once locked, so cleanup never
	// sees it unlocked.
	r.spreadOnce.Do(r.spreadStaging)
	fresh, err := os.MkdirTemp(r.Path("tmp"), "new-")
	if err != nil {
		return nil, fmt.Errorf("starting transaction in %s: %w", r.path, err)
	}
	dir := filepath.Join(filepath.Dir(fresh), "txn-"+strings.TrimPrefix(filepath.Base(fresh), "new-"))
	dl, err := os.Open(fresh)
	if err == nil {
		if err = unix.Flock(int(dl.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			err = os.Rename(fresh, dir)
		}
		if err != nil {
			dl.Close()
		}
	}
	if err != nil {
		os.RemoveAll(fresh)
		return nil, fmt.Errorf("starting transaction in %s: %w", r.path, err)
	}
	t := &Txn{r: r, ctx: context.Background(), dir: dir, dirFd: int(dl.Fd()), dirLk: dl, sync: !opts.NoSync, perObject: opts.PerObjectFsync,
		space: space, staged: map[objKey]struct{}{}, refs: map[string]ID{}, roots: map[ID][2]ID{}}
	if !t.sync {
		if t.unsynced, err = r.holdUnsynced(ctx); err != nil {
			os.RemoveAll(dir)
			dl.Close()
			return nil, err
		}
	}
	if opts.Publishable {
		t.ready = map[objKey]struct{}{}
	}
	if opts.RecordSizes {
		t.sizes = map[objKey][2]int64{}
	}
	return t, nil
}

// spreadStaging sets ext4's top-directory flag on tmp/ at a Repo's first
// transaction (so repositories made before it get it too): each staging
// directory, where a transaction's objects get their inodes, then starts
// in a block group of its own rather than next to the inodes of objects
// just deleted. On an ext4 without a journal, allocating an inode there
// scans past all of them (for a minute after the delete, six while it is
// unwritten): a commit of /usr/local/go made right after the previous
// one's repository was removed took 3.1-4.6 s against 1.5-1.9 s. Only a
// hint: filesystems without the flag ignore it, and a failure (tmp/ owned
// by another user) costs nothing but that.
func (r *Repo) spreadStaging() { _ = fsattr.SetTopDir(r.Path("tmp")) }

// cleanStaleStaging removes staging directories of dead transactions: those
// whose flock can be taken, plus directories of transactions that died
// between creating and locking theirs (older than a minute).
func (r *Repo) cleanStaleStaging() {
	ents, err := os.ReadDir(r.Path("tmp"))
	if err != nil {
		return
	}
	for _, e := range ents {
		p := r.Path("tmp", e.Name())
		switch {
		case !e.IsDir():
		case strings.HasPrefix(e.Name(), "txn-"):
			durable.RemoveAbandoned(p)
		case strings.HasPrefix(e.Name(), "new-"):
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				os.RemoveAll(p)
			}
		case strings.HasPrefix(e.Name(), droppedCachePrefix):
			os.RemoveAll(p)
		}
	}
	r.cleanPartialDownloads()
	// Temporary files of cache writes killed half-way.
	removeOldTemps(r.CacheDir(), func(name string) bool { return strings.Contains(name, ".tmp-") })
}

// cleanAbandonedTemps removes the temporary files that ref, config and
// summary writes killed half-way leave in the repository directory and
// below refs/. Prune's work, not every transaction's: it walks every ref.
func (r *Repo) cleanAbandonedTemps() {
	removeOldTemps(r.path, durable.IsTemp)
	filepath.WalkDir(r.Path("refs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && durable.IsTemp(d.Name()) {
			removeIfOld(p)
		}
		return nil
	})
}

// removeOldTemps removes the regular files of dir that isTemp names.
func removeOldTemps(dir string, isTemp func(name string) bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Type().IsRegular() && isTemp(e.Name()) {
			removeIfOld(filepath.Join(dir, e.Name()))
		}
	}
}

// removeIfOld removes the file p if it is over a minute old: the age
// spares a write going on now (a config write does not wait for prune).
func removeIfOld(p string) {
	if fi, err := os.Lstat(p); err == nil && time.Since(fi.ModTime()) > time.Minute {
		os.Remove(p)
	}
}

// Repo returns the transaction's repository.
func (t *Txn) Repo() *Repo { return t.r }

// Stats returns what has been staged so far.
func (t *Txn) Stats() TxnStats {
	return TxnStats{Objects: t.objects.Load(), Bytes: t.bytes.Load(), FileObjects: t.files.Load(), FileBytes: t.fileBytes.Load(),
		MetaWrites: t.metas.Load(), LinkedFiles: t.linked.Load()}
}

// Has reports whether the object is stored or staged.
func (t *Txn) Has(kind Kind, id ID) (bool, error) {
	t.mu.Lock()
	_, ok := t.staged[objKey{kind, id}]
	t.mu.Unlock()
	if ok {
		return true, nil
	}
	return t.r.HasObject(kind, id)
}

// StatFile returns the header of file object id, staged by the
// transaction or stored, without reading its content.
func (t *Txn) StatFile(id ID) (*FileHeader, error) {
	t.mu.Lock()
	_, staged := t.staged[objKey{KindFile, id}]
	t.mu.Unlock()
	if staged {
		name := stagedName(KindFile, id)
		h, c, _, err := t.r.openFileAt(t.dirFd, name, filepath.Join(t.dir, name), id, false, nil)
		if c != nil {
			c.Close()
		}
		// Not there: published since, or found stored rather than staged.
		if missing := (*ObjectMissingError)(nil); !errors.As(err, &missing) {
			return h, err
		}
	}
	return t.r.StatFile(id)
}

// errTxnEnded is why a transaction cannot be used once committed or
// aborted.
var errTxnEnded = errors.New("the transaction has already been committed or aborted")

// live fails once the transaction has ended (see Txn.ended).
func (t *Txn) live() error {
	if t.ended.Load() {
		return fmt.Errorf("repository %s: %w", t.r.path, errTxnEnded)
	}
	return nil
}

// claim reports whether the caller should write the object: it is neither
// stored nor staged (nor being staged by another goroutine).
func (t *Txn) claim(kind Kind, id ID) (bool, error) {
	if err := t.live(); err != nil {
		return false, err
	}
	k := objKey{kind, id}
	t.mu.Lock()
	if _, ok := t.staged[k]; ok {
		t.mu.Unlock()
		return false, nil
	}
	t.staged[k] = struct{}{}
	t.mu.Unlock()
	has, err := t.r.HasObject(kind, id)
	if err != nil || has {
		t.mu.Lock()
		delete(t.staged, k)
		t.mu.Unlock()
		return false, err
	}
	return true, nil
}

// stagedName is where an object is staged, relative to the staging
// directory: fanned out like objects/, so that workers creating files do
// not all queue on one directory's lock. Only stageName creates the
// subdirectory: a name from here is for an object staged already.
func stagedName(kind Kind, id ID) string { return objectPath(kind, id) }

// stageName returns stagedName(kind, id), creating its subdirectory on
// first use. A failed mkdir is returned (ENOSPC, say) and tried again for
// the next object of that subdirectory: every object of it would otherwise
// fail, and with a misleading ENOENT from the open.
func (t *Txn) stageName(kind Kind, id ID) (string, error) {
	name := stagedName(kind, id)
	if made := &t.fan[id[0]]; !made.Load() {
		// Goroutines that race here both mkdir: EEXIST is success.
		if err := stageMkdirat(t.dirFd, name[:2], 0o755); err != nil && err != unix.EEXIST {
			return "", fmt.Errorf("staging %s %s: creating %s: %w", kind, id, filepath.Join(t.dir, name[:2]), err)
		}
		made.Store(true)
	}
	return name, nil
}

// stageMkdirat creates stageName's subdirectories; a variable so that a
// test can make it fail.
var stageMkdirat = unix.Mkdirat

// WriteMeta stores a dirtree, dirmeta or commit encoding and returns its id.
// Bytes that do not decode strictly as kind (a DirTree built with its
// entries unsorted, say) are refused and nothing is staged: stored, they
// would be a corrupt object that only a later read or fsck finds. (Bytes
// already stored are not decoded again: they are that object's own.)
func (t *Txn) WriteMeta(kind Kind, data []byte) (ID, error) {
	if kind != KindDirTree && kind != KindDirMeta && kind != KindCommit {
		return ID{}, fmt.Errorf("writing a %s object: WriteMeta stores only dirtree, dirmeta and commit objects", kind)
	}
	t.metas.Add(1)
	id := Sum(data)
	ok, err := t.claim(kind, id)
	if err != nil || !ok {
		return id, err
	}
	// Decoded only when new: bytes stored or staged already are those of
	// an object written before, and a recommit finds most of its
	// dirtrees there, where a decode would cost more than the hash.
	c, err := checkMeta(kind, data)
	if err != nil {
		t.settle(kind, id, err)
		return ID{}, err
	}
	if err := t.stageClaimedMeta(kind, id, data); err != nil {
		return id, err
	}
	if c != nil {
		// Commit checks a ref to it against these, without reading it.
		t.mu.Lock()
		t.roots[id] = [2]ID{c.RootTree, c.RootMeta}
		t.mu.Unlock()
	}
	return id, nil
}

// checkMeta reports whether data is a canonical encoding of kind, and
// returns the commit it decodes to for a commit.
func checkMeta(kind Kind, data []byte) (*Commit, error) {
	var c *Commit
	var err error
	switch kind {
	case KindDirTree:
		_, err = DecodeDirTree(data)
	case KindDirMeta:
		_, err = DecodeDirMeta(data)
	case KindCommit:
		c, err = DecodeCommit(data)
	}
	if err != nil {
		return nil, fmt.Errorf("writing a %s object: %w", kind, err)
	}
	return c, nil
}

// stageMeta stages the metadata object data under id, unless it is stored
// or staged already.
func (t *Txn) stageMeta(kind Kind, id ID, data []byte) error {
	ok, err := t.claim(kind, id)
	if err != nil || !ok {
		return err
	}
	return t.stageClaimedMeta(kind, id, data)
}

// stageClaimedMeta stages the metadata object data under id, which the
// caller claimed.
func (t *Txn) stageClaimedMeta(kind Kind, id ID, data []byte) error {
	name, err := t.stageName(kind, id)
	if err == nil {
		err = checkMetaSize(kind, id, len(data))
	}
	if err == nil {
		_, err = t.writeStaged(name, 0o644, nil, func(f *stagedFile) error {
			if _, err := f.Write(data); err != nil {
				return err
			}
			return t.r.fixMode(f.fd, 0o644)
		})
	}
	if err == nil {
		t.noteSize(objKey{kind, id}, int64(len(data)), int64(len(data)))
	}
	t.settle(kind, id, err)
	return err
}

// noteSize records a staged object's stored and unpacked size, with
// RecordSizes.
func (t *Txn) noteSize(k objKey, stored, unpacked int64) {
	if t.sizes == nil {
		return
	}
	t.mu.Lock()
	t.sizes[k] = [2]int64{stored, unpacked}
	t.mu.Unlock()
}

// ObjectSizes returns an object's size as stored (compressed, in archive
// mode) and unpacked (a file's content; a metadata object's bytes), for an
// object staged by this transaction (begun with RecordSizes) or stored.
func (t *Txn) ObjectSizes(kind Kind, id ID) (stored, unpacked int64, err error) {
	t.mu.Lock()
	s, ok := t.sizes[objKey{kind, id}]
	t.mu.Unlock()
	if ok {
		return s[0], s[1], nil
	}
	dfd, err := t.r.objDir()
	if err != nil {
		return 0, 0, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, objectPath(kind, id), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, 0, &ObjectMissingError{kind, id}
		}
		return 0, 0, fmt.Errorf("%s object %s: %w", kind, id, err)
	}
	if kind != KindFile {
		return st.Size, st.Size, nil
	}
	h, err := t.r.StatFile(id)
	if err != nil {
		return 0, 0, err
	}
	return st.Size, int64(h.Size), nil
}

// WriteCommitMeta stores detached metadata for a commit (replacing any).
// Unlike other objects it is not content-addressed. It waits for a
// Publish in progress.
func (t *Txn) WriteCommitMeta(commit ID, m Metadata) error {
	if err := t.live(); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("detached metadata of %s: %w", commit, err)
	}
	t.metaMu.Lock()
	defer t.metaMu.Unlock()
	k := objKey{KindCommitMeta, commit}
	t.mu.Lock()
	t.staged[k] = struct{}{}
	t.mu.Unlock()
	name, err := t.stageName(KindCommitMeta, commit)
	data := EncodeCommitMeta(m)
	if err == nil {
		err = checkMetaSize(KindCommitMeta, commit, len(data))
	}
	if err == nil {
		unix.Unlinkat(t.dirFd, name, 0)
		_, err = t.writeStaged(name, 0o644, nil, func(f *stagedFile) error {
			if _, err := f.Write(data); err != nil {
				return err
			}
			return t.r.fixMode(f.fd, 0o644)
		})
	}
	t.settle(KindCommitMeta, commit, err)
	return err
}

// ReadCommitMeta returns commit's detached metadata as the transaction
// stands: what it staged, else what is stored (nil when neither has any).
func (t *Txn) ReadCommitMeta(commit ID) (Metadata, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	k := objKey{KindCommitMeta, commit}
	// WriteCommitMeta rewrites the staged file in place: not read half
	// written. Publish holds it too, so the staged name is not moved
	// between the check and the open below either.
	t.metaMu.Lock()
	defer t.metaMu.Unlock()
	t.mu.Lock()
	_, staged := t.staged[k]
	t.mu.Unlock()
	if staged {
		name := stagedName(KindCommitMeta, commit)
		fd, err := unix.Openat(t.dirFd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		switch {
		case err == nil:
			f := os.NewFile(uintptr(fd), filepath.Join(t.dir, name))
			data, err := io.ReadAll(io.LimitReader(f, maxMetaObject+1))
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("reading staged commitmeta object %s: %w", commit, err)
			}
			m, err := DecodeCommitMeta(data)
			if err != nil {
				return nil, &CorruptObjectError{Kind: KindCommitMeta, ID: commit, Path: f.Name(), Reason: err.Error()}
			}
			return m, nil
		case err != unix.ENOENT:
			return nil, fmt.Errorf("reading staged commitmeta object %s: %w", commit, err)
		}
		// Published since: read from the store.
	}
	return t.r.ReadCommitMeta(commit)
}

// IndexHeader adds regular file object id, whose header is h, to the
// file-header index Commit updates, in a bare or bare-user-only
// repository: there nothing but the inode records the header, so the
// index is what tells a hardlink of the object that was since changed (a
// chmod through a checkout) from one that was not. Objects the
// transaction stages are added without it; a writer calls it for those it
// found already stored.
func (t *Txn) IndexHeader(id ID, h *FileHeader) {
	if t.r.mode != ModeBareUserOnly && t.r.mode != ModeBare || h.Type != TypeRegular {
		return
	}
	t.addHead(id, h)
}

// addHead queues regular file object id, whose header is h, for the
// file-header index.
func (t *Txn) addHead(id ID, h *FileHeader) {
	e := IndexedHeaderOf(id, h)
	t.mu.Lock()
	t.heads = append(t.heads, e)
	t.mu.Unlock()
}

// writeStaged creates the staged file name, has fill write it, and returns
// the bytes written. With from set, the staged file is from's spool,
// renamed, which already holds the content: a large object that came as a
// stream is not copied a second time, and needs its size on disk once.
func (t *Txn) writeStaged(name string, perm uint32, from *content, fill func(*stagedFile) error) (int64, error) {
	if err := t.space.object(); err != nil {
		return 0, err
	}
	var f *stagedFile
	if from != nil {
		fd, err := from.adopt(name, perm)
		if err != nil {
			return 0, fmt.Errorf("staging %s in %s: %w", name, t.dir, err)
		}
		f = &stagedFile{fd: fd, space: t.space, n: from.adopted}
	} else {
		// Read as well as written: a copy from a live file is hashed
		// again once staged (writeFileFrom).
		fd, err := unix.Openat(t.dirFd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, perm)
		if err != nil {
			return 0, fmt.Errorf("staging %s in %s: %w", name, t.dir, err)
		}
		f = &stagedFile{fd: fd, space: t.space}
	}
	err := fill(f)
	if cerr := unix.Close(f.fd); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(t.dirFd, name, 0)
		return 0, fmt.Errorf("staging %s in %s: %w", name, t.dir, err)
	}
	t.objects.Add(1)
	t.bytes.Add(f.n)
	return f.n, nil
}

// stagedFile writes to a raw descriptor: os.File would cost an fcntl per
// object on the hot path and buys nothing for a file written once.
type stagedFile struct {
	fd    int
	n     int64        // bytes written
	space *spaceBudget // counts what is written
}

// WriteAt writes p at off, counting it against the budget as Write does.
func (f *stagedFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.space.take(int64(len(p))); err != nil {
		return 0, err
	}
	n, err := rawfd.WriterAt(f.fd).WriteAt(p, off)
	f.n += int64(n)
	return n, err
}

// Truncate sets the staged file's size, for a hole at its end.
func (f *stagedFile) Truncate(size int64) error { return unix.Ftruncate(f.fd, size) }

func (f *stagedFile) Write(p []byte) (int, error) {
	if err := f.space.take(int64(len(p))); err != nil {
		return 0, err
	}
	n, err := rawfd.Writer(f.fd).Write(p)
	f.n += int64(n)
	return n, err
}

// FileID returns the id of a file object with header h and content.
func FileID(h *FileHeader, content []byte) ID {
	return Sum(AppendFileHeader(nil, h), content)
}

// WriteFile stores a file object whose content is in memory. id must be
// FileID(h, content) (callers compute it while hashing anyway); it reports
// whether the object was new. Content whose length is not h.Size is
// refused, and nothing is staged.
func (t *Txn) WriteFile(h *FileHeader, id ID, content []byte) (bool, error) {
	if err := t.checkStorable(h); err != nil {
		return false, err
	}
	// The one mismatch with id that costs nothing to see; stored, it would
	// be a corrupt object found only by a later read or fsck.
	if uint64(len(content)) != h.Size {
		return false, fmt.Errorf("staging file %s: %d bytes of content, but its header says %d", id, len(content), h.Size)
	}
	ok, err := t.claim(KindFile, id)
	if err != nil || !ok {
		return false, err
	}
	return true, t.stageFile(h, id, nil, func(f *stagedFile) error {
		if t.r.mode == ModeArchive {
			return t.writeArchived(f, content)
		}
		_, err := f.Write(content)
		return err
	})
}

// WriteFileFrom stores a file object whose content is the whole of src (a
// regular file already hashed to id by the caller, which no one else
// writes). The copy is made in the kernel (reflink or copy_file_range)
// where possible.
func (t *Txn) WriteFileFrom(h *FileHeader, id ID, src *os.File) (bool, error) {
	return t.writeFileFrom(h, id, src, nil)
}

// ErrSourceChanged is matched (errors.Is) by the error of
// WriteFileFromUnchanged when its source changed.
var ErrSourceChanged = errors.New("file changed while being stored")

// WriteFileFromUnchanged is WriteFileFrom for a source others may write
// while it is stored, such as a file of a live tree: the copy reads the
// file again after the caller hashed it. Once it is copied, and before
// anything may publish the object, src must still have the size,
// modification and change times of st, the stat it was hashed under;
// otherwise nothing is stored and the error matches ErrSourceChanged.
// The times do not see every write (one under way when src was opened,
// one in the same timestamp tick, one through a shared mapping), so the
// copy is also hashed again: content that is not id's is not stored
// either, with the same error.
func (t *Txn) WriteFileFromUnchanged(h *FileHeader, id ID, src *os.File, st *unix.Stat_t) (bool, error) {
	return t.writeFileFrom(h, id, src, func() error {
		var now unix.Stat_t
		if err := unix.Fstat(int(src.Fd()), &now); err != nil {
			return fmt.Errorf("stat after copying: %w", err)
		}
		if now.Size != st.Size || now.Mtim != st.Mtim || now.Ctim != st.Ctim {
			return ErrSourceChanged
		}
		return nil
	})
}

// writeFileFrom stages src's content as object id, then calls unchanged,
// if set, whose error discards it.
func (t *Txn) writeFileFrom(h *FileHeader, id ID, src *os.File, unchanged func() error) (bool, error) {
	if err := t.checkStorable(h); err != nil {
		return false, err
	}
	ok, err := t.claim(KindFile, id)
	if err != nil || !ok {
		return false, err
	}
	return true, t.stageFile(h, id, nil, func(f *stagedFile) error {
		// What a live source holds can change with its times unmoved (a
		// write under way when it was opened, one in the same timestamp
		// tick, one through a shared mapping): what is stored is hashed
		// again, so that it is never kept under an id it does not have.
		var hs *hash.Hasher
		if unchanged != nil {
			hs = hasherPool.Get().(*hash.Hasher)
			defer hasherPool.Put(hs)
			hs.Reset()
			hs.Write(AppendFileHeader(nil, h))
		}
		var err error
		if t.r.mode == ModeArchive {
			var r io.Reader = io.NewSectionReader(src, 0, int64(h.Size))
			if hs != nil {
				r = io.TeeReader(r, hs)
			}
			err = t.streamArchived(f, r)
		} else {
			err = copyFile(f, src, int64(h.Size), &t.cfrOff)
			if err == nil && hs != nil {
				bp := compBufs.Get().(*[]byte)
				if err = rawfd.ReadSparse(hs, f.fd, int64(h.Size), (*bp)[:cap(*bp)]); err != nil {
					err = fmt.Errorf("reading the staged copy: %w", err)
				}
				compBufs.Put(bp)
			}
		}
		// A source that shrank ends the copy early: that it changed is
		// the error to give.
		if unchanged != nil && (err == nil || errors.Is(err, io.ErrUnexpectedEOF)) {
			if uerr := unchanged(); uerr != nil {
				err = uerr
			}
		}
		if err == nil && hs != nil && ID(hs.Sum()) != id {
			err = ErrSourceChanged
		}
		return err
	})
}

// WriteFileStream stores a file object read from r (which must yield exactly
// h.Size bytes) and returns its id. It is for sources that can be read only
// once, such as a tar stream.
func (t *Txn) WriteFileStream(h *FileHeader, r io.Reader) (ID, bool, error) {
	if err := t.live(); err != nil {
		return ID{}, false, err
	}
	c, err := t.readContent(h, r)
	defer c.close()
	if err != nil {
		var se *spoolError
		switch {
		case errors.As(err, &se):
			return ID{}, false, err
		case errors.Is(err, io.ErrUnexpectedEOF):
			return ID{}, false, fmt.Errorf("content ended after %d of %d bytes", c.n, h.Size)
		}
		return ID{}, false, fmt.Errorf("reading content: %w", err)
	}
	isNew, err := t.storeContent(h, c)
	return c.id, isNew, err
}

// content is a file object's content read once from a stream and hashed
// with its header: in memory when small, else spooled to a file in the
// staging directory.
type content struct {
	t     *Txn
	id    ID
	n     uint64 // bytes read
	buf   []byte
	spool *os.File
	name  string
	// spooled is what the spool took from the free-space budget, given
	// back when it is removed.
	spooled int64
	// adopted is what spooled was when the spool became the staged
	// object (adopt).
	adopted int64
}

// readContent reads exactly h.Size bytes from src. A stream that ends
// early gives io.ErrUnexpectedEOF with c.n set. Callers close c.
func (t *Txn) readContent(h *FileHeader, src io.Reader) (*content, error) {
	c := &content{t: t}
	if h.Type != TypeRegular || h.Size <= 1<<20 {
		c.buf = make([]byte, h.Size)
		n, err := io.ReadFull(src, c.buf)
		c.n = uint64(n)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return c, err
		}
		c.id = FileID(h, c.buf)
		return c, nil
	}
	c.name = fmt.Sprintf("spool-%d", t.seq.Add(1))
	fd, err := unix.Openat(t.dirFd, c.name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		c.name = ""
		return c, fmt.Errorf("staging in %s: %w", t.dir, err)
	}
	c.spool = os.NewFile(uintptr(fd), filepath.Join(t.dir, c.name))
	hs := hash.New()
	hs.Write(AppendFileHeader(nil, h))
	// The spool holds the content uncompressed, however small the object
	// it becomes: it counts against the free-space reserve while it lasts.
	sf := &spoolFile{stagedFile: stagedFile{fd: fd, space: t.space}}
	// Runs of zeros become holes: content that arrives as a stream brings
	// none, but a sparse file's zeros need not be written out.
	n, err := rawfd.WriteSparse(sf, io.TeeReader(ctxread.Reader(t.ctx, io.LimitReader(src, int64(h.Size))), hs), make([]byte, rawfd.HoleRun))
	c.spooled = sf.n
	c.n = uint64(n)
	if err == nil && c.n != h.Size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && sf.err != nil {
		// The repository's disk failed (is full, typically), not src.
		return c, &spoolError{path: c.spool.Name(), err: err}
	}
	if err != nil {
		return c, err
	}
	c.id = ID(hs.Sum())
	return c, nil
}

// spoolFile is the spool's stagedFile, remembering whether a write to it
// failed, so that its error is not taken for one of the source.
type spoolFile struct {
	stagedFile
	err error
}

func (f *spoolFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.stagedFile.WriteAt(p, off)
	if err != nil {
		f.err = err
	}
	return n, err
}

func (f *spoolFile) Truncate(size int64) error {
	err := f.stagedFile.Truncate(size)
	if err != nil {
		f.err = err
	}
	return err
}

// spoolError is a failure to write content to its spool file in the
// staging directory: the repository's filesystem, not the source, is at
// fault.
type spoolError struct {
	path string
	err  error
}

func (e *spoolError) Error() string { return fmt.Sprintf("spooling content to %s: %v", e.path, e.err) }
func (e *spoolError) Unwrap() error { return e.err }

// storeContent stages the object c holds under c.id. A spool becomes the
// object where the object is the content itself (every mode but archive).
func (t *Txn) storeContent(h *FileHeader, c *content) (bool, error) {
	switch {
	case c.spool == nil:
		return t.WriteFile(h, c.id, c.buf)
	case t.r.mode == ModeArchive || h.Type != TypeRegular:
		return t.WriteFileFrom(h, c.id, c.spool)
	}
	if err := t.checkStorable(h); err != nil {
		return false, err
	}
	ok, err := t.claim(KindFile, c.id)
	if err != nil || !ok {
		return false, err
	}
	return true, t.stageFile(h, c.id, c, func(*stagedFile) error { return nil })
}

// adopt renames the spool to the staged file name, with mode perm, and
// returns a descriptor of its own for it. The content's bytes, counted
// against the free-space reserve when spooled, are the object's from then
// on (c.adopted).
func (c *content) adopt(name string, perm uint32) (int, error) {
	fd, err := unix.FcntlInt(c.spool.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// As if created with perm: the fill that follows sets the rest.
	if err := unix.Fchmod(fd, perm); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Renameat2(c.t.dirFd, c.name, c.t.dirFd, name, unix.RENAME_NOREPLACE); err != nil {
		unix.Close(fd)
		return -1, err
	}
	c.name, c.adopted, c.spooled = "", c.spooled, 0
	return fd, nil
}

// close removes the spool file, if any.
func (c *content) close() {
	if c.spool != nil {
		c.spool.Close()
	}
	if c.name != "" {
		unix.Unlinkat(c.t.dirFd, c.name, 0)
		c.t.space.give(c.spooled)
	}
}

// checkStorable refuses headers the repository's mode cannot hold.
func (t *Txn) checkStorable(h *FileHeader) error {
	if h == nil {
		return errors.New("staging a file object without a header")
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if (h.Type == TypeCharDevice || h.Type == TypeBlockDevice || h.Type == TypeFIFO) && t.r.mode != ModeBare && t.r.mode != ModeArchive {
		return fmt.Errorf("a %s repository cannot store a %s (only bare and archive can)", t.r.mode, h.Type)
	}
	if t.r.mode == ModeBare && h.Type != TypeRegular {
		// The kernel refuses them (EPERM) on every inode but a regular
		// file or a directory, to root too.
		for _, x := range h.Xattrs {
			if strings.HasPrefix(x.Name, "user.") {
				return fmt.Errorf("a bare repository cannot store xattr %s on a %s (Linux allows user.* xattrs only on regular files and directories)", x.Name, h.Type)
			}
		}
	}
	if t.r.mode == ModeBareUserOnly && (h.UID != 0 || h.GID != 0) {
		return fmt.Errorf("a bare-user-only repository records no owner, and the file is owned by %d:%d", h.UID, h.GID)
	}
	if t.r.mode == ModeBareUserOnly && len(h.Xattrs) > 0 {
		return fmt.Errorf("a bare-user-only repository records no xattrs, and the file has xattr %s", h.Xattrs[0].Name)
	}
	return t.r.refusedMode(h)
}

// refusedMode refuses, in a bare-user-only repository, a regular file
// whose mode has BareUserOnlyRefusedBits: its objects are what checkouts
// hardlink, with these very modes.
func (r *Repo) refusedMode(h *FileHeader) error {
	if r.mode == ModeBareUserOnly && h.Type == TypeRegular && BareUserOnlyRefusedBits(h.Mode) != 0 {
		return fmt.Errorf("a bare-user-only repository refuses mode %04o on a file (bits %04o: setuid, setgid, sticky or writable by others)",
			h.Mode&0o7777, BareUserOnlyRefusedBits(h.Mode))
	}
	return nil
}

// BareUserOnlyRefusedBits returns the bits of a regular file's mode that a
// bare-user-only repository refuses to store, as OSTree's does: those
// outside 0775 (setuid, setgid, sticky, and write for others). Its objects
// keep their mode on disk, owned by the repository's user, and are
// hardlinked into checkouts.
func BareUserOnlyRefusedBits(mode uint32) uint32 { return mode & 0o7777 &^ 0o775 }

// BareUserDiskMode is the permission mode a bare-user repository gives a
// regular file object on disk: setuid, setgid, sticky and the write bit
// for others stripped, and always readable by the repository's owner. An
// object writable by anyone would let anyone change every checkout that
// hardlinks it; a file recorded with that bit is copied, not linked.
func BareUserDiskMode(mode uint32) uint32 { return mode&0o775 | 0o400 }

// legacyBareUserDiskMode is the disk mode earlier versions gave objects,
// which kept the write bit for others; fsck accepts it.
func legacyBareUserDiskMode(mode uint32) uint32 { return mode&0o777 | 0o400 }

// zeroTimes gives a file object atime and mtime 0 (the epoch): hardlinked
// checkouts share the object's inode, and a commit must check out with the
// same times everywhere.
func zeroTimes(fd int) error {
	if err := unix.Futimes(fd, []unix.Timeval{{}, {}}); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// fixMode makes the mode of a file created with perm&0777 exactly perm.
// It always chmods: the umask, which creation applies, is the process's
// to change at any time (a goroutine that creates a private file under
// umask 077, say), and a bare object whose mode it cut would be corrupt.
func (r *Repo) fixMode(fd int, perm uint32) error {
	return unix.Fchmod(fd, perm)
}

// stageFile creates the staged object for h in the repository's mode; fill
// writes the content of regular files. With from set (a regular file, not
// in archive mode), the object is from's spool, which holds the content.
func (t *Txn) stageFile(h *FileHeader, id ID, from *content, fill func(*stagedFile) error) (err error) {
	var stored int64 // bytes written; symlinks, devices and FIFOs of bare repositories have none
	defer func() {
		if err == nil {
			t.files.Add(1)
			t.fileBytes.Add(stored)
			t.noteSize(objKey{KindFile, id}, stored, int64(h.Size))
		}
		t.settle(KindFile, id, err)
	}()
	name, err := t.stageName(KindFile, id)
	if err != nil {
		return err
	}
	switch t.r.mode {
	case ModeArchive:
		stored, err = t.writeStaged(name, 0o644, nil, func(f *stagedFile) error {
			if _, err := f.Write(AppendFileHeader(nil, h)); err != nil {
				return err
			}
			var err error
			if h.Type != TypeRegular {
				_, err = f.Write([]byte{compNone})
			} else {
				err = fill(f)
			}
			if err != nil {
				return err
			}
			return t.r.fixMode(f.fd, 0o644)
		})
		return err
	case ModeBareUser:
		mode := uint32(0o644)
		if h.Type == TypeRegular {
			mode = BareUserDiskMode(h.Mode)
		}
		// Created owner-writable: setting a user.* xattr needs write
		// permission; fixMode then takes the bit away where it must.
		stored, err = t.writeStaged(name, mode|0o200, from, func(f *stagedFile) error {
			var err error
			if h.Type == TypeSymlink {
				_, err = f.Write([]byte(h.Target))
			} else {
				err = fill(f)
			}
			if err != nil {
				return err
			}
			if err := unix.Fsetxattr(f.fd, UserMetaXattr, AppendUserMeta(nil, h), 0); err != nil {
				return fmt.Errorf("setting %s: %w", UserMetaXattr, err)
			}
			if err := zeroTimes(f.fd); err != nil {
				return err
			}
			if mode&0o200 == 0 {
				return unix.Fchmod(f.fd, mode)
			}
			return t.r.fixMode(f.fd, mode)
		})
		if err == nil && h.Type == TypeRegular {
			t.addHead(id, h)
		}
		return err
	}
	// bare and bare-user-only: the object is the file itself.
	switch h.Type {
	case TypeRegular:
		stored, err = t.writeStaged(name, h.Mode&0o777, from, func(f *stagedFile) error {
			if err := fill(f); err != nil {
				return err
			}
			fd := f.fd
			if err := zeroTimes(fd); err != nil {
				return err
			}
			if t.r.mode == ModeBare {
				if err := unix.Fchown(fd, int(h.UID), int(h.GID)); err != nil {
					return fmt.Errorf("chown: %w", err)
				}
				for _, x := range h.Xattrs {
					if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
						return fmt.Errorf("setting xattr %s: %w", x.Name, err)
					}
				}
			}
			// chmod last: chown clears setuid.
			if err := t.r.fixMode(fd, h.Mode); err != nil {
				return err
			}
			if t.r.mode == ModeBare {
				return checkACLs(h, func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) },
					func() ([]Xattr, error) { return xattr.FList(fd, nil) })
			}
			return nil
		})
		if err == nil {
			t.IndexHeader(id, h)
		}
		return err
	case TypeSymlink:
		t.special.Store(true)
		if err := t.space.object(); err != nil {
			return err
		}
		if err := unix.Symlinkat(h.Target, t.dirFd, name); err != nil {
			return fmt.Errorf("staging %s: %w", name, err)
		}
	default:
		t.special.Store(true)
		if err := t.space.object(); err != nil {
			return err
		}
		if err := unix.Mknodat(t.dirFd, name, h.Type.UnixType()|h.Mode, int(h.Rdev)); err != nil {
			return fmt.Errorf("staging %s: %w", name, err)
		}
		if err := unix.Fchmodat(t.dirFd, name, h.Mode, 0); err != nil {
			return fmt.Errorf("staging %s: %w", name, err)
		}
	}
	epoch := []unix.Timespec{{}, {}}
	if err := unix.UtimesNanoAt(t.dirFd, name, epoch, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("staging %s: setting times: %w", name, err)
	}
	if t.r.mode == ModeBare {
		if err := unix.Fchownat(t.dirFd, name, int(h.UID), int(h.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("staging %s: chown: %w", name, err)
		}
		if h.Type != TypeSymlink && h.Mode&0o6000 != 0 {
			unix.Fchmodat(t.dirFd, name, h.Mode, 0)
		}
		p := filepath.Join(t.dir, name)
		for _, x := range h.Xattrs {
			if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
				return fmt.Errorf("staging %s: setting xattr %s: %w", name, x.Name, err)
			}
		}
		if h.Type != TypeSymlink && len(h.Xattrs) > 0 {
			// An ACL sets the group bits to its mask: the mode goes last.
			if err := unix.Fchmodat(t.dirFd, name, h.Mode, 0); err != nil {
				return fmt.Errorf("staging %s: %w", name, err)
			}
		}
		if err := checkACLs(h, func(n string, b []byte) (int, error) { return unix.Lgetxattr(p, n, b) },
			func() ([]Xattr, error) { return xattr.List(p, nil) }); err != nil {
			return fmt.Errorf("staging %s: %w", name, err)
		}
	}
	t.objects.Add(1)
	return nil
}

// aclXattrPrefix starts the names of POSIX ACLs, which the kernel keeps in
// line with the mode: it rewrites an ACL's mask on chmod, and drops one that
// says no more than the mode.
const aclXattrPrefix = "system.posix_acl_"

// checkACLs reads back, with get, each ACL xattr of h set on a bare object:
// one the filesystem did not keep as given (a tar may carry an ACL at odds
// with its mode) would leave an object that does not match its id. So
// would a trusted.SGI_ACL_* name recorded beside the ACL it stands for on
// XFS, which reading the object there (list) leaves out.
func checkACLs(h *FileHeader, get func(name string, dest []byte) (int, error), list func() ([]Xattr, error)) error {
	has := func(xs []Xattr, name string) bool {
		return slices.ContainsFunc(xs, func(x Xattr) bool { return x.Name == name })
	}
	for _, x := range h.Xattrs {
		if acl := xattr.XFSACLAlias(x.Name); acl != "" && has(h.Xattrs, acl) {
			got, err := list()
			if err != nil {
				return fmt.Errorf("reading back xattrs: %w", err)
			}
			if !has(got, x.Name) {
				return fmt.Errorf("xattr %s: the filesystem (XFS) holds it as the ACL %s, which the header records too, and lists it only once: a bare repository here cannot store both", x.Name, acl)
			}
		}
		if !strings.HasPrefix(x.Name, aclXattrPrefix) {
			continue
		}
		buf := make([]byte, len(x.Value)+1)
		n, err := get(x.Name, buf)
		switch {
		case err == nil && bytes.Equal(buf[:n], x.Value):
			continue
		case err == nil, errors.Is(err, unix.ENODATA), errors.Is(err, unix.ERANGE):
			return fmt.Errorf("xattr %s: the filesystem does not keep it as given: an ACL must agree with the mode %04o (its owner, mask and other entries with the mode's bits) and hold more than the mode does", x.Name, h.Mode)
		default:
			return fmt.Errorf("reading back xattr %s: %w", x.Name, err)
		}
	}
	return nil
}

// copyFile copies n bytes of src (from offset 0) to dst, by reflink when the
// filesystem shares extents, else stretch by stretch of data
// (rawfd.CopyStretches). The holes of a sparse src stay holes: they are not
// written, and neither the free-space budget nor the bytes written count
// them. The stretches are listed once, for both.
func copyFile(dst *stagedFile, src *os.File, n int64, cfrOff *atomic.Bool) error {
	if n == 0 {
		return nil
	}
	stretches, err := rawfd.ListExtents(int(src.Fd()), n)
	if err != nil {
		return err
	}
	var data int64
	for _, st := range stretches {
		data += st.End - st.Start
	}
	if err := dst.space.take(data); err != nil {
		return err
	}
	if unix.IoctlFileClone(dst.fd, int(src.Fd())) != nil {
		if err := rawfd.CopyStretches(dst.fd, int(src.Fd()), n, stretches, nil, cfrOff); err != nil {
			return err
		}
	}
	dst.n += data
	return nil
}

// Commit makes staged objects durable, moves them into the store and then
// writes the queued refs. After an error the repository holds at worst some
// unreferenced objects; refs are untouched unless every object landed.
// Before anything is moved, it fails on a queued ref that clashes as a path
// with a stored ref or another queued one (a *RefClashError), and on one to
// a commit that, with its root dirtree and dirmeta, is neither stored nor
// staged (a *RefTargetError; see SetRef). With refs queued it holds the
// refs lock from those checks to the last ref written, unless the Repo
// holds it already (LockRefs).
func (t *Txn) Commit() error {
	if err := t.live(); err != nil {
		return err
	}
	defer t.release()
	t.mu.Lock()
	keys := make([]objKey, 0, len(t.staged))
	var commits []objKey
	for k := range t.staged {
		if k.kind == KindCommit {
			commits = append(commits, k)
		} else {
			keys = append(keys, k)
		}
	}
	t.mu.Unlock()
	// Commit objects go last, so that anyone who sees a commit in objects/
	// (fsck running beside this transaction, or a crash mid-way) also sees
	// everything it needs.
	keys = append(keys, commits...)
	names := make([]string, 0, len(t.refs))
	for n := range t.refs {
		names = append(names, n)
	}
	// Deletions first: they may make room for the refs written after.
	sort.Slice(names, func(i, j int) bool {
		di, dj := t.refs[names[i]].IsZero(), t.refs[names[j]].IsZero()
		if di != dj {
			return di
		}
		return names[i] < names[j]
	})
	if len(names) > 0 {
		// Within the repository lock the transaction holds.
		unlock, err := t.r.holdRefs(lockStep{"refs", true})
		if err != nil {
			return fmt.Errorf("writing refs %s: %w", strings.Join(names, ", "), err)
		}
		defer unlock()
	}
	// Refs are written one by one: a clash found half-way would leave
	// some moved and others not.
	if err := t.checkRefs(names); err != nil {
		return err
	}
	for _, n := range names {
		if id := t.refs[n]; !id.IsZero() {
			if err := t.r.checkRefTarget(t, n, id); err != nil {
				return err
			}
		}
	}
	if err := t.moveIn(keys); err != nil {
		return err
	}
	if err := t.r.writeRefs(names, t.refs, t.sync); err != nil {
		return err
	}
	// Only an optimisation for checkouts: the commit is done either way.
	t.r.AddToHeaderIndex(t.heads)
	return nil
}

// moveIn makes the staged objects keys durable, renames them into the
// store in that order, and makes the renames durable.
func (t *Txn) moveIn(keys []objKey) error {
	if err := t.r.checkOpen(); err != nil {
		return err
	}
	if t.sync {
		// What this transaction deduplicated against must be as durable
		// as what it writes, and as the refs Commit writes after.
		if err := t.r.syncUnsynced(); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	// A few regular files are synced one by one; anything larger costs one
	// syncfs (which also flushes other processes' dirty data, so is worth
	// it only when there is much of ours).
	few := t.syncOneByOne(len(keys))
	if t.sync {
		if err := t.syncStaged(keys, few); err != nil {
			return err
		}
	}
	// One goroutine: renames into objects/ serialise in the kernel anyway.
	for _, k := range keys {
		if err := t.publish(k); err != nil {
			return err
		}
	}
	if t.sync {
		if err := t.syncPublished(keys, few); err != nil {
			return err
		}
	}
	t.dropTombstones(keys)
	return nil
}

// fewObjects is the most staged objects synced one by one.
const fewObjects = 64

// syncOneByOne tells whether n staged objects are synced one by one
// rather than with syncfs: a few, or any number with PerObjectFsync. A
// staged symlink, device or FIFO cannot be opened to sync it.
func (t *Txn) syncOneByOne(n int) bool {
	return (n <= fewObjects || t.perObject) && !t.special.Load()
}

// syncStaged makes staged objects durable before they are published. An
// object staged as a hardlink of another repository's (LinkFileVerified)
// is synced the same way: its fsync, or the syncfs of the filesystem both
// repositories are on, also makes that repository's data durable, which
// costs nothing when it was already.
func (t *Txn) syncStaged(keys []objKey, few bool) error {
	if !few {
		if err := unix.Syncfs(t.dirFd); err != nil {
			return fmt.Errorf("syncing staged objects in %s: %w", t.dir, err)
		}
		return nil
	}
	for _, k := range keys {
		name := stagedName(k.kind, k.id)
		fd, err := unix.Openat(t.dirFd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err == unix.EACCES {
			// A bare-user-only file recorded without the owner's read
			// bit: its owner cannot open it again, so sync them all.
			return t.syncStaged(keys, false)
		}
		if err == nil {
			err = unix.Fsync(fd)
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("syncing staged %s object %s: %w", k.kind, k.id, err)
		}
	}
	return nil
}

// syncPublished makes the new names in objects/ durable.
func (t *Txn) syncPublished(keys []objKey, few bool) error {
	if !few {
		if err := unix.Syncfs(t.r.objects()); err != nil {
			return fmt.Errorf("syncing %s: %w", t.r.Path("objects"), err)
		}
		return nil
	}
	done := map[byte]bool{}
	for _, k := range keys {
		if done[k.id[0]] {
			continue
		}
		done[k.id[0]] = true
		if err := durable.SyncDir(t.r.Path("objects", objectPath(k.kind, k.id)[:2])); err != nil {
			return err
		}
	}
	return nil
}

func (t *Txn) publish(k objKey) error {
	name := stagedName(k.kind, k.id)
	dst := objectPath(k.kind, k.id)
	flags := uint(unix.RENAME_NOREPLACE)
	if k.kind == KindCommitMeta {
		flags = 0 // detached metadata is replaced, not deduplicated
	}
	dfd, err := t.r.objDir()
	if err != nil {
		return err
	}
	err = unix.Renameat2(t.dirFd, name, dfd, dst, flags)
	if errors.Is(err, unix.EEXIST) {
		return nil // already present: deduplicated
	}
	if err != nil {
		return fmt.Errorf("moving %s object %s into %s: %w", k.kind, k.id, t.r.Path("objects"), err)
	}
	return nil
}

// Abort discards everything staged; after Commit it does nothing.
func (t *Txn) Abort() error {
	t.release()
	return nil
}

func (t *Txn) release() {
	t.ended.Store(true)
	if t.dirLk == nil {
		return
	}
	os.RemoveAll(t.dir)
	t.dirLk.Close()
	t.dirLk = nil
	if t.unsynced != nil {
		t.unsynced.Close()
	}
	if t.lock != nil {
		t.lock.Unlock()
	}
}

// commitRoots returns the root dirtree and dirmeta of commit, if the
// transaction staged it.
func (t *Txn) commitRoots(commit ID) ([2]ID, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	roots, ok := t.roots[commit]
	return roots, ok
}

// checkRefs checks that every ref queued can be written: none clashes as
// a path with a stored ref that is not deleted first, or with another ref
// queued.
func (t *Txn) checkRefs(names []string) error {
	gone := func(n string) bool {
		id, ok := t.refs[n]
		return ok && id.IsZero()
	}
	written := map[string]string{} // the branch a queued ref ends at: its name
	var finals []string
	for _, n := range names {
		if t.refs[n].IsZero() {
			continue
		}
		f, err := t.r.checkRefPlace(n, gone)
		if err != nil {
			return err
		}
		written[f] = n
		finals = append(finals, f)
	}
	for _, f := range finals {
		for _, above := range refParents(f) {
			if other, ok := written[above]; ok {
				return &RefClashError{Ref: written[f], Other: other, Above: true, Together: true}
			}
		}
	}
	return nil
}

// SetRef queues ref to be pointed at commit when the transaction commits.
// A zero commit deletes the ref. Commit checks that the commit, with its
// root dirtree and dirmeta, is stored or staged by then (see Repo.SetRef).
func (t *Txn) SetRef(ref string, commit ID) error {
	if err := t.live(); err != nil {
		return err
	}
	if err := ValidateRefName(ref); err != nil {
		return err
	}
	t.mu.Lock()
	t.refs[ref] = commit
	t.mu.Unlock()
	return nil
}

// writeArchived writes the compression byte and content of an archive file
// object held in memory.
func (t *Txn) writeArchived(f *stagedFile, content []byte) error {
	if len(content) >= minCompress {
		bp := compBufs.Get().(*[]byte)
		defer compBufs.Put(bp)
		z := t.r.encoder().EncodeAll(content, append((*bp)[:0], compZstd))
		*bp = z
		if len(z)-1 < len(content) {
			_, err := f.Write(z)
			return err
		}
	}
	if _, err := f.Write([]byte{compNone}); err != nil {
		return err
	}
	_, err := f.Write(content)
	return err
}

// archiveReadHook, when set (by tests), wraps the reader streamArchived
// compresses from, so that a test can act once a given part of it is read.
var archiveReadHook func(io.Reader) io.Reader

// streamArchived compresses a large content stream, stopping when the
// transaction's context is done: a large file takes seconds.
func (t *Txn) streamArchived(f *stagedFile, src io.Reader) error {
	if _, err := f.Write([]byte{compZstd}); err != nil {
		return err
	}
	zw := t.r.streamEncoder()
	defer t.r.encPool.Put(zw)
	zw.Reset(f)
	if archiveReadHook != nil {
		src = archiveReadHook(src)
	}
	if _, err := io.Copy(zw, ctxread.Reader(t.ctx, src)); err != nil {
		return err
	}
	return zw.Close()
}

// minCompress is the content size below which compression is not tried:
// a zstd frame's overhead exceeds what it could save.
const minCompress = 64

var compBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
