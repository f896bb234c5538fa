package repo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Config keys of the free-space reserve, OSTree's: a transaction refuses
// to write objects that would leave less than the reserve free on the
// repository's filesystem, so that a commit or pull cannot fill the disk
// a running system needs.
const (
	// ConfigMinFreePercent is a whole percentage (0-99) of the
	// filesystem's size; default 3 when ConfigMinFreeSize is not set
	// either.
	ConfigMinFreePercent = "core.min-free-space-percent"
	// ConfigMinFreeSize is a size such as "500MB", "2GB" or "1TB"
	// (powers of 2); when set to more than 0, ConfigMinFreePercent is
	// ignored.
	ConfigMinFreeSize = "core.min-free-space-size"

	defaultMinFreePercent = 3
)

// ErrMinFreeSpace is matched by the error of a write that would leave the
// repository's filesystem with less free space than its reserve.
var ErrMinFreeSpace = errors.New("the free-space reserve would be exceeded")

// spaceBudget is what a transaction may still write before the reserve
// is reached: the filesystem's available bytes when the transaction began,
// less the reserve. Every byte written counts, and a block per object.
type spaceBudget struct {
	left  atomic.Int64
	block int64
	what  string // the setting, for errors: `core.min-free-space-percent=3%`
	repo  string
}

// take counts n bytes about to be written against the budget, failing
// (and counting nothing) when they do not fit. A nil budget (no reserve)
// never fails.
func (b *spaceBudget) take(n int64) error {
	if b == nil {
		return nil
	}
	if left := b.left.Add(-n); left < 0 {
		b.left.Add(n) // not written
		return fmt.Errorf("repository %s: writing %d more bytes would leave less free space than %s: %w", b.repo, n, b.what, ErrMinFreeSpace)
	}
	return nil
}

// give returns n bytes to the budget: a temporary file was removed.
func (b *spaceBudget) give(n int64) {
	if b != nil {
		b.left.Add(n)
	}
}

// ReserveSpace counts n bytes of a temporary file (a download kept while
// it is verified) against the transaction's free-space reserve, failing
// with ErrMinFreeSpace when they do not fit, and returns the function
// that gives them back once the file is gone.
func (t *Txn) ReserveSpace(n int64) (release func(), err error) {
	if err := t.space.take(n); err != nil {
		return nil, err
	}
	return func() { t.space.give(n) }, nil
}

// object counts one new object's block beyond its bytes: a file ends in a
// partly used block, and a symlink or empty file takes an inode.
func (b *spaceBudget) object() error {
	if b == nil {
		return nil
	}
	return b.take(b.block)
}

// unhonouredKeys are OSTree's core keys that otree does not act on, each
// with the one value that asks for what otree does anyway ("" for none)
// and what otree does instead. CheckConfigValue refuses any other value,
// so that setting one does not pass for having taken effect.
var unhonouredKeys = map[string]struct{ same, instead string }{
	"core.disable-xattrs":         {"false", "xattrs are stored and checked out as the repository's mode says"},
	"core.payload-link-threshold": {"", "otree makes no payload links between objects"},
	"core.add-remotes-config-dir": {"false", "remote add writes remotes to the repository's config; remotes.d files are read, never written"},
	"core.locking":                {"true", "otree always locks the repository"},
	"core.parent": {"", "otree reads the objects and remotes of this repository alone; " +
		"pull-local from the other repository, or pull -L it as a local cache"},
}

// sameSetting tells whether value asks for what want does: the same
// string, or the same boolean in another of GLib's spellings (1 for
// true, 0 for false), which OSTree reads alike.
func sameSetting(key, value, want string) bool {
	if value == want {
		return true
	}
	v, err := parseBool(key, value)
	w, werr := parseBool(key, want)
	return err == nil && werr == nil && v == w
}

// CheckConfigValue checks value for the config keys whose values otree
// reads with rules of their own (the free-space reserve, durability and
// other booleans, the lock timeout, the tmp expiry and the collection ID), so that a bad value is refused
// when it is set rather than when a later write reads it, and OSTree's
// keys otree does not act on (core.disable-xattrs, core.locking, ...)
// unless set to what otree does anyway. Other keys accept any value.
func CheckConfigValue(key, value string) error {
	var err error
	switch key {
	case ConfigMinFreePercent:
		_, err = parsePercent(value)
	case ConfigMinFreeSize:
		_, err = parseSize(value)
	case ConfigFsync, ConfigPerObjectFsync, ConfigAutoUpdateSummary, ConfigCommitUpdateSummary, ConfigTombstoneCommits, ConfigNoDeltasInSummary, ConfigUncompressedCache:
		_, err := parseBool(key, value)
		return err
	case ConfigLockTimeout:
		if n, perr := strconv.Atoi(value); perr != nil || n < -1 {
			err = errors.New("want a whole number of seconds, or -1 to wait without limit")
		}
	case ConfigTmpExpiry:
		_, err = parseTmpExpiry(value)
	case collectionKey:
		return ValidateCollectionID(value)
	default:
		if u, ok := unhonouredKeys[key]; ok && !sameSetting(key, value, u.same) {
			err = fmt.Errorf("otree does not act on this OSTree key: %s", u.instead)
		}
	}
	if err != nil {
		return fmt.Errorf("config %s=%q: %v", key, value, err)
	}
	return nil
}

// parsePercent parses a min-free-space-percent value.
func parsePercent(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 99 {
		return 0, errors.New("want a whole percentage from 0 to 99")
	}
	return n, nil
}

// parseSize parses a min-free-space-size value: a decimal number of MB,
// GB or TB (powers of 2: 1MB is 1 MiB), OSTree's syntax.
func parseSize(v string) (int64, error) {
	units := map[string]uint{"MB": 20, "GB": 30, "TB": 40}
	for u, shift := range units {
		if num, ok := strings.CutSuffix(v, u); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err == nil && n >= 0 && n < 1<<(63-shift) {
				return n << shift, nil
			}
		}
	}
	return 0, fmt.Errorf("want a whole number followed by MB, GB or TB (such as 500MB)")
}

// newSpaceBudget reads the reserve from the config and the filesystem's
// free space. It returns nil when the reserve is zero.
func (r *Repo) newSpaceBudget() (*spaceBudget, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(r.Path("objects"), &st); err != nil {
		return nil, fmt.Errorf("repository %s: checking free space: %w", r.path, err)
	}
	bsize := int64(st.Bsize)
	b := &spaceBudget{block: max(bsize, 1), repo: r.path}
	bad := func(key, v string, err error) error {
		return fmt.Errorf("repository %s: config %s=%q: %v", r.path, key, v, err)
	}
	var reserve int64
	v, sized := r.config.Get(ConfigMinFreeSize)
	if sized {
		n, err := parseSize(v)
		if err != nil {
			return nil, bad(ConfigMinFreeSize, v, err)
		}
		reserve, b.what = n, fmt.Sprintf("%s=%s", ConfigMinFreeSize, v)
	}
	// A size of 0 leaves the reserve to the percentage, as in OSTree,
	// whose default of 3% applies only when neither key is set: 0MB
	// alone is no reserve.
	if reserve == 0 {
		pct := defaultMinFreePercent
		if sized {
			pct = 0
		}
		if v, ok := r.config.Get(ConfigMinFreePercent); ok {
			n, err := parsePercent(v)
			if err != nil {
				return nil, bad(ConfigMinFreePercent, v, err)
			}
			pct = n
		}
		// Rounded up to a whole block, as a reserve should be.
		reserve = (int64(st.Blocks)*int64(pct) + 99) / 100 * bsize
		b.what = fmt.Sprintf("%s=%d%%", ConfigMinFreePercent, pct)
	}
	if reserve == 0 {
		return nil, nil
	}
	b.left.Store(int64(st.Bavail)*bsize - reserve)
	return b, nil
}

// StoredBytes is what a stored file of stat st takes on disk, as prune and
// diff --stats count it: its size, but for a file with holes (a sparse
// object, whose allocated blocks fall short of its size by more than a
// block) the bytes of its blocks, since the holes take nothing.
func StoredBytes(st *unix.Stat_t) int64 {
	if used := st.Blocks * 512; used+int64(st.Blksize) < st.Size {
		return used
	}
	return st.Size
}
