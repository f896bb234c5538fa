package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
)

// A user other than root checks out without -U, with OSTree and otree on
// the same trees, each tool in repositories the user made with it. Both
// succeed where the user can give every entry its owner and xattrs (its
// own uid, user.* xattrs, setuid bits on its own files) or where the
// repository records no owner (bare-user-only: entries stay the user's,
// objects are hardlinked, -H works); both fail where it cannot (an owner of
// 0:0, a security.* xattr). otree's error then names the path, and the
// path it names is not left behind half written.
func TestCheckoutAsUserWithoutUserModeParity(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the tools as another user")
	}
	o := needOSTree(t, "bare-user")
	dir, bin, env := nobodyDir(t)
	tools := map[string]string{"ostree": o.bin, "otree": bin}
	run := func(tool string, args ...string) (string, error) {
		cmd := exec.Command(tools[tool], args...)
		cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, env, asNobody()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// Root's files: the commits record the owner the case gives.
	tree := testtree.Tree{
		"f":     {Mode: 0o644, Content: "data\n", Xattrs: map[string]string{"user.k": "v"}},
		"suid":  {Mode: 0o755 | fs.ModeSetuid, Content: "run\n"},
		"empty": testtree.File("", 0o644),
		"link":  testtree.Symlink("f"),
		"d":     testtree.Dir(0o755),
		"d/g":   testtree.File("in d\n", 0o644),
	}
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	testtree.Create(t, src, tree)
	sec := filepath.Join(dir, "sec") // a security.* xattr only root may set
	os.Mkdir(sec, 0o755)
	testtree.Create(t, sec, testtree.Tree{"f": {Mode: 0o644, Content: "data\n", Xattrs: map[string]string{"security.otreetest": "v"}}})

	for _, tc := range []struct {
		name, mode, src string
		owner           int // recorded by the commit (not in bare-user-only)
		args            []string
		ok, linked      bool
		again           []string // a second checkout into DEST, to succeed
	}{
		{"bare-user-only", "bare-user-only", src, 0, nil, true, true, []string{"-H", "--union-identical"}},
		{"bare-user-only -H", "bare-user-only", src, 0, []string{"-H"}, true, true, nil},
		{"bare-user-only -C", "bare-user-only", src, 0, []string{"-C"}, true, false, nil},
		{"bare-user own", "bare-user", src, nobody, nil, true, false, nil},
		{"archive own", "archive", src, nobody, nil, true, false, nil},
		{"bare-user root's", "bare-user", src, 0, nil, false, false, nil},
		{"archive root's", "archive", src, 0, nil, false, false, nil},
		{"bare-user -H", "bare-user", src, nobody, []string{"-H"}, false, false, nil},
		{"bare-user security xattr", "bare-user", sec, nobody, nil, false, false, nil},
		{"archive security xattr", "archive", sec, nobody, nil, false, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]testtree.Tree{}
			linked := map[string]map[string]bool{}
			var otreeOut string
			var otreeErr error
			for tool := range tools {
				name := strings.NewReplacer(" ", "_", "'", "").Replace(tc.name)
				r := filepath.Join(dir, tool+"-"+name)
				dest := filepath.Join(dir, "co-"+tool+"-"+name)
				commit := []string{"--repo=" + r, "commit", "-b", "m", filepath.Base(tc.src)}
				if tc.mode != "bare-user-only" {
					commit = append(commit, fmt.Sprintf("--owner-uid=%d", tc.owner), fmt.Sprintf("--owner-gid=%d", tc.owner))
				}
				for _, args := range [][]string{{"--repo=" + r, "init", "--mode=" + tc.mode}, commit} {
					if out, err := run(tool, args...); err != nil {
						t.Fatalf("%s %v as nobody: %v\n%s", tool, args, err, out)
					}
				}
				out, err := run(tool, append(append([]string{"--repo=" + r, "checkout"}, tc.args...), "m", dest)...)
				if (err == nil) != tc.ok {
					t.Fatalf("%s checkout %v as nobody: %v, want success %v\n%s", tool, tc.args, err, tc.ok, out)
				}
				if tool == "otree" {
					otreeOut, otreeErr = out, err
					if err != nil {
						checkFailedCheckout(t, dest, out)
					}
				}
				if err != nil {
					continue
				}
				if tc.again != nil {
					args := append(append([]string{"--repo=" + r, "checkout"}, tc.again...), "m", dest)
					if out, err := run(tool, args...); err != nil {
						t.Errorf("%s %v as nobody after the checkout: %v\n%s", tool, args, err, out)
					}
				}
				got[tool] = testtree.Read(t, dest, testtree.ReadOptions{Owners: true, Xattrs: true})
				linked[tool] = linkedFiles(t, dest)
				if st := lstat(t, dest); st.Uid != nobody || st.Mode&0o7777 != 0o755 {
					t.Errorf("%s: DEST owned by %d, mode %04o; want nobody's, 0755", tool, st.Uid, st.Mode&0o7777)
				}
			}
			if otreeErr != nil {
				return
			}
			if d := cmp.Diff(got["ostree"], got["otree"]); d != "" {
				t.Errorf("checkout as nobody differs from OSTree's (-ostree +otree):\n%s", d)
			}
			if d := cmp.Diff(linked["ostree"], linked["otree"]); d != "" {
				t.Errorf("hardlinked files differ from OSTree's (-ostree +otree):\n%s", d)
			}
			if want := map[string]bool{"f": tc.linked, "suid": tc.linked, "d/g": tc.linked}; !cmp.Equal(want, linked["otree"]) {
				t.Errorf("otree hardlinked %v, want %v\n%s", linked["otree"], want, otreeOut)
			}
		})
	}
}

// checkFailedCheckout checks what a failed checkout into dest says and
// leaves: the error names dest or a path below it, that path is not there
// (an entry not finished is removed), and dest, if made, keeps the 0700 it
// was created with, so it does not pass for a finished checkout.
func checkFailedCheckout(t *testing.T, dest, out string) {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(dest) + `(/[^:]*)?:`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the error does not name %s or a path below it:\n%s", dest, out)
	}
	if m[1] != "" {
		if _, err := os.Lstat(dest + m[1]); !os.IsNotExist(err) {
			t.Errorf("%s%s, named by the error, was left behind (%v):\n%s", dest, m[1], err, out)
		}
	}
	var st unix.Stat_t
	if unix.Lstat(dest, &st) == nil && st.Mode&0o7777 != 0o700 {
		t.Errorf("after the failure DEST has mode %04o, as if finished; want 0700", st.Mode&0o7777)
	}
}

// linkedFiles says, for each regular file with content below root, whether
// it is a hardlink (of a repository object: the checkout has no others).
func linkedFiles(t *testing.T, root string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if st := lstat(t, p); st.Size > 0 {
			m[strings.TrimPrefix(p, root+"/")] = st.Nlink > 1
		}
		return nil
	})
	return m
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// A bare-user object another user stored unreadable (root's commit of a
// 0000 file gives a 0400 object of root's): a user-mode checkout by nobody,
// which reads its header from an xattr, fails naming the object and its
// path, and calls it unreadable, not corrupt, as fsck does, for it may be
// sound.
func TestCheckoutUnreadableBareUserObject(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to store an object nobody cannot read")
	}
	dir, bin, env := nobodyDir(t)
	src := filepath.Join(dir, "src")
	testtree.Create(t, src, testtree.Tree{"secret": testtree.File("s\n", 0o644)})
	if err := os.Chmod(filepath.Join(src, "secret"), 0); err != nil {
		t.Fatal(err)
	}
	r := filepath.Join(dir, "repo")
	for _, args := range [][]string{{"init", "--mode=bare-user"}, {"commit", "-b", "m", src}} {
		cmd := exec.Command(bin, append([]string{"--repo=" + r}, args...)...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("otree %v: %v\n%s", args, err, out)
		}
	}
	dest := filepath.Join(dir, "co")
	cmd := exec.Command(bin, "--repo="+r, "checkout", "-U", "m", dest)
	cmd.Env, cmd.SysProcAttr = env, asNobody()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("checkout by nobody of an object it cannot read succeeded:\n%s", out)
	}
	checkFailedCheckout(t, dest, string(out))
	if !regexp.MustCompile(`file object [0-9a-f]{64} \(` + regexp.QuoteMeta(r) + `/objects/[0-9a-f]{2}/[0-9a-f]{62}\.file\).*permission denied`).Match(out) {
		t.Errorf("the error does not name the object, its path and the denied permission:\n%s", out)
	}
	if strings.Contains(string(out), "corrupt") {
		t.Errorf("an object nobody may not read is called corrupt:\n%s", out)
	}
}
