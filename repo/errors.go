package repo

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is matched (with errors.Is) by every error that reports a
// missing object or ref.
var ErrNotFound = errors.New("not found")

// ErrLocked is returned when the repository lock could not be taken in time.
var ErrLocked = errors.New("repository is locked")

// ErrExists is wrapped by Init's error when a repository is already there.
var ErrExists = errors.New("a repository already exists there")

// ErrNotEmpty is wrapped by Init's error when the directory holds
// something other than a repository.
var ErrNotEmpty = errors.New("directory is not empty")

// ErrNotRepository is matched (with errors.Is) by Open's error for a path
// that holds no otree repository.
var ErrNotRepository = errors.New("not an otree repository")

// ErrNoConfig is matched (with errors.Is), besides ErrNotRepository, by
// Open's error for a directory without a config file: no repository was
// made there, or its Init did not finish (Init writes the config last).
var ErrNoConfig = errors.New("no config file")

// ErrClosed is matched (with errors.Is) by the errors of a Repo used after
// Close.
var ErrClosed = errors.New("repository is closed")

// closedError names the closed repository.
type closedError struct{ path string }

func (e *closedError) Error() string { return "repository " + e.path + " is closed" }

// Is makes errors.Is(err, ErrClosed) true.
func (e *closedError) Is(target error) bool { return target == ErrClosed }

// ObjectMissingError reports an object that is not in the repository.
type ObjectMissingError struct {
	Kind Kind // the kind of object looked for
	ID   ID   // its id
}

// Error names the missing object.
func (e *ObjectMissingError) Error() string {
	return fmt.Sprintf("%s object %s is missing", e.Kind, e.ID)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *ObjectMissingError) Is(target error) bool { return target == ErrNotFound }

// RefTargetError reports a ref left as it was because the commit it was
// to point at is not complete enough to name: the commit object, or its
// root dirtree or root dirmeta, is neither stored nor staged by the
// transaction writing the ref (or the commit cannot be read). Such a ref
// would name a tree no checkout can read, found only by a later fsck. A
// commit marked partial (MarkCommitPartial: by a pull of commit metadata
// only or of subpaths, or by Fsck with Delete) is expected to lack its
// tree, and gets the ref.
type RefTargetError struct {
	Ref    string // the ref that was to point at Commit
	Commit ID     // the commit
	// Err is why: an *ObjectMissingError naming the commit or its root
	// dirtree or dirmeta, or the error reading the commit.
	Err error
}

// Error names the ref, the commit and what is missing.
func (e *RefTargetError) Error() string {
	var me *ObjectMissingError
	if errors.As(e.Err, &me) && me.Kind != KindCommit {
		return fmt.Sprintf("cannot point ref %s at commit %s: its root %v", e.Ref, e.Commit, e.Err)
	}
	return fmt.Sprintf("cannot point ref %s at commit %s: %v", e.Ref, e.Commit, e.Err)
}

// Unwrap returns why: errors.Is(err, ErrNotFound) holds for a missing
// object.
func (e *RefTargetError) Unwrap() error { return e.Err }

// PartialCommitError is a missing object met in a commit marked partial:
// pulled with subpaths or commit metadata only, so the object was never
// pulled rather than lost, or marked by Fsck with Delete, which found
// objects it needs corrupt or missing. It unwraps to the
// ObjectMissingError.
type PartialCommitError struct {
	Commit ID    // the commit marked partial
	Fsck   bool  // fsck marked it, finding it damaged, rather than a pull
	Err    error // the *ObjectMissingError
}

// Error names the partial commit and why it is partial.
func (e *PartialCommitError) Error() string {
	if e.Fsck {
		return fmt.Sprintf("%v (fsck --delete marked commit %s partial, finding objects it needs corrupt or missing; a pull of all of it completes it)", e.Err, e.Commit)
	}
	return fmt.Sprintf("%v (commit %s was pulled only in part; a pull of all of it completes it)", e.Err, e.Commit)
}

// Unwrap returns the missing-object error.
func (e *PartialCommitError) Unwrap() error { return e.Err }

// ExplainMissing returns err wrapped in a PartialCommitError when it
// reports a missing object and commit is marked partial, else err itself.
func (r *Repo) ExplainMissing(commit ID, err error) error {
	var me *ObjectMissingError
	if err == nil || !errors.As(err, &me) || !r.IsCommitPartial(commit) {
		return err
	}
	return &PartialCommitError{Commit: commit, Fsck: r.isCommitPartialFsck(commit), Err: err}
}

// CorruptObjectError reports an object whose bytes do not hash to its name or
// do not decode.
type CorruptObjectError struct {
	Kind   Kind   // the object's kind
	ID     ID     // the id the object is stored under
	Actual ID     // what its bytes hash to, zero when decoding failed first
	Path   string // where it is stored, when known
	Reason string // what is wrong, for humans; may be empty when Actual is set
}

// Error names the object and what is wrong with it.
func (e *CorruptObjectError) Error() string {
	where := ""
	if e.Path != "" {
		where = " (" + e.Path + ")"
	}
	if !e.Actual.IsZero() && e.Actual != e.ID {
		return fmt.Sprintf("%s object %s%s is corrupt: content hashes to %s", e.Kind, e.ID, where, e.Actual)
	}
	return fmt.Sprintf("%s object %s%s is corrupt: %s", e.Kind, e.ID, where, e.Reason)
}

// NoParentError reports a revision ("main^^") that climbs past the first
// commit of a history.
type NoParentError struct {
	Rev    string // the revision as given
	Commit ID     // the commit without a parent
}

// Error names the commit without a parent.
func (e *NoParentError) Error() string {
	return fmt.Sprintf("revision %s: commit %s has no parent", e.Rev, e.Commit)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NoParentError) Is(target error) bool { return target == ErrNotFound }

// RefNotFoundError reports a ref or revision that does not resolve.
type RefNotFoundError struct {
	Ref string // the ref, revision or id prefix as given
}

// Error names the ref.
func (e *RefNotFoundError) Error() string { return fmt.Sprintf("ref %q not found", e.Ref) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *RefNotFoundError) Is(target error) bool { return target == ErrNotFound }

// CorruptRefError reports a ref file that does not hold a commit id.
type CorruptRefError struct {
	Ref  string // the ref (the branch an alias ends at, for an alias)
	Path string // its file
	Err  error  // why its content is no id
}

// Error names the ref and its file.
func (e *CorruptRefError) Error() string {
	return fmt.Sprintf("ref %s (%s) is corrupt: %v", e.Ref, e.Path, e.Err)
}

// Unwrap returns why the content is no id.
func (e *CorruptRefError) Unwrap() error { return e.Err }

// UnreadableRefsError reports the refs ListRefs could not read, corrupt
// ones (*CorruptRefError) or ones whose file could not be opened.
type UnreadableRefsError struct {
	Refs []string // their names
	Errs []error  // why, one for each name, each naming its ref
}

// Error lists why each ref could not be read.
func (e *UnreadableRefsError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return "listing refs: " + strings.Join(msgs, "; ")
}

// Unwrap returns the error of each ref.
func (e *UnreadableRefsError) Unwrap() []error { return e.Errs }

// AmbiguousRefError reports a branch name that is no local branch and that
// the remote-tracking refs of several remotes give different commits.
type AmbiguousRefError struct {
	Ref        string   // the branch name as given
	Candidates []string // REMOTE:branch refs
}

// Error names the ref and the refs it could mean.
func (e *AmbiguousRefError) Error() string {
	return fmt.Sprintf("ref %q is no local branch and is ambiguous: %s name different commits; give one of them", e.Ref, strings.Join(e.Candidates, ", "))
}

// AmbiguousPrefixError reports an id prefix that matches several commits.
type AmbiguousPrefixError struct {
	Prefix  string // the hex prefix as given
	Matches []ID   // the commits whose ids start with it
}

// Error names the prefix and the first two ids it matches, with "..."
// when it matches more. The ids are shortened as Short does, or less when
// they would then read alike.
func (e *AmbiguousPrefixError) Error() string {
	more := ""
	if len(e.Matches) > 2 {
		more = ", ..."
	}
	a, b := e.Matches[0].String(), e.Matches[1].String()
	n := len(e.Matches[0].Short())
	for n < len(a) && a[:n] == b[:n] {
		n++
	}
	return fmt.Sprintf("commit prefix %q is ambiguous: matches %d commits (%s, %s%s)",
		e.Prefix, len(e.Matches), a[:n], b[:n], more)
}
