package delta

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/ctxread"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
	"golang.org/x/sys/unix"
)

// Limits of the part format that both sides enforce.
const (
	// DefaultMaxPartSize is the default uncompressed size of a part; an
	// object larger than the limit gets a part of its own.
	DefaultMaxPartSize = 64 << 20
	// PatchSizeLimit bounds the base and the result of a patch: both are
	// held in memory and the zstd window spans them. It is the most
	// GenerateOptions.MaxPatchSize may be.
	PatchSizeLimit = 64 << 20
	// keptPatchWindow is the window of the patch encoder kept for the
	// next patch: patches whose base and result fit in it share one.
	keptPatchWindow = 1 << 20
	// partWindow is the zstd window of a part stream.
	partWindow = 64 << 20
	// maxWindow is the largest zstd window a reader accepts: a part's, or
	// a patch's (base and result together).
	maxWindow = 2 * PatchSizeLimit
	// maxHeader bounds an encoded file header (large only with xattrs).
	maxHeader = 16 << 20
	// maxMeta bounds a dirtree or dirmeta, as repo bounds stored ones.
	maxMeta = 256 << 20
	// patchDict is the zstd dictionary id a patch frame names.
	patchDict = 1
	// DefaultMinFallbackSize is OSTree's default --min-fallback-size, 4
	// megabytes, which OSTree counts in powers of ten: what the otree
	// command uses for a delta in the repository.
	DefaultMinFallbackSize = 4 * MB
	// MB is the unit of --min-fallback-size, as OSTree counts it.
	MB = 1000 * 1000
)

// How a part entry carries its object.
const (
	entryWhole = 0
	entryPatch = 1
)

// GenerateOptions configure Generate.
type GenerateOptions struct {
	// From is the commit the delta starts from; zero makes a delta from
	// scratch, which holds every object of To.
	From repo.ID
	// To is the commit the delta yields.
	To repo.ID
	// MaxPartSize is the uncompressed size at which a part is closed
	// (default DefaultMaxPartSize).
	MaxPartSize int64
	// NoPatches stores every changed file whole instead of as a patch
	// against a file of From.
	NoPatches bool
	// MaxPatchSize is the largest file (and base) considered for a patch;
	// larger ones are stored whole. 0 means the format's limit, 64 MiB,
	// which is also the most it can be.
	MaxPatchSize int64
	// MinFallbackSize, when above 0, leaves out of the delta every
	// regular file larger than that many bytes that is not stored as a
	// patch: the superblock lists it as a fallback object, which a pull
	// fetches as an ordinary object (OSTree's --min-fallback-size, whose
	// default is DefaultMinFallbackSize). 0 puts every object in the delta.
	MinFallbackSize int64
	// NoSync skips fsync; only for scratch repositories.
	NoSync bool
	// Dir, if set, is a directory to create (it must not exist) and
	// write the delta into, its superblock and parts as in the
	// repository, instead of the repository's deltas/: a delta to carry
	// to machines offline (ApplyOffline reads it).
	Dir string
	// File, if set, is a file to create (it must not exist) holding the
	// whole delta, its superblock, signatures and parts (OSTree's
	// --inline): one file to carry to machines offline. Dir and File
	// exclude each other.
	File string
	// SignKeys sign the superblock; the signatures are written to
	// SignatureFile beside it (in File: into its signature section).
	SignKeys []ed25519.PrivateKey
}

// item is one object the delta must carry, with the path it was found at
// (for ordering and for choosing a patch base by name) and the object of
// the same kind at that path in the from-commit, if any (its first choice
// of patch base).
type item struct {
	ref  ObjectRef
	path string
	base repo.ID
}

// fromIndex is what a delta's base commit offers: the objects it has and
// a file for each base name. It keeps no paths, which on a large tree
// would cost more than the rest of it; the object at an item's own path
// is found by walking the from-commit's tree alongside (collect).
type fromIndex struct {
	objects map[ObjectRef]bool
	names   map[string]repo.ID // base name -> a file object of that name
	root    repo.ID            // the from-commit's root dirtree; zero from scratch
}

// Generate builds the delta from opts.From to opts.To into r's deltas/
// directory, replacing a delta of the same name, and returns its
// superblock. The delta is written beside the old one and renamed into
// place once durable, so readers see the old delta or the new one.
func Generate(ctx context.Context, r *repo.Repo, opts GenerateOptions) (*Superblock, error) {
	if opts.MaxPartSize <= 0 {
		opts.MaxPartSize = DefaultMaxPartSize
	}
	opts.NoSync = opts.NoSync || !r.Fsync()
	if opts.MaxPatchSize <= 0 || opts.MaxPatchSize > PatchSizeLimit {
		opts.MaxPatchSize = PatchSizeLimit
	}
	name := Name{From: opts.From, To: opts.To}
	if name.To.IsZero() || name.From == name.To {
		return nil, fmt.Errorf("a delta needs a to-commit different from its from-commit")
	}
	// Only a delta written to a directory of its own needs nothing of the
	// repository's deltas/: refused before the trees are walked.
	if opts.Dir == "" {
		if err := r.CheckWritable(); err != nil {
			return nil, fmt.Errorf("generating delta %s: %w", name, err)
		}
	}
	// The single file is opened (unnamed) before any work, so that a
	// place it cannot be written (a read-only or missing directory) fails
	// the generation before its parts are made.
	var single *durable.NewFile
	if opts.File != "" && opts.Dir == "" {
		if _, err := os.Lstat(opts.File); err == nil {
			return nil, fmt.Errorf("generating delta %s: %s already exists", name, opts.File)
		}
		f, err := durable.CreateNew(opts.File, true)
		if err != nil {
			return nil, fmt.Errorf("generating delta %s: %w", name, err)
		}
		defer f.Close()
		single = f
	}
	// Shared, so prune cannot delete objects while they are read.
	lk, err := r.LockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	sb := &Superblock{Name: name}
	for _, c := range []repo.ID{name.From, name.To} {
		if c.IsZero() {
			continue
		}
		if r.IsCommitPartial(c) {
			return nil, fmt.Errorf("commit %s is partial (some of its objects are missing): pull it whole first", c)
		}
	}
	// Either commit may have been pruned since the caller resolved it:
	// say which end of which delta is missing.
	if sb.Commit, err = r.ReadRaw(repo.KindCommit, name.To); err != nil {
		return nil, fmt.Errorf("generating delta %s: its to-commit: %w", name, err)
	}
	to, err := repo.DecodeCommit(sb.Commit)
	if err != nil {
		return nil, err
	}
	if m, err := r.ReadRaw(repo.KindCommitMeta, name.To); err == nil {
		if _, err := repo.DecodeCommitMeta(m); err != nil {
			return nil, fmt.Errorf("commitmeta of %s: %w", name.To, err)
		}
		sb.CommitMeta = m
	} else if !errors.Is(err, repo.ErrNotFound) {
		return nil, err
	}
	from, err := indexFrom(ctx, r, name.From)
	if err != nil {
		return nil, fmt.Errorf("generating delta %s: %w", name, err)
	}
	items, err := collect(ctx, r, to, from)
	if err != nil {
		return nil, err
	}

	parent, final := r.Path(Dir), Path(r, name)
	if opts.Dir != "" && opts.File != "" {
		return nil, fmt.Errorf("generating delta %s: a delta is written to a directory or to a file, not both", name)
	}
	if out := opts.Dir + opts.File; out != "" {
		final = out
		if _, err := os.Lstat(final); err == nil {
			return nil, fmt.Errorf("generating delta %s: %s already exists", name, final)
		}
	}
	// The delta is made in a directory beside where it goes, named for
	// it, so that the next generation to the same place can tell what a
	// killed one left there from anyone else's files, and remove it.
	prefix := "."
	if opts.Dir != "" {
		clean := filepath.Clean(opts.Dir)
		base := filepath.Base(clean)
		// Room in NAME_MAX (255) for the dots and the random suffix.
		base = base[:min(len(base), 200)]
		parent, prefix = filepath.Dir(clean), "."+base+"."
		cleanGenerations(parent, prefix, false)
	} else {
		// A single file's parts are made in deltas/ too, so that a
		// generation killed part way leaves nothing beside the file.
		if err := durable.MkdirAll(parent, durable.DirPerm, !opts.NoSync); err != nil {
			return nil, fmt.Errorf("creating %s: %w", parent, err)
		}
		cleanTemp(r)
	}
	// Made under a name cleanTemp leaves alone (for a minute), locked,
	// then renamed: cleanTemp in another process never sees it unlocked.
	fresh, err := os.MkdirTemp(parent, prefix+"mk-")
	if err != nil {
		return nil, fmt.Errorf("generating delta %s: %w", name, err)
	}
	tmp := filepath.Join(parent, prefix+"new-"+strings.TrimPrefix(filepath.Base(fresh), prefix+"mk-"))
	defer os.RemoveAll(fresh)
	defer os.RemoveAll(tmp) // the new delta until it is renamed into place; then the one it replaced, or nothing
	// Held until the end, so cleanTemp in another process leaves it alone.
	tl, err := os.Open(fresh)
	if err != nil {
		return nil, err
	}
	defer tl.Close()
	if err := unix.Flock(int(tl.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, fmt.Errorf("locking %s: %w", fresh, err)
	}
	if err := os.Rename(fresh, tmp); err != nil {
		return nil, fmt.Errorf("generating delta %s: %w", name, err)
	}
	g := &generator{ctx: ctx, r: r, from: from, opts: &opts, dir: tmp}
	defer g.close()
	if err := g.run(items); err != nil {
		return nil, fmt.Errorf("generating delta %s: %w", name, err)
	}
	sb.Parts = g.parts
	sort.Slice(g.fallbacks, func(i, j int) bool { return bytes.Compare(g.fallbacks[i].ID[:], g.fallbacks[j].ID[:]) < 0 })
	sb.Fallbacks = g.fallbacks
	raw := sb.Encode()
	if err := writeFile(filepath.Join(tmp, SuperblockFile), raw, !opts.NoSync); err != nil {
		return nil, err
	}
	var sig []byte
	if len(opts.SignKeys) > 0 {
		if sig, err = sign.SignDetached(raw, opts.SignKeys...); err != nil {
			return nil, fmt.Errorf("signing delta %s: %w", name, err)
		}
		if err := writeFile(filepath.Join(tmp, SignatureFile), sig, !opts.NoSync); err != nil {
			return nil, err
		}
	}
	if opts.File != "" {
		if err := writeSingleTo(single, tmp, opts.File, raw, sig, len(sb.Parts), !opts.NoSync); err != nil {
			return nil, fmt.Errorf("generating delta %s: %w", name, err)
		}
		return sb, nil
	}
	if !opts.NoSync {
		if err := durable.SyncDir(tmp); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	// One rename puts it in place; a delta of the same name is swapped
	// out in the same step (readers see the old delta or the new one) and
	// removed with tmp.
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) && opts.Dir == "" {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
	}
	if err != nil {
		return nil, fmt.Errorf("publishing delta %s: %w", name, &os.LinkError{Op: "rename", Old: tmp, New: final, Err: err})
	}
	if !opts.NoSync {
		if err := durable.SyncDir(parent); err != nil {
			return nil, err
		}
	}
	if opts.Dir == "" {
		if _, err := Reindex(ctx, r, ReindexOptions{To: []repo.ID{name.To}, NoSync: opts.NoSync}); err != nil {
			return nil, fmt.Errorf("delta %s: %w", name, err)
		}
	}
	return sb, nil
}

func writeFile(p string, data []byte, sync bool) error {
	f, err := createServed(p)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// writeSingle writes the single-file delta final from the delta directory
// dir: into a new file (durable.CreateNew; unnamed where it can be), synced,
// then named final, never over an existing file, and the directory synced.
func writeSingle(dir, final string, raw, sig []byte, parts int, sync, unnamed bool) error {
	f, err := durable.CreateNew(final, unnamed)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeSingleTo(f, dir, final, raw, sig, parts, sync)
}

// writeSingleTo is writeSingle into f, made by durable.CreateNew(final).
func writeSingleTo(f *durable.NewFile, dir, final string, raw, sig []byte, parts int, sync bool) error {
	head := []byte(fileMagic)
	for _, s := range [][]byte{raw, sig} {
		head = binary.AppendUvarint(head, uint64(len(s)))
		head = append(head, s...)
	}
	if _, err := f.Write(head); err != nil {
		return fmt.Errorf("writing %s: %w", final, err)
	}
	for i := range parts {
		p, err := os.Open(filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			return err
		}
		_, err = io.Copy(f, p)
		p.Close()
		if err != nil {
			return fmt.Errorf("writing %s: %w", final, err)
		}
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("syncing %s: %w", final, err)
		}
	}
	return f.Link(sync)
}

// indexFrom indexes the from-commit c; zero gives the empty index of a
// delta from scratch.
func indexFrom(ctx context.Context, r *repo.Repo, c repo.ID) (*fromIndex, error) {
	from := &fromIndex{objects: map[ObjectRef]bool{}, names: map[string]repo.ID{}}
	if c.IsZero() {
		return from, nil
	}
	fc, err := r.ReadCommit(c)
	if err != nil {
		return nil, fmt.Errorf("its from-commit: %w", err)
	}
	from.objects[ObjectRef{repo.KindDirMeta, fc.RootMeta}] = true
	from.root = fc.RootTree
	if err := from.walk(ctx, r, fc.RootTree); err != nil {
		return nil, err
	}
	return from, nil
}

// walk indexes the tree of the from-commit. A subtree met again (at
// another path) adds nothing, so it is read once.
func (f *fromIndex) walk(ctx context.Context, r *repo.Repo, tree repo.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ref := ObjectRef{repo.KindDirTree, tree}
	if f.objects[ref] {
		return nil
	}
	f.objects[ref] = true
	t, err := r.ReadDirTree(tree)
	if err != nil {
		return err
	}
	for _, e := range t.Files {
		f.objects[ObjectRef{repo.KindFile, e.ID}] = true
		if _, ok := f.names[e.Name]; !ok {
			f.names[e.Name] = e.ID
		}
	}
	for _, d := range t.Dirs {
		f.objects[ObjectRef{repo.KindDirMeta, d.MetaID}] = true
		if err := f.walk(ctx, r, d.TreeID); err != nil {
			return err
		}
	}
	return nil
}

// collect lists the objects of commit to that from lacks: metadata first in
// walk order, then files grouped by extension and name, so that similar
// content sits together in a part's compression window. It walks from's
// tree alongside to's, path by path, to give each dirtree and file the
// object at its path in from, if any, as its base.
func collect(ctx context.Context, r *repo.Repo, to *repo.Commit, from *fromIndex) ([]item, error) {
	seen := map[ObjectRef]bool{}
	var metas, files []item
	add := func(ref ObjectRef, p string, base repo.ID) bool {
		if seen[ref] || from.objects[ref] {
			return false
		}
		seen[ref] = true
		if ref.Kind == repo.KindFile {
			files = append(files, item{ref, p, base})
		} else {
			metas = append(metas, item{ref, p, base})
		}
		return true
	}
	// fromTree is the dirtree at dir in from, zero if from has none there.
	var walk func(tree, fromTree repo.ID, dir string) error
	walk = func(tree, fromTree repo.ID, dir string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !add(ObjectRef{repo.KindDirTree, tree}, dir, fromTree) {
			return nil // from has it, and so everything below it
		}
		t, err := r.ReadDirTree(tree)
		if err != nil {
			return err
		}
		ft := &repo.DirTree{}
		if !fromTree.IsZero() {
			if ft, err = r.ReadDirTree(fromTree); err != nil {
				return err
			}
		}
		for _, e := range t.Files {
			var base repo.ID
			// Both lists are sorted by name.
			if i := sort.Search(len(ft.Files), func(i int) bool { return ft.Files[i].Name >= e.Name }); i < len(ft.Files) && ft.Files[i].Name == e.Name {
				base = ft.Files[i].ID
			}
			add(ObjectRef{repo.KindFile, e.ID}, path.Join(dir, e.Name), base)
		}
		for _, d := range t.Dirs {
			var base repo.ID
			if i := sort.Search(len(ft.Dirs), func(i int) bool { return ft.Dirs[i].Name >= d.Name }); i < len(ft.Dirs) && ft.Dirs[i].Name == d.Name {
				base = ft.Dirs[i].TreeID
			}
			add(ObjectRef{repo.KindDirMeta, d.MetaID}, path.Join(dir, d.Name), repo.ID{})
			if err := walk(d.TreeID, base, path.Join(dir, d.Name)); err != nil {
				return err
			}
		}
		return nil
	}
	add(ObjectRef{repo.KindDirMeta, to.RootMeta}, "/", repo.ID{})
	if err := walk(to.RootTree, from.root, "/"); err != nil {
		return nil, err
	}
	sort.SliceStable(files, func(i, j int) bool {
		a, b := files[i].path, files[j].path
		if ea, eb := path.Ext(a), path.Ext(b); ea != eb {
			return ea < eb
		}
		if na, nb := path.Base(a), path.Base(b); na != nb {
			return na < nb
		}
		return a < b
	})
	return append(metas, files...), nil
}

// generator writes the parts of one delta.
type generator struct {
	ctx       context.Context
	r         *repo.Repo
	from      *fromIndex
	opts      *GenerateOptions
	dir       string
	parts     []Part
	fallbacks []Fallback

	est      *zstd.Encoder         // estimates the compressed size of whole content (estimate)
	patchEnc map[int]*zstd.Encoder // patch encoders by window size
	cur      *partWriter

	// spool holds the raw content of the part being written until it is
	// closed, when it is compressed with a window sized by what the part
	// holds; partEnc (window partEncWindow) is kept for the next part.
	spool         *os.File
	partEnc       *zstd.Encoder
	partEncWindow int
}

// partWriter is the part being written: a zstd stream into a file,
// hashed as it is written. A part whose first entry fits in
// MaxPartSize is spooled raw (buf over generator.spool) and compressed
// when closed; one with a larger object is compressed as it is written
// (enc, into f).
type partWriter struct {
	f    *os.File
	h    *hash.Hasher
	size int64
	enc  *zstd.Encoder
	buf  *bufio.Writer
	raw  int64
	objs []ObjectRef
}

func (p *partWriter) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.h.Write(b[:n])
	p.size += int64(n)
	return n, err
}

type rawCounter struct {
	w io.Writer
	n *int64
}

func (c rawCounter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	*c.n += int64(n)
	return n, err
}

func (g *generator) close() {
	if g.cur != nil && g.cur.enc != nil {
		g.cur.enc.Close()
		g.cur.f.Close()
	}
	for _, enc := range []*zstd.Encoder{g.est, g.partEnc} {
		if enc != nil {
			enc.Close()
		}
	}
	for _, enc := range g.patchEnc {
		enc.Close()
	}
	if g.spool != nil {
		g.spool.Close()
	}
}

func (g *generator) run(items []item) error {
	for _, it := range items {
		if err := g.ctx.Err(); err != nil {
			return err
		}
		if err := g.add(it); err != nil {
			return err
		}
	}
	return g.finishPart()
}

// part returns the part to write an entry of about n raw bytes into,
// closing the current one first if the entry would overflow it.
func (g *generator) part(n int64) (io.Writer, error) {
	if g.cur != nil && g.cur.raw > 0 && g.cur.raw+n > g.opts.MaxPartSize {
		if err := g.finishPart(); err != nil {
			return nil, err
		}
	}
	if g.cur == nil {
		p := &partWriter{h: hash.New()}
		if n <= g.opts.MaxPartSize {
			// Nothing more than MaxPartSize goes into this part: spool it.
			if g.spool == nil {
				f, err := os.CreateTemp(g.dir, ".raw-")
				if err != nil {
					return nil, err
				}
				os.Remove(f.Name())
				g.spool = f
			}
			if err := g.spool.Truncate(0); err != nil {
				return nil, err
			}
			if _, err := g.spool.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			p.buf = bufio.NewWriterSize(g.spool, 256<<10)
			g.cur = p
			return rawCounter{p.buf, &p.raw}, nil
		}
		f, err := g.createPart()
		if err != nil {
			return nil, err
		}
		p.f = f
		p.enc, err = zstd.NewWriter(p, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(partWindow),
			zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		if err != nil {
			f.Close()
			return nil, err
		}
		g.cur = p
	}
	if g.cur.buf != nil {
		return rawCounter{g.cur.buf, &g.cur.raw}, nil
	}
	return rawCounter{g.cur.enc, &g.cur.raw}, nil
}

func (g *generator) createPart() (*os.File, error) {
	return createServed(filepath.Join(g.dir, strconv.Itoa(len(g.parts))))
}

// createServed creates the new file p with mode 0644 whatever the umask,
// as the repository's objects are: a server must be able to read what a
// pull fetches.
func createServed(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		if err = f.Chmod(0o644); err != nil {
			f.Close()
		}
	}
	return f, err
}

// partWindowFor is the zstd window of a spooled part of raw bytes: the
// smallest power of two holding them (at least zstd's 1 KiB), at most
// partWindow. The encoder's history holds a window and one block (it
// would hold two windows otherwise), and the decoder's as much, so a
// part of a few MiB costs a few MiB to write and to read, not 64.
func partWindowFor(raw int64) int {
	w := zstd.MinWindowSize
	for w < partWindow && int64(w) < raw {
		w <<= 1
	}
	return w
}

// compressSpool compresses the spooled part p into a new part file.
func (g *generator) compressSpool(p *partWriter) error {
	if err := p.buf.Flush(); err != nil {
		return err
	}
	if _, err := g.spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	f, err := g.createPart()
	if err != nil {
		return err
	}
	p.f = f
	w := partWindowFor(p.raw)
	if g.partEnc != nil && g.partEncWindow == w {
		g.partEnc.Reset(p)
	} else {
		if g.partEnc != nil {
			g.partEnc.Close()
			g.partEnc = nil
		}
		// The lower-memory history (a window and a block, not two windows)
		// is moved down once the window is full, block by block; a
		// spooled part never fills it (p.raw <= w) unless MaxPartSize is
		// over partWindow.
		enc, err := zstd.NewWriter(p, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(w),
			zstd.WithLowerEncoderMem(p.raw <= int64(w)), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		if err != nil {
			return err
		}
		g.partEnc, g.partEncWindow = enc, w
	}
	// Compressing a full part takes seconds: a cancelled delta stops
	// within a few milliseconds instead.
	if _, err := io.Copy(g.partEnc, ctxread.Reader(g.ctx, io.LimitReader(g.spool, p.raw))); err != nil {
		return err
	}
	return g.partEnc.Close()
}

func (g *generator) finishPart() error {
	p := g.cur
	if p == nil {
		return nil
	}
	g.cur = nil
	var err error
	if p.buf != nil {
		err = g.compressSpool(p)
	} else {
		err = p.enc.Close()
	}
	if err == nil && !g.opts.NoSync {
		err = p.f.Sync()
	}
	if p.f != nil {
		if cerr := p.f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("writing part %d: %w", len(g.parts), err)
	}
	g.parts = append(g.parts, Part{Size: uint64(p.size), RawSize: uint64(p.raw), Sum: repo.ID(p.h.Sum()), Objects: p.objs})
	return nil
}

// add writes one object's entry:
//
//	u8 how (0 whole, 1 patch) · [patch: id base] · [file: bytes header]
//	whole: dirtree/dirmeta: bytes encoding; file: its content (header's size)
//	patch: bytes zstd frame whose dictionary is the base's content
func (g *generator) add(it item) error {
	var entry []byte
	var body io.Reader // whole content streamed after entry
	var bodyLen int64
	if it.ref.Kind == repo.KindFile {
		h, rc, err := g.r.OpenFile(it.ref.ID)
		if err != nil {
			return err
		}
		defer rc.Close()
		hdr := repo.AppendFileHeader(nil, h)
		if h.Type == repo.TypeRegular && h.Size <= uint64(g.opts.MaxPatchSize) && !g.opts.NoPatches {
			if base, ok := g.fileBase(it); ok {
				content, err := readSized(rc, h.Size)
				if err != nil {
					return err
				}
				if patch, baseID, ok, err := g.filePatch(base, content); err != nil {
					return err
				} else if ok {
					entry = append(entry, entryPatch)
					entry = append(entry, baseID[:]...)
					entry = appendBytes(entry, hdr)
					entry = appendBytes(entry, patch)
				} else {
					body, bodyLen = bytes.NewReader(content), int64(len(content))
				}
			}
		}
		if entry == nil && h.Type == repo.TypeRegular && g.opts.MinFallbackSize > 0 && h.Size > uint64(g.opts.MinFallbackSize) {
			g.fallbacks = append(g.fallbacks, Fallback{ID: it.ref.ID, Size: h.Size})
			return nil
		}
		if entry == nil {
			entry = append(entry, entryWhole)
			entry = appendBytes(entry, hdr)
			if body == nil {
				body, bodyLen = rc, int64(h.Size)
			}
		}
	} else {
		data, err := g.r.ReadRaw(it.ref.Kind, it.ref.ID)
		if err != nil {
			return err
		}
		if base := it.base; !base.IsZero() && it.ref.Kind == repo.KindDirTree && !g.opts.NoPatches {
			bdata, err := g.r.ReadRaw(repo.KindDirTree, base)
			if err != nil {
				return err
			}
			if patch, err := g.encodePatch(bdata, data); err != nil {
				return err
			} else if n, err := g.estimate(data); err != nil {
				return err
			} else if len(patch) < n {
				entry = append(entry, entryPatch)
				entry = append(entry, base[:]...)
				entry = appendBytes(entry, patch)
			}
		}
		if entry == nil {
			entry = append(entry, entryWhole)
			entry = appendBytes(entry, data)
		}
	}
	w, err := g.part(int64(len(entry)) + bodyLen)
	if err != nil {
		return err
	}
	if _, err := w.Write(entry); err != nil {
		return err
	}
	if body != nil {
		n, err := io.Copy(w, io.LimitReader(body, bodyLen))
		if err == nil && n != bodyLen {
			err = fmt.Errorf("file object %s: content ended after %d of %d bytes", it.ref.ID, n, bodyLen)
		}
		if err != nil {
			return err
		}
	}
	g.cur.objs = append(g.cur.objs, it.ref)
	return nil
}

// fileBase picks the file of the from-commit the file it is patched
// against: the one at the same path, else one with the same name.
func (g *generator) fileBase(it item) (repo.ID, bool) {
	if !it.base.IsZero() {
		return it.base, true
	}
	id, ok := g.from.names[path.Base(it.path)]
	return id, ok
}

// filePatch encodes content as a patch against the file object base, and
// reports whether the patch is smaller than the content compressed alone.
func (g *generator) filePatch(base repo.ID, content []byte) ([]byte, repo.ID, bool, error) {
	h, rc, err := g.r.OpenFile(base)
	if err != nil {
		return nil, base, false, err
	}
	defer rc.Close()
	if h.Type != repo.TypeRegular || h.Size == 0 || h.Size > uint64(g.opts.MaxPatchSize) {
		return nil, base, false, nil
	}
	bdata, err := readSized(rc, h.Size)
	if err != nil {
		return nil, base, false, err
	}
	patch, err := g.encodePatch(bdata, content)
	if err != nil {
		return nil, base, false, err
	}
	// A patch under an eighth of the content beats compressing it alone;
	// only closer cases are worth compressing the content to compare.
	if len(patch) < len(content)/8 {
		return patch, base, true, nil
	}
	n, err := g.estimate(content)
	if err != nil {
		return nil, base, false, err
	}
	return patch, base, len(patch) < n, nil
}

// readSized reads the content of a file object of size bytes (and one more,
// if the object holds more) into a buffer it fills: io.ReadAll would grow
// one to up to twice that, for files of up to 64 MiB here.
func readSized(r io.Reader, size uint64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(r, int64(size)+1))
	return buf.Bytes(), err
}

// estimate returns the size of data compressed alone at the best level,
// making the estimating encoder if shed dropped it.
func (g *generator) estimate(data []byte) (int, error) {
	if g.est == nil {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		if err != nil {
			return 0, err
		}
		g.est = enc
	}
	return len(g.est.EncodeAll(data, nil)), nil
}

// shed drops the encoders kept for later entries (the estimating one, the
// shared patch encoder and the last part's), to be made again when next
// needed. A large patch calls it first: its own encoder and history take
// up to 170 MiB, and the kept ones up to 150 MiB more (tables of about
// 36 MiB for each best-level encoder, a part's history of up to 64 MiB),
// which on /usr took generation over 256 MiB.
func (g *generator) shed() {
	for _, enc := range []*zstd.Encoder{g.est, g.partEnc} {
		if enc != nil {
			enc.Close()
		}
	}
	for _, enc := range g.patchEnc {
		enc.Close()
	}
	g.est, g.partEnc, g.partEncWindow, g.patchEnc = nil, nil, 0, nil
}

// encodePatch compresses target with base as a raw zstd dictionary, with a
// window spanning both so that every byte of base can be referred to.
// Creating an encoder at the best level allocates tens of MB whatever the
// window, which for the many small patches of an update cost more than the
// patching; so small patches share one encoder (of window
// keptPatchWindow), given each patch's base on reset. Larger ones get an
// encoder of their own, closed after: kept, its first reset would give it
// a second encoder (for streams) and a second copy of the dictionary's
// tables, 68 MiB more at the best level.
//
// The shared encoder works at the better level, not the best: each reset
// with a new dictionary clears and copies the best level's 32 MiB match
// table (about 10 ms whatever the base's size), which made generating an
// update of /usr/local/go take 4.5 s instead of 0.8 s, while its patches
// came out 13 bytes (0.03%) smaller. Larger patches keep the best level.
func (g *generator) encodePatch(base, target []byte) ([]byte, error) {
	w := keptPatchWindow
	for w < len(base)+len(target) {
		w <<= 1
	}
	dict := zstd.WithEncoderDictRaw(patchDict, base)
	if enc := g.patchEnc[w]; enc != nil {
		if err := enc.ResetWithOptions(nil, dict); err != nil {
			return nil, err
		}
		return enc.EncodeAll(target, nil), nil
	}
	level := zstd.SpeedBestCompression
	if w <= keptPatchWindow {
		level = zstd.SpeedBetterCompression
	} else {
		g.shed()
	}
	// Base and result fit in the window, so the lower-memory history (a
	// window and a block, where it would be two windows) is never moved.
	enc, err := zstd.NewWriter(nil, dict, zstd.WithEncoderLevel(level), zstd.WithLowerEncoderMem(w > keptPatchWindow),
		zstd.WithWindowSize(w), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, err
	}
	if w > keptPatchWindow {
		defer enc.Close()
		return enc.EncodeAll(target, nil), nil
	}
	if g.patchEnc == nil {
		g.patchEnc = map[int]*zstd.Encoder{}
	}
	g.patchEnc[w] = enc
	return enc.EncodeAll(target, nil), nil
}
