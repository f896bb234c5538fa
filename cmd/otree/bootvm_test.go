package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/internal/debroot"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
)

// vmEnv turns TestBootDebianVM on: it debootstraps a bootable Debian tree
// on first use (minutes; cached after) and boots machines made of it.
const vmEnv = "OTREE_TEST_VM"

// vmReportPrefix starts each line the guest's test service writes to the
// second serial port.
const vmReportPrefix = "OTREE-BOOT-TEST "

// vmScriptReport starts the guest's test services: it reports what runs.
const vmScriptReport = `#!/bin/sh
exec >/dev/ttyS1 2>&1
say() { echo "` + vmReportPrefix + `$*"; }
say "commit=$(cat /usr/share/otree-boot-test/commit)"
say "cmdline=$(cat /proc/cmdline)"
say "hostname=$(hostname)"
say "etc-local=$(cat /etc/otree-boot-test.conf 2>/dev/null || echo none)"
say "etc-b-default=$(cat /etc/b-default.conf 2>/dev/null || echo none)"
if touch /usr/otree-boot-test 2>/dev/null; then say usr=rw; else say usr=ro; fi
say "var=$(cat /var/lib/otree-boot-test/marker 2>/dev/null || echo none)"
say "entries=$(ls /boot/loader/entries 2>&1 | tr '\n' ' ')"
say "status=$(otree admin status --json 2>&1 | tr -d '\n')"
say "boot-source=$(findmnt -n -o SOURCE /boot 2>&1)"
say "grubenv=$(grep -a otree_boot_tries /boot/grub/grubenv 2>/dev/null)"
say "failed=$(systemctl --failed --plain --no-legend 2>&1 | tr '\n' ' ')"
say "prepare-root=$(journalctl -b -o cat -u otree-prepare-root.service 2>&1 | tr '\n' ' ')"
`

// vmScript is the guest's test service: it reports (vmScriptReport), then
// acts by what it finds: on commit A with no admin edits it stages an
// upgrade and edits /etc (before and after staging), on commit B it rolls
// back; then the unit powers off, and with an upgrade staged, the shutdown
// finalizes it (dist/systemd's otree-finalize-staged units).
const vmScript = vmScriptReport + `case "$(cat /usr/share/otree-boot-test/commit)" in
A)
	if [ ! -e /etc/otree-boot-test.conf ]; then
		echo admin-host >/etc/hostname
		out=$(otree admin upgrade --stage 2>&1); rc=$?
		say "upgrade=$rc $(echo "$out" | tr '\n' ' ')"
		# Made after staging: the finalize at shutdown merges it.
		echo "edited on A" >/etc/otree-boot-test.conf
		for i in $(seq 60); do
			systemctl -q is-active otree-finalize-staged.service && break
			sleep 1
		done
		say "finalize-unit=$(systemctl is-active otree-finalize-staged.service)"
	fi
	;;
B)
	out=$(otree admin rollback 2>&1); rc=$?
	say "rollback=$rc $(echo "$out" | tr '\n' ' ')"
	;;
esac
sync
say end
`

// vmUnit runs vmScript once the system is up and powers the machine off,
// in order (stopping the finalize unit finalizes), whatever it does.
const vmUnit = `[Unit]
Description=otree boot test
After=multi-user.target
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=/usr/lib/otree-boot-test
`

// TestBootDebianVM boots what otree admin deploys: a Debian 12 tree with
// its kernel, an initramfs made in the tree with dist/'s integration, and
// systemd, committed and deployed with otree admin into a disk image the
// way an installer would, booted in QEMU through GRUB (i386-pc, reading
// the grub.cfg the deploy wrote). Each boot is checked from what the
// guest reports on a serial port.
//
// initramfs-tools: booted on commit A, the guest edits /etc and runs otree
// admin upgrade --stage, which the shutdown finalizes; booted again, it
// runs commit B with the edits merged, and rolls back; booted a third time
// it runs A again. dracut: A boots through dist/dracut's
// otree-prepare-root.service in a systemd initramfs. boot-partition: /boot
// is a partition of its own, mounted by the tree's fstab; A boots and
// stages B, which the shutdown finalizes onto the boot partition, and B
// boots. uefi-network: booted through OVMF and GRUB for x86_64-efi, it
// upgrades from a server over HTTP through otree-upgrade.service
// (vmTestNetwork).
func TestBootDebianVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a Debian tree in a virtual machine")
	}
	if os.Getenv(vmEnv) != "1" {
		t.Skipf("set %s=1 to boot a Debian tree in QEMU (debootstraps it on first use, minutes; CI installs qemu-system-x86, grub-pc-bin, ovmf, grub-efi-amd64-bin, dosfstools, mtools and nginx)", vmEnv)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: a Debian tree, chroot, mount")
	}
	for _, tool := range []string{"qemu-system-x86_64", "grub-mkimage", "mkfs.ext4", "debootstrap", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (qemu-system-x86, grub-common, e2fsprogs, debootstrap, util-linux)", tool)
		}
	}
	if _, err := os.Stat(filepath.Join(vmGrubDir, "boot.img")); err != nil {
		t.Skipf("GRUB for BIOS is not installed (apt-get install grub-pc-bin): %v", err)
	}
	otreeBin := testbin.BuildStatic(t, "github.com/otree/otree/cmd/otree")
	prepBin := testbin.BuildStatic(t, "github.com/otree/otree/cmd/otree-prepare-root")
	bins := &vmBins{otree: otreeBin, prepareRoot: prepBin}

	t.Run("initramfs-tools", func(t *testing.T) {
		m := vmNewMachine(t, bins, vmLayout{})
		// Boot 1: A, as deployed. The guest edits /etc and upgrades to B.
		r := m.boot(t, 1)
		vmCommon(t, r, "A")
		vmBooted(t, r, m.idA)
		if r["hostname"] != "otree-a" || r["etc-local"] != "none" {
			t.Errorf("boot 1: hostname %q, /etc/otree-boot-test.conf %q; want otree-a, none", r["hostname"], r["etc-local"])
		}
		vmStaged(t, r)

		// Boot 2: B, finalized at the shutdown, with the admin's edits of
		// A's /etc kept, the one made after staging too (the hostname both
		// changed is the admin's), and B's new default.
		r = m.boot(t, 2)
		vmCommon(t, r, "B")
		vmBooted(t, r, m.idB, m.idA)
		for k, want := range map[string]string{"hostname": "admin-host", "etc-local": "edited on A", "etc-b-default": "default of B"} {
			if r[k] != want {
				t.Errorf("boot 2: %s = %q, want %q", k, r[k], want)
			}
		}
		if !strings.HasPrefix(r["rollback"], "0 ") {
			t.Fatalf("otree admin rollback in the guest: %q", r["rollback"])
		}

		// Boot 3: A again, its /etc as the admin left it.
		r = m.boot(t, 3)
		vmCommon(t, r, "A")
		vmBooted(t, r, m.idA, m.idB)
		for k, want := range map[string]string{"hostname": "admin-host", "etc-local": "edited on A", "etc-b-default": "none"} {
			if r[k] != want {
				t.Errorf("boot 3: %s = %q, want %q", k, r[k], want)
			}
		}
	})

	t.Run("dracut", func(t *testing.T) {
		m := vmNewMachine(t, bins, vmLayout{dracut: true})
		r := m.boot(t, 1)
		vmCommon(t, r, "A")
		vmBooted(t, r, m.idA)
		if r["hostname"] != "otree-a" || r["etc-local"] != "none" {
			t.Errorf("hostname %q, /etc/otree-boot-test.conf %q; want otree-a, none", r["hostname"], r["etc-local"])
		}
		// The deployment was set up by the initramfs's unit.
		if !strings.Contains(r["prepare-root"], "/sysroot is now deployment ") {
			t.Errorf("otree-prepare-root.service in the initramfs logged %q, want it to have set up the deployment", r["prepare-root"])
		}
		vmStaged(t, r)
	})

	t.Run("uefi-network", func(t *testing.T) { vmTestNetwork(t, bins) })

	t.Run("boot-partition", func(t *testing.T) {
		m := vmNewMachine(t, bins, vmLayout{bootPartition: true})
		r := m.boot(t, 1)
		vmCommon(t, r, "A")
		vmBooted(t, r, m.idA)
		vmStaged(t, r)
		if r["boot-source"] != "/dev/vda1" {
			t.Errorf("/boot is mounted from %q, want the boot partition /dev/vda1", r["boot-source"])
		}
		r = m.boot(t, 2)
		vmCommon(t, r, "B")
		vmBooted(t, r, m.idB, m.idA)
		if r["boot-source"] != "/dev/vda1" {
			t.Errorf("/boot is mounted from %q, want the boot partition /dev/vda1", r["boot-source"])
		}
		if !strings.HasPrefix(r["rollback"], "0 ") {
			t.Fatalf("otree admin rollback in the guest: %q", r["rollback"])
		}
		// The rollback's entries, on the boot partition, name kernels and
		// initramfs images there; the root partition's /boot, the
		// partition's mount point, got nothing.
		m.mount(t)
		// A bind mount of the root partition alone, without the boot
		// partition on it.
		under := filepath.Join(m.tmp, "rootonly")
		realMust(t, os.Mkdir(under, 0o755))
		realCmd(t, "mount", "--bind", m.mnt, under)
		ents, err := os.ReadDir(filepath.Join(under, "boot"))
		realCmd(t, "umount", under)
		if err != nil || len(ents) != 0 {
			t.Errorf("the root partition's /boot holds %v (%v), want nothing", ents, err)
		}
		files, err := filepath.Glob(filepath.Join(m.mnt, "boot/loader/entries/*.conf"))
		realMust(t, err)
		if len(files) != 2 {
			t.Fatalf("entries on the boot partition: %q, want 2", files)
		}
		dirs, err := filepath.Glob(filepath.Join(m.mnt, "boot/otree/debian-*"))
		realMust(t, err)
		if len(dirs) != 2 {
			t.Errorf("kernel directories on the boot partition: %q, want A's and B's", dirs)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			realMust(t, err)
			for line := range strings.Lines(string(b)) {
				k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
				if k != "linux" && k != "initrd" {
					continue
				}
				if !strings.HasPrefix(v, "/otree/") {
					t.Errorf("%s: %s %s: want a path from the boot partition's root", f, k, v)
				}
				if _, err := os.Stat(filepath.Join(m.mnt, "boot", v)); err != nil {
					t.Errorf("%s: %s %s is not on the boot partition: %v", f, k, v, err)
				}
			}
		}
	})
}

// vmGrubDir holds GRUB for BIOS: boot.img and the modules.
const vmGrubDir = "/usr/lib/grub/i386-pc"

// vmGrubEFIDir holds GRUB for UEFI's modules; vmOVMFCode and vmOVMFVars are
// the firmware's two halves; vmEFIGrubStub is the grub.cfg on the EFI
// system partition.
const (
	vmGrubEFIDir  = "/usr/lib/grub/x86_64-efi"
	vmOVMFCode    = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	vmOVMFVars    = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	vmEFIGrubStub = `search --no-floppy --label root --set=root
set prefix=($root)/boot/grub
configfile $prefix/grub.cfg
`
)

// vmGrubEFIInstall puts GRUB for UEFI on m's EFI system partition, as
// grub-install --removable does: the image at the path firmware boots
// when it has no boot entries, EFI/BOOT/BOOTX64.EFI, and beside it a
// grub.cfg that finds the root partition by its label and reads its
// /boot/grub/grub.cfg, the link to the one otree writes, with the modules
// in /boot/grub/x86_64-efi. It also copies OVMF's variables for m.
func vmGrubEFIInstall(t *testing.T, m *vmMachine) {
	t.Helper()
	// Made apart, filled with mtools, which needs no vfat in the kernel
	// (a container may have none), and copied into the disk.
	esp := filepath.Join(m.tmp, "esp")
	boot := filepath.Join(esp, "EFI", "BOOT")
	realMust(t, os.MkdirAll(boot, 0o755))
	realCmd(t, "grub-mkimage", "-O", "x86_64-efi", "-o", filepath.Join(boot, "BOOTX64.EFI"), "-p", "/EFI/BOOT",
		"part_msdos", "fat", "ext2", "search", "search_label", "configfile", "normal")
	vmWrite(t, filepath.Join(boot, "grub.cfg"), vmEFIGrubStub, 0o644)
	p := m.parts[0]
	img := filepath.Join(m.tmp, "esp.img")
	realCmd(t, "mkfs.fat", "-C", "-F", "32", "-n", p.label, img, fmt.Sprint(p.size>>10))
	realCmd(t, "mcopy", "-s", "-i", img, filepath.Join(esp, "EFI"), "::/")
	b, err := os.ReadFile(img)
	realMust(t, err)
	f, err := os.OpenFile(m.disk, os.O_WRONLY, 0)
	realMust(t, err)
	defer f.Close()
	_, err = f.WriteAt(b, p.start)
	realMust(t, err)
	vmInstall(t, vmOVMFVars, filepath.Join(m.tmp, "OVMF_VARS.fd"), 0o644)
	m.firmware = []string{
		"-drive", "if=pflash,format=raw,readonly=on,file=" + vmOVMFCode,
		"-drive", "if=pflash,format=raw,file=" + filepath.Join(m.tmp, "OVMF_VARS.fd"),
	}
}

// vmBins are the static otree binaries a tree gets, and QEMU's
// accelerator once a machine has found it.
type vmBins struct{ otree, prepareRoot, accel string }

// vmLayout is how a machine differs from the first one TestBootDebianVM
// boots: an initramfs-tools initramfs and one ext4 partition.
type vmLayout struct {
	// dracut makes the initramfs with dracut and dist/dracut's module
	// (the tree is debroot's dracut one).
	dracut bool
	// bootPartition puts /boot on a partition of its own, before the
	// root partition, mounted by the tree's /etc/fstab.
	bootPartition bool
	// network gives the machine a network card and systemd-networkd, and
	// dist/systemd's otree-upgrade.service; its test service is
	// vmNetScript, and commit B goes to the archive repository of a server
	// (vmNewServer) instead of the system repository.
	network bool
	// uefi boots through OVMF and GRUB for x86_64-efi on an EFI system
	// partition (FAT, before the root partition), which finds the root
	// partition's /boot/grub/grub.cfg, as Debian's grub-install sets it up.
	uefi bool
}

// vmMachine is a disk image with commit A deployed and commit B in the
// system repository, on the branch the deployment follows.
type vmMachine struct {
	tmp, disk, accel string
	idA, idB         string
	mnt              string
	parts            []vmPart  // boot partition first, when there is one
	srv              *vmServer // with vmLayout.network
	firmware         []string  // QEMU's arguments for UEFI, with vmLayout.uefi
}

// vmPart is a partition of the disk image, in bytes.
type vmPart struct {
	start, size int64
	label       string
	esp         bool // an EFI system partition, FAT; else ext4
}

// vmNewMachine builds commits A and B of the Debian tree as DEPLOY.md's
// "Booting a machine" does and installs a disk image with them.
func vmNewMachine(t *testing.T, bins *vmBins, layout vmLayout) *vmMachine {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	get := debroot.GetBootable
	if layout.dracut {
		get = debroot.GetBootableDracut
	}
	deb, err := get(ctx)
	if errors.Is(err, debroot.ErrUnreachable) {
		t.Skipf("no Debian tree: %v", err)
	}
	realMust(t, err)
	t.Logf("bootable Debian tree ready in %v", time.Since(start))
	kver := deb.KernelVersion

	m := &vmMachine{tmp: t.TempDir()}
	treeA := filepath.Join(m.tmp, "treeA")
	realMust(t, os.Mkdir(treeA, 0o755))
	realMust(t, deb.Extract(ctx, treeA))
	if bins.accel == "" {
		bins.accel = vmAccel(t, filepath.Join(treeA, "boot", "vmlinuz-"+kver))
	}
	m.accel = bins.accel

	// The tree as DEPLOY.md's "Booting a machine" builds it: otree and
	// otree-prepare-root in it, the initramfs integration, and the
	// initramfs made in the tree for its kernel. The initramfs gets only
	// the modules a virtio disk with ext4 needs, which is quicker to make
	// than Debian's default of most.
	vmInstall(t, bins.otree, filepath.Join(treeA, "usr/bin/otree"), 0o755)
	vmInstall(t, bins.prepareRoot, filepath.Join(treeA, "usr/lib/otree/otree-prepare-root"), 0o755)
	start = time.Now()
	if layout.dracut {
		dist := filepath.Join("..", "..", "dist", "dracut", "98otree")
		mod := filepath.Join(treeA, "usr/lib/dracut/modules.d/98otree")
		vmInstall(t, filepath.Join(dist, "module-setup.sh"), filepath.Join(mod, "module-setup.sh"), 0o755)
		vmInstall(t, filepath.Join(dist, "otree-prepare-root.service"), filepath.Join(mod, "otree-prepare-root.service"), 0o644)
		// dracut reads /proc (its systemd module, /dev/fd): mounted in
		// a mount namespace of its own, which takes it away after.
		realCmd(t, "unshare", "--mount", "--propagation=private", "chroot", treeA, "sh", "-c",
			`mount -t proc proc /proc && exec dracut -q --no-hostonly --add otree --drivers "virtio_pci virtio_blk ext4" --force "/boot/initrd.img-$1" "$1"`, "sh", kver)
	} else {
		dist := filepath.Join("..", "..", "dist", "initramfs-tools")
		vmInstall(t, filepath.Join(dist, "hooks/otree"), filepath.Join(treeA, "etc/initramfs-tools/hooks/otree"), 0o755)
		vmInstall(t, filepath.Join(dist, "scripts/local-bottom/otree"), filepath.Join(treeA, "etc/initramfs-tools/scripts/local-bottom/otree"), 0o755)
		vmWrite(t, filepath.Join(treeA, "etc/initramfs-tools/conf.d/otree-test"), "MODULES=list\n", 0o644)
		vmWrite(t, filepath.Join(treeA, "etc/initramfs-tools/modules"), "virtio_pci\nvirtio_blk\next4\n", 0o644)
		realCmd(t, "chroot", treeA, "update-initramfs", "-c", "-k", kver)
	}
	t.Logf("made the initramfs in %v", time.Since(start))
	mods := filepath.Join(treeA, "usr/lib/modules", kver)
	realMust(t, os.Rename(filepath.Join(treeA, "boot", "vmlinuz-"+kver), filepath.Join(mods, "vmlinuz")))
	realMust(t, os.Rename(filepath.Join(treeA, "boot", "initrd.img-"+kver), filepath.Join(mods, "initramfs.img")))
	bootFiles, err := os.ReadDir(filepath.Join(treeA, "boot"))
	realMust(t, err)
	for _, f := range bootFiles {
		realMust(t, os.Remove(filepath.Join(treeA, "boot", f.Name())))
	}
	// The links to /boot's kernel, which is gone.
	for _, l := range []string{"vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"} {
		if err := os.Remove(filepath.Join(treeA, l)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	// Finalizing staged deployments at shutdown, and the test's service;
	// enabled as systemctl enable would.
	units := filepath.Join(treeA, "usr/lib/systemd/system")
	for _, u := range []string{"otree-finalize-staged.service", "otree-finalize-staged.path"} {
		vmInstall(t, filepath.Join("..", "..", "dist", "systemd", u), filepath.Join(units, u), 0o644)
	}
	script := vmScript
	if layout.network {
		script = vmNetScript
		vmNetInstall(t, treeA)
	}
	vmWrite(t, filepath.Join(treeA, "usr/lib/otree-boot-test"), script, 0o755)
	vmWrite(t, filepath.Join(units, "otree-boot-test.service"), vmUnit, 0o644)
	wants := filepath.Join(treeA, "etc/systemd/system/multi-user.target.wants")
	realMust(t, os.MkdirAll(wants, 0o755))
	for _, u := range []string{"otree-finalize-staged.path", "otree-boot-test.service"} {
		realMust(t, os.Symlink("/usr/lib/systemd/system/"+u, filepath.Join(wants, u)))
	}
	vmWrite(t, filepath.Join(treeA, "usr/share/otree-boot-test/commit"), "A\n", 0o644)
	vmWrite(t, filepath.Join(treeA, "etc/hostname"), "otree-a\n", 0o644)
	const diskSize, partStart = 3 << 30, 1 << 20
	if layout.bootPartition {
		vmWrite(t, filepath.Join(treeA, "etc/fstab"), "LABEL=boot /boot ext4 defaults 0 2\n", 0o644)
		const bootSize = 256 << 20
		m.parts = []vmPart{{partStart, bootSize, "boot", false}, {partStart + bootSize, diskSize - partStart - bootSize, "root", false}}
	} else if layout.uefi {
		const espSize = 64 << 20
		m.parts = []vmPart{{partStart, espSize, "ESP", true}, {partStart + espSize, diskSize - partStart - espSize, "root", false}}
	} else {
		m.parts = []vmPart{{partStart, diskSize - partStart, "root", false}}
	}
	realMust(t, os.Rename(filepath.Join(treeA, "etc"), filepath.Join(treeA, "usr/etc")))

	// Commit B: another marker, a new default hostname (which the admin
	// changes on A too), a new file in /etc, and an initramfs of its own
	// (A's with padding the kernel skips), so that its boot files are new
	// ones the booted A writes to /boot.
	treeB := filepath.Join(m.tmp, "treeB")
	realCmd(t, "cp", "-al", treeA, treeB)
	initrdB := filepath.Join(treeB, "usr/lib/modules", kver, "initramfs.img")
	b, err := os.ReadFile(initrdB)
	realMust(t, err)
	realMust(t, os.Remove(initrdB))
	vmWrite(t, initrdB, string(append(b, make([]byte, 512)...)), 0o644)
	for name, content := range map[string]string{
		"usr/share/otree-boot-test/commit": "B\n", "usr/etc/hostname": "otree-b\n", "usr/etc/b-default.conf": "default of B\n"} {
		p := filepath.Join(treeB, name)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		vmWrite(t, p, content, 0o644)
	}

	// The disk: an MBR with the partitions from 1 MiB, ext4, each made and
	// mounted at its offset, so no partition device is needed.
	m.disk = filepath.Join(m.tmp, "disk.img")
	vmMBR(t, m.disk, diskSize, m.parts...)
	for _, p := range m.parts {
		if p.esp {
			continue // vmGrubEFIInstall makes it
		}
		realCmd(t, "mkfs.ext4", "-q", "-L", p.label, "-E", fmt.Sprintf("offset=%d", p.start), m.disk, fmt.Sprintf("%dk", p.size>>10))
	}
	m.mnt = filepath.Join(m.tmp, "mnt")
	realMust(t, os.Mkdir(m.mnt, 0o755))
	m.mount(t)
	// The deployments are immutable; the image goes with tmp.
	testtree.ClearImmutable(t, m.tmp)

	// The installer: init-fs, os-init, the commits into the system
	// repository, GRUB's configuration, the deploy, GRUB itself.
	admin := func(args ...string) string {
		t.Helper()
		return realOK(t, append([]string{"admin", "--sysroot=" + m.mnt}, args...)...)
	}
	repoFlag := "--repo=" + filepath.Join(m.mnt, "otree/repo")
	realOK(t, "admin", "init-fs", m.mnt)
	admin("os-init", "debian")
	start = time.Now()
	m.idA = realCommitID(t, realOK(t, repoFlag, "commit", "-b", "debian/x", "-s", "A", treeA))
	t.Logf("committed A in %v", time.Since(start))
	realOK(t, repoFlag, "config", "set", "sysroot.bootloader", "grub2")
	start = time.Now()
	admin("deploy", "--os=debian", "--karg=root=LABEL=root", "--karg=rw", "--karg=console=ttyS0", "debian/x")
	t.Logf("deployed A in %v", time.Since(start))
	grub := filepath.Join(m.mnt, "boot/grub")
	grubDir, platform := vmGrubDir, "i386-pc"
	if layout.uefi {
		grubDir, platform = vmGrubEFIDir, "x86_64-efi"
	}
	realMust(t, os.MkdirAll(filepath.Join(grub, platform), 0o755))
	grubMods, _ := filepath.Glob(filepath.Join(grubDir, "*.mod"))
	lsts, _ := filepath.Glob(filepath.Join(grubDir, "*.lst"))
	for _, mod := range append(grubMods, lsts...) {
		vmInstall(t, mod, filepath.Join(grub, platform, filepath.Base(mod)), 0o644)
	}
	realMust(t, os.Symlink("../loader/grub.cfg", filepath.Join(grub, "grub.cfg")))
	vmWrite(t, filepath.Join(grub, "custom.cfg"), "serial --unit=0 --speed=115200\nterminal_input serial\nterminal_output serial\nset timeout=0\n", 0o644)
	if layout.uefi {
		vmGrubEFIInstall(t, m)
	} else {
		// GRUB's files are on the first partition, the boot partition
		// when there is one.
		prefix := "(hd0,msdos1)/boot/grub"
		if layout.bootPartition {
			prefix = "(hd0,msdos1)/grub"
		}
		core := filepath.Join(m.tmp, "core.img")
		realCmd(t, "grub-mkimage", "-O", "i386-pc", "-o", core, "-p", prefix, "biosdisk", "part_msdos", "ext2")
		vmGrubInstall(t, m.disk, filepath.Join(vmGrubDir, "boot.img"), core, partStart)
	}
	vmWrite(t, filepath.Join(m.mnt, "otree/deploy/debian/var/lib/otree-boot-test/marker"), "stateroot var\n", 0o644)
	if layout.network {
		m.srv = vmNewServer(t, m, treeB)
		m.idB = m.srv.idB
	} else {
		start = time.Now()
		m.idB = realCommitID(t, realOK(t, repoFlag, "commit", "-b", "debian/x", "-s", "B", treeB))
		t.Logf("committed B in %v", time.Since(start))
	}
	m.umount(t)
	return m
}

// mount mounts the root partition on m.mnt and the boot partition, if
// any, on its boot/, until umount or the end of the test.
func (m *vmMachine) mount(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { exec.Command("umount", "-R", m.mnt).Run() })
	root := m.parts[len(m.parts)-1]
	realCmd(t, "mount", "-o", fmt.Sprintf("loop,offset=%d,sizelimit=%d", root.start, root.size), m.disk, m.mnt)
	if len(m.parts) == 1 || m.parts[0].esp {
		return
	}
	boot := m.parts[0]
	realMust(t, os.MkdirAll(filepath.Join(m.mnt, "boot"), 0o755))
	realCmd(t, "mount", "-o", fmt.Sprintf("loop,offset=%d,sizelimit=%d", boot.start, boot.size), m.disk, filepath.Join(m.mnt, "boot"))
}

func (m *vmMachine) umount(t *testing.T) {
	t.Helper()
	realCmd(t, "umount", "-R", m.mnt)
}

// boot boots the machine, the nth time, and returns what the guest reported.
func (m *vmMachine) boot(t *testing.T, n int) map[string]string {
	t.Helper()
	nic := "none"
	if m.srv != nil {
		// QEMU's user networking: the host is 10.0.2.2 to the guest.
		nic = "user,model=virtio-net-pci"
	}
	return vmBoot(t, m.accel, m.disk, filepath.Join(m.tmp, fmt.Sprintf("boot%d", n)), append([]string{"-nic", nic}, m.firmware...)...)
}

// vmCommon checks what every boot of commit must show: its /usr
// read-only, the stateroot's /var, otree= on the kernel command line, the
// boot entries in /boot, and no failed unit.
func vmCommon(t *testing.T, r map[string]string, commit string) {
	t.Helper()
	for k, want := range map[string]string{"commit": commit, "usr": "ro", "var": "stateroot var"} {
		if r[k] != want {
			t.Errorf("%s = %q, want %q", k, r[k], want)
		}
	}
	if !strings.Contains(r["cmdline"], " otree=/otree/boot.") || !strings.Contains(r["entries"], "otree-") {
		t.Errorf("cmdline %q, entries %q: want an otree= argument and the boot entries in /boot", r["cmdline"], r["entries"])
	}
	if r["failed"] != "" {
		t.Errorf("failed units: %s", r["failed"])
	}
}

// vmBooted checks the guest's status: the deployments of ids in boot
// order, the first booted.
func vmBooted(t *testing.T, r map[string]string, ids ...string) {
	t.Helper()
	var st struct {
		Deployments []realDeployment `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(r["status"]), &st); err != nil {
		t.Errorf("otree admin status --json in the guest: %v: %q", err, r["status"])
		return
	}
	var got []string
	for i, d := range st.Deployments {
		got = append(got, d.Commit)
		if d.Booted != (i == 0) {
			t.Errorf("the guest's deployment %d (%s): booted %v", i, d.Commit, d.Booted)
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("the guest's deployments %q, want %q", got, ids)
	}
}

// vmStaged checks that the guest on commit A staged the upgrade to B and
// that the unit finalizing it at shutdown runs.
func vmStaged(t *testing.T, r map[string]string) {
	t.Helper()
	if !strings.HasPrefix(r["upgrade"], "0 ") || r["finalize-unit"] != "active" {
		t.Fatalf("otree admin upgrade --stage in the guest: %q; otree-finalize-staged.service %q, want active", r["upgrade"], r["finalize-unit"])
	}
}

// vmAccelFound is what vmAccel found, for the next test that boots a
// machine: its probe takes up to 30 seconds.
var vmAccelFound string

// vmAccel returns QEMU's accelerator: kvm when it runs a kernel (kernel
// boots to its panic for want of a root filesystem within 30 seconds), else
// tcg when OTREE_TEST_VM_TCG=1 asks for it, else it skips the test.
func vmAccel(t *testing.T, kernel string) string {
	t.Helper()
	if vmAccelFound != "" {
		return vmAccelFound
	}
	if _, err := os.Stat("/dev/kvm"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "qemu-system-x86_64", "-enable-kvm", "-m", "256", "-display", "none", "-monitor", "none",
			"-no-reboot", "-nic", "none", "-serial", "stdio", "-kernel", kernel, "-append", "console=ttyS0 panic=-1").CombinedOutput()
		if err == nil && bytes.Contains(out, []byte("Kernel panic")) {
			vmAccelFound = "kvm"
			return vmAccelFound
		}
		t.Logf("KVM does not boot a kernel here (%v); %s", err, vmTail(out, 500))
	}
	if os.Getenv(vmEnv+"_TCG") == "1" {
		vmAccelFound = "tcg"
		return vmAccelFound
	}
	t.Skipf("no working KVM; %s_TCG=1 boots under emulation (minutes a boot)", vmEnv)
	return ""
}

// vmBoot boots disk, with QEMU's further args, until it powers off, keeps its console in dir, and
// returns what the guest reported, key=value.
func vmBoot(t *testing.T, accel, disk, dir string, args ...string) map[string]string {
	t.Helper()
	realMust(t, os.MkdirAll(dir, 0o755))
	console, report := filepath.Join(dir, "console.log"), filepath.Join(dir, "report.log")
	limit := 5 * time.Minute
	if accel == "tcg" {
		limit = 15 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	qemu := append([]string{"-accel", accel, "-m", "1024", "-smp", "2",
		"-nographic", "-monitor", "none", "-no-reboot",
		"-drive", "file=" + disk + ",format=raw,if=virtio",
		"-serial", "file:" + console, "-serial", "file:" + report}, args...)
	out, err := exec.CommandContext(ctx, "qemu-system-x86_64", qemu...).CombinedOutput()
	cons, _ := os.ReadFile(console)
	if err != nil {
		t.Fatalf("qemu: %v: %s\nconsole ends:\n%s", err, out, vmTail(cons, 4000))
	}
	t.Logf("booted and powered off in %v", time.Since(start))
	b, _ := os.ReadFile(report)
	r := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// Under UEFI the firmware's and GRUB's console writes to this
		// port too, so the first report may follow its escape sequences.
		_, line, ok := strings.Cut(strings.TrimRight(sc.Text(), "\r"), vmReportPrefix)
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		r[k] = strings.TrimSpace(v)
	}
	if _, ok := r["end"]; !ok {
		t.Fatalf("the guest's test service did not finish; it reported:\n%s\nconsole ends:\n%s", b, vmTail(cons, 4000))
	}
	return r
}

func vmTail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// vmMBR creates a sparse disk image of size bytes whose MBR has parts as
// partitions (Linux, or EFI system), the first bootable.
func vmMBR(t *testing.T, path string, size int64, parts ...vmPart) {
	t.Helper()
	f, err := os.Create(path)
	realMust(t, err)
	defer f.Close()
	realMust(t, f.Truncate(size))
	var mbr [512]byte
	for i, p := range parts {
		e := mbr[446+16*i : 462+16*i]
		if i == 0 {
			e[0] = 0x80 // bootable
		}
		copy(e[1:4], []byte{0xfe, 0xff, 0xff}) // CHS: past what CHS can say; LBA is used
		e[4] = 0x83                            // Linux
		if p.esp {
			e[4] = 0xef // EFI system partition
		}
		copy(e[5:8], []byte{0xfe, 0xff, 0xff})
		binary.LittleEndian.PutUint32(e[8:12], uint32(p.start/512))
		binary.LittleEndian.PutUint32(e[12:16], uint32(p.size/512))
	}
	mbr[510], mbr[511] = 0x55, 0xaa
	_, err = f.WriteAt(mbr[:], 0)
	realMust(t, err)
}

// vmGrubInstall writes GRUB's boot sector (its code, before the partition
// table) and core image (from sector 1, in the gap before the partition),
// as grub-install does on a BIOS disk with an MBR.
func vmGrubInstall(t *testing.T, disk, bootImg, core string, partStart int64) {
	t.Helper()
	b, err := os.ReadFile(bootImg)
	realMust(t, err)
	c, err := os.ReadFile(core)
	realMust(t, err)
	if len(b) != 512 || int64(len(c)) > partStart-512 {
		t.Fatalf("boot.img %d bytes, core.img %d bytes: do not fit before the partition", len(b), len(c))
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	realMust(t, err)
	defer f.Close()
	_, err = f.WriteAt(b[:440], 0)
	realMust(t, err)
	_, err = f.WriteAt(c, 512)
	realMust(t, err)
	realMust(t, unix.Fsync(int(f.Fd())))
}

func vmInstall(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	realMust(t, err)
	vmWrite(t, dst, string(b), mode)
}

func vmWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	realMust(t, os.MkdirAll(filepath.Dir(path), 0o755))
	realMust(t, os.WriteFile(path, []byte(content), mode))
}
