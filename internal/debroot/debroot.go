// Package debroot builds a minimal Debian root filesystem for tests, once,
// and caches it.
//
// Get runs debootstrap (minbase, bookworm) on first use and keeps the result
// as an uncompressed tar under os.UserCacheDir()/otree-test, with the
// vmlinuz of Debian's current amd64 kernel beside it. Later calls, from any
// test binary, reuse the cache; Extract unpacks the tree for a test.
// GetBootable does the same for a tree that also has Debian's kernel,
// initramfs-tools and systemd installed, one a virtual machine can boot;
// GetBootableDracut one with dracut instead of initramfs-tools.
//
// The tree is kept as a tar rather than a directory because a single file
// is renamed into place atomically and no test can change it by accident,
// as it could a shared directory it runs commands in. Unpacking it takes about as
// long as cp -a of the directory (under a second for its 6,700 entries). It
// is not compressed: zstd shrinks it about threefold but unpacks no faster
// and would be one more tool for CI to install.
package debroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Tree is a cached Debian root filesystem.
type Tree struct {
	Tar string // uncompressed tar of the root filesystem, numeric owners and xattrs kept

	// Kernel is the vmlinuz of Debian's linux-image-<KernelVersion>
	// package, or "" when it could not be had; KernelErr then says why.
	// A bootable tree has its kernel inside, as boot/vmlinuz-<KernelVersion>
	// (and its modules), and Kernel is "".
	Kernel        string
	KernelVersion string // e.g. "6.1.0-28-amd64"
	KernelErr     error
}

// ErrUnreachable is returned (wrapped) when the Debian mirror cannot be
// reached, so tests can skip rather than fail.
var ErrUnreachable = errors.New("debroot: the Debian mirror is unreachable")

// ErrNoKernel is wrapped in Tree.KernelErr when this machine cannot fetch
// Debian's kernel: it is not root, has no apt, has an apt that knows no
// linux-image-amd64 (not Debian on amd64), or cannot reach the mirror.
// Any other KernelErr is a fault.
var ErrNoKernel = errors.New("debroot: this machine cannot fetch Debian's kernel")

const (
	suite  = "bookworm"
	mirror = "http://deb.debian.org/debian"
)

// variant is one kind of cached tree.
type variant struct {
	// version keys the cache: change it to rebuild every cached tree of
	// the variant.
	version string
	include []string // packages debootstrap installs beyond minbase
	// apt is what apt-get installs in the tree after debootstrap, for
	// packages whose dependencies debootstrap would resolve wrongly (it
	// takes the first of alternatives).
	apt    []string
	cached *Tree
}

var (
	mu       sync.Mutex
	minbase  = &variant{version: "bookworm-minbase-1"}
	bootable = &variant{
		version: "bookworm-minbase-boot-1",
		// udev finds the root filesystem by label in the initramfs;
		// systemd-sysv makes systemd init.
		include: []string{"linux-image-amd64", "initramfs-tools", "udev", "systemd-sysv"},
	}
	bootableDracut = &variant{
		version: "bookworm-minbase-boot-dracut-1",
		include: []string{"dracut", "udev", "systemd-sysv"},
		// After dracut, which then provides the linux-initramfs-tool
		// the kernel depends on: debootstrap would pull in
		// initramfs-tools, which conflicts with dracut.
		apt: []string{"linux-image-amd64"},
	}
)

// Get returns the cached tree, building it first if there is none. Test
// binaries that call it concurrently build it once: the first holds a lock
// on the cache while the others wait for it. Building needs root and takes
// from half a minute to a few minutes, depending on the mirror.
func Get(ctx context.Context) (*Tree, error) {
	return get(ctx, minbase)
}

// GetBootable is Get for a tree that a virtual machine can boot: minbase
// with Debian's kernel (linux-image-amd64), initramfs-tools, udev and
// systemd-sysv. The kernel is in the tree, as boot/vmlinuz-<KernelVersion>
// with its modules in usr/lib/modules; the tree has no initramfs, which a
// test makes in the tree after adding what it boots with. Building it takes
// a few minutes, the tar is about 650 MB.
func GetBootable(ctx context.Context) (*Tree, error) {
	return get(ctx, bootable)
}

// GetBootableDracut is GetBootable for a tree with dracut (and
// dracut-core) in place of initramfs-tools. Building it takes about as
// long (two minutes with a fast mirror); the initramfs the kernel's
// package makes with dracut is removed, as GetBootable's is.
func GetBootableDracut(ctx context.Context) (*Tree, error) {
	return get(ctx, bootableDracut)
}

func get(ctx context.Context, v *variant) (*Tree, error) {
	mu.Lock()
	defer mu.Unlock()
	if v.cached != nil {
		return v.cached, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		// No $HOME (some CI runners): the tree is still worth sharing
		// between the test binaries of one run.
		base = os.TempDir()
	}
	base = filepath.Join(base, "otree-test")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("debroot: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(base, "debroot-"+v.version+".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	dir := filepath.Join(base, "debroot-"+v.version)
	t := &Tree{Tar: filepath.Join(dir, "root.tar")}
	if _, err := os.Stat(t.Tar); errors.Is(err, os.ErrNotExist) {
		if err := build(ctx, base, dir, v); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("debroot: %w", err)
	}
	if len(v.include) > 0 {
		b, err := os.ReadFile(filepath.Join(dir, "kernel-version"))
		if err != nil {
			return nil, fmt.Errorf("debroot: %w", err)
		}
		t.KernelVersion = strings.TrimSpace(string(b))
		v.cached = t
		return t, nil
	}
	t.Kernel, t.KernelVersion, t.KernelErr = kernel(ctx, dir)
	if t.KernelErr == nil {
		// A missing kernel is fetched again by the next caller.
		v.cached = t
	}
	return t, nil
}

// Extract unpacks the tree into dir, which must exist, keeping owners,
// modes, device nodes and xattrs.
func (t *Tree) Extract(ctx context.Context, dir string) error {
	return cmd(ctx, "", "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", t.Tar, "-C", dir)
}

// lock takes an exclusive flock on path, polling so that ctx can cancel
// the wait.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("debroot: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("debroot: locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("debroot: waiting for %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// build debootstraps into a temporary directory and renames the finished
// tar to dir/root.tar, so a killed build leaves no cache, only a temporary
// directory that the next build removes.
func build(ctx context.Context, base, dir string, v *variant) error {
	if os.Geteuid() != 0 {
		return errors.New("debroot: building the tree needs root (debootstrap)")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("debroot: %w (apt-get install debootstrap)", err)
	}
	if err := reachable(ctx); err != nil {
		return err
	}
	// The lock is held, so any temporary directory is a killed build's.
	old, _ := filepath.Glob(filepath.Join(base, "debroot-"+v.version+".tmp-*"))
	for _, o := range old {
		os.RemoveAll(o)
	}
	tmp, err := os.MkdirTemp(base, "debroot-"+v.version+".tmp-")
	if err != nil {
		return fmt.Errorf("debroot: %w", err)
	}
	defer os.RemoveAll(tmp)

	root := filepath.Join(tmp, "root")
	log := filepath.Join(tmp, "debootstrap.log")
	args := []string{"--variant=minbase"}
	if len(v.include) > 0 {
		args = append(args, "--include="+strings.Join(v.include, ","))
	}
	if err := cmdLog(ctx, log, "debootstrap", append(args, suite, root, mirror)...); err != nil {
		return err
	}
	if len(v.apt) > 0 {
		// debootstrap left the package lists and the mirror in the tree.
		c := append([]string{root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--no-install-recommends"}, v.apt...)
		if err := cmdLog(ctx, filepath.Join(tmp, "apt.log"), "chroot", c...); err != nil {
			return err
		}
	}
	// What a Debian container image also leaves out: downloaded packages
	// and package indexes, which only make every test unpack more; and
	// the initramfs the kernel's package made, which a test makes anew.
	for _, g := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*", "boot/initrd.img-*"} {
		m, _ := filepath.Glob(filepath.Join(root, g))
		for _, p := range m {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("debroot: %w", err)
			}
		}
	}
	tar := filepath.Join(tmp, "root.tar")
	if err := cmd(ctx, "", "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cpf", tar, "-C", root, "."); err != nil {
		return err
	}
	if err := syncFile(tar); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("debroot: %w", err)
	}
	if len(v.include) > 0 {
		kvers, _ := filepath.Glob(filepath.Join(root, "boot/vmlinuz-*"))
		if len(kvers) != 1 {
			return fmt.Errorf("debroot: the bootable tree has %d kernels in /boot, want 1: %q", len(kvers), kvers)
		}
		kver := strings.TrimPrefix(filepath.Base(kvers[0]), "vmlinuz-")
		p := filepath.Join(dir, "kernel-version")
		if err := os.WriteFile(p, []byte(kver+"\n"), 0o644); err != nil {
			return fmt.Errorf("debroot: %w", err)
		}
		if err := syncFile(p); err != nil {
			return err
		}
	}
	if err := os.Rename(tar, filepath.Join(dir, "root.tar")); err != nil {
		return fmt.Errorf("debroot: %w", err)
	}
	return syncFile(dir)
}

// reachable checks that the mirror answers, so that an offline machine
// fails in seconds with ErrUnreachable instead of inside debootstrap.
func reachable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	u := mirror + "/dists/" + suite + "/Release"
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return fmt.Errorf("debroot: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: HEAD %s: %s", ErrUnreachable, u, resp.Status)
	}
	return nil
}

var vmlinuzName = regexp.MustCompile(`^vmlinuz-(.+-amd64)$`)

// kernel returns the cached vmlinuz in dir, downloading it first if there
// is none.
func kernel(ctx context.Context, dir string) (path, kver string, err error) {
	m, _ := filepath.Glob(filepath.Join(dir, "vmlinuz-*"))
	for _, p := range m {
		if s := vmlinuzName.FindStringSubmatch(filepath.Base(p)); s != nil {
			return p, s[1], nil
		}
	}
	if os.Geteuid() != 0 {
		return "", "", fmt.Errorf("%w: it needs root (apt-get download)", ErrNoKernel)
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", "", fmt.Errorf("%w: %v", ErrNoKernel, err)
		}
	}
	kver, err = kernelVersion(ctx)
	if err != nil {
		return "", "", err
	}
	// The lock is held, so any temporary directory is a killed download's.
	old, _ := filepath.Glob(filepath.Join(dir, "kernel.tmp-*"))
	for _, o := range old {
		os.RemoveAll(o)
	}
	tmp, err := os.MkdirTemp(dir, "kernel.tmp-")
	if err != nil {
		return "", "", fmt.Errorf("debroot: %w", err)
	}
	defer os.RemoveAll(tmp)
	// apt-get drops to the _apt user to download into the current directory.
	if err := os.Chmod(tmp, 0o777); err != nil {
		return "", "", fmt.Errorf("debroot: %w", err)
	}
	pkg := "linux-image-" + kver
	if err := cmd(ctx, tmp, "apt-get", "download", "-q", pkg); err != nil {
		return "", "", offline(ctx, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", "", fmt.Errorf("debroot: apt-get download %s left %d packages", pkg, len(debs))
	}
	member := "./boot/vmlinuz-" + kver
	sh := `dpkg-deb --fsys-tarfile "$1" | tar -xf - -C "$2" "$3"`
	if err := cmd(ctx, "", "sh", "-c", sh, "sh", debs[0], tmp, member); err != nil {
		return "", "", err
	}
	got := filepath.Join(tmp, member)
	if err := syncFile(got); err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "vmlinuz-"+kver)
	if err := os.Rename(got, path); err != nil {
		return "", "", fmt.Errorf("debroot: %w", err)
	}
	return path, kver, syncFile(dir)
}

var dependsKernel = regexp.MustCompile(`(?m)^\s*Depends: linux-image-(\S+-amd64)$`)

// kernelVersion asks the host's apt which kernel linux-image-amd64 depends
// on, refreshing the package lists once if it does not know.
func kernelVersion(ctx context.Context) (string, error) {
	var last error
	unknown := false
	for attempt := 0; attempt < 2; attempt++ {
		if attempt == 1 {
			if err := cmd(ctx, "", "apt-get", "update", "-q"); err != nil {
				return "", offline(ctx, fmt.Errorf("%w (after: %v)", err, last))
			}
		}
		c := exec.CommandContext(ctx, "apt-cache", "depends", "linux-image-amd64")
		c.Env = append(os.Environ(), "LC_ALL=C") // for the message matched below
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			last = fmt.Errorf("debroot: apt-cache depends linux-image-amd64: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
			unknown = bytes.Contains(stderr.Bytes(), []byte("No packages found"))
			continue
		}
		if m := dependsKernel.FindSubmatch(out); m != nil {
			return string(m[1]), nil
		}
		last = fmt.Errorf("debroot: apt-cache depends linux-image-amd64 names no kernel: %q", out)
		unknown = false
	}
	if unknown {
		return "", fmt.Errorf("%w: the host's apt has no linux-image-amd64, even after apt-get update (not Debian on amd64): %v", ErrNoKernel, last)
	}
	return "", last
}

// offline wraps err, a failed apt command, in ErrNoKernel when the mirror
// cannot be reached, which explains it; otherwise err is a fault.
func offline(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	if rerr := reachable(ctx); rerr != nil {
		return fmt.Errorf("%w: %w (%v)", ErrNoKernel, rerr, err)
	}
	return err
}

// cmd runs a command, returning its standard error in the error.
func cmd(ctx context.Context, dir, name string, args ...string) error {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("debroot: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// cmdLog runs a command with its output in log, returning the end of the
// log in the error.
func cmdLog(ctx context.Context, log, name string, args ...string) error {
	f, err := os.Create(log)
	if err != nil {
		return fmt.Errorf("debroot: %w", err)
	}
	defer f.Close()
	c := exec.CommandContext(ctx, name, args...)
	c.Stdout, c.Stderr = f, f
	if err := c.Run(); err != nil {
		f.Seek(0, io.SeekStart)
		b, _ := io.ReadAll(f)
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		return fmt.Errorf("debroot: %s %s: %w:\n%s", name, strings.Join(args, " "), err, b)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("debroot: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("debroot: syncing %s: %w", path, err)
	}
	return nil
}
