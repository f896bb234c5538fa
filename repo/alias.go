package repo

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/otree/otree/internal/durable"
)

// An alias is a local branch that stands for another local branch (OSTree's
// `refs --alias`): a symlink in refs/heads whose text is the other branch's
// file as a path relative to the alias's directory. Reading an alias reads
// the branch it ends at, writing one writes that branch, and deleting one
// deletes only the alias; a branch that an alias names cannot be deleted
// before the alias, so no alias is left pointing at nothing.

// maxAliasDepth bounds a chain of aliases, so that a loop made by hand is
// an error and not a hang.
const maxAliasDepth = 8

// reservedPrefix holds the refs deployments keep and drop on their own;
// an alias may neither be one nor name one.
const reservedPrefix = "otree/"

// Alias is a local branch name that stands for another.
type Alias struct {
	Name   string `json:"name"`   // the alias's branch name
	Target string `json:"target"` // the branch it stands for, which may itself be an alias
	// Commit is where the chain of aliases ends; zero if the alias is
	// broken (by hand: otree makes none), and Problem then says how.
	Commit  ID     `json:"commit"`
	Problem string `json:"problem,omitempty"` // why the alias is broken; "" when it is not
}

// DanglingAliasError reports an alias whose chain ends at a branch that
// does not exist.
type DanglingAliasError struct {
	Alias, Target string // the alias, and the missing branch its chain ends at
}

// Error names the alias and what it points at.
func (e *DanglingAliasError) Error() string {
	return fmt.Sprintf("ref %q is an alias of %q, which does not exist", e.Alias, e.Target)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *DanglingAliasError) Is(target error) bool { return target == ErrNotFound }

// AliasedRefError reports a branch that cannot be deleted because aliases
// name it.
type AliasedRefError struct {
	Ref     string   // the branch asked to be deleted
	Aliases []string // the aliases that name it
}

// Error names the branch and the aliases that point at it.
func (e *AliasedRefError) Error() string {
	return fmt.Sprintf("cannot delete ref %s: %s an alias of it (delete %s first, or with it)",
		e.Ref, pluralIs(e.Aliases), strings.Join(e.Aliases, ", "))
}

func pluralIs(names []string) string {
	if len(names) == 1 {
		return names[0] + " is"
	}
	return strings.Join(names, ", ") + " are"
}

// aliasTarget returns the branch the local ref name is an alias of, or ""
// when name is an ordinary ref or does not exist. A symlink that leaves
// refs/heads, names no valid branch, or stands in refs/remotes is an error.
func (r *Repo) aliasTarget(name string) (string, error) {
	p, err := r.refFile(name)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return "", nil // an ordinary ref, or an error the read reports
	}
	if strings.Contains(name, ":") {
		return "", fmt.Errorf("ref %s (%s) is a symlink: only local branches can be aliases", name, p)
	}
	link, err := os.Readlink(p)
	if err != nil {
		return "", fmt.Errorf("reading alias %s: %w", name, err)
	}
	heads := r.Path("refs", "heads")
	rel, err := filepath.Rel(heads, filepath.Join(filepath.Dir(p), link))
	target := filepath.ToSlash(rel)
	if filepath.IsAbs(link) || err != nil || target == "." || strings.HasPrefix(target, "../") || target == ".." {
		return "", fmt.Errorf("alias %s (%s) points at %s, outside refs/heads", name, p, link)
	}
	if err := validateRefPath(target); err != nil {
		return "", fmt.Errorf("alias %s (%s) points at %s: %w", name, p, link, err)
	}
	return target, nil
}

// resolveAlias follows name through any aliases to the ref that holds a
// commit id, and returns that ref's name (name itself if not an alias).
func (r *Repo) resolveAlias(name string) (string, error) {
	cur := name
	for range maxAliasDepth + 1 {
		t, err := r.aliasTarget(cur)
		if err != nil || t == "" {
			return cur, err
		}
		cur = t
	}
	return "", fmt.Errorf("alias %s: more than %d aliases in a chain, or a loop", name, maxAliasDepth)
}

// aliasesOf returns the aliases whose own target is name and whose chain
// ends at a ref. A broken alias (a loop, or a symlink leaving refs/heads)
// protects nothing, so a loop made by hand can be deleted.
func (r *Repo) aliasesOf(name string) ([]string, error) {
	var out []string
	err := r.eachAlias("", func(alias, target string, err error) error {
		if err != nil || target != name {
			return nil
		}
		if _, err := r.resolveAlias(alias); err == nil {
			out = append(out, alias)
		}
		return nil
	})
	return out, err
}

// eachAlias calls fn for each symlink among the local branches whose name
// matches prefix (as in ListRefs), with the branch it names or the error
// reading it. It walks refs/heads as ListRefs does: through a symlinked
// refs/heads, never through a symlink below it.
func (r *Repo) eachAlias(prefix string, fn func(name, target string, err error) error) error {
	err := r.walkRefs(false, prefix, func(e refEntry) error {
		if e.dirErr != nil {
			return e.dirErr
		}
		if !e.link || !matchesPrefix(e.name, prefix) {
			return nil
		}
		target, err := r.aliasTarget(e.name)
		return fn(e.name, target, err)
	})
	if err != nil {
		return fmt.Errorf("listing aliases: %w", err)
	}
	return nil
}

// ListAliases returns the aliases among the local branches, sorted by name;
// a non-empty prefix filters as in ListRefs. Symlinks that do not resolve
// to a commit id (broken by hand) are listed too, with a zero Commit, a
// Problem, and as Target the branch they name or else their text.
func (r *Repo) ListAliases(prefix string) ([]Alias, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	var out []Alias
	err := r.eachAlias(prefix, func(name, target string, err error) error {
		a := Alias{Name: name, Target: target}
		if err == nil {
			a.Commit, err = r.ReadRef(name)
		} else {
			a.Target, _ = os.Readlink(r.refPath(name))
		}
		if err != nil {
			a.Problem = err.Error()
		}
		out = append(out, a)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// SetAlias makes the local branch name an alias of the local branch
// target, which must exist, replacing whatever ref name was. Both must be
// local branches outside otree/, and the alias must not close a loop.
// It holds the refs lock while it writes, as SetRef does.
func (r *Repo) SetAlias(name, target string) error {
	for _, n := range []string{name, target} {
		if err := ValidateRefName(n); err != nil {
			return err
		}
		if strings.Contains(n, ":") {
			return fmt.Errorf("cannot alias %s to %s: aliases are local branches, and name local branches", name, target)
		}
		if strings.HasPrefix(n, reservedPrefix) {
			return fmt.Errorf("cannot alias %s to %s: refs under %s belong to deployments", name, target, reservedPrefix)
		}
	}
	unlock, err := r.holdRefs(refsLockSteps...)
	if err != nil {
		return fmt.Errorf("writing alias %s: %w", name, err)
	}
	defer unlock()
	for cur, i := target, 0; ; i++ {
		if cur == name {
			return fmt.Errorf("cannot alias %s to %s: %s leads back to %s", name, target, target, name)
		}
		t, err := r.aliasTarget(cur)
		if err != nil {
			return err
		}
		if t == "" || i == maxAliasDepth {
			break
		}
		cur = t
	}
	if _, err := r.ReadRef(target); err != nil {
		return fmt.Errorf("cannot alias %s to %s: %w", name, target, err)
	}
	p, err := r.refFile(name)
	if err != nil {
		return err
	}
	if err := removeRefLeftovers(p); err != nil {
		return fmt.Errorf("writing alias %s: %w", name, err)
	}
	dir := filepath.Dir(p)
	made, err := durable.MakeDirs(dir, durable.DirPerm, r.Fsync())
	if err != nil {
		return fmt.Errorf("writing alias %s: %w", name, err)
	}
	// An alias that is not written leaves no directories.
	fail := func(err error) error {
		durable.RemoveDirs(made)
		return fmt.Errorf("writing alias %s: %w", name, err)
	}
	// The text climbs to refs/heads and names the target from there, as
	// OSTree writes it.
	link := strings.Repeat("../", strings.Count(name, "/")) + target
	tmp, err := os.CreateTemp(dir, durable.TempPattern)
	if err != nil {
		return fail(err)
	}
	tmp.Close()
	os.Remove(tmp.Name())
	if err := os.Symlink(link, tmp.Name()); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fail(err)
	}
	if !r.Fsync() {
		return nil
	}
	return durable.SyncDir(dir)
}

// BranchNames returns the names a commit to name lands under: the branch
// name ends at through any aliases, and every alias that ends there,
// sorted. A name that is not an alias and that no alias names gives
// itself alone.
func (r *Repo) BranchNames(name string) ([]string, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	final, err := r.resolveAlias(name)
	if err != nil {
		return nil, err
	}
	names := []string{final}
	if strings.Contains(final, ":") {
		return names, nil
	}
	err = r.eachAlias("", func(alias, _ string, err error) error {
		if err != nil {
			return nil // broken: names nothing
		}
		if end, err := r.resolveAlias(alias); err == nil && end == final {
			names = append(names, alias)
		}
		return nil
	})
	sort.Strings(names)
	return names, err
}
