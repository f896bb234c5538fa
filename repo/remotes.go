package repo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// RemoteSection is one [remote "NAME"] section: of the repository's
// config, or of a file of its remotes directory (SetRemotesDir).
type RemoteSection struct {
	Name string            // the remote's name, NAME
	Keys map[string]string // every key of the section, with its value
	File string            // "" for the config
}

// SetRemotesDir names a directory of *.conf files whose [remote "NAME"]
// sections define remotes beside those of the config, as OSTree's
// /etc/ostree/remotes.d does for a system repository: the remotes an OS
// ships in its /etc come with each deployment. "" (the default) reads the
// config alone. The deploy package sets it for a sysroot's repository.
// It may be called while other goroutines use r.
func (r *Repo) SetRemotesDir(dir string) { r.remotesDir.Store(&dir) }

// RemotesDir is the directory SetRemotesDir named, or "".
func (r *Repo) RemotesDir() string {
	if p := r.remotesDir.Load(); p != nil {
		return *p
	}
	return ""
}

// RemoteSections returns the remote sections of the config, then those
// of the remotes directory's files in name order. A file that cannot be
// read or parsed, and a remote defined a second time, are errors naming
// the files; what could be read is returned either way, each remote once.
func (r *Repo) RemoteSections() ([]RemoteSection, error) {
	out := remoteSections(r.config, "")
	remotesDir := r.RemotesDir()
	if remotesDir == "" {
		return out, nil
	}
	where := func(s RemoteSection) string {
		if s.File == "" {
			return r.Path("config")
		}
		return s.File
	}
	var errs []error
	files, _ := filepath.Glob(filepath.Join(remotesDir, "*.conf"))
	sort.Strings(files)
	for _, f := range files {
		data, err := readRemotesFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading remotes: %w", err))
			continue
		}
		cfg, err := ParseConfig(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading remotes: %s: %w", f, err))
			continue
		}
	next:
		for _, s := range remoteSections(cfg, f) {
			for _, had := range out {
				if had.Name == s.Name {
					errs = append(errs, fmt.Errorf("remote %s is defined in both %s and %s", s.Name, where(had), f))
					continue next
				}
			}
			out = append(out, s)
		}
	}
	return out, errors.Join(errs...)
}

// remoteSections returns the [remote "NAME"] sections of cfg, read from
// file.
func remoteSections(cfg *Config, file string) []RemoteSection {
	var out []RemoteSection
	for _, sec := range cfg.Sections() {
		name, ok := strings.CutPrefix(sec, `remote "`)
		if !ok || !strings.HasSuffix(name, `"`) {
			continue
		}
		out = append(out, RemoteSection{Name: strings.TrimSuffix(name, `"`), Keys: cfg.Section(sec), File: file})
	}
	return out
}

// remotesFileMax bounds what is read of a remotes-directory file: a few
// sections of a few keys each.
const remotesFileMax = 1 << 20

// readRemotesFile reads a remotes-directory file, which a deployment's
// tree ships in its /etc: only a regular file is read, opened so that a
// FIFO there cannot block every command that lists remotes, and no more
// than remotesFileMax bytes of it.
func readRemotesFile(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, remotesFileMax+1))
	if err != nil {
		return nil, err
	}
	if len(data) > remotesFileMax {
		return nil, fmt.Errorf("%s: more than %d bytes", p, remotesFileMax)
	}
	return data, nil
}
