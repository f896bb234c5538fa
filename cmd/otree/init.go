package main

import (
	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

func newInitCommand(e *env) *cobra.Command {
	var mode, collection string
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
			if collection != "" {
				if err := repo.ValidateCollectionID(collection); err != nil {
					return usageError{err}
				}
			}
			r, err := repo.Init(e.repoPath, repo.InitOptions{Mode: m, CollectionID: collection})
			if err != nil {
				return err
			}
			defer r.Close()
			if e.json {
				out := map[string]string{"path": r.Path(), "mode": m.String()}
				if collection != "" {
					out["collection_id"] = collection
				}
				return e.printJSON(out)
			}
			return nil
		},
	}
	c.Flags().StringVar(&mode, "mode", "bare-user", "repository mode: bare, bare-user, bare-user-only or archive")
	c.Flags().StringVar(&collection, "collection-id", "", "a global name for the repository's refs, such as org.example.Os; commits made here are bound to it")
	e.addJSON(c)
	return c
}
