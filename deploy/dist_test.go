package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testbin"
)

// needTools skips the test unless it runs as root with the tools named.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed (CI installs it)", tool)
		}
	}
}

// verifyUnit runs systemd-analyze verify on unit within root and fails
// the test on any complaint: an unknown setting, a missing command, a
// dependency on a unit that does not exist.
func verifyUnit(t *testing.T, root, unit string) {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "verify", "--root="+root, unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

// The dracut module dist/dracut/98otree builds into a systemd initramfs:
// otree-prepare-root at /usr/lib/otree, its unit, wanted by
// initrd-root-fs.target; the unit verifies against what the initramfs
// holds (with the sysroot.mount systemd's fstab generator makes from
// root=).
func TestDracutModule(t *testing.T) {
	needTools(t, "dracut", "lsinitrd", "systemd-analyze")
	bin := testbin.Build(t, "github.com/otree/otree/cmd/otree-prepare-root")
	base := filepath.Join(t.TempDir(), "dracut")
	if out, err := exec.Command("cp", "-a", "/usr/lib/dracut", base).CombinedOutput(); err != nil {
		t.Fatalf("copying dracut: %v\n%s", err, out)
	}
	if out, err := exec.Command("cp", "-a", "../dist/dracut/98otree", filepath.Join(base, "modules.d")).CombinedOutput(); err != nil {
		t.Fatalf("adding the module: %v\n%s", err, out)
	}
	img, confdir := filepath.Join(t.TempDir(), "initramfs.img"), t.TempDir()
	cmd := exec.Command("dracut", "--no-kernel", "--no-hostonly", "--force", "--quiet", "--conf", "/dev/null", "--confdir", confdir,
		"--modules", "systemd systemd-initrd otree", img)
	cmd.Env = append(os.Environ(), "dracutbasedir="+base, "OTREE_PREPARE_ROOT="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dracut: %v\n%s", err, out)
	}
	root := t.TempDir()
	cmd = exec.Command("lsinitrd", "--unpack", img)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lsinitrd --unpack: %v\n%s", err, out)
	}
	// dracut strips binaries, so it is run rather than compared.
	out, err := exec.Command(filepath.Join(root, "usr/lib/otree/otree-prepare-root"), "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "usage: otree-prepare-root") {
		t.Fatalf("the initramfs's otree-prepare-root --help: %v\n%s", err, out)
	}
	wants := filepath.Join(root, "etc/systemd/system/initrd-root-fs.target.wants/otree-prepare-root.service")
	if target, err := os.Readlink(wants); err != nil || filepath.Base(target) != "otree-prepare-root.service" {
		t.Errorf("initrd-root-fs.target does not want the unit: %q, %v", target, err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/sysroot.mount"),
		[]byte("[Mount]\nWhat=/dev/disk/by-label/root\nWhere=/sysroot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	verifyUnit(t, root, "otree-prepare-root.service")
}

// dist/systemd/otree-finalize-staged.service and .path verify in a root
// holding otree at /usr/bin; the path unit watches the record a staged
// deploy writes, and the service runs `otree admin finalize-staged` when
// stopped.
func TestFinalizeStagedUnit(t *testing.T) {
	needTools(t, "systemd-analyze")
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	// systemd's own units, which units with default dependencies need.
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/system")).CombinedOutput(); err != nil {
		t.Fatalf("copying systemd's units: %v\n%s", err, out)
	}
	unit, err := os.ReadFile("../dist/systemd/otree-finalize-staged.service")
	if err != nil {
		t.Fatal(err)
	}
	path, err := os.ReadFile("../dist/systemd/otree-finalize-staged.path")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"usr/bin/otree": []byte("#!/bin/sh\n"), "usr/bin/true": []byte("#!/bin/sh\n"),
		"etc/systemd/system/otree-finalize-staged.service": unit,
		"etc/systemd/system/otree-finalize-staged.path":    path,
	}
	for _, u := range []string{"otree-upgrade.service", "otree-upgrade.timer", "otree-boot-complete.service"} {
		data, err := os.ReadFile("../dist/systemd/" + u)
		if err != nil {
			t.Fatal(err)
		}
		files["etc/systemd/system/"+u] = data
	}
	for name, data := range files {
		mode := os.FileMode(0o755)
		if strings.HasPrefix(name, "etc/") {
			mode = 0o644
		}
		if err := os.WriteFile(filepath.Join(root, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	verifyUnit(t, root, "otree-finalize-staged.service")
	verifyUnit(t, root, "otree-finalize-staged.path")
	verifyUnit(t, root, "otree-upgrade.service")
	verifyUnit(t, root, "otree-upgrade.timer")
	verifyUnit(t, root, "otree-boot-complete.service")
	if bc := string(files["etc/systemd/system/otree-boot-complete.service"]); !strings.Contains(bc, "\nAfter=boot-complete.target") || !strings.Contains(bc, "\nExecStart=/usr/bin/otree admin boot-complete --rollback-after-fallback\n") {
		t.Errorf("otree-boot-complete.service does not run boot-complete after boot-complete.target:\n%s", bc)
	}
	// The timer's upgrades are staged, so the finalize units apply them.
	if !strings.Contains(string(files["etc/systemd/system/otree-upgrade.service"]), "\nExecStart=/usr/bin/otree admin upgrade --stage\n") {
		t.Error("otree-upgrade.service does not stage its upgrade")
	}
	// Each unit that reads or writes the deployments waits for the mounts
	// they are on (a /boot of its own in particular).
	for _, u := range []string{"otree-finalize-staged.service", "otree-upgrade.service", "otree-boot-complete.service"} {
		if !regexp.MustCompile(`\nRequiresMountsFor=(.* )?/boot( .*)?\n`).Match(files["etc/systemd/system/"+u]) {
			t.Errorf("%s does not require /boot mounted", u)
		}
	}
	if !strings.Contains(string(unit), "\nExecStop=/usr/bin/otree admin finalize-staged\n") {
		t.Errorf("the unit does not finalize when stopped:\n%s", unit)
	}
	s := &Sysroot{path: "/"}
	if want := "\nPathExists=" + s.stagedFile() + "\n"; !strings.Contains(string(path), want) {
		t.Errorf("the path unit does not watch %s:\n%s", s.stagedFile(), path)
	}
}

// The initramfs-tools hook dist/initramfs-tools/hooks/otree copies
// otree-prepare-root, with the libraries it needs, into the initramfs
// being built (DESTDIR), where it runs chrooted.
func TestInitramfsToolsHook(t *testing.T) {
	needTools(t, "chroot")
	if _, err := os.Stat("/usr/share/initramfs-tools/hook-functions"); err != nil {
		t.Skip("skipping: initramfs-tools is not installed (CI installs it)")
	}
	bin := testbin.Build(t, "github.com/otree/otree/cmd/otree-prepare-root")
	dest := t.TempDir()
	cmd := exec.Command("sh", "../dist/initramfs-tools/hooks/otree")
	cmd.Env = append(os.Environ(), "DESTDIR="+dest, "verbose=n", "OTREE_PREPARE_ROOT="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hook: %v\n%s", err, out)
	}
	// mkinitramfs makes these links of a merged /usr; the loader is found
	// through them.
	for _, d := range []string{"lib", "lib64"} {
		os.Symlink("usr/"+d, filepath.Join(dest, d))
	}
	out, err := exec.Command("chroot", dest, "/usr/lib/otree/otree-prepare-root", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "usage: otree-prepare-root") {
		t.Errorf("otree-prepare-root chrooted into what the hook copied: %v\n%s", err, out)
	}
}
