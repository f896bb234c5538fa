package progress

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// setTicker makes EveryFor tick by f until the returned function is called.
func setTicker(f func(time.Duration) (<-chan time.Time, func())) (restore func()) {
	old := newTicker
	newTicker = f
	return func() { newTicker = old }
}

// Each tick gives one report, and once stop returns no tick is taken and
// the ticker is stopped. Ticks are sent by hand: a send returns only once
// the report of the tick before has.
func TestEveryReportsUntilStopped(t *testing.T) {
	tick := make(chan time.Time)
	var stopped atomic.Bool
	defer setTicker(func(time.Duration) (<-chan time.Time, func()) {
		return tick, func() { stopped.Store(true) }
	})()
	var n atomic.Int64
	stop := Every(func() { n.Add(1) })
	for range 5 {
		tick <- time.Time{}
	}
	stop()
	if got := n.Load(); got != 5 {
		t.Fatalf("%d reports for 5 ticks, want 5", got)
	}
	if !stopped.Load() {
		t.Error("stop left the ticker running")
	}
	select {
	case tick <- time.Time{}:
		t.Error("a tick was taken after stop")
	default:
	}
	if got := n.Load(); got != 5 {
		t.Errorf("reports continued after stop: %d", got)
	}
	Every(nil)() // a nil report is allowed
}

// By the real clock, reports come until stop.
func TestEveryForTicksByTheClock(t *testing.T) {
	var n atomic.Int64
	reached := make(chan struct{})
	stop := EveryFor(time.Millisecond, func() {
		if n.Add(1) == 3 {
			close(reached)
		}
	})
	<-reached
	stop()
}

// EveryFor ticks at its own interval, Every and a non-positive interval
// at Interval.
func TestEveryForTakesItsInterval(t *testing.T) {
	var asked []time.Duration
	defer setTicker(func(d time.Duration) (<-chan time.Time, func()) {
		asked = append(asked, d)
		return nil, func() {}
	})()
	report := func() {}
	for _, start := range []func() func(){
		func() func() { return EveryFor(4*Interval, report) },
		func() func() { return Every(report) },
		func() func() { return EveryFor(0, report) },
		func() func() { return EveryFor(-time.Second, report) },
	} {
		start()() // stop returns once the ticker goroutine has ended
	}
	want := []time.Duration{4 * Interval, Interval, Interval, Interval}
	if !slices.Equal(asked, want) {
		t.Fatalf("tickers at %v, want %v", asked, want)
	}
}

// A panic in report ends the reports and comes out of stop, in the
// goroutine that started them, where the caller can recover it.
func TestEveryPanicComesOutOfStop(t *testing.T) {
	tick := make(chan time.Time)
	var stopped atomic.Bool
	defer setTicker(func(time.Duration) (<-chan time.Time, func()) {
		return tick, func() { stopped.Store(true) }
	})()
	var n atomic.Int64
	stop := Every(func() {
		if n.Add(1) == 2 {
			panic("report failed")
		}
	})
	tick <- time.Time{}
	tick <- time.Time{}
	got := func() (v any) {
		defer func() { v = recover() }()
		stop()
		return nil
	}()
	if got != "report failed" {
		t.Fatalf("stop raised %v, want the report's panic", got)
	}
	if !stopped.Load() {
		t.Error("the ticker was left running")
	}
	if n.Load() != 2 {
		t.Errorf("%d reports, want 2", n.Load())
	}
}
