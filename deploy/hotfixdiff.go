package deploy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/otree/otree/checkout"
	"golang.org/x/sys/unix"
)

// hotfixChanges lists what a hotfix overlay's upper directory changes in
// the deployment's usr (lower), in overlayfs's terms: an entry of upper
// adds or replaces the lower one, a 0:0 character device (a whiteout)
// deletes it, and a directory marked opaque replaces the lower directory
// whole. Directories upper holds only on the way to a change are not
// changes themselves. Paths are under /usr, sorted.
func hotfixChanges(upper, lower string) ([]checkout.Change, error) {
	var out []checkout.Change
	err := filepath.WalkDir(upper, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if rel == "." {
			return nil
		}
		name := "/usr/" + filepath.ToSlash(rel)
		lfi, lerr := os.Lstat(filepath.Join(lower, rel))
		inLower := lerr == nil
		if lerr != nil && !errors.Is(lerr, fs.ErrNotExist) {
			return lerr
		}
		switch fi, err := de.Info(); {
		case err != nil:
			return err
		case fi.Mode()&fs.ModeCharDevice != 0 && whiteout(p):
			if inLower {
				out = append(out, checkout.Change{Kind: checkout.Deleted, Path: name})
			}
		case !inLower:
			out = append(out, checkout.Change{Kind: checkout.Added, Path: name})
			if de.IsDir() {
				return fs.SkipDir
			}
		case de.IsDir() && lfi.IsDir():
			if opaque(p) {
				out = append(out, checkout.Change{Kind: checkout.Modified, Path: name})
				return fs.SkipDir
			}
		default:
			out = append(out, checkout.Change{Kind: checkout.Modified, Path: name})
			if de.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return out, err
}

// whiteout tells whether the character device p is overlayfs's mark of
// a deleted entry (device 0:0).
func whiteout(p string) bool {
	var st unix.Stat_t
	return unix.Lstat(p, &st) == nil && st.Rdev == 0
}

// opaque tells whether overlayfs marked the upper directory p as hiding
// the lower one.
func opaque(p string) bool {
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		buf := make([]byte, 4)
		if n, err := unix.Lgetxattr(p, name, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// mergeChanges puts the hotfix's changes over those of the deployment's
// own usr: for a path both list, the hotfix's view is what runs.
func mergeChanges(own, hot []checkout.Change) []checkout.Change {
	seen := map[string]bool{}
	for _, c := range hot {
		seen[c.Path] = true
	}
	out := slices.Clone(hot)
	for _, c := range own {
		if !seen[c.Path] {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b checkout.Change) int { return strings.Compare(a.Path, b.Path) })
	return out
}
