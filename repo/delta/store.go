package delta

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
)

// ErrNoDelta is matched by the error for a delta a repository does not
// have; it also matches repo.ErrNotFound.
var ErrNoDelta = fmt.Errorf("delta %w", repo.ErrNotFound)

// List returns the names of the deltas stored in r, sorted by their
// String form. Entries of deltas/ that are not delta names are ignored.
func List(r *repo.Repo) ([]Name, error) {
	ents, err := os.ReadDir(r.Path(Dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing deltas: %w", err)
	}
	var out []Name
	for _, e := range ents {
		if n, err := ParseName(e.Name()); err == nil && e.IsDir() {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// Path returns the directory of a delta in r.
func Path(r *repo.Repo, n Name) string { return r.Path(Dir, n.String()) }

// OpenStored opens the delta n stored in r (see Open).
func OpenStored(r *repo.Repo, n Name) (*Offline, error) {
	dir := Path(r, n)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", n, ErrNoDelta)
	}
	o, err := Open(dir)
	if err == nil && o.Superblock.Name != n {
		o.Close()
		return nil, fmt.Errorf("%s: superblock is for delta %s", dir, o.Superblock.Name)
	}
	return o, err
}

// ReadSuperblock reads and decodes the superblock of a delta stored in r,
// returning it and its raw bytes.
func ReadSuperblock(r *repo.Repo, n Name) (*Superblock, []byte, error) {
	o, err := OpenStored(r, n)
	if err != nil {
		return nil, nil, err
	}
	o.Close()
	return o.Superblock, o.Raw, nil
}

// Delete removes a delta from r, and it from the index of its to-commit.
// The index is rewritten first, then the directory renamed away, so a
// reader never sees a delta with some of its parts gone, nor an index
// naming a delta that is gone. An index a full filesystem keeps from being
// rewritten is removed instead, and written after the delta is gone. ctx
// ends the wait for the indexes' lock, as in Reindex.
func Delete(ctx context.Context, r *repo.Repo, n Name) error {
	if _, err := os.Stat(Path(r, n)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", n, ErrNoDelta)
	}
	// A crash between the two leaves a delta no index names, which a
	// rerun deletes, never an index naming one that is gone, which pulls
	// would fetch.
	_, err := reindex(ctx, r, ReindexOptions{To: []repo.ID{n.To}}, &n, func() error { return remove(r, n) })
	return err
}

// remove removes delta n's directory, leaving the indexes alone.
func remove(r *repo.Repo, n Name) error {
	dir := Path(r, n)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", n, ErrNoDelta)
	}
	// Renamed aside in one step, under a name no one else makes (cleanTemp
	// may remove a directory made for it first).
	tmp := r.Path(Dir, fmt.Sprintf(".delete-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Rename(dir, tmp); err != nil {
		return fmt.Errorf("deleting delta %s: %w", n, err)
	}
	if err := durable.SyncDir(r.Path(Dir)); err != nil {
		return err
	}
	return os.RemoveAll(tmp)
}

// cleanTemp removes what interrupted deletions and generations left in
// deltas/: ".delete-*" directories, and ".new-*" directories whose flock
// can be taken (the generation that held it is gone).
func cleanTemp(r *repo.Repo) {
	cleanGenerations(r.Path(Dir), ".", true)
}

// cleanGenerations removes, in dir, the directories of generations that
// died: prefix+"mk-*" ones over a minute old (made and not yet locked, or
// left by a generation that died at once) and prefix+"new-*" ones whose
// flock can be taken; with deletions, also ".delete-*" directories.
func cleanGenerations(dir, prefix string, deletions bool) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case !e.IsDir():
		case deletions && strings.HasPrefix(e.Name(), ".delete-"):
			os.RemoveAll(p)
		case strings.HasPrefix(e.Name(), prefix+"mk-"):
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				os.RemoveAll(p)
			}
		case strings.HasPrefix(e.Name(), prefix+"new-"):
			durable.RemoveAbandoned(p)
		}
	}
}

// Orphans lists the deltas of r that lead to a commit r no longer has, or
// to one of gone (commits a prune is about to delete). As in OSTree, a
// delta whose from-commit is gone is kept: clients may still have it.
func Orphans(r *repo.Repo, gone []repo.ID) ([]Name, error) {
	names, err := List(r)
	if err != nil {
		return nil, err
	}
	var out []Name
	for _, n := range names {
		has, err := r.HasObject(repo.KindCommit, n.To)
		if err != nil {
			return nil, err
		}
		if !has || slices.Contains(gone, n.To) {
			out = append(out, n)
		}
	}
	return out, nil
}
