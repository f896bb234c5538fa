package commit

import (
	"github.com/otree/otree/repo"
)

// treeSizes lists the size of every object the tree needs, each once: its
// dirtrees, dirmetas and file objects, as a depth-first walk meets them.
// The tree must be written; objects not staged by txn are read from the
// repository.
func treeSizes(r *repo.Repo, txn *repo.Txn, root *dir) ([]repo.ObjectSize, error) {
	type key struct {
		kind repo.Kind
		id   repo.ID
	}
	seen := map[key]bool{}
	var out []repo.ObjectSize
	add := func(kind repo.Kind, id repo.ID) error {
		if seen[key{kind, id}] {
			return nil
		}
		seen[key{kind, id}] = true
		stored, unpacked, err := txn.ObjectSizes(kind, id)
		if err != nil {
			return err
		}
		out = append(out, repo.ObjectSize{Kind: kind, ID: id, Stored: stored, Unpacked: unpacked})
		return nil
	}
	var walk func(d *dir) error
	walk = func(d *dir) error {
		if !d.stored.IsZero() {
			// A stored directory is read into a copy: the tree itself
			// stays as written.
			e := &dir{meta: d.meta, stored: d.stored}
			if err := e.expand(r); err != nil {
				return err
			}
			e.tree, d = d.stored, e
		}
		d.materialize()
		if err := add(repo.KindDirTree, d.tree); err != nil {
			return err
		}
		if err := add(repo.KindDirMeta, d.meta); err != nil {
			return err
		}
		for _, id := range d.fileIDs {
			if err := add(repo.KindFile, id); err != nil {
				return err
			}
		}
		for _, s := range d.dirs {
			if err := walk(s); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(root)
}
