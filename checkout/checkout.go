// Package checkout writes the tree of a commit into a directory, as OSTree's
// `ostree checkout` does: file objects are hardlinked from the repository
// where its mode allows it, and otherwise copied (reflink, copy_file_range or
// read/write) or, from an archive repository, decompressed, or linked from
// its uncompressed-object cache (Options.UncompressedCache). A hardlink
// checkout of a bare-user repository, and one through that cache, decide on
// each file from the repository's file-header index (repo.HeaderIndex)
// where they can, instead of reading the object's header, and add what the
// index lacked.
//
// Every write is confined below the destination: entries are created with
// *at system calls relative to directory descriptors opened with O_NOFOLLOW,
// names from the repository are validated again before use, and a symlink
// found in the destination (planted there, or written by an earlier union
// checkout) is never followed: it is replaced (Union) or reported as an error.
// Symlink targets are written as they are and never resolved.
//
// A checkout that fails part way leaves the entries it finished in place,
// as OSTree does; the directories it created keep mode 0700 until
// everything below them is written, and an entry it could not finish (a
// copy whose content, owner or xattrs could not be written) is removed, so
// no file stands at its name without them. The error names the path it was
// working on. Callers that want all or nothing check out into a fresh
// directory and rename it. A failed checkout is not retried by a union
// checkout into what it left: the union enters those 0700 directories and
// keeps their mode, as it keeps every existing directory's; remove what it
// left and check out again.
package checkout

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/progress"
	"github.com/otree/otree/internal/workq"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// Options configure a checkout.
type Options struct {
	// UserMode (-U) checks out as an unprivileged user would: ownership and
	// xattrs are not restored, files' setuid/setgid bits are always
	// cleared and regular files always get their owner's read bit, so
	// that a 0000 file checks out 0400 and a 0070 one 0470 (directories
	// keep their mode, setgid and sticky bits included, as in OSTree), and
	// a device node (other than a 0:0 whiteout) fails the checkout, even
	// as root. A file is hardlinked only where the object's mode on disk
	// is the one the file gets, and copied otherwise: an object's mode is
	// never changed. (A non-empty bare-user-only object stored without its
	// owner's read bit that this user cannot read is the exception: it can
	// only be hardlinked, and keeps its mode; UnionIdentical expects that
	// mode.)
	//
	// Without it, entries get the commit's owner and xattrs, which a user
	// other than root can give only where they are its own. A
	// bare-user-only repository records no owner: there, as in OSTree,
	// such a user's entries stay its own and objects are hardlinked
	// whoever owns them, as in user mode; root's are given to 0:0 (and
	// objects of another owner copied).
	UserMode bool
	// RequireHardlinks (-H) fails, naming the path and the reason, when a
	// regular file with content cannot be hardlinked from the repository.
	// Empty files (never hardlinked), symlinks, devices and FIFOs are
	// created without counting against it. A DEST on another filesystem
	// or mount (a bind mount) than the repository fails before anything
	// is created.
	RequireHardlinks bool
	// ForceCopy (-C) never hardlinks: every file is a new inode.
	ForceCopy bool
	// Subpath checks out only this directory (or file) of the tree. A file
	// is written into DEST under its own name, with DEST taking the metadata
	// of the directory that holds the file in the commit; DEST may exist
	// then without a union mode, as in OSTree (it keeps its metadata, and
	// the file must not be there yet). A ".." component
	// is refused (repo.ErrDotDot), and so is a file named with a trailing
	// "/" (repo.ErrNotDir), as in OSTree.
	Subpath string
	// Union checks out into an existing DEST, replacing existing files and
	// symlinks (never directories) by the commit's: the new entry is
	// written under a temporary name and renamed over the old, so the path
	// is never missing. An entry that is already a hardlink of the object
	// it would be linked from is left alone. In every union mode an
	// existing directory is entered (never through a symlink) and keeps its
	// owner, mode, xattrs and times.
	Union bool
	// UnionAdd checks out into an existing DEST, keeping every existing
	// entry and adding the missing ones.
	UnionAdd bool
	// UnionIdentical checks out into an existing DEST; an existing entry
	// must be identical to the commit's (type, content or target, mode and,
	// without UserMode, owner; xattrs are not compared), else it is an error.
	UnionIdentical bool
	// Whiteouts applies OCI whiteouts instead of writing them: a file
	// ".wh.NAME" deletes NAME (recursively) from DEST and ".wh..wh..opq"
	// empties its directory of what was there before this checkout. Other
	// ".wh..wh.*" entries are dropped.
	Whiteouts bool
	// ProcessPassthroughWhiteouts checks a file ".ostree-wh.NAME" out as
	// NAME, an overlayfs whiteout (a 0:0 character device with the
	// file's mode), as OSTree's option does: a tree meant as an overlayfs
	// layer carries its whiteouts as such files.
	ProcessPassthroughWhiteouts bool
	// SkipList names paths to leave out of the checkout, each with
	// everything below it. Paths are relative to what is checked out (the
	// Subpath, if one is given), written "/usr/share/doc"; a trailing "/"
	// is allowed, ".." is not. A path the tree does not have is not an
	// error. "/" leaves out everything: as in OSTree, Checkout then does
	// nothing (DEST is neither created nor checked) and returns empty
	// Stats.
	SkipList []string
	// AllowNoent makes a Subpath the commit does not have a checkout of
	// nothing: DEST is not created and Checkout returns empty Stats.
	AllowNoent bool
	// BareUserOnlyDirs (-M) keeps only the 0775 bits of each directory's
	// mode: no setgid, sticky or world-writable directories. A checkout
	// from a bare-user-only repository always does.
	BareUserOnlyDirs bool
	// UncompressedCache lets a user-mode checkout of an archive repository
	// hardlink files from the repository's uncompressed-object cache, and
	// add to it every file it decompresses, as OSTree's checkout does
	// unless --disable-cache: a second checkout of the same files then
	// writes no content (FORMAT.md §16). The files so checked out share
	// their inode with the cache, as a hardlink checkout of a bare-user
	// repository shares it with the objects. It applies only where the
	// repository allows it (repo.Repo.UncompressedCache) and verifies
	// what it reads, its owner runs the checkout, and DEST is on the
	// repository's filesystem, and only to files no one but their owner
	// may write (repo.UncompressedCacheable); anywhere else files are
	// decompressed as without it.
	UncompressedCache bool
	// Fsync makes the checkout durable before Checkout returns: the
	// filesystem holding DEST is synced (one syncfs, far cheaper than an
	// fsync per file), then the directory that holds DEST.
	Fsync bool
	// Progress, if set, is called about ten times a second and once at the
	// end. A panic in a call made on the way ends the calls and is raised
	// again by Checkout, in its caller's goroutine, once the files are
	// written.
	Progress func(Stats)
}

// Stats count what a checkout wrote. Files = Hardlinked + Copied.
type Stats struct {
	Files      int64 `json:"files"`      // non-directory entries written
	Dirs       int64 `json:"dirs"`       // directories created or entered
	Bytes      int64 `json:"bytes"`      // content bytes of the regular files written
	Hardlinked int64 `json:"hardlinked"` // entries hardlinked from the repository
	Copied     int64 `json:"copied"`     // entries written as new inodes (copies, symlinks, devices...; a decompressed file swapped for the cache's entry too)
	// FromCache counts, of Hardlinked, the files linked from an archive
	// repository's uncompressed-object cache (Options.UncompressedCache).
	FromCache int64 `json:"from_cache"`
}

// Checkout writes the tree of commit into dest. Without a union mode dest
// must not exist (its parent must), unless Subpath names a file; with one
// it may. An empty dest is refused rather than taken as the current
// directory. See Options for the modes and the package documentation for
// how writes are confined.
//
// Two entries of a directory of the commit whose names the destination
// directory does not tell apart (a case-insensitive or normalising one, as
// ext4 casefolding makes: "A" and "a", "Straße" and "STRASSE", NFC and NFD
// "é") fail the checkout in every mode, naming both: no mode writes one
// over the other, drops one or merges two directories.
//
// File times are fixed: every directory the checkout creates, and every
// symlink and newly written file, gets mtime and atime 0 (the epoch), so a
// commit checks out the same everywhere. Directories that were in DEST
// already (union modes) keep theirs. Hardlinked files share the object's
// inode and keep its times: checkout never changes an object in the
// repository.
//
// Outside user mode the entries a checkout creates get the commit's xattrs
// and modes and no others: DEST, when made, is cleared of the ACLs a
// default ACL on its parent gives it, so nothing below inherits one. A
// directory already in DEST (union modes) keeps its default ACL, which the
// kernel passes on to what is made in it.
func Checkout(ctx context.Context, r *repo.Repo, commit repo.ID, dest string, opts Options) (*Stats, error) {
	c, err := r.ReadCommit(commit)
	if err != nil {
		return nil, fmt.Errorf("checkout %s: %w", commit.Short(), err)
	}
	st, err := checkoutTree(ctx, r, commit, c.RootTree, c.RootMeta, dest, opts)
	return st, r.ExplainMissing(commit, err)
}

// CheckoutTree is Checkout for a directory given by its dirtree and dirmeta
// ids instead of a commit's root.
func CheckoutTree(ctx context.Context, r *repo.Repo, treeID, metaID repo.ID, dest string, opts Options) (*Stats, error) {
	return checkoutTree(ctx, r, repo.ID{}, treeID, metaID, dest, opts)
}

// checkoutTree checks out a tree; commit, if known, is named in errors
// about the subpath.
func checkoutTree(ctx context.Context, r *repo.Repo, commit, treeID, metaID repo.ID, dest string, opts Options) (*Stats, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	// An unset destination would otherwise be the working directory,
	// which a union mode would write into.
	if dest == "" {
		return nil, errors.New(`checkout: empty destination (give "." for the current directory)`)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("checkout into %s: %w", dest, err)
	}
	root := &dirNode{tree: treeID, metaID: metaID, fd: -1}
	sp, err := repo.TreePath(opts.Subpath)
	if err != nil {
		return nil, fmt.Errorf("checkout: subpath %w", err)
	}
	if sp != "/" {
		// The path as given: a trailing "/" requires a directory.
		e, err := r.LookupTree(treeID, metaID, opts.Subpath)
		// Only a path the tree lacks is allowed: an object missing on
		// the way is an incomplete repository, not an absent path.
		if missing := (*repo.ObjectMissingError)(nil); opts.AllowNoent && errors.Is(err, repo.ErrNotFound) && !errors.As(err, &missing) {
			return &Stats{}, nil
		}
		if pe := (*repo.PathError)(nil); errors.As(err, &pe) {
			pe.Commit = commit
		}
		if err != nil {
			return nil, fmt.Errorf("checkout subpath: %w", err)
		}
		if e.IsDir() {
			root.tree, root.metaID = e.ID, e.MetaID
		} else {
			parent, err := r.LookupTree(treeID, metaID, path.Dir(e.Path))
			if err != nil {
				return nil, fmt.Errorf("checkout subpath: %w", err)
			}
			root.tree, root.metaID = repo.ID{}, parent.MetaID
			root.only = &repo.FileEntry{Name: path.Base(e.Path), ID: e.ID}
		}
	}
	if opts.skipsRoot() {
		// Everything is left out: as in OSTree, DEST is neither made
		// nor looked at.
		return &Stats{}, nil
	}
	c, err := newCheckouter(ctx, r, dest, opts)
	if err != nil {
		return nil, err
	}
	defer unix.Close(c.objFd)
	defer c.heads.Close()
	if c.cacheFd >= 0 {
		defer unix.Close(c.cacheFd)
	}
	return c.run(root)
}

func (o *Options) check() error {
	n := 0
	for _, b := range []bool{o.Union, o.UnionAdd, o.UnionIdentical} {
		if b {
			n++
		}
	}
	if n > 1 {
		return errors.New("checkout: choose one of Union, UnionAdd and UnionIdentical")
	}
	if o.ForceCopy && o.RequireHardlinks {
		return errors.New("checkout: ForceCopy and RequireHardlinks contradict each other")
	}
	for _, p := range o.SkipList {
		if p == "" {
			// Not taken as the root, which leaves out everything.
			return errors.New("checkout: empty skip list entry")
		}
		if _, err := repo.TreePath(p); err != nil {
			return fmt.Errorf("checkout: skip list entry %w", err)
		}
	}
	return nil
}

// skipSet is SkipList as a set of cleaned paths, nil when it is empty.
func (o *Options) skipSet() map[string]bool {
	if len(o.SkipList) == 0 {
		return nil
	}
	m := make(map[string]bool, len(o.SkipList))
	for _, p := range o.SkipList {
		m[repo.CleanPath(p)] = true
	}
	return m
}

// skipsRoot reports whether SkipList names the root of the checkout.
func (o *Options) skipsRoot() bool {
	return slices.ContainsFunc(o.SkipList, func(p string) bool { return repo.CleanPath(p) == "/" })
}

func (o *Options) union() bool { return o.Union || o.UnionAdd || o.UnionIdentical }

// checkouter is the state of one checkout, shared by its workers.
type checkouter struct {
	ctx    context.Context
	r      *repo.Repo
	mode   repo.Mode
	opts   Options
	dest   string
	objFd  int    // objects/, for *at system calls
	objDir string // absolute path of objects/ with a trailing slash
	umask  uint32

	// owners: entries get the owner the commit records. Not in user mode,
	// nor for a user other than root in a bare-user-only repository: it
	// records no owner (its 0:0 is a placeholder only root could give),
	// so there, as in OSTree, entries stay the user's.
	owners bool

	// cacheFd is the archive repository's uncompressed-object cache, or
	// -1 (Options.UncompressedCache); cacheOff stops adding to it. uid
	// and gid are this process's, which an entry must have to be linked.
	cacheFd  int
	cacheOff atomic.Bool
	uid, gid uint32

	link     bool   // the mode and options allow hardlinks at all
	noLink   string // why not, when !link
	linkOff  atomic.Bool
	cloneOff atomic.Bool
	cfrOff   atomic.Bool // copy_file_range failed: read and write (rawfd.CopyExtents)

	// heads is the repository's file-header index, for bare-user
	// hardlink checkouts and checkouts through an archive repository's
	// uncompressed-object cache; misses are the regular files it lacked,
	// added to it when the checkout succeeds.
	heads  *repo.HeaderIndex
	missMu sync.Mutex
	misses []repo.IndexedHeader

	skip     map[string]bool                             // Options.SkipList, cleaned
	metas    sync.Map                                    // repo.ID -> *repo.DirMeta
	readTree func(repo.ID) (*repo.DirTree, error)        // r.ReadDirTree; tests substitute hostile trees
	listDir  func(fd int, path string) ([]string, error) // dirent.NamesApart; tests substitute a directory's view

	files, dirs, bytes, linked, copied, cached atomic.Int64

	q workq.Queue[*worker]

	mu   sync.Mutex
	open map[*dirNode]struct{} // directories whose descriptor is open
}

func newCheckouter(ctx context.Context, r *repo.Repo, dest string, opts Options) (*checkouter, error) {
	abs, err := filepath.Abs(dest)
	if err != nil {
		return nil, fmt.Errorf("checkout: %w", err)
	}
	objDir := r.Path("objects")
	fd, err := unix.Open(objDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("checkout: %w", &os.PathError{Op: "open", Path: objDir, Err: err})
	}
	c := &checkouter{ctx: ctx, r: r, mode: r.Mode(), opts: opts, dest: abs, objFd: fd, objDir: objDir + "/",
		umask: readUmask(), open: map[*dirNode]struct{}{}, readTree: r.ReadDirTree, listDir: dirent.NamesApart, skip: opts.skipSet()}
	c.owners = !opts.UserMode && (c.mode != repo.ModeBareUserOnly || os.Geteuid() == 0)
	c.link, c.noLink = true, ""
	dev := destDev(abs)
	switch {
	case opts.ForceCopy:
		c.link, c.noLink = false, "ForceCopy"
	case c.mode == repo.ModeArchive:
		c.link, c.noLink = false, "archive repository "+r.Path()+" stores compressed objects, which cannot be hardlinked"
	case c.mode == repo.ModeBare && opts.UserMode:
		c.link, c.noLink = false, "objects of a bare repository carry their real owner and xattrs, so a user-mode checkout copies them"
	case c.mode == repo.ModeBareUser && !opts.UserMode:
		c.link, c.noLink = false, "objects of a bare-user repository are owned by the repository's user, so they are hardlinked only in user mode"
	}
	if c.link {
		// Hardlinks cannot cross filesystems, nor mounts (a bind mount
		// of the repository's filesystem refuses them too): find out
		// before creating anything. When DEST's device or mount is not
		// known, the first link tells (EXDEV turns links off).
		var ost unix.Stat_t
		if unix.Fstat(fd, &ost) == nil && dev != 0 && ost.Dev != dev {
			c.link, c.noLink = false, "DEST is on another filesystem than the repository "+r.Path()
		} else if dm, om := destMount(abs), fdMount(fd); dm != 0 && om != 0 && dm != om {
			c.link, c.noLink = false, "DEST is on another mount than the repository "+r.Path()+" (a bind mount refuses hardlinks across it)"
		}
	}
	if !c.link && opts.RequireHardlinks {
		unix.Close(fd)
		return nil, fmt.Errorf("checkout %s: cannot hardlink (hardlinks required): %s", abs, c.noLink)
	}
	c.cacheFd = openCache(r, opts, dev)
	if c.link && c.mode == repo.ModeBareUser || c.cacheFd >= 0 {
		c.heads = r.LoadHeaderIndex()
	}
	c.uid, c.gid = uint32(os.Geteuid()), uint32(os.Getegid())
	return c, nil
}

// readUmask returns the process umask from /proc without changing it; if it
// cannot be read every bit counts as masked, so modes are always set.
func readUmask() uint32 {
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(n)
				}
			}
		}
	}
	return 0o777
}

func (c *checkouter) stats() Stats {
	return Stats{Files: c.files.Load(), Dirs: c.dirs.Load(), Bytes: c.bytes.Load(),
		Hardlinked: c.linked.Load(), Copied: c.copied.Load(), FromCache: c.cached.Load()}
}

// run creates the root directory and checks out everything below it.
func (c *checkouter) run(root *dirNode) (*Stats, error) {
	root.path = c.dest
	root.pending.Store(1)
	if err := c.openRoot(root); err != nil {
		return nil, err
	}
	stop := c.startProgress()
	c.q.Push(func(w *worker) error { return w.dirTask(root) })
	err := c.q.Run(c.ctx, workq.Workers(), func() *worker { return newWorker(c) })
	err = nameCancel(c.ctx, err, "checkout into "+c.dest)
	for n := range c.open { // only after an error
		unix.Close(n.fd)
	}
	stop() // last: it raises again a panic of the caller's progress report

	st := c.stats()
	if c.opts.Progress != nil {
		c.opts.Progress(st)
	}
	if err != nil {
		return &st, err
	}
	c.saveMisses()
	if c.opts.Fsync {
		if err := c.sync(); err != nil {
			return &st, err
		}
	}
	return &st, nil
}

// sync makes what the checkout wrote durable: its files and directories
// (syncfs of DEST's filesystem), then DEST's own entry in its parent.
func (c *checkouter) sync() error {
	if err := durable.SyncFS(c.dest); err != nil {
		return fmt.Errorf("checkout: syncing: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(c.dest)); err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	return nil
}

// saveMisses adds the headers the index lacked to it, so the next checkout
// of these files need not read them. Only the repository's owner writes
// there (a cache file of another user's would block its own updates), and
// a failure costs only speed.
func (c *checkouter) saveMisses() {
	if len(c.misses) == 0 {
		return
	}
	if !ownsRepo(c.r) {
		return
	}
	c.r.AddToHeaderIndex(c.misses)
}

// openRoot creates (or, in a union mode or for a file, opens) the
// destination.
func (c *checkouter) openRoot(n *dirNode) error {
	m, err := c.dirMeta(n.metaID)
	if err != nil {
		return fmt.Errorf("checkout: %s: %w", c.dest, err)
	}
	n.meta = m
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	if err := unix.Mkdir(c.dest, 0o700); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("checkout: %w", &os.PathError{Op: "mkdir", Path: c.dest, Err: err})
		}
		// A file subpath goes into an existing directory as in OSTree:
		// the file is still created only where nothing is in its way.
		if !c.opts.union() && n.only == nil {
			return fmt.Errorf("checkout: destination %s: %w (a union mode checks out into an existing directory)", c.dest, fs.ErrExist)
		}
		// DEST itself is the caller's path: a symlink there is followed
		// on purpose; nothing below it ever is.
		n.existed = true
	} else {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(c.dest, flags, 0)
	if err != nil {
		return fmt.Errorf("checkout: %w", &os.PathError{Op: "open", Path: c.dest, Err: err})
	}
	n.fd = fd
	c.open[n] = struct{}{}
	c.dirs.Add(1)
	if !n.existed && !c.opts.UserMode {
		if err := dropInheritedACLs(fd); err != nil {
			return fmt.Errorf("checkout: %s: %w", c.dest, err)
		}
	}
	return nil
}

// dropInheritedACLs removes the POSIX ACLs a directory just made got from
// its parent's default ACL. Left there, the default ACL would pass on to
// every entry made below it (files take their mode bits from it, not from
// the umask), and the commit's tree would check out with ACLs and modes it
// does not record. The directory's own xattrs are set once its entries are
// written, so nothing below inherits from those.
func dropInheritedACLs(fd int) error {
	for _, name := range []string{"system.posix_acl_default", "system.posix_acl_access"} {
		err := unix.Fremovexattr(fd, name)
		if err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("removing the inherited xattr %s: %w", name, err)
		}
	}
	return nil
}

// dirMeta loads a dirmeta, caching it: a tree has few distinct ones.
func (c *checkouter) dirMeta(id repo.ID) (*repo.DirMeta, error) {
	if m, ok := c.metas.Load(id); ok {
		return m.(*repo.DirMeta), nil
	}
	m, err := c.r.ReadDirMeta(id)
	if err != nil {
		return nil, err
	}
	c.metas.Store(id, m)
	return m, nil
}

func (c *checkouter) startProgress() func() {
	fn := c.opts.Progress
	if fn == nil {
		return func() {}
	}
	return progress.Every(func() { fn(c.stats()) })
}

// wantMode is the permission mode a checked-out non-directory with header
// h gets. In user mode, as in OSTree, setuid and setgid are cleared and a
// regular file gets its owner's read bit: the user who checks out a 0000
// file (an /etc/shadow) must be able to read it without CAP_DAC_OVERRIDE.
func (c *checkouter) wantMode(h *repo.FileHeader) uint32 {
	if !c.opts.UserMode {
		return h.Mode
	}
	if h.Type == repo.TypeRegular {
		return h.Mode&^0o6000 | 0o400
	}
	return h.Mode &^ 0o6000
}

// dirMode is the permission mode a checked-out directory gets: its own,
// in user mode too (as in OSTree; a directory's setgid and sticky bits
// give no one privileges), unless BareUserOnlyDirs masks it. A
// bare-user-only repository always masks it, as OSTree's does: its
// commits come from anyone, and a pulled dirmeta may ask for a directory
// everyone can write into.
func (c *checkouter) dirMode(mode uint32) uint32 {
	if c.opts.BareUserOnlyDirs || c.mode == repo.ModeBareUserOnly {
		return mode & 0o775
	}
	return mode
}

// zeroTime is the fixed atime and mtime of checked-out entries.
var zeroTime = []unix.Timespec{{}, {}}
