// Package testbin builds the module's commands for tests that run them as
// separate processes (to kill them, to trace them, or to run them in
// another mount namespace), and finds the tracer such tests use.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

// Build compiles the command package pkg (an import path) into a
// temporary directory and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, serr := os.Stat(goTool); serr != nil {
			goTool = "/usr/local/go/bin/go"
		}
	}
	bin := filepath.Join(t.TempDir(), path.Base(pkg))
	out, err := exec.Command(goTool, "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// BuildStatic is Build without cgo: the binary needs no shared libraries,
// so it runs inside a chroot of a tree that has none.
func BuildStatic(t testing.TB, pkg string) string {
	t.Helper()
	t.Setenv("CGO_ENABLED", "0")
	return Build(t, pkg)
}

// NeedStrace returns strace's path, skipping the test when strace is
// missing or cannot trace here (no ptrace). The probe runs once per test
// binary.
func NeedStrace(t testing.TB) string {
	t.Helper()
	straceOnce.Do(func() {
		p, err := exec.LookPath("strace")
		if err != nil {
			straceWhy = "strace is not installed (CI installs it)"
			return
		}
		if out, err := exec.Command(p, "-o", "/dev/null", "true").CombinedOutput(); err != nil {
			straceWhy = fmt.Sprintf("strace cannot trace here (no ptrace?): %v\n%s", err, out)
			return
		}
		stracePath = p
	})
	if stracePath == "" {
		t.Skip(straceWhy)
	}
	return stracePath
}

var (
	straceOnce sync.Once
	stracePath string // "" when strace cannot be used
	straceWhy  string // why not
)
