package repo

import (
	"fmt"
	"slices"
	"strings"
)

// RefBindingKey is the commit metadata key listing the refs a commit was
// made for. A pull of ref R refuses a commit that lists bindings without R,
// so a server (or anyone between it and the client) cannot serve one
// branch's commit as another's: an old commit of a test branch as the
// stable one, say.
const RefBindingKey = "otree.ref-binding"

// EncodeRefBinding returns the RefBindingKey value for refs: the names
// sorted, deduplicated and joined by '\n' (ref names never hold one).
func EncodeRefBinding(refs []string) []byte {
	s := slices.Clone(refs)
	slices.Sort(s)
	return []byte(strings.Join(slices.Compact(s), "\n"))
}

// RefBindings returns the refs c is bound to and whether it carries the
// binding at all (commits made with bindings turned off do not).
func (c *Commit) RefBindings() ([]string, bool) {
	v, ok := c.Metadata.Get(RefBindingKey)
	if !ok {
		return nil, false
	}
	if len(v) == 0 {
		return []string{}, true
	}
	return strings.Split(string(v), "\n"), true
}

// RefBindingError reports a commit whose ref binding does not include the
// ref it was fetched for.
type RefBindingError struct {
	Commit   ID       // the commit refused
	Ref      string   // the ref it was fetched or checked for
	Bindings []string // the refs it is bound to
}

// Error names the commit, the ref asked for and the refs it is bound to.
func (e *RefBindingError) Error() string {
	return fmt.Sprintf("commit %s is bound to refs [%s], not to %q: refusing it for that ref",
		e.Commit, strings.Join(e.Bindings, ", "), e.Ref)
}

// CheckRefBinding returns a *RefBindingError when c (whose id is id)
// carries a ref binding that does not list ref. A commit without a binding
// passes: older commits and those made with bindings off have none.
func CheckRefBinding(id ID, c *Commit, ref string) error {
	b, ok := c.RefBindings()
	if !ok || slices.Contains(b, ref) {
		return nil
	}
	return &RefBindingError{Commit: id, Ref: ref, Bindings: b}
}
