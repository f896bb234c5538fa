package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
)

// TestPrepareRootBootsDeployment deploys a tree with Deploy, takes the
// default boot entry's options as the kernel command line, and has
// otree-prepare-root set the root up from the sysroot exactly as Deploy
// left it: the deployment's files, its merged /etc, the stateroot's /var,
// a read-only /usr, the physical root at /sysroot, /otree reaching the
// sysroot's otree directory through the link Deploy adds, and /boot
// showing the sysroot's boot/ (the boot entries, which list the
// deployments to the booted system's otree admin).
func TestPrepareRootBootsDeployment(t *testing.T) {
	f := newFixture(t)
	for _, tool := range []string{"unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found; prepare-root is tested in a private mount namespace", tool)
		}
	}
	bin := testbin.Build(t, "github.com/otree/otree/cmd/otree-prepare-root")
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/hello": testtree.File("hello from the deployment\n", 0o755)}))
	d := f.deploy("os", DeployOptions{Kargs: []string{"root=LABEL=root"}}).Deployment
	os.WriteFile(filepath.Join(f.path, "otree/deploy/testos/var/state"), []byte("shared var\n"), 0o644)
	entries := f.entries()
	m := filepath.Join(t.TempDir(), "M")
	os.Mkdir(m, 0o755)
	script := `set -e
mount --bind "$PHYS" "$M"
"$BIN" --cmdline="$CMDLINE" "$M"
cat "$M/usr/bin/hello" "$M/etc/hostname" "$M/var/state"
if touch "$M/usr/x" 2>/dev/null; then echo usr-writable; else echo usr-ro; fi
test -d "$M/sysroot/otree/deploy/testos" && echo physical-root-ok
test -d "$M/otree/repo/objects" && echo otree-link-ok
ls "$M/boot/loader/entries"
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "PHYS="+f.path, "M="+m, "BIN="+bin, "CMDLINE=BOOT_IMAGE=/vmlinuz "+entries[0].options+" quiet")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"hello from the deployment\n", "default-host\n", "shared var\n", "usr-ro\n", "physical-root-ok\n", "otree-link-ok\n", "otree-1-testos.conf\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(string(out), d.Name()) {
		t.Errorf("prepare-root did not name %s:\n%s", d.Name(), out)
	}
}
