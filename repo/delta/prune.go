package delta

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// testHookOrphans, when set by a test, runs once Prune has listed the
// deltas to delete and before it deletes them.
var testHookOrphans func()

// Prune prunes r as r.Prune(ctx, opts) does and deletes the static deltas
// that lead to a commit it deleted, or to one r no longer has, and those
// that lead to one of alsoTo (OSTree's prune --static-deltas-only
// --delete-commit). A delta whose from-commit is gone is kept: clients
// may still have it. With opts.NoPrune it lists them and deletes nothing.
// The report's Deltas names them and DeltaBytes counts their bytes.
//
// The deltas go while r.Prune still holds the repository lock (through
// opts.AfterSweep, which Prune runs before the caller's own): after it, a
// pull could store such a commit again and a generation make a delta to
// it, which this prune would then delete.
func Prune(ctx context.Context, r *repo.Repo, opts repo.PruneOptions, alsoTo ...repo.ID) (*repo.PruneReport, error) {
	var deleted []string
	var freed int64
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
			size, err := storedSize(Path(r, n))
			if err != nil {
				return fmt.Errorf("deleting delta %s: %w", n, err)
			}
			if !opts.NoPrune {
				err := Delete(ctx, r, n)
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
			freed += size
		}
		if after != nil {
			return after(gone)
		}
		return nil
	}
	rep, err := r.Prune(ctx, opts)
	if rep != nil {
		rep.Deltas = append(rep.Deltas, deleted...)
		rep.DeltaBytes += freed
	}
	return rep, err
}

// storedSize is the size, as stored (repo.StoredBytes), of the files
// below dir; a dir already gone (another delete removed it) is 0.
func storedSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		n += repo.StoredBytes(&st)
		return nil
	})
	return n, err
}
