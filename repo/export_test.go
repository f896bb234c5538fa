package repo

import (
	"io"

	"github.com/otree/otree/internal/hash"
	"golang.org/x/sys/unix"
)

// HoldRefs is holdRefs for a write outside a transaction, so that a test
// can stand in the middle of a ref write.
func (r *Repo) HoldRefs() (func(), error) { return r.holdRefs(refsLockSteps...) }

// SetRefReadHook has f called with each ref file and directory of refs
// read, until the returned function is called.
func SetRefReadHook(f func(path string)) (restore func()) {
	refReadHook = f
	return func() { refReadHook = nil }
}

// SetArchiveReadHook makes archive-mode copies of large files compress
// from what f makes of their reader, until the returned function is called.
func SetArchiveReadHook(f func(io.Reader) io.Reader) (restore func()) {
	archiveReadHook = f
	return func() { archiveReadHook = nil }
}

// SetUnsyncedHook has f called at each step of the unsynced marker's
// protocol where another process may act (unsyncedHook), until the
// returned function is called.
func SetUnsyncedHook(f func(step string)) (restore func()) {
	unsyncedHook = f
	return func() { unsyncedHook = nil }
}

// SetPublishHook has f called at the steps of Txn.Publish where a
// concurrent write may act (publishHook), until the returned function is
// called.
func SetPublishHook(f func(step string)) (restore func()) {
	publishHook = f
	return func() { publishHook = nil }
}

// SetStageMkdirat has transactions create the fan-out directories of
// their staging directory with f, until the returned function is called.
func SetStageMkdirat(f func(dirfd int, path string, mode uint32) error) (restore func()) {
	stageMkdirat = f
	return func() { stageMkdirat = unix.Mkdirat }
}

// RewriteModeDamaged is rewriteModeDamaged in a staging directory of its
// own, as fsck's repair runs it.
func (r *Repo) RewriteModeDamaged(id ID) error {
	t, err := r.beginHeld()
	if err != nil {
		return err
	}
	defer t.Abort()
	return r.rewriteModeDamaged(t, id)
}

// NewFileReader is the reader OpenFile gives for the file object id with
// header h, reading its content from r, for tests of how such reads end.
func NewFileReader(r io.Reader, h *FileHeader, id ID) io.Reader {
	fr := &fileReader{r: r, size: h.Size, id: id, h: hash.New()}
	fr.h.Write(AppendFileHeader(nil, h))
	return fr
}

// SplitRev is splitRev: a revision's base and how many parents up it goes.
var SplitRev = splitRev

// SetMaxMetaObject sets the bound on metadata objects to n until the
// returned function is called.
func SetMaxMetaObject(n int64) (restore func()) {
	old := maxMetaObject
	maxMetaObject = n
	return func() { maxMetaObject = old }
}

// SetFsckRefHook has f called with each ref name Fsck has listed, before
// it reads the ref, until the returned function is called.
func SetFsckRefHook(f func(name string)) (restore func()) {
	fsckRefHook = f
	return func() { fsckRefHook = nil }
}

// SetFsckReadHook has f wrap the reader of each stored object's bytes
// (at path) that Fsck verifies, until the returned function is called.
func SetFsckReadHook(f func(path string, r io.Reader) io.Reader) (restore func()) {
	fsckReadHook = f
	return func() { fsckReadHook = nil }
}

// SetPruneReadHook has f called with each commit a prune's walk reads,
// until the returned function is called.
func SetPruneReadHook(f func(ID)) (restore func()) {
	pruneReadHook = f
	return func() { pruneReadHook = nil }
}

// SetUserMetaReadHook has f give the error of reading the header xattr of
// each bare-user file object (at path), nil to let the read be, until the
// returned function is called.
func SetUserMetaReadHook(f func(path string) error) (restore func()) {
	userMetaReadHook = f
	return func() { userMetaReadHook = nil }
}

// SetPartialMarkHook has f called with each partial mark written and
// whether it is synced, until the returned function is called.
func SetPartialMarkHook(f func(commit ID, sync bool)) (restore func()) {
	partialMarkHook = f
	return func() { partialMarkHook = nil }
}
