package datetime

import (
	"testing"
	"time"
)

func TestLocalFromEnv(t *testing.T) {
	at := time.Date(2024, 1, 31, 12, 0, 0, 0, time.UTC)
	summer := time.Date(2024, 7, 31, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		tz          string
		ok          bool
		off, sumOff int // seconds east of UTC in January and July
	}{
		{"UTC+14", true, -14 * 3600, -14 * 3600}, // POSIX signs: west of UTC
		{"UTC-14", true, 14 * 3600, 14 * 3600},
		{"<+0545>-5:45", true, 5*3600 + 45*60, 5*3600 + 45*60},
		{"CET-1CEST,M3.5.0,M10.5.0/3", true, 3600, 7200},
		{"Asia/Kathmandu", false, 0, 0}, // zone data: time.Local reads it
		{":UTC+14", false, 0, 0},
		{"/nonexistent", false, 0, 0},
		{"", false, 0, 0},
		{"UTC", false, 0, 0},
	} {
		t.Setenv("TZ", c.tz)
		loc, ok := LocalFromEnv()
		if ok != c.ok {
			t.Errorf("TZ=%q: ok = %v, want %v", c.tz, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if _, off := at.In(loc).Zone(); off != c.off {
			t.Errorf("TZ=%q: January offset %d, want %d", c.tz, off, c.off)
		}
		if _, off := summer.In(loc).Zone(); off != c.sumOff {
			t.Errorf("TZ=%q: July offset %d, want %d", c.tz, off, c.sumOff)
		}
		if got, err := Parse("2024-01-31 12:00", at, loc); err != nil || got.Unix() != at.Unix()-int64(c.off) {
			t.Errorf("TZ=%q: 2024-01-31 12:00 read as %v, %v", c.tz, got.UTC(), err)
		}
	}
}
