package datetime

import (
	"math"
	"testing"
	"time"
)

func TestFormatUnix(t *testing.T) {
	kathmandu, err := time.LoadLocation("Asia/Kathmandu")
	if err != nil {
		t.Skip(err)
	}
	const layout = "2006-01-02 15:04:05 -0700"
	for _, c := range []struct {
		sec  uint64
		loc  *time.Location
		want string
	}{
		{0, time.UTC, "1970-01-01 00:00:00 +0000"},
		{253402300800, time.UTC, "10000-01-01 00:00:00 +0000"},
		{1 << 62, time.UTC, "146138514283-06-19 07:45:04 +0000"},
		// Past 2^62 each value has its own date (these were all the one
		// above), worked out by days from the epoch in 400-year cycles.
		{1<<62 + 1, time.UTC, "146138514283-06-19 07:45:05 +0000"},
		{1<<63 - 1, time.UTC, "292277026596-12-04 15:30:07 +0000"},
		{1 << 63, time.UTC, "292277026596-12-04 15:30:08 +0000"},
		{math.MaxUint64, time.UTC, "584554051223-11-09 07:00:15 +0000"},
		{math.MaxUint64, kathmandu, "584554051223-11-09 12:45:15 +0545"},
	} {
		if got := FormatUnix(c.sec, c.loc, layout); got != c.want {
			t.Errorf("FormatUnix(%d, %s) = %q, want %q", c.sec, c.loc, got, c.want)
		}
	}
	if got, want := FormatUnix(math.MaxUint64, time.UTC, time.RFC3339), "584554051223-11-09T07:00:15Z"; got != want {
		t.Errorf("RFC 3339: got %q, want %q", got, want)
	}
}
