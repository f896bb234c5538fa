package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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

// ConfigBootTries is the sysroot repository's config key, OSTree's
// sysroot.boot-counting-tries: how many times a new default deployment is
// booted before GRUB falls back to the previous one, when the new one
// never got as far as `otree admin boot-complete` (run by
// otree-boot-complete.service once boot-complete.target is reached).
// Unset or 0: no counting. It needs sysroot.bootloader=grub2: the count
// lives in GRUB's environment block (grubenv in boot/grub, or boot/grub2
// where GRUB is installed there), which grub.cfg reads and decrements at
// each boot.
const ConfigBootTries = "sysroot.boot-counting-tries"

// maxBootTries bounds ConfigBootTries: grub.cfg spells out one step of the
// count per try, since GRUB's script has no arithmetic.
const maxBootTries = 20

// grubTriesVar is the environment block's variable holding the tries left
// to the default deployment; set while a new default awaits its first
// completed boot.
const grubTriesVar = "otree_boot_tries"

// loaderConfig is what the system repository's config asks a switch to
// write beside the boot entries: a grub.cfg, and with it boot counting.
type loaderConfig struct {
	grub  bool // sysroot.bootloader=grub2
	tries int  // sysroot.boot-counting-tries; 0: no counting
	// count: the grub.cfg of this switch counts the boots of its default
	// (a new default, or one whose count goes on). Only such a grub.cfg
	// reads grubTriesVar, so that a count left in the environment block
	// by a crash can never act on a default it was not set for.
	count bool
}

// loaderConfig reads sysroot.bootloader and sysroot.boot-counting-tries,
// refusing values a switch could not act on.
func (s *Sysroot) loaderConfig() (loaderConfig, error) {
	var lc loaderConfig
	if v, _ := s.repo.Config().Get(ConfigBootloader); v != "" {
		if err := CheckConfigValue(ConfigBootloader, v); err != nil {
			return lc, err
		}
		lc.grub = v == "grub2"
	}
	v, _ := s.repo.Config().Get(ConfigBootTries)
	if v == "" {
		return lc, nil
	}
	n, err := parseBootTries(v)
	if err != nil {
		return lc, err
	}
	if n > 0 && !lc.grub {
		return lc, fmt.Errorf("config %s=%s needs %s=grub2: the count is kept by GRUB", ConfigBootTries, v, ConfigBootloader)
	}
	lc.tries = n
	return lc, nil
}

// grubCfg is the grub.cfg a switch to entries writes, nil without one.
func (lc loaderConfig) grubCfg(entries []*bootEntry) []byte {
	if !lc.grub {
		return nil
	}
	if !lc.count {
		return renderGrub(entries, 0)
	}
	return renderGrub(entries, lc.tries)
}

// grubCounts tells whether the grub.cfg of the current boot version counts
// boots (loaderConfig.count): only then does grubTriesVar mean anything.
// It looks for the whole line renderGrub writes to load the count, which
// no title or kernel argument (one line each, quoted) can make.
func (s *Sysroot) grubCounts() bool {
	b, err := os.ReadFile(filepath.Join(s.path, "boot", fmt.Sprintf("loader.%d", s.bootVersion), grubConfigFile))
	return err == nil && bytes.Contains(b, []byte(grubLoadCount))
}

// grubLoadCount is the line of a counting grub.cfg that loads the count.
const grubLoadCount = "\n\tload_env " + grubTriesVar + "\n"

// parseBootTries checks a ConfigBootTries value.
func parseBootTries(v string) (int, error) {
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || fmt.Sprint(n) != v || n < 0 || n > maxBootTries {
		return 0, fmt.Errorf("config %s=%q: want a number of tries from 0 (off) to %d", ConfigBootTries, v, maxBootTries)
	}
	return n, nil
}

// CheckConfigValue checks a value of one of the sysroot keys of the
// system repository's config (sysroot.bootloader,
// sysroot.boot-counting-tries), and refuses OSTree's sysroot keys otree
// does not act on (sysroot.readonly unless false,
// sysroot.bls-append-except-default); other keys pass.
func CheckConfigValue(key, value string) error {
	switch key {
	case ConfigBootloader:
		if value != "none" && value != "grub2" {
			return fmt.Errorf("config %s=%q: otree writes the boot entries alone (none) or also a grub.cfg (grub2)", ConfigBootloader, value)
		}
	case ConfigBootTries:
		_, err := parseBootTries(value)
		return err
	case "sysroot.readonly":
		if value != "false" && value != "0" { // GLib's two spellings of false
			return fmt.Errorf("config %s=%q: otree does not act on this OSTree key: it leaves the physical root at /sysroot mounted as the initramfs mounted it, and does not remount it to write", key, value)
		}
	case "sysroot.bls-append-except-default":
		return fmt.Errorf("config %s=%q: otree does not act on this OSTree key: every boot entry gets the kernel arguments of its deployment alone (admin kargs)", key, value)
	}
	return nil
}

// fallbackIndex is the index in a list of n deployments (or their boot
// entries) that GRUB boots once the default's tries are spent: the first
// behind the default of its stateroot (osOf(i)), as Rollback picks, not
// another system's that happens to be listed second; 1 when the
// stateroot has no other (a system that boots beats a boot loop).
func fallbackIndex(n int, osOf func(i int) string) int {
	for i := 1; i < n; i++ {
		if osOf(i) == osOf(0) {
			return i
		}
	}
	return 1
}

// renderGrub writes a grub.cfg with a menu entry per boot entry, in boot
// order: the default deployment first. Paths are as in the entries, on the
// filesystem GRUB loaded the configuration from (the boot partition, or
// the root one holding /boot); kernel arguments are single-quoted, their
// double quotes left to GRUB (grubKernelArg). With tries > 0 it counts the boots of a
// new default deployment (grubTriesVar) and, once none are left, boots
// the previous one instead (fallbackIndex).
func renderGrub(entries []*bootEntry, tries int) []byte {
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
	if tries > 0 && len(entries) > 1 {
		fallback := fallbackIndex(len(entries), func(i int) string { return entries[i].os })
		fmt.Fprintf(&b, `
# Boot counting (sysroot.boot-counting-tries=%d): while %s is set, the
# default deployment has not completed a boot yet; each boot takes one
# try, and with none left the previous deployment (entry %d) boots.
# otree admin boot-complete unsets it once a boot of the default completes.
if [ -f "${prefix}/grubenv" ]; then
	load_env %s
fi
if [ -n "${%s}" ]; then
`, tries, grubTriesVar, fallback, grubTriesVar, grubTriesVar)
		// Every count up to the bound, not only up to tries: a count set
		// under a higher setting than today's must go on, not fall back.
		for i := maxBootTries; i >= 1; i-- {
			kw := "elif"
			if i == maxBootTries {
				kw = "if"
			}
			fmt.Fprintf(&b, "\t%s [ \"${%s}\" = %d ]; then\n\t\tset %s=%d\n", kw, grubTriesVar, i, grubTriesVar, i-1)
		}
		fmt.Fprintf(&b, "\telse\n\t\tset default=%d\n\tfi\n\tsave_env %s\nfi\n", fallback, grubTriesVar)
	}
	for _, e := range entries {
		fmt.Fprintf(&b, "\nmenuentry %s --class gnu-linux --class os --id %s {\n", grubQuote(e.title), grubQuote(strings.TrimSuffix(e.file, ".conf")))
		fmt.Fprintf(&b, "\tlinux %s", grubQuote(e.linux))
		for _, a := range splitArgs(e.options) {
			if a = grubKernelArg(a); a != "" {
				fmt.Fprintf(&b, " %s", grubQuote(a))
			}
		}
		b.WriteString("\n")
		if len(e.initrds) > 0 {
			b.WriteString("\tinitrd")
			for _, i := range e.initrds {
				fmt.Fprintf(&b, " %s", grubQuote(i))
			}
			b.WriteString("\n")
		}
		if e.devicetree != "" {
			fmt.Fprintf(&b, "\tdevicetree %s\n", grubQuote(e.devicetree))
		}
		// No fdtdir: GRUB cannot pick a board's tree from a directory,
		// so it boots such an entry with the firmware's.
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// grubKernelArg is the word of GRUB's linux command that hands the kernel
// the argument a. GRUB (2.06 on) writes a backslash before every double
// quote, single quote and backslash of a word, which the kernel keeps as
// part of the value, and puts a word holding a space in double quotes of
// its own: so the double quotes the kernel groups by (x="a b") are
// dropped here, and GRUB's own ("x=a b") group what they grouped.
func grubKernelArg(a string) string {
	return strings.ReplaceAll(a, `"`, "")
}

// grubQuote quotes a word for GRUB's script language: inside single quotes
// everything is literal but the quote itself, which closes the quotes, is
// written escaped (backslash, quote) and opens them again.
func grubQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
