// Package quote writes names from trees, which anyone may have chosen, so
// that each reads as one line.
package quote

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Path returns p, or p Go-quoted when it holds invalid UTF-8 or a
// character that does not print (a control character, C1 ones too, or a
// format character such as U+202E, which reorders what a terminal shows),
// or starts with '"': one path is always one line that reads as it is.
func Path(p string) string {
	if !utf8.ValidString(p) || strings.HasPrefix(p, `"`) || strings.ContainsFunc(p, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return strconv.Quote(p)
	}
	return p
}
