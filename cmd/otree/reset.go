package main

import (
	"errors"
	"fmt"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

func newResetCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "reset REF REV",
		Short: "Move a ref back to an earlier commit",
		Long: `Point the existing ref REF at the commit REV names, which must be REF's
current commit or one of its ancestors (for example "REF^" or "REF~3"). The
newer commits stay in the repository until prune removes them.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReset(cmd, e, args[0], args[1])
		},
	}
	e.addJSON(c)
	return c
}

func runReset(cmd *cobra.Command, e *env, ref, rev string) error {
	if err := repo.ValidateRefName(ref); err != nil {
		return usageError{err}
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	// Hold the ref lock from resolving REV to writing the ref, so a
	// concurrent commit to REF is either one REV was resolved against
	// ("main^" is then the parent of that commit) or waits for us.
	lock, err := r.LockRefs(cmd.Context())
	if err != nil {
		return err
	}
	defer lock.Unlock()
	target, err := r.ResolveRev(rev)
	if err != nil {
		return err
	}
	cur, err := r.ReadRef(ref)
	if err != nil {
		return err
	}
	if target != cur {
		if err := checkAncestor(cmd, r, ref, cur, target); err != nil {
			return err
		}
		e.refsChanged = true
		if err := r.SetRef(ref, target); err != nil {
			return err
		}
	}
	if e.json {
		return e.printJSON(map[string]any{"ref": ref, "commit": target, "previous": cur})
	}
	return nil
}

// checkAncestor refuses target unless it is an ancestor of head. OSTree's
// reset points the ref at any commit; otree's only moves a ref back, and
// names the command that points it anywhere.
func checkAncestor(cmd *cobra.Command, r *repo.Repo, ref string, head, target repo.ID) error {
	ok, err := r.IsAncestor(cmd.Context(), target, head)
	anywhere := fmt.Sprintf("`otree refs --create=%s --force %s` points %s at any commit", ref, target, ref)
	if missing := (*repo.ObjectMissingError)(nil); errors.Is(err, repo.ErrHistoryMissing) && errors.As(err, &missing) {
		return withHint(fmt.Errorf("cannot reset %s to %s: not found among its ancestors (history ends at missing commit %s)", ref, target, missing.ID), anywhere)
	}
	if err != nil {
		return fmt.Errorf("reset %s: %w", ref, err)
	}
	if !ok {
		return withHint(fmt.Errorf("cannot reset %s to %s: it is not an ancestor of %s (at %s)", ref, target, ref, head), anywhere)
	}
	return nil
}
