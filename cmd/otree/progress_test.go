package main

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestETA(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		elapsed     time.Duration
		want        string
	}{
		{0, 100, time.Second, ""},                      // nothing done yet: no basis
		{100, 100, time.Second, ""},                    // finished
		{10, 100, 0, ""},                               // no time elapsed
		{25, 100, 10 * time.Second, "0:30"},            // a quarter in 10 s: 30 s left
		{1, 3, 45 * time.Second, "1:30"},               // minutes and seconds
		{1, 5, time.Hour, "4:00:00"},                   // hours
		{999, 1000, 999 * time.Millisecond, "0:00"},    // under half a second rounds down
		{3, 4, 3*time.Minute + 3*time.Second, "1:01"},  // rounding to the second
		{1, 1 << 40, time.Millisecond, "305419:53:48"}, // huge totals do not overflow
	} {
		if got := eta(tc.done, tc.total, tc.elapsed); got != tc.want {
			t.Errorf("eta(%d, %d, %s) = %q, want %q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

// siBytes writes what GLib's g_format_size, which OSTree's reports use,
// writes for the same sizes (these are its outputs, GLib 2.74).
func TestSiBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 1: "1 byte", 2: "2 bytes", 999: "999 bytes",
		1000: "1.0\u00a0kB", 1049: "1.0\u00a0kB", 1050: "1.1\u00a0kB", 999_949: "999.9\u00a0kB", 999_950: "1000.0\u00a0kB",
		999_999: "1000.0\u00a0kB", 1_000_000: "1.0\u00a0MB", 1_500_000: "1.5\u00a0MB", 2_000_000_000: "2.0\u00a0GB",
		1e12: "1.0\u00a0TB", 1e15: "1.0\u00a0PB", 999_999_999_999_999_999: "1000.0\u00a0PB", 1e18: "1.0\u00a0EB",
		math.MaxInt64: "9.2\u00a0EB",
	} {
		if got := siBytes(n); got != want {
			t.Errorf("siBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// sizeText matches a size as siBytes (and OSTree) writes it.
var sizeText = regexp.MustCompile(`\d+(\.\d)?\x{a0}[kMGTPE]B|\d+ bytes?`)

// normSizes replaces every size in s by SIZE, so that the output of two
// tools that store objects differently can be compared by shape.
func normSizes(s string) string { return sizeText.ReplaceAllString(s, "SIZE") }

// A log record that comes while a progress bar is drawn (a pull's retry)
// takes the bar's line, cleared, rather than follow the bar's text on it,
// and the bar is drawn again after it.
func TestLogRecordTakesTheBarsLine(t *testing.T) {
	t.Setenv("TERM", "xterm")
	m, s := openPTY(t)
	e := &env{stderr: s}
	b := e.newBar()
	b.draw("Receiving", 3, "of 9 objects", 100)
	e.logger().Info("retrying", "attempt", 2)
	b.draw("Receiving", 4, "of 9 objects", 200)
	b.done()
	s.Close()
	screen := readScreen(m, "")
	i := strings.Index(screen, "level=INFO")
	if i < 0 || !strings.HasSuffix(screen[:i], "\r\033[K") {
		t.Errorf("terminal output %q: want the log record on a cleared line", screen)
	}
	if !strings.Contains(screen[i:], "\r\033[KReceiving: 4") {
		t.Errorf("terminal output %q: want the bar drawn again after the record", screen)
	}
}
