package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testbin"
)

// Boot counting from the command line: its config keys are checked when
// set, status shows the tries left, and boot-complete needs the running
// system.
func TestAdminBootCounting(t *testing.T) {
	a := newAdmin(t)
	a.fails(exitUsage, "from 0 (off) to 20", "config", "set", "sysroot.boot-counting-tries", "many")
	a.fails(exitUsage, "grub2", "config", "set", "sysroot.bootloader", "lilo")
	a.ok("config", "set", "sysroot.bootloader", "grub2")
	a.ok("config", "set", "sysroot.boot-counting-tries", "3")
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	if out := a.ok("admin", "status"); strings.Contains(out, "boot:") {
		t.Errorf("a single deployment is counted:\n%s", out)
	}
	a.commit("two\n", "6.1.0-2")
	a.ok("admin", "deploy", "cli/stable")
	out := a.ok("admin", "status")
	if !strings.Contains(out, "    boot: not completed yet; 3 of 3 tries left before GRUB falls back to deployment 1\n") {
		t.Errorf("status:\n%s", out)
	}
	var st struct {
		BootCount struct {
			Tries    int  `json:"tries"`
			Counting bool `json:"counting"`
			Left     int  `json:"left"`
		} `json:"boot_count"`
	}
	if err := json.Unmarshal([]byte(a.ok("admin", "status", "--json")), &st); err != nil || st.BootCount.Tries != 3 || !st.BootCount.Counting || st.BootCount.Left != 3 {
		t.Errorf("status --json boot_count = %+v, %v", st.BootCount, err)
	}
	a.fails(exitError, "sysroot "+a.sys+": no deployment of this sysroot is booted", "admin", "boot-complete")
	// Rolling back to a deployment that is not booted either starts its count.
	a.ok("admin", "rollback")
	if out := a.ok("admin", "status"); !strings.Contains(out, "3 of 3 tries left") {
		t.Errorf("status after rollback:\n%s", out)
	}
}

// A deploy that starts a boot count in an existing GRUB environment block
// (rewritten in place, as save_env does) syncs the block before the
// switch: the new default must not boot without its count.
func TestBootCountSyncedBeforeSwitch(t *testing.T) {
	testbin.NeedStrace(t)
	a := newAdmin(t)
	a.ok("config", "set", "sysroot.bootloader", "grub2")
	a.ok("config", "set", "sysroot.boot-counting-tries", "3")
	for _, motd := range []string{"one\n", "two\n", "three\n"} {
		a.commit(motd, "6.1.0-1")
		if motd != "three\n" {
			a.ok("admin", "deploy", "cli/stable")
		}
	}
	env := filepath.Join(a.sys, "boot", "grub", "grubenv")
	if _, err := os.Stat(env); err != nil {
		t.Fatalf("no environment block after a counted deploy: %v", err)
	}
	tr, err := straced(t, "-e trace=fsync,rename,renameat,renameat2", "admin", "--sysroot="+a.sys, "deploy", "cli/stable")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, tr.out)
	}
	data, lines := tr.log, tr.lines
	sync := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+env+">") })
	// The rename of boot/loader (a full switch) or of otree/boot.N (a
	// sub switch).
	switched := regexp.MustCompile(`(boot/loader|otree/boot\.\d)"`)
	swtch := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "rename") && switched.MatchString(l) })
	if sync < 0 || swtch < 0 || sync > swtch {
		t.Errorf("fsync of %s at line %d, switch at line %d:\n%s", env, sync, swtch, data)
	}
}

// On the booted default deployment, boot-complete (what
// otree-boot-complete.service runs) ends the count; booted from the
// previous one, after a fallback, it fails and the count stays.
func TestBootedBootComplete(t *testing.T) {
	a, b := countedTwoDeployments(t)
	ds := a.status().Deployments
	// Deployment 1 chosen by hand: the default's count goes on.
	out := b.boot(ds[1].Path, `otree admin boot-complete
otree admin status | grep "boot:" || echo no-count`)
	wantLines(t, out, "This boot is not of the default deployment, whose count goes on: 2 of 2 tries left.",
		"    boot: not completed yet; 2 of 2 tries left before GRUB falls back to deployment 1")
	// GRUB's fallback, once no tries are left: boot-complete says so.
	grubenv := filepath.Join(a.sys, "boot/grub/grubenv")
	env, err := os.ReadFile(grubenv)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(grubenv, bytes.Replace(env, []byte("otree_boot_tries=2"), []byte("otree_boot_tries=0"), 1), 0o644)
	out, err = b.tryBoot(ds[1].Path, `otree admin boot-complete 2>&1 || echo refused
otree admin status | grep "boot:" || echo no-count`)
	if err != nil || !strings.Contains(out, "did not complete a boot in 2 tries, and GRUB booted deployment 1 instead") || !strings.Contains(out, "refused") ||
		!strings.Contains(out, "hint: `otree admin rollback` makes the booted deployment the default") ||
		!strings.Contains(out, "    boot: did not complete in 2 tries; GRUB boots deployment 1") {
		t.Errorf("booted from deployment 1 after the fallback: %v\n%s", err, out)
	}
	os.WriteFile(grubenv, env, 0o644)
	out = b.boot(ds[0].Path, `otree admin boot-complete
otree admin status | grep "boot:" || echo no-count`)
	wantLines(t, out, "Boot of deployment 0 complete; GRUB no longer counts its tries.", "no-count")

	// With --rollback-after-fallback (as the shipped unit runs it), a
	// completed boot of GRUB's fallback makes the booted deployment the
	// default and ends the count.
	a.commit("three\n", "6.1.0-3")
	a.ok("admin", "deploy", "cli/stable")
	ds = a.status().Deployments
	env, err = os.ReadFile(grubenv)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(grubenv, bytes.Replace(env, []byte("otree_boot_tries=2"), []byte("otree_boot_tries=0"), 1), 0o644)
	out = b.boot(ds[1].Path, `otree admin boot-complete --rollback-after-fallback
otree admin status | grep "boot:" || echo no-count`)
	wantLines(t, out, fmt.Sprintf("The default deployment did not complete a boot in 2 tries and GRUB fell back to this one: %s is now deployment 0, the failed %s deployment 1.", filepath.Base(ds[1].Path), filepath.Base(ds[0].Path)),
		"no-count")
	if now := a.status().Deployments; now[0].Path != ds[1].Path || now[1].Path != ds[0].Path {
		t.Errorf("after boot-complete --rollback-after-fallback: deployments %s, %s; want %s, %s", now[0].Path, now[1].Path, ds[1].Path, ds[0].Path)
	}
}

// countedTwoDeployments deploys two commits with boot counting on (two
// tries), the second the default.
func countedTwoDeployments(t *testing.T) (*admin, *booter) {
	t.Helper()
	a := newAdmin(t)
	b := newBooter(t, a)
	a.ok("config", "set", "sysroot.bootloader", "grub2")
	a.ok("config", "set", "sysroot.boot-counting-tries", "2")
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	a.commit("two\n", "6.1.0-2")
	a.ok("admin", "deploy", "cli/stable")
	return a, b
}

// stageThird returns the lines of a boot script that commit a third
// bootable tree and stage it, from the booted system.
func stageThird(t *testing.T) string {
	tree := t.TempDir()
	writeBootableTree(t, tree, "6.1.0-3", "three\n")
	return `
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable '` + tree + `' > /dev/null
otree admin deploy --stage cli/stable > /dev/null`
}

// boot-complete --json numbers the deployment GRUB falls back to as status
// does, also while a deployment is staged (0).
func TestBootedBootCompleteJSONFallbackIndex(t *testing.T) {
	a, b := countedTwoDeployments(t)
	// Booted from deployment 1 by hand: the default's count goes on.
	out := b.boot(a.status().Deployments[1].Path, stageThird(t)+`
echo complete:; otree admin boot-complete --json
echo status:; otree admin status --json
`)
	_, js, _ := strings.Cut(out, "complete:\n")
	var bc struct {
		Counting bool
		Fallback int
	}
	if err := json.NewDecoder(strings.NewReader(js)).Decode(&bc); err != nil {
		t.Fatalf("boot-complete --json: %v in %q", err, out)
	}
	st := bootedStatus(t, out)
	if len(st) != 3 || !st[0].Staged || !st[2].Booted {
		t.Fatalf("status: %+v, want a staged deployment, the default and the booted one", st)
	}
	if !bc.Counting || bc.Fallback != st[2].Index {
		t.Errorf("boot-complete --json = %+v, want counting and fallback %d, as status numbers the deployment\n%s", bc, st[2].Index, out)
	}
}

// boot-complete's line numbers the default deployment as status does:
// 1 while a deployment is staged (0).
func TestBootedBootCompleteNumbersAsStatus(t *testing.T) {
	a, b := countedTwoDeployments(t)
	out := b.boot(a.status().Deployments[0].Path, stageThird(t)+`
echo complete:; otree admin boot-complete
echo status:; otree admin status --json
`)
	st := bootedStatus(t, out)
	if len(st) != 3 || !st[0].Staged || !st[1].Booted || st[1].Index != 1 {
		t.Fatalf("status: %+v, want a staged deployment (0) and the booted default (1)", st)
	}
	if want := "complete:\nBoot of deployment 1 complete;"; !strings.Contains(out, want) {
		t.Errorf("boot-complete with a deployment staged: want %q in\n%s", want, out)
	}
}

// After GRUB's fallback, boot-complete --rollback-after-fallback numbers
// the new default and the failed deployment as status does: from 1 while
// a deployment is staged (0).
func TestBootedBootCompleteRollbackNumbersAsStatus(t *testing.T) {
	a, b := countedTwoDeployments(t)
	ds := a.status().Deployments
	grubenv := filepath.Join(a.sys, "boot/grub/grubenv")
	env, err := os.ReadFile(grubenv)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(grubenv, bytes.Replace(env, []byte("otree_boot_tries=2"), []byte("otree_boot_tries=0"), 1), 0o644)
	out := b.boot(ds[1].Path, stageThird(t)+`
echo complete:; otree admin boot-complete --rollback-after-fallback
echo status:; otree admin status --json
`)
	st := bootedStatus(t, out)
	if len(st) != 3 || !st[0].Staged || !st[1].Booted {
		t.Fatalf("status: %+v, want a staged deployment (0) and the booted one (1)", st)
	}
	want := fmt.Sprintf("%s is now deployment 1, the failed %s deployment 2.", filepath.Base(ds[1].Path), filepath.Base(ds[0].Path))
	if !strings.Contains(out, want) {
		t.Errorf("boot-complete --rollback-after-fallback with a deployment staged: want %q in\n%s", want, out)
	}
}
