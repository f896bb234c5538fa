package repo

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/otree/otree/internal/quote"
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
// errors.Is(err, ErrNotFound) holds for a missing path,
// errors.Is(err, ErrNotDir) for one that runs through a non-directory, and
// errors.Is(err, ErrSymlinkLoop) for one Resolve gave up on.
type PathError struct {
	Commit ID     // the commit searched; zero when the lookup started at a tree
	Path   string // the path asked for, cleaned by Lookup
	At     string // where the lookup failed: a prefix of Path, or for Resolve the path a symlink led to
	Err    error  // ErrNotFound, ErrNotDir or ErrSymlinkLoop
}

// Error names the path, where it failed, and the commit. The paths are
// quoted when they hold a newline or another character that does not
// print, so that the error stays one line that reads as it is.
func (e *PathError) Error() string {
	in := ""
	if !e.Commit.IsZero() {
		in = " in commit " + e.Commit.String()
	}
	p, at := quote.Path(e.Path), quote.Path(e.At)
	if e.At == "" || e.At == e.Path {
		return fmt.Sprintf("%s: %v%s", p, e.Err, in)
	}
	if errors.Is(e.Err, ErrNotDir) {
		return fmt.Sprintf("%s: %s is not a directory%s", p, at, in)
	}
	if errors.Is(e.Err, ErrSymlinkLoop) {
		return fmt.Sprintf("%s: at %s: %v%s", p, at, e.Err, in)
	}
	return fmt.Sprintf("%s: %s %v%s", p, at, e.Err, in)
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

// MaxSymlinks is how many symlinks Resolve follows for one path before it
// gives up with ErrSymlinkLoop: Linux's limit, so a path that resolves in a
// checkout resolves here.
const MaxSymlinks = 40

// ErrSymlinkLoop is wrapped by the PathError of a path that needs more than
// MaxSymlinks symlinks to resolve.
var ErrSymlinkLoop = errors.New("too many levels of symbolic links")

// Resolve finds path inside commit as the kernel would find it in a
// checkout of the commit with the checkout as its root directory: every
// symlink on the way and at the end is followed, an absolute target starts
// again at the root, and ".." goes to the directory that holds the one
// reached so far, never above the root. The Entry's Path is where the
// path led ("/etc/os-release" that links to "../usr/lib/os-release" gives
// "/usr/lib/os-release"). A trailing '/' requires a directory.
//
// Lookup is the variant that follows nothing, for naming an entry itself.
func (r *Repo) Resolve(commit ID, p string) (Entry, error) {
	c, err := r.ReadCommit(commit)
	if err != nil {
		return Entry{}, fmt.Errorf("resolving %s: %w", p, err)
	}
	e, err := r.resolve(c.RootTree, c.RootMeta, p)
	if pe := (*PathError)(nil); errors.As(err, &pe) {
		pe.Commit = commit
	}
	return e, err
}

// resolve is Resolve from the root directory given by tree and meta.
func (r *Repo) resolve(tree, meta ID, p string) (Entry, error) {
	// dirs holds the directories from the root to the one reached, so
	// that ".." can go back up what symlinks led into.
	dirs := []Entry{{Path: "/", Kind: KindDirTree, ID: tree, MetaID: meta}}
	names := strings.Split(p, "/")
	if strings.HasSuffix(p, "/") {
		names = append(names, ".") // the last name must be a directory
	}
	links := 0
	for len(names) > 0 {
		name := names[0]
		names = names[1:]
		dir := dirs[len(dirs)-1]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(dirs) > 1 {
				dirs = dirs[:len(dirs)-1]
			}
			continue
		}
		at := path.Join(dir.Path, name)
		dt, err := r.ReadDirTree(dir.ID)
		if err != nil {
			return Entry{}, fmt.Errorf("resolving %s: reading directory %s: %w", p, dir.Path, err)
		}
		if d, ok := dt.Dir(name); ok {
			dirs = append(dirs, Entry{Path: at, Kind: KindDirTree, ID: d.TreeID, MetaID: d.MetaID})
			continue
		}
		f, ok := dt.File(name)
		if !ok {
			return Entry{}, &PathError{Path: p, At: at, Err: ErrNotFound}
		}
		h, err := r.StatFile(f.ID)
		if err != nil {
			return Entry{}, fmt.Errorf("resolving %s: %s: %w", p, at, err)
		}
		if h.Type != TypeSymlink {
			if len(names) > 0 {
				return Entry{}, &PathError{Path: p, At: at, Err: ErrNotDir}
			}
			return Entry{Path: at, Kind: KindFile, ID: f.ID}, nil
		}
		if h.Target == "" { // as the kernel takes an empty target
			return Entry{}, &PathError{Path: p, At: at + " -> \"\"", Err: ErrNotFound}
		}
		if links++; links > MaxSymlinks {
			return Entry{}, &PathError{Path: p, At: at, Err: ErrSymlinkLoop}
		}
		if path.IsAbs(h.Target) {
			dirs = dirs[:1]
		}
		names = append(strings.Split(h.Target, "/"), names...)
	}
	return dirs[len(dirs)-1], nil
}
