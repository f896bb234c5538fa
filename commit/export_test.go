package commit

import (
	"io"

	"github.com/otree/otree/internal/mountinfo"
)

// SetHashHook makes the walk call f before it hashes each file, until the
// returned function is called.
func SetHashHook(f func(path string)) (restore func()) {
	hashHook = f
	return func() { hashHook = nil }
}

// SetListedHook makes the walk call f once each entry it lists is
// stat'ed, before it is opened, until the returned function is called.
func SetListedHook(f func(path string)) (restore func()) {
	listedHook = f
	return func() { listedHook = nil }
}

// SetOpenedHook makes the walk call f once each file to hash is open,
// before it is read, until the returned function is called.
func SetOpenedHook(f func(path string)) (restore func()) {
	openedHook = f
	return func() { openedHook = nil }
}

// SetLargeReadHook makes the walk hash each large file from what f makes
// of its reader, until the returned function is called.
func SetLargeReadHook(f func(io.Reader) io.Reader) (restore func()) {
	largeReadHook = f
	return func() { largeReadHook = nil }
}

// SetConsumeHook makes Commit call f once the commit has landed, before it
// consumes the sources, until the returned function is called.
func SetConsumeHook(f func()) (restore func()) {
	consumeHook = f
	return func() { consumeHook = nil }
}

// SetRereadHook makes consuming call f before it opens a regular file to
// read it again, until the returned function is called.
func SetRereadHook(f func(path string)) (restore func()) {
	rereadHook = f
	return func() { rereadHook = nil }
}

// SetMountTable makes the check that a consumed source is not the
// repository read the mount table from f, until the returned function is
// called.
func SetMountTable(f func() ([]mountinfo.Mount, error)) (restore func()) {
	mountTable = f
	return func() { mountTable = mountinfo.Self }
}
