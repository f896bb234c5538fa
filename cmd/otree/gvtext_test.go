package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
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
		// Escapes GVariant text lacks are refused, where GLib drops the
		// backslash (docs/FORMAT.md §13).
		`'\x41'`:    "",
		`'\101'`:    "",
		`b'\u0041'`: "",
		`b'\400'`:   "",
		`b'\a\101'`: "\a\x41",
		`@as ['x']`: "",
		`int32 x`:   "",
		``:          "",
		// A type must fit the value, and a number its type (an untyped
		// integer is an int32), as GVariant text reads them.
		`string 'x'`:              "x",
		`boolean true`:            "true",
		`@y 255`:                  "255",
		`byte -0`:                 "-0",
		`-2147483648`:             "-2147483648",
		`@x -0x8000000000000000`:  "-0x8000000000000000",
		`@t 18446744073709551615`: "18446744073709551615",
		`double 5`:                "5",
		`0777`:                    "0777",
		`-0x1e`:                   "-0x1e",
		`@s 5`:                    "",
		`@b 1`:                    "",
		`@b 'x'`:                  "",
		`@y 'x'`:                  "",
		`@s b'x'`:                 "",
		`double true`:             "",
		`byte 300`:                "",
		`byte -1`:                 "",
		`int16 32768`:             "",
		`@q 65536`:                "",
		`@u -1`:                   "",
		`@t -1`:                   "",
		`@x 0x8000000000000000`:   "",
		`@t 18446744073709551616`: "",
		`2147483648`:              "",
		`-2147483649`:             "",
		`5000000000`:              "",
		`@t 1.5`:                  "",
		`@i 1.0`:                  "",
		`uint64 1e3`:              "",
		`1E3`:                     "",
		`08`:                      "",
		`double 1e999`:            "",
		`objectpath '/a'`:         "",
		`true false`:              "",
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
// booleans: the values both print, read back as GVariant text, are the
// same bytes; a string and a bytestring that is not UTF-8 print as in
// OSTree. (A boolean or a UTF-8 bytestring prints as a string: otree
// keeps no type. OSTree 2022.7 prints its numbers byte-swapped, so they
// are not compared.)
func TestAddMetadataParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "archive")
	c := newCLI(t)
	src := source(t, fixture)
	for i, v := range []string{`'1.0'`, `"dq"`, `'esc\n\tq'`, `@s 'x'`, `b'by\001tes'`, `true`, `'\u00e9'`, `b'\377\200"'`} {
		branch := "b" + string(rune('a'+i)) + "x"
		c.ok("commit", "-b", branch, "--add-metadata=k="+v, src)
		o.ok("commit", "-b", branch, "--add-metadata=k="+v, src)
		mine, theirs := c.ok("show", "--print-metadata-key=k", branch), o.ok("show", "--print-metadata-key=k", branch)
		got, err1 := gvariantValue(mine)
		want, err2 := gvariantValue(theirs)
		if err1 != nil || err2 != nil || string(got) != string(want) {
			t.Errorf("%s: otree stores %q (%v), OSTree %q (%v)", v, got, err1, want, err2)
		}
		if typed := v == "true" || strings.HasPrefix(v, "b'by"); mine != theirs && !typed {
			t.Errorf("%s: otree prints %q, OSTree %q", v, mine, theirs)
		}
	}
	c.fails(exitUsage, []string{"containers", "hint: --add-metadata-string=KEY=VALUE"}, "commit", "-b", "bad", "--add-metadata=k=['a']", src)
	// A type that does not fit the value, or a number out of its type's
	// range (an untyped integer is an int32), is refused by both.
	for _, v := range []string{`@s 5`, `@b 'x'`, `byte 300`, `@t -1`, `int16 32768`, `5000000000`, `@t 1.5`, `1E3`, `08`} {
		c.fails(exitUsage, []string{strconv.Quote(v)}, "commit", "-b", "bad", "--add-metadata=k="+v, src)
		if out, err := o.run("commit", "-b", "bad", "--add-metadata=k="+v, src); err == nil {
			t.Errorf("%s: OSTree took it (%s); the case no longer shows what OSTree refuses", v, out)
		}
	}
}

// show --print-metadata-key and --print-detached-metadata-key print a
// string as OSTree does, quoted and escaped in GVariant text, and the ref
// binding as OSTree prints its own (ostree.ref-binding).
func TestShowMetadataKeyParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "archive")
	c := newCLI(t)
	src := source(t, fixture)
	for i, v := range []string{"1.0", "it's", `say "hi"`, `both ' and "`, "tab\there\nnl", "\x01\x7f\x1b[0m", "bell\a\b\f\v\r",
		`back\slash`, "\u200b zwsp", "\u00a0nbsp \u0085nel \u00ad", "é ü 日本 😀", "", "$x%s", "\U000e0001 \ue000 \U000f0000",
		"\u0378 \u2028\u2029 \u200e\ufeff"} {
		branch := fmt.Sprint("s", i)
		args := []string{"commit", "-b", branch, "--add-metadata-string=k=" + v, "--add-detached-metadata-string=d=" + v, src}
		c.ok(args...)
		o.ok(args...)
		for _, flag := range []string{"--print-metadata-key=k", "--print-detached-metadata-key=d"} {
			if mine, theirs := c.ok("show", flag, branch), o.ok("show", flag, branch); mine != theirs {
				t.Errorf("%q: show %s: otree %q, OSTree %q", v, flag, mine, theirs)
			}
		}
	}
	args := []string{"commit", "-b", "os/stable", "--bind-ref=os/lts", "--bind-ref=a/b", src}
	c.ok(args...)
	o.ok(args...)
	mine, theirs := c.ok("show", "--print-metadata-key="+repo.RefBindingKey, "os/stable"), o.ok("show", "--print-metadata-key=ostree.ref-binding", "os/stable")
	if want := "['a/b', 'os/lts', 'os/stable']\n"; mine != want || theirs != want {
		t.Errorf("ref binding: otree %q, OSTree %q, want %q", mine, theirs, want)
	}
}

// metadataText writes what OSTree 2022.7 prints for the same values
// (these are its outputs); otree's own keys take the types OSTree gives
// the same facts.
func TestMetadataText(t *testing.T) {
	sig := func(b byte) string { return strings.Repeat(string(rune(b)), 64) }
	for _, tc := range []struct{ key, value, want string }{
		{"k", "1.0", "'1.0'"},
		{"k", "it's", `"it's"`},
		{"k", `both ' and "`, `"both ' and \""`},
		{"k", "bell\a\b\f\v\r\t\n\\", `'bell\a\b\f\v\r\t\n\\'`},
		{"k", "\x01\x7f\u0085\u200b\U000e0001", `'\u0001\u007f\u0085\u200b\U000e0001'`},
		{"k", "é\u00a0\ue000\u2028", "'é\u00a0\ue000\u2028'"},
		{"k", "\u0378", `'\u0378'`},
		{"k", "", "''"},
		{"k", "\xff\x80", `b'\377\200'`},
		{"k", "\xff\a\b\f\v\r\t\n\\\x1f ~\x7f", `b'\377\007\b\f\v\r\t\n\\\037 ~\177'`},
		{"k", "\xff'\"", `b"\377'\""`},
		{"k", "\xff\"", `b'\377\"'`},
		{"k", "A\x00B", "[byte 0x41, 0x00, 0x42]"},
		{"k", "\xc3\xa9\x00", `b'\303\251'`},
		{"ostree.bootable", "true", "true"},
		{"ostree.bootable", "yes", "'yes'"},
		{repo.RefBindingKey, "a/b\nos/stable", "['a/b', 'os/stable']"},
		{repo.RefBindingKey, "", "@as []"},
		{sign.MetadataKey, sig(1) + sig(2), "[[byte " + strings.Repeat("0x01, ", 63) + "0x01], [" + strings.Repeat("0x02, ", 63) + "0x02]]"},
		{sign.MetadataKey, "short", "'short'"},
	} {
		if got := metadataText(tc.key, []byte(tc.value)); got != tc.want {
			t.Errorf("metadataText(%q, %q) = %s, want %s", tc.key, tc.value, got, tc.want)
		}
	}
}

// FuzzGVariantValue checks that a number is taken only in a form GVariant
// text has (as OSTree's --add-metadata parses it), and that a string value,
// quoted again, reads back as itself.
func FuzzGVariantValue(f *testing.F) {
	for _, s := range []string{`'a\'b'`, `"x\u00e9"`, `b'\001'`, `uint64 5`, `1_000`, `0b1`, `-0O7`, `0x1F`, `1.5e3`, `@s 'x'`, `int32 +0x_1`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := gvariantValue(s)
		if err != nil {
			return
		}
		text := strings.TrimSpace(s)
		if _, rest, ok := strings.Cut(text, " "); ok && !strings.ContainsAny(text[:1], `'"b`) {
			text = strings.TrimSpace(rest)
		}
		if !strings.ContainsAny(text[:1], `'"b`) && text != "true" && text != "false" {
			digits := strings.ToLower(strings.TrimLeft(text, "+-"))
			if strings.Contains(text, "_") || strings.HasPrefix(digits, "0b") || strings.HasPrefix(digits, "0o") {
				t.Fatalf("gvariantValue(%q) = %q, a number GVariant text does not have", s, v)
			}
			return
		}
		if !utf8.Valid(v) || strings.HasPrefix(text, "b") {
			return
		}
		var q strings.Builder
		q.WriteByte('\'')
		for _, r := range string(v) {
			switch {
			case r == '\'' || r == '\\':
				q.WriteString(`\` + string(r))
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&q, `\u%04x`, r)
			default:
				q.WriteRune(r)
			}
		}
		q.WriteByte('\'')
		if again, err := gvariantValue(q.String()); err != nil || !bytes.Equal(again, v) {
			t.Fatalf("gvariantValue(%q) = %q; quoted as %s it reads %q, %v", s, v, q.String(), again, err)
		}
	})
}
