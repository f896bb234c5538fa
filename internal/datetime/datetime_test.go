package datetime

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no zone data for %s: %v", name, err)
	}
	return loc
}

// The expected times are what OSTree 2022.7's --timestamp stored for the
// same strings, with TZ and the clock as here.
func TestParseTokyo(t *testing.T) {
	tokyo := load(t, "Asia/Tokyo")
	now := time.Date(2026, 12, 5, 23, 2, 8, 500_000_000, tokyo) // a Saturday
	jst := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, tokyo)
	}
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		// Calendar dates and times without a zone are local.
		{"2020-01-01 12:00:00", jst(2020, 1, 1, 12, 0, 0, 0)},
		{"2020-01-01 12:00", jst(2020, 1, 1, 12, 0, 0, 0)},
		{"2020-01-01T12:00:00", jst(2020, 1, 1, 12, 0, 0, 0)},
		{"2020-01-01 T12:00", jst(2020, 1, 1, 12, 0, 0, 0)},
		{"2020-01-01", jst(2020, 1, 1, 0, 0, 0, 0)},
		{"2020-1-1", jst(2020, 1, 1, 0, 0, 0, 0)},
		{"2020-01-01 1:2:3", jst(2020, 1, 1, 1, 2, 3, 0)},
		{"2020-01-01 12:00:00.75", jst(2020, 1, 1, 12, 0, 0, 750_000_000)},
		{"69-01-01", jst(1969, 1, 1, 0, 0, 0, 0)},
		{"68-01-01", jst(2068, 1, 1, 0, 0, 0, 0)},
		{"Nov 30 2026", jst(2026, 11, 30, 0, 0, 0, 0)},
		{"Nov. 30 2026", jst(2026, 11, 30, 0, 0, 0, 0)},
		{"30 Nov 2026", jst(2026, 11, 30, 0, 0, 0, 0)},
		{"November 30, 2026", jst(2026, 11, 30, 0, 0, 0, 0)},
		{"Jan 31, 26", jst(2026, 1, 31, 0, 0, 0, 0)},
		{"30-Nov-2026", jst(2026, 11, 30, 0, 0, 0, 0)},
		{"11/30/2026", jst(2026, 11, 30, 0, 0, 0, 0)},
		{"1/2/20", jst(2020, 1, 2, 0, 0, 0, 0)},
		{"2026/11/30", jst(2026, 11, 30, 0, 0, 0, 0)},
		{"Nov 30", jst(2026, 11, 30, 0, 0, 0, 0)},
		{"Sept 1", jst(2026, 9, 1, 0, 0, 0, 0)},
		{"Jan 1 12:00 2020", jst(2020, 1, 1, 12, 0, 0, 0)},
		{"12:00", jst(2026, 12, 5, 12, 0, 0, 0)},
		{"10am", jst(2026, 12, 5, 10, 0, 0, 0)},
		{"10:30 PM", jst(2026, 12, 5, 22, 30, 0, 0)},
		{"12am", jst(2026, 12, 5, 0, 0, 0, 0)},
		{"12:00 pm", jst(2026, 12, 5, 12, 0, 0, 0)},
		{"monday 2020-01-01", jst(2020, 1, 1, 0, 0, 0, 0)}, // the date wins

		// Years as written, but for two digits.
		{"1-01-01", jst(1, 1, 1, 0, 0, 0, 0)},
		{"020-01-01", jst(20, 1, 1, 0, 0, 0, 0)},
		{"02024-01-31", jst(2024, 1, 31, 0, 0, 0, 0)},
		{"1/2/3", jst(3, 1, 2, 0, 0, 0, 0)},
		{"31 Jan 5", jst(5, 1, 31, 0, 0, 0, 0)},
		{"31-Jan-5", jst(5, 1, 31, 0, 0, 0, 0)},
		{"Jan 31, 5", jst(5, 1, 31, 0, 0, 0, 0)},

		// Numbers standing alone: a date by five digits or more, a year
		// after a date without one, else a time.
		{"20240131", jst(2024, 1, 31, 0, 0, 0, 0)},
		{"240131", jst(2024, 1, 31, 0, 0, 0, 0)},
		{"10131", jst(1, 1, 31, 0, 0, 0, 0)},
		{"20240131 1200", jst(2024, 1, 31, 12, 0, 0, 0)},
		{"1200 20240131", jst(2024, 1, 31, 12, 0, 0, 0)},
		{"2024-01-31 1530", jst(2024, 1, 31, 15, 30, 0, 0)},
		{"2024-01-31 930", jst(2024, 1, 31, 9, 30, 0, 0)},
		{"2024-01-31 9", jst(2024, 1, 31, 9, 0, 0, 0)},
		{"2024-01-31 0", jst(2024, 1, 31, 0, 0, 0, 0)},
		{"2024-01-31 0012", jst(2024, 1, 31, 0, 12, 0, 0)},
		{"1200", jst(2026, 12, 5, 12, 0, 0, 0)},
		{"12", jst(2026, 12, 5, 12, 0, 0, 0)},
		{"2024", jst(2026, 12, 5, 20, 24, 0, 0)}, // a time, as GNU reads it
		{"Jan 31 1200", jst(1200, 1, 31, 0, 0, 0, 0)},
		{"Jan 31 12", jst(2026, 1, 31, 12, 0, 0, 0)},
		{"Jan 31 12:00 24", jst(2024, 1, 31, 12, 0, 0, 0)},
		{"Jan 31 2024 1200", jst(2024, 1, 31, 12, 0, 0, 0)},
		{"Jan 1 2020 2021", jst(2020, 1, 1, 20, 21, 0, 0)},
		{"1/31 2024", jst(2024, 1, 31, 0, 0, 0, 0)},
		{"Jan 31 +1 day 2024", jst(2026, 2, 1, 20, 24, 0, 0)}, // after a relative item, a time
		{"now 2024", jst(2026, 12, 5, 20, 24, 0, 0)},
		{"monday 1200", jst(2026, 12, 7, 12, 0, 0, 0)},
		{"yesterday 1200", jst(2026, 12, 4, 12, 0, 0, 0)},
		{"20240131 -1 day", jst(2024, 1, 30, 0, 0, 0, 0)},
		{"20240131 1 day ago", jst(2024, 1, 30, 0, 0, 0, 0)},
		{"1200 -3 days", jst(2026, 12, 2, 12, 0, 0, 0)},
		{"Jan 31 2024 +1 day", jst(2024, 2, 1, 0, 0, 0, 0)},

		// Zones.
		{"2020-01-01T12:00:00Z", utc(2020, 1, 1, 12, 0, 0)},
		{"2020-01-01 12:00:00z", utc(2020, 1, 1, 12, 0, 0)},
		{"2020-01-01T12:00:00.5Z", utc(2020, 1, 1, 12, 0, 0).Add(500 * time.Millisecond)},
		{"2020-01-01T01:02:03,5Z", utc(2020, 1, 1, 1, 2, 3).Add(500 * time.Millisecond)},
		{"2020-01-01 12:00:00 UTC", utc(2020, 1, 1, 12, 0, 0)},
		{"2020-01-01 12:00:00 gmt", utc(2020, 1, 1, 12, 0, 0)},
		{"2020-01-01 12:00:00 +0200", utc(2020, 1, 1, 10, 0, 0)},
		{"2020-01-01T12:00:00+02:00", utc(2020, 1, 1, 10, 0, 0)},
		{"2020-01-01 12:00 -05", utc(2020, 1, 1, 17, 0, 0)},
		{"2020-01-01 12:00 +5:30", utc(2020, 1, 1, 6, 30, 0)},
		{"2020-01-01 12:00 UTC+2", utc(2020, 1, 1, 10, 0, 0)},
		{"2020-01-01 12:00 EST", utc(2020, 1, 1, 17, 0, 0)},
		{"2020-01-01 EST", utc(2020, 1, 1, 5, 0, 0)},
		{"Thu, 01 Jan 2020 12:00:00 +0000", utc(2020, 1, 1, 12, 0, 0)},
		{"Wed Jan  1 12:00:00 UTC 2020", utc(2020, 1, 1, 12, 0, 0)},
		{"12:00 UTC", utc(2026, 12, 5, 12, 0, 0)}, // today's local date
		{"2020-01-01 12:00:00 +0200 +1 day", utc(2020, 1, 2, 10, 0, 0)},
		{"now UTC", utc(2026, 12, 5, 23, 2, 8).Add(500 * time.Millisecond)}, // the local wall clock, read as UTC
		// A 24-hour time or an hour takes an offset; a count follows a zone.
		{"10:00 +5", utc(2026, 12, 5, 5, 0, 0)},
		{"12 +5", utc(2026, 12, 5, 7, 0, 0)},
		{"2024-01-31 12 +5", utc(2024, 1, 31, 7, 0, 0)},
		{"2024-01-31 12 -05:30", utc(2024, 1, 31, 17, 30, 0)},
		{"2024-01-31T12+05", utc(2024, 1, 31, 7, 0, 0)},
		{"2024-01-31 12 +5:00 -1 day", utc(2024, 1, 30, 7, 0, 0)},
		{"2024-01-01 12:00 UTC -1 day", utc(2023, 12, 31, 12, 0, 0)},
		{"2024-01-01 12:00 UTC+2 days", utc(2024, 1, 3, 12, 0, 0)},
		{"2024-01-01 12:00 EST -1 day", utc(2023, 12, 31, 17, 0, 0)},
		{"10am -3 days", jst(2026, 12, 2, 10, 0, 0, 0)}, // no offset after am/pm

		// Epoch seconds; a fraction is kept, toward minus infinity.
		{"@1577880000", utc(2020, 1, 1, 12, 0, 0)},
		{"@1577880000.7", utc(2020, 1, 1, 12, 0, 0).Add(700 * time.Millisecond)},
		{"@-5", utc(1969, 12, 31, 23, 59, 55)},
		{"@-1.5", time.Unix(-2, 500_000_000)},
		{"@ 5", time.Unix(5, 0)},
		{"@+5", time.Unix(5, 0)},

		// Nothing at all is the start of today, as GNU reads it.
		{"", jst(2026, 12, 5, 0, 0, 0, 0)},
		{" ", jst(2026, 12, 5, 0, 0, 0, 0)},
		{"\t\n ", jst(2026, 12, 5, 0, 0, 0, 0)},

		// Relative to now: "today" and "now" are now, "yesterday" this time
		// of day one calendar day back.
		{"now", now},
		{"TODAY", now},
		{"yesterday", jst(2026, 12, 4, 23, 2, 8, 500_000_000)},
		{"tomorrow", jst(2026, 12, 6, 23, 2, 8, 500_000_000)},
		{"yesterday 10:00", jst(2026, 12, 4, 10, 0, 0, 0)},
		{"12:00 tomorrow", jst(2026, 12, 6, 12, 0, 0, 0)},
		{"4 days ago 12:00", jst(2026, 12, 1, 12, 0, 0, 0)},
		{"last week", jst(2026, 11, 28, 23, 2, 8, 500_000_000)},
		{"next week", jst(2026, 12, 12, 23, 2, 8, 500_000_000)},
		{"last week ago", jst(2026, 12, 12, 23, 2, 8, 500_000_000)},
		{"this week", now},
		{"-3 days", jst(2026, 12, 2, 23, 2, 8, 500_000_000)},
		{"+3 days", jst(2026, 12, 8, 23, 2, 8, 500_000_000)},
		{"+ 3 days", jst(2026, 12, 8, 23, 2, 8, 500_000_000)},
		{"3 days", jst(2026, 12, 8, 23, 2, 8, 500_000_000)},
		{"3days ago", jst(2026, 12, 2, 23, 2, 8, 500_000_000)},
		{"3 DAYS AGO", jst(2026, 12, 2, 23, 2, 8, 500_000_000)},
		{"-1 days ago", jst(2026, 12, 6, 23, 2, 8, 500_000_000)},
		{"0 days ago", now},
		{"day", jst(2026, 12, 6, 23, 2, 8, 500_000_000)},
		{"week ago", jst(2026, 11, 28, 23, 2, 8, 500_000_000)},
		{"third day", jst(2026, 12, 8, 23, 2, 8, 500_000_000)},
		{"fortnight ago", jst(2026, 11, 21, 23, 2, 8, 500_000_000)},
		{"3 fortnights ago", jst(2026, 10, 24, 23, 2, 8, 500_000_000)},
		{"1 month ago", jst(2026, 11, 5, 23, 2, 8, 500_000_000)},
		{"1 year ago", jst(2025, 12, 5, 23, 2, 8, 500_000_000)},
		{"2 hours ago", jst(2026, 12, 5, 21, 2, 8, 500_000_000)},
		{"2 mins ago", jst(2026, 12, 5, 23, 0, 8, 500_000_000)},
		{"5 secs ago", jst(2026, 12, 5, 23, 2, 3, 500_000_000)},
		{"1 hour ago 30 minutes ago", jst(2026, 12, 5, 21, 32, 8, 500_000_000)},
		// "ago" turns only the item it follows.
		{"1 day 2 hours ago", jst(2026, 12, 6, 21, 2, 8, 500_000_000)},
		{"1 day ago 1 day ago", jst(2026, 12, 3, 23, 2, 8, 500_000_000)},
		{"-1 year +2 months", jst(2026, 2, 5, 23, 2, 8, 500_000_000)},
		{"2024-01-01 +3 days", jst(2024, 1, 4, 0, 0, 0, 0)},
		{"2020-01-01 1 day ago", jst(2019, 12, 31, 0, 0, 0, 0)},
		{"Nov 30 2 days ago", jst(2026, 11, 28, 0, 0, 0, 0)},
		// Month arithmetic carries overflow, as mktime does.
		{"Jan 31 2025 + 1 month", jst(2025, 3, 3, 0, 0, 0, 0)},
		{"2024-01-31 1 month", jst(2024, 3, 2, 0, 0, 0, 0)},
		{"31 jan 2026 + 1 month + 1 day", jst(2026, 3, 4, 0, 0, 0, 0)},
		{"2024-03-31 -1 month", jst(2024, 3, 2, 0, 0, 0, 0)},
		{"2024-02-29 +1 year", jst(2025, 3, 1, 0, 0, 0, 0)},

		// Weekdays: midnight of the next such day, today included.
		{"sat", jst(2026, 12, 5, 0, 0, 0, 0)},
		{"Saturday", jst(2026, 12, 5, 0, 0, 0, 0)},
		{"next saturday", jst(2026, 12, 12, 0, 0, 0, 0)},
		{"last saturday", jst(2026, 11, 28, 0, 0, 0, 0)},
		{"monday", jst(2026, 12, 7, 0, 0, 0, 0)},
		{"mon.", jst(2026, 12, 7, 0, 0, 0, 0)},
		{"next monday", jst(2026, 12, 7, 0, 0, 0, 0)},
		{"this monday", jst(2026, 12, 7, 0, 0, 0, 0)},
		{"last monday", jst(2026, 11, 30, 0, 0, 0, 0)},
		{"2 monday", jst(2026, 12, 14, 0, 0, 0, 0)},
		{"third monday", jst(2026, 12, 21, 0, 0, 0, 0)},
		{"thurs", jst(2026, 12, 10, 0, 0, 0, 0)},
		{"sunday 12:00", jst(2026, 12, 6, 12, 0, 0, 0)},
		{"monday +1 day", jst(2026, 12, 8, 0, 0, 0, 0)},
		{"monday 1 month ago", jst(2026, 11, 7, 0, 0, 0, 0)},
		{"next week monday", jst(2026, 12, 14, 0, 0, 0, 0)},
	} {
		got, err := Parse(c.in, now, tokyo)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, got, err, c.want.In(tokyo))
		}
		if err == nil && got.Location() != tokyo {
			t.Errorf("Parse(%q) is in %v, want the location passed", c.in, got.Location())
		}
	}
}

// Across a change of daylight saving time: explicit dates and times keep
// their wall clock, relative items alone keep now's UTC offset, and times
// the clocks skip are refused as written but carried forward when
// arithmetic lands on them.
func TestParseDaylightSaving(t *testing.T) {
	ny := load(t, "America/New_York")
	now := time.Date(2026, 12, 5, 9, 6, 0, 0, ny) // EST
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"6 weeks ago", time.Date(2026, 10, 24, 14, 6, 0, 0, time.UTC)},
		{"6 weeks ago UTC", time.Date(2026, 10, 24, 10, 6, 0, 0, time.UTC)},
		{"monday 6 weeks ago", time.Date(2026, 10, 26, 4, 0, 0, 0, time.UTC)},
		{"12:00 6 weeks ago", time.Date(2026, 10, 24, 16, 0, 0, 0, time.UTC)},
		{"2026-12-05 09:00 6 weeks ago", time.Date(2026, 10, 24, 13, 0, 0, 0, time.UTC)},
		{"1 day ago 2020-03-09 01:30", time.Date(2020, 3, 8, 6, 30, 0, 0, time.UTC)},
		{"24 hours ago 2020-03-09 01:30", time.Date(2020, 3, 8, 5, 30, 0, 0, time.UTC)},
		{"1 day ago 2020-03-09 02:30", time.Date(2020, 3, 8, 7, 30, 0, 0, time.UTC)},
		{"1 month ago 2020-04-08 02:30", time.Date(2020, 3, 8, 7, 30, 0, 0, time.UTC)},
		{"2020-03-08 02:30 UTC", time.Date(2020, 3, 8, 2, 30, 0, 0, time.UTC)},
		{"2020-11-01 01:30", time.Date(2020, 11, 1, 5, 30, 0, 0, time.UTC)}, // twice: the first, west of UTC
		{"2020-11-01 01:30 EST", time.Date(2020, 11, 1, 6, 30, 0, 0, time.UTC)},
		{"1 hour ago 2020-11-01 01:30", time.Date(2020, 11, 1, 4, 30, 0, 0, time.UTC)},
		{"1 day 2020-11-01 01:30", time.Date(2020, 11, 2, 6, 30, 0, 0, time.UTC)},
	} {
		got, err := Parse(c.in, now, ny)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, got, err, c.want.In(ny))
		}
	}
	if _, err := Parse("2020-03-08 02:30", now, ny); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a skipped local time: %v", err)
	}
}

// A reading the clocks pass twice is the instant glibc's mktime, and so
// GNU date and OSTree, give: the later east of UTC, the earlier west of it.
func TestParseTwiceReadAsMktime(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		zone, in string
		want     time.Time
	}{
		{"Europe/Berlin", "2024-10-27 02:30", time.Date(2024, 10, 27, 1, 30, 0, 0, time.UTC)},
		{"Europe/Dublin", "2024-10-27 01:30", time.Date(2024, 10, 27, 1, 30, 0, 0, time.UTC)},
		{"Australia/Sydney", "2024-04-07 02:30", time.Date(2024, 4, 6, 16, 30, 0, 0, time.UTC)},
		{"Australia/Lord_Howe", "2024-04-07 01:45", time.Date(2024, 4, 6, 15, 15, 0, 0, time.UTC)},
		{"Africa/Casablanca", "2024-03-10 02:30", time.Date(2024, 3, 10, 2, 30, 0, 0, time.UTC)},
		{"America/New_York", "2024-11-03 01:30", time.Date(2024, 11, 3, 5, 30, 0, 0, time.UTC)},
		{"America/St_Johns", "2024-11-03 01:30", time.Date(2024, 11, 3, 4, 0, 0, 0, time.UTC)},
	} {
		got, err := Parse(c.in, now, load(t, c.zone))
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s: Parse(%q) = %v, %v; want %v", c.zone, c.in, got.UTC(), err, c.want)
		}
	}
}

// The zone a time without one is read in is the one passed, whatever the
// process's.
func TestParseUsesLocation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, name := range []string{"Asia/Tokyo", "America/New_York", "Pacific/Kiritimati", "UTC"} {
		loc := load(t, name)
		got, err := Parse("2024-12-03 10:00:00", now, loc)
		if want := time.Date(2024, 12, 3, 10, 0, 0, 0, loc); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, in := range []string{
		"garbage", "2 days ago ago", "tomorrow ago", "ago", "next", "this", "am",
		"noon", "1.5 days ago", "1 hr", "3 wk ago",
		"2020-13-01", "2020-02-30", "Feb 29 2021", "Dec 32 2020", "2020-01-01 24:00",
		"2020-01-01 23:59:60", "2020-01-01 12:60", "2020-01-01 13:00 pm", "2020-01-01 0:00 am",
		"2020-01-01T12", "2020-01-01T1200", "2020-01-01 2020-01-02", "12:00 13:00", "monday tuesday",
		"UTC UTC", "UTC", "2020-01-01 12:00 +0200 UTC", "12:00 +2500", "12:00 EST+1",
		"Jan 31 26", "Nov 30 2026,", "Jan", "Jan 2020", "10000-01-01",
		"@1e3", "@5.5.5", "@", "@5 UTC", "@99999999999999999999", "100000000 years ago",
		"+3", "3 ago", "2020-01-01 12:00:00 ;",
		// Numbers standing alone that GNU refuses too.
		"20241331", "00012", "2024-01-31 24", "2024-01-31 2460", "960", "2400", "1200 12:00",
		"12:00 1200", "2024-01-31 12:00 2025", "20240131 2024-01-31", "1200 +5", "20240131 +5",
		"Jan 31 2024 +5", "12 +5 -1 day", "12 +0500 -1 day", "20240131 +3 days ago", "10am +5",
		"30 Nov 12:00", "Jan 31, 12:00", "30 Nov 5pm", "99999999999999999999",
		"next monday, 2024-01-31", "2 monday, 12:00",
		// A second zone, or "ago" after a zone's count.
		"UTC 12:00 +1", "UTC 12 +5", "UTC 2024-01-31T12+05", "UTC 12:00 -1 day",
		"utc+2 sec ago", "12:00 UTC +1 day ago", "EST -1 day ago",
		// GNU reads a signed number after a time as a zone ("12:00 -3 days"
		// is 12:00-03:00 plus one day), seldom what was meant.
		"12:00 -3 days", "2024-01-01 12:00 +3 days", "10:00 +5 days", "2024-01-31T12 +5 days",
		// GNU reads a number after a day and month as its year.
		"30 Nov 5 days", "Nov 30, 5 days", "31 Jan +1 month", "31 Jan 2 monday",
		// Military zones: date(1) and OSTree disagree on their signs; J
		// (local time) is refused by both.
		"12:00 A", "2024-01-31 12:00 N", "12:00 T", "Nov 30 T12:00", "20240131T1200", "12:00 J",
	} {
		_, err := Parse(in, now, time.UTC)
		if err == nil {
			t.Errorf("Parse(%q) accepted", in)
		} else if !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("Parse(%q): %v does not name the input", in, err)
		}
	}
}

// A time past the year 9999 or before the year 0 is refused, saying which.
func TestParseOutOfRange(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	for _, c := range []struct {
		in   string
		loc  *time.Location
		want string
	}{
		{"10000-01-01", time.UTC, "after the year 9999 (UTC)"},
		{"9999-12-31 23:59:59", ny, "after the year 9999 (UTC)"},
		{"@253402300800", time.UTC, "after the year 9999 (UTC)"},
		{"@-99999999999999", time.UTC, "before the year 0 (UTC)"},
		{"0000-01-01 -1 day", time.UTC, "before the year 0 (UTC)"},
	} {
		if _, err := Parse(c.in, time.Now(), c.loc); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), strconv.Quote(c.in)) {
			t.Errorf("Parse(%q) in %s: %v, want it to say %q", c.in, c.loc, err, c.want)
		}
	}
}

// A military zone letter is refused with both readings it has.
func TestParseMilitaryZone(t *testing.T) {
	for in, want := range map[string][]string{
		"12:00 A": {`"A"`, "UTC+01:00", "UTC-01:00"},
		"12:00 m": {`"M"`, "UTC+12:00", "UTC-12:00"},
		"12:00 N": {`"N"`, "UTC-01:00", "UTC+01:00"},
		"12:00 T": {`"T"`, "UTC-07:00", "UTC+07:00"},
		"12:00 Y": {`"Y"`, "UTC-12:00", "UTC+12:00"},
	} {
		_, err := Parse(in, time.Now(), time.UTC)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Parse(%q): %v, want it to say %s", in, err, w)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"2020-01-01 12:00:00 +0200", "4 days ago 12:00", "@-1.5", "last monday", "Nov 30, 2026", "20240131 1200", "12 +5:00 -1 day"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s, now, time.UTC)
		if err == nil && (got.Year() < 0 || got.Year() > 9999) {
			t.Errorf("Parse(%q) = %v, out of range", s, got)
		}
	})
}
