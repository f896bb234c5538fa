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
// racyWindow; newer files are simply hashed again next time.
//
// Prune and fsck --delete empty the repository's cache directory because
// they may remove objects the cache names; every user of the cache holds the
// repository lock shared, so neither runs while a commit does.

const (
	statCacheName    = "stat-cache"
	statCacheMagic   = "otree-statcache1"
	racyWindowNanos  = int64(2e9)
	statCacheMaxPath = 1 << 16
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

type statEntry struct {
	key statKey
	id  repo.ID
}

type statCache struct {
	path  string
	fp    [32]byte // options fingerprint: entries are valid only for the same one
	old   map[string]statEntry
	mu    sync.Mutex
	fresh map[string]statEntry
	dirty bool
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
	c := &statCache{path: path, fp: fp, old: map[string]statEntry{}, fresh: map[string]statEntry{}}
	data, err := os.ReadFile(path)
	if err != nil || len(data) < len(statCacheMagic)+64 {
		return c
	}
	body, sum := data[:len(data)-32], data[len(data)-32:]
	if hash.Sum(body) != [32]byte(sum) || !bytes.HasPrefix(body, []byte(statCacheMagic)) {
		return c
	}
	body = body[len(statCacheMagic):]
	if [32]byte(body[:32]) != fp {
		c.dirty = true // options changed: rewrite
		return c
	}
	body = body[32:]
	n, k := binary.Uvarint(body)
	if k <= 0 {
		return c
	}
	body = body[k:]
	m := make(map[string]statEntry, n)
	const fixed = 8*5 + 4*3 + 32
	for len(body) > 0 {
		l, k := binary.Uvarint(body)
		if k <= 0 || l > statCacheMaxPath || uint64(len(body)-k) < l+fixed {
			return c
		}
		p := string(body[k : k+int(l)])
		b := body[k+int(l):]
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
		m[p] = e
		body = b[fixed:]
	}
	c.old = m
	return c
}

// lookup returns the cached id for path if its stat still matches.
func (c *statCache) lookup(path string, st *unix.Stat_t) (repo.ID, bool) {
	e, ok := c.old[path]
	if !ok || e.key != keyOf(st) {
		return repo.ID{}, false
	}
	return e.id, true
}

// keep carries an unchanged entry over to the new cache. Callers batch
// these per directory to keep lock traffic low.
func (c *statCache) keep(paths []string, ents []statEntry) {
	c.mu.Lock()
	for i, p := range paths {
		c.fresh[p] = ents[i]
	}
	c.mu.Unlock()
}

// record remembers a freshly hashed file unless it is too new to trust.
func (c *statCache) record(path string, st *unix.Stat_t, id repo.ID, startNanos int64) {
	if st.Ctim.Nano() >= startNanos-racyWindowNanos || st.Mtim.Nano() >= startNanos-racyWindowNanos {
		return
	}
	c.mu.Lock()
	c.fresh[path] = statEntry{keyOf(st), id}
	c.dirty = true
	c.mu.Unlock()
}

// save writes the new cache: this run's entries plus old entries outside
// the roots this run walked (so committing several trees keeps them all).
// Nothing is written when nothing changed.
func (c *statCache) save(roots []string) error {
	for p := range c.old {
		if _, seen := c.fresh[p]; seen {
			continue
		}
		under := false
		for _, r := range roots {
			if p == r || strings.HasPrefix(p, r+"/") || r == "/" {
				under = true
				break
			}
		}
		if under {
			c.dirty = true // a file was deleted (or became uncacheable)
		} else {
			c.fresh[p] = c.old[p]
		}
	}
	if !c.dirty {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	w.WriteString(statCacheMagic)
	w.Write(c.fp[:])
	var tmp [binary.MaxVarintLen64]byte
	w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(c.fresh)))])
	var b [84]byte
	for p, e := range c.fresh {
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
		w.Write(b[:])
	}
	w.Flush()
	sum := hash.Sum(buf.Bytes())
	buf.Write(sum[:])
	// A cache needs no fsync: a torn file fails its checksum and is ignored.
	if err := durable.WriteFile(c.path, buf.Bytes(), 0o644, false); err != nil {
		return fmt.Errorf("saving stat cache: %w", err)
	}
	return nil
}
