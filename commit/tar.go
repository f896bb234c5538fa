package commit

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otree/otree/internal/ctxread"
	"github.com/otree/otree/internal/xattr"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// openTar opens the tar file at p. The open of a FIFO waits for a writer,
// which may never come (its producer died first), and the commit holds
// the repository lock meanwhile: that wait ends with ctx, as a read of the
// FIFO does (ctxread.Blocking). The FIFO is opened without waiting and
// its first bytes (or its writer's close) are awaited instead: ending
// that wait touches no one else, where completing a pending open from
// the write end would also hand every other reader of the FIFO an end of
// file no writer sent.
func openTar(ctx context.Context, p string) (*os.File, error) {
	if fi, err := os.Stat(p); err != nil || fi.Mode().Type() != fs.ModeNamedPipe || ctx.Done() == nil {
		return os.Open(p)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	// Non-blocking, the descriptor goes to the runtime's poller, as an
	// os.Open of a FIFO would.
	f := os.NewFile(uintptr(fd), p)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		// p was replaced since the Stat: open it as anything else.
		f.Close()
		return os.Open(p)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
	// Until a writer has opened it, a read of the FIFO ends at once as at
	// its end, while poll reports it neither readable nor hung up (Linux
	// counts a hang-up only of a writer that came after the open).
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(pfd, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				perr = err
				return true
			}
			return n > 0
		}
	})
	if !stop() {
		f.Close()
		return nil, ctx.Err()
	}
	if err == nil {
		err = perr
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "poll", Path: p, Err: err}
	}
	return f, nil
}

// The PAX record prefixes of xattrs: GNU tar and libarchive write
// SCHILY.xattr.NAME=VALUE; libarchive (bsdtar) may also, or only, write
// LIBARCHIVE.xattr.NAME=VALUE with NAME URL-encoded and VALUE in base64.
// GNU tar's --selinux writes a file's SELinux label in a record of its
// own, which libarchive reads as the security.selinux xattr.
const (
	paxXattr           = "SCHILY.xattr."
	paxLibarchiveXattr = "LIBARCHIVE.xattr."
	paxSELinux         = "RHT.security.selinux"
	selinuxXattr       = "security.selinux"
)

// importTar reads a tar source (plain, gzip, zstd, xz or bzip2; "-" is
// standard input) into a tree, and says how many entries the archive
// held. Names are confined to the tree: absolute names are taken from its
// root; any ".." component and entries below a non-directory are
// refused, and so is an entry that would turn a directory into a
// non-directory or back.
// Hardlinks are resolved once the whole archive is read, to what their
// target names then, as OSTree does. An archive cut short is refused.
// Directories may come back with entries out of order (dir.anyOrder),
// for sortAll to sort.
//
// lower is the tree of the sources before this one (nil for the first),
// which a hardlink whose target the tar lacks links into, as extracting
// the tar over that tree would (and as OSTree does); r reads its stored
// directories.
func importTar(ctx context.Context, txn *repo.Txn, src Source, mod *modifier, skip *skipList, filter *PathnameFilter, cnt *counters, lower *dir, r reader) (*dir, int, error) {
	name := src.String()
	in := src.Reader
	if in == nil && src.Path == "-" {
		in = os.Stdin
	}
	if in == nil {
		f, err := openTar(ctx, src.Path)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
		defer f.Close()
		in = f
	}
	if ctxread.MayWait(in) { // a pipe (<(curl ...) names one too), a socket
		in = ctxread.Blocking(ctx, in)
	}
	rd, err := decompress(bufio.NewReaderSize(in, 256<<10))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	if c, ok := rd.(io.Closer); ok {
		defer c.Close()
	}
	ti := &tarImport{txn: txn, mod: mod, cnt: cnt, filter: filter, skip: skip, linkAt: map[string]int{}, lower: lower, r: r}
	if ti.defMeta, err = ti.autoDirMeta(nil); err != nil {
		return nil, 0, err
	}
	// The root is implicit until a "./" entry names it.
	if ti.root, err = ti.implicitDir("/"); err != nil {
		return nil, 0, err
	}
	cnt.dirs.Add(1) // the root, as a walk counts it
	ar := &tarInput{r: rd}
	tr := tar.NewReader(ar)
	// end is where the data of the entry last read ends, padded to a
	// block; last is its name.
	var end int64
	last := ""
	n := 0 // entries, a PAX global header and a volume label not counted
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
		ar.record(end)
		hdr, err := tr.Next()
		ar.stop()
		if errors.Is(err, io.EOF) {
			if err := checkTarEnd(ar.n, end, last, ar.rec); err != nil {
				return nil, 0, fmt.Errorf("%s: %w", name, err)
			}
			if err := checkStreamEnd(rd); err != nil {
				return nil, 0, fmt.Errorf("%s: after the end of the archive: %w", name, err)
			}
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, tarHeaderError(err, ar.n, end, last, ar.rec))
		}
		hdrEnd := ar.n
		if err := ti.add(hdr, tr); err != nil {
			return nil, 0, fmt.Errorf("%s: entry %q: %w", name, hdr.Name, err)
		}
		if end, err = entryEnd(tr, ar, hdr, hdrEnd); err != nil {
			return nil, 0, fmt.Errorf("%s: entry %q: %w", name, hdr.Name, err)
		}
		last = hdr.Name
		if hdr.Typeflag != tar.TypeXGlobalHeader && hdr.Typeflag != tarTypeGNUVolume {
			n++
		}
	}
	for i := range ti.links {
		if _, err := ti.resolve(i); err != nil {
			return nil, 0, fmt.Errorf("%s: entry %q: %w", name, ti.links[i].entry, err)
		}
	}
	return ti.root, n, nil
}

// tarBlock is the tar format's unit: headers, data and padding come in
// blocks of 512 bytes.
const tarBlock = 512

// padBlock rounds n up to a whole number of blocks.
func padBlock(n int64) int64 {
	return (n + tarBlock - 1) &^ (tarBlock - 1)
}

// checkTarEnd checks the end of the archive archive/tar found at byte n,
// after entry last whose data ended at end (padded); rec holds what it
// read from there. archive/tar takes for the end an archive that ends
// inside an entry's padding, between entries, or after the PAX or GNU
// long-name header of an entry that is not there: what a cut download
// leaves, which would commit a partial tree. OSTree (libarchive) refuses
// the first. An empty input is an archive with no entries.
func checkTarEnd(n, end int64, last string, rec []byte) error {
	switch {
	case n == 0:
		return nil
	case n < end || n%tarBlock != 0:
		return fmt.Errorf("truncated at byte %d, inside the padding of entry %q: %w", n, last, io.ErrUnexpectedEOF)
	case n < end+tarBlock:
		return fmt.Errorf("truncated at byte %d, right after entry %q (no end-of-archive block): %w", n, last, io.ErrUnexpectedEOF)
	case len(rec) < tarBlock || !bytes.Equal(rec[:tarBlock], zeroBlock[:]):
		return fmt.Errorf("truncated at byte %d, inside the headers at byte %d%s: %w", n, end, afterEntry(last), io.ErrUnexpectedEOF)
	}
	return nil
}

var zeroBlock [tarBlock]byte

// ignoredGlobalRecords are the PAX global header records that change
// nothing a tree records: git archive's comment (its commit id), times,
// names and GNU tar's volume label (`tar -V LABEL` in PAX format).
var ignoredGlobalRecords = map[string]bool{"comment": true, "mtime": true, "atime": true, "ctime": true,
	"charset": true, "hdrcharset": true, "uname": true, "gname": true, "GNU.volume.label": true}

// tarTypeGNUVolume is the type of the entry that holds the volume label
// of a GNU format tar (`tar -V LABEL`): a name for the archive, not a
// path, skipped as GNU tar and libarchive skip it on extraction.
const tarTypeGNUVolume = 'V'

// tarTypeGNUDumpDir is the type GNU tar gives directories in an
// incremental archive (`tar -g`): a directory whose data lists the names
// it held at the time, which only an incremental restore reads (to delete
// what the directory no longer holds); GNU tar and libarchive extract it as
// a directory.
const tarTypeGNUDumpDir = 'D'

// checkGlobalHeader accepts a PAX global header (which archive/tar does not
// apply to the entries after it) when none of its records would change what
// the tree records of them; one that would, such as a global owner or
// xattr, is refused rather than left out.
func checkGlobalHeader(recs map[string]string) error {
	for k := range recs {
		if !ignoredGlobalRecords[k] {
			return fmt.Errorf("a PAX global header record %q would apply to every later entry, which is not supported", k)
		}
	}
	return nil
}

// maxTarTrailer bounds what is read past the end of the archive: the
// rest of tar's last record (10 KiB by default) and a compressed stream's
// end, whose checksum (gzip's CRC, zstd's, xz's, bzip2's) is checked only
// there.
const maxTarTrailer = 1 << 20

// afterEntry says, for an error, which entry a header follows.
func afterEntry(last string) string {
	if last == "" {
		return ""
	}
	return fmt.Sprintf(", after entry %q", last)
}

// tarHeaderError says where reading the headers that start at byte end,
// after entry last, failed at byte n, and for which entry when rec, what
// was read of them, holds its header: archive/tar says none of this.
func tarHeaderError(err error, n, end int64, last string, rec []byte) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) && n < end:
		// archive/tar skips what is left of a sparse entry only here.
		return fmt.Errorf("truncated at byte %d, inside the data of entry %q: %w", n, last, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("truncated at byte %d, inside the headers at byte %d%s: %w", n, end, afterEntry(last), err)
	case errors.Is(err, tar.ErrFieldTooLong):
		// A name that long is a tree some 4000 directories deep.
		return fmt.Errorf("header at byte %d%s: an extended header (long name, link target or PAX records) over 1 MiB, the most archive/tar reads: %w", end, afterEntry(last), err)
	}
	if name := headerName(rec); name != "" {
		// archive/tar fails on an entry's sparse map, say, without
		// giving the header it has read.
		return fmt.Errorf("header at byte %d, entry %q: %w", end, name, err)
	}
	return fmt.Errorf("header at byte %d%s: %w", end, afterEntry(last), err)
}

// headerName returns the name of the entry whose headers rec holds, as
// archive/tar takes it: a PAX sparse entry's GNU.sparse.name, else its GNU
// long name or PAX path, else its header's (with a ustar prefix); "" when
// rec holds no whole header.
func headerName(rec []byte) string {
	var long, sparse string
	for p := 0; len(rec)-p >= tarBlock; {
		blk := rec[p : p+tarBlock]
		size, ok := tarNumber(blk[124:136])
		if sum, sumOK := tarNumber(blk[148:156]); !ok || !sumOK || sum != headerSum(blk) {
			return "" // not a header archive/tar took
		}
		data := rec[p+tarBlock:][:min(size, int64(len(rec)-p-tarBlock))]
		switch blk[156] {
		case tar.TypeGNULongName:
			long, _, _ = strings.Cut(string(data), "\x00")
		case tar.TypeXHeader:
			for _, line := range strings.Split(string(data), "\n") {
				_, kv, _ := strings.Cut(line, " ")
				if v, ok := strings.CutPrefix(kv, "path="); ok {
					long = v
				} else if v, ok := strings.CutPrefix(kv, "GNU.sparse.name="); ok {
					sparse = v
				}
			}
		case tar.TypeGNULongLink:
		default:
			name, _, _ := strings.Cut(string(blk[:100]), "\x00")
			if prefix, _, _ := strings.Cut(string(blk[345:500]), "\x00"); string(blk[257:263]) == "ustar\x00" && prefix != "" {
				name = prefix + "/" + name
			}
			return cmp.Or(sparse, long, name)
		}
		if size > int64(len(rec)) {
			return ""
		}
		p += tarBlock + int(padBlock(size))
	}
	return ""
}

// entryEnd reads what add left of entry hdr, whose headers ended at byte
// hdrEnd, and returns where its data ends, padded to a block. The holes of
// a sparse entry would be read as zeros, however large: where its data
// ends comes from its header instead, and archive/tar skips the rest.
func entryEnd(tr *tar.Reader, in *tarInput, hdr *tar.Header, hdrEnd int64) (int64, error) {
	if tarSparse(hdr) && !in.over {
		if e, ok := sparseEnd(in.rec, in.from, hdr, hdrEnd); ok && e >= in.n {
			return e, nil
		}
	}
	if _, err := io.Copy(io.Discard, tr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("truncated at byte %d, inside its data: %w", in.n, err)
		}
		return 0, fmt.Errorf("reading its data: %w", err)
	}
	return padBlock(in.n), nil
}

// tarSparse says whether hdr may be a GNU sparse file: of the old GNU type,
// or with PAX records of GNU's sparse formats.
func tarSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// sparseEnd returns where the data of entry hdr ends, padded to a block,
// from rec: the archive's bytes from byte from, where hdr's first header
// (PAX or GNU long name) starts, to hdrEnd, where archive/tar stopped
// reading its headers. ok is false if rec does not say.
func sparseEnd(rec []byte, from int64, hdr *tar.Header, hdrEnd int64) (int64, bool) {
	for p := 0; len(rec)-p >= tarBlock; {
		blk := rec[p : p+tarBlock]
		size, ok := tarNumber(blk[124:136])
		if !ok {
			return 0, false
		}
		switch blk[156] {
		case tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			if size > maxTarRecord {
				return 0, false
			}
			p += tarBlock + int(padBlock(size))
			continue
		}
		if s := hdr.PAXRecords["size"]; s != "" {
			var err error
			if size, err = strconv.ParseInt(s, 10, 64); err != nil || size < 0 {
				return 0, false
			}
		}
		start := from + int64(p) + tarBlock
		if blk[156] == tar.TypeGNUSparse {
			start = hdrEnd // after the extension blocks of its sparse map
		}
		if size > math.MaxInt64-tarBlock-start || start+size < hdrEnd {
			return 0, false
		}
		return padBlock(start + size), true
	}
	return 0, false
}

// headerSum is a header block's checksum: the sum of its bytes, its
// checksum field taken as spaces.
func headerSum(blk []byte) int64 {
	sum := int64(8 * ' ')
	for i, c := range blk {
		if i < 148 || i >= 156 {
			sum += int64(c)
		}
	}
	return sum
}

// tarNumber parses a numeric field of a tar header: octal, or base-256
// when its first byte has the high bit set; a negative one is refused.
func tarNumber(b []byte) (int64, bool) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0]&0x40 != 0 {
			return 0, false // negative
		}
		var n int64
		for i, c := range b {
			if i == 0 {
				c &= 0x7f
			}
			if n > math.MaxInt64>>8 {
				return 0, false
			}
			n = n<<8 | int64(c)
		}
		return n, true
	}
	s := strings.Trim(string(b), " \x00")
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return 0, true
	}
	// Unsigned, as archive/tar reads it: a "-1" would be a negative size.
	n, err := strconv.ParseUint(s, 8, 63)
	return int64(n), err == nil
}

// maxTarRecord bounds what tarInput keeps of one entry's headers;
// archive/tar reads at most 1 MiB of each PAX header, long name and
// sparse map.
const maxTarRecord = 4 << 20

// tarInput counts the bytes archive/tar reads of an archive, which are no
// more than it needs, and while recording keeps those from byte from on.
type tarInput struct {
	r    io.Reader
	n    int64
	on   bool
	from int64
	rec  []byte
	over bool // rec would have grown past maxTarRecord, or missed its start
}

// record starts keeping what is read from byte from on.
func (in *tarInput) record(from int64) {
	in.on, in.from, in.rec, in.over = true, from, in.rec[:0], from < in.n
}

func (in *tarInput) stop() { in.on = false }

func (in *tarInput) Read(p []byte) (int, error) {
	k, err := in.r.Read(p)
	if in.on && !in.over && in.n+int64(k) > in.from {
		b := p[max(in.from-in.n, 0):k]
		if len(in.rec)+len(b) > maxTarRecord {
			in.over = true
		} else {
			in.rec = append(in.rec, b...)
		}
	}
	in.n += int64(k)
	return k, err
}

type tarImport struct {
	txn     *repo.Txn
	mod     *modifier
	filter  *PathnameFilter
	skip    *skipList
	cnt     *counters
	root    *dir
	defMeta repo.ID
	// links are the archive's hardlinks in order; linkAt gives, for each
	// name whose latest entry is a hardlink, its index in links. Until
	// resolved a link holds the zero id in its directory.
	links  []tarLink
	linkAt map[string]int
	// lower is the tree of the earlier sources, or nil; r reads it.
	lower *dir
	r     reader
}

// tarLink is a hardlink entry waiting for the whole archive to be read.
type tarLink struct {
	d       *dir   // its directory
	base    string // its name there
	name    string // its cleaned path
	target  string // the cleaned path it links to
	entry   string // the entry's name as the archive has it, for errors
	written string // the target as the archive has it, for errors
	state   int8   // linkPending, linkResolving or linkDone
	// dirOnly: the target as written ends in "/" or "/.", so, as when
	// extracting, it resolves only to a directory, which cannot be linked.
	dirOnly bool
}

const (
	linkPending int8 = iota
	linkResolving
	linkDone
)

// resolve gives link i the object its target names, resolving first a
// target that is itself a pending hardlink.
func (ti *tarImport) resolve(i int) (repo.ID, error) {
	l := &ti.links[i]
	if j, ok := ti.linkAt[l.name]; !ok || j != i {
		return repo.ID{}, nil // a later entry replaced it
	}
	switch l.state {
	case linkDone:
		return l.d.fileIDs[l.d.findFile(l.base)], nil
	case linkResolving:
		return repo.ID{}, fmt.Errorf("hardlink to %q, which links back to it", l.target)
	}
	l.state = linkResolving
	id, err := ti.lookup(l.target)
	if err == nil && l.dirOnly {
		// Extracting the tar fails here too (ENOTDIR), as OSTree does.
		err = fmt.Errorf("hardlink to %q, but %q is not a directory", l.written, l.target)
	}
	if err == nil && id.IsZero() {
		// Only hardlinks hold the zero id: the target is one too.
		id, err = ti.resolve(ti.linkAt[l.target])
	}
	if err != nil {
		return repo.ID{}, err
	}
	l.d.setFile(l.base, id)
	l.state = linkDone
	return id, nil
}

// lookup returns the object at the cleaned path name of the tar's tree,
// which must be a non-directory: zero for a hardlink not yet resolved. A
// name the tar lacks is looked up in the earlier sources' tree.
func (ti *tarImport) lookup(name string) (repo.ID, error) {
	d := ti.root
	if name != "" {
		parts := strings.Split(name, "/")
		for _, p := range parts[:len(parts)-1] {
			i := d.findDir(p)
			if i < 0 {
				return ti.lookupLower(name)
			}
			d = d.dirs[i]
		}
		last := parts[len(parts)-1]
		if i := d.findFile(last); i >= 0 {
			return d.fileIDs[i], nil
		}
		if d.findDir(last) < 0 {
			return ti.lookupLower(name)
		}
	}
	if name == "" {
		return repo.ID{}, errors.New("hardlink to the tree's root, which is a directory")
	}
	return repo.ID{}, fmt.Errorf("hardlink to %q, which is a directory", name)
}

// lookupLower returns the object at the cleaned path name, which the tar
// lacks, in the tree of the earlier sources.
func (ti *tarImport) lookupLower(name string) (repo.ID, error) {
	d := ti.lower
	if d == nil || ti.skip.covers("/"+name) {
		// A skipped path of the tar is not the base's (which the skip
		// list does not apply to) either: that is another file.
		return repo.ID{}, ti.missing(name)
	}
	parts := strings.Split(name, "/")
	for _, p := range parts[:len(parts)-1] {
		sub, err := d.subdir(ti.r, p)
		if err != nil {
			return repo.ID{}, fmt.Errorf("hardlink to %q: %w", name, err)
		}
		if sub == nil {
			return repo.ID{}, ti.missing(name)
		}
		d = sub
	}
	last := parts[len(parts)-1]
	id, ok, err := d.file(ti.r, last)
	if err != nil {
		return repo.ID{}, fmt.Errorf("hardlink to %q: %w", name, err)
	}
	if ok {
		return id, nil
	}
	if d.findDir(last) >= 0 {
		return repo.ID{}, fmt.Errorf("hardlink to %q, which is a directory in an earlier source", name)
	}
	return repo.ID{}, ti.missing(name)
}

func (ti *tarImport) missing(name string) error {
	if ti.skip.covers("/" + name) {
		return fmt.Errorf("hardlink to %q, which the skip list leaves out", name)
	}
	if ti.lower != nil {
		return fmt.Errorf("hardlink to %q, which neither the tar nor an earlier source has", name)
	}
	return fmt.Errorf("hardlink to %q, which the tar does not have", name)
}

// entryName is the tree path of a tar name or hardlink target. As in
// OSTree, an absolute name ("/etc/x", as "tar -P" writes) is taken from the
// tree's root, and the pathname filter sees the name without its leading
// "/" or "./" ("tar -C DIR -cf x.tar ." writes "./etc/x"); then it is
// confined to the tree.
func (ti *tarImport) entryName(name string) (string, error) {
	rel := name
	if strings.HasPrefix(rel, "/") {
		// ".." right below the root is the root ("/../x" is "/x"); one
		// anywhere else is refused below.
		for {
			rel = strings.TrimLeft(rel, "/")
			if rel != ".." && !strings.HasPrefix(rel, "../") {
				break
			}
			rel = rel[2:]
		}
	}
	for strings.HasPrefix(rel, "./") {
		rel = strings.TrimLeft(rel[2:], "/")
	}
	if rel == "." {
		rel = ""
	}
	renamed := ti.filter.apply(rel)
	clean, err := cleanTarName(renamed)
	if err != nil && renamed != rel {
		return "", fmt.Errorf("renamed to %q: %w", renamed, err)
	}
	return clean, err
}

// Linux's limits on a file name (NAME_MAX) and on a symlink's target
// (PATH_MAX less its NUL): a tar may hold longer ones, which no checkout
// could write.
const (
	maxNameLen   = 255
	maxTargetLen = 4095
)

// Linux's limits on an xattr (XATTR_NAME_MAX, XATTR_SIZE_MAX): setxattr
// refuses a longer name or value on every filesystem.
const (
	maxXattrName  = 255
	maxXattrValue = 64 << 10
)

// cleanTarName makes a tar name, as the pathname filter left it, relative
// to the tree root (a leading "/" names the root, as OSTree takes it),
// refusing names that would leave it: any ".." component.
func cleanTarName(name string) (string, error) {
	n := name
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("name leaves the tree (contains \"..\")")
		}
		if strings.IndexByte(c, 0) >= 0 {
			return "", fmt.Errorf("name contains NUL")
		}
		if len(c) > maxNameLen {
			// Such a commit could never be checked out.
			return "", fmt.Errorf("name has a component of %d bytes; no Linux filesystem holds more than %d", len(c), maxNameLen)
		}
	}
	n = path.Clean("/" + n)
	return strings.TrimPrefix(n, "/"), nil
}

// autoDirMeta stores the dirmeta of a directory the tar leaves out: mode
// 0755, owner 0, then the options and the directory's stat override o.
func (ti *tarImport) autoDirMeta(o *override) (repo.ID, error) {
	m := repo.DirMeta{Mode: 0o755}
	if err := ti.mod.dir(&m, o); err != nil {
		return repo.ID{}, err
	}
	return ti.txn.WriteMeta(repo.KindDirMeta, m.Encode())
}

// implicitDir makes the directory at tree path p ("/a/b"), which the tar
// leaves out: an earlier source's metadata for it stays (see
// dir.implicit), else it gets the default.
func (ti *tarImport) implicitDir(p string) (*dir, error) {
	d := &dir{meta: ti.defMeta, implicit: true, anyOrder: true}
	// Not recorded as had yet: the override applies only if this
	// default is kept (modifier.matchImplied).
	if o := ti.mod.peek(p); o != nil {
		var err error
		if d.meta, err = ti.autoDirMeta(o); err != nil {
			return nil, err
		}
		d.implied = o
	}
	return d, nil
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
			sub, err := ti.implicitDir("/" + strings.Join(parts[:k+1], "/"))
			if err != nil {
				return nil, "", err
			}
			d.setDir(p, sub)
			ti.cnt.dirs.Add(1)
			i = d.findDir(p)
		}
		d = d.dirs[i]
	}
	return d, parts[len(parts)-1], nil
}

func (ti *tarImport) add(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return checkGlobalHeader(hdr.PAXRecords)
	}
	if hdr.Typeflag == tarTypeGNUVolume {
		return nil
	}
	if hdr.Typeflag == tarTypeGNUDumpDir {
		hdr.Typeflag = tar.TypeDir
	}
	if (hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeCont) && strings.HasSuffix(hdr.Name, "/") {
		// Tars from before the directory type wrote a directory as a
		// regular entry named with a trailing "/": GNU tar and OSTree's
		// libarchive extract a directory there, archive/tar (for type
		// '0') leaves it a file.
		if hdr.Size != 0 {
			return fmt.Errorf("a regular file entry whose name ends in \"/\" (a directory to GNU tar and OSTree) has size %d", hdr.Size)
		}
		hdr.Typeflag = tar.TypeDir
	}
	name, err := ti.entryName(hdr.Name)
	if err != nil {
		return err
	}
	o := ti.mod.overrideFor("", name) // before skipping: a skipped path is not missing
	if ti.skip.skipsFrom("/" + name) {
		return nil
	}
	xattrs, err := paxXattrs(hdr.PAXRecords)
	if err != nil {
		return err
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || hdr.Uid > 0xffffffff || hdr.Gid > 0xffffffff {
		return fmt.Errorf("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	uid, gid, mode := uint32(hdr.Uid), uint32(hdr.Gid), uint32(hdr.Mode)&0o7777
	if ti.mod.keepsXattrs() {
		if xattrs, mode, err = textACLXattrs(hdr.PAXRecords, xattrs, mode); err != nil {
			return err
		}
		xattrs = dropXFSACLAliases(xattrs)
	}
	if hdr.Typeflag == tar.TypeDir {
		m := repo.DirMeta{Mode: mode, UID: uid, GID: gid, Xattrs: xattrs}
		if err := ti.mod.dir(&m, o); err != nil {
			return err
		}
		if err := repo.CheckACLXattrs(m.Xattrs, m.Mode, 0); err != nil {
			return err
		}
		id, err := ti.txn.WriteMeta(repo.KindDirMeta, m.Encode())
		if err != nil {
			return err
		}
		if name == "" {
			ti.root.meta, ti.root.implicit, ti.root.implied = id, false, nil
			return nil
		}
		d, base, err := ti.parent(name)
		if err != nil {
			return err
		}
		if d.findFile(base) >= 0 {
			// Replacing it would drop the earlier entry, and a
			// hardlink to it, without a word; OSTree refuses too.
			return fmt.Errorf("a directory where an earlier entry of the tar put a non-directory (cannot replace a file with a directory)")
		}
		if i := d.findDir(base); i >= 0 {
			sub := d.dirs[i]
			sub.meta, sub.implicit, sub.implied = id, false, nil
			return nil
		}
		d.setDir(base, &dir{meta: id, anyOrder: true})
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
	if d.findDir(base) >= 0 {
		return fmt.Errorf("a non-directory where an earlier entry of the tar put a directory (cannot replace a directory, and what it holds, with a file)")
	}
	h := repo.FileHeader{Mode: mode, UID: uid, GID: gid, Xattrs: xattrs}
	var id repo.ID
	switch hdr.Typeflag {
	// archive/tar reads the old TypeRegA as TypeReg, and gives a sparse
	// file's content with its holes; a contiguous file is a regular one
	// to POSIX, GNU tar and OSTree, which store no contiguity either.
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		if hdr.Size < 0 {
			return fmt.Errorf("negative size")
		}
		h.Type, h.Size = repo.TypeRegular, uint64(hdr.Size)
		if err := ti.mod.file(&h, o); err != nil {
			return err
		}
		if err := repo.CheckACLXattrs(h.Xattrs, h.Mode, h.Type); err != nil {
			return err
		}
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
		} else {
			ti.txn.IndexHeader(id, &h)
		}
	case tar.TypeLink:
		if o != nil {
			// The link would need an object of its own; say so rather
			// than change both names or neither.
			return fmt.Errorf("a stat override names a hardlink (override the first name of the file instead)")
		}
		target, err := ti.entryName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		trimmed := strings.TrimRight(hdr.Linkname, "/")
		dirOnly := trimmed != hdr.Linkname || path.Base(trimmed) == "."
		if target == name && !dirOnly && d.findFile(base) >= 0 {
			// A file named twice ("tar -cf x.tar d d/f") is stored the
			// second time as a link to itself: extracting it changes
			// nothing, and nor does this.
			return nil
		}
		// Resolved once the whole archive is read: the target may come
		// later (OSTree accepts that) and may be any non-directory.
		ti.linkAt[name] = len(ti.links)
		ti.links = append(ti.links, tarLink{d: d, base: base, name: name, target: target, entry: hdr.Name, written: hdr.Linkname, dirOnly: dirOnly})
		ti.cnt.files.Add(1)
		d.setFile(base, repo.ID{})
		return nil
	case tar.TypeSymlink:
		if len(hdr.Linkname) > maxTargetLen {
			return fmt.Errorf("symlink target of %d bytes; Linux makes none longer than %d", len(hdr.Linkname), maxTargetLen)
		}
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
	if h.Type != repo.TypeRegular {
		if err := ti.mod.file(&h, o); err != nil {
			return err
		}
		if err := repo.CheckACLXattrs(h.Xattrs, h.Mode, h.Type); err != nil {
			return err
		}
		id = repo.FileID(&h, nil)
		if _, err := ti.txn.WriteFile(&h, id, nil); err != nil {
			return err
		}
	}
	// A later entry for a name replaces the earlier one, as extracting
	// the archive would.
	delete(ti.linkAt, name)
	ti.cnt.files.Add(1)
	d.setFile(base, id)
	return nil
}

// dropXFSACLAliases leaves out of an entry's xattrs, sorted, the
// trusted.SGI_ACL_* names that repeat an ACL it also has, their value
// XFS's form of it: GNU tar run by root on XFS records each ACL under both
// names, as XFS lists it, and a commit of the directory records only the
// ACL (xattr.List). One of another value is an xattr of its own (set on
// another filesystem), which a commit of the directory keeps too.
func dropXFSACLAliases(xattrs []repo.Xattr) []repo.Xattr {
	value := func(name string) ([]byte, bool) {
		i := slices.IndexFunc(xattrs, func(x repo.Xattr) bool { return x.Name == name })
		if i < 0 {
			return nil, false
		}
		return xattrs[i].Value, true
	}
	var drop []string
	for _, x := range xattrs {
		if acl := xattr.XFSACLAlias(x.Name); acl != "" {
			if v, ok := value(acl); ok && xattr.IsXFSACL(x.Value, v) {
				drop = append(drop, x.Name)
			}
		}
	}
	if drop == nil {
		return xattrs
	}
	return slices.DeleteFunc(xattrs, func(x repo.Xattr) bool { return slices.Contains(drop, x.Name) })
}

// mkdev packs a device number the way Linux's makedev does.
func mkdev(major, minor int64) uint64 {
	ma, mi := uint64(major), uint64(minor)
	return (ma&0xfffff000)<<32 | (ma&0xfff)<<8 | (mi&0xffffff00)<<12 | mi&0xff
}

// gnuXattrName decodes an xattr name of a SCHILY record as GNU tar does:
// it writes "%" as "%25" and "=" (which would end the record's key) as
// "%3D", and so does `otree export`.
var gnuXattrName = strings.NewReplacer("%25", "%", "%3D", "=")

// paxXattrs returns the xattrs of an entry's PAX records, sorted: the
// SCHILY ones, and the LIBARCHIVE ones and the --selinux label whose name
// none of those has. An entry without LIBARCHIVE records has its SCHILY
// names decoded as GNU tar decodes them; libarchive URL-encodes the names
// of both records alike
// (every byte outside '!'..'~', "%" and "="), so beside LIBARCHIVE records
// they are URL-decoded: read as GNU's, a name such as "user.a=b" would
// come out twice, once as "user.a%3Db".
func paxXattrs(records map[string]string) ([]repo.Xattr, error) {
	gnu := true
	for k := range records {
		if strings.HasPrefix(k, paxLibarchiveXattr) {
			gnu = false
			break
		}
	}
	byName := map[string][]byte{}
	for k, v := range records {
		if name, ok := strings.CutPrefix(k, paxXattr); ok {
			if gnu {
				name = gnuXattrName.Replace(name)
			} else if dec, err := url.PathUnescape(name); err == nil {
				name = dec
			}
			byName[name] = []byte(v)
		}
	}
	for k, v := range records {
		enc, ok := strings.CutPrefix(k, paxLibarchiveXattr)
		if !ok {
			continue
		}
		name, err := url.PathUnescape(enc)
		if err != nil {
			return nil, fmt.Errorf("PAX record %s: bad xattr name: %v", k, err)
		}
		if _, ok := byName[name]; ok {
			continue
		}
		value, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			value, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
		}
		if err != nil {
			return nil, fmt.Errorf("PAX record %s: value is not base64: %v", k, err)
		}
		byName[name] = value
	}
	if v, ok := records[paxSELinux]; ok {
		if _, ok := byName[selinuxXattr]; !ok {
			byName[selinuxXattr] = []byte(v)
		}
	}
	var xattrs []repo.Xattr
	for name, value := range byName {
		// Stored, such an xattr could never be checked out.
		if len(name) > maxXattrName {
			return nil, fmt.Errorf("xattr name %.40q... of %d bytes; Linux allows none longer than %d", name, len(name), maxXattrName)
		}
		if len(value) > maxXattrValue {
			return nil, fmt.Errorf("xattr %s has a value of %d bytes; Linux allows none longer than %d", name, len(value), maxXattrValue)
		}
		if !skipXattr(name) {
			xattrs = append(xattrs, repo.Xattr{Name: name, Value: value})
		}
	}
	repo.SortXattrs(xattrs)
	return xattrs, nil
}
