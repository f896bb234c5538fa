package remote

// SetMaxMetaObject makes pulls refuse metadata bodies larger than n bytes,
// instead of maxMetaObject, until the returned function is called.
func SetMaxMetaObject(n int64) (restore func()) {
	old := maxMetaObject
	maxMetaObject = n
	return func() { maxMetaObject = old }
}
