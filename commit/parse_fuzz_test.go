package commit_test

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/otree/otree/commit"
)

// FuzzParseStatOverrides checks that the overrides a file gives, written
// back one per line, read back the same: the path is the rest of the line
// and the mode is the number given, added or set.
func FuzzParseStatOverrides(f *testing.F) {
	f.Add([]byte("2048 /usr/bin/sudo\n=0x1ed /usr/lib/x y\n\n+0 ./a/../b\n"))
	f.Add([]byte("=4095 /\n-1 /x\n0X7ff /z\n1 \n"))
	f.Add([]byte("493 /a\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		os, err := commit.ParseStatOverrides(data)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, o := range os {
			if o.Mode > 0o7777 || path.Clean(o.Path) != o.Path || !strings.HasPrefix(o.Path, "/") {
				t.Fatalf("%q gives %+v", data, o)
			}
			set := ""
			if o.Set {
				set = "="
			}
			fmt.Fprintf(&b, "%s%d %s\n", set, o.Mode, o.Path)
		}
		again, err := commit.ParseStatOverrides([]byte(b.String()))
		if err != nil || len(again) != len(os) {
			t.Fatalf("%q written as %q reads back as %+v, %v", data, b.String(), again, err)
		}
		for i := range os {
			if again[i] != os[i] {
				t.Fatalf("%q written as %q reads back as %+v, not %+v", data, b.String(), again[i], os[i])
			}
		}
	})
}

// FuzzParsePathnameFilter checks that a replacement is taken as OSTree
// (GLib) takes it: text without a backslash literally, "\N" as group N.
func FuzzParsePathnameFilter(f *testing.F) {
	f.Add("^usr/", "opt/$1", "usr/bin/sh")
	f.Add(`^(\w+)/(.*)$`, `\2/\1\\x`, "etc/passwd")
	f.Add(`(?P<d>[^/]+)/`, `\g<d>-\g<0>`, "a/b/c")
	f.Add("a", `\g<x}y>`, "bab")
	f.Fuzz(func(t *testing.T, expr, repl, name string) {
		if strings.Contains(expr, ",") {
			return // the first comma ends the expression
		}
		pf, err := commit.ParsePathnameFilter(expr + "," + repl)
		if err != nil {
			return
		}
		re := regexp.MustCompile(expr)
		got := pf.Regexp.ReplaceAllString(name, pf.Template)
		var want string
		if !strings.Contains(repl, `\`) {
			want = re.ReplaceAllLiteralString(name, repl)
		} else {
			// Expand "\N", "\g<N>", "\g<NAME>" and "\\" by hand, match by match.
			want = re.ReplaceAllStringFunc(name, func(m string) string {
				sub := re.FindStringSubmatch(m)
				group := func(g string) string {
					for i, n := range re.SubexpNames() {
						if fmt.Sprint(i) == g || n != "" && n == g {
							return sub[i]
						}
					}
					return ""
				}
				var b strings.Builder
				for i := 0; i < len(repl); i++ {
					if repl[i] != '\\' {
						b.WriteByte(repl[i])
						continue
					}
					i++
					switch e := repl[i]; {
					case e == '\\':
						b.WriteByte('\\')
					case e >= '0' && e <= '9':
						g := string(e) // one digit, or two
						if i+1 < len(repl) && repl[i+1] >= '0' && repl[i+1] <= '9' {
							i++
							g = fmt.Sprint(int(e-'0')*10 + int(repl[i]-'0'))
						}
						b.WriteString(group(g))
					default: // \g<...>
						end := strings.IndexByte(repl[i:], '>')
						b.WriteString(group(repl[i+2 : i+end]))
						i += end
					}
				}
				return b.String()
			})
			// Matching m alone can differ from matching in context (anchors,
			// lookaround): compare only when each match is its own.
			if re.FindStringSubmatchIndex(name) == nil || strings.ContainsAny(expr, `^$\`) {
				return
			}
		}
		if got != want {
			t.Fatalf("filter %q,%q on %q gives %q, want %q (template %q)", expr, repl, name, got, want, pf.Template)
		}
	})
}
