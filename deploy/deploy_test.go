package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"golang.org/x/sys/unix"
)

// osTree is a small bootable tree: a kernel, an initramfs, defaults in
// usr/etc and a name in os-release. Tests change it with overrides.
func osTree(kernel string, over testtree.Tree) testtree.Tree {
	t := testtree.Tree{
		"usr/bin/sh":                                   testtree.File("#!shell\n", 0o755),
		"usr/lib/os-release":                           testtree.File("NAME=Test\nPRETTY_NAME=\"Test OS 1\"\n", 0o644),
		"usr/lib/modules/" + kernel + "/vmlinuz":       testtree.File("kernel "+kernel, 0o644),
		"usr/lib/modules/" + kernel + "/initramfs.img": testtree.File("initramfs "+kernel, 0o644),
		"usr/etc/hostname":                             testtree.File("default-host\n", 0o644),
		"usr/etc/motd":                                 testtree.File("welcome\n", 0o644),
		"usr/etc/ssh/sshd_config":                      testtree.File("PermitRootLogin no\n", 0o600),
		"var":                                          testtree.Dir(0o755),
	}
	for k, v := range over {
		if v.Mode == 0 && v.Content == "" && v.Target == "" && v.Link == "" {
			delete(t, k)
			continue
		}
		t[k] = v
	}
	return t
}

// gone marks a path to delete from osTree.
var gone = testtree.Entry{}

type fixture struct {
	t    *testing.T
	path string
	s    *Sysroot
	n    int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("deployments need root: the system repository is bare")
	}
	p := t.TempDir()
	testtree.ClearImmutable(t, p)
	if err := InitFS(p); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.OSInit(context.Background(), "testos"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &fixture{t: t, path: p, s: s}
}

// commit commits tree to branch with a timestamp that grows per call.
func (f *fixture) commit(branch string, tree testtree.Tree) repo.ID {
	f.t.Helper()
	dir := f.t.TempDir()
	testtree.Create(f.t, dir, tree)
	f.n++
	res, err := commit.Commit(context.Background(), f.s.Repo(), commit.Options{
		Branch: branch, Subject: "test", Timestamp: time.Unix(int64(1700000000+f.n), 0),
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: dir}},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return res.Commit
}

func (f *fixture) deploy(rev string, opts DeployOptions) *DeployResult {
	f.t.Helper()
	res, err := f.s.Deploy(context.Background(), rev, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// deployRefused commits tree and checks that deploying it fails with an
// error naming the commit and holding want, and leaves the deployments in
// the order before.
func (f *fixture) deployRefused(name string, tree testtree.Tree, want string, before []repo.ID) {
	f.t.Helper()
	id := f.commit(strings.ReplaceAll(name, " ", "-"), tree)
	_, err := f.s.Deploy(context.Background(), id.String(), DeployOptions{})
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), id.String()) {
		f.t.Errorf("%s: err = %v, want %q naming the commit", name, err, want)
	}
	if diff := cmp.Diff(before, f.order()); diff != "" {
		f.t.Errorf("%s: %s", name, diff)
	}
}

// twoDeployments commits and deploys a bootable tree, a, then the same
// with a file more, b: b is the default and a the rollback.
func (f *fixture) twoDeployments() (a, b repo.ID) {
	f.t.Helper()
	a = f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	b = f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	f.deploy("os", DeployOptions{})
	return a, b
}

// order lists the commits of the deployments in boot order.
func (f *fixture) order() []repo.ID {
	var ids []repo.ID
	for _, d := range f.s.Deployments() {
		ids = append(ids, d.Commit)
	}
	return ids
}

// deploymentNames lists s's deployments in boot order as stateroot.serial.
func deploymentNames(s *Sysroot) []string {
	var names []string
	for _, d := range s.Deployments() {
		names = append(names, fmt.Sprintf("%s.%d", d.OS, d.Serial))
	}
	return names
}

// reopen opens the sysroot again, as another process would, until the
// test ends.
func (f *fixture) reopen() *Sysroot {
	f.t.Helper()
	s, err := Open(f.path, OpenOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

// entries reads the boot entries of the current boot version.
func (f *fixture) entries() []*bootEntry {
	f.t.Helper()
	entries, err := readEntries(filepath.Join(f.path, "boot/loader/entries"))
	if err != nil {
		f.t.Fatal(err)
	}
	return entries
}

// bootedAs opens the sysroot as the system booted from entry i would see
// it.
func bootedAs(t *testing.T, f *fixture, i int) *Sysroot {
	t.Helper()
	entries, err := readEntries(filepath.Join(f.path, "boot", "loader", "entries"))
	if err != nil || len(entries) <= i {
		t.Fatalf("entries: %v (%d)", err, len(entries))
	}
	cmdline := "BOOT_IMAGE=x " + entries[i].options
	s, err := Open(f.path, OpenOptions{Cmdline: &cmdline})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// defaultTarget resolves the default boot entry's otree= argument through
// the links, as prepare-root would.
func (f *fixture) defaultTarget() string {
	f.t.Helper()
	entries, err := readEntries(filepath.Join(f.path, "boot", "loader", "entries"))
	if err != nil || len(entries) == 0 {
		f.t.Fatalf("reading entries: %v (%d)", err, len(entries))
	}
	v, _ := BootArgFromCmdline(entries[0].options)
	a, err := ParseBootArg(v)
	if err != nil {
		f.t.Fatal(err)
	}
	dir, err := ResolveBootArg(f.path, a)
	if err != nil {
		f.t.Fatal(err)
	}
	return dir
}

func TestDeployLayout(t *testing.T) {
	f := newFixture(t)
	id := f.commit("testos/stable", osTree("6.1.0-1", nil))
	res := f.deploy("testos/stable", DeployOptions{Kargs: []string{"root=LABEL=root", "quiet"}})
	d := res.Deployment
	want := filepath.Join(f.path, "otree/deploy/testos/deploy", id.String()+".0")
	if d.Path != want || d.Index != 0 || d.Commit != id || d.Origin != "testos/stable" || d.Kernel != "6.1.0-1" {
		t.Fatalf("deployment = %+v", d)
	}
	if res.Switch != SwitchFull {
		t.Errorf("switch = %s", res.Switch)
	}
	// The checkout shares inodes with the repository's objects.
	var a, b unix.Stat_t
	unix.Stat(filepath.Join(d.Path, "usr/bin/sh"), &a)
	e, err := f.s.Repo().Lookup(id, "/usr/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	unix.Stat(f.s.Repo().ObjectPath(repo.KindFile, e.ID), &b)
	if a.Ino != b.Ino {
		t.Error("usr/bin/sh is not a hardlink of its object")
	}
	// /etc is a copy of the defaults, not a hardlink.
	got, _ := os.ReadFile(filepath.Join(d.Path, "etc/hostname"))
	if string(got) != "default-host\n" {
		t.Errorf("etc/hostname = %q", got)
	}
	unix.Stat(filepath.Join(d.Path, "etc/hostname"), &a)
	unix.Stat(filepath.Join(d.Path, "usr/etc/hostname"), &b)
	if a.Ino == b.Ino {
		t.Error("etc/hostname shares the default's inode")
	}
	for _, p := range []string{"var", "sysroot"} {
		if fi, err := os.Stat(filepath.Join(d.Path, p)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", p, err)
		}
	}
	if l, _ := os.Readlink(filepath.Join(d.Path, "otree")); l != "sysroot/otree" {
		t.Errorf("otree link = %q", l)
	}
	origin, _ := os.ReadFile(d.Path + ".origin")
	if string(origin) != "[origin]\nrefspec=testos/stable\n" {
		t.Errorf("origin = %q", origin)
	}
	// Boot entry, kernel and links.
	if l, _ := os.Readlink(filepath.Join(f.path, "boot/loader")); l != "loader.1" {
		t.Errorf("boot/loader -> %q", l)
	}
	entry, err := os.ReadFile(filepath.Join(f.path, "boot/loader/entries/otree-1-testos.conf"))
	if err != nil {
		t.Fatal(err)
	}
	kdir := "/boot/otree/testos-" + d.BootCsum
	wantEntry := "title Test OS 1 (otree:testos:0)\nversion 1\noptions otree=/otree/boot.1/testos/" + d.BootCsum + "/0 root=LABEL=root quiet\n" +
		"linux " + kdir + "/vmlinuz-6.1.0-1\ninitrd " + kdir + "/initramfs-6.1.0-1.img\n"
	if diff := cmp.Diff(wantEntry, string(entry)); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
	k, _ := os.ReadFile(filepath.Join(f.path, kdir, "vmlinuz-6.1.0-1"))
	ird, _ := os.ReadFile(filepath.Join(f.path, kdir, "initramfs-6.1.0-1.img"))
	if string(k) != "kernel 6.1.0-1" || string(ird) != "initramfs 6.1.0-1" {
		t.Errorf("kernel %q initramfs %q", k, ird)
	}
	if got := f.defaultTarget(); got != d.Path {
		t.Errorf("otree= resolves to %s, want %s", got, d.Path)
	}
	// On the repository's filesystem, the kernel is a hardlink of its
	// object, as OSTree makes it, not a second copy.
	kobj, err := f.s.Repo().Lookup(id, "/usr/lib/modules/6.1.0-1/vmlinuz")
	if err != nil {
		t.Fatal(err)
	}
	unix.Stat(filepath.Join(f.path, kdir, "vmlinuz-6.1.0-1"), &a)
	unix.Stat(f.s.Repo().ObjectPath(repo.KindFile, kobj.ID), &b)
	if a.Ino != b.Ino {
		t.Error("the kernel in /boot is a copy, not a hardlink of its object")
	}
	if ref, err := f.s.Repo().ReadRef("otree/testos/" + d.Name()); err != nil || ref != id {
		t.Errorf("deployment ref: %v %v", ref, err)
	}
	// A fresh Open reads the same list back.
	s2 := f.reopen()
	if diff := cmp.Diff(f.s.Deployments(), s2.Deployments(), cmp.AllowUnexported(Deployment{})); diff != "" {
		t.Errorf("reopened (-want +got):\n%s", diff)
	}
}

func TestDeployRefusesTreeWithoutKernel(t *testing.T) {
	f := newFixture(t)
	f.commit("a", osTree("6.1.0-1", nil))
	f.deploy("a", DeployOptions{})
	before := f.order()
	tree := osTree("6.1.0-1", testtree.Tree{"usr/lib/modules/6.1.0-1/vmlinuz": gone})
	id := f.commit("nokernel", tree)
	_, err := f.s.Deploy(context.Background(), "nokernel", DeployOptions{})
	var nk *NoKernelError
	if !errors.As(err, &nk) || nk.Commit != id || !strings.Contains(err.Error(), id.String()) {
		t.Fatalf("err = %v", err)
	}
	if diff := cmp.Diff(before, f.order()); diff != "" {
		t.Error(diff)
	}
	if _, err := os.Stat(f.s.deploymentDir("testos", id, 0)); err == nil {
		t.Error("a deployment directory was created")
	}
}

// A commit deleted since it was named (a prune in another process), or one
// whose kernel's directory is missing its dirtree, is not a tree without a
// kernel: the deploy fails naming the missing object, and changes nothing.
func TestDeployMissingCommitIsNotNoKernel(t *testing.T) {
	f := newFixture(t)
	f.commit("a", osTree("6.1.0-1", nil))
	f.deploy("a", DeployOptions{})
	before := f.order()
	r := f.s.repo
	check := func(what string, commit repo.ID, kind repo.Kind, id repo.ID) {
		t.Helper()
		_, err := f.s.Deploy(context.Background(), commit.String(), DeployOptions{})
		var missing *repo.ObjectMissingError
		if !errors.As(err, &missing) || missing.Kind != kind || missing.ID != id || errors.As(err, new(*NoKernelError)) {
			t.Errorf("deploying %s: %v; want %s object %s missing", what, err, kind, id)
		}
		if diff := cmp.Diff(before, f.order()); diff != "" {
			t.Error(diff)
		}
	}
	b := f.commit("b", osTree("6.1.0-2", nil))
	e, err := r.Lookup(b, "/usr/lib/modules/6.1.0-2")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.ObjectPath(repo.KindDirTree, e.ID)); err != nil {
		t.Fatal(err)
	}
	check("a commit missing its usr/lib/modules/6.1.0-2", b, repo.KindDirTree, e.ID)
	if err := os.Remove(r.ObjectPath(repo.KindCommit, b)); err != nil {
		t.Fatal(err)
	}
	check("a pruned commit", b, repo.KindCommit, b)
}

// A path without a sysroot, a stateroot that does not exist, and no
// stateroot where nothing decides one are errors callers can tell apart,
// each naming what it concerns.
func TestStaterootErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := Open(empty, OpenOptions{}); !errors.Is(err, ErrNotSysroot) || !strings.Contains(err.Error(), empty) {
		t.Errorf("Open of an empty directory: %v", err)
	}
	f := newFixture(t)
	f.commit("a", osTree("6.1.0-1", nil))
	ctx := context.Background()
	var ns *NoStaterootError
	if _, err := f.s.Deploy(ctx, "a", DeployOptions{OS: "nosuch"}); !errors.As(err, &ns) || ns.OS != "nosuch" || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("deploy to a missing stateroot: %v", err)
	}
	if err := f.s.OSInit(context.Background(), "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Deploy(ctx, "a", DeployOptions{}); !errors.Is(err, ErrStaterootNeeded) || !strings.Contains(err.Error(), "2 stateroots") {
		t.Errorf("deploy with two stateroots and none given: %v", err)
	}
	// Nothing booted: the default deployment's stateroot is no answer
	// either, as in OSTree. A deploy or upgrade there would merge its
	// /etc into another system's commit and drop its rollback.
	f.deploy("a", DeployOptions{OS: "second"})
	f.deploy("a", DeployOptions{OS: "testos"})
	before := f.order()
	if _, err := f.s.Deploy(ctx, "a", DeployOptions{}); !errors.Is(err, ErrStaterootNeeded) || !strings.Contains(err.Error(), "second, testos") {
		t.Errorf("deploy with two deployed stateroots and none given: %v", err)
	}
	if _, err := f.s.Upgrade(ctx, UpgradeOptions{}); !errors.Is(err, ErrStaterootNeeded) {
		t.Errorf("upgrade with two deployed stateroots and none given: %v", err)
	}
	if diff := cmp.Diff(before, f.order()); diff != "" {
		t.Errorf("refused deploys changed the deployments: %s", diff)
	}
}

// os-init refuses a stateroot name no deploy could use (each deployment
// holds the ref otree/<os>/<id>.<serial>), naming it, and makes nothing;
// among them the names that would break the otree= kernel argument:
// whitespace, the 0xA0 the kernel splits at too ("你" is e4 bd a0), a quote.
func TestOSInitRefusesUnusableNames(t *testing.T) {
	f := newFixture(t)
	f.commit("a", osTree("6.1.0-1", nil))
	for _, name := range []string{"", "a b", "a\vb", `q"b`, "你", "é", "a:b", ".x", "-x", "x/y", "..", "ctl\x01", strings.Repeat("n", 191)} {
		err := f.s.OSInit(context.Background(), name)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
			t.Errorf("os-init %q: %v, want an error naming it", name, err)
		}
		if name != "" && name != ".." {
			if _, err := os.Lstat(filepath.Join(f.path, "otree/deploy", name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("os-init %q made its directory: %v", name, err)
			}
		}
		if _, err := f.s.Deploy(context.Background(), "a", DeployOptions{OS: name}); name != "" && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", name))) {
			t.Errorf("deploy --os=%q: %v, want an error naming it", name, err)
		}
	}
	// The longest leaves room for the kernel's directory, <os>-<bootcsum>.
	for _, name := range []string{"Fedora_2.0-x", "_x", strings.Repeat("n", 190)} {
		if err := f.s.OSInit(context.Background(), name); err != nil {
			t.Fatalf("os-init %q: %v", name, err)
		}
		if d := f.deploy("a", DeployOptions{OS: name}).Deployment; d.OS != name {
			t.Errorf("deployed to %q, want %q", d.OS, name)
		}
	}
}

// A stateroot whose var (or deploy/, or itself) is a symlink is refused by
// os-init, naming it, before anything is made where the link points, and
// no deployment is made in it: prepare-root would refuse to boot it.
func TestOSInitRefusesLinkedVar(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	for _, rel := range []string{"other/var", "other/deploy", "other"} {
		outside := t.TempDir()
		root := filepath.Join(f.path, "otree", "deploy", "other")
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(f.path, "otree", "deploy", rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(f.path, "otree", "deploy", rel)
		if err := os.Symlink(outside, p); err != nil {
			t.Fatal(err)
		}
		if err := f.s.OSInit(context.Background(), "other"); err == nil || !strings.Contains(err.Error(), p+" is not a directory") {
			t.Errorf("os-init with %s a link: %v", rel, err)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Errorf("os-init with %s a link made %v where it points", rel, ents)
		}
		if rel == "other/var" {
			if err := os.MkdirAll(filepath.Join(root, "deploy"), 0o755); err != nil {
				t.Fatal(err)
			}
			if _, err := f.s.Deploy(context.Background(), "os", DeployOptions{OS: "other"}); err == nil || !strings.Contains(err.Error(), p+" is not a directory") {
				t.Errorf("deploy with %s a link: %v", rel, err)
			}
		}
	}
}

// A stateroot whose var is a dangling link is refused as a link, naming
// it, not reported as missing its var with a hint to complete it by
// os-init, which refuses the link in turn.
func TestDeployStaterootVarDanglingLink(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	v := filepath.Join(f.path, "otree", "deploy", "other", "var")
	if err := os.MkdirAll(filepath.Join(f.path, "otree", "deploy", "other", "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(t.TempDir(), "gone"), v); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.Deploy(context.Background(), "os", DeployOptions{OS: "other"})
	if err == nil || !strings.Contains(err.Error(), v+" is not a directory") || errors.As(err, new(*NoStaterootError)) {
		t.Errorf("deploy into a stateroot whose var is a dangling link: %v, want it refused as a link, naming it", err)
	}
}

// os-init of an existing stateroot keeps what is there: a /var/tmp whose
// mode the admin changed keeps it, and one replaced by a symlink does not
// make its target world-writable.
func TestOSInitKeepsExisting(t *testing.T) {
	f := newFixture(t)
	tmp := filepath.Join(f.path, "otree/deploy/testos/var/tmp")
	if err := os.Chmod(tmp, 0o770|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := f.s.OSInit(context.Background(), "testos"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(tmp); err != nil || fi.Mode() != 0o770|os.ModeDir|os.ModeSticky {
		t.Fatalf("os-init again changed /var/tmp: %v, %v", fi.Mode(), err)
	}
	target := t.TempDir()
	if err := os.Chmod(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := f.s.OSInit(context.Background(), "testos"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o700 || fi.Mode()&os.ModeSticky != 0 {
		t.Fatalf("os-init chmodded the target of a symlink at /var/tmp: %v, %v", fi.Mode(), err)
	}
}

// Every switch points the refs of the deployments it lists at their
// commits: a deployment's ref deleted by hand is back after the next
// switch, before a prune could take the deployment's objects.
func TestSwitchRestoresDeploymentRefs(t *testing.T) {
	f := newFixture(t)
	f.twoDeployments()
	old := f.s.Deployments()[1]
	if err := f.s.Repo().SetRef(deployRef(old), repo.ID{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.Repo().ReadRef(deployRef(old)); err != nil || got != old.Commit {
		t.Errorf("ref %s after the rollback = %s, %v; want %s", deployRef(old), got, err, old.Commit)
	}
}

func TestRollbackTwiceRestoresOrder(t *testing.T) {
	f := newFixture(t)
	a, b := f.twoDeployments()
	if diff := cmp.Diff([]repo.ID{b, a}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	first := f.defaultTarget()
	// Same kernel, same arguments and title: only the links change.
	sw, err := f.s.Rollback(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sw != SwitchSub {
		t.Errorf("rollback used a %s switch", sw)
	}
	if diff := cmp.Diff([]repo.ID{a, b}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	if got := f.defaultTarget(); got != f.s.Deployments()[0].Path || got == first {
		t.Errorf("default entry resolves to %s", got)
	}
	if _, err := f.s.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]repo.ID{b, a}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	if got := f.defaultTarget(); got != first {
		t.Errorf("default entry resolves to %s, want %s", got, first)
	}
}

// A change asked with a context already cancelled is not made, whichever
// operation it is, and its error names the sysroot.
func TestCancelledContextChangesNothing(t *testing.T) {
	f := newFixture(t)
	a := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	b := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/new": testtree.File("x", 0o755)}))
	f.deploy("os", DeployOptions{Kargs: []string{"k=1"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	origin := filepath.Join(f.s.Deployments()[0].Path + ".origin")
	originBefore, err := os.ReadFile(origin)
	if err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"pin":       func() error { return f.s.Pin(ctx, 0, true) },
		"setorigin": func() error { return f.s.SetOrigin(ctx, 0, "other") },
		"rollback":  func() error { _, err := f.s.Rollback(ctx); return err },
		"default":   func() error { _, err := f.s.SetDefault(ctx, 1); return err },
		"kargs":     func() error { _, err := f.s.SetKargs(ctx, 0, KargsEdit{Append: []string{"quiet"}}); return err },
		"undeploy":  func() error { _, err := f.s.Undeploy(ctx, 1); return err },
		"deploy":    func() error { _, err := f.s.Deploy(ctx, a.String(), DeployOptions{}); return err },
	} {
		if err := op(); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), f.path) {
			t.Errorf("%s with a cancelled context: %v; want context.Canceled naming %s", name, err, f.path)
		}
	}
	if diff := cmp.Diff([]repo.ID{b, a}, f.order()); diff != "" {
		t.Errorf("deployments changed: %s", diff)
	}
	if got, _ := os.ReadFile(origin); !bytes.Equal(got, originBefore) {
		t.Errorf("origin changed to %q", got)
	}
	s := f.reopen()
	d := s.Deployments()[0]
	if d.Pinned || d.Origin != "os" || d.Options != "k=1" || len(s.Deployments()) != 2 {
		t.Errorf("deployment 0 on disk: pinned %v, origin %q, options %q, %d deployments", d.Pinned, d.Origin, d.Options, len(s.Deployments()))
	}
}

// A cancel that comes once the boot entries have switched stops only the
// cleanup: the change stands, and the *CleanupError names the sysroot.
func TestCancelAfterSwitchNamesSysroot(t *testing.T) {
	f := newFixture(t)
	a, _ := f.twoDeployments()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testHookSwitched = func() error { cancel(); return nil }
	defer func() { testHookSwitched = nil }()
	res, err := f.s.Undeploy(ctx, 0)
	var ce *CleanupError
	if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), f.path) || res == nil {
		t.Fatalf("undeploy cancelled after its switch: %v (result %v); want a *CleanupError naming %s", err, res, f.path)
	}
	if diff := cmp.Diff([]repo.ID{a}, f.order()); diff != "" {
		t.Errorf("deployments after the cancelled cleanup: %s", diff)
	}
}

// The list Deployments returns is the caller's: reordering it changes
// neither what the Sysroot lists next nor which deployment an index names.
func TestDeploymentsListIsCallers(t *testing.T) {
	f := newFixture(t)
	a, b := f.twoDeployments()
	list := f.s.Deployments()
	list[0], list[1] = list[1], list[0]
	if d, err := f.s.Deployment(0); err != nil || d.Commit != b {
		t.Errorf("after the caller reordered its list, Deployment(0) = %v, %v; want %s", d, err, b)
	}
	if diff := cmp.Diff([]repo.ID{b, a}, f.order()); diff != "" {
		t.Errorf("after the caller reordered its list: %s", diff)
	}
}

// Rollback goes back to the previous deployment of the default's
// stateroot, not to another stateroot's deployment that a deploy left in
// between; deployment 1 of another stateroot is taken only when it is the
// booted one (GRUB fell back to it). A default with no deployment of its
// stateroot behind it is refused, naming it, with the order unchanged.
func TestRollbackStaysInStateroot(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.s.OSInit(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	f.commit("a", osTree("6.1.0-1", nil))
	f.commit("o", osTree("6.1.0-2", nil))
	f.deploy("a", DeployOptions{OS: "testos"})
	f.deploy("o", DeployOptions{OS: "other"})
	f.deploy("a", DeployOptions{OS: "testos"})
	if diff := cmp.Diff([]string{"testos.1", "other.0", "testos.0"}, deploymentNames(f.s)); diff != "" {
		t.Fatal(diff)
	}
	if !f.s.Deployments()[2].Rollback || f.s.Deployments()[1].Rollback {
		t.Errorf("status marks as rollback: %v %v", f.s.Deployments()[1].Rollback, f.s.Deployments()[2].Rollback)
	}
	if _, err := f.s.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"testos.0", "testos.1", "other.0"}, deploymentNames(f.s)); diff != "" {
		t.Errorf("after rollback (-want +got):\n%s", diff)
	}

	// other's only deployment is the default: nothing of other's to go to.
	if _, err := f.s.SetDefault(ctx, 2); err != nil { // other.0, testos.0, testos.1
		t.Fatal(err)
	}
	if _, err := f.s.Rollback(ctx); err == nil || !strings.Contains(err.Error(), "stateroot other") {
		t.Errorf("rollback with no deployment of the default's stateroot behind it: %v", err)
	}
	if diff := cmp.Diff([]string{"other.0", "testos.0", "testos.1"}, deploymentNames(f.s)); diff != "" {
		t.Errorf("a refused rollback changed the order (-want +got):\n%s", diff)
	}
	bootedAt := func(i int) *Sysroot {
		t.Helper()
		s := bootedAs(t, f, i)
		if b := s.Booted(); b == nil || b.Index != i {
			t.Fatalf("booted = %+v", b)
		}
		return s
	}
	// There GRUB falls back to deployment 1, another stateroot's: it is
	// booted, and rollback makes it the default, ending the fallback.
	s := bootedAt(1)
	if _, err := s.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"testos.0", "other.0", "testos.1"}, deploymentNames(s)); diff != "" {
		t.Errorf("rollback to the booted deployment (-want +got):\n%s", diff)
	}
	// Where the default's stateroot has a deployment behind it, GRUB
	// falls back to that one: another system's deployment 1 booted (by
	// hand, from the menu) is not the rollback.
	s = bootedAt(1)
	if _, err := s.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"testos.1", "testos.0", "other.0"}, deploymentNames(s)); diff != "" {
		t.Errorf("rollback with another stateroot's deployment 1 booted (-want +got):\n%s", diff)
	}
}

func TestRollbackAcrossKernelsIsFull(t *testing.T) {
	f := newFixture(t)
	a := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	b := f.commit("os", osTree("6.1.0-2", testtree.Tree{"usr/lib/modules/6.1.0-1": gone,
		"usr/lib/modules/6.1.0-1/vmlinuz": gone, "usr/lib/modules/6.1.0-1/initramfs.img": gone}))
	f.deploy("os", DeployOptions{})
	bv, _ := f.s.BootVersion()
	sw, err := f.s.Rollback(context.Background())
	if err != nil || sw != SwitchFull {
		t.Fatalf("rollback: %s %v", sw, err)
	}
	if nb, _ := f.s.BootVersion(); nb == bv {
		t.Error("boot version did not change")
	}
	// The old boot version's entries and links go with the switch, as in
	// OSTree, not at the next cleanup.
	for _, p := range []string{filepath.Join(f.path, "boot", fmt.Sprintf("loader.%d", bv)), filepath.Join(f.path, "otree", fmt.Sprintf("boot.%d", bv))} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after the rollback: %v", p, err)
		}
	}
	if diff := cmp.Diff([]repo.ID{a, b}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	if f.s.Deployments()[0].Kernel != "6.1.0-1" {
		t.Errorf("kernel = %s", f.s.Deployments()[0].Kernel)
	}
}

func TestRetention(t *testing.T) {
	f := newFixture(t)
	a, b := f.twoDeployments()
	c := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/c": testtree.File("c", 0o755)}))
	res := f.deploy("os", DeployOptions{})
	// The merge deployment (b) stays, a goes.
	if diff := cmp.Diff([]repo.ID{c, b}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	if len(res.Removed) != 1 || res.Removed[0].Commit != a {
		t.Errorf("removed = %v", res.Removed)
	}
	if _, err := os.Stat(f.s.deploymentDir("testos", a, 0)); err == nil {
		t.Error("a's directory is still there")
	}
	// Pinned and retained deployments stay.
	if err := f.s.Pin(context.Background(), 1, true); err != nil {
		t.Fatal(err)
	}
	d := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/d": testtree.File("d", 0o755)}))
	f.deploy("os", DeployOptions{})
	if diff := cmp.Diff([]repo.ID{d, c, b}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	if !f.s.Deployments()[2].Pinned {
		t.Error("pin lost")
	}
	e := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/e": testtree.File("e", 0o755)}))
	// Not as the default: right behind the merge deployment, as OSTree's.
	f.deploy("os", DeployOptions{Retain: true, NotAsDefault: true})
	if diff := cmp.Diff([]repo.ID{d, e, c, b}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	// Pinned deployments cannot be undeployed until unpinned.
	if _, err := f.s.Undeploy(context.Background(), 3); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("undeploy pinned: %v", err)
	}
	if err := f.s.Pin(context.Background(), 3, false); err != nil {
		t.Fatal(err)
	}
	ur, err := f.s.Undeploy(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]repo.ID{d, e, c}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	// As OSTree's undeploy, it prunes the removed deployment's commit,
	// which only the branch's history still reached.
	if ur.Removed.Commit != b || ur.Switch != SwitchFull || ur.Prune == nil || !slices.Contains(ur.Prune.Commits, b) {
		t.Errorf("undeploy of %s: %+v, prune %+v", b, ur, ur.Prune)
	}
	if ok, _ := f.s.Repo().HasObject(repo.KindCommit, b); ok {
		t.Errorf("commit %s of the undeployed deployment is still stored", b)
	}
}

// A deployment not made the default goes right behind the booted
// deployment, else the merge deployment of its stateroot, as OSTree's
// does, not behind other stateroots' deployments; with no merge deployment
// it goes last.
func TestNotAsDefaultBehindMerge(t *testing.T) {
	f := newFixture(t)
	if err := f.s.OSInit(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	a := f.commit("a", osTree("6.1.0-1", nil))
	o := f.commit("o", osTree("6.1.0-2", nil))
	f.deploy("a", DeployOptions{OS: "testos"})
	f.deploy("o", DeployOptions{OS: "other"})
	f.deploy("a", DeployOptions{OS: "testos", Retain: true})
	// testos.1, other.0, testos.0
	d := f.deploy("a", DeployOptions{OS: "testos", Retain: true, NotAsDefault: true}).Deployment
	got := deploymentNames(f.s)
	if diff := cmp.Diff([]string{"testos.1", "testos.2", "other.0", "testos.0"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if d.Index != 1 || d.Commit != a {
		t.Errorf("new deployment %s at %d", d.Name(), d.Index)
	}
	// Booted on other.0 (index 2): behind it, ahead of testos' merge one.
	s := bootedAs(t, f, 2)
	if b := s.Booted(); b == nil || b.OS != "other" {
		t.Fatalf("booted = %+v", b)
	}
	if _, err := s.Deploy(context.Background(), "o", DeployOptions{OS: "other", Retain: true, NotAsDefault: true}); err != nil {
		t.Fatal(err)
	}
	got = deploymentNames(s)
	if diff := cmp.Diff([]string{"testos.1", "testos.2", "other.0", "other.1", "testos.0"}, got); diff != "" {
		t.Errorf("order after a deploy behind the booted one (-want +got):\n%s", diff)
	}
	// Without a merge deployment: last.
	if _, err := s.Deploy(context.Background(), o.String(), DeployOptions{OS: "other", Retain: true, NotAsDefault: true, NoMerge: true}); err != nil {
		t.Fatal(err)
	}
	if ds := s.Deployments(); ds[len(ds)-1].Commit != o || ds[len(ds)-1].Serial != 2 {
		t.Errorf("deployment without merge at %d of %d", ds[len(ds)-1].Index, len(ds))
	}
}

// Booted on another stateroot's deployment that comes after the merge
// deployment, a deployment not made the default goes right behind the
// booted one, where OSTree 2022.7's goes, not right behind the merge one,
// which would put it ahead of the running system.
func TestNotAsDefaultBehindBootedOfOtherStateroot(t *testing.T) {
	f := newFixture(t)
	if err := f.s.OSInit(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	f.commit("a", osTree("6.1.0-1", nil))
	f.commit("o", osTree("6.1.0-2", nil))
	f.deploy("a", DeployOptions{OS: "testos"})
	f.deploy("o", DeployOptions{OS: "other"})
	// other.0, testos.0; boot testos.0.
	s := bootedAs(t, f, 1)
	if b := s.Booted(); b == nil || b.OS != "testos" || b.Index != 1 {
		t.Fatalf("booted = %+v", b)
	}
	res, err := s.Deploy(context.Background(), "o", DeployOptions{OS: "other", NotAsDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	got := deploymentNames(s)
	if diff := cmp.Diff([]string{"other.0", "testos.0", "other.1"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if res.Deployment.Index != 2 {
		t.Errorf("new deployment %s at %d, want 2", res.Deployment.Name(), res.Deployment.Index)
	}
}

func TestBootedDeploymentIsKeptAndMerged(t *testing.T) {
	f := newFixture(t)
	a, b := f.twoDeployments()
	// Boot the older deployment (index 1): reopen with its command line.
	s := bootedAs(t, f, 1)
	booted := s.Booted()
	if booted == nil || booted.Commit != a || booted.Index != 1 || !s.Deployments()[0].Pending {
		t.Fatalf("booted = %+v", booted)
	}
	if _, err := s.Undeploy(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "booted") {
		t.Fatalf("undeploy booted: %v", err)
	}
	// The admin edits /etc in the booted deployment; a new deploy merges
	// from it (not from the default b) and keeps it.
	os.WriteFile(filepath.Join(booted.Path, "etc/hostname"), []byte("booted-host\n"), 0o644)
	c := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/c": testtree.File("c", 0o755)}))
	res, err := s.Deploy(context.Background(), "os", DeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Merge == nil || res.Merge.Commit != a {
		t.Errorf("merge = %+v", res.Merge)
	}
	var ids []repo.ID
	for _, d := range s.Deployments() {
		ids = append(ids, d.Commit)
	}
	if diff := cmp.Diff([]repo.ID{c, a}, ids); diff != "" {
		t.Errorf("order (-want +got):\n%s (b=%s)", diff, b)
	}
	got, _ := os.ReadFile(filepath.Join(res.Deployment.Path, "etc/hostname"))
	if string(got) != "booted-host\n" {
		t.Errorf("hostname = %q", got)
	}
	// Without a merge deployment (--no-merge) the booted deployment is
	// still kept, and so is its directory.
	if _, err := s.Deploy(context.Background(), "os", DeployOptions{NoMerge: true}); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.Deployments(), func(d *Deployment) bool { return d.Booted && d.Commit == a }) {
		t.Errorf("a deploy without a merge deployment dropped the booted one, %s", booted.Name())
	}
	if _, err := os.Stat(booted.Path); err != nil {
		t.Errorf("the booted deployment's directory: %v", err)
	}
}

// A kernel argument that would break the entry's options line (a newline
// or tab), an empty one, one with a space outside quotes, or otree= (which
// otree manages) is refused, and nothing is deployed or changed.
func TestKargsRefusesBadArguments(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{Kargs: []string{"root=/dev/sda1"}})
	before := f.s.Deployments()[0]
	for _, arg := range []string{"quiet\ninitrd=/evil", "a\tb", "", "a b", "otree=/x"} {
		for what, opts := range map[string]DeployOptions{"append": {KargsAppend: []string{arg}}, "replace": {Kargs: []string{arg}}} {
			if _, err := f.s.Deploy(context.Background(), "os", opts); err == nil || !strings.Contains(err.Error(), "kernel argument") {
				t.Errorf("deploy with %s %q: %v, want it refused", what, arg, err)
			}
		}
		if _, err := f.s.SetKargs(context.Background(), 0, KargsEdit{Append: []string{arg}}); err == nil {
			t.Errorf("SetKargs appending %q succeeded", arg)
		}
	}
	if list := f.s.Deployments(); len(list) != 1 || list[0].Path != before.Path || list[0].Options != "root=/dev/sda1" {
		t.Errorf("after refused kernel arguments: %d deployments, the first %s with %q", len(list), list[0].Path, list[0].Options)
	}
	// The error says why: two arguments in one, or a line break.
	for arg, why := range map[string]string{`x="a b" c`: "it is 2 arguments", "a\nb": "line break"} {
		if _, err := f.s.SetKargs(context.Background(), 0, KargsEdit{Append: []string{arg}}); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("SetKargs appending %q: %v, want an error saying %q", arg, err, why)
		}
	}
}

func TestKargs(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{Kargs: []string{"root=/dev/sda1", "ro"}, KargsAppend: []string{"console=tty0", "console=ttyS0"}})
	if got := f.s.Deployments()[0].Options; got != "root=/dev/sda1 ro console=tty0 console=ttyS0" {
		t.Fatalf("options = %q", got)
	}
	// A new deployment inherits, with edits.
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	f.deploy("os", DeployOptions{Kargs: []string{"root=/dev/sdb1"}, KargsDelete: []string{"console=tty0"}})
	if got := f.s.Deployments()[0].Options; got != "root=/dev/sdb1 ro console=ttyS0" {
		t.Fatalf("options = %q", got)
	}
	if got := f.s.Deployments()[1].Options; got != "root=/dev/sda1 ro console=tty0 console=ttyS0" {
		t.Fatalf("old options = %q", got)
	}
	sw, err := f.s.SetKargs(context.Background(), 1, KargsEdit{Replace: []string{"root=/dev/sda1=/dev/sdc1"}, Delete: []string{"console"}, Append: []string{"quiet"}})
	if err != nil || sw != SwitchFull {
		t.Fatalf("SetKargs: %s %v", sw, err)
	}
	if got := f.s.Deployments()[1].Options; got != "root=/dev/sdc1 ro quiet" {
		t.Fatalf("edited options = %q", got)
	}
	before := f.s.Deployments()[0].Options
	want := "deployment " + f.s.Deployments()[0].Name() + " of stateroot testos: kernel argument nosuch not found"
	if _, err := f.s.SetKargs(context.Background(), 0, KargsEdit{Delete: []string{"nosuch"}}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("deleting a missing argument: %v; want it refused, naming it and the deployment (%q)", err, want)
	}
	if _, err := f.s.SetKargs(context.Background(), 0, KargsEdit{Append: []string{"otree=/x"}}); err == nil || !strings.Contains(err.Error(), "otree= is managed by otree") {
		t.Errorf("setting otree=: %v; want it refused, naming it", err)
	}
	if got := f.s.Deployments()[0].Options; got != before {
		t.Errorf("refused edits changed the options from %q to %q", before, got)
	}
}

// SetKargs with an index that names no deployment, negative as well as
// past the end, fails with ErrNoDeployment and edits no deployment; a
// negative one is not taken for SetKargsAll.
func TestSetKargsBadIndex(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{Kargs: []string{"root=/dev/sda1"}})
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	f.deploy("os", DeployOptions{})
	var before []string
	for _, d := range f.s.Deployments() {
		before = append(before, d.Options)
	}
	for _, index := range []int{-1, -2, 2} {
		sw, err := f.s.SetKargs(context.Background(), index, KargsEdit{Append: []string{"quiet"}})
		if !errors.Is(err, ErrNoDeployment) || sw != "" {
			t.Errorf("SetKargs(%d): %q, %v; want no switch and an error matching ErrNoDeployment", index, sw, err)
		}
	}
	for i, d := range f.s.Deployments() {
		if d.Options != before[i] {
			t.Errorf("deployment %d: options %q after refused edits, want %q", i, d.Options, before[i])
		}
	}
}

// A replace sets KEY, dropping its other values; KEY=OLD=NEW replaces only
// KEY=OLD when that is there, and otherwise sets KEY to OLD=NEW, as
// "admin kargs --help" says (root=UUID=... is a value, not an edit).
func TestKargsEditReplace(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		edit    KargsEdit
		want    string
	}{
		{"root=/dev/sda1 console=tty0 console=ttyS0 quiet", KargsEdit{Replace: []string{"console=ttyS1"}}, "root=/dev/sda1 console=ttyS1 quiet"},
		{"console=tty0 console=ttyS0", KargsEdit{Replace: []string{"console=ttyS0=ttyS1"}}, "console=tty0 console=ttyS1"},
		{"root=LABEL=root rw", KargsEdit{Replace: []string{"root=UUID=1234"}}, "root=UUID=1234 rw"},
		{"rw", KargsEdit{Replace: []string{"root=UUID=1234"}}, "rw root=UUID=1234"},
		{"quiet x=1", KargsEdit{AppendIfMissing: []string{"x=2", "y=1"}}, "quiet x=1 y=1"},
	} {
		if got, err := tc.edit.apply(tc.cmdline); err != nil || got != tc.want {
			t.Errorf("%+v on %q: %q, %v; want %q", tc.edit, tc.cmdline, got, err, tc.want)
		}
	}
}

// TestDeployKargsOrder checks that a deploy applies --karg-append before
// --karg-delete, as OSTree's does: a delete then removes what an append
// added, and finds an argument only an append gave.
func TestDeployKargsOrder(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{Kargs: []string{"root=/dev/sda1"}})
	f.deploy("os", DeployOptions{KargsAppend: []string{"debug", "console=ttyS0"}, KargsDelete: []string{"debug"}})
	if got := f.s.Deployments()[0].Options; got != "root=/dev/sda1 console=ttyS0" {
		t.Fatalf("options = %q, want the appended debug deleted again", got)
	}
}

// A deploy's KargsDelete that finds nothing to delete fails naming the
// commit, the option, and where the arguments it looked in came from.
func TestDeployKargsDeleteMissing(t *testing.T) {
	f := newFixture(t)
	id := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{Kargs: []string{"root=/dev/sda1"}})
	merge := f.s.Deployments()[0]
	if err := f.s.OSInit(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	before := f.order()
	for _, tc := range []struct {
		opts DeployOptions
		want string
	}{
		{DeployOptions{OS: "testos", KargsDelete: []string{"nope"}}, "taken from deployment " + merge.Name() + " of testos (the merge deployment)"},
		{DeployOptions{OS: "testos", KargsNone: true, KargsDelete: []string{"nope"}}, "of the empty command line (KargsNone)"},
		{DeployOptions{OS: "testos", NoMerge: true, KargsDelete: []string{"nope"}}, "of the empty command line (NoMerge: no deployment merged)"},
		{DeployOptions{OS: "other", KargsDelete: []string{"nope"}}, "of the empty command line (no deployment of other to merge)"},
	} {
		_, err := f.s.Deploy(context.Background(), "os", tc.opts)
		for _, want := range []string{"deploy of commit " + id.String(), "KargsDelete (--karg-delete)", "kernel argument nope not found", tc.want} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%+v: err = %v, want it to say %q", tc.opts, err, want)
			}
		}
		if diff := cmp.Diff(before, f.order()); diff != "" {
			t.Errorf("%+v: %s", tc.opts, diff)
		}
	}
}

// A deploy's Kargs sets KEY to the whole value after the first '=', as
// OSTree's --karg does: root=ZFS=rpool/os is the ZFS root, not root=ZFS
// replaced by root=rpool/os, and every earlier value of the key goes.
func TestDeployKargValueHoldsEquals(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{KargsAppend: []string{"root=ZFS", "a=1", "quiet", "a=2"}})
	res := f.deploy("os", DeployOptions{Kargs: []string{"root=ZFS=rpool/os", "a=1=5"}})
	if want := "root=ZFS=rpool/os a=1=5 quiet"; res.Deployment.Options != want {
		t.Errorf("options %q, want %q", res.Deployment.Options, want)
	}
}

// Starting the arguments from nothing and from /proc/cmdline contradict
// each other: the deploy is refused, as OSTree's, and nothing changes.
func TestDeployKargsNoneWithProcCmdlineRefused(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{Kargs: []string{"quiet"}})
	before := f.order()
	_, err := f.s.Deploy(context.Background(), "os", DeployOptions{KargsNone: true, KargsProcCmdline: true})
	if err == nil || !strings.Contains(err.Error(), "KargsNone") || !strings.Contains(err.Error(), "KargsProcCmdline") {
		t.Errorf("deploy with KargsNone and KargsProcCmdline: %v, want it refused naming both", err)
	}
	if diff := cmp.Diff(before, f.order()); diff != "" {
		t.Errorf("the refused deploy changed the deployments: %s", diff)
	}
}

// An options line longer than a bufio.Scanner's 64 KiB line is read back
// whole: the deploy that wrote it succeeds, the sysroot opens again with
// the arguments, and the next deploy carries them forward.
func TestLongKargsReadBack(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	long := "x=" + strings.Repeat("a", 70000)
	f.deploy("os", DeployOptions{Kargs: []string{long, "quiet"}})
	s, err := Open(f.path, OpenOptions{})
	if err != nil {
		t.Fatalf("opening the sysroot again: %v", err)
	}
	defer s.Close()
	if got := s.Deployments()[0].Options; got != long+" quiet" {
		t.Errorf("read back %d bytes of options, want %d", len(got), len(long+" quiet"))
	}
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	if res := f.deploy("os", DeployOptions{}); res.Deployment.Options != long+" quiet" {
		t.Errorf("the next deploy carried %d bytes of options forward, want %d", len(res.Deployment.Options), len(long+" quiet"))
	}
}

// A boot/loader that is a directory, not the link a switch replaces, is
// named with what is wrong with it, and nothing is deployed.
func TestLoaderDirectoryRefused(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	loader := filepath.Join(f.path, "boot", "loader")
	if err := os.MkdirAll(filepath.Join(loader, "entries"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.Deploy(context.Background(), "os", DeployOptions{})
	if err == nil || !strings.Contains(err.Error(), loader+" is not a symlink") {
		t.Fatalf("deploy with boot/loader a directory: %v; want it named as not a symlink", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.path, "otree/deploy/testos/deploy")); len(ents) != 0 {
		t.Errorf("the refused deploy left %d entries in deploy/", len(ents))
	}
}

func TestEtcConflictKeepsOldDefault(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	first := f.deploy("os", DeployOptions{}).Deployment
	os.WriteFile(filepath.Join(first.Path, "etc/motd"), []byte("local motd\n"), 0o644)
	loader, _ := os.Readlink(filepath.Join(f.path, "boot/loader"))
	bad := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/etc/motd": testtree.Dir(0o755), "usr/etc/motd/part": testtree.File("x", 0o644)}))
	_, err := f.s.Deploy(context.Background(), "os", DeployOptions{})
	var ce *EtcConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "/etc/motd") {
		t.Fatalf("err = %v", err)
	}
	if l, _ := os.Readlink(filepath.Join(f.path, "boot/loader")); l != loader {
		t.Errorf("boot/loader moved to %s", l)
	}
	if len(f.s.Deployments()) != 1 || f.s.Deployments()[0].Path != first.Path || f.defaultTarget() != first.Path {
		t.Errorf("deployments changed: %v", f.order())
	}
	// The failed deployment removed what it wrote.
	if _, err := os.Lstat(f.s.deploymentDir("testos", bad, 0)); err == nil {
		t.Error("the failed deployment's directory is left")
	}
	if _, err := f.s.Repo().ReadRef("otree/testos/" + bad.String() + ".0"); err == nil {
		t.Error("the failed deployment's ref is left")
	}
	if _, err := f.s.Cleanup(context.Background(), CleanupOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Repo().ReadCommit(bad); err != nil {
		t.Errorf("the branch's commit was pruned: %v", err)
	}
}

func TestEtcInTreeMovesToUsrEtc(t *testing.T) {
	f := newFixture(t)
	tree := osTree("6.1.0-1", testtree.Tree{"usr/etc/hostname": gone, "usr/etc/motd": gone, "usr/etc/ssh/sshd_config": gone, "usr/etc/ssh": gone, "usr/etc": gone,
		"etc/hostname": testtree.File("shipped\n", 0o644)})
	f.commit("os", tree)
	d := f.deploy("os", DeployOptions{}).Deployment
	for _, p := range []string{"usr/etc/hostname", "etc/hostname"} {
		if got, err := os.ReadFile(filepath.Join(d.Path, p)); err != nil || string(got) != "shipped\n" {
			t.Errorf("%s = %q %v", p, got, err)
		}
	}
	both := osTree("6.1.0-1", testtree.Tree{"etc/x": testtree.File("x", 0o644)})
	f.commit("both", both)
	if _, err := f.s.Deploy(context.Background(), "both", DeployOptions{}); err == nil || !strings.Contains(err.Error(), "both /etc and /usr/etc") {
		t.Errorf("tree with /etc and /usr/etc: %v", err)
	}
}

func TestUpgrade(t *testing.T) {
	f := newFixture(t)
	a := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	if _, err := f.s.Upgrade(context.Background(), UpgradeOptions{}); !errors.Is(err, ErrNoUpgrade) {
		t.Fatalf("upgrade with nothing new: %v", err)
	}
	b := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	res, err := f.s.Upgrade(context.Background(), UpgradeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployed.Deployment.Commit != b || res.Deployed.Deployment.Origin != "os" {
		t.Errorf("upgraded to %+v", res.Deployed.Deployment)
	}
	// Point the ref at an older commit: refused unless allowed.
	if err := f.s.Repo().SetRef("os", a); err != nil {
		t.Fatal(err)
	}
	var de *DowngradeError
	if _, err := f.s.Upgrade(context.Background(), UpgradeOptions{}); !errors.As(err, &de) {
		t.Fatalf("downgrade: %v", err)
	}
	if diff := cmp.Diff([]repo.ID{b, a}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	res, err = f.s.Upgrade(context.Background(), UpgradeOptions{AllowDowngrade: true})
	if err != nil || res.Deployed.Deployment.Commit != a {
		t.Fatalf("allowed downgrade: %v", err)
	}
}

// driftList lists the changes Verify reports as "kind path".
func driftList(ch []checkout.Change) []string {
	var l []string
	for _, c := range ch {
		l = append(l, c.Kind.String()+" "+c.Path)
	}
	return l
}

func TestVerifyReportsDrift(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	d := f.deploy("os", DeployOptions{}).Deployment
	ch, err := f.s.Verify(context.Background(), 0)
	if err != nil || len(ch) != 0 {
		t.Fatalf("fresh deployment drift: %v %v", ch, err)
	}
	// Replace (not write through: it is a hardlink into the repository)
	// one file, and add another.
	p := filepath.Join(d.Path, "usr/bin/sh")
	os.Remove(p)
	os.WriteFile(p, []byte("changed"), 0o755)
	os.WriteFile(filepath.Join(d.Path, "usr/bin/extra"), []byte("x"), 0o755)
	ch, err = f.s.Verify(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"A /usr/bin/extra", "M /usr/bin/sh"}, driftList(ch)); diff != "" {
		t.Errorf("drift (-want +got):\n%s", diff)
	}
}

// A tree that ships /etc has it at /usr/etc once deployed: that is no
// drift, and a change to it is reported under /usr/etc.
func TestVerifyTreeShippingEtc(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", testtree.Tree{
		"usr/etc/hostname": gone, "usr/etc/motd": gone, "usr/etc/ssh/sshd_config": gone, "usr/etc": gone,
		"etc/hostname": testtree.File("default-host\n", 0o644), "etc/motd": testtree.File("welcome\n", 0o644),
	}))
	d := f.deploy("os", DeployOptions{}).Deployment
	if _, err := os.Stat(filepath.Join(d.Path, "usr/etc/motd")); err != nil {
		t.Fatalf("deploy did not move /etc to /usr/etc: %v", err)
	}
	ch, err := f.s.Verify(context.Background(), 0)
	if err != nil || len(ch) != 0 {
		t.Fatalf("fresh deployment of a tree with /etc: drift %v, %v", ch, err)
	}
	p := filepath.Join(d.Path, "usr/etc/motd")
	os.Remove(p)
	os.WriteFile(p, []byte("changed\n"), 0o644)
	os.WriteFile(filepath.Join(d.Path, "usr/bin/extra"), []byte("x"), 0o755)
	if ch, err = f.s.Verify(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"A /usr/bin/extra", "M /usr/etc/motd"}, driftList(ch)); diff != "" {
		t.Errorf("drift (-want +got):\n%s", diff)
	}
}

func TestCleanupRemovesLeftovers(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	d := f.deploy("os", DeployOptions{}).Deployment
	// What an interrupted deploy leaves: a directory, an origin, a ref, a
	// kernel directory, a stale boot version.
	orphan := filepath.Join(f.path, "otree/deploy/testos/deploy", d.Commit.String()+".7")
	os.MkdirAll(filepath.Join(orphan, "usr"), 0o555)
	os.WriteFile(orphan+".origin", nil, 0o644)
	f.s.Repo().SetRef("otree/testos/"+d.Commit.String()+".7", d.Commit)
	os.MkdirAll(filepath.Join(f.path, "boot/otree/testos-"+strings.Repeat("0", 64)), 0o755)
	os.MkdirAll(filepath.Join(f.path, "boot/loader.0/entries"), 0o755)
	os.WriteFile(filepath.Join(f.path, "boot/loader.0/entries/otree-1-testos.conf"), []byte("junk"), 0o644)
	rep, err := f.s.Cleanup(context.Background(), CleanupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{orphan}, rep.Deployments); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]string{"otree/testos/" + d.Commit.String() + ".7"}, rep.Refs); diff != "" {
		t.Error(diff)
	}
	for _, p := range []string{orphan, orphan + ".origin", filepath.Join(f.path, "boot/otree/testos-"+strings.Repeat("0", 64)), filepath.Join(f.path, "boot/loader.0")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s survived cleanup", p)
		}
	}
	if _, err := os.Stat(filepath.Join(d.Path, "usr/bin/sh")); err != nil {
		t.Errorf("the live deployment was touched: %v", err)
	}
	if rep.Prune == nil {
		t.Error("no prune")
	}
	// Prune kept what the deployment needs.
	fr, err := f.s.Repo().Fsck(context.Background(), repo.FsckOptions{})
	if err != nil || len(fr.Problems) != 0 {
		t.Errorf("fsck after cleanup: %v %v", err, fr)
	}
}

func TestDeployTwiceSameCommitSerials(t *testing.T) {
	f := newFixture(t)
	id := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	d := f.deploy("os", DeployOptions{Retain: true}).Deployment
	if d.Serial != 1 || d.Commit != id {
		t.Fatalf("second deployment = %s", d.Name())
	}
	if diff := cmp.Diff([]repo.ID{id, id}, f.order()); diff != "" {
		t.Fatal(diff)
	}
	// Both share one kernel: their boot serials differ.
	entries, _ := readEntries(filepath.Join(f.path, "boot/loader/entries"))
	var args []string
	for _, e := range entries {
		v, _ := BootArgFromCmdline(e.options)
		args = append(args, v[strings.LastIndexByte(v, '/')+1:])
	}
	if diff := cmp.Diff([]string{"0", "1"}, args); diff != "" {
		t.Error(diff)
	}
	if !bytes.Contains([]byte(entries[0].title), []byte("otree:testos:0")) {
		t.Errorf("title %q", entries[0].title)
	}
}

// A serial is not given again once its deployment goes, as in OSTree: a
// new deployment of the commit takes one above the highest in use.
func TestDeploySerialNotReused(t *testing.T) {
	f := newFixture(t)
	id := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	f.deploy("os", DeployOptions{Retain: true})
	f.deploy("os", DeployOptions{Retain: true})
	names := func() (l []string) {
		for _, d := range f.s.Deployments() {
			l = append(l, d.Name())
		}
		return l
	}
	// Newest first: serials 2, 1, 0. Remove 0 and 1.
	for range 2 {
		if _, err := f.s.Undeploy(context.Background(), len(f.s.Deployments())-1); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{id.String() + ".2"}, names()); diff != "" {
		t.Fatal(diff)
	}
	d := f.deploy("os", DeployOptions{Retain: true}).Deployment
	if d.Serial != 3 {
		t.Errorf("new deployment %s, want serial 3", d.Name())
	}
	// A directory an interrupted deploy left is skipped too.
	if err := os.Mkdir(f.s.deploymentDir("testos", id, 4), 0o755); err != nil {
		t.Fatal(err)
	}
	if d := f.deploy("os", DeployOptions{Retain: true}).Deployment; d.Serial != 5 {
		t.Errorf("deployment past a left directory %s, want serial 5", d.Name())
	}
}

// On a booted system the sysroot is / : a deployment whose otree is a
// link to sysroot/otree. Open follows it, so deployments are found and
// written under the physical root, and the booted one is recognised.
func TestOpenThroughBootedRoot(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	d := f.deploy("os", DeployOptions{}).Deployment
	entries, _ := readEntries(filepath.Join(f.path, "boot/loader/entries"))
	// A stand-in for the booted /: physical root at sysroot/, the links a
	// deployment has.
	top := t.TempDir()
	if err := os.Symlink(f.path, filepath.Join(top, "sysroot")); err != nil {
		t.Fatal(err)
	}
	os.Symlink("sysroot/otree", filepath.Join(top, "otree"))
	os.Symlink("sysroot/boot", filepath.Join(top, "boot"))
	cmdline := entries[0].options
	s, err := Open(top, OpenOptions{Cmdline: &cmdline})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if b := s.Booted(); b == nil || b.Commit != d.Commit || b.Path != d.Path {
		t.Fatalf("booted = %+v, want %s", b, d.Path)
	}
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	res, err := s.Deploy(context.Background(), "os", DeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(res.Deployment.Path) != filepath.Dir(d.Path) || res.Merge == nil || res.Merge.Path != d.Path {
		t.Errorf("deployed to %s merging %+v", res.Deployment.Path, res.Merge)
	}
}

// A system booted from a deployment whose boot filesystem is not mounted
// (a separate /boot missing from fstab, or failing to mount) has no
// boot/loader: Open refuses it, naming the path, rather than list no
// deployments, after which cleanup would delete the booted one. Without
// otree= on the command line a sysroot with no boot/loader is one not
// deployed yet, and opens empty.
func TestOpenBootedWithoutBootLoader(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	d := f.deploy("os", DeployOptions{}).Deployment
	entries, _ := readEntries(filepath.Join(f.path, "boot/loader/entries"))
	cmdline := entries[0].options
	// What the root filesystem holds under an unmounted boot partition.
	if err := os.Rename(filepath.Join(f.path, "boot"), filepath.Join(f.path, "boot.mounted")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(f.path, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(f.path, OpenOptions{Cmdline: &cmdline})
	if err == nil {
		s.Close()
		t.Fatalf("opened a booted sysroot without boot/loader: %d deployments", len(s.Deployments()))
	}
	if loader := filepath.Join(f.path, "boot", "loader"); !strings.Contains(err.Error(), loader) {
		t.Errorf("error %q does not name %s", err, loader)
	}
	empty := ""
	s, err = Open(f.path, OpenOptions{Cmdline: &empty})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.Deployments()); n != 0 {
		t.Errorf("not booted, no boot/loader: %d deployments, want none", n)
	}
	if _, err := os.Stat(d.Path); err != nil {
		t.Fatal(err)
	}
}

// /proc/cmdline's closing newline is no part of the command line: after
// an unclosed quote, which the kernel takes as running to the end, it is
// not read into the last argument, and the deploy does not fail on it.
func TestDeployProcCmdlineUnclosedQuote(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{Kargs: []string{"root=/dev/vda"}})
	cmdline := "root=/dev/vdb otree=/otree/boot.1/testos/00/0 note=\"a b\n"
	s, err := Open(f.path, OpenOptions{Cmdline: &cmdline})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Deploy(context.Background(), "os", DeployOptions{KargsProcCmdline: true})
	if err != nil {
		t.Fatalf("deploy from booted command line %q: %v", cmdline, err)
	}
	if want := `root=/dev/vdb note="a b`; res.Deployment.Options != want {
		t.Errorf("options = %q, want %q", res.Deployment.Options, want)
	}
}

func TestDeployOptionsProcCmdlineNoMergeOrigin(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	first := f.deploy("os", DeployOptions{Kargs: []string{"root=/dev/vda"}}).Deployment
	os.WriteFile(filepath.Join(first.Path, "etc/motd"), []byte("local\n"), 0o644)

	// --karg-proc-cmdline starts from the running kernel's arguments,
	// without the ones the boot loader and otree add.
	cmdline := "BOOT_IMAGE=/vmlinuz-x root=/dev/vdb ro otree=/otree/boot.1/testos/00/0 initrd=/x console=ttyS0\n"
	s, err := Open(f.path, OpenOptions{Cmdline: &cmdline})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	res, err := s.Deploy(context.Background(), "os", DeployOptions{KargsProcCmdline: true, KargsAppend: []string{"quiet"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployment.Options != "root=/dev/vdb ro console=ttyS0 quiet" {
		t.Errorf("options = %q", res.Deployment.Options)
	}

	// --no-merge: /etc from the defaults, no kernel arguments; --origin-file
	// is stored as given (keys otree does not know included).
	origin := []byte("[origin]\nrefspec=remote:os/stable\nunknown=kept\n")
	res, err = s.Deploy(context.Background(), "os", DeployOptions{NoMerge: true, Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Deployment
	if got, _ := os.ReadFile(filepath.Join(d.Path, "etc/motd")); string(got) != "welcome\n" || d.Options != "" || len(res.Etc) != 0 || res.Merge != nil {
		t.Errorf("no-merge: motd %q options %q etc %v merge %v", got, d.Options, res.Etc, res.Merge)
	}
	if got, _ := os.ReadFile(d.Path + ".origin"); !bytes.Equal(got, origin) || d.Origin != "remote:os/stable" {
		t.Errorf("origin = %q (%q)", got, d.Origin)
	}
}

// RetainPending keeps the deployments ahead of the booted one,
// RetainRollback those behind it; neither keeps the other side. Without a
// booted deployment the merge (default) one divides them.
func TestRetainPendingAndRollback(t *testing.T) {
	for _, c := range []struct {
		name             string
		pending, rolling bool
		boot             bool
		want             string // of "n" (new) and the deployments e d c b a
	}{
		{"default", false, false, true, "nc"},
		{"pending", true, false, true, "nedc"},
		{"rollback", false, true, true, "ncba"},
		{"both", true, true, true, "nedcba"},
		{"rollback, nothing booted", false, true, false, "nedcba"},
		{"pending, nothing booted", true, false, false, "ne"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			name := map[repo.ID]string{}
			for _, n := range "abcde" {
				id := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/" + string(n): testtree.File(string(n), 0o755)}))
				name[id] = string(n)
				f.deploy("os", DeployOptions{Retain: true})
			}
			s := f.s
			if c.boot {
				// Boot c, index 2: e and d are pending, b and a rollback.
				entries, _ := readEntries(filepath.Join(f.path, "boot/loader/entries"))
				cmdline := "BOOT_IMAGE=x " + entries[2].options
				var err error
				if s, err = Open(f.path, OpenOptions{Cmdline: &cmdline}); err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if b := s.Booted(); b == nil || name[b.Commit] != "c" {
					t.Fatalf("booted %+v", b)
				}
			}
			id := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/n": testtree.File("n", 0o755)}))
			name[id] = "n"
			res, err := s.Deploy(context.Background(), "os", DeployOptions{RetainPending: c.pending, RetainRollback: c.rolling})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, d := range s.Deployments() {
				got += name[d.Commit]
			}
			if got != c.want {
				t.Errorf("deployments %s, want %s", got, c.want)
			}
			if len(res.Removed)+len(got) != 6 {
				t.Errorf("removed %d, kept %d of 6", len(res.Removed), len(got))
			}
		})
	}
}

// KargsNone drops the merge deployment's kernel arguments; the edits still
// apply, and /etc is still merged.
func TestKargsNone(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	first := f.deploy("os", DeployOptions{Kargs: []string{"quiet", "root=/dev/vda"}})
	os.WriteFile(filepath.Join(first.Deployment.Path, "etc/hostname"), []byte("mine\n"), 0o644)
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	res := f.deploy("os", DeployOptions{KargsNone: true, KargsAppend: []string{"console=ttyS0"}})
	if res.Deployment.Options != "console=ttyS0" {
		t.Errorf("options %q, want only the appended one", res.Deployment.Options)
	}
	if b, _ := os.ReadFile(filepath.Join(res.Deployment.Path, "etc/hostname")); string(b) != "mine\n" {
		t.Errorf("/etc not merged: hostname %q", b)
	}
}

// A deploy prunes the repository of the commits its retention dropped
// (and their objects, and the static deltas to them); NoPrune leaves them.
func TestDeployPrunes(t *testing.T) {
	f := newFixture(t)
	unique := func(n string) testtree.Tree {
		return osTree("6.1.0-1", testtree.Tree{"usr/bin/" + n: testtree.File("only in "+n, 0o755)})
	}
	objectOf := func(id repo.ID, p string) repo.ID {
		e, err := f.s.Repo().Lookup(id, p)
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	a := f.commit("os", unique("a"))
	fileA := objectOf(a, "/usr/bin/a")
	f.deploy("os", DeployOptions{})
	b := f.commit("os", unique("b"))
	fileB := objectOf(b, "/usr/bin/b")
	f.deploy("os", DeployOptions{})
	f.commit("os", unique("c"))
	if res := f.deploy("os", DeployOptions{NoPrune: true}); res.Prune != nil { // drops a's deployment, keeps its commit
		t.Errorf("NoPrune: the result reports a prune: %+v", res.Prune)
	}
	if has, _ := f.s.Repo().HasObject(repo.KindCommit, a); !has {
		t.Fatal("NoPrune: commit a pruned")
	}
	f.commit("os", unique("d"))
	toB := delta.Name{From: a, To: b}
	if _, err := delta.Generate(context.Background(), f.s.Repo(), delta.GenerateOptions{From: a, To: b, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	res := f.deploy("os", DeployOptions{}) // drops b's deployment, prunes a and b
	if len(res.Removed) != 1 || res.Removed[0].Commit != b {
		t.Fatalf("removed %+v", res.Removed)
	}
	if res.Prune == nil || len(res.Prune.Commits) != 2 || !slices.Contains(res.Prune.Commits, a) || !slices.Contains(res.Prune.Commits, b) || res.Prune.Freed == 0 {
		t.Errorf("the result's prune = %+v, want commits a and b", res.Prune)
	}
	if left, err := delta.List(f.s.Repo()); err != nil || len(left) != 0 || res.Prune == nil || !slices.Equal(res.Prune.Deltas, []string{toB.String()}) {
		t.Errorf("static deltas left %v (%v); the prune reports %v, want %s deleted", left, err, res.Prune.Deltas, toB)
	}
	for _, x := range []struct {
		kind repo.Kind
		id   repo.ID
	}{{repo.KindCommit, a}, {repo.KindCommit, b}, {repo.KindFile, fileA}, {repo.KindFile, fileB}} {
		if has, _ := f.s.Repo().HasObject(x.kind, x.id); has {
			t.Errorf("%s %s survived the prune", x.kind, x.id)
		}
	}
	if rep, err := f.s.Repo().Fsck(context.Background(), repo.FsckOptions{}); err != nil || len(rep.Problems) != 0 {
		t.Errorf("fsck after the prune: %v %+v", err, rep)
	}
}

// SetOrigin rewrites the refspec of one deployment's origin, keeping its
// other keys but an override-commit, and deploys nothing.
func TestSetOrigin(t *testing.T) {
	f := newFixture(t)
	id := f.commit("os", osTree("6.1.0-1", nil))
	origin := "[origin]\nrefspec=os\noverride-commit=" + id.String() + "\n[custom]\nkey=kept\n"
	d := f.deploy("os", DeployOptions{Origin: []byte(origin)}).Deployment
	if err := f.s.SetOrigin(context.Background(), 0, "mirror:os/stable"); err != nil {
		t.Fatal(err)
	}
	got := f.s.Deployments()[0]
	if got.Origin != "mirror:os/stable" || got.OverrideCommit != "" || got.Path != d.Path || len(f.s.Deployments()) != 1 {
		t.Errorf("after SetOrigin: %+v", got)
	}
	data, _ := os.ReadFile(d.Path + ".origin")
	if want := "[origin]\nrefspec=mirror:os/stable\n[custom]\nkey=kept\n"; string(data) != want {
		t.Errorf("origin file %q, want %q", data, want)
	}
	for _, bad := range []string{"mirror:bad name", "m\n[otree]\npinned=true:os", ":os", "a/b:os"} {
		if err := f.s.SetOrigin(context.Background(), 0, bad); err == nil || !strings.Contains(err.Error(), "invalid refspec") {
			t.Errorf("invalid refspec %q: %v", bad, err)
		}
	}
	if data2, _ := os.ReadFile(d.Path + ".origin"); string(data2) != string(data) {
		t.Errorf("refused refspecs changed the origin file to %q", data2)
	}
	if err := f.s.SetOrigin(context.Background(), 3, "os"); !errors.Is(err, ErrNoDeployment) {
		t.Errorf("index 3: %v", err)
	}
}

// A staged deploy writes the deployment but leaves the boot entries alone;
// FinalizeStaged switches to it, merging /etc as it is then. A later
// deploy replaces a staged one, and a reboot (run/ emptied) before the
// finalize forgets it, after which cleanup removes it.
func TestStagedDeploy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := f.commit("os", osTree("6.1.0-1", nil))
	first := f.deploy("os", DeployOptions{}).Deployment
	b := f.commit("os", osTree("6.1.0-2", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	before := f.defaultTarget()
	res := f.deploy("os", DeployOptions{Stage: true, Kargs: []string{"quiet"}})
	st := res.Deployment
	if !st.Staged || st.Commit != b || res.Switch != "" {
		t.Fatalf("staged deploy: %+v (switch %q)", st, res.Switch)
	}
	if diff := cmp.Diff([]repo.ID{a}, f.order()); diff != "" || f.defaultTarget() != before {
		t.Fatalf("staging changed the boot entries: %s", diff)
	}
	// Another process sees it; cleanup keeps it.
	s2, err := Open(f.path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Staged(); got == nil || got.Path != st.Path || got.Options != "quiet" || got.Kernel != "6.1.0-2" {
		t.Fatalf("staged deployment seen by another Open: %+v", got)
	}
	s2.Close()
	if _, err := f.s.Cleanup(ctx, CleanupOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.Path); err != nil {
		t.Fatalf("cleanup removed the staged deployment: %v", err)
	}
	// The admin edits /etc after the deploy; the finalize keeps the edit.
	os.WriteFile(filepath.Join(first.Path, "etc/hostname"), []byte("late-edit\n"), 0o644)
	record, err := os.ReadFile(filepath.Join(f.path, "run/otree/staged-deployment"))
	if err != nil {
		t.Fatal(err)
	}
	fin, err := f.s.FinalizeStaged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A finalize killed after its switch leaves the record behind; it
	// stages nothing, and must not stage the deployment again once a later
	// deploy drops it from the list.
	if err := os.WriteFile(filepath.Join(f.path, "run/otree/staged-deployment"), record, 0o644); err != nil {
		t.Fatal(err)
	}
	if s4, err := Open(f.path, OpenOptions{}); err != nil || s4.Staged() != nil {
		t.Fatalf("a record naming a listed deployment stages %+v (%v)", s4.Staged(), err)
	} else {
		s4.Close()
	}
	if diff := cmp.Diff([]repo.ID{b, a}, f.order()); diff != "" {
		t.Fatalf("after finalize: %s", diff)
	}
	if fin.Deployment.Staged || fin.Deployment.Index != 0 || f.s.Staged() != nil {
		t.Errorf("finalized deployment %+v, staged %+v", fin.Deployment, f.s.Staged())
	}
	if got, _ := os.ReadFile(filepath.Join(fin.Deployment.Path, "etc/hostname")); string(got) != "late-edit\n" {
		t.Errorf("hostname after finalize = %q", got)
	}
	if f.s.Deployments()[0].Options != "quiet" || f.defaultTarget() == before {
		t.Errorf("finalize did not switch with the staged arguments: %+v", f.s.Deployments()[0])
	}
	if _, err := f.s.FinalizeStaged(ctx); !errors.Is(err, ErrNoStaged) {
		t.Errorf("second finalize: %v", err)
	}

	f.commit("os", osTree("6.1.0-2", testtree.Tree{"usr/bin/b2": testtree.File("b2", 0o755)}))
	f.deploy("os", DeployOptions{}) // drops a
	f.commit("os", osTree("6.1.0-2", testtree.Tree{"usr/bin/b3": testtree.File("b3", 0o755)}))
	f.deploy("os", DeployOptions{}) // drops b, the finalized one
	if f.s.Staged() != nil {
		t.Fatalf("the stale record staged %+v again", f.s.Staged())
	}
	if _, err := os.Stat(fin.Deployment.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dropped deployment was kept: %v", err)
	}

	// A deploy replaces a staged deployment.
	f.commit("os", osTree("6.1.0-3", testtree.Tree{"usr/bin/c": testtree.File("c", 0o755)}))
	c := f.deploy("os", DeployOptions{Stage: true}).Deployment
	// A deploy that fails keeps the staged one staged.
	f.commit("nokernel", testtree.Tree{"usr/bin/x": testtree.File("x", 0o755)})
	var nk *NoKernelError
	if _, err := f.s.Deploy(ctx, "nokernel", DeployOptions{}); !errors.As(err, &nk) {
		t.Fatalf("deploy of a tree without a kernel: %v", err)
	}
	if st := f.s.Staged(); st == nil || st.Path != c.Path {
		t.Fatalf("a failed deploy unstaged %s: %+v", c.Name(), st)
	}
	d := f.commit("os", osTree("6.1.0-3", testtree.Tree{"usr/bin/d": testtree.File("d", 0o755)}))
	f.deploy("os", DeployOptions{})
	if f.s.Staged() != nil || f.order()[0] != d {
		t.Errorf("after a deploy over a staged one: staged %+v, order %v", f.s.Staged(), f.order())
	}
	if _, err := os.Stat(c.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the replaced staged deployment is still there: %v", err)
	}

	// A reboot before the finalize: the record in run/ is gone.
	e := f.deploy("os", DeployOptions{Stage: true, NotAsDefault: true}).Deployment
	if err := os.RemoveAll(filepath.Join(f.path, "run")); err != nil {
		t.Fatal(err)
	}
	s3 := f.reopen()
	if s3.Staged() != nil {
		t.Errorf("staged deployment survived the reboot: %+v", s3.Staged())
	}
	if _, err := s3.Cleanup(ctx, CleanupOptions{NoPrune: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cleanup kept a forgotten staged deployment: %v", err)
	}
	if _, err := s3.Repo().ReadRef(deployRef(e)); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("its ref stayed: %v", err)
	}
}

// Rollback and SetDefault are refused while a deployment is staged to
// become the default, whose finalize at shutdown would put it first again
// and boot it rather than the default chosen; the boot order stays. A
// deployment staged to be appended does not undo them.
func TestReorderRefusedWhileStagedAsDefault(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	b := f.commit("os", osTree("6.1.0-2", nil))
	f.deploy("os", DeployOptions{})
	f.commit("os", osTree("6.1.0-3", nil))
	st := f.deploy("os", DeployOptions{Stage: true}).Deployment
	before := f.defaultTarget()
	if _, err := f.s.Rollback(ctx); !errors.Is(err, ErrStagedDefault) || !strings.Contains(err.Error(), st.Name()) {
		t.Errorf("rollback with %s staged: %v; want ErrStagedDefault naming it", st.Name(), err)
	}
	if _, err := f.s.SetDefault(ctx, 1); !errors.Is(err, ErrStagedDefault) {
		t.Errorf("set-default with %s staged: %v; want ErrStagedDefault", st.Name(), err)
	}
	if diff := cmp.Diff([]repo.ID{b, a}, f.order()); diff != "" || f.defaultTarget() != before {
		t.Errorf("a refused reorder changed the boot entries: %s", diff)
	}
	if got := f.s.Staged(); got == nil || got.Path != st.Path {
		t.Errorf("a refused reorder unstaged %s: %+v", st.Name(), got)
	}
	f.deploy("os", DeployOptions{Stage: true, NotAsDefault: true})
	if _, err := f.s.Rollback(ctx); err != nil {
		t.Fatalf("rollback with a deployment staged to be appended: %v", err)
	}
	if diff := cmp.Diff([]repo.ID{a, b}, f.order()); diff != "" {
		t.Errorf("after rollback: %s", diff)
	}
}

// SetKargsAll (kargs edit-in-place) edits the staged deployment too,
// which boots next once finalized, and the finalize switches with the
// edited arguments; an edit that fails changes neither.
func TestSetKargsAllEditsStaged(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{Kargs: []string{"root=/dev/sda1"}})
	f.commit("os", osTree("6.1.0-2", nil))
	st := f.deploy("os", DeployOptions{Stage: true}).Deployment
	if _, err := f.s.SetKargsAll(ctx, KargsEdit{AppendIfMissing: []string{"bad arg"}}); err == nil {
		t.Fatal("SetKargsAll of an invalid argument succeeded")
	}
	if _, err := f.s.SetKargsAll(ctx, KargsEdit{AppendIfMissing: []string{"console=ttyS0"}}); err != nil {
		t.Fatal(err)
	}
	if got := f.s.Staged(); got == nil || got.Path != st.Path || got.Options != "root=/dev/sda1 console=ttyS0" {
		t.Fatalf("staged deployment after edit-in-place: %+v", got)
	}
	if _, err := f.s.FinalizeStaged(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range f.s.Deployments() {
		if d.Options != "root=/dev/sda1 console=ttyS0" {
			t.Errorf("deployment %d (%s) after the finalize: options %q", d.Index, d.Name(), d.Options)
		}
	}
}

// bootedRoot deploys the branch "os" and opens the deployment as a booted
// system's / would be seen, without mounting anything: the deployment
// itself, booted by its entry's otree= argument, with the physical root
// at sysroot/ (a link standing in for the mount) and boot/ reaching it.
func (f *fixture) bootedRoot() (*Sysroot, *Deployment) {
	t := f.t
	t.Helper()
	f.commit("os", osTree("6.1.0-1", nil))
	booted := f.deploy("os", DeployOptions{}).Deployment
	entries, _ := readEntries(filepath.Join(f.path, "boot/loader/entries"))
	cmdline := entries[0].options
	setImmutable(booted.Path, false) // the stand-ins change its top level
	if err := os.Remove(filepath.Join(booted.Path, "sysroot")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.path, filepath.Join(booted.Path, "sysroot")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(booted.Path, "boot"))
	if err := os.Symlink("sysroot/boot", filepath.Join(booted.Path, "boot")); err != nil {
		t.Fatal(err)
	}
	s, err := Open(booted.Path, OpenOptions{Cmdline: &cmdline})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, booted
}

// Unlock of a sysroot nothing of which is booted (--sysroot naming
// another system's) names that sysroot and matches ErrNotBooted.
func TestUnlockNotBootedNamesSysroot(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	_, err := f.s.Unlock(context.Background(), UnlockDevelopment)
	if !errors.Is(err, ErrNotBooted) || !strings.Contains(err.Error(), "sysroot "+f.s.Path()+": ") {
		t.Errorf("unlock of a sysroot not booted: %v", err)
	}
}

// A hotfix unlock is refused while a deployment is staged: its pristine
// copy is a deploy, which would drop the staged one. Nothing changes.
func TestUnlockHotfixRefusedWhileStaged(t *testing.T) {
	f := newFixture(t)
	s, _ := f.bootedRoot()
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/n": testtree.File("n", 0o755)}))
	if _, err := s.Deploy(context.Background(), "os", DeployOptions{Stage: true}); err != nil {
		t.Fatal(err)
	}
	staged := s.Staged()
	_, err := s.Unlock(context.Background(), UnlockHotfix)
	if err == nil || !strings.Contains(err.Error(), staged.Name()+" is staged") {
		t.Fatalf("hotfix unlock with a staged deployment: %v", err)
	}
	if st := s.Staged(); st == nil || st.Path != staged.Path || len(s.Deployments()) != 1 || s.Deployments()[0].Unlocked != "" {
		t.Errorf("after the refusal: staged %+v, %d deployments", st, len(s.Deployments()))
	}
}

// On a booted system / is the booted deployment's directory, and it stays
// the booted one through any number of switches, although the first
// switch removes the links its otree= argument was resolved through. It
// used to be forgotten then, and the second deploy dropped it.
func TestBootedSurvivesSwitches(t *testing.T) {
	f := newFixture(t)
	s, booted := f.bootedRoot()
	for i := range 3 {
		f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/n": testtree.File(fmt.Sprint(i), 0o755)}))
		if _, err := s.Deploy(context.Background(), "os", DeployOptions{}); err != nil {
			t.Fatal(err)
		}
		b := s.Booted()
		if b == nil || b.Path != booted.Path {
			t.Fatalf("after deploy %d the booted deployment is %+v, want %s", i+1, b, booted.Path)
		}
		if _, err := os.Stat(filepath.Join(booted.Path, "usr")); err != nil {
			t.Fatalf("after deploy %d the booted deployment is gone: %v", i+1, err)
		}
		if n := len(s.Deployments()); n != 2 || !s.Deployments()[0].Pending || !s.Deployments()[1].Booted {
			t.Fatalf("after deploy %d: %d deployments, want the new pending one and the booted one", i+1, n)
		}
	}
}

// --overlay-initrd: the images load after the tree's initramfs, in the
// order given, are stored once by content, survive later switches while a
// deployment uses them (staged ones included), and go with the last
// deployment that does. A missing image fails the deploy, naming it.
func TestOverlayInitrds(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.cpio"), filepath.Join(dir, "b.cpio")
	os.WriteFile(a, []byte("overlay a"), 0o644)
	os.WriteFile(b, []byte("overlay b"), 0o644)
	idA, idB := repo.Sum([]byte("overlay a")).String(), repo.Sum([]byte("overlay b")).String()
	img := func(id string) string { return filepath.Join(f.path, "boot", overlayRel(id)) }
	initrds := func() [][]string {
		entries := f.entries()
		var out [][]string
		for _, e := range entries {
			out = append(out, e.initrds)
		}
		return out
	}

	f.commit("os", osTree("6.1.0-1", nil))
	d1 := f.deploy("os", DeployOptions{OverlayInitrds: []string{b, a}}).Deployment
	if !slices.Equal(d1.OverlayInitrds, []string{idB, idA}) {
		t.Fatalf("deployment overlays %q", d1.OverlayInitrds)
	}
	kdir := "/boot/otree/testos-" + d1.BootCsum + "/"
	want := []string{kdir + "initramfs-6.1.0-1.img", "/boot/" + overlayRel(idB), "/boot/" + overlayRel(idA)}
	if got := initrds(); len(got) != 1 || !slices.Equal(got[0], want) {
		t.Fatalf("entry initrds %q, want %q", got, want)
	}
	if data, err := os.ReadFile(img(idA)); err != nil || string(data) != "overlay a" {
		t.Fatalf("image a: %q, %v", data, err)
	}

	// A missing image: nothing changes.
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/x": testtree.File("x", 0o755)}))
	if _, err := f.s.Deploy(context.Background(), "os", DeployOptions{OverlayInitrds: []string{filepath.Join(dir, "nope")}}); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "nope")) {
		t.Fatalf("deploy with a missing overlay: %v", err)
	}
	if len(f.s.Deployments()) != 1 {
		t.Fatalf("a failed deploy left %d deployments", len(f.s.Deployments()))
	}

	// A deploy without overlays does not inherit them; d1, kept as the
	// merge deployment, keeps its own, and its images stay.
	f.deploy("os", DeployOptions{})
	if got := initrds(); len(got) != 2 || len(got[0]) != 1 || !slices.Equal(got[1], want) {
		t.Fatalf("entry initrds after a plain deploy: %q", got)
	}
	if ds := f.s.Deployments(); len(ds[0].OverlayInitrds) != 0 || !slices.Equal(ds[1].OverlayInitrds, []string{idB, idA}) {
		t.Fatalf("overlays read back: %q, %q", ds[0].OverlayInitrds, ds[1].OverlayInitrds)
	}

	// A staged deploy with image b alone: kept while staged, loaded
	// once finalized; d1 then goes, and with it image a.
	f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/y": testtree.File("y", 0o755)}))
	f.deploy("os", DeployOptions{Stage: true, OverlayInitrds: []string{b}})
	f.deploy("os^", DeployOptions{Stage: true, OverlayInitrds: []string{b}}) // replaces the staged one
	if st := f.s.Staged(); st == nil || !slices.Equal(st.OverlayInitrds, []string{idB}) {
		t.Fatalf("staged overlays: %+v", st)
	}
	if _, err := f.s.FinalizeStaged(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ds := f.s.Deployments(); !slices.Equal(ds[0].OverlayInitrds, []string{idB}) {
		t.Fatalf("finalized overlays %q", ds[0].OverlayInitrds)
	}
	// The temporary file of an image write that was killed goes too.
	tmp, err := os.CreateTemp(filepath.Dir(img(idA)), durable.TempPattern)
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	f.deploy("os", DeployOptions{})
	if _, err := os.Stat(img(idA)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("image a outlived every deployment using it: %v", err)
	}
	if _, err := os.Stat(tmp.Name()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary file of an image write left by cleanup: %v", err)
	}
	if _, err := os.Stat(img(idB)); err != nil {
		t.Errorf("image b, used by a listed deployment: %v", err)
	}
}

// Kernel arguments may hold what ends the kernel's own ("--", after which
// the rest is init's) or an unclosed quote: otree= comes first, so the
// entries still resolve, and the deployment boots and stays manageable.
func TestKargsThatEndParsing(t *testing.T) {
	for _, args := range [][]string{{"--", "single"}, {`a="b`}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			f := newFixture(t)
			f.commit("os", osTree("6.1.0-1", nil))
			d := f.deploy("os", DeployOptions{KargsAppend: args}).Deployment
			if got := f.defaultTarget(); got != d.Path {
				t.Fatalf("otree= resolves to %s, want %s", got, d.Path)
			}
			s2, err := Open(f.path, OpenOptions{})
			if err != nil {
				t.Fatalf("reopening: %v", err)
			}
			defer s2.Close()
			if ds := s2.Deployments(); len(ds) != 1 || ds[0].Options != strings.Join(args, " ") {
				t.Fatalf("reopened: %+v", ds)
			}
			// Booted with that command line, prepare-root finds its way.
			v, ok := BootArgFromCmdline("BOOT_IMAGE=x " + entryOptions(t, f.path))
			if a, err := ParseBootArg(v); !ok || err != nil || a.OS != "testos" {
				t.Errorf("command line: otree=%q %v %v", v, ok, err)
			}
			f.deploy("os", DeployOptions{})
			if n := len(f.s.Deployments()); n != 2 {
				t.Errorf("%d deployments after a second deploy", n)
			}
		})
	}
}

// entryOptions is the options line of the default entry.
func entryOptions(t *testing.T, sys string) string {
	t.Helper()
	entries, err := readEntries(filepath.Join(sys, "boot", "loader", "entries"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("reading entries: %v", err)
	}
	return entries[0].options
}

// A deploy that fails after its switch (here: re-reading the new entries)
// leaves the new deployment and its new kernel in place: the entries boot
// them by default now.
func TestDeployFailingAfterSwitchKeepsDeployment(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	b := f.commit("os", osTree("6.1.0-2", testtree.Tree{"usr/bin/new": testtree.File("x", 0o755)}))
	testHookSwitched = func() error { return errors.New("injected failure after the switch") }
	defer func() { testHookSwitched = nil }()
	_, err := f.s.Deploy(context.Background(), "os", DeployOptions{})
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("err = %v", err)
	}
	testHookSwitched = nil
	s2 := f.reopen()
	ds := s2.Deployments()
	if len(ds) != 2 || ds[0].Commit != b {
		t.Fatalf("deployments %+v, want the new one first", ds)
	}
	if _, err := os.Stat(filepath.Join(ds[0].Path, "usr/bin/new")); err != nil {
		t.Errorf("the default deployment's tree: %v", err)
	}
	entries, err := readEntries(filepath.Join(f.path, "boot", "loader", "entries"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("reading entries: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.path, entries[0].linux)); err != nil {
		t.Errorf("the default entry's kernel: %v", err)
	}
}

// The devicetree and FIPS HMAC file beside the kernel go to /boot under
// the names boot loaders and dracut look for; the entry names the
// devicetree, which joins the boot checksum.
func TestDevicetreeAndHMAC(t *testing.T) {
	f := newFixture(t)
	f.commit("plain", osTree("6.1.0-1", nil))
	plain := f.deploy("plain", DeployOptions{}).Deployment
	f.commit("board", osTree("6.1.0-1", testtree.Tree{
		"usr/lib/modules/6.1.0-1/devicetree":    testtree.File("dtb", 0o644),
		"usr/lib/modules/6.1.0-1/.vmlinuz.hmac": testtree.File("hmac", 0o644),
	}))
	d := f.deploy("board", DeployOptions{}).Deployment
	if d.BootCsum == plain.BootCsum || !d.Devicetree {
		t.Errorf("bootcsum %s (plain %s), devicetree %v", d.BootCsum, plain.BootCsum, d.Devicetree)
	}
	kdir := filepath.Join(f.path, "boot/otree/testos-"+d.BootCsum)
	for name, want := range map[string]string{"devicetree-6.1.0-1": "dtb", ".vmlinuz-6.1.0-1.hmac": "hmac"} {
		if got, err := os.ReadFile(filepath.Join(kdir, name)); string(got) != want {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	entries := f.entries()
	if want := "/boot/otree/testos-" + d.BootCsum + "/devicetree-6.1.0-1"; entries[0].devicetree != want || entries[1].devicetree != "" {
		t.Errorf("devicetree lines %q, %q; want %q, none", entries[0].devicetree, entries[1].devicetree, want)
	}
	if !bytes.Contains(renderGrub(entries, 0), []byte("\tdevicetree '"+entries[0].devicetree+"'\n")) {
		t.Error("grub.cfg lacks the devicetree")
	}
	s2 := f.reopen()
	if !s2.Deployments()[0].Devicetree || s2.Deployments()[1].Devicetree {
		t.Error("reopened: devicetree flags lost")
	}
}

// dtbTree is osTree with a dtb/ directory of device trees beside the
// kernel, and more when given.
func dtbTree(more testtree.Tree) testtree.Tree {
	t := testtree.Tree{
		"usr/lib/modules/6.1.0-1/dtb/vendor/board.dtb": testtree.File("board dtb", 0o640),
		"usr/lib/modules/6.1.0-1/dtb/other.dtb":        testtree.File("other dtb", 0o644),
		"usr/lib/modules/6.1.0-1/dtb/vendor":           testtree.Dir(0o750),
	}
	for k, v := range more {
		t[k] = v
	}
	return osTree("6.1.0-1", t)
}

// A kernel with a dtb/ directory gets a copy of it in its boot directory,
// named by the entry's fdtdir line; the directory counts in the boot
// checksum, and status finds it again, listed or staged. GRUB has no
// fdtdir, so grub.cfg names none.
func TestFdtDir(t *testing.T) {
	f := newFixture(t)
	f.commit("plain", osTree("6.1.0-1", nil))
	plain := f.deploy("plain", DeployOptions{}).Deployment
	f.commit("boards", dtbTree(nil))
	d := f.deploy("boards", DeployOptions{}).Deployment
	if d.BootCsum == plain.BootCsum || !d.FdtDir || d.Devicetree {
		t.Errorf("bootcsum %s (plain %s), fdtdir %v, devicetree %v", d.BootCsum, plain.BootCsum, d.FdtDir, d.Devicetree)
	}
	kdir := filepath.Join(f.path, "boot/otree/testos-"+d.BootCsum)
	for name, want := range map[string]struct {
		content string
		mode    os.FileMode
	}{
		"dtb/vendor/board.dtb": {"board dtb", 0o640},
		"dtb/other.dtb":        {"other dtb", 0o644},
		"dtb/vendor":           {"", fs.ModeDir | 0o750},
	} {
		p := filepath.Join(kdir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode() != want.mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want.mode)
		}
		if fi.IsDir() {
			continue
		}
		// A copy of its own: nothing done to the repository's object (or
		// the deployment's hardlink of it) reaches what the loader reads.
		if n := fi.Sys().(*syscall.Stat_t).Nlink; n != 1 {
			t.Errorf("%s: %d links, want a copy", name, n)
		}
		if got, err := os.ReadFile(p); string(got) != want.content {
			t.Errorf("%s: %q %v, want %q", name, got, err, want.content)
		}
	}
	if _, err := os.Lstat(filepath.Join(kdir, "dtb.tmp")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dtb.tmp left behind: %v", err)
	}
	entries := f.entries()
	want := "/boot/otree/testos-" + d.BootCsum + "/dtb"
	if entries[0].fdtdir != want || entries[1].fdtdir != "" || entries[0].devicetree != "" {
		t.Errorf("fdtdir lines %q, %q (devicetree %q); want %q, none", entries[0].fdtdir, entries[1].fdtdir, entries[0].devicetree, want)
	}
	raw, err := os.ReadFile(filepath.Join(f.path, "boot/loader/entries", entries[0].file))
	if err != nil || !bytes.Contains(raw, []byte("\nfdtdir "+want+"\n")) {
		t.Errorf("entry %s lacks the fdtdir line: %s %v", entries[0].file, raw, err)
	}
	if cfg := renderGrub(entries, 0); bytes.Contains(cfg, []byte("fdtdir")) || bytes.Contains(cfg, []byte("/dtb")) {
		t.Errorf("grub.cfg names the dtb directory:\n%s", cfg)
	}

	// Staged, the record keeps it until the finalize writes the entry.
	f.commit("boards", dtbTree(testtree.Tree{"usr/bin/new": testtree.File("x", 0o755)}))
	f.deploy("boards", DeployOptions{Stage: true})
	s2 := f.reopen()
	if ds := s2.Deployments(); !ds[0].FdtDir || ds[1].FdtDir {
		t.Error("reopened: fdtdir flags lost")
	}
	if st := s2.Staged(); st == nil || !st.FdtDir {
		t.Errorf("reopened: staged deployment %+v lost its fdtdir", st)
	}
	res, err := s2.FinalizeStaged(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Deployment.FdtDir || res.Deployment.BootCsum != d.BootCsum {
		t.Errorf("finalized: fdtdir %v, bootcsum %s, want %s", res.Deployment.FdtDir, res.Deployment.BootCsum, d.BootCsum)
	}
	if entries, err := readEntries(filepath.Join(f.path, "boot/loader/entries")); err != nil || entries[0].fdtdir != want {
		t.Errorf("finalized entry: %v %v, want fdtdir %q", entries, err, want)
	}
}

// A single devicetree wins over a dtb/ directory, as in OSTree: the entry
// names the file, and the directory is neither installed nor counted in
// the boot checksum.
func TestDevicetreeBeforeFdtDir(t *testing.T) {
	f := newFixture(t)
	f.commit("file", osTree("6.1.0-1", testtree.Tree{"usr/lib/modules/6.1.0-1/devicetree": testtree.File("dtb", 0o644)}))
	file := f.deploy("file", DeployOptions{}).Deployment
	f.commit("both", dtbTree(testtree.Tree{"usr/lib/modules/6.1.0-1/devicetree": testtree.File("dtb", 0o644)}))
	d := f.deploy("both", DeployOptions{}).Deployment
	if !d.Devicetree || d.FdtDir || d.BootCsum != file.BootCsum {
		t.Errorf("devicetree %v, fdtdir %v, bootcsum %s (devicetree alone: %s)", d.Devicetree, d.FdtDir, d.BootCsum, file.BootCsum)
	}
	entries := f.entries()
	if entries[0].devicetree == "" || entries[0].fdtdir != "" {
		t.Errorf("entry: devicetree %q, fdtdir %q", entries[0].devicetree, entries[0].fdtdir)
	}
	if _, err := os.Lstat(filepath.Join(f.path, "boot/otree/testos-"+d.BootCsum, "dtb")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dtb installed beside the devicetree: %v", err)
	}
}

// What a boot loader reads from dtb/ must be the device trees themselves:
// a link there (or a dtb that is one) is refused, naming the commit and
// the path, before anything is written.
func TestFdtDirRefusesLinks(t *testing.T) {
	f := newFixture(t)
	f.commit("a", osTree("6.1.0-1", nil))
	f.deploy("a", DeployOptions{})
	before, boot := f.order(), bootFiles(t, f.path)
	for name, tc := range map[string]struct {
		tree testtree.Tree
		want string
	}{
		"link inside": {dtbTree(testtree.Tree{"usr/lib/modules/6.1.0-1/dtb/vendor/evil.dtb": testtree.Symlink("/etc/shadow")}),
			"usr/lib/modules/6.1.0-1/dtb/vendor/evil.dtb is not a regular file"},
		"dtb a link": {osTree("6.1.0-1", testtree.Tree{"usr/lib/modules/6.1.0-1/dtb": testtree.Symlink("/usr/share/dtb")}),
			"usr/lib/modules/6.1.0-1/dtb is not a directory"},
	} {
		f.deployRefused(name, tc.tree, tc.want, before)
		if got := bootFiles(t, f.path); !slices.Equal(got, boot) {
			t.Errorf("%s: boot/otree holds %v, want %v", name, got, boot)
		}
	}
}

// A dtb/ that does not fit on /boot fails the deploy and leaves /boot as
// it was: no half-copied directory, and no kernel directory around it.
func TestFdtDirFullBoot(t *testing.T) {
	f := newFixture(t)
	boot := filepath.Join(f.path, "boot")
	if err := unix.Mount("none", boot, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs on boot/: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(boot, unix.MNT_DETACH) })
	f.commit("a", osTree("6.1.0-1", nil))
	f.deploy("a", DeployOptions{})
	before, files := f.order(), bootFiles(t, f.path)
	f.commit("boards", dtbTree(testtree.Tree{"usr/lib/modules/6.1.0-1/dtb/vendor/big.dtb": testtree.File(strings.Repeat("x", 2<<20), 0o644)}))
	_, err := f.s.Deploy(context.Background(), "boards", DeployOptions{})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "dtb") {
		t.Fatalf("deploy onto a full /boot: %v, want ENOSPC naming the dtb directory", err)
	}
	if diff := cmp.Diff(before, f.order()); diff != "" {
		t.Error(diff)
	}
	if got := bootFiles(t, f.path); !slices.Equal(got, files) {
		t.Errorf("boot/otree after the failed deploy: %v, want %v", got, files)
	}
}

// Boot files that are not regular files, and kernel versions a boot
// entry's line cannot carry, are refused before anything is written.
func TestDeployRefusesBadKernelFiles(t *testing.T) {
	f := newFixture(t)
	f.commit("a", osTree("6.1.0-1", nil))
	f.deploy("a", DeployOptions{})
	before := f.order()
	for name, tc := range map[string]struct {
		tree testtree.Tree
		want string
	}{
		"kernel link": {osTree("6.1.0-1", testtree.Tree{"usr/lib/modules/6.1.0-1/vmlinuz": testtree.Symlink("/etc/shadow")}),
			"usr/lib/modules/6.1.0-1/vmlinuz is not a regular file"},
		"initramfs link": {osTree("6.1.0-1", testtree.Tree{"usr/lib/modules/6.1.0-1/initramfs.img": testtree.Symlink("../../x")}),
			"initramfs.img is not a regular file"},
		"newline in version": {osTree("6.1\noptions init=evil", nil), "space or control character"},
		"space in version":   {osTree("6.1 x", nil), "space or control character"},
	} {
		f.deployRefused(name, tc.tree, tc.want, before)
	}
}

// A version in the commit's metadata joins the boot menu's title, as
// OSTree writes it, unless the OS name holds it already.
func TestEntryTitleCarriesVersion(t *testing.T) {
	f := newFixture(t)
	for i, tc := range []struct{ version, want string }{
		{"2.0", "Test OS 1 2.0 (otree:testos:0)"},
		{"1", "Test OS 1 (otree:testos:0)"},
		{"bad\nversion", "Test OS 1 (otree:testos:0)"},
	} {
		dir := t.TempDir()
		testtree.Create(t, dir, osTree("6.1.0-1", testtree.Tree{"usr/bin/n": testtree.File(fmt.Sprint(i), 0o755)}))
		res, err := commit.Commit(context.Background(), f.s.Repo(), commit.Options{
			Branch: "os", Subject: "v", Timestamp: time.Unix(int64(1700000000+i), 0),
			Metadata: repo.Metadata{{Key: "version", Value: []byte(tc.version)}},
			Sources:  []commit.Source{{Kind: commit.SourceDir, Path: dir}},
		})
		if err != nil {
			t.Fatal(err)
		}
		f.deploy(res.Commit.String(), DeployOptions{})
		entries := f.entries()
		if entries[0].title != tc.want {
			t.Errorf("version %q: title %q, want %q", tc.version, entries[0].title, tc.want)
		}
	}
}

// The title reads os-release's values as the shell would, as OSTree
// reads them: quotes and backslash escapes dropped, the last assignment
// counting (one with an unclosed quote is skipped), and ID standing in for
// a missing PRETTY_NAME.
func TestEntryTitleUnquotesOSRelease(t *testing.T) {
	f := newFixture(t)
	for i, tc := range []struct{ osRelease, want string }{
		{`PRETTY_NAME="Foo \"bar\" \$5 \\ \n"`, `Foo "bar" $5 \ \n`},
		{`PRETTY_NAME='Foo \ bar'`, `Foo \ bar`},
		{`PRETTY_NAME=Foo\ bar`, "Foo bar"},
		{`PRETTY_NAME="a"b'c'`, "abc"},
		{"PRETTY_NAME=\"A\"\nPRETTY_NAME=\"B\"", "B"},
		{"PRETTY_NAME=\"A\"\nPRETTY_NAME=\"B", "A"},
		{"NAME=x\nID=debian", "debian"},
		{"ID=x", "x"},
		{"NAME=x", "testos"},
	} {
		tree := osTree("6.1.0-1", testtree.Tree{
			"usr/lib/os-release": testtree.File(tc.osRelease+"\n", 0o644),
			"usr/bin/n":          testtree.File(fmt.Sprint(i), 0o755),
		})
		f.deploy(f.commit("os", tree).String(), DeployOptions{})
		entries := f.entries()
		if want := tc.want + " (otree:testos:0)"; entries[0].title != want {
			t.Errorf("os-release %q: title %q, want %q", tc.osRelease, entries[0].title, want)
		}
	}
}

// The title's os-release is read inside the tree: its links resolve from
// the tree's root, as once booted, so one to an absolute path never reads
// the machine's file, and a FIFO is passed over rather than waited on.
func TestEntryTitleReadsOnlyTheTree(t *testing.T) {
	f := newFixture(t)
	host := filepath.Join(t.TempDir(), "os-release")
	if err := os.WriteFile(host, []byte("PRETTY_NAME=\"Host OS\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inTree := "PRETTY_NAME=\"Tree OS\"\n"
	for i, tc := range []struct {
		name string
		over testtree.Tree
		want string
	}{
		// The host's path exists in the tree too: the tree's file counts.
		{"absolute link", testtree.Tree{"usr/lib/os-release": testtree.Symlink(host),
			host[1:]: testtree.File(inTree, 0o644)}, "Tree OS"},
		{"absolute link the tree lacks", testtree.Tree{"usr/lib/os-release": testtree.Symlink(host)}, "testos"},
		{"link up and out", testtree.Tree{"usr/lib/os-release": testtree.Symlink(strings.Repeat("../", 40) + host[1:])}, "testos"},
		{"relative link", testtree.Tree{"usr/lib/os-release": testtree.Symlink("os.release.d/x"),
			"usr/lib/os.release.d/x": testtree.File(inTree, 0o644)}, "Tree OS"},
		{"FIFO", testtree.Tree{"usr/lib/os-release": {Mode: fs.ModeNamedPipe | 0o644}}, "testos"},
	} {
		tc.over["usr/bin/n"] = testtree.File(fmt.Sprint(i), 0o755)
		// Before the fix, the FIFO blocked the deploy for good.
		f.deploy(f.commit("os", osTree("6.1.0-1", tc.over)).String(), DeployOptions{})
		entries := f.entries()
		if want := tc.want + " (otree:testos:0)"; entries[0].title != want {
			t.Errorf("%s: title %q, want %q", tc.name, entries[0].title, want)
		}
	}
}

// Cleanup removes only what otree names: the admin's files beside the
// deployments and kernels stay, and so do branches under otree/ that are
// not a deployment's ref (OSTree's cleanup keeps such refs too).
func TestCleanupLeavesForeignFiles(t *testing.T) {
	f := newFixture(t)
	id := f.commit("a", osTree("6.1.0-1", nil))
	f.deploy("a", DeployOptions{})
	mine := []string{"otree/devel", "otree/testos/mybranch", "otree/testos/" + id.String(), "otree/x/y/" + id.String() + ".0"}
	for _, r := range mine {
		if err := f.s.Repo().SetRef(r, id); err != nil {
			t.Fatal(err)
		}
	}
	staleRef := "otree/testos/" + id.String() + ".9"
	if err := f.s.Repo().SetRef(staleRef, id); err != nil {
		t.Fatal(err)
	}
	deployDir := filepath.Join(f.path, "otree/deploy/testos/deploy")
	foreign := []string{
		filepath.Join(deployDir, "backup/data"),
		filepath.Join(deployDir, "notes.txt"),
		filepath.Join(f.path, "boot/otree/mykernel/vmlinuz"),
		filepath.Join(f.path, "boot", overlayDir, "keep.img"),
	}
	for _, p := range foreign {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An otree leftover beside them is removed.
	stale := filepath.Join(deployDir, strings.Repeat("ab", 32)+".0")
	os.MkdirAll(stale, 0o755)
	rep, err := f.s.Cleanup(context.Background(), CleanupOptions{NoPrune: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range foreign {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("cleanup removed %s: %v", p, err)
		}
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) || !slices.Contains(rep.Deployments, stale) {
		t.Errorf("stale deployment directory: %v, report %v", err, rep.Deployments)
	}
	for _, r := range mine {
		if got, err := f.s.Repo().ReadRef(r); err != nil || got != id {
			t.Errorf("cleanup removed the branch %s: %v", r, err)
		}
	}
	if diff := cmp.Diff([]string{staleRef}, rep.Refs); diff != "" {
		t.Errorf("refs removed (-want +got):\n%s", diff)
	}
}

// A tree whose /etc or /usr/etc is not a directory (a symlink, which the
// /etc merge would write through) is refused, naming it, before anything
// is moved, and nothing is written where the link points.
func TestEtcSymlinkRefused(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	for name, over := range map[string]testtree.Tree{
		"/usr/etc": {"usr/etc/hostname": gone, "usr/etc/motd": gone, "usr/etc/ssh/sshd_config": gone, "usr/etc/ssh": gone,
			"usr/etc": testtree.Symlink(outside)},
		"/etc": {"usr/etc/hostname": gone, "usr/etc/motd": gone, "usr/etc/ssh/sshd_config": gone, "usr/etc/ssh": gone, "usr/etc": gone,
			"etc": testtree.Symlink(outside)},
	} {
		branch := "link" + strings.ReplaceAll(name, "/", "-")
		f.commit(branch, osTree("6.1.0-1", over))
		_, err := f.s.Deploy(context.Background(), branch, DeployOptions{})
		if err == nil || !strings.Contains(err.Error(), name+" is not a directory") {
			t.Errorf("%s: deploy: %v", name, err)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("%s: deploy wrote through the link: %v", name, ents)
		}
	}
}

// A tree whose /var or /sysroot is a symlink is refused, naming it:
// prepare-root would refuse to boot it (a mount there follows the link out
// of the deployment). The tree's /var is not listed through the link for
// the warnings about its content either.
func TestVarSysrootSymlinkRefused(t *testing.T) {
	f := newFixture(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret-name"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"var", "sysroot"} {
		f.commit("link-"+name, osTree("6.1.0-1", testtree.Tree{"var": gone, name: testtree.Symlink(outside)}))
		_, err := f.s.Deploy(context.Background(), "link-"+name, DeployOptions{})
		if err == nil || !strings.Contains(err.Error(), "/"+name+" is not a directory") {
			t.Errorf("%s: deploy: %v", name, err)
		}
		if len(f.s.Deployments()) != 0 {
			t.Errorf("%s: deployed: %v", name, f.s.Deployments())
		}
	}
	dep := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dep, "var")); err != nil {
		t.Fatal(err)
	}
	if w := varWarnings(&Deployment{Path: dep}); len(w) != 0 {
		t.Errorf("warnings listed /var through its link: %q", w)
	}
}

// Two upgrades at once (two processes, here two Sysroots) deploy the new
// commit once: the second finds nothing to do, and the rollback stays.
func TestConcurrentUpgradesDeployOnce(t *testing.T) {
	f := newFixture(t)
	a := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	b := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		s, err := Open(f.path, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Upgrade(context.Background(), UpgradeOptions{})
		}()
	}
	wg.Wait()
	noUpgrade := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrNoUpgrade):
			noUpgrade++
		case err != nil:
			t.Fatalf("upgrade: %v", err)
		}
	}
	s := f.reopen()
	ds := s.Deployments()
	if noUpgrade != 1 || len(ds) != 2 || ds[0].Commit != b || ds[1].Commit != a {
		var got []string
		for _, d := range ds {
			got = append(got, d.Name())
		}
		t.Errorf("after two upgrades at once: %d found nothing to do, deployments %v; want b then a", noUpgrade, got)
	}
}

// An empty sysroot path is refused, not taken as the current directory,
// whatever it holds.
func TestEmptySysrootPathRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "important.txt"), []byte("user data"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if err := InitFS(""); err == nil {
		t.Error(`InitFS("") succeeded`)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf(`InitFS("") wrote into the current directory: %d entries`, len(ents))
	}
	if err := InitFS("."); err != nil {
		t.Fatal(err)
	}
	if s, err := Open("", OpenOptions{}); err == nil {
		s.Close()
		t.Error(`Open("") opened the sysroot in the current directory`)
	}
	s, err := Open(".", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// An Open without the sysroot lock (status) that a deploy's switch and
// cleanup overtake, between its reading boot/loader and the entries and
// deployments that link leads to, reads the state again rather than
// failing on what the cleanup removed.
func TestOpenOvertakenBySwitch(t *testing.T) {
	f := newFixture(t)
	f.commit("testos/main", osTree("6.1", nil))
	f.deploy("testos/main", DeployOptions{})
	next := f.commit("testos/main", osTree("6.1", testtree.Tree{"usr/bin/new": testtree.File("2", 0o644)}))

	w := f.reopen()
	testHookLoadRead = func() {
		testHookLoadRead = nil
		if _, err := w.Deploy(context.Background(), "testos/main", DeployOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { testHookLoadRead = nil }()
	r, err := Open(f.path, OpenOptions{})
	if err != nil {
		t.Fatalf("Open overtaken by a deploy: %v", err)
	}
	defer r.Close()
	if ds := r.Deployments(); len(ds) != 2 || ds[0].Commit != next {
		t.Errorf("deployments after the deploy: %v, want %s first of 2", ds, next)
	}
}

// Kernel arguments are bytes (splitArgs): one that is not UTF-8 reaches
// the boot entry of a staged deployment as it does a deploy's, through the
// record the finalize reads.
func TestStagedKargsKeepBytes(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	f.commit("os", osTree("6.1.0-2", nil))
	const arg = "label=caf\xe9"
	f.deploy("os", DeployOptions{Stage: true, Kargs: []string{arg}})
	s := f.reopen()
	if got := s.Staged(); got == nil || got.Options != arg {
		t.Fatalf("staged deployment seen by another Open: %+v, want options %q", got, arg)
	}
	if _, err := s.FinalizeStaged(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.Deployments()[0].Options; got != arg {
		t.Errorf("finalized deployment's options %q, want %q", got, arg)
	}
}

// A panic in the caller's Progress ends the deploy as a failure does,
// raised again once the checkout's files are written: the new
// deployment's directory and ref go with it, rather than wait for a
// cleanup, and the deployments are as they were.
func TestDeployProgressPanicRemovesDeployment(t *testing.T) {
	f := newFixture(t)
	one := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	two := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/etc/motd": testtree.File("two\n", 0o644)}))
	func() {
		defer func() {
			if p := recover(); p != "from Progress" {
				t.Errorf("the deploy raised %v, want Progress's panic", p)
			}
		}()
		f.s.Deploy(context.Background(), "os", DeployOptions{Progress: func(checkout.Stats) { panic("from Progress") }})
	}()
	dir := filepath.Join(f.path, "otree/deploy/testos/deploy")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{one.String() + ".0", one.String() + ".0.origin"}; !slices.Equal(names, want) {
		t.Errorf("%s after the panic: %v, want %v", dir, names, want)
	}
	refs, err := f.s.Repo().ListRefs("otree/testos")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if r.Commit == two {
			t.Errorf("ref %s to the failed deployment's commit survived the panic", r.Name)
		}
	}
	if diff := cmp.Diff([]repo.ID{one}, f.order()); diff != "" {
		t.Errorf("deployments after the panic: %s", diff)
	}
	// The sysroot is usable: its lock was let go.
	if got := f.deploy("os", DeployOptions{}).Deployment.Commit; got != two {
		t.Errorf("the next deploy deployed %s, want %s", got, two)
	}
}

// A deploy whose cleanup fails after the switch (here the prune, refused
// while a ref cannot be read) returns its result with a *CleanupError:
// the new deployment is listed and the default, so a caller that sees the
// error does not take the deploy for undone.
func TestDeployCleanupErrorComesWithResult(t *testing.T) {
	f := newFixture(t)
	a := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	b := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	if err := os.WriteFile(f.s.Repo().Path("refs", "heads", "junk"), []byte("not a ref\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := f.s.Deploy(context.Background(), "os", DeployOptions{})
	var ce *CleanupError
	if !errors.As(err, &ce) || ce.Done != "deployed" || !strings.Contains(err.Error(), "junk") {
		t.Fatalf("deploy with an unreadable ref: %v, want a *CleanupError naming junk", err)
	}
	if res == nil || res.Deployment == nil || res.Deployment.Commit != b || res.Deployment.Index != 0 {
		t.Fatalf("result with the CleanupError: %+v", res)
	}
	if diff := cmp.Diff([]repo.ID{b, a}, f.order()); diff != "" {
		t.Errorf("deployments after the deploy whose cleanup failed (-want +got):\n%s", diff)
	}
}

// An upgrade or switch whose deploy's cleanup fails returns, with the
// *CleanupError, its result naming the new deployment, as Deploy does: a
// caller that sees the error can tell what was deployed.
func TestUpgradeCleanupErrorComesWithResult(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	b := f.commit("os", osTree("6.1.0-1", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	c := f.commit("other", osTree("6.1.0-1", testtree.Tree{"usr/bin/c": testtree.File("c", 0o755)}))
	if err := os.WriteFile(f.s.Repo().Path("refs", "heads", "junk"), []byte("not a ref\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() (*UpgradeResult, error)
		want repo.ID
	}{
		{"upgrade", func() (*UpgradeResult, error) { return f.s.Upgrade(context.Background(), UpgradeOptions{}) }, b},
		{"switch", func() (*UpgradeResult, error) {
			return f.s.SwitchRef(context.Background(), "other", UpgradeOptions{})
		}, c},
	} {
		res, err := tc.run()
		var ce *CleanupError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "junk") {
			t.Fatalf("%s with an unreadable ref: %v, want a *CleanupError naming junk", tc.name, err)
		}
		if res == nil || res.Commit != tc.want || res.Deployed == nil || res.Deployed.Deployment == nil ||
			res.Deployed.Deployment.Commit != tc.want || res.Deployed.Deployment.Index != 0 {
			t.Fatalf("%s: result with the CleanupError: %+v", tc.name, res)
		}
		if got := f.order(); len(got) == 0 || got[0] != tc.want {
			t.Errorf("%s: deployments %v, want %s first", tc.name, got, tc.want)
		}
	}
}

// A deploy that picks the only stateroot, none being named, refuses one
// os-init left half made (killed before its var), as it refuses such a
// stateroot named: the deployment would boot without a /var.
func TestDeployRefusesHalfMadeStateroot(t *testing.T) {
	f := newFixture(t)
	f.commit("a", osTree("6.1.0-1", nil))
	if err := os.RemoveAll(filepath.Join(f.path, "otree", "deploy", "testos", "var")); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.Deploy(context.Background(), "a", DeployOptions{})
	v := filepath.Join(f.path, "otree", "deploy", "testos", "var")
	var ns *NoStaterootError
	// Named as what is missing: the stateroot's directory is there.
	if !errors.As(err, &ns) || ns.OS != "testos" || ns.Missing != v || !strings.Contains(err.Error(), v) {
		t.Errorf("deploy to the only stateroot, without var: %v, want a NoStaterootError for testos naming %s", err, v)
	}
	_, err = f.s.Deploy(context.Background(), "a", DeployOptions{OS: "testos"})
	if !errors.As(err, &ns) || ns.Missing != v || !strings.Contains(err.Error(), v) {
		t.Errorf("deploy to testos named, without var: %v, want it to name %s", err, v)
	}
	if n := len(f.s.Deployments()); n != 0 {
		t.Errorf("%d deployments, want none", n)
	}
	// os-init completes it.
	if err := f.s.OSInit(context.Background(), "testos"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Deploy(context.Background(), "a", DeployOptions{}); err != nil {
		t.Errorf("deploy after os-init completed the stateroot: %v", err)
	}
}

// openWaiting opens the sysroot at path again, as another process would,
// with a logger that signals waiting once the handle logs that it waits
// for the sysroot lock; the handle is closed when t ends.
func openWaiting(t *testing.T, path string) (*Sysroot, <-chan struct{}) {
	t.Helper()
	waiting := make(chan struct{}, 1)
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		if bytes.Contains(b, []byte("waiting for the sysroot lock")) {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
		return len(b), nil
	}), nil))
	s, err := Open(path, OpenOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, waiting
}

// OSInit takes the sysroot lock: while another process holds it, the
// stateroot is not made, so a deploy never picks one half made.
func TestOSInitTakesLock(t *testing.T) {
	f := newFixture(t)
	s2, waiting := openWaiting(t, f.path)
	unlock, err := f.s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s2.OSInit(context.Background(), "other") }()
	select {
	case <-waiting:
	case err := <-done:
		unlock()
		t.Fatalf("OSInit returned (%v) while another handle held the sysroot lock", err)
	}
	if _, err := os.Lstat(filepath.Join(f.path, "otree", "deploy", "other")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stateroot made while the lock was held elsewhere: %v", err)
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.path, "otree", "deploy", "other", "var", "tmp")); err != nil {
		t.Errorf("after the lock was released: %v", err)
	}
}

// A ctx cancelled while OSInit waits for the sysroot lock stops the
// wait, and the stateroot is not made.
func TestOSInitCancelWhileWaiting(t *testing.T) {
	f := newFixture(t)
	s2, waiting := openWaiting(t, f.path)
	unlock, err := f.s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s2.OSInit(ctx, "other") }()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("OSInit returned (%v) while another handle held the sysroot lock", err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("OSInit after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OSInit still waiting for the sysroot lock 5s after its ctx was cancelled")
	}
	if _, err := os.Lstat(filepath.Join(f.path, "otree", "deploy", "other")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stateroot made after a cancelled wait: %v", err)
	}
}

// writerFunc is an io.Writer made of a function.
type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(b []byte) (int, error) { return w(b) }

// Cleanup on a running system removes the unlock directories in var/tmp
// that unlock made, owned by the user running it, never another user's of
// the same name (var/tmp is everyone's), nor what a link of that name
// points to.
func TestCleanupUnlocksOnlyOwn(t *testing.T) {
	f := newFixture(t)
	f.s.rootBooted = true // var/tmp is then the sysroot's own
	tmp := filepath.Join(f.path, "var", "tmp")
	own := filepath.Join(tmp, unlockDirPrefix+"own")
	other := filepath.Join(tmp, unlockDirPrefix+"other")
	outside := t.TempDir()
	for _, d := range []string{own + "/upper/usr", other + "/upper"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "upper", "keep"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(tmp, unlockDirPrefix+"link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{other, filepath.Join(other, "upper"), filepath.Join(other, "upper", "keep")} {
		if err := os.Lchown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := f.s.cleanupUnlocks()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{own}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	for _, p := range []string{filepath.Join(other, "upper", "keep"), filepath.Join(outside, "keep")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("cleanup removed %s: %v", p, err)
		}
	}
	if _, err := os.Lstat(own); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cleanup kept %s: %v", own, err)
	}
}

// init-fs of an existing directory makes its tmp sticky and world-writable,
// as OSTree's does, but never the directory a tmp symlink points to.
func TestInitFSChmodsNoLinkTarget(t *testing.T) {
	for _, modern := range []bool{false, true} {
		root, outside := t.TempDir(), t.TempDir()
		if err := os.Chmod(outside, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(root, "tmp")); err != nil {
			t.Fatal(err)
		}
		if err := InitFSWithOptions(root, InitFSOptions{Modern: modern}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(outside)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != os.ModeDir|0o700 {
			t.Errorf("modern %v: the link's target got mode %v", modern, fi.Mode())
		}
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := InitFS(root); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "tmp")); err != nil || fi.Mode() != os.ModeDir|os.ModeSticky|0o777 {
		t.Errorf("tmp: %v, %v", fi.Mode(), err)
	}
}

// A stateroot whose deploy directory is a symlink is neither cleaned nor
// deployed to through the link: what it points to holds directories named
// as deployments, which cleanup would remove as leftovers.
func TestDeployDirSymlinkRefused(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	outside := t.TempDir()
	victim := filepath.Join(outside, strings.Repeat("a", 64)+".0")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "data"), []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.path, "otree", "deploy", "testos", "deploy")
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Cleanup(context.Background(), CleanupOptions{NoPrune: true}); err == nil || !strings.Contains(err.Error(), dir+" is not a directory") {
		t.Errorf("cleanup: %v", err)
	}
	if _, err := f.s.Deploy(context.Background(), "os", DeployOptions{}); err == nil || !strings.Contains(err.Error(), dir+" is not a directory") {
		t.Errorf("deploy: %v", err)
	}
	if ents, err := os.ReadDir(outside); err != nil || len(ents) != 1 {
		t.Errorf("the link's target holds %v (%v)", ents, err)
	}
	if _, err := os.Stat(filepath.Join(victim, "data")); err != nil {
		t.Error(err)
	}
}

// A boot/otree that is a symlink is neither cleaned nor installed into
// through the link: cleanup would remove what is named as a kernel
// directory where it points.
func TestBootOtreeSymlinkRefused(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	outside := t.TempDir()
	victim := filepath.Join(outside, "keep-"+strings.Repeat("c", 64))
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	kdir := filepath.Join(f.path, "boot", "otree")
	if err := os.Rename(kdir, filepath.Join(outside, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, kdir); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Cleanup(context.Background(), CleanupOptions{NoPrune: true}); err == nil || !strings.Contains(err.Error(), kdir+" is not a directory") {
		t.Errorf("cleanup: %v", err)
	}
	f.commit("os", osTree("6.1.0-2", nil))
	if _, err := f.s.Deploy(context.Background(), "os", DeployOptions{}); err == nil || !strings.Contains(err.Error(), kdir+" is not a directory") {
		t.Errorf("deploy: %v", err)
	}
	if ents, err := os.ReadDir(outside); err != nil || len(ents) != 2 {
		t.Errorf("the link's target holds %v (%v)", ents, err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Error(err)
	}
}

// A finalize whose /etc merge fails (here a conflict the admin made after
// the staged deploy) keeps the deployment staged with the /etc the deploy
// merged, whole, and nothing of the failed merge left in the deployment;
// once the conflict is gone a finalize succeeds and takes the late edits.
func TestFinalizeStagedFailedMergeKeepsEtc(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	first := f.deploy("os", DeployOptions{}).Deployment
	if err := os.WriteFile(filepath.Join(first.Path, "etc/hostname"), []byte("staged-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.commit("os", osTree("6.1.0-2", testtree.Tree{"usr/etc/foo/bar": testtree.File("bar\n", 0o644)}))
	st := f.deploy("os", DeployOptions{Stage: true}).Deployment
	top := func() []string {
		ents, err := os.ReadDir(st.Path)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	before := top()
	// After the staged deploy the admin makes /etc/foo a file, where the
	// new defaults have a directory, and edits the hostname.
	if err := os.WriteFile(filepath.Join(first.Path, "etc/foo"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(first.Path, "etc/hostname"), []byte("late-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var ce *EtcConflictError
	if _, err := f.s.FinalizeStaged(ctx); !errors.As(err, &ce) || !strings.Contains(err.Error(), st.Name()) || !strings.Contains(err.Error(), "/etc/foo") {
		t.Fatalf("finalize with /etc/foo in conflict: %v; want an *EtcConflictError naming %s and /etc/foo", err, st.Name())
	}
	if got := f.s.Staged(); got == nil || got.Path != st.Path {
		t.Fatalf("the failed finalize unstaged %s: %+v", st.Name(), got)
	}
	for p, want := range map[string]string{"etc/hostname": "staged-host\n", "etc/foo/bar": "bar\n", "etc/motd": "welcome\n", "etc/ssh/sshd_config": "PermitRootLogin no\n"} {
		if got, err := os.ReadFile(filepath.Join(st.Path, p)); err != nil || string(got) != want {
			t.Errorf("after the failed finalize, %s of %s is %q (%v), want %q as staged", p, st.Name(), got, err, want)
		}
	}
	if got := top(); !slices.Equal(got, before) {
		t.Errorf("after the failed finalize the deployment holds %v, want %v", got, before)
	}
	if err := os.Remove(filepath.Join(first.Path, "etc/foo")); err != nil {
		t.Fatal(err)
	}
	// What a finalize killed during its merge leaves is removed.
	if err := mutably(st.Path, func() error {
		return os.MkdirAll(filepath.Join(st.Path, etcMergeName, "half"), 0o755)
	}); err != nil {
		t.Fatal(err)
	}
	fin, err := f.s.FinalizeStaged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(fin.Deployment.Path, "etc/hostname")); string(got) != "late-host\n" {
		t.Errorf("hostname after the finalize = %q, want the late edit", got)
	}
	if got := top(); !slices.Equal(got, before) {
		t.Errorf("after the finalize the deployment holds %v, want %v", got, before)
	}
}

// A finalize whose staged deployment was removed by hand fails naming the
// missing directory, rather than report that nothing is staged, and
// switches nothing. The record is dropped by the first locked operation,
// so that a later directory of the same name (a killed deploy's checkout)
// is not staged by it.
func TestFinalizeStagedRemovedByHand(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	f.commit("os", osTree("6.1.0-2", nil))
	st := f.deploy("os", DeployOptions{Stage: true}).Deployment
	if err := removeTree(st.Path); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.FinalizeStaged(ctx)
	if err == nil || errors.Is(err, ErrNoStaged) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), st.Path) {
		t.Errorf("finalize of a staged deployment removed by hand: %v; want an error naming %s", err, st.Path)
	}
	if diff := cmp.Diff([]repo.ID{a}, f.order()); diff != "" {
		t.Errorf("the failed finalize changed the deployments: %s", diff)
	}
	if _, err := f.s.FinalizeStaged(ctx); !errors.Is(err, ErrNoStaged) {
		t.Errorf("second finalize: %v; want ErrNoStaged", err)
	}

	st = f.deploy("os", DeployOptions{Stage: true}).Deployment
	if err := removeTree(st.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Cleanup(ctx, CleanupOptions{NoPrune: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(st.Path, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	s2 := f.reopen()
	if got := s2.Staged(); got != nil {
		t.Errorf("a directory made where a staged deployment was removed is staged: %+v", got)
	}
}

// The finalize merges /etc from the merge deployment of the staged deploy,
// as OSTree does. Once that deployment is undeployed it fails naming it,
// and the deployment stays staged, rather than take /etc from another
// deployment (the admin's edits of the merge deployment lost) or from the
// defaults alone (every edit lost).
func TestFinalizeStagedMergeUndeployed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := f.commit("os", osTree("6.1.0-1", nil))
	f.deploy("os", DeployOptions{})
	f.commit("os", osTree("6.1.0-2", nil))
	b := f.deploy("os", DeployOptions{Retain: true}).Deployment
	if err := os.WriteFile(filepath.Join(b.Path, "etc/hostname"), []byte("edited-on-b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.commit("os", osTree("6.1.0-3", nil))
	st := f.deploy("os", DeployOptions{Stage: true}).Deployment
	if _, err := f.s.Undeploy(ctx, 0); err != nil { // b: the boot order has no staged one
		t.Fatal(err)
	}
	_, err := f.s.FinalizeStaged(ctx)
	if err == nil || !strings.Contains(err.Error(), b.Name()) || !strings.Contains(err.Error(), st.Name()) {
		t.Fatalf("finalize with the merge deployment %s undeployed: %v; want an error naming it and %s", b.Name(), err, st.Name())
	}
	if diff := cmp.Diff([]repo.ID{a}, f.order()); diff != "" {
		t.Errorf("the failed finalize changed the deployments: %s", diff)
	}
	if got := f.s.Staged(); got == nil || got.Path != st.Path {
		t.Errorf("the failed finalize unstaged %s: %+v", st.Name(), got)
	}
	if got, _ := os.ReadFile(filepath.Join(st.Path, "etc/hostname")); string(got) != "edited-on-b\n" {
		t.Errorf("the staged hostname is %q after the failed finalize, want b's", got)
	}

	// With its merge deployment listed, the finalize merges from it even
	// when another one is the default by then.
	c := f.deploy("os", DeployOptions{}).Deployment // replaces the staged one
	if err := os.WriteFile(filepath.Join(c.Path, "etc/hostname"), []byte("edited-on-c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.commit("os", osTree("6.1.0-4", nil))
	st = f.deploy("os", DeployOptions{Stage: true, NotAsDefault: true}).Deployment
	if _, err := f.s.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	fin, err := f.s.FinalizeStaged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Merge == nil || fin.Merge.Path != c.Path {
		t.Errorf("finalize merged from %+v, want %s", fin.Merge, c.Name())
	}
	if got, _ := os.ReadFile(filepath.Join(st.Path, "etc/hostname")); string(got) != "edited-on-c\n" {
		t.Errorf("the finalized hostname is %q, want c's", got)
	}
}

// On a filesystem that cannot exchange two entries, the finalize sets the
// staged /etc aside and renames the merge into its place, and leaves
// neither behind.
func TestFinalizeStagedWithoutExchange(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	first := f.deploy("os", DeployOptions{}).Deployment
	f.commit("os", osTree("6.1.0-2", nil))
	st := f.deploy("os", DeployOptions{Stage: true}).Deployment
	if err := os.WriteFile(filepath.Join(first.Path, "etc/hostname"), []byte("late-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := exchange
	t.Cleanup(func() { exchange = saved })
	exchange = func(a, b string) error { return unix.EINVAL }
	if _, err := f.s.FinalizeStaged(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(st.Path, "etc/hostname")); string(got) != "late-host\n" {
		t.Errorf("hostname after the finalize = %q, want the late edit", got)
	}
	for _, p := range []string{etcMergeName, etcMergeName + ".old"} {
		if _, err := os.Lstat(filepath.Join(st.Path, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left in the deployment: %v", p, err)
		}
	}
}
