package repo

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Entry is what a path inside a commit names: a file object (regular file,
// symlink, device or FIFO) or a directory, given by its dirtree and dirmeta.
type Entry struct {
	Path   string // the cleaned path inside the tree, starting with "/"
	Kind   Kind   // KindFile or KindDirTree
	ID     ID     // the file object, or the directory's dirtree
	MetaID ID     // the directory's dirmeta; zero for a file
}

// IsDir reports whether e is a directory.
func (e Entry) IsDir() bool { return e.Kind == KindDirTree }

// ErrNotDir is wrapped by a PathError whose path continues below something
// that is not a directory ("/etc/passwd/x", or "/etc/passwd/").
var ErrNotDir = errors.New("not a directory")

// PathError reports a path that does not resolve inside a commit or tree.
// errors.Is(err, ErrNotFound) holds for a missing path and
// errors.Is(err, ErrNotDir) for one that runs through a non-directory.
type PathError struct {
	Commit ID     // the commit searched; zero when the lookup started at a tree
	Path   string // the cleaned path asked for
	At     string // the prefix of Path where the lookup failed
	Err    error  // ErrNotFound or ErrNotDir
}

// Error names the path, where it failed, and the commit.
func (e *PathError) Error() string {
	in := ""
	if !e.Commit.IsZero() {
		in = " in commit " + e.Commit.String()
	}
	if e.At == "" || e.At == e.Path {
		return fmt.Sprintf("%s: %v%s", e.Path, e.Err, in)
	}
	if errors.Is(e.Err, ErrNotDir) {
		return fmt.Sprintf("%s: %s is not a directory%s", e.Path, e.At, in)
	}
	return fmt.Sprintf("%s: %s %v%s", e.Path, e.At, e.Err, in)
}

// Unwrap returns ErrNotFound or ErrNotDir.
func (e *PathError) Unwrap() error { return e.Err }

// CleanPath returns p as an absolute, lexically cleaned path inside a tree:
// "usr//bin/" and "/usr/./bin" both give "/usr/bin", and ".." never climbs
// above "/". It does not consult the tree, so a ".." after a symlink is
// resolved against the path as written, not the symlink's target; TreePath
// refuses such paths instead.
func CleanPath(p string) string { return path.Clean("/" + p) }

// ErrDotDot is wrapped by the error for a path inside a tree that has a ".."
// component. Lookups walk names without following symlinks, so "/a/../b"
// could only mean "/b" as written, while on a checked-out tree, where "/a"
// may be a symlink, it means something else; rather than guess, such paths
// are refused, as OSTree refuses them.
var ErrDotDot = errors.New(`".." is not allowed in a path inside a tree`)

// TreePath is CleanPath for a path that names something inside a tree: it
// refuses a ".." component with an error naming p that wraps ErrDotDot.
func TreePath(p string) (string, error) {
	for rest := p; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		if c == ".." {
			return "", fmt.Errorf("%q: %w", p, ErrDotDot)
		}
	}
	return CleanPath(p), nil
}

// Lookup finds path inside commit without following symlinks, walking the
// dirtrees from the root. The path is cleaned with TreePath, so ".." is
// refused; a trailing '/' requires a directory. A path that is not there gives a *PathError; a
// missing or corrupt dirtree on the way gives that object's error.
func (r *Repo) Lookup(commit ID, p string) (Entry, error) {
	c, err := r.ReadCommit(commit)
	if err != nil {
		return Entry{}, fmt.Errorf("looking up %s: %w", CleanPath(p), err)
	}
	e, err := r.LookupTree(c.RootTree, c.RootMeta, p)
	if pe := (*PathError)(nil); errors.As(err, &pe) {
		pe.Commit = commit
	}
	return e, err
}

// LookupTree is Lookup starting at a directory given by its dirtree and
// dirmeta ids instead of at a commit's root.
func (r *Repo) LookupTree(tree, meta ID, p string) (Entry, error) {
	clean, err := TreePath(p)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Path: "/", Kind: KindDirTree, ID: tree, MetaID: meta}
	if clean != "/" {
		names := strings.Split(clean[1:], "/")
		for i, name := range names {
			at := "/" + strings.Join(names[:i+1], "/")
			if !e.IsDir() {
				return Entry{}, &PathError{Path: clean, At: e.Path, Err: ErrNotDir}
			}
			dt, err := r.ReadDirTree(e.ID)
			if err != nil {
				return Entry{}, fmt.Errorf("looking up %s: reading directory %s: %w", clean, e.Path, err)
			}
			if d, ok := dt.Dir(name); ok {
				e = Entry{Path: at, Kind: KindDirTree, ID: d.TreeID, MetaID: d.MetaID}
			} else if f, ok := dt.File(name); ok {
				e = Entry{Path: at, Kind: KindFile, ID: f.ID}
			} else {
				return Entry{}, &PathError{Path: clean, At: at, Err: ErrNotFound}
			}
		}
	}
	if strings.HasSuffix(p, "/") && !e.IsDir() {
		return Entry{}, &PathError{Path: clean, At: e.Path, Err: ErrNotDir}
	}
	return e, nil
}
