package commit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"github.com/otree/otree/internal/cachefile"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// The stat cache remembers, per walked directory, the stat fields and
// object id of each entry that is not a directory, the directory's own stat
// and dirmeta id, and the dirtree it produced (with the tree and meta id of
// each subdirectory), so that re-committing a tree whose files did not
// change costs a stat per entry instead of a read, and a directory whose
// entries all match costs no dirtree encoding either.
//
// A cached answer must never be wrong. Every change to a file's content,
// mode, owner or xattrs moves its ctime, which no unprivileged user can set,
// so the key includes ctime (plus inode, size, mtime and the mode bits). The
// "racy" case is a file changed within the filesystem's timestamp
// granularity of being hashed: its ctime would not move. So an entry is
// recorded only when the file's ctime is older than the start of the run by
// more than that granularity (taken as 2 s where timestamps have no
// sub-second part, else 100 ms: kernels stamp files from a clock that ticks
// at least every 10 ms); newer files are simply hashed again next time.
// A read-only image filesystem (squashfs, erofs...) has no ctime of its own,
// only the times its builder chose, so nothing on one is cached, nor on
// an overlay, which shows its layers' times, nor on FAT, whose ctime is
// its mtime and so goes back with it (noChangeTimes).
//
// A stat identifies a file only within one mounted filesystem: unmount
// one and mount another in its place (the next image of a build through
// the same loop device, another disk in the same slot, any filesystem
// after a reboot) and st_dev is the same again, and a builder that copies
// or chooses times (mke2fs -d copies the source's whole seconds) can give
// a changed file the inode, size and times the first one's had. So each
// record also holds a token of the mount its directory was found on (the
// kernel's unique mount id with the boot id, mountToken), and is used only
// on that same mount: a remount or a reboot costs one full read.
//
// A directory's cached dirtree is used only when every entry found now
// matches the record and the record lists no other: its files by name, stat
// and id, its subdirectories by name, dirtree and dirmeta. The record then
// describes exactly the dirtree being built, whose id it holds.
//
// A record vouches for ids, not for their objects being stored still: an
// object lost behind the repository's back (a file deleted from objects/)
// would leave a commit that names it. So every id a record gives is
// checked to be stored before it is used, and an object found missing is
// stored again from the source, as OSTree, reading every file, would. A
// check is an fstatat, which on a tree of 17 000 entries costs as much as
// the rest of the re-commit; so the cache also records a stamp of each of
// the 256 fan-out directories of objects/ (inode, change and modification
// times) as the run that saved it found the directory at its start, if
// its times were older than that start by more than the racy window. Any
// change to a directory since, removing an entry included, moves its
// times past that, so a stamp that still holds means the directory holds
// all it held when that run started; and every object the saved records
// name there was, from that start on, checked, stored, or vouched for by
// a stamp that held. A run takes the objects the records name in a
// directory whose stamp holds as stored, unchecked, and checks the others
// one by one. The records a run keeps without walking them (those of
// other trees) are not checked by its walk: their objects are checked when
// it saves, in the directories whose loaded stamp no longer holds.
//
// Prune and fsck --delete empty the repository's cache directory because
// they may remove objects the cache names; every user of the cache holds the
// repository lock shared, so neither runs while a commit does.

const (
	statCacheName       = "stat-cache"
	statCacheMagic      = "otree-statcache6"
	racyWindowNanos     = int64(2e9) // filesystems with whole-second times
	racyWindowFineNanos = int64(1e8) // nanosecond times: a tick is at most 10 ms
	statCacheMaxPath    = 1 << 16
	keySize             = 52 // encoded statKey
	stampSize           = 24 // encoded fanStamp
	fanDirs             = 256
)

// StatCachePath returns where a repository keeps its stat cache.
func StatCachePath(r *repo.Repo) string { return filepath.Join(r.CacheDir(), statCacheName) }

type statKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
	mode         uint32
	uid, gid     uint32
}

// matches reports whether a recorded key vouches for st: the zero key
// (an entry too new to trust when recorded) matches nothing.
func (k *statKey) matches(st *unix.Stat_t) bool {
	return *k != statKey{} && *k == keyOf(st)
}

func keyOf(st *unix.Stat_t) statKey {
	return statKey{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
		mode: st.Mode, uid: st.Uid, gid: st.Gid,
	}
}

func (k *statKey) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, k.dev)
	b = binary.LittleEndian.AppendUint64(b, k.ino)
	b = binary.LittleEndian.AppendUint64(b, uint64(k.size))
	b = binary.LittleEndian.AppendUint64(b, uint64(k.mtime))
	b = binary.LittleEndian.AppendUint64(b, uint64(k.ctime))
	b = binary.LittleEndian.AppendUint32(b, k.mode)
	b = binary.LittleEndian.AppendUint32(b, k.uid)
	return binary.LittleEndian.AppendUint32(b, k.gid)
}

func decodeKey(b []byte) statKey {
	return statKey{
		dev:   binary.LittleEndian.Uint64(b[0:]),
		ino:   binary.LittleEndian.Uint64(b[8:]),
		size:  int64(binary.LittleEndian.Uint64(b[16:])),
		mtime: int64(binary.LittleEndian.Uint64(b[24:])),
		ctime: int64(binary.LittleEndian.Uint64(b[32:])),
		mode:  binary.LittleEndian.Uint32(b[40:]),
		uid:   binary.LittleEndian.Uint32(b[44:]),
		gid:   binary.LittleEndian.Uint32(b[48:]),
	}
}

// fanStamp is the state of a fan-out directory of objects/; zero means
// none (not recorded, or the directory was too new or could not be
// stat'ed).
type fanStamp struct {
	ino          uint64
	ctime, mtime int64
}

// fanStamps stats the fan-out directories of r's objects. A directory
// whose times are not older than startNanos by the racy window gets none,
// since a change in the same tick would not move them; so does every
// directory when objects/ cannot be opened.
func fanStamps(r *repo.Repo, startNanos int64) (s [fanDirs]fanStamp) {
	fd, err := unix.Open(r.Path("objects"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return s
	}
	defer unix.Close(fd)
	const hex = "0123456789abcdef"
	for i := range s {
		var st unix.Stat_t
		name := string([]byte{hex[i>>4], hex[i&15]})
		if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && trusted(&st, startNanos) {
			s[i] = fanStamp{ino: st.Ino, ctime: st.Ctim.Nano(), mtime: st.Mtim.Nano()}
		}
	}
	return s
}

// trusted reports whether st is old enough for its entry to be recorded.
func trusted(st *unix.Stat_t, startNanos int64) bool {
	window := racyWindowNanos
	if st.Ctim.Nsec != 0 || st.Mtim.Nsec != 0 {
		window = racyWindowFineNanos
	}
	return st.Ctim.Nano() < startNanos-window && st.Mtim.Nano() < startNanos-window
}

// dirRec is one directory's record, its byte fields views into the read
// cache file (valid until close).
type dirRec struct {
	path   string // a view too: never kept past close
	keyOK  bool   // key was trusted when recorded
	mount  uint64 // mountToken of the directory when recorded
	key    statKey
	meta   repo.ID
	tree   repo.ID
	nfiles int
	files  []byte // nfiles encoded file entries, sorted by name
	ndirs  int
	dirs   []byte // ndirs encoded subdirectory entries, sorted by name
	raw    []byte // the whole record, for copying it unchanged
	seen   bool   // walked this run (each record by one worker)
}

// fileRef is a decoded file entry of a record.
type fileRef struct {
	name []byte
	key  statKey
	id   repo.ID
}

// appendFiles decodes the record's file entries onto refs.
func (r *dirRec) appendFiles(refs []fileRef) []fileRef {
	refs = slices.Grow(refs, r.nfiles)
	b := r.files
	for i := 0; i < r.nfiles; i++ {
		l, k := binary.Uvarint(b)
		var f fileRef
		f.name = b[k : k+int(l)]
		b = b[k+int(l):]
		f.key = decodeKey(b)
		copy(f.id[:], b[keySize:keySize+32])
		b = b[keySize+32:]
		refs = append(refs, f)
	}
	return refs
}

// refIndex finds a directory's file records by name: a hash of the name
// and, nearly always, one comparison, where a binary search compared it
// with log2(n) others, most sharing a long prefix with it (an unchanged
// re-commit looks up every entry of the tree).
type refIndex struct {
	seed  maphash.Seed
	slots []int32 // 1 + the index in refs of the name hashed there; 0: none
}

// index makes x find the entries of refs, whose names are distinct.
func (x *refIndex) index(refs []fileRef) {
	n := 1
	for n < 2*len(refs) {
		n <<= 1
	}
	if cap(x.slots) < n {
		x.slots = make([]int32, n)
	} else {
		x.slots = x.slots[:n]
		clear(x.slots)
	}
	mask := uint64(n - 1)
	for i := range refs {
		h := maphash.Bytes(x.seed, refs[i].name) & mask
		for x.slots[h] != 0 {
			h = (h + 1) & mask
		}
		x.slots[h] = int32(i + 1)
	}
}

// find returns the index of name in refs, as last indexed, or -1.
func (x *refIndex) find(refs []fileRef, name string) int {
	if len(refs) == 0 {
		return -1
	}
	mask := uint64(len(x.slots) - 1)
	for h := maphash.String(x.seed, name) & mask; x.slots[h] != 0; h = (h + 1) & mask {
		if i := int(x.slots[h] - 1); string(refs[i].name) == name {
			return i
		}
	}
	return -1
}

// sameDirs reports whether d's subdirectories, as built now, are exactly
// the record's: names, dirtrees and dirmetas. d's names must be sorted.
func (r *dirRec) sameDirs(d *dir) bool {
	if r.ndirs != len(d.dirNames) {
		return false
	}
	b := r.dirs
	for i, name := range d.dirNames {
		l, k := binary.Uvarint(b)
		sub := d.dirs[i]
		if string(b[k:k+int(l)]) != name {
			return false
		}
		b = b[k+int(l):]
		if repo.ID(b[:32]) != sub.tree || repo.ID(b[32:64]) != sub.meta {
			return false
		}
		b = b[64:]
	}
	return true
}

// statCache is read-only during a walk apart from each record's seen flag.
type statCache struct {
	path  string
	fp    [32]byte        // options fingerprint: records are valid only for the same one
	file  *cachefile.File // the file as read, or nil
	index map[string]*dirRec
	recs  []dirRec
	dirty bool // options changed or the file is damaged: rewrite it

	r       *repo.Repo        // the repository (nil without a cache)
	startNs int64             // the run's start, for the racy window of stamps
	stamps  [fanDirs]fanStamp // as loaded
	start   [fanDirs]fanStamp // as found when loaded
	vouched [fanDirs]bool     // the loaded stamp is unchanged: its records' objects there are stored
}

func newStatCache(path string, fp [32]byte) *statCache {
	return &statCache{path: path, fp: fp}
}

// present reports whether the object id, which a record of the cache
// names, is stored (or staged by txn): unchecked when its fan-out
// directory is unchanged since the cache stamped it, else checked.
func (c *statCache) present(txn *repo.Txn, kind repo.Kind, id repo.ID) bool {
	if c.vouched[id[0]] {
		return true
	}
	// An error counts as absent: the write that follows meets it.
	ok, err := txn.Has(kind, id)
	return ok && err == nil
}

// stampObjects stamps the fan-out directories of r's objects as the run
// starting at startNanos finds them, and notes which of the loaded stamps
// still hold.
func (c *statCache) stampObjects(r *repo.Repo, startNanos int64) {
	c.r, c.startNs = r, startNanos
	c.start = fanStamps(r, startNanos)
	for i, s := range c.start {
		c.vouched[i] = s != fanStamp{} && s == c.stamps[i]
	}
}

// stamped counts the fan-out directories whose objects the loaded stamps
// vouch for.
func (c *statCache) stamped() int {
	n := 0
	for _, v := range c.vouched {
		if v {
			n++
		}
	}
	return n
}

// cachedTxn is a transaction with Present, which answers through the stat
// cache's stamps: what a dirtree written from cache records needs.
type cachedTxn struct {
	*repo.Txn
	cache *statCache
}

// Present reports whether id, which a record of the cache names, is stored.
func (t cachedTxn) Present(kind repo.Kind, id repo.ID) bool {
	return t.cache.present(t.Txn, kind, id)
}

// dir returns the record of the directory at path, or nil.
func (c *statCache) dir(path string) *dirRec {
	return c.index[path]
}

// loadStatCache reads the cache file; a missing, foreign or damaged file
// gives an empty cache (it is only ever an optimisation). The fan-out
// directories of r's objects are stamped as the run starting at
// startNanos finds them.
func loadStatCache(path string, fp [32]byte, r *repo.Repo, startNanos int64) *statCache {
	c := newStatCache(path, fp)
	f, err := cachefile.Map(path, statCacheMagic)
	if err != nil {
		c.dirty = errors.Is(err, cachefile.ErrDamaged) || errors.Is(err, cachefile.ErrOtherOwner)
	} else {
		c.file = f
		if !c.parse(f.Body) {
			c.close()
			c = newStatCache(path, fp)
			c.dirty = true
		}
	}
	c.stampObjects(r, startNanos)
	return c
}

// parse indexes the read file's records (b: after the magic); false if
// it is not a valid cache made with the same options.
func (c *statCache) parse(b []byte) bool {
	if len(b) < 32+fanDirs*stampSize || [32]byte(b[:32]) != c.fp {
		return false
	}
	b = b[32:]
	for i := range c.stamps {
		c.stamps[i] = fanStamp{
			ino:   binary.LittleEndian.Uint64(b),
			ctime: int64(binary.LittleEndian.Uint64(b[8:])),
			mtime: int64(binary.LittleEndian.Uint64(b[16:])),
		}
		b = b[stampSize:]
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return false
	}
	b = b[k:]
	c.recs = make([]dirRec, 0, n)
	for len(b) > 0 {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return false
		}
		rec, ok := parseRecord(b[k : k+int(l)])
		if !ok {
			return false
		}
		c.recs = append(c.recs, rec)
		b = b[k+int(l):]
	}
	c.index = make(map[string]*dirRec, len(c.recs))
	for i := range c.recs {
		c.index[c.recs[i].path] = &c.recs[i]
	}
	return true
}

// parseRecord decodes a record's fixed part and checks that its entries
// lie within it (they are decoded when their directory is walked).
func parseRecord(raw []byte) (dirRec, bool) {
	r := dirRec{raw: raw}
	b := raw
	l, k := binary.Uvarint(b)
	if k <= 0 || l > statCacheMaxPath || l > uint64(len(b)-k) {
		return r, false
	}
	r.path = unsafe.String(unsafe.SliceData(b[k:]), int(l))
	b = b[k+int(l):]
	if len(b) < 9+keySize+64 {
		return r, false
	}
	r.keyOK = b[0] == 1
	r.mount = binary.LittleEndian.Uint64(b[1:])
	r.key = decodeKey(b[9:])
	copy(r.meta[:], b[9+keySize:])
	copy(r.tree[:], b[9+keySize+32:])
	b = b[9+keySize+64:]
	var ok bool
	if r.nfiles, r.files, b, ok = entries(b, keySize+32); !ok {
		return r, false
	}
	if r.ndirs, r.dirs, b, ok = entries(b, 64); !ok {
		return r, false
	}
	return r, len(b) == 0
}

// entries splits a count-prefixed list of (uvarint name length, name,
// fixed bytes) entries off b, checking names are sorted and unique.
func entries(b []byte, fixed int) (n int, list, rest []byte, ok bool) {
	cnt, k := binary.Uvarint(b)
	if k <= 0 || cnt > uint64(len(b)) {
		return 0, nil, nil, false
	}
	b = b[k:]
	start := b
	var prev []byte
	for i := uint64(0); i < cnt; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || l == 0 || l > uint64(len(b)-k) || uint64(len(b)-k)-l < uint64(fixed) {
			return 0, nil, nil, false
		}
		name := b[k : k+int(l)]
		if i > 0 && bytes.Compare(prev, name) >= 0 {
			return 0, nil, nil, false
		}
		prev = name
		b = b[k+int(l)+fixed:]
	}
	return int(cnt), start[:len(start)-len(b)], b, true
}

// close frees the file's content; no view of it may be used afterwards.
func (c *statCache) close() {
	c.index, c.recs = nil, nil
	c.file.Close()
	c.file = nil
}

// save writes the cache for the tree this run built from the directories
// under roots: a record per walked directory, plus the old records outside
// those roots (so committing several trees keeps them all). Nothing is
// written when every record would stay as it was.
func (c *statCache) save(roots []string, root *dir) error {
	if c.path == "" {
		return nil
	}
	under := func(p string) bool {
		for _, r := range roots {
			if r == "/" || p == r || strings.HasPrefix(p, r+"/") {
				return true
			}
		}
		return false
	}
	s := &cacheWriter{changed: c.dirty}
	if len(roots) > 1 {
		s.done = map[string]bool{} // sources may walk one directory twice
	}
	s.add(root)
	// Old records under a root were walked and written again by add, or
	// are of directories that are gone.
	var carried []*dirRec // kept as they were: this run checked none of their ids
	gone := c.goneTrees(under)
	for i := range c.recs {
		r := &c.recs[i]
		if !under(r.path) && !gone(r.path) {
			s.records = append(s.records, r.raw)
			carried = append(carried, r)
		} else if !r.seen {
			s.changed = true
		}
	}
	// Each directory keeps the stamp the run found it with: the run
	// checked (or stored) every object the walked records name there
	// since, and a change since moved it. The carried records' objects
	// are checked where the loaded stamp does not vouch for them, and
	// only when the file is written: the check only takes stamps away.
	stamps := c.start
	if !s.changed && !c.stampsGained(&stamps) {
		return nil
	}
	c.checkCarried(&stamps, carried)
	// The file is built in one buffer of its exact size (and the checksum
	// cachefile.Write appends): grown by append, a cache of tens of MiB
	// would be allocated about five times over, with the two largest
	// copies live at once.
	size := len(statCacheMagic) + len(c.fp) + fanDirs*stampSize + binary.MaxVarintLen64 + 4
	for _, r := range s.records {
		size += binary.MaxVarintLen64 + len(r)
	}
	out := make([]byte, 0, size)
	out = append(out, statCacheMagic...)
	out = append(out, c.fp[:]...)
	for _, st := range stamps {
		out = binary.LittleEndian.AppendUint64(out, st.ino)
		out = binary.LittleEndian.AppendUint64(out, uint64(st.ctime))
		out = binary.LittleEndian.AppendUint64(out, uint64(st.mtime))
	}
	out = binary.AppendUvarint(out, uint64(len(s.records)))
	for _, r := range s.records {
		out = binary.AppendUvarint(out, uint64(len(r)))
		out = append(out, r...)
	}
	if err := cachefile.Write(c.path, out); err != nil {
		return fmt.Errorf("saving stat cache: %w", err)
	}
	return nil
}

// stampSlack is how many more fan-out directories new stamps must vouch
// for than the loaded ones still do before they are worth rewriting a
// cache whose records did not change: each commit writes into a few, and
// rewriting megabytes of records costs more than checking the objects of
// a few directories one by one.
const stampSlack = 8

// stampsGained reports whether stamps vouch for stampSlack more fan-out
// directories than the loaded stamps still do.
func (c *statCache) stampsGained(stamps *[fanDirs]fanStamp) bool {
	n := 0
	for _, s := range stamps {
		if s != (fanStamp{}) {
			n++
		}
	}
	return n >= c.stamped()+stampSlack
}

// checkCarried takes from stamps each fan-out directory that an object
// the records carried name is missing from, unless the loaded stamp
// vouches for the directory.
func (c *statCache) checkCarried(stamps *[fanDirs]fanStamp, carried []*dirRec) {
	if len(carried) == 0 {
		return
	}
	check := func(kind repo.Kind, id repo.ID) {
		i := id[0]
		if c.vouched[i] || stamps[i] == (fanStamp{}) {
			return
		}
		if ok, err := c.r.HasObject(kind, id); !ok || err != nil {
			stamps[i] = fanStamp{}
		}
	}
	var refs []fileRef
	for _, r := range carried {
		check(repo.KindDirTree, r.tree)
		check(repo.KindDirMeta, r.meta)
		refs = r.appendFiles(refs[:0])
		for _, f := range refs {
			check(repo.KindFile, f.id)
		}
		b := r.dirs
		for j := 0; j < r.ndirs; j++ {
			l, k := binary.Uvarint(b)
			b = b[k+int(l):]
			check(repo.KindDirTree, repo.ID(b[:32]))
			check(repo.KindDirMeta, repo.ID(b[32:64]))
			b = b[64:]
		}
	}
}

// goneTrees returns whether the record of a directory outside the roots
// belongs to a tree that is gone: one whose topmost recorded directory is
// no longer a directory (through symlinks: a source given as a link to a
// directory is recorded under the link). Those records are dropped rather
// than carried, or a build committing a fresh directory each time would
// grow the cache, and the checks of each save, by a tree per commit. Only
// each tree's topmost directory is looked at, once; a directory gone
// below one still there loses its record when that tree is committed
// again.
func (c *statCache) goneTrees(under func(string) bool) func(path string) bool {
	var recorded map[string]bool // made at the first record outside the roots, if any
	tops := map[string]bool{}    // topmost directory: gone
	// A path's topmost recorded directory, once found: each record looks
	// up only its parent, where climbing every time would cost a tree
	// thousands of directories deep time cubic in its depth.
	topOf := map[string]string{}
	var climbed []string
	return func(p string) bool {
		if recorded == nil {
			recorded = map[string]bool{}
			for i := range c.recs {
				if q := c.recs[i].path; !under(q) {
					recorded[q] = true
				}
			}
		}
		climbed = climbed[:0]
		for {
			if top, ok := topOf[p]; ok {
				p = top
				break
			}
			climbed = append(climbed, p)
			parent := filepath.Dir(p)
			if parent == p || !recorded[parent] {
				break
			}
			p = parent
		}
		for _, q := range climbed {
			topOf[q] = p
		}
		g, ok := tops[p]
		if !ok {
			var st unix.Stat_t
			err := unix.Stat(p, &st)
			g = err == unix.ENOENT || err == unix.ENOTDIR || err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR
			tops[p] = g
		}
		return g
	}
}

// cacheWriter collects the records of a save.
type cacheWriter struct {
	records [][]byte
	done    map[string]bool // with several roots: paths recorded (a directory walked twice is kept once)
	changed bool
}

// add records d and the walked directories below it.
func (s *cacheWriter) add(d *dir) {
	if !d.stored.IsZero() {
		return // from a commit, not walked
	}
	if len(d.path) > statCacheMaxPath {
		// Its record would make the whole file one that loading refuses,
		// every tree's records lost; those below have longer paths still.
		return
	}
	if d.path != "" && !s.done[d.path] {
		if s.done != nil {
			s.done[d.path] = true
		}
		if r := d.rec; r != nil && d.filesClean && d.tree == r.tree && d.meta == r.meta && d.key == r.key && d.keyOK == r.keyOK && d.mount == r.mount {
			s.records = append(s.records, r.raw)
		} else {
			s.changed = true
			s.records = append(s.records, d.record())
		}
	}
	for _, sub := range d.dirs {
		s.add(sub)
	}
}

// record encodes d's cache record (d has been written: its tree is set).
func (d *dir) record() []byte {
	b := binary.AppendUvarint(nil, uint64(len(d.path)))
	b = append(b, d.path...)
	if d.keyOK {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.LittleEndian.AppendUint64(b, d.mount)
	b = d.key.append(b)
	b = append(b, d.meta[:]...)
	b = append(b, d.tree[:]...)
	if d.filesClean {
		// Every entry is the record's, unchanged.
		b = binary.AppendUvarint(b, uint64(d.rec.nfiles))
		b = append(b, d.rec.files...)
	} else {
		// Every entry, so that the record lists the dirtree exactly: one
		// too new to trust has the zero key, which matches nothing, and
		// keeps the record from vouching for the dirtree until it ages.
		b = binary.AppendUvarint(b, uint64(len(d.fileNames)))
		for i, name := range d.fileNames {
			b = binary.AppendUvarint(b, uint64(len(name)))
			b = append(b, name...)
			b = d.fileKeys[i].append(b)
			b = append(b, d.fileIDs[i][:]...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(d.dirNames)))
	for i, name := range d.dirNames {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = append(b, d.dirs[i].tree[:]...)
		b = append(b, d.dirs[i].meta[:]...)
	}
	return b
}
