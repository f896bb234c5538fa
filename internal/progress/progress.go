// Package progress calls a report function on a steady tick while long work
// runs; the library reports numbers, and only cmd/ draws them.
package progress

import "time"

// Interval is how often Every reports.
const Interval = 100 * time.Millisecond

// newTicker starts the tick EveryFor reports on; tests replace it to tick
// by hand rather than by the clock.
var newTicker = func(d time.Duration) (tick <-chan time.Time, stop func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Every calls report every Interval until the returned stop function is
// called; stop returns once no report is running. A nil report gives a
// stop function that does nothing.
func Every(report func()) (stop func()) { return EveryFor(Interval, report) }

// EveryFor is Every with its own interval d (Interval when d is not
// positive).
func EveryFor(d time.Duration, report func()) (stop func()) {
	if d <= 0 {
		d = Interval
	}
	if report == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick, stopTick := newTicker(d)
		defer stopTick()
		for {
			select {
			case <-done:
				return
			case <-tick:
				report()
			}
		}
	}()
	return func() { close(done); <-finished }
}
