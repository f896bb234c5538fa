package specread

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Repository modes (§6), as core.mode names them.
const (
	ModeBare         = "bare"
	ModeBareUser     = "bare-user"
	ModeBareUserOnly = "bare-user-only"
	ModeArchive      = "archive"
)

// Repo is an open repository.
type Repo struct {
	Path   string
	Mode   string // one of the Mode constants
	Config Config
}

// Open opens the repository at dir: it reads the config and its mode (§7).
func Open(dir string) (*Repo, error) {
	if isDir(filepath.Join(dir, "extensions")) && isDir(filepath.Join(dir, "refs", "mirrors")) {
		return nil, fmt.Errorf("%s: an OSTree repository", dir)
	}
	name := filepath.Join(dir, "config")
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	f.Close()
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if v, _ := cfg.Get("core.repo_version"); v != "1" {
		return nil, fmt.Errorf("%s: core.repo_version %q is not 1", name, v)
	}
	r := &Repo{Path: dir, Config: cfg}
	switch m, _ := cfg.Get("core.mode"); m {
	case ModeBare, ModeBareUser, ModeBareUserOnly, ModeArchive:
		r.Mode = m
	case "archive-z2":
		r.Mode = ModeArchive
	default:
		return nil, fmt.Errorf("%s: unknown core.mode %q", name, m)
	}
	return r, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Config is a parsed config file: section name to key to value.
type Config map[string]map[string]string

// Get returns the value of "section.key". The name splits at its first
// dot outside double quotes, so a quoted section may hold dots.
func (c Config) Get(name string) (string, bool) {
	quoted := false
	for i, r := range name {
		switch {
		case r == '"':
			quoted = !quoted
		case r == '.' && !quoted:
			v, ok := c[name[:i]][name[i+1:]]
			return v, ok
		}
	}
	return "", false
}

// asciiSpace is the whitespace §7 trims.
const asciiSpace = " \t\n\f\r"

// ParseConfig parses an INI config by §7's rules.
func ParseConfig(data []byte) (Config, error) {
	if len(data) > 1<<20 {
		return nil, errors.New("config larger than 1 MiB")
	}
	cfg := Config{}
	var section map[string]string
	for i, line := range strings.Split(string(data), "\n") {
		if len(line) > 64<<10 {
			return nil, fmt.Errorf("line %d longer than 64 KiB", i+1)
		}
		line = strings.Trim(line, asciiSpace)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			name := strings.Trim(strings.TrimSuffix(line[1:], "]"), asciiSpace)
			if !strings.HasSuffix(line, "]") || name == "" || strings.ContainsAny(name, "[]") {
				return nil, fmt.Errorf("line %d: bad section %q", i+1, line)
			}
			if cfg[name] == nil {
				cfg[name] = map[string]string{}
			}
			section = cfg[name]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == nil {
				return nil, fmt.Errorf("line %d: not key=value in a section: %q", i+1, line)
			}
			section[strings.Trim(k, asciiSpace)] = unescape(strings.Trim(v, asciiSpace))
		}
	}
	return cfg, nil
}

// unescape reads a value's escapes (§7): \s \n \t \r \\; a backslash
// before anything else stays.
func unescape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("sntr\\", v[i+1]) >= 0 {
			i++
			b.WriteByte(map[byte]byte{'s': ' ', 'n': '\n', 't': '\t', 'r': '\r', '\\': '\\'}[v[i]])
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// ValidRefName reports whether name is a valid branch name (§8): components
// separated by '/', each 1..255 bytes of [A-Za-z0-9_.-] not starting with
// '.' or '-'.
func ValidRefName(name string) bool {
	for _, c := range strings.Split(name, "/") {
		if c == "" || len(c) > 255 || c[0] == '.' || c[0] == '-' {
			return false
		}
		for _, r := range c {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-", r)) {
				return false
			}
		}
	}
	return true
}

// refFile gives the file of a ref: "branch" under refs/heads, or
// "remote:branch" under refs/remotes/remote.
func refFile(name string) (base, rel string, err error) {
	if remote, branch, ok := strings.Cut(name, ":"); ok {
		if strings.Contains(remote, "/") || !ValidRefName(remote) || !ValidRefName(branch) {
			return "", "", fmt.Errorf("invalid ref name %q", name)
		}
		return "refs/remotes", remote + "/" + branch, nil
	}
	if !ValidRefName(name) {
		return "", "", fmt.Errorf("invalid ref name %q", name)
	}
	return "refs/heads", name, nil
}

// maxAliases is how many aliases a ref may go through (§8.1).
const maxAliases = 8

// ResolveRef returns the commit a ref names, following aliases.
func (r *Repo) ResolveRef(name string) (ID, error) {
	base, rel, err := refFile(name)
	if err != nil {
		return ID{}, err
	}
	for hops := 0; ; hops++ {
		// Directories between refs/heads (or refs/remotes) and the ref file
		// must be real; refs/ and its two children may be symlinks.
		for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
			st, err := os.Lstat(filepath.Join(r.Path, base, dir))
			if err == nil && !st.IsDir() {
				return ID{}, fmt.Errorf("ref %s: %s/%s is not a directory", name, base, dir)
			}
		}
		p := filepath.Join(r.Path, base, rel)
		st, err := os.Lstat(p)
		if err != nil {
			return ID{}, fmt.Errorf("ref %s: %w", name, err)
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			data, err := os.ReadFile(p)
			if err != nil {
				return ID{}, fmt.Errorf("ref %s: %w", name, err)
			}
			id, err := ParseID(strings.TrimSpace(string(data)))
			if err != nil {
				return ID{}, fmt.Errorf("ref %s: corrupt: %w", name, err)
			}
			return id, nil
		}
		// An alias: a relative symlink to another branch in refs/heads.
		text, err := os.Readlink(p)
		if err != nil {
			return ID{}, fmt.Errorf("ref %s: %w", name, err)
		}
		next := path.Join(path.Dir(rel), text)
		if base != "refs/heads" || path.IsAbs(text) || next == ".." || strings.HasPrefix(next, "../") || !ValidRefName(next) {
			return ID{}, fmt.Errorf("ref %s: bad alias %s -> %s", name, rel, text)
		}
		if hops == maxAliases {
			return ID{}, fmt.Errorf("ref %s: more than %d aliases", name, maxAliases)
		}
		rel = next
	}
}

// Refs lists every ref: branches by name, remote refs as "remote:branch".
// Names starting with '.' are writers' temporary files.
func (r *Repo) Refs() (map[string]ID, error) {
	refs := map[string]ID{}
	var errs []error
	walk := func(base string, remote bool) {
		root := filepath.Join(r.Path, base) + "/"
		var visit func(dir string)
		visit = func(dir string) {
			ents, err := os.ReadDir(root + dir)
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					continue
				}
				rel := strings.TrimPrefix(dir+"/"+e.Name(), "/")
				if e.IsDir() {
					visit(rel)
					continue
				}
				name := rel
				if remote {
					name = strings.Replace(rel, "/", ":", 1)
				}
				id, err := r.ResolveRef(name)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				refs[name] = id
			}
		}
		if _, err := os.Stat(root); err == nil {
			visit("")
		}
	}
	walk("refs/heads", false)
	walk("refs/remotes", true)
	return refs, errors.Join(errs...)
}
