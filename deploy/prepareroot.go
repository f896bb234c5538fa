package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/otree/otree/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// PrepareRootOptions changes what PrepareRoot reads.
type PrepareRootOptions struct {
	// Cmdline is the kernel command line to take otree= from; empty means
	// read /proc/cmdline.
	Cmdline string
}

// PrepareRoot turns the mount at sysroot (the physical root, e.g. "/sysroot") into the root of
// the deployment named by otree= : after it returns, sysroot is the deployment, with
// the deployment's usr read-only (or, for a deployment Sysroot.Unlock
// hotfixed, a writable overlay keeping the hotfix), the stateroot's var (otree/deploy/<os>/var) bind-mounted on var,
// the physical root's boot/ bind-mounted on boot when boot/ is on the
// physical root (boot/loader is there), and the physical root mounted at
// sysroot/sysroot. It needs CAP_SYS_ADMIN.
//
// The deployment is assembled on a temporary directory beside sysroot (so
// sysroot's parent directory must be writable, as an initramfs root is): a
// mount cannot be moved below itself, so the deployment's mount must not
// sit inside the physical root when the physical root moves into it. If the
// mount holding sysroot's parent directory is shared it is made a slave,
// since the kernel refuses to move a mount out of a shared parent. The
// deployment's own mounts are private, so nothing propagates back into the
// physical root. On error every mount made is undone and sysroot is left as
// it was (a parent made a slave stays one).
func PrepareRoot(sysroot string, opts PrepareRootOptions) error {
	cmdline := opts.Cmdline
	if cmdline == "" {
		b, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return fmt.Errorf("prepare root: reading kernel command line: %w", err)
		}
		cmdline = string(b)
	}
	v, ok := BootArgFromCmdline(cmdline)
	if !ok {
		return errors.New("prepare root: no otree= argument on the kernel command line")
	}
	arg, err := ParseBootArg(v)
	if err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	abs, err := filepath.Abs(sysroot)
	if err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	// Mount targets are followed by the kernel, and the mount-point test
	// below compares sysroot with its parent directory: both need the path
	// with symlinks resolved.
	phys, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	if phys == "/" {
		return errors.New("prepare root: the sysroot cannot be /")
	}
	dep, err := ResolveBootArg(phys, arg)
	if err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	stateVar := filepath.Join(phys, "otree", "deploy", arg.OS, "var")
	dirs := []struct{ what, path string }{
		{"stateroot var", stateVar},
		{"deployment var", filepath.Join(dep, "var")},
		{"deployment usr", filepath.Join(dep, "usr")},
		{"deployment sysroot", filepath.Join(dep, "sysroot")},
	}
	// A boot/ on the physical root itself (its loader link is there) is
	// bind-mounted on the deployment's /boot, where the boot loader's
	// files and the entries that list the deployments are looked for once
	// booted. A separate boot filesystem is not mounted yet (boot/ is its
	// empty mount point): the booted system mounts it there (fstab). A
	// tree whose /boot is not a directory boots without the mount, as
	// with OSTree, rather than not at all.
	physBoot := filepath.Join(phys, "boot")
	bindBoot := false
	if fi, err := os.Lstat(filepath.Join(physBoot, "loader")); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if fi, err := os.Lstat(filepath.Join(dep, "boot")); err == nil && fi.IsDir() {
			bindBoot = true
			dirs = append(dirs, struct{ what, path string }{"physical root boot", physBoot})
		}
	}
	// Checked before mounting anything: mount(2) would follow a symlink
	// out of the deployment, and a missing directory found half-way would
	// leave more to undo.
	for _, d := range dirs {
		fi, err := os.Lstat(d.path)
		if err != nil {
			return fmt.Errorf("prepare root: %s: %w", d.what, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("prepare root: %s %s is not a directory", d.what, d.path)
		}
	}
	// A hotfix (admin unlock --hotfix) mounts a writable overlay on usr
	// instead of the read-only bind.
	o, err := readOrigin(dep + ".origin")
	if err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	hotfix := o.Unlocked == string(UnlockHotfix)
	if hotfix {
		if _, _, err := hotfixDirs(dep); err != nil {
			return fmt.Errorf("prepare root: the deployment is hotfixed, but %w", err)
		}
	}

	parent := filepath.Dir(phys)
	rootID, err := prepRootMountID(phys)
	if err != nil {
		return fmt.Errorf("prepare root: %s: %w", phys, err)
	}
	parentID, err := prepRootMountID(parent)
	if err != nil {
		return fmt.Errorf("prepare root: %s: %w", parent, err)
	}
	if rootID == parentID {
		return fmt.Errorf("prepare root: %s is not a mount point", phys)
	}
	mounts, err := mountinfo.Self()
	if err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	// A parent mount outside this process's root is not listed; then there
	// is nothing this process could change about it anyway.
	if m, ok := prepRootFindMount(mounts, parentID); ok && m.Shared {
		if err := unix.Mount("", m.MountPoint, "", unix.MS_SLAVE, ""); err != nil {
			return fmt.Errorf("prepare root: making %s a slave mount so %s can move: %w", m.MountPoint, phys, err)
		}
	}

	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(phys)+".otree-")
	if err != nil {
		return fmt.Errorf("prepare root: temporary mount point: %w", err)
	}
	var undo []func()
	rollback := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		os.Remove(tmp)
	}
	step := func(what, src, dst string, flags uintptr, undoIt func()) error {
		if err := unix.Mount(src, dst, "", flags, ""); err != nil {
			rollback()
			if src == "" {
				return fmt.Errorf("prepare root: %s %s: %w", what, dst, err)
			}
			return fmt.Errorf("prepare root: %s %s on %s: %w", what, src, dst, err)
		}
		if undoIt != nil {
			undo = append(undo, undoIt)
		}
		return nil
	}

	if err := step("bind-mounting deployment", dep, tmp, unix.MS_BIND, func() {
		// Lazily, so the mounts made on top of it go with it.
		unix.Unmount(tmp, unix.MNT_DETACH)
	}); err != nil {
		return err
	}
	// Before anything is mounted inside it: a peer of the physical root
	// would copy those mounts into the physical root.
	if err := step("making private", "", tmp, unix.MS_PRIVATE, nil); err != nil {
		return err
	}
	if err := step("bind-mounting stateroot var", stateVar, filepath.Join(tmp, "var"), unix.MS_BIND, nil); err != nil {
		return err
	}
	if bindBoot {
		if err := step("bind-mounting boot", physBoot, filepath.Join(tmp, "boot"), unix.MS_BIND, nil); err != nil {
			return err
		}
	}
	usr := filepath.Join(tmp, "usr")
	if hotfix {
		// The overlay's lower is the deployment's usr, seen through the
		// deployment's mount; its upper keeps the hotfix's changes.
		if err := mountOverlay(usr, usr, filepath.Join(tmp, hotfixUpper), filepath.Join(tmp, hotfixWork), false); err != nil {
			rollback()
			return fmt.Errorf("prepare root: hotfix: %w", err)
		}
	} else {
		if err := step("bind-mounting usr", usr, usr, unix.MS_BIND, nil); err != nil {
			return err
		}
		var st unix.Statfs_t
		if err := unix.Statfs(usr, &st); err != nil {
			rollback()
			return fmt.Errorf("prepare root: statfs %s: %w", usr, err)
		}
		if err := step("remounting read-only", "", usr, unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|prepRootKeepFlags(uint64(st.Flags)), nil); err != nil {
			return err
		}
	}
	// The var bind joined the physical root's peer group if that is shared.
	if err := step("making private (recursively)", "", tmp, unix.MS_REC|unix.MS_PRIVATE, nil); err != nil {
		return err
	}
	inner := filepath.Join(tmp, "sysroot")
	if err := step("moving physical root", phys, inner, unix.MS_MOVE, func() {
		unix.Mount(inner, phys, "", unix.MS_MOVE, "")
	}); err != nil {
		return err
	}
	if err := step("moving deployment", tmp, phys, unix.MS_MOVE, nil); err != nil {
		return err
	}
	// Only an empty directory is left; failing to remove it is harmless.
	os.Remove(tmp)
	return nil
}

// prepRootKeepFlags returns the mount flags, among those statfs reports,
// that a bind remount must repeat to keep them (a remount replaces the
// per-mount flags, and inside a user namespace dropping them is refused).
func prepRootKeepFlags(statfsFlags uint64) uintptr {
	var flags uintptr
	for _, f := range []struct {
		st uint64
		ms uintptr
	}{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if statfsFlags&f.st != 0 {
			flags |= f.ms
		}
	}
	return flags
}

// prepRootMountID returns the ID of the mount holding path (as in
// /proc/self/mountinfo), without following a final symlink.
func prepRootMountID(path string) (uint64, error) {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx)
	if err == nil && stx.Mask&unix.STATX_MNT_ID != 0 {
		return stx.Mnt_id, nil
	}
	// Kernels before 5.8 report the mount ID only in fdinfo.
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("mount ID not found in fdinfo")
}

// prepRootFindMount returns the entry of mounts for mount id.
func prepRootFindMount(mounts []mountinfo.Mount, id uint64) (mountinfo.Mount, bool) {
	for _, m := range mounts {
		if m.ID == id {
			return m, true
		}
	}
	return mountinfo.Mount{}, false
}
