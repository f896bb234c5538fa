// Package bootname reads the names a tree gives its kernel in the layout
// older tooling made (rpm-ostree composes, older Debian scripts), so that
// commit --bootable and deploy find the same kernel.
package bootname

import (
	"fmt"
	"strings"
	"unicode"
)

// LegacyDirs are where trees made by older tooling keep their kernel, in
// the order OSTree reads them: the first the tree has is the only one
// read.
var LegacyDirs = []string{"usr/lib/ostree-boot", "boot"}

// Kinds are the boot files of the legacy layout, the kernel first.
var Kinds = []string{"vmlinuz", "initramfs", "devicetree"}

// VersionOK reports whether v, a kernel version, can name files in a boot
// entry's lines: no whitespace or control characters, which would end or
// split them.
func VersionOK(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f || unicode.IsSpace(r) })
}

// SplitLegacy splits name, if it is kind-<version>-<sha256> or
// kind-<sha256> with the checksum in lowercase hex, into its version (for
// an initramfs, <version>.img) and checksum.
func SplitLegacy(kind, name string) (version, sum string, ok bool) {
	rest, ok := strings.CutPrefix(name, kind+"-")
	if !ok || len(rest) < 64 {
		return "", "", false
	}
	sum = rest[len(rest)-64:]
	if strings.Trim(sum, "0123456789abcdef") != "" {
		return "", "", false
	}
	if rest = rest[:len(rest)-64]; rest != "" {
		if rest, ok = strings.CutSuffix(rest, "-"); !ok {
			return "", "", false
		}
	}
	return rest, sum, true
}

// Legacy is the kernel a legacy directory holds: the names of its files
// there, by kind ("" for one absent), and the kernel's version ("" for a
// vmlinuz-<sha256>).
type Legacy struct {
	Version string
	Files   map[string]string
}

// ReadLegacy picks the kernel from names, the files of the legacy
// directory dir. It returns nil, nil when none is a kernel. Unlike OSTree,
// which picks one of several as the directory lists them, it refuses more
// than one kernel, initramfs or devicetree, and an initramfs or devicetree
// that does not carry the kernel's checksum.
func ReadLegacy(dir string, names []string) (*Legacy, error) {
	found := map[string][]string{}
	for _, name := range names {
		for _, kind := range Kinds {
			if _, _, ok := SplitLegacy(kind, name); ok {
				found[kind] = append(found[kind], name)
			}
		}
	}
	if len(found["vmlinuz"]) == 0 {
		return nil, nil
	}
	l := &Legacy{Files: map[string]string{}}
	csum := ""
	for _, kind := range Kinds {
		switch n := found[kind]; {
		case len(n) == 0:
			continue
		case len(n) > 1:
			return nil, fmt.Errorf("%d %s files (%s) in %s; a deployment boots one", len(n), kind, strings.Join(n, ", "), dir)
		}
		name := found[kind][0]
		version, sum, _ := SplitLegacy(kind, name)
		if kind == "vmlinuz" {
			l.Version, csum = version, sum
		} else if sum != csum {
			return nil, fmt.Errorf("%s/%s does not carry the checksum of the kernel %s/%s", dir, name, dir, l.Files["vmlinuz"])
		}
		l.Files[kind] = name
	}
	if !VersionOK(l.Version) {
		return nil, fmt.Errorf("kernel %s/%q holds a space or control character, which boot entries cannot carry", dir, l.Files["vmlinuz"])
	}
	return l, nil
}
