// Package durable writes small files so that after a crash a reader sees
// either the old content or the new, never a mix or an empty file.
package durable

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TempPattern is the os.CreateTemp pattern of the temporary files WriteFile
// (and other writers that rename into place) makes: ".tmp-" and a random
// number. It does not grow with the final name, so that a file whose name
// is the longest the filesystem allows (255 bytes) can still be written, as
// OSTree's fixed "tmp.XXXXXX" names allow; the leading dot keeps readers
// that skip dot files (refs, indexes) from taking it for a finished file.
const TempPattern = ".tmp-*"

// DirPerm is the mode, before the umask, of the directories made in a
// repository. It is group-writable, as OSTree's are, so that under a umask
// of 002 every member of the repository's group (a setgid directory shared
// by a team, a build farm's users) can commit into it, not only its maker;
// the usual umask of 022 leaves 0755.
const DirPerm os.FileMode = 0o775

// IsTemp tells whether name is that of a temporary file TempPattern made.
func IsTemp(name string) bool { return strings.HasPrefix(name, ".tmp-") }

// WriteFile replaces path with data: a temporary file in the same directory
// is written, synced (when sync is true), renamed over path, and the
// directory synced.
func WriteFile(path string, data []byte, perm os.FileMode, sync bool) error {
	st, err := Stage(path, data, perm, sync)
	if err != nil {
		return err
	}
	return st.Replace()
}

// Staged is the new content of a file, written beside it and not yet in
// its place: staging every file of a set before replacing any lets a
// failure to write one leave the set as it was.
type Staged struct {
	path, tmp string
	sync      bool
}

// Stage writes data with mode perm to a temporary file beside path, synced
// when sync is true; Replace then puts it in path's place, and Abort
// removes it.
func Stage(path string, data []byte, perm os.FileMode, sync bool) (*Staged, error) {
	f, err := os.CreateTemp(filepath.Dir(path), TempPattern)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	st := &Staged{path: path, tmp: f.Name(), sync: sync}
	err = func() error {
		if _, err := f.Write(data); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := f.Chmod(perm); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if sync {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("syncing %s: %w", path, err)
			}
		}
		return nil
	}()
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing %s: %w", path, cerr)
	}
	if err != nil {
		os.Remove(st.tmp)
		return nil, err
	}
	return st, nil
}

// Replace renames the staged file over its path and syncs the directory
// (when staged with sync). On failure the staged file is removed.
func (st *Staged) Replace() error {
	if err := os.Rename(st.tmp, st.path); err != nil {
		os.Remove(st.tmp)
		return fmt.Errorf("replacing %s: %w", st.path, err)
	}
	if st.sync {
		return SyncDir(filepath.Dir(st.path))
	}
	return nil
}

// Abort removes the staged file, leaving its path as it was.
func (st *Staged) Abort() { os.Remove(st.tmp) }

// WriteNew creates path, which must not exist, holding data with mode
// perm: the content is written and synced unnamed (CreateNew), then named
// path in one step that fails, matching fs.ErrExist, if path exists; the
// directory is then synced. A crash leaves path absent or whole, never
// empty or short (as a file created at path and then written could be),
// so that a rerun can write it.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	f, err := CreateNew(path, true)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return f.Link(true)
}

// NewFile is a file being written for a path it is given only once whole
// (Link), so that a process killed before then leaves no short file there.
type NewFile struct {
	*os.File
	path string // the name Link gives it
	tmp  string // its temporary name; "" when unnamed
}

// CreateNew creates, mode 0600, a file to be named path by Link: unnamed
// (O_TMPFILE) when unnamed is set and the filesystem can, so that a
// process killed before Link leaves nothing behind; else (FAT, as on USB
// sticks, has neither O_TMPFILE nor hardlinks) under a temporary name
// (TempPattern) beside path. Close removes that name unless Link used it.
func CreateNew(path string, unnamed bool) (*NewFile, error) {
	dir := filepath.Dir(path)
	if unnamed {
		fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		if err == nil {
			return &NewFile{File: os.NewFile(uintptr(fd), path), path: path}, nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("writing %s: %w", path, &os.PathError{Op: "open", Path: dir, Err: err})
		}
	}
	f, err := os.CreateTemp(dir, TempPattern)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &NewFile{File: f, path: path, tmp: f.Name()}, nil
}

// Link names the file, whose content the caller has synced, at its path
// in one step that fails, matching fs.ErrExist, if the path exists; the
// directory is then synced when sync is set.
func (f *NewFile) Link(sync bool) error {
	var err error
	if f.tmp == "" {
		// linkat of /proc/self/fd/N names an O_TMPFILE file without the
		// privilege AT_EMPTY_PATH needs.
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, f.path, unix.AT_SYMLINK_FOLLOW)
	} else {
		err = unix.Renameat2(unix.AT_FDCWD, f.tmp, unix.AT_FDCWD, f.path, unix.RENAME_NOREPLACE)
	}
	if err != nil {
		return &os.LinkError{Op: "naming", Old: "the new file", New: f.path, Err: err}
	}
	f.tmp = ""
	if sync {
		return SyncDir(filepath.Dir(f.path))
	}
	return nil
}

// Replace puts the file, whose content the caller has synced, at its
// path in place of whatever file is there (rename), then syncs the
// directory when sync is set. An unnamed file first gets a temporary name
// (TempPattern) beside path, which the rename takes at once: only a
// process killed between those two steps leaves that name behind.
func (f *NewFile) Replace(sync bool) error {
	if f.tmp == "" {
		fd := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
		for {
			tmp := filepath.Join(filepath.Dir(f.path), ".tmp-"+strconv.FormatUint(uint64(rand.Uint32()), 10))
			err := unix.Linkat(unix.AT_FDCWD, fd, unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW)
			if err == nil {
				f.tmp = tmp
				break
			}
			if !errors.Is(err, unix.EEXIST) {
				return &os.LinkError{Op: "naming", Old: "the new file", New: tmp, Err: err}
			}
		}
	}
	if err := os.Rename(f.tmp, f.path); err != nil {
		return fmt.Errorf("replacing %s: %w", f.path, err)
	}
	f.tmp = ""
	if sync {
		return SyncDir(filepath.Dir(f.path))
	}
	return nil
}

// Close closes the file, and removes its temporary name if Link or
// Replace did not use it.
func (f *NewFile) Close() error {
	err := f.File.Close()
	if f.tmp != "" {
		os.Remove(f.tmp)
		f.tmp = ""
	}
	return err
}

// MkdirAll creates path and any missing parents, like os.MkdirAll, and
// when sync is true syncs the parent of each directory it created, so that
// after a crash the new directories (and what is later synced into them)
// are still reachable. If it fails, it removes what it created.
func MkdirAll(path string, perm os.FileMode, sync bool) error {
	_, err := MakeDirs(path, perm, sync)
	return err
}

// MakeDirs is MkdirAll that also returns the directories it created,
// deepest first, so that a write into them that then fails can remove
// them again (RemoveDirs) and leave nothing behind.
func MakeDirs(path string, perm os.FileMode, sync bool) ([]string, error) {
	path = filepath.Clean(path)
	var made []string
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		made = append(made, p)
	}
	if err := os.MkdirAll(path, perm); err != nil {
		RemoveDirs(made)
		return nil, err
	}
	if !sync {
		return made, nil
	}
	for _, p := range made {
		if err := SyncDir(filepath.Dir(p)); err != nil {
			RemoveDirs(made)
			return nil, err
		}
	}
	return made, nil
}

// RemoveDirs removes the directories MakeDirs created, deepest first, each
// only if it is empty: one another writer has put something in stays, and
// so do those above it.
func RemoveDirs(dirs []string) {
	for _, d := range dirs {
		os.Remove(d)
	}
}

// SyncDir fsyncs a directory so that entries renamed into it are durable.
func SyncDir(dir string) error { return syncPath(dir, "directory ") }

// SyncFile fsyncs a file already in place whose content may not be
// durable yet (written by a run that did not sync); its directory is the
// caller's to sync.
func SyncFile(path string) error { return syncPath(path, "") }

// syncPath opens path and fsyncs it; errors name it as what path.
func syncPath(path, what string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("syncing %s%s: %w", what, path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s%s: %w", what, path, err)
	}
	return nil
}

// RemoveAbandoned removes path (a file, or a directory with everything
// below it) unless a process holds a flock on it: staging areas are locked
// by the process filling them for as long as it lives, so one that can be
// locked was abandoned by a process that died. It reports whether path
// was removed.
func RemoveAbandoned(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false
	}
	return os.RemoveAll(path) == nil
}

// SyncFS flushes the whole filesystem holding each directory path: for a
// tree of thousands of files one syncfs is far cheaper than an fsync each.
func SyncFS(paths ...string) error {
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: p, Err: err}
		}
		err = unix.Syncfs(fd)
		unix.Close(fd)
		if err != nil {
			return &os.PathError{Op: "syncfs", Path: p, Err: err}
		}
	}
	return nil
}
