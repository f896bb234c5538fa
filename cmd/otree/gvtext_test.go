package main

import (
	"strconv"
	"strings"
	"testing"
)

func TestGVariantValue(t *testing.T) {
	for in, want := range map[string]string{
		`'1.0'`:              "1.0",
		`"dq"`:               "dq",
		`"it's"`:             "it's",
		`'a\'b'`:             "a'b",
		`'esc\n\tq\\'`:       "esc\n\tq\\",
		`'\u00e9\U0001F600'`: "é😀",
		`@s 'x'`:             "x",
		`b'by\001tes\x'`:     "",
		`b'by\001\377'`:      "by\x01\xff",
		`true`:               "true",
		` false `:            "false",
		`42`:                 "42",
		`-7`:                 "-7",
		`uint64 5`:           "5",
		`@t 5`:               "5",
		`0x10`:               "0x10",
		`1.5e3`:              "1.5e3",
		`double 2.5`:         "2.5",
		`['a', 'b']`:         "",
		`{'a': <1>}`:         "",
		`<'v'>`:              "",
		`nonsense`:           "",
		`'open`:              "",
		`'a'b'`:              "",
		`'\q'`:               "",
		`'\u12'`:             "",
		`b'\777'`:            "",
		`@as ['x']`:          "",
		`int32 x`:            "",
		``:                   "",
	} {
		got, err := gvariantValue(in)
		if want == "" {
			if err == nil {
				t.Errorf("%q: got %q, want an error", in, got)
			} else if !strings.Contains(err.Error(), strconv.Quote(in)) {
				t.Errorf("%q: error %q does not quote the value", in, err)
			}
			continue
		}
		if err != nil || string(got) != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
}

// --add-metadata stores what OSTree stores for strings, bytestrings and
// booleans: OSTree's printed value, read back as GVariant text, is the
// bytes otree prints. (OSTree 2022.7 prints its numbers byte-swapped, so
// they are not compared.)
func TestAddMetadataParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "archive")
	c := newCLI(t)
	src := source(t, fixture)
	for i, v := range []string{`'1.0'`, `"dq"`, `'esc\n\tq'`, `@s 'x'`, `b'by\001tes'`, `true`, `'\u00e9'`} {
		branch := "b" + string(rune('a'+i)) + "x"
		c.ok("commit", "-b", branch, "--add-metadata=k="+v, src)
		o.ok("commit", "-b", branch, "--add-metadata=k="+v, src)
		got := strings.TrimSuffix(c.ok("show", "--print-metadata-key=k", branch), "\n")
		want, err := gvariantValue(strings.TrimSpace(o.ok("show", "--print-metadata-key=k", branch)))
		if err != nil || got != string(want) {
			t.Errorf("%s: otree stores %q, OSTree %q (%v)", v, got, want, err)
		}
	}
	c.fails(exitUsage, []string{"containers"}, "commit", "-b", "bad", "--add-metadata=k=['a']", src)
}
