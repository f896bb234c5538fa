package commit

import (
	"encoding/binary"

	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/repo"
)

// modifier rewrites the metadata of committed entries as the options ask.
type modifier struct {
	canonical bool
	noXattrs  bool // --no-xattrs
	roExec    bool // --mode-ro-executables
	uid, gid  *uint32
	identity  bool // changes nothing: caches keyed on source stat stay valid
}

func newModifier(o *Options, mode repo.Mode) *modifier {
	m := &modifier{canonical: o.CanonicalPermissions || mode == repo.ModeBareUserOnly,
		noXattrs: o.NoXattrs, roExec: o.ModeROExecutables, uid: o.OwnerUID, gid: o.OwnerGID}
	m.identity = !m.canonical && !m.noXattrs && !m.roExec && m.uid == nil && m.gid == nil
	return m
}

// keepsXattrs reports whether committed entries carry their xattrs; when
// not, the walk does not read them.
func (m *modifier) keepsXattrs() bool { return !m.canonical && !m.noXattrs }

// fingerprint names the settings that change what a source file hashes to,
// so the stat cache is used only with the settings it was made with.
func (m *modifier) fingerprint(mode repo.Mode) [32]byte {
	var flags byte
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
	}
	b := []byte{byte(mode), flags}
	for _, v := range []*uint32{m.uid, m.gid} {
		if v == nil {
			b = append(b, 0)
		} else {
			b = binary.LittleEndian.AppendUint32(append(b, 1), *v)
		}
	}
	return hash.Sum(b)
}

// canonicalMode is what --canonical-permissions (and bare-user-only) keeps
// of a file's or directory's mode, as OSTree defines it: no setuid, setgid
// or sticky bit, and no write bit for group or others.
func canonicalMode(mode uint32) uint32 { return mode & 0o755 }

func (m *modifier) file(h *repo.FileHeader) {
	if m.identity {
		return
	}
	if m.canonical {
		h.UID, h.GID, h.Xattrs = 0, 0, nil
		if h.Type == repo.TypeSymlink {
			h.Mode = 0o777
		} else {
			h.Mode = canonicalMode(h.Mode)
		}
	}
	if m.noXattrs {
		h.Xattrs = nil
	}
	if m.roExec && h.Type == repo.TypeRegular && h.Mode&0o111 != 0 {
		h.Mode &^= 0o222
	}
	if m.uid != nil {
		h.UID = *m.uid
	}
	if m.gid != nil {
		h.GID = *m.gid
	}
}

func (m *modifier) dir(d *repo.DirMeta) {
	if m.identity {
		return
	}
	if m.canonical {
		d.UID, d.GID, d.Xattrs, d.Mode = 0, 0, nil, canonicalMode(d.Mode)
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
		return m.uid == nil && m.gid == nil // objects are canonical already
	}
	return false // archive objects are not the files themselves
}
