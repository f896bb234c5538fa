// Package repo is otree's object store: a directory holding content-addressed
// file, dirtree, dirmeta and commit objects, refs naming commits, and the
// transactions that add to it durably. See docs/FORMAT.md for the layout.
package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/limitread"
	"github.com/otree/otree/internal/workq"
	"github.com/otree/otree/internal/zenc"
	"golang.org/x/sys/unix"
)

// Mode says how file objects are stored on disk.
type Mode int

// The repository modes.
const (
	// ModeBare stores files with their real owner, mode and xattrs; it needs
	// root to write and is what a host's system repository uses.
	ModeBare Mode = iota + 1
	// ModeBareUser stores files owned by the repository's user, with the true
	// owner, mode and xattrs in the user.otreemeta xattr and setuid stripped.
	ModeBareUser
	// ModeBareUserOnly records no owner or xattrs and canonical permissions.
	ModeBareUserOnly
	// ModeArchive stores each file as its header followed by zstd content.
	ModeArchive
)

var modeNames = [...]string{"", "bare", "bare-user", "bare-user-only", "archive"}

// String returns the mode's name as in the config ("bare-user").
func (m Mode) String() string {
	if m > 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode parses a mode name as `otree init --mode` takes it. OSTree's
// "archive-z2" is accepted as a synonym of "archive".
func ParseMode(s string) (Mode, error) {
	if s == "archive-z2" {
		return ModeArchive, nil
	}
	for i, n := range modeNames {
		if i > 0 && n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown repository mode %q (want bare, bare-user, bare-user-only or archive)", s)
}

// repoVersion is the layout version written to core.repo_version.
const repoVersion = 1

// defaultLockTimeout is how long a lock is waited for when
// core.lock-timeout-secs does not say.
const defaultLockTimeout = 30 * time.Second

// ConfigLockTimeout is OSTree's config key for how long, in whole
// seconds, a lock another process holds is waited for before an
// operation fails with ErrLocked; 0 tries once, -1 waits without limit.
// Absent, 30 seconds.
const ConfigLockTimeout = "core.lock-timeout-secs"

// UserMetaXattr holds the true header of a file object in bare-user mode.
const UserMetaXattr = "user.otreemeta"

// Repo is an open repository. It is safe for concurrent use.
type Repo struct {
	path   string
	mode   Mode
	config *Config
	// objFd is the objects/ directory, for *at syscalls; -1 once closed,
	// so that a use after Close never reaches a reused descriptor number.
	objFd atomic.Int32
	// readOnly is why objects/ cannot be written (EROFS, EACCES); nil
	// when it can.
	readOnly error

	// Set by SetVerify and SetLockTimeout while other goroutines read them.
	verify      atomic.Bool
	lockTimeout atomic.Int64 // a time.Duration
	// refsHeld counts the LockRefs locks held through this Repo, under
	// refsMu. While one is held, ref writes through the Repo take no refs
	// lock of their own but hold refsBorrow shared, which unlocking the
	// last one waits for (holdRefs, countRefsLock).
	refsMu     sync.Mutex
	refsHeld   int
	refsBorrow sync.RWMutex

	encOnce sync.Once
	enc     *zstd.Encoder
	decs    sync.Pool
	encPool sync.Pool

	spreadOnce sync.Once // see spreadStaging

	remotesDir atomic.Pointer[[2]string] // root and directory, see SetRemotesDirIn; nil: none

	log atomic.Pointer[slog.Logger] // see SetLogger; nil: none
}

// InitOptions configure Init.
type InitOptions struct {
	Mode Mode // default ModeBareUser
	// CollectionID, if set, names the repository's refs globally (see
	// ValidateCollectionID); commits made in it are bound to it.
	CollectionID string
}

// Init creates a repository at path (an empty or missing directory) and
// opens it. A directory that already holds a repository gives an error
// wrapping ErrExists; one that holds anything else, one wrapping
// ErrNotEmpty, and is left as it was. Only a lost+found, and what an
// interrupted Init left before writing the config, are carried on from.
// An empty path is refused rather than taken as the current directory.
func Init(path string, opts InitOptions) (*Repo, error) {
	if path == "" {
		// A path left unset: the directory checks below would find no
		// directory "" and build the repository in the current one,
		// whatever it holds.
		return nil, errors.New(`init: empty repository path (give "." for the current directory)`)
	}
	if opts.Mode == 0 {
		opts.Mode = ModeBareUser
	}
	if opts.Mode < ModeBare || opts.Mode > ModeArchive {
		return nil, fmt.Errorf("init %s: invalid mode %d", path, opts.Mode)
	}
	if opts.CollectionID != "" {
		if err := ValidateCollectionID(opts.CollectionID); err != nil {
			return nil, fmt.Errorf("init %s: %w", path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(path, "config")); err == nil {
		return nil, fmt.Errorf("init %s: %w", path, ErrExists)
	}
	if err := checkInitDir(path); err != nil {
		return nil, err
	}
	// The topmost directory MkdirAll makes, if any: a refused init
	// removes what it made.
	made := ""
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			break
		}
		made = p
	}
	if err := durable.MkdirAll(path, durable.DirPerm, true); err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	if opts.Mode == ModeBareUser {
		// Asked before the layout is made, so that a refusal leaves the
		// directory as it was (and the directories Init made, gone).
		if err := probeUserXattrs(path); err != nil {
			for p := filepath.Clean(path); made != ""; p = filepath.Dir(p) {
				if os.Remove(p) != nil || p == made {
					break
				}
			}
			if errors.Is(err, unix.ENOTSUP) {
				return nil, fmt.Errorf("init %s: a bare-user repository keeps each file's owner and mode in the %s xattr, which this filesystem refuses (use bare-user-only or archive): %w", path, UserMetaXattr, err)
			}
			return nil, fmt.Errorf("init %s: %w", path, err)
		}
	}
	for _, d := range []string{"objects", "refs/heads", "refs/remotes", "tmp", "state"} {
		if err := os.MkdirAll(filepath.Join(path, d), durable.DirPerm); err != nil {
			return nil, fmt.Errorf("init %s: %w", path, err)
		}
	}
	// All 256 fan-out directories exist up front so that staging never has
	// to create (and sync) one on the hot path.
	for i := 0; i < 256; i++ {
		if err := os.Mkdir(filepath.Join(path, "objects", fmt.Sprintf("%02x", i)), durable.DirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("init %s: %w", path, err)
		}
	}
	// The lock files exist from the start, so that a repository later
	// made read-only (a mount, a copy on read-only media) can still be
	// locked by its readers.
	for _, l := range initLockFiles {
		// Created if missing, never truncated: what is there may not be Init's.
		f, err := os.OpenFile(filepath.Join(path, l), os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("init %s: %w", path, err)
		}
		f.Close()
	}
	// Of two inits of one directory at once, the second to take the config
	// lock finds the first's config, rather than both writing one.
	ir := &Repo{path: path}
	ir.objFd.Store(-1)
	ir.lockTimeout.Store(int64(defaultLockTimeout))
	lk, err := ir.take(context.Background(), lockStep{"lock.config", true})
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	defer lk.Unlock()
	if _, err := os.Stat(filepath.Join(path, "config")); err == nil {
		return nil, fmt.Errorf("init %s: %w", path, ErrExists)
	}
	// The layout is durable before the config that makes it a repository.
	for _, d := range []string{"objects", "refs", "."} {
		if err := durable.SyncDir(filepath.Join(path, d)); err != nil {
			return nil, fmt.Errorf("init %s: %w", path, err)
		}
	}
	cfg := newConfig()
	if opts.CollectionID != "" {
		cfg.Set(collectionKey, opts.CollectionID)
	}
	cfg.Set("core.mode", opts.Mode.String())
	cfg.Set("core.repo_version", strconv.Itoa(repoVersion))
	if err := writeFileSynced(filepath.Join(path, "config"), cfg.Bytes()); err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return Open(path)
}

// probeUserXattrs sets UserMetaXattr on a file it makes in dir and removes
// again: a filesystem without user xattrs (ramfs, or one mounted without
// them) would otherwise take the repository and fail every commit. Such a
// filesystem gives an error wrapping ENOTSUP; one that cannot make the
// file (a directory this user may not write, a read-only mount), or is
// full, gives its own error, which says nothing about xattrs.
func probeUserXattrs(dir string) error {
	// A temporary file's name: one a kill leaves, or a concurrent Init
	// sees, does not make the directory one Init refuses (checkInitDir).
	f, err := os.CreateTemp(dir, durable.TempPattern)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := unix.Fsetxattr(int(f.Fd()), UserMetaXattr, []byte{0}, 0); err != nil {
		return err
	}
	return nil
}

// initDirs and initLockFiles are what Init makes before the config.
var (
	initDirs      = []string{"objects", "refs", "tmp", "state"}
	initLockFiles = []string{"lock", "lock.intent", "lock.config"}
)

// checkInitDir refuses a path that is not a directory Init may fill: one
// missing or empty, or holding only a lost+found and what Init makes
// before the config (an interrupted Init's, or a concurrent one's).
func checkInitDir(path string) error {
	ents, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("init %s: %w", path, err)
	}
	var others []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case name == "lost+found" && e.IsDir(),
			slices.Contains(initDirs, name) && e.IsDir(),
			(strings.HasPrefix(name, ".config.tmp-") || durable.IsTemp(name)) && e.Type().IsRegular():
			continue
		case slices.Contains(initLockFiles, name) && e.Type().IsRegular():
			// Init's lock files stay empty: one with content is not one.
			if fi, err := e.Info(); err == nil && fi.Size() == 0 {
				continue
			}
		}
		others = append(others, name)
	}
	if len(others) == 0 {
		return nil
	}
	list := strings.Join(others[:min(len(others), 5)], ", ")
	if len(others) > 5 {
		list += fmt.Sprintf(" and %d more", len(others)-5)
	}
	return fmt.Errorf("init %s: %w: it holds %s", path, ErrNotEmpty, list)
}

// isOSTreeRepo reports whether path has the directories `ostree init`
// makes and otree never does. Its config has the same shape as otree's,
// and its objects the same names, so without this check an OSTree
// repository would open and every object in it look corrupt.
func isOSTreeRepo(path string) bool {
	for _, d := range []string{"extensions", "refs/mirrors"} {
		if fi, err := os.Stat(filepath.Join(path, d)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// MaxConfigSize bounds a repository's config file: one on a mounted
// stick or another user's repository is read before anything else.
const MaxConfigSize = 1 << 20

// notRepoError is Open's error for a path that holds no repository: it
// matches ErrNotRepository, fs.ErrNotExist when the path is missing, and
// ErrNoConfig when the directory has no config.
type notRepoError struct {
	path, why         string
	missing, noConfig bool
}

func (e *notRepoError) Error() string { return "open repository " + e.path + ": " + e.why }

func (e *notRepoError) Is(target error) bool {
	return target == ErrNotRepository || e.missing && target == fs.ErrNotExist || e.noConfig && target == ErrNoConfig
}

// Open opens the repository at path. A path that is no otree repository
// (missing, holding no config, or one without core.repo_version) gives an
// error matching ErrNotRepository, and also fs.ErrNotExist when the path is missing or
// ErrNoConfig when the directory has no config. An empty path is refused
// (with ErrNotRepository) rather than taken as the current directory.
func Open(path string) (*Repo, error) {
	if path == "" {
		return nil, &notRepoError{path: `""`, why: `empty path (give "." for the current directory)`}
	}
	cfgPath := filepath.Join(path, "config")
	data, err := readConfigFile(cfgPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			// Say which is missing: the directory, or its config.
			if fi, serr := os.Stat(path); serr != nil {
				if errors.Is(serr, fs.ErrNotExist) {
					return nil, &notRepoError{path: path, why: "no such directory", missing: true}
				}
				if errors.Is(serr, unix.ENOTDIR) {
					// Below a file: no directory, so no repository.
					return nil, &notRepoError{path: path, why: "a component of the path is not a directory"}
				}
				return nil, fmt.Errorf("open repository %s: %w", path, serr)
			} else if !fi.IsDir() {
				return nil, &notRepoError{path: path, why: "not a directory"}
			}
			return nil, &notRepoError{path: path, why: "no config file (not a repository?)", noConfig: true}
		}
		return nil, fmt.Errorf("open repository %s: %w", path, err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", path, err)
	}
	if isOSTreeRepo(path) {
		return nil, fmt.Errorf("open repository %s: %w: this is an OSTree repository (it has extensions/ and refs/mirrors/); otree has a format of its own (BLAKE3 ids) and cannot read it: pull from it with OSTree, or check a commit out with `ostree checkout` and commit that directory", path, ErrNotRepository)
	}
	if v, ok := cfg.Get("core.repo_version"); !ok {
		return nil, &notRepoError{path: path, why: "config " + cfgPath + " has no repo_version in [core] (not an otree repository, or its config is damaged)"}
	} else if v != strconv.Itoa(repoVersion) {
		return nil, fmt.Errorf("open repository %s: unsupported core.repo_version %q in %s (want %d)", path, v, cfgPath, repoVersion)
	}
	ms, _ := cfg.Get("core.mode")
	mode, err := ParseMode(ms)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(filepath.Join(abs, "objects"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: objects directory: %w", path, err)
	}
	r := &Repo{path: abs, mode: mode, config: cfg}
	r.objFd.Store(int32(fd))
	r.verify.Store(true)
	r.lockTimeout.Store(int64(defaultLockTimeout))
	if v, ok := cfg.Get(ConfigLockTimeout); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= -1 {
			r.lockTimeout.Store(int64(time.Duration(n) * time.Second))
		}
	}
	if err := unix.Access(filepath.Join(abs, "objects"), unix.W_OK); err != nil {
		r.readOnly = &fs.PathError{Op: "access", Path: filepath.Join(abs, "objects"), Err: err}
	}
	return r, nil
}

// CheckWritable returns nil when the repository can be changed, else the
// error a change is refused with, which names the repository and says why
// (a read-only filesystem, or objects/ not writable by this user). Writers
// of objects call it before they start (writers of refs, config and delta
// indexes alone, CheckWritableAt), so that a read-only repository fails them
// with that one error, not with whichever write came first, and before
// any work done for nothing.
func (r *Repo) CheckWritable() error {
	if r.readOnly != nil {
		return r.errReadOnly()
	}
	return nil
}

// CheckWritableAt is CheckWritable for a change made only in the
// repository's directory rel ("" for the repository's own directory, where
// the config file is), which leaves objects/ alone: it fails only when that
// directory, or the nearest of its parents that exists, cannot be written.
// Refs and config can then still be changed where objects/ alone cannot be
// written by this user (or is a read-only mount), as with OSTree.
func (r *Repo) CheckWritableAt(rel string) error {
	p := filepath.Join(r.path, rel)
	for {
		err := unix.Access(p, unix.W_OK)
		if err == nil {
			return nil
		}
		if err != unix.ENOENT || p == r.path {
			return fmt.Errorf("repository %s is not writable: %w", r.path, &fs.PathError{Op: "access", Path: p, Err: err})
		}
		p = filepath.Dir(p)
	}
}

// errReadOnly is the error of a change refused because the repository
// cannot be written: it says why (a read-only filesystem, or objects/ not
// writable by this user), as the two call for different remedies.
func (r *Repo) errReadOnly() error {
	return fmt.Errorf("repository %s is not writable: %w", r.path, r.readOnly)
}

// Close releases the repository's descriptors. Afterwards reads,
// lookups of refs and new transactions fail with an error matching
// ErrClosed; closing again does nothing. A transaction still open is not
// ended: its Commit fails (ErrClosed) having moved nothing, and Commit or
// Abort still release its lock and staging directory. Close must not run
// while other calls on r are in flight: one of them may still be using the
// descriptor, and its number may be given to another file once closed.
func (r *Repo) Close() error {
	if fd := r.objFd.Swap(-1); fd >= 0 {
		unix.Close(int(fd))
	}
	return nil
}

// checkOpen fails with ErrClosed once r is closed.
func (r *Repo) checkOpen() error {
	_, err := r.objDir()
	return err
}

// objDir returns the descriptor of objects/, or an error matching
// ErrClosed.
func (r *Repo) objDir() (int, error) {
	fd := r.objFd.Load()
	if fd < 0 {
		return -1, &closedError{r.path}
	}
	return int(fd), nil
}

// objects returns the descriptor of objects/ for a caller that checked r
// was open when it began: Close since gives -1, which fails as EBADF.
func (r *Repo) objects() int { return int(r.objFd.Load()) }

// Path returns the absolute path of the repository, or of elem within it.
func (r *Repo) Path(elem ...string) string {
	return filepath.Join(append([]string{r.path}, elem...)...)
}

// Mode returns the repository's mode.
func (r *Repo) Mode() Mode { return r.mode }

// Config returns the repository's configuration as last read: at Open, or
// by UpdateConfig. Changes made to it are not saved, and the next
// UpdateConfig drops them; change the file with UpdateConfig.
func (r *Repo) Config() *Config { return r.config }

// UpdateConfig changes the config file: holding the config lock
// (lock.config, docs/FORMAT.md §10) it reads the file afresh, lets fn change
// that copy and writes it back durably (temp file, fsync, rename, fsync
// directory), then makes it what Config returns. Reading afresh under the
// lock is what keeps a change another process or Repo made since r was
// opened: writing r's own copy back would undo it. An error from fn is
// returned as it is and changes nothing, neither the file nor Config; if fn
// leaves the config as it was, the file is not written. fn must not take a
// repository lock or call UpdateConfig.
func (r *Repo) UpdateConfig(fn func(*Config) error) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	path := r.Path("config")
	lk, err := r.take(context.Background(), lockStep{"lock.config", true})
	if err != nil {
		return fmt.Errorf("updating %s: %w", path, err)
	}
	defer lk.Unlock()
	data, err := readConfigFile(path)
	if err != nil {
		return fmt.Errorf("updating %s: %w", path, err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return fmt.Errorf("updating %s: %w", path, err)
	}
	before := cfg.Bytes()
	if err := fn(cfg); err != nil {
		return err
	}
	if after := cfg.Bytes(); !bytes.Equal(after, before) {
		if err := r.CheckWritableAt(""); err != nil {
			return fmt.Errorf("updating %s: %w", path, err)
		}
		if err := writeFileSynced(path, after); err != nil {
			return fmt.Errorf("updating %s: %w", path, err)
		}
	}
	r.config.replace(cfg)
	return nil
}

// SetVerify controls whether loading an object re-hashes it (the default).
// It may be called while other goroutines use r; loads begun before it
// returns may still go by the old setting.
func (r *Repo) SetVerify(v bool) { r.verify.Store(v) }

// Verifies reports whether loading an object verifies its id (SetVerify).
func (r *Repo) Verifies() bool { return r.verify.Load() }

// SetLockTimeout sets how long lock acquisition waits before ErrLocked;
// a negative d waits without limit (the context still ends a wait). It
// may be called while other goroutines use r; a wait already begun keeps
// the old timeout.
func (r *Repo) SetLockTimeout(d time.Duration) { r.lockTimeout.Store(int64(d)) }

// SetLogger sets where r reports a wait for a lock another process holds;
// nil reports nothing (the default). It may be called while other
// goroutines use r.
func (r *Repo) SetLogger(l *slog.Logger) { r.log.Store(l) }

// LockTimeout returns how long lock acquisition waits before ErrLocked
// (SetLockTimeout, or core.lock-timeout-secs); negative means without
// limit.
func (r *Repo) LockTimeout() time.Duration { return time.Duration(r.lockTimeout.Load()) }

// objectPath returns the path of an object relative to objects/.
func objectPath(kind Kind, id ID) string {
	s := id.String()
	return s[:2] + "/" + s[2:] + "." + kind.String()
}

// ObjectPath returns the absolute path of an object.
func (r *Repo) ObjectPath(kind Kind, id ID) string {
	return filepath.Join(r.path, "objects", objectPath(kind, id))
}

// encoder returns the repository's shared zstd encoder for whole objects.
// EncodeAll runs on as many encoders as the option allows and queues
// beyond that, so there is one per commit worker.
func (r *Repo) encoder() *zstd.Encoder {
	r.encOnce.Do(func() {
		r.enc, _ = zenc.Whole(zenc.Level, workq.Workers())
	})
	return r.enc
}

func writeFileSynced(path string, data []byte) error {
	return durable.WriteFile(path, data, 0o644, true)
}

// streamEncoder returns a pooled streaming zstd encoder; return it to
// r.encPool after Close.
func (r *Repo) streamEncoder() *zstd.Encoder {
	if e, ok := r.encPool.Get().(*zstd.Encoder); ok {
		return e
	}
	e, _ := zenc.Stream(zenc.Level)
	return e
}

// CacheDir is where derived data that may be deleted at any time (such as
// commit's stat cache) lives. Anything that deletes objects empties it.
func (r *Repo) CacheDir() string { return r.Path("tmp", "cache") }

// dropCaches empties CacheDir; callers hold the repository lock
// exclusively. Readers that take no lock (checkout adds to the header
// index) may be writing there, so the directory is renamed aside in one
// step, then removed: the caches are gone at once, and a late write lands
// in the directory being removed, or in a new one.
func (r *Repo) dropCaches() error {
	dead := r.Path("tmp", fmt.Sprintf("%s%d-%d", droppedCachePrefix, os.Getpid(), time.Now().UnixNano()))
	if err := os.Rename(r.CacheDir(), dead); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // no caches
		}
		return fmt.Errorf("removing caches in %s: %w", r.CacheDir(), err)
	}
	// A writer still busy there may leave something behind: the next
	// cleanStaleStaging takes it.
	os.RemoveAll(dead)
	return nil
}

// droppedCachePrefix names cache directories dropCaches renamed aside.
const droppedCachePrefix = "cache-dropped-"

// readConfigFile reads a config file of at most MaxConfigSize bytes.
func readConfigFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := limitread.ReadAll(f, MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return data, nil
}
