package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// checkout's --skip-list, --subpath with it, --from-file, --from-stdin and
// --allow-noent give the trees OSTree's give from the same commits.
func TestCheckoutOptionsParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	one := source(t, testtree.Tree{
		"a/b/c": testtree.File("c", 0o644),
		"a/d":   testtree.File("d", 0o644),
		"e":     testtree.File("e", 0o644),
		"x/a":   testtree.File("xa", 0o644),
		"x/b":   testtree.Symlink("a"),
	})
	two := source(t, testtree.Tree{
		"d":     testtree.File("replaced", 0o600),
		"f/g":   testtree.File("g", 0o644),
		"sg":    testtree.Dir(fs.ModeSetgid | 0o775),
		"sg/h":  testtree.File("h", 0o644),
		"tmp":   testtree.Dir(fs.ModeSticky | 0o777),
		"tmp/i": testtree.File("i", 0o644),
	})
	for branch, dir := range map[string]string{"one": one, "two": two} {
		c.ok("commit", "-b", branch, "--owner-uid=0", "--owner-gid=0", dir)
		o.ok("commit", "-b", branch, "--owner-uid=0", "--owner-gid=0", dir)
	}
	tmp := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// OSTree skips a directory only when its line ends in "/"; both forms
	// of every other line are written as OSTree reads them.
	skip := file("skip", "/a/b/\n/e\n/x/a\n/nothere\n")
	skipSub := file("skip-sub", "/b/\n/a/d\n")
	pairs := file("pairs", "one\x00/a\x00two\x00/\x00")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"skip-list", []string{"-U", "--skip-list=" + skip, "one"}},
		{"subpath+skip-list", []string{"-U", "--subpath=/a", "--skip-list=" + skipSub, "one"}},
		{"from-file", []string{"-U", "--union", "--from-file=" + pairs}},
		{"from-file+bareuseronly-dirs", []string{"-U", "-M", "--union", "--from-file=" + pairs}},
		{"from-file+skip-list", []string{"-U", "--union", "--skip-list=" + skipSub, "--from-file=" + pairs}},
	} {
		name, args := tc.name, tc.args
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mine, theirs := filepath.Join(dir, "otree"), filepath.Join(dir, "ostree")
			c.ok(append(append([]string{"checkout"}, args...), mine)...)
			o.ok(append(append([]string{"checkout"}, args...), theirs)...)
			want := testtree.Read(t, theirs, testtree.ReadOptions{})
			if d := cmp.Diff(want, testtree.Read(t, mine, testtree.ReadOptions{})); d != "" {
				t.Errorf("checkout %s differs from OSTree's (-ostree +otree):\n%s", name, d)
			}
		})
	}

	// --from-stdin reads the same pairs.
	dest := filepath.Join(tmp, "stdin")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--repo=" + c.path, "checkout", "-U", "--union", "--from-stdin", dest},
		strings.NewReader("one\x00/a\x00two\x00/\x00"), &out, &errb); code != 0 {
		t.Fatalf("--from-stdin: exit %d: %s", code, errb.String())
	}
	theirs := filepath.Join(tmp, "stdin-ostree")
	o.ok("checkout", "-U", "--union", "--from-file="+pairs, theirs)
	if d := cmp.Diff(testtree.Read(t, theirs, testtree.ReadOptions{}), testtree.Read(t, dest, testtree.ReadOptions{})); d != "" {
		t.Errorf("--from-stdin differs from OSTree's --from-file (-ostree +otree):\n%s", d)
	}

	// --allow-noent: a missing subpath checks out nothing, and succeeds.
	for _, tool := range []func(...string) string{c.ok, o.ok} {
		dest := filepath.Join(t.TempDir(), "noent")
		tool("checkout", "-U", "--allow-noent", "--subpath=/nope", "one", dest)
		if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("--allow-noent made DEST: %v", err)
		}
	}
	c.fails(exitError, []string{"/nope", "not found"}, "checkout", "-U", "--subpath=/nope", "one", filepath.Join(tmp, "n"))

	// Without a union mode the second checkout of a list finds DEST.
	c.fails(exitError, []string{`checking out two (subpath "/")`, "already exists"}, "checkout", "-U", "--from-file="+pairs, filepath.Join(tmp, "nounion"))
	c.fails(exitError, []string{"no subpath"}, "checkout", "-U", "--from-file="+file("odd", "one\x00/a\x00two"), filepath.Join(tmp, "odd"))
	c.fails(exitUsage, []string{"only DEST"}, "checkout", "-U", "--from-file="+pairs, "one", filepath.Join(tmp, "x"))
	c.fails(exitUsage, []string{"--subpath"}, "checkout", "-U", "--subpath=/a", "--from-file="+pairs, filepath.Join(tmp, "x"))

	// A skip list naming the root leaves out everything: both tools
	// succeed and make nothing, nor mind an existing DEST.
	root := file("root", "/x/a\n/\n")
	for tool, run := range map[string]func(...string) string{"otree": c.ok, "ostree": o.ok} {
		dest := filepath.Join(t.TempDir(), "r")
		run("checkout", "-U", "--skip-list="+root, "one", dest)
		if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: skipping the root made DEST: %v", tool, err)
		}
		dest = t.TempDir()
		run("checkout", "-U", "--skip-list="+root, "one", dest)
		if ents, _ := os.ReadDir(dest); len(ents) != 0 {
			t.Errorf("%s: skipping the root wrote %v", tool, ents)
		}
	}

	// An empty list (or one ended at once by an empty REV) checks out
	// nothing and succeeds, as OSTree's does; DEST is not created.
	for _, in := range []string{"", "\x00"} {
		list := file("empty", in)
		for tool, run := range map[string]func(...string) string{"otree": c.ok, "ostree": o.ok} {
			dest := filepath.Join(t.TempDir(), "none")
			run("checkout", "-U", "--union", "--from-file="+list, dest)
			if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: --from-file with %q made DEST: %v", tool, in, err)
			}
		}
	}

	// --fsync=POLICY takes OSTree's boolean spellings, and always a value.
	for _, v := range []string{"yes", "no", "true", "FALSE", "1", "0", "none"} {
		c.ok("checkout", "-U", "--fsync="+v, "one", filepath.Join(t.TempDir(), "fs"))
		o.ok("checkout", "-U", "--fsync="+v, "one", filepath.Join(t.TempDir(), "fs"))
	}
	fsDest := filepath.Join(tmp, "fs")
	for _, args := range [][]string{{"--fsync=maybe", "one", fsDest}, {"one", fsDest, "--fsync"}} {
		args = append([]string{"checkout", "-U"}, args...)
		c.fails(exitUsage, []string{"--fsync"}, args...)
		if out, err := o.run(args...); err == nil {
			t.Errorf("ostree %v succeeded: %s", args, out)
		}
	}

	// --disable-cache is accepted, as OSTree's: otree has no cache to use.
	for tool, run := range map[string]func(...string) string{"otree": c.ok, "ostree": o.ok} {
		dest := filepath.Join(t.TempDir(), "nocache")
		run("checkout", "-U", "--disable-cache", "one", dest)
		if _, err := os.Stat(filepath.Join(dest, "a", "d")); err != nil {
			t.Errorf("%s checkout --disable-cache: %v", tool, err)
		}
	}

	// Without DEST, REV names the directory, as in OSTree.
	t.Chdir(t.TempDir())
	c.ok("checkout", "-U", "one")
	if _, err := os.Stat(filepath.Join("one", "a", "d")); err != nil {
		t.Errorf("checkout REV without DEST: %v", err)
	}
}

// --fsync syncs the checkout's filesystem and then DEST's parent directory,
// after the last entry is written; without it nothing is synced.
func TestCheckoutFsync(t *testing.T) {
	testbin.NeedStrace(t)
	c := newCLIMode(t, repo.ModeBareUser)
	c.ok("commit", "-b", "one", source(t, fixture))
	for _, fsync := range []bool{false, true} {
		dest := filepath.Join(t.TempDir(), "co")
		args := []string{"--repo=" + c.path, "checkout", "-U", "one", dest}
		if fsync {
			args = append(args, "--fsync=yes")
		}
		st, err := straced(t, "-e trace=syncfs,fsync,fdatasync,sync,utimensat", args...)
		if err != nil {
			t.Fatalf("strace otree checkout: %v\n%s", err, st.out)
		}
		data := st.log
		syncs := regexp.MustCompile(`(syncfs|fsync|fdatasync|sync)\(\d+<([^>]*)>`).FindAllStringSubmatch(data, -1)
		if !fsync {
			if len(syncs) != 0 {
				t.Errorf("checkout without --fsync synced: %q", syncs)
			}
			continue
		}
		var got []string
		for _, m := range syncs {
			got = append(got, m[1]+" "+m[2])
		}
		want := []string{"syncfs " + dest, "fsync " + filepath.Dir(dest)}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("--fsync syncs (-want +got):\n%s", d)
		}
		// The syncs come after the last write: the root's times are set
		// when everything below it is done.
		last := strings.LastIndex(data, "utimensat(")
		if first := strings.Index(data, "syncfs("); last < 0 || first < last {
			t.Errorf("syncfs at %d comes before the last utimensat at %d", first, last)
		}
	}
}

// --process-passthrough-whiteouts checks ".ostree-wh.NAME" files out as
// overlayfs whiteouts NAME, as OSTree does; without it they stay files.
func TestPassthroughWhiteoutsParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, testtree.Tree{
		".ostree-wh.foo":     testtree.File("x", 0o644),
		"sub/.ostree-wh.bar": testtree.File("y", 0o600),
		"keep":               testtree.File("z", 0o644),
	})
	c.ok("commit", "-b", "wh", "--owner-uid=0", "--owner-gid=0", src)
	o.ok("commit", "-b", "wh", "--owner-uid=0", "--owner-gid=0", src)
	dir := t.TempDir()
	mine, theirs := filepath.Join(dir, "otree"), filepath.Join(dir, "ostree")
	c.ok("checkout", "-U", "--process-passthrough-whiteouts", "wh", mine)
	o.ok("checkout", "-U", "--process-passthrough-whiteouts", "wh", theirs)
	got := testtree.Read(t, mine, testtree.ReadOptions{})
	if d := cmp.Diff(testtree.Read(t, theirs, testtree.ReadOptions{}), got); d != "" {
		t.Errorf("checkout differs from OSTree's (-ostree +otree):\n%s", d)
	}
	for _, p := range []string{"foo", "sub/bar"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(mine, p), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d (%v), want a 0:0 character device", p, st.Mode, st.Rdev, err)
		}
	}
	if _, ok := got[".ostree-wh.foo"]; ok {
		t.Errorf("the passthrough file was written too")
	}
	// A union checkout over it replaces the whiteouts; without the option
	// the files are checked out as they are.
	c.ok("checkout", "-U", "--union", "--process-passthrough-whiteouts", "wh", mine)
	plain := filepath.Join(dir, "plain")
	c.ok("checkout", "-U", "wh", plain)
	if e, ok := testtree.Read(t, plain, testtree.ReadOptions{})[".ostree-wh.foo"]; !ok || e.Content != "x" {
		t.Errorf("without the option: %+v", e)
	}
}
