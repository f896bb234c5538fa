package deploy

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A deploy run under a umask of 077 writes the deployment's origin and
// the boot entries 0644, as OSTree does: `admin status` of any user reads
// every origin and entry, and a later deploy under a umask of 022, which
// makes the boot directories readable again, keeps that origin.
func TestDeployOriginAndEntriesIgnoreUmask(t *testing.T) {
	f := newFixture(t)
	f.commit("os", osTree("6.1.0-1", nil))
	func() {
		defer unix.Umask(unix.Umask(0o077))
		f.deploy("os", DeployOptions{})
	}()
	var files []string
	for _, d := range f.s.Deployments() {
		files = append(files, d.Path+".origin")
	}
	entries, err := filepath.Glob(filepath.Join(f.path, "boot/loader/entries/*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, entries...)
	if len(files) != 2 {
		t.Fatalf("origins and entries %q, want one of each", files)
	}
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %04o written under umask 077, want 0644", p, st.Mode().Perm())
		}
	}
}
