package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/internal/rawfd"
	"github.com/otree/otree/internal/xattr"
	"golang.org/x/sys/unix"
)

// EtcFate is what happened to one path of /etc in a merge.
//
// A path's local change is how the old /etc differs from the old defaults
// (the old deployment's /usr/etc) there; its default change is how the new
// defaults differ from the old ones. The new /etc is the new defaults with
// every local change applied on top, as OSTree does: locally added or
// modified entries are copied from the old /etc, locally deleted ones are
// left out, everything else is the new default.
//
// When both sides changed a path differently (FateBoth), the admin's version
// wins, a local deletion included; the new default is not lost, as the new
// deployment keeps it at /usr/etc/PATH, which Detail names. The same holds
// for new defaults below a directory the admin deleted or replaced by a
// non-directory: they are not applied and each is reported as FateBoth. A
// directory the new defaults remove is kept, with the admin's metadata, when
// the admin added or modified something below it.
//
// Two cases cannot be merged without dropping one side's tree, and are
// FateConflict, which fails MergeEtc: a local non-directory (added or
// modified) where the new defaults bring a directory, which OSTree refuses
// too; and a default directory that the new defaults turn into a
// non-directory while the admin changed its metadata or added or modified
// something below it. A default directory the admin replaced by a
// non-directory is treated as a deletion of that directory, not a conflict.
type EtcFate string

// The fates of a path.
const (
	FateLocal    EtcFate = "local"    // only the admin changed it: the admin's version is kept
	FateDefault  EtcFate = "default"  // only the defaults changed it: the new default is taken
	FateSame     EtcFate = "same"     // both sides made the identical change
	FateBoth     EtcFate = "both"     // both changed it differently: the admin's version is kept
	FateConflict EtcFate = "conflict" // the merge cannot keep both; see EtcFate
)

// EtcChange is one path whose fate is reported.
type EtcChange struct {
	Path    string  `json:"path"`              // "/etc/..." e.g. "/etc/hosts"; "/etc" for the directory itself
	Fate    EtcFate `json:"fate"`              // what the merge did
	Local   string  `json:"local,omitempty"`   // "A", "M", "D" or "": the admin's change vs old default
	Default string  `json:"default,omitempty"` // "A", "M", "D" or "": the new default vs old default
	// Fields names what differs on an "M": of the local side when Local is
	// "M", else of the default side, from "type", "content", "mode",
	// "owner", "xattrs", "target", "rdev" in that order. A type change
	// lists only "type".
	Fields []string `json:"fields,omitempty"`
	Detail string   `json:"detail,omitempty"` // human explanation for both, conflict and skipped entries
}

// String returns the change as one line of fixed columns: the fate, the
// local and the default letter ("-" for none), the path, then the fields in
// parentheses and the detail, if any.
func (c EtcChange) String() string {
	s := fmt.Sprintf("%-8s %s %s %s", c.Fate, letterOrDash(c.Local), letterOrDash(c.Default), c.Path)
	if len(c.Fields) > 0 {
		s += " (" + strings.Join(c.Fields, ",") + ")"
	}
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

func letterOrDash(l string) string {
	if l == "" {
		return "-"
	}
	return l
}

// EtcConflictError is returned when the merge cannot be done: Conflicts
// holds every path with FateConflict.
type EtcConflictError struct {
	Conflicts []EtcChange // the paths in conflict, sorted by path
}

// Error names every conflicting path with its detail.
func (e *EtcConflictError) Error() string {
	parts := make([]string, len(e.Conflicts))
	for i, c := range e.Conflicts {
		parts[i] = c.Path + " (" + c.Detail + ")"
	}
	return fmt.Sprintf("cannot merge /etc: %d conflicting path(s): %s", len(e.Conflicts), strings.Join(parts, "; "))
}

// MergeEtc merges the old deployment's /etc into a new one (see EtcFate):
// oldDefaults and oldEtc are the old deployment's usr/etc and etc,
// newDefaults the new deployment's usr/etc, and dest, which must not exist
// (its parent must), receives the result. It returns one record per path
// that changed on either side, sorted by path.
//
// An empty dest is a dry run: only the records are computed. A missing
// oldDefaults or newDefaults is an empty tree. A missing oldEtc means there
// is nothing to merge: no records, and dest is a copy of newDefaults.
//
// Nothing is followed through symlinks, on reading or writing. Regular
// files are copied, never hardlinked, with their mode, owner and xattrs;
// so are directories, symlinks, FIFOs and devices. Sockets are not copied
// and say so in their record's Detail. What comes from oldEtc keeps its
// mtime, directories and symlinks aside; what comes from newDefaults,
// whose checkout dates from 1970, every directory and every symlink get
// the time of the merge, as OSTree's /etc does.
//
// On conflicts MergeEtc returns all the records with an *EtcConflictError
// and writes nothing. On any other error, dest is removed.
func MergeEtc(ctx context.Context, oldDefaults, oldEtc, newDefaults, dest string) ([]EtcChange, error) {
	return mergeEtc(&merger{ctx: ctx, buf: make([]byte, 32<<10), listDir: dirent.NamesApart}, oldDefaults, oldEtc, newDefaults, dest)
}

// mergeEtc is MergeEtc with the merger given.
func mergeEtc(m *merger, oldDefaults, oldEtc, newDefaults, dest string) ([]EtcChange, error) {
	defer func() {
		for _, t := range m.open {
			unix.Close(t.fd)
		}
	}()
	recs, err := m.merge(oldDefaults, oldEtc, newDefaults, dest)
	var ce *EtcConflictError
	if err != nil && !errors.As(err, &ce) {
		// Name the merge: a cancellation, unlike a path's error, says
		// nothing of where.
		switch {
		case dest == "":
			return nil, fmt.Errorf("etc merge of %s with %s (dry run): %w", oldEtc, newDefaults, err)
		case oldEtc == "":
			return nil, fmt.Errorf("etc merge of %s into %s: %w", newDefaults, dest, err)
		}
		return nil, fmt.Errorf("etc merge of %s with %s into %s: %w", oldEtc, newDefaults, dest, err)
	}
	return recs, err
}

func (m *merger) merge(oldDefaults, oldEtc, newDefaults, dest string) ([]EtcChange, error) {
	var err error
	if m.oe, err = m.load(oldEtc); err != nil {
		return nil, err
	}
	if m.nd, err = m.load(newDefaults); err != nil {
		return nil, err
	}
	switch {
	case m.oe.fd < 0:
		m.od, m.oe = m.nd, m.nd
	case oldDefaults == newDefaults:
		m.od = m.nd
	default:
		if m.od, err = m.load(oldDefaults); err != nil {
			return nil, err
		}
	}
	root, _, err := m.visit("", "")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(m.recs, func(a, b EtcChange) int { return strings.Compare(a.Path, b.Path) })
	var conflicts []EtcChange
	for _, c := range m.recs {
		if c.Fate == FateConflict {
			conflicts = append(conflicts, c)
		}
	}
	if conflicts != nil {
		return m.recs, &EtcConflictError{Conflicts: conflicts}
	}
	if dest == "" {
		return m.recs, nil
	}
	if err := unix.Mkdir(dest, 0o700); err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: dest, Err: err}
	}
	if err := m.fill(unix.AT_FDCWD, "", dest, root); err != nil {
		os.RemoveAll(dest)
		return nil, err
	}
	return m.recs, nil
}

// node is one entry of a source tree, as read by lstat.
type node struct {
	mode           uint32 // type and permission bits
	uid, gid       uint32
	size           int64
	dev, ino, rdev uint64
	mtime          unix.Timespec
	target         string // symlinks
	xattrs         []xattr.Attr
	kids           []string // directories: entry names, sorted
}

func (n *node) typ() uint32 { return n.mode & unix.S_IFMT }

func isDir(n *node) bool { return n != nil && n.typ() == unix.S_IFDIR }

// tree is one of the three source directories, read whole into memory.
type tree struct {
	path  string
	fd    int              // the directory, open; -1 when it does not exist
	nodes map[string]*node // by slash-separated path relative to the root, "" for the root
}

func (t *tree) pathErr(op, rel string, err error) error {
	return &os.PathError{Op: op, Path: filepath.Join(t.path, rel), Err: err}
}

// entry is one path of the merged /etc and where it is copied from.
type entry struct {
	name, rel string
	t         *tree
	n         *node
	kids      []*entry
}

type merger struct {
	ctx        context.Context
	od, oe, nd *tree // old defaults, old /etc, new defaults
	open       []*tree
	recs       []EtcChange
	buf        []byte

	// listDir lists a directory of the new /etc (dirent.NamesApart);
	// created, if set, is called after each entry is made. Tests
	// substitute both.
	listDir func(fd int, path string) ([]string, error)
	created func(dirfd int, dirPath, name string)
}

// errChanged reports a source entry that changed type while being read.
var errChanged = errors.New("changed during the merge")

// load reads the tree at path; a missing one is empty.
func (m *merger) load(path string) (*tree, error) {
	t := &tree{path: path, fd: -1, nodes: map[string]*node{}}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return t, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	t.fd = fd
	m.open = append(m.open, t)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, t.pathErr("stat", "", err)
	}
	t.nodes[""] = statNode(&st)
	return t, m.scanDir(t, fd, "", t.nodes[""])
}

func statNode(st *unix.Stat_t) *node {
	return &node{mode: st.Mode, uid: st.Uid, gid: st.Gid, size: st.Size,
		dev: uint64(st.Dev), ino: st.Ino, rdev: uint64(st.Rdev), mtime: st.Mtim}
}

// scanDir reads directory rel, open at fd, and what is below it into t.
func (m *merger) scanDir(t *tree, fd int, rel string, dir *node) error {
	var err error
	if dir.xattrs, err = xattr.FList(fd, nil); err != nil {
		return t.pathErr("xattrs", rel, err)
	}
	names, err := dirent.Names(fd, m.buf, filepath.Join(t.path, rel))
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		if err := m.ctx.Err(); err != nil {
			return err
		}
		crel := join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // the old /etc is live: removed since listed
			}
			return t.pathErr("lstat", crel, err)
		}
		n := statNode(&st)
		switch n.typ() {
		case unix.S_IFDIR:
			err = m.openDir(t, fd, name, crel, n)
		case unix.S_IFLNK:
			if n.target, err = dirent.Readlink(fd, name); err != nil {
				err = t.pathErr("readlink", crel, err)
				break
			}
			fallthrough
		default:
			if n.xattrs, err = xattr.ListAt(fd, filepath.Join(t.path, rel), name, nil); err != nil {
				err = t.pathErr("xattrs", crel, err)
			}
		}
		if err != nil {
			return err
		}
		dir.kids = append(dir.kids, name)
		t.nodes[crel] = n
	}
	return nil
}

// openDir opens directory name of parent, checks it is still the one
// lstat saw, and scans it.
func (m *merger) openDir(t *tree, parent int, name, rel string, n *node) error {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return t.pathErr("open", rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return t.pathErr("stat", rel, err)
	}
	if uint64(st.Dev) != n.dev || st.Ino != n.ino {
		return t.pathErr("open", rel, errChanged)
	}
	return m.scanDir(t, fd, rel, n)
}

func join(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

func etcPath(rel string) string { return strings.TrimSuffix("/etc/"+rel, "/") }

func usrEtcPath(rel string) string { return strings.TrimSuffix("/usr/etc/"+rel, "/") }

// openFile opens the regular file rel of t, following no symlink on the way.
func (t *tree) openFile(rel string) (*os.File, error) {
	fd := t.fd
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			// O_NONBLOCK: should it have become a FIFO, do not wait for a writer.
			flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
		}
		nfd, err := unix.Openat(fd, name, flags, 0)
		if fd != t.fd {
			unix.Close(fd)
		}
		if err != nil {
			return nil, t.pathErr("open", rel, err)
		}
		fd = nfd
	}
	f := os.NewFile(uintptr(fd), filepath.Join(t.path, rel))
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		if err == nil {
			err = errChanged
		}
		return nil, t.pathErr("open", rel, err)
	}
	return f, nil
}

// change returns the letter for how b differs from a at rel, and for "M"
// what differs.
func change(ta *tree, a *node, tb *tree, b *node, rel string) (string, []string, error) {
	switch {
	case a == nil && b == nil:
		return "", nil, nil
	case a == nil:
		return "A", nil, nil
	case b == nil:
		return "D", nil, nil
	}
	f, err := fields(ta, a, tb, b, rel)
	if err != nil || f == nil {
		return "", nil, err
	}
	return "M", f, nil
}

// fields lists what differs between two entries; nil when nothing does.
func fields(ta *tree, a *node, tb *tree, b *node, rel string) ([]string, error) {
	if a.typ() != b.typ() {
		return []string{checkout.FieldType}, nil
	}
	if a.dev == b.dev && a.ino == b.ino {
		return nil, nil // one inode: the defaults hardlink the repository's objects
	}
	var f []string
	if a.typ() == unix.S_IFREG {
		same, err := sameContent(ta, a, tb, b, rel)
		if err != nil {
			return nil, err
		}
		if !same {
			f = append(f, checkout.FieldContent)
		}
	}
	if a.typ() != unix.S_IFLNK && a.mode&0o7777 != b.mode&0o7777 {
		f = append(f, checkout.FieldMode)
	}
	if a.uid != b.uid || a.gid != b.gid {
		f = append(f, checkout.FieldOwner)
	}
	if !slices.EqualFunc(a.xattrs, b.xattrs, func(x, y xattr.Attr) bool {
		return x.Name == y.Name && bytes.Equal(x.Value, y.Value)
	}) {
		f = append(f, checkout.FieldXattrs)
	}
	if a.target != b.target {
		f = append(f, checkout.FieldTarget)
	}
	if (a.typ() == unix.S_IFCHR || a.typ() == unix.S_IFBLK) && a.rdev != b.rdev {
		f = append(f, checkout.FieldRdev)
	}
	return f, nil
}

func sameContent(ta *tree, a *node, tb *tree, b *node, rel string) (bool, error) {
	if a.size != b.size {
		return false, nil
	}
	if a.size == 0 {
		return true, nil
	}
	fa, err := ta.openFile(rel)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := tb.openFile(rel)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	size := min(a.size, 64<<10)
	ba, bb := make([]byte, size), make([]byte, size)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == ea, nil
		}
		if ea != nil {
			return false, ta.pathErr("read", rel, ea)
		}
		if eb != nil {
			return false, tb.pathErr("read", rel, eb)
		}
	}
}

// visit decides path rel of the merged /etc, records its fate and visits
// what is below it. blocked, when not empty, says why the parent is not a
// directory in the result, so that no new default below applies. It
// returns the path's result (nil: nothing there) and whether the path or a
// path below it is a local addition or modification, which needs the
// directories above it.
func (m *merger) visit(rel, blocked string) (*entry, bool, error) {
	if err := m.ctx.Err(); err != nil {
		return nil, false, err
	}
	od, oe, nd := m.od.nodes[rel], m.oe.nodes[rel], m.nd.nodes[rel]
	c := EtcChange{Path: etcPath(rel)}
	var lf, df []string
	var err error
	// A missing tree has no root to compare: the root is left unreported.
	if rel != "" || (od != nil && oe != nil && nd != nil) {
		if c.Local, lf, err = change(m.od, od, m.oe, oe, rel); err != nil {
			return nil, false, err
		}
		if c.Default, df, err = change(m.od, od, m.nd, nd, rel); err != nil {
			return nil, false, err
		}
	}
	c.Fields = df
	if c.Local == "M" {
		c.Fields = lf
	}
	kept := c.Local == "A" || c.Local == "M"
	res, rt := nd, m.nd
	if c.Local != "" || (rel == "" && nd == nil) {
		res, rt = oe, m.oe
	}
	switch {
	case c.Local == "" && c.Default == "":
	case c.Local == "":
		c.Fate = FateDefault
	case c.Default == "":
		c.Fate = FateLocal
	default:
		var diff []string
		if oe != nil && nd != nil {
			if diff, err = fields(m.oe, oe, m.nd, nd, rel); err != nil {
				return nil, false, err
			}
		}
		switch {
		case (oe == nil) == (nd == nil) && diff == nil:
			c.Fate = FateSame
		case oe == nil:
			c.Fate, c.Detail = FateBoth, "kept the local deletion; the new default is "+usrEtcPath(rel)
		case nd == nil:
			c.Fate, c.Detail = FateBoth, "kept the local version; the new defaults remove it"
		default:
			c.Fate, c.Detail = FateBoth, "kept the local version; the new default is "+usrEtcPath(rel)
		}
	}
	if blocked != "" {
		// The old /etc has nothing here (Local is "D" or ""), nor does the result.
		res = nil
		if c.Default != "" && c.Default != c.Local {
			c.Fate, c.Detail = FateBoth, "not applied: "+blocked+"; the new default is "+usrEtcPath(rel)
		}
	}
	if blocked == "" && kept && !isDir(oe) && isDir(nd) && !isDir(od) {
		c.Fate, c.Detail = FateConflict, "changed locally, but the new default "+usrEtcPath(rel)+" is a directory"
	}

	// A default directory the admin left alone but the new defaults remove
	// or replace stays if something below it is kept.
	pending := rel != "" && blocked == "" && c.Local == "" && isDir(od) && isDir(oe) && !isDir(nd)
	below := blocked
	if below == "" && !isDir(res) && !pending {
		if oe == nil {
			below = etcPath(rel) + " was deleted locally"
		} else {
			below = etcPath(rel) + " is not a directory locally"
		}
	}
	var kids []*entry
	keptBelow := false
	for _, name := range kidNames(od, oe, nd) {
		k, kk, err := m.visit(join(rel, name), below)
		if err != nil {
			return nil, false, err
		}
		if k != nil {
			kids = append(kids, k)
		}
		keptBelow = keptBelow || kk
	}
	notDir := "the local directory has changes, but the new default " + usrEtcPath(rel) + " is not a directory"
	if pending && keptBelow {
		res, rt = oe, m.oe
		if nd == nil {
			c.Fate, c.Detail = FateBoth, "the new defaults remove this directory; kept for the local changes below it"
		} else {
			c.Fate, c.Detail = FateConflict, notDir
		}
	}
	if blocked == "" && c.Local == "M" && isDir(od) && isDir(oe) && nd != nil && !isDir(nd) {
		c.Fate, c.Detail = FateConflict, notDir
	}
	if res != nil && res.typ() == unix.S_IFSOCK {
		if c.Fate == "" {
			c.Fate = FateDefault // unchanged, yet not copied: say so
		}
		c.Detail = strings.TrimPrefix(c.Detail+"; a socket, not copied", "; ")
		res = nil
	}
	if c.Fate != "" {
		m.recs = append(m.recs, c)
	}
	if rel == "" && res == nil {
		res = &node{mode: unix.S_IFDIR | 0o755, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()),
			mtime: unix.Timespec{Nsec: unix.UTIME_NOW}}
	}
	if res == nil {
		return nil, kept || keptBelow, nil
	}
	e := &entry{name: filepath.Base(rel), rel: rel, t: rt, n: res}
	if isDir(res) {
		e.kids = kids
	}
	return e, kept || keptBelow, nil
}

// kidNames returns the sorted union of the entries of the directories.
func kidNames(ns ...*node) []string {
	var all []string
	for _, n := range ns {
		if n != nil {
			all = append(all, n.kids...)
		}
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// fill creates the entries of directory e, just made at name of parent,
// then sets its metadata: after the entries, as a default ACL would be
// inherited by them and the mode may deny writing them.
func (m *merger) fill(parent int, parentPath, name string, e *entry) error {
	path := filepath.Join(parentPath, name)
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for _, k := range e.kids {
		if err := m.ctx.Err(); err != nil {
			return err
		}
		if err := m.create(fd, path, k); err != nil {
			if errors.Is(err, unix.EEXIST) {
				if o := m.storedAs(fd, path, k.name, e.kids); o != nil {
					return fmt.Errorf("%w: the directory holds it as %s/%s, %s, and does not tell the two names apart (a case-insensitive or normalising directory); the merged /etc has both, %s %s",
						err, path, o.name, m.from(o), k.name, m.from(k))
				}
			}
			return err
		}
		if m.created != nil {
			m.created(fd, path, k.name)
		}
	}
	// A directory gets the time of the merge wherever it comes from, as
	// in OSTree, whose merge creates it anew and fills it.
	return setMeta(parent, parentPath, name, e.n, false)
}

// create makes e anew in the directory dirfd (at dirPath). Nothing is
// opened through a symlink, and regular files are copied, never linked.
func (m *merger) create(dirfd int, dirPath string, e *entry) error {
	n, path := e.n, dirPath+"/"+e.name
	var err error
	switch n.typ() {
	case unix.S_IFDIR:
		if err = unix.Mkdirat(dirfd, e.name, 0o700); err == nil {
			return m.fill(dirfd, dirPath, e.name, e)
		}
	case unix.S_IFREG:
		if err = m.copyFile(dirfd, path, e); err != nil {
			return err
		}
	case unix.S_IFLNK:
		err = unix.Symlinkat(n.target, dirfd, e.name)
	default: // FIFOs and devices
		err = unix.Mknodat(dirfd, e.name, n.typ()|n.mode&0o777, int(n.rdev))
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: path, Err: err}
	}
	// A symlink gets the time of the merge, as in OSTree, whose copy of
	// one is a new link.
	return setMeta(dirfd, dirPath, e.name, n, e.t != m.nd && n.typ() != unix.S_IFLNK)
}

// copyFile copies the regular file e to e.name in dirfd, holes kept.
func (m *merger) copyFile(dirfd int, path string, e *entry) error {
	src, err := e.t.openFile(e.rel)
	if err != nil {
		return err
	}
	defer src.Close()
	fd, err := unix.Openat(dirfd, e.name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: path, Err: err}
	}
	dst := os.NewFile(uintptr(fd), path)
	// Data stretch by stretch: a sparse file (a disk image, lastlog)
	// stays sparse.
	var st unix.Stat_t
	if err = unix.Fstat(int(src.Fd()), &st); err == nil {
		err = rawfd.CopyExtents(fd, int(src.Fd()), st.Size, m.buf, nil)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "copy", Path: path, Err: err}
	}
	return nil
}

// setMeta gives entry name of dirfd, which the merge just created, the
// owner, xattrs and mode of n, and its mtime if keepTime. chown comes
// first, as it clears setuid, setgid and file capabilities.
func setMeta(dirfd int, dirPath, name string, n *node, keepTime bool) error {
	path := filepath.Join(dirPath, name)
	if err := unix.Fchownat(dirfd, name, int(n.uid), int(n.gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: path, Err: err}
	}
	p := xattr.EntryPath(dirfd, dirPath, name)
	for _, a := range n.xattrs {
		// A filesystem without xattrs is no error.
		if err := unix.Lsetxattr(p, a.Name, a.Value, 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return &os.PathError{Op: "setxattr " + a.Name, Path: path, Err: err}
		}
	}
	// Flag 0 cannot follow a symlink here: the merge made this entry as
	// the type it has.
	if n.typ() != unix.S_IFLNK {
		if err := unix.Fchmodat(dirfd, name, n.mode&0o7777, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: path, Err: err}
		}
	}
	if !keepTime {
		return nil
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, n.mtime}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: path, Err: err}
	}
	return nil
}

// storedAs returns the entry of kids, other than name, that the directory
// open at fd (at path) holds where name was to be created: one stored under
// a name the directory does not tell apart from name. It returns nil when
// there is none, or when it cannot tell.
func (m *merger) storedAs(fd int, path, name string, kids []*entry) *entry {
	var st unix.Stat_t
	if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return nil
	}
	names, err := m.listDir(fd, path)
	if err != nil || slices.Contains(names, name) {
		return nil
	}
	for _, s := range names {
		i := slices.IndexFunc(kids, func(k *entry) bool { return k.name == s })
		var ost unix.Stat_t
		if i >= 0 && unix.Fstatat(fd, s, &ost, unix.AT_SYMLINK_NOFOLLOW) == nil && ost.Dev == st.Dev && ost.Ino == st.Ino {
			return kids[i]
		}
	}
	return nil
}

// from says where the merge takes e from, for messages.
func (m *merger) from(e *entry) string {
	if e.t == m.nd {
		return "the new default"
	}
	return "kept from the old /etc"
}
