// Command otree stores filesystem trees as content-addressed commits and
// reads them back. Run `otree --help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/otree/otree/internal/datetime"
)

func main() {
	// Committing a tree holds an index of every path; a soft limit makes
	// the collector work harder before the heap doubles, keeping peak RSS
	// under 256 MiB on trees of 150k files. GOMEMLIMIT overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(160 << 20)
	}
	// Zone-less dates are local time, read as the C library reads $TZ.
	if loc, ok := datetime.LocalFromEnv(); ok {
		time.Local = loc
	}
	// The first SIGINT, SIGTERM or SIGHUP (a closed terminal or ssh
	// session) cancels the command, which cleans up and exits
	// 128+signal; a second one kills at once, as the default action
	// does (every write is safe against that).
	ctx, cancel := context.WithCancelCause(context.Background())
	stops := stopSignals()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stops...)
	go func() {
		for s := range sigs {
			if s == os.Interrupt && editing.Load() {
				continue // the editor's (editing)
			}
			signal.Reset(stops...)
			cancel(interrupted{s.(syscall.Signal)})
			return
		}
	}()
	// A write to a closed pipe returns EPIPE rather than killing the
	// process mid-command (a commit before its summary update): run
	// finishes the command, then dies of SIGPIPE as the default would.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if code == exitBrokenPipe {
		dieOfBrokenPipe()
	}
	os.Exit(code)
}

// stopSignals returns the signals that stop a command, less those the
// process started with ignored: a shell runs a script's background job
// with SIGINT ignored so that Ctrl-C stops only the foreground one, nohup
// runs its command with SIGHUP ignored, and catching them would undo that.
func stopSignals() []os.Signal {
	sigs := []os.Signal{syscall.SIGTERM}
	for _, s := range []os.Signal{os.Interrupt, syscall.SIGHUP} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}
