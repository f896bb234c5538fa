package checkout

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

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
// file changed in place in one of them would hand the change on. Before
// linking, an entry must still look exactly as the checkout wrote it: a
// regular file of the object's size and checkout mode, modification time
// the epoch (any write sets it to now), owned by this user. Anything else
// is removed from the cache and the file decompressed afresh; fsck
// verifies entries' content (repo.FsckOptions).

// openCache opens (creating it) the cache directory of an archive
// repository when the checkout may use it: UncompressedCache and UserMode
// asked for, no ForceCopy, a repository that allows it (repo.Repo.
// UncompressedCache) owned by this user, and DEST on the same filesystem
// (dev, 0 when unknown). It returns -1 when not.
func openCache(r *repo.Repo, opts Options, dev uint64) int {
	if !opts.UncompressedCache || !opts.UserMode || opts.ForceCopy || !r.UncompressedCache() {
		return -1
	}
	// Only the repository's owner writes there, as for the header index:
	// entries of another user would be files that user could change.
	var st unix.Stat_t
	if unix.Stat(r.Path("tmp"), &st) != nil || int(st.Uid) != os.Geteuid() {
		return -1
	}
	dir := r.Path(repo.UncompressedCacheDir)
	if err := unix.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	if unix.Fstat(fd, &st) != nil || dev != 0 && st.Dev != dev {
		unix.Close(fd)
		return -1
	}
	return fd
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

// cacheable says whether o's file goes through the cache: a regular file
// with content (empty files are never linked).
func (c *checkouter) cacheable(o *object) bool {
	return c.cacheFd >= 0 && o.h.Type == repo.TypeRegular && o.h.Size > 0
}

// linkCached hardlinks o's cache entry at name in n. It reports false,
// with no error, when there is no entry fit to link (one unfit is removed
// from the cache); an error wrapping EEXIST means name is taken.
func (w *worker) linkCached(n *dirNode, name string, o *object) (bool, error) {
	c := w.c
	rel := repo.UncompressedCacheEntry(o.id)
	var st unix.Stat_t
	if err := unix.Fstatat(c.cacheFd, rel, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, nil
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o7777 != c.wantMode(o.h.Mode) || st.Size != int64(o.h.Size) ||
		st.Mtim.Sec != 0 || st.Mtim.Nsec != 0 || st.Uid != uint32(os.Geteuid()) || st.Gid != uint32(os.Getegid()) {
		unix.Unlinkat(c.cacheFd, rel, 0)
		c.cacheDropped.Add(1)
		return false, nil
	}
	err := unix.Linkat(c.cacheFd, rel, n.fd, name, 0)
	switch {
	case err == nil:
		c.cached.Add(1)
		return true, nil
	case errors.Is(err, unix.EEXIST):
		return false, err
	}
	// Gone since (a prune), too many links, or refused: decompress.
	return false, nil
}

// addToCache links the file just written at fd, o's content verified and
// its mode and times final, into the cache, unless an entry is there
// already. It costs only speed when it fails, so failures are not errors;
// a filesystem that refuses such links turns adding off.
func (w *worker) addToCache(fd int, o *object) {
	c := w.c
	if c.cacheOff.Load() {
		return
	}
	rel := repo.UncompressedCacheEntry(o.id)
	// The descriptor's own inode, whatever its name in DEST has become.
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	err := unix.Linkat(unix.AT_FDCWD, proc, c.cacheFd, rel, unix.AT_SYMLINK_FOLLOW)
	if errors.Is(err, unix.ENOENT) {
		if e := unix.Mkdirat(c.cacheFd, rel[:2], 0o755); e == nil || errors.Is(e, unix.EEXIST) {
			err = unix.Linkat(unix.AT_FDCWD, proc, c.cacheFd, rel, unix.AT_SYMLINK_FOLLOW)
		}
	}
	switch {
	case err == nil, errors.Is(err, unix.EEXIST), errors.Is(err, unix.EMLINK):
	default:
		c.cacheOff.Store(true)
	}
}
