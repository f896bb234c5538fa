package commit

import (
	"github.com/otree/otree/repo"
)

// treeSizes lists the size of every object the tree needs, each once: its
// dirtrees, dirmetas and file objects, as a depth-first walk meets them.
// The tree must be written; objects not staged by txn are read from the
// repository.
func treeSizes(r *repo.Repo, txn *repo.Txn, root *dir) ([]repo.ObjectSize, error) {
	seen := map[repo.ObjectSize]bool{} // keyed by kind and id only
	var out []repo.ObjectSize
	add := func(kind repo.Kind, id repo.ID) error {
		k := repo.ObjectSize{Kind: kind, ID: id}
		if seen[k] {
			return nil
		}
		seen[k] = true
		stored, unpacked, err := txn.ObjectSizes(kind, id)
		if err != nil {
			return err
		}
		out = append(out, repo.ObjectSize{Kind: kind, ID: id, Stored: stored, Unpacked: unpacked})
		return nil
	}
	var stored func(tree, meta repo.ID) error
	stored = func(tree, meta repo.ID) error {
		if err := add(repo.KindDirTree, tree); err != nil {
			return err
		}
		if err := add(repo.KindDirMeta, meta); err != nil {
			return err
		}
		t, err := r.ReadDirTree(tree)
		if err != nil {
			return err
		}
		for _, f := range t.Files {
			if err := add(repo.KindFile, f.ID); err != nil {
				return err
			}
		}
		for _, d := range t.Dirs {
			if err := stored(d.TreeID, d.MetaID); err != nil {
				return err
			}
		}
		return nil
	}
	var walk func(d *dir) error
	walk = func(d *dir) error {
		if !d.stored.IsZero() {
			return stored(d.stored, d.meta)
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
