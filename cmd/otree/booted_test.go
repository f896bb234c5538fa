package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/deploy"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
)

// booter boots deployments of an admin sysroot the way a machine would,
// short of a kernel: in a private mount namespace otree-prepare-root turns
// a bind mount of the sysroot into the deployment a boot entry names, the
// sysroot's boot directory is mounted on /boot as a boot partition would
// be, and otree runs chrooted into it, with /proc/cmdline standing in as
// that entry's options.
type booter struct {
	a          *admin
	prep, bin  string
	mountPoint string
}

func newBooter(t *testing.T, a *admin) *booter {
	for _, tool := range []string{"unshare", "mount", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found; booting is tested in a private mount namespace", tool)
		}
	}
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot create a mount namespace: %v: %s", err, out)
	}
	b := &booter{a: a, mountPoint: filepath.Join(t.TempDir(), "M")}
	b.prep = testbin.Build(t, "github.com/otree/otree/cmd/otree-prepare-root")
	b.bin = testbin.BuildStatic(t, "github.com/otree/otree/cmd/otree")
	if err := os.Mkdir(b.mountPoint, 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

// newDeployedBooter makes a sysroot with a deployment of cli/stable for
// each /etc/motd in motds, in order (the last is the default), each
// booting with root=LABEL=root, and a booter for it.
func newDeployedBooter(t *testing.T, motds ...string) (*admin, *booter) {
	t.Helper()
	a := newAdmin(t)
	b := newBooter(t, a)
	for _, m := range motds {
		a.commit(m+"\n", "6.1.0-1")
		a.ok("admin", "deploy", "--karg=root=LABEL=root", "cli/stable")
	}
	return a, b
}

// bootableTrees writes a bootable tree for each name, whose /etc/motd
// holds it, and returns their directories by name.
func bootableTrees(t *testing.T, names ...string) map[string]string {
	t.Helper()
	trees := map[string]string{}
	for _, n := range names {
		trees[n] = t.TempDir()
		writeBootableTree(t, trees[n], "6.1.0-1", n+"\n")
	}
	return trees
}

// wantEtcKept fails the test where deployment dir dep lost its /etc.
func wantEtcKept(t *testing.T, dep string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dep, "etc/motd")); err != nil {
		t.Errorf("the booted deployment lost its /etc: %v", err)
	}
}

// cmdline is the kernel command line of the boot entry of the deployment
// in directory dir.
func (b *booter) cmdline(dir string) string {
	b.a.t.Helper()
	entries, err := filepath.Glob(filepath.Join(b.a.sys, "boot/loader/entries/*.conf"))
	if err != nil {
		b.a.t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(e)
		if err != nil {
			b.a.t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			opts, ok := strings.CutPrefix(strings.TrimSpace(line), "options ")
			if !ok {
				continue
			}
			v, _ := deploy.BootArgFromCmdline(opts)
			arg, err := deploy.ParseBootArg(v)
			if err != nil {
				b.a.t.Fatal(err)
			}
			if got, err := deploy.ResolveBootArg(b.a.sys, arg); err == nil && got == dir {
				return "BOOT_IMAGE=/vmlinuz " + opts
			}
		}
	}
	b.a.t.Fatalf("no boot entry for %s", dir)
	return ""
}

// boot boots the deployment in dir and runs script (sh) in it, with env
// (NAME=VALUE) added: "$M" is the booted root, `otree ARGS` runs otree
// chrooted into it, and "$BIN" and "$PHYS" are otree and the sysroot as
// the host sees them. The script's output is returned; it must exit 0.
func (b *booter) boot(dir, script string, env ...string) string {
	t := b.a.t
	t.Helper()
	out, err := b.tryBoot(dir, script, env...)
	t.Logf("booted %s:\n%s", filepath.Base(dir), out)
	if err != nil {
		t.Fatalf("script in the booted %s: %v", filepath.Base(dir), err)
	}
	return out
}

// tryBoot is boot, returning the output and the error of the whole run,
// prepare-root's included.
func (b *booter) tryBoot(dir, script string, env ...string) (string, error) {
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", `set -e
mount --bind "$PHYS" "$M"
"$PREP" --cmdline="$CMDLINE" "$M" >/dev/null
mkdir -p "$M/run" "$M/proc" "$M/boot"
mount --bind "$M/sysroot/boot" "$M/boot"
mount -t tmpfs run "$M/run"
mount -t tmpfs proc "$M/proc"
printf '%s\n' "$CMDLINE" > "$M/proc/cmdline"
mkdir -p "$M/run/bin"
cp "$BIN" "$M/run/bin/otree"
otree() { chroot "$M" /run/bin/otree "$@"; }
`+script)
	cmd.Env = append(os.Environ(), "PHYS="+b.a.sys, "M="+b.mountPoint, "PREP="+b.prep, "BIN="+b.bin, "CMDLINE="+b.cmdline(dir))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// bootedStatus parses the `admin status --json` a boot script printed
// after a line "status:".
func bootedStatus(t *testing.T, out string) []deploy.Deployment {
	t.Helper()
	_, js, ok := strings.Cut(out, "status:\n")
	if !ok {
		t.Fatalf("no status in %q", out)
	}
	var st struct{ Deployments []deploy.Deployment }
	if err := json.NewDecoder(strings.NewReader(js)).Decode(&st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st.Deployments
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("output lacks %q", l)
		}
	}
}

// needOverlay skips the test unless the kernel offers overlayfs, as the
// kernels of unlock's users do.
func needOverlay(t *testing.T) {
	probe := t.TempDir()
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`cd "$1" && mkdir l u w m && mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m`, "sh", probe).CombinedOutput(); err != nil {
		t.Skipf("skipping: this kernel cannot mount an overlay: %v: %s", err, out)
	}
}

// bootOSTree boots deployment 0 of the OSTree sysroot osys (one of
// newOSTreeSysroot's) as booter boots otree's, and runs script (sh) in
// it: `ostree ARGS` runs OSTree chrooted into the booted root "$M", with
// the libraries ldd names copied there. OSTree finds the booted
// deployment through /run/ostree-booted, the ostree= argument of
// /proc/cmdline and the root's device and inode; it reads /proc/1 (a new
// PID namespace makes that the script's shell) and syncs with a watchdog
// that needs /dev. The deployment's tree must hold the mount points
// sysroot, var, proc, run, boot, dev and tmp, and ostree -> sysroot/ostree.
func bootOSTree(t *testing.T, o *ostreeRepo, osys, script string) string {
	t.Helper()
	if out, err := exec.Command("unshare", "-m", "-p", "-f", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot create a mount and PID namespace: %v: %s", err, out)
	}
	ldd, err := exec.Command("ldd", o.bin).Output()
	if err != nil {
		t.Skipf("ldd %s: %v", o.bin, err)
	}
	libs, loader := t.TempDir(), ""
	for _, f := range append(strings.Fields(string(ldd)), o.bin) {
		if !strings.HasPrefix(f, "/") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(libs, filepath.Base(f)), data, 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(filepath.Base(f), "ld-linux") {
			loader = filepath.Base(f)
		}
	}
	dep, err := exec.Command(o.bin, "admin", "--sysroot="+osys, "--print-current-dir").Output()
	if err != nil {
		t.Fatalf("ostree admin --print-current-dir: %v", err)
	}
	entries, _ := filepath.Glob(filepath.Join(osys, "boot/loader/entries/*.conf"))
	var cmdline string
	for _, e := range entries {
		data, _ := os.ReadFile(e)
		if !strings.Contains(string(data), "(ostree:0)\n") { // in its title
			continue
		}
		for line := range strings.Lines(string(data)) {
			if opts, ok := strings.CutPrefix(strings.TrimSpace(line), "options "); ok {
				cmdline = opts
			}
		}
	}
	if cmdline == "" {
		t.Fatalf("no boot entry for deployment 0 in %q", entries)
	}
	m, dir := filepath.Join(t.TempDir(), "M"), t.TempDir()
	os.Mkdir(m, 0o755)
	os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline+"\n"), 0o644)
	cmd := exec.Command("unshare", "-m", "-p", "-f", "--propagation", "private", "sh", "-c", `set -e
mount --bind "$DEP" "$M"
mount --bind "$PHYS" "$M/sysroot"
mount --bind "$PHYS/ostree/deploy/cli/var" "$M/var"
mount --bind "$M/sysroot/boot" "$M/boot"
mount -t tmpfs run "$M/run"
mount -t tmpfs tmp "$M/tmp"
mount --rbind /dev "$M/dev"
mount -t proc proc "$M/proc"
mount --bind "$DIR/cmdline" "$M/proc/cmdline"
touch "$M/run/ostree-booted"
mkdir "$M/run/lib" && cp "$LIBS"/* "$M/run/lib/"
ostree() { chroot "$M" /run/lib/"$LOADER" --library-path /run/lib /run/lib/ostree "$@"; }
set +e
`+script)
	cmd.Env = append(os.Environ(), "PHYS="+osys, "M="+m, "DEP="+strings.TrimSpace(string(dep)), "DIR="+dir, "LIBS="+libs, "LOADER="+loader)
	out, err := cmd.CombinedOutput()
	t.Logf("booted OSTree:\n%s", out)
	if err != nil {
		t.Fatalf("script in the booted OSTree deployment: %v", err)
	}
	return string(out)
}

// admin unlock opens the booted /usr: for development and transient
// unlocks until the next boot, with the changes outside the deployment;
// for a hotfix across boots, with a pristine clone as the rollback target.
func TestAdminUnlock(t *testing.T) {
	a := newAdmin(t)
	b := newBooter(t, a)
	needOverlay(t)
	commit := a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg=root=LABEL=root", "cli/stable")
	dep := a.status().Deployments[0].Path
	stateVar := filepath.Join(a.sys, "otree/deploy/cli/var")

	a.fails(1, "sysroot "+a.sys+": no deployment of this sysroot is booted", "admin", "unlock")
	a.fails(exitUsage, "--hotfix and --transient", "admin", "unlock", "--hotfix", "--transient")

	t.Run("development", func(t *testing.T) {
		b.a.t = t
		out := b.boot(dep, `
if touch "$M/usr/bin/before" 2>/dev/null; then echo before=rw; else echo before=ro; fi
otree admin --print-current-dir
otree admin unlock
echo added > "$M/usr/bin/added" && echo usr=rw
cat "$M/usr/bin/sh" >/dev/null && echo lower=visible
otree admin unlock 2>&1 || echo again=refused
otree admin status --verify || echo verify=drift
echo status:; otree admin status --json
`)
		wantLines(t, out, "before=ro", "\n/otree/deploy/cli/deploy/"+commit+".0", // as OSTree prints it booted, not /sysroot/otree/...
			"usr=rw", "lower=visible", "again=refused",
			"    drift: A /usr/bin/added", "verify=drift")
		if !strings.Contains(out, "is already unlocked (development)") {
			t.Errorf("a second unlock did not say the deployment is unlocked")
		}
		st := bootedStatus(t, out)
		if len(st) != 1 || !st[0].Booted || st[0].Unlocked != deploy.UnlockDevelopment {
			t.Errorf("booted status = %+v, want one booted deployment unlocked for development", st)
		}
		// The change is in /var/tmp, not in the deployment; the next boot
		// (a fresh /run) is locked again.
		if _, err := os.Lstat(filepath.Join(dep, "usr/bin/added")); err == nil {
			t.Errorf("the change landed in the deployment")
		}
		if m, _ := filepath.Glob(filepath.Join(stateVar, "tmp/otree-unlock-*/upper/bin/added")); len(m) != 1 {
			t.Errorf("upper directories holding the change: %q", m)
		}
		out = b.boot(dep, `
if touch "$M/usr/bin/x" 2>/dev/null; then echo usr=rw; else echo usr=ro; fi
test -e "$M/usr/bin/added" || echo change=gone
echo status:; otree admin status --json
otree admin unlock >/dev/null
otree admin cleanup
`)
		wantLines(t, out, "usr=ro", "change=gone")
		// Cleanup on the next boot removes the last boot's overlay
		// directory, not the one this boot's unlock mounted.
		if m, _ := filepath.Glob(filepath.Join(stateVar, "tmp/otree-unlock-*")); len(m) != 1 || strings.Contains(out, "Removed /var/tmp/"+filepath.Base(m[0])) {
			t.Errorf("overlay directories after cleanup: %q", m)
		}
		if strings.Count(out, "Removed /var/tmp/otree-unlock-") != 1 {
			t.Errorf("cleanup did not remove the last boot's overlay directory once")
		}
		if st := bootedStatus(t, out); st[0].Unlocked != "" {
			t.Errorf("after a reboot the deployment is still %q", st[0].Unlocked)
		}
	})

	// Through the physical root (--sysroot=/sysroot) the running /usr is
	// unlocked too, not /sysroot/usr, and its drift is that /usr's; a
	// hotfix is refused as already unlocked, adding no clone.
	t.Run("physical-root", func(t *testing.T) {
		b.a.t = t
		out := b.boot(dep, `
otree admin --sysroot=/sysroot unlock
echo added > "$M/usr/bin/added" && echo usr=rw
otree admin --sysroot=/sysroot status --verify || echo verify=drift
otree admin --sysroot=/sysroot unlock --hotfix 2>&1 || echo hotfix=refused
echo status:; otree admin status --json
`)
		wantLines(t, out, "usr=rw", "    drift: A /usr/bin/added", "verify=drift", "hotfix=refused")
		if st := bootedStatus(t, out); len(st) != 1 || !st[0].Booted || st[0].Unlocked != deploy.UnlockDevelopment {
			t.Errorf("booted status = %+v, want one booted deployment unlocked for development", st)
		}
		if _, err := os.Lstat(filepath.Join(dep, "usr/bin/added")); err == nil {
			t.Errorf("the change landed in the deployment")
		}
	})

	t.Run("transient", func(t *testing.T) {
		b.a.t = t
		out := b.boot(dep, `
otree admin unlock --transient
if touch "$M/usr/bin/t" 2>/dev/null; then echo usr=rw; else echo usr=ro; fi
mount -o remount,rw "$M/usr"
touch "$M/usr/bin/t" && echo remounted=rw
echo status:; otree admin status --json
`)
		wantLines(t, out, "usr=ro", "remounted=rw")
		if st := bootedStatus(t, out); st[0].Unlocked != deploy.UnlockTransient {
			t.Errorf("status unlocked = %q, want transient", st[0].Unlocked)
		}
	})

	t.Run("hotfix", func(t *testing.T) {
		b.a.t = t
		out := b.boot(dep, `
otree admin unlock --hotfix
echo patched > "$M/usr/bin/sh" && echo usr=rw
echo status:; otree admin status --json
`)
		wantLines(t, out, "usr=rw")
		st := bootedStatus(t, out)
		if len(st) != 2 || !st[0].Booted || st[0].Unlocked != deploy.UnlockHotfix ||
			st[1].Commit.String() != commit || st[1].Serial != 1 || !st[1].Rollback || st[1].Unlocked != "" {
			t.Fatalf("status after a hotfix = %+v, want the hotfixed booted deployment and a clone of it as rollback", st)
		}
		// The clone follows the original's origin, as OSTree's does, so
		// that an upgrade from it, booted after a failed hotfix, moves on.
		if st[1].Origin != "cli/stable" || st[0].Origin != "cli/stable" {
			t.Errorf("origins after a hotfix: %q, clone %q, want cli/stable for both", st[0].Origin, st[1].Origin)
		}
		if st[1].Options != st[0].Options {
			t.Errorf("the clone boots with %q, the original with %q", st[1].Options, st[0].Options)
		}
		clone := filepath.Join(filepath.Dir(dep), commit+".1")
		// The change is kept in the deployment's overlay, not in its usr.
		if b, _ := os.ReadFile(filepath.Join(dep, ".usr-ovl-upper/bin/sh")); string(b) != "patched\n" {
			t.Errorf("overlay upper holds %q", b)
		}
		if b, _ := os.ReadFile(filepath.Join(dep, "usr/bin/sh")); string(b) != "#!/bin/true\n" {
			t.Errorf("the deployment's own usr/bin/sh is %q", b)
		}
		out = b.boot(dep, `
cat "$M/usr/bin/sh"
echo more > "$M/usr/bin/more" && echo usr=rw
rm "$M/usr/lib/os-release"
rm -r "$M/usr/etc" && mkdir "$M/usr/etc"
`)
		wantLines(t, out, "patched", "usr=rw")
		// Seen from outside (nothing booted), status --verify reads the
		// hotfix through its overlay: a replaced file, an added one, a
		// deleted one (a whiteout) and a directory replaced whole (opaque).
		res := a.run("admin", "status", "--verify")
		for _, want := range []string{"drift: M /usr/bin/sh\n", "drift: A /usr/bin/more\n", "drift: D /usr/lib/os-release\n", "drift: M /usr/etc\n"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("status --verify of the hotfixed deployment lacks %q:\n%s", want, res.stdout)
			}
		}
		if res.code != 1 || strings.Count(res.stdout, "drift:") != 4 {
			t.Errorf("status --verify: exit %d, %d drift lines, want 1 and 4 (the clone has none)", res.code, strings.Count(res.stdout, "drift:"))
		}
		out = b.boot(clone, `
cat "$M/usr/bin/sh"
if touch "$M/usr/bin/x" 2>/dev/null; then echo usr=rw; else echo usr=ro; fi
`)
		wantLines(t, out, "#!/bin/true", "usr=ro")

		// A deploy from the hotfixed deployment starts locked.
		a.commit("two\n", "6.1.0-1")
		a.ok("admin", "deploy", "cli/stable")
		nd := a.status().Deployments[0].Path
		if o, _ := os.ReadFile(nd + ".origin"); strings.Contains(string(o), "unlocked") {
			t.Errorf("the new deployment's origin carries the unlock:\n%s", o)
		}
		out = b.boot(nd, `if touch "$M/usr/bin/x" 2>/dev/null; then echo usr=rw; else echo usr=ro; fi
`)
		wantLines(t, out, "usr=ro")
		// Without its overlay directories a hotfixed deployment does not
		// boot half-patched: prepare-root refuses, naming what is missing.
		testtree.SetImmutable(dep, false)
		if err := os.RemoveAll(filepath.Join(dep, ".usr-ovl-work")); err != nil {
			t.Fatal(err)
		}
		if out, err := b.tryBoot(dep, "echo booted\n"); err == nil || !strings.Contains(out, ".usr-ovl-work is not a directory") {
			t.Errorf("prepare-root of a hotfix without its work directory: %v\n%s", err, out)
		}
	})
}

// Cleanup on the running system removes the overlay directories of
// earlier boots' unlocks, keeping the one mounted now, by whichever path
// the sysroot is opened: the physical root (where it removed nothing), a
// path holding a glob character (taken for a pattern, matching none), or
// another mount of / (where it removed the mounted one too, its path
// differing from the recorded one).
func TestAdminCleanupUnlocksByAnyPath(t *testing.T) {
	a := newAdmin(t)
	b := newBooter(t, a)
	needOverlay(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg=root=LABEL=root", "cli/stable")
	dep := a.status().Deployments[0].Path
	out := b.boot(dep, `
otree admin unlock > /dev/null
mkdir "$M/run/r[1]" && mount --rbind "$M" "$M/run/r[1]"
for s in /sysroot '/run/r[1]' /; do
	mkdir "$M/var/tmp/otree-unlock-old"
	otree admin --sysroot="$s" cleanup > /dev/null
	test -e "$M/var/tmp/otree-unlock-old" || echo "$s=removed"
	test "$(ls -d "$M"/var/tmp/otree-unlock-* | wc -l)" = 1 && echo "$s=live-kept"
done
echo added > "$M/usr/bin/added" && echo usr=rw
`)
	wantLines(t, out, "/sysroot=removed", "/sysroot=live-kept", "/run/r[1]=removed", "/run/r[1]=live-kept", "/=removed", "/=live-kept", "usr=rw")
}

// admin unlock prints what OSTree's prints in each mode (for a hotfix,
// after the lines of the clone's deploy), then one line of its own saying
// where the changes go.
func TestAdminUnlockParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "bare")
	a := newAdmin(t)
	b := newBooter(t, a)
	needOverlay(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg=root=LABEL=root", "cli/stable")
	dep := a.status().Deployments[0].Path
	osys, ost := newOSTreeSysroot(t, o)
	tree := t.TempDir()
	writeBootableTree(t, tree, "6.1.0-1", "one\n")
	for _, d := range []string{"sysroot", "var", "proc", "run", "boot", "dev", "tmp"} {
		os.Mkdir(filepath.Join(tree, d), 0o755)
	}
	os.Symlink("sysroot/ostree", filepath.Join(tree, "ostree"))
	ost("--repo="+filepath.Join(osys, "ostree/repo"), "commit", "-b", "cli/stable", tree)
	ost("admin", "--sysroot="+osys, "deploy", "--os=cli", "cli/stable")
	bootVersion := regexp.MustCompile(`bootversion: boot\.\d\.\d`)
	lines := func(s string) []string {
		l := strings.Split(strings.TrimSuffix(bootVersion.ReplaceAllString(s, "bootversion: B"), "\n"), "\n")
		return slices.DeleteFunc(l, func(l string) bool { return strings.HasPrefix(l, "otree-prepare-root: ") }) // the boot's
	}
	for _, mode := range []string{"", "--transient", "--hotfix"} {
		mine := lines(b.boot(dep, "otree admin unlock "+mode+"\n"))
		theirs := lines(bootOSTree(t, o, osys, "ostree admin unlock "+mode+"\n"))
		if len(mine) != len(theirs)+1 || !slices.Equal(mine[:len(theirs)], theirs) {
			t.Errorf("unlock %s: otree\n%s\nOSTree\n%s", mode, strings.Join(mine, "\n"), strings.Join(theirs, "\n"))
		}
	}
}

// The host updater's life on a running system: upgrades while booted
// (two of them before any reboot), the admin's /etc edits carried into the
// new deployment, the booted deployment kept and shown as booted
// throughout, then a reboot into the upgrade and a rollback entry that
// still boots the old one.
func TestAdminOnBootedSystem(t *testing.T) {
	a := newAdmin(t)
	b := newBooter(t, a)
	c1 := a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg=root=LABEL=root", "cli/stable")
	old := a.status().Deployments[0].Path
	trees := bootableTrees(t, "two", "three")
	out := b.boot(old, `
echo "admin change" > "$M/etc/local.conf"
otree admin upgrade
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable "$TWO" > /dev/null
otree admin upgrade
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable "$THREE" > "$M/run/three"
otree admin upgrade
echo status:; otree admin status --json
`, "TWO="+trees["two"], "THREE="+trees["three"])
	if !strings.Contains(out, "No update available.") {
		t.Errorf("the first upgrade found something to deploy")
	}
	st := bootedStatus(t, out)
	if len(st) != 2 || st[1].Commit.String() != c1 || !st[1].Booted || !st[0].Pending || st[0].Unlocked != "" {
		t.Fatalf("after two upgrades while booted: %+v, want the last upgrade pending and the booted deployment kept", st)
	}
	if _, err := os.Stat(filepath.Join(old, "usr/bin/sh")); err != nil {
		t.Fatalf("the booted deployment's files are gone: %v", err)
	}
	newer := filepath.Join(filepath.Dir(old), filepath.Base(st[0].Path))
	out = b.boot(newer, `
cat "$M/etc/local.conf" "$M/usr/etc/motd"
echo status:; otree admin status --json
`)
	wantLines(t, out, "admin change", "three")
	st = bootedStatus(t, out)
	if len(st) != 2 || !st[0].Booted || st[1].Commit.String() != c1 || !st[1].Rollback {
		t.Fatalf("after the reboot: %+v, want the upgrade booted and the old one as rollback", st)
	}
	out = b.boot(old, `cat "$M/usr/etc/motd"
`)
	wantLines(t, out, "one")

	// A staged upgrade while booted: recorded in the running system's
	// /run, switched to by finalize-staged (at shutdown), keeping the
	// booted deployment and the /etc edits.
	trees["four"] = t.TempDir()
	writeBootableTree(t, trees["four"], "6.1.0-1", "four\n")
	out = b.boot(newer, `
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable "$FOUR" > /dev/null
otree admin upgrade --stage
test -f "$M/run/otree/staged-deployment" && echo record=run
otree admin status | grep -q "^  cli [0-9a-f]*\.0 (staged)$" && echo status=staged
otree admin status | grep -q "^\* cli [0-9a-f]*\.0$" && echo status=booted
otree admin finalize-staged
echo status:; otree admin status --json
`, "FOUR="+trees["four"])
	wantLines(t, out, "record=run", "status=staged", "status=booted")
	st = bootedStatus(t, out)
	// The old rollback goes, as in any deploy without --retain-rollback.
	if len(st) != 2 || st[0].Staged || !st[0].Pending || !st[1].Booted {
		t.Fatalf("after finalize-staged: %+v, want the staged upgrade pending and the booted one", st)
	}
	out = b.boot(filepath.Join(filepath.Dir(old), filepath.Base(st[0].Path)), `cat "$M/usr/etc/motd" "$M/etc/local.conf"
`)
	wantLines(t, out, "four", "admin change")
}

// A booted system whose boot filesystem is not mounted on /boot (a
// separate boot partition missing from fstab, or failing to mount) shows
// the deployment's empty /boot. Admin commands refuse to run there,
// naming /boot/loader, rather than take the deployment list as empty:
// status said "No deployments.", and cleanup deleted the booted
// deployment's /etc and more before failing on a busy mount point.
func TestAdminBootedWithoutBoot(t *testing.T) {
	a, b := newDeployedBooter(t, "one")
	dep := a.status().Deployments[0].Path
	// Both mounts of boot/ go: prepare-root's and the booter's.
	out, err := b.tryBoot(dep, `
umount "$M/boot"; umount "$M/boot"
for c in status cleanup; do
	if otree admin $c; then echo "$c=0"; fi
done
`)
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"status", "cleanup"} {
		if strings.Contains(out, c+"=0\n") {
			t.Errorf("admin %s succeeded on a booted system without /boot/loader", c)
		}
	}
	if !strings.Contains(out, "error: /boot/loader does not exist") {
		t.Errorf("the errors do not name /boot/loader")
	}
	wantEtcKept(t, dep)
	if st := a.status().Deployments; len(st) != 1 || st[0].Path != dep {
		t.Errorf("deployments after: %+v, want %s alone", st, dep)
	}
}

// The running system's sysroot opened by its physical root
// (--sysroot=/sysroot) knows the deployment that is / as booted, so
// undeploy refuses it; and where the boot filesystem is not on the
// physical root, whose boot/ is then an empty mount point, admin commands
// refuse to run rather than take the deployment list as empty: status
// said "No deployments." and cleanup deleted the booted deployment's /etc.
func TestAdminPhysicalSysrootWhileBooted(t *testing.T) {
	a, b := newDeployedBooter(t, "one", "two")
	dep := a.status().Deployments[1].Path
	out, err := b.tryBoot(dep, `
otree admin --sysroot=/sysroot status | grep -q "^\* cli $(basename "$DEP")$" && echo status=booted
otree admin --sysroot=/sysroot undeploy 1 || echo undeploy=refused
mkdir "$M/run/s[1]" && mount --bind "$M/sysroot" "$M/run/s[1]"
otree admin --sysroot='/run/s[1]' undeploy 1 || echo undeploy-other-path=refused
mount -t tmpfs boot "$M/sysroot/boot"
for c in status cleanup; do
	if otree admin --sysroot=/sysroot $c; then echo "$c=0"; fi
done
`, "DEP="+dep)
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
	// By another path too, one a glob would take for a pattern.
	wantLines(t, out, "status=booted", "undeploy=refused", "undeploy-other-path=refused")
	for _, c := range []string{"status", "cleanup"} {
		if strings.Contains(out, c+"=0\n") {
			t.Errorf("admin --sysroot=/sysroot %s succeeded on a booted system without /sysroot/boot/loader", c)
		}
	}
	if !strings.Contains(out, "error: /sysroot/boot/loader does not exist") {
		t.Errorf("the errors do not name /sysroot/boot/loader")
	}
	wantEtcKept(t, dep)
	if st := a.status().Deployments; len(st) != 2 || st[1].Path != dep {
		t.Errorf("deployments after: %+v, want two, %s second", st, dep)
	}
}

// The running system's sysroot opened by its physical root knows the
// deployment that is / as booted after deploys that return to the boot
// version it booted with and give the link its otree= argument names to
// another deployment: that link, followed, named the newest deployment
// booted, and undeploy let the running one go.
func TestAdminPhysicalSysrootBootedAfterLinksReused(t *testing.T) {
	a, b := newDeployedBooter(t, "one")
	dep := a.status().Deployments[0].Path
	trees := bootableTrees(t, "two", "three")
	// The second deploy changes the entries (a karg), so it switches the
	// boot version back rather than only the links.
	out, err := b.tryBoot(dep, `
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable "$TWO" > /dev/null
otree admin deploy cli/stable > /dev/null
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable "$THREE" > /dev/null
otree admin deploy --karg-append=quiet cli/stable > /dev/null
arg=$(printf '%s\n' $CMDLINE | grep '^otree=')
to=$(readlink -e "$M/sysroot${arg#otree=}")
test "$(basename "$to")" != "$(basename "$DEP")" && echo link=reused
echo status:; otree admin --sysroot=/sysroot status --json
otree admin --sysroot=/sysroot undeploy 1 || echo undeploy=refused
`, "TWO="+trees["two"], "THREE="+trees["three"], "DEP="+dep)
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "link=reused", "undeploy=refused")
	st := bootedStatus(t, out)
	if len(st) != 2 || st[0].Booted || !st[1].Booted || filepath.Base(st[1].Path) != filepath.Base(dep) {
		t.Errorf("status through /sysroot: %+v, want %s second and booted", st, filepath.Base(dep))
	}
	wantEtcKept(t, dep)
}

// A deployment staged through the physical root (--sysroot=/sysroot) of
// a running system is recorded in the running /run, where the finalize at
// shutdown finds it, not in the physical root's run/ on disk, which a
// reboot keeps.
func TestAdminPhysicalSysrootStages(t *testing.T) {
	a, b := newDeployedBooter(t, "one")
	dep := a.status().Deployments[0].Path
	tree := t.TempDir()
	writeBootableTree(t, tree, "6.1.0-1", "two\n")
	out := b.boot(dep, `
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable "$TWO" > /dev/null
otree admin --sysroot=/sysroot deploy --stage cli/stable > /dev/null
test -f "$M/run/otree/staged-deployment" && echo record=run
test -e "$M/sysroot/run/otree/staged-deployment" && echo record=disk
otree admin status | grep -q "(staged)$" && echo status=staged
otree admin finalize-staged > /dev/null
echo status:; otree admin status --json
`, "TWO="+tree)
	wantLines(t, out, "record=run", "status=staged")
	if strings.Contains(out, "record=disk") {
		t.Errorf("the staged record was written to the physical root's run/")
	}
	if st := bootedStatus(t, out); len(st) != 2 || !st[0].Pending || !st[1].Booted {
		t.Errorf("after finalize-staged: %+v, want the staged deployment pending and the booted one", st)
	}
}

// A booted system whose boot entries do not list the running deployment
// (another boot filesystem mounted on /boot, or its entry removed) is
// refused too, naming that deployment: taking the list as it is, status
// showed nothing booted and cleanup deleted the running deployment's /etc.
func TestAdminBootedUnlisted(t *testing.T) {
	a, b := newDeployedBooter(t, "one", "two")
	dep := a.status().Deployments[1].Path
	// Index 1 of 2 is entry otree-1.
	out, err := b.tryBoot(dep, `
rm "$M/boot/loader/entries/otree-1-cli.conf"
for c in status cleanup; do
	if otree admin $c; then echo "$c=0"; fi
done
`)
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"status", "cleanup"} {
		if strings.Contains(out, c+"=0\n") {
			t.Errorf("admin %s succeeded on a booted system whose entries do not list it", c)
		}
	}
	if !strings.Contains(out, "error: the running system is deployment /sysroot/otree/deploy/cli/deploy/"+filepath.Base(dep)+", which no boot entry in /boot/loader.") {
		t.Errorf("the errors do not name the running deployment and the entries")
	}
	wantEtcKept(t, dep)
}

// Whatever the kernel command line says, cleanup never deletes the
// directory the running system is rooted at: here the entries no longer
// list the booted deployment, and the command line names none (so that
// opening the sysroot does not refuse, as in TestAdminBootedUnlisted).
func TestAdminCleanupKeepsUnlistedBooted(t *testing.T) {
	for _, sysroot := range []string{"/", "/sysroot"} {
		t.Run(sysroot, func(t *testing.T) { testAdminCleanupKeepsUnlistedBooted(t, sysroot) })
	}
}

func testAdminCleanupKeepsUnlistedBooted(t *testing.T, sysroot string) {
	a, b := newDeployedBooter(t, "one", "two")
	dep := a.status().Deployments[1].Path
	out, err := b.tryBoot(dep, `
arg=$(printf '%s\n' $CMDLINE | grep '^otree=')
for e in "$M"/boot/loader/entries/*.conf; do
	if grep -qF -- "$arg" "$e"; then rm "$e"; fi
done
echo root=LABEL=root >"$M/proc/cmdline"
otree admin --sysroot="$SYSROOT" status
if otree admin --sysroot="$SYSROOT" cleanup; then echo "cleanup=0"; fi
`, "SYSROOT="+sysroot)
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "cleanup=0\n") {
		t.Errorf("cleanup succeeded, deleting the booted deployment")
	}
	if !strings.Contains(out, "/sysroot/otree/deploy/cli/deploy/"+filepath.Base(dep)+" is the running system's root") {
		t.Errorf("the error does not name %s", filepath.Base(dep))
	}
	wantEtcKept(t, dep)
}

// On the running system, otree --repo=/otree/repo reads the remotes the
// booted deployment ships in /etc/otree/remotes.d, as admin commands do;
// another repository does not.
func TestBootedRepoReadsShippedRemotes(t *testing.T) {
	a := newAdmin(t)
	b := newBooter(t, a)
	dir := t.TempDir()
	writeBootableTree(t, dir, "6.1.0-1", "one\n")
	conf := filepath.Join(dir, "usr/etc/otree/remotes.d/vendor.conf")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("[remote \"vendor\"]\nurl=https://updates.example/os\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.ok("commit", "-b", "cli/stable", dir)
	a.ok("admin", "deploy", "cli/stable")
	out := b.boot(a.status().Deployments[0].Path, `
echo system:; otree --repo=/otree/repo remote list -u
otree --repo=/run/other init >/dev/null
echo other:; otree --repo=/run/other remote list -u
`)
	system, other, _ := strings.Cut(out, "other:")
	if !strings.Contains(system, "vendor") || !strings.Contains(system, "https://updates.example/os") {
		t.Errorf("the system repository's remotes lack the shipped one:\n%s", system)
	}
	if strings.Contains(other, "vendor") {
		t.Errorf("another repository lists the shipped remote:\n%s", other)
	}
}

// upgrade -r reboots only when the sysroot is / and the running system
// booted one of its deployments, as OSTree's: booted, through / it tries
// systemctl, through the physical root /sysroot it does not; nor from a
// chroot into a sysroot whose deployments the machine did not boot (a
// rescue system's), where / is the sysroot but nothing is booted.
func TestAdminUpgradeRebootBooted(t *testing.T) {
	a := newAdmin(t)
	b := newBooter(t, a)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	old := a.status().Deployments[0].Path
	trees := bootableTrees(t, "two", "three")
	// The booted tree has neither a shell nor /dev: the systemctl put in
	// PATH cannot run, and "systemctl reboot failed" says it was tried.
	out := b.boot(old, `
printf '#!/nonexistent\n' > "$M/run/bin/systemctl"
chmod 755 "$M/run/bin/systemctl"
export PATH=/run/bin:$PATH
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable "$TWO" > /dev/null
echo slash:; otree admin upgrade -r 2>&1 || true
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable "$THREE" > /dev/null
echo sysroot:; otree admin --sysroot=/sysroot upgrade -r 2>&1 || true
`, "TWO="+trees["two"], "THREE="+trees["three"])
	slash, sysroot, _ := strings.Cut(out, "sysroot:\n")
	if !strings.Contains(slash, "systemctl reboot failed") {
		t.Errorf("upgrade -r of the booted sysroot as / ran no systemctl reboot:\n%s", slash)
	}
	if !strings.Contains(sysroot, "Not rebooting: sysroot /sysroot is not the running system's root /") {
		t.Errorf("upgrade -r of the booted sysroot as /sysroot:\n%s", sysroot)
	}

	a.commit("four\n", "6.1.0-1")
	out, err := chrootInto(t, a.sys, b.bin, "otree admin upgrade -r")
	if err != nil || !strings.Contains(out, "Not rebooting: the running system did not boot a deployment of sysroot /\n") {
		t.Errorf("upgrade -r in a chroot into the sysroot: %v\n%s", err, out)
	}
	if o := findOSTree(t, "bare"); o != nil {
		osys, ost := newOSTreeSysroot(t, o)
		for i, motd := range []string{"one\n", "two\n"} {
			tree := t.TempDir()
			writeBootableTree(t, tree, "6.1.0-1", motd)
			ost("--repo="+filepath.Join(osys, "ostree/repo"), "commit", "-b", "cli/stable", tree)
			if i == 0 {
				ost("admin", "--sysroot="+osys, "deploy", "--os=cli", "cli/stable")
			}
		}
		out, err := chrootInto(t, osys, o.bin, "ostree admin upgrade --os=cli -r")
		if err != nil || strings.Contains(out, "systemctl") {
			t.Errorf("OSTree's upgrade -r in a chroot into its sysroot: %v\n%s", err, out)
		}
	}
}

// chrootInto runs script (sh) in a private mount namespace, where the
// command named by bin's base name runs bin chrooted into the sysroot
// sys, with the host's /proc (whose command line boots no deployment of
// it), its libraries and a systemctl that cannot run in PATH. It
// returns the combined output.
func chrootInto(t *testing.T, sys, bin, script string) (string, error) {
	t.Helper()
	ldd, _ := exec.Command("ldd", bin).Output() // none for a static binary
	libs, loader := t.TempDir(), ""
	for _, f := range append(strings.Fields(string(ldd)), bin) {
		if !strings.HasPrefix(f, "/") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(libs, filepath.Base(f)), data, 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(filepath.Base(f), "ld-linux") {
			loader = "/run/lib/" + filepath.Base(f) + " --library-path /run/lib"
		}
	}
	m := filepath.Join(t.TempDir(), "M")
	if err := os.Mkdir(m, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(bin)
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", `set -e
mount --bind "$SYS" "$M"
mkdir -p "$M/run" "$M/proc" "$M/dev"
mount -t tmpfs run "$M/run"
mount -t proc proc "$M/proc"
mount --rbind /dev "$M/dev"
mkdir "$M/run/lib"
cp "$LIBS"/* "$M/run/lib/"
printf '#!/nonexistent\n' > "$M/run/lib/systemctl"
chmod 755 "$M/run/lib/systemctl"
export PATH=/run/lib:$PATH
`+name+`() { chroot "$M" $LOADER /run/lib/`+name+` "$@"; }
`+script)
	cmd.Env = append(os.Environ(), "SYS="+sys, "M="+m, "LIBS="+libs, "LOADER="+loader)
	out, err := cmd.CombinedOutput()
	t.Logf("in a chroot into %s:\n%s", sys, out)
	return string(out), err
}

// unlock --json numbers the booted deployment as status does: 1 while a
// deployment is staged (0), not its place in the boot order.
func TestAdminUnlockJSONNumbersAsStatus(t *testing.T) {
	a, b := newDeployedBooter(t, "one")
	needOverlay(t)
	dep := a.status().Deployments[0].Path
	tree := t.TempDir()
	writeBootableTree(t, tree, "6.1.0-1", "two\n")
	out := b.boot(dep, `
"$BIN" --repo="$PHYS/otree/repo" commit -b cli/stable "$TWO" > /dev/null
otree admin deploy --stage cli/stable > /dev/null
echo unlock:; otree admin unlock --json
echo status:; otree admin status --json
`, "TWO="+tree)
	_, js, _ := strings.Cut(out, "unlock:\n")
	var res struct {
		Deployment struct {
			Index  int
			Booted bool
		}
	}
	if err := json.NewDecoder(strings.NewReader(js)).Decode(&res); err != nil {
		t.Fatalf("unlock --json: %v in %q", err, out)
	}
	st := bootedStatus(t, out)
	if len(st) != 2 || !st[0].Staged || !st[1].Booted || st[1].Index != 1 {
		t.Fatalf("status: %+v, want a staged deployment (0) and the booted one (1)", st)
	}
	if !res.Deployment.Booted || res.Deployment.Index != st[1].Index {
		t.Errorf("unlock --json deployment = %+v, want the booted one numbered %d as status numbers it", res.Deployment, st[1].Index)
	}
}
