package repo

// HoldRefs is holdRefs for a write outside a transaction, so that a test
// can stand in the middle of a ref write.
func (r *Repo) HoldRefs() (func(), error) { return r.holdRefs(refsLockSteps...) }
