package remote

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzCookies checks that every cookie add-cookie accepts reads back from
// the file written for it, and that the cookies read from any file, when
// add-cookie would take them, are written in a form that reads back.
func FuzzCookies(f *testing.F) {
	f.Add([]byte("# Netscape HTTP Cookie File\nexample.com\tFALSE\t/\tFALSE\t0\tsession\tlet me in\n#HttpOnly_h\tTRUE\t/p\tTRUE\t1\tn\tv\r\n"), "example.com", "/", "session", "a b")
	f.Add([]byte("a\tb\n"), "#host", "/", "n", "v")
	f.Add([]byte(""), "#HttpOnly_h", "/x", "n", "v")
	f.Add([]byte(""), "h", "/x", "n", strings.Repeat("v", 70000)) // longer than a bufio.Scanner line
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, data []byte, domain, path, name, value string) {
		c := Cookie{Domain: domain, Path: path, Name: name, Value: value}
		if c.check() == nil {
			file := formatCookies([]Cookie{c}, now.Add(time.Hour))
			if got, err := parseCookies("f", file, now); err != nil || !slices.Equal(got, []Cookie{c}) {
				t.Fatalf("cookie %.200q written as %.200q reads back as %.200q, %v", fmt.Sprint(c), file, fmt.Sprint(got), err)
			}
		}
		cs, err := parseCookies("f", data, now)
		if err != nil {
			return
		}
		cs = slices.DeleteFunc(cs, func(c Cookie) bool { return c.check() != nil })
		file := formatCookies(cs, now.Add(time.Hour))
		if got, err := parseCookies("f", file, now); err != nil || !slices.Equal(got, cs) {
			t.Fatalf("cookies %.200q written as %.200q read back as %.200q, %v", fmt.Sprint(cs), file, fmt.Sprint(got), err)
		}
	})
}
