package main

import (
	"fmt"
	"io"

	"github.com/otree/otree/internal/quote"
	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

func newCatCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "cat REV PATH...",
		Short: "Write the content of files in a commit to standard output",
		Long: `Write the content of each PATH inside the commit REV names to standard output,
in order. Symlinks are followed inside the commit, at the end of PATH and on
the way, as in a checkout of it used as the root directory: an absolute
target starts from the commit's root, and ".." never climbs above it. A
directory, device or FIFO is an error. Content is verified against its object id as it streams: if
it does not match, cat exits with an error after the bytes already written,
which must then not be trusted.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCat(cmd, e, args[0], args[1:])
		},
	}
	return c
}

func runCat(cmd *cobra.Command, e *env, rev string, paths []string) error {
	for _, p := range paths {
		if p == "" {
			return usagef("cat: empty PATH: give the path of a file in the commit, such as /etc/os-release")
		}
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	id, err := r.ResolveRev(rev)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := cmd.Context().Err(); err != nil {
			return err
		}
		if err := catFile(r, id, p, e.stdout); err != nil {
			return r.ExplainMissing(id, err)
		}
	}
	return nil
}

// catFile writes the verified content of path, resolved with every symlink
// followed inside the commit, to w.
func catFile(r *repo.Repo, commit repo.ID, p string, w io.Writer) error {
	ent, err := r.Resolve(commit, p)
	if err != nil {
		return fmt.Errorf("cat: %w", err) // the error names p
	}
	if ent.IsDir() {
		if ent.Path == repo.CleanPath(p) {
			return fmt.Errorf("cat: %s is a directory", quote.Path(p))
		}
		return fmt.Errorf("cat %s: %s is a directory", quote.Path(p), quote.Path(ent.Path))
	}
	h, rc, err := r.OpenFile(ent.ID)
	if err != nil {
		return fmt.Errorf("cat %s: %s: %w", quote.Path(p), quote.Path(ent.Path), err)
	}
	defer rc.Close()
	if h.Type != repo.TypeRegular {
		return fmt.Errorf("cat %s: %s is a %s, not a regular file", quote.Path(p), quote.Path(ent.Path), h.Type)
	}
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("cat %s: %w", quote.Path(p), err)
	}
	return nil
}
