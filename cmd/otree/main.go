// Command otree stores filesystem trees as content-addressed commits and
// reads them back. Run `otree --help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// Committing a tree holds an index of every path; a soft limit makes
	// the collector work harder before the heap doubles, keeping peak RSS
	// under 256 MiB on trees of 150k files. GOMEMLIMIT overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(160 << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
