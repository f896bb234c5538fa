package commit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/otree/otree/internal/bootname"
	"github.com/otree/otree/repo"
)

// Metadata keys Options.Bootable writes, as OSTree names them.
const (
	BootableKey = "ostree.bootable" // "true"
	LinuxKey    = "ostree.linux"    // the kernel version
)

// noKernel is the error of a tree deploy finds no kernel in.
const noKernel = "commit: the tree is not bootable: it has no usr/lib/modules/<version>/vmlinuz, nor vmlinuz-<version>-<sha256> in usr/lib/ostree-boot or boot"

// kernelVersion finds the one kernel a tree ships where deploy looks for
// it: usr/lib/modules/<version>/vmlinuz, else the first of the legacy
// directories (bootname.LegacyDirs) the tree has; in either, the boot
// files must be regular files, as deploy requires; stat reads a file
// object's header.
// OSTree's --bootable reads only usr/lib/modules.
func kernelVersion(r reader, stat func(repo.ID) (*repo.FileHeader, error), root *dir) (string, error) {
	mods, err := lookupDir(r, root, "usr/lib/modules")
	if err != nil {
		return "", err
	}
	if mods != nil && mods.d != nil {
		var found []string
		for i, v := range mods.d.dirNames {
			k := mods.d.dirs[i]
			if err := k.expand(r); err != nil {
				return "", err
			}
			if k.findFile("vmlinuz") >= 0 {
				found = append(found, v)
			}
		}
		switch len(found) {
		case 0:
		case 1:
			if !bootname.VersionOK(found[0]) {
				return "", fmt.Errorf("commit: the tree is not bootable: kernel version directory usr/lib/modules/%q holds a space or control character, which boot entries cannot carry", found[0])
			}
			if err := checkModulesBootFiles(r, stat, mods.d.dirs[mods.d.findDir(found[0])], "usr/lib/modules/"+found[0]); err != nil {
				return "", err
			}
			return found[0], nil
		default:
			return "", fmt.Errorf("commit: the tree is not bootable: it has %d kernels (usr/lib/modules/{%s}/vmlinuz), deploy takes one", len(found), strings.Join(found, ","))
		}
	}
	for _, name := range bootname.LegacyDirs {
		e, err := lookupDir(r, root, name)
		if err != nil {
			return "", err
		}
		if e == nil {
			continue
		}
		if e.d == nil {
			// Deploy follows a link here; the tree being built has no
			// link targets at hand, so a link is refused, not guessed.
			return "", fmt.Errorf("commit: the tree is not bootable as --bootable reads it: %s is not a directory (a link there is not followed)", e.at)
		}
		l, err := bootname.ReadLegacy(name, e.d.fileNames)
		if err != nil {
			return "", fmt.Errorf("commit: the tree is not bootable: %w", err)
		}
		if l == nil {
			return "", errors.New(noKernel)
		}
		for _, kind := range bootname.Kinds {
			file := l.Files[kind]
			if file == "" {
				continue
			}
			h, err := stat(e.d.fileIDs[e.d.findFile(file)])
			if err != nil {
				return "", fmt.Errorf("commit: %s/%s: %w", name, file, err)
			}
			if h.Type != repo.TypeRegular {
				return "", fmt.Errorf("commit: the tree is not bootable: %s/%s is a %s, not a regular file, which deploy refuses", name, file, h.Type)
			}
		}
		if l.Version == "" {
			return "", fmt.Errorf("commit: the tree's kernel %s/%s has no version in its name, which %s records", name, l.Files["vmlinuz"], LinuxKey)
		}
		return l.Version, nil
	}
	return "", errors.New(noKernel)
}

// checkModulesBootFiles refuses what deploy refuses among the boot files
// of the kernel directory k (at base): a vmlinuz, initramfs, devicetree
// or .vmlinuz.hmac that is no regular file (a link: OSTree installs what
// it leads to, deploy refuses it), and without a devicetree, a dtb that
// is no directory or regular file, or a dtb/ holding anything but
// regular files and directories. Names are taken in deploy's order: the
// first initramfs name there is the one deploy installs.
func checkModulesBootFiles(r reader, stat func(repo.ID) (*repo.FileHeader, error), k *dir, base string) error {
	// regular reports whether name is in d, refusing it if it is there
	// but no regular file.
	regular := func(d *dir, at, name string) (bool, error) {
		i := d.findFile(name)
		if i < 0 {
			return false, nil
		}
		h, err := stat(d.fileIDs[i])
		if err != nil {
			return false, fmt.Errorf("commit: %s/%s: %w", at, name, err)
		}
		if h.Type != repo.TypeRegular {
			return false, fmt.Errorf("commit: the tree is not bootable: %s/%s is a %s, not a regular file, which deploy refuses", at, name, h.Type)
		}
		return true, nil
	}
	if err := k.expand(r); err != nil {
		return err
	}
	for _, names := range [][]string{{"vmlinuz"}, {"initramfs.img", "initramfs"}, {".vmlinuz.hmac"}} {
		for _, name := range names {
			ok, err := regular(k, base, name)
			if err != nil {
				return err
			}
			if ok {
				break
			}
		}
	}
	if ok, err := regular(k, base, "devicetree"); ok || err != nil {
		return err
	}
	if i := k.findFile("dtb"); i >= 0 {
		h, err := stat(k.fileIDs[i])
		if err != nil {
			return fmt.Errorf("commit: %s/dtb: %w", base, err)
		}
		if h.Type != repo.TypeRegular {
			return fmt.Errorf("commit: the tree is not bootable: %s/dtb is a %s, not a directory, which deploy refuses", base, h.Type)
		}
		return nil
	}
	var walk func(d *dir, at string) error
	walk = func(d *dir, at string) error {
		if err := d.expand(r); err != nil {
			return err
		}
		for _, name := range d.fileNames {
			if _, err := regular(d, at, name); err != nil {
				return err
			}
		}
		for i, name := range d.dirNames {
			if err := walk(d.dirs[i], at+"/"+name); err != nil {
				return err
			}
		}
		return nil
	}
	if i := k.findDir("dtb"); i >= 0 {
		return walk(k.dirs[i], base+"/dtb")
	}
	return nil
}

// found is what lookupDir found: the directory d, or, when nil, a file at
// the path at.
type found struct {
	d  *dir
	at string
}

// lookupDir finds the directory p (slash-separated, relative) in root,
// expanded. It returns nil when a name on the way is absent, and a found
// without d when one is a file.
func lookupDir(r reader, root *dir, p string) (*found, error) {
	d := root
	names := strings.Split(p, "/")
	for i, name := range names {
		if err := d.expand(r); err != nil {
			return nil, err
		}
		j := d.findDir(name)
		if j < 0 {
			if d.findFile(name) >= 0 {
				return &found{at: strings.Join(names[:i+1], "/")}, nil
			}
			return nil, nil
		}
		d = d.dirs[j]
	}
	if err := d.expand(r); err != nil {
		return nil, err
	}
	return &found{d: d}, nil
}
