package commit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// skipList is the --skip-list: paths of the tree ("/usr/share/doc") left
// out with everything below them. As in OSTree, a path that no source has
// fails the commit, so that a misspelt line does not let through what it
// was meant to keep out.
type skipList struct {
	paths   map[string]*atomic.Bool // path: whether a source had it
	longest int                     // bytes in the longest path
}

// newSkipList takes each path exactly as given, as OSTree does: "/a " names
// the file "a " and never "/a". A path that could never match an entry
// (relative, "/" itself, a trailing slash, an empty, "." or ".."
// component) is refused rather than tidied into one that might.
func newSkipList(paths []string) (*skipList, error) {
	s := &skipList{paths: map[string]*atomic.Bool{}}
	for _, p := range paths {
		if err := CheckSkipPath(p); err != nil {
			return nil, err
		}
		s.paths[p] = new(atomic.Bool)
		s.longest = max(s.longest, len(p))
	}
	return s, nil
}

// CheckSkipPath reports why p cannot be a skip-list path, if it cannot:
// a path must be absolute and name an entry below the root, written
// without empty, "." or ".." components and without a trailing slash.
// Any other byte, spaces and carriage returns included, is part of a name.
func CheckSkipPath(p string) error {
	if p == "/" {
		return fmt.Errorf("skip-list path \"/\" would leave out the whole tree")
	}
	return checkTreePath("skip-list path", p)
}

// checkTreePath reports why p, a path of the tree named by what, is not
// one an entry below the root could have: absolute, without empty, "." or
// ".." components and without a trailing slash.
func checkTreePath(what, p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%s %q does not start with \"/\"", what, p)
	}
	for _, c := range strings.Split(p[1:], "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("%s %q is not in its plain form (no empty, \".\" or \"..\" component, no trailing \"/\")", what, p)
		}
	}
	return nil
}

// skips reports whether the entry at tree path p is to be left out, and
// records that the tree had it.
func (s *skipList) skips(p string) bool {
	seen, ok := s.paths[p]
	if ok {
		seen.Store(true)
	}
	return ok
}

// skipsFrom reports whether the entry at tree path p, or a directory
// above it but the root, is to be left out, and records that the tree had
// the skipped path. Each ancestor is p cut at a "/", and only those no
// longer than the longest skipped path are looked up: cleaning or hashing
// every ancestor of every entry costs a deep tar time cubic in its depth.
func (s *skipList) skipsFrom(p string) bool {
	if len(s.paths) == 0 {
		return false
	}
	for ; p != "/"; p = parentPath(p) {
		if len(p) <= s.longest && s.skips(p) {
			return true
		}
	}
	return false
}

// removeFrom takes the skipped paths out of a tree built from a stored one.
func (s *skipList) removeFrom(r reader, d *dir) error {
	for p, seen := range s.paths {
		found, err := d.remove(r, p)
		if err != nil {
			return fmt.Errorf("skipping %s: %w", p, err)
		}
		if found {
			seen.Store(true)
		}
	}
	return nil
}

// parentPath is the directory holding the tree path p ("/" for "/etc").
func parentPath(p string) string { return p[:max(1, strings.LastIndexByte(p, '/'))] }

// covers reports whether p is a skipped path or below one.
func (s *skipList) covers(p string) bool {
	for ; len(s.paths) > 0; p = parentPath(p) {
		if _, ok := s.paths[p]; ok {
			return true
		}
		if p == "/" {
			break
		}
	}
	return false
}

// unmatched lists the skipped paths no source had, but for those below
// another skipped path (never reached, and left out all the same).
func (s *skipList) unmatched() []string {
	var out []string
	for p, seen := range s.paths {
		if !seen.Load() && !s.covers(parentPath(p)) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// quoteAll quotes each of paths, so that a space or carriage return that
// is part of a name shows, and joins them with ", ".
func quoteAll(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = strconv.Quote(p)
	}
	return strings.Join(q, ", ")
}
