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
// stop function that does nothing. A panic in report (a caller's progress
// callback) ends the reports, and stop raises it again in its caller's
// goroutine: raised on the reporting goroutine it would end the process,
// whatever recover the caller of the library has.
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
	var panicked any
	go func() {
		defer close(finished)
		tick, stopTick := newTicker(d)
		defer stopTick()
		defer func() { panicked = recover() }()
		for {
			select {
			case <-done:
				return
			case <-tick:
				report()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if panicked != nil {
			panic(panicked)
		}
	}
}
