package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

type refsFlags struct {
	create      string
	del, list   bool
	force       bool
	alias       bool
	collections bool
	createIsSet bool
}

func newRefsCommand(e *env) *cobra.Command {
	f := &refsFlags{}
	c := &cobra.Command{
		Use:   "refs [PREFIX] | --collections [COLLECTION-ID] | --create=NEWREF REV | --alias --create=NEWREF BRANCH | --delete PREFIX...",
		Short: "List, create or delete refs",
		Long: `List refs: local branches, then remote refs as "remote:branch", each sorted.
With PREFIX, list only refs equal to it or below it ("os" lists "os/x86_64/stable";
"origin:" lists that remote's refs), printed without the prefix unless --list;
a remote's refs keep their "REMOTE:" ("origin:os" lists "origin:x86_64/stable").

--create=NEWREF REV points a new ref at the commit REV resolves to; it fails if
NEWREF exists, unless --force.
--alias --create=NEWREF BRANCH makes NEWREF an alias of the local BRANCH: it
reads as BRANCH, and a commit or reset through it moves BRANCH. --alias alone
lists the aliases as "NAME -> BRANCH".
--collections (-c) lists "(COLLECTION, BRANCH)" for each ref that has a
collection ID: local branches that of the repository (init --collection-id),
remote refs that of their remote (remote add --collection-id), each
collection ref once. Its argument,
as OSTree's, is a COLLECTION-ID, not a PREFIX: only that collection's refs
are listed. --collections --create=COLLECTION-ID:BRANCH REV creates BRANCH
when COLLECTION-ID is the repository's own (otree keeps no refs/mirrors/
for other collections); as with --create, an existing BRANCH needs --force
(OSTree's overwrites it).
--delete PREFIX... deletes every ref matching each PREFIX as above; a PREFIX
matching no ref is noted on stderr and is no error, as in OSTree, so that a
cleanup can run again. Deleting an alias
deletes only the alias; a branch cannot be deleted while an alias that is
not deleted with it names it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.createIsSet = cmd.Flags().Changed("create")
			return runRefs(cmd, e, f, args)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.create, "create", "", "create ref NEWREF pointing at REV")
	fl.BoolVar(&f.del, "delete", false, "delete the refs matching each PREFIX")
	fl.BoolVar(&f.list, "list", false, "print full ref names, not names relative to PREFIX")
	fl.BoolVar(&f.force, "force", false, "with --create, overwrite an existing ref")
	fl.BoolVarP(&f.alias, "alias", "A", false, "with --create, create an alias of a branch; otherwise list aliases")
	fl.BoolVarP(&f.collections, "collections", "c", false, "list refs with their collection IDs")
	e.addJSON(c)
	return c
}

func runRefs(cmd *cobra.Command, e *env, f *refsFlags, args []string) error {
	createColl := "" // the collection of --collections --create's ref
	// Creating and deleting change refs: run to the end, whatever the
	// reader of standard output does.
	e.reader = e.reader && !f.createIsSet && !f.del
	switch {
	case f.createIsSet && f.del:
		return usagef("--create and --delete are exclusive")
	case f.alias && f.del:
		return usagef("--alias does not apply to --delete: deleting an alias by name deletes only the alias")
	case f.force && !f.createIsSet:
		return usagef("--force only applies to --create")
	case f.collections && (f.del || f.alias):
		return usagef("--collections only applies to listing refs, and to --create=COLLECTION-ID:BRANCH")
	case f.createIsSet:
		if len(args) != 1 {
			return usagef("--create=%s needs exactly one REV to point at, got %d arguments", f.create, len(args))
		}
		if f.collections {
			// OSTree's form: the collection, then the branch.
			c, b, ok := strings.Cut(f.create, ":")
			if !ok {
				return usagef("--collections --create takes COLLECTION-ID:BRANCH, not %q", f.create)
			}
			if err := repo.ValidateCollectionID(c); err != nil {
				return usageError{err}
			}
			createColl, f.create = c, b
		}
		if err := repo.ValidateRefName(f.create); err != nil {
			return usageError{err}
		}
	case f.del:
		if len(args) == 0 {
			return usagef("--delete needs at least one ref or PREFIX")
		}
	default:
		if len(args) > 1 {
			return usagef("refs takes at most one PREFIX, got %d", len(args))
		}
	}
	for _, a := range args {
		if a == "" {
			return usagef("empty ref or prefix")
		}
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	if createColl != "" && createColl != r.CollectionID() {
		// OSTree writes another collection's ref under refs/mirrors/,
		// which otree does not keep (FORMAT.md).
		return fmt.Errorf("ref (%s, %s): this repository's collection ID is %q, and otree keeps no refs of other collections (no refs/mirrors/)", createColl, f.create, r.CollectionID())
	}
	switch {
	case f.createIsSet:
		return refsCreate(cmd, e, r, f, args[0])
	case f.del:
		return refsDelete(cmd, e, r, args)
	}
	prefix := ""
	if len(args) == 1 {
		prefix = args[0]
	}
	if f.alias {
		return listAliases(e, r, prefix)
	}
	coll := ""
	if f.collections && prefix != "" {
		// OSTree's argument here names a collection, not a prefix of
		// ref names.
		if err := repo.ValidateCollectionID(prefix); err != nil {
			return usagef("refs --collections takes a collection ID: %v", err)
		}
		coll, prefix = prefix, ""
	}
	// Unreadable refs are reported after the others are listed, so one
	// corrupt ref hides neither the rest nor itself.
	refs, err := r.ListRefs(prefix)
	var bad *repo.UnreadableRefsError
	if err != nil && !errors.As(err, &bad) {
		return err
	}
	listed := func(err error) error {
		if err == nil && bad != nil {
			return bad
		}
		return err
	}
	if f.collections {
		return listed(listCollectionRefs(e, r, refs, coll))
	}
	if e.json {
		if refs == nil {
			refs = []repo.Ref{}
		}
		return listed(e.printJSON(refs))
	}
	w := bufio.NewWriter(e.stdout)
	// A remote's refs keep their "REMOTE:", as OSTree prints them; only
	// the branch part of the prefix is taken off.
	remote := ""
	if i := strings.IndexByte(prefix, ':'); i >= 0 {
		remote = prefix[:i+1]
	}
	under := strings.TrimSuffix(prefix[len(remote):], "/") + "/"
	for _, ref := range refs {
		name := ref.Name
		if !f.list && prefix != "" && name != prefix {
			if branch := strings.TrimPrefix(name, remote); under != "/" && strings.HasPrefix(branch, under) {
				name = remote + branch[len(under):]
			}
		}
		fmt.Fprintln(w, name)
	}
	return listed(w.Flush())
}

// collectionRef is a ref with the collection ID it belongs to.
type collectionRef struct {
	CollectionID string  `json:"collection_id"`
	Name         string  `json:"name"`
	Commit       repo.ID `json:"commit"`
}

// listCollectionRefs prints "(COLLECTION, BRANCH)" for the refs that have a
// collection ID: local ones the repository's, remote ones their remote's;
// with coll set, only those of that collection. Each is printed once.
func listCollectionRefs(e *env, r *repo.Repo, refs []repo.Ref, coll string) error {
	out := []collectionRef{}
	seen := map[[2]string]bool{}
	for _, ref := range refs {
		id, branch := r.RefCollectionID(ref.Name), ref.Name
		if _, b, ok := strings.Cut(ref.Name, ":"); ok {
			branch = b
		}
		// A collection ref is listed once, as OSTree lists it, though a
		// branch and remote refs may all name it: the first, a branch
		// before remote refs, stands for it.
		if id != "" && (coll == "" || id == coll) && !seen[[2]string{id, branch}] {
			seen[[2]string{id, branch}] = true
			out = append(out, collectionRef{id, branch, ref.Commit})
		}
	}
	if e.json {
		return e.printJSON(out)
	}
	w := bufio.NewWriter(e.stdout)
	for _, c := range out {
		fmt.Fprintf(w, "(%s, %s)\n", c.CollectionID, c.Name)
	}
	return w.Flush()
}

// listAliases prints "NAME -> BRANCH" for each alias (refs --alias), with
// full names whatever the prefix, as OSTree does.
func listAliases(e *env, r *repo.Repo, prefix string) error {
	aliases, err := r.ListAliases(prefix)
	if err != nil {
		return err
	}
	if e.json {
		if aliases == nil {
			aliases = []repo.Alias{}
		}
		return e.printJSON(aliases)
	}
	w := bufio.NewWriter(e.stdout)
	for _, a := range aliases {
		fmt.Fprintf(w, "%s -> %s", a.Name, a.Target)
		if a.Problem != "" {
			fmt.Fprintf(w, " (broken: %s)", a.Problem)
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func refsCreate(cmd *cobra.Command, e *env, r *repo.Repo, f *refsFlags, rev string) error {
	var id repo.ID
	var err error
	if !f.alias {
		if id, err = r.ResolveRev(rev); err != nil {
			return err
		}
	}
	lock, err := r.LockRefs(cmd.Context())
	if err != nil {
		return err
	}
	defer lock.Unlock()
	name := f.create
	// A ref is a file: "a/b" cannot exist beside a ref "a", nor "a" beside
	// "a/b". (Checked first: reading "a/b" when "a" is a file fails.)
	if err := r.CheckRefPlace(name); err != nil {
		return err
	}
	old, err := r.ReadRef(name)
	var dangling *repo.DanglingAliasError
	var corrupt *repo.CorruptRefError
	switch {
	case err == nil && !f.force:
		return fmt.Errorf("ref %s already exists (at %s); pass --force to overwrite it", name, old)
	case errors.As(err, &dangling) && !f.force:
		return fmt.Errorf("ref %s already exists (an alias of %s); pass --force to overwrite it", name, dangling.Target)
	case errors.As(err, &corrupt) && !f.force:
		return fmt.Errorf("%w; pass --force to overwrite it", err)
	case err != nil && !errors.Is(err, repo.ErrNotFound) && corrupt == nil:
		return err
	}
	if f.alias {
		e.refsChanged = true
		if err := r.SetAlias(name, rev); err != nil {
			return err
		}
		if e.json {
			a, err := r.ListAliases(name)
			if err != nil || len(a) == 0 {
				return err
			}
			return e.printJSON(a[0])
		}
		return nil
	}
	// --force over an alias would move the branch it names: say so instead.
	if aliases, err := r.ListAliases(name); err != nil {
		return err
	} else if len(aliases) > 0 && aliases[0].Name == name {
		return fmt.Errorf("ref %s is an alias of %s: --create --force would move %s; delete the alias first", name, aliases[0].Target, aliases[0].Target)
	}
	e.refsChanged = true
	if err := r.SetRef(name, id); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(repo.Ref{Name: name, Commit: id})
	}
	return nil
}

func refsDelete(cmd *cobra.Command, e *env, r *repo.Repo, prefixes []string) error {
	lock, err := r.LockRefs(cmd.Context())
	if err != nil {
		return err
	}
	defer lock.Unlock()
	var doomed []repo.Ref
	seen := map[string]bool{}
	for _, p := range prefixes {
		refs, err := r.ListRefs(p)
		var bad *repo.UnreadableRefsError
		if errors.As(err, &bad) {
			// Deleting is how a corrupt ref is repaired.
			for _, n := range bad.Refs {
				refs = append(refs, repo.Ref{Name: n})
			}
		} else if err != nil {
			return err
		}
		// Aliases broken by hand are not listed as refs but can be deleted.
		aliases, err := r.ListAliases(p)
		if err != nil {
			return err
		}
		for _, a := range aliases {
			if a.Problem != "" {
				refs = append(refs, repo.Ref{Name: a.Name})
			}
		}
		if len(refs) == 0 {
			// As in OSTree: deleting what is not there succeeds, so a
			// cleanup can run twice.
			fmt.Fprintf(e.stderr, "note: no ref matches %q\n", p)
			continue
		}
		for _, ref := range refs {
			if !seen[ref.Name] {
				seen[ref.Name] = true
				doomed = append(doomed, ref)
			}
		}
	}
	doomed, err = aliasesFirst(r, doomed)
	if err != nil {
		return err
	}
	names := make([]string, len(doomed))
	for i, ref := range doomed {
		names[i] = ref.Name
	}
	e.refsChanged = len(names) > 0
	// One pass over the refs for the aliases, one sync a directory.
	if err := r.DeleteRefs(names); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(doomed)
	}
	return nil
}

// aliasesFirst orders refs so that each alias is deleted before the ref it
// names, and refuses, before anything is deleted, a branch that an alias
// not among refs still names.
func aliasesFirst(r *repo.Repo, refs []repo.Ref) ([]repo.Ref, error) {
	all, err := r.ListAliases("")
	if err != nil {
		return nil, err
	}
	doomed := map[string]bool{}
	for _, ref := range refs {
		doomed[ref.Name] = true
	}
	target := map[string]string{} // doomed alias -> the ref it names
	pending := map[string]int{}   // ref -> doomed aliases naming it, not yet deleted
	kept := map[string][]string{} // ref -> aliases naming it that stay
	for _, a := range all {
		if a.Problem != "" {
			continue // broken: names nothing that must wait for it
		}
		if doomed[a.Name] {
			target[a.Name] = a.Target
			pending[a.Target]++
		} else if doomed[a.Target] {
			kept[a.Target] = append(kept[a.Target], a.Name)
		}
	}
	for _, ref := range refs {
		if len(kept[ref.Name]) > 0 {
			return nil, fmt.Errorf("%w: nothing deleted", &repo.AliasedRefError{Ref: ref.Name, Aliases: kept[ref.Name]})
		}
	}
	out := make([]repo.Ref, 0, len(refs))
	done := map[string]bool{}
	for len(out) < len(refs) {
		before := len(out)
		for _, ref := range refs {
			if !done[ref.Name] && pending[ref.Name] == 0 {
				done[ref.Name] = true
				out = append(out, ref)
				pending[target[ref.Name]]--
			}
		}
		if len(out) == before { // cannot happen: broken aliases wait for nothing
			return nil, fmt.Errorf("aliases among the refs to delete form a loop: nothing deleted")
		}
	}
	return out, nil
}
