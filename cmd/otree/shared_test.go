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
	dir, bin, env := sharedDir(t)
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

// In an archive repository shared by a group, the uncompressed-object
// cache is its owner's: only the owner's user-mode checkouts fill and
// link it. Another member of the group fscks and prunes the repository
// whatever that owner's umask made of the cache: an entry of a 0600 file
// the other may not read is not a problem of the repository, and fsck
// --delete leaves it; a cache directory made under a umask of 077, which
// the other may not list, or one made under 022, from which the other may
// not remove, fails neither fsck nor prune (OSTree's prune leaves the
// cache alone, and its fsck does not read it); the owner's prune then
// removes what no checkout uses.
func TestGroupSharedArchiveOwnersCache(t *testing.T) {
	dir, bin, env := sharedDir(t)
	src := filepath.Join(dir, "src")
	testtree.Create(t, src, testtree.Tree{
		"private": testtree.File("secret\n", 0o600),
		"d/f":     testtree.File("f\n", 0o644),
	})
	filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(p, nobody, nobody)
		}
		return err
	})
	as := func(t *testing.T, uid int, umask string, args ...string) string {
		t.Helper()
		cmd := exec.Command("/bin/sh", append([]string{"-c", `umask ` + umask + ` && exec "$0" "$@"`, bin}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: nobody}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("otree %s as uid %d: %v\n%s", strings.Join(args, " "), uid, err, out)
		}
		return string(out)
	}
	r := "--repo=repo"
	as(t, nobody, "002", r, "init", "--mode=archive")
	as(t, nobody, "002", r, "commit", "-b", "main", "src")
	as(t, nobody, "002", r, "checkout", "-U", "main", "co1")
	cache := filepath.Join(dir, "repo", "uncompressed-objects-cache")
	var entries []string
	filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			entries = append(entries, p)
		}
		return err
	})
	if len(entries) != 2 {
		t.Fatalf("cache entries after the owner's checkout: %q, want the two files'", entries)
	}
	if out := as(t, other, "002", r, "fsck", "--delete"); !strings.Contains(out, "No problems found") {
		t.Errorf("fsck --delete by another member of the group:\n%s", out)
	}
	for _, p := range entries {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("cache entry after the other member's fsck --delete: %v", err)
		}
	}
	// The owner's checkouts again, under a umask of 077: the cache made
	// anew is the owner's alone.
	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	as(t, nobody, "077", r, "checkout", "-U", "main", "co2")
	if st := lstat(t, cache); st.Mode&0o077 != 0 {
		t.Fatalf("%s: mode %04o under umask 077", cache, st.Mode&0o7777)
	}
	if out := as(t, other, "002", r, "fsck"); !strings.Contains(out, "No problems found") {
		t.Errorf("fsck by another member of the group:\n%s", out)
	}
	as(t, other, "002", r, "prune")
	// Under a umask of 022 the other may list the cache but not remove
	// from it: the entries no checkout uses any more stay.
	for _, p := range []string{cache, filepath.Join(dir, "co1"), filepath.Join(dir, "co2")} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	as(t, nobody, "022", r, "checkout", "-U", "main", "co3")
	if err := os.RemoveAll(filepath.Join(dir, "co3")); err != nil {
		t.Fatal(err)
	}
	as(t, other, "002", r, "prune")
	as(t, nobody, "002", r, "fsck")
	if out := as(t, nobody, "002", r, "prune"); !strings.Contains(out, "2 uncompressed-cache entries") {
		t.Errorf("the owner's prune after the other's:\n%s", out)
	}
}

// other is a second uid that runs otree, in nobody's group.
const other = nobody - 1

// sharedDir is nobodyDir made writable by nobody's group, for otree run as
// nobody and as other; the test is skipped without root, which that takes.
func sharedDir(t *testing.T) (dir, bin string, env []string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run otree as two other users")
	}
	dir, bin, env = nobodyDir(t)
	if err := os.Chmod(dir, 0o775); err != nil {
		t.Fatal(err)
	}
	return dir, bin, env
}
