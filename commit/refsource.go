package commit

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/otree/otree/internal/workq"
	"github.com/otree/otree/repo"
)

// refTree reads a --tree=ref= source. The stored tree is reused as it is,
// no object read, unless the modifier changes what entries record; then,
// as OSTree does, every directory and file is taken through the modifier
// and file objects whose header changes are stored again with the same
// content. With stat overrides only, just the directories that lead to an
// overridden path are rewritten. (The caller takes skipped paths out.)
func refTree(ctx context.Context, r *repo.Repo, txn *repo.Txn, rev string, mod *modifier, cnt *counters) (*dir, error) {
	base, err := baseTree(r, rev)
	if err != nil || (mod.identity && mod.byPath == nil) {
		return base, err
	}
	rw := &refRewrite{r: r, txn: txn, mod: mod, cnt: cnt, metas: map[repo.ID]repo.ID{}, seen: map[repo.ID]string{}}
	root, err := rw.dir(ctx, "/", base.stored, base.meta)
	if err != nil {
		return nil, err
	}
	if err := rw.rewriteFiles(ctx); err != nil {
		return nil, err
	}
	return root, nil
}

// baseTree reads a --base source: the stored tree as it is.
func baseTree(r *repo.Repo, rev string) (*dir, error) {
	id, err := r.ResolveRev(rev)
	if err != nil {
		return nil, err
	}
	c, err := r.ReadCommit(id)
	if err != nil {
		return nil, err
	}
	// Its tree is taken as stored, unread: a commit a pull has not
	// completed (or only fetched the metadata of) may lack objects.
	if r.IsCommitPartial(id) {
		return nil, fmt.Errorf("commit %s is partial here (a pull has not completed it): pull it whole first", id)
	}
	return &dir{meta: c.RootMeta, stored: c.RootTree}, nil
}

// refRewrite takes a stored tree through a modifier: first the directories,
// each dirmeta rewritten once (most directories share one), then each
// distinct file object, in parallel, since changing a regular file's
// header means hashing and storing its content again.
type refRewrite struct {
	r     *repo.Repo
	txn   *repo.Txn
	mod   *modifier
	cnt   *counters
	metas map[repo.ID]repo.ID // dirmeta: old id to new
	seen  map[repo.ID]string  // file objects of the tree, each with a path naming it in errors
	slots []slot              // entries holding an old id of seen until rewriteFiles
}

// slot is one file entry of a directory being built.
type slot struct {
	d *dir
	i int
}

func (rw *refRewrite) dir(ctx context.Context, path string, tree, meta repo.ID) (*dir, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := rw.mod.overrideFor(path, "")
	if rw.mod.identity && o == nil && !rw.mod.under[joinPath(path, "")] {
		return &dir{meta: meta, stored: tree}, nil // nothing in it changes
	}
	m, err := rw.meta(meta, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t, err := rw.r.ReadDirTree(tree)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Counted here, the root included, as the walk counts the
	// directories it reads; one reused unread is not scanned.
	rw.cnt.dirs.Add(1)
	d := &dir{meta: m, fileNames: make([]string, len(t.Files)), fileIDs: make([]repo.ID, len(t.Files)),
		dirNames: make([]string, len(t.Dirs)), dirs: make([]*dir, len(t.Dirs))}
	for i, f := range t.Files {
		d.fileNames[i], d.fileIDs[i] = f.Name, f.ID
		if fo := rw.mod.overrideFor(path, f.Name); fo != nil {
			if d.fileIDs[i], err = rw.file(f.ID, fo); err != nil {
				return nil, fmt.Errorf("%s%s: %w", path, f.Name, err)
			}
			continue
		}
		if rw.mod.identity {
			continue
		}
		if _, ok := rw.seen[f.ID]; !ok {
			rw.seen[f.ID] = path + f.Name
		}
		rw.slots = append(rw.slots, slot{d, i})
	}
	rw.cnt.files.Add(int64(len(t.Files)))
	for i, e := range t.Dirs {
		if d.dirs[i], err = rw.dir(ctx, path+e.Name+"/", e.TreeID, e.MetaID); err != nil {
			return nil, err
		}
		d.dirNames[i] = e.Name
	}
	return d, nil
}

// meta rewrites a dirmeta; o is the directory's stat override, if any.
func (rw *refRewrite) meta(id repo.ID, o *override) (repo.ID, error) {
	if o == nil && rw.mod.identity {
		return id, nil // only stat overrides apply, and none to this one
	}
	if n, ok := rw.metas[id]; ok && o == nil {
		return n, nil
	}
	m, err := rw.r.ReadDirMeta(id)
	if err != nil {
		return repo.ID{}, err
	}
	if err := rw.mod.dir(m, o); err != nil {
		return repo.ID{}, err
	}
	n, err := rw.txn.WriteMeta(repo.KindDirMeta, m.Encode())
	if err != nil {
		return repo.ID{}, err
	}
	if o == nil {
		rw.metas[id] = n
	}
	return n, nil
}

// rewriteFiles rewrites every file object the directories name and puts
// the new ids in their place.
func (rw *refRewrite) rewriteFiles(ctx context.Context) error {
	ids := make([]repo.ID, 0, len(rw.seen))
	for id := range rw.seen {
		ids = append(ids, id)
	}
	out := make([]repo.ID, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workq.Workers())
	for i, id := range ids {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			n, err := rw.file(id, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", rw.seen[id], err)
			}
			out[i] = n
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	to := make(map[repo.ID]repo.ID, len(ids))
	for i, id := range ids {
		to[id] = out[i]
	}
	for _, s := range rw.slots {
		s.d.fileIDs[s.i] = to[s.d.fileIDs[s.i]]
	}
	return nil
}

// file rewrites one file object and returns its new id (the old one when
// the modifier leaves its header as it is); o is its stat override, if any.
func (rw *refRewrite) file(id repo.ID, o *override) (repo.ID, error) {
	h, err := rw.r.StatFile(id)
	if err != nil {
		return repo.ID{}, err
	}
	was := repo.AppendFileHeader(nil, h)
	mh := *h
	if err := rw.mod.file(&mh, o); err != nil {
		return repo.ID{}, err
	}
	switch {
	case bytes.Equal(was, repo.AppendFileHeader(nil, &mh)):
		return id, nil
	case mh.Type != repo.TypeRegular:
		n := repo.FileID(&mh, nil)
		_, err := rw.txn.WriteFile(&mh, n, nil)
		return n, err
	}
	return rw.rewriteContent(id, &mh)
}

// rewriteContent stores the content of object id under header h.
func (rw *refRewrite) rewriteContent(id repo.ID, h *repo.FileHeader) (repo.ID, error) {
	_, rc, err := rw.r.OpenFile(id)
	if err != nil {
		return repo.ID{}, err
	}
	defer rc.Close()
	n, isNew, err := rw.txn.WriteFileStream(h, rc)
	if err != nil {
		return repo.ID{}, fmt.Errorf("object %s: %w", id, err)
	}
	rw.cnt.hashed.Add(1)
	// Scanned as well as hashed: the bytes deduplicated are those
	// scanned that needed no new object.
	rw.cnt.bytesScanned.Add(int64(h.Size))
	rw.cnt.bytesHashed.Add(int64(h.Size))
	if isNew {
		rw.cnt.bytesNew.Add(int64(h.Size))
	}
	return n, nil
}
