package deploy

import (
	"cmp"
	"os"
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
// $OSTREE_SYSROOT_DEBUG, has mutable-deployments, OSTree's option to leave
// deployments mutable: for development and tests, whose sysroots are then
// removed without chattr. The list is read as OSTree (GLib's
// g_parse_debug_string) reads it, so that a value OSTree honours is
// honoured here too: separated by any of ":;, \t", case and '-' against
// '_' not minded, and "all" naming every option but those listed with it.
func mutableDeployments() bool {
	opts := cmp.Or(os.Getenv("OTREE_SYSROOT_DEBUG"), os.Getenv("OSTREE_SYSROOT_DEBUG"))
	all, named := false, false
	for _, o := range strings.FieldsFunc(opts, func(r rune) bool { return strings.ContainsRune(":;, \t", r) }) {
		switch strings.ReplaceAll(strings.ToLower(o), "_", "-") {
		case "all":
			all = true
		case "mutable-deployments":
			named = true
		}
	}
	return all != named
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
