package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
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

// SIGINT or SIGTERM stops a pull waiting on a file object the server is
// still sending: it exits 128+signal, saying the pull stopped with no ref
// moved (net/http reports the signal itself, not a cancellation), leaves
// no transaction and a repository fsck accepts, and the next pull
// completes.
func TestInterruptedPull(t *testing.T) {
	exe, env := otreeBinary(t)
	src := newCLI(t)
	tr := testtree.Tree{}
	for i := range 20 {
		tr[fmt.Sprintf("f%02d", i)] = testtree.File(strings.Repeat(fmt.Sprintf("file %d\n", i), 40), 0o644)
	}
	id := src.commitTree("main", source(t, tr), "one", 1700000000)
	src.ok("summary", "-u")
	files := http.FileServer(http.Dir(src.path))
	// While set, file objects stall and the channel is told of one; each
	// run has its own, so a stall of an earlier run does not count.
	var stall atomic.Pointer[chan struct{}]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reached := stall.Load(); reached != nil && strings.HasSuffix(r.URL.Path, ".file") {
			// Part of a response, then nothing until the client goes.
			w.Header().Set("Content-Length", "100000")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			select {
			case *reached <- struct{}{}:
			default:
			}
			<-r.Context().Done()
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		name := unix.SignalName(tc.sig)
		dst := newCLI(t)
		dst.ok("remote", "add", "--no-gpg-verify", "origin", srv.URL)
		reached := make(chan struct{}, 1)
		stall.Store(&reached)
		cmd := exec.Command(exe, "--repo="+dst.path, "pull", "--disable-fsync", "origin", "main")
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-reached:
		case err := <-exited:
			t.Fatalf("pull ended before fetching a file object: %v\n%s", err, stderr.String())
		}
		cmd.Process.Signal(tc.sig)
		var err error
		select {
		case err = <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatalf("pull went on after %s", name)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
			t.Errorf("pull after %s: %v, want exit %d; stderr %q", name, err, tc.code, stderr.String())
		}
		if msg := stderr.String(); !strings.Contains(msg, "interrupted by "+name) || !strings.Contains(msg, "pull stopped: no ref was moved") {
			t.Errorf("pull after %s: stderr %q, want it to name the signal and say no ref moved", name, msg)
		}
		if refs, _ := dst.r.ListRefs(""); len(refs) != 0 {
			t.Errorf("pull after %s moved refs: %v", name, refs)
		}
		if m, _ := filepath.Glob(filepath.Join(dst.path, "tmp", "txn-*")); len(m) != 0 {
			t.Errorf("pull after %s left transactions: %v", name, m)
		}
		dst.ok("fsck")
		stall.Store(nil)
		dst.ok("pull", "--disable-fsync", "origin", "main")
		if head, err := dst.r.ReadRef("origin:main"); err != nil || head != id {
			t.Errorf("the pull after %s's: origin:main = %s, %v; want %s", name, head, err, id)
		}
	}
}
