package progress

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestEveryReportsUntilStopped(t *testing.T) {
	var n atomic.Int64
	stop := Every(func() { n.Add(1) })
	time.Sleep(5*Interval + Interval/2)
	stop()
	got := n.Load()
	if got < 2 || got > 6 {
		t.Fatalf("%d reports in 5.5 intervals, want about 5", got)
	}
	time.Sleep(2 * Interval)
	if n.Load() != got {
		t.Fatal("reports continued after stop")
	}
	Every(nil)() // a nil report is allowed
}

func TestEveryForTakesItsInterval(t *testing.T) {
	var n atomic.Int64
	stop := EveryFor(4*Interval, func() { n.Add(1) })
	time.Sleep(6 * Interval)
	stop()
	// Every's own interval would have given about 6; a slow machine may
	// stretch the sleep past a second tick of the longer one.
	if got := n.Load(); got > 2 {
		t.Fatalf("%d reports in 6 intervals at one per 4, want at most 2", got)
	}
}
