package repo

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/otree/otree/internal/durable"
	"golang.org/x/sys/unix"
)

// Ref is a named pointer to a commit. Remote refs are named "remote:branch".
type Ref struct {
	Name   string `json:"name"`   // "branch", or "remote:branch" for a remote-tracking ref
	Commit ID     `json:"commit"` // the commit it names
	// Alias is the branch this ref is an alias of, if it is one (Commit
	// is then where the chain of aliases ends).
	Alias string `json:"alias,omitempty"`
}

// maxRefComponent is the longest component of a ref name: each is the name
// of a file or directory under refs/, which filesystems limit to 255 bytes.
const maxRefComponent = 255

// ValidateRefName checks a branch name (optionally "remote:branch"): one or
// more components separated by '/', each of at most 255 bytes, starting
// with a letter, digit or '_' and made of letters, digits and "._-".
func ValidateRefName(name string) error {
	if remote, branch, ok := strings.Cut(name, ":"); ok {
		if err := validateRefPath(remote); err != nil {
			return fmt.Errorf("invalid remote name %q in ref %q: %w", remote, name, err)
		}
		if strings.Contains(remote, "/") {
			return fmt.Errorf("invalid remote name %q in ref %q", remote, name)
		}
		if branch == "" {
			return fmt.Errorf("invalid ref name %q: no branch after the remote's ':'", name)
		}
		name = branch
	}
	return validateRefPath(name)
}

func validateRefPath(name string) error {
	if name == "" {
		return fmt.Errorf("invalid ref name: empty")
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" {
			return fmt.Errorf("invalid ref name %q: empty component", name)
		}
		if len(c) > maxRefComponent {
			return fmt.Errorf("invalid ref name %q: a component of %d bytes, more than the %d a file name may have", name, len(c), maxRefComponent)
		}
		for i, ch := range c {
			ok := ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
				(i > 0 && (ch == '.' || ch == '-'))
			if !ok {
				return fmt.Errorf("invalid ref name %q: character %s not allowed there", name, quoteChar(c, i))
			}
		}
	}
	return nil
}

// quoteChar Go-quotes the character at s[i], or the byte there when it
// does not begin UTF-8 ('\xff', where ranging over s gives U+FFFD).
func quoteChar(s string, i int) string {
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n <= 1 {
		return fmt.Sprintf(`'\x%02x'`, s[i])
	}
	return strconv.QuoteRune(r)
}

// RefClashError reports a ref that cannot be written because another ref
// is in its place: a ref is a file, so "a" and "a/b" cannot both exist.
type RefClashError struct {
	Ref   string // the ref to be written
	Other string // the ref in its way
	// Above is true when Other is a directory of Ref's path ("a" for
	// "a/b"); otherwise Other lies below Ref.
	Above bool
	// Together is true when Other is not stored but is to be written at
	// the same time as Ref.
	Together bool
}

// Error names both refs.
func (e *RefClashError) Error() string {
	if e.Together {
		return fmt.Sprintf("cannot write refs %s and %s together: a ref cannot also be a directory of refs", e.Other, e.Ref)
	}
	where := "below"
	if e.Above {
		where = "above"
	}
	return fmt.Sprintf("cannot write ref %s: ref %s exists %s it", e.Ref, e.Other, where)
}

// CheckRefPlace checks that ref name is valid and can be written: that no
// ref exists above it ("a" for "a/b") or below it ("a/b" for "a"). An
// alias is checked at the branch it ends at, which is what writing it
// writes. A command that writes a ref after long work calls it first.
func (r *Repo) CheckRefPlace(name string) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	if err := ValidateRefName(name); err != nil {
		return err
	}
	_, err := r.checkRefPlace(name, nil)
	return err
}

// checkRefPlace is CheckRefPlace for a valid name, ignoring the stored
// refs for which gone (if not nil) is true: they are deleted first. It
// returns the branch name ends at, the ref writing it writes.
func (r *Repo) checkRefPlace(name string, gone func(string) bool) (string, error) {
	final, err := r.resolveAlias(name)
	if err != nil {
		return "", err
	}
	return final, r.checkBranchPlace(name, final, gone)
}

// checkBranchPlace is checkRefPlace for name, which ends at branch final.
func (r *Repo) checkBranchPlace(name, final string, gone func(string) bool) error {
	for _, above := range refParents(final) {
		fi, err := os.Lstat(r.refPath(above))
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nothing below it either
		}
		if err != nil {
			return fmt.Errorf("ref %s: %w", name, err)
		}
		if !fi.IsDir() {
			if gone != nil && gone(above) {
				return nil
			}
			return &RefClashError{Ref: name, Other: above, Above: true}
		}
	}
	fi, err := os.Lstat(r.refPath(final))
	if err != nil || !fi.IsDir() {
		return nil // absent, or a ref that is replaced
	}
	below, err := r.ListRefs(final)
	var bad *UnreadableRefsError
	if errors.As(err, &bad) {
		for _, n := range bad.Refs { // unreadable, but in the way all the same
			below = append(below, Ref{Name: n})
		}
	} else if err != nil {
		return err
	}
	for _, b := range below {
		if gone == nil || !gone(b.Name) {
			return &RefClashError{Ref: name, Other: b.Name}
		}
	}
	if len(below) == 0 && !onlyRefLeftovers(r.refPath(final)) {
		return fmt.Errorf("cannot write ref %s: %s is a directory", name, r.refPath(final))
	}
	return nil // every ref below it is deleted first, or there is none
}

// onlyRefLeftovers tells whether the directory dir, at a ref's place but
// holding no ref, holds nothing but what killed ref writes and deletions
// leave: directories, empty or of such leftovers, and temporary files.
// Writing the ref removes them (removeRefLeftovers), as OSTree's write
// replaces an empty directory; anything else keeps the ref from being
// written.
func onlyRefLeftovers(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			if !onlyRefLeftovers(p) {
				return false
			}
		case !e.Type().IsRegular() || !durable.IsTemp(e.Name()):
			return false
		}
	}
	return true
}

// removeRefLeftovers removes the directory at p, the place of a ref to be
// written, when it holds only leftovers (onlyRefLeftovers). The caller
// holds the refs lock: no ref write is going on, so every temporary file
// there is a dead writer's.
func removeRefLeftovers(p string) error {
	fi, err := os.Lstat(p)
	if err != nil || !fi.IsDir() || !onlyRefLeftovers(p) {
		return nil // a directory of anything else fails the write itself
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("removing %s, left by a killed ref write: %w", p, err)
	}
	return nil
}

// refParents returns the refs whose paths are directories of ref name's
// path, shortest first: "r:a" and "r:a/b" for "r:a/b/c".
func refParents(name string) []string {
	remote, branch := "", name
	if i := strings.IndexByte(name, ':'); i >= 0 {
		remote, branch = name[:i+1], name[i+1:]
	}
	var out []string
	for i, c := range branch {
		if c == '/' {
			out = append(out, remote+branch[:i])
		}
	}
	return out
}

// refPath returns the file of a ref.
func (r *Repo) refPath(name string) string {
	if remote, branch, ok := strings.Cut(name, ":"); ok {
		return r.Path("refs", "remotes", remote, filepath.FromSlash(branch))
	}
	return r.Path("refs", "heads", filepath.FromSlash(name))
}

// refFile returns the file of ref name once it has checked that no
// directory between refs/heads (refs/remotes for "remote:branch") and the
// file is a symlink: whatever was planted in refs/, a ref is never read or
// written outside it. Branch names without "/" cost nothing.
func (r *Repo) refFile(name string) (string, error) {
	p := r.refPath(name)
	root := r.Path("refs", "heads")
	if strings.Contains(name, ":") {
		root = r.Path("refs", "remotes")
	}
	rel, _ := filepath.Rel(root, filepath.Dir(p))
	if rel == "." {
		return p, nil
	}
	d := root
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		d = filepath.Join(d, c)
		fi, err := os.Lstat(d)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			// Nothing below it either; ENOTDIR: a ref above it (a file
			// one level up) is in the way, which a write reports as
			// such (checkBranchPlace) and a read as no ref.
			break
		}
		if err != nil {
			return "", fmt.Errorf("ref %s: %w", name, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("ref %s: %s is a symlink, not a directory (refs never lead outside refs/)", name, d)
		}
	}
	return p, nil
}

// ReadRef returns the commit a ref points at, following aliases.
func (r *Repo) ReadRef(name string) (ID, error) {
	if err := r.checkOpen(); err != nil {
		return ID{}, err
	}
	if err := ValidateRefName(name); err != nil {
		return ID{}, err
	}
	p, err := r.refFile(name)
	if err != nil {
		return ID{}, err
	}
	return r.readRefFile(name, p)
}

// readRefFile reads ref name from its file p, whose directories are known
// to be real ones (refFile, or a walk that does not follow symlinks).
func (r *Repo) readRefFile(name, p string) (ID, error) {
	// O_NOFOLLOW: an ordinary ref costs one open; a symlink (ELOOP) is an
	// alias, followed only inside refs/heads, and its branch opened the
	// same way.
	final := name
	var buf [refReadMax]byte
	data, err := readRefData(p, buf[:])
	if errors.Is(err, unix.ELOOP) {
		if final, err = r.resolveAlias(name); err != nil {
			return ID{}, err
		}
		if p, err = r.refFile(final); err != nil {
			return ID{}, err
		}
		data, err = readRefData(p, buf[:])
	}
	if err != nil {
		// "a/b" where "a" is a ref, or "a" where "a/b" is: no such ref.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EISDIR) {
			if final != name {
				return ID{}, &DanglingAliasError{name, final}
			}
			return ID{}, &RefNotFoundError{name}
		}
		return ID{}, fmt.Errorf("reading ref %s: %w", name, err)
	}
	var id ID
	if t := bytes.TrimSpace(data); len(t) == 2*len(id) {
		if _, err := hex.Decode(id[:], t); err == nil {
			return id, nil // the common case, parsed without copying
		}
	}
	text := strings.TrimSpace(string(data))
	id, err = ParseID(text)
	if err != nil {
		// What the file holds is not quoted: a symlinked refs/heads or
		// refs/remotes, followed as OSTree follows it, can lead to any
		// file the reader may read, /etc/shadow as well.
		more := ""
		if len(data) == refReadMax {
			more = " or more"
		}
		return ID{}, &CorruptRefError{Ref: final, Path: p,
			Err: fmt.Errorf("it holds %d bytes%s, not an object id of 64 hexadecimal characters", len(text), more)}
	}
	return id, nil
}

// refReadMax bounds what is read of a ref file: an id and a newline fit.
const refReadMax = 256

// refReadHook, when set (by tests), is called with each ref file and
// directory of refs about to be read.
var refReadHook func(path string)

// readRefData reads the start of ref file p into buf (refReadMax
// bytes), not following a symlink (ELOOP), and never blocking: a FIFO
// among the refs would otherwise hang every command that lists or reads
// them. Plain system calls stand in for an *os.File, whose poller
// registration, finalizer and read to EOF cost a listing of many refs a
// third of its time; errors are the *fs.PathError os would give.
func readRefData(p string, buf []byte) ([]byte, error) {
	if refReadHook != nil {
		refReadHook(p)
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR: // "a" where "a/b" is a ref: as reading it would say
		return nil, &os.PathError{Op: "read", Path: p, Err: unix.EISDIR}
	default:
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	// Read to EOF or to the end of buf, stopping early once the size
	// fstat gave has been read (a file that says 0 is read to EOF).
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if m <= 0 {
			break
		}
		n += m
		if st.Size > 0 && int64(n) >= st.Size {
			break
		}
	}
	return buf[:n], nil
}

// writeRef points a ref at id (through any aliases), or deletes it for the
// zero id (an alias itself; a branch only if no alias names it).
func (r *Repo) writeRef(name string, id ID, sync bool) error {
	if id.IsZero() {
		left, err := r.deleteRef(name)
		if err != nil || !sync {
			return err
		}
		return durable.SyncDir(left)
	}
	p, made, err := r.refPlace(name, sync)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(p, refContent(id), 0o644, sync); err != nil {
		durable.RemoveDirs(made) // a ref that is not written leaves no directories
		return fmt.Errorf("writing ref %s: %w", name, err)
	}
	return nil
}

// refContent is what a ref's file holds.
func refContent(id ID) []byte { return []byte(id.String() + "\n") }

// refPlace returns the file ref name is written to (through any aliases)
// and the directories it made for it.
func (r *Repo) refPlace(name string, sync bool) (string, []string, error) {
	// resolveAlias checks the directories of every name on the way,
	// final's included (aliasTarget goes through refFile).
	final, err := r.resolveAlias(name)
	if err != nil {
		return "", nil, err
	}
	p := r.refPath(final)
	if err := removeRefLeftovers(p); err != nil {
		return "", nil, fmt.Errorf("writing ref %s: %w", name, err)
	}
	made, err := durable.MakeDirs(filepath.Dir(p), durable.DirPerm, sync)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			// A ref above it is in the way: say which.
			if cerr := r.checkBranchPlace(name, final, nil); cerr != nil {
				return "", nil, cerr
			}
		}
		return "", nil, fmt.Errorf("writing ref %s: %w", name, err)
	}
	return p, made, nil
}

// deleteRef deletes ref name (an alias itself; a branch only if no alias
// names it) and returns the directory to sync.
func (r *Repo) deleteRef(name string) (string, error) { return r.deleteRefIn(name, nil) }

// deleteRefIn is deleteRef looking up the aliases that name a branch in
// idx, kept up to date, when it is not nil: deleting many refs then walks
// the refs once, not once a ref.
func (r *Repo) deleteRefIn(name string, idx *aliasIndex) (string, error) {
	p, err := r.refFile(name)
	if err != nil {
		return "", err
	}
	if isBranch(name) {
		var aliases []string
		if idx != nil {
			aliases = idx.of[name]
		} else if aliases, err = r.aliasesOf(name); err != nil {
			return "", err
		}
		if len(aliases) > 0 {
			return "", &AliasedRefError{name, slices.Clone(aliases)}
		}
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", &RefNotFoundError{name}
		}
		return "", fmt.Errorf("deleting ref %s: %w", name, err)
	}
	idx.forget(name)
	return r.pruneRefDirs(filepath.Dir(p)), nil
}

// isBranch tells whether ref name is a local branch, which an alias may
// name, rather than a remote's ref, which none can.
func isBranch(name string) bool { return !strings.Contains(name, ":") }

// aliasIndex lists the aliases naming each branch, as aliasesOf finds
// them, for many deletions in a row.
type aliasIndex struct {
	of     map[string][]string // branch -> the aliases naming it
	target map[string]string   // alias -> the branch it names
}

// aliasIndex walks the aliases once.
func (r *Repo) aliasIndex() (*aliasIndex, error) {
	idx := &aliasIndex{of: map[string][]string{}, target: map[string]string{}}
	err := r.eachAlias("", func(alias, target string, err error) error {
		if err != nil {
			return nil
		}
		if _, err := r.resolveAlias(alias); err == nil {
			idx.of[target] = append(idx.of[target], alias)
			idx.target[alias] = target
		}
		return nil
	})
	return idx, err
}

// forget drops name, deleted, if it is an alias.
func (idx *aliasIndex) forget(name string) {
	if idx == nil {
		return
	}
	if t, ok := idx.target[name]; ok {
		idx.of[t] = slices.DeleteFunc(idx.of[t], func(a string) bool { return a == name })
		delete(idx.target, name)
	}
}

// DeleteRefs deletes the refs names, in order, holding the refs lock once,
// and makes the deletions durable together: each directory they leave is
// synced once, not once a ref. As with SetRef, an alias goes by its own
// name, and a branch an alias names (one not deleted before it in names)
// is refused. An error stops the deletions; it says how many were made.
func (r *Repo) DeleteRefs(names []string) error {
	for _, n := range names {
		if err := ValidateRefName(n); err != nil {
			return err
		}
	}
	if len(names) == 0 {
		return nil // nothing to write, even where nothing can be
	}
	unlock, err := r.holdRefs(refsLockSteps...)
	if err != nil {
		return fmt.Errorf("deleting refs: %w", err)
	}
	defer unlock()
	var idx *aliasIndex
	if slices.ContainsFunc(names, isBranch) {
		if idx, err = r.aliasIndex(); err != nil {
			return fmt.Errorf("deleting refs: %w", err)
		}
	}
	dirs := map[string]bool{}
	done := 0
	var failed error
	for _, n := range names {
		left, err := r.deleteRefIn(n, idx)
		if err != nil {
			failed = err
			break
		}
		dirs[left] = true
		done++
	}
	if r.Fsync() {
		if err := syncDirsDeepestFirst(dirs); err != nil && failed == nil {
			failed = err
		}
	}
	if failed != nil && done > 0 {
		return fmt.Errorf("%w (after deleting %d of %d refs)", failed, done, len(names))
	}
	return failed
}

// syncDirsDeepestFirst syncs each of dirs, deepest first, so that a
// directory's entry in its parent is recorded after what it holds. One
// removed since (emptied by a later deletion) is recorded in its parent,
// which is among dirs.
func syncDirsDeepestFirst(dirs map[string]bool) error {
	order := make([]string, 0, len(dirs))
	for d := range dirs {
		order = append(order, d)
	}
	sort.Slice(order, func(i, j int) bool { return strings.Count(order[i], "/") > strings.Count(order[j], "/") })
	for _, d := range order {
		if err := durable.SyncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeRefs does writeRef for each of names, in order, with ids[name], but
// makes them durable together when there are many: every new ref file is
// written beside its place, all are made durable by one syncfs, then each
// is renamed into place and each directory synced once. A pull that moves
// thousands of refs (a mirror's) then costs a few syncs, not two a ref.
func (r *Repo) writeRefs(names []string, ids map[string]ID, sync bool) error {
	if len(names) <= fewObjects {
		for _, n := range names {
			if err := r.writeRef(n, ids[n], sync); err != nil {
				return err
			}
		}
		return nil
	}
	type pending struct {
		name string
		st   *durable.Staged
		made []string
	}
	var todo []pending
	defer func() {
		for _, p := range todo {
			p.st.Abort()
			durable.RemoveDirs(p.made)
		}
	}()
	dirs := map[string]bool{}
	var idx *aliasIndex // made at the first deletion of a branch
	for _, n := range names {
		if ids[n].IsZero() {
			if idx == nil && isBranch(n) {
				var err error
				if idx, err = r.aliasIndex(); err != nil {
					return err
				}
			}
			left, err := r.deleteRefIn(n, idx)
			if err != nil {
				return err
			}
			dirs[left] = true
			continue
		}
		p, made, err := r.refPlace(n, false)
		if err != nil {
			return err
		}
		st, err := durable.Stage(p, refContent(ids[n]), 0o644, false)
		if err != nil {
			durable.RemoveDirs(made)
			return fmt.Errorf("writing ref %s: %w", n, err)
		}
		todo = append(todo, pending{n, st, made})
		dirs[filepath.Dir(p)] = true
		for _, m := range made {
			dirs[filepath.Dir(m)] = true
		}
	}
	if sync && len(todo) > 0 {
		if err := durable.SyncFS(r.Path("refs")); err != nil {
			return fmt.Errorf("writing refs: %w", err)
		}
	}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		if err := p.st.Replace(); err != nil {
			return fmt.Errorf("writing ref %s: %w", p.name, err)
		}
	}
	if !sync {
		return nil
	}
	return syncDirsDeepestFirst(dirs)
}

// pruneRefDirs removes now-empty directories left by deleting "a/b/c" and
// returns the directory that remains (the one to sync).
func (r *Repo) pruneRefDirs(dir string) string {
	stop := map[string]bool{r.Path("refs", "heads"): true, r.Path("refs", "remotes"): true, r.Path("refs"): true}
	for !stop[dir] && os.Remove(dir) == nil {
		dir = filepath.Dir(dir)
	}
	return dir
}

// SetRef points ref at commit durably, outside any transaction. Setting an
// alias sets the branch it ends at. A zero commit deletes the ref, or the
// alias itself; deleting a branch that an alias names is an
// AliasedRefError.
//
// The commit must be stored with its root dirtree and root dirmeta (not
// its whole tree: that walk would cost as much as a checkout), unless it
// is marked partial (IsCommitPartial), which says its objects may be
// missing; otherwise SetRef returns a *RefTargetError naming the ref, the
// commit and the object missing, and leaves the ref as it was.
//
// It holds the refs lock while it checks and writes: the one LockRefs
// took through this Repo, which a caller takes to read a ref and write it
// with no other writer in between; else its own, taken and released here
// (which waits for another holder up to the lock timeout, then fails with
// ErrLocked).
func (r *Repo) SetRef(name string, commit ID) error {
	if err := ValidateRefName(name); err != nil {
		return err
	}
	unlock, err := r.holdRefs(refsLockSteps...)
	if err != nil {
		return fmt.Errorf("writing ref %s: %w", name, err)
	}
	defer unlock()
	if !commit.IsZero() {
		if err := r.checkRefTarget(nil, name, commit); err != nil {
			return err
		}
		if r.Fsync() {
			// The ref is durable only if what it points at is
			// (Txn.Commit makes sure in moveIn).
			if err := r.syncUnsynced(); err != nil {
				return fmt.Errorf("writing ref %s: %w", name, err)
			}
		}
	}
	return r.writeRef(name, commit, r.Fsync())
}

// checkRefTarget returns a *RefTargetError unless commit, which ref is to
// point at, is stored or staged by t (when not nil) with its root dirtree
// and root dirmeta, or is marked partial. The caller holds the repository
// lock, so that nothing found here is deleted before the ref is written.
// A commit t staged is not read again (t recorded its roots), and roots t
// staged cost a map lookup: the check adds at most a stat or two to a
// commit.
func (r *Repo) checkRefTarget(t *Txn, ref string, commit ID) error {
	fail := func(err error) error { return &RefTargetError{Ref: ref, Commit: commit, Err: err} }
	var roots [2]ID
	known := false
	if t != nil {
		roots, known = t.commitRoots(commit)
	}
	if !known {
		c, err := r.ReadCommit(commit)
		if err != nil {
			return fail(err)
		}
		roots = [2]ID{c.RootTree, c.RootMeta}
	}
	has := r.HasObject
	if t != nil {
		has = t.Has // stored or staged
	}
	for i, kind := range [2]Kind{KindDirTree, KindDirMeta} {
		ok, err := has(kind, roots[i])
		switch {
		case err != nil:
			return fail(err)
		case ok:
		case r.IsCommitPartial(commit):
			return nil
		default:
			return fail(&ObjectMissingError{kind, roots[i]})
		}
	}
	return nil
}

// ListRefs returns every ref, local branches first then remote ones, each
// sorted by name. A non-empty prefix keeps only names that equal it or start
// with prefix + "/" (or, for "remote:", that remote's refs). Aliases are
// listed with the commit they end at. It sees the refs ReadRef reads: a
// symlinked refs/, refs/heads or refs/remotes is followed, and a symlink
// below them is not. Ref files that cannot be read (a corrupt one, say),
// and symlinks that lead to something that is not read as a ref (an alias
// to a file outside refs/heads, a symlinked directory of refs), are an
// *UnreadableRefsError naming them, returned with every other ref, so that
// a caller can still list or delete them, and prune, which cannot know
// what they name, refuses to run. A broken alias that leads nowhere (to a
// missing branch, or in a loop) names no commit and is left out:
// ListAliases and fsck show it. A directory of refs that cannot be read is
// an error.
func (r *Repo) ListRefs(prefix string) ([]Ref, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	var refs []Ref
	bad := &UnreadableRefsError{}
	err := r.walkRefs(true, prefix, func(e refEntry) error {
		if e.dirErr != nil {
			return e.dirErr
		}
		if !matchesPrefix(e.name, prefix) {
			return nil // left out below: not worth an open
		}
		err := e.err
		ref := Ref{Name: e.name}
		if err == nil {
			if e.link && !strings.Contains(e.name, ":") {
				ref.Alias, _ = r.aliasTarget(e.name) // an error: the read fails too
			}
			// The walk does not descend into symlinks, so the entry's
			// directories are real ones: no refFile check is needed.
			if err = ValidateRefName(e.name); err != nil {
				err = fmt.Errorf("ref file %s: %w", e.path, err)
			} else {
				ref.Commit, err = r.readRefFile(e.name, e.path)
			}
		}
		switch {
		case err == nil:
			refs = append(refs, ref)
		case !mayNameCommit(e, err):
			// A broken alias naming no commit (ListAliases and fsck show
			// it), or a ref deleted since the walk saw it.
		default:
			bad.Refs = append(bad.Refs, e.name)
			bad.Errs = append(bad.Errs, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing refs: %w", err)
	}
	sort.SliceStable(refs, func(i, j int) bool {
		ri, rj := strings.Contains(refs[i].Name, ":"), strings.Contains(refs[j].Name, ":")
		if ri != rj {
			return !ri
		}
		return refs[i].Name < refs[j].Name
	})
	if len(bad.Refs) > 0 {
		return refs, bad
	}
	return refs, nil
}

// mayNameCommit reports whether entry e, which could not be read as a ref
// (err), may still name a commit that a prune must keep: anything but a
// symlink that ends at nothing (a missing file, or a loop: an alias so
// broken names no commit) and a ref file deleted since the walk saw it.
func mayNameCommit(e refEntry, err error) bool {
	if e.link {
		_, serr := os.Stat(e.path)
		return !errors.Is(serr, fs.ErrNotExist) && !errors.Is(serr, unix.ELOOP)
	}
	return !errors.As(err, new(*RefNotFoundError))
}

// refEntry is one thing walkRefs finds where a ref may be.
type refEntry struct {
	name string // the ref it stands for ("branch", "remote:branch"), valid or not
	path string // its file
	// link is set for a symlink: an alias, or one planted by hand.
	link bool
	// err, when set, says why the entry is no ref that can be read
	// (a symlink in place of a directory of refs).
	err error
	// dirErr, when set, says why the directory of refs at path could not
	// be read (name and link are then unset): refs below it are unknown.
	dirErr error
}

// walkRefs calls fn, in name order, for every entry of refs/heads (and of
// refs/remotes if remotes is true) that is not a directory, and for every
// directory it cannot read; an error from fn stops the walk and is
// returned. A non-empty prefix skips the directories that can hold no ref
// matching it (matchesPrefix), so that listing one directory of many
// refs does not read them all; fn still sees some entries that do not
// match. A symlinked refs/, refs/heads or refs/remotes is followed, as
// ReadRef and writeRef follow it (and as OSTree lists refs); a symlink
// below them is never followed (refFile), and is an entry of its own.
// Names starting with "." are writers' temporary files and are skipped. A
// missing refs/heads or refs/remotes holds no refs; a dangling symlink in
// its place, or a missing refs/, is a directory that cannot be read.
func (r *Repo) walkRefs(remotes bool, prefix string, fn func(refEntry) error) error {
	// refs/ itself is where the roots are looked for: if it is gone (a
	// dangling symlink, say), their absence says nothing.
	if fi, err := os.Stat(r.Path("refs")); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", r.Path("refs"))
		}
		return fn(refEntry{path: r.Path("refs"), dirErr: err})
	}
	if err := r.walkRefDir(r.Path("refs", "heads"), "", prefix, fn); err != nil || !remotes {
		return err
	}
	root := r.Path("refs", "remotes")
	ents, err := readRefDir(root)
	if err != nil {
		return fn(refEntry{path: root, dirErr: err})
	}
	for _, e := range ents {
		p := filepath.Join(root, e.Name())
		switch {
		case e.IsDir() && !mayHoldPrefix(e.Name()+":", prefix):
		case e.IsDir():
			err = r.walkRefDir(p, e.Name()+":", prefix, fn)
		case e.Type()&fs.ModeSymlink != 0:
			// A remote's directory, or a file in its place, planted as
			// a symlink: refFile reads nothing through it.
			err = fn(refEntry{name: e.Name() + ":", path: p, link: true,
				err: fmt.Errorf("ref directory %s of remote %s is a symlink, not a directory (refs never lead outside refs/)", p, e.Name())})
		default:
			err = fn(refEntry{name: e.Name() + ":", path: p})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// walkRefDir walks the refs below dir, whose name is prefix followed by
// their path below it, skipping directories that hold none matching
// under.
func (r *Repo) walkRefDir(dir, prefix, under string, fn func(refEntry) error) error {
	ents, err := readRefDir(dir)
	if err != nil {
		return fn(refEntry{path: dir, dirErr: err})
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		name := prefix + e.Name()
		switch {
		case e.IsDir() && !mayHoldPrefix(name+"/", under):
		case e.IsDir():
			err = r.walkRefDir(p, name+"/", under, fn)
		case e.Type()&fs.ModeSymlink != 0:
			ent := refEntry{name: name, path: p, link: true}
			if fi, serr := os.Stat(p); serr == nil && fi.IsDir() {
				ent.err = fmt.Errorf("ref %s (%s) is a symlink to a directory: refs below it are never read (refs never lead outside refs/)", name, p)
			}
			err = fn(ent)
		default:
			err = fn(refEntry{name: name, path: p})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readRefDir reads a directory of refs, sorted by name and without the
// temporary files of writers. A directory that is not there (its
// parent's ref was deleted meanwhile, or an old repository lacks it) is
// empty; one that is a dangling symlink is an error naming both.
func readRefDir(dir string) ([]fs.DirEntry, error) {
	if refReadHook != nil {
		refReadHook(dir)
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fi, lerr := os.Lstat(dir)
		if lerr != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return nil, nil
		}
		link, _ := os.Readlink(dir)
		return nil, fmt.Errorf("%s is a symlink to %s, which does not exist", dir, link)
	}
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") }), nil
}

// matchesPrefix tells whether a ref name equals prefix or lies below it; an
// empty prefix matches everything.
func matchesPrefix(name, prefix string) bool {
	return prefix == "" || name == prefix || strings.HasPrefix(name, strings.TrimSuffix(prefix, "/")+"/") ||
		(strings.HasSuffix(prefix, ":") && strings.HasPrefix(name, prefix))
}

// mayHoldPrefix tells whether the directory of refs whose names start with
// dir ("a/b/" or "remote:") may hold refs that match prefix: it is above
// prefix's place or below it.
func mayHoldPrefix(dir, prefix string) bool {
	if prefix == "" {
		return true
	}
	below := prefix
	if !strings.HasSuffix(prefix, ":") {
		below = strings.TrimSuffix(prefix, "/") + "/"
	}
	return strings.HasPrefix(below, dir) || strings.HasPrefix(dir, below)
}

// ResolveRev resolves a revision to a commit id. A revision is a branch
// ("os/x86_64/stable"), a remote ref ("origin:stable"), a full id or a unique
// prefix of a commit id (4 hex digits at least; a branch of the same name
// wins), optionally followed by "^" (parent, repeatable) or "~N" (N-th
// ancestor). A branch that is not here resolves to the remote-tracking ref
// of that name when one remote has it.
func (r *Repo) ResolveRev(rev string) (ID, error) {
	if err := r.checkOpen(); err != nil {
		return ID{}, err
	}
	base, ups, err := splitRev(rev)
	if err != nil {
		return ID{}, err
	}
	id, err := r.resolveBase(base)
	if err != nil {
		return ID{}, err
	}
	for i := 0; i < ups; i++ {
		c, err := r.ReadCommit(id)
		if err != nil {
			return ID{}, fmt.Errorf("resolving %s: %w", rev, err)
		}
		if c.Parent.IsZero() {
			return ID{}, &NoParentError{Rev: rev, Commit: id}
		}
		id = c.Parent
	}
	return id, nil
}

func splitRev(given string) (string, int, error) {
	rev, ups := given, 0
	for {
		switch {
		case strings.HasSuffix(rev, "^"):
			rev = rev[:len(rev)-1]
			if ups < math.MaxInt {
				ups++
			}
			continue
		case strings.Contains(rev, "~"):
			i := strings.LastIndexByte(rev, '~')
			n, err := strconv.Atoi(rev[i+1:])
			if rev[i+1:] == "" {
				n, err = 1, nil
			}
			// Decimal digits only: Atoi also takes a sign ("~+1", "~-0").
			if strings.TrimLeft(rev[i+1:], "0123456789") != "" || err != nil && !errors.Is(err, strconv.ErrRange) {
				return "", 0, fmt.Errorf("invalid revision %q: bad ~N suffix", given)
			}
			rev = rev[:i]
			// A count past any history stays one (n is MaxInt when out
			// of range), rather than wrapping round to a small one.
			if n > math.MaxInt-ups {
				ups = math.MaxInt
			} else {
				ups += n
			}
			continue
		}
		break
	}
	if rev == "" && given == "" {
		return "", 0, fmt.Errorf("invalid revision: empty")
	}
	if rev == "" {
		return "", 0, fmt.Errorf("invalid revision %q: no ref or commit before the ^ or ~ suffix", given)
	}
	return rev, ups, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (r *Repo) resolveBase(rev string) (ID, error) {
	if len(rev) == 64 && isHex(rev) {
		return ParseID(rev)
	}
	if ValidateRefName(rev) == nil {
		id, err := r.ReadRef(rev)
		if err == nil || !errors.Is(err, ErrNotFound) || errors.As(err, new(*DanglingAliasError)) {
			return id, err
		}
		if !strings.Contains(rev, ":") {
			if id, ok, err := r.resolveRemoteBranch(rev); ok || err != nil {
				return id, err
			}
		}
	}
	if len(rev) >= 4 && len(rev) < 64 && isHex(rev) {
		return r.resolvePrefix(rev)
	}
	return ID{}, &RefNotFoundError{rev}
}

// resolveRemoteBranch resolves a branch name that is no local branch, as
// OSTree does, to the remote-tracking ref of that name: REMOTE:branch. The
// refs of several remotes that name different commits are ambiguous (an
// AmbiguousRefError listing them) rather than one picked at random.
func (r *Repo) resolveRemoteBranch(branch string) (ID, bool, error) {
	remotes, err := os.ReadDir(r.Path("refs", "remotes"))
	if err != nil {
		return ID{}, false, nil
	}
	var found []string
	var id ID
	for _, rm := range remotes {
		name := rm.Name() + ":" + branch
		got, err := r.ReadRef(name)
		if errors.Is(err, ErrNotFound) || ValidateRefName(name) != nil {
			continue
		}
		if err != nil {
			return ID{}, false, err
		}
		if len(found) > 0 && got != id {
			return ID{}, false, &AmbiguousRefError{Ref: branch, Candidates: append(found, name)}
		}
		found, id = append(found, name), got
	}
	return id, len(found) > 0, nil
}

// resolvePrefix finds the one commit whose id starts with prefix.
func (r *Repo) resolvePrefix(prefix string) (ID, error) {
	ents, err := os.ReadDir(r.Path("objects", prefix[:2]))
	if err != nil {
		return ID{}, fmt.Errorf("resolving %s: %w", prefix, err)
	}
	var matches []ID
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".commit") || !strings.HasPrefix(n, prefix[2:]) {
			continue
		}
		if id, err := ParseID(prefix[:2] + strings.TrimSuffix(n, ".commit")); err == nil {
			matches = append(matches, id)
		}
	}
	switch len(matches) {
	case 0:
		return ID{}, &RefNotFoundError{prefix}
	case 1:
		return matches[0], nil
	}
	return ID{}, &AmbiguousPrefixError{prefix, matches}
}
