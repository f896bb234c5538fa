package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

func newLogCommand(e *env) *cobra.Command {
	var raw bool
	c := &cobra.Command{
		Use:   "log REV",
		Short: "Print a commit and its ancestors, newest first",
		Long: `Print the commit REV resolves to and then each parent in turn, like
` + "`otree show`" + ` does for one commit. A parent that is not in the repository
(history not pulled, or pruned) ends the log with a note, not an error.
With --json, print a list of commits; the last one's "parent" is then set.
With --raw, print each commit object's stored bytes in hex instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if raw && e.json {
				return usagef("--raw and --json are exclusive")
			}
			return runLog(cmd, e, args[0], raw)
		},
	}
	c.Flags().BoolVar(&raw, "raw", false, "print each commit object's stored bytes in hex (their BLAKE3 is the commit id)")
	e.addJSON(c)
	return c
}

func runLog(cmd *cobra.Command, e *env, rev string, raw bool) error {
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
				fmt.Fprintln(w, "<< History beyond this commit not fetched >>")
			}
			break
		}
		if err != nil {
			if !first {
				return fmt.Errorf("log %s: %w", rev, err)
			}
			return err
		}
		switch {
		case e.json:
			list = append(list, newCommitJSON(id, c))
		case raw:
			// No blank line between commits, as OSTree's log --raw.
			if err := writeRawCommit(w, r, id); err != nil {
				return err
			}
		default:
			if err := writeCommit(w, id, c); err != nil {
				return err
			}
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

// writeRawCommit prints "commit ID" and the commit object's stored bytes
// in hex, 64 bytes a line (xxd -r -p reads them back; FORMAT §2.4).
func writeRawCommit(w io.Writer, r *repo.Repo, id repo.ID) error {
	data, err := r.ReadRaw(repo.KindCommit, id)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "commit %s\n", id); err != nil {
		return err
	}
	for len(data) > 0 {
		n := min(len(data), 64)
		if _, err := fmt.Fprintf(w, "%x\n", data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}
