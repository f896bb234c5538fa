package checkout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// fileBatch bounds how many files of one directory one task copies, so a
// directory of thousands of files still spreads over every worker (links
// are all made by the directory's own task: see dirTask).
const fileBatch = 64

// worker is per-goroutine scratch.
type worker struct {
	c     *checkouter
	buf   []byte // content copies
	buf2  []byte // content comparisons
	xbuf  []byte // the bare-user header xattr
	dents []byte
	link  []byte
	o     object
}

func newWorker(c *checkouter) *worker {
	return &worker{c: c, buf: make([]byte, 256<<10), xbuf: make([]byte, 512),
		dents: make([]byte, 32<<10), link: make([]byte, unix.PathMax+1)}
}

// dirNode is one directory of the checkout. Its descriptor stays open until
// everything below it is written; then its metadata and times are set.
type dirNode struct {
	parent  *dirNode
	name    string // in the parent
	path    string // for messages: DEST/...
	tree    repo.ID
	metaID  repo.ID
	meta    *repo.DirMeta
	only    *repo.FileEntry // a subpath naming a file: the only entry
	fd      int
	existed bool // was in DEST already (union modes): metadata kept

	// files and dirs are the entries written into it, sorted; entries
	// counts them. disk is what it held when an entry was first found
	// in the way (collision).
	files   []repo.FileEntry
	dirs    []repo.DirEntry
	entries int
	disk    ondisk

	// pending counts this directory's own listing task, its unfinished
	// file batches and its unfinished subdirectories.
	pending atomic.Int32
}

// dirTask lists one directory: subdirectories and batches of files become
// tasks of their own.
func (w *worker) dirTask(n *dirNode) error {
	c := w.c
	var files []repo.FileEntry
	var dirs []repo.DirEntry
	if n.only != nil {
		files = []repo.FileEntry{*n.only}
	} else {
		t, err := c.readTree(n.tree)
		if err != nil {
			return fmt.Errorf("checkout: %s: %w", n.path, err)
		}
		files, dirs = t.Files, t.Dirs
	}
	// The decoder refuses such names already; a checkout must not depend
	// on that to stay inside DEST.
	for _, f := range files {
		if !repo.ValidName(f.Name) {
			return fmt.Errorf("checkout: %s: dirtree %s has an invalid entry name %q", n.path, n.tree, f.Name)
		}
	}
	for _, d := range dirs {
		if !repo.ValidName(d.Name) {
			return fmt.Errorf("checkout: %s: dirtree %s has an invalid entry name %q", n.path, n.tree, d.Name)
		}
	}
	if c.skip != nil {
		files, dirs = c.skipEntries(n, files, dirs)
	}
	if c.opts.Whiteouts {
		var err error
		if files, err = w.whiteouts(n, files); err != nil {
			return err
		}
	}
	n.files, n.dirs, n.entries = files, dirs, len(files)+len(dirs)
	// Subdirectories are created here, by the one task writing into n,
	// and then listed by tasks of their own: two workers writing entries
	// into one directory only queue on its lock (and spin on it).
	for _, d := range dirs {
		child := &dirNode{parent: n, name: d.Name, path: n.path + "/" + d.Name, tree: d.TreeID, metaID: d.MetaID, fd: -1}
		if err := w.enterDir(child); err != nil {
			return err
		}
		child.pending.Store(1)
		n.pending.Add(1)
		c.q.Push(func(w *worker) error { return w.dirTask(child) })
	}
	if c.link {
		// Links are made under the directory's lock: spreading them over
		// workers gains nothing.
		for _, f := range files {
			if err := w.file(n, f.Name, f.ID); err != nil {
				return err
			}
		}
		return c.done(n)
	}
	for i := 0; i < len(files); i += fileBatch {
		batch := files[i:min(i+fileBatch, len(files))]
		n.pending.Add(1)
		c.q.Push(func(w *worker) error {
			for _, f := range batch {
				if err := w.file(n, f.Name, f.ID); err != nil {
					return err
				}
			}
			return c.done(n)
		})
	}
	return c.done(n)
}

// skipEntries leaves out the entries of n the skip list names; the slices
// it is given belong to a dirtree and are not changed.
func (c *checkouter) skipEntries(n *dirNode, files []repo.FileEntry, dirs []repo.DirEntry) ([]repo.FileEntry, []repo.DirEntry) {
	rel := n.path[len(c.dest):] // "" for the root, else "/a/b"
	skipped := func(name string) bool { return c.skip[rel+"/"+name] }
	if slices.ContainsFunc(files, func(f repo.FileEntry) bool { return skipped(f.Name) }) {
		files = slices.DeleteFunc(slices.Clone(files), func(f repo.FileEntry) bool { return skipped(f.Name) })
	}
	if slices.ContainsFunc(dirs, func(d repo.DirEntry) bool { return skipped(d.Name) }) {
		dirs = slices.DeleteFunc(slices.Clone(dirs), func(d repo.DirEntry) bool { return skipped(d.Name) })
	}
	return files, dirs
}

// enterDir creates a subdirectory (or, in a union mode, opens the existing
// one; a symlink or file in its place is never followed) and opens it.
func (w *worker) enterDir(n *dirNode) error {
	c := w.c
	m, err := c.dirMeta(n.metaID)
	if err != nil {
		return fmt.Errorf("checkout: %s: %w", n.path, err)
	}
	n.meta = m
	pfd := n.parent.fd
	for attempt := 0; ; attempt++ {
		err := unix.Mkdirat(pfd, n.name, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || attempt > 0 {
			return fmt.Errorf("checkout: %w", &os.PathError{Op: "mkdir", Path: n.path, Err: err})
		}
		if err := w.collision(n.parent, n.name); err != nil {
			return err
		}
		if !c.opts.union() {
			return fmt.Errorf("checkout: %s: %w", n.path, fs.ErrExist)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, n.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("checkout: %w", &os.PathError{Op: "stat", Path: n.path, Err: err})
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			n.existed = true
			break
		}
		// --union replaces a symlink in the way: following it could lead
		// outside DEST. Anything else in the way is refused, as OSTree
		// refuses it: deleting a file to make room for a directory loses
		// what the file held.
		if !c.opts.Union || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return fmt.Errorf("checkout: %s exists and is %s, not a directory (it is neither followed nor replaced)", n.path, describe(st.Mode))
		}
		if err := unix.Unlinkat(pfd, n.name, 0); err != nil {
			return fmt.Errorf("checkout: replacing %s with a directory: %w", n.path, err)
		}
	}
	fd, err := unix.Openat(pfd, n.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("checkout: %w", &os.PathError{Op: "open", Path: n.path, Err: err})
	}
	n.fd = fd
	c.mu.Lock()
	c.open[n] = struct{}{}
	c.mu.Unlock()
	c.dirs.Add(1)
	return nil
}

// done releases one unit of n's pending work; the last one finishes n, which
// releases one unit of its parent's.
func (c *checkouter) done(n *dirNode) error {
	for n != nil && n.pending.Add(-1) == 0 {
		if err := c.finish(n); err != nil {
			return err
		}
		n = n.parent
	}
	return nil
}

// finish sets a directory's metadata once everything below it is written,
// so that a read-only directory does not block its own entries, then its
// times, and closes it. A directory that was in DEST already is the
// caller's: it keeps its owner, mode, xattrs and times (the kernel updates
// its mtime when entries change).
func (c *checkouter) finish(n *dirNode) error {
	if !n.existed {
		m := n.meta
		uid, gid, xattrs := m.UID, m.GID, m.Xattrs
		if c.mode == repo.ModeBareUserOnly {
			// Such a repository records no owner or xattrs, as for its
			// files: those of a pulled dirmeta are not its to give.
			uid, gid, xattrs = 0, 0, nil
		}
		if c.owners {
			if err := unix.Fchown(n.fd, int(uid), int(gid)); err != nil {
				return fmt.Errorf("checkout: %s: chown to %d:%d: %w%s", n.path, uid, gid, err, userModeHint(err))
			}
		}
		if !c.opts.UserMode {
			for _, x := range xattrs {
				if err := unix.Fsetxattr(n.fd, x.Name, x.Value, 0); err != nil {
					return fmt.Errorf("checkout: %s: setting xattr %s: %w%s", n.path, x.Name, err, userModeHint(err))
				}
			}
		}
		if err := unix.Fchmod(n.fd, c.dirMode(m.Mode)); err != nil {
			return fmt.Errorf("checkout: %s: chmod: %w", n.path, err)
		}
		if err := unix.UtimesNanoAt(n.fd, "", zeroTime, unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("checkout: %s: setting times: %w", n.path, err)
		}
	}
	n.files, n.dirs, n.disk.names = nil, nil, nil // everything below is written
	err := unix.Close(n.fd)
	c.mu.Lock()
	delete(c.open, n)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("checkout: %s: %w", n.path, err)
	}
	return nil
}

// userModeHint suggests user mode after a permission error restoring
// ownership or xattrs, unless the checkout already runs as root: then the
// kernel refused for another reason, and user mode is no answer.
func userModeHint(err error) string {
	if errors.Is(err, unix.EPERM) && os.Geteuid() != 0 {
		return " (restoring ownership and xattrs needs root; check out in user mode, -U, to skip it)"
	}
	return ""
}

// xattrHint explains a failure to set xattr name on an entry of type t.
// The kernel refuses user.* xattrs on anything but regular files and
// directories (EPERM), for root too.
func xattrHint(err error, name string, t repo.FileType) string {
	if errors.Is(err, unix.EPERM) && strings.HasPrefix(name, "user.") && t != repo.TypeRegular {
		return fmt.Sprintf(" (the kernel allows user.* xattrs only on regular files and directories, not on %s)", typeNoun(t))
	}
	return userModeHint(err)
}

// typeNoun names a file object's type for messages ("a regular file").
func typeNoun(t repo.FileType) string { return describe(t.UnixType()) }

// describe names a file type for messages ("a symlink").
func describe(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return fmt.Sprintf("of type %o", mode&unix.S_IFMT)
}
