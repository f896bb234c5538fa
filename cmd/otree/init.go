package main

import (
	"fmt"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

func newInitCommand(e *env) *cobra.Command {
	var mode string
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if e.repoPath == "" {
				return usagef("no repository: pass --repo=PATH or set OTREE_REPO")
			}
			m, err := repo.ParseMode(mode)
			if err != nil {
				return usageError{err}
			}
			r, err := repo.Init(e.repoPath, repo.InitOptions{Mode: m})
			if err != nil {
				return err
			}
			defer r.Close()
			if e.json {
				return e.printJSON(map[string]string{"path": r.Path(), "mode": m.String()})
			}
			return nil
		},
	}
	c.Flags().StringVar(&mode, "mode", "bare-user", "repository mode: bare, bare-user, bare-user-only or archive")
	e.addJSON(c)
	_ = fmt.Sprint
	return c
}
