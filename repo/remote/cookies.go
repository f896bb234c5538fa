package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
)

// Cookie is one cookie sent with every request to a remote whose host and
// path it matches (OSTree's remote add-cookie), for servers that want a
// session or an access token in a cookie.
type Cookie struct {
	Domain string `json:"domain"` // the host it is sent to (not its subdomains)
	Path   string `json:"path"`   // sent for this path and below it
	Name   string `json:"name"`   // the cookie's name
	Value  string `json:"value"`  // its value
}

// cookieLife is how long an added cookie is kept: it does not expire in
// practice, as in OSTree.
const cookieLife = 20 * 365 * 24 * time.Hour

// cookieFile is where a remote's cookies are kept: REPO/NAME.cookies.txt,
// in the tab-separated cookie file format curl and OSTree read.
func cookieFile(r *repo.Repo, name string) string { return r.Path(name + ".cookies.txt") }

func (c Cookie) check() error {
	for _, f := range []struct{ what, v string }{{"domain", c.Domain}, {"path", c.Path}, {"name", c.Name}, {"value", c.Value}} {
		if f.v == "" || strings.ContainsAny(f.v, "\t\r\n;") || (f.what != "value" && strings.ContainsAny(f.v, " =")) {
			return fmt.Errorf("cookie %s %q is empty or holds a tab, newline, ';' or (but in a value) a space or '='", f.what, f.v)
		}
	}
	// A line starting with '#' is a comment, or #HttpOnly_ and a domain.
	if strings.HasPrefix(c.Domain, "#") {
		return fmt.Errorf("cookie domain %q starts with '#'", c.Domain)
	}
	if !strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("cookie path %q does not start with /", c.Path)
	}
	return nil
}

// ListCookies returns the cookies of remote name, in the order added.
func ListCookies(r *repo.Repo, name string) ([]Cookie, error) {
	if err := ValidateRemoteName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(cookieFile(r, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseCookies(cookieFile(r, name), data, time.Now())
}

// parseCookies reads the lines of a cookie file, leaving out cookies
// expired at now; file names it in errors.
func parseCookies(file string, data []byte, now time.Time) ([]Cookie, error) {
	var out []Cookie
	// Split by hand: a line may be longer than a bufio.Scanner takes.
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || (strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "#HttpOnly_")) {
			continue
		}
		f := strings.Split(strings.TrimPrefix(line, "#HttpOnly_"), "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("%s:%d: want 7 tab-separated fields, found %d", file, n+1, len(f))
		}
		if exp, err := strconv.ParseInt(f[4], 10, 64); err == nil && exp != 0 && time.Unix(exp, 0).Before(now) {
			continue // expired
		}
		out = append(out, Cookie{Domain: f[0], Path: f[2], Name: f[5], Value: f[6]})
	}
	return out, nil
}

// AddCookie adds c to the cookies of remote name, replacing one of the
// same domain, path and name.
func AddCookie(r *repo.Repo, name string, c Cookie) error {
	if _, err := GetRemote(r, name); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	cs, err := ListCookies(r, name)
	if err != nil {
		return err
	}
	cs = deleteCookie(cs, c.Domain, c.Path, c.Name)
	return writeCookies(r, name, append(cs, c))
}

// DeleteCookie removes the cookie of remote name with that domain, path
// and name; it is an error if there is none.
func DeleteCookie(r *repo.Repo, name, domain, path, cookie string) error {
	cs, err := ListCookies(r, name)
	if err != nil {
		return err
	}
	left := deleteCookie(cs, domain, path, cookie)
	if len(left) == len(cs) {
		return fmt.Errorf("remote %s has no cookie %s for %s%s: %w", name, cookie, domain, path, repo.ErrNotFound)
	}
	return writeCookies(r, name, left)
}

func deleteCookie(cs []Cookie, domain, path, name string) []Cookie {
	var out []Cookie
	for _, c := range cs {
		if c.Domain != domain || c.Path != path || c.Name != name {
			out = append(out, c)
		}
	}
	return out
}

// writeCookies replaces the cookie file; it holds secrets, so only its
// owner reads it.
func writeCookies(r *repo.Repo, name string, cs []Cookie) error {
	return durable.WriteFile(cookieFile(r, name), formatCookies(cs, time.Now().Add(cookieLife)), 0o600, true)
}

// formatCookies gives the lines of a cookie file holding cs, each expiring
// at exp.
func formatCookies(cs []Cookie, exp time.Time) []byte {
	var b bytes.Buffer
	for _, c := range cs {
		fmt.Fprintf(&b, "%s\tFALSE\t%s\tFALSE\t%d\t%s\t%s\n", c.Domain, c.Path, exp.Unix(), c.Name, c.Value)
	}
	return b.Bytes()
}

// withCookies gives opts a client that sends the cookies of remote name,
// when it has any.
func withCookies(r *repo.Repo, name string, opts *PullOptions) error {
	cs, err := ListCookies(r, name)
	if err != nil || len(cs) == 0 {
		return err
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	for _, c := range cs {
		// Host-only cookies without Secure: sent over http and https.
		for _, scheme := range []string{"http", "https"} {
			jar.SetCookies(&url.URL{Scheme: scheme, Host: c.Domain, Path: c.Path},
				[]*http.Cookie{{Name: c.Name, Value: c.Value, Path: c.Path}})
		}
	}
	client := *opts.Client
	client.Jar = jar
	opts.Client = &client
	return nil
}
