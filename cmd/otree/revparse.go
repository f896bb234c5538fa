package main

import (
	"fmt"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

func newRevParseCommand(e *env) *cobra.Command {
	var single bool
	c := &cobra.Command{
		Use:   "rev-parse REV... | --single",
		Short: "Print the full commit id a revision names",
		Long: `Print the full id of the commit each REV names, one per line: a branch ("os/x86_64/stable"),
a remote ref ("origin:stable"), a full id or a unique prefix of one (at least
4 hex digits), each optionally followed by "^" (the parent, repeatable) or "~N"
(the N-th ancestor). A branch name that is no local branch names the
remote-tracking ref of that name ("origin:stable"), unless several remotes
have one and they differ. A prefix matching several commits is an error listing them.
Every REV is resolved before anything is printed. With --json, one REV gives
{"rev", "commit"}, several a list of them.

With --single, print the repository's one commit object; a repository with
none or several is an error.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if single && len(args) > 0 {
				return usagef("--single takes no REV (got %q)", args[0])
			}
			if !single && len(args) == 0 {
				return usagef("rev-parse needs a REV")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.open()
			if err != nil {
				return err
			}
			defer r.Close()
			if single {
				ids, err := r.ListCommits(cmd.Context())
				if err != nil {
					return err
				}
				if len(ids) != 1 {
					return fmt.Errorf("--single: repository %s has %d commit objects, not one", r.Path(), len(ids))
				}
				args = []string{ids[0].String()}
			}
			type resolved struct {
				Rev    string  `json:"rev"`
				Commit repo.ID `json:"commit"`
			}
			var out []resolved
			for _, a := range args {
				id, err := r.ResolveRev(a)
				if err != nil {
					return err
				}
				out = append(out, resolved{a, id})
			}
			if e.json && len(out) == 1 {
				return e.printJSON(out[0])
			}
			if e.json {
				return e.printJSON(out)
			}
			for _, o := range out {
				if _, err := fmt.Fprintln(e.stdout, o.Commit); err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&single, "single", "S", false, "print the one commit the repository holds")
	e.addJSON(c)
	return c
}
