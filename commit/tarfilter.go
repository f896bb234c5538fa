package commit

import (
	"fmt"
	"regexp"
	"strings"
)

// PathnameFilter renames tar entries as they are imported (OSTree's
// --tar-pathname-filter): every match of Regexp in an entry's name, and in
// a hardlink's target, is replaced by Template. The result must still be a
// name inside the tree.
type PathnameFilter struct {
	Regexp *regexp.Regexp // what to replace in each name and hardlink target; required
	// Template is the replacement as regexp.Regexp.Expand takes it
	// ($1, ${name}, $$ for a dollar sign).
	Template string
}

// ParsePathnameFilter parses OSTree's REGEX,REPLACEMENT (split at the first
// comma). The replacement is written as in OSTree (GLib): \0 to \99 and
// \g<name> or \g<number> for groups, \\ for a backslash; a dollar sign is
// literal. As in GLib, a backslash takes two digits when they follow
// ("\10" is group 10, not group 1 and "0"); where GLib reads an octal
// character code ("\01", "\123"), the filter is refused.
func ParsePathnameFilter(s string) (*PathnameFilter, error) {
	expr, repl, ok := strings.Cut(s, ",")
	if !ok {
		return nil, fmt.Errorf("invalid pathname filter %q: want REGEX,REPLACEMENT", s)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid pathname filter %q: %w", s, err)
	}
	var t strings.Builder
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		switch {
		case c == '$':
			t.WriteString("$$")
		case c != '\\':
			t.WriteByte(c)
		case i+1 == len(repl):
			return nil, fmt.Errorf("invalid pathname filter %q: replacement ends in a backslash", s)
		default:
			i++
			switch e := repl[i]; {
			case e >= '0' && e <= '9':
				digits := repl[i : i+1]
				if next := i + 1; next < len(repl) && isDigit(repl[next]) {
					// GLib: "\0" then a digit, or three octal digits, is an
					// octal character code; else two digits name a group.
					if e == '0' || next+1 < len(repl) && isOctal(e) && isOctal(repl[next]) && isOctal(repl[next+1]) {
						return nil, fmt.Errorf("invalid pathname filter %q: \\%s is an octal character code in OSTree (GLib); write the character itself, or \\g<N> for group N followed by digits", s, repl[i:min(len(repl), next+2)])
					}
					digits = repl[i : next+1]
					i = next
				}
				fmt.Fprintf(&t, "${%s}", digits)
			case e == '\\':
				t.WriteByte('\\')
			case e == 'g' && i+1 < len(repl) && repl[i+1] == '<':
				end := strings.IndexByte(repl[i:], '>')
				if end < 0 {
					return nil, fmt.Errorf("invalid pathname filter %q: unterminated \\g<", s)
				}
				// A group is named by a number or a word, as in GLib; anything
				// else would not stay one ${...} reference ("x}y").
				name := repl[i+2 : i+end]
				if name == "" || strings.TrimLeft(name, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") != "" {
					return nil, fmt.Errorf("invalid pathname filter %q: \\g<%s> names no group", s, name)
				}
				fmt.Fprintf(&t, "${%s}", name)
				i += end
			default:
				return nil, fmt.Errorf("invalid pathname filter %q: unsupported escape \\%c in the replacement", s, e)
			}
		}
	}
	return &PathnameFilter{Regexp: re, Template: t.String()}, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func (f *PathnameFilter) apply(name string) string {
	if f == nil {
		return name
	}
	return f.Regexp.ReplaceAllString(name, f.Template)
}
