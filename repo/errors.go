package repo

import (
	"errors"
	"fmt"
)

// ErrNotFound is matched (with errors.Is) by every error that reports a
// missing object or ref.
var ErrNotFound = errors.New("not found")

// ErrLocked is returned when the repository lock could not be taken in time.
var ErrLocked = errors.New("repository is locked")

// ObjectMissingError reports an object that is not in the repository.
type ObjectMissingError struct {
	Kind Kind
	ID   ID
}

func (e *ObjectMissingError) Error() string {
	return fmt.Sprintf("%s object %s is missing", e.Kind, e.ID)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *ObjectMissingError) Is(target error) bool { return target == ErrNotFound }

// CorruptObjectError reports an object whose bytes do not hash to its name or
// do not decode.
type CorruptObjectError struct {
	Kind   Kind
	ID     ID     // the id the object is stored under
	Actual ID     // what its bytes hash to, zero when decoding failed first
	Path   string // where it is stored, when known
	Reason string
}

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

// RefNotFoundError reports a ref or revision that does not resolve.
type RefNotFoundError struct {
	Ref string
}

func (e *RefNotFoundError) Error() string { return fmt.Sprintf("ref %q not found", e.Ref) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *RefNotFoundError) Is(target error) bool { return target == ErrNotFound }

// AmbiguousPrefixError reports an id prefix that matches several commits.
type AmbiguousPrefixError struct {
	Prefix  string
	Matches []ID
}

func (e *AmbiguousPrefixError) Error() string {
	return fmt.Sprintf("commit prefix %q is ambiguous: matches %d commits (%s, %s, ...)",
		e.Prefix, len(e.Matches), e.Matches[0].Short(), e.Matches[1].Short())
}
