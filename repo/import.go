package repo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/hash"
)

// What a pull needs from the store beyond what commit uses: objects that
// arrive from elsewhere are checked before they are staged, commits can be
// marked partial while their objects are missing, and remotes live in config
// sections.

// WriteFileVerified stores a file object that came from outside the
// repository (another repository, a server). It reads exactly h.Size bytes of
// content from src, requires src to end there, and checks that header and
// content hash to id; only then is the object staged. It reports whether the
// object was new. Content that does not match is a *CorruptObjectError and
// stages nothing; errors from src are returned wrapped.
func (t *Txn) WriteFileVerified(h *FileHeader, id ID, src io.Reader) (bool, error) {
	// Before readContent, which may spool through the staging directory.
	if err := t.live(); err != nil {
		return false, err
	}
	if err := t.checkStorable(h); err != nil {
		return false, fmt.Errorf("file object %s: %w", id, err)
	}
	c, err := t.readContent(h, src)
	defer c.close()
	if err != nil {
		return false, importReadError(id, c.n, h.Size, err)
	}
	if err := expectEnd(id, src); err != nil {
		return false, err
	}
	if c.id != id {
		return false, &CorruptObjectError{Kind: KindFile, ID: id, Actual: c.id}
	}
	return t.storeContent(h, c)
}

// WriteArchiveVerified stores a file object that came from outside the
// repository in its archive form (docs/FORMAT.md §6.1): header h, then
// compression byte comp, then payload, the rest of the object. It is
// checked as WriteFileVerified checks content, and reports whether the
// object was new. An archive repository keeps a zstd payload as it came,
// written as it is read and decompressed only to be hashed, so that a
// mirror does not compress again; the staged object is removed unless
// the content hashes to id and nothing follows the zstd stream. Other
// modes store the decompressed content. In every mode a payload may be no
// larger than zstd makes of incompressible content (MaxPayload), so that
// padding can neither grow the store nor be read without end.
func (t *Txn) WriteArchiveVerified(h *FileHeader, id ID, comp byte, payload io.Reader) (bool, error) {
	switch {
	case comp == compNone:
		return t.WriteFileVerified(h, id, payload)
	case comp != compZstd || h.Type != TypeRegular:
		return false, &CorruptObjectError{Kind: KindFile, ID: id, Reason: fmt.Sprintf("unknown compression %d for a %s", comp, h.Type)}
	}
	d, err := importDecoder()
	if err != nil {
		return false, err
	}
	defer func() { d.Reset(nil); importDecs.Put(d) }()
	if t.r.mode != ModeArchive {
		// The same bound on what is read: padding (skippable frames)
		// would otherwise be read, and a resumable source keep it, for
		// ever.
		kept := &keptPayload{r: payload, w: io.Discard, left: MaxPayload(h.Size)}
		if err := d.Reset(kept); err != nil {
			return false, &CorruptObjectError{Kind: KindFile, ID: id, Reason: err.Error()}
		}
		dec := &recordedReader{r: d, size: h.Size}
		isNew, err := t.WriteFileVerified(h, id, dec)
		switch {
		case kept.over:
			return false, payloadTooLarge(id, h.Size)
		case kept.rerr != nil && err != nil:
			return false, fmt.Errorf("reading file object %s: %w", id, kept.rerr)
		case dec.err != nil && err != nil:
			// The source read fine: its bytes are not a zstd stream.
			reason := dec.err.Error()
			if dec.n >= h.Size {
				reason = "after the content: " + reason
			}
			return false, &CorruptObjectError{Kind: KindFile, ID: id, Reason: reason}
		}
		return isNew, err
	}
	if err := t.checkStorable(h); err != nil {
		return false, fmt.Errorf("file object %s: %w", id, err)
	}
	ok, err := t.claim(KindFile, id)
	if err != nil || !ok {
		return false, err
	}
	err = t.stageFile(h, id, nil, func(f *stagedFile) error {
		if _, err := f.Write([]byte{compZstd}); err != nil {
			return err
		}
		kept := &keptPayload{r: payload, w: f, left: MaxPayload(h.Size)}
		hs := hash.New()
		hs.Write(AppendFileHeader(nil, h))
		var n int64
		err := d.Reset(kept)
		if err == nil {
			n, err = io.Copy(hs, io.LimitReader(d, int64(h.Size)))
		}
		if err == nil && uint64(n) == h.Size {
			// The stream must end with the content. Only what the
			// decoder read is kept, so nothing unread can follow it.
			var one [1]byte
			if m, end := io.ReadFull(d, one[:]); m > 0 {
				return &CorruptObjectError{Kind: KindFile, ID: id, Reason: "content is longer than its header says"}
			} else if !errors.Is(end, io.EOF) {
				err = fmt.Errorf("after the content: %w", end)
			}
		}
		switch {
		case kept.over:
			return payloadTooLarge(id, h.Size)
		case kept.werr != nil:
			return kept.werr
		case kept.rerr != nil:
			return fmt.Errorf("reading file object %s: %w", id, kept.rerr)
		case uint64(n) != h.Size && (err == nil || errors.Is(err, io.ErrUnexpectedEOF)):
			return &CorruptObjectError{Kind: KindFile, ID: id, Reason: fmt.Sprintf("content ended after %d of %d bytes", n, h.Size)}
		case err != nil:
			return &CorruptObjectError{Kind: KindFile, ID: id, Reason: err.Error()}
		}
		if got := ID(hs.Sum()); got != id {
			return &CorruptObjectError{Kind: KindFile, ID: id, Actual: got}
		}
		return nil
	})
	if ce := (*CorruptObjectError)(nil); errors.As(err, &ce) {
		return false, ce // without the staging path writeStaged adds
	}
	return err == nil, err
}

// payloadTooLarge is the error of a payload longer than MaxPayload(size).
func payloadTooLarge(id ID, size uint64) error {
	return &CorruptObjectError{Kind: KindFile, ID: id,
		Reason: fmt.Sprintf("compressed payload is larger than %d bytes, the most zstd makes of %d bytes", MaxPayload(size), size)}
}

// MaxPayload is the largest zstd payload an archive object of size bytes
// of content may keep as received: what zstd makes of incompressible
// content (its frame and block headers added), with room to spare.
func MaxPayload(size uint64) uint64 { return size + size/128 + 1024 }

// recordedReader counts what its reader gave and remembers its error,
// other than an end, or an early end before size bytes (the caller reports
// a short read). An early end after them is a frame cut short after the
// content, which makes the payload no zstd stream.
type recordedReader struct {
	r    io.Reader
	size uint64
	n    uint64
	err  error
}

func (d *recordedReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.n += uint64(n)
	if err != nil && err != io.EOF && (err != io.ErrUnexpectedEOF || d.n >= d.size) {
		d.err = err
	}
	return n, err
}

// keptPayload reads a payload, writing each byte read to w (the staged
// object) and failing once more than left bytes came.
type keptPayload struct {
	r    io.Reader
	w    io.Writer
	left uint64
	over bool  // the payload was longer than allowed
	werr error // w failed (a full disk)
	rerr error // r failed, other than at its end
}

func (k *keptPayload) Read(p []byte) (int, error) {
	if k.over || k.werr != nil {
		return 0, errPayload
	}
	n, err := k.r.Read(p)
	if err != nil && err != io.EOF {
		k.rerr = err
	}
	if uint64(n) > k.left {
		k.over = true
		return 0, errPayload
	}
	k.left -= uint64(n)
	if n > 0 {
		if _, werr := k.w.Write(p[:n]); werr != nil {
			k.werr = werr
			return 0, errPayload
		}
	}
	return n, err
}

// errPayload stops the decoder when keptPayload cannot go on; the reason
// is in the keptPayload.
var errPayload = errors.New("payload not kept")

// MaxImportWindow is the largest zstd window of a payload that comes
// from outside the repository (WriteArchiveVerified): twice the 8 MiB
// otree wrote before its 4 MiB windows. A frame asking for more is
// refused, since every parallel fetch decoding one would hold that much
// history (128 MiB windows made a pull of 3 MB objects take 280 MB).
const MaxImportWindow = 16 << 20

// importDecs holds decoders for payloads from outside: their window is
// bounded, so an object cannot ask for much memory.
var importDecs sync.Pool

func importDecoder() (*zstd.Decoder, error) {
	if d, ok := importDecs.Get().(*zstd.Decoder); ok {
		return d, nil
	}
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(2*MaxImportWindow), zstd.WithDecoderMaxWindow(MaxImportWindow))
}

func importReadError(id ID, n, size uint64, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &CorruptObjectError{Kind: KindFile, ID: id, Reason: fmt.Sprintf("content ended after %d of %d bytes", n, size)}
	}
	var se *spoolError
	if errors.As(err, &se) {
		return fmt.Errorf("file object %s: %w", id, err)
	}
	return fmt.Errorf("reading content of file object %s: %w", id, err)
}

// expectEnd requires src to have nothing after the content: an object with
// extra bytes is not the object its id names.
func expectEnd(id ID, src io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(src, one[:])
	if n > 0 {
		return &CorruptObjectError{Kind: KindFile, ID: id, Reason: "content is longer than its header says"}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading end of file object %s: %w", id, err)
	}
	return nil
}

// IsCommitPartial reports whether commit is marked partial: it may lack
// objects it needs (state/<id>.commitpartial).
func (r *Repo) IsCommitPartial(commit ID) bool { return r.isCommitPartial(commit) }

// MarkCommitPartial durably marks commit partial, so that fsck and prune
// accept its missing objects and a later pull knows to complete it.
func (r *Repo) MarkCommitPartial(commit ID) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	return r.markCommitPartial(commit)
}

// MarkCommitPartialNoSync marks commit partial as MarkCommitPartial does,
// without syncing the mark: for a transaction begun with NoSync, whose
// objects are not synced either (a durable transaction later syncs the
// filesystem, the mark with it). OSTree's pull --disable-fsync does not
// sync its marks.
func (r *Repo) MarkCommitPartialNoSync(commit ID) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	return r.writePartialMarker(commit, "", false)
}

// UnmarkCommitPartial removes the partial marker of commit, once every
// object it needs is durable. A commit that was not marked is no error.
func (r *Repo) UnmarkCommitPartial(commit ID) error {
	return r.UnmarkCommitsPartial([]ID{commit})
}

// UnmarkCommitsPartial removes the partial markers of commits, as
// UnmarkCommitPartial does for each, with one sync for them all: a pull of
// a long history completes thousands of commits at once.
func (r *Repo) UnmarkCommitsPartial(commits []ID) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	if len(commits) == 0 {
		return nil
	}
	// The objects that complete the commits may have been published
	// without a sync (TxnOptions.NoSync): the marks go only once they
	// are durable, as a ref moves only then.
	if r.Fsync() {
		if err := r.syncUnsynced(); err != nil {
			return fmt.Errorf("unmarking partial commit %s: %w", commits[0], err)
		}
	}
	removed := false
	for _, c := range commits {
		err := os.Remove(r.partialStatePath(c))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("unmarking partial commit %s: %w", c, err)
		}
		removed = true
	}
	if !removed || !r.Fsync() {
		return nil
	}
	return durable.SyncDir(r.Path("state"))
}

// Sections returns the names of the config's sections, sorted.
func (c *Config) Sections() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.sections))
	for s := range c.sections {
		names = append(names, s)
	}
	sort.Strings(names)
	return names
}

// Section returns a copy of one section's keys and values (nil if absent).
func (c *Config) Section(name string) map[string]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.sections[name]
	if !ok {
		return nil
	}
	out := make(map[string]string, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}
