package delta

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

// ErrFromMissing is matched by the error of applying a delta whose
// from-commit is not stored here complete; fetching objects one by one is
// the way to get its to-commit then.
var ErrFromMissing = errors.New("the delta's from-commit is not stored here complete")

// Fetch hands fn the content of one file of a delta directory: a part,
// named by its index in decimal ("0", "1", ...). fn may be called again
// when a transfer is retried; it starts over each time.
type Fetch func(ctx context.Context, file string, fn func(io.Reader) error) error

// FetchFallbacks, given to Apply, stages into the transaction the fallback
// file objects of a delta (listed in the superblock, sorted by id) that
// are not stored here, fetched as ordinary objects and verified as such.
type FetchFallbacks func(ctx context.Context, missing []Fallback) error

// FallbackMissingError is the error of applying a delta whose fallback
// objects are neither stored here nor fetchable (apply-offline): they
// must be pulled first, or the delta generated with a MinFallbackSize of 0.
type FallbackMissingError struct {
	Name    Name       // the delta
	Missing []Fallback // the fallback objects not stored here
}

// Error names the delta and up to ten of the missing objects.
func (e *FallbackMissingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "delta %s leaves out %d fallback object%s that this repository does not have (files over the minimum fallback size it was generated with, for a pull to fetch): ",
		e.Name, len(e.Missing), map[bool]string{true: "", false: "s"}[len(e.Missing) == 1])
	const shown = 10
	for i, f := range e.Missing {
		if i == shown {
			fmt.Fprintf(&b, ", and %d more", len(e.Missing)-shown)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "file %s (%d bytes)", f.ID, f.Size)
	}
	return b.String()
}

// FileCheck, given to Apply, may refuse a file object by its header before
// it is staged.
type FileCheck func(id repo.ID, h *repo.FileHeader) error

// Apply stages into txn every object of the delta sb: its fallback
// objects not stored here are staged by fallbacks (with fallbacks nil,
// they must all be stored here, else a *FallbackMissingError is returned
// before any part is read); each part not stored already is fetched
// whole into an unlinked file, its size and BLAKE3 checked against the
// superblock before it is decompressed, every object in it decoded
// strictly and hashed against its id before it is staged (and, when check
// is not nil, every file object's header passed by check); then the
// commit is checked to have every object it needs (from the delta or
// already here) and staged last, with its commitmeta (merged into any
// detached metadata already here, which keeps all it has). It writes no
// ref. On
// error the caller aborts txn and nothing is published.
func Apply(ctx context.Context, txn *repo.Txn, sb *Superblock, fetch Fetch, check FileCheck, fallbacks FetchFallbacks) error {
	r := txn.Repo()
	if from := sb.Name.From; !from.IsZero() {
		has, err := r.HasObject(repo.KindCommit, from)
		if err != nil {
			return err
		}
		if !has || r.IsCommitPartial(from) {
			return fmt.Errorf("delta %s: commit %s: %w", sb.Name, from, ErrFromMissing)
		}
	}
	var missing []Fallback
	for _, f := range sb.Fallbacks {
		has, err := txn.Has(repo.KindFile, f.ID)
		if err != nil {
			return err
		}
		if !has {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		if fallbacks == nil {
			return &FallbackMissingError{Name: sb.Name, Missing: missing}
		}
		if err := fallbacks(ctx, missing); err != nil {
			return fmt.Errorf("delta %s: fallback objects: %w", sb.Name, err)
		}
	}
	a := &applier{ctx: ctx, txn: txn, r: r, sb: sb, trees: map[repo.ID]*repo.DirTree{}, check: check}
	for i := range sb.Parts {
		if err := a.part(i, fetch); err != nil {
			return fmt.Errorf("delta %s part %d: %w", sb.Name, i, err)
		}
	}
	c, err := repo.DecodeCommit(sb.Commit)
	if err != nil {
		return fmt.Errorf("delta %s: commit: %w", sb.Name, err)
	}
	if err := a.checkComplete(c); err != nil {
		return fmt.Errorf("delta %s: %w", sb.Name, err)
	}
	if _, err := txn.WriteMeta(repo.KindCommit, sb.Commit); err != nil {
		return err
	}
	if len(sb.CommitMeta) > 0 {
		m, err := repo.DecodeCommitMeta(sb.CommitMeta)
		if err != nil {
			return fmt.Errorf("delta %s: commitmeta: %w", sb.Name, err)
		}
		return writeCommitMeta(txn, sb.Name, m)
	}
	return nil
}

// writeCommitMeta stages the detached metadata m a delta carries for its
// to-commit. Detached metadata already here (signatures made since, or
// fetched) is kept and only added to: a stale or tampered delta cannot
// drop a signature.
func writeCommitMeta(txn *repo.Txn, name Name, m repo.Metadata) error {
	local, err := txn.ReadCommitMeta(name.To)
	if err != nil {
		return fmt.Errorf("delta %s: %w", name, err)
	}
	if local == nil {
		return txn.WriteCommitMeta(name.To, m)
	}
	merged, added, err := sign.MergeMetadata(local, m)
	if err != nil {
		return fmt.Errorf("delta %s: commitmeta: %w", name, err)
	}
	if added == 0 {
		return nil
	}
	return txn.WriteCommitMeta(name.To, merged)
}

// ApplyOfflineOptions configure ApplyOffline.
type ApplyOfflineOptions struct {
	// NoSync skips fsync; only for scratch repositories.
	NoSync bool
	// Trusted, when not empty, requires the delta to carry a valid
	// signature by one of these keys; it is checked before any part is
	// read.
	Trusted []ed25519.PublicKey
}

// ApplyOffline applies the delta at p (see Open: a delta directory, a
// superblock file with the parts beside it, or a single-file delta) into
// r in one transaction. It writes no ref; the commit is then stored and
// can be checked out or given a ref.
func ApplyOffline(ctx context.Context, r *repo.Repo, p string, opts ApplyOfflineOptions) (*Superblock, error) {
	o, err := Open(p)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	if len(opts.Trusted) > 0 {
		if _, err := o.Verify(opts.Trusted); err != nil {
			return nil, err
		}
	}
	txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: opts.NoSync})
	if err != nil {
		return nil, err
	}
	defer txn.Abort()
	if err := Apply(ctx, txn, o.Superblock, o.fetch, nil, nil); err != nil {
		return nil, err
	}
	if err := txn.Commit(); err != nil {
		return nil, err
	}
	return o.Superblock, nil
}

type applier struct {
	ctx   context.Context
	txn   *repo.Txn
	r     *repo.Repo
	sb    *Superblock
	trees map[repo.ID]*repo.DirTree // dirtrees the delta staged
	check FileCheck
}

func newDecoder(r io.Reader, opts ...zstd.DOption) (*zstd.Decoder, error) {
	opts = append([]zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderMaxMemory(2 * maxWindow)}, opts...)
	return zstd.NewReader(r, opts...)
}

// part fetches, checks and unpacks part i, unless every object it yields
// is in the store already: a pull stopped after publishing them (fetch
// may publish what earlier parts staged) goes on from the next part.
func (a *applier) part(i int, fetch Fetch) error {
	p := a.sb.Parts[i]
	if len(p.Objects) > 0 {
		all := true
		for _, o := range p.Objects {
			// Published, not merely staged: checkComplete reads a
			// dirtree no part here gave it from the store.
			has, err := a.r.HasObject(o.Kind, o.ID)
			if err != nil {
				return err
			}
			if !has {
				all = false
				break
			}
		}
		if all {
			return nil
		}
	}
	// The part is kept on disk while it is checked: it counts against the
	// free-space reserve, before any of it is fetched, whatever size a
	// superblock claims.
	release, err := a.txn.ReserveSpace(int64(min(p.Size, math.MaxInt64)))
	if err != nil {
		return fmt.Errorf("part %d (%d bytes): %w", i, p.Size, err)
	}
	defer release()
	// Unlinked at once: nothing is left behind whatever happens.
	f, err := os.CreateTemp(a.r.Path("tmp"), "delta-part-")
	if err != nil {
		return err
	}
	os.Remove(f.Name())
	defer f.Close()
	err = fetch(a.ctx, strconv.Itoa(i), func(body io.Reader) error {
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h := hash.New()
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, int64(p.Size)+1))
		if err != nil {
			return err
		}
		if uint64(n) != p.Size {
			return fmt.Errorf("part is %s bytes, the superblock says %d", sizeWords(n, p.Size), p.Size)
		}
		if got := repo.ID(h.Sum()); got != p.Sum {
			return fmt.Errorf("part hashes to %s, the superblock says %s", got, p.Sum)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dec, err := newDecoder(bufio.NewReaderSize(spooled{f}, 256<<10))
	if err != nil {
		return err
	}
	defer dec.Close()
	lr := &io.LimitedReader{R: decompressed{dec}, N: int64(p.RawSize)}
	br := bufio.NewReaderSize(lr, 256<<10)
	for _, o := range p.Objects {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		if err := a.entry(br, o); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("%s object %s: stream ends early (it decompresses to %d bytes at most, the superblock says %d)", o.Kind, o.ID, int64(p.RawSize)-lr.N, p.RawSize)
			}
			return err
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err != nil {
			return err
		}
		return fmt.Errorf("bytes left after its last object")
	}
	if lr.N != 0 {
		return fmt.Errorf("decompresses to %d bytes, the superblock says %d", int64(p.RawSize)-lr.N, p.RawSize)
	}
	var one [1]byte
	if n, err := (decompressed{dec}).Read(one[:]); n > 0 || (err != nil && err != io.EOF) {
		if err == nil {
			err = fmt.Errorf("decompresses to more than the %d bytes the superblock says", p.RawSize)
		}
		return err
	}
	return nil
}

// decompressed reads a part's stream and tells a failure to decompress it
// (a frame whose window is over the limit, a malformed block) apart from
// its end, so that such a part is not reported as one that ends early.
type decompressed struct{ r io.Reader }

func (d decompressed) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF && !errors.As(err, new(spoolError)) {
		err = fmt.Errorf("does not decompress: %w", err)
	}
	return n, err
}

// spooled reads the part kept on disk while it is unpacked; a failure to
// read it is the disk's, not a stream that does not decompress.
type spooled struct{ r io.Reader }

func (s spooled) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = spoolError{err}
	}
	return n, err
}

// spoolError is a failure to read back the part kept on disk.
type spoolError struct{ err error }

func (e spoolError) Error() string { return "reading back the part kept in tmp/: " + e.err.Error() }
func (e spoolError) Unwrap() error { return e.err }

func sizeWords(n int64, want uint64) string {
	if uint64(n) > want {
		return "more than " + strconv.FormatUint(want, 10)
	}
	return strconv.FormatInt(n, 10)
}

func readUvarint(br *bufio.Reader) (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		b, err := br.ReadByte()
		if err != nil {
			return 0, eofIsTruncation(err)
		}
		if i == 9 && b > 1 {
			break
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, errors.New("uvarint is not minimal")
			}
			return v, nil
		}
	}
	return 0, errors.New("overflowing uvarint")
}

// readBytes reads a length-prefixed field of at most limit bytes; memory
// grows with the bytes that actually arrive, not with the length claimed.
func readBytes(br *bufio.Reader, limit uint64, what string) ([]byte, error) {
	n, err := readUvarint(br)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%s of %d bytes is larger than %d", what, n, limit)
	}
	b, err := io.ReadAll(io.LimitReader(br, int64(n)))
	if err == nil && uint64(len(b)) != n {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

func (a *applier) corrupt(o ObjectRef, format string, args ...any) error {
	return &repo.CorruptObjectError{Kind: o.Kind, ID: o.ID, Reason: fmt.Sprintf(format, args...)}
}

// entry unpacks one object (see generator.add for the layout).
func (a *applier) entry(br *bufio.Reader, o ObjectRef) error {
	how, err := br.ReadByte()
	if err != nil {
		return eofIsTruncation(err)
	}
	var base repo.ID
	switch how {
	case entryWhole:
	case entryPatch:
		if _, err := io.ReadFull(br, base[:]); err != nil {
			return eofIsTruncation(err)
		}
	default:
		return a.corrupt(o, "unknown entry type %d in the delta", how)
	}
	if o.Kind != repo.KindFile {
		return a.meta(br, o, how, base)
	}
	hdr, err := readBytes(br, maxHeader, "file header")
	if err != nil {
		return err
	}
	h, n, err := repo.DecodeFileHeader(hdr)
	if err == nil && n != len(hdr) {
		err = fmt.Errorf("%d bytes after the file header", len(hdr)-n)
	}
	if err != nil {
		return a.corrupt(o, "header: %v", err)
	}
	if a.check != nil {
		if err := a.check(o.ID, h); err != nil {
			return err
		}
	}
	if how == entryWhole {
		_, err := a.txn.WriteFileVerified(h, o.ID, io.LimitReader(br, int64(h.Size)))
		return err
	}
	if h.Type != repo.TypeRegular || h.Size > PatchSizeLimit {
		return a.corrupt(o, "a %s of %d bytes cannot be a patch", h.Type, h.Size)
	}
	bh, rc, err := a.r.OpenFile(base)
	if err != nil {
		return fmt.Errorf("base of file object %s: %w", o.ID, err)
	}
	defer rc.Close()
	if bh.Type != repo.TypeRegular || bh.Size > PatchSizeLimit {
		return a.corrupt(o, "its base %s is a %s of %d bytes, which cannot be a patch base", base, bh.Type, bh.Size)
	}
	bdata, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("base of file object %s: %w", o.ID, err)
	}
	return a.patch(br, o, bdata, func(pd io.Reader) error {
		_, err := a.txn.WriteFileVerified(h, o.ID, pd)
		return err
	})
}

// patch decodes a patch frame against base and hands the result to use.
func (a *applier) patch(br *bufio.Reader, o ObjectRef, base []byte, use func(io.Reader) error) error {
	n, err := readUvarint(br)
	if err != nil {
		return err
	}
	fr := &io.LimitedReader{R: br, N: int64(min(n, 1<<62))}
	pd, err := newDecoder(fr, zstd.WithDecoderDictRaw(patchDict, base))
	if err != nil {
		return err
	}
	defer pd.Close()
	if err := use(pd); err != nil {
		var ce *repo.CorruptObjectError
		if errors.As(err, &ce) || fr.N == 0 {
			return err
		}
		return a.corrupt(o, "patch: %v", err)
	}
	if fr.N != 0 {
		return a.corrupt(o, "%d bytes left after its patch", fr.N)
	}
	return nil
}

// meta unpacks a dirtree or dirmeta: hashed against its id and decoded
// strictly before it is staged.
func (a *applier) meta(br *bufio.Reader, o ObjectRef, how byte, base repo.ID) error {
	var data []byte
	var err error
	if how == entryWhole {
		if data, err = readBytes(br, maxMeta, o.Kind.String()); err != nil {
			return err
		}
	} else {
		bdata, err := a.r.ReadRaw(o.Kind, base)
		if err != nil {
			return fmt.Errorf("base of %s object %s: %w", o.Kind, o.ID, err)
		}
		if len(bdata) > PatchSizeLimit {
			return a.corrupt(o, "its base %s is too large to be a patch base", base)
		}
		err = a.patch(br, o, bdata, func(pd io.Reader) error {
			data, err = io.ReadAll(io.LimitReader(pd, PatchSizeLimit+1))
			if err == nil && len(data) > PatchSizeLimit {
				err = a.corrupt(o, "patch yields more than %d bytes", PatchSizeLimit)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if got := repo.Sum(data); got != o.ID {
		return &repo.CorruptObjectError{Kind: o.Kind, ID: o.ID, Actual: got}
	}
	if o.Kind == repo.KindDirTree {
		t, err := repo.DecodeDirTree(data)
		if err != nil {
			return a.corrupt(o, "%v", err)
		}
		a.trees[o.ID] = t
	} else if _, err := repo.DecodeDirMeta(data); err != nil {
		return a.corrupt(o, "%v", err)
	}
	_, err = a.txn.WriteMeta(o.Kind, data)
	return err
}

// checkComplete walks commit c and requires every object it needs to be
// staged or stored, so that a delta that leaves something out cannot
// publish a commit missing objects.
func (a *applier) checkComplete(c *repo.Commit) error {
	seen := map[ObjectRef]bool{}
	need := func(kind repo.Kind, id repo.ID, at string) (bool, error) {
		k := ObjectRef{kind, id}
		if seen[k] {
			return false, nil
		}
		seen[k] = true
		has, err := a.txn.Has(kind, id)
		if err == nil && !has {
			err = fmt.Errorf("commit %s needs %s object %s (at %s), which neither the delta nor this repository has", a.sb.Name.To, kind, id, at)
		}
		return err == nil, err
	}
	var walk func(tree repo.ID, dir string) error
	walk = func(tree repo.ID, dir string) error {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		if first, err := need(repo.KindDirTree, tree, dir); !first {
			return err
		}
		t := a.trees[tree]
		if t == nil {
			var err error
			if t, err = a.r.ReadDirTree(tree); err != nil {
				return err
			}
		}
		for _, f := range t.Files {
			if _, err := need(repo.KindFile, f.ID, path.Join(dir, f.Name)); err != nil {
				return err
			}
		}
		for _, d := range t.Dirs {
			p := path.Join(dir, d.Name)
			if _, err := need(repo.KindDirMeta, d.MetaID, p); err != nil {
				return err
			}
			if err := walk(d.TreeID, p); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := need(repo.KindDirMeta, c.RootMeta, "/"); err != nil {
		return err
	}
	return walk(c.RootTree, "/")
}
