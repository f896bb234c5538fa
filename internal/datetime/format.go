package datetime

import (
	"strconv"
	"strings"
	"time"
)

// cycle is 400 Gregorian years in seconds: the calendar, weekdays
// included, repeats after it.
const cycle = 146097 * 86400

// FormatUnix formats sec, unsigned seconds since the epoch as a commit
// stores them, in loc with layout. time.Time holds no more than about
// 2^63 seconds, and its arithmetic near there overflows, so a time past
// 2^62 is formatted 400-year cycles earlier, with the cycles added back
// to the year the layout's "2006" prints: every value gets its own date,
// not a clamped or wrapped one.
func FormatUnix(sec uint64, loc *time.Location, layout string) string {
	if sec <= 1<<62 {
		return time.Unix(int64(sec), 0).In(loc).Format(layout)
	}
	k := (sec-1<<62)/cycle + 1
	t := time.Unix(int64(sec-k*cycle), 0).In(loc)
	before, after, ok := strings.Cut(layout, "2006")
	if !ok {
		return t.Format(layout)
	}
	return t.Format(before) + strconv.FormatInt(int64(t.Year())+int64(k)*400, 10) + t.Format(after)
}
