package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// SIGINT, SIGTERM or SIGHUP stops a commit that waits on a tar from
// standard input (a writer that stalled): it exits 128+signal at once, naming the
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
		{syscall.SIGHUP, 129, "SIGHUP", []string{"commit", "-b", "main", "--tree=tar=-"}, "branch main is unmoved"},
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
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		err = signalAndWait(t, cmd, exited, tc.sig, 30*time.Second, fmt.Sprintf("%v went on reading standard input", tc.args))
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
// moved and naming the signal once (net/http reports the signal itself,
// not a cancellation, at the end of its error), leaves
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
		err := signalAndWait(t, cmd, exited, tc.sig, 30*time.Second, "pull went on")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
			t.Errorf("pull after %s: %v, want exit %d; stderr %q", name, err, tc.code, stderr.String())
		}
		if msg := stderr.String(); strings.Count(msg, "interrupted by "+name) != 1 || !strings.Contains(msg, "pull stopped: no ref was moved") {
			t.Errorf("pull after %s: stderr %q, want it to name the signal once and say no ref moved", name, msg)
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

// SIGINT or SIGTERM that stops prune, fsck --delete or an admin deploy part
// way makes it exit 128+signal saying what is true after it, and that is
// so: prune deleted only what no kept commit needs, fsck --delete deleted
// nothing, a deploy stopped before its switch left the deployments as
// they were and removed what it wrote, and one stopped in the cleanup
// after its switch says the change is made. finalize-staged stopped
// before its switch leaves the deployment staged for the next one. strace sends the signal at a
// syscall each makes once (-P: on that path only); CI needs strace.
func TestInterruptedSays(t *testing.T) {
	strace := testbin.NeedStrace(t)
	exe, env := otreeBinary(t)
	for _, tc := range []struct {
		name string
		sig  string
		code int
		// setup returns the command, the path and syscall strace signals
		// at, and a check of what is true after the stop.
		setup func(t *testing.T) (args []string, at, call string, check func(t *testing.T))
		say   string
	}{
		{"prune", "INT", 130, func(t *testing.T) ([]string, string, string, func(*testing.T)) {
			c := newCLI(t)
			tr := randomTree(rand.New(rand.NewPCG(1, 2)), 200, 100, 4)
			keep := c.commitTree("keep", source(t, tr), "kept", 1)
			c.commitTree("gone", source(t, randomTree(rand.New(rand.NewPCG(3, 4)), 200, 100, 4)), "gone", 2)
			c.ok("refs", "--delete", "gone")
			// Signalled as the deleted commits are made durable, before
			// the objects they needed go.
			return []string{"--repo=" + c.path, "prune", "--refs-only"}, filepath.Join(c.path, "objects"), "syncfs", func(t *testing.T) {
				if head, err := c.r.ReadRef("keep"); err != nil || head != keep {
					t.Errorf("keep = %s, %v; want %s", head, err, keep)
				}
				c.ok("fsck")
			}
		}, "prune stopped: what it deleted no kept commit needs"},
		{"fsck --delete", "TERM", 143, func(t *testing.T) ([]string, string, string, func(*testing.T)) {
			c := newCLI(t)
			id := c.commitTree("main", source(t, randomTree(rand.New(rand.NewPCG(1, 2)), 300, 100, 4)), "one", 1)
			obj := c.r.ObjectPath(repo.KindCommit, id)
			if err := os.WriteFile(obj, []byte("damaged"), 0o644); err != nil {
				t.Fatal(err)
			}
			// Signalled as the repository is opened, before fsck lists
			// and checks its objects.
			return []string{"--repo=" + c.path, "fsck", "--delete"}, filepath.Join(c.path, "objects"), "faccessat", func(t *testing.T) {
				if _, err := os.Stat(obj); err != nil {
					t.Errorf("the damaged commit was deleted: %v", err)
				}
			}
		}, "fsck stopped before its checks ended: it deleted no object"},
		{"deploy before its switch", "INT", 130, func(t *testing.T) ([]string, string, string, func(*testing.T)) {
			a := newAdmin(t)
			c1 := a.commit("one\n", "6.1.0-1")
			a.ok("admin", "deploy", "--os=cli", c1)
			before := a.status()
			c2 := bigCommit(t, a, "6.1.0-2", 3)
			dir := filepath.Join(a.sys, "otree/deploy/cli/deploy", c2+".0")
			// Signalled as the ref that keeps the new deployment's commit
			// is written, before its checkout.
			ref := filepath.Join(a.sys, "otree/repo/refs/heads/otree/cli", c2+".0")
			return []string{"admin", "--sysroot=" + a.sys, "deploy", "--os=cli", c2}, ref, "renameat,renameat2", func(t *testing.T) {
				if diff := cmp.Diff(before, a.status()); diff != "" {
					t.Errorf("deployments changed (-before +after):\n%s", diff)
				}
				if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s is left: %v", dir, err)
				}
			}
		}, "deploy stopped: the deployments and boot entries are as they were; what it wrote is removed"},
		{"deploy in its cleanup", "TERM", 143, func(t *testing.T) ([]string, string, string, func(*testing.T)) {
			a := newAdmin(t)
			c1 := bigCommit(t, a, "6.1.0-1", 5)
			a.ok("admin", "deploy", "--os=cli", c1)
			a.ok("admin", "deploy", "--os=cli", a.commit("two\n", "6.1.0-2"))
			c3 := a.commit("three\n", "6.1.0-3")
			// Signalled as the cleanup removes the dropped deployment's
			// origin, before the prune of its commit's objects.
			old := filepath.Join(a.sys, "otree/deploy/cli/deploy", c1+".0.origin")
			return []string{"admin", "--sysroot=" + a.sys, "deploy", "--os=cli", c3}, old, "unlinkat", func(t *testing.T) {
				if st := a.status(); len(st.Deployments) == 0 || st.Deployments[0].Commit != c3 {
					t.Errorf("the deployments after it: %+v, want %s first", st.Deployments, c3)
				}
			}
		}, "deploy stopped after its change was made (`otree admin status` shows it): only the cleanup after it was cut short"},
		{"finalize-staged before its switch", "TERM", 143, func(t *testing.T) ([]string, string, string, func(*testing.T)) {
			a := newAdmin(t)
			a.ok("admin", "deploy", "--os=cli", a.commit("one\n", "6.1.0-1"))
			c2 := a.commit("two\n", "6.1.0-2")
			a.ok("admin", "deploy", "--os=cli", "--stage", c2)
			before := a.status()
			// Signalled as /etc is merged again aside, before the switch.
			aside := filepath.Join(a.sys, "otree/deploy/cli/deploy", c2+".0", ".etc-merge.tmp")
			return []string{"admin", "--sysroot=" + a.sys, "finalize-staged"}, aside, "mkdirat", func(t *testing.T) {
				if diff := cmp.Diff(before, a.status()); diff != "" {
					t.Errorf("deployments changed (-before +after):\n%s", diff)
				}
				if out := a.ok("admin", "finalize-staged"); !strings.Contains(out, "Deployed cli "+c2+".0 as deployment 0") {
					t.Errorf("the finalize after it printed %q, want %s deployed first", out, c2)
				}
			}
		}, "finalize-staged stopped: the deployments and boot entries are as they were; the deployment stays staged, for the next finalize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, at, call, check := tc.setup(t)
			cmd := exec.Command(strace, append([]string{"-f", "-qq", "-o", "/dev/null", "-P", at, "-e", "trace=" + call,
				"-e", "inject=" + call + ":signal=" + tc.sig + ":when=1", exe}, args...)...)
			cmd.Env = env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("%v: %v, want exit %d; stderr %q", args, err, tc.code, stderr.String())
			}
			if msg := stderr.String(); !strings.Contains(msg, "interrupted by SIG"+tc.sig) || !strings.Contains(msg, tc.say) {
				t.Errorf("%v: stderr %q, want it to name SIG%s and say %q", args, msg, tc.sig, tc.say)
			}
			check(t)
		})
	}
}

// bigCommit commits to cli/stable a bootable tree for kernel kver with 300
// files of its own (random from seed): work enough for a stop to land in.
func bigCommit(t *testing.T, a *admin, kver string, seed uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	writeBootableTree(t, dir, kver, "motd\n")
	testtree.Create(t, filepath.Join(dir, "usr/share"), randomTree(rand.New(rand.NewPCG(seed, seed)), 300, 100, 4))
	return strings.TrimSpace(a.ok("commit", "-b", "cli/stable", dir))
}

// A SIGINT or SIGHUP the process started with ignored stays ignored, as
// it does for OSTree: a shell runs a script's background job with SIGINT
// ignored, so that Ctrl-C, meant for the job in the foreground, does not
// stop it, and nohup its command with SIGHUP ignored. The commit reading
// a tar from standard input gets the signal part way and still moves its
// branch.
func TestIgnoredSignalDoesNotStop(t *testing.T) {
	exe, env := otreeBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP} {
		name := unix.SignalName(sig)
		c := newCLI(t)
		// trap "" makes the signal ignored, and exec keeps it so for otree.
		trap := fmt.Sprintf(`trap "" %s; exec "$0" "$@"`, strings.TrimPrefix(name, "SIG"))
		cmd := exec.Command("sh", "-c", trap, exe, "--repo="+c.path, "commit", "-b", "main", "--tree=tar=-")
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
		// More than a pipe holds, so that once written otree is reading.
		content := bytes.Repeat([]byte("x"), 1<<20)
		tw := tar.NewWriter(in)
		tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: int64(len(content))})
		tw.Write(content[:len(content)/2])
		cmd.Process.Signal(sig)
		// Time for a caught signal to stop the command.
		time.Sleep(200 * time.Millisecond)
		tw.Write(content[len(content)/2:])
		tw.Close()
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("commit with %s ignored, after %s: %v; stderr %q", name, name, err, stderr.String())
		}
		if _, err := c.r.ReadRef("main"); err != nil {
			t.Errorf("commit with %s ignored did not move main: %v", name, err)
		}
	}
}

// A SIGINT while the commit message's editor runs is the editor's: Ctrl-C
// on the terminal reaches the whole foreground job, and an editor such as
// ed takes it for a key and goes on. The commit waits for the editor, as
// git does, and lands with the message written, rather than dropping it
// once the editor is done.
func TestInterruptWhileEditingIsTheEditors(t *testing.T) {
	exe, env := otreeBinary(t)
	c := newCLI(t)
	src := source(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	// The editor signals otree (whose pid the shell that execs it
	// exported), then writes the message.
	editor := filepath.Join(t.TempDir(), "editor")
	script := "#!/bin/sh\nkill -INT \"$OTREE_PID\"\nsleep 1\necho edited > \"$1\"\n"
	if err := os.WriteFile(editor, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `export OTREE_PID=$$; exec "$0" "$@"`, exe, "--repo="+c.path, "commit", "-b", "main", "--editor", src)
	cmd.Env = append(env, "OTREE_EDITOR="+editor, "TERM=xterm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("commit with SIGINT while editing: %v\n%s", err, out)
	}
	head, err := c.r.ReadRef("main")
	if err != nil {
		t.Fatal(err)
	}
	if cm, err := c.r.ReadCommit(head); err != nil || cm.Subject != "edited" {
		t.Errorf("commit %s: %+v, %v; want the subject the editor wrote", head, cm, err)
	}
}

// signalAndWait sends sig to cmd, whose Wait's result comes on exited, and
// returns that result; it fails t, saying what, when cmd goes on for
// limit after the signal.
func signalAndWait(t *testing.T, cmd *exec.Cmd, exited <-chan error, sig syscall.Signal, limit time.Duration, what string) error {
	t.Helper()
	cmd.Process.Signal(sig)
	select {
	case err := <-exited:
		return err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("%s after %s", what, unix.SignalName(sig))
		return nil
	}
}
