package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// A fan-out directory of objects/ that nobody may list does not end fsck:
// it reports the directory, goes on to find a corrupt object in another
// one and the unreadable object a commit needs in it, exits non-zero, and
// --delete deletes the corrupt object alone. Run as nobody (OSTree 2022.7
// stops at the directory).
func TestFsckGoesPastUnlistableFanOut(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run otree as another user")
	}
	dir, bin, env := nobodyDir(t)
	repoPath := filepath.Join(dir, "repo")
	src := filepath.Join(dir, "src")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--repo=" + repoPath}, args...)...)
		cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, env, asNobody()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	// Files until two of them land in different fan-out directories.
	objectOf := func(name string) string {
		f := strings.Fields(runIn(t, repoPath, "ls", "-C", "m", "/"+name))
		if len(f) < 5 {
			t.Fatalf("ls -C /%s: %q", name, f)
		}
		return f[4]
	}
	if out, err := run("init", "--mode=bare-user"); err != nil {
		t.Fatalf("init as nobody: %v\n%s", err, out)
	}
	var hidden, bad string
	for i := 0; bad == ""; i++ {
		name := "f" + strconv.Itoa(i)
		if err := os.WriteFile(filepath.Join(src, name), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := run("commit", "-b", "m", src); err != nil {
			t.Fatalf("commit as nobody: %v\n%s", err, out)
		}
		id := objectOf(name)
		switch {
		case hidden == "":
			hidden = id
		case id[:2] != hidden[:2]:
			bad = id
		}
	}
	objPath := func(id string) string { return filepath.Join(repoPath, "objects", id[:2], id[2:]+".file") }
	fan := filepath.Dir(objPath(hidden))
	f, err := os.OpenFile(objPath(bad), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("appended")
	f.Close()
	if err := os.Chmod(fan, 0); err != nil {
		t.Fatal(err)
	}
	out, err := run("fsck", "--delete")
	for _, want := range []string{
		"listing " + fan + ": open " + fan + ": permission denied",
		"file object " + bad + " (" + objPath(bad) + ") is corrupt",
		"file object " + hidden + " (" + objPath(hidden) + ") is unreadable",
	} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("fsck --delete as nobody: %v, want a failure saying %q:\n%s", err, want, out)
		}
	}
	if err := os.Chmod(fan, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(objPath(hidden)); err != nil {
		t.Errorf("the object in the unlistable directory: %v", err)
	}
	if _, err := os.Lstat(objPath(bad)); !os.IsNotExist(err) {
		t.Errorf("the corrupt object is still there: %v", err)
	}
}
