// Package commit turns directories, tar streams and existing commits into a
// new commit in a repository: the hot path of otree. Files are hashed once,
// in parallel, with per-worker hashers and buffers; objects already present
// are not written again; a stat cache and a repository-inode map let an
// unchanged tree be re-committed for little more than the cost of stat.
package commit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/mountinfo"
	"github.com/otree/otree/internal/progress"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

// SourceKind says what a Source is.
type SourceKind int

// The kinds of source a commit can be built from.
const (
	SourceDir SourceKind = iota + 1 // a directory on disk
	SourceTar                       // a tar file ("-" for standard input), or Source.Reader
	SourceRef                       // a revision already in the repository
	// SourceBase is a revision taken as it is stored: no option changes
	// it and the skip list does not apply (OSTree's --base). Sources
	// after it overlay it.
	SourceBase
)

// Source is one tree to commit. Later sources overlay earlier ones.
type Source struct {
	Kind SourceKind // what Path names
	Path string     // directory, tar file or revision
	// Reader, for a SourceTar, is the tar (plain, or compressed with
	// gzip, zstd, xz or bzip2) to read instead of the file Path, which
	// then only names it in errors.
	// Commit reads it to the end of the archive, and may read ahead
	// beyond; it does not close it. Unless the tar read (Reader, or the
	// file Path names) is a regular file, a *bytes.Reader or a
	// *strings.Reader, each Read runs on a goroutine of its own, so that
	// a cancelled ctx ends Commit even while a Read waits (on a pipe,
	// say): that Read is then left to end on its own (close the reader to
	// end it), and what it reads is dropped. A cancel also ends the wait
	// of opening a FIFO that Path names and no writer has opened.
	Reader io.Reader
}

// ParseSource parses the syntax of OSTree's --tree: dir=PATH, tar=FILE or
// ref=REV.
func ParseSource(s string) (Source, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || v == "" {
		return Source{}, fmt.Errorf("invalid source %q: want dir=PATH, tar=FILE or ref=REV", s)
	}
	switch k {
	case "dir":
		return Source{Kind: SourceDir, Path: v}, nil
	case "tar":
		return Source{Kind: SourceTar, Path: v}, nil
	case "ref":
		return Source{Kind: SourceRef, Path: v}, nil
	}
	return Source{}, fmt.Errorf("invalid source %q: unknown kind %q (want dir, tar or ref)", s, k)
}

// Options configure a commit.
type Options struct {
	Branch  string // the ref to move; required unless Orphan
	Subject string // the commit message's first line
	Body    string // the rest of the message; may be empty
	// Parent is the parent commit, which need not be stored (the history
	// then ends there, as after a shallow pull). Zero means the branch's
	// current commit (re-read under the ref lock, so concurrent commits
	// chain up); set NoParent for a root commit.
	Parent   repo.ID
	NoParent bool // make a root commit even when Branch names one
	// Orphan writes the commit without moving any ref; Branch must then
	// be empty. (OSTree's "commit --orphan -b BRANCH" is a commit with
	// NoParent that moves BRANCH.)
	Orphan bool
	// Timestamp of the commit; zero means now.
	Timestamp time.Time
	Metadata  repo.Metadata // stored in the commit; keys sorted, none empty
	// DetachedMetadata is stored beside the commit (for example signatures).
	DetachedMetadata repo.Metadata
	// BindRefs are refs the commit is bound to besides Branch (metadata
	// key repo.RefBindingKey, checked by pull). In a repository with a
	// collection ID the commit is bound to it too
	// (repo.CollectionBindingKey). NoBindings writes neither binding, not
	// even Branch.
	BindRefs   []string
	NoBindings bool // record neither the ref nor the collection binding
	// SignKeys sign the commit: their ed25519 signatures are added to its
	// detached metadata in the same transaction, before the ref moves.
	SignKeys []ed25519.PrivateKey
	// Sources are the trees to commit, at least one. Later sources overlay
	// earlier ones: their non-directories replace those at the same path,
	// and their directory metadata wins, but for directories a tar only
	// implies (parents it leaves out, its root without a "./" entry),
	// which keep an earlier source's metadata.
	Sources []Source

	// OwnerUID and OwnerGID override every entry's owner; a
	// bare-user-only repository refuses any but 0.
	OwnerUID, OwnerGID   *uint32
	CanonicalPermissions bool // uid/gid 0, no xattrs, modes masked with 0755
	NoXattrs             bool // record no xattrs on any entry
	// ModeROExecutables takes the write bits off every regular file that
	// has an execute bit, before its stat override, as OSTree does.
	ModeROExecutables bool
	// KeepMetadata names metadata keys copied from the parent commit, which
	// must exist and have them; a key also in Metadata keeps that value.
	KeepMetadata []string
	// StatOverrides change the permission bits recorded for the paths
	// they name (--statoverride), from every source; a path no source
	// has fails the commit.
	StatOverrides []StatOverride
	// TarPathnameFilter renames the entries of tar sources.
	TarPathnameFilter *PathnameFilter
	// SkipList names paths of the tree ("/usr/share/doc") to leave out
	// with everything below them. Each is taken exactly as written, spaces
	// included, and must be in the form CheckSkipPath accepts.
	SkipList []string
	// Bootable records the tree's kernel in the metadata: BootableKey
	// "true" and LinuxKey its version (OSTree's --bootable). The tree must
	// ship exactly one usr/lib/modules/<version>/vmlinuz.
	Bootable bool
	// GenerateSizes records the stored and unpacked size of every object
	// the tree needs under repo.SizesKey (OSTree's --generate-sizes), so
	// that a client holding only the commit can tell what pulling the rest
	// costs. Only archive repositories, which pulls read, record them.
	GenerateSizes bool
	// Consume removes from each directory source (not tar or ref
	// sources, as in OSTree's --consume) what the commit holds, once the
	// commit has landed and been made durable, even with NoSync. An entry
	// goes only if the commit holds the object the walk made of it at its
	// path and it is still what the walk read: the same lstat (device,
	// inode, size, mtime, ctime, mode, owner), and, when that stat was
	// taken too close to a change to vouch for it, the same content.
	// Directories go with rmdir once empty, the source last; none is
	// entered through a symlink. Whatever else is there (entries made
	// during the commit, changed since read, skipped, or laid over by a
	// later source) is kept, and Commit then returns its Result with a
	// *ConsumeError naming it. A source that holds the repository is
	// refused.
	Consume bool
	// SkipIfUnchanged makes no commit when the tree equals the parent's.
	SkipIfUnchanged bool
	// NoSync skips fsync; only for scratch repositories.
	NoSync bool
	// NoStatCache neither reads nor updates the stat cache.
	NoStatCache bool
	// DevinoCanonical takes every file that is a hardlink of one of the
	// repository's file objects as that object, unchanged, without
	// checking its metadata (OSTree's --devino-canonical): for trees whose
	// files are never modified in place. Without it such a hardlink is
	// taken unread only while its inode still matches the object's header
	// (in the bare modes, as the file-header index records it), and read
	// like any file otherwise.
	DevinoCanonical bool

	// Progress, if set, is called about ten times a second while files are
	// scanned, and once at the end. A panic in a call made while scanning
	// ends the calls and is raised again by Commit, in its caller's
	// goroutine, once the scan is over and before the branch moves.
	Progress func(Stats)
	// Logger receives warnings (a stat cache that could not be saved)
	// and, at Debug level, the state of the stat cache (default:
	// discarded).
	Logger *slog.Logger
}

// Stats describe a commit's work.
type Stats struct {
	Files        int64 `json:"files"`         // non-directory entries scanned
	Dirs         int64 `json:"dirs"`          // directories scanned, each source's root included
	BytesScanned int64 `json:"bytes_scanned"` // content bytes of regular files scanned (of a ref source, those it rewrote)
	// FilesHashed counts the regular files read and hashed; of the other
	// Files, regular files came from caches (FilesCached), while symlinks,
	// devices, FIFOs and a tar's hardlinks have no content to hash.
	FilesHashed  int64 `json:"files_hashed"`
	BytesHashed  int64 `json:"bytes_hashed"`  // content bytes of the files hashed
	Objects      int64 `json:"objects"`       // objects written (new to the repository)
	BytesWritten int64 `json:"bytes_written"` // bytes written to the repository, as stored
	BytesDeduped int64 `json:"bytes_deduped"` // content bytes that needed no new object
	// FileObjects counts the file objects among Objects; the rest are
	// dirtrees, dirmetas and the commit.
	FileObjects int64 `json:"file_objects"`
	// FilesCached counts files whose object came from the stat cache, from
	// being a hardlink of one, or from another name of their inode read
	// in the same walk, without reading them.
	FilesCached int64 `json:"files_cached"`
	// MetadataTotal counts the dirtrees, dirmetas and commit stored or
	// found present (directories whose dirtree the stat cache vouches for
	// are not counted).
	MetadataTotal int64 `json:"metadata_total"`
}

type counters struct {
	files, dirs, bytesScanned, hashed, bytesHashed, bytesNew, cached atomic.Int64
}

func (c *counters) stats(t *repo.Txn) Stats {
	s := Stats{
		Files: c.files.Load(), Dirs: c.dirs.Load(), BytesScanned: c.bytesScanned.Load(),
		FilesHashed: c.hashed.Load(), BytesHashed: c.bytesHashed.Load(), FilesCached: c.cached.Load(),
	}
	if t != nil {
		ts := t.Stats()
		s.Objects, s.BytesWritten, s.FileObjects, s.MetadataTotal = ts.Objects, ts.Bytes, ts.FileObjects, ts.MetaWrites
	}
	s.BytesDeduped = s.BytesScanned - c.bytesNew.Load()
	return s
}

// Result is what a commit did.
type Result struct {
	Commit repo.ID `json:"commit"` // the commit written, or with Unchanged the parent
	Parent repo.ID `json:"parent"` // zero for a root commit
	// Unchanged is set when SkipIfUnchanged found nothing to commit; Commit
	// is then the existing commit.
	Unchanged bool   `json:"unchanged"`
	Branch    string `json:"branch,omitempty"` // the ref moved; "" with Orphan
	Stats     Stats  `json:"stats"`            // what was scanned, hashed and written
}

// Commit builds a commit from opts.Sources and, unless Orphan, points
// opts.Branch at it. The branch moves only after every object is durable; on
// any error it stays where it was. Objects are published (made durable,
// then moved into objects/) in batches while the sources are read, so a
// commit that fails part way may leave complete objects no ref reaches:
// a retry deduplicates against them, and prune removes them. When the
// commit landed but finishing after it failed (consuming the sources with
// Consume), Commit returns the Result with the error.
func Commit(ctx context.Context, r *repo.Repo, opts Options) (*Result, error) {
	if opts.Branch == "" && !opts.Orphan {
		return nil, errors.New("commit: a branch is required (or Orphan)")
	}
	if opts.Branch != "" && opts.Orphan {
		return nil, fmt.Errorf("commit: Orphan moves no ref, but Branch is %q (for a new history of it, set NoParent)", opts.Branch)
	}
	if opts.Branch != "" {
		if err := r.CheckRefPlace(opts.Branch); err != nil {
			return nil, err
		}
	}
	if len(opts.Sources) == 0 {
		return nil, errors.New("commit: nothing to commit (no source tree)")
	}
	if err := opts.Metadata.Validate(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	for _, ref := range opts.BindRefs {
		if err := repo.ValidateRefName(ref); err != nil {
			return nil, fmt.Errorf("commit: ref binding: %w", err)
		}
	}
	if err := opts.DetachedMetadata.Validate(); err != nil {
		return nil, fmt.Errorf("commit: detached %w", err)
	}
	// Checked before anything is written: signatures that do not split
	// would make every later sign, sign --delete and show of the commit fail.
	if _, err := sign.Signatures(opts.DetachedMetadata); err != nil {
		return nil, fmt.Errorf("commit: detached metadata: %w", err)
	}
	if f := opts.TarPathnameFilter; f != nil && f.Regexp == nil {
		return nil, errors.New("commit: TarPathnameFilter has no Regexp")
	}
	if !opts.Timestamp.IsZero() && opts.Timestamp.Unix() < 0 {
		return nil, fmt.Errorf("commit: timestamp %s is before 1970", opts.Timestamp)
	}
	if r.Mode() == repo.ModeBareUserOnly {
		// Such a repository records every entry as 0:0; an owner asked
		// for explicitly would be dropped without a word.
		for _, o := range []struct {
			name string
			v    *uint32
		}{{"OwnerUID", opts.OwnerUID}, {"OwnerGID", opts.OwnerGID}} {
			if o.v != nil && *o.v != 0 {
				return nil, fmt.Errorf("commit: %s %d: a bare-user-only repository (%s) records no owner, every entry is 0:0", o.name, *o.v, r.Path())
			}
		}
	}
	for _, s := range opts.Sources {
		if s.Reader != nil && s.Kind != SourceTar {
			return nil, fmt.Errorf("commit: source %s has a Reader, which only a tar source reads", s)
		}
		if s.Kind == SourceDir {
			// Fail before taking locks or staging anything.
			fi, err := os.Stat(s.Path)
			if err != nil {
				return nil, fmt.Errorf("commit: source %w", err)
			}
			if !fi.IsDir() {
				return nil, fmt.Errorf("commit: source %s is not a directory", s.Path)
			}
			if opts.Consume && within(r.Path(), s.Path) {
				return nil, fmt.Errorf("commit: consuming %s would delete the repository %s", s.Path, r.Path())
			}
			// Below tmp/ is scratch (a tree staged there to be on the
			// repository's filesystem); anywhere else in the repository
			// the files consumed are the repository's own: the objects a
			// commit finds stored would go with them.
			if tmp := r.Path("tmp"); opts.Consume && within(s.Path, r.Path()) && (!within(s.Path, tmp) || within(tmp, s.Path)) {
				return nil, fmt.Errorf("commit: consuming %s would delete files of the repository %s, which holds it (only a directory below its tmp/ may be consumed)", s.Path, r.Path())
			}
			if opts.Consume {
				// As in OSTree: consuming removes the source itself,
				// which a symlink to it is not.
				if fi, err := os.Lstat(filepath.Clean(s.Path)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
					return nil, fmt.Errorf("commit: cannot consume %s: it is a symlink (give the directory it points to)", s.Path)
				}
			}
		}
	}
	skip, err := newSkipList(opts.SkipList)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sizes := opts.GenerateSizes && r.Mode() == repo.ModeArchive
	txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: opts.NoSync, Publishable: true, RecordSizes: sizes})
	if err != nil {
		return nil, err
	}
	defer txn.Abort()
	walkCtx, cancelWalk := context.WithCancelCause(ctx)
	defer cancelWalk(nil)
	stopPublishing := publishAsItGoes(txn, publishEvery, cancelWalk)

	start := time.Now()
	cnt := &counters{}
	mod := newModifier(&opts, r.Mode())
	stopProgress := startProgress(opts.Progress, cnt, txn)
	var cache *statCache
	if !opts.NoStatCache {
		cache = loadStatCache(StatCachePath(r), mod.fingerprint(r.Mode()), r, start.UnixNano())
		opts.Logger.Debug("stat cache", "path", cache.path, "directories", len(cache.index), "damaged", cache.file == nil && cache.dirty,
			"object directories stamped", cache.stamped())
	} else {
		cache = newStatCache("", [32]byte{})
	}
	defer cache.close()

	b, err := buildTree(walkCtx, r, txn, &opts, mod, cache, skip, cnt, start)
	if perr := stopPublishing(); perr != nil {
		err = perr
	}
	stopProgress()
	if err != nil {
		return nil, err
	}
	root := b.root
	if miss := skip.unmatched(); len(miss) > 0 {
		return nil, fmt.Errorf("commit: the skip list names paths no source has: %s", quoteAll(miss))
	}
	if miss := mod.unmatched(skip); len(miss) > 0 {
		return nil, fmt.Errorf("commit: stat overrides name paths no source has: %s", quoteAll(miss))
	}
	var kver string
	if opts.Bootable {
		if kver, err = kernelVersion(r, txn.StatFile, root); err != nil {
			return nil, err
		}
	}
	treeID, err := root.write(cachedTxn{txn, cache})
	if err != nil {
		return nil, err
	}
	var sizeList []repo.ObjectSize
	if sizes {
		if sizeList, err = treeSizes(r, txn, root); err != nil {
			return nil, fmt.Errorf("commit: recording object sizes: %w", err)
		}
	}

	// Decide the parent and write the commit under the ref lock, so that a
	// concurrent commit to the same branch is chained, not lost.
	// The ref lock also holds the repository lock shared until the stat
	// cache is saved, after the transaction let go of its own: a prune in
	// between would drop the cache and then see it written back stale.
	refLock, err := r.LockRefs(ctx)
	if err != nil {
		return nil, err
	}
	defer refLock.Unlock()
	parent := opts.Parent
	if parent.IsZero() && !opts.NoParent && opts.Branch != "" {
		parent, err = r.ReadRef(opts.Branch)
		if err != nil && !errors.Is(err, repo.ErrNotFound) {
			return nil, err
		}
	}
	res := &Result{Parent: parent, Branch: opts.Branch}
	var pc *repo.Commit
	if !parent.IsZero() {
		pc, err = r.ReadCommit(parent)
		var missing *repo.ObjectMissingError
		switch {
		case err != nil && errors.As(err, &missing) && !opts.Parent.IsZero():
			// A parent given by id need not be here, as in OSTree: the
			// history is then cut there, as a shallow pull leaves it.
			pc = nil
		case err != nil:
			return nil, fmt.Errorf("commit: parent %s: %w", parent, err)
		}
		if pc != nil && opts.SkipIfUnchanged && pc.RootTree == treeID && pc.RootMeta == root.meta {
			res.Commit, res.Unchanged = parent, true
			res.Stats = cnt.stats(txn)
			if err := txn.Commit(); err != nil {
				return nil, err
			}
			return res, landed(r, &opts, res, cache, b, mod, start)
		}
	}
	meta, err := keptMetadata(&opts, parent, pc)
	if err != nil {
		return nil, err
	}
	if kver != "" {
		meta = slices.Clone(meta).Set(BootableKey, []byte("true")).Set(LinuxKey, []byte(kver))
	}
	if sizes {
		meta = slices.Clone(meta).Set(repo.SizesKey, repo.EncodeSizes(sizeList))
	}
	ts := opts.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	c := repo.Commit{
		Parent: parent, Timestamp: uint64(ts.Unix()), Subject: opts.Subject, Body: opts.Body,
		RootTree: treeID, RootMeta: root.meta,
	}
	if c.Metadata, err = bindings(r, &opts, meta); err != nil {
		return nil, err
	}
	data := c.Encode()
	id, err := txn.WriteMeta(repo.KindCommit, data)
	if err != nil {
		return nil, err
	}
	detached := opts.DetachedMetadata
	if len(opts.SignKeys) > 0 {
		if detached, _, err = sign.AddSignatures(detached, data, opts.SignKeys...); err != nil {
			return nil, fmt.Errorf("commit: signing: %w", err)
		}
	}
	if len(detached) > 0 {
		if err := txn.WriteCommitMeta(id, detached); err != nil {
			return nil, err
		}
	}
	if !opts.Orphan {
		if err := txn.SetRef(opts.Branch, id); err != nil {
			return nil, err
		}
	}
	res.Commit = id
	res.Stats = cnt.stats(txn)
	if err := txn.Commit(); err != nil {
		return nil, err
	}
	if opts.Progress != nil {
		opts.Progress(res.Stats)
	}
	return res, landed(r, &opts, res, cache, b, mod, start)
}

// landed finishes a commit that is in the repository: it consumes the
// directory sources, or else saves the stat cache for them.
func landed(r *repo.Repo, opts *Options, res *Result, c *statCache, b *built, mod *modifier, start time.Time) error {
	if !opts.Consume {
		return saveCache(c, b.roots, b.root, opts.Logger)
	}
	if opts.NoSync || !r.Fsync() {
		// The sources are the only other copy of what the commit holds:
		// it is made durable before they go, NoSync or not.
		if err := durable.SyncFS(r.Path("objects")); err != nil {
			return fmt.Errorf("commit %s landed, but syncing it before consuming its sources: %w", res.Commit, err)
		}
	}
	if consumeHook != nil {
		consumeHook()
	}
	cs := newConsumer(r, mod, start.UnixNano())
	for i, s := range opts.Sources {
		if s.Kind == SourceDir {
			cs.source(s.Path, b.seen[i], b.root)
		}
	}
	if len(cs.kept) > 0 {
		return &ConsumeError{Commit: res.Commit, Kept: cs.kept}
	}
	return nil
}

// mountTable reads the mount table within consults; tests replace it.
var mountTable = mountinfo.Self

// within reports whether path is dir or below it, symlinks resolved, and
// bind mounts too: each is then located by its filesystem and its path
// there (mountinfo.Locate). Where the mount table does not show them (in a
// chroot whose root is no mount point, say), path is within dir when it,
// or a directory above it, is one of the directories below dir, by device
// and inode (sameDirBelow).
func within(path, dir string) bool {
	var err error
	for _, p := range []*string{&path, &dir} {
		if *p, err = filepath.Abs(*p); err == nil {
			*p, err = filepath.EvalSymlinks(*p)
		}
		if err != nil {
			return false
		}
	}
	below := func(path, dir string) bool {
		rel, err := filepath.Rel(dir, path)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
	}
	if below(path, dir) {
		return true
	}
	if mounts, err := mountTable(); err == nil {
		pdev, pfs, ok1 := mountinfo.Locate(mounts, path)
		ddev, dfs, ok2 := mountinfo.Locate(mounts, dir)
		if ok1 && ok2 {
			return pdev == ddev && below(pfs, dfs)
		}
	}
	return sameDirBelow(path, dir)
}

// sameDirBelow reports whether path or a directory above it is, by device
// and inode, dir or a directory below it: what a bind mount of either
// shows is the same directory. It walks dir's directories, without
// following symlinks, until it finds one.
func sameDirBelow(path, dir string) bool {
	type key struct{ dev, ino uint64 }
	up := map[key]bool{}
	for p := path; ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil {
			up[key{st.Dev, st.Ino}] = true
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	found := errors.New("found")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // what cannot be read cannot be consumed through either
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && up[key{st.Dev, st.Ino}] {
			return found
		}
		return nil
	})
	return err == found
}

func saveCache(c *statCache, roots []string, root *dir, log *slog.Logger) error {
	if err := c.save(roots, root); err != nil {
		// The commit landed; a cache that could not be saved only costs
		// speed next time.
		log.Warn("stat cache not saved", "err", err)
	}
	return nil
}

// built is the tree the sources make, and what finishing the commit needs
// to know of them.
type built struct {
	root  *dir
	roots []string // the directory sources' absolute paths, for the stat cache
	// seen holds, with Consume, what the walk saw of each directory
	// source (nil for the others), taken before any source is laid over
	// it.
	seen []*seenDir
}

// buildTree reads every source and overlays them in order.
func buildTree(ctx context.Context, r *repo.Repo, txn *repo.Txn, opts *Options, mod *modifier,
	cache *statCache, skip *skipList, cnt *counters, start time.Time) (*built, error) {
	b := &built{seen: make([]*seenDir, len(opts.Sources))}
	var st unix.Stat_t
	if err := unix.Stat(r.Path(), &st); err != nil {
		return nil, err
	}
	repoDir := [2]uint64{st.Dev, st.Ino}
	var emptyTars []string // tar sources without a single entry
	for k, src := range opts.Sources {
		var d *dir
		var err error
		switch src.Kind {
		case SourceDir:
			wk := &walker{ctx: ctx, txn: txn, mod: mod, cache: cache, start: start.UnixNano(), skip: skip, st: cnt,
				repo: repoDir, early: len(opts.Sources) == 1, exact: opts.Consume}
			if mod.keepsObjects(r.Mode()) {
				wk.devino = newDevino(r, opts.DevinoCanonical)
			}
			d, err = wk.walkDir(src.Path)
			wk.devino.close()
			if abs, aerr := filepath.Abs(src.Path); aerr == nil {
				b.roots = append(b.roots, abs)
			}
		case SourceTar:
			var n int
			if d, n, err = importTar(ctx, txn, src, mod, skip, opts.TarPathnameFilter, cnt, b.root, r); err == nil && n == 0 {
				emptyTars = append(emptyTars, src.String())
			}
		case SourceBase:
			if d, err = baseTree(r, src.Path); err != nil {
				err = fmt.Errorf("%s: %w", src, err)
			}
		case SourceRef:
			// The walk and the tar import leave skipped paths out as
			// they go; a stored tree has them taken out.
			if d, err = refTree(ctx, r, txn, src.Path, mod, cnt); err == nil {
				err = skip.removeFrom(r, d)
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", src, err)
			}
		default:
			err = fmt.Errorf("unknown source kind %d", src.Kind)
		}
		if err != nil {
			return nil, err
		}
		sortAll(d, k)
		if opts.Consume && src.Kind == SourceDir {
			b.seen[k] = snapshot(d, "")
		}
		if b.root == nil {
			b.root = d
			continue
		}
		var tc *typeConflict
		if err := b.root.overlay(r, d, "/"); errors.As(err, &tc) {
			what := [2]string{"a directory", "a non-directory"}
			if tc.upperIsDir {
				what[0], what[1] = what[1], what[0]
			}
			return nil, fmt.Errorf("commit: %s is %s in %s but %s in %s, laid over it: %v",
				tc.path, what[0], opts.Sources[tc.lower], what[1], opts.Sources[tc.upper], err)
		} else if err != nil {
			return nil, err
		}
	}
	if len(emptyTars) == len(opts.Sources) {
		// What a failed download leaves; as OSTree, refuse rather than
		// move the branch to an empty tree.
		return nil, fmt.Errorf("commit: refusing to commit an empty tree: no entries in %s", strings.Join(emptyTars, " or "))
	}
	mod.matchImplied(b.root)
	return b, nil
}

// String names a source by its kind and path, for messages: "dir PATH",
// "tar FILE", "ref REV" or "base REV".
func (s Source) String() string {
	switch s.Kind {
	case SourceDir:
		return "dir " + s.Path
	case SourceTar:
		if s.Reader != nil && s.Path == "" {
			return "the tar reader"
		}
		return "tar " + s.Path
	case SourceRef:
		return "ref " + s.Path
	case SourceBase:
		return "base " + s.Path
	}
	return fmt.Sprintf("source %d %q", s.Kind, s.Path)
}

// sortAll sorts every directory filled by source k (stored ones are
// sorted) and marks them as its own.
func sortAll(d *dir, k int) {
	d.src = k
	if !d.stored.IsZero() {
		return
	}
	d.sortEntries()
	for _, s := range d.dirs {
		sortAll(s, k)
	}
}

func startProgress(fn func(Stats), c *counters, t *repo.Txn) func() {
	if fn == nil {
		return func() {}
	}
	return progress.Every(func() { fn(c.stats(t)) })
}

// bindings returns opts.Metadata with the ref binding set: Branch (unless
// Orphan) and BindRefs, as OSTree binds a commit to its branch by default.
// Branch counts with its aliases: the branch the commit lands on and every
// alias of it, so that a pull by any of those names accepts the commit.
func bindings(r *repo.Repo, opts *Options, meta repo.Metadata) (repo.Metadata, error) {
	if opts.NoBindings {
		return meta, nil
	}
	if id := r.CollectionID(); id != "" {
		meta = slices.Clone(meta).Set(repo.CollectionBindingKey, []byte(id))
	}
	refs := opts.BindRefs
	if opts.Branch != "" && !opts.Orphan {
		names, err := r.BranchNames(opts.Branch)
		if err != nil {
			return nil, err
		}
		refs = append(names, refs...)
	}
	if len(refs) == 0 {
		return meta, nil
	}
	return slices.Clone(meta).Set(repo.RefBindingKey, repo.EncodeRefBinding(refs)), nil
}

// keptMetadata is opts.Metadata with the keys of opts.KeepMetadata it lacks
// copied from the parent commit pc (nil when there is none).
func keptMetadata(opts *Options, parent repo.ID, pc *repo.Commit) (repo.Metadata, error) {
	if len(opts.KeepMetadata) == 0 {
		return opts.Metadata, nil
	}
	if pc == nil {
		return nil, fmt.Errorf("commit: keeping metadata %q: there is no parent commit here", opts.KeepMetadata[0])
	}
	meta := slices.Clone(opts.Metadata)
	for _, k := range opts.KeepMetadata {
		v, ok := pc.Metadata.Get(k)
		if !ok {
			return nil, fmt.Errorf("commit: keeping metadata: parent commit %s has no key %q", parent, k)
		}
		if _, given := opts.Metadata.Get(k); !given {
			meta = meta.Set(k, v)
		}
	}
	return meta, nil
}
