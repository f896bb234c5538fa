package checkout

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// The uncompressed-object cache of an archive repository (FORMAT.md §16,
// Options.UncompressedCache). A user-mode checkout links each regular file
// it decompresses into the cache under the object's id, once the content
// has been verified and the file's mode and times are final; a later
// user-mode checkout hardlinks the file from there instead of
// decompressing it again.
//
// A cache entry shares its inode with every checkout that linked it, so a
// file changed in place in one of them would hand the change on. Only
// files no one but their owner may write go through the cache
// (repo.UncompressedCacheable), and before linking, an entry must still
// look exactly as the checkout wrote it (repo.UncompressedCacheEntryFits:
// size, mode, modification time the epoch, which any write changes). One
// that does not is removed from the cache and the file decompressed
// afresh; fsck verifies entries' content. An entry of another owner or
// group (written into a setgid directory) is left alone and not linked.

// openCache opens (creating it) the cache directory of an archive
// repository when the checkout may use it: UncompressedCache and UserMode
// asked for, no ForceCopy, a repository that allows it (repo.Repo.
// UncompressedCache) and verifies what it reads (only verified content is
// cached), owned by this user, and DEST on the same filesystem (dev, 0
// when unknown). It returns -1 when not.
func openCache(r *repo.Repo, opts Options, dev uint64) int {
	if !opts.UncompressedCache || !opts.UserMode || opts.ForceCopy || !r.UncompressedCache() || !r.Verifies() {
		return -1
	}
	// Only the repository's owner writes there, as for the header index:
	// entries of another user would be files that user could change.
	if !ownsRepo(r) {
		return -1
	}
	dir := r.Path(repo.UncompressedCacheDir)
	if err := unix.Mkdir(dir, uint32(durable.DirPerm)); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || dev != 0 && st.Dev != dev {
		unix.Close(fd)
		return -1
	}
	return fd
}

// ownsRepo tells whether this process's user owns the repository's tmp/,
// the one user who writes its caches.
func ownsRepo(r *repo.Repo) bool {
	var st unix.Stat_t
	return unix.Stat(r.Path("tmp"), &st) == nil && int(st.Uid) == os.Geteuid()
}

// destDev returns the device of the filesystem DEST (or, while it does not
// exist, its parent) is on, or 0 when neither can be stat'ed.
func destDev(dest string) uint64 {
	var st unix.Stat_t
	if unix.Stat(dest, &st) != nil && unix.Stat(filepath.Dir(dest), &st) != nil {
		return 0
	}
	return st.Dev
}

// destMount returns the id of the mount DEST (or, when it does not exist
// yet, its parent) is on, or 0 when it cannot be told.
func destMount(dest string) uint64 {
	for _, p := range []string{dest, filepath.Dir(dest)} {
		var stx unix.Statx_t
		if unix.Statx(unix.AT_FDCWD, p, 0, unix.STATX_MNT_ID, &stx) == nil {
			if stx.Mask&unix.STATX_MNT_ID == 0 {
				return 0
			}
			return stx.Mnt_id
		}
	}
	return 0
}

// fdMount returns the id of the mount the open file fd is on, or 0.
func fdMount(fd int) uint64 {
	var stx unix.Statx_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx) != nil || stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0
	}
	return stx.Mnt_id
}

// cacheable says whether o's file goes through the cache.
func (c *checkouter) cacheable(o *object) bool {
	return c.cacheFd >= 0 && repo.UncompressedCacheable(&o.h)
}

// cachedEntry stats o's cache entry into st and reports whether a
// checkout may link it; one that no longer fits is removed from the cache.
func (w *worker) cachedEntry(o *object, st *unix.Stat_t) bool {
	c := w.c
	if unix.Fstatat(c.cacheFd, o.rel, st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	if !repo.UncompressedCacheEntryFits(st, &o.h) {
		unix.Unlinkat(c.cacheFd, o.rel, 0)
		return false
	}
	return st.Uid == c.uid && st.Gid == c.gid
}

// linkCached hardlinks o's cache entry at name in n. It reports false,
// with no error, when o does not go through the cache or there is no entry
// fit to link; an error wrapping EEXIST means name is taken.
func (w *worker) linkCached(n *dirNode, name string, o *object) (bool, error) {
	c := w.c
	var st unix.Stat_t
	if !c.cacheable(o) || !w.cachedEntry(o, &st) {
		return false, nil
	}
	// Filled from the index, o was not read: a commit whose object is
	// gone is damaged, whatever the cache still holds.
	if !o.loaded && w.missing(o) {
		return false, &repo.ObjectMissingError{Kind: repo.KindFile, ID: o.id}
	}
	err := unix.Linkat(c.cacheFd, o.rel, n.fd, name, 0)
	switch {
	case err == nil:
		c.cached.Add(1)
		if o.loaded {
			// The header read agrees with an entry made from verified
			// content.
			w.indexMiss(o)
		}
		return true, nil
	case errors.Is(err, unix.EEXIST):
		return false, err
	}
	// Gone since (a prune), too many links, or refused: decompress.
	return false, nil
}

// addToCache links the file just written at fd, o's content verified and
// its mode and times final, into the cache, unless an entry is there
// already, which it reports. It costs only speed when it fails, so
// failures are not errors; a filesystem that refuses such links turns
// adding off.
func (w *worker) addToCache(fd int, o *object) (taken bool) {
	c := w.c
	if c.cacheOff.Load() {
		return false
	}
	// The descriptor's own inode, whatever its name in DEST has become.
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	err := unix.Linkat(unix.AT_FDCWD, proc, c.cacheFd, o.rel, unix.AT_SYMLINK_FOLLOW)
	if errors.Is(err, unix.ENOENT) {
		if e := unix.Mkdirat(c.cacheFd, o.rel[:2], uint32(durable.DirPerm)); e == nil || errors.Is(e, unix.EEXIST) {
			err = unix.Linkat(unix.AT_FDCWD, proc, c.cacheFd, o.rel, unix.AT_SYMLINK_FOLLOW)
		}
	}
	switch {
	case errors.Is(err, unix.EEXIST):
		return true
	case err == nil, errors.Is(err, unix.EMLINK):
	default:
		c.cacheOff.Store(true)
	}
	return false
}

// relinkCached replaces name in n, a file just decompressed for o, with a
// link of o's cache entry, when one fit to link is there: two workers that
// decompressed the same object at once (two paths of one content) then
// still share one inode, as the next checkout's files would. Failing
// costs only the sharing, so it is not an error.
func (w *worker) relinkCached(n *dirNode, name string, o *object) {
	c := w.c
	var st unix.Stat_t
	if !w.cachedEntry(o, &st) {
		return
	}
	tmp := tempName("cache")
	if unix.Linkat(c.cacheFd, o.rel, n.fd, tmp, 0) != nil {
		return
	}
	if unix.Renameat(n.fd, tmp, n.fd, name) != nil {
		unix.Unlinkat(n.fd, tmp, 0)
	}
}
