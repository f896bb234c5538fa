package commit

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/otree/otree/repo"
)

// dir is a directory of the tree being built. Sources fill it in (the walker
// from several goroutines, each writing only its own slots); overlaying and
// writing happen afterwards on one goroutine.
type dir struct {
	meta repo.ID
	tree repo.ID // the dirtree, once written
	// written means tree is set and final: the walk stored the dirtree
	// as soon as the directory was complete (see walker.finished).
	written bool
	// For the walk that writes dirtrees early: the parent directory, and
	// the work still outstanding on this one (its listing, its batches
	// of files and its unfinished subdirectories).
	parent  *dir
	pending atomic.Int32

	// For directories walked on disk: where, the directory's stat (keyOK:
	// old enough to trust), and its stat-cache record, if any. filesClean
	// means every entry that is not a directory matched the record, which
	// then holds them: fileNames, fileIDs and fileKeys stay empty until
	// materialize fills them from it. An empty path keeps the directory
	// out of the cache (its content no longer mirrors the disk).
	path       string
	key        statKey
	keyOK      bool
	noCtime    bool   // on a filesystem whose stats are never cached (noChangeTimes)
	mount      uint64 // the filesystem instance it is on (mountToken), 0 if unknown
	rec        *dirRec
	filesClean bool

	// stored, when not zero, is a dirtree already in the repository that
	// this directory equals until it is expanded for modification.
	stored repo.ID

	// src is the index of the source (Options.Sources) that made this
	// directory, and overFiles the source of each file a later source
	// laid over it: what a type conflict between sources names.
	src       int
	overFiles map[string]int

	// implicit marks a directory its source makes only to hold what it
	// names below it: a parent a tar leaves out, or a tar's root without
	// a "./" entry. Its meta is a default (0755, owner 0, then the
	// options), which gives way to the metadata an earlier source has
	// for the directory. implied is the stat override applied to that
	// default, if any: it counts as matched only if the default is kept.
	implicit bool
	implied  *override

	fileNames []string
	fileIDs   []repo.ID
	fileKeys  []statKey // walked directories only: stat of each entry, zero when too new to trust (unless walker.exact)
	dirNames  []string
	dirs      []*dir

	// anyOrder marks a directory a tar is being read into: entries that
	// come out of order are appended, where inserting each in its place
	// would cost time quadratic in their number. fileAt (dirAt) indexes
	// fileNames (dirNames) by name once that list is out of order, and
	// is nil while it is sorted; sortEntries sorts both.
	anyOrder bool
	fileAt   map[string]int
	dirAt    map[string]int
}

// materialize fills the file lists of a directory whose entries all came
// from its cache record.
func (d *dir) materialize() {
	if !d.filesClean {
		return
	}
	d.filesClean = false
	refs := d.rec.appendFiles(nil)
	d.fileNames = make([]string, len(refs))
	d.fileIDs = make([]repo.ID, len(refs))
	d.fileKeys = make([]statKey, len(refs))
	for i, f := range refs {
		d.fileNames[i], d.fileIDs[i], d.fileKeys[i] = string(f.name), f.id, f.key
	}
}

// expand turns a stored directory into an editable one.
func (d *dir) expand(r reader) error {
	d.materialize()
	if d.stored.IsZero() {
		return nil
	}
	t, err := r.ReadDirTree(d.stored)
	if err != nil {
		return err
	}
	d.stored = repo.ID{}
	d.fileNames = make([]string, len(t.Files))
	d.fileIDs = make([]repo.ID, len(t.Files))
	for i, f := range t.Files {
		d.fileNames[i], d.fileIDs[i] = f.Name, f.ID
	}
	d.dirNames = make([]string, len(t.Dirs))
	d.dirs = make([]*dir, len(t.Dirs))
	for i, e := range t.Dirs {
		d.dirNames[i] = e.Name
		d.dirs[i] = &dir{meta: e.MetaID, stored: e.TreeID, src: d.src}
	}
	return nil
}

// reader is what building a tree needs from the repository.
type reader interface {
	ReadDirTree(repo.ID) (*repo.DirTree, error)
}

// sortEntries sorts both lists by name (slots are filled in directory
// order, a tar's entries in the tar's).
func (d *dir) sortEntries() {
	sort.Sort(byName{d.fileNames, d.fileIDs, d.fileKeys})
	sort.Sort(dirsByName{d})
	d.anyOrder, d.fileAt, d.dirAt = false, nil, nil
}

type byName struct {
	n   []string
	id  []repo.ID
	key []statKey // nil unless walked
}

func (s byName) Len() int           { return len(s.n) }
func (s byName) Less(i, j int) bool { return s.n[i] < s.n[j] }
func (s byName) Swap(i, j int) {
	s.n[i], s.n[j] = s.n[j], s.n[i]
	s.id[i], s.id[j] = s.id[j], s.id[i]
	if s.key != nil {
		s.key[i], s.key[j] = s.key[j], s.key[i]
	}
}

type dirsByName struct{ d *dir }

func (s dirsByName) Len() int           { return len(s.d.dirNames) }
func (s dirsByName) Less(i, j int) bool { return s.d.dirNames[i] < s.d.dirNames[j] }
func (s dirsByName) Swap(i, j int) {
	d := s.d
	d.dirNames[i], d.dirNames[j] = d.dirNames[j], d.dirNames[i]
	d.dirs[i], d.dirs[j] = d.dirs[j], d.dirs[i]
}

// shifted counts the entries that inserting into and removing from sorted
// lists have moved, which tests bound: a source whose entries come out of
// order must not pay for each a move of the ones after it.
var shifted atomic.Int64

// findFile and findDir return the index of name, or -1.
func (d *dir) findFile(name string) int { return find(d.fileNames, d.fileAt, name) }

func (d *dir) findDir(name string) int { return find(d.dirNames, d.dirAt, name) }

// find returns the index of name in names, sorted unless at (an index by
// name) is set, or -1.
func find(names []string, at map[string]int, name string) int {
	i, ok := lookupName(names, at, name)
	if !ok {
		return -1
	}
	return i
}

// lookupName returns where name is in names (through at when it is set), or,
// when it is not there, where it goes in sorted names.
func lookupName(names []string, at map[string]int, name string) (int, bool) {
	if at != nil {
		i, ok := at[name]
		return i, ok
	}
	return slices.BinarySearch(names, name)
}

// indexNames indexes names by name.
func indexNames(names []string) map[string]int {
	at := make(map[string]int, len(names))
	for i, n := range names {
		at[n] = i
	}
	return at
}

// removeFile and removeDir remove entry i. A list out of order has its
// last entry moved into the gap.
func (d *dir) removeFile(i int) {
	// Only a tar's lists go out of order, and a tar gives no stats:
	// fileKeys is nil then.
	if d.fileAt == nil && d.fileKeys != nil {
		d.fileKeys = slices.Delete(d.fileKeys, i, i+1)
	}
	d.fileNames, d.fileIDs = remove(d.fileNames, d.fileIDs, d.fileAt, i)
}

func (d *dir) removeDir(i int) { d.dirNames, d.dirs = remove(d.dirNames, d.dirs, d.dirAt, i) }

// remove takes entry i out of names and their values vals: in place when
// they are sorted, else (at set) by moving the last entry into the gap.
func remove[V any](names []string, vals []V, at map[string]int, i int) ([]string, []V) {
	if at == nil {
		shifted.Add(int64(len(names) - i - 1))
		return slices.Delete(names, i, i+1), slices.Delete(vals, i, i+1)
	}
	last := len(names) - 1
	delete(at, names[i])
	if i != last {
		names[i], vals[i] = names[last], vals[last]
		at[names[i]] = i
	}
	return names[:last], vals[:last]
}

// setFile puts the object id at name, replacing a file or directory there.
func (d *dir) setFile(name string, id repo.ID) {
	if i := d.findDir(name); i >= 0 {
		d.removeDir(i)
	}
	d.fileNames, d.fileIDs, d.fileAt = set(d.fileNames, d.fileIDs, d.fileAt, d.anyOrder, name, id)
}

// setDir puts sub at name, replacing a file or directory there.
func (d *dir) setDir(name string, sub *dir) {
	if i := d.findFile(name); i >= 0 {
		d.removeFile(i)
	}
	d.dirNames, d.dirs, d.dirAt = set(d.dirNames, d.dirs, d.dirAt, d.anyOrder, name, sub)
}

// set gives name the value v in names and their values vals, adding it
// where it is not there: in its sorted place, or, for a list a tar fills
// (anyOrder) where that is not the end, at the end, the list from then on
// indexed by name (at) instead of sorted.
func set[V any](names []string, vals []V, at map[string]int, anyOrder bool, name string, v V) ([]string, []V, map[string]int) {
	i, found := lookupName(names, at, name)
	if found {
		vals[i] = v
		return names, vals, at
	}
	if at == nil && i < len(names) && anyOrder {
		at = indexNames(names) // out of order from here on
	}
	if at != nil {
		i = len(names)
		at[name] = i
	}
	shifted.Add(int64(len(names) - i))
	return slices.Insert(names, i, name), slices.Insert(vals, i, v), at
}

// typeConflict is a source that has a directory where one below it has a
// non-directory, or the reverse. OSTree refuses both; replacing would
// drop a whole subtree, or what a later layer put in it, without a word.
type typeConflict struct {
	path         string // tree path
	lower, upper int    // indexes of the sources
	upperIsDir   bool
}

func (e *typeConflict) Error() string {
	if e.upperIsDir {
		return "a source cannot replace a file with a directory"
	}
	return "a source cannot replace a directory, and what it holds, with a file"
}

// overlay lays src over d, the tree path p: non-directories in src
// replace those of d, directories merge, and src's directory metadata
// wins unless src only implies the directory (dir.implicit). A directory
// against a non-directory is a *typeConflict.
func (d *dir) overlay(r reader, src *dir, p string) error {
	if err := d.expand(r); err != nil {
		return err
	}
	if err := src.expand(r); err != nil {
		return err
	}
	if !src.implicit {
		d.meta, d.implicit, d.implied = src.meta, false, nil
	}
	d.path, d.fileKeys = "", nil // no longer what is on disk at d.path: keep it out of the cache
	for _, n := range src.fileNames {
		if j := d.findDir(n); j >= 0 {
			return &typeConflict{path: joinPath(p, n), lower: d.dirs[j].src, upper: src.src}
		}
		if d.overFiles == nil {
			d.overFiles = map[string]int{}
		}
		d.overFiles[n] = src.src
	}
	d.fileNames, d.fileIDs = mergeSorted(d.fileNames, d.fileIDs, src.fileNames, src.fileIDs)
	// src's directories that d lacks, merged in once the others are
	// laid over d's.
	var newNames []string
	var newDirs []*dir
	for i, n := range src.dirNames {
		if j := d.findFile(n); j >= 0 {
			lower, ok := d.overFiles[n]
			if !ok {
				lower = d.src
			}
			return &typeConflict{path: joinPath(p, n), lower: lower, upper: src.src, upperIsDir: true}
		}
		if j := d.findDir(n); j >= 0 {
			if err := d.dirs[j].overlay(r, src.dirs[i], joinPath(p, n)); err != nil {
				return err
			}
			continue
		}
		newNames, newDirs = append(newNames, n), append(newDirs, src.dirs[i])
	}
	d.dirNames, d.dirs = mergeSorted(d.dirNames, d.dirs, newNames, newDirs)
	return nil
}

// mergeSorted merges the sorted names bn, with their values bv, into the
// sorted an and av: bv's value wins for a name in both. One pass, where
// inserting bn's names one at a time would move an's along for each.
func mergeSorted[V any](an []string, av []V, bn []string, bv []V) ([]string, []V) {
	added := 0 // bn's names that an lacks
	for i, j := 0, 0; j < len(bn); j++ {
		for i < len(an) && an[i] < bn[j] {
			i++
		}
		if i < len(an) && an[i] == bn[j] {
			av[i] = bv[j]
		} else {
			added++
		}
	}
	if added == 0 {
		return an, av
	}
	names := make([]string, 0, len(an)+added)
	vals := make([]V, 0, len(an)+added)
	i := 0
	for j, n := range bn {
		for ; i < len(an) && an[i] < n; i++ {
			names, vals = append(names, an[i]), append(vals, av[i])
		}
		if i < len(an) && an[i] == n {
			i++
		}
		names, vals = append(names, n), append(vals, bv[j])
	}
	return append(names, an[i:]...), append(vals, av[i:]...)
}

// remove deletes the entry at a slash-separated path below d, if present,
// and reports whether it was.
func (d *dir) remove(r reader, path string) (bool, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	cur := d
	for i, p := range parts {
		if err := cur.expand(r); err != nil {
			return false, err
		}
		if i == len(parts)-1 {
			if j := cur.findFile(p); j >= 0 {
				cur.removeFile(j)
				return true, nil
			}
			if j := cur.findDir(p); j >= 0 {
				cur.removeDir(j)
				return true, nil
			}
			return false, nil
		}
		j := cur.findDir(p)
		if j < 0 {
			return false, nil
		}
		cur = cur.dirs[j]
	}
	return false, nil
}

// writer is what storing a tree needs: Present answers for the ids of
// stat-cache records, whose objects may have been lost since.
type writer interface {
	WriteMeta(repo.Kind, []byte) (repo.ID, error)
	Present(repo.Kind, repo.ID) bool
}

// write stores d and everything below it bottom-up and returns d's dirtree
// id (also left in d.tree).
func (d *dir) write(w writer) (repo.ID, error) {
	if d.written {
		return d.tree, nil
	}
	if !d.stored.IsZero() {
		d.tree = d.stored
		return d.stored, nil
	}
	for _, sub := range d.dirs {
		if _, err := sub.write(w); err != nil {
			return repo.ID{}, err
		}
	}
	return d.writeNode(w)
}

// writeNode stores d's dirtree, its subdirectories' being written already,
// and returns its id (also left in d.tree).
func (d *dir) writeNode(w writer) (repo.ID, error) {
	if d.filesClean && d.rec.sameDirs(d) && w.Present(repo.KindDirTree, d.rec.tree) {
		// Every entry is the record's: so is the dirtree, stored when
		// the record was made and still there (one lost since is
		// encoded and stored again below).
		d.tree = d.rec.tree
		return d.tree, nil
	}
	d.materialize()
	t := repo.DirTree{
		Files: make([]repo.FileEntry, len(d.fileNames)),
		Dirs:  make([]repo.DirEntry, len(d.dirNames)),
	}
	for i, n := range d.fileNames {
		if d.fileIDs[i].IsZero() {
			return repo.ID{}, fmt.Errorf("internal error: file %q has no object", n)
		}
		t.Files[i] = repo.FileEntry{Name: n, ID: d.fileIDs[i]}
	}
	for i, n := range d.dirNames {
		t.Dirs[i] = repo.DirEntry{Name: n, TreeID: d.dirs[i].tree, MetaID: d.dirs[i].meta}
	}
	enc := t.Encode()
	id := repo.Sum(enc)
	if d.rec == nil || id != d.rec.tree || !w.Present(repo.KindDirTree, id) {
		// Not known to be stored: write it (dedupe makes this cheap).
		var err error
		if id, err = w.WriteMeta(repo.KindDirTree, enc); err != nil {
			return repo.ID{}, err
		}
	}
	d.tree = id
	return id, nil
}
