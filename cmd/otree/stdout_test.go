package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// failWriter is a standard output every write to which fails with err.
type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// runTo runs otree against c's repository with stdout as standard output.
func (c *cli) runTo(stdout failWriter, args ...string) result {
	c.t.Helper()
	var errb strings.Builder
	code := run(context.Background(), append([]string{"--repo=" + c.path}, args...), strings.NewReader(""), stdout, &errb)
	return result{"", errb.String(), code}
}

// A command whose output is lost (a full disk) fails naming standard
// output, also those that print without checking each write.
func TestFullStdoutFails(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	c.commitTree("main", src, "one", 1)
	full := failWriter{&os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}}
	for _, args := range [][]string{
		{"fsck"},
		{"checksum", src + "/a"},
		{"static-delta", "list"},
		{"--help"},
		{"ls", "--help"},
		{"ls", "main"},
	} {
		res := c.runTo(full, args...)
		if res.code != exitError || !strings.Contains(res.stderr, "write /dev/stdout: no space left on device") {
			t.Errorf("otree %s to a full disk: exit %d, stderr %q; want exit 1 naming /dev/stdout", strings.Join(args, " "), res.code, res.stderr)
		}
	}
	// A writer that is no file is named as standard output.
	res := c.runTo(failWriter{errors.New("boom")}, "fsck")
	if res.code != exitError || !strings.Contains(res.stderr, "write standard output: boom") {
		t.Errorf("fsck to a failing writer: exit %d, stderr %q", res.code, res.stderr)
	}
}

// A commit that cannot print its id has still landed: it fails, naming the
// id and the branch now at it, and the summary follows the branch.
func TestCommitIDNotLostOnFullStdout(t *testing.T) {
	c := newCLI(t)
	c.ok("config", "set", "core.auto-update-summary", "true")
	full := failWriter{&os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}}
	for i, flags := range [][]string{nil, {"--json"}, {"--table-output"}} {
		src := source(t, testtree.Tree{"a": testtree.File(strings.Repeat("x", i+1), 0o644)})
		res := c.runTo(full, append(append([]string{"commit", "-b", "main", "-s", "s"}, flags...), src)...)
		id, err := c.r.ReadRef("main")
		if err != nil {
			t.Fatalf("commit %v: branch not moved: %v", flags, err)
		}
		if res.code != exitError || !strings.Contains(res.stderr, "commit "+id.String()+" is now branch main") ||
			!strings.Contains(res.stderr, "no space left on device") {
			t.Errorf("commit %v to a full disk: exit %d, stderr %q; want exit 1 naming %s and the write error", flags, res.code, res.stderr, id)
		}
		if out := c.ok("summary", "-v"); !strings.Contains(out, id.String()) {
			t.Errorf("commit %v to a full disk: summary does not list %s:\n%s", flags, id, out)
		}
	}
}

// With its reader gone, a command stops silently with SIGPIPE's status;
// a commit first moves its branch and updates the summary.
func TestBrokenPipeStdout(t *testing.T) {
	c := newCLI(t)
	c.ok("config", "set", "core.auto-update-summary", "true")
	src := source(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	closed := failWriter{&os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}}
	res := c.runTo(closed, "commit", "-b", "main", "-s", "one", src)
	if res.code != exitBrokenPipe || res.stderr != "" {
		t.Errorf("commit into a closed pipe: exit %d, stderr %q; want %d and nothing", res.code, res.stderr, exitBrokenPipe)
	}
	id, err := c.r.ReadRef("main")
	if err != nil {
		t.Fatalf("commit into a closed pipe: branch not moved: %v", err)
	}
	if out := c.ok("summary", "-v"); !strings.Contains(out, id.String()) {
		t.Errorf("commit into a closed pipe: summary does not list %s:\n%s", id, out)
	}
	for _, args := range [][]string{{"ls", "-R", "main"}, {"log", "main"}, {"fsck"}, {"cat", "main", "/a"}, {"refs"}} {
		if res := c.runTo(closed, args...); res.code != exitBrokenPipe || res.stderr != "" {
			t.Errorf("otree %s into a closed pipe: exit %d, stderr %q; want %d and nothing", strings.Join(args, " "), res.code, res.stderr, exitBrokenPipe)
		}
	}
}

// The process itself dies of SIGPIPE, as a Unix tool does, but only once
// done: the summary follows the branch the commit moved.
func TestBrokenPipeKillsWithSIGPIPE(t *testing.T) {
	c := newCLI(t)
	c.ok("config", "set", "core.auto-update-summary", "true")
	src := source(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	if errs, err := runIntoClosedPipe(t, "--repo="+c.path, "commit", "-b", "main", "-s", "one", src); !diedOfSIGPIPE(err) || errs != "" {
		t.Errorf("commit into a closed pipe: %v, stderr %q; want death by SIGPIPE and nothing said", err, errs)
	}
	id, err := c.r.ReadRef("main")
	if err != nil {
		t.Fatalf("commit into a closed pipe: branch not moved: %v", err)
	}
	if out := c.ok("summary", "-v"); !strings.Contains(out, id.String()) {
		t.Errorf("commit into a closed pipe: summary does not list %s:\n%s", id, out)
	}
}

// A command that changes nothing dies at the first write its reader's
// going away fails, rather than computing output no one reads: ls -R into
// a closed pipe never reaches the subdirectory whose dirtree is missing,
// which it would report.
func TestReaderDiesAtBrokenPipe(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"a": testtree.File("a", 0o644), "z/b": testtree.File("b", 0o644)})
	c.ok("commit", "-b", "main", src)
	id, err := c.r.ReadRef("main")
	if err != nil {
		t.Fatal(err)
	}
	z, err := c.r.Lookup(id, "/z")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(c.r.ObjectPath(repo.KindDirTree, z.ID)); err != nil {
		t.Fatal(err)
	}
	if res := c.run("ls", "-R", "main"); res.code == 0 || !strings.Contains(res.stderr, z.ID.String()) {
		t.Fatalf("ls -R with /z's dirtree missing: exit %d, stderr %q; want it named", res.code, res.stderr)
	}
	if errs, err := runIntoClosedPipe(t, "--repo="+c.path, "ls", "-R", "main"); !diedOfSIGPIPE(err) || errs != "" {
		t.Errorf("ls -R into a closed pipe: %v, stderr %q; want death by SIGPIPE at its first line", err, errs)
	}
}

// runIntoClosedPipe runs the otree binary with args, its standard output a
// pipe whose reader is gone, and returns how it ended and its stderr.
func runIntoClosedPipe(t *testing.T, args ...string) (string, error) {
	t.Helper()
	exe, env := otreeBinary(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	var errb strings.Builder
	cmd := exec.Command(exe, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, w, &errb
	err = cmd.Run()
	return errb.String(), err
}

// diedOfSIGPIPE reports whether err is a process's death by SIGPIPE.
func diedOfSIGPIPE(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGPIPE
}
