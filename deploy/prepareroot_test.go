package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/internal/mountinfo"
	"github.com/otree/otree/internal/testbin"
	"golang.org/x/sys/unix"
)

func TestPrepRootFindMount(t *testing.T) {
	info := []byte(`22 1 0:21 / / rw,relatime shared:1 - rootfs rootfs rw
35 22 254:0 / /sysroot rw,relatime - ext4 /dev/vda rw
36 22 0:5 / /a\040b\134c rw master:3 shared:7 - tmpfs tmpfs rw
37 22 0:6 / /slave rw master:3 - tmpfs tmpfs rw
38 22 0:7 / /odd rw - tmpfs shared:9 rw
`)
	for _, tc := range []struct {
		id     uint64
		ok     bool
		point  string
		shared bool
	}{
		{22, true, "/", true},
		{35, true, "/sysroot", false},
		{36, true, `/a b\c`, true},
		{37, true, "/slave", false},
		{99, false, "", false},
	} {
		m, ok := prepRootFindMount(mountinfo.Parse(info), tc.id)
		if ok != tc.ok || m.MountPoint != tc.point || m.Shared != tc.shared {
			t.Errorf("mount %d: got %+v, %v; want %q shared=%v, %v", tc.id, m, ok, tc.point, tc.shared, tc.ok)
		}
	}
	// Optional fields end at the separator; a "shared:" after it is not one.
	if m, _ := prepRootFindMount(mountinfo.Parse(info), 38); m.Shared {
		t.Errorf("mount 38 read as shared from beyond the separator")
	}
}

func TestPrepRootKeepFlags(t *testing.T) {
	got := prepRootKeepFlags(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV | unix.ST_RELATIME)
	if want := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_RELATIME); got != want {
		t.Errorf("prepRootKeepFlags = %#x, want %#x", got, want)
	}
}

// TestPrepareRoot runs otree-prepare-root in a private mount namespace on
// a hand-built sysroot bind-mounted at a stand-in for the initramfs's
// /sysroot.
func TestPrepareRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: PrepareRoot mounts, which needs root")
	}
	for _, tool := range []string{"unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not found; PrepareRoot is tested in a private mount namespace", tool)
		}
	}
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create a mount namespace: %v: %s", err, out)
	}
	bin := testbin.Build(t, "github.com/otree/otree/cmd/otree-prepare-root")

	const physBoot = `mkdir -p "$PHYS/boot/loader.0/entries"; echo entry > "$PHYS/boot/loader.0/entries/e.conf"; ln -s loader.0 "$PHYS/boot/loader"; `
	for _, tc := range []struct {
		name, setup string
		boot        bool // /boot shows the physical root's boot/
	}{
		{"ok", "", false},
		// As in an initramfs whose / is shared: the parent of M must be
		// made a slave for M to move, and nothing may propagate into phys.
		{"shared parent", `mount --bind "$TOP" "$TOP"; mount --make-shared "$TOP"`, false},
		// boot/ on the physical root (its loader link is there) shows on
		// the deployment's /boot, where the booted system looks.
		{"boot on the physical root", physBoot + `mkdir "$DEP/boot"`, true},
		// A tree whose /boot is no directory boots without it, as with
		// OSTree: mounting on a link would follow it out of the deployment.
		{"deployment boot is a link", physBoot + `ln -s /nonexistent "$DEP/boot"`, false},
		{"deployment without boot", physBoot, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testPrepareRootOK(t, bin, tc.setup, tc.boot)
		})
	}

	const bindM = `mount --bind "$PHYS" "$M"`
	for _, tc := range []struct {
		name    string
		serial  string
		prepare func(s prepRootSysroot) error
		setup   string // shell commands run in the namespace first
		want    string
	}{
		{"missing deployment", "5", nil, bindM, "otree/boot.1.0/os1/%CSUM/5: no such file or directory"},
		{"no otree argument", "", nil, bindM, "no otree= argument"},
		{"not a mount point", "0", nil, `M="$PHYS"`, "is not a mount point"},
		{"deployment without sysroot", "0", func(s prepRootSysroot) error {
			return os.Remove(filepath.Join(s.dep, "sysroot"))
		}, bindM, "deployment sysroot: lstat %DEP/sysroot: no such file or directory"},
		{"deployment usr is a link", "0", func(s prepRootSysroot) error {
			usr := filepath.Join(s.dep, "usr")
			if err := os.RemoveAll(usr); err != nil {
				return err
			}
			return os.Symlink("/usr", usr)
		}, bindM, "deployment usr " + "%DEP/usr is not a directory"},
		{"stateroot var missing", "0", func(s prepRootSysroot) error {
			return os.RemoveAll(filepath.Join(s.phys, "otree/deploy/os1/var"))
		}, bindM, "stateroot var: lstat %PHYS/otree/deploy/os1/var: no such file or directory"},
		{"hotfix without its overlay", "0", func(s prepRootSysroot) error {
			return os.WriteFile(s.dep+".origin", []byte("[origin]\nrefspec=os\nunlocked=hotfix\n"), 0o644)
		}, bindM, "the deployment is hotfixed, but %DEP/.usr-ovl-upper is not a directory"},
		// The kernel refuses to bind from an unbindable mount: the failure
		// comes after the deployment is mounted, and must be undone.
		{"failure after mounting", "0", nil, bindM + `
mount --bind "$M/otree/deploy/os1/var" "$M/otree/deploy/os1/var"
mount --make-unbindable "$M/otree/deploy/os1/var"`, "bind-mounting stateroot var %PHYS/otree/deploy/os1/var on "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPrepRootSysroot(t)
			if tc.prepare != nil {
				if err := tc.prepare(s); err != nil {
					t.Fatal(err)
				}
			}
			cmdline := "root=x quiet"
			if tc.serial != "" {
				cmdline = "root=x otree=/otree/boot.1/os1/" + s.csum + "/" + tc.serial + " quiet"
			}
			out := s.run(t, bin, cmdline, tc.setup+`
mounts() { awk -v p="$TOP/" 'index($5, p) == 1 { print $1, $4, $5 }' /proc/self/mountinfo; }
before=$(mounts)
rc=0
"$BIN" --cmdline="$CMDLINE" "$M" 2>&1 || rc=$?
echo "rc=$rc"
if [ "$before" = "$(mounts)" ]; then echo mounts=unchanged; else echo mounts=changed; echo "$before"; mounts; fi
test -d "$M/otree/deploy" && echo physical=ok
test -e "$M/usr" || echo nousr=ok
`)
			// The path in the error is the one the binary was given; M is
			// physical itself when it is not bind-mounted.
			mnt := s.mnt
			if strings.HasPrefix(tc.setup, `M="$PHYS"`) {
				mnt = s.phys
			}
			want := strings.NewReplacer("%CSUM", s.csum, "%DEP", strings.Replace(s.dep, s.phys, mnt, 1), "%PHYS", mnt).Replace(tc.want)
			for _, w := range []string{"error: ", want, "rc=1\n", "mounts=unchanged\n", "physical=ok\n", "nousr=ok\n"} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			s.checkHost(t)
		})
	}
}

// testPrepareRootOK runs otree-prepare-root on a good sysroot, after the
// shell commands setup, and checks the result: with boot, the physical
// root's boot/ is on the deployment's /boot.
func testPrepareRootOK(t *testing.T, bin, setup string, boot bool) {
	s := newPrepRootSysroot(t)
	out := s.run(t, bin, "root=x otree=/otree/boot.1/os1/"+s.csum+"/0 quiet", `
set -e
`+setup+`
mount --bind "$PHYS" "$M"
"$BIN" --cmdline="$CMDLINE" "$M" 2>&1
test -f "$M/usr/bin/marker" && echo marker=ok
if ( echo x > "$M/usr/x" ) 2>/dev/null; then echo usr=rw; else echo usr=ro; fi
echo hello > "$M/var/newfile" && echo var=ok
test -f "$M/var/old" && echo oldvar=ok
test -d "$M/sysroot/otree/deploy" && echo sysroot=ok
test -d "$M/etc" && echo etc=ok
test -f "$M/sysroot/otree/deploy/os1/var/newfile" && echo physvar=ok
test -f "$M/boot/loader/entries/e.conf" && echo boot=ok
echo "mounts under top:"
awk -v p="$TOP/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo
`)
	for _, want := range []string{
		"otree-prepare-root: " + s.mnt + " is now deployment otree/deploy/os1/deploy/" + s.id + ".0",
		"marker=ok", "usr=ro", "var=ok", "oldvar=ok", "sysroot=ok", "etc=ok", "physvar=ok",
	} {
		if !strings.Contains(out, want+"\n") && !strings.Contains(out, want+" ") {
			t.Errorf("output lacks %q", want)
		}
	}
	// The deployment, its var and usr, and the physical root under it;
	// no leftover of the temporary mount point.
	want := []string{s.mnt, s.mnt + "/sysroot", s.mnt + "/usr", s.mnt + "/var"}
	if boot {
		want = append(want, s.mnt+"/boot")
		slices.Sort(want)
		if !strings.Contains(out, "boot=ok\n") {
			t.Error("the deployment's /boot does not show the physical root's boot/")
		}
	}
	_, listed, _ := strings.Cut(out, "mounts under top:\n")
	got := strings.Fields(listed)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("mounts under %s: %q, want %q", s.top, got, want)
	}
	b, err := os.ReadFile(filepath.Join(s.phys, "otree/deploy/os1/var/newfile"))
	if err != nil || string(b) != "hello\n" {
		t.Errorf("stateroot var/newfile: %q, %v; want the file written through the deployment's var", b, err)
	}
	if _, err := os.Lstat(filepath.Join(s.dep, "var", "newfile")); err == nil {
		t.Errorf("newfile landed in the deployment's own var directory")
	}
	// Host side the deployment's usr stays writable.
	if err := os.WriteFile(filepath.Join(s.dep, "usr", "hostwrite"), nil, 0o644); err != nil {
		t.Errorf("deployment usr not writable outside the namespace: %v", err)
	}
	s.checkHost(t)
}

// prepRootSysroot is a physical root filesystem with one deployment,
// built by hand at top/phys, and the mount point top/M standing in for
// the initramfs's /sysroot.
type prepRootSysroot struct {
	top, phys, mnt string
	id, csum       string
	dep            string // the deployment, host side
}

func newPrepRootSysroot(t *testing.T) prepRootSysroot {
	t.Helper()
	top, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := prepRootSysroot{
		top:  top,
		phys: filepath.Join(top, "phys"),
		mnt:  filepath.Join(top, "M"),
		id:   strings.Repeat("5e", 32),
		csum: strings.Repeat("c5", 32),
	}
	s.dep = filepath.Join(s.phys, "otree/deploy/os1/deploy", s.id+".0")
	for _, d := range []string{
		s.mnt,
		filepath.Join(s.phys, "otree/deploy/os1/var"),
		filepath.Join(s.dep, "usr/bin"),
		filepath.Join(s.dep, "var"),
		filepath.Join(s.dep, "sysroot"),
		filepath.Join(s.dep, "etc"),
		filepath.Join(s.phys, "otree/boot.1.0/os1", s.csum),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		filepath.Join(s.dep, "usr/bin/marker"):            "marker\n",
		filepath.Join(s.phys, "otree/deploy/os1/var/old"): "old\n",
	} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		filepath.Join(s.phys, "otree/boot.1"):                    "boot.1.0",
		filepath.Join(s.phys, "otree/boot.1.0/os1", s.csum, "0"): "../../../deploy/os1/deploy/" + s.id + ".0",
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// run runs script with sh in a new private mount namespace, with PHYS, M,
// TOP, DEP (the deployment, host side), BIN and CMDLINE set, and returns its output; the script must exit 0.
func (s prepRootSysroot) run(t *testing.T, bin, cmdline, script string) string {
	t.Helper()
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "PHYS="+s.phys, "M="+s.mnt, "TOP="+s.top, "DEP="+s.dep, "BIN="+bin, "CMDLINE="+cmdline)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("namespace script output:\n%s", out.String())
	if err != nil {
		t.Fatalf("script: %v", err)
	}
	return out.String()
}

// checkHost checks that nothing under the test's directory is mounted
// outside the namespace and that no temporary mount point is left.
func (s prepRootSysroot) checkHost(t *testing.T) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mounts)) {
		if strings.Contains(line, s.top) {
			t.Errorf("still mounted on the host: %s", line)
		}
	}
	ents, err := os.ReadDir(s.top)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "M phys" {
		t.Errorf("%s holds %q, want only M and phys", s.top, got)
	}
}

// The initramfs-tools script dist/initramfs-tools/scripts/local-bottom/otree
// runs otree-prepare-root on $rootmnt when the kernel command line (here a
// file bound over /proc/cmdline) has otree=, does nothing without it, and
// fails when prepare-root does.
func TestInitramfsToolsScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the script mounts, which needs root")
	}
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create a mount namespace: %v: %s", err, out)
	}
	script, err := filepath.Abs("../dist/initramfs-tools/scripts/local-bottom/otree")
	if err != nil {
		t.Fatal(err)
	}
	bin := testbin.Build(t, "github.com/otree/otree/cmd/otree-prepare-root")
	if out, err := exec.Command("sh", script, "prereqs").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("script prereqs: %q, %v; want no prerequisites", out, err)
	}
	const run = `
mount --bind "$PHYS" "$M"
printf '%s\n' "$CMDLINE" > "$CMDFILE"
mount --bind "$CMDFILE" /proc/cmdline
rc=0
rootmnt="$M" OTREE_PREPARE_ROOT="$BIN" sh "$SCRIPT" 2>&1 || rc=$?
echo "rc=$rc"
test -f "$M/usr/bin/marker" && echo deployment=mounted
test -d "$M/sysroot/otree/deploy" && echo sysroot=moved
test -d "$M/otree/deploy" && echo still=physical
if ( echo x > "$M/usr/x" ) 2>/dev/null; then echo usr=rw; else echo usr=ro; fi
`
	for _, tc := range []struct {
		name, serial string
		want, not    []string
	}{
		{"otree= given", "0", []string{"rc=0", "deployment=mounted", "sysroot=moved", "usr=ro"}, []string{"still=physical"}},
		{"no otree=", "", []string{"rc=0", "still=physical"}, []string{"deployment=mounted", "sysroot=moved"}},
		{"missing deployment", "5", []string{"rc=1", "error: ", "no such file or directory", "still=physical"}, []string{"deployment=mounted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPrepRootSysroot(t)
			cmdline := "root=x quiet"
			if tc.serial != "" {
				cmdline = "root=x otree=/otree/boot.1/os1/" + s.csum + "/" + tc.serial + " quiet"
			}
			cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", run)
			cmd.Env = append(os.Environ(), "PHYS="+s.phys, "M="+s.mnt, "BIN="+bin, "CMDLINE="+cmdline,
				"CMDFILE="+filepath.Join(t.TempDir(), "cmdline"), "SCRIPT="+script)
			out, err := cmd.CombinedOutput()
			t.Logf("namespace script output:\n%s", out)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(string(out), w) {
					t.Errorf("output has %q", w)
				}
			}
			s.checkHost(t)
		})
	}
}
