package remote

// SetMaxMetaObject makes pulls refuse metadata bodies larger than n bytes,
// instead of maxMetaObject, until the returned function is called.
func SetMaxMetaObject(n int64) (restore func()) {
	old := maxMetaObject
	maxMetaObject = n
	return func() { maxMetaObject = old }
}

// SetLocalBigMetaHook has f called where a local source reads a metadata
// object larger than 4 MiB, until the returned function is called.
func SetLocalBigMetaHook(f func()) (restore func()) {
	localBigMetaHook = f
	return func() { localBigMetaHook = nil }
}

// TrickleBody is trickleBody, for the tests outside the package.
var TrickleBody = trickleBody
