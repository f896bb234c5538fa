package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// WalkFunc is called by Walk for each entry it visits. Returning
// fs.SkipDir from a directory's call skips its contents; returning
// fs.SkipAll stops the walk with no error; any other error stops it and
// is returned.
type WalkFunc func(e Entry) error

// Walk visits start and, when it is a directory, everything below it, in
// the order `otree ls -R` lists (as OSTree's does): a directory, then its
// files by name, then each subdirectory by name followed by its contents.
// Entry paths continue start's Path ("/" when zero). A missing or corrupt
// dirtree stops the walk with an error naming its path; file objects and
// dirmetas are not read (ReadDirMeta and StatFile read them on demand).
func (r *Repo) Walk(ctx context.Context, start Entry, fn WalkFunc) error {
	if start.Path == "" {
		start.Path = "/"
	}
	err := fn(start)
	if err == nil && start.IsDir() {
		err = r.walkDir(ctx, start.Path, start.ID, fn)
	}
	if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

func (r *Repo) walkDir(ctx context.Context, dir string, tree ID, fn WalkFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dt, err := r.ReadDirTree(tree)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", dir, err)
	}
	for _, f := range dt.Files {
		if err := fn(Entry{Path: joinTreePath(dir, f.Name), Kind: KindFile, ID: f.ID}); err != nil {
			return err
		}
	}
	for _, d := range dt.Dirs {
		e := Entry{Path: joinTreePath(dir, d.Name), Kind: KindDirTree, ID: d.TreeID, MetaID: d.MetaID}
		err := fn(e)
		if err == nil {
			err = r.walkDir(ctx, e.Path, e.ID, fn)
		}
		if err != nil && !errors.Is(err, fs.SkipDir) {
			return err
		}
	}
	return nil
}

// ErrHistoryMissing is wrapped by IsAncestor's error when the history it
// walks reaches a commit that is not stored here (a pull of the newest
// commits only, or a --parent given by id).
var ErrHistoryMissing = errors.New("history not stored")

// IsAncestor tells whether ancestor is a parent, grandparent... of id
// (not id itself). It walks id's parents until it finds ancestor or a
// root commit. When the walk reaches a parent that is not stored, the
// answer is unknown: the error then wraps ErrHistoryMissing and the
// missing commit's ObjectMissingError.
func (r *Repo) IsAncestor(ctx context.Context, ancestor, id ID) (bool, error) {
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		c, err := r.ReadCommit(id)
		if err != nil {
			return false, err
		}
		switch {
		case c.Parent.IsZero():
			return false, nil
		case c.Parent == ancestor:
			return true, nil
		}
		if ok, err := r.HasObject(KindCommit, c.Parent); err != nil {
			return false, err
		} else if !ok {
			return false, fmt.Errorf("%w beyond commit %s: %w", ErrHistoryMissing, id, &ObjectMissingError{KindCommit, c.Parent})
		}
		id = c.Parent
	}
}
