package main

import (
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

// maxSymlinkHops bounds how many symlinks cat follows for one path.
const maxSymlinkHops = 40

func newCatCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "cat REV PATH...",
		Short: "Write the content of files in a commit to standard output",
		Long: `Write the content of each PATH inside the commit REV names to standard output,
in order. A PATH that is a symlink is followed inside the commit (an absolute
target from the commit's root), as ostree cat does; a directory, device or
FIFO is an error. Content is verified against its object id as it streams: if
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

// catFile writes the verified content of path (following symlinks) to w.
func catFile(r *repo.Repo, commit repo.ID, p string, w io.Writer) error {
	ent, h, err := resolveFile(r, commit, p)
	if err != nil {
		return err
	}
	if h.Type != repo.TypeRegular {
		return fmt.Errorf("cat %s: %s is a %s, not a regular file", p, ent.Path, h.Type)
	}
	_, rc, err := r.OpenFile(ent.ID)
	if err != nil {
		return fmt.Errorf("cat %s: %w", p, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("cat %s: %w", p, err)
	}
	return nil
}

// resolveFile looks p up in commit, following symlinks (the last component
// only, again for each target, as ostree does) within the commit.
func resolveFile(r *repo.Repo, commit repo.ID, p string) (repo.Entry, *repo.FileHeader, error) {
	cur := p
	for hops := 0; ; hops++ {
		ent, err := r.Lookup(commit, cur)
		if err != nil {
			if cur != p {
				return repo.Entry{}, nil, fmt.Errorf("cat %s: following symlinks: %w", p, err)
			}
			return repo.Entry{}, nil, fmt.Errorf("cat: %w", err) // the lookup's error names p
		}
		if ent.IsDir() {
			if ent.Path == p {
				return repo.Entry{}, nil, fmt.Errorf("cat: %s is a directory", p)
			}
			return repo.Entry{}, nil, fmt.Errorf("cat %s: %s is a directory", p, ent.Path)
		}
		h, err := r.StatFile(ent.ID)
		if err != nil {
			return repo.Entry{}, nil, fmt.Errorf("cat %s: %s: %w", p, ent.Path, err)
		}
		if h.Type != repo.TypeSymlink {
			return ent, h, nil
		}
		if hops == maxSymlinkHops {
			return repo.Entry{}, nil, errors.New("cat " + p + ": too many levels of symbolic links")
		}
		if path.IsAbs(h.Target) {
			cur = path.Clean(h.Target)
		} else {
			cur = path.Join(path.Dir(ent.Path), h.Target)
		}
	}
}
