package repo_test

import (
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// A config line of up to 64 KiB parses, as FORMAT.md §7 says, with or
// without its newline; a longer one is an error naming the line.
func TestParseConfigLineLimit(t *testing.T) {
	for _, size := range []int{64 << 10, 64<<10 + 1} {
		line := "key=" + strings.Repeat("v", size-len("key="))
		for _, text := range []string{"[core]\n" + line + "\n", "[core]\n" + line} {
			c, err := repo.ParseConfig([]byte(text))
			switch {
			case size <= 64<<10 && err != nil:
				t.Errorf("line of %d bytes: %v", size, err)
			case size <= 64<<10:
				if v, _ := c.Get("core.key"); len(v) != size-len("key=") {
					t.Errorf("line of %d bytes: value of %d bytes", size, len(v))
				}
			case err == nil || !strings.Contains(err.Error(), "line 2"):
				t.Errorf("line of %d bytes: %v, want an error naming line 2", size, err)
			}
		}
	}
}

// A line with nothing before its '=' is an error naming the line, as in
// GLib's key files (OSTree does not open such a repository).
func TestParseConfigEmptyKey(t *testing.T) {
	for _, text := range []string{"[core]\nmode=archive\n=1\n", "[core]\nmode=archive\n  \t= x\n"} {
		if _, err := repo.ParseConfig([]byte(text)); err == nil || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("%q: %v, want an error naming line 3", text, err)
		}
	}
}

// SetIn refuses what would make the file unreadable to OSTree, which
// refuses a config that is not UTF-8 and, as GLib does, a section named
// with a control character; the error names the key or section.
func TestConfigSetRefusesWhatOSTreeCannotRead(t *testing.T) {
	for _, tc := range []struct{ section, key, value, name string }{
		{"core", "title", "caf\xe9", `"title"`},
		{"core", "tit\xffle", "x", `"tit\xffle"`},
		{"co\xffre", "title", "x", `"co\xffre"`},
		{"co\x01re", "title", "x", `"co\x01re"`},
		{"co\tre", "title", "x", `"co\tre"`},
		{"co\x7fre", "title", "x", `"co\x7fre"`},
	} {
		c, _ := repo.ParseConfig(nil)
		err := c.SetIn(tc.section, tc.key, tc.value)
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("SetIn(%q, %q, %q) = %v, want an error naming %s", tc.section, tc.key, tc.value, err, tc.name)
		}
		if len(c.Bytes()) != 0 {
			t.Errorf("SetIn(%q, %q, %q) wrote %q", tc.section, tc.key, tc.value, c.Bytes())
		}
	}
	// Other characters, and a control character in a key or value, GLib
	// reads.
	c, _ := repo.ParseConfig(nil)
	for _, kv := range [][3]string{{"remote \"café\"", "xa.title", "Été"}, {"core", "k\x01ey", "a\x01b"}} {
		if err := c.SetIn(kv[0], kv[1], kv[2]); err != nil {
			t.Errorf("SetIn(%q, %q, %q): %v", kv[0], kv[1], kv[2], err)
		}
	}
}

// Only the ASCII whitespace GLib trims is trimmed (not \v): a value or
// key OSTree wrote with \v, U+00A0 or U+3000 at an end reads as OSTree reads it,
// and config set takes such a value and writes it so.
func TestParseConfigKeepsUnicodeSpaces(t *testing.T) {
	c, err := repo.ParseConfig([]byte("[x]\nt=\u00a0Foo\u3000\nk\u00a0=v\n\f u = \f\n\vw=\v\n"))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"t": "\u00a0Foo\u3000", "k\u00a0": "v", "u": "", "\vw": "\v"} {
		if v, ok := c.GetIn("x", k); !ok || v != want {
			t.Errorf("x.%q = %q, %v; want %q", k, v, ok, want)
		}
	}
	if err := c.SetIn("x", "n", "\u0085Bar\u00a0"); err != nil {
		t.Fatal(err)
	}
	c2, err := repo.ParseConfig(c.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c2.GetIn("x", "n"); v != "\u0085Bar\u00a0" {
		t.Errorf("set %q, read back %q from %q", "\u0085Bar\u00a0", v, c.Bytes())
	}
}

// Bytes keeps the text of a value it did not change, so that what GLib
// reads of it stays: the spaces that end it (which GLib keeps and otree
// trims), and its escapes; the last of a repeated key counts. A value
// changed is written anew.
func TestConfigBytesKeepsUnchangedValues(t *testing.T) {
	c, err := repo.ParseConfig([]byte("[x]\nt=Foo  \nu = a\\sb \\\\ \nv=1\nw=old \n[x]\nv=2  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetIn("x", "w", "new"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetIn("x", "n", "1"); err != nil {
		t.Fatal(err)
	}
	want := "[x]\nt=Foo  \nu=a\\sb \\\\ \nv=2  \nw=new\nn=1\n"
	if got := string(c.Bytes()); got != want {
		t.Errorf("config written as %q, want %q", got, want)
	}
	for k, v := range map[string]string{"t": "Foo", "u": `a b \`, "v": "2"} {
		if got, _ := c.GetIn("x", k); got != v {
			t.Errorf("x.%s = %q, want %q", k, got, v)
		}
	}
}

// A key set is written as set even when otree read that value already:
// the text read may end in spaces otree trims and GLib keeps, and kept,
// OSTree would go on reading a value other than the one set.
func TestConfigSetSameValueWritesIt(t *testing.T) {
	c, err := repo.ParseConfig([]byte("[x]\nt=Foo  \nu=a\\tb\t\nv=keep  \n"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"t": "Foo", "u": "a\tb"} {
		if got, _ := c.GetIn("x", k); got != v {
			t.Fatalf("x.%s = %q, want %q", k, got, v)
		}
		if err := c.SetIn("x", k, v); err != nil {
			t.Fatal(err)
		}
	}
	want := "[x]\nt=Foo\nu=a\\tb\nv=keep  \n"
	if got := string(c.Bytes()); got != want {
		t.Errorf("config written as %q, want %q", got, want)
	}
}
