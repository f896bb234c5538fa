package testtree

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// MountImage attaches the filesystem image img (a file) to a loop device
// of its own and mounts it, with type fstype and mount flags (such as
// unix.MS_RDONLY), on a new temporary directory. It returns the directory
// and the device; when the test ends the filesystem is unmounted (if it
// still is mounted) and the device detached. It skips the test without
// root, or where losetup (util-linux) or loop devices are missing.
func MountImage(t testing.TB, img, fstype string, flags uintptr) (mnt, dev string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a filesystem image")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup (util-linux) is not installed")
	}
	args := []string{"--find", "--show", img}
	if flags&unix.MS_RDONLY != 0 {
		args = append([]string{"--read-only"}, args...)
	}
	out, err := exec.Command("losetup", args...).CombinedOutput()
	if err != nil {
		t.Skipf("cannot attach %s to a loop device: %v\n%s", img, err, out)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v\n%s", dev, err, out)
		}
	})
	mnt = t.TempDir()
	if err := unix.Mount(dev, mnt, fstype, flags, ""); err != nil {
		t.Skipf("cannot mount %s (%s) here: %v", img, fstype, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmounting %s: %v", mnt, err)
		}
	})
	return mnt, dev
}
