package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRevParseCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "rev-parse REV",
		Short: "Print the full commit id a revision names",
		Long: `Print the full id of the commit REV names: a branch ("os/x86_64/stable"),
a remote ref ("origin:stable"), a full id or a unique prefix of one (at least
4 hex digits), each optionally followed by "^" (the parent, repeatable) or "~N"
(the N-th ancestor). A prefix matching several commits is an error listing them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.open()
			if err != nil {
				return err
			}
			defer r.Close()
			id, err := r.ResolveRev(args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(map[string]any{"rev": args[0], "commit": id})
			}
			_, err = fmt.Fprintln(e.stdout, id)
			return err
		},
	}
	e.addJSON(c)
	return c
}
