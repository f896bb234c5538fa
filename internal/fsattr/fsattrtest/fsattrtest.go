// Package fsattrtest tells a test whether a filesystem keeps an inode
// flag by asking chattr and lsattr, not package fsattr: a test of fsattr
// that asked fsattr would skip exactly when fsattr is broken.
package fsattrtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Require skips the test unless chattr can set flag (as chattr spells it:
// 'i' immutable, 'T' top directory) on a directory made in dir, and lsattr
// then shows it. Once it returns, a flag missing from dir's filesystem is
// a fault of the code under test. The probe directory is cleared and
// removed before Require returns.
func Require(t testing.TB, dir string, flag byte) {
	t.Helper()
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skipf("chattr is not installed (e2fsprogs), so whether this filesystem keeps +%c is unknown", flag)
	}
	probe, err := os.MkdirTemp(dir, ".flagprobe-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	out, err := chattr("+"+string(flag), probe)
	if err != nil {
		for _, why := range []string{"Operation not supported", "Inappropriate ioctl", "Invalid argument", "Operation not permitted"} {
			if strings.Contains(out, why) {
				t.Skipf("this filesystem or process cannot set +%c: %s", flag, out)
			}
		}
		t.Fatalf("chattr +%c %s: %v: %s", flag, probe, err, out)
	}
	defer func() {
		if out, err := chattr("-"+string(flag), probe); err != nil {
			t.Errorf("clearing the probe's flag: chattr -%c %s: %v: %s", flag, probe, err, out)
		}
	}()
	if !Has(t, probe, flag) {
		t.Skipf("this filesystem takes chattr +%c but keeps no such flag", flag)
	}
}

// Has tells whether lsattr shows flag on dir.
func Has(t testing.TB, dir string, flag byte) bool {
	t.Helper()
	b, err := exec.Command("lsattr", "-d", dir).Output()
	if err != nil {
		t.Fatalf("lsattr -d %s: %v", dir, err)
	}
	f := strings.Fields(string(b))
	return len(f) > 0 && strings.ContainsRune(f[0], rune(flag))
}

// Unset clears flag on dir with chattr, as a test's setup.
func Unset(t testing.TB, dir string, flag byte) {
	t.Helper()
	if out, err := chattr("-"+string(flag), dir); err != nil {
		t.Fatalf("chattr -%c %s: %v: %s", flag, dir, err, out)
	}
}

// Clear clears flag on dir with chattr when the test ends, before the
// temporary directories holding dir are removed, whatever the code under
// test left.
func Clear(t testing.TB, dir string, flag byte) {
	t.Cleanup(func() { chattr("-"+string(flag), dir) })
}

// chattr runs chattr in the C locale, whose messages Require matches.
func chattr(args ...string) (string, error) {
	c := exec.Command("chattr", args...)
	c.Env = append(os.Environ(), "LC_ALL=C")
	out, err := c.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
