package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// writeBootableTree writes a minimal tree with a kernel and defaults.
func writeBootableTree(t *testing.T, dir, kver, motd string) {
	t.Helper()
	files := map[string]string{
		"usr/bin/sh":                                 "#!/bin/true\n",
		"usr/lib/os-release":                         "PRETTY_NAME=\"BLS Test OS\"\n",
		"usr/lib/modules/" + kver + "/vmlinuz":       "kernel " + kver,
		"usr/lib/modules/" + kver + "/initramfs.img": "initramfs " + kver,
		"usr/etc/motd":                               motd,
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// bootctlEntry is what `bootctl list --json=short` prints per entry.
type bootctlEntry struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Version string   `json:"version"`
	Options string   `json:"options"`
	Linux   string   `json:"linux"`
	Initrd  []string `json:"initrd"`
}

// TestBootEntriesParsedByBootctl deploys twice into a sysroot whose boot
// directory is its own filesystem (a tmpfs, as a boot partition would be)
// and has systemd's bootctl parse the entries: both are listed, the new
// deployment first, with the fields otree wrote, and the kernel and
// initramfs they name exist on the boot filesystem.
func TestBootEntriesParsedByBootctl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs in a private mount namespace")
	}
	for _, tool := range []string{"bootctl", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (CI installs systemd-boot and util-linux)", tool)
		}
	}
	bin, env := otreeBinary(t)
	base := t.TempDir()
	sys, t1, t2 := filepath.Join(base, "sysroot"), filepath.Join(base, "t1"), filepath.Join(base, "t2")
	testtree.ClearImmutable(t, sys)
	writeBootableTree(t, t1, "6.1.0-1-amd64", "one\n")
	writeBootableTree(t, t2, "6.1.0-2-amd64", "two\n")
	// An overlay initramfs (a cpio archive in practice; bootctl only
	// checks that the file is there).
	ov := filepath.Join(base, "overlay.cpio")
	if err := os.WriteFile(ov, []byte("070701 overlay"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -e
"$OTREE" admin init-fs "$SYS"
mount -t tmpfs boot "$SYS/boot"
"$OTREE" admin --sysroot="$SYS" os-init blsos
"$OTREE" --repo="$SYS/otree/repo" commit -b blsos/stable "$T1" >/dev/null
"$OTREE" admin --sysroot="$SYS" deploy --karg=root=LABEL=root --karg=rw blsos/stable >/dev/null
"$OTREE" --repo="$SYS/otree/repo" commit -b blsos/stable "$T2" >/dev/null
"$OTREE" admin --sysroot="$SYS" deploy --overlay-initrd="$OV" blsos/stable >/dev/null
echo ==bootctl
SYSTEMD_RELAX_ESP_CHECKS=1 SYSTEMD_RELAX_XBOOTLDR_CHECKS=1 bootctl --esp-path="$SYS/boot" --boot-path="$SYS/boot" list --json=short --no-pager
echo
echo ==files
for f in $(sed -n 's/^\(linux\|initrd\) //p' "$SYS"/boot/loader/entries/*.conf); do
	test -f "$SYS/boot$f" && echo "ok $f"
done
echo ==status
"$OTREE" admin --sysroot="$SYS" status --json
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(env, "OTREE="+bin, "SYS="+sys, "T1="+t1, "T2="+t2, "OV="+ov)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sections := map[string]string{}
	for _, part := range strings.Split(string(out), "==")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		sections[name] = body
	}
	// One JSON object per entry, in the order the boot menu shows them.
	var entries []bootctlEntry
	dec := json.NewDecoder(strings.NewReader(sections["bootctl"]))
	for dec.More() {
		var e bootctlEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("bootctl output: %v\n%s", err, out)
		}
		entries = append(entries, e)
	}
	var status struct {
		Deployments []struct {
			Index          int      `json:"index"`
			BootCsum       string   `json:"bootcsum"`
			Kernel         string   `json:"kernel"`
			OverlayInitrds []string `json:"overlay_initrds"`
		} `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(sections["status"]), &status); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if len(entries) != 2 || len(status.Deployments) != 2 {
		t.Fatalf("bootctl lists %d entries, status %d deployments\n%s", len(entries), len(status.Deployments), out)
	}
	for i, e := range entries {
		d := status.Deployments[i]
		kdir := "/otree/blsos-" + d.BootCsum + "/"
		wantID := []string{"otree-2-blsos.conf", "otree-1-blsos.conf"}[i]
		if e.ID != wantID || e.Version != []string{"2", "1"}[i] ||
			e.Title != "BLS Test OS (otree:blsos:"+[]string{"0", "1"}[i]+")" ||
			e.Linux != kdir+"vmlinuz-"+d.Kernel ||
			len(e.Initrd) != 1+len(d.OverlayInitrds) || e.Initrd[0] != kdir+"initramfs-"+d.Kernel+".img" ||
			!strings.HasPrefix(e.Options, "otree=/otree/boot.") || !strings.HasSuffix(e.Options, " root=LABEL=root rw") {
			t.Errorf("entry %d as bootctl read it: %+v (deployment %+v)", i, e, d)
		}
	}
	if entries[0].Linux == entries[1].Linux {
		t.Error("both entries boot the same kernel")
	}
	// The second deploy's overlay loads after the tree's initramfs.
	ovID := repo.Sum([]byte("070701 overlay")).String()
	if d := status.Deployments; len(d[0].OverlayInitrds) != 1 || d[0].OverlayInitrds[0] != ovID || len(d[1].OverlayInitrds) != 0 {
		t.Errorf("status overlay initrds: %+v", d)
	} else if got := entries[0].Initrd[1]; got != "/otree/initramfs-overlays/"+ovID+".img" {
		t.Errorf("the overlay is loaded from %q", got)
	}
	if n := strings.Count(sections["files"], "ok "); n != 5 {
		t.Errorf("%d of 5 boot files exist:\n%s", n, sections["files"])
	}
}

// commit --bootable refuses a kernel directory exactly when deploy would
// refuse it: a boot file that is a link (OSTree installs what it leads
// to; otree deploys files themselves), and accepts what deploy installs,
// the error naming the file.
func TestBootableAgreesWithDeploy(t *testing.T) {
	k := "usr/lib/modules/6.1.0/"
	for _, c := range []struct {
		name   string
		extra  testtree.Tree // over writeBootableTree's
		refuse string        // "" when both take it
	}{
		{"vmlinuz link", testtree.Tree{k + "vmlinuz-real": testtree.File("kernel", 0o644), k + "vmlinuz": testtree.Symlink("vmlinuz-real")}, k + "vmlinuz"},
		{"initramfs link", testtree.Tree{k + "initrd": testtree.File("initrd", 0o644), k + "initramfs.img": testtree.Symlink("initrd")}, k + "initramfs.img"},
		{"hmac link", testtree.Tree{k + ".vmlinuz.hmac": testtree.Symlink("vmlinuz")}, k + ".vmlinuz.hmac"},
		{"devicetree link", testtree.Tree{k + "devicetree": testtree.Symlink("vmlinuz")}, k + "devicetree"},
		{"dtb link", testtree.Tree{k + "dtb": testtree.Symlink("/boot/dtb")}, k + "dtb"},
		{"dtb/ holds a link", testtree.Tree{k + "dtb/v/b.dtb": testtree.File("dt", 0o644), k + "dtb/v/c.dtb": testtree.Symlink("b.dtb")}, k + "dtb/v/c.dtb"},
		{"second initramfs name a link", testtree.Tree{k + "initramfs": testtree.Symlink("initramfs.img")}, ""},
		{"dtb link beside a devicetree", testtree.Tree{k + "devicetree": testtree.File("dt", 0o644), k + "dtb": testtree.Symlink("/boot/dtb")}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newAdmin(t)
			dir := t.TempDir()
			writeBootableTree(t, dir, "6.1.0", "one\n")
			for p := range c.extra {
				os.Remove(filepath.Join(dir, p))
			}
			testtree.Create(t, dir, c.extra)
			res := a.run("commit", "-b", "cli/bootable", "--bootable", dir)
			if c.refuse == "" {
				if res.code != 0 {
					t.Fatalf("commit --bootable: exit %d, %s", res.code, res.stderr)
				}
			} else if res.code != 1 || !strings.Contains(res.stderr, c.refuse+" is a symlink") {
				t.Errorf("commit --bootable: exit %d %q, want it refused naming %s", res.code, res.stderr, c.refuse)
			}
			a.ok("commit", "-b", "cli/stable", dir)
			res = a.run("admin", "deploy", "cli/stable")
			if c.refuse == "" {
				if res.code != 0 {
					t.Errorf("deploy: exit %d, %s", res.code, res.stderr)
				}
			} else if res.code != 1 || !strings.Contains(res.stderr, c.refuse) {
				t.Errorf("deploy: exit %d %q, want it refused naming %s", res.code, res.stderr, c.refuse)
			}
		})
	}
}
