package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
)

// SIGINT or SIGTERM stops a commit that waits on a tar from standard
// input (a writer that stalled): it exits 128+signal at once, naming the
// signal and that the branch is unmoved, and the branch is where it was
// with no transaction left behind. A checkout reading --from-stdin stops
// the same way.
func TestInterruptedWhileReadingStdin(t *testing.T) {
	exe, env := otreeBinary(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		name string
		args []string
		say  string
	}{
		{syscall.SIGINT, 130, "SIGINT", []string{"commit", "-b", "main", "--tree=tar=-"}, "branch main is unmoved"},
		{syscall.SIGTERM, 143, "SIGTERM", []string{"commit", "-b", "main", "--tree=tar=-"}, "branch main is unmoved"},
		{syscall.SIGINT, 130, "SIGINT", []string{"checkout", "--from-stdin", "DEST"}, "standard input"},
	} {
		c := newCLI(t)
		before := c.commitTree("main", source(t, testtree.Tree{"a": testtree.File("a", 0o644)}), "first", 1)
		args := append([]string{"--repo=" + c.path}, tc.args...)
		if args[len(args)-1] == "DEST" {
			args[len(args)-1] = filepath.Join(t.TempDir(), "dest")
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// More than a pipe holds, so that once written, otree is reading
		// (its signal handling set up); then nothing more, nor an end.
		first := bytes.Repeat([]byte("x"), 1<<20)
		if tc.args[0] == "commit" {
			tw := tar.NewWriter(in)
			tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: int64(len(first) + 1)})
			tw.Write(first)
		} else {
			in.Write([]byte("main " + strings.Repeat("/", 1<<20)))
		}
		cmd.Process.Signal(tc.sig)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err = <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatalf("%v: %s went on reading standard input after %s", tc.args, tc.name, tc.name)
		}
		in.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
			t.Errorf("%v after %s: %v, want exit %d; stderr %q", tc.args, tc.name, err, tc.code, stderr.String())
		}
		if msg := stderr.String(); !strings.Contains(msg, "interrupted by "+tc.name) || !strings.Contains(msg, tc.say) {
			t.Errorf("%v after %s: stderr %q, want it to name the signal and %q", tc.args, tc.name, msg, tc.say)
		}
		if head, err := c.r.ReadRef("main"); err != nil || head != before {
			t.Errorf("%v after %s: main = %s, %v; want %s", tc.args, tc.name, head, err, before)
		}
		if m, _ := filepath.Glob(filepath.Join(c.path, "tmp", "txn-*")); len(m) != 0 {
			t.Errorf("%v after %s: transactions left: %v", tc.args, tc.name, m)
		}
	}
}
