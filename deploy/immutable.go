package deploy

import (
	"cmp"
	"os"
	"slices"
	"strings"

	"github.com/otree/otree/internal/fsattr"
)

// setImmutable sets (on) or clears the immutable flag of the directory
// dir (fsattr.SetImmutable). A written deployment's directory, / on the
// running system, is made immutable as OSTree makes its deployments:
// nothing can then be created, removed or renamed at its top level, so a
// stray `rm -rf /` or a file dropped into / fails, while its
// subdirectories (/etc, the mounts on /usr, /var and /sysroot) are as
// writable as they were. Where the flag cannot be set, a deployment is
// sound without it; with mutable-deployments in the sysroot's debug
// options (mutableDeployments) it is not set.
func setImmutable(dir string, on bool) error {
	if on && mutableDeployments() {
		return nil
	}
	return fsattr.SetImmutable(dir, on)
}

// mutableDeployments reports whether $OTREE_SYSROOT_DEBUG, else OSTree's
// $OSTREE_SYSROOT_DEBUG, a comma-separated list of options, has
// mutable-deployments, OSTree's option to leave deployments mutable: for
// development and tests, whose sysroots are then removed without chattr.
func mutableDeployments() bool {
	opts := cmp.Or(os.Getenv("OTREE_SYSROOT_DEBUG"), os.Getenv("OSTREE_SYSROOT_DEBUG"))
	return slices.Contains(strings.Split(opts, ","), "mutable-deployments")
}

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
