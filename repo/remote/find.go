package remote

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/otree/otree/internal/mountinfo"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// A collection ref names a branch globally: the collection ID of the
// repositories that publish it, and its name there. Any repository that
// holds a branch of that collection may serve it: a configured remote, or a
// USB stick made with CreateUSB. Commits are checked against the
// configured remote of the collection (its keys, bindings), whichever
// served them.

// CollectionRef is a branch of a collection: ("org.example.Os",
// "os/stable").
type CollectionRef struct {
	CollectionID string `json:"collection_id"` // the collection ("org.example.Os")
	Ref          string `json:"ref"`           // the branch's name in it ("os/stable")
}

// String formats r as OSTree does: "(org.example.Os, os/stable)".
func (r CollectionRef) String() string { return "(" + r.CollectionID + ", " + r.Ref + ")" }

// Validate checks the collection ID and the branch name.
func (r CollectionRef) Validate() error {
	if err := repo.ValidateCollectionID(r.CollectionID); err != nil {
		return err
	}
	return repo.ValidateRefName(r.Ref)
}

// ParseCollectionRefs reads COLLECTION-ID REF pairs, as the find-remotes
// and create-usb commands take them.
func ParseCollectionRefs(args []string) ([]CollectionRef, error) {
	if len(args) == 0 || len(args)%2 != 0 {
		return nil, fmt.Errorf("want one or more COLLECTION-ID REF pairs, got %d arguments", len(args))
	}
	var out []CollectionRef
	for i := 0; i < len(args); i += 2 {
		cr := CollectionRef{args[i], args[i+1]}
		if err := cr.Validate(); err != nil {
			return nil, err
		}
		if !slices.Contains(out, cr) {
			out = append(out, cr)
		}
	}
	return out, nil
}

// Finders: where FindRemotes looks.
const (
	// FinderMount looks in the repositories of mounted filesystems:
	// .otree/repo and each entry of .otree/repos.d at a mount's top, as
	// CreateUSB lays them out.
	FinderMount = "mount"
	// FinderConfig asks every configured remote that has a collection-id
	// (its summary, or its refs).
	FinderConfig = "config"
)

// ConfigDefaultFinders is OSTree's config key listing the finders
// FindRemotes uses when FindOptions.Finders names none, ';'-separated
// ("config;"): an admin drops "mount" there to stop updates being taken
// from mounted filesystems.
const ConfigDefaultFinders = "core.default-repo-finders"

// ParseDefaultFinders reads a ConfigDefaultFinders value. OSTree's "lan"
// is refused, as is any other name that is not a finder, and a list of
// none (which OSTree refuses).
func ParseDefaultFinders(v string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(v, ";") {
		switch f = strings.TrimSpace(f); f {
		case "":
		case FinderMount, FinderConfig:
			out = append(out, f)
		case "lan":
			return nil, fmt.Errorf("config %s=%q: lan (DNS-SD on the local network) is not supported; use config and mount", ConfigDefaultFinders, v)
		default:
			return nil, fmt.Errorf("config %s=%q: unknown finder %q: want %s or %s", ConfigDefaultFinders, v, f, FinderConfig, FinderMount)
		}
	}
	if len(out) == 0 {
		// Not taken for the default, mount among them: the admin may
		// have meant none. OSTree refuses it too.
		return nil, fmt.Errorf("config %s=%q lists no finder: want %s, %s or both, ';'-separated, or the key unset for both", ConfigDefaultFinders, v, FinderConfig, FinderMount)
	}
	return out, nil
}

// FindOptions configure FindRemotes.
type FindOptions struct {
	// Finders lists where to look, in the order the results are ranked
	// when they offer the same commit; empty means those the config's
	// ConfigDefaultFinders lists, or without it mount, then config.
	Finders []string
	// Mounts lists the mount points the mount finder looks at; nil means
	// every mount of this process (/proc/self/mountinfo).
	Mounts []string
	// Pull holds the transport options used to ask configured remotes
	// (timeouts, client, cache, logger), and those PullFound pulls with.
	Pull PullOptions
}

// FoundRef is a requested ref a source offers, with the commit it names.
type FoundRef struct {
	CollectionRef CollectionRef `json:"collection_ref"` // the ref requested
	Commit        repo.ID       `json:"commit"`         // the commit the source's ref names
	// Timestamp is the commit's time, which ranks the sources of a ref.
	Timestamp time.Time `json:"timestamp"`
}

// FoundRemote is one source of some of the requested refs.
type FoundRemote struct {
	// Finder is FinderMount or FinderConfig.
	Finder string `json:"finder"`
	// Remote is the configured remote whose collection-id the refs
	// belong to: its keys and binding checks apply to what is pulled,
	// and its tracking refs receive it.
	Remote string `json:"remote"`
	// URL is where the objects come from: the remote's url, or a
	// file:// URL of a repository on a mounted filesystem.
	URL  string     `json:"url"`
	Refs []FoundRef `json:"refs"` // the requested refs it offers
}

// FindResult is what FindRemotes found.
type FindResult struct {
	// Remotes are the sources that offer at least one requested ref, in
	// the order of the finders; a finder's in the order of the mounts
	// (and of each mount's repositories), or of collection and remote
	// name.
	Remotes []FoundRemote `json:"remotes"`
	// Missing lists the requested refs no source offers.
	Missing []CollectionRef `json:"missing"`
	// Problems are the sources that could not be asked, or were passed
	// over, each with why: a remote that did not answer, a mounted
	// repository that links outside its mount.
	Problems []string `json:"problems,omitempty"`
	// Unverifiable lists the collections asked for that no configured
	// remote has as its collection-id: their refs were looked for
	// nowhere, since nothing could verify their commits (also a problem).
	Unverifiable []string `json:"unverifiable,omitempty"`
}

// FindRemotes looks for sources of the collection refs: repositories on
// mounted filesystems and configured remotes. A ref is only looked for in
// a collection some configured remote has as its collection-id, since its
// commits are checked with that remote's keys; a mounted repository is
// only taken when that remote verifies commit signatures (sign-verify). A
// source that cannot be read is a problem of the result, not an error:
// the others may still serve the refs. A search ctx stopped is an error:
// what it found is then not all there is.
func FindRemotes(ctx context.Context, r *repo.Repo, refs []CollectionRef, opts FindOptions) (*FindResult, error) {
	for _, cr := range refs {
		if err := cr.Validate(); err != nil {
			return nil, err
		}
	}
	finders := opts.Finders
	if len(finders) == 0 {
		if v, ok := r.Config().Get(ConfigDefaultFinders); ok {
			fs, err := ParseDefaultFinders(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Path("config"), err)
			}
			finders = fs
		}
	}
	if len(finders) == 0 {
		finders = []string{FinderMount, FinderConfig}
	}
	for _, f := range finders {
		if f != FinderMount && f != FinderConfig {
			return nil, fmt.Errorf("unknown finder %q: want %s or %s", f, FinderMount, FinderConfig)
		}
	}
	remotes, _ := listRemotes(r)
	res := &FindResult{Remotes: []FoundRemote{}}
	byCollection := map[string][]Remote{} // configured remotes of each collection asked for
	for _, rm := range remotes {
		c := rm.Options["collection-id"]
		if c == "" || checkPullable(&rm) != nil || !slices.ContainsFunc(refs, func(cr CollectionRef) bool { return cr.CollectionID == c }) {
			continue
		}
		byCollection[c] = append(byCollection[c], rm)
	}
	for _, cr := range refs {
		if len(byCollection[cr.CollectionID]) == 0 {
			res.Unverifiable = appendOnce(res.Unverifiable, cr.CollectionID)
			res.Problems = appendOnce(res.Problems, fmt.Sprintf("collection %s: no configured remote has it as collection-id, so nothing could verify its commits", cr.CollectionID))
		}
	}
	var once []string // each finder runs once, or its sources would be listed twice
	for _, f := range finders {
		if !slices.Contains(once, f) {
			once = append(once, f)
		}
	}
	for _, f := range once {
		switch f {
		case FinderMount:
			mounts := opts.Mounts
			if mounts == nil {
				var err error
				if mounts, err = readMounts(); err != nil {
					return nil, err
				}
			}
			findOnMounts(r, mounts, refs, byCollection, opts.Pull.TrustedKeysRoot, res)
		case FinderConfig:
			findOnRemotes(ctx, r, refs, byCollection, opts.Pull, res)
		}
	}
	if err := ctx.Err(); err != nil {
		// The remotes it stopped asking are not problems of theirs.
		return nil, fmt.Errorf("finding remotes: %w", err)
	}
	for _, cr := range refs {
		if len(res.sources(cr)) == 0 {
			res.Missing = append(res.Missing, cr)
		}
	}
	return res, nil
}

func appendOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// readMounts lists the mount points of this process (mountPoints).
func readMounts() ([]string, error) {
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil, err
	}
	return mountPoints(mounts), nil
}

// mountPoints returns the mount points of a mount table, each once,
// in the order mounted. Kernel filesystems that cannot hold a repository
// are left out, and so is autofs: looking into it would mount what it
// stands for. So are network filesystems: a stick is never one, and a hard
// NFS mount whose server is gone would hang the finder.
func mountPoints(mounts []mountinfo.Mount) []string {
	var out []string
	for _, m := range mounts {
		if !skipFS[m.FSType] && !slices.Contains(out, m.MountPoint) {
			out = append(out, m.MountPoint)
		}
	}
	return out
}

// skipFS are the filesystem types the mount finder does not look into.
var skipFS = map[string]bool{
	"autofs": true, "proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true, "devtmpfs": true,
	"mqueue": true, "debugfs": true, "tracefs": true, "securityfs": true, "pstore": true, "bpf": true,
	"configfs": true, "hugetlbfs": true, "fusectl": true, "binfmt_misc": true, "efivarfs": true, "nsfs": true,
	"nfs": true, "nfs4": true, "cifs": true, "smb3": true, "smbfs": true, "ceph": true, "glusterfs": true,
	"fuse.glusterfs": true, "fuse.sshfs": true, "afs": true, "9p": true, "lustre": true, "ncpfs": true, "fuse.s3fs": true,
}

// MountRepoDir and MountReposDir are where, relative to a mounted
// filesystem's top, the mount finder looks for repositories, and where
// CreateUSB puts them: one repository, and a directory of repositories
// (or links to them within the mount), one per collection.
const (
	MountRepoDir  = ".otree/repo"
	MountReposDir = ".otree/repos.d"
)

// mountRepos lists the repositories a filesystem mounted at mnt offers,
// resolved: each entry of .otree/repos.d in name order, then .otree/repo.
// One that resolves outside mnt, or holds a symbolic link (noLinksInRepo),
// is a problem, and left out.
func mountRepos(mnt string) (paths, problems []string) {
	top, err := filepath.EvalSymlinks(mnt)
	if err != nil {
		return nil, nil
	}
	var cands []string
	if ents, err := os.ReadDir(filepath.Join(top, MountReposDir)); err == nil {
		for _, e := range ents {
			cands = append(cands, filepath.Join(top, MountReposDir, e.Name()))
		}
	}
	cands = append(cands, filepath.Join(top, MountRepoDir))
	for _, c := range cands {
		p, err := filepath.EvalSymlinks(c)
		if err != nil {
			continue
		}
		if !within(top, p) {
			problems = append(problems, fmt.Sprintf("mount %s: %s resolves to %s, outside the mount; passed over", mnt, c, p))
			continue
		}
		if fi, err := os.Stat(filepath.Join(p, "config")); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		// A link inside the repository (its config, refs/, objects/XX)
		// would have it read files off the mount, and print them in
		// errors.
		if err := noLinksInRepo(p, "read"); err != nil {
			problems = append(problems, fmt.Sprintf("mount %s: %v; passed over", mnt, err))
			continue
		}
		paths = append(paths, p)
	}
	return paths, problems
}

// within reports whether p is top or below it (both clean and absolute).
func within(top, p string) bool {
	return p == top || strings.HasPrefix(p, strings.TrimSuffix(top, "/")+"/")
}

// findOnMounts adds the repositories on the mounts that offer some of refs.
func findOnMounts(r *repo.Repo, mounts []string, refs []CollectionRef, byCollection map[string][]Remote, keysRoot string, res *FindResult) {
	seen := map[[2]uint64]bool{}
	if st, err := statID(r.Path()); err == nil {
		seen[st] = true // never offer the repository itself
	}
	for _, mnt := range mounts {
		paths, problems := mountRepos(mnt)
		res.Problems = append(res.Problems, problems...)
		for _, p := range paths {
			st, err := statID(p)
			if err != nil || seen[st] {
				continue
			}
			seen[st] = true
			if fr, err := offeredBy(p, refs, byCollection, keysRoot); err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("mount %s: %v", mnt, err))
			} else if fr != nil {
				res.Remotes = append(res.Remotes, *fr)
			}
		}
	}
}

// statID identifies a directory by device and inode, so that one reached
// through several mounts (bind mounts) is offered once.
func statID(p string) ([2]uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return [2]uint64{}, err
	}
	return [2]uint64{st.Dev, st.Ino}, nil
}

// offeredBy reads the repository at path: the requested refs of its
// collection that it has, with their commits (verified). nil when it has
// none of them.
func offeredBy(path string, refs []CollectionRef, byCollection map[string][]Remote, keysRoot string) (*FoundRemote, error) {
	sr, err := repo.Open(path)
	if err != nil {
		return nil, err
	}
	defer sr.Close()
	c := sr.CollectionID()
	rms := byCollection[c]
	if c == "" || len(rms) == 0 {
		return nil, nil
	}
	// Whoever wrote the stick could have written anything on it: only a
	// remote that checks commit signatures may take its commits.
	var rm *Remote
	for i := range rms {
		if v, err := RemoteVerification(&rms[i], keysRoot); err == nil && v.Commits {
			rm = &rms[i]
			break
		}
	}
	if rm == nil {
		return nil, fmt.Errorf("repository %s offers collection %s, but no remote of it verifies commit signatures (sign-verify), and a mounted repository is trusted no further than its signatures", path, c)
	}
	fr := &FoundRemote{Finder: FinderMount, Remote: rm.Name, URL: (&url.URL{Scheme: "file", Path: path}).String()}
	for _, cr := range refs {
		if cr.CollectionID != c {
			continue
		}
		id, err := sr.ReadRef(cr.Ref)
		if errors.Is(err, repo.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", path, err)
		}
		cm, err := sr.ReadCommit(id)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %s: %w", path, cr, err)
		}
		fr.Refs = append(fr.Refs, FoundRef{cr, id, time.Unix(int64(cm.Timestamp), 0).UTC()})
	}
	if len(fr.Refs) == 0 {
		return nil, nil
	}
	return fr, nil
}

// findOnRemotes asks each configured remote of a requested collection for
// that collection's refs.
func findOnRemotes(ctx context.Context, r *repo.Repo, refs []CollectionRef, byCollection map[string][]Remote, opts PullOptions, res *FindResult) {
	var collections []string
	for c := range byCollection {
		collections = append(collections, c)
	}
	sort.Strings(collections)
	for _, c := range collections {
		for _, rm := range byCollection[c] {
			fr := FoundRemote{Finder: FinderConfig, Remote: rm.Name, URL: rm.URL}
			err := withRemote(ctx, r, rm.Name, opts, func(src source) error {
				sum, err := src.summary(ctx)
				if err != nil {
					return err
				}
				for _, cr := range refs {
					if cr.CollectionID != c {
						continue
					}
					var id repo.ID
					var ok bool
					if sum != nil {
						id, ok = sum.Lookup(cr.Ref)
					} else if id, err = src.ref(ctx, cr.Ref); err == nil {
						ok = true
					} else if !errors.Is(err, repo.ErrNotFound) {
						return err
					}
					if !ok {
						continue
					}
					data, err := src.readMeta(ctx, repo.KindCommit, id)
					if err != nil {
						return fmt.Errorf("%s: %w", cr, err)
					}
					if got := repo.Sum(data); got != id {
						return fmt.Errorf("%s: %w", src.describe(repo.KindCommit, id), &repo.CorruptObjectError{Kind: repo.KindCommit, ID: id, Actual: got})
					}
					cm, err := repo.DecodeCommit(data)
					if err != nil {
						return fmt.Errorf("%s: %w", src.describe(repo.KindCommit, id), err)
					}
					fr.Refs = append(fr.Refs, FoundRef{cr, id, time.Unix(int64(cm.Timestamp), 0).UTC()})
				}
				return nil
			})
			if err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("remote %s (%s): %v", rm.Name, shownRawURL(rm.URL), err))
				continue
			}
			if len(fr.Refs) > 0 {
				res.Remotes = append(res.Remotes, fr)
			}
		}
	}
}

// PulledRef is what PullFound did for one requested ref.
type PulledRef struct {
	CollectionRef CollectionRef `json:"collection_ref"` // the ref requested
	// Ref is the ref written here: "REMOTE:BRANCH", or the branch when
	// mirroring.
	Ref string  `json:"local_ref"`
	Old repo.ID `json:"old"` // zero if the ref was new
	New repo.ID `json:"new"` // Old when nothing was pulled
	// From is the URL the commit came from, its password hidden ("" when
	// nothing was pulled).
	From string `json:"from,omitempty"`
	// Note says why nothing was pulled: already there, or every source
	// offers an older commit than the one here.
	Note string `json:"note,omitempty"`
	// Err is why the ref could not be pulled, after every source that
	// offers a newer commit was tried ("" when it was).
	Err string `json:"error,omitempty"`
	// Tried lists the sources that failed before the one that served it,
	// their passwords hidden.
	Tried []string `json:"tried,omitempty"`
}

// candidate is a source of one ref, with the commit it offers.
type candidate struct {
	fr *FoundRemote
	f  FoundRef
}

// sources lists the sources of cr in fr, newest commit first; among
// equals, in the result's order.
func (fr *FindResult) sources(cr CollectionRef) []candidate {
	var out []candidate
	for i := range fr.Remotes {
		src := &fr.Remotes[i]
		for _, f := range src.Refs {
			if f.CollectionRef == cr {
				out = append(out, candidate{src, f})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].f.Timestamp.After(out[j].f.Timestamp) })
	return out
}

// PullFound pulls each requested ref that a source in found offers, from
// the source with the newest commit (the first in found's order among
// equals). A source whose pull fails (a corrupt object, a missing
// signature, a binding to another branch) is passed over for the next.
// Refs land as the tracking refs of the configured remote of their
// collection, or with opts.Mirror as local branches. A ref never moves to
// an older commit than the one it names (opts.TimestampCheck is always
// on): a stale USB stick is not an update. The error lists the refs that
// could not be pulled; the others are pulled regardless. A stop of ctx
// ends it at once, with an error naming the ref and source it stopped,
// and the refs pulled before it.
func PullFound(ctx context.Context, r *repo.Repo, found *FindResult, refs []CollectionRef, opts PullOptions) ([]PulledRef, error) {
	var out []PulledRef
	var failed []string
	for _, cr := range refs {
		cands := found.sources(cr)
		if len(cands) == 0 {
			continue
		}
		pr := PulledRef{CollectionRef: cr}
		stale := false // a source offered a commit Pull found no newer than here
		for _, c := range cands {
			// A source pulls into the tracking ref of its own remote
			// (remotes of one collection may be several): that ref is
			// the one compared with, and reported.
			pr.Ref, pr.Old, pr.New = c.fr.Remote+":"+cr.Ref, repo.ID{}, repo.ID{}
			if opts.Mirror {
				pr.Ref = cr.Ref
			}
			var cur *repo.Commit
			if id, err := r.ReadRef(pr.Ref); err == nil {
				pr.Old, pr.New = id, id
				cur, _ = r.ReadCommit(id)
			}
			if c.f.Commit == pr.Old {
				pr.Note = "up to date"
				break
			}
			if cur != nil && c.f.Timestamp.Before(time.Unix(int64(cur.Timestamp), 0)) {
				if len(pr.Tried) == 0 {
					pr.Note = "every source offers an older commit than the one here"
				}
				break
			}
			po := opts
			po.Remote, po.URL, po.Refs, po.TimestampCheck = c.fr.Remote, c.fr.URL, []string{cr.Ref}, true
			po.CollectionID = cr.CollectionID
			po.fromMount = c.fr.Finder == FinderMount
			res, err := Pull(ctx, r, po)
			if err != nil && ctx.Err() != nil {
				// Stopped, not failed: no other source, nor ref, is tried.
				return out, fmt.Errorf("pulling %s from %s: %w", cr, shownRawURL(c.fr.URL), ctx.Err())
			}
			var te *TimestampError
			if errors.As(err, &te) {
				// As old as the commit here and one of its ancestors:
				// as stale as an older one, which is no failure.
				stale = true
				continue
			}
			if err != nil {
				pr.Tried = append(pr.Tried, fmt.Sprintf("%s: %v", shownRawURL(c.fr.URL), err))
				continue
			}
			pr.From = shownRawURL(c.fr.URL)
			for _, u := range res.Refs {
				if u.Branch == cr.Ref {
					pr.New = u.New
				}
			}
			break
		}
		if pr.From == "" && pr.Note == "" && stale && len(pr.Tried) == 0 {
			pr.Note = "every source offers an older commit than the one here"
		}
		if pr.From == "" && pr.Note == "" {
			pr.Err = "no source could serve it: " + strings.Join(pr.Tried, "; ")
			failed = append(failed, cr.String())
		}
		out = append(out, pr)
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("could not pull %s", strings.Join(failed, ", "))
	}
	return out, nil
}
