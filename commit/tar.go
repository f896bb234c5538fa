package commit

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/repo"
)

// paxXattr is the PAX record prefix GNU tar and libarchive use for xattrs.
const paxXattr = "SCHILY.xattr."

// importTar reads a tar file (plain, gzip or zstd; "-" is standard input)
// into a tree. Names are confined to the tree: absolute names, any ".."
// component, and entries below a non-directory are refused.
func importTar(ctx context.Context, txn *repo.Txn, file string, mod *modifier, skip *skipList, filter *PathnameFilter, cnt *counters) (*dir, error) {
	var in io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--tree=tar=%s: %w", file, err)
		}
		defer f.Close()
		in = f
	}
	rd, err := decompress(bufio.NewReaderSize(in, 256<<10))
	if err != nil {
		return nil, fmt.Errorf("--tree=tar=%s: %w", file, err)
	}
	ti := &tarImport{txn: txn, mod: mod, cnt: cnt, filter: filter, files: map[string]repo.ID{}}
	ti.root = &dir{}
	if ti.defMeta, err = ti.autoDirMeta(nil); err != nil {
		return nil, err
	}
	ti.root.meta = ti.defMeta
	tr := tar.NewReader(rd)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("--tree=tar=%s: %w", file, err)
		}
		if err := ti.add(hdr, tr, skip); err != nil {
			return nil, fmt.Errorf("--tree=tar=%s: entry %q: %w", file, hdr.Name, err)
		}
	}
	return ti.root, nil
}

func decompress(br *bufio.Reader) (io.Reader, error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return br, nil
}

type tarImport struct {
	txn     *repo.Txn
	mod     *modifier
	filter  *PathnameFilter
	cnt     *counters
	root    *dir
	defMeta repo.ID
	files   map[string]repo.ID // regular files by cleaned name, for hardlinks
}

// cleanTarName makes a tar name relative to the tree root, refusing names
// that would leave it: absolute names and any ".." component.
func cleanTarName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute name (tar entries must be relative to the tree)")
	}
	n := name
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("name leaves the tree (contains \"..\")")
		}
		if strings.IndexByte(c, 0) >= 0 {
			return "", fmt.Errorf("name contains NUL")
		}
	}
	n = path.Clean("/" + n)
	return strings.TrimPrefix(n, "/"), nil
}

// autoDirMeta stores the dirmeta of a directory the tar leaves out: mode
// 0755, owner 0, then the options and the directory's stat override o.
func (ti *tarImport) autoDirMeta(o *override) (repo.ID, error) {
	m := repo.DirMeta{Mode: 0o755}
	ti.mod.dir(&m, o)
	return ti.txn.WriteMeta(repo.KindDirMeta, m.Encode())
}

// parent returns the directory that holds name, creating missing ones.
func (ti *tarImport) parent(name string) (*dir, string, error) {
	d := ti.root
	parts := strings.Split(name, "/")
	for k, p := range parts[:len(parts)-1] {
		if d.findFile(p) >= 0 {
			// A symlink or file earlier in the tar: writing "through" it
			// is how hostile tars escape an extraction; refuse.
			return nil, "", fmt.Errorf("%q is not a directory in the tar", p)
		}
		i := d.findDir(p)
		if i < 0 {
			sub := &dir{meta: ti.defMeta}
			if o := ti.mod.overrideFor("", strings.Join(parts[:k+1], "/")); o != nil {
				var err error
				if sub.meta, err = ti.autoDirMeta(o); err != nil {
					return nil, "", err
				}
			}
			d.setDir(p, sub)
			ti.cnt.dirs.Add(1)
			i = d.findDir(p)
		}
		d = d.dirs[i]
	}
	return d, parts[len(parts)-1], nil
}

func (ti *tarImport) add(hdr *tar.Header, r io.Reader, skip *skipList) error {
	renamed := ti.filter.apply(hdr.Name)
	name, err := cleanTarName(renamed)
	if err != nil {
		if renamed != hdr.Name {
			return fmt.Errorf("renamed to %q: %w", renamed, err)
		}
		return err
	}
	o := ti.mod.overrideFor("", name) // before skipping: a skipped path is not missing
	for p := "/" + name; p != "/" && p != "."; p = path.Dir(p) {
		if skip.skips(p) {
			return nil
		}
	}
	var xattrs []repo.Xattr
	for k, v := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) && !skipXattr(k[len(paxXattr):]) {
			xattrs = append(xattrs, repo.Xattr{Name: k[len(paxXattr):], Value: []byte(v)})
		}
	}
	repo.SortXattrs(xattrs)
	if hdr.Uid < 0 || hdr.Gid < 0 || hdr.Uid > 0xffffffff || hdr.Gid > 0xffffffff {
		return fmt.Errorf("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	uid, gid, mode := uint32(hdr.Uid), uint32(hdr.Gid), uint32(hdr.Mode)&0o7777
	if hdr.Typeflag == tar.TypeDir {
		m := repo.DirMeta{Mode: mode, UID: uid, GID: gid, Xattrs: xattrs}
		ti.mod.dir(&m, o)
		id, err := ti.txn.WriteMeta(repo.KindDirMeta, m.Encode())
		if err != nil {
			return err
		}
		if name == "" {
			ti.root.meta = id
			return nil
		}
		d, base, err := ti.parent(name)
		if err != nil {
			return err
		}
		if i := d.findDir(base); i >= 0 {
			d.dirs[i].meta = id
			return nil
		}
		d.setDir(base, &dir{meta: id})
		ti.cnt.dirs.Add(1)
		return nil
	}
	if name == "" {
		return fmt.Errorf("the tree root must be a directory")
	}
	d, base, err := ti.parent(name)
	if err != nil {
		return err
	}
	h := repo.FileHeader{Mode: mode, UID: uid, GID: gid, Xattrs: xattrs}
	var id repo.ID
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		if hdr.Size < 0 {
			return fmt.Errorf("negative size")
		}
		h.Type, h.Size = repo.TypeRegular, uint64(hdr.Size)
		ti.mod.file(&h, o)
		var isNew bool
		id, isNew, err = ti.txn.WriteFileStream(&h, r)
		if err != nil {
			return err
		}
		ti.cnt.hashed.Add(1)
		ti.cnt.bytesHashed.Add(hdr.Size)
		ti.cnt.bytesScanned.Add(hdr.Size)
		if isNew {
			ti.cnt.bytesNew.Add(hdr.Size)
		}
		ti.files[name] = id
	case tar.TypeLink:
		if o != nil {
			// The link would need an object of its own; say so rather
			// than change both names or neither.
			return fmt.Errorf("a stat override names a hardlink (override the first name of the file instead)")
		}
		target, err := cleanTarName(ti.filter.apply(hdr.Linkname))
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		var ok bool
		if id, ok = ti.files[target]; !ok {
			return fmt.Errorf("hardlink to %q, which is not an earlier regular file of the tar", hdr.Linkname)
		}
	case tar.TypeSymlink:
		h.Type, h.Target, h.Mode = repo.TypeSymlink, hdr.Linkname, 0o777
	case tar.TypeChar:
		h.Type, h.Rdev = repo.TypeCharDevice, mkdev(hdr.Devmajor, hdr.Devminor)
	case tar.TypeBlock:
		h.Type, h.Rdev = repo.TypeBlockDevice, mkdev(hdr.Devmajor, hdr.Devminor)
	case tar.TypeFifo:
		h.Type = repo.TypeFIFO
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if h.Type != repo.TypeRegular && hdr.Typeflag != tar.TypeLink {
		ti.mod.file(&h, o)
		id = repo.FileID(&h, nil)
		if _, err := ti.txn.WriteFile(&h, id, nil); err != nil {
			return err
		}
	}
	ti.cnt.files.Add(1)
	d.setFile(base, id)
	return nil
}

// mkdev packs a device number the way Linux's makedev does.
func mkdev(major, minor int64) uint64 {
	ma, mi := uint64(major), uint64(minor)
	return (ma&0xfffff000)<<32 | (ma&0xfff)<<8 | (mi&0xffffff00)<<12 | mi&0xff
}
