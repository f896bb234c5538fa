package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A user commits a tar holding a file recorded without the owner's read
// bit (Fedora's /etc/shadow is 0000) into a bare-user-only repository: the
// commit lands, ls and checkout -U work (the copy with the owner's read
// bit that user mode makes of such a file cannot be read, so the object is
// hardlinked as it is, unless it is empty), checking out again over that
// checkout with --union-identical, --union or --union-add finds nothing
// changed, and fsck reports the object as unreadable, not
// corrupt, naming the commit, path and ref that need it, and --delete
// leaves it. Run as nobody.
func TestBareUserOnlyOwnerUnreadableFile(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run otree as another user")
	}
	dir, bin, env := nobodyDir(t)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for name, mode := range map[string]int64{"shadow": 0, "ok": 0o644} {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(name))})
		tw.Write([]byte(name))
	}
	tw.WriteHeader(&tar.Header{Name: "empty", Typeflag: tar.TypeReg, Mode: 0})
	tw.Close()
	if err := os.WriteFile(filepath.Join(dir, "x.tar"), tb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--repo=" + filepath.Join(dir, "repo")}, args...)...)
		cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, env, asNobody()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{
		{"init", "--mode=bare-user-only"},
		{"commit", "-b", "m", "--tree=tar=x.tar"},
		{"checkout", "-U", "m", filepath.Join(dir, "co")},
	} {
		if out, err := run(args...); err != nil {
			t.Fatalf("otree %v as nobody: %v\n%s", args, err, out)
		}
	}
	if out, err := run("ls", "m", "/shadow"); err != nil || !strings.HasPrefix(out, "-00000 0 0") {
		t.Errorf("ls /shadow: %v\n%s", err, out)
	}
	// Checking out again over that checkout compares (and keeps) each
	// file as the checkout writes it: shadow linked, 0000; the empty
	// file, whose copy needs nothing read, copied with the bit.
	for _, union := range []string{"", "--union-identical", "--union", "--union-add"} {
		if union != "" {
			if out, err := run("checkout", "-U", union, "m", filepath.Join(dir, "co")); err != nil {
				t.Errorf("otree checkout -U %s over the checkout as nobody: %v\n%s", union, err, out)
			}
		}
		for name, perm := range map[string]os.FileMode{"shadow": 0, "empty": 0o400} {
			if fi, err := os.Stat(filepath.Join(dir, "co", name)); err != nil || fi.Mode().Perm() != perm {
				t.Errorf("checked-out %s after checkout -U %s: %v, %v (want %04o)", name, union, fi, err, perm)
			}
		}
	}
	out, err := run("fsck", "--delete")
	// The problem names where the commit needs the object, as for a
	// corrupt one, so that the file to fix can be found.
	if err == nil || !strings.Contains(out, "is unreadable: cannot be read by this user, so it was not verified; needed by commit ") ||
		!strings.Contains(out, " at /shadow (ref m)") || strings.Contains(out, "corrupt") || strings.Contains(out, "partial") {
		t.Errorf("fsck --delete as nobody: %v\n%s", err, out)
	}
	if out, err := run("checkout", "-U", "m", filepath.Join(dir, "co2")); err != nil {
		t.Errorf("fsck --delete removed what the commit needs: %v\n%s", err, out)
	}
}

// copyFile copies src to dst with mode perm.
func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// A user who may not write another user's repository is told so: prune,
// fsck --delete and commit fail naming the repository's objects directory
// and "permission denied", not only that the repository is read-only, which
// reads as a filesystem mounted read-only. The ref stays where it was.
func TestNotWritableRepositorySaysWhy(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run otree as another user")
	}
	dir, bin, env := nobodyDir(t)
	repoPath := filepath.Join(dir, "repo")
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runIn(t, repoPath, "init", "--mode=archive")
	id := strings.TrimSpace(runIn(t, repoPath, "commit", "-b", "main", src))
	objects := filepath.Join(repoPath, "objects")
	for _, args := range [][]string{
		{"prune", "--refs-only"},
		{"fsck", "--delete"},
		{"commit", "-b", "main", src},
	} {
		cmd := exec.Command(bin, append([]string{"--repo=" + repoPath}, args...)...)
		cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, env, asNobody()
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), objects) || !strings.Contains(string(out), "permission denied") {
			t.Errorf("otree %v as nobody: %v\n%s\nwant a failure naming %s: permission denied", args, err, out, objects)
		}
	}
	if got := strings.TrimSpace(runIn(t, repoPath, "rev-parse", "main")); got != id {
		t.Errorf("main is %s after the refused changes, want %s", got, id)
	}
}
