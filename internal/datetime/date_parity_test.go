package datetime

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gnuDate returns the path of GNU date(1), which reads dates with the same
// gnulib parser as OSTree, or skips the test.
func gnuDate(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("date")
	if err != nil {
		t.Skip("no date(1)")
	}
	if out, err := exec.Command(bin, "--version").Output(); err != nil || !strings.Contains(string(out), "GNU coreutils") {
		t.Skip("date(1) is not GNU's")
	}
	return bin
}

// dateIn runs GNU date -d s in zone tz and returns the seconds it prints,
// or ok false when it refuses s.
func dateIn(t *testing.T, bin, tz, s string) (int64, bool) {
	t.Helper()
	cmd := exec.Command(bin, "-d", s, "+%s")
	cmd.Env = append(os.Environ(), "TZ="+tz)
	out, err := cmd.Output()
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("date -d %q printed %q", s, out)
	}
	return v, true
}

// Parse reads numbers standing alone, hours with offsets, counts after
// zone names and years of any length as GNU date does, in two zones; what
// date refuses, Parse refuses too. Relative forms may differ by the
// seconds between the two readings of the clock.
func TestParseParityWithDate(t *testing.T) {
	bin := gnuDate(t)
	for _, tz := range []string{"Asia/Tokyo", "America/New_York"} {
		loc := load(t, tz)
		for _, cs := range []struct {
			in    string
			exact bool // not relative to now
		}{
			{"20240131", true}, {"240131", true}, {"10131", true}, {"20240131 1200", true},
			{"1200 20240131", true}, {"2024-01-31 1530", true}, {"2024-01-31 930", true},
			{"2024-01-31 9", true}, {"2024-01-31 0", true}, {"2024-01-31 0012", true},
			{"Jan 31 1200", true}, {"Jan 31 12:00 24", true}, {"Jan 31 2024 1200", true},
			{"Jan 1 2020 2021", true}, {"1/31 2024", true}, {"20240131 -1 day", true},
			{"20240131 1 day ago", true}, {"Jan 31 2024 +1 day", true},
			{"2024-01-31 12 +5", true}, {"2024-01-31 12 -05:30", true}, {"2024-01-31T12+05", true},
			{"2024-01-31 12 +5:00 -1 day", true}, {"2024-01-01 12:00 UTC -1 day", true},
			{"2024-01-01 12:00 UTC+2 days", true}, {"1-01-01", true}, {"020-01-01", true},
			{"02024-01-31", true}, {"1/2/3", true}, {"31 Jan 5", true}, {"31-Jan-5", true},
			{"Jan 31, 5", true}, {"2024-01-31 12:00 Z", true},
			{"1200", false}, {"12", false}, {"0", false}, {"2024", false}, {"Jan 31 12", false},
			{"Jan 31 +1 day 2024", false}, {"now 2024", false}, {"monday 1200", false},
			{"yesterday 1200", false}, {"1200 -3 days", false}, {"10:00 +5", false},
			{"12 +5", false}, {"10am -3 days", false}, {"", false}, {" ", false}, {"\t", false},
			// Refused by both.
			{"20241331", true}, {"00012", true}, {"2024-01-31 24", true}, {"2024-01-31 2460", true},
			{"960", true}, {"1200 12:00", true}, {"2024-01-31 12:00 2025", true},
			{"20240131 2024-01-31", true}, {"1200 +5", true}, {"20240131 +5", true},
			{"Jan 31 2024 +5", true}, {"12 +5 -1 day", true}, {"20240131 +3 days ago", true},
			{"10am +5", true}, {"30 Nov 12:00", true}, {"Jan 31, 12:00", true}, {"30 Nov 5pm", true},
			{"next monday, 2024-01-31", true}, {"2024-01-31T12", true}, {"2024-01-31T1200", true},
			{"12:00 J", true}, {"UTC 12:00 +1", true}, {"UTC 12 +5", true}, {"UTC 12:00 -1 day", true},
			{"utc+2 sec ago", true}, {"12:00 UTC +1 day ago", true}, {"2024-01-01 CET -1 day ago", true},
			{"2024-01-01 12:00 EST -1 day", true},
		} {
			now := time.Now()
			want, ok := dateIn(t, bin, tz, cs.in)
			got, err := Parse(cs.in, now, loc)
			switch {
			case !ok && err == nil:
				t.Errorf("TZ=%s %q: date refuses it, Parse gives %v", tz, cs.in, got)
			case ok && err != nil:
				t.Errorf("TZ=%s %q: date gives %v, Parse: %v", tz, cs.in, time.Unix(want, 0).In(loc), err)
			case ok:
				if d := got.Unix() - want; cs.exact && d != 0 || d < -10 || d > 10 {
					t.Errorf("TZ=%s %q: Parse %v, date %v", tz, cs.in, got, time.Unix(want, 0).In(loc))
				}
			}
		}
	}
}

// The readings GNU date accepts that Parse refuses because they seldom
// mean what was written, and military zone letters, whose signs date and
// OSTree disagree on: date accepts each, Parse refuses each.
func TestParseRefusesWhatDateMisreads(t *testing.T) {
	bin := gnuDate(t)
	for _, in := range []string{
		"12:00 -3 days", "10:00 +5 days", "2024-01-31T12 +5 days", "30 Nov 5 days",
		"Nov 30, 5 days", "31 Jan +1 month", "12:00 A", "12:00 N", "12:00 T", "Nov 30 T12:00",
		"20240131T1200",
	} {
		if _, ok := dateIn(t, bin, "UTC", in); !ok {
			t.Errorf("date refuses %q: no longer a reading to refuse on purpose", in)
		}
		if got, err := Parse(in, time.Now(), time.UTC); err == nil {
			t.Errorf("Parse(%q) = %v, want it refused", in, got)
		}
	}
}
