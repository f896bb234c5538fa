package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
)

// USBOptions configure CreateUSB.
type USBOptions struct {
	// DestinationRepo is where, relative to the mount, the repository
	// goes (one collection only). It is then linked from
	// .otree/repos.d/COLLECTION-ID, where the mount finder looks. Empty
	// means .otree/repos.d/COLLECTION-ID itself.
	DestinationRepo string
	// Commit, if set, is the revision copied instead of the ref's commit
	// here (one ref only).
	Commit string
	// NoSync skips syncing the objects and the summary; only for scratch
	// copies.
	NoSync bool
}

// USBRepo is one repository CreateUSB wrote, with the refs it copied.
type USBRepo struct {
	CollectionID string      `json:"collection_id"` // the collection of the refs it holds
	Path         string      `json:"path"`          // the repository's directory on the mounted filesystem
	Created      bool        `json:"created"`       // made by this call rather than found
	Refs         []RefUpdate `json:"refs"`          // Ref and Branch: the branch there; Old: what it named before
}

// CreateUSB copies collection refs, with every object their commits
// reach, onto the filesystem at mount (a USB stick, a network share), so
// that FindRemotes on another machine finds them there. Each collection
// gets an archive repository of its own whose collection ID it is,
// .otree/repos.d/COLLECTION-ID unless opts.DestinationRepo says otherwise;
// a ref is its branch there. A ref is looked up here as the branch of
// this repository's collection, or the tracking ref of a remote of that
// collection. Nothing is written through a symbolic link: the mount is
// not trusted to keep writes on itself. The refs move only once their
// objects are durable, and the summary is then written anew.
func CreateUSB(ctx context.Context, r *repo.Repo, mount string, refs []CollectionRef, opts USBOptions) ([]USBRepo, error) {
	if len(refs) == 0 {
		return nil, errors.New("create-usb: no refs given")
	}
	for _, cr := range refs {
		if err := cr.Validate(); err != nil {
			return nil, err
		}
	}
	if opts.Commit != "" && len(refs) != 1 {
		return nil, fmt.Errorf("create-usb: a commit can only be given with a single ref, not %d", len(refs))
	}
	// The path given is the caller's and may be a link; what lies below
	// it is the stick's, and is not followed.
	top, err := filepath.EvalSymlinks(mount)
	if err != nil {
		return nil, fmt.Errorf("create-usb: %w", err)
	}
	if top, err = filepath.Abs(top); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(top); err != nil {
		return nil, fmt.Errorf("create-usb: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("create-usb: %s is not a directory", top)
	}
	var order []string // collections, in the order first named
	byColl := map[string][]CollectionRef{}
	for _, cr := range refs {
		if _, ok := byColl[cr.CollectionID]; !ok {
			order = append(order, cr.CollectionID)
		}
		byColl[cr.CollectionID] = append(byColl[cr.CollectionID], cr)
	}
	if opts.DestinationRepo != "" && len(order) > 1 {
		return nil, fmt.Errorf("create-usb: a destination repository %s holds one collection, and %d were given (%s)", opts.DestinationRepo, len(order), strings.Join(order, ", "))
	}
	// Everything is resolved and checked before anything is written.
	commits := map[CollectionRef]repo.ID{}
	for _, cr := range refs {
		id, err := resolveCollectionRef(r, cr, opts.Commit)
		if err != nil {
			return nil, err
		}
		commits[cr] = id
	}
	type plan struct {
		coll, dest, link string // link: .otree/repos.d entry to make, "" for none
	}
	var plans []plan
	for _, c := range order {
		p := plan{coll: c, dest: filepath.Join(MountReposDir, c)}
		if opts.DestinationRepo != "" {
			d, err := withinMount(opts.DestinationRepo)
			if err != nil {
				return nil, err
			}
			if d != p.dest {
				p.link, p.dest = p.dest, d
			}
		} else if t, err := os.Readlink(filepath.Join(top, p.dest)); err == nil {
			// An earlier --destination-repo: its link says where the
			// repository is.
			if err := noLinksOnTheWay(top, MountReposDir); err != nil {
				return nil, fmt.Errorf("create-usb: %w", err)
			}
			d, err := withinMount(filepath.Join(MountReposDir, t))
			if filepath.IsAbs(t) || err != nil {
				return nil, fmt.Errorf("create-usb: %s links to %s, outside the mount: nothing is written through it", filepath.Join(top, p.dest), t)
			}
			p.dest = d
		}
		if err := noLinksOnTheWay(top, p.dest); err != nil {
			return nil, fmt.Errorf("create-usb: %w", err)
		}
		if err := noLinksInRepo(filepath.Join(top, p.dest), "written"); err != nil {
			return nil, fmt.Errorf("create-usb: %w", err)
		}
		if p.link != "" {
			if err := checkLink(top, p.link, p.dest); err != nil {
				return nil, fmt.Errorf("create-usb: %w", err)
			}
		}
		plans = append(plans, p)
	}
	var out []USBRepo
	for _, p := range plans {
		dest := filepath.Join(top, p.dest)
		ur := USBRepo{CollectionID: p.coll, Path: dest}
		dr, created, err := openOrInitUSBRepo(dest, p.coll)
		if err != nil {
			return out, err
		}
		ur.Created = created
		var ids []string
		for _, cr := range byColl[p.coll] {
			ids = append(ids, commits[cr].String())
		}
		_, err = PullLocal(ctx, dr, r.Path(), PullOptions{Refs: ids, NoSync: opts.NoSync})
		if err == nil {
			ur.Refs, err = setUSBRefs(ctx, dr, byColl[p.coll], commits)
		}
		if err == nil {
			_, err = UpdateSummary(ctx, dr, SummaryOptions{NoSync: opts.NoSync})
		}
		dr.Close()
		if err != nil {
			return out, fmt.Errorf("create-usb: %s: %w", dest, err)
		}
		if p.link != "" {
			if err := makeLink(top, p.link, p.dest, !opts.NoSync); err != nil {
				return out, fmt.Errorf("create-usb: %s holds the refs, but the mount finder will not see it: %w", dest, err)
			}
		}
		out = append(out, ur)
	}
	return out, nil
}

// withinMount cleans a path relative to the mount's top and refuses one
// that leaves it.
func withinMount(rel string) (string, error) {
	d := filepath.Clean(rel)
	if filepath.IsAbs(d) || d == "." || d == ".." || strings.HasPrefix(d, "../") {
		return "", fmt.Errorf("create-usb: destination repository %q must be a path within the mount", rel)
	}
	return d, nil
}

// setUSBRefs points each branch of refs at its commit, under the refs lock.
func setUSBRefs(ctx context.Context, dr *repo.Repo, refs []CollectionRef, commits map[CollectionRef]repo.ID) ([]RefUpdate, error) {
	l, err := dr.LockRefs(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	var out []RefUpdate
	for _, cr := range refs {
		u := RefUpdate{Ref: cr.Ref, Branch: cr.Ref, New: commits[cr]}
		u.Old, _ = dr.ReadRef(cr.Ref)
		if err := dr.SetRef(cr.Ref, u.New); err != nil {
			return out, err
		}
		out = append(out, u)
	}
	return out, nil
}

// ErrPartialCommit is matched (with errors.Is) by CreateUSB's error when
// the commit of a ref is partial here (pulled with --commit-metadata-only
// or --subpath, or marked so by fsck): it cannot be copied whole.
var ErrPartialCommit = errors.New("partial commit")

// ErrRefsDisagree is matched (with errors.Is) by CreateUSB's error when
// the refs here a collection ref is taken from (the branch, the tracking
// refs of remotes of its collection) name different commits:
// USBOptions.Commit chooses one.
var ErrRefsDisagree = errors.New("the refs disagree")

// resolveCollectionRef finds the commit of cr here: the branch, when this
// repository's collection is cr's, and the tracking ref of each remote of
// that collection; they must agree. rev, if set, is resolved instead, and
// must be bound (if at all) to cr.
func resolveCollectionRef(r *repo.Repo, cr CollectionRef, rev string) (repo.ID, error) {
	var names []string
	if r.CollectionID() == cr.CollectionID {
		names = append(names, cr.Ref)
	}
	for _, rm := range ListRemotes(r) {
		if rm.Options["collection-id"] == cr.CollectionID {
			names = append(names, rm.Name+":"+cr.Ref)
		}
	}
	var id repo.ID
	var from string
	if rev != "" {
		var err error
		if id, err = r.ResolveRev(rev); err != nil {
			return repo.ID{}, err
		}
		from = rev
	} else {
		for _, n := range names {
			got, err := r.ReadRef(n)
			if errors.Is(err, repo.ErrNotFound) {
				continue
			}
			if err != nil {
				return repo.ID{}, err
			}
			if from != "" && got != id {
				return repo.ID{}, fmt.Errorf("%s: %s names commit %s and %s names %s: %w", cr, from, id, n, got, ErrRefsDisagree)
			}
			id, from = got, n
		}
		if from == "" {
			var where string
			if len(names) == 0 {
				where = fmt.Sprintf("this repository's collection is %q and no remote has collection-id %s", r.CollectionID(), cr.CollectionID)
			} else {
				where = "none of " + strings.Join(names, ", ") + " exists"
			}
			return repo.ID{}, fmt.Errorf("%s: not found here: %s: %w", cr, where, repo.ErrNotFound)
		}
	}
	c, err := r.ReadCommit(id)
	if err != nil {
		return repo.ID{}, fmt.Errorf("%s (%s): %w", cr, from, err)
	}
	if r.IsCommitPartial(id) {
		// Found out here rather than by the copy, which would leave a
		// repository on the stick without the ref.
		return repo.ID{}, fmt.Errorf("%s (%s): commit %s is partial here (its objects are not all stored): pull it in full first: %w", cr, from, id, ErrPartialCommit)
	}
	if err := repo.CheckCollectionBinding(id, c, cr.CollectionID); err != nil {
		return repo.ID{}, fmt.Errorf("%s (%s): %w", cr, from, err)
	}
	if err := repo.CheckRefBinding(id, c, cr.Ref); err != nil {
		return repo.ID{}, fmt.Errorf("%s (%s): %w", cr, from, err)
	}
	return id, nil
}

// noLinksOnTheWay checks that no component of rel below top is a symbolic
// link or other than a directory, so that what is made there stays on the
// mount; components that do not exist yet are fine.
func noLinksOnTheWay(top, rel string) error {
	p := top
	for _, c := range strings.Split(rel, "/") {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link: nothing is written through it", p)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
	}
	return nil
}

// noLinksInRepo checks, for a repository that exists at dir, that none of
// its files and of the directories a copy reads or writes (config,
// objects/XX, refs/..., tmp/, state/) is a symbolic link; verb ("read",
// "written") says in the error what is refused.
func noLinksInRepo(dir, verb string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			rel, _ := filepath.Rel(dir, path)
			if top := strings.Split(rel, "/")[0]; top == "refs" && isFileLink(path) {
				return nil // a ref alias: refs are replaced, never written through
			}
			return fmt.Errorf("%s is a symbolic link: nothing is %s through it", path, verb)
		}
		if d.IsDir() && filepath.Dir(path) == filepath.Join(dir, "objects") {
			return fs.SkipDir // object files are made by rename, never written through
		}
		return nil
	})
}

// isFileLink reports whether the link at p does not lead to a directory.
func isFileLink(p string) bool {
	fi, err := os.Stat(p)
	return err != nil || !fi.IsDir()
}

// checkLink checks that link (relative to top) is absent or already a
// symbolic link to dest, and that its directory has no links on the way.
func checkLink(top, link, dest string) error {
	if err := noLinksOnTheWay(top, filepath.Dir(link)); err != nil {
		return err
	}
	fi, err := os.Lstat(filepath.Join(top, link))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if t, _ := os.Readlink(filepath.Join(top, link)); t == linkTarget(link, dest) {
			return nil
		}
	}
	return fmt.Errorf("%s is not a link to %s: %w", filepath.Join(top, link), dest, fs.ErrExist)
}

// linkTarget is the relative target of a link at link to dest.
func linkTarget(link, dest string) string {
	t, _ := filepath.Rel(filepath.Dir(link), dest)
	return t
}

// makeLink links link to dest (both relative to top), relatively, so the
// link holds wherever the filesystem is mounted; with sync, durably (the
// directories it made, and the link's), as a stick may be pulled as soon
// as the command returns.
func makeLink(top, link, dest string, sync bool) error {
	p := filepath.Join(top, link)
	if t, err := os.Readlink(p); err == nil && t == linkTarget(link, dest) {
		return nil
	}
	if err := durable.MkdirAll(filepath.Dir(p), 0o755, sync); err != nil {
		return err
	}
	if err := os.Symlink(linkTarget(link, dest), p); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	return durable.SyncDir(filepath.Dir(p))
}

// openOrInitUSBRepo opens the repository at dest, which must have the
// collection ID coll, or makes an archive one. Init writes the config
// last, so a directory without one is what a killed run left (or the
// user's empty directory): it is initialised anew.
func openOrInitUSBRepo(dest, coll string) (*repo.Repo, bool, error) {
	if _, err := os.Lstat(filepath.Join(dest, "config")); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return nil, false, fmt.Errorf("create-usb: %w", err)
		}
		dr, err := repo.Init(dest, repo.InitOptions{Mode: repo.ModeArchive, CollectionID: coll})
		if err != nil {
			return nil, false, fmt.Errorf("create-usb: %w", err)
		}
		return dr, true, nil
	}
	dr, err := repo.Open(dest)
	if err != nil {
		return nil, false, fmt.Errorf("create-usb: %w", err)
	}
	if got := dr.CollectionID(); got != coll {
		dr.Close()
		return nil, false, fmt.Errorf("create-usb: repository %s holds collection %q, not %s", dest, got, coll)
	}
	return dr, false, nil
}
