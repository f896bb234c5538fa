package commit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/repo"
)

// KeptReason says why consuming a source left one of its entries in place.
type KeptReason int

// The reasons an entry is kept.
const (
	// KeptNotCommitted: the commit does not hold the entry. It appeared
	// after the walk listed its directory, the skip list left it out, or
	// a later source laid another entry over it.
	KeptNotCommitted KeptReason = iota + 1
	// KeptChanged: the entry is no longer what the walk read (its stat or
	// content changed, or it was replaced, a directory by a symlink say),
	// so the commit may not hold what it is now.
	KeptChanged
	// KeptFailed: checking or removing the entry failed (KeptPath.Err).
	KeptFailed
)

// String describes the reason, for messages.
func (k KeptReason) String() string {
	switch k {
	case KeptNotCommitted:
		return "not in the commit"
	case KeptChanged:
		return "changed since it was read"
	case KeptFailed:
		return "could not be removed"
	}
	return fmt.Sprintf("KeptReason(%d)", int(k))
}

// KeptPath is an entry of a directory source that consuming the source
// left in place, and so the directories holding it.
type KeptPath struct {
	Path   string     // the source's path joined with the entry's
	Reason KeptReason // why it is kept
	Err    error      // with KeptFailed, what failed
}

// String gives the path and why it is kept.
func (k KeptPath) String() string {
	if k.Err != nil {
		return fmt.Sprintf("%s (%v)", k.Path, k.Err)
	}
	return fmt.Sprintf("%s (%s)", k.Path, k.Reason)
}

// ConsumeError is what Commit returns, with its Result, when the commit
// landed (the ref is at Commit) but consuming the directory sources kept
// some of their entries (Options.Consume).
type ConsumeError struct {
	Commit repo.ID
	Kept   []KeptPath // source by source, each in name order, depth first
}

// keptShown is how many kept paths an error message names.
const keptShown = 5

// Error names the commit and the first kept paths, and counts the rest.
func (e *ConsumeError) Error() string {
	var b strings.Builder
	what := "entries"
	if len(e.Kept) == 1 {
		what = "entry"
	}
	fmt.Fprintf(&b, "commit %s landed, but consuming its sources kept %d %s: ", e.Commit, len(e.Kept), what)
	for i, k := range e.Kept[:min(len(e.Kept), keptShown)] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k.String())
	}
	if n := len(e.Kept) - keptShown; n > 0 {
		fmt.Fprintf(&b, " and %d more", n)
	}
	return b.String()
}

// seenDir is what the walk saw of a directory of a source it consumes:
// the directory's identity and each entry's exact stat and object.
type seenDir struct {
	name     string // in its parent; "" for the source itself
	dev, ino uint64
	files    []seenFile // sorted by name
	dirs     []*seenDir // sorted by name
}

type seenFile struct {
	name string
	key  statKey // the lstat the walk took, trusted or not
	id   repo.ID
}

// snapshot records what the walk saw of d (walked with exact keys), named
// name in its parent.
func snapshot(d *dir, name string) *seenDir {
	s := &seenDir{name: name, dev: d.key.dev, ino: d.key.ino}
	if d.filesClean {
		for _, f := range d.rec.appendFiles(nil) {
			s.files = append(s.files, seenFile{name: string(f.name), key: f.key, id: f.id})
		}
	} else {
		s.files = make([]seenFile, len(d.fileNames))
		for i, n := range d.fileNames {
			s.files[i] = seenFile{name: n, key: d.fileKeys[i], id: d.fileIDs[i]}
		}
	}
	s.dirs = make([]*seenDir, len(d.dirs))
	for i, sub := range d.dirs {
		s.dirs[i] = snapshot(sub, d.dirNames[i])
	}
	return s
}

// consumeHook, when set (by tests), is called once the commit has landed,
// before its sources are consumed.
var consumeHook func()

// rereadHook, when set (by tests), is called before consuming opens a
// regular file to read it again.
var rereadHook func(path string)

// consumer removes from directory sources what a landed commit holds.
//
// An entry that is not a directory goes only if the commit's tree holds,
// at its path, the object the walk made of it, and its lstat is still
// the one the walk took (device, inode, size, mtime, ctime, mode, owner),
// which every change to its content or metadata moves. An entry changed
// within the timestamps' granularity of the walk's start would keep its
// stat (the stat cache's racy case): it is read again and goes only if it
// still makes the same object. Directories are opened below their parent
// without following symlinks and must be the ones walked (device and
// inode); they are removed with rmdir once empty, the source last. So
// nothing the commit does not hold is removed, nothing outside the
// source is reached, and what is kept is reported.
type consumer struct {
	r     reader
	mod   *modifier
	start int64 // the run's start (ns), as the walk's racy rule takes it
	h     *hash.Hasher
	buf   []byte // content and getdents scratch
	hdr   []byte
	// unlinked holds, for each inode with other links that a name was
	// removed of, its stat before and its ctime after: removing a link
	// moves the ctime of the names left, which is not a change to them.
	unlinked map[[2]uint64]relinked
	kept     []KeptPath
}

type relinked struct {
	before statKey
	ctime  int64
}

func newConsumer(r reader, mod *modifier, start int64) *consumer {
	return &consumer{r: r, mod: mod, start: start, h: hash.New(), buf: make([]byte, 64<<10)}
}

func (c *consumer) keep(path string, why KeptReason, err error) {
	c.kept = append(c.kept, KeptPath{Path: path, Reason: why, Err: err})
}

// source consumes the directory source at path, walked as s, whose entries
// the commit's tree final holds or not.
func (c *consumer) source(path string, s *seenDir, final *dir) {
	// Not through a symlink (Commit refuses one as the source): one
	// put in its place since leads elsewhere.
	path = filepath.Clean(path)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case err == unix.ENOENT:
		return
	case err == unix.ELOOP || err == unix.ENOTDIR:
		c.keep(path, KeptChanged, nil)
		return
	case err != nil:
		c.keep(path, KeptFailed, &os.PathError{Op: "open", Path: path, Err: err})
		return
	}
	empty := c.sameDir(fd, path, s) && c.dir(fd, path, "", s, final)
	unix.Close(fd)
	var cwd unix.Stat_t
	if !empty || unix.Stat(".", &cwd) == nil && cwd.Dev == s.dev && cwd.Ino == s.ino {
		// The working directory is emptied but stays, as in OSTree:
		// paths relative to it are still to be resolved.
		return
	}
	if err := unix.Rmdir(path); err != nil && err != unix.ENOENT {
		c.keep(path, KeptFailed, &os.PathError{Op: "rmdir", Path: path, Err: err})
	}
}

// sameDir reports whether the directory open at fd is the one walked as s,
// keeping it when not.
func (c *consumer) sameDir(fd int, path string, s *seenDir) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		c.keep(path, KeptFailed, &os.PathError{Op: "stat", Path: path, Err: err})
		return false
	}
	if st.Dev != s.dev || st.Ino != s.ino {
		c.keep(path, KeptChanged, nil)
		return false
	}
	return true
}

// dir removes what the commit holds from the directory open at fd (path,
// tree path rel), walked as s, whose counterpart in the commit's tree is f
// (nil when it has none), and reports whether the directory is empty now.
func (c *consumer) dir(fd int, path, rel string, s *seenDir, f *dir) bool {
	var handled map[string]bool // entries kept and reported already
	kept := func(name string) {
		if handled == nil {
			handled = map[string]bool{}
		}
		handled[name] = true
	}
	for i := range s.files {
		e := &s.files[i]
		p := path + "/" + e.name
		if why, err := c.file(fd, p, rel, e, f); why != 0 {
			c.keep(p, why, err)
			kept(e.name)
		}
	}
	for _, sub := range s.dirs {
		if !c.subdir(fd, path+"/"+sub.name, joinPath(rel, sub.name), sub, f) {
			kept(sub.name)
		}
	}
	// What is left and not reported yet is what the walk did not see.
	names, err := dirent.Names(fd, c.buf, path)
	if err != nil {
		c.keep(path, KeptFailed, err)
		return false
	}
	for _, n := range names {
		if !handled[n] {
			c.keep(path+"/"+n, KeptNotCommitted, nil)
		}
	}
	return len(names) == 0
}

// subdir consumes the subdirectory of the directory open at fd walked as
// s (path p, tree path rel), and reports whether it is gone.
func (c *consumer) subdir(fd int, p, rel string, s *seenDir, f *dir) bool {
	cfd, err := unix.Openat(fd, s.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case err == unix.ENOENT:
		return true
	case err == unix.ELOOP || err == unix.ENOTDIR:
		c.keep(p, KeptChanged, nil) // a symlink or file now: not followed
		return false
	case err != nil:
		c.keep(p, KeptFailed, &os.PathError{Op: "open", Path: p, Err: err})
		return false
	}
	var fsub *dir
	if f != nil {
		if fsub, err = f.subdir(c.r, s.name); err != nil {
			unix.Close(cfd)
			c.keep(p, KeptFailed, err)
			return false
		}
	}
	empty := c.sameDir(cfd, p, s) && c.dir(cfd, p, rel, s, fsub)
	unix.Close(cfd)
	if !empty {
		return false
	}
	// rmdir removes only an empty directory, and never through a
	// symlink: whatever replaced it since, nothing is lost.
	if err := unix.Unlinkat(fd, s.name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		c.keep(p, KeptFailed, &os.PathError{Op: "rmdir", Path: p, Err: err})
		return false
	}
	return true
}

// file removes the entry e of the directory open at fd (path p, tree path
// of the directory rel) if the commit holds it as it is, else says why
// not.
func (c *consumer) file(fd int, p, rel string, e *seenFile, f *dir) (KeptReason, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(fd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return 0, nil // gone already
		}
		return KeptFailed, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if f == nil {
		return KeptNotCommitted, nil
	}
	if id, ok, err := f.file(c.r, e.name); err != nil {
		return KeptFailed, err
	} else if !ok || id != e.id {
		return KeptNotCommitted, nil
	}
	now := keyOf(&st)
	if r, ok := c.unlinked[[2]uint64{st.Dev, st.Ino}]; ok && now.ctime == r.ctime {
		// The ctime is the one removing another of its names gave it.
		now.ctime = r.before.ctime
	}
	if now != e.key {
		return KeptChanged, nil
	}
	if !trustedKey(&e.key, c.start) {
		same, err := c.same(fd, p, rel, e, &st)
		if err != nil {
			return KeptFailed, err
		}
		if !same {
			return KeptChanged, nil
		}
	}
	pfd := -1
	if st.Nlink > 1 {
		// Its other names lose a link, and the ctime moves: note the
		// new one, read through a handle on the inode itself.
		pfd, _ = unix.Openat(fd, e.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	err := unix.Unlinkat(fd, e.name, 0)
	if pfd >= 0 {
		var after unix.Stat_t
		if err == nil && unix.Fstat(pfd, &after) == nil && after.Dev == st.Dev && after.Ino == st.Ino {
			if c.unlinked == nil {
				c.unlinked = map[[2]uint64]relinked{}
			}
			c.unlinked[[2]uint64{st.Dev, st.Ino}] = relinked{before: now, ctime: after.Ctim.Nano()}
		}
		unix.Close(pfd)
	}
	if err != nil && err != unix.ENOENT {
		return KeptFailed, &os.PathError{Op: "unlink", Path: p, Err: err}
	}
	return 0, nil
}

// same reports whether the entry e of the directory open at fd, whose
// lstat is st, still makes the object the walk made of it: its stat cannot
// tell, having been taken too close to a change.
func (c *consumer) same(fd int, p, rel string, e *seenFile, st *unix.Stat_t) (bool, error) {
	o := c.mod.overrideFor(rel, e.name)
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		// A symlink's target or a device's number cannot change in
		// place; its xattrs can.
		h, err := DiskHeaderAt(fd, filepath.Dir(p), e.name, st, !c.mod.keepsXattrs())
		if err != nil {
			return false, err
		}
		if err := c.mod.file(h, o); err != nil {
			return false, fmt.Errorf("%s: %w", p, err)
		}
		return repo.FileID(h, nil) == e.id, nil
	}
	if rereadHook != nil {
		rereadHook(p)
	}
	// O_NONBLOCK: should it have been swapped for a FIFO since the lstat,
	// do not wait for a writer (the fstat below tells it is another).
	rfd, err := unix.Openat(fd, e.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return false, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(rfd), p)
	defer f.Close()
	var opened unix.Stat_t
	if err := unix.Fstat(rfd, &opened); err != nil {
		return false, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if keyOf(&opened) != keyOf(st) {
		return false, nil // replaced since the lstat: not read
	}
	h, err := c.mod.regularHeader(rfd, st, o)
	if err != nil {
		return false, fmt.Errorf("%s: %w", p, err)
	}
	c.hdr = repo.AppendFileHeader(c.hdr[:0], &h)
	c.h.Reset()
	c.h.Write(c.hdr)
	n, err := io.CopyBuffer(c.h, io.LimitReader(f, st.Size+1), c.buf)
	if err != nil {
		return false, &os.PathError{Op: "read", Path: p, Err: err}
	}
	var after unix.Stat_t
	if err := unix.Fstat(rfd, &after); err != nil {
		return false, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return n == st.Size && keyOf(&after) == keyOf(st) && repo.ID(c.h.Sum()) == e.id, nil
}

// trustedKey is trusted for a recorded key.
func trustedKey(k *statKey, startNanos int64) bool {
	var st unix.Stat_t
	st.Ctim = unix.NsecToTimespec(k.ctime)
	st.Mtim = unix.NsecToTimespec(k.mtime)
	return trusted(&st, startNanos)
}

// subdir returns the subdirectory name of d in the commit's tree, or nil.
func (d *dir) subdir(r reader, name string) (*dir, error) {
	if err := d.expand(r); err != nil {
		return nil, err
	}
	if i := d.findDir(name); i >= 0 {
		return d.dirs[i], nil
	}
	return nil, nil
}

// file returns the object of the non-directory name of d in the commit's
// tree, if it has one.
func (d *dir) file(r reader, name string) (repo.ID, bool, error) {
	if err := d.expand(r); err != nil {
		return repo.ID{}, false, err
	}
	if i := d.findFile(name); i >= 0 {
		return d.fileIDs[i], true, nil
	}
	return repo.ID{}, false, nil
}
