package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

type refsFlags struct {
	create      string
	del, list   bool
	force       bool
	createIsSet bool
}

func newRefsCommand(e *env) *cobra.Command {
	f := &refsFlags{}
	c := &cobra.Command{
		Use:   "refs [PREFIX] | --create=NEWREF REV | --delete PREFIX...",
		Short: "List, create or delete refs",
		Long: `List refs: local branches, then remote refs as "remote:branch", each sorted.
With PREFIX, list only refs equal to it or below it ("os" lists "os/x86_64/stable";
"origin:" lists that remote's refs), printed without the prefix unless --list.

--create=NEWREF REV points a new ref at the commit REV resolves to; it fails if
NEWREF exists, unless --force.
--delete PREFIX... deletes every ref matching each PREFIX as above; a PREFIX
matching no ref is an error and then nothing is deleted.`,
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
	e.addJSON(c)
	return c
}

func runRefs(cmd *cobra.Command, e *env, f *refsFlags, args []string) error {
	switch {
	case f.createIsSet && f.del:
		return usagef("--create and --delete are exclusive")
	case f.force && !f.createIsSet:
		return usagef("--force only applies to --create")
	case f.createIsSet:
		if len(args) != 1 {
			return usagef("--create=%s needs exactly one REV to point at, got %d arguments", f.create, len(args))
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
	refs, err := r.ListRefs(prefix)
	if err != nil {
		return err
	}
	if e.json {
		if refs == nil {
			refs = []repo.Ref{}
		}
		return e.printJSON(refs)
	}
	w := bufio.NewWriter(e.stdout)
	for _, ref := range refs {
		name := ref.Name
		if !f.list && prefix != "" && name != prefix {
			if p := strings.TrimSuffix(prefix, "/") + "/"; strings.HasPrefix(name, p) {
				name = name[len(p):]
			} else if strings.HasSuffix(prefix, ":") {
				name = strings.TrimPrefix(name, prefix)
			}
		}
		fmt.Fprintln(w, name)
	}
	return w.Flush()
}

func refsCreate(cmd *cobra.Command, e *env, r *repo.Repo, f *refsFlags, rev string) error {
	id, err := r.ResolveRev(rev)
	if err != nil {
		return err
	}
	lock, err := r.LockRefs(cmd.Context())
	if err != nil {
		return err
	}
	defer lock.Unlock()
	name := f.create
	// A ref is a file: "a/b" cannot exist beside a ref "a", nor "a" beside
	// "a/b". (Checked first: reading "a/b" when "a" is a file fails.)
	for i := strings.LastIndexByte(name, '/'); i > 0; i = strings.LastIndexByte(name[:i], '/') {
		if _, err := r.ReadRef(name[:i]); err == nil {
			return fmt.Errorf("cannot create ref %s: ref %s exists above it", name, name[:i])
		}
	}
	if below, err := r.ListRefs(name); err != nil {
		return err
	} else if len(below) > 0 && below[0].Name != name {
		return fmt.Errorf("cannot create ref %s: ref %s exists below it", name, below[0].Name)
	}
	old, err := r.ReadRef(name)
	switch {
	case err == nil && !f.force:
		return fmt.Errorf("ref %s already exists (at %s); pass --force to overwrite it", name, old)
	case err != nil && !errors.Is(err, repo.ErrNotFound):
		return err
	}
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
		if err != nil {
			return err
		}
		if len(refs) == 0 {
			return fmt.Errorf("no ref matches %q: nothing deleted", p)
		}
		for _, ref := range refs {
			if !seen[ref.Name] {
				seen[ref.Name] = true
				doomed = append(doomed, ref)
			}
		}
	}
	for i, ref := range doomed {
		if err := r.SetRef(ref.Name, repo.ID{}); err != nil {
			// repo.SetRef deletes the ref, prunes the directories it leaves
			// empty, then fails to sync the (pruned) directory it was in.
			// The ref is gone: that is success here.
			if _, rerr := r.ReadRef(ref.Name); errors.Is(rerr, repo.ErrNotFound) && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if i > 0 {
				return fmt.Errorf("%w (after deleting %d of %d refs)", err, i, len(doomed))
			}
			return err
		}
	}
	if e.json {
		return e.printJSON(doomed)
	}
	return nil
}
