package checkout

import (
	"context"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// DiffDirs compares two directories on disk, oldDir and newDir, as DiffDir
// compares a commit with one (as OSTree's diff compares two directories):
// each entry is described as `otree commit` would record it, regular files
// of one size are hashed on a bounded pool of workers, and the changes come
// in the order Diff uses. No repository is involved. Entries are read
// relative to their open directories, as commit reads a tree, so trees
// deeper than PATH_MAX compare as any other. OwnerUID, OwnerGID and
// CanonicalPermissions apply to both sides; a Subpath is refused.
func DiffDirs(ctx context.Context, oldDir, newDir string, opts DiffOptions) ([]Change, error) {
	changes, err := diffDirs(ctx, oldDir, newDir, opts)
	return changes, nameCancel(ctx, err, fmt.Sprintf("diff of %s and %s", oldDir, newDir))
}

func diffDirs(ctx context.Context, oldDir, newDir string, opts DiffOptions) ([]Change, error) {
	if opts.Subpath != "" {
		return nil, fmt.Errorf("diff: a subpath applies to a commit, and %s and %s are directories", oldDir, newDir)
	}
	n := opts.Workers
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	dd := &dirsDiffer{diskDiffer: newDiskDiffer(differ{ctx: gctx, opts: opts}), jobs: make(chan dirsJob, 256)}
	var roots [2]*diskDir
	var sts [2]unix.Stat_t
	for i, dir := range []string{oldDir, newDir} {
		var err error
		if roots[i], sts[i], err = dd.openRoot(dir); err != nil {
			dd.closeAll()
			return nil, err
		}
	}
	for range n {
		g.Go(dd.hasher)
	}
	g.Go(func() error {
		defer close(dd.jobs)
		defer dd.release(roots[0])
		defer dd.release(roots[1])
		old, err := dd.diskInfo(roots[0], ".", &sts[0])
		if err != nil {
			return err
		}
		nw, err := dd.diskInfo(roots[1], ".", &sts[1])
		if err != nil {
			return err
		}
		if f := dd.metaFields(old, nw); len(f) > 0 {
			dd.out = append(dd.out, Change{Kind: Modified, Path: "/", Meta: true, Fields: f, Old: old, New: nw})
		}
		return dd.dirs("/", roots[0], roots[1])
	})
	err := g.Wait()
	dd.closeAll()
	if err != nil {
		return nil, err
	}
	return dd.collect(), nil
}

// collect fills the placeholders of out with what the hashers found, and
// drops those of files found equal.
func (dd *diskDiffer) collect() []Change {
	out := dd.out[:0]
	for i, ch := range dd.out {
		if ch.Kind == 0 {
			f := dd.found[i]
			if f == nil {
				continue
			}
			ch = *f
		}
		out = append(out, ch)
	}
	return out
}

// dirsDiffer is a diskDiffer whose old side is a directory too.
type dirsDiffer struct {
	*diskDiffer
	jobs chan dirsJob
}

// dirsJob is a pair of regular files of one size to compare.
type dirsJob struct {
	slot     int
	old, new diskJob
}

// dirs compares the directories old and nw at path p.
func (dd *dirsDiffer) dirs(p string, old, nw *diskDir) error {
	if err := dd.ctx.Err(); err != nil {
		return err
	}
	ia, err := dd.readDisk(old)
	if err != nil {
		return err
	}
	ib, err := dd.readDisk(nw)
	if err != nil {
		return err
	}
	return mergeNames(ia, ib, diskItemName, diskItemName,
		func(a *diskItem) error { return dd.diskTree(Deleted, diffJoin(p, a.name), old, a) },
		func(b *diskItem) error { return dd.diskTree(Added, diffJoin(p, b.name), nw, b) },
		func(a, b *diskItem) error { return dd.both(diffJoin(p, a.name), old, nw, a, b) })
}

// both compares the entries a of the directory od and b of nd, of one
// name.
func (dd *dirsDiffer) both(p string, od, nd *diskDir, a, b *diskItem) error {
	isReg := func(it *diskItem) bool { return it.st.Mode&unix.S_IFMT == unix.S_IFREG }
	if isReg(a) && isReg(b) && a.st.Size == b.st.Size {
		return enqueue(dd.diskDiffer, dd.jobs, dirsJob{slot: len(dd.out),
			old: diskJob{rel: p, dir: od.hold(), name: a.name, st: a.st}, new: diskJob{rel: p, dir: nd.hold(), name: b.name, st: b.st}})
	}
	old, err := dd.diskInfo(od, a.name, &a.st)
	if err != nil {
		return err
	}
	nw, err := dd.diskInfo(nd, b.name, &b.st)
	if err != nil {
		return err
	}
	switch {
	case a.isDir() && b.isDir():
		if f := dd.metaFields(old, nw); len(f) > 0 {
			dd.out = append(dd.out, Change{Kind: Modified, Path: p, Meta: true, Fields: f, Old: old, New: nw})
		}
		osub, err := dd.openDir(od, a.name)
		if err != nil {
			return err
		}
		defer dd.release(osub)
		nsub, err := dd.openDir(nd, b.name)
		if err != nil {
			return err
		}
		defer dd.release(nsub)
		return dd.dirs(p, osub, nsub)
	case !a.isDir() && !b.isDir():
		// Sizes differ, or not both regular: no content to read.
		c, err := dd.compareFiles(p, old, nw, func() (bool, error) { return false, nil })
		if err != nil || c == nil {
			return err
		}
		dd.out = append(dd.out, *c)
		return nil
	}
	dd.out = append(dd.out, Change{Kind: Modified, Path: p, Fields: []string{FieldType}, Old: old, New: nw})
	if a.isDir() {
		return dd.contents(Deleted, p, od, a.name)
	}
	return dd.contents(Added, p, nd, b.name)
}

// hasher compares queued pairs of files until the queue closes.
func (dd *dirsDiffer) hasher() error {
	return hashJobs(dd.diskDiffer, dd.jobs, func(j *dirsJob, buf []byte) (int, *Change, error) {
		defer dd.release(j.old.dir)
		defer dd.release(j.new.dir)
		c, err := dd.compare(j, buf)
		return j.slot, c, err
	})
}

// compare compares two regular files of one size: their contents are
// hashed under one header, so equal ids mean equal bytes.
func (dd *dirsDiffer) compare(j *dirsJob, buf []byte) (*Change, error) {
	old, err := dd.diskInfo(j.old.dir, j.old.name, &j.old.st)
	if err != nil {
		return nil, err
	}
	nw, err := dd.diskInfo(j.new.dir, j.new.name, &j.new.st)
	if err != nil {
		return nil, err
	}
	dd.normalize(old, nw)
	h, _ := diskHeader(old)
	if old.ID, err = hashDiskFile(&j.old, h, buf); err != nil {
		return nil, err
	}
	id, err := hashDiskFile(&j.new, h, buf)
	if err != nil {
		return nil, err
	}
	same := id == old.ID
	if headersEqual(old, nw) {
		if same {
			return nil, nil
		}
		nw.ID = id
	}
	return dd.compareFiles(j.new.rel, old, nw, func() (bool, error) { return same, nil })
}
