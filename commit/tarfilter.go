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
// comma). The replacement is written as in OSTree (GLib): \0 to \9 and
// \g<name> or \g<number> for groups, \\ for a backslash; a dollar sign is
// literal.
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
				fmt.Fprintf(&t, "${%c}", e)
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

func (f *PathnameFilter) apply(name string) string {
	if f == nil {
		return name
	}
	return f.Regexp.ReplaceAllString(name, f.Template)
}
