package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/debroot"
	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
)

// realDeployment is one deployment in `admin status --json` and
// `admin deploy --json`.
type realDeployment struct {
	Index    int    `json:"index"`
	OS       string `json:"os"`
	Commit   string `json:"commit"`
	Serial   int    `json:"serial"`
	Version  string `json:"version"`
	Origin   string `json:"origin"`
	Booted   bool   `json:"booted"`
	Pending  bool   `json:"pending"`
	Rollback bool   `json:"rollback"`
	Pinned   bool   `json:"pinned"`
	Path     string `json:"path"`
	Bootcsum string `json:"bootcsum"`
	Kernel   string `json:"kernel"`
	Options  string `json:"options"`
}

// realEtc is what happened to one /etc path in a merge.
type realEtc struct {
	Path    string `json:"path"`
	Fate    string `json:"fate"`
	Local   string `json:"local"`
	Default string `json:"default"`
	Detail  string `json:"detail"`
}

type realDeploy struct {
	Deployment realDeployment `json:"deployment"`
	Etc        []realEtc      `json:"etc"`
	Switch     string         `json:"switch"`
	Warnings   []string       `json:"warnings"`
}

// realEntry is one Boot Loader Specification entry.
type realEntry struct {
	k                                      int
	title, version, options, linux, initrd string
}

// TestRealDebianTree deploys a debootstrapped Debian system to a sysroot,
// runs its programs in a chroot of the deployment, carries an admin's /etc
// edits across an upgrade, and rolls back, checking the boot entries at
// each step.
func TestRealDebianTree(t *testing.T) {
	if testing.Short() {
		t.Skip("unpacks (and on first use debootstraps) a Debian tree")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: a Debian tree has files of other owners and device nodes, and the test runs chroot")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("debootstrap is not installed (apt-get install debootstrap)")
	}
	ctx := context.Background()
	start := time.Now()
	deb, err := debroot.Get(ctx)
	if errors.Is(err, debroot.ErrUnreachable) {
		t.Skipf("no Debian tree: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Debian tree ready in %v", time.Since(start))

	// tree1: the Debian tree as an otree OS: /etc shipped as /usr/etc and
	// the kernel in /usr/lib/modules. Device nodes stay: a bare repository
	// stores them.
	tmp := t.TempDir()
	tree1 := filepath.Join(tmp, "tree1")
	realMust(t, os.Mkdir(tree1, 0o755))
	realMust(t, deb.Extract(ctx, tree1))
	realMust(t, os.Rename(filepath.Join(tree1, "etc"), filepath.Join(tree1, "usr/etc")))
	kver := deb.KernelVersion
	var kernel []byte
	switch {
	case deb.KernelErr == nil:
		kernel, err = os.ReadFile(deb.Kernel)
		realMust(t, err)
	case errors.Is(deb.KernelErr, debroot.ErrNoKernel):
		// Deploy only copies the kernel, so a stand-in checks as much of
		// otree; debroot's TestGet skips, saying why there is no kernel.
		kver = "6.1.0-0-amd64"
		kernel = []byte("stand-in vmlinuz\n")
		t.Logf("no Debian kernel (%v): deploying a stand-in vmlinuz", deb.KernelErr)
	default:
		t.Fatal(deb.KernelErr)
	}
	// A real initramfs needs initramfs-tools run inside the tree, which is
	// out of scope: deploy only copies the file to /boot.
	initramfs := []byte("stand-in initramfs\n")
	mods := filepath.Join(tree1, "usr/lib/modules", kver)
	realMust(t, os.MkdirAll(mods, 0o755))
	realMust(t, os.WriteFile(filepath.Join(mods, "vmlinuz"), kernel, 0o644))
	realMust(t, os.WriteFile(filepath.Join(mods, "initramfs.img"), initramfs, 0o644))
	debVersion, err := os.ReadFile(filepath.Join(tree1, "usr/etc/debian_version"))
	realMust(t, err)

	// Deploy it.
	sys := filepath.Join(tmp, "sysroot")
	testtree.ClearImmutable(t, sys)
	admin := func(args ...string) string {
		t.Helper()
		return realOK(t, append([]string{"admin", "--sysroot=" + sys}, args...)...)
	}
	repoFlag := "--repo=" + filepath.Join(sys, "otree/repo")
	realOK(t, "admin", "init-fs", sys)
	admin("os-init", "debian")
	if fi, err := os.Stat(filepath.Join(sys, "otree/deploy/debian/var")); err != nil || !fi.IsDir() {
		t.Fatalf("os-init made no stateroot var: %v", err)
	}
	start = time.Now()
	id1 := realCommitID(t, realOK(t, repoFlag, "commit", "-b", "debian/x", "-s", "Debian 1", tree1))
	t.Logf("committed tree1 in %v", time.Since(start))
	start = time.Now()
	var d1 realDeploy
	realJSON(t, admin("deploy", "--os=debian", "--karg=root=LABEL=root", "debian/x", "--json"), &d1)
	t.Logf("deployed tree1 in %v", time.Since(start))
	if d1.Switch != "full" || len(d1.Etc) != 0 {
		t.Errorf("first deploy: switch %q, etc %+v; want full and no /etc records", d1.Switch, d1.Etc)
	}
	// debootstrap's tree keeps /home and /root as directories, which a
	// deployment would keep to itself: the deploy says so.
	if w := strings.Join(d1.Warnings, "\n"); !strings.Contains(w, "/home is a directory") || !strings.Contains(w, "/root is a directory") {
		t.Errorf("first deploy of a Debian tree: warnings %q, want /home and /root named", d1.Warnings)
	}
	st := realStatus(t, admin)
	if len(st) != 1 {
		t.Fatalf("status after the first deploy: %+v", st)
	}
	dep1 := st[0]
	realCheckDeployment(t, dep1, realDeployment{
		Index: 0, OS: "debian", Commit: id1, Origin: "debian/x", Kernel: kver, Options: "root=LABEL=root",
		Path: filepath.Join(sys, "otree/deploy/debian/deploy", id1+".0"),
	})
	if d := cmp.Diff(dep1, d1.Deployment); d != "" {
		t.Errorf("deploy --json deployment differs from status (-status +deploy):\n%s", d)
	}

	// The deployment's /etc is its /usr/etc, owners, modes and xattrs
	// included (/etc/shadow is root:shadow 0640, /etc/alternatives holds
	// symlinks), and programs of the tree run from it.
	full := testtree.ReadOptions{Owners: true, Xattrs: true}
	if d := cmp.Diff(testtree.Read(t, filepath.Join(dep1.Path, "usr/etc"), full), testtree.Read(t, filepath.Join(dep1.Path, "etc"), full)); d != "" {
		t.Errorf("first deployment's /etc (-usr/etc +etc):\n%s", d)
	}
	script := `cat /etc/debian_version && . /etc/os-release && echo "$ID" && ls /usr/lib/modules`
	want := string(debVersion) + "debian\n" + kver + "\n"
	if got := realChroot(t, dep1.Path, script); got != want {
		t.Errorf("chroot %s: got %q, want %q", dep1.Path, got, want)
	}

	// The admin edits /etc in place, as an editor or `echo >` would: a
	// new motd and hostname, a password (shadow is root:shadow 0640), a new
	// file, and a file removed.
	shadow, err := os.ReadFile(filepath.Join(dep1.Path, "etc/shadow"))
	realMust(t, err)
	shadow = bytes.Replace(shadow, []byte("root:*:"), []byte("root:$y$j9T$admin:"), 1)
	realMust(t, os.WriteFile(filepath.Join(dep1.Path, "etc/motd"), []byte("admin motd\n"), 0o644))
	realMust(t, os.WriteFile(filepath.Join(dep1.Path, "etc/hostname"), []byte("admin-host\n"), 0o644))
	realMust(t, os.WriteFile(filepath.Join(dep1.Path, "etc/shadow"), shadow, 0o640))
	realMust(t, os.WriteFile(filepath.Join(dep1.Path, "etc/local.conf"), []byte("local=1\n"), 0o644))
	realMust(t, os.Remove(filepath.Join(dep1.Path, "etc/issue.net")))
	adminEtc := testtree.Read(t, filepath.Join(dep1.Path, "etc"), full)
	var cd struct {
		Etc []realEtc `json:"etc"`
	}
	realJSON(t, admin("config-diff", "--json"), &cd)
	gotLocal := map[string]string{}
	for _, r := range cd.Etc {
		gotLocal[r.Path] = r.Local
	}
	if d := cmp.Diff(map[string]string{"/etc/motd": "M", "/etc/hostname": "M", "/etc/shadow": "M", "/etc/local.conf": "A", "/etc/issue.net": "D"}, gotLocal); d != "" {
		t.Errorf("config-diff local changes (-want +got):\n%s", d)
	}

	// tree2 changes defaults, one of them the hostname the admin changed
	// too; the upgrade keeps the admin's changes and takes the new
	// defaults.
	tree2 := filepath.Join(tmp, "tree2")
	// A hardlink copy spares copying 130 MB; the changed files are
	// replaced, not written through the links into tree1.
	realCmd(t, "cp", "-al", tree1, tree2)
	issue := "Debian GNU/Linux 12 (otree test) \\n \\l\n\n"
	for name, content := range map[string]string{"issue": issue, "hostname": "otree-default\n", "new-default.conf": "default=1\n"} {
		p := filepath.Join(tree2, "usr/etc", name)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		realMust(t, os.WriteFile(p, []byte(content), 0o644))
	}
	id2 := realCommitID(t, realOK(t, repoFlag, "commit", "-b", "debian/x", "-s", "Debian 2", tree2))
	start = time.Now()
	var d2 realDeploy
	realJSON(t, admin("deploy", "--os=debian", "--karg=root=LABEL=root", "debian/x", "--json"), &d2)
	t.Logf("deployed tree2 in %v", time.Since(start))
	for i := range d2.Etc {
		t.Logf("etc: %+v", d2.Etc[i])
		d2.Etc[i].Detail = ""
	}
	slices.SortFunc(d2.Etc, func(a, b realEtc) int { return strings.Compare(a.Path, b.Path) })
	wantRecs := []realEtc{
		{Path: "/etc/hostname", Fate: "both", Local: "M", Default: "M"},
		{Path: "/etc/issue", Fate: "default", Default: "M"},
		{Path: "/etc/issue.net", Fate: "local", Local: "D"},
		{Path: "/etc/local.conf", Fate: "local", Local: "A"},
		{Path: "/etc/motd", Fate: "local", Local: "M"},
		{Path: "/etc/new-default.conf", Fate: "default", Default: "A"},
		{Path: "/etc/shadow", Fate: "local", Local: "M"},
	}
	if d := cmp.Diff(wantRecs, d2.Etc); d != "" {
		t.Errorf("upgrade /etc records (-want +got):\n%s", d)
	}
	if d2.Switch != "full" {
		t.Errorf("upgrade switch %q, want full", d2.Switch)
	}
	st = realStatus(t, admin)
	if len(st) != 2 {
		t.Fatalf("status after the upgrade: %+v", st)
	}
	dep2 := st[0]
	realCheckDeployment(t, dep2, realDeployment{
		Index: 0, OS: "debian", Commit: id2, Origin: "debian/x", Kernel: kver, Options: "root=LABEL=root",
		Path: filepath.Join(sys, "otree/deploy/debian/deploy", id2+".0"),
	})
	// Not booted, rollback marks the deployment `admin rollback` would
	// promote. The kernel is the same, and so is the bootcsum.
	realCheckDeployment(t, st[1], realDeployment{
		Index: 1, OS: "debian", Commit: id1, Origin: "debian/x", Kernel: kver, Options: "root=LABEL=root",
		Path: dep1.Path, Bootcsum: dep2.Bootcsum, Rollback: true,
	})
	if d := cmp.Diff(dep2, d2.Deployment); d != "" {
		t.Errorf("deploy --json deployment differs from status (-status +deploy):\n%s", d)
	}
	// The new /etc is the new /usr/etc (which has the new defaults) with
	// the admin's changes.
	if b, err := os.ReadFile(filepath.Join(dep2.Path, "usr/etc/issue")); err != nil || string(b) != issue {
		t.Errorf("new deployment's /usr/etc/issue = %q, %v; want %q", b, err, issue)
	}
	wantNew := testtree.Read(t, filepath.Join(dep2.Path, "usr/etc"), full)
	for _, name := range []string{"motd", "hostname", "shadow", "local.conf"} {
		wantNew[name] = adminEtc[name]
	}
	delete(wantNew, "issue.net")
	if d := cmp.Diff(wantNew, testtree.Read(t, filepath.Join(dep2.Path, "etc"), full)); d != "" {
		t.Errorf("new deployment's /etc (-want +got):\n%s", d)
	}

	// The default boot entry boots the new deployment with its kernel;
	// the two deployments share the kernel, so the old one is n=1.
	entries := realEntries(t, sys, 2)
	realCheckEntry(t, sys, entries[0], dep2, 0, kver, kernel, initramfs)
	realCheckEntry(t, sys, entries[1], st[1], 1, kver, kernel, initramfs)

	// Rollback makes the first deployment the default again, and it still
	// runs. Both share a kernel, so only the links behind otree= change.
	var rb struct {
		Switch string `json:"switch"`
	}
	realJSON(t, admin("rollback", "--json"), &rb)
	if rb.Switch != "sub" {
		t.Errorf("rollback switch %q, want sub", rb.Switch)
	}
	st = realStatus(t, admin)
	if len(st) != 2 || st[0].Commit != id1 || st[0].Path != dep1.Path || st[1].Commit != id2 || st[1].Path != dep2.Path {
		t.Fatalf("status after rollback: %+v", st)
	}
	after := realEntries(t, sys, 2)
	if d := cmp.Diff(entries, after, cmp.AllowUnexported(realEntry{})); d != "" {
		t.Errorf("a sub switch changed the entries (-before +after):\n%s", d)
	}
	realCheckEntry(t, sys, after[0], st[0], 0, kver, kernel, initramfs)
	realCheckEntry(t, sys, after[1], st[1], 1, kver, kernel, initramfs)
	if got := realChroot(t, st[0].Path, script); got != want {
		t.Errorf("chroot %s after rollback: got %q, want %q", st[0].Path, got, want)
	}
	// A second rollback restores the upgrade.
	admin("rollback")
	st = realStatus(t, admin)
	if len(st) != 2 || st[0].Commit != id2 || st[1].Commit != id1 {
		t.Fatalf("status after the second rollback: %+v", st)
	}
	realCheckEntry(t, sys, realEntries(t, sys, 2)[0], st[0], 0, kver, kernel, initramfs)

	// Editing /etc in place changed no object of the repository.
	realOK(t, repoFlag, "fsck")
}

// realCheckDeployment compares d with want, whose Bootcsum, when empty,
// may be any hex string.
func realCheckDeployment(t *testing.T, d, want realDeployment) {
	t.Helper()
	if !regexp.MustCompile(`^[0-9a-f]{16,}$`).MatchString(d.Bootcsum) {
		t.Errorf("deployment %d: bootcsum %q is not hex", d.Index, d.Bootcsum)
	}
	if want.Bootcsum == "" {
		want.Bootcsum = d.Bootcsum
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("deployment %d (-want +got):\n%s", d.Index, diff)
	}
}

// realEntries reads the boot entries of sys, highest k (the default)
// first, and requires n of them.
func realEntries(t *testing.T, sys string, n int) []realEntry {
	t.Helper()
	dir := filepath.Join(sys, "boot/loader/entries")
	des, err := os.ReadDir(dir)
	realMust(t, err)
	name := regexp.MustCompile(`^otree-([0-9]+)-debian\.conf$`)
	var es []realEntry
	for _, de := range des {
		m := name.FindStringSubmatch(de.Name())
		if m == nil {
			t.Errorf("unexpected file in %s: %s", dir, de.Name())
			continue
		}
		e := realEntry{}
		e.k, _ = strconv.Atoi(m[1])
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		realMust(t, err)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			key, val, _ := strings.Cut(line, " ")
			val = strings.TrimSpace(val)
			switch key {
			case "title":
				e.title = val
			case "version":
				e.version = val
			case "options":
				e.options = val
			case "linux":
				e.linux = val
			case "initrd":
				e.initrd = val
			}
		}
		es = append(es, e)
	}
	if len(es) != n {
		t.Fatalf("%s has %d entries, want %d", dir, len(es), n)
	}
	slices.SortFunc(es, func(a, b realEntry) int { return b.k - a.k })
	return es
}

// realCheckEntry checks that e boots deployment d, the n-th with its
// kernel: its otree= argument resolves to d's directory and its kernel and
// initramfs are d's.
func realCheckEntry(t *testing.T, sys string, e realEntry, d realDeployment, n int, kver string, kernel, initramfs []byte) {
	t.Helper()
	if e.title == "" || e.version != strconv.Itoa(e.k) {
		t.Errorf("entry %d: title %q, version %q; want a title and version %d", e.k, e.title, e.version, e.k)
	}
	loader, err := os.Readlink(filepath.Join(sys, "boot/loader"))
	realMust(t, err)
	bv, ok := strings.CutPrefix(loader, "loader.")
	if !ok {
		t.Fatalf("boot/loader -> %s, want loader.<B>", loader)
	}
	arg := fmt.Sprintf("/otree/boot.%s/%s/%s/%d", bv, d.OS, d.Bootcsum, n)
	if want := strings.TrimSpace("otree=" + arg + " " + d.Options); e.options != want {
		t.Errorf("entry %d: options %q, want %q (deployment %d)", e.k, e.options, want, d.Index)
	}
	if got, err := filepath.EvalSymlinks(filepath.Join(sys, arg)); err != nil {
		t.Errorf("entry %d: otree=%s: %v", e.k, arg, err)
	} else if want, _ := filepath.EvalSymlinks(d.Path); got != want {
		t.Errorf("entry %d: otree=%s resolves to %s, want deployment %d at %s", e.k, arg, got, d.Index, want)
	}
	// Entries name files from the root of the filesystem boot/ is on: the
	// sysroot's, unless boot/ is a filesystem of its own.
	root, prefix := filepath.Join(sys, "boot"), ""
	var a, b unix.Stat_t
	realMust(t, unix.Stat(sys, &a))
	realMust(t, unix.Stat(root, &b))
	if a.Dev == b.Dev {
		root, prefix = sys, "/boot"
	}
	dir := prefix + "/otree/" + d.OS + "-" + d.Bootcsum + "/"
	for _, f := range []struct {
		path, want string
		content    []byte
	}{{e.linux, dir + "vmlinuz-" + kver, kernel}, {e.initrd, dir + "initramfs-" + kver + ".img", initramfs}} {
		if f.path != f.want {
			t.Errorf("entry %d: %q, want %q", e.k, f.path, f.want)
			continue
		}
		if b, err := os.ReadFile(filepath.Join(root, f.path)); err != nil || !bytes.Equal(b, f.content) {
			t.Errorf("entry %d: %s is not the deployed file (%d bytes, %v; want %d bytes)", e.k, f.path, len(b), err, len(f.content))
		}
	}
}

func realStatus(t *testing.T, admin func(...string) string) []realDeployment {
	t.Helper()
	var st struct {
		Deployments []realDeployment `json:"deployments"`
	}
	realJSON(t, admin("status", "--json"), &st)
	return st.Deployments
}

// realChroot runs a shell script in dir with a clean environment and
// returns its output.
func realChroot(t *testing.T, dir, script string) string {
	t.Helper()
	c := exec.Command("chroot", dir, "/usr/bin/env", "-i", "LC_ALL=C", "PATH=/usr/bin:/bin", "/bin/sh", "-c", script)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("chroot %s: %v: %s", dir, err, stderr.Bytes())
	}
	return string(out)
}

func realCmd(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// realOK runs otree in-process and returns its standard output.
func realOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("otree %s: exit %d, stderr %q", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

func realCommitID(t *testing.T, out string) string {
	t.Helper()
	id := strings.TrimSpace(out)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("commit printed %q, want a commit id", out)
	}
	return id
}

func realJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
}

func realMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
