package delta

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/otree/otree/internal/canon"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// IndexDir is the directory of a repository holding its delta indexes:
// one file per commit that deltas lead to (docs/FORMAT.md §15).
const IndexDir = "delta-indexes"

// indexSuffix ends the name of an index file.
const indexSuffix = ".index"

// MaxIndex bounds the index a reader accepts: 64 bytes a delta, so
// hundreds of thousands of deltas to one commit.
const MaxIndex = 16 << 20

const (
	indexTag     = 'I'
	indexVersion = 1
)

// Index lists the deltas stored in a repository that lead to one commit,
// with the BLAKE3 of each superblock, so that a client that wants the
// commit learns every delta to it with one small request.
type Index struct {
	To repo.ID `json:"to"` // the commit every listed delta yields
	// Deltas are sorted by From (bytewise, so a delta from scratch, the
	// zero id, comes first), each From once.
	Deltas []IndexEntry `json:"deltas"`
}

// IndexEntry is one delta an Index lists.
type IndexEntry struct {
	From       repo.ID `json:"from"`       // zero for a delta from scratch
	Superblock repo.ID `json:"superblock"` // BLAKE3-256 of its superblock file
}

// IndexRef names a stored index and the BLAKE3 of its file, as a summary
// lists it.
type IndexRef struct {
	To    repo.ID `json:"to"`    // the commit the index is for
	Index repo.ID `json:"index"` // BLAKE3-256 of the index file
}

// IndexRel is the path of the index of deltas to commit to, relative to
// the repository root.
func IndexRel(to repo.ID) string { return IndexDir + "/" + to.String() + indexSuffix }

// Encode returns the canonical encoding of x (docs/FORMAT.md §15). Like
// the object encoders it does not check its input.
func (x *Index) Encode() []byte {
	b := []byte{indexTag, indexVersion}
	b = append(b, x.To[:]...)
	b = binary.AppendUvarint(b, uint64(len(x.Deltas)))
	for _, e := range x.Deltas {
		b = append(b, e.From[:]...)
		b = append(b, e.Superblock[:]...)
	}
	return b
}

// errIndex is wrapped by every failure to decode an index.
var errIndex = errors.New("non-canonical delta index")

// DecodeIndex decodes an index, rejecting anything but the canonical
// encoding of a valid one: a wrong tag or version, a zero to-commit, bad
// or non-minimal uvarints, no deltas, counts past the end, a from-commit
// equal to the to-commit, a zero superblock checksum, from-commits not
// strictly increasing, trailing bytes.
func DecodeIndex(b []byte) (*Index, error) {
	if len(b) < 2 || b[0] != indexTag {
		return nil, fmt.Errorf("not a delta index: does not start with %q", indexTag)
	}
	if b[1] != indexVersion {
		return nil, fmt.Errorf("unsupported delta index version %d (want %d)", b[1], indexVersion)
	}
	d := canon.NewDecoder(b, errIndex)
	d.Raw(2) // tag and version, checked above
	x := &Index{To: d.ID()}
	if d.Err() == nil && x.To.IsZero() {
		d.Fail("zero to-commit")
	}
	n := d.Count(64)
	if d.Err() == nil && n == 0 {
		d.Fail("no deltas")
	}
	x.Deltas = make([]IndexEntry, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		e := IndexEntry{From: d.ID(), Superblock: d.ID()}
		if d.Err() != nil {
			break
		}
		switch {
		case e.From == x.To:
			d.Fail("delta %d: from-commit equal to the to-commit", i)
		case e.Superblock.IsZero():
			d.Fail("delta %d: zero superblock checksum", i)
		case i > 0 && bytes.Compare(x.Deltas[i-1].From[:], e.From[:]) >= 0:
			d.Fail("from-commits not sorted or duplicated at %s", e.From)
		}
		x.Deltas = append(x.Deltas, e)
	}
	if err := d.End(); err != nil {
		return nil, err
	}
	return x, nil
}

// ReadIndex reads and decodes the index of deltas to commit to stored in
// r, returning it and its raw bytes. A commit without one gives an error
// matching repo.ErrNotFound.
func ReadIndex(r *repo.Repo, to repo.ID) (*Index, []byte, error) {
	p := r.Path(IndexRel(to))
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("delta index of %s: %w", to, repo.ErrNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(data) > MaxIndex {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", p, MaxIndex)
	}
	x, err := DecodeIndex(data)
	if err == nil && x.To != to {
		err = fmt.Errorf("it is the index of %s", x.To)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return x, data, nil
}

// ListIndexes returns the commits r has a delta index for, sorted.
// Entries of IndexDir that are not index names are ignored.
func ListIndexes(r *repo.Repo) ([]repo.ID, error) {
	ents, err := os.ReadDir(r.Path(IndexDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing delta indexes: %w", err)
	}
	var out []repo.ID
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), indexSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if id, err := parseFullID(hex); err == nil && !id.IsZero() {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i][:], out[j][:]) < 0 })
	return out, nil
}

// ReindexOptions configure Reindex.
type ReindexOptions struct {
	// To lists the commits whose index is rewritten; nil rewrites every
	// index: those of the commits deltas lead to, and removes the others.
	To []repo.ID
	// NoSync skips fsync; only for scratch repositories.
	NoSync bool
}

// Reindex brings the delta indexes of r in line with its deltas (OSTree's
// "static-delta reindex"): for each commit concerned, the index listing
// every delta to it is written durably (temp file, fsync, rename, fsync
// of the directory) unless the file already holds exactly that, and an
// index of a commit no delta leads to any more is removed. It returns the
// indexes stored for the commits concerned, sorted by commit. Generate
// and Delete call it for the commit they concern; UpdateSummary for all.
// It waits for another writer of the indexes as for the repository lock:
// until ctx ends or the lock timeout passes (then repo.ErrLocked).
func Reindex(ctx context.Context, r *repo.Repo, opts ReindexOptions) ([]IndexRef, error) {
	return reindex(ctx, r, opts, nil, nil)
}

// reindex is Reindex leaving out of the indexes the delta without, when
// not nil, and then running then (when not nil) under the indexes' lock:
// Delete removes that delta there, so that no other reindex names it
// again in between.
func reindex(ctx context.Context, r *repo.Repo, opts ReindexOptions, without *Name, then func() error) ([]IndexRef, error) {
	if opts.To == nil && then == nil {
		// Without deltas or indexes there is nothing to write, and no
		// directory to make, as OSTree makes none: one made by whoever
		// first updated the summary (root, or a member of a shared
		// repository under umask 022) would fail every other user's
		// updates of a repository that has no deltas.
		names, nerr := List(r)
		idx, ierr := ListIndexes(r)
		if nerr == nil && ierr == nil && len(names) == 0 && len(idx) == 0 {
			return nil, nil
		}
	}
	if err := r.CheckWritableAt(IndexDir); err != nil {
		return nil, fmt.Errorf("indexing deltas: %w", err)
	}
	sync := !opts.NoSync && r.Fsync()
	dir := r.Path(IndexDir)
	if err := durable.MkdirAll(dir, durable.DirPerm, sync); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	// One reindex at a time, so that two writers of one commit's index
	// (two generations, say) cannot each leave out the other's delta.
	// Waited for as the repository lock is: a holder that hangs must not
	// hang every generation, delete and summary update after it.
	lk, err := r.LockPath(ctx, dir, true)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	concerned := map[repo.ID]bool{}
	for _, to := range opts.To {
		concerned[to] = true
	}
	if opts.To == nil {
		// Under the lock no temp file is being written: any left is a
		// crashed writer's.
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					os.Remove(r.Path(IndexDir, e.Name()))
				}
			}
		}
		old, err := ListIndexes(r)
		if err != nil {
			return nil, err
		}
		for _, to := range old {
			concerned[to] = true
		}
	}
	names, err := List(r)
	if err != nil {
		return nil, err
	}
	indexes := map[repo.ID]*Index{}
	for _, n := range names {
		if opts.To != nil && !concerned[n.To] {
			continue
		}
		concerned[n.To] = true
		if without != nil && n == *without {
			continue
		}
		_, raw, err := ReadSuperblock(r, n)
		if err != nil {
			return nil, fmt.Errorf("static delta %s: %w", n, err)
		}
		x := indexes[n.To]
		if x == nil {
			x = &Index{To: n.To}
			indexes[n.To] = x
		}
		x.Deltas = append(x.Deltas, IndexEntry{From: n.From, Superblock: repo.Sum(raw)})
	}
	tos := make([]repo.ID, 0, len(concerned))
	for to := range concerned {
		tos = append(tos, to)
	}
	sort.Slice(tos, func(i, j int) bool { return bytes.Compare(tos[i][:], tos[j][:]) < 0 })
	var out []IndexRef
	dirty := false // an entry of the directory to make durable
	// Indexes a full filesystem kept from being rewritten before the
	// delta without is removed: removed themselves instead (no index
	// names a delta that is gone), and written once its removal has made
	// room, so that deleting a delta frees space on a full disk.
	var later []*Index
	for _, to := range tos {
		p := r.Path(IndexRel(to))
		x := indexes[to]
		if x == nil {
			err := os.Remove(p)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("removing delta index %s: %w", p, err)
			}
			dirty = dirty || err == nil
			continue
		}
		sort.Slice(x.Deltas, func(i, j int) bool { return bytes.Compare(x.Deltas[i].From[:], x.Deltas[j].From[:]) < 0 })
		data := x.Encode()
		// Rewritten only when it changes: a summary update reindexes
		// everything, and most indexes stay as they are.
		if old, err := os.ReadFile(p); err != nil || !bytes.Equal(old, data) {
			err := durable.WriteFile(p, data, 0o644, sync)
			if err != nil && then != nil && noSpace(err) {
				if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
					return nil, fmt.Errorf("removing delta index %s: %w (writing it: %w)", p, rerr, err)
				}
				later = append(later, x)
				dirty = true
				continue
			}
			if err != nil {
				return nil, err
			}
		} else if sync {
			// The same bytes may be there from a write that never
			// synced (without sync, or killed before it synced): the
			// summary is to name them, so they are made durable now. A
			// clean file costs no write.
			if err := durable.SyncFile(p); err != nil {
				return nil, err
			}
			dirty = true
		}
		out = append(out, IndexRef{To: to, Index: repo.Sum(data)})
	}
	if dirty && sync {
		if err := durable.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	if then != nil {
		if err := then(); err != nil {
			return nil, err
		}
	}
	for _, x := range later {
		p := r.Path(IndexRel(x.To))
		data := x.Encode()
		if err := durable.WriteFile(p, data, 0o644, sync); err != nil {
			return nil, fmt.Errorf("delta %s deleted, but the index of the other deltas to %s is not written (`otree static-delta reindex` writes it): %w", without, x.To, err)
		}
		out = append(out, IndexRef{To: x.To, Index: repo.Sum(data)})
	}
	if len(later) > 0 {
		sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].To[:], out[j].To[:]) < 0 })
		if sync {
			if err := durable.SyncDir(dir); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// noSpace tells whether err is a filesystem's refusal for want of space
// (ENOSPC, or EDQUOT for a quota).
func noSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}
