package commit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// StatOverride changes the permission bits recorded for one path of the
// tree, as a line of OSTree's --statoverride file does.
type StatOverride struct {
	Path string // in the tree, "/usr/bin/sudo"
	// Set replaces the permission bits with Mode; otherwise Mode's bits
	// are added to them.
	Set  bool
	Mode uint32 // permission bits, within 07777
}

func (o *StatOverride) apply(mode uint32) uint32 {
	if o.Set {
		return mode&^0o7777 | o.Mode
	}
	return mode | o.Mode
}

// ParseStatOverrides reads OSTree's --statoverride format: one override
// per line, "MODE PATH" to add MODE's bits to PATH's, "=MODE PATH" to set
// them. MODE is a decimal number as in OSTree (2048 is 04000, setuid), or
// hexadecimal after 0x, with an optional "+"; PATH is the rest of the
// line, taken exactly as written, as OSTree takes it: a path no entry
// could have (relative, with a trailing slash, an empty, "." or ".."
// component), which OSTree would report unmatched, is refused rather than
// tidied into one that matches. Empty lines are skipped. For a path given
// twice the last line wins, but that, as in OSTree, a "MODE PATH" line
// wins over any "=MODE PATH" line for the same path, before it or after.
func ParseStatOverrides(data []byte) ([]StatOverride, error) {
	var out []StatOverride
	adds := map[string]bool{} // paths with a "MODE PATH" line
	for n, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		mode, p, ok := strings.Cut(line, " ")
		if !ok || p == "" {
			return nil, fmt.Errorf("line %d %q: want MODE PATH", n+1, line)
		}
		if p != "/" {
			if err := checkTreePath("path", p); err != nil {
				return nil, fmt.Errorf("line %d %q: %w", n+1, line, err)
			}
		}
		o := StatOverride{Path: p}
		if o.Set = strings.HasPrefix(mode, "="); o.Set {
			mode = mode[1:]
		}
		mode = strings.TrimPrefix(mode, "+")
		var v uint64
		var err error
		if h, ok := strings.CutPrefix(strings.ToLower(mode), "0x"); ok {
			v, err = strconv.ParseUint(h, 16, 32)
		} else {
			v, err = strconv.ParseUint(mode, 10, 32)
		}
		if err != nil || v > 0o7777 {
			return nil, fmt.Errorf("line %d %q: mode %q is not a decimal (or 0x hexadecimal) number of permission bits (at most 4095, 07777)", n+1, line, mode)
		}
		o.Mode = uint32(v)
		out = append(out, o)
		if !o.Set {
			adds[o.Path] = true
		}
	}
	// Dropped here, so that whoever applies them in order, a later line
	// winning, gets OSTree's result.
	return slices.DeleteFunc(out, func(o StatOverride) bool { return o.Set && adds[o.Path] }), nil
}
