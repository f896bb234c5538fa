package commit

import (
	"encoding/binary"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/xattr"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// modifier rewrites the metadata of committed entries as the options ask.
type modifier struct {
	canonical bool
	noXattrs  bool // --no-xattrs
	roExec    bool // --mode-ro-executables
	uid, gid  *uint32
	// identity: no option above is set, so no entry changes but those
	// named by a stat override.
	identity bool

	overrides []*override          // --statoverride, sorted by path, paths unique
	byPath    map[string]*override // the same, by path
	under     map[string]bool      // every directory holding an overridden path ("/" for the root)
}

// override is a stat override and whether the tree had its path.
type override struct {
	StatOverride
	seen atomic.Bool
}

func newModifier(o *Options, mode repo.Mode) *modifier {
	m := &modifier{canonical: o.CanonicalPermissions || mode == repo.ModeBareUserOnly,
		noXattrs: o.NoXattrs, roExec: o.ModeROExecutables, uid: o.OwnerUID, gid: o.OwnerGID}
	m.identity = !m.canonical && !m.noXattrs && !m.roExec && m.uid == nil && m.gid == nil
	if len(o.StatOverrides) > 0 {
		m.byPath, m.under = map[string]*override{}, map[string]bool{}
		for _, so := range o.StatOverrides {
			so.Path = path.Clean("/" + so.Path)
			m.byPath[so.Path] = &override{StatOverride: so} // a later line for a path wins
			for d := so.Path; d != "/"; {
				d = parentPath(d)
				m.under[d] = true
			}
		}
		for _, o := range m.byPath {
			m.overrides = append(m.overrides, o)
		}
		slices.SortFunc(m.overrides, func(a, b *override) int { return strings.Compare(a.Path, b.Path) })
	}
	return m
}

// overrideFor returns the stat override of the entry name in the
// directory at path dir ("" or "/" for the root; name "" for dir itself),
// or nil, and records that the tree has that path.
func (m *modifier) overrideFor(dir, name string) *override {
	if m.byPath == nil {
		return nil // no path to join and look up
	}
	o := m.peek(joinPath(dir, name))
	if o != nil {
		o.seen.Store(true)
	}
	return o
}

// peek returns the stat override of the tree path p, or nil, without
// recording that the tree has p.
func (m *modifier) peek(p string) *override {
	if m.byPath == nil {
		return nil
	}
	return m.byPath[p]
}

// matchImplied records as had each stat override applied to an implicit
// directory (dir.implied) that the tree root kept: where an earlier
// source had the directory, its metadata stayed and the override did not
// apply through this one.
func (m *modifier) matchImplied(root *dir) {
	for _, o := range m.overrides {
		if o.seen.Load() {
			continue
		}
		d := root
		if o.Path != "/" {
			for _, name := range strings.Split(o.Path[1:], "/") {
				i := d.findDir(name)
				if i < 0 {
					d = nil
					break
				}
				d = d.dirs[i]
			}
		}
		if d != nil && d.implied == o {
			o.seen.Store(true)
		}
	}
}

// joinPath makes the tree path of name in dir, both as the walk and the
// skip list write them ("" or "/" is the root).
func joinPath(dir, name string) string {
	dir = strings.TrimSuffix(dir, "/")
	if name == "" {
		if dir == "" {
			return "/"
		}
		return dir
	}
	return dir + "/" + name
}

// unmatched lists the overridden paths the tree did not have, but for
// those at or below a skipped path: leaving a path out is not missing it.
func (m *modifier) unmatched(skip *skipList) []string {
	var out []string
	for _, so := range m.overrides {
		if !so.seen.Load() && !skip.covers(so.Path) {
			out = append(out, so.Path)
		}
	}
	return out
}

// keepsXattrs reports whether committed entries carry their xattrs; when
// not, the walk does not read them.
func (m *modifier) keepsXattrs() bool { return !m.canonical && !m.noXattrs }

// fingerprint names the settings that change what a source file hashes to,
// so the stat cache is used only with the settings it was made with.
func (m *modifier) fingerprint(mode repo.Mode) [32]byte {
	// 32, always: caches written without it came from builds that could
	// record for a hardlink of an object the object it linked to (taken
	// unchecked by --devino-canonical, or kept with its write bits under
	// --mode-ro-executables in bare-user-only), and must not be reused.
	flags := byte(32)
	if m.canonical {
		// 8, not 1: flag 1 meant the earlier rule (0755 or 0644), and
		// records made with it must not be reused.
		flags |= 8
	}
	if m.noXattrs {
		flags |= 2
	}
	if m.roExec {
		flags |= 4
		if len(m.overrides) > 0 {
			// 16: the write bits go before the overrides; records
			// made when they went after must not be reused.
			flags |= 16
		}
	}
	b := []byte{byte(mode), flags}
	for _, v := range []*uint32{m.uid, m.gid} {
		if v == nil {
			b = append(b, 0)
		} else {
			b = binary.LittleEndian.AppendUint32(append(b, 1), *v)
		}
	}
	for _, so := range m.overrides {
		b = binary.AppendUvarint(b, uint64(len(so.Path)))
		b = append(b, so.Path...)
		set := byte(0)
		if so.Set {
			set = 1
		}
		b = binary.LittleEndian.AppendUint32(append(b, set), so.Mode)
	}
	return hash.Sum(b)
}

// CanonicalMode is what --canonical-permissions (and bare-user-only) keeps
// of the mode of a file (not a symlink, always 0777) or directory, as
// OSTree defines it: no setuid, setgid or sticky bit, and no write bit for
// group or others. Such entries are also owned 0:0, without xattrs.
func CanonicalMode(mode uint32) uint32 { return mode & 0o755 }

// file applies the options to a file's header; o, if not nil, is its
// stat override. As in OSTree, --mode-ro-executables looks at the mode
// before the override, which then stands (an "=MODE" line means that
// mode), and canonical permissions come after it (so still take setuid
// away). It fails when the new mode is at odds with the header's ACL.
func (m *modifier) file(h *repo.FileHeader, o *override) error {
	mode := h.Mode
	m.applyFile(h, o)
	return aclAfter(h.Xattrs, mode, h.Mode, h.Type)
}

// aclAfter checks the ACLs of an entry whose mode the options changed from
// mode to now: one read from disk agreed with the old mode, and a
// filesystem would not keep it with the new one as recorded.
func aclAfter(xattrs []repo.Xattr, mode, now uint32, t repo.FileType) error {
	if mode&0o777 == now&0o777 {
		return nil
	}
	if err := repo.CheckACLXattrs(xattrs, now, t); err != nil {
		return fmt.Errorf("the options change the mode from %04o to %04o, at odds with its ACL: %w", mode, now, err)
	}
	return nil
}

func (m *modifier) applyFile(h *repo.FileHeader, o *override) {
	if m.roExec && h.Type == repo.TypeRegular && h.Mode&0o111 != 0 {
		h.Mode &^= 0o222
	}
	if o != nil && h.Type != repo.TypeSymlink {
		h.Mode = o.apply(h.Mode)
	}
	if m.identity {
		return
	}
	if m.canonical {
		h.UID, h.GID, h.Xattrs = 0, 0, nil
		if h.Type == repo.TypeSymlink {
			h.Mode = 0o777
		} else {
			h.Mode = CanonicalMode(h.Mode)
		}
	}
	if m.noXattrs {
		h.Xattrs = nil
	}
	if m.uid != nil {
		h.UID = *m.uid
	}
	if m.gid != nil {
		h.GID = *m.gid
	}
}

// regularHeader returns the header recorded for the regular file open at
// fd, whose stat is st; o is its stat override, if any.
func (m *modifier) regularHeader(fd int, st *unix.Stat_t, o *override) (repo.FileHeader, error) {
	var x []repo.Xattr
	if m.keepsXattrs() {
		var err error
		if x, err = xattr.FList(fd, skipXattr); err != nil {
			return repo.FileHeader{}, err
		}
	}
	h := repo.FileHeader{Type: repo.TypeRegular, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Xattrs: x, Size: uint64(st.Size)}
	return h, m.file(&h, o)
}

// dir applies the options to a directory's metadata, after its stat
// override o, if any. It fails when the new mode is at odds with the
// directory's ACL.
func (m *modifier) dir(d *repo.DirMeta, o *override) error {
	mode := d.Mode
	m.applyDir(d, o)
	return aclAfter(d.Xattrs, mode, d.Mode, 0)
}

func (m *modifier) applyDir(d *repo.DirMeta, o *override) {
	if o != nil {
		d.Mode = o.apply(d.Mode)
	}
	if m.identity {
		return
	}
	if m.canonical {
		d.UID, d.GID, d.Xattrs, d.Mode = 0, 0, nil, CanonicalMode(d.Mode)
	}
	if m.noXattrs {
		d.Xattrs = nil
	}
	if m.uid != nil {
		d.UID = *m.uid
	}
	if m.gid != nil {
		d.GID = *m.gid
	}
}

// keepsObjects reports whether a file that is a hardlink of one of the
// repository's file objects commits as that very object: the object's
// on-disk metadata is its header and the modifier would not change it.
func (m *modifier) keepsObjects(mode repo.Mode) bool {
	switch mode {
	case repo.ModeBare, repo.ModeBareUser:
		return m.identity
	case repo.ModeBareUserOnly:
		// Objects are canonical already, but may be executables with
		// write bits.
		return m.uid == nil && m.gid == nil && !m.roExec
	}
	return false // archive objects are not the files themselves
}
