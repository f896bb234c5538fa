package repo

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ConfigTombstoneCommits is OSTree's config key asking for a tombstone to
// be stored for every commit deleted (prune), so that a pull can tell a
// parent deleted on purpose from one missing (docs/FORMAT.md §2.6).
const ConfigTombstoneCommits = "core.tombstone-commits"

// TombstoneCommits reports whether the repository's config asks for
// tombstones (false when unset; an error names a value that is not a
// boolean).
func (r *Repo) TombstoneCommits() (bool, error) {
	on, err := r.config.Bool(ConfigTombstoneCommits, false)
	if err != nil {
		return false, fmt.Errorf("repository %s: %w", r.path, err)
	}
	return on, nil
}

// CheckTombstone checks that data is a tombstone stored under commit: it
// decodes strictly and names that commit.
func CheckTombstone(data []byte, commit ID) error {
	named, err := DecodeTombstone(data)
	if err != nil {
		return err
	}
	if named != commit {
		return fmt.Errorf("the tombstone names commit %s", named)
	}
	return nil
}

// WriteTombstone stores the tombstone of commit, the mark that it was
// deleted on purpose. It is published like any other object; storing the
// commit again later removes it.
func (t *Txn) WriteTombstone(commit ID) error {
	if commit.IsZero() {
		return errors.New("writing a tombstone: the zero id names no commit")
	}
	return t.stageMeta(KindTombstoneCommit, commit, EncodeTombstone(commit))
}

// dropTombstones removes the tombstones of the commits among keys, which
// have just been published: a commit stored again is no longer deleted.
// Commits are published last, so they are the tail of keys and the rest
// need not be looked at.
// A tombstone left beside its commit (a crash before this, an unlink that
// failed) misleads no one, since the commit is found first; prune removes
// it.
func (t *Txn) dropTombstones(keys []objKey) {
	for i := len(keys) - 1; i >= 0 && keys[i].kind == KindCommit; i-- {
		unix.Unlinkat(t.r.objects(), objectPath(KindTombstoneCommit, keys[i].id), 0)
	}
}

// enableTombstones sets core.tombstone-commits to true in the config, as
// OSTree's prune --delete-commit does: a repository whose commits are
// deleted by hand keeps tombstones from then on.
func (r *Repo) enableTombstones() error {
	if on, _ := r.config.Bool(ConfigTombstoneCommits, false); on {
		return nil
	}
	err := r.UpdateConfig(func(c *Config) error {
		return c.Set(ConfigTombstoneCommits, "true")
	})
	if err != nil {
		return fmt.Errorf("setting %s: %w", ConfigTombstoneCommits, err)
	}
	return nil
}

// writeTombstones durably stores the tombstones of commits, through a
// transaction under the exclusive lock the caller (prune, before it
// deletes them; fsck) holds: a crash then leaves at worst a tombstone
// beside a commit still stored, never a deleted commit without one.
func (r *Repo) writeTombstones(commits []ID) error {
	if len(commits) == 0 {
		return nil
	}
	t, err := r.beginHeld()
	if err != nil {
		return err
	}
	defer t.Abort()
	for _, id := range commits {
		if err := t.WriteTombstone(id); err != nil {
			return fmt.Errorf("tombstone of commit %s: %w", id, err)
		}
	}
	return t.Commit()
}
