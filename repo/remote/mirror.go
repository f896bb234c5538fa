package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

// copySummary makes a mirror of every branch servable as its source is:
// it copies the source's summary (and summary.sig, or removes a stale
// one), as OSTree's pull --mirror does. The copy is made only when the
// summary lists exactly the refs this pull wrote, at the commits it wrote
// (the server may have moved on since), and, when the remote verifies
// summaries, only once its signature verifies. Deltas it lists that the
// mirror lacks are harmless: clients fall back to objects.
func copySummary(ctx context.Context, r *repo.Repo, src source, res *PullResult, opts *PullOptions) error {
	data, err := readRaw(ctx, src, SummaryFile, maxSummary)
	if errors.Is(err, repo.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	sum, err := DecodeSummary(data)
	if err != nil {
		return fmt.Errorf("summary of %s: %w", src, err)
	}
	if len(sum.Refs) != len(res.Refs) {
		opts.Logger.Info("summary not copied: the remote's refs changed during the pull")
		return nil
	}
	for i, ref := range sum.Refs {
		if u := res.Refs[i]; u.Ref != ref.Name || u.New != ref.Commit {
			opts.Logger.Info("summary not copied: the remote's refs changed during the pull", "ref", ref.Name)
			return nil
		}
	}
	sig, err := readRaw(ctx, src, sign.SummarySigFile, maxSummarySig)
	if err != nil && !errors.Is(err, repo.ErrNotFound) {
		return err
	}
	if vs, ok := unwrap[*verifiedSource](src); ok && vs.v.Summary {
		if _, err := sign.VerifySummary(data, sig, vs.v.Keys); err != nil {
			return fmt.Errorf("remote %s: summary of %s: %w", vs.remote, src, err)
		}
	}
	if err := writeSummary(r, data, sig, !opts.NoSync && r.Fsync()); err != nil {
		return fmt.Errorf("copying the summary: %w", err)
	}
	return nil
}
