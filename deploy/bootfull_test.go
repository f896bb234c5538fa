package deploy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/otree/otree/internal/fsattr/fsattrtest"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// bootFiles lists what boot/otree holds, as "DIR/FILE" paths.
func bootFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	base := filepath.Join(root, "boot", "otree")
	filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != base {
			rel, _ := filepath.Rel(base, p)
			out = append(out, rel)
		}
		return err
	})
	return out
}

// A deploy whose kernel does not fit on a full /boot fails naming the
// file and the lack of space, leaves the deployments, the boot entries and
// /boot as they were (no partly installed kernel left to fill it), and
// once space is freed the same deploy succeeds.
func TestDeployFullBoot(t *testing.T) {
	f := newFixture(t)
	boot := filepath.Join(f.path, "boot")
	if err := unix.Mount("none", boot, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs on boot/: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(boot, unix.MNT_DETACH) })
	big := func(s string) testtree.Entry { return testtree.File(strings.Repeat(s, 600<<10), 0o644) }
	one := f.commit("os", osTree("6.1.0", testtree.Tree{
		"usr/lib/modules/6.1.0/vmlinuz": big("a"), "usr/lib/modules/6.1.0/initramfs.img": big("b")}))
	f.deploy(one.String(), DeployOptions{})
	target := f.defaultTarget()
	files := bootFiles(t, f.path)
	two := f.commit("os", osTree("6.2.0", testtree.Tree{
		"usr/lib/modules/6.2.0/vmlinuz": big("c"), "usr/lib/modules/6.2.0/initramfs.img": big("d")}))

	_, err := f.s.Deploy(context.Background(), two.String(), DeployOptions{})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), boot) {
		t.Fatalf("deploy onto a full /boot: %v, want ENOSPC naming a path in %s", err, boot)
	}
	if got := f.order(); !slices.Equal(got, []repo.ID{one}) {
		t.Errorf("deployments after the failed deploy: %v, want [%s]", got, one)
	}
	if got := f.defaultTarget(); got != target {
		t.Errorf("default entry boots %s, want %s", got, target)
	}
	if got := bootFiles(t, f.path); !slices.Equal(got, files) {
		t.Errorf("boot/otree after the failed deploy: %v, want %v", got, files)
	}
	deps, _ := os.ReadDir(filepath.Join(f.path, "otree", "deploy", "testos", "deploy"))
	if len(deps) != 2 { // the deployment and its .origin
		var names []string
		for _, d := range deps {
			names = append(names, d.Name())
		}
		t.Errorf("deploy/ holds %v after the failed deploy", names)
	}

	// Staged, the kernel goes to /boot at finalize, which fails alike and
	// keeps the deployment staged.
	f.deploy(two.String(), DeployOptions{Stage: true})
	if _, err := f.s.FinalizeStaged(context.Background()); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("finalize onto a full /boot: %v, want ENOSPC", err)
	}
	if got := f.order(); !slices.Equal(got, []repo.ID{one}) || f.s.Staged() == nil {
		t.Errorf("after the failed finalize: deployments %v, staged %v", got, f.s.Staged())
	}
	if got := bootFiles(t, f.path); !slices.Equal(got, files) {
		t.Errorf("boot/otree after the failed finalize: %v, want %v", got, files)
	}

	// A tree with the same kernel needs no room for it, only for the boot
	// entries; with /boot filled to the last byte even those fail, and
	// nothing changes.
	same := f.commit("os", osTree("6.1.0", testtree.Tree{
		"usr/lib/modules/6.1.0/vmlinuz": big("a"), "usr/lib/modules/6.1.0/initramfs.img": big("b"), "usr/bin/new": testtree.File("x", 0o755)}))
	listBoot := func() []string {
		var out []string
		filepath.WalkDir(boot, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() != "fill" {
				out = append(out, strings.TrimPrefix(p, boot))
			}
			return err
		})
		return out
	}
	before := listBoot()
	testtree.FillTo(t, boot, 0)
	if _, err := f.s.Deploy(context.Background(), same.String(), DeployOptions{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("deploy with /boot full to the last byte: %v, want ENOSPC", err)
	}
	if got := f.order(); !slices.Equal(got, []repo.ID{one}) {
		t.Errorf("deployments after the second failed deploy: %v", got)
	}
	// The failed deploy replaced nothing: two is still staged.
	if st := f.s.Staged(); st == nil || st.Commit != two {
		t.Errorf("staged after the failed deploy: %+v, want %s", st, two)
	}
	if s, err := Open(f.path, OpenOptions{}); err != nil {
		t.Fatal(err)
	} else if st := s.Staged(); st == nil || st.Commit != two {
		t.Errorf("staged after the failed deploy, read anew: %+v, want %s", st, two)
	} else {
		s.Close()
	}
	if got := f.defaultTarget(); got != target {
		t.Errorf("default entry boots %s, want %s", got, target)
	}
	if got := listBoot(); !slices.Equal(got, before) {
		t.Errorf("boot/ after the failed deploy:\n%v\nwant\n%v", got, before)
	}
	os.Remove(filepath.Join(boot, "fill"))
	f.deploy(same.String(), DeployOptions{})
	if got := f.order(); !slices.Equal(got, []repo.ID{same, one}) {
		t.Errorf("deployments after a deploy sharing the kernel: %v", got)
	}
	if st := f.s.Staged(); st != nil {
		t.Errorf("%s still staged after a deploy replaced it", st.Name())
	}
}

// A deploy that runs out of space on the sysroot itself, part way through
// its checkout, leaves no deployment directory behind and changes nothing.
func TestDeployFullSysroot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("deployments need root: the system repository is bare")
	}
	mnt := testtree.SmallFS(t, 16<<20)
	testtree.ClearImmutable(t, mnt)
	if err := InitFS(mnt); err != nil {
		t.Fatal(err)
	}
	s, err := Open(mnt, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.OSInit(context.Background(), "testos"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, path: mnt, s: s}
	one := f.commit("os", osTree("6.1.0", nil))
	f.deploy(one.String(), DeployOptions{})
	target := f.defaultTarget()
	// /etc is copied, not linked: a large one needs room of its own.
	two := f.commit("os", osTree("6.1.0", testtree.Tree{"usr/etc/big": testtree.File(strings.Repeat("e", 3<<20), 0o644)}))
	testtree.FillTo(t, mnt, 1<<20)
	_, err = s.Deploy(context.Background(), two.String(), DeployOptions{})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/etc/big") {
		t.Fatalf("deploy onto a full sysroot: %v, want ENOSPC naming /etc/big, which the /etc merge copies", err)
	}
	if got := f.order(); !slices.Equal(got, []repo.ID{one}) {
		t.Errorf("deployments after the failed deploy: %v", got)
	}
	if got := f.defaultTarget(); got != target {
		t.Errorf("default entry boots %s, want %s", got, target)
	}
	deps, _ := os.ReadDir(filepath.Join(mnt, "otree", "deploy", "testos", "deploy"))
	if len(deps) != 2 {
		var names []string
		for _, d := range deps {
			names = append(names, d.Name())
		}
		t.Errorf("deploy/ holds %v after the failed deploy, want the first deployment and its origin", names)
	}
	os.Remove(filepath.Join(mnt, "fill"))
	f.deploy(two.String(), DeployOptions{})
}

// A written deployment's directory is immutable, as OSTree's are: nothing
// can be added to or removed from its top level (/ once booted), while its
// /etc stays writable; retention and undeploy still remove it, and a
// staged deployment is finalized through it.
func TestDeploymentImmutable(t *testing.T) {
	f := newFixture(t)
	fsattrtest.Require(t, f.path, 'i')

	one := f.commit("os", osTree("6.1.0", nil))
	d := f.deploy(one.String(), DeployOptions{}).Deployment
	// The tree has none of the mount points a booted system needs; since
	// nothing can create them later, the deploy did.
	for name, mode := range map[string]fs.FileMode{"boot": 0o755, "dev": 0o755, "proc": 0o555, "run": 0o755,
		"sys": 0o555, "tmp": 0o777 | fs.ModeSticky, "var": 0o755, "sysroot": 0o755} {
		fi, err := os.Lstat(filepath.Join(d.Path, name))
		if err != nil {
			t.Errorf("mount point %s: %v", name, err)
		} else if !fi.IsDir() || fi.Mode().Perm()|fi.Mode()&fs.ModeSticky != mode {
			t.Errorf("mount point %s: %v, want a directory of mode %v", name, fi.Mode(), mode)
		}
	}
	if err := os.WriteFile(filepath.Join(d.Path, "stray"), nil, 0o644); !errors.Is(err, syscall.EPERM) {
		t.Errorf("creating a file at the top of the deployment: %v, want EPERM", err)
	}
	if err := os.RemoveAll(filepath.Join(d.Path, "usr")); err == nil {
		t.Error("removing the deployment's usr succeeded")
	}
	if err := os.WriteFile(filepath.Join(d.Path, "etc", "hostname"), []byte("mine\n"), 0o644); err != nil {
		t.Errorf("editing /etc: %v", err)
	}
	// Staged: finalize replaces /etc inside the immutable directory.
	two := f.commit("os", osTree("6.1.0", testtree.Tree{"usr/bin/two": testtree.File("2", 0o755)}))
	f.deploy(two.String(), DeployOptions{Stage: true})
	if _, err := f.s.FinalizeStaged(context.Background()); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	three := f.commit("os", osTree("6.1.0", testtree.Tree{"usr/bin/three": testtree.File("3", 0o755)}))
	f.deploy(three.String(), DeployOptions{})
	if got := f.order(); !slices.Equal(got, []repo.ID{three, two}) {
		t.Errorf("deployments: %v, want [%s %s]", got, three, two)
	}
	if _, err := os.Lstat(d.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dropped first deployment: %v, want it removed", err)
	}
	for _, x := range f.s.Deployments() {
		if err := os.WriteFile(filepath.Join(x.Path, "stray"), nil, 0o644); !errors.Is(err, syscall.EPERM) {
			t.Errorf("deployment %s: creating a file at its top: %v, want EPERM", x.Name(), err)
		}
	}
	if _, err := f.s.Undeploy(context.Background(), 1); err != nil {
		t.Fatalf("undeploy: %v", err)
	}
	if got := f.order(); !slices.Equal(got, []repo.ID{three}) {
		t.Errorf("after undeploy: %v", got)
	}

	// OSTree's debug option leaves new deployments mutable, under either
	// name.
	for _, v := range []string{"OSTREE_SYSROOT_DEBUG", "OTREE_SYSROOT_DEBUG"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(v, "no-xattrs,mutable-deployments")
			d := f.deploy(three.String(), DeployOptions{}).Deployment
			if err := os.WriteFile(filepath.Join(d.Path, "stray"), nil, 0o644); err != nil {
				t.Errorf("with %s=mutable-deployments, creating a file at the top of the deployment: %v", v, err)
			}
		})
	}
}

// A tree that keeps /home or another state directory as a directory,
// rather than a link into /var, deploys with a warning for each: what is
// written there would be deleted with the deployment. So does each entry
// of a tree's /var, which the stateroot's /var hides, as OSTree notes it;
// the stateroot's /var is left as it was.
func TestDeployWarnsOfStateDirs(t *testing.T) {
	f := newFixture(t)
	c := f.commit("os", osTree("6.1.0", testtree.Tree{
		"home":              testtree.Dir(0o755),
		"root/.bashrc":      testtree.File("# root\n", 0o644),
		"srv":               testtree.Symlink("var/srv"),
		"var/lib/pkg/state": testtree.File("tree\n", 0o644),
		"var/cache":         testtree.Dir(0o755),
	}))
	res := f.deploy(c.String(), DeployOptions{})
	var got []string
	for _, w := range res.Warnings {
		got = append(got, strings.SplitN(w, " ", 2)[0])
	}
	if !slices.Equal(got, []string{"/home", "/root", "/var/cache", "/var/lib"}) {
		t.Errorf("warnings %q, want /home, /root, /var/cache and /var/lib only", res.Warnings)
	}
	if _, err := os.Stat(filepath.Join(f.path, "otree/deploy/testos/var/lib/pkg")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the tree's /var reached the stateroot's: %v", err)
	}
	if len(res.Warnings) > 0 && !strings.Contains(res.Warnings[0], "/home -> var/home") {
		t.Errorf("the warning does not say what to do: %s", res.Warnings[0])
	}
	plain := f.commit("os", osTree("6.1.0", nil))
	if res := f.deploy(plain.String(), DeployOptions{}); len(res.Warnings) != 0 {
		t.Errorf("a tree without state directories: %q", res.Warnings)
	}
}

// A deploy whose new kernel fits on /boot but whose boot entries do not
// fails before the switch and takes the kernel back out: /boot holds what
// it held, not a kernel no entry names in the way of the next deploy. A
// staged deployment's finalize fails alike and stays staged.
func TestDeployFullBootEntries(t *testing.T) {
	f := newFixture(t)
	boot := filepath.Join(f.path, "boot")
	if err := unix.Mount("none", boot, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount a tmpfs on boot/: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(boot, unix.MNT_DETACH) })
	const size = 600 << 10 // whole pages: the kernel fills what FillTo leaves
	big := func(s string) testtree.Entry { return testtree.File(strings.Repeat(s, size), 0o644) }
	one := f.commit("os", osTree("6.1.0", testtree.Tree{
		"usr/lib/modules/6.1.0/vmlinuz": big("a"), "usr/lib/modules/6.1.0/initramfs.img": big("b")}))
	f.deploy(one.String(), DeployOptions{})
	target := f.defaultTarget()
	files := bootFiles(t, f.path)
	two := f.commit("os", osTree("6.2.0", testtree.Tree{
		"usr/lib/modules/6.2.0/vmlinuz": big("c"), "usr/lib/modules/6.2.0/initramfs.img": big("d")}))

	testtree.FillTo(t, boot, 2*size)
	_, err := f.s.Deploy(context.Background(), two.String(), DeployOptions{})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), filepath.Join(boot, "loader.")) {
		t.Fatalf("deploy with room for the kernel only: %v, want ENOSPC naming a boot entry", err)
	}
	if got := f.order(); !slices.Equal(got, []repo.ID{one}) {
		t.Errorf("deployments after the failed deploy: %v, want [%s]", got, one)
	}
	if got := f.defaultTarget(); got != target {
		t.Errorf("default entry boots %s, want %s", got, target)
	}
	if got := bootFiles(t, f.path); !slices.Equal(got, files) {
		t.Errorf("boot/otree after the failed deploy: %v, want %v", got, files)
	}

	os.Remove(filepath.Join(boot, "fill"))
	f.deploy(two.String(), DeployOptions{Stage: true})
	testtree.FillTo(t, boot, 2*size)
	if _, err := f.s.FinalizeStaged(context.Background()); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("finalize with room for the kernel only: %v, want ENOSPC", err)
	}
	if got := f.order(); !slices.Equal(got, []repo.ID{one}) || f.s.Staged() == nil {
		t.Errorf("after the failed finalize: deployments %v, staged %v", got, f.s.Staged())
	}
	if got := bootFiles(t, f.path); !slices.Equal(got, files) {
		t.Errorf("boot/otree after the failed finalize: %v, want %v", got, files)
	}
	os.Remove(filepath.Join(boot, "fill"))
	if _, err := f.s.FinalizeStaged(context.Background()); err != nil {
		t.Fatalf("finalize once /boot has room: %v", err)
	}
	if got := f.order(); !slices.Equal(got, []repo.ID{two, one}) {
		t.Errorf("deployments after the finalize: %v, want [%s %s]", got, two, one)
	}
}

// The debug options are read as OSTree reads them (checked against
// ostree admin deploy 2022.7): any of its separators, any case, '_' for
// '-', and "all" meaning every option but those listed with it.
func TestMutableDeploymentsOption(t *testing.T) {
	t.Setenv("OSTREE_SYSROOT_DEBUG", "")
	for v, want := range map[string]bool{
		"":                               false,
		"no-xattrs":                      false,
		"mutable-deployments":            true,
		"no-xattrs,mutable-deployments":  true,
		"no-xattrs mutable-deployments":  true,
		"no-xattrs, mutable-deployments": true,
		"no-xattrs:mutable-deployments":  true,
		"no-xattrs;mutable-deployments":  true,
		"Mutable_Deployments":            true,
		"mutable-deploymentsx":           false,
		"all":                            true,
		"all,no-xattrs":                  true,
		"all,mutable-deployments":        false,
	} {
		t.Setenv("OTREE_SYSROOT_DEBUG", v)
		if got := mutableDeployments(); got != want {
			t.Errorf("OTREE_SYSROOT_DEBUG=%q: mutable deployments %v, want %v", v, got, want)
		}
	}
}

// A boot entry cut short (a damaged /boot) fails opening the sysroot
// naming the entry's file by its path, so that it can be found and
// repaired, not by its name alone, which every boot version shares.
func TestTruncatedBootEntryNamesItsPath(t *testing.T) {
	f := newFixture(t)
	f.deploy(f.commit("os", osTree("6.1.0", nil)).String(), DeployOptions{})
	dir := filepath.Join(f.path, "boot", "loader", "entries")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("entries: %v %v", ents, err)
	}
	if err := os.Truncate(filepath.Join(dir, ents[0].Name()), 20); err != nil {
		t.Fatal(err)
	}
	loader, err := filepath.EvalSymlinks(filepath.Join(f.path, "boot", "loader"))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(loader, "entries", ents[0].Name())
	s, err := Open(f.path, OpenOptions{})
	if err == nil {
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("opening a sysroot with a truncated entry: %v, want an error naming %s", err, want)
	}
}
