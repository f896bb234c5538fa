package commit

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// skipList is the --skip-list: paths of the tree ("/usr/share/doc") left
// out with everything below them. As in OSTree, a path that no source has
// fails the commit, so that a misspelt line does not let through what it
// was meant to keep out.
type skipList struct {
	paths map[string]*atomic.Bool // path: whether a source had it
}

func newSkipList(paths []string) *skipList {
	s := &skipList{paths: map[string]*atomic.Bool{}}
	for _, p := range paths {
		if p = strings.TrimRight(p, "/"); p != "" {
			s.paths["/"+strings.TrimLeft(p, "/")] = new(atomic.Bool)
		}
	}
	return s
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
