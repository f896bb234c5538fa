package checkout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/dirent"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/xattr"
	"github.com/otree/otree/repo"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// ChangeKind says how a path differs between the old and the new side of a
// diff. Its text form is the letter `otree diff` prints.
type ChangeKind byte

// The kinds of change, with the letters OSTree's `ostree diff` prints.
const (
	Added    ChangeKind = 'A' // only on the new side
	Modified ChangeKind = 'M' // on both sides, different
	Deleted  ChangeKind = 'D' // only on the old side
)

// String returns the letter: "A", "M" or "D".
func (k ChangeKind) String() string { return string(rune(k)) }

// MarshalText makes a ChangeKind its letter in JSON.
func (k ChangeKind) MarshalText() ([]byte, error) { return []byte{byte(k)}, nil }

// The names a Change lists in Fields.
const (
	FieldType    = "type"    // a different kind of entry (file, directory, symlink, ...)
	FieldContent = "content" // the bytes of a regular file
	FieldMode    = "mode"    // permission bits, setuid/setgid/sticky included
	FieldOwner   = "owner"   // uid or gid
	FieldXattrs  = "xattrs"  // extended attributes
	FieldTarget  = "target"  // a symlink's target
	FieldRdev    = "rdev"    // a device's number
)

// Change is one path that differs.
type Change struct {
	Kind ChangeKind `json:"kind"` // Added, Modified or Deleted
	// Path is the path inside the tree, starting with "/" ("/" itself for
	// the root directory's metadata).
	Path string `json:"path"`
	// Meta is set on a Modified change when only metadata differs (mode,
	// owner, xattrs, a symlink's target or a device's number), not the type
	// or a regular file's content.
	Meta bool `json:"meta,omitempty"`
	// Fields names what differs on a Modified change, from FieldType,
	// FieldContent, FieldMode, FieldOwner, FieldXattrs, FieldTarget and
	// FieldRdev, in that order. A type change lists only FieldType.
	Fields []string `json:"fields,omitempty"`
	// Old describes the path on the old side; nil for an Added change.
	Old *EntryInfo `json:"old,omitempty"`
	// New describes the path on the new side; nil for a Deleted change.
	New *EntryInfo `json:"new,omitempty"`
}

// IsDir reports whether the path is a directory on the side(s) where it
// exists (the new side for a type change).
func (c *Change) IsDir() bool {
	if c.New != nil {
		return c.New.Type == TypeDirectory
	}
	return c.Old != nil && c.Old.Type == TypeDirectory
}

// TypeDirectory is EntryInfo.Type for a directory; other entries use
// repo.FileType's names ("regular", "symlink", "chardev", "blockdev",
// "fifo"), and "socket" for a socket found on disk (which no commit holds).
const TypeDirectory = "directory"

// typeSocket is what a socket on disk is called; commits cannot hold one.
const typeSocket = "socket"

// EntryInfo describes one side of a Change.
type EntryInfo struct {
	Type   string       `json:"type"`             // TypeDirectory or a repo.FileType name
	Mode   uint32       `json:"mode"`             // permission bits (07777)
	UID    uint32       `json:"uid"`              // owner's user id
	GID    uint32       `json:"gid"`              // owner's group id
	Size   uint64       `json:"size"`             // content bytes of a regular file
	Rdev   uint64       `json:"rdev,omitempty"`   // device number (st_rdev) of a char or block device
	Target string       `json:"target,omitempty"` // a symlink's target
	Xattrs []repo.Xattr `json:"-"`                // sorted by name
	// ID is the file object, or for a directory of a commit its dirtree;
	// zero for disk entries that were not hashed.
	ID repo.ID `json:"id,omitzero"`
	// MetaID is the dirmeta of a directory of a commit.
	MetaID repo.ID `json:"meta,omitzero"`
}

// DiffOptions configure Diff, DiffDir and DiffDirs.
type DiffOptions struct {
	// Verify lists every path that differs. Without it a removed directory
	// is one Deleted change (as in `ostree diff`), its contents not listed;
	// with it each path below is listed too. The contents of an added
	// directory are always listed.
	Verify bool
	// OwnerUID and OwnerGID, when set, replace the owner of every entry
	// read from disk (DiffDir, DiffDirs), like commit's --owner-uid/--owner-gid:
	// compare a tree checked out by an unprivileged user with the commit
	// it came from by passing the commit's owner.
	OwnerUID, OwnerGID *uint32
	// IgnoreOwners leaves uid and gid out of the comparison.
	IgnoreOwners bool
	// IgnoreXattrs leaves extended attributes out of the comparison (DiffDir
	// and DiffDirs then read none from disk).
	IgnoreXattrs bool
	// CanonicalPermissions (DiffDir, DiffDirs) takes entries read from disk as
	// commit's --canonical-permissions records them: owned 0:0, no
	// xattrs, modes as commit.CanonicalMode gives (symlinks 0777). A
	// commit of a bare-user-only repository is always compared so, as
	// such a repository records every commit.
	CanonicalPermissions bool
	// Workers bounds how many files DiffDir and DiffDirs hash at once;
	// zero means twice GOMAXPROCS.
	Workers int
	// Subpath (DiffDir only; Diff and DiffDirs refuse it) compares the
	// directory with this directory of the commit ("/usr") instead of its
	// root; paths are reported as in the commit ("/usr/bin/sh").
	Subpath string
}

// DiffStats sums up a diff. Directories are counted apart from other
// entries; byte counts are content bytes of regular files.
type DiffStats struct {
	FilesAdded    int    `json:"files_added"`    // non-directory entries added
	FilesModified int    `json:"files_modified"` // changed entries that are not a directory on the new side
	FilesDeleted  int    `json:"files_deleted"`  // non-directory entries deleted
	DirsAdded     int    `json:"dirs_added"`     // directories added
	DirsModified  int    `json:"dirs_modified"`  // changed entries that are a directory on the new side
	DirsDeleted   int    `json:"dirs_deleted"`   // directories deleted
	BytesAdded    uint64 `json:"bytes_added"`    // sizes of added regular files
	BytesDeleted  uint64 `json:"bytes_deleted"`  // sizes of deleted regular files
	BytesOld      uint64 `json:"bytes_old"`      // sizes of modified regular files, before
	BytesNew      uint64 `json:"bytes_new"`      // sizes of modified regular files, after
}

// Summarize counts changes. A diff made without Verify lists a removed
// directory but not its contents, so pass one made with Verify to count
// every removed file.
func Summarize(changes []Change) DiffStats {
	var s DiffStats
	size := func(e *EntryInfo) uint64 {
		if e == nil || e.Type != repo.TypeRegular.String() {
			return 0
		}
		return e.Size
	}
	for i := range changes {
		c := &changes[i]
		dir := c.IsDir()
		switch c.Kind {
		case Added:
			if dir {
				s.DirsAdded++
			} else {
				s.FilesAdded++
			}
			s.BytesAdded += size(c.New)
		case Deleted:
			if dir {
				s.DirsDeleted++
			} else {
				s.FilesDeleted++
			}
			s.BytesDeleted += size(c.Old)
		case Modified:
			if dir {
				s.DirsModified++
			} else {
				s.FilesModified++
			}
			s.BytesOld += size(c.Old)
			s.BytesNew += size(c.New)
		}
	}
	return s
}

// Diff compares the trees of commits a (old) and b (new) and returns every
// path that differs, in tree order: a directory's entries sorted by name,
// each directory followed by the changes below it. Subtrees with the same
// dirtree and dirmeta ids are skipped without being read, so two close
// commits of a large tree diff in time proportional to what changed.
//
// A file whose id differs is reported with the fields that differ; when
// both metadata and size are equal that is its content, and when metadata
// differs the content is compared by re-hashing a's content under b's
// header (reading, and so verifying, a's object). A path that changed type
// is one Modified change with FieldType; the contents of a directory that
// appears are listed as Added (and of one that disappears, with Verify, as
// Deleted). OwnerUID and OwnerGID do not apply; a Subpath is refused.
func Diff(ctx context.Context, r *repo.Repo, a, b repo.ID, opts DiffOptions) ([]Change, error) {
	// Ignoring it would report changes outside the path asked about.
	// It applies to a side read from disk; both here are stored.
	opts.CanonicalPermissions = false
	if opts.Subpath != "" {
		return nil, fmt.Errorf("diff: a subpath (%s) applies to a commit compared with a directory, not to commits %s and %s", opts.Subpath, a, b)
	}
	ca, err := r.ReadCommit(a)
	if err != nil {
		return nil, fmt.Errorf("diff: commit %s: %w", a, err)
	}
	cb, err := r.ReadCommit(b)
	if err != nil {
		return nil, fmt.Errorf("diff: commit %s: %w", b, err)
	}
	d := &differ{ctx: ctx, r: r, opts: opts}
	if err := d.rootMeta(ca.RootMeta, cb.RootMeta, nil); err != nil {
		return nil, explainDiffMissing(r, a, b, err)
	}
	if ca.RootTree != cb.RootTree {
		if err := d.trees("/", ca.RootTree, cb.RootTree); err != nil {
			return nil, explainDiffMissing(r, a, b, nameCancel(ctx, err, fmt.Sprintf("diff of commits %s and %s", a, b)))
		}
	}
	return d.out, nil
}

// explainDiffMissing says which of commits a and b marked partial a
// missing object may belong to, so that the object reads as never
// pulled rather than lost. The walk does not track the side an object
// came from, so when both are partial it names both.
func explainDiffMissing(r *repo.Repo, a, b repo.ID, err error) error {
	var me *repo.ObjectMissingError
	if err == nil || !errors.As(err, &me) {
		return err
	}
	pa, pb := r.IsCommitPartial(a), r.IsCommitPartial(b)
	switch {
	case pa && pb && a != b:
		return fmt.Errorf("%w (commits %s and %s are marked partial; pulls of all of them complete them)", err, a, b)
	case pa:
		return r.ExplainMissing(a, err)
	case pb:
		return r.ExplainMissing(b, err)
	}
	return err
}

// differ holds the state of one diff.
type differ struct {
	ctx  context.Context
	r    *repo.Repo
	opts DiffOptions
	out  []Change
}

// treeItem is one entry of a dirtree, files and directories merged.
type treeItem struct {
	name   string
	dir    bool
	id     repo.ID // file object or dirtree
	metaID repo.ID
}

func treeItems(t *repo.DirTree) []treeItem {
	items := make([]treeItem, 0, len(t.Files)+len(t.Dirs))
	i, j := 0, 0
	for i < len(t.Files) || j < len(t.Dirs) {
		if j == len(t.Dirs) || i < len(t.Files) && t.Files[i].Name < t.Dirs[j].Name {
			items = append(items, treeItem{name: t.Files[i].Name, id: t.Files[i].ID})
			i++
		} else {
			items = append(items, treeItem{name: t.Dirs[j].Name, dir: true, id: t.Dirs[j].TreeID, metaID: t.Dirs[j].MetaID})
			j++
		}
	}
	return items
}

func diffJoin(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func (d *differ) readTree(p string, id repo.ID) ([]treeItem, error) {
	t, err := d.r.ReadDirTree(id)
	if err != nil {
		return nil, fmt.Errorf("diff: reading directory %s: %w", p, err)
	}
	return treeItems(t), nil
}

// rootMeta reports "/" when the root directories' metadata differ. disk,
// when not nil, is the new side read from disk.
func (d *differ) rootMeta(oldID, newID repo.ID, disk *EntryInfo) error {
	return d.dirMeta("/", oldID, newID, disk)
}

// dirMeta reports p when the metadata of its two sides differ.
func (d *differ) dirMeta(p string, oldID, newID repo.ID, disk *EntryInfo) error {
	if disk == nil && oldID == newID {
		return nil
	}
	old, err := d.dirInfo(p, repo.ID{}, oldID)
	if err != nil {
		return err
	}
	nw := disk
	if nw == nil {
		if nw, err = d.dirInfo(p, repo.ID{}, newID); err != nil {
			return err
		}
	}
	if f := d.metaFields(old, nw); len(f) > 0 {
		d.out = append(d.out, Change{Kind: Modified, Path: p, Meta: true, Fields: f, Old: old, New: nw})
	}
	return nil
}

// trees compares two dirtrees of commits at path p.
func (d *differ) trees(p string, a, b repo.ID) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	ia, err := d.readTree(p, a)
	if err != nil {
		return err
	}
	ib, err := d.readTree(p, b)
	if err != nil {
		return err
	}
	return mergeNames(ia, ib, treeItemName, treeItemName,
		func(a *treeItem) error { return d.removed(diffJoin(p, a.name), *a) },
		func(b *treeItem) error { return d.added(diffJoin(p, b.name), *b) },
		func(a, b *treeItem) error { return d.both(diffJoin(p, a.name), *a, *b) })
}

func treeItemName(it *treeItem) string { return it.name }

func diskItemName(it *diskItem) string { return it.name }

// mergeNames walks two lists sorted by name, calling onlyA or onlyB for a
// name on one side and both for a name on the two.
func mergeNames[A, B any](ia []A, ib []B, nameA func(*A) string, nameB func(*B) string, onlyA func(*A) error, onlyB func(*B) error, both func(*A, *B) error) error {
	i, j := 0, 0
	for i < len(ia) || j < len(ib) {
		var err error
		switch {
		case j == len(ib) || i < len(ia) && nameA(&ia[i]) < nameB(&ib[j]):
			err = onlyA(&ia[i])
			i++
		case i == len(ia) || nameB(&ib[j]) < nameA(&ia[i]):
			err = onlyB(&ib[j])
			j++
		default:
			err = both(&ia[i], &ib[j])
			i++
			j++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// both compares an entry present in both commits.
func (d *differ) both(p string, a, b treeItem) error {
	switch {
	case a.dir && b.dir:
		if a.metaID != b.metaID {
			old, err := d.dirInfo(p, a.id, a.metaID)
			if err != nil {
				return err
			}
			nw, err := d.dirInfo(p, b.id, b.metaID)
			if err != nil {
				return err
			}
			if f := d.metaFields(old, nw); len(f) > 0 {
				d.out = append(d.out, Change{Kind: Modified, Path: p, Meta: true, Fields: f, Old: old, New: nw})
			}
		}
		if a.id == b.id {
			return nil
		}
		return d.trees(p, a.id, b.id)
	case !a.dir && !b.dir:
		if a.id == b.id {
			return nil
		}
		return d.files(p, a.id, b.id)
	}
	// A type change between a directory and something else.
	old, err := d.itemInfo(p, a)
	if err != nil {
		return err
	}
	nw, err := d.itemInfo(p, b)
	if err != nil {
		return err
	}
	d.out = append(d.out, Change{Kind: Modified, Path: p, Fields: []string{FieldType}, Old: old, New: nw})
	if a.dir && d.opts.Verify {
		if err := d.subtree(p, a.id, Deleted); err != nil {
			return err
		}
	}
	if b.dir {
		return d.subtree(p, b.id, Added)
	}
	return nil
}

// files compares two different file objects.
func (d *differ) files(p string, a, b repo.ID) error {
	ha, err := d.r.StatFile(a)
	if err != nil {
		return fmt.Errorf("diff: %s: %w", p, err)
	}
	hb, err := d.r.StatFile(b)
	if err != nil {
		return fmt.Errorf("diff: %s: %w", p, err)
	}
	old, nw := fileInfo(ha, a), fileInfo(hb, b)
	c, err := d.compareFiles(p, old, nw, func() (bool, error) {
		// Hash a's content under b's header: equal to b iff the contents are.
		_, rc, err := d.r.OpenFile(a)
		if err != nil {
			return false, err
		}
		defer rc.Close()
		id, err := hashWithHeader(hb, rc, nil)
		return id == b, err
	})
	if err != nil || c == nil {
		return err
	}
	d.out = append(d.out, *c)
	return nil
}

// compareFiles builds the change between two non-directories, or nil when
// they are equal under the options. sameContent is called only when both
// are regular files of one size whose metadata differs.
func (d *differ) compareFiles(p string, old, nw *EntryInfo, sameContent func() (bool, error)) (*Change, error) {
	if old.Type != nw.Type {
		return &Change{Kind: Modified, Path: p, Fields: []string{FieldType}, Old: old, New: nw}, nil
	}
	meta := d.metaFields(old, nw)
	var fields []string
	if old.Type == repo.TypeRegular.String() {
		switch {
		case old.Size != nw.Size:
			fields = append(fields, FieldContent)
		case headersEqual(old, nw):
			// The callers compare only entries whose ids differ: with
			// equal headers, that is the content.
			fields = append(fields, FieldContent)
		default:
			same, err := sameContent()
			if err != nil {
				return nil, fmt.Errorf("diff: %s: %w", p, err)
			}
			if !same {
				fields = append(fields, FieldContent)
			}
		}
	}
	fields = append(fields, meta...)
	if len(fields) == 0 {
		return nil, nil
	}
	return &Change{Kind: Modified, Path: p, Meta: len(meta) == len(fields), Fields: fields, Old: old, New: nw}, nil
}

// metaFields lists the metadata fields that differ, honouring the ignore
// options.
func (d *differ) metaFields(a, b *EntryInfo) []string {
	if d.opts.CanonicalPermissions {
		// Both sides as a canonical commit records them: the commit's
		// side may be a pulled one that was not committed so, and a
		// checkout of a bare-user-only repository masks its directories.
		ca, cb := *a, *b
		canonicalize(&ca)
		canonicalize(&cb)
		a, b = &ca, &cb
	}
	var f []string
	if a.Mode != b.Mode {
		f = append(f, FieldMode)
	}
	if !d.opts.IgnoreOwners && (a.UID != b.UID || a.GID != b.GID) {
		f = append(f, FieldOwner)
	}
	if !d.opts.IgnoreXattrs && !xattrsEqual(a.Xattrs, b.Xattrs) {
		f = append(f, FieldXattrs)
	}
	if a.Target != b.Target {
		f = append(f, FieldTarget)
	}
	if a.Rdev != b.Rdev {
		f = append(f, FieldRdev)
	}
	return f
}

// canonicalize makes e as CanonicalPermissions takes it: owned 0:0, no
// xattrs, a mode as commit.CanonicalMode gives but for symlinks'.
func canonicalize(e *EntryInfo) {
	e.UID, e.GID, e.Xattrs = 0, 0, nil
	if e.Type != repo.TypeSymlink.String() && e.Type != typeSocket {
		e.Mode = commit.CanonicalMode(e.Mode)
	}
}

// headersEqual reports whether every header field of a and b is equal,
// ignored ones included.
func headersEqual(a, b *EntryInfo) bool {
	return a.Type == b.Type && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID && a.Size == b.Size &&
		a.Rdev == b.Rdev && a.Target == b.Target && xattrsEqual(a.Xattrs, b.Xattrs)
}

func xattrsEqual(a, b []repo.Xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func fileInfo(h *repo.FileHeader, id repo.ID) *EntryInfo {
	return &EntryInfo{Type: h.Type.String(), Mode: h.Mode, UID: h.UID, GID: h.GID, Size: h.Size,
		Rdev: h.Rdev, Target: h.Target, Xattrs: h.Xattrs, ID: id}
}

func (d *differ) dirInfo(p string, tree, meta repo.ID) (*EntryInfo, error) {
	m, err := d.r.ReadDirMeta(meta)
	if err != nil {
		return nil, fmt.Errorf("diff: directory %s: %w", p, err)
	}
	return &EntryInfo{Type: TypeDirectory, Mode: m.Mode, UID: m.UID, GID: m.GID, Xattrs: m.Xattrs, ID: tree, MetaID: meta}, nil
}

func (d *differ) itemInfo(p string, it treeItem) (*EntryInfo, error) {
	if it.dir {
		return d.dirInfo(p, it.id, it.metaID)
	}
	h, err := d.r.StatFile(it.id)
	if err != nil {
		return nil, fmt.Errorf("diff: %s: %w", p, err)
	}
	return fileInfo(h, it.id), nil
}

// removed reports an entry of the old commit that the new side lacks.
func (d *differ) removed(p string, it treeItem) error {
	info, err := d.itemInfo(p, it)
	if err != nil {
		return err
	}
	d.out = append(d.out, Change{Kind: Deleted, Path: p, Old: info})
	if it.dir && d.opts.Verify {
		return d.subtree(p, it.id, Deleted)
	}
	return nil
}

// added reports an entry of the new commit that the old one lacks.
func (d *differ) added(p string, it treeItem) error {
	info, err := d.itemInfo(p, it)
	if err != nil {
		return err
	}
	d.out = append(d.out, Change{Kind: Added, Path: p, New: info})
	if it.dir {
		return d.subtree(p, it.id, Added)
	}
	return nil
}

// subtree reports everything below a commit's directory as kind.
func (d *differ) subtree(p string, tree repo.ID, kind ChangeKind) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	items, err := d.readTree(p, tree)
	if err != nil {
		return err
	}
	for _, it := range items {
		cp := diffJoin(p, it.name)
		info, err := d.itemInfo(cp, it)
		if err != nil {
			return err
		}
		c := Change{Kind: kind, Path: cp}
		if kind == Added {
			c.New = info
		} else {
			c.Old = info
		}
		d.out = append(d.out, c)
		if it.dir {
			if err := d.subtree(cp, it.id, kind); err != nil {
				return err
			}
		}
	}
	return nil
}

// hashWithHeader returns the id of a file object with header h and the
// content rd yields, which must be exactly h.Size bytes.
func hashWithHeader(h *repo.FileHeader, rd io.Reader, buf []byte) (repo.ID, error) {
	hs := hash.New()
	hs.Write(repo.AppendFileHeader(nil, h))
	if buf == nil {
		buf = make([]byte, 256<<10)
	}
	n, err := io.CopyBuffer(hs, io.LimitReader(rd, int64(h.Size)+1), buf)
	if err != nil {
		return repo.ID{}, err
	}
	if uint64(n) != h.Size {
		return repo.ID{}, fmt.Errorf("content is %d bytes, header says %d", n, h.Size)
	}
	return repo.ID(hs.Sum()), nil
}

// --- a commit against a directory on disk ----------------------------------

// DiffDir compares the tree of commit (old) with the directory dir on disk
// (new), and returns every path that differs in the order Diff uses. The
// directory is hashed the way `otree commit` would hash it (lstat, xattrs
// but user.otreemeta, symlinks mode 0777, CanonicalPermissions, which a
// bare-user-only repository implies, and OwnerUID/OwnerGID applied), on a
// bounded pool of workers; nothing is written to the repository. Like
// commit, it reads each entry relative to its open directory, so a tree
// deeper than PATH_MAX compares as any other. An entry that cannot be
// committed, such as a socket, is reported with type "socket". Files that
// change while being read give an error naming them.
func DiffDir(ctx context.Context, r *repo.Repo, commit repo.ID, dir string, opts DiffOptions) ([]Change, error) {
	changes, err := diffDir(ctx, r, commit, dir, opts)
	return changes, r.ExplainMissing(commit, nameCancel(ctx, err, fmt.Sprintf("diff of commit %s with %s", commit, dir)))
}

// nameCancel names what was being compared in err when it is ctx's own
// error, which names nothing.
func nameCancel(ctx context.Context, err error, what string) error {
	if err != nil && err == ctx.Err() {
		return fmt.Errorf("%s: %w", what, err)
	}
	return err
}

func diffDir(ctx context.Context, r *repo.Repo, commit repo.ID, dir string, opts DiffOptions) ([]Change, error) {
	c, err := r.ReadCommit(commit)
	if err != nil {
		return nil, fmt.Errorf("diff: commit %s: %w", commit, err)
	}
	top, tree, meta := "/", c.RootTree, c.RootMeta
	if opts.Subpath != "" {
		e, err := r.Lookup(commit, opts.Subpath)
		if err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
		if !e.IsDir() {
			return nil, fmt.Errorf("diff: %s in commit %s is not a directory", e.Path, commit)
		}
		top, tree, meta = e.Path, e.ID, e.MetaID
	}
	n := opts.Workers
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	// The walk queues regular files for a pool of hashers while it goes
	// on; only the changes they find are kept.
	g, gctx := errgroup.WithContext(ctx)
	if r.Mode() == repo.ModeBareUserOnly {
		opts.CanonicalPermissions = true
	}
	dd := newDiskDiffer(differ{ctx: gctx, r: r, opts: opts})
	dd.jobs = make(chan diskJob, 256)
	root, st, err := dd.openRoot(dir)
	if err != nil {
		return nil, err
	}
	for range n {
		g.Go(dd.hasher)
	}
	g.Go(func() error {
		defer close(dd.jobs)
		defer dd.release(root)
		rootInfo, err := dd.diskInfo(root, ".", &st)
		if err != nil {
			return err
		}
		if err := dd.dirMeta(top, meta, repo.ID{}, rootInfo); err != nil {
			return err
		}
		return dd.dirs(top, root, tree)
	})
	err = g.Wait()
	dd.closeAll()
	if err != nil {
		return nil, err
	}
	return dd.collect(), nil
}

// diskDiffer is a differ whose new side is a directory. Regular files to
// compare are queued as jobs, each leaving a placeholder (Kind zero) in out
// to keep the tree order; hashers record the changes they find in found
// under the placeholder's index.
type diskDiffer struct {
	differ
	jobs  chan diskJob
	mu    sync.Mutex
	found map[int]*Change
	dents []byte // the walk's getdents buffer

	// Directories open and not yet closed: a failed walk drops the jobs
	// it queued, and closes what they would have released.
	fdMu sync.Mutex
	fds  map[int]struct{}
}

func newDiskDiffer(d differ) *diskDiffer {
	return &diskDiffer{differ: d, found: map[int]*Change{}, dents: make([]byte, 32<<10), fds: map[int]struct{}{}}
}

// diskDir is a directory open on a disk side of a diff. Its entries are
// read relative to it, as commit reads a tree, so that no path longer than
// a name reaches the kernel. The jobs hashing its files share it; the last
// to release it closes it.
type diskDir struct {
	fd   int
	path string // names it in errors only
	refs atomic.Int32
}

// openRoot opens the directory dir a diff compares (a symlink there is
// the caller's and followed) and returns it with its stat.
func (dd *diskDiffer) openRoot(dir string) (*diskDir, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return nil, st, fmt.Errorf("diff: %w", &os.PathError{Op: "stat", Path: dir, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, st, fmt.Errorf("diff: %s is not a directory", dir)
	}
	d, err := dd.track(unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0))
	if err != nil {
		return nil, st, fmt.Errorf("diff: %w", &os.PathError{Op: "open", Path: dir, Err: err})
	}
	d.path = dir
	if err := unix.Fstat(d.fd, &st); err != nil {
		dd.release(d)
		return nil, st, fmt.Errorf("diff: %w", &os.PathError{Op: "stat", Path: dir, Err: err})
	}
	return d, st, nil
}

// openDir opens the directory name of parent, without following a symlink.
func (dd *diskDiffer) openDir(parent *diskDir, name string) (*diskDir, error) {
	path := parent.path + "/" + name
	d, err := dd.track(unix.Openat(parent.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0))
	if err != nil {
		return nil, fmt.Errorf("diff: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	d.path = path
	return d, nil
}

// track records a directory descriptor just opened, held once.
func (dd *diskDiffer) track(fd int, err error) (*diskDir, error) {
	if err != nil {
		return nil, err
	}
	dd.fdMu.Lock()
	dd.fds[fd] = struct{}{}
	dd.fdMu.Unlock()
	d := &diskDir{fd: fd}
	d.refs.Store(1)
	return d, nil
}

// hold takes one more reference to d, for a job that reads from it.
func (d *diskDir) hold() *diskDir {
	d.refs.Add(1)
	return d
}

// release drops one reference to d, closing it with the last.
func (dd *diskDiffer) release(d *diskDir) {
	if d.refs.Add(-1) != 0 {
		return
	}
	dd.fdMu.Lock()
	delete(dd.fds, d.fd)
	dd.fdMu.Unlock()
	unix.Close(d.fd)
}

// closeAll closes the directories still open once the walk and the
// hashers have stopped: those of the jobs a failed diff left queued.
func (dd *diskDiffer) closeAll() {
	dd.fdMu.Lock()
	defer dd.fdMu.Unlock()
	for fd := range dd.fds {
		unix.Close(fd)
	}
	clear(dd.fds)
}

type diskJob struct {
	slot  int      // index in out
	rel   string   // the path in the tree
	dir   *diskDir // the directory holding the file, held for the job
	name  string   // its name there
	st    unix.Stat_t
	oldID repo.ID
}

// path names the job's file in errors.
func (j *diskJob) path() string { return j.dir.path + "/" + j.name }

// diskItem is one entry of a directory on disk.
type diskItem struct {
	name string
	st   unix.Stat_t
}

func (it *diskItem) isDir() bool { return it.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// readDisk lists the directory d, sorted, with each entry's lstat.
func (dd *diskDiffer) readDisk(d *diskDir) ([]diskItem, error) {
	names, err := dirent.Names(d.fd, dd.dents, d.path)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	sort.Strings(names)
	items := make([]diskItem, len(names))
	for i, n := range names {
		items[i].name = n
		if err := unix.Fstatat(d.fd, n, &items[i].st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, fmt.Errorf("diff: %w", &os.PathError{Op: "lstat", Path: d.path + "/" + n, Err: err})
		}
	}
	return items, nil
}

// dirs compares the commit's dirtree tree with the directory d.
func (dd *diskDiffer) dirs(p string, d *diskDir, tree repo.ID) error {
	if err := dd.ctx.Err(); err != nil {
		return err
	}
	ia, err := dd.readTree(p, tree)
	if err != nil {
		return err
	}
	ib, err := dd.readDisk(d)
	if err != nil {
		return err
	}
	return mergeNames(ia, ib, treeItemName, diskItemName,
		func(a *treeItem) error { return dd.removed(diffJoin(p, a.name), *a) },
		func(b *diskItem) error { return dd.diskTree(Added, diffJoin(p, b.name), d, b) },
		func(a *treeItem, b *diskItem) error { return dd.bothDisk(diffJoin(p, a.name), d, *a, b) })
}

// diskInfo describes the entry name of the directory d (d itself for
// "."), whose lstat is st, as commit would record it, without reading a
// regular file's content.
func (dd *diskDiffer) diskInfo(d *diskDir, name string, st *unix.Stat_t) (*EntryInfo, error) {
	e := &EntryInfo{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = TypeDirectory
		if !dd.opts.IgnoreXattrs && !dd.opts.CanonicalPermissions {
			x, err := xattr.ListAt(d.fd, d.path, name, commit.SkipXattr)
			if err != nil {
				return nil, fmt.Errorf("diff: %w", err)
			}
			e.Xattrs = x
		}
	case unix.S_IFSOCK:
		e.Type = typeSocket
	default:
		h, err := commit.DiskHeaderAt(d.fd, d.path, name, st, dd.opts.IgnoreXattrs || dd.opts.CanonicalPermissions)
		if err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
		e.Type, e.Mode, e.Size, e.Target, e.Rdev, e.Xattrs = h.Type.String(), h.Mode, h.Size, h.Target, h.Rdev, h.Xattrs
	}
	if dd.opts.CanonicalPermissions {
		canonicalize(e)
	}
	if dd.opts.OwnerUID != nil {
		e.UID = *dd.opts.OwnerUID
	}
	if dd.opts.OwnerGID != nil {
		e.GID = *dd.opts.OwnerGID
	}
	return e, nil
}

// diskHeader returns the file header of a non-directory disk entry; false
// for a type no file object has (a socket).
func diskHeader(e *EntryInfo) (*repo.FileHeader, bool) {
	h := &repo.FileHeader{Mode: e.Mode, UID: e.UID, GID: e.GID, Rdev: e.Rdev, Target: e.Target, Xattrs: e.Xattrs, Size: e.Size}
	for t := repo.TypeRegular; t <= repo.TypeFIFO; t++ {
		if t.String() == e.Type {
			h.Type = t
			return h, true
		}
	}
	return nil, false
}

// diskTree reports the entry it of the directory d, on one side only, and
// what a directory holds: always when added, with Verify when deleted (as
// Diff does).
func (dd *diskDiffer) diskTree(kind ChangeKind, p string, d *diskDir, it *diskItem) error {
	info, err := dd.diskInfo(d, it.name, &it.st)
	if err != nil {
		return err
	}
	c := Change{Kind: kind, Path: p, New: info}
	if kind == Deleted {
		c.Old, c.New = info, nil
	}
	dd.out = append(dd.out, c)
	if it.isDir() {
		return dd.contents(kind, p, d, it.name)
	}
	return nil
}

// contents reports what the directory name of parent holds as kind;
// nothing for a deleted one without Verify.
func (dd *diskDiffer) contents(kind ChangeKind, p string, parent *diskDir, name string) error {
	if kind == Deleted && !dd.opts.Verify {
		return nil
	}
	if err := dd.ctx.Err(); err != nil {
		return err
	}
	d, err := dd.openDir(parent, name)
	if err != nil {
		return err
	}
	defer dd.release(d)
	items, err := dd.readDisk(d)
	if err != nil {
		return err
	}
	for i := range items {
		if err := dd.diskTree(kind, diffJoin(p, items[i].name), d, &items[i]); err != nil {
			return err
		}
	}
	return nil
}

// bothDisk compares an entry of the commit with the same path on disk, the
// entry b of the directory d.
func (dd *diskDiffer) bothDisk(p string, d *diskDir, a treeItem, b *diskItem) error {
	if !a.dir && b.st.Mode&unix.S_IFMT == unix.S_IFREG {
		// Read (xattrs) and hashed by the pool; the placeholder keeps
		// the tree order.
		return enqueue(dd, dd.jobs, diskJob{slot: len(dd.out), rel: p, dir: d.hold(), name: b.name, st: b.st, oldID: a.id})
	}
	nw, err := dd.diskInfo(d, b.name, &b.st)
	if err != nil {
		return err
	}
	switch {
	case a.dir && b.isDir():
		old, err := dd.dirInfo(p, a.id, a.metaID)
		if err != nil {
			return err
		}
		if f := dd.metaFields(old, nw); len(f) > 0 {
			dd.out = append(dd.out, Change{Kind: Modified, Path: p, Meta: true, Fields: f, Old: old, New: nw})
		}
		sub, err := dd.openDir(d, b.name)
		if err != nil {
			return err
		}
		defer dd.release(sub)
		return dd.dirs(p, sub, a.id)
	case !a.dir && !b.isDir():
		h, err := dd.r.StatFile(a.id)
		if err != nil {
			return fmt.Errorf("diff: %s: %w", p, err)
		}
		old := fileInfo(h, a.id)
		dd.normalize(old, nw)
		if hn, ok := diskHeader(nw); ok {
			nw.ID = repo.FileID(hn, nil)
			if nw.ID == a.id {
				return nil
			}
		}
		c, err := dd.compareFiles(p, old, nw, func() (bool, error) { return true, nil })
		if err != nil || c == nil {
			return err
		}
		dd.out = append(dd.out, *c)
		return nil
	}
	old, err := dd.itemInfo(p, a)
	if err != nil {
		return err
	}
	dd.out = append(dd.out, Change{Kind: Modified, Path: p, Fields: []string{FieldType}, Old: old, New: nw})
	if a.dir && dd.opts.Verify {
		if err := dd.subtree(p, a.id, Deleted); err != nil {
			return err
		}
	}
	if b.isDir() {
		return dd.contents(Added, p, d, b.name)
	}
	return nil
}

// normalize copies the ignored fields of the commit's side onto the disk's,
// so that hashing the disk entry gives the commit's id when nothing else
// differs.
func (dd *diskDiffer) normalize(old, nw *EntryInfo) {
	if dd.opts.IgnoreOwners {
		nw.UID, nw.GID = old.UID, old.GID
	}
	if dd.opts.IgnoreXattrs {
		nw.Xattrs = old.Xattrs
	}
}

// hasher compares queued regular files until the queue closes.
func (dd *diskDiffer) hasher() error {
	return hashJobs(dd, dd.jobs, func(j *diskJob, buf []byte) (int, *Change, error) {
		defer dd.release(j.dir)
		c, err := dd.compareDiskFile(j, buf)
		return j.slot, c, err
	})
}

// enqueue queues j for the hashers and leaves a placeholder (Kind zero)
// in out at j's slot, len(dd.out), to keep the tree order.
func enqueue[J any](dd *diskDiffer, jobs chan<- J, j J) error {
	dd.out = append(dd.out, Change{})
	select {
	case jobs <- j:
		return nil
	case <-dd.ctx.Done():
		return dd.ctx.Err()
	}
}

// hashJobs runs compare on each job until the queue closes, recording
// the changes found under their placeholders' slots.
func hashJobs[J any](dd *diskDiffer, jobs <-chan J, compare func(*J, []byte) (int, *Change, error)) error {
	buf := make([]byte, 256<<10)
	for j := range jobs {
		if err := dd.ctx.Err(); err != nil {
			return err
		}
		slot, c, err := compare(&j, buf)
		if err != nil {
			return err
		}
		if c != nil {
			dd.mu.Lock()
			dd.found[slot] = c
			dd.mu.Unlock()
		}
	}
	return nil
}

// compareDiskFile compares a regular file on disk with a file object.
func (dd *diskDiffer) compareDiskFile(j *diskJob, buf []byte) (*Change, error) {
	p := j.rel
	nw, err := dd.diskInfo(j.dir, j.name, &j.st)
	if err != nil {
		return nil, err
	}
	var old *EntryInfo
	statOld := func() error {
		if old != nil {
			return nil
		}
		h, err := dd.r.StatFile(j.oldID)
		if err != nil {
			return fmt.Errorf("diff: %s: %w", p, err)
		}
		old = fileInfo(h, j.oldID)
		return nil
	}
	if dd.opts.IgnoreOwners || dd.opts.IgnoreXattrs {
		if err := statOld(); err != nil {
			return nil, err
		}
		dd.normalize(old, nw)
	}
	hn, _ := diskHeader(nw)
	if old == nil || old.Size == nw.Size {
		id, err := hashDiskFile(j, hn, buf)
		if err != nil {
			return nil, err
		}
		nw.ID = id
		if id == j.oldID {
			return nil, nil
		}
	}
	if err := statOld(); err != nil {
		return nil, err
	}
	return dd.compareFiles(p, old, nw, func() (bool, error) {
		// Metadata differs: hash the disk content under the commit's header.
		ho, _ := diskHeader(old)
		id, err := hashDiskFile(j, ho, buf)
		return id == j.oldID, err
	})
}

// hashDiskFile returns the id of the job's file as a file object with
// header h.
func hashDiskFile(j *diskJob, h *repo.FileHeader, buf []byte) (repo.ID, error) {
	path := j.path()
	fd, err := unix.Openat(j.dir.fd, j.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return repo.ID{}, fmt.Errorf("diff: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return repo.ID{}, fmt.Errorf("diff: %w", &os.PathError{Op: "stat", Path: path, Err: err})
	}
	if now.Ino != j.st.Ino || now.Dev != j.st.Dev {
		return repo.ID{}, fmt.Errorf("diff: %s changed while being compared", path)
	}
	id, err := hashWithHeader(h, f, buf)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return repo.ID{}, fmt.Errorf("diff: %w", err)
		}
		return repo.ID{}, fmt.Errorf("diff: %s changed while being compared: %v", path, err)
	}
	return id, nil
}
