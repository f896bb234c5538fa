package deploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
)

// Checksums for legacy kernel names; nothing checks them against the
// content, in OSTree either.
var (
	legacySum  = strings.Repeat("ab", 32)
	legacySum2 = strings.Repeat("cd", 32)
)

// legacyTree is osTree with its usr/lib/modules kernel moved to the
// files of more: a kernel laid out as older tooling made it.
func legacyTree(more testtree.Tree) testtree.Tree {
	over := testtree.Tree{
		"usr/lib/modules/6.1.0-1/vmlinuz":       gone,
		"usr/lib/modules/6.1.0-1/initramfs.img": gone,
	}
	for k, v := range more {
		over[k] = v
	}
	return osTree("6.1.0-1", over)
}

// A kernel in usr/lib/ostree-boot or boot, named with a checksum, deploys
// as OSTree deploys it: the boot files are those carrying the kernel's
// checksum, installed and named in the entry as a usr/lib/modules
// kernel's are; one without a version is vmlinuz. A link for the
// directory is followed within the tree, and one that leads nowhere is as
// no directory.
func TestDeployLegacyKernel(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name  string
		tree  testtree.Tree
		kver  string
		files map[string]string // what the kernel's /boot directory holds
		entry *bootEntry        // linux, initrds and devicetree, relative to the kernel's directory
	}{
		{"ostree-boot", legacyTree(testtree.Tree{
			"usr/lib/ostree-boot/vmlinuz-5.0-" + legacySum:                  testtree.File("kernel 5.0", 0o644),
			"usr/lib/ostree-boot/initramfs-5.0.img-" + legacySum:            testtree.File("initramfs 5.0", 0o644),
			"usr/lib/ostree-boot/devicetree-5.0-" + legacySum:               testtree.File("dt 5.0", 0o644),
			"usr/lib/ostree-boot/initramfs-5.0.img":                         testtree.File("no checksum: not the layout", 0o644),
			"usr/lib/ostree-boot/config-5.0":                                testtree.File("not a boot file", 0o644),
			"usr/lib/ostree-boot/vmlinuz-5.0-" + strings.ToUpper(legacySum): testtree.File("not lowercase: not the layout", 0o644),
		}), "5.0",
			map[string]string{"vmlinuz-5.0": "kernel 5.0", "initramfs-5.0.img": "initramfs 5.0", "devicetree-5.0": "dt 5.0"},
			&bootEntry{linux: "vmlinuz-5.0", initrds: []string{"initramfs-5.0.img"}, devicetree: "devicetree-5.0"}},
		{"boot", legacyTree(testtree.Tree{
			"boot/vmlinuz-4.19.0-amd64-" + legacySum:       testtree.File("kernel 4.19", 0o644),
			"boot/initramfs-4.19.0-amd64.img-" + legacySum: testtree.File("initramfs 4.19", 0o644),
		}), "4.19.0-amd64",
			map[string]string{"vmlinuz-4.19.0-amd64": "kernel 4.19", "initramfs-4.19.0-amd64.img": "initramfs 4.19"},
			&bootEntry{linux: "vmlinuz-4.19.0-amd64", initrds: []string{"initramfs-4.19.0-amd64.img"}}},
		{"no version", legacyTree(testtree.Tree{
			"boot/vmlinuz-" + legacySum:   testtree.File("kernel", 0o644),
			"boot/initramfs-" + legacySum: testtree.File("initramfs", 0o644),
		}), "",
			map[string]string{"vmlinuz": "kernel", "initramfs.img": "initramfs"},
			&bootEntry{linux: "vmlinuz", initrds: []string{"initramfs.img"}}},
		{"ostree-boot link", legacyTree(testtree.Tree{
			"usr/lib/ostree-boot":            testtree.Symlink("../../kb"),
			"kb/vmlinuz-5.2-" + legacySum:    testtree.File("kernel 5.2", 0o644),
			"boot/vmlinuz-4.0-" + legacySum2: testtree.File("not read: usr/lib/ostree-boot is there", 0o644),
		}), "5.2",
			map[string]string{"vmlinuz-5.2": "kernel 5.2"},
			&bootEntry{linux: "vmlinuz-5.2"}},
		{"boot link above the root", legacyTree(testtree.Tree{
			"boot":                        testtree.Symlink("../../../kb"),
			"kb/vmlinuz-5.3-" + legacySum: testtree.File("kernel 5.3", 0o644),
		}), "5.3",
			map[string]string{"vmlinuz-5.3": "kernel 5.3"},
			&bootEntry{linux: "vmlinuz-5.3"}},
		{"dangling ostree-boot link", legacyTree(testtree.Tree{
			"usr/lib/ostree-boot":           testtree.Symlink("/nowhere"),
			"boot/vmlinuz-5.4-" + legacySum: testtree.File("kernel 5.4", 0o644),
		}), "5.4",
			map[string]string{"vmlinuz-5.4": "kernel 5.4"},
			&bootEntry{linux: "vmlinuz-5.4"}},
		{"no initramfs", legacyTree(testtree.Tree{
			"usr/lib/ostree-boot/vmlinuz-5.1-" + legacySum: testtree.File("kernel 5.1", 0o644),
		}), "5.1",
			map[string]string{"vmlinuz-5.1": "kernel 5.1"},
			&bootEntry{linux: "vmlinuz-5.1"}},
	} {
		f.commit(strings.ReplaceAll(tc.name, " ", "-"), tc.tree)
		d := f.deploy(strings.ReplaceAll(tc.name, " ", "-"), DeployOptions{}).Deployment
		if d.Kernel != tc.kver {
			t.Errorf("%s: kernel %q, want %q", tc.name, d.Kernel, tc.kver)
		}
		kdir := filepath.Join(f.path, "boot/otree/testos-"+d.BootCsum)
		got := map[string]string{}
		names, err := os.ReadDir(kdir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			b, _ := os.ReadFile(filepath.Join(kdir, n.Name()))
			got[n.Name()] = string(b)
		}
		if diff := cmp.Diff(tc.files, got); diff != "" {
			t.Errorf("%s: boot files (-want +got):\n%s", tc.name, diff)
		}
		entries := f.entries()
		e, rel := entries[0], "/boot/otree/testos-"+d.BootCsum+"/"
		gotEntry := &bootEntry{linux: strings.TrimPrefix(e.linux, rel), devicetree: strings.TrimPrefix(e.devicetree, rel)}
		for _, i := range e.initrds {
			gotEntry.initrds = append(gotEntry.initrds, strings.TrimPrefix(i, rel))
		}
		if diff := cmp.Diff(tc.entry, gotEntry, cmp.AllowUnexported(bootEntry{})); diff != "" {
			t.Errorf("%s: entry (-want +got):\n%s", tc.name, diff)
		}
		// Read back, the deployment names the same files.
		s2, err := Open(f.path, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(f.s.Deployments(), s2.Deployments(), cmp.AllowUnexported(Deployment{})); diff != "" {
			t.Errorf("%s: reopened (-want +got):\n%s", tc.name, diff)
		}
		s2.Close()
	}
}

// Where a tree has kernels in several layouts, the one deployed is
// OSTree's: usr/lib/modules, else usr/lib/ostree-boot, else boot; a
// usr/lib/ostree-boot directory without a kernel hides boot's.
func TestDeployLegacyKernelPrecedence(t *testing.T) {
	f := newFixture(t)
	ostreeBoot := testtree.Tree{"usr/lib/ostree-boot/vmlinuz-5.0-" + legacySum: testtree.File("kernel 5.0", 0o644)}
	boot := testtree.Tree{"boot/vmlinuz-4.0-" + legacySum2: testtree.File("kernel 4.0", 0o644)}
	both := func(trees ...testtree.Tree) testtree.Tree {
		out := testtree.Tree{}
		for _, t := range trees {
			for k, v := range t {
				out[k] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		tree testtree.Tree
		want string // the kernel deployed
	}{
		{"modules first", osTree("6.1.0-1", both(ostreeBoot, boot)), "6.1.0-1"},
		{"ostree-boot before boot", legacyTree(both(ostreeBoot, boot)), "5.0"},
		{"empty modules version", legacyTree(both(boot, testtree.Tree{"usr/lib/modules/6.1.0-1/modules.dep": testtree.File("", 0o644)})), "4.0"},
	} {
		id := f.commit("p", tc.tree)
		if d := f.deploy(id.String(), DeployOptions{}).Deployment; d.Kernel != tc.want {
			t.Errorf("%s: deployed kernel %q, want %q", tc.name, d.Kernel, tc.want)
		}
	}
	before := f.order()
	for name, tree := range map[string]testtree.Tree{
		"ostree-boot without a kernel": legacyTree(both(boot, testtree.Tree{
			"usr/lib/ostree-boot/initramfs-5.0.img-" + legacySum: testtree.File("initramfs", 0o644)})),
		"names without a checksum": legacyTree(testtree.Tree{
			"boot/vmlinuz-5.0": testtree.File("kernel", 0o644), "boot/initramfs-5.0.img": testtree.File("initramfs", 0o644)}),
		"short checksum": legacyTree(testtree.Tree{"boot/vmlinuz-5.0-abc123": testtree.File("kernel", 0o644)}),
		"none":           legacyTree(nil),
	} {
		id := f.commit("none", tree)
		_, err := f.s.Deploy(context.Background(), id.String(), DeployOptions{})
		var nk *NoKernelError
		if !errors.As(err, &nk) || nk.Commit != id || !strings.Contains(err.Error(), id.String()) ||
			!strings.Contains(err.Error(), "usr/lib/modules/<version>/vmlinuz, nor vmlinuz-<version>-<sha256> in usr/lib/ostree-boot or boot") {
			t.Errorf("%s: err = %v", name, err)
		}
		if diff := cmp.Diff(before, f.order()); diff != "" {
			t.Errorf("%s: %s", name, diff)
		}
	}
}

// The checksum in a legacy kernel's name is not what names its /boot
// directory: two kernels named alike get directories of their own.
func TestDeployLegacyKernelSameNameChecksum(t *testing.T) {
	f := newFixture(t)
	f.commit("a", legacyTree(testtree.Tree{"boot/vmlinuz-5.0-" + legacySum: testtree.File("kernel a", 0o644)}))
	a := f.deploy("a", DeployOptions{}).Deployment
	f.commit("b", legacyTree(testtree.Tree{"boot/vmlinuz-5.0-" + legacySum: testtree.File("kernel b", 0o644)}))
	b := f.deploy("b", DeployOptions{}).Deployment
	if a.BootCsum == b.BootCsum {
		t.Fatalf("both kernels in boot/otree/testos-%s", a.BootCsum)
	}
	got, err := os.ReadFile(filepath.Join(f.path, "boot/otree/testos-"+b.BootCsum, "vmlinuz-5.0"))
	if string(got) != "kernel b" {
		t.Errorf("b boots %q (%v)", got, err)
	}
}

// A legacy layout that does not say which files boot is refused, naming
// them: several kernels, an initramfs or devicetree carrying another
// kernel's checksum (OSTree refuses those too), a link for a kernel; and a
// kernel directory that is not one, where OSTree fails too, rather than
// booting the next layout's kernel.
func TestDeployLegacyKernelRefused(t *testing.T) {
	f := newFixture(t)
	f.commit("a", osTree("6.1.0-1", nil))
	f.deploy("a", DeployOptions{})
	before := f.order()
	k := "usr/lib/ostree-boot/vmlinuz-5.0-" + legacySum
	for name, tc := range map[string]struct {
		tree testtree.Tree
		want string
	}{
		"two kernels": {legacyTree(testtree.Tree{k: testtree.File("k", 0o644), "usr/lib/ostree-boot/vmlinuz-5.1-" + legacySum2: testtree.File("k2", 0o644)}),
			"2 vmlinuz files (vmlinuz-5.0-" + legacySum + ", vmlinuz-5.1-" + legacySum2 + ") in usr/lib/ostree-boot"},
		"two initramfs": {legacyTree(testtree.Tree{k: testtree.File("k", 0o644),
			"usr/lib/ostree-boot/initramfs-5.0.img-" + legacySum: testtree.File("i", 0o644), "usr/lib/ostree-boot/initramfs-5.1.img-" + legacySum: testtree.File("i2", 0o644)}),
			"2 initramfs files"},
		"initramfs of another kernel": {legacyTree(testtree.Tree{k: testtree.File("k", 0o644), "usr/lib/ostree-boot/initramfs-5.0.img-" + legacySum2: testtree.File("i", 0o644)}),
			"usr/lib/ostree-boot/initramfs-5.0.img-" + legacySum2 + " does not carry the checksum of the kernel usr/lib/ostree-boot/vmlinuz-5.0-" + legacySum},
		"devicetree of another kernel": {legacyTree(testtree.Tree{k: testtree.File("k", 0o644), "usr/lib/ostree-boot/devicetree-5.0-" + legacySum2: testtree.File("d", 0o644)}),
			"devicetree-5.0-" + legacySum2 + " does not carry the checksum"},
		"kernel link": {legacyTree(testtree.Tree{"boot/k": testtree.File("k", 0o644), "boot/vmlinuz-5.0-" + legacySum: testtree.Symlink("k")}),
			"boot/vmlinuz-5.0-" + legacySum + " is not a regular file"},
		"ostree-boot a file": {legacyTree(testtree.Tree{"usr/lib/ostree-boot": testtree.File("x", 0o644), "boot/vmlinuz-5.0-" + legacySum: testtree.File("k", 0o644)}),
			"kernel directory usr/lib/ostree-boot: usr/lib/ostree-boot is not a directory"},
		"ostree-boot a link to a file": {legacyTree(testtree.Tree{"usr/lib/ostree-boot": testtree.Symlink("/etc/k"), "etc/k": testtree.File("x", 0o644), "boot/vmlinuz-5.0-" + legacySum: testtree.File("k", 0o644)}),
			"kernel directory usr/lib/ostree-boot: etc/k is not a directory"},
		"boot a link loop": {legacyTree(testtree.Tree{"boot": testtree.Symlink("boot")}),
			"too many levels of symbolic links"},
		"space in version": {legacyTree(testtree.Tree{"boot/vmlinuz-5.0 x-" + legacySum: testtree.File("k", 0o644)}),
			"space or control character"},
	} {
		f.deployRefused(name, tc.tree, tc.want, before)
	}
}
