package commit

// SetHashHook makes the walk call f before it hashes each file, until the
// returned function is called.
func SetHashHook(f func(path string)) (restore func()) {
	hashHook = f
	return func() { hashHook = nil }
}
