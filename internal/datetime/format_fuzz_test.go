package datetime

import (
	"fmt"
	"testing"
	"time"
)

// civil is the proleptic Gregorian date and time of sec seconds after the
// epoch in UTC, computed by day counts alone, with no time.Time: the
// reference FormatUnix is checked against past what time.Time holds.
func civil(sec uint64) (y int64, m, d, h, mi, s int, wd time.Weekday) {
	days := int64(sec / 86400)
	rem := int(sec % 86400)
	h, mi, s = rem/3600, rem/60%60, rem%60
	wd = time.Weekday((days + 4) % 7) // 1970-01-01 was a Thursday
	z := days + 719468                // days since 0000-03-01
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	m = int(mp + 3)
	if m > 12 {
		m -= 12
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d, h, mi, s, wd
}

// FuzzFormatUnix checks that every commit timestamp, up to the largest a
// uint64 holds, is formatted as its own date: the one day counts give.
func FuzzFormatUnix(f *testing.F) {
	for _, s := range []uint64{0, 1, 86399, 951782400, 1 << 62, 1<<62 + 1, 1<<63 - 1, 1 << 63, 1<<64 - 1, 253402300799, 253402300800} {
		f.Add(s)
	}
	const layout = "Mon 2006-01-02 15:04:05"
	kathmandu := time.FixedZone("+0545", 5*3600+45*60)
	f.Fuzz(func(t *testing.T, sec uint64) {
		y, m, d, h, mi, s, wd := civil(sec)
		want := fmt.Sprintf("%s %04d-%02d-%02d %02d:%02d:%02d", wd.String()[:3], y, m, d, h, mi, s)
		if got := FormatUnix(sec, time.UTC, layout); got != want {
			t.Fatalf("FormatUnix(%d) = %q, want %q", sec, got, want)
		}
		// East of UTC, the wall clock is the UTC one of a later instant.
		const off = 5*3600 + 45*60
		if sec <= 1<<64-1-off {
			y, m, d, h, mi, s, wd := civil(sec + off)
			want := fmt.Sprintf("%s %04d-%02d-%02d %02d:%02d:%02d +0545", wd.String()[:3], y, m, d, h, mi, s)
			if got := FormatUnix(sec, kathmandu, layout+" -0700"); got != want {
				t.Fatalf("FormatUnix(%d) at +0545 = %q, want %q", sec, got, want)
			}
		}
	})
}
