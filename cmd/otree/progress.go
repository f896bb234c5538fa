package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal; progress is drawn only there.
func isTerminal(w io.Writer) bool {
	f, ok := unwrapWriter(w).(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// bar draws a one-line progress report on a terminal.
type bar struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	drawn bool // the cursor's line holds the bar
}

// newBar returns a bar drawn on w, or nil (which draws nothing) when w is
// no terminal or one that takes no escape codes (TERM=dumb), where OSTree
// still writes its cursor codes.
func newBar(w io.Writer) *bar {
	if !isTerminal(w) || os.Getenv("TERM") == "dumb" {
		return nil
	}
	return &bar{w: w, start: time.Now()}
}

// newBar returns a bar drawn on standard error (nil where none is), that
// the logger's records take turns with.
func (e *env) newBar() *bar {
	b := newBar(e.stderr)
	if b != nil {
		e.shownBar.Store(b)
	}
	return b
}

// logWriter is standard error as the logger writes it: a record that
// comes while a bar is drawn (a pull's retry) clears the bar's line and
// takes it, rather than go on after the bar's text; the bar's next draw
// is on the line after the record.
type logWriter struct{ e *env }

func (l logWriter) Write(p []byte) (int, error) {
	if b := l.e.shownBar.Load(); b != nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.drawn {
			fmt.Fprint(b.w, "\r\033[K")
			b.drawn = false
		}
	}
	return l.e.stderr.Write(p)
}

// fit cuts line to the width of the terminal w is, less one column: a
// line that wrapped would leave its first rows behind at every redraw,
// which clears only the row the cursor is on.
func fit(w io.Writer, line string) string {
	f, ok := unwrapWriter(w).(*os.File)
	if !ok {
		return line
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return line
	}
	room := int(ws.Col) - 1
	for i := range line {
		if room == 0 {
			return line[:i]
		}
		room--
	}
	return line
}

// draw shows items and bytes done, with the byte rate.
func (b *bar) draw(label string, items int64, itemName string, bytes int64) {
	b.drawETA(label, items, itemName, bytes, "")
}

// drawETA is draw followed by an estimate of the time left, if not "".
func (b *bar) drawETA(label string, items int64, itemName string, bytes int64, left string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	el := time.Since(b.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(bytes) / el
	}
	line := fmt.Sprintf("%s: %d %s, %s, %s/s", label, items, itemName, humanBytes(bytes), humanBytes(int64(rate)))
	if left != "" {
		line += ", ETA " + left
	}
	fmt.Fprint(b.w, "\r\033[K"+fit(b.w, line))
	b.drawn = true
}

// eta estimates the time left when done of total took elapsed, as m:ss
// (h:mm:ss past an hour); "" until there is something to go on.
func eta(done, total int64, elapsed time.Duration) string {
	if done <= 0 || total <= done || elapsed <= 0 {
		return ""
	}
	left := time.Duration(float64(elapsed) * float64(total-done) / float64(done)).Round(time.Second)
	h, m, s := int(left.Hours()), int(left.Minutes())%60, int(left.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// done clears the line.
func (b *bar) done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// humanBytes writes a size in powers of 1024, for otree's own lines.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// siBytes writes a size as OSTree's reports do (GLib's g_format_size):
// "1 byte" and "N bytes" below 1000, else one decimal in kB, MB, GB, TB,
// PB or EB (powers of 1000), the unit after a no-break space. Scripts
// written for OSTree's output read these.
func siBytes(n int64) string {
	switch {
	case n == 1:
		return "1 byte"
	case n < 1000:
		return fmt.Sprintf("%d bytes", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	factor, u := int64(1000), 0
	for u < len(units)-1 && n/1000 >= factor {
		factor *= 1000
		u++
	}
	return fmt.Sprintf("%.1f\u00a0%s", float64(n)/float64(factor), units[u])
}
