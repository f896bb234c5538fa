package checkout

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/otree/otree/internal/ctxread"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// paxXattr prefixes the PAX records that carry extended attributes, as GNU
// tar and libarchive write them (and `otree commit --tree=tar=` reads them).
const paxXattr = "SCHILY.xattr."

// paxXattrName encodes an xattr name for a PAX record key as GNU tar does
// (and decodes on extraction): "%" as "%25" and "=", which would end the
// key, as "%3D".
var paxXattrName = strings.NewReplacer("%", "%25", "=", "%3D")

// paxACLRecords are the PAX records in which GNU tar and libarchive keep a
// POSIX ACL as text, by the xattr that holds it: both read only these when
// they extract with --acls, ignoring the xattr's own record.
var paxACLRecords = map[string]string{
	"system.posix_acl_access":  "SCHILY.acl.access",
	"system.posix_acl_default": "SCHILY.acl.default",
}

// aclText gives a POSIX ACL xattr value in the text form GNU tar writes,
// one entry a line, with numbers for users and groups (which tar takes
// as such, and names might not be on another host); ok is false for a
// value that is not one.
func aclText(v []byte) (string, bool) {
	if len(v) < 4 || (len(v)-4)%8 != 0 || binary.LittleEndian.Uint32(v) != 2 {
		return "", false
	}
	var b strings.Builder
	for i := 4; i < len(v); i += 8 {
		tag, perm, id := binary.LittleEndian.Uint16(v[i:]), binary.LittleEndian.Uint16(v[i+2:]), binary.LittleEndian.Uint32(v[i+4:])
		var word, qual string
		switch tag {
		case 0x01:
			word = "user"
		case 0x02:
			word, qual = "user", strconv.FormatUint(uint64(id), 10)
		case 0x04:
			word = "group"
		case 0x08:
			word, qual = "group", strconv.FormatUint(uint64(id), 10)
		case 0x10:
			word = "mask"
		case 0x20:
			word = "other"
		default:
			return "", false
		}
		if perm&^7 != 0 {
			return "", false
		}
		rwx := []byte("---")
		for k, c := range "rwx" {
			if perm&(4>>k) != 0 {
				rwx[k] = byte(c)
			}
		}
		fmt.Fprintf(&b, "%s:%s:%s\n", word, qual, rwx)
	}
	return b.String(), b.Len() > 0
}

// exportEpoch is the modification time of every exported entry: the tar of
// a tree depends on nothing but the tree.
var exportEpoch = time.Unix(0, 0)

// ExportOptions configure Export.
type ExportOptions struct {
	// Subpath exports only this path of the commit ("/usr/share"). A
	// directory becomes the root of the tar; a file is written alone under
	// its base name.
	Subpath string
	// Hardlinks writes a regular file whose object was already written at
	// an earlier path of the tar as a hard link to that path, which makes
	// the tar smaller when a tree holds the same file many times. It is off
	// by default: every path is then a complete regular file, which
	// survives extracting single members, --exclude and skip lists. Both
	// forms import to the same tree (a hard link imports as its target's
	// object).
	Hardlinks bool
	// Prefix places the tree under this directory in the tar: with
	// "usr/lib/app" the root is "usr/lib/app/" and a file "usr/lib/app/f"
	// (directories above it get no entries of their own). A leading "/" is
	// dropped, since tar names are relative; ".." components are refused.
	Prefix string
	// NoXattrs leaves extended attributes out of the tar.
	NoXattrs bool
}

// exportPrefix returns Prefix cleaned, without slashes at either end ("" for
// none).
func (o *ExportOptions) exportPrefix() (string, error) {
	if o.Prefix == "" {
		return "", nil
	}
	p := path.Clean(strings.TrimLeft(o.Prefix, "/"))
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", fmt.Errorf("export: prefix %q climbs out of the tar with \"..\"", o.Prefix)
		}
	}
	if p == "." {
		return "", nil
	}
	return p, nil
}

// Export writes the tree of commit to w as a tar in PAX format.
//
// The tar starts with the root directory "./", then every path below it in
// tree order (a directory's entries sorted by name, each directory followed
// by its contents), named relative to the root without a "./" prefix,
// directories with a trailing "/" (the shape `ostree export` writes).
// Each entry carries the tree's owner (numeric uid/gid, no user or group
// names), permission bits including setuid, setgid and sticky, and
// extended attributes as SCHILY.xattr.* records (names encoded as GNU tar
// encodes them, "%" as "%25" and "=" as "%3D"), a POSIX ACL also as text
// in a SCHILY.acl.access or SCHILY.acl.default record with numeric users
// and groups (which GNU tar and bsdtar read with --acls); directories, regular
// files, symlinks, character and block devices (with their major and minor
// numbers) and FIFOs are written as such. Every entry has modification time
// 0 (OSTree writes the commit's timestamp), so one tree always gives the
// same bytes, and `otree commit --tree=tar=` of the output gives back the
// same root dirtree and dirmeta ids (with the same owner and permission
// options). Content is verified against its object id as it is written; on
// an error the bytes already written must be discarded. Unless w is a
// regular *os.File or a *bytes.Buffer, each Write to w runs on a goroutine
// of its own, so that a cancelled ctx ends Export even while a Write waits
// (on a pipe nobody reads, say): that Write is then left to end on its
// own, with a copy of its bytes.
func Export(ctx context.Context, r *repo.Repo, commit repo.ID, w io.Writer, opts ExportOptions) error {
	return r.ExplainMissing(commit, export(ctx, r, commit, w, opts))
}

func export(ctx context.Context, r *repo.Repo, commit repo.ID, w io.Writer, opts ExportOptions) error {
	prefix, err := opts.exportPrefix()
	if err != nil {
		return err
	}
	p := opts.Subpath
	if p == "" {
		p = "/"
	}
	ent, err := r.Lookup(commit, p)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if ctxread.MayWait(w) {
		w = ctxread.BlockingWriter(ctx, w) // a pipe whose reader stopped must not outlast ctx
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	x := &exporter{ctx: ctx, r: r, tw: tar.NewWriter(bw), commit: commit, base: ent.Path, prefix: "./",
		noXattrs: opts.NoXattrs, buf: make([]byte, 256<<10)}
	if prefix != "" {
		x.prefix = prefix + "/"
	}
	if opts.Hardlinks {
		x.links = map[repo.ID]string{}
	}
	if ent.IsDir() {
		err = x.dir(x.prefix, ent)
	} else {
		err = x.file(strings.TrimPrefix(x.prefix, "./")+path.Base(ent.Path), ent)
	}
	if err != nil {
		return nameCancel(ctx, err, "export "+commit.String())
	}
	if err := x.tw.Close(); err != nil {
		return fmt.Errorf("export %s: %w", commit, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export %s: %w", commit, err)
	}
	return nil
}

type exporter struct {
	ctx    context.Context
	r      *repo.Repo
	tw     *tar.Writer
	commit repo.ID
	base   string             // the exported path of the commit
	prefix string             // the name of the root: "./" or "PREFIX/"
	links  map[repo.ID]string // tar name of each regular file object written, with Hardlinks
	buf    []byte

	noXattrs bool
}

// header returns a tar header with the fields every entry shares.
func (x *exporter) header(name string, mode, uid, gid uint32, xattrs []repo.Xattr) *tar.Header {
	h := &tar.Header{Name: name, Mode: int64(mode), Uid: int(uid), Gid: int(gid), ModTime: exportEpoch, Format: tar.FormatPAX}
	if len(xattrs) > 0 && !x.noXattrs {
		h.PAXRecords = make(map[string]string, len(xattrs))
		for _, a := range xattrs {
			h.PAXRecords[paxXattr+paxXattrName.Replace(a.Name)] = string(a.Value)
			if rec, ok := paxACLRecords[a.Name]; ok {
				if text, ok := aclText(a.Value); ok {
					h.PAXRecords[rec] = text
				}
			}
		}
	}
	return h
}

// treePath is the path in the commit of a tar name.
func (x *exporter) treePath(name string) string {
	return repo.CleanPath(x.base + "/" + strings.TrimPrefix(strings.TrimPrefix(name, "./"), x.prefix))
}

func (x *exporter) writeHeader(h *tar.Header) error {
	if err := x.tw.WriteHeader(h); err != nil {
		if errors.Is(err, tar.ErrFieldTooLong) {
			err = fmt.Errorf("its name of %d bytes, link target and xattrs need a tar extended header over 1 MiB, which archive/tar neither writes nor reads back: %w", len(h.Name), err)
		}
		return fmt.Errorf("export: %s in commit %s: %w", x.treePath(h.Name), x.commit, err)
	}
	return nil
}

// dir writes a directory entry named name and everything below it.
func (x *exporter) dir(name string, ent repo.Entry) error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	m, err := x.r.ReadDirMeta(ent.MetaID)
	if err != nil {
		return fmt.Errorf("export: directory %s: %w", x.treePath(name), err)
	}
	h := x.header(name, m.Mode, m.UID, m.GID, m.Xattrs)
	h.Typeflag = tar.TypeDir
	if err := x.writeHeader(h); err != nil {
		return err
	}
	t, err := x.r.ReadDirTree(ent.ID)
	if err != nil {
		return fmt.Errorf("export: directory %s: %w", x.treePath(name), err)
	}
	prefix := name
	if prefix == "./" {
		prefix = ""
	}
	for _, it := range treeItems(t) {
		if it.dir {
			err = x.dir(prefix+it.name+"/", repo.Entry{Kind: repo.KindDirTree, ID: it.id, MetaID: it.metaID})
		} else {
			err = x.file(prefix+it.name, repo.Entry{Kind: repo.KindFile, ID: it.id})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// file writes one non-directory entry.
func (x *exporter) file(name string, ent repo.Entry) error {
	fh, rc, err := x.r.OpenFile(ent.ID)
	if err != nil {
		return fmt.Errorf("export: %s: %w", x.treePath(name), err)
	}
	defer rc.Close()
	h := x.header(name, fh.Mode, fh.UID, fh.GID, fh.Xattrs)
	switch fh.Type {
	case repo.TypeRegular:
		if first, ok := x.links[ent.ID]; ok {
			h.Typeflag, h.Linkname, h.PAXRecords = tar.TypeLink, first, nil
			return x.writeHeader(h)
		}
		h.Typeflag, h.Size = tar.TypeReg, int64(fh.Size)
	case repo.TypeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, fh.Target
	case repo.TypeCharDevice, repo.TypeBlockDevice:
		h.Typeflag = tar.TypeChar
		if fh.Type == repo.TypeBlockDevice {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(fh.Rdev)), int64(unix.Minor(fh.Rdev))
	case repo.TypeFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return fmt.Errorf("export: %s: file object %s has unknown type %s", x.treePath(name), ent.ID, fh.Type)
	}
	if err := x.writeHeader(h); err != nil {
		return err
	}
	if fh.Type != repo.TypeRegular {
		return nil
	}
	if _, err := io.CopyBuffer(x.tw, rc, x.buf); err != nil {
		return fmt.Errorf("export: %s: %w", x.treePath(name), err)
	}
	if x.links != nil {
		x.links[ent.ID] = name
	}
	return nil
}
