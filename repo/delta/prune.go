package delta

import (
	"context"
	"errors"
	"slices"

	"github.com/otree/otree/repo"
)

// testHookOrphans, when set by a test, runs once Prune has listed the
// deltas to delete and before it deletes them.
var testHookOrphans func()

// Prune prunes r as r.Prune(ctx, opts) does and deletes the static deltas
// that lead to a commit it deleted, or to one r no longer has, and those
// that lead to one of alsoTo (OSTree's prune --static-deltas-only
// --delete-commit). A delta whose from-commit is gone is kept: clients
// may still have it. With opts.NoPrune it lists them and deletes nothing.
// The report's Deltas names them.
//
// The deltas go while r.Prune still holds the repository lock (through
// opts.AfterSweep, which Prune runs before the caller's own): after it, a
// pull could store such a commit again and a generation make a delta to
// it, which this prune would then delete.
func Prune(ctx context.Context, r *repo.Repo, opts repo.PruneOptions, alsoTo ...repo.ID) (*repo.PruneReport, error) {
	var deleted []string
	after := opts.AfterSweep
	opts.AfterSweep = func(gone []repo.ID) error {
		orphans, err := Orphans(r, append(slices.Clone(alsoTo), gone...))
		if err != nil {
			return err
		}
		if testHookOrphans != nil {
			testHookOrphans()
		}
		for _, n := range orphans {
			if !opts.NoPrune {
				err := Delete(r, n)
				if errors.Is(err, ErrNoDelta) {
					// Another delete removed it since it was listed:
					// what this prune would have done.
					continue
				}
				if err != nil {
					return err
				}
			}
			deleted = append(deleted, n.String())
		}
		if after != nil {
			return after(gone)
		}
		return nil
	}
	rep, err := r.Prune(ctx, opts)
	if rep != nil {
		rep.Deltas = append(rep.Deltas, deleted...)
	}
	return rep, err
}
