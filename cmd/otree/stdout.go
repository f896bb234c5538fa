package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
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
}

func (o *outWriter) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	if err != nil {
		o.err = err
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
