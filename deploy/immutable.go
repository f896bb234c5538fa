package deploy

import "github.com/otree/otree/internal/fsattr"

// setImmutable sets (on) or clears the immutable flag of the directory
// dir (fsattr.SetImmutable). A written deployment's directory, / on the
// running system, is made immutable as OSTree makes its deployments:
// nothing can then be created, removed or renamed at its top level, so a
// stray `rm -rf /` or a file dropped into / fails, while its
// subdirectories (/etc, the mounts on /usr, /var and /sysroot) are as
// writable as they were. Where the flag cannot be set, a deployment is
// sound without it.
func setImmutable(dir string, on bool) error { return fsattr.SetImmutable(dir, on) }

// mutably runs fn with dir's immutable flag cleared, and sets it again
// after, whatever fn returned.
func mutably(dir string, fn func() error) error {
	if err := setImmutable(dir, false); err != nil {
		return err
	}
	ferr := fn()
	if err := setImmutable(dir, true); ferr == nil {
		ferr = err
	}
	return ferr
}
