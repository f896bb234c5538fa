package remote

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzParseContentRange checks that a Content-Range the resume code
// accepts is a range it can act on (0 <= first <= last < length, when the
// length is known) and reads back the same when written in full.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{
		"bytes 0-9/10", "bytes 5-9/*", "bytes 9-5/10", "bytes 0-10/10",
		"bytes -1-5/10", "bytes 1-2", "bytes 00-01/02", "bytes 1-9223372036854775807/*",
		"bytes */10", "bits 0-1/2", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if n, ok := parseUnsatisfiedRange(v); ok {
			if m, ok := parseUnsatisfiedRange(fmt.Sprintf("bytes */%d", n)); n < 0 || !ok || m != n {
				t.Fatalf("parseUnsatisfiedRange(%q) = %d; written in full it reads %d %v", v, n, m, ok)
			}
		}
		first, last, length, ok := parseContentRange(v)
		if !ok {
			return
		}
		if first < 0 || last < first || length >= 0 && last >= length || length < -1 {
			t.Fatalf("parseContentRange(%q) = %d-%d/%d: not a range of the file", v, first, last, length)
		}
		size := "*"
		if length >= 0 {
			size = fmt.Sprint(length)
		}
		w := fmt.Sprintf("bytes %d-%d/%s", first, last, size)
		if f2, l2, n2, ok := parseContentRange(w); !ok || f2 != first || l2 != last || n2 != length {
			t.Fatalf("parseContentRange(%q) = %d-%d/%d; written as %q it reads %d-%d/%d %v", v, first, last, length, w, f2, l2, n2, ok)
		}
	})
}

// FuzzShownRawURL checks that the password of a URL given to remote add,
// or read from a remote's config, never shows in what is printed of it:
// neither shownRawURL nor the errors of validateURL, parseContentURL and
// parseProxy repeat it, whatever comes before the "://" or after the host.
func FuzzShownRawURL(f *testing.F) {
	f.Add("https", "user", "hunter22", "example.com/repo")
	f.Add("ftp", "u", "s3cret-pw", "h")
	f.Add("http", "u", "s3cret-pw", "h:99999999/%zz")
	f.Add("file", "", "s3cret-pw", "localhost/srv")
	f.Fuzz(func(t *testing.T, scheme, user, pw, rest string) {
		// The password is a long, unique marker, so any copy of it in the
		// output is the password shown.
		pw = "PW" + pw + "PW"
		// No scheme holds an '@', '/', '?' or '#'.
		if strings.ContainsAny(user+pw, "/?#@") || strings.ContainsAny(scheme, "/?#@") || strings.Contains(user, ":") || strings.Contains(scheme, "://") ||
			strings.ContainsAny(rest, "@") || strings.Contains(scheme+user+rest, "PW") {
			return
		}
		raw := scheme + "://" + user + ":" + pw + "@" + rest
		typo := scheme + "//" + user + ":" + pw + "@" + rest // a colon missing
		shown := []string{shownRawURL(raw), shownRawURL(typo)}
		if err := validateURL(typo); err != nil {
			shown = append(shown, err.Error())
		}
		if err := validateURL(raw); err != nil {
			shown = append(shown, err.Error())
		}
		if _, err := parseContentURL(raw); err != nil {
			shown = append(shown, err.Error())
		}
		// A proxy may be given without its scheme, and a URL typed so.
		bare := user + ":" + pw + "@" + rest
		shown = append(shown, shownRawURL(bare))
		for _, p := range []string{raw, bare} {
			if _, err := parseProxy(p); err != nil {
				shown = append(shown, err.Error())
			}
		}
		if err := validateURL(bare); err != nil {
			shown = append(shown, err.Error())
		}
		for _, s := range shown {
			if strings.Contains(s, pw) {
				t.Fatalf("password of %q shown in %q", raw, s)
			}
		}
	})
}

// FuzzBranches checks that a branches= value written for a list reads
// back as that list, and one read writes back in the form OSTree writes.
func FuzzBranches(f *testing.F) {
	f.Add("os/x86_64/stable;os/x86_64/testing;")
	f.Add(" a ; ;b")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		bs := parseBranches(v)
		for _, b := range bs {
			if b == "" || b != strings.TrimSpace(b) || strings.Contains(b, ";") {
				t.Fatalf("parseBranches(%q) gives branch %q", v, b)
			}
		}
		w := formatBranches(bs)
		if got := parseBranches(w); !slices.Equal(got, bs) {
			t.Fatalf("parseBranches(%q) = %q; written as %q it reads %q", v, bs, w, got)
		}
		if len(bs) > 0 && !strings.HasSuffix(w, ";") {
			t.Fatalf("formatBranches(%q) = %q, without OSTree's final ';'", bs, w)
		}
	})
}

// A password holding an unescaped '#', '?' or '/' ends the authority
// where url.Parse reads it (as a port it refuses, or with the rest a
// fragment, query or path); it is hidden all the same, wherever a URL
// refused is shown.
func TestShownRawURLPasswordWithDelimiters(t *testing.T) {
	for _, pw := range []string{"pa#ssWORD", "pa?ssWORD", "pa/ssWORD", "12#ssWORD", "pa#s/s?WORD"} {
		for _, raw := range []string{
			"https://user:" + pw + "@host/repo",
			"https//user:" + pw + "@host/repo",
			"metalink=https://user:" + pw + "@host/m.xml",
			"user:" + pw + "@proxy:3128",
		} {
			shown := []string{shownRawURL(raw)}
			if err := validateURL(raw); err != nil {
				shown = append(shown, err.Error())
			}
			if _, err := parseContentURL(raw); err != nil {
				shown = append(shown, err.Error())
			}
			if _, err := parseProxy(raw); err != nil {
				shown = append(shown, err.Error())
			}
			for _, s := range shown {
				if strings.Contains(s, "ssWORD") {
					t.Errorf("password of %q shown in %q", raw, s)
				}
			}
			if got := shownRawURL(raw); !strings.Contains(got, "user:***@") {
				t.Errorf("shownRawURL(%q) = %q, want user:***@ in it", raw, got)
			}
		}
	}
	// A URL with an '@' only in its path is not a password to hide.
	if got := shownRawURL("https://host/a@b"); got != "https://host/a@b" {
		t.Errorf("shownRawURL of a path with '@' = %q", got)
	}
}

// A URL whose password holds an unescaped '#' or '?' reads as one for the
// host USER on port PASSWORD-head: it is refused, by remote add and pull,
// without the password, rather than fetched from there.
func TestValidateURLPasswordCutShort(t *testing.T) {
	for _, raw := range []string{
		"https://user:12#ssWORD@host/repo",
		"http://user:12?ssWORD@[::1]:8000/repo",
	} {
		for _, err := range []error{validateURL(raw), func() error { _, err := parseContentURL(raw); return err }()} {
			if err == nil {
				t.Errorf("%q taken", raw)
				continue
			}
			if strings.Contains(err.Error(), "ssWORD") || strings.Contains(err.Error(), "12") || !strings.Contains(err.Error(), "user:***@") {
				t.Errorf("%q: error %q, want the URL shown without its password", raw, err)
			}
		}
	}
	// A fragment or a query with an '@' that cannot be a password's tail.
	for _, raw := range []string{"https://host/repo#a@b", "https://host:8000/?token=a@b", "https://u:p%23w@host/repo#x"} {
		if err := validateURL(raw); err != nil {
			t.Errorf("%q refused: %v", raw, err)
		}
	}
}

// A host outside ASCII is shown as written in errors and logs, not with
// its UTF-8 %-escaped, and Go's client's own copy of the URL in its error
// is not repeated.
func TestShownURLIDNHost(t *testing.T) {
	for raw, want := range map[string]string{
		"http://bücher.example:8000/re%20po/": "http://bücher.example:8000/re%20po/",
		"https://u:pw@bücher.example/repo":    "https://u:***@bücher.example/repo",
		"https://u@[::1]:8000/repo":           "https://u@[::1]:8000/repo",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := shownURL(u); got != want {
			t.Errorf("shownURL(%q) = %q, want %q", raw, got, want)
		}
	}
	e := &FetchError{URL: "http://bücher.example/x/config", Err: &url.Error{Op: "Get", URL: "http://b%C3%BCcher.example/x/config", Err: errors.New("no such host")}}
	if got, want := e.Error(), "GET http://bücher.example/x/config: no such host"; got != want {
		t.Errorf("FetchError = %q, want %q", got, want)
	}
}
