package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// objectKey names one stored object.
type objectKey struct {
	kind repo.Kind
	id   repo.ID
}

// commitObjects is the set of objects commit needs: itself, and every
// dirtree, dirmeta and file object of its tree.
func commitObjects(ctx context.Context, r *repo.Repo, commit repo.ID) (map[objectKey]bool, error) {
	root, err := r.Lookup(commit, "/")
	if err != nil {
		return nil, r.ExplainMissing(commit, err)
	}
	set := map[objectKey]bool{{repo.KindCommit, commit}: true}
	err = r.Walk(ctx, root, func(e repo.Entry) error {
		if !e.IsDir() {
			set[objectKey{repo.KindFile, e.ID}] = true
			return nil
		}
		set[objectKey{repo.KindDirMeta, e.MetaID}] = true
		if k := (objectKey{repo.KindDirTree, e.ID}); set[k] {
			return fs.SkipDir // a subtree already counted, with all it holds
		} else {
			set[k] = true
		}
		return nil
	})
	return set, r.ExplainMissing(commit, err)
}

// diffObjectStats is what diff --stats prints, as OSTree's does: how many
// objects each commit needs, how many both need, and what those take on
// disk.
type diffObjectStats struct {
	A           int   `json:"a_objects"`
	B           int   `json:"b_objects"`
	Common      int   `json:"common_objects"`
	CommonBytes int64 `json:"common_bytes"`
}

// commonObjects counts the objects commits a and b need, and those both need.
func commonObjects(ctx context.Context, r *repo.Repo, a, b repo.ID) (diffObjectStats, error) {
	sa, err := commitObjects(ctx, r, a)
	if err != nil {
		return diffObjectStats{}, err
	}
	sb, err := commitObjects(ctx, r, b)
	if err != nil {
		return diffObjectStats{}, err
	}
	st := diffObjectStats{A: len(sa), B: len(sb)}
	for k := range sa {
		if !sb[k] {
			continue
		}
		var fst unix.Stat_t
		if err := unix.Lstat(r.ObjectPath(k.kind, k.id), &fst); err != nil {
			return diffObjectStats{}, fmt.Errorf("%s %s: %w", k.kind, k.id, err)
		}
		st.Common++
		st.CommonBytes += repo.StoredBytes(&fst)
	}
	return st, nil
}

// writeObjectStats prints st in OSTree's lines.
func writeObjectStats(w io.Writer, st diffObjectStats) error {
	_, err := fmt.Fprintf(w, "[A] Object Count: %d\n[B] Object Count: %d\nCommon Object Count: %d\nCommon Object Size: %s\n",
		st.A, st.B, st.Common, siBytes(st.CommonBytes))
	return err
}
