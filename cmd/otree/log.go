package main

import (
	"bufio"
	"errors"
	"fmt"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

func newLogCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "log REV",
		Short: "Print a commit and its ancestors, newest first",
		Long: `Print the commit REV resolves to and then each parent in turn, like
` + "`otree show`" + ` does for one commit. A parent that is not in the repository
(history not pulled, or pruned) ends the log with a note, not an error.
With --json, print a list of commits; the last one's "parent" is then set.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLog(cmd, e, args[0])
		},
	}
	e.addJSON(c)
	return c
}

func runLog(cmd *cobra.Command, e *env, rev string) error {
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	id, err := r.ResolveRev(rev)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	var list []commitJSON
	seen := map[repo.ID]bool{}
	for first := true; ; first = false {
		if err := cmd.Context().Err(); err != nil {
			return err
		}
		if seen[id] {
			// Impossible for content-addressed commits, unless a hash collides.
			return fmt.Errorf("log %s: commit %s is its own ancestor", rev, id)
		}
		seen[id] = true
		c, err := r.ReadCommit(id)
		if missing := (*repo.ObjectMissingError)(nil); !first && errors.As(err, &missing) && missing.ID == id {
			if !e.json {
				fmt.Fprintf(w, "<< history beyond this commit is not in the repository (parent %s missing) >>\n", id)
			}
			break
		}
		if err != nil {
			if !first {
				return fmt.Errorf("log %s: %w", rev, err)
			}
			return err
		}
		if e.json {
			list = append(list, newCommitJSON(id, c))
		} else if err := writeCommit(w, id, c); err != nil {
			return err
		}
		if c.Parent.IsZero() {
			break
		}
		id = c.Parent
	}
	if e.json {
		if err := w.Flush(); err != nil {
			return err
		}
		return e.printJSON(list)
	}
	return w.Flush()
}
