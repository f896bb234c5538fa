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
