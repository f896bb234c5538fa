package datetime

import (
	"encoding/binary"
	"os"
	"regexp"
	"time"
)

// posixRule is the start of a POSIX TZ rule: a zone name of three or more
// letters, or one quoted in <>, then the offset's first digit.
var posixRule = regexp.MustCompile(`^([A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)[+-]?[0-9]`)

// LocalFromEnv returns the zone $TZ names when it is a POSIX rule
// ("UTC+14", "<+0545>-5:45", "CET-1CEST,M3.5.0,M10.5.0/3") rather than a
// zone file: the C library, and so OSTree, reads such a rule, while Go's
// time.Local falls back to UTC for it, which would put zone-less dates
// hours off from OSTree's. ok is false when time.Local already reads $TZ
// as the C library does: $TZ unset or empty, a ":" or "/" path, or a name
// with zone data.
func LocalFromEnv() (loc *time.Location, ok bool) {
	tz := os.Getenv("TZ")
	if !posixRule.MatchString(tz) {
		return nil, false
	}
	if _, err := time.LoadLocation(tz); err == nil {
		return nil, false
	}
	loc, err := time.LoadLocationFromTZData("Local", ruleOnly(tz))
	if err != nil {
		return nil, false
	}
	return loc, true
}

// ruleOnly is zone data (RFC 8536, version 2) with no transitions and one
// UTC type, whose footer rule alone then gives every offset.
func ruleOnly(rule string) []byte {
	var b []byte
	for range 2 { // the 32-bit block, then the 64-bit one
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		for _, n := range []uint32{0, 0, 0, 0, 1, 4} { // isut, isstd, leap, time, type, char
			b = binary.BigEndian.AppendUint32(b, n)
		}
		b = append(b, 0, 0, 0, 0, 0, 0) // type 0: offset 0, not DST, name at 0
		b = append(b, "UTC\x00"...)
	}
	return append(append(append(b, '\n'), rule...), '\n')
}
