package main

import (
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
