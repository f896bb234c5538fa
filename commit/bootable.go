package commit

import (
	"fmt"
	"strings"
)

// Metadata keys Options.Bootable writes, as OSTree names them.
const (
	BootableKey = "ostree.bootable" // "true"
	LinuxKey    = "ostree.linux"    // the kernel version
)

// kernelVersion finds the one kernel a tree ships, as deploy will look for
// it: usr/lib/modules/<version>/vmlinuz.
func kernelVersion(r reader, root *dir) (string, error) {
	d := root
	for _, name := range []string{"usr", "lib", "modules"} {
		if err := d.expand(r); err != nil {
			return "", err
		}
		i := d.findDir(name)
		if i < 0 {
			return "", fmt.Errorf("commit: the tree is not bootable: it has no usr/lib/modules/<version>/vmlinuz")
		}
		d = d.dirs[i]
	}
	if err := d.expand(r); err != nil {
		return "", err
	}
	var found []string
	for i, v := range d.dirNames {
		k := d.dirs[i]
		if err := k.expand(r); err != nil {
			return "", err
		}
		if k.findFile("vmlinuz") >= 0 {
			found = append(found, v)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("commit: the tree is not bootable: it has no usr/lib/modules/<version>/vmlinuz")
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("commit: the tree is not bootable: it has %d kernels (usr/lib/modules/{%s}/vmlinuz), deploy takes one", len(found), strings.Join(found, ","))
}
