package commit

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// The stat cache remembers, per source path, the stat fields of a regular
// file and the id of the object it hashed to, so that re-committing a tree
// whose files did not change costs a stat per file instead of a read.
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
//
// Prune and fsck --delete empty the repository's cache directory because
// they may remove objects the cache names; every user of the cache holds the
// repository lock shared, so neither runs while a commit does.

const (
	statCacheName       = "stat-cache"
	statCacheMagic      = "otree-statcache2"
	racyWindowNanos     = int64(2e9) // filesystems with whole-second times
	racyWindowFineNanos = int64(1e8) // nanosecond times: a tick is at most 10 ms
	statCacheMaxPath    = 1 << 16
)

// StatCachePath returns where a repository keeps its stat cache.
func StatCachePath(r *repo.Repo) string { return filepath.Join(r.CacheDir(), statCacheName) }

var (
	zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
)

type statKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
	mode         uint32
	uid, gid     uint32
}

// statEntry is a regular file's object id, or a directory's dirmeta id
// (id) and the dirtree it last produced (tree).
type statEntry struct {
	key  statKey
	id   repo.ID
	tree repo.ID
}

// statCache is read-mostly during a walk: lookups touch only the loaded
// index and mark entries seen (each slot written by one worker); entries for
// newly hashed files go to fresh under a mutex.
type statCache struct {
	path  string
	fp    [32]byte // options fingerprint: entries are valid only for the same one
	index map[string]int32
	paths []string
	ents  []statEntry
	seen  []bool
	mu    sync.Mutex
	fresh map[string]statEntry
	dirty bool
}

func newStatCache(path string, fp [32]byte) *statCache {
	return &statCache{path: path, fp: fp, index: map[string]int32{}, fresh: map[string]statEntry{}}
}

func keyOf(st *unix.Stat_t) statKey {
	return statKey{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
		mode: st.Mode, uid: st.Uid, gid: st.Gid,
	}
}

// loadStatCache reads the cache; a missing, foreign or damaged file gives an
// empty cache (it is only ever an optimisation).
func loadStatCache(path string, fp [32]byte) *statCache {
	c := newStatCache(path, fp)
	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte(statCacheMagic)) {
		return c
	}
	raw, err := zstdDec.DecodeAll(data[len(statCacheMagic):], nil)
	if err != nil || len(raw) < 64 {
		return c
	}
	body, sum := raw[:len(raw)-32], raw[len(raw)-32:]
	if hash.Sum(body) != [32]byte(sum) {
		return c
	}
	if [32]byte(body[:32]) != fp {
		c.dirty = true // options changed: rewrite
		return c
	}
	// Paths are slices of one string over the decoded body, not copies:
	// the body is never written again, and on /usr this saves tens of MB.
	all := unsafe.String(&body[0], len(body))
	off := 32
	n, k := binary.Uvarint(body[off:])
	if k <= 0 || n > uint64(len(body)) {
		return c
	}
	off += k
	paths := make([]string, 0, n)
	ents := make([]statEntry, 0, n)
	const fixed = 8*5 + 4*3 + 32 + 32
	for off < len(body) {
		l, k := binary.Uvarint(body[off:])
		if k <= 0 || l > statCacheMaxPath || uint64(len(body)-off-k) < l+fixed {
			return c
		}
		p := all[off+k : off+k+int(l)]
		b := body[off+k+int(l):]
		var e statEntry
		e.key.dev = binary.LittleEndian.Uint64(b[0:])
		e.key.ino = binary.LittleEndian.Uint64(b[8:])
		e.key.size = int64(binary.LittleEndian.Uint64(b[16:]))
		e.key.mtime = int64(binary.LittleEndian.Uint64(b[24:]))
		e.key.ctime = int64(binary.LittleEndian.Uint64(b[32:]))
		e.key.mode = binary.LittleEndian.Uint32(b[40:])
		e.key.uid = binary.LittleEndian.Uint32(b[44:])
		e.key.gid = binary.LittleEndian.Uint32(b[48:])
		copy(e.id[:], b[52:84])
		copy(e.tree[:], b[84:116])
		paths = append(paths, p)
		ents = append(ents, e)
		off += k + int(l) + fixed
	}
	c.index = make(map[string]int32, len(paths))
	for i, p := range paths {
		c.index[p] = int32(i)
	}
	c.paths, c.ents, c.seen = paths, ents, make([]bool, len(paths))
	return c
}

// lookup returns the cached id for path if its stat still matches.
func (c *statCache) lookup(path []byte, st *unix.Stat_t) (repo.ID, bool) {
	i, ok := c.index[string(path)]
	if !ok || c.ents[i].key != keyOf(st) {
		return repo.ID{}, false
	}
	c.seen[i] = true
	return c.ents[i].id, true
}

// lookupDir returns the dirmeta id of a directory and the dirtree it had
// last time, if its stat still matches. The dirmeta is exact (mode, owner
// and xattr changes move ctime); the dirtree is only a hint, compared with
// the tree computed now, that spares an existence check when they agree.
func (c *statCache) lookupDir(path string, st *unix.Stat_t) (meta, tree repo.ID, ok bool) {
	i, ok := c.index[path]
	if !ok || c.ents[i].key != keyOf(st) || c.ents[i].tree.IsZero() {
		return repo.ID{}, repo.ID{}, false
	}
	c.seen[i] = true
	return c.ents[i].id, c.ents[i].tree, true
}

// trusted reports whether st is old enough for its entry to be recorded.
func trusted(st *unix.Stat_t, startNanos int64) bool {
	window := racyWindowNanos
	if st.Ctim.Nsec != 0 || st.Mtim.Nsec != 0 {
		window = racyWindowFineNanos
	}
	return st.Ctim.Nano() < startNanos-window && st.Mtim.Nano() < startNanos-window
}

// record remembers a freshly hashed file unless it is too new to trust.
func (c *statCache) record(path string, st *unix.Stat_t, id repo.ID, startNanos int64) {
	if c.path == "" || !trusted(st, startNanos) {
		return
	}
	c.mu.Lock()
	c.fresh[path] = statEntry{key: keyOf(st), id: id}
	c.dirty = true
	c.mu.Unlock()
}

// recordDir remembers a directory's dirmeta and dirtree ids.
func (c *statCache) recordDir(path string, key statKey, meta, tree repo.ID) {
	if c.path == "" {
		return
	}
	c.mu.Lock()
	if i, ok := c.index[path]; ok && c.seen[i] && c.ents[i].key == key && c.ents[i].tree == tree {
		c.mu.Unlock()
		return // unchanged
	}
	c.fresh[path] = statEntry{key: key, id: meta, tree: tree}
	c.dirty = true
	c.mu.Unlock()
}

// save writes the new cache: this run's entries plus old entries outside
// the roots this run walked (so committing several trees keeps them all).
// Nothing is written when nothing changed.
func (c *statCache) save(roots []string) error {
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
	if !c.dirty {
		// Nothing new: rewrite only if an entry under a root went unseen
		// (a file deleted or changed). Scanning the seen flags is cheap.
		for i, seen := range c.seen {
			if !seen && under(c.paths[i]) {
				c.dirty = true
				break
			}
		}
		if !c.dirty {
			return nil
		}
	}
	// Keep seen entries and those outside this run's roots; an unseen
	// entry under a root is a deleted or changed file: drop it.
	keep := make([]bool, len(c.paths))
	for i, p := range c.paths {
		_, replaced := c.fresh[p]
		keep[i] = !replaced && (c.seen[i] || !under(p))
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	w.Write(c.fp[:])
	var tmp [binary.MaxVarintLen64]byte
	total := len(c.fresh)
	for _, k := range keep {
		if k {
			total++
		}
	}
	w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(total))])
	var b [116]byte
	put := func(p string, e statEntry) {
		w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(p)))])
		w.WriteString(p)
		binary.LittleEndian.PutUint64(b[0:], e.key.dev)
		binary.LittleEndian.PutUint64(b[8:], e.key.ino)
		binary.LittleEndian.PutUint64(b[16:], uint64(e.key.size))
		binary.LittleEndian.PutUint64(b[24:], uint64(e.key.mtime))
		binary.LittleEndian.PutUint64(b[32:], uint64(e.key.ctime))
		binary.LittleEndian.PutUint32(b[40:], e.key.mode)
		binary.LittleEndian.PutUint32(b[44:], e.key.uid)
		binary.LittleEndian.PutUint32(b[48:], e.key.gid)
		copy(b[52:], e.id[:])
		copy(b[84:], e.tree[:])
		w.Write(b[:])
	}
	for i, p := range c.paths {
		if keep[i] {
			put(p, c.ents[i])
		}
	}
	for p, e := range c.fresh {
		put(p, e)
	}
	w.Flush()
	sum := hash.Sum(buf.Bytes())
	buf.Write(sum[:])
	// Paths share long prefixes: compressed, the cache is a few bytes per
	// file. It needs no fsync: a torn file fails its checksum and is ignored.
	out := zstdEnc.EncodeAll(buf.Bytes(), []byte(statCacheMagic))
	if err := durable.WriteFile(c.path, out, 0o644, false); err != nil {
		return fmt.Errorf("saving stat cache: %w", err)
	}
	return nil
}
