package checkout

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// ondisk is what a directory of the checkout held, by name, the first time
// an entry of the commit was found in the way there: read once, so that a
// union over a full directory lists it once, not once per entry.
type ondisk struct {
	once  sync.Once
	names map[string]bool
	err   error
}

// collision checks an entry name of n that the filesystem says exists. A
// directory that does not tell some names apart (ext4 or tmpfs with
// casefolding, a case-insensitive network or FUSE filesystem) finds "a"
// when it holds "A", "STRASSE" when it holds "Straße", or an NFD "é" when
// it holds the NFC one; where that other name is an entry of the same
// commit, going on would merge two directories, drop one entry (UnionAdd)
// or write one over the other (Union). That is refused, naming both
// paths. The entry being stored under name itself, or under a name the
// commit does not have (a union over what the directory held before), is
// left to the mode's rules, as on any filesystem; so is everything in a
// directory that cannot be listed (one a union may write into but not
// read), as before this check.
func (w *worker) collision(n *dirNode, name string) error {
	if n.entries < 2 {
		return nil // nothing of the commit to collide with
	}
	c := w.c
	d := &n.disk
	d.once.Do(func() {
		var names []string
		names, d.err = c.listDir(n.fd, n.path)
		d.names = make(map[string]bool, len(names))
		for _, s := range names {
			d.names[s] = true
		}
	})
	if d.err != nil || d.names[name] {
		return nil
	}
	other := w.storedAs(n, name)
	if other == "" {
		return nil
	}
	return fmt.Errorf("checkout: %s/%s: %w: the directory holds it as %s/%s, another entry of the commit (it does not tell the two names apart: a case-insensitive or normalising directory); neither is written over the other",
		n.path, name, fs.ErrExist, n.path, other)
}

// storedAs returns the name of the commit's other entry of n that the entry
// found at name is, or "" when it is none of them or that cannot be told.
func (w *worker) storedAs(n *dirNode, name string) string {
	c := w.c
	var st unix.Stat_t
	if unix.Fstatat(n.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return ""
	}
	names, err := c.listDir(n.fd, n.path)
	if err != nil || slices.Contains(names, name) {
		return "" // stored under its own name since the first listing
	}
	for _, s := range names {
		if !n.hasEntry(c, s) {
			continue
		}
		var ost unix.Stat_t
		if unix.Fstatat(n.fd, s, &ost, unix.AT_SYMLINK_NOFOLLOW) == nil && ost.Dev == st.Dev && ost.Ino == st.Ino {
			return s
		}
	}
	return ""
}

// hasEntry reports whether the checkout writes an entry named name into n.
func (n *dirNode) hasEntry(c *checkouter, name string) bool {
	if _, ok := slices.BinarySearchFunc(n.dirs, name, func(d repo.DirEntry, s string) int { return strings.Compare(d.Name, s) }); ok {
		return true
	}
	for _, f := range []string{name, passthroughWhiteout + name} {
		if f != name && !c.opts.ProcessPassthroughWhiteouts {
			continue
		}
		if _, ok := slices.BinarySearchFunc(n.files, f, func(e repo.FileEntry, s string) int { return strings.Compare(e.Name, s) }); ok {
			return true
		}
	}
	return false
}
