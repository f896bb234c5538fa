package deploy

import (
	"bytes"
	"fmt"
	"strings"
)

// ConfigBootloader is the sysroot repository's config key, OSTree's
// sysroot.bootloader, naming the boot loader whose configuration a switch
// writes beside the Boot Loader Specification entries: "none" (the
// default: the entries alone, which systemd-boot and other BLS loaders
// read) or "grub2", for a GRUB without BLS support, as Debian's: a
// grub.cfg in each boot version's loader directory, so that
// /boot/grub/grub.cfg, linked to ../loader/grub.cfg, switches with the
// same rename as the entries.
const ConfigBootloader = "sysroot.bootloader"

// grubConfigFile is the name of the GRUB configuration in boot/loader.N.
const grubConfigFile = "grub.cfg"

// writesGrub reports whether switches write a grub.cfg.
func (s *Sysroot) writesGrub() (bool, error) {
	switch v, _ := s.repo.Config().Get(ConfigBootloader); v {
	case "", "none":
		return false, nil
	case "grub2":
		return true, nil
	default:
		return false, fmt.Errorf("config %s=%q: otree writes the boot entries alone (none) or also a grub.cfg (grub2)", ConfigBootloader, v)
	}
}

// renderGrub writes a grub.cfg with a menu entry per boot entry, in boot
// order: the default deployment first. Paths are as in the entries, on the
// filesystem GRUB loaded the configuration from (the boot partition, or
// the root one holding /boot); kernel arguments are single-quoted so that
// GRUB passes them on as written.
func renderGrub(entries []*bootEntry) []byte {
	var b bytes.Buffer
	b.WriteString(`# Written by otree at each switch of deployments; not to be edited.
# /boot/grub/grub.cfg links to ../loader/grub.cfg, so the switch to a new
# boot version (one rename of /boot/loader) switches this file too.
# Settings of your own (timeout, serial console) go in custom.cfg beside
# grub.cfg, which is read first.
if [ -f "${config_directory}/custom.cfg" ]; then
	source "${config_directory}/custom.cfg"
fi
if [ -z "${timeout}" ]; then
	set timeout=5
fi
set default=0
`)
	for _, e := range entries {
		fmt.Fprintf(&b, "\nmenuentry %s --class gnu-linux --class os --id %s {\n", grubQuote(e.title), grubQuote(strings.TrimSuffix(e.file, ".conf")))
		fmt.Fprintf(&b, "\tlinux %s", grubQuote(e.linux))
		for _, a := range splitArgs(e.options) {
			fmt.Fprintf(&b, " %s", grubQuote(a))
		}
		b.WriteString("\n")
		if len(e.initrds) > 0 {
			b.WriteString("\tinitrd")
			for _, i := range e.initrds {
				fmt.Fprintf(&b, " %s", grubQuote(i))
			}
			b.WriteString("\n")
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// grubQuote quotes a word for GRUB's script language: inside single quotes
// everything is literal but the quote itself, which closes the quotes, is
// written escaped (backslash, quote) and opens them again.
func grubQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
