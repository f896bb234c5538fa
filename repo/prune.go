package repo

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// InfiniteDepth, as PruneOptions.Depth, keeps every ancestor of a root.
const InfiniteDepth = -1

// PruneOptions configure Prune. They follow `ostree prune`.
//
// By default every commit stored in the repository is a root, so prune
// deletes only objects that no commit reaches (left by interrupted or
// abandoned work). History is trimmed with RefsOnly: refs become the only
// roots, each kept with Depth parents, and commits no ref reaches go with
// everything only they need.
type PruneOptions struct {
	// RefsOnly computes reachability from refs only (ostree's --refs-only).
	RefsOnly bool
	// Depth is how many parents of each root commit are kept: 0 keeps the
	// root commit alone, InfiniteDepth (-1) keeps all, and a depth below
	// -1 is refused. The zero value keeps no history, so with RefsOnly set
	// callers that mean "all history" must say InfiniteDepth. Without
	// RefsOnly every commit is a root and Depth removes nothing (as in
	// ostree).
	Depth int
	// KeepYoungerThan, when set, implies RefsOnly and replaces Depth: each
	// ref's commit is kept, and its ancestors are kept for as long as the
	// chain stays younger than this time (ostree's --keep-younger-than).
	KeepYoungerThan time.Time
	// DeleteCommit, when set, deletes this commit first; a commit a ref
	// points at is refused. Objects only it needed then go as unreachable.
	// As in OSTree, it sets core.tombstone-commits in the config, so the
	// commit leaves a tombstone (see Prune).
	DeleteCommit ID
	// NoPrune reports what would be deleted without deleting anything.
	NoPrune bool
	// BranchDepth gives refs a depth of their own, in place of Depth or
	// KeepYoungerThan (ostree's --retain-branch-depth=BRANCH=DEPTH;
	// InfiniteDepth keeps all, below it is refused). Each name must be a
	// ref. Implies RefsOnly.
	BranchDepth map[string]int
	// OnlyBranches, when set, trims only these refs (each must be a ref):
	// every other ref keeps all its history unless BranchDepth says
	// otherwise (ostree's --only-branch). Implies RefsOnly.
	OnlyBranches []string
	// CommitOnly walks commits without their trees and deletes only commit
	// objects (with their detached metadata and partial markers): a cheap
	// way to drop history, whose content a later prune removes (ostree's
	// --commit-only). PruneReport.Total then counts commit objects only.
	CommitOnly bool
	// AfterSweep, when set, runs once the sweep is done, while Prune
	// still holds the repository lock exclusively, with the commits
	// deleted (in a dry run, that would be): what goes with them and
	// package repo does not know, such as static deltas, goes there, where
	// no transaction can store one of them again, nor a delta generation
	// read them, in between. Its error is Prune's.
	AfterSweep func(gone []ID) error
}

// refsOnly tells whether refs are the only roots.
func (o *PruneOptions) refsOnly() bool {
	return o.RefsOnly || !o.KeepYoungerThan.IsZero() || len(o.BranchDepth) > 0 || len(o.OnlyBranches) > 0
}

// ownDepths returns the branches that BranchDepth and OnlyBranches give a
// depth of their own, refusing names that are not refs. An alias counts as
// the branch it ends at.
func (o *PruneOptions) ownDepths(refs []Ref) (map[string]int, error) {
	byName := map[string]Ref{}
	for _, ref := range refs {
		byName[ref.Name] = ref
	}
	branch := func(name string) (string, bool) {
		ref, ok := byName[name]
		for i := 0; ok && ref.Alias != "" && i < maxAliasDepth; i++ {
			ref, ok = byName[ref.Alias]
		}
		return ref.Name, ok
	}
	own := map[string]int{}
	for name, d := range o.BranchDepth {
		b, ok := branch(name)
		if !ok {
			return nil, fmt.Errorf("prune: no ref %s to keep %d deep", name, d)
		}
		own[b] = d
	}
	if len(o.OnlyBranches) == 0 {
		return own, nil
	}
	only := map[string]bool{}
	for _, name := range o.OnlyBranches {
		b, ok := branch(name)
		if !ok {
			return nil, fmt.Errorf("prune: no ref %s to trim alone", name)
		}
		only[b] = true
	}
	for _, ref := range refs {
		if _, set := own[ref.Name]; !set && !only[ref.Name] && ref.Alias == "" {
			own[ref.Name] = InfiniteDepth
		}
	}
	return own, nil
}

// PruneCount is a number of objects and the bytes they take.
type PruneCount struct {
	Objects int64 `json:"objects"` // how many objects
	Bytes   int64 `json:"bytes"`   // their size as stored
}

// PruneReport says what Prune deleted (or, with NoPrune, would delete).
type PruneReport struct {
	// Total is the number of objects in the repository before pruning.
	Total int64 `json:"total_objects"`
	// TotalByKind splits Total by kind name.
	TotalByKind map[string]int64 `json:"total_by_kind"`
	// Deleted is the number of objects deleted.
	Deleted int64 `json:"deleted_objects"`
	// Freed is their size in bytes, as stored (StoredBytes: a sparse
	// object's holes free nothing): a bare-user object still hardlinked
	// into a checkout frees its name, not its blocks.
	Freed int64 `json:"freed_bytes"`
	// ByKind splits Deleted and Freed by kind name.
	ByKind map[string]PruneCount `json:"by_kind"`
	// Commits lists the deleted commits.
	Commits []ID `json:"deleted_commits"`
	// Cache counts the entries removed from an archive repository's
	// uncompressed-object cache (not objects, and not in Deleted): those no
	// checkout uses and those of deleted objects. Its Bytes count only
	// the entries no checkout uses; the others free just their name.
	Cache PruneCount `json:"uncompressed_cache"`
	// Deltas lists, as FROM-TO names, the static deltas deleted with the
	// commits they lead to. Only delta.Prune, which wraps Prune, deletes
	// them (package repo does not know their format); Prune alone leaves
	// it empty.
	Deltas []string `json:"deleted_deltas"`
	// DeltaBytes is the size of the files of those deltas, as stored
	// (StoredBytes), not counted in Freed.
	DeltaBytes int64 `json:"deleted_delta_bytes"`
	// DryRun is set for NoPrune: nothing was actually deleted.
	DryRun bool `json:"dry_run"`
}

// Prune deletes objects that its roots (see PruneOptions) do not reach,
// with the detached metadata and partial markers of deleted commits, and
// staging directories of transactions whose process died.
//
// It takes the repository lock exclusively (transactions hold it shared
// from Begin to Commit, so no commit is ever half-visible to prune) and
// then the refs lock. A missing or corrupt commit, dirtree or dirmeta
// that a root commit needs stops prune with an error, unless that commit
// is marked partial: a damaged tree would hide what it references, and
// prune would then delete objects a repair still needs. A missing file
// object hides nothing and does not stop it (prune reads no file
// objects); Fsck finds it. Run Fsck (with Delete) first.
//
// When refs are its roots (RefsOnly), or with DeleteCommit, it refuses to
// run while a ref cannot be read or a directory of refs cannot be listed
// (ListRefs fails): what such a ref needs is unknown, and pruning could
// delete it. Otherwise it reads no refs, as OSTree does: every stored
// commit is a root whatever the refs say.
//
// Commit objects are deleted first, so that a crash mid-way leaves no
// surviving commit that needs a deleted object.
//
// Static deltas to deleted commits stay: delta.Prune deletes them too.
//
// When the config sets ConfigTombstoneCommits, every commit deleted
// leaves a tombstone, made durable before the commit goes; tombstones are
// kept (a stale one, beside a commit stored again, is deleted).
func (r *Repo) Prune(ctx context.Context, opts PruneOptions) (*PruneReport, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	if opts.NoPrune && !opts.DeleteCommit.IsZero() {
		return nil, errors.New("prune: DeleteCommit and NoPrune cannot be combined")
	}
	// Only -1 means "all": OSTree's prune takes any other negative depth
	// as 0, and its pull refuses one; what was meant is unclear.
	if opts.Depth < InfiniteDepth {
		return nil, fmt.Errorf("prune: invalid depth %d (want %d for all history, or 0 or more)", opts.Depth, InfiniteDepth)
	}
	for name, d := range opts.BranchDepth {
		if d < InfiniteDepth {
			return nil, fmt.Errorf("prune: invalid depth %d for ref %s (want %d for all history, or 0 or more)", d, name, InfiniteDepth)
		}
	}
	if r.readOnly != nil && !opts.NoPrune {
		return nil, fmt.Errorf("prune: %w", r.errReadOnly())
	}
	lk, err := r.LockExclusive(ctx)
	if err != nil {
		return nil, err
	}
	// Every ref writer holds the repository lock shared (LockRefs, or the
	// write itself, takes it), so holding it exclusively also keeps refs
	// still.
	defer lk.Unlock()
	if !opts.NoPrune {
		r.cleanStaleStaging()
		r.cleanAbandonedTemps()
	}

	// Without RefsOnly every stored commit is a root and refs add none:
	// only a commit to delete needs them, to refuse one a ref points at.
	// Reading them all would cost a large repository seconds for nothing.
	var refs []Ref
	if opts.refsOnly() || !opts.DeleteCommit.IsZero() {
		refs, err = r.ListRefs("")
	}
	if bad := (*UnreadableRefsError)(nil); errors.As(err, &bad) {
		// What such a ref needs is unknown: pruning could delete it.
		which, what := "ref "+bad.Refs[0], "it points at"
		if len(bad.Refs) > 1 {
			which, what = "refs "+strings.Join(bad.Refs, ", "), "they point at"
		}
		return nil, fmt.Errorf("prune %s: not pruning while %s cannot be read (a prune could delete what %s): %w", r.path, which, what, err)
	}
	if err != nil {
		return nil, fmt.Errorf("prune %s: %w", r.path, err)
	}
	own, err := opts.ownDepths(refs)
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{ByKind: map[string]PruneCount{}, TotalByKind: map[string]int64{}, DryRun: opts.NoPrune, Commits: []ID{}, Deltas: []string{}}
	p := &pruneRun{r: r, ctx: ctx, reach: map[objKey]bool{}, depth: map[ID]int{}, young: map[ID]bool{}, commitOnly: opts.CommitOnly}

	tombstones, err := r.TombstoneCommits()
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	objs, _, err := r.listObjects(ctx, nil)
	if err != nil {
		return nil, err
	}
	// Tombstones are never swept: they outlive their commit on purpose.
	var tombs []ID
	for _, o := range objs {
		if o.kind == KindTombstoneCommit {
			tombs = append(tombs, o.id)
		}
	}
	if opts.CommitOnly {
		objs = slices.DeleteFunc(objs, func(o storedObject) bool { return o.kind != KindCommit && o.kind != KindCommitMeta })
	}
	for _, o := range objs {
		if !opts.CommitOnly || o.kind == KindCommit {
			rep.Total++
			rep.TotalByKind[o.kind.String()]++
		}
	}

	if !opts.DeleteCommit.IsZero() {
		if err := p.deleteCommit(opts.DeleteCommit, refs, rep); err != nil {
			return rep, p.finish(rep, err)
		}
		tombstones = true // deleteCommit turned them on
	}

	switch {
	case opts.refsOnly():
		for _, ref := range refs {
			if ref.Alias != "" {
				continue // not a root of its own: the branch it ends at is
			}
			d, set := own[ref.Name]
			if !set && !opts.KeepYoungerThan.IsZero() {
				err = p.keepYoungerThan(ref, opts.KeepYoungerThan)
			} else {
				if !set {
					d = opts.Depth
				}
				p.root(ref.Commit, ref.Name, d)
			}
			if err != nil {
				return rep, p.finish(rep, err)
			}
		}
		if err := p.keepRoots(); err != nil {
			return rep, p.finish(rep, err)
		}
	default:
		for _, o := range objs {
			if o.kind != KindCommit || o.id == opts.DeleteCommit {
				continue
			}
			p.root(o.id, "", opts.Depth)
		}
		if err := p.keepRoots(); err != nil {
			return rep, p.finish(rep, err)
		}
	}

	if tombstones && !opts.NoPrune {
		var gone []ID
		for _, o := range objs {
			if o.kind == KindCommit && !p.reach[objKey(o)] && o.id != opts.DeleteCommit {
				gone = append(gone, o.id)
			}
		}
		if err := r.writeTombstones(gone); err != nil {
			return rep, p.finish(rep, tombstonesError(r.path, len(gone), rep.Deleted, err))
		}
	}

	// The caches (the stat cache, the file-header index) name objects, and
	// a commit takes their word without looking. They go before any
	// object does, made durable by the sync below, so that a prune killed
	// half-way leaves no cache naming a deleted object.
	sweep := !opts.NoPrune && slices.ContainsFunc(objs, func(o storedObject) bool { return !p.reach[objKey(o)] })
	if sweep {
		if err := r.dropCaches(); err != nil {
			return rep, p.finish(rep, err)
		}
	}
	// Sweep: commits (with their metadata and state) first, then the rest.
	order := []Kind{KindCommit, KindCommitMeta, KindDirTree, KindDirMeta, KindFile}
	for i, kind := range order {
		for _, o := range objs {
			if o.kind != kind || p.reach[objKey(o)] || (o.kind == KindCommit && o.id == opts.DeleteCommit) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return rep, p.finish(rep, fmt.Errorf("prune %s: %w", r.path, err))
			}
			if err := p.remove(o.kind, o.id, opts.NoPrune, rep); err != nil {
				return rep, p.finish(rep, err)
			}
		}
		if i == 0 && sweep {
			// Make the commits' removal (and the caches') durable before
			// what they needed goes.
			if err := unix.Syncfs(r.objects()); err != nil {
				return rep, p.finish(rep, fmt.Errorf("syncing %s: %w", r.Path("objects"), err))
			}
		}
	}
	if !opts.NoPrune {
		if err := r.removeStaleMarkers(); err != nil {
			return rep, p.finish(rep, err)
		}
	}
	if r.mode == ModeArchive {
		// Without CommitOnly every file object not reached is deleted
		// (or, in a dry run, would be); with it, none is.
		gone := func(id ID) bool { return !opts.CommitOnly && !p.reach[objKey{KindFile, id}] }
		if err := r.pruneUncompressedCache(ctx, gone, opts.NoPrune, rep); err != nil {
			return rep, p.finish(rep, err)
		}
	}
	// A tombstone beside its commit (stored again, or kept after a prune
	// that wrote it died before deleting the commit) is stale. A dry run
	// has deleted nothing: a commit it would delete counts as gone, so
	// that its tombstone is kept, as the real prune keeps it.
	for _, id := range tombs {
		has, err := r.HasObject(KindCommit, id)
		if err != nil {
			return rep, p.finish(rep, err)
		}
		if !has || opts.NoPrune && !p.reach[objKey{KindCommit, id}] {
			continue
		}
		if err := p.remove(KindTombstoneCommit, id, opts.NoPrune, rep); err != nil {
			return rep, p.finish(rep, err)
		}
	}
	if opts.AfterSweep != nil {
		if err := opts.AfterSweep(rep.Commits); err != nil {
			return rep, p.finish(rep, err)
		}
	}
	return rep, p.finish(rep, nil)
}

// removeStaleMarkers removes partial markers of commits that are not
// stored: a pull killed after marking a commit and before publishing it
// leaves one, which would otherwise brand the commit partial should it
// arrive complete later. Prune holds the repository lock exclusively, so
// no transaction is between marking and publishing.
func (r *Repo) removeStaleMarkers() error {
	ents, err := os.ReadDir(r.Path("state"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".commitpartial")
		id, perr := ParseID(hex)
		if !ok || perr != nil {
			continue
		}
		if has, err := r.HasObject(KindCommit, id); err != nil || has {
			if err != nil {
				return err
			}
			continue
		}
		if err := os.Remove(r.Path("state", e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}

// pruneRun is the state of one Prune.
type pruneRun struct {
	r          *Repo
	ctx        context.Context
	reach      map[objKey]bool
	depth      map[ID]int  // the remaining depth each commit was kept with
	roots      pruneSteps  // commits to keep, deepest first
	young      map[ID]bool // commits keepYoungerThan kept as ancestors: their history is walked
	commitOnly bool        // walk no trees (PruneOptions.CommitOnly)
}

// finish drops caches if anything was deleted and returns err.
func (p *pruneRun) finish(rep *PruneReport, err error) error {
	if rep.DryRun || rep.Deleted == 0 {
		return err
	}
	return errors.Join(err, p.r.dropCaches())
}

// tombstonesError is Prune's error when the tombstones of the n commits it
// would delete cannot be stored. They go to disk before the commits go, so
// a full filesystem stops prune before it frees anything: the error says
// so, and how to let it run.
func tombstonesError(path string, n int, deleted int64, err error) error {
	what := ""
	if deleted == 0 {
		what = "; nothing was deleted"
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		what += fmt.Sprintf(" (free some space, or set %s=false, and prune again)", ConfigTombstoneCommits)
	}
	return fmt.Errorf("prune %s: storing the tombstones (%s=true) of the %d commits to delete, which go to disk before the commits go: %w%s",
		path, ConfigTombstoneCommits, n, err, what)
}

// deleteCommit removes a commit no ref points at.
func (p *pruneRun) deleteCommit(id ID, refs []Ref, rep *PruneReport) error {
	for _, ref := range refs {
		if ref.Commit == id {
			return fmt.Errorf("prune: commit %s is referenced by %s", id, ref.Name)
		}
	}
	has, err := p.r.HasObject(KindCommit, id)
	if err != nil {
		return err
	}
	if !has {
		return fmt.Errorf("prune: deleting commit: %w", &ObjectMissingError{KindCommit, id})
	}
	// As OSTree does, deleting a commit by hand turns tombstones on.
	if err := p.r.enableTombstones(); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if err := p.r.writeTombstones([]ID{id}); err != nil {
		return err
	}
	return p.remove(KindCommit, id, false, rep)
}

// remove deletes (or, dry, only counts) one object. Deleting a commit also
// deletes its partial marker.
func (p *pruneRun) remove(kind Kind, id ID, dry bool, rep *PruneReport) error {
	rel := objectPath(kind, id)
	var st unix.Stat_t
	if err := unix.Fstatat(p.r.objects(), rel, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("prune: stat %s: %w", p.r.ObjectPath(kind, id), err)
	}
	if !dry {
		if err := unix.Unlinkat(p.r.objects(), rel, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("prune: deleting %s: %w", p.r.ObjectPath(kind, id), err)
		}
		if kind == KindCommit {
			if err := os.Remove(p.r.partialStatePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("prune: %w", err)
			}
		}
	}
	freed := StoredBytes(&st)
	rep.Deleted++
	rep.Freed += freed
	c := rep.ByKind[kind.String()]
	c.Objects++
	c.Bytes += freed
	rep.ByKind[kind.String()] = c
	if kind == KindCommit {
		rep.Commits = append(rep.Commits, id)
	}
	return nil
}

// root adds a commit to keep with depth of its ancestors (negative: all
// of them); ref names the ref it comes from, for errors ("" for none).
// keepRoots walks them.
func (p *pruneRun) root(id ID, ref string, depth int) {
	if depth < 0 {
		depth = math.MaxInt
	}
	heap.Push(&p.roots, pruneStep{id: id, depth: depth, ref: ref, root: true})
}

// keepRoots marks the roots given to root and their ancestors reachable.
// A root must exist; a missing ancestor ends its walk (history may have
// been pruned before).
//
// A commit's remaining depth is the most any root leaves it. Steps are
// taken deepest first, so the first step to reach a commit brings that
// most, and each commit is read once however many roots share it: walking
// root by root re-walked shared history whenever a later root left it
// more depth, quadratic in the history with a ref at each commit, newest
// first, or with every commit a root.
func (p *pruneRun) keepRoots() error {
	for p.roots.Len() > 0 {
		if err := p.ctx.Err(); err != nil {
			return fmt.Errorf("prune %s: %w", p.r.path, err)
		}
		s := heap.Pop(&p.roots).(pruneStep)
		if _, seen := p.depth[s.id]; seen {
			continue
		}
		if !s.root {
			if ok, err := p.r.HasObject(KindCommit, s.id); err != nil || !ok {
				if err != nil {
					return fmt.Errorf("prune: %w", err)
				}
				continue
			}
		}
		c, err := p.keepOne(s.id)
		if err != nil {
			if s.ref != "" {
				return fmt.Errorf("prune: ref %s: %w", s.ref, err)
			}
			return fmt.Errorf("prune: %w", err)
		}
		p.depth[s.id] = s.depth
		if s.depth == 0 || c.Parent.IsZero() {
			continue
		}
		d := s.depth
		if d != math.MaxInt {
			d--
		}
		heap.Push(&p.roots, pruneStep{id: c.Parent, depth: d, ref: s.ref})
	}
	return nil
}

// pruneStep is a commit to keep, with how many of its ancestors to keep
// (math.MaxInt: all).
type pruneStep struct {
	id    ID
	depth int
	ref   string // the ref the walk started from, for errors
	root  bool   // a root, which must exist
}

// pruneSteps is a max-heap of steps by depth.
type pruneSteps []pruneStep

func (h pruneSteps) Len() int           { return len(h) }
func (h pruneSteps) Less(i, j int) bool { return h[i].depth > h[j].depth }
func (h pruneSteps) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pruneSteps) Push(x any)        { *h = append(*h, x.(pruneStep)) }
func (h *pruneSteps) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// keepYoungerThan keeps a ref's commit, and its ancestors for as long as
// the chain from the ref's commit down is no older than t.
func (p *pruneRun) keepYoungerThan(ref Ref, t time.Time) error {
	c, err := p.keepOne(ref.Commit)
	if err != nil {
		return fmt.Errorf("prune: ref %s: %w", ref.Name, err)
	}
	for notOlder(c.Timestamp, t) && !c.Parent.IsZero() {
		if err := p.ctx.Err(); err != nil {
			return fmt.Errorf("prune %s: %w", p.r.path, err)
		}
		id := c.Parent
		if p.young[id] {
			// Another ref's walk kept it, and so what follows it: refs
			// sharing history walk it once.
			return nil
		}
		if ok, err := p.r.HasObject(KindCommit, id); err != nil || !ok {
			return err
		}
		pc, err := p.readCommit(id)
		if err != nil {
			return fmt.Errorf("prune: ref %s: %w", ref.Name, err)
		}
		if !notOlder(pc.Timestamp, t) {
			return nil
		}
		if err := p.keepRead(id, pc); err != nil {
			return fmt.Errorf("prune: ref %s: %w", ref.Name, err)
		}
		p.young[id] = true
		c = pc
	}
	return nil
}

// notOlder reports whether a commit made at ts (unsigned seconds) is no
// older than t. Stamps past the int64 range are the far future, as in
// OSTree's unsigned comparison (its commits dated before 1970 wrap there),
// not the past a signed conversion would make them; a t before 1970 is
// older than every commit.
func notOlder(ts uint64, t time.Time) bool {
	u := t.Unix()
	return u < 0 || ts >= uint64(u)
}

// pruneReadHook, when set, is called with each commit a prune's walk
// reads, so that a test can count them.
var pruneReadHook func(ID)

// readCommit reads a commit for the walk.
func (p *pruneRun) readCommit(id ID) (*Commit, error) {
	if pruneReadHook != nil {
		pruneReadHook(id)
	}
	return p.r.ReadCommit(id)
}

// keepOne marks one commit and everything its tree needs reachable.
func (p *pruneRun) keepOne(id ID) (*Commit, error) {
	c, err := p.readCommit(id)
	if err != nil {
		return nil, err
	}
	return c, p.keepRead(id, c)
}

// keepRead is keepOne of the commit c, read from id.
func (p *pruneRun) keepRead(id ID, c *Commit) error {
	p.reach[objKey{KindCommit, id}] = true
	p.reach[objKey{KindCommitMeta, id}] = true
	if p.commitOnly {
		return nil
	}
	p.reach[objKey{KindDirMeta, c.RootMeta}] = true
	return p.keepTree(c.RootTree, id, p.r.isCommitPartial(id))
}

// keepTree marks a dirtree and everything below it reachable. Content
// objects are marked by name without being read.
func (p *pruneRun) keepTree(id, commit ID, partial bool) error {
	k := objKey{KindDirTree, id}
	if p.reach[k] {
		return nil
	}
	t, err := p.r.ReadDirTree(id)
	if err != nil {
		if partial && errors.Is(err, ErrNotFound) {
			return nil
		}
		return fmt.Errorf("commit %s: %w", commit, err)
	}
	p.reach[k] = true
	for _, f := range t.Files {
		p.reach[objKey{KindFile, f.ID}] = true
	}
	for _, d := range t.Dirs {
		p.reach[objKey{KindDirMeta, d.MetaID}] = true
		if err := p.keepTree(d.TreeID, commit, partial); err != nil {
			return err
		}
	}
	return nil
}
