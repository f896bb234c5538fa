package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/otree/otree/internal/testtree"
)

// A repository shared by a group: one user makes it under a umask of 002;
// another user of the same group commits into it, moves a branch the first
// made, adds one in a directory of refs/heads the first made, prunes and
// checks out; the first then commits, fscks and checks out. Every step
// succeeds, as with OSTree, whose repository directories are group-writable
// too, and every directory either made is group-writable.
func TestGroupSharedRepository(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run otree as two other users")
	}
	const other = nobody - 1 // a second uid, in nobody's group
	dir, bin, env := nobodyDir(t)
	if err := os.Chmod(dir, 0o775); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mine", "theirs", "co"} {
		owner := nobody
		if name != "mine" {
			owner = other
		}
		p := filepath.Join(dir, name)
		if name != "co" {
			testtree.Create(t, p, testtree.Tree{"d/f": testtree.File(name+"\n", 0o644)})
		} else if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		filepath.Walk(p, func(q string, _ os.FileInfo, err error) error {
			if err == nil {
				err = os.Lchown(q, owner, nobody)
			}
			return err
		})
	}
	as := func(t *testing.T, uid int, args ...string) {
		t.Helper()
		cmd := exec.Command("/bin/sh", append([]string{"-c", `umask 002 && exec "$0" "$@"`, bin}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: nobody}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("otree %s as uid %d: %v\n%s", strings.Join(args, " "), uid, err, out)
		}
	}
	for _, mode := range []string{"bare-user", "bare-user-only", "archive"} {
		t.Run(mode, func(t *testing.T) {
			r := "--repo=repo-" + mode
			as(t, nobody, r, "init", "--mode="+mode)
			as(t, nobody, r, "commit", "-b", "main", "mine")
			as(t, nobody, r, "commit", "-b", "team/a", "mine")
			as(t, other, r, "commit", "-b", "main", "theirs")
			as(t, other, r, "commit", "-b", "team/x", "theirs")
			as(t, other, r, "prune", "--refs-only")
			as(t, other, r, "checkout", "-U", "main", filepath.Join("co", mode))
			as(t, nobody, r, "commit", "-b", "main", "mine")
			as(t, nobody, r, "fsck")
			as(t, nobody, r, "checkout", "-U", "main", "mine-"+mode)
			if b, err := os.ReadFile(filepath.Join(dir, "co", mode, "d", "f")); err != nil || string(b) != "theirs\n" {
				t.Errorf("checkout of the other user's commit: %q, %v", b, err)
			}
			// What either user made there (caches included) the other may write in.
			filepath.WalkDir(filepath.Join(dir, "repo-"+mode), func(p string, d os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if st := lstat(t, p); d.IsDir() && st.Mode&0o070 != 0o070 {
					t.Errorf("%s: mode %04o under umask 002, not group-writable", p, st.Mode&0o7777)
				}
				return nil
			})
		})
	}
}

// Under a umask of 077 the metadata objects of every mode, and an archive
// repository's file objects, are still 0644, as OSTree makes them: a
// repository published by copying its files must stay readable by the
// server. Objects a pull-local writes are made the same way, and so are a
// static delta's parts and superblock, its index and the summary.
func TestObjectModesIgnoreUmask(t *testing.T) {
	exe, env := otreeBinary(t)
	dir := t.TempDir()
	testtree.Create(t, filepath.Join(dir, "src"), testtree.Tree{
		"private": testtree.File("secret\n", 0o600),
		"d/f":     testtree.File("f\n", 0o644),
		"l":       testtree.Symlink("d/f"),
	})
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("/bin/sh", append([]string{"-c", `umask 077 && exec "$0" "$@"`, exe}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("otree %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, mode := range []string{"archive", "bare-user", "bare-user-only"} {
		r := "--repo=" + mode
		run(r, "init", "--mode="+mode)
		run(r, "commit", "-b", "main", "--add-detached-metadata-string=k=v", "src")
		run("--repo=pulled-"+mode, "init", "--mode="+mode)
		run("--repo=pulled-"+mode, "pull-local", mode, "main")
		for _, repoDir := range []string{mode, "pulled-" + mode} {
			n := 0
			filepath.WalkDir(filepath.Join(dir, repoDir, "objects"), func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				ext := filepath.Ext(p)
				if ext == ".file" && mode != "archive" {
					return nil // the file itself, its mode recorded
				}
				n++
				if st := lstat(t, p); st.Mode&0o7777 != 0o644 {
					t.Errorf("%s: mode %04o under umask 077, want 0644", p, st.Mode&0o7777)
				}
				return nil
			})
			if n < 4 {
				t.Errorf("%s: %d objects checked, want a commit, its metadata, dirtrees and dirmetas", repoDir, n)
			}
		}
	}
	testtree.Create(t, filepath.Join(dir, "src2"), testtree.Tree{"d/f": testtree.File("changed\n", 0o644)})
	run("--repo=archive", "commit", "-b", "main", "src2")
	run("--repo=archive", "static-delta", "generate", "main")
	run("--repo=archive", "summary", "-u")
	served := []string{filepath.Join(dir, "archive", "summary")}
	for _, sub := range []string{"deltas", "delta-indexes"} {
		filepath.WalkDir(filepath.Join(dir, "archive", sub), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				served = append(served, p)
			}
			return err
		})
	}
	if len(served) < 4 {
		t.Fatalf("summary and delta files %q, want a summary, a superblock, a part and an index", served)
	}
	for _, p := range served {
		if st := lstat(t, p); st.Mode&0o7777 != 0o644 {
			t.Errorf("%s: mode %04o under umask 077, want 0644", p, st.Mode&0o7777)
		}
	}
}
