package deploy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/repo"
)

// bootDisk is a sysroot's boot directory on a filesystem image of its
// own, as a boot partition: mounted while otree works on it, unmounted
// while GRUB (grub-emu, GRUB's own script engine and filesystem drivers,
// reading the image as its first disk) boots from it.
type bootDisk struct {
	t                   *testing.T
	img, mnt, deviceMap string
	// grubDir is GRUB's directory on the image, its $prefix: "grub"
	// unless a test sets it.
	grubDir string
}

func newBootDisk(t *testing.T, f *fixture) *bootDisk {
	needTools(t, "grub-emu", "mkfs.ext2", "mount", "umount")
	dir := t.TempDir()
	d := &bootDisk{t: t, img: filepath.Join(dir, "boot.img"), mnt: filepath.Join(f.path, "boot"), deviceMap: filepath.Join(dir, "device.map"), grubDir: "grub"}
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run("truncate", "-s", "32M", d.img)
	run("mkfs.ext2", "-q", "-F", d.img)
	// What init-fs laid out in boot/ moves onto the image.
	tmp := filepath.Join(dir, "m")
	os.Mkdir(tmp, 0o755)
	run("mount", "-o", "loop", d.img, tmp)
	run("cp", "-a", d.mnt+"/.", tmp+"/")
	run("umount", tmp)
	d.detached()
	if err := os.WriteFile(d.deviceMap, []byte("(hd0) "+d.img+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.mount()
	t.Cleanup(func() { exec.Command("umount", d.mnt).Run() })
	return d
}

func (d *bootDisk) mount() {
	d.t.Helper()
	if out, err := exec.Command("mount", "-o", "loop", d.img, d.mnt).CombinedOutput(); err != nil {
		d.t.Fatalf("mount: %v\n%s", err, out)
	}
}

var chose = regexp.MustCompile(`otree-chose=(\d*) tries=(\S*)`)

// boot runs the sysroot's grub.cfg in GRUB as a machine's boot would, up
// to the menu, and returns the entry it would boot and the tries left
// after it (as GRUB saved them).
func (d *bootDisk) boot() (entry, tries string) {
	d.t.Helper()
	// What otree wrote, for the log of a failure.
	cfg, _ := os.ReadFile(filepath.Join(d.mnt, "loader", "grub.cfg"))
	if out, err := exec.Command("umount", d.mnt).CombinedOutput(); err != nil {
		d.t.Fatalf("umount: %v\n%s", err, out)
	}
	d.detached()
	defer d.mount()
	dir := d.t.TempDir()
	script := `set prefix=(hd0)/` + d.grubDir + `
source (hd0)/loader/grub.cfg
if [ -f "${prefix}/grubenv" ]; then
	load_env ` + grubTriesVar + `
fi
echo "otree-chose=${default} tries=${` + grubTriesVar + `}"
halt
`
	if err := os.WriteFile(filepath.Join(dir, "grub.cfg"), []byte(script), 0o644); err != nil {
		d.t.Fatal(err)
	}
	out, err := exec.Command("timeout", "20", "grub-emu", "-d", dir, "-m", d.deviceMap).CombinedOutput()
	m := chose.FindSubmatch(out)
	if err != nil || m == nil {
		d.t.Fatalf("grub-emu: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "error:") {
		d.t.Fatalf("GRUB reported an error:\n%s", out)
	}
	d.t.Logf("grub.cfg as written:\n%s\nGRUB printed:\n%s", cfg, out)
	return string(m[1]), string(m[2])
}

// detached waits until no loop device holds the image. The kernel may
// finish an automatic detach after umount returns; until it has, a new
// mount can reuse the old device and its cached blocks, which predate
// what GRUB's save_env wrote to the image.
func (d *bootDisk) detached() {
	d.t.Helper()
	for i := 0; ; i++ {
		out, err := exec.Command("losetup", "-j", d.img).CombinedOutput()
		if err != nil {
			d.t.Fatalf("losetup -j: %v\n%s", err, out)
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return
		}
		if i == 100 {
			d.t.Fatalf("the image is still attached 10 s after umount: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGrubBootCounting boots a new default deployment in GRUB until its
// tries run out and GRUB falls back to the previous one; then
// boot-complete refuses to end the count, rollback ends it, and a boot
// that completes ends the count of the next update.
func TestGrubBootCounting(t *testing.T) {
	f := newFixture(t)
	disk := newBootDisk(t, f)
	ctx := context.Background()
	cfg := f.s.Repo().Config()
	cfg.Set(ConfigBootTries, "2")
	one := f.commit("os", osTree("6.1.0", nil))
	if _, err := f.s.Deploy(ctx, one.String(), DeployOptions{}); err == nil || !strings.Contains(err.Error(), ConfigBootloader) {
		t.Fatalf("boot counting without grub2: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.path, "otree/deploy/testos/deploy")); len(ents) != 0 {
		t.Fatalf("a refused deploy checked out %v", ents)
	}
	err := f.s.Repo().UpdateConfig(func(c *repo.Config) error {
		c.Set(ConfigBootTries, "2")
		return c.Set(ConfigBootloader, "grub2")
	})
	if err != nil {
		t.Fatal(err)
	}
	f.deploy(one.String(), DeployOptions{})
	// A first deployment has nothing to fall back to: no count.
	if e, tries := disk.boot(); e != "0" || tries != "" {
		t.Fatalf("one deployment: entry %s, tries %q", e, tries)
	}

	booted := bootedAs(t, f, 0)
	two := f.commit("os", osTree("6.2.0", nil))
	if _, err := booted.Deploy(ctx, two.String(), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	if bc, err := booted.BootCount(); err != nil || !bc.Counting || bc.Left != 2 {
		t.Fatalf("after the deploy: %+v, %v", bc, err)
	}
	// Two tries of the new default, then the previous deployment.
	for i, want := range [][2]string{{"0", "1"}, {"0", "0"}, {"1", "0"}, {"1", "0"}} {
		if e, tries := disk.boot(); e != want[0] || tries != want[1] {
			t.Fatalf("boot %d: entry %s with %q tries left, want entry %s with %s", i+1, e, tries, want[0], want[1])
		}
	}
	fellBack := bootedAs(t, f, 1)
	if bc, err := fellBack.BootCount(); err != nil || !bc.FellBack {
		t.Fatalf("after the fallback: %+v, %v", bc, err)
	}
	if _, err := fellBack.BootComplete(ctx, BootCompleteOptions{}); !errors.Is(err, ErrFellBack) || !strings.Contains(err.Error(), "GRUB booted deployment 1 instead") {
		t.Fatalf("boot-complete after a fallback: %v", err)
	}
	if e, _ := disk.boot(); e != "1" {
		t.Fatalf("boot-complete after a fallback ended the fallback: entry %s", e)
	}
	if _, err := fellBack.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if fellBack.Deployments()[0].Commit != one {
		t.Fatalf("rollback: default is %s", fellBack.Deployments()[0].Commit)
	}
	if e, tries := disk.boot(); e != "0" || tries != "" {
		t.Fatalf("after the rollback: entry %s, tries %q", e, tries)
	}

	// A count set under a higher setting goes on under a lower one.
	setTries := func(v string) {
		if err := f.s.Repo().UpdateConfig(func(c *repo.Config) error { return c.Set(ConfigBootTries, v) }); err != nil {
			t.Fatal(err)
		}
	}
	setTries("5")
	extra := f.commit("os", osTree("6.1.5", nil))
	if _, err := bootedAs(t, f, 0).Deploy(ctx, extra.String(), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	setTries("1")
	if _, err := bootedAs(t, f, 0).SetKargs(ctx, 0, KargsEdit{Append: []string{"loglevel=3"}}); err != nil { // writes grub.cfg anew
		t.Fatal(err)
	}
	if e, tries := disk.boot(); e != "0" || tries != "4" {
		t.Fatalf("a count of 5 under tries=1: entry %s, tries %q", e, tries)
	}
	if bc, err := bootedAs(t, f, 0).BootComplete(ctx, BootCompleteOptions{}); err != nil || !bc.Completed {
		t.Fatalf("boot-complete of the count of 5: %+v, %v", bc, err)
	}
	setTries("2")

	// The next update completes its first boot: the count ends there.
	booted = bootedAs(t, f, 0)
	three := f.commit("os", osTree("6.3.0", nil))
	if _, err := booted.Deploy(ctx, three.String(), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	if e, tries := disk.boot(); e != "0" || tries != "1" {
		t.Fatalf("the update's first boot: entry %s, tries %q", e, tries)
	}
	updated := bootedAs(t, f, 0)
	// A change that keeps the default (here its kernel arguments, from
	// the boot being counted) neither restarts nor ends the count.
	if _, err := updated.SetKargs(ctx, 0, KargsEdit{Append: []string{"quiet"}}); err != nil {
		t.Fatal(err)
	}
	if bc, err := updated.BootCount(); err != nil || bc.Left != 1 {
		t.Fatalf("after a kargs change: %+v, %v", bc, err)
	}
	updated = bootedAs(t, f, 0)
	if updated.Booted() == nil || updated.Booted().Commit != three {
		t.Fatalf("booted %+v, want %s", updated.Booted(), three)
	}
	if bc, err := updated.BootComplete(ctx, BootCompleteOptions{}); err != nil || !bc.Counting {
		t.Fatalf("boot-complete: %+v, %v", bc, err)
	}
	for range 3 {
		if e, tries := disk.boot(); e != "0" || tries != "" {
			t.Fatalf("after boot-complete: entry %s, tries %q", e, tries)
		}
	}
	if _, err := updated.BootComplete(ctx, BootCompleteOptions{}); err != nil {
		t.Errorf("boot-complete with no count: %v", err)
	}
	// A sysroot not booted cannot complete a boot while one is counted.
	four := f.commit("os", osTree("6.4.0", nil))
	if _, err := updated.Deploy(ctx, four.String(), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	nb, err := Open(f.path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	// The error names the sysroot: --sysroot may name one that is not the
	// running system's.
	if _, err := nb.BootComplete(ctx, BootCompleteOptions{}); !errors.Is(err, ErrNotBooted) || err == nil || !strings.Contains(err.Error(), "sysroot "+nb.Path()+": ") {
		t.Errorf("boot-complete on a sysroot not booted: %v", err)
	}

	// Four never completes a boot; three, booted by GRUB's fallback,
	// does, and makes itself the default: GRUB boots it with no count.
	for i, want := range [][2]string{{"0", "1"}, {"0", "0"}, {"1", "0"}} {
		if e, tries := disk.boot(); e != want[0] || tries != want[1] {
			t.Fatalf("update four, boot %d: entry %s with %q tries left, want entry %s with %s", i+1, e, tries, want[0], want[1])
		}
	}
	fellBack = bootedAs(t, f, 1)
	bc, err := fellBack.BootComplete(ctx, BootCompleteOptions{RollbackAfterFallback: true})
	if err != nil || !bc.FellBack || !bc.RolledBack {
		t.Fatalf("boot-complete --rollback-after-fallback: %+v, %v", bc, err)
	}
	if ds := fellBack.Deployments(); ds[0].Commit != three || ds[1].Commit != four || !ds[0].Booted {
		t.Fatalf("after the automatic rollback: %s (booted %v), %s", ds[0].Commit, ds[0].Booted, ds[1].Commit)
	}
	for range 2 {
		if e, tries := disk.boot(); e != "0" || tries != "" {
			t.Fatalf("after the automatic rollback: entry %s, tries %q", e, tries)
		}
	}
	// The option changes nothing on a boot of the default.
	if bc, err := bootedAs(t, f, 0).BootComplete(ctx, BootCompleteOptions{RollbackAfterFallback: true}); err != nil || bc.Counting || bc.RolledBack {
		t.Errorf("boot-complete --rollback-after-fallback with no count: %+v, %v", bc, err)
	}

	// Five fails too; the automatic rollback to three dies right after
	// its switch, before it unsets the count, which says "none left". The
	// new grub.cfg must not read it: GRUB boots three, not five again.
	five := f.commit("os", osTree("6.5.0", nil))
	if _, err := bootedAs(t, f, 0).Deploy(ctx, five.String(), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][2]string{{"0", "1"}, {"0", "0"}, {"1", "0"}} {
		if e, tries := disk.boot(); e != want[0] || tries != want[1] {
			t.Fatalf("update five, boot %d: entry %s with %q tries left, want entry %s with %s", i+1, e, tries, want[0], want[1])
		}
	}
	testHookSwitched = func() error { return errors.New("killed right after the switch") }
	_, err = bootedAs(t, f, 1).BootComplete(ctx, BootCompleteOptions{RollbackAfterFallback: true})
	testHookSwitched = nil
	if err == nil || !strings.Contains(err.Error(), "killed right after the switch") {
		t.Fatalf("boot-complete with the switch cut short: %v", err)
	}
	if v, ok, _ := readGrubVar(f.s.grubEnvPath(), grubTriesVar); !ok || v != "0" {
		t.Fatalf("the count should still be there, spent: %q, %v", v, ok)
	}
	for i := range 2 {
		if e, _ := disk.boot(); e != "0" {
			t.Fatalf("boot %d after a rollback cut short before the count was unset: entry %s, the failed deployment", i+1, e)
		}
	}
	after := bootedAs(t, f, 0)
	if ds := after.Deployments(); ds[0].Commit != three || !ds[0].Booted {
		t.Fatalf("after the cut-short rollback: default %s (booted %v)", ds[0].Commit, ds[0].Booted)
	}
	if bc, err := after.BootCount(); err != nil || bc.Counting || bc.FellBack {
		t.Errorf("status after the cut-short rollback: %+v, %v; the stale count counts nothing", bc, err)
	}
	// A change that keeps the default does not revive the stale count.
	if _, err := after.SetKargs(ctx, 0, KargsEdit{Append: []string{"quiet=1"}}); err != nil {
		t.Fatal(err)
	}
	if e, _ := disk.boot(); e != "0" {
		t.Errorf("a kargs change revived the stale count: entry %s", e)
	}
	// Nor does an environment block no one can read stop such a change
	// (an undeploy may be what frees /boot).
	if err := os.WriteFile(f.s.grubEnvPath(), []byte("not an environment block\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	again := bootedAs(t, f, 0)
	counted := again.grubCounts()
	if _, err := again.SetKargs(ctx, 0, KargsEdit{Append: []string{"quiet=2"}}); err != nil {
		t.Fatalf("a kargs change with an unreadable environment block: %v", err)
	}
	if opts := again.Deployments()[0].Options; !strings.Contains(opts, "quiet=2") {
		t.Errorf("after the kargs change the default's options are %q", opts)
	}
	if again.grubCounts() != counted {
		t.Errorf("a kargs change with an unreadable environment block turned counting in grub.cfg from %v to %v", counted, !counted)
	}
}

// TestGrubBootCountingStaysInStateroot: with another stateroot's
// deployment listed between a new default and its stateroot's previous
// one, GRUB falls back to the previous one of the same system, the one
// rollback picks, not to deployment 1; status and boot-complete name it.
func TestGrubBootCountingStaysInStateroot(t *testing.T) {
	f := newFixture(t)
	disk := newBootDisk(t, f)
	ctx := context.Background()
	one, two := acrossStateroots(t, f)
	ds := bootedAs(t, f, 0).Deployments()
	if len(ds) != 3 || ds[0].Commit != two || ds[1].OS != "other" || ds[2].Commit != one {
		for _, d := range ds {
			t.Logf("%s.%d %s", d.OS, d.Serial, d.Commit)
		}
		t.Fatal("deployments not as expected")
	}
	for i, want := range [][2]string{{"0", "0"}, {"2", "0"}, {"2", "0"}} {
		if e, tries := disk.boot(); e != want[0] || tries != want[1] {
			t.Fatalf("boot %d: entry %s with %q tries left, want entry %s with %s", i+1, e, tries, want[0], want[1])
		}
	}
	fellBack := bootedAs(t, f, 2)
	if bc, err := fellBack.BootCount(); err != nil || !bc.FellBack || bc.Fallback != 2 {
		t.Fatalf("after the fallback: %+v, %v", bc, err)
	}
	if _, err := fellBack.BootComplete(ctx, BootCompleteOptions{}); !errors.Is(err, ErrFellBack) || !strings.Contains(err.Error(), "GRUB booted deployment 2 instead") {
		t.Fatalf("boot-complete after a fallback: %v", err)
	}
	if _, err := fellBack.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if ds := fellBack.Deployments(); ds[0].Commit != one || !ds[0].Booted {
		t.Fatalf("rollback: default %s (booted %v)", ds[0].Commit, ds[0].Booted)
	}
	if e, tries := disk.boot(); e != "0" || tries != "" {
		t.Fatalf("after the rollback: entry %s, tries %q", e, tries)
	}
}

// Where GRUB is installed in boot/grub2 (Fedora's grub2-install), its
// $prefix, the count goes to the environment block there, which GRUB
// reads: the new default gets its tries, then GRUB falls back, and
// boot-complete on the fallback knows it.
func TestGrubBootCountingGrub2Dir(t *testing.T) {
	f := newFixture(t)
	disk := newBootDisk(t, f)
	disk.grubDir = "grub2"
	if err := os.Mkdir(filepath.Join(f.path, "boot", "grub2"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := f.s.Repo().UpdateConfig(func(c *repo.Config) error {
		c.Set(ConfigBootTries, "1")
		return c.Set(ConfigBootloader, "grub2")
	})
	if err != nil {
		t.Fatal(err)
	}
	f.deploy(f.commit("os", osTree("6.1.0", nil)).String(), DeployOptions{})
	if _, err := bootedAs(t, f, 0).Deploy(context.Background(), f.commit("os", osTree("6.2.0", nil)).String(), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][2]string{{"0", "0"}, {"1", "0"}} {
		if e, tries := disk.boot(); e != want[0] || tries != want[1] {
			t.Fatalf("boot %d: entry %s with %q tries left, want entry %s with %s", i+1, e, tries, want[0], want[1])
		}
	}
	if _, err := os.Lstat(filepath.Join(f.path, "boot", "grub")); !os.IsNotExist(err) {
		t.Errorf("boot/grub, which GRUB does not read, was made: %v", err)
	}
	if bc, err := bootedAs(t, f, 1).BootCount(); err != nil || !bc.FellBack {
		t.Fatalf("after the fallback: %+v, %v", bc, err)
	}
}

// acrossStateroots counts boots with one try and deploys testos's one,
// then other's, then testos's two from other booted: two is the default,
// counted, other's deployment 1 and one deployment 2.
func acrossStateroots(t *testing.T, f *fixture) (one, two repo.ID) {
	t.Helper()
	err := f.s.Repo().UpdateConfig(func(c *repo.Config) error {
		c.Set(ConfigBootTries, "1")
		return c.Set(ConfigBootloader, "grub2")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.OSInit(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	one = f.commit("os", osTree("6.1.0", nil))
	f.deploy(one.String(), DeployOptions{OS: "testos"})
	f.deploy(f.commit("o", osTree("5.10.0", nil)).String(), DeployOptions{OS: "other"})
	two = f.commit("os", osTree("6.2.0", nil))
	if _, err := bootedAs(t, f, 1).Deploy(context.Background(), two.String(), DeployOptions{OS: "testos"}); err != nil {
		t.Fatal(err)
	}
	return one, two
}

// spentAcrossStateroots is acrossStateroots with two's one try spent:
// GRUB falls back to deployment 2.
func spentAcrossStateroots(t *testing.T) (f *fixture, one, two repo.ID) {
	t.Helper()
	f = newFixture(t)
	one, two = acrossStateroots(t, f)
	if err := setGrubVar(f.s.grubEnvPath(), grubTriesVar, "0", false); err != nil {
		t.Fatal(err)
	}
	return f, one, two
}

// TestRollbackAfterFallbackOnlyToFallback: once the default's tries are
// spent, a deployment chosen by hand in GRUB's menu (here another
// stateroot's) is not GRUB's fallback: boot-complete
// --rollback-after-fallback leaves the default and the count alone
// rather than make that system the default.
func TestRollbackAfterFallbackOnlyToFallback(t *testing.T) {
	f, one, two := spentAcrossStateroots(t)
	ctx := context.Background()
	picked := bootedAs(t, f, 1)
	bc, err := picked.BootComplete(ctx, BootCompleteOptions{RollbackAfterFallback: true})
	if err != nil || bc.RolledBack || bc.Fallback != 2 {
		t.Fatalf("boot-complete --rollback-after-fallback on a deployment picked by hand: %+v, %v", bc, err)
	}
	if ds := picked.Deployments(); ds[0].Commit != two || ds[1].OS != "other" || ds[2].Commit != one {
		t.Fatalf("the hand-picked %s.%d became deployment %d", ds[1].OS, ds[1].Serial, 0)
	}
	if v, ok, _ := readGrubVar(f.s.grubEnvPath(), grubTriesVar); !ok || v != "0" {
		t.Errorf("the count should be left alone, spent: %q, %v", v, ok)
	}
	if _, err := picked.BootComplete(ctx, BootCompleteOptions{}); err != nil {
		t.Errorf("boot-complete on a deployment picked by hand: %v", err)
	}
	// The fallback's own boot still makes it the default.
	fellBack := bootedAs(t, f, 2)
	if bc, err := fellBack.BootComplete(ctx, BootCompleteOptions{RollbackAfterFallback: true}); err != nil || !bc.RolledBack {
		t.Fatalf("boot-complete --rollback-after-fallback on the fallback: %+v, %v", bc, err)
	}
	if ds := fellBack.Deployments(); ds[0].Commit != one || !ds[0].Booted {
		t.Fatalf("after the automatic rollback: default %s (booted %v)", ds[0].Commit, ds[0].Booted)
	}
}

// TestRollbackToFallbackWhenAnotherPicked: with another stateroot's
// deployment 1 picked by hand after the default's tries were spent,
// rollback makes the deployment the default whose number status gives
// as GRUB's fallback ('otree admin rollback' makes it the default), the
// default's previous one, not the system picked by hand.
func TestRollbackToFallbackWhenAnotherPicked(t *testing.T) {
	f, one, two := spentAcrossStateroots(t)
	picked := bootedAs(t, f, 1)
	bc, err := picked.BootCount()
	if err != nil || !bc.FellBack || bc.Fallback != 2 {
		t.Fatalf("boot count: %+v, %v", bc, err)
	}
	if _, err := picked.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ds := picked.Deployments(); ds[0].Commit != one || ds[1].Commit != two || ds[2].OS != "other" {
		t.Fatalf("rollback made %s.%d the default, not deployment %d that status named", ds[0].OS, ds[0].Serial, bc.Fallback)
	}
}
