package repo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"

	"github.com/otree/otree/internal/durable"
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

func importReadError(id ID, n, size uint64, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &CorruptObjectError{Kind: KindFile, ID: id, Reason: fmt.Sprintf("content ended after %d of %d bytes", n, size)}
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
func (r *Repo) MarkCommitPartial(commit ID) error { return r.markCommitPartial(commit) }

// UnmarkCommitPartial removes the partial marker of commit, once every
// object it needs is durable. A commit that was not marked is no error.
func (r *Repo) UnmarkCommitPartial(commit ID) error {
	err := os.Remove(r.partialStatePath(commit))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unmarking partial commit %s: %w", commit, err)
	}
	if !r.Fsync() {
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
