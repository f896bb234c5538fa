package repo

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/otree/otree/internal/inroot"
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
// config alone. It is SetRemotesDirIn("/", dir), for the running system's
// own directory. It may be called while other goroutines use r.
func (r *Repo) SetRemotesDir(dir string) {
	if dir == "" {
		r.remotesDir.Store(nil)
		return
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	r.SetRemotesDirIn("/", dir)
}

// SetRemotesDirIn names the remotes directory dir of the tree at root (a
// deployment), whose symlinks are resolved inside root as the tree would
// once booted: a link a deployment ships in its /etc never leads the read
// to the machine's own files. The deploy package sets it for a sysroot's
// repository.
func (r *Repo) SetRemotesDirIn(root, dir string) {
	rel, err := filepath.Rel("/", filepath.Join("/", dir))
	if err != nil {
		rel = dir
	}
	r.remotesDir.Store(&[2]string{root, rel})
}

// RemotesDir is the directory SetRemotesDir or SetRemotesDirIn named,
// with its root, or "".
func (r *Repo) RemotesDir() string {
	if p := r.remotesDir.Load(); p != nil {
		return filepath.Join(p[0], p[1])
	}
	return ""
}

// RemoteSections returns the remote sections of the config, then those
// of the remotes directory's files in name order. A file that cannot be
// read or parsed, and a remote defined a second time, are errors naming
// the files; what could be read is returned either way, each remote once.
func (r *Repo) RemoteSections() ([]RemoteSection, error) {
	out := remoteSections(r.config, "")
	at := r.remotesDir.Load()
	if at == nil {
		return out, nil
	}
	root, dir := at[0], at[1]
	where := func(s RemoteSection) string {
		if s.File == "" {
			return r.Path("config")
		}
		return s.File
	}
	var errs []error
	var names []string
	if d, err := inroot.Open(root, dir, unix.O_DIRECTORY); err == nil {
		all, _ := d.Readdirnames(-1)
		d.Close()
		for _, n := range all {
			if strings.HasSuffix(n, ".conf") {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		f := filepath.Join(root, dir, n)
		data, err := inroot.ReadFile(root, filepath.Join(dir, n), remotesFileMax)
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
