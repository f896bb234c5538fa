package debroot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestGet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: debootstrap and extracting owners")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("debootstrap is not installed (apt-get install debootstrap)")
	}
	start := time.Now()
	tr, err := Get(context.Background())
	if errors.Is(err, ErrUnreachable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Get took %v", time.Since(start))

	dir := t.TempDir()
	start = time.Now()
	if err := tr.Extract(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("Extract took %v", time.Since(start))
	fi, err := os.Stat(filepath.Join(dir, "usr/bin/sh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Errorf("usr/bin/sh mode %v, not executable", fi.Mode())
	}
	if got := osReleaseID(t, filepath.Join(dir, "etc/os-release")); got != "debian" {
		t.Errorf("os-release ID=%q, want debian", got)
	}

	if errors.Is(tr.KernelErr, ErrNoKernel) {
		t.Skipf("the tree is good, but %v", tr.KernelErr)
	}
	if tr.KernelErr != nil {
		t.Fatal(tr.KernelErr)
	}
	if filepath.Base(tr.Kernel) != "vmlinuz-"+tr.KernelVersion {
		t.Errorf("Kernel %s does not name KernelVersion %s", tr.Kernel, tr.KernelVersion)
	}
	b, err := os.ReadFile(tr.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	// The Linux/x86 boot protocol header signature.
	if len(b) < 0x206 || string(b[0x202:0x206]) != "HdrS" {
		t.Errorf("%s is not a bzImage (no HdrS at 0x202)", tr.Kernel)
	}

	// The second call is served from memory; a new process from the cache.
	again, err := Get(context.Background())
	if err != nil || again != tr {
		t.Errorf("second Get = %v, %v; want the same tree", again, err)
	}
}

// osReleaseID returns the ID field of an os-release file.
func osReleaseID(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if v, ok := bytes.CutPrefix(s.Bytes(), []byte("ID=")); ok {
			return string(bytes.Trim(v, `"`))
		}
	}
	t.Fatalf("%s has no ID=", path)
	return ""
}
