package main

import (
	"errors"
	"fmt"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

func newInitCommand(e *env) *cobra.Command {
	var mode, collection string
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Long: `Create a repository at --repo. Run again where one exists, it changes
nothing and succeeds, as OSTree's init does, unless --mode or
--collection-id ask for a different one. A directory that holds anything
else (but a lost+found) is refused, where OSTree's init fills it.

The default mode is bare-user, where OSTree's is bare: it records owners,
modes and xattrs for root and other users alike, and no object on disk is
setuid. Give --mode=bare for device nodes and FIFOs, or to keep objects
with their true owners on disk.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := e.repoDir()
			if dir == "" {
				return errNoRepo
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
			r, err := repo.Init(dir, repo.InitOptions{Mode: m, CollectionID: collection})
			if errors.Is(err, repo.ErrExists) {
				// As OSTree's init, a second run leaves the repository as
				// it is and succeeds, unless it asked for another one.
				if r, err = repo.Open(dir); err != nil {
					return err
				}
				defer r.Close()
				if cmd.Flags().Changed("mode") && r.Mode() != m {
					return fmt.Errorf("init %s: a repository in mode %s already exists there, not %s", r.Path(), r.Mode(), m)
				}
				if collection != "" && r.CollectionID() != collection {
					return fmt.Errorf("init %s: a repository with collection ID %q already exists there, not %q", r.Path(), r.CollectionID(), collection)
				}
				m, collection = r.Mode(), r.CollectionID()
			} else if err != nil {
				return err
			}
			defer r.Close()
			if e.json {
				// A struct, so that a path not UTF-8 gets its path_base64.
				return e.printJSON(struct {
					Path         string `json:"path"`
					Mode         string `json:"mode"`
					CollectionID string `json:"collection_id,omitempty"`
				}{r.Path(), m.String(), collection})
			}
			return nil
		},
	}
	c.Flags().StringVar(&mode, "mode", "bare-user", "repository mode: bare, bare-user, bare-user-only or archive")
	c.Flags().StringVar(&collection, "collection-id", "", "a global name for the repository's refs, such as org.example.Os; commits made here are bound to it")
	e.addJSON(c)
	return c
}
