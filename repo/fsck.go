package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/jsonout"
	"github.com/otree/otree/internal/progress"
	"github.com/otree/otree/internal/quote"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// FsckOptions configure Fsck.
type FsckOptions struct {
	// Delete removes corrupt objects and marks every commit that needs a
	// missing or removed object as partial from corruption
	// (state/<commit>.commitpartial holding "f"), so that a later pull can
	// complete it; until then Fsck reports it as a ProblemPartial. It takes the repository lock
	// exclusively; a plain check takes it shared and runs beside commits.
	Delete bool
	// Workers bounds how many objects are verified at once; zero means
	// one per CPU.
	Workers int
	// Progress, if set, is called about ten times a second while objects
	// are verified, and once when verification ends. It is called from one
	// goroutine at a time. A panic in it ends the calls and is raised
	// again by Fsck, in its caller's goroutine, once verification ends.
	Progress func(FsckProgress)
	// VerifyBindings checks that the commit of each ref lists the ref (a
	// remote ref's branch) in its ref binding (RefBindingKey), as a pull
	// of the ref would; a commit with no binding passes, as in a pull and
	// in ostree's --verify-bindings.
	VerifyBindings bool
	// VerifyBackRefs checks, for every commit, that each ref its binding
	// lists is a local branch pointing at that commit (ostree's
	// --verify-back-refs). It implies VerifyBindings.
	VerifyBackRefs bool
	// AddTombstones stores a tombstone commit (FORMAT.md §2.6) for every
	// commit that a stored commit names as its parent and that is neither
	// stored nor tombstoned, and turns core.tombstone-commits on, as
	// ostree fsck --add-tombstones documents: history deleted by hand then
	// reads as deleted on purpose, and pulls from here stop at it instead
	// of failing on it. Like Delete it takes the repository lock
	// exclusively.
	AddTombstones bool
}

// FsckProgress tells how far verification has got.
type FsckProgress struct {
	Checked int64 // objects verified so far
	Total   int64 // objects found in objects/
	Bytes   int64 // content bytes hashed so far
}

// ProblemType says what is wrong in an FsckProblem.
type ProblemType int

// The problems Fsck reports.
const (
	// ProblemCorrupt: the object's bytes do not hash to its id, do not
	// decode, or cannot be read. Err is a *CorruptObjectError.
	ProblemCorrupt ProblemType = iota + 1
	// ProblemMissing: an object that a commit (or a ref) needs is absent.
	// Err is an *ObjectMissingError.
	ProblemMissing
	// ProblemMode: a bare-user file object's permission bits on disk differ
	// from BareUserDiskMode of its recorded mode (typically a chmod made
	// through a hardlink in a checkout), or a bare-user-only file object
	// has a mode such a repository refuses (BareUserOnlyRefusedBits). Err
	// is a *CorruptObjectError.
	ProblemMode
	// ProblemRef: a ref file cannot be read or parsed.
	ProblemRef
	// ProblemUnreadable: an object this user may not read, or that could
	// not be opened or read for want of descriptors or memory or for an
	// I/O error (EIO and the like), so it was not verified; Delete leaves
	// it. Err wraps fs.ErrPermission or that errno. With Kind zero, Path
	// is a fan-out directory of objects/ that could not be listed: the
	// objects in it are verified only when a commit needs them.
	ProblemUnreadable
	// ProblemBinding: a commit's ref binding and the refs disagree
	// (FsckOptions.VerifyBindings, VerifyBackRefs). ID is the commit; Err
	// wraps a *RefBindingError when a ref's commit is bound elsewhere.
	ProblemBinding
	// ProblemPartial: a commit an earlier Fsck with Delete marked partial
	// because objects it needs were corrupt or missing; it stays
	// incomplete until a pull completes it. ID is the commit, Path its
	// marker. Err wraps ErrNotFound while an object it needs is missing;
	// once every one is here again it does not, and the next Fsck with
	// Delete takes the mark away.
	ProblemPartial
	// ProblemCache: an entry of an archive repository's
	// uncompressed-object cache (UncompressedCacheDir) that a checkout
	// would link (UncompressedCacheEntryFits), whose content is not its
	// object's (written in place through a checkout that shares its
	// inode, its time then put back), or that cannot be read (an entry
	// of another user's that this one may not read is left to that
	// user's fsck, whose checkouts alone link it). ID is the object,
	// which is sound; Path is the entry, which Delete removes.
	// Err is a *CorruptObjectError naming the entry.
	ProblemCache
)

var problemNames = [...]string{"", "corrupt", "missing", "mode", "ref", "unreadable", "binding", "partial", "cache"}

// String returns the problem's name as --json prints it.
func (t ProblemType) String() string {
	if t > 0 && int(t) < len(problemNames) {
		return problemNames[t]
	}
	return fmt.Sprintf("problem(%d)", int(t))
}

// MarshalText implements encoding.TextMarshaler.
func (t ProblemType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// FsckProblem is one thing wrong with a repository. It is an error whose
// Unwrap gives the typed cause (see ProblemType).
type FsckProblem struct {
	Type ProblemType // what is wrong, one of the Problem constants
	Kind Kind        // the object's kind (zero for ProblemRef)
	ID   ID          // the object's id (for ProblemRef: zero)
	Path string      // where the object is (or would be) stored, or the ref file
	// Commit is a commit that needs the object, when the object was
	// reached from a commit.
	Commit ID
	// TreePath is where in Commit's tree the object is ("/usr/bin/sh").
	TreePath string
	Ref      string // the ref involved, if any
	Reason   string // what is wrong, for humans
	Deleted  bool   // removed by FsckOptions.Delete
	// Repaired: a ProblemMode object of a bare-user repository that
	// FsckOptions.Delete rewrote with the permissions its record gives
	// (the old inode stays with the checkouts that link it).
	Repaired bool
	Err      error // the typed cause
}

// Error describes the problem in one line.
func (p *FsckProblem) Error() string {
	var b strings.Builder
	switch p.Type {
	case ProblemRef:
		// Reasons from reading a ref name it, and most its file too.
		switch {
		case strings.Contains(p.Reason, p.Path):
			return p.Reason
		case p.Ref == "":
			return fmt.Sprintf("reading refs: %s: %s", p.Path, p.Reason)
		case strings.Contains(p.Reason, p.Ref):
			return fmt.Sprintf("%s: %s", p.Path, p.Reason)
		}
		fmt.Fprintf(&b, "ref %s (%s): %s", p.Ref, p.Path, p.Reason)
		return b.String()
	case ProblemBinding:
		fmt.Fprintf(&b, "commit %s: %s", p.ID, p.Reason)
		return b.String()
	case ProblemPartial:
		fmt.Fprintf(&b, "commit %s (%s) %s", p.ID, p.Path, p.Reason)
		if p.Ref != "" {
			fmt.Fprintf(&b, "; ref %s points at it", p.Ref)
		}
		return b.String()
	case ProblemMissing:
		fmt.Fprintf(&b, "%s object %s is missing (%s)", p.Kind, p.ID, p.Path)
	case ProblemCache:
		fmt.Fprintf(&b, "uncompressed-cache entry %s of file object %s: %s", p.Path, p.ID, p.Reason)
	case ProblemUnreadable:
		if p.Kind == 0 {
			// A fan-out directory that could not be listed; Err
			// names it.
			return fmt.Sprintf("%v (%s)", p.Err, p.Reason)
		}
		fallthrough
	default:
		fmt.Fprintf(&b, "%s object %s (%s) is %s: %s", p.Kind, p.ID, p.Path, p.Type.wording(), p.Reason)
	}
	if p.Ref != "" && p.TreePath == "" {
		fmt.Fprintf(&b, "; ref %s points at it", p.Ref)
	}
	if !p.Commit.IsZero() {
		fmt.Fprintf(&b, "; needed by commit %s", p.Commit)
		if p.TreePath != "" {
			fmt.Fprintf(&b, " at %s", quote.Path(p.TreePath))
		}
		if p.Ref != "" {
			fmt.Fprintf(&b, " (ref %s)", p.Ref)
		}
	}
	if p.Deleted {
		b.WriteString("; deleted")
	}
	if p.Repaired {
		b.WriteString("; rewritten with its recorded permissions")
	}
	return b.String()
}

// wording is the adjective Error uses for a damaged object.
func (t ProblemType) wording() string {
	switch t {
	case ProblemMode:
		return "damaged"
	case ProblemUnreadable:
		return "unreadable"
	}
	return "corrupt"
}

// Unwrap returns the typed cause, so errors.Is(p, ErrNotFound) and
// errors.As(p, &corrupt) work.
func (p *FsckProblem) Unwrap() error { return p.Err }

// MarshalJSON writes the problem with its kind by name and its message.
func (p *FsckProblem) MarshalJSON() ([]byte, error) {
	type out struct {
		Type     ProblemType `json:"type"`
		Kind     string      `json:"kind,omitempty"`
		ID       ID          `json:"id,omitzero"`
		Path     string      `json:"path"`
		Commit   ID          `json:"commit,omitzero"`
		TreePath string      `json:"tree_path,omitempty"`
		Ref      string      `json:"ref,omitempty"`
		Reason   string      `json:"reason"`
		Deleted  bool        `json:"deleted"`
		Repaired bool        `json:"repaired"`
		Message  string      `json:"message"`
	}
	o := out{Type: p.Type, ID: p.ID, Path: p.Path, Commit: p.Commit, TreePath: p.TreePath,
		Ref: p.Ref, Reason: p.Reason, Deleted: p.Deleted, Repaired: p.Repaired, Message: p.Error()}
	if p.Kind != 0 {
		o.Kind = p.Kind.String()
	}
	return jsonout.Marshal(o) // a path that is not UTF-8 keeps its bytes
}

// FsckReport is what Fsck found.
type FsckReport struct {
	// Objects counts the objects verified, by kind name.
	Objects map[string]int64 `json:"objects"`
	// Bytes is the content hashed (file content and metadata objects).
	Bytes int64 `json:"bytes"`
	// Refs counts the refs found, readable or not.
	Refs int `json:"refs"`
	// BadRefs counts those of them with a problem: unreadable, or
	// pointing at a commit that is missing, damaged or lacks objects it
	// needs, or whose binding does not list the ref. The others were
	// validated.
	BadRefs int `json:"bad_refs"`
	// Problems lists everything wrong, corrupt objects first (by path),
	// then missing objects and refs in the order they were found.
	Problems []*FsckProblem `json:"problems"`
	// Partial lists commits marked partial (state/<id>.commitpartial):
	// objects they lack are not reported one by one. Those marked by an
	// earlier Fsck with Delete are also ProblemPartial problems; those
	// whose pull was interrupted or fetched only metadata are not.
	Partial []ID `json:"partial"`
	// Incomplete lists commits that are not marked partial yet need an
	// object that is missing or corrupt.
	Incomplete []ID `json:"incomplete"`
	// MarkedPartial lists the commits Delete marked partial.
	MarkedPartial []ID `json:"marked_partial"`
	// Tombstoned lists the commits AddTombstones stored a tombstone for.
	Tombstoned []ID `json:"tombstoned,omitempty"`
	// Unmarked lists the commits an earlier Delete marked partial that
	// were complete again, whose mark this Delete took away.
	Unmarked []ID `json:"unmarked,omitempty"`
	// Deleted counts objects Delete removed. Uncompressed-cache entries
	// it removed are not objects: they are the ProblemCache problems
	// marked Deleted.
	Deleted int `json:"deleted"`
	// Repaired counts the bare-user file objects Delete rewrote with the
	// permissions they record, instead of deleting them: their content
	// was sound (the ProblemMode problems marked Repaired).
	Repaired int `json:"repaired"`
	// Unreferenced counts stored objects that no ref reaches through its
	// commit and ancestors, and tombstones beside their commit. They are
	// not problems; prune removes them, unless UnreadableRefs is set.
	Unreferenced int64 `json:"unreferenced"`
	// UnreadableRefs counts the ref problems that may hide a commit: refs
	// that could not be read but may name one (a corrupt ref file, an
	// alias leading outside refs/heads, a symlinked directory of refs),
	// and directories of refs that could not be listed. Objects only
	// they reach are counted as Unreferenced, but prune refuses to run
	// while there are any. A broken alias that ends at nothing is a ref
	// problem that hides nothing.
	UnreadableRefs int `json:"unreadable_refs"`
	// Stray lists entries under objects/ that are not objects.
	Stray []string `json:"stray"`
}

// OK reports whether no problem was found.
func (r *FsckReport) OK() bool { return len(r.Problems) == 0 }

// FsckError is returned by Fsck when it found problems. Unwrap gives every
// problem, so errors.As with a *CorruptObjectError target finds the first corrupt
// object and errors.Is(err, ErrNotFound) tells whether one is missing.
type FsckError struct {
	Repo     string         // the repository's path
	Problems []*FsckProblem // as in FsckReport.Problems
}

// Error summarises the problems, naming the first.
func (e *FsckError) Error() string {
	s := "s"
	if len(e.Problems) == 1 {
		s = ""
	}
	return fmt.Sprintf("repository %s: %d problem%s found (first: %v)", e.Repo, len(e.Problems), s, e.Problems[0])
}

// Unwrap returns the problems.
func (e *FsckError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// storedObject is one entry of objects/.
type storedObject struct {
	kind Kind
	id   ID
}

// listObjects returns every object stored in objects/ and the paths of
// entries that are not objects. A fan-out directory that cannot be listed
// ends the listing with its error, unless onDirErr is set: it is then
// called with the directory's path and error, and the listing goes on
// when it returns nil.
func (r *Repo) listObjects(ctx context.Context, onDirErr func(dir string, err error) error) ([]storedObject, []string, error) {
	var objs []storedObject
	var stray []string
	ents, err := os.ReadDir(r.Path("objects"))
	if err != nil {
		return nil, nil, fmt.Errorf("listing %s: %w", r.Path("objects"), err)
	}
	for _, fan := range ents {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("listing %s: %w", r.Path("objects"), err)
		}
		dir := r.Path("objects", fan.Name())
		if !fan.IsDir() || len(fan.Name()) != 2 || !isHex(fan.Name()) {
			stray = append(stray, dir)
			continue
		}
		sub, err := os.ReadDir(dir)
		if err != nil {
			err = fmt.Errorf("listing %s: %w", dir, err)
			if onDirErr == nil {
				return nil, nil, err
			}
			if err := onDirErr(dir, err); err != nil {
				return nil, nil, err
			}
			// ReadDir returns what it read before the error.
		}
		for _, e := range sub {
			o, ok := parseObjectName(fan.Name(), e.Name())
			if !ok {
				stray = append(stray, filepath.Join(dir, e.Name()))
				continue
			}
			objs = append(objs, o)
		}
	}
	return objs, stray, nil
}

// ListCommits returns the id of every commit object stored, whether or not
// a ref reaches it, in no particular order.
func (r *Repo) ListCommits(ctx context.Context) ([]ID, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	objs, _, err := r.listObjects(ctx, nil)
	if err != nil {
		return nil, err
	}
	var ids []ID
	for _, o := range objs {
		if o.kind == KindCommit {
			ids = append(ids, o.id)
		}
	}
	return ids, nil
}

// parseObjectName parses "<62 hex>.<kind>" in fan-out directory fan.
func parseObjectName(fan, name string) (storedObject, bool) {
	base, ext, ok := strings.Cut(name, ".")
	if !ok || len(base) != 62 || !isHex(base) {
		return storedObject{}, false
	}
	kind, err := ParseKind(ext)
	if err != nil {
		return storedObject{}, false
	}
	id, err := ParseID(fan + base)
	if err != nil {
		return storedObject{}, false
	}
	return storedObject{kind, id}, true
}

// partialStatePath is the marker of a commit whose objects may be missing.
func (r *Repo) partialStatePath(commit ID) string {
	return r.Path("state", commit.String()+".commitpartial")
}

// partialFsck is the content of the partial marker of a commit that fsck
// found damaged; an empty marker is an incomplete pull (docs/FORMAT.md §5).
// OSTree writes and reads the same byte.
const partialFsck = "f"

// isCommitPartial reports whether commit is marked partial.
func (r *Repo) isCommitPartial(commit ID) bool {
	_, err := os.Lstat(r.partialStatePath(commit))
	return err == nil
}

// isCommitPartialFsck reports whether commit's partial marker says fsck
// found it damaged. Other content (or none) is an ordinary partial commit.
func (r *Repo) isCommitPartialFsck(commit ID) bool {
	b, err := os.ReadFile(r.partialStatePath(commit))
	return err == nil && string(b) == partialFsck
}

// markCommitPartial durably marks commit partial (an empty marker).
func (r *Repo) markCommitPartial(commit ID) error {
	return r.writePartialMarker(commit, "", r.Fsync())
}

// partialMarkHook, when set (by tests), is called with each partial mark
// written and whether it is synced.
var partialMarkHook func(commit ID, sync bool)

// writePartialMarker writes commit's partial marker with reason as its
// content ("" or partialFsck), durably if sync.
func (r *Repo) writePartialMarker(commit ID, reason string, sync bool) error {
	if partialMarkHook != nil {
		partialMarkHook(commit, sync)
	}
	if err := durable.MkdirAll(r.Path("state"), durable.DirPerm, sync); err != nil {
		return fmt.Errorf("marking commit %s partial: %w", commit, err)
	}
	if err := durable.WriteFile(r.partialStatePath(commit), []byte(reason), 0o644, sync); err != nil {
		return fmt.Errorf("marking commit %s partial: %w", commit, err)
	}
	return nil
}

// syncMarkers makes the partial markers written unsynced durable, content
// and names: one syncfs of the filesystem holding state/, then state/
// itself, in place of two fsyncs a marker.
func (r *Repo) syncMarkers() error {
	dir := r.Path("state")
	if err := durable.SyncFS(dir); err != nil {
		return fmt.Errorf("syncing the partial marks in %s: %w", dir, err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("syncing the partial marks in %s: %w", dir, err)
	}
	return nil
}

// objState is what verification found about one object.
type objState uint8

const (
	stateUnknown objState = iota // not listed: added since, or missing
	stateOK
	stateCorrupt
	stateMissing
	stateUnreadable // present, but this user cannot read it
	// stateMode: a bare-user file object whose record and content verify
	// but whose permission bits on disk are wrong: usable; Delete
	// rewrites it.
	stateMode
)

// fsckRun is the state of one Fsck.
type fsckRun struct {
	r    *Repo
	opts FsckOptions

	mu       sync.Mutex
	state    map[objKey]objState
	trees    map[ID]*DirTree
	commits  map[ID]*Commit
	problems map[objKey]*FsckProblem
	order    []*FsckProblem
	checked  map[Kind]int64

	done, bytes atomic.Int64

	treeMemo map[ID]bool
}

// fsckWorker is the scratch of one verifying goroutine.
type fsckWorker struct {
	h   *hash.Hasher
	buf []byte
}

func newFsckWorker() *fsckWorker {
	return &fsckWorker{h: hash.New(), buf: make([]byte, 256<<10)}
}

// Fsck verifies the repository: every stored object is re-hashed (file
// content read to the end), every object that any commit needs is checked
// to exist, every ref to point at a stored commit, and in bare-user mode
// every file object's permission bits on disk to match its recorded mode.
// All problems are reported, not just the first.
//
// The report is returned whenever the check ran; the error is an
// *FsckError when problems were found, or another error when the check
// could not run (lock timeout, unreadable directories, cancellation).
//
// A commit marked partial (whose objects are still being fetched, or which
// an earlier Fsck with Delete damaged) is listed in the report rather than
// failing for the objects it lacks. A missing parent commit is not a
// problem: prune --depth and shallow pulls truncate history on purpose.
func (r *Repo) Fsck(ctx context.Context, opts FsckOptions) (*FsckReport, error) {
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	var lk *Lock
	var err error
	if opts.Delete || opts.AddTombstones {
		if r.readOnly != nil {
			return nil, fmt.Errorf("fsck: %w", r.errReadOnly())
		}
		lk, err = r.LockExclusive(ctx)
	} else {
		lk, err = r.LockShared(ctx)
	}
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()

	f := &fsckRun{
		r: r, opts: opts,
		state:    map[objKey]objState{},
		trees:    map[ID]*DirTree{},
		commits:  map[ID]*Commit{},
		problems: map[objKey]*FsckProblem{},
		checked:  map[Kind]int64{},
		treeMemo: map[ID]bool{},
	}
	rep := &FsckReport{Objects: map[string]int64{}, Partial: []ID{}, Incomplete: []ID{}, MarkedPartial: []ID{}}

	// Refs first: every commit they name was complete in objects/ before
	// the ref was written, so whatever is found missing below is missing.
	refs, refProblems, hiding := r.fsckRefs()
	bad := map[string]bool{} // refs with a problem
	for _, p := range refProblems {
		if p.Ref != "" {
			bad[p.Ref] = true
		}
	}
	rep.Refs = len(refs) + len(bad)

	// A fan-out directory that cannot be listed is a problem, not the
	// end of the check: the objects in it that commits need are still
	// looked up one by one, and every other directory is verified.
	objs, stray, err := r.listObjects(ctx, func(dir string, err error) error {
		f.order = append(f.order, &FsckProblem{Type: ProblemUnreadable, Path: dir,
			Reason: "the objects in it were not verified, except those a commit needs", Err: err})
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.Stray = append([]string{}, stray...)
	if err := f.verifyAll(ctx, objs); err != nil {
		return nil, err
	}
	if r.mode == ModeArchive {
		if err := f.fsckUncompressedCache(ctx); err != nil {
			return nil, err
		}
	}
	// Corrupt objects first, in path order, so output is stable.
	sort.Slice(f.order, func(i, j int) bool { return f.order[i].Path < f.order[j].Path })

	f.order = append(f.order, refProblems...)
	if err := f.checkCommits(ctx, refs, objs, rep); err != nil {
		return nil, err
	}
	if opts.VerifyBindings || opts.VerifyBackRefs {
		f.checkBindings(refs, opts.VerifyBackRefs)
	}
	rep.Unreferenced = f.unreferenced(refs, objs)
	rep.UnreadableRefs = hiding
	rep.BadRefs = len(f.badRefs(refs, rep, bad))

	for k, n := range f.checked {
		rep.Objects[k.String()] = n
	}
	rep.Bytes = f.bytes.Load()
	rep.Problems = append([]*FsckProblem{}, f.order...)
	var errs []error
	if opts.Delete {
		if err := f.repair(rep); err != nil {
			errs = append(errs, err)
		}
	}
	// After the repair, which may have deleted a corrupt tombstone that
	// this then stores again.
	if opts.AddTombstones {
		if err := f.addTombstones(rep); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}
	if len(rep.Problems) > 0 {
		return rep, &FsckError{Repo: r.path, Problems: rep.Problems}
	}
	return rep, nil
}

// badRefs adds to bad the readable refs with a problem found so far: their
// commit is missing, damaged, incomplete or marked partial by fsck, or its
// binding does not list them. It returns bad.
func (f *fsckRun) badRefs(refs []Ref, rep *FsckReport, bad map[string]bool) map[string]bool {
	badCommit := map[ID]bool{}
	for _, id := range rep.Incomplete {
		badCommit[id] = true
	}
	for _, p := range f.order {
		switch p.Type {
		case ProblemPartial:
			badCommit[p.ID] = true
		case ProblemBinding:
			// Only where the ref points at the commit: a binding naming a
			// ref that is elsewhere is the commit's problem.
			for _, ref := range refs {
				if ref.Name == p.Ref && ref.Commit == p.ID {
					bad[ref.Name] = true
				}
			}
		}
	}
	for _, ref := range refs {
		if badCommit[ref.Commit] || f.problems[objKey{KindCommit, ref.Commit}] != nil {
			bad[ref.Name] = true
		}
	}
	return bad
}

// fsckRefHook, when set by a test, runs for each entry fsckRefs walks,
// before the ref is read: where another process may delete it.
var fsckRefHook func(name string)

// fsckRefs reads every ref, reporting unreadable ones as problems. It
// walks refs/ as ListRefs does, and so finds the refs ReadRef reads. It
// also counts the problems that may hide a commit (see
// FsckReport.UnreadableRefs).
func (r *Repo) fsckRefs() ([]Ref, []*FsckProblem, int) {
	var refs []Ref
	var problems []*FsckProblem
	hiding := 0
	r.walkRefs(true, "", func(e refEntry) error {
		if e.dirErr != nil {
			problems = append(problems, &FsckProblem{Type: ProblemRef, Path: e.path,
				Reason: fmt.Sprintf("%v (the refs below it cannot be listed)", e.dirErr), Err: e.dirErr})
			hiding++
			return nil
		}
		if fsckRefHook != nil {
			fsckRefHook(e.name)
		}
		id, err := ID{}, e.err
		if err == nil {
			id, err = r.ReadRef(e.name)
		}
		if err != nil && errors.As(err, new(*RefNotFoundError)) {
			if _, lerr := os.Lstat(e.path); errors.Is(lerr, fs.ErrNotExist) {
				// Deleted since the walk listed it (refs --delete or
				// a pull in another process): no ref, no problem.
				return nil
			}
		}
		if err != nil {
			problems = append(problems, &FsckProblem{Type: ProblemRef, Ref: e.name, Path: e.path, Reason: err.Error(), Err: err})
			if mayNameCommit(e, err) {
				hiding++
			}
			return nil
		}
		refs = append(refs, Ref{Name: e.name, Commit: id})
		return nil
	})
	sort.Slice(refs, func(i, j int) bool { return refs[i].Name < refs[j].Name })
	return refs, problems, hiding
}

// verifyAll re-hashes every listed object with a bounded pool of workers.
func (f *fsckRun) verifyAll(ctx context.Context, objs []storedObject) error {
	workers := f.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	stop := f.startProgress(int64(len(objs)))
	defer stop()
	jobs := make(chan storedObject, workers*4)
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < workers; i++ {
		g.Go(func() error {
			w := newFsckWorker()
			for o := range jobs {
				if err := gctx.Err(); err != nil {
					return err
				}
				f.verify(w, o.kind, o.id)
				f.done.Add(1)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		for _, o := range objs {
			select {
			case jobs <- o:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("fsck %s: %w", f.r.path, err)
	}
	return nil
}

// startProgress reports progress every 100ms; the returned func stops it
// and reports once more.
func (f *fsckRun) startProgress(total int64) func() {
	fn := f.opts.Progress
	if fn == nil {
		return func() {}
	}
	report := func() { fn(FsckProgress{Checked: f.done.Load(), Total: total, Bytes: f.bytes.Load()}) }
	stop := progress.Every(report)
	return func() { stop(); report() }
}

// verify checks one stored object and records its state.
func (f *fsckRun) verify(w *fsckWorker, kind Kind, id ID) {
	var err error
	var tree *DirTree
	var commit *Commit
	var mode bool
	switch kind {
	case KindFile:
		mode, err = f.verifyFile(w, id)
	default:
		tree, commit, err = f.verifyMeta(w, kind, id)
	}
	k := objKey{kind, id}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked[kind]++
	var missing *ObjectMissingError
	switch {
	case err == nil:
		f.state[k] = stateOK
		if tree != nil {
			f.trees[id] = tree
		}
		if commit != nil {
			f.commits[id] = commit
		}
	case errors.As(err, &missing):
		// Listed but gone: only Delete (which we exclude) removes objects,
		// so someone removed it by hand. Reachability reports it if needed.
		f.state[k] = stateMissing
	case readFailure(err):
		// Stored, but not readable by this user (a bare-user-only file
		// recorded without u+r, or another user's object), or not read
		// now for want of descriptors or memory, or for an I/O error,
		// none of which says anything of its content: unverified, never
		// deleted, and present for the commits that need it.
		f.state[k] = stateUnreadable
		reason := "cannot be read by this user, so it was not verified"
		switch {
		case ioFailure(err):
			reason = fmt.Sprintf("I/O error (%v), so it was not verified; it is kept: check the device, then run fsck again", err)
		case !errors.Is(err, fs.ErrPermission):
			reason = fmt.Sprintf("could not be read (%v), so it was not verified", err)
		}
		p := &FsckProblem{Type: ProblemUnreadable, Kind: kind, ID: id, Path: f.r.ObjectPath(kind, id),
			Reason: reason, Err: err}
		f.problems[k] = p
		f.order = append(f.order, p)
	default:
		f.state[k] = stateCorrupt
		ce := asCorrupt(kind, id, f.r.ObjectPath(kind, id), err)
		p := &FsckProblem{Type: ProblemCorrupt, Kind: kind, ID: id, Path: f.r.ObjectPath(kind, id), Reason: corruptReason(ce), Err: ce}
		if mode {
			p.Type = ProblemMode
			if f.r.mode == ModeBareUser {
				f.state[k] = stateMode
			}
		}
		f.problems[k] = p
		f.order = append(f.order, p)
	}
}

// outOfResources reports whether err is the system running out of
// descriptors or memory (or an interrupted call): a failure to read an
// object, not a sign that it is damaged.
func outOfResources(err error) bool {
	for _, e := range []unix.Errno{unix.EMFILE, unix.ENFILE, unix.ENOMEM, unix.ENOBUFS, unix.EAGAIN, unix.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// readFailure reports whether err, from reading an object, says nothing
// of its content: permission refused, resources short, or an I/O error.
func readFailure(err error) bool {
	return errors.Is(err, fs.ErrPermission) || outOfResources(err) || ioFailure(err)
}

// ioFailure reports whether err is the device or filesystem failing to
// give an object's bytes (EIO; ENXIO, ENODEV: the device gone; EUCLEAN,
// EBADMSG: ext4 or XFS finding its own metadata or checksums bad): the
// object's content was never seen, so it is not known to be corrupt, and
// may read whole once the disk or filesystem is repaired.
func ioFailure(err error) bool {
	for _, e := range []unix.Errno{unix.EIO, unix.ENXIO, unix.ENODEV, unix.EUCLEAN, unix.EBADMSG} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// asCorrupt returns err as a *CorruptObjectError.
func asCorrupt(kind Kind, id ID, path string, err error) *CorruptObjectError {
	var ce *CorruptObjectError
	if errors.As(err, &ce) {
		return ce
	}
	return &CorruptObjectError{Kind: kind, ID: id, Path: path, Reason: err.Error()}
}

func corruptReason(e *CorruptObjectError) string {
	if !e.Actual.IsZero() && e.Actual != e.ID {
		return "content hashes to " + e.Actual.String()
	}
	return e.Reason
}

// fsckReadHook, when set by a test, wraps the reader of each object's
// bytes that verification reads (the stored file at path): where a disk
// may fail.
var fsckReadHook func(path string, r io.Reader) io.Reader

func fsckReader(path string, r io.Reader) io.Reader {
	if fsckReadHook != nil {
		return fsckReadHook(path, r)
	}
	return r
}

// verifyMeta re-hashes and decodes a dirtree, dirmeta, commit,
// commitmeta or tombstone object.
func (f *fsckRun) verifyMeta(w *fsckWorker, kind Kind, id ID) (*DirTree, *Commit, error) {
	path := f.r.ObjectPath(kind, id)
	file, err := f.r.openObject(kind, id)
	if err != nil {
		return nil, nil, err
	}
	defer file.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(file.Fd()), &st); err != nil {
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, nil, &CorruptObjectError{Kind: kind, ID: id, Path: path, Reason: "not a regular file"}
	}
	if st.Size > maxMetaObject {
		return nil, nil, &CorruptObjectError{Kind: kind, ID: id, Path: path, Reason: "larger than any valid object"}
	}
	data, err := io.ReadAll(io.LimitReader(fsckReader(path, file), maxMetaObject+1))
	if err != nil {
		// Kept whole, so that verify tells an I/O error from damage.
		return nil, nil, fmt.Errorf("reading %s object %s: %w", kind, id, err)
	}
	f.bytes.Add(int64(len(data)))
	if kind.ContentAddressed() {
		w.h.Reset()
		w.h.Write(data)
		if got := ID(w.h.Sum()); got != id {
			return nil, nil, &CorruptObjectError{Kind: kind, ID: id, Actual: got, Path: path}
		}
	}
	switch kind {
	case KindDirTree:
		t, err := DecodeDirTree(data)
		if err != nil {
			return nil, nil, f.r.corrupt(kind, id, err)
		}
		return t, nil, nil
	case KindDirMeta:
		if _, err := DecodeDirMeta(data); err != nil {
			return nil, nil, f.r.corrupt(kind, id, err)
		}
	case KindCommit:
		c, err := DecodeCommit(data)
		if err != nil {
			return nil, nil, f.r.corrupt(kind, id, err)
		}
		return nil, c, nil
	case KindCommitMeta:
		if _, err := DecodeCommitMeta(data); err != nil {
			return nil, nil, f.r.corrupt(kind, id, err)
		}
	case KindTombstoneCommit:
		if err := CheckTombstone(data, id); err != nil {
			return nil, nil, f.r.corrupt(kind, id, err)
		}
	}
	return nil, nil, nil
}

// verifyFile reads a file object's content to the end, verifying header
// and content hash to id, and in bare-user mode its permission bits. mode
// is set when only the permission bits are wrong.
func (f *fsckRun) verifyFile(w *fsckWorker, id ID) (mode bool, err error) {
	path := f.r.ObjectPath(KindFile, id)
	h, c, body, err := f.r.openFile(id, true)
	if err != nil {
		if c != nil {
			c.Close()
		}
		return false, err
	}
	if err := f.r.checkStoredTarget(id, h, c); err != nil {
		c.Close()
		return false, err
	}
	w.h.Reset()
	w.h.Write(AppendFileHeader(nil, h))
	rc := &fileReader{r: fsckReader(path, body), c: c, size: h.Size, h: w.h, id: id, path: path}
	defer rc.Close()
	for {
		n, err := rc.Read(w.buf)
		f.bytes.Add(int64(n))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, err
		}
	}
	if err := f.r.refusedMode(h); err != nil {
		// Stored by an otree that did not refuse such modes yet.
		return true, &CorruptObjectError{Kind: KindFile, ID: id, Path: path, Reason: err.Error()}
	}
	if f.r.mode == ModeBareUser {
		var st unix.Stat_t
		if err := unix.Fstatat(f.r.objects(), objectPath(KindFile, id), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, fmt.Errorf("stat %s: %w", path, err)
		}
		want := uint32(0o644)
		if h.Type == TypeRegular {
			want = BareUserDiskMode(h.Mode)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return false, &CorruptObjectError{Kind: KindFile, ID: id, Path: path, Reason: fmt.Sprintf("file type %o on disk, want a regular file", st.Mode&unix.S_IFMT)}
		}
		if got := st.Mode & 0o7777; got != want && (h.Type != TypeRegular || got != legacyBareUserDiskMode(h.Mode)) {
			return true, &CorruptObjectError{Kind: KindFile, ID: id, Path: path,
				Reason: fmt.Sprintf("permissions on disk are %04o, want %04o for recorded mode %04o (changed through a hardlink?)", got, want, h.Mode)}
		}
	}
	return false, nil
}

// status returns the state of an object, checking objects that were not
// listed (a transaction running beside us may have added them since; they
// are then verified now).
func (f *fsckRun) status(kind Kind, id ID) objState {
	k := objKey{kind, id}
	f.mu.Lock()
	s := f.state[k]
	f.mu.Unlock()
	if s != stateUnknown {
		return s
	}
	has, err := f.r.HasObject(kind, id)
	if err == nil && !has {
		f.mu.Lock()
		f.state[k] = stateMissing
		f.mu.Unlock()
		return stateMissing
	}
	f.verify(newFsckWorker(), kind, id)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state[k]
}

// need checks that an object a commit needs is present and sound,
// reporting it missing (once) when report is set. It reports whether the
// object is usable.
func (f *fsckRun) need(kind Kind, id ID, commit ID, ref, treePath string, report bool) bool {
	switch s := f.status(kind, id); s {
	case stateOK:
		return true
	case stateCorrupt, stateMode, stateUnreadable:
		if p := f.problems[objKey{kind, id}]; p != nil && p.Commit.IsZero() && report {
			p.Commit, p.TreePath, p.Ref = commit, treePath, ref
		}
		return s != stateCorrupt
	}
	k := objKey{kind, id}
	if report && f.problems[k] == nil {
		p := &FsckProblem{Type: ProblemMissing, Kind: kind, ID: id, Path: f.r.ObjectPath(kind, id),
			Commit: commit, TreePath: treePath, Ref: ref, Reason: "missing", Err: &ObjectMissingError{kind, id}}
		f.problems[k] = p
		f.order = append(f.order, p)
	}
	return false
}

// treeOK checks a dirtree and everything below it.
func (f *fsckRun) treeOK(ctx context.Context, id ID, commit ID, ref, treePath string, report bool) bool {
	if ok, seen := f.treeMemo[id]; seen {
		return ok
	}
	if ctx.Err() != nil {
		return false
	}
	ok := f.need(KindDirTree, id, commit, ref, treePath, report)
	// An unreadable dirtree (reported) hides what is below it.
	if t := f.trees[id]; ok && t != nil {
		for _, e := range t.Files {
			if !f.need(KindFile, e.ID, commit, ref, joinTreePath(treePath, e.Name), report) {
				ok = false
			}
		}
		for _, d := range t.Dirs {
			p := joinTreePath(treePath, d.Name)
			if !f.need(KindDirMeta, d.MetaID, commit, ref, p, report) {
				ok = false
			}
			if !f.treeOK(ctx, d.TreeID, commit, ref, p, report) {
				ok = false
			}
		}
	}
	f.treeMemo[id] = ok
	return ok
}

func joinTreePath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// checkCommits checks every ref's commit and every stored commit.
func (f *fsckRun) checkCommits(ctx context.Context, refs []Ref, objs []storedObject, rep *FsckReport) error {
	type root struct {
		id  ID
		ref string
	}
	var roots []root
	seen := map[ID]bool{}
	for _, ref := range refs {
		if !seen[ref.Commit] {
			seen[ref.Commit] = true
			roots = append(roots, root{ref.Commit, ref.Name})
		}
	}
	var rest []ID
	for _, o := range objs {
		if o.kind == KindCommit && !seen[o.id] {
			seen[o.id] = true
			rest = append(rest, o.id)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].String() < rest[j].String() })
	for _, id := range rest {
		roots = append(roots, root{id: id})
	}
	// Partial commits last, so that whatever a complete commit lacks is
	// reported even when a partial commit shares the tree.
	var partial []root
	check := func(c root, report bool) bool {
		if !f.need(KindCommit, c.id, ID{}, c.ref, "", report && c.ref != "") {
			return true // missing or corrupt itself: already reported
		}
		cm := f.commits[c.id]
		if cm == nil {
			return true // unreadable: already reported, its tree unknown
		}
		ok := f.need(KindDirMeta, cm.RootMeta, c.id, c.ref, "/", report)
		if !f.treeOK(ctx, cm.RootTree, c.id, c.ref, "/", report) {
			ok = false
		}
		return ok
	}
	for _, c := range roots {
		if f.r.isCommitPartial(c.id) {
			partial = append(partial, c)
			continue
		}
		if !check(c, true) {
			rep.Incomplete = append(rep.Incomplete, c.id)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fsck %s: %w", f.r.path, err)
		}
	}
	// Where each commit stands in the history of a ref: the nearest
	// ref, for the first that names a partial commit no ref points at.
	type place struct {
		ref  string
		back int
	}
	history := map[ID]place{}
	for _, ref := range refs {
		n := 0
		for cm := f.commits[ref.Commit]; cm != nil && !cm.Parent.IsZero() && n < len(f.commits); cm = f.commits[cm.Parent] {
			n++
			if h, ok := history[cm.Parent]; !ok || n < h.back {
				history[cm.Parent] = place{ref.Name, n}
			}
		}
	}
	// A damaged commit in a branch's history: once deleted, its absence
	// is no problem (history may end anywhere), so this is the one
	// report that says how to fetch it again.
	for _, p := range f.order {
		if p.Kind != KindCommit || p.Ref != "" || (p.Type != ProblemCorrupt && p.Type != ProblemUnreadable) {
			continue
		}
		if h, ok := history[p.ID]; ok {
			p.Reason += fmt.Sprintf("; ref %s has it %d back in its history (a pull of that branch with --depth=%d fetches it again)", h.ref, h.back, h.back)
		}
	}
	// Detached metadata (signatures) deleted leaves its commit whole, and
	// no later fsck would miss it: say which pull fetches it again.
	tips := map[ID]string{}
	for _, ref := range refs {
		if _, ok := tips[ref.Commit]; !ok {
			tips[ref.Commit] = ref.Name
		}
	}
	for _, p := range f.order {
		if p.Kind != KindCommitMeta || p.Type != ProblemCorrupt {
			continue
		}
		if ref, ok := tips[p.ID]; ok {
			p.Reason += fmt.Sprintf("; ref %s points at its commit (a pull of that branch fetches it again)", ref)
		} else {
			// A pull fetches the detached metadata of the commits
			// it asks for, not of ancestors it already has.
			p.Reason += "; a pull of its commit by id fetches it again"
		}
	}
	// A corrupt tombstone of a stored commit's parent: once deleted, the
	// parent's absence reads as damage to a pull that meets it.
	parents := map[ID]bool{}
	for _, c := range f.commits {
		parents[c.Parent] = true
	}
	for _, p := range f.order {
		if p.Kind == KindTombstoneCommit && p.Type == ProblemCorrupt && parents[p.ID] && f.status(KindCommit, p.ID) == stateMissing {
			p.Reason += "; fsck --delete --add-tombstones stores it again"
		}
	}
	var unmark []ID
	for _, c := range partial {
		complete, byFsck := check(c, false), f.r.isCommitPartialFsck(c.id)
		// Complete again (a later commit or pull stored what it needs),
		// and just verified: Delete takes fsck's mark away (all at once
		// below, with one sync); until then the commit stays a problem,
		// as in OSTree.
		if byFsck && complete && f.opts.Delete {
			unmark = append(unmark, c.id)
			continue
		}
		rep.Partial = append(rep.Partial, c.id)
		if !byFsck {
			continue
		}
		reason := "is partial from fsck-detected corruption: objects it needs were deleted or missing; pull it again to complete it"
		if c.ref == "" {
			// A pull of a branch fetches its tip alone: name the way
			// to this commit.
			if h, ok := history[c.id]; ok {
				reason += fmt.Sprintf(": ref %s has it %d back in its history (pull that branch with --depth=%d, or pull the commit by its id)", h.ref, h.back, h.back)
			} else {
				reason = strings.TrimSuffix(reason, " to complete it") + " by its id to complete it"
			}
		}
		err := fmt.Errorf("commit %s is partial from fsck-detected corruption: %w", c.id, ErrNotFound)
		if complete {
			reason = "was marked partial from fsck-detected corruption, and every object it needs is here again"
			err = fmt.Errorf("commit %s is marked partial from fsck-detected corruption", c.id)
		}
		f.order = append(f.order, &FsckProblem{Type: ProblemPartial, Kind: KindCommit, ID: c.id,
			Path: f.r.partialStatePath(c.id), Ref: c.ref, Reason: reason, Err: err})
	}
	if err := f.r.UnmarkCommitsPartial(unmark); err != nil {
		return err
	}
	rep.Unmarked = append(rep.Unmarked, unmark...)
	return ctx.Err()
}

// checkBindings reports refs whose commit's binding does not list them and,
// with backRefs, commits whose binding lists a ref that does not point at
// them. Commits that could not be read are already reported.
func (f *fsckRun) checkBindings(refs []Ref, backRefs bool) {
	bindingProblem := func(id ID, ref, reason string, err error) {
		if err == nil {
			err = errors.New(reason)
		}
		f.order = append(f.order, &FsckProblem{Type: ProblemBinding, Kind: KindCommit, ID: id,
			Path: f.r.ObjectPath(KindCommit, id), Ref: ref, Reason: reason, Err: err})
	}
	local := map[string]ID{}
	for _, ref := range refs {
		branch := ref.Name
		if _, b, ok := strings.Cut(ref.Name, ":"); ok {
			branch = b
		} else {
			local[ref.Name] = ref.Commit
		}
		c := f.commits[ref.Commit]
		if c == nil {
			continue
		}
		if err := CheckRefBinding(ref.Commit, c, branch); err != nil {
			bindingProblem(ref.Commit, ref.Name, fmt.Sprintf("ref %s points at it, but its ref binding lists only [%s]",
				ref.Name, strings.Join(err.(*RefBindingError).Bindings, ", ")), err)
		}
		want := f.r.RefCollectionID(ref.Name)
		if err := CheckCollectionBinding(ref.Commit, c, want); err != nil {
			bindingProblem(ref.Commit, ref.Name, fmt.Sprintf("ref %s points at it, but it is bound to collection %s, not %s",
				ref.Name, err.(*CollectionBindingError).Binding, want), err)
		}
	}
	if !backRefs {
		return
	}
	ids := make([]ID, 0, len(f.commits))
	for id := range f.commits {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	for _, id := range ids {
		b, _ := f.commits[id].RefBindings()
		for _, name := range b {
			switch at, ok := local[name]; {
			case !ok:
				bindingProblem(id, name, fmt.Sprintf("ref %s in its ref binding does not exist", name), nil)
			case at != id:
				bindingProblem(id, name, fmt.Sprintf("ref %s in its ref binding points at %s, not at it", name, at), nil)
			}
		}
	}
}

// unreferenced counts listed objects that no ref reaches.
func (f *fsckRun) unreferenced(refs []Ref, objs []storedObject) int64 {
	reach := map[objKey]bool{}
	var markTree func(ID)
	markTree = func(id ID) {
		k := objKey{KindDirTree, id}
		if reach[k] {
			return
		}
		reach[k] = true
		t := f.trees[id]
		if t == nil {
			return
		}
		for _, e := range t.Files {
			reach[objKey{KindFile, e.ID}] = true
		}
		for _, d := range t.Dirs {
			reach[objKey{KindDirMeta, d.MetaID}] = true
			markTree(d.TreeID)
		}
	}
	for _, ref := range refs {
		for id := ref.Commit; !id.IsZero(); {
			k := objKey{KindCommit, id}
			if reach[k] {
				break
			}
			reach[k] = true
			reach[objKey{KindCommitMeta, id}] = true
			c := f.commits[id]
			if c == nil {
				break
			}
			reach[objKey{KindDirMeta, c.RootMeta}] = true
			markTree(c.RootTree)
			id = c.Parent
		}
	}
	// A tombstone is kept for as long as its commit is absent; beside the
	// commit it is stale, and prune removes it.
	for _, o := range objs {
		if o.kind == KindTombstoneCommit && f.status(KindCommit, o.id) == stateMissing {
			reach[objKey(o)] = true
		}
	}
	var n int64
	for _, o := range objs {
		if !reach[objKey(o)] {
			n++
		}
	}
	return n
}

// addTombstones stores a tombstone for each missing parent of a stored
// commit that has none.
func (f *fsckRun) addTombstones(rep *FsckReport) error {
	seen := map[ID]bool{}
	for _, c := range f.commits {
		p := c.Parent
		if p.IsZero() || seen[p] || f.status(KindCommit, p) != stateMissing {
			continue
		}
		seen[p] = true
		if has, err := f.r.HasObject(KindTombstoneCommit, p); err != nil {
			return err
		} else if !has {
			rep.Tombstoned = append(rep.Tombstoned, p)
		}
	}
	if len(rep.Tombstoned) == 0 {
		return nil
	}
	slices.SortFunc(rep.Tombstoned, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	if err := f.r.enableTombstones(); err != nil {
		return err
	}
	if err := f.r.writeTombstones(rep.Tombstoned); err != nil {
		rep.Tombstoned = nil
		return err
	}
	return nil
}

// repair deletes corrupt objects, rewrites mode-damaged ones
// (rewriteModeDamaged, in a staging directory made at the first), and
// marks damaged commits partial. The caches go first, since a commit
// takes their word for what is stored, and the markers before the
// objects, so that a repair killed half-way leaves no commit that lacks
// objects and looks whole.
func (f *fsckRun) repair(rep *FsckReport) error {
	var errs []error
	removed := false
	var staging *Txn
	defer func() {
		if staging != nil {
			staging.Abort()
		}
	}()
	// The caches (the stat cache, the file-header index) name objects,
	// and a commit takes their word without looking: one that names an
	// object found missing, or about to be deleted, would give the next
	// commit a tree that lacks it. They go first, durably, as in Prune.
	doomed := len(rep.Incomplete) > 0 || slices.ContainsFunc(f.order, func(p *FsckProblem) bool {
		return p.Type == ProblemCorrupt || p.Type == ProblemMode || p.Type == ProblemMissing
	})
	if doomed {
		if err := f.r.dropCaches(); err != nil {
			errs = append(errs, err)
		} else if err := durable.SyncDir(f.r.Path("tmp")); err != nil {
			errs = append(errs, err)
		}
	}
	// The marks are written unsynced and made durable together, before
	// any object goes: a damaged file every commit of a long history
	// shares would otherwise cost two fsyncs a commit.
	for _, id := range rep.Incomplete {
		if err := f.r.writePartialMarker(id, partialFsck, false); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.MarkedPartial = append(rep.MarkedPartial, id)
	}
	unsynced := false
	if len(rep.MarkedPartial) > 0 && f.r.Fsync() {
		if err := f.r.syncMarkers(); err != nil {
			errs = append(errs, err)
			unsynced = true
		}
	}
	// A commit left unmarked (a full filesystem), or whose mark a crash
	// could lose, would look whole once the objects it needs are gone,
	// and a pull would skip it: keep every corrupt object until a later
	// run can mark them all.
	keep := unsynced || len(rep.MarkedPartial) < len(rep.Incomplete)
	kept := 0
	for _, p := range f.order {
		if p.Type == ProblemCache {
			// Not an object: the object is sound, and no commit lacks it.
			if err := unix.Unlink(p.Path); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("removing uncompressed-cache entry %s: %w", p.Path, err))
				continue
			}
			p.Deleted = true
			removed = true
			continue
		}
		if p.Type != ProblemCorrupt && p.Type != ProblemMode {
			continue
		}
		if f.state[objKey{p.Kind, p.ID}] == stateMode {
			var err error
			if staging == nil {
				staging, err = f.r.beginHeld()
			}
			if err == nil {
				err = f.r.rewriteModeDamaged(staging, p.ID)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.Repaired = true
			rep.Repaired++
			removed = true
			continue
		}
		if keep {
			kept++
			continue
		}
		err := unix.Unlinkat(f.r.objects(), objectPath(p.Kind, p.ID), 0)
		if errors.Is(err, unix.EISDIR) {
			// A directory in the object's place: a pull can rename
			// the object there only once it is gone. One with
			// entries is left alone, since they are no objects and
			// may be someone's.
			err = unix.Unlinkat(f.r.objects(), objectPath(p.Kind, p.ID), unix.AT_REMOVEDIR)
			if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("a directory that is not empty stands in its place: remove it by hand (rm -r %s), then pull the commits that need it", p.Path)
			}
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("deleting corrupt %s object %s: %w", p.Kind, p.Path, err))
			continue
		}
		p.Deleted = true
		rep.Deleted++
		removed = true
	}
	if kept > 0 && unsynced {
		errs = append(errs, fmt.Errorf("kept %d corrupt objects: the partial marks of the %d commits that need them could not be made durable, and without them those commits would look whole; run fsck --delete again once they can be", kept, len(rep.MarkedPartial)))
	} else if kept > 0 {
		errs = append(errs, fmt.Errorf("kept %d corrupt objects: %d commits that need them could not be marked partial, and would look whole without them; run fsck --delete again once they can be", kept, len(rep.Incomplete)-len(rep.MarkedPartial)))
	}
	// A removal lost in a crash would bring back what was found bad.
	if removed {
		if err := unix.Syncfs(f.r.objects()); err != nil {
			errs = append(errs, fmt.Errorf("syncing %s: %w", f.r.Path("objects"), err))
		}
	}
	return errors.Join(errs...)
}
