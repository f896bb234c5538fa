package repo

import (
	"fmt"
	"strings"
)

// A collection ID names a repository's refs globally, in reverse-DNS form
// ("org.example.Os"), as OSTree's collection IDs do: a commit made in a
// repository that has one is bound to it (CollectionBindingKey), and a
// pull from a remote configured with one refuses commits bound to another.

// CollectionBindingKey is the commit metadata key holding the collection ID
// of the repository a commit was made in.
const CollectionBindingKey = "otree.collection-binding"

// collectionKey is the config key of a repository's collection ID.
const collectionKey = "core.collection-id"

// ValidateCollectionID checks a collection ID: two or more components
// separated by '.', each starting with an ASCII letter or '_' and made of
// ASCII letters, digits and '_', 255 bytes at most (OSTree's rule).
func ValidateCollectionID(id string) error {
	comps := strings.Split(id, ".")
	if len(id) > 255 || len(comps) < 2 {
		return fmt.Errorf("invalid collection ID %q: want two or more '.'-separated components, as in org.example.Os", id)
	}
	for _, c := range comps {
		if c == "" {
			return fmt.Errorf("invalid collection ID %q: empty component", id)
		}
		for i, ch := range c {
			ok := ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || (i > 0 && ch >= '0' && ch <= '9')
			if !ok {
				return fmt.Errorf("invalid collection ID %q: character %s not allowed there", id, quoteChar(c, i))
			}
		}
	}
	return nil
}

// CollectionID returns the repository's collection ID ("" when it has
// none).
func (r *Repo) CollectionID() string {
	id, _ := r.config.Get(collectionKey)
	return id
}

// RemoteCollectionID returns the collection ID configured for the remote
// name, in the config or the remotes directory (its collection-id key;
// "" when it has none).
func (r *Repo) RemoteCollectionID(name string) string {
	secs, _ := r.RemoteSections()
	for _, s := range secs {
		if s.Name == name {
			return s.Keys["collection-id"]
		}
	}
	return ""
}

// RefCollectionID returns the collection a ref belongs to: the
// repository's for a local branch, its remote's for "remote:branch" ("" for
// none).
func (r *Repo) RefCollectionID(ref string) string {
	if rm, _, ok := strings.Cut(ref, ":"); ok {
		return r.RemoteCollectionID(rm)
	}
	return r.CollectionID()
}

// CollectionBinding returns the collection ID c is bound to, and whether
// it carries one.
func (c *Commit) CollectionBinding() (string, bool) {
	v, ok := c.Metadata.Get(CollectionBindingKey)
	return string(v), ok
}

// CollectionBindingError reports a commit bound to another collection than
// the one it was fetched from or is checked against.
type CollectionBindingError struct {
	Commit  ID     // the commit refused
	Want    string // the collection asked for
	Binding string // the commit's
}

// Error names the commit and both collections.
func (e *CollectionBindingError) Error() string {
	return fmt.Sprintf("commit %s is bound to collection %s, not %s: refusing it", e.Commit, e.Binding, e.Want)
}

// CheckCollectionBinding returns a *CollectionBindingError when c carries a
// collection binding other than want. A commit without one passes, as does
// any commit when want is "".
func CheckCollectionBinding(id ID, c *Commit, want string) error {
	b, ok := c.CollectionBinding()
	if want == "" || !ok || b == want {
		return nil
	}
	return &CollectionBindingError{Commit: id, Want: want, Binding: b}
}
