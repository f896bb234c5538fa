package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
)

// Remote is a named source of commits, stored in the repository's config as
// the section [remote "NAME"], the shape OSTree uses:
//
//	[remote "origin"]
//	branches=os/stable;os/testing;
//	url=https://example.com/repo
type Remote struct {
	Name     string   `json:"name"`               // NAME in [remote "NAME"]
	URL      string   `json:"url"`                // the repository: an http://, https:// or file:// URL
	Branches []string `json:"branches,omitempty"` // what pull fetches when given no refs
	// Options holds every key of the section, url and branches included.
	Options map[string]string `json:"options,omitempty"`
	// File is the file of the repository's remotes directory that
	// defines the remote (repo.Repo.SetRemotesDir); "" for its config.
	File string `json:"file,omitempty"`
}

// ContentURL is the remote's contenturl option: where objects and static
// deltas are fetched from instead of URL ("" for URL itself).
func (r *Remote) ContentURL() string { return r.Options["contenturl"] }

// parseContentURL parses a contenturl: an http:// or https:// URL.
func parseContentURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid contenturl %q: want an http:// or https:// URL", shownRawURL(raw))
	}
	if err := checkUserEnds(u); err != nil {
		return nil, fmt.Errorf("invalid contenturl %q: %v", shownRawURL(raw), err)
	}
	if err := checkPort(u); err != nil {
		return nil, fmt.Errorf("invalid contenturl %q: %v", shownRawURL(raw), err)
	}
	return u, nil
}

// checkPort refuses a port past 65535, which url.Parse takes (it checks
// only for digits) and every request then fails to dial, after retries.
func checkPort(u *url.URL) error {
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("port %s is out of range (1-65535)", p)
		}
	}
	return nil
}

// checkUserEnds refuses an http(s) URL whose USER:PASSWORD@ was cut short
// by a '#' or '?' in the password: url.Parse (as OSTree's fetcher) then
// reads USER as the host and the password's head as its port, and every
// request would go to that host, its error showing the password. An '@'
// in the fragment or query of a URL with no path is taken for that: the
// server's root is written with a '/' before them.
func checkUserEnds(u *url.URL) error {
	if u.User != nil || u.Path != "" {
		return nil
	}
	switch {
	case strings.Contains(u.Fragment, "@"):
		return errors.New("its '@' comes after a '#', which ends the host; write a '#' in a password as %23")
	case strings.Contains(u.RawQuery, "@"):
		return errors.New("its '@' comes after a '?', which ends the host; write a '?' in a password as %3F (or a query as /?QUERY)")
	}
	return nil
}

// ErrRemoteNotFound is matched (with errors.Is) by errors about a remote
// that is not configured.
var ErrRemoteNotFound = errors.New("remote not found")

// ErrRemoteExists is returned by AddRemote for a name already configured.
var ErrRemoteExists = errors.New("remote already exists")

func sectionName(name string) string { return `remote "` + name + `"` }

// ValidateRemoteName checks a remote name: one ref name component (it is a
// directory under refs/remotes and the part before ':' in "remote:branch").
func ValidateRemoteName(name string) error {
	if strings.ContainsAny(name, "/:") || repo.ValidateRefName(name) != nil {
		return fmt.Errorf("invalid remote name %q: want letters, digits and \"_.-\", starting with a letter, digit or '_'", name)
	}
	return nil
}

// validateURL accepts the URLs pull can fetch from.
func validateURL(raw string) error {
	for _, form := range []string{"metalink=", "mirrorlist="} {
		if strings.HasPrefix(raw, form) {
			return fmt.Errorf("invalid remote URL %q: OSTree's %s form is not supported; give the repository's http://, https:// or file:// URL", shownRawURL(raw), strings.TrimSuffix(form, "="))
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats raw, password and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("invalid remote URL %q: %v", shownRawURL(raw), err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("invalid remote URL %q: no host", shownRawURL(raw))
		}
		if err := checkUserEnds(u); err != nil {
			return fmt.Errorf("invalid remote URL %q: %v", shownRawURL(raw), err)
		}
		if err := checkPort(u); err != nil {
			return fmt.Errorf("invalid remote URL %q: %v", shownRawURL(raw), err)
		}
	case "file":
		if u.Opaque != "" {
			// file:repo: OSTree takes it, then fails to open "(null)".
			return fmt.Errorf("invalid remote URL %q: a relative path; want file:///ABSOLUTE/PATH", shownRawURL(raw))
		}
		if u.Path == "" {
			return fmt.Errorf("invalid remote URL %q: no path", shownRawURL(raw))
		}
		// The path is opened on this machine: a host would be ignored,
		// and file://srv/repo read /repo here. A host name's case does
		// not count: file://LOCALHOST/PATH is PATH, for OSTree too.
		if u.Host != "" && !strings.EqualFold(u.Host, "localhost") {
			return fmt.Errorf("invalid remote URL %q: names host %q, but a file:// URL is read on this machine; want file:///PATH", shownRawURL(raw), u.Host)
		}
	default:
		return fmt.Errorf("invalid remote URL %q: want http://, https:// or file://", shownRawURL(raw))
	}
	return nil
}

// parseBranches splits a branches= value; OSTree writes "a;b;".
func parseBranches(v string) []string {
	var out []string
	for _, b := range strings.Split(v, ";") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func formatBranches(bs []string) string {
	if len(bs) == 0 {
		return ""
	}
	return strings.Join(bs, ";") + ";"
}

// AddOptions configure AddRemote.
type AddOptions struct {
	// IfNotExists makes adding an existing remote do nothing.
	IfNotExists bool
	// Force replaces an existing remote.
	Force bool
	// Set holds more keys of the section (OSTree's --set=KEY=VALUE);
	// "url" and "branches" here override the Remote's fields.
	Set map[string]string
}

// AddRemote adds rm to r's config and saves it. It reports whether the
// config changed (false when IfNotExists found the remote).
func AddRemote(r *repo.Repo, rm Remote, opts AddOptions) (bool, error) {
	if err := ValidateRemoteName(rm.Name); err != nil {
		return false, err
	}
	// Each branch as given: joined into the ;-separated key, an empty one
	// or one holding ';' would vanish or split there ("" alone would make
	// pull fetch every branch).
	for _, b := range rm.Branches {
		if err := validateBranch(b); err != nil {
			return false, fmt.Errorf("remote %s: %w", rm.Name, err)
		}
	}
	keys := map[string]string{"url": rm.URL}
	if len(rm.Branches) > 0 {
		keys["branches"] = formatBranches(rm.Branches)
	}
	for k, v := range opts.Set {
		keys[k] = v
	}
	if err := validateURL(keys["url"]); err != nil {
		return false, err
	}
	if c := keys["collection-id"]; c != "" {
		if err := repo.ValidateCollectionID(c); err != nil {
			return false, fmt.Errorf("remote %s: %w", rm.Name, err)
		}
	}
	if c := keys["contenturl"]; c != "" {
		if u, err := url.Parse(keys["url"]); err == nil && u.Scheme == "file" {
			return false, fmt.Errorf("remote %s: contenturl needs an http(s) url, not %s", rm.Name, shownRawURL(keys["url"]))
		}
		if _, err := parseContentURL(c); err != nil {
			return false, fmt.Errorf("remote %s: %w", rm.Name, err)
		}
	}
	if _, err := checkTransportKeys(keys); err != nil {
		return false, fmt.Errorf("remote %s: %w", rm.Name, err)
	}
	if err := checkNoGPG(rm.Name, keys); err != nil {
		return false, err
	}
	for _, b := range parseBranches(keys["branches"]) {
		if err := validateBranch(b); err != nil {
			return false, fmt.Errorf("remote %s: %w", rm.Name, err)
		}
	}
	sec := sectionName(rm.Name)
	// Check every key on a scratch config first, so that a key that cannot
	// be written leaves r's config untouched.
	scratch, _ := repo.ParseConfig(nil)
	for k, v := range keys {
		if err := scratch.SetIn(sec, k, v); err != nil {
			return false, err
		}
	}
	if f := definedInDir(r, rm.Name); f != "" {
		if opts.IfNotExists {
			return false, nil
		}
		return false, fmt.Errorf("%w: %q is defined in %s, which the repository's remotes directory holds; change it there", ErrRemoteExists, rm.Name, f)
	}
	changed := false
	var refused error // fn's own error, which names the remote already
	err := r.UpdateConfig(func(cfg *repo.Config) error {
		if old := cfg.Section(sec); old != nil {
			switch {
			case opts.IfNotExists:
				return nil
			case !opts.Force:
				refused = fmt.Errorf("%w: %q is configured in %s", ErrRemoteExists, rm.Name, r.Path("config"))
				return refused
			}
			for k := range old {
				cfg.UnsetIn(sec, k)
			}
		} else if err := removeCookies(r, rm.Name); err != nil {
			// Left by a delete of an earlier remote of the name that
			// was killed after its config was saved: they are not
			// this remote's to send.
			return err
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if keys[k] == "" && k == "branches" {
				continue
			}
			cfg.SetIn(sec, k, keys[k]) // checked above
		}
		changed = true
		return nil
	})
	if err != nil && err != refused {
		return false, fmt.Errorf("adding remote %s: %w", rm.Name, err)
	}
	if err != nil {
		return false, err
	}
	return changed, nil
}

// DeleteRemote removes a remote from r's config and saves it. Its
// remote-tracking refs are left alone, as OSTree does.
func DeleteRemote(r *repo.Repo, name string) error {
	if err := ValidateRemoteName(name); err != nil {
		return err
	}
	sec := sectionName(name)
	inDir := definedInDir(r, name)
	var refused error // fn's own error, which names the remote already
	err := r.UpdateConfig(func(cfg *repo.Config) error {
		old := cfg.Section(sec)
		switch {
		case old == nil && inDir != "":
			refused = fmt.Errorf("remote %s is defined in %s, which the repository's remotes directory holds; remove it there", name, inDir)
			return refused
		case old == nil:
			// A rerun of a delete killed after it saved the config
			// finishes it.
			if err := removeCookies(r, name); err != nil {
				return err
			}
			if err := removeKeyring(r, name); err != nil {
				return err
			}
			refused = fmt.Errorf("%w: %q is not configured in %s", ErrRemoteNotFound, name, r.Path("config"))
			return refused
		}
		for k := range old {
			cfg.UnsetIn(sec, k)
		}
		return nil
	})
	if err != nil && err != refused {
		return fmt.Errorf("deleting remote %s: %w", name, err)
	}
	if err != nil {
		return err
	}
	// Its cookies are secrets of that remote alone: gone for good. A
	// crash before this leaves them to the next AddRemote of the name,
	// or rerun, to remove.
	if err := removeCookies(r, name); err != nil {
		return fmt.Errorf("deleting remote %s: %w", name, err)
	}
	if err := removeKeyring(r, name); err != nil {
		return fmt.Errorf("deleting remote %s: %w", name, err)
	}
	return nil
}

// removeCookies durably removes the cookie file of remote name, if any.
func removeCookies(r *repo.Repo, name string) error {
	return removeRemoteFile(r, cookieFile(r, name), "the cookies", name)
}

// removeKeyring durably removes the GPG keys OSTree's remote add
// --gpg-import kept for remote name, if any, as OSTree's remote delete
// does: left, they would refuse the pulls of a remote added again under
// the name (checkNoGPGKeyring).
func removeKeyring(r *repo.Repo, name string) error {
	return removeRemoteFile(r, gpgKeyring(r, name), "the GPG keys", name)
}

// removeRemoteFile durably removes p, what of remote name, if it is there.
func removeRemoteFile(r *repo.Repo, p, what, name string) error {
	// Looked for first: on a read-only filesystem unlink fails with EROFS
	// even where there is nothing to remove, which would blame the file
	// (and hide "not configured") rather than the config write.
	_, err := os.Lstat(p)
	if err == nil {
		err = os.Remove(p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && r.Fsync() {
		err = durable.SyncDir(r.Path())
	}
	if err != nil {
		return fmt.Errorf("removing %s of remote %s: %w", what, name, err)
	}
	return nil
}

// GetRemote returns one configured remote: from the repository's config,
// or from a file of its remotes directory (repo.Repo.SetRemotesDir). A
// remote defined in both, or in two files, is an error naming them.
func GetRemote(r *repo.Repo, name string) (*Remote, error) {
	if err := ValidateRemoteName(name); err != nil {
		return nil, err
	}
	all, err := listRemotes(r)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if rm := &all[i]; rm.Name == name {
			if rm.URL == "" {
				return nil, fmt.Errorf("remote %s has no url in %s", name, remoteSource(r, rm))
			}
			return rm, nil
		}
	}
	where := r.Path("config")
	if d := r.RemotesDir(); d != "" {
		where += " or " + filepath.Join(d, "*.conf")
	}
	return nil, fmt.Errorf("%w: %q is not configured in %s", ErrRemoteNotFound, name, where)
}

// definedInDir returns the file of r's remotes directory that defines the
// remote name, or "".
func definedInDir(r *repo.Repo, name string) string {
	all, _ := listRemotes(r)
	for _, rm := range all {
		if rm.Name == name && rm.File != "" {
			return rm.File
		}
	}
	return ""
}

// remoteSource names where rm is defined.
func remoteSource(r *repo.Repo, rm *Remote) string {
	if rm.File != "" {
		return rm.File
	}
	return r.Path("config")
}

// ListRemotes returns every configured remote, sorted by name: those of
// the repository's config and of its remotes directory. Sections with an
// invalid remote name are skipped, as are remotes-directory files that
// cannot be read or parsed, and remotes defined twice.
func ListRemotes(r *repo.Repo) []Remote {
	all, _ := listRemotes(r)
	return all
}

// listRemotes is ListRemotes, with the error of a remotes-directory file
// that cannot be read or parsed, or of a remote defined twice; what could
// be read is returned either way.
func listRemotes(r *repo.Repo) ([]Remote, error) {
	secs, err := r.RemoteSections()
	var out []Remote
	for _, s := range secs {
		if ValidateRemoteName(s.Name) == nil {
			out = append(out, Remote{Name: s.Name, URL: s.Keys["url"], Branches: parseBranches(s.Keys["branches"]), Options: s.Keys, File: s.File})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}
