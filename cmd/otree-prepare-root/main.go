// Command otree-prepare-root runs in the initramfs, after the physical root
// filesystem has been mounted at /sysroot and before the switch to it. It
// reads otree= from the kernel command line and turns /sysroot into the
// deployment that argument names: the deployment's usr read-only, its
// stateroot's var on var, and the physical root at /sysroot/sysroot. The
// initramfs then switches root to /sysroot as usual.
//
// Usage:
//
//	otree-prepare-root [--cmdline=STRING] [SYSROOT]
//
// SYSROOT defaults to /sysroot, the command line to /proc/cmdline. It
// prints one line saying what it did to stderr, or "error: ..." and exits
// with status 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/otree/otree/deploy"
)

func main() {
	flags := flag.NewFlagSet("otree-prepare-root", flag.ContinueOnError)
	cmdline := flags.String("cmdline", "", "kernel command line to take otree= from (default: the contents of /proc/cmdline)")
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "usage: otree-prepare-root [--cmdline=STRING] [SYSROOT]")
		flags.PrintDefaults()
	}
	if err := flags.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if flags.NArg() > 1 {
		flags.Usage()
		os.Exit(2)
	}
	sysroot := "/sysroot"
	if flags.NArg() == 1 {
		sysroot = flags.Arg(0)
	}
	msg, err := run(sysroot, *cmdline)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, msg)
}

func run(sysroot, cmdline string) (string, error) {
	if cmdline == "" {
		b, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return "", err
		}
		cmdline = string(b)
	}
	// Resolved here too, only for the message: afterwards the links are
	// under sysroot/sysroot.
	v, ok := deploy.BootArgFromCmdline(cmdline)
	if !ok {
		return "", errors.New("no otree= argument on the kernel command line")
	}
	arg, err := deploy.ParseBootArg(v)
	if err != nil {
		return "", err
	}
	dep, err := deploy.ResolveBootArg(sysroot, arg)
	if err != nil {
		return "", err
	}
	if err := deploy.PrepareRoot(sysroot, deploy.PrepareRootOptions{Cmdline: cmdline}); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(sysroot, dep)
	if err != nil {
		rel = dep
	}
	return fmt.Sprintf("otree-prepare-root: %s is now deployment %s (otree=%s), physical root at %s",
		sysroot, rel, arg, filepath.Join(sysroot, "sysroot")), nil
}
