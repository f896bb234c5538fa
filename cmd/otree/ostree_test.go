package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// ostreeRepo is an OSTree 2022.7 repository that a parity test runs the
// same commands in as in otree's.
type ostreeRepo struct {
	t         *testing.T
	bin, path string
}

// findOSTree returns an OSTree repository in mode, made in a temporary
// directory, or nil when ostree is not installed.
func findOSTree(t *testing.T, mode string) *ostreeRepo {
	t.Helper()
	bin, err := exec.LookPath("ostree")
	if err != nil {
		return nil
	}
	o := &ostreeRepo{t: t, bin: bin, path: filepath.Join(t.TempDir(), "ostree-repo")}
	o.ok("init", "--mode="+mode)
	return o
}

// needOSTree is findOSTree for tests that compare with OSTree only: it
// skips the test when ostree is not installed.
func needOSTree(t *testing.T, mode string) *ostreeRepo {
	t.Helper()
	o := findOSTree(t, mode)
	if o == nil {
		t.Skip("ostree is not installed (CI installs Debian's ostree package)")
	}
	return o
}

// run runs ostree on the repository and returns its combined output.
func (o *ostreeRepo) run(args ...string) ([]byte, error) { return o.runIn(o.path, args...) }

// ok runs ostree and fails the test unless it succeeds.
func (o *ostreeRepo) ok(args ...string) string {
	o.t.Helper()
	out, err := o.run(args...)
	if err != nil {
		o.t.Fatalf("ostree %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// runIn runs ostree on the repository at path.
func (o *ostreeRepo) runIn(path string, args ...string) ([]byte, error) {
	return exec.Command(o.bin, append([]string{"--repo=" + path}, args...)...).CombinedOutput()
}

// okIn runs ostree on the repository at path and fails the test unless it
// succeeds.
func (o *ostreeRepo) okIn(path string, args ...string) string {
	o.t.Helper()
	out, err := o.runIn(path, args...)
	if err != nil {
		o.t.Fatalf("ostree --repo=%s %v: %v\n%s", path, args, err, out)
	}
	return string(out)
}
