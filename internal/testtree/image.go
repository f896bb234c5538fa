package testtree

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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

// ReplaceImage puts the filesystem image data in place of the one that
// MountImage mounted from img on mnt through the loop device dev, and
// mounts it there again: the same device, so the same st_dev, as the
// next image of a build through one loop device has. The device's
// buffers are flushed, so that nothing of the first image is read.
func ReplaceImage(t testing.TB, mnt, dev, img string, data []byte, fstype string, flags uintptr) {
	t.Helper()
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.IoctlSetInt(fd, unix.BLKFLSBUF, 0)
	unix.Close(fd)
	if err != nil {
		t.Fatalf("flushing %s: %v", dev, err)
	}
	if err := unix.Mount(dev, mnt, fstype, flags, ""); err != nil {
		t.Fatal(err)
	}
}

// MountXFS mounts a new 320 MiB XFS (a sparse image) for the test,
// skipping it where that cannot be done: without root, which XFS also
// needs to show its ACL aliases, or without mkfs.xfs.
func MountXFS(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: XFS shows the aliases only to CAP_SYS_ADMIN")
	}
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		t.Skip("mkfs.xfs (xfsprogs) is not installed")
	}
	img := filepath.Join(t.TempDir(), "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 320<<20); err != nil { // sparse; XFS wants 300 MiB
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	mnt, _ := MountImage(t, img, "xfs", 0)
	return mnt
}
