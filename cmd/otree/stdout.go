package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
)

// exitBrokenPipe is the status of a command whose reader closed standard
// output, as a shell reports a process SIGPIPE killed; main dies of that
// signal itself so that a parent sees the same.
const exitBrokenPipe = 128 + int(syscall.SIGPIPE)

// outWriter is standard output as commands see it: it keeps the first write
// error, so that a command which printed and went on (a commit printing its
// id) cannot succeed with its output lost, and fails every write after it,
// so that output cannot go on with a hole in it.
type outWriter struct {
	w   io.Writer
	err error
	// onBrokenPipe, if set, is called at the first write the reader's
	// going away fails: it ends a command that changes nothing.
	onBrokenPipe func()
}

func (o *outWriter) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	if err != nil {
		o.err = err
		if o.onBrokenPipe != nil && o.brokenPipe() {
			o.onBrokenPipe()
		}
	}
	return n, err
}

// Unwrap returns the writer underneath, for checks of what it is (a
// terminal) and for child processes, which need the file itself.
func (o *outWriter) Unwrap() io.Writer { return o.w }

// failed returns the first write error, naming standard output.
func (o *outWriter) failed() error {
	if o.err == nil {
		return nil
	}
	if pe := (*fs.PathError)(nil); errors.As(o.err, &pe) {
		return o.err // "write /dev/stdout: ..."
	}
	return fmt.Errorf("write standard output: %w", o.err)
}

// brokenPipe reports whether standard output failed because its reader
// went away.
func (o *outWriter) brokenPipe() bool { return errors.Is(o.err, syscall.EPIPE) }

// unwrapWriter returns the writer under w's outWriter, if it has one.
func unwrapWriter(w io.Writer) io.Writer {
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		return u.Unwrap()
	}
	return w
}

// onlyFrom reports whether err is cause, wrapped with nothing else joined
// to it: a write error a command passed up, not one among others worth
// reporting.
func onlyFrom(err, cause error) bool {
	for err != nil {
		if err == cause {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			if len(u.Unwrap()) != 1 {
				return false
			}
			err = u.Unwrap()[0]
		default:
			return false
		}
	}
	return false
}

// readers are the commands that change nothing: once their reader has
// gone, the rest of their output (ls -R of a whole tree, a long log) is
// not worth computing, so they die of SIGPIPE at the first failed write.
// Any other command runs to its end, so that what it changes is changed
// whole (a commit moves its branch and updates the summary).
var readers = map[string]bool{
	"otree ls": true, "otree log": true, "otree cat": true, "otree show": true,
	"otree diff": true, "otree export": true, "otree rev-parse": true,
	"otree checksum": true, "otree refs": true, "otree remote list": true,
	"otree remote refs": true, "otree remote summary": true,
	"otree static-delta list": true, "otree static-delta show": true,
	"otree admin status": true,
}

// dieOfBrokenPipe ends the process as SIGPIPE would have at the write
// that failed: the runtime ignores a SIGPIPE sent with kill, so a write
// to the broken standard output, the signal's handling reset, is what
// makes it die of one.
func dieOfBrokenPipe() {
	signal.Reset(syscall.SIGPIPE)
	os.Stdout.Write([]byte{'\n'})
	os.Exit(exitBrokenPipe)
}
