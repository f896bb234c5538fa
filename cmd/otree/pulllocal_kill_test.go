package main

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// TestPullLocalLinkedSurvivesSIGKILL kills a pull-local that stores the
// source's file objects as hardlinks, at random instants and (under
// strace) as it publishes objects and as it moves the ref. After each
// kill the destination has no ref or a ref to the whole commit, and fsck
// finds nothing wrong in it; the source's objects, whose inodes the
// destination shares, are unchanged; and the next pull completes, links
// rather than copies, and leaves no staging directory.
func TestPullLocalLinkedSurvivesSIGKILL(t *testing.T) {
	iterations, budget := 12, 5*time.Second
	if testing.Short() {
		iterations, budget = 4, 3*time.Second
	}
	exe, env := otreeBinary(t)
	src := newCLIMode(t, repo.ModeBareUser)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	srcDir := source(t, randomTree(rng, 1000, 2<<10, 25))
	id := src.commitTree("main", srcDir, "one", 1700000000)
	want := testtree.Read(t, srcDir, testtree.ReadOptions{})
	srcObjects := objectStates(t, src.path)

	newDest := func() string {
		p := filepath.Join(t.TempDir(), "dest")
		r, err := repo.Init(p, repo.InitOptions{Mode: repo.ModeBareUser})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		return p
	}
	pull := func(dst string) *exec.Cmd {
		cmd := exec.Command(exe, "--repo="+dst, "pull-local", "--disable-fsync", src.path, "main")
		cmd.Env = env
		return cmd
	}
	durs := timeRuns(t, "pull-local", func() *exec.Cmd { return pull(newDest()) })
	maxDelay := durs[1] + durs[1]/4
	t.Logf("pull-local takes about %v; killing after 0..%v", durs[1], maxDelay)

	// after checks what a kill left in dst, then completes the pull.
	after := func(what, dst string) string {
		t.Helper()
		outcome := checkPulledDest(t, what, dst, id, want)
		if got := objectStates(t, src.path); !cmp.Equal(srcObjects, got) {
			t.Fatalf("%s: the source's objects changed:\n%s", what, cmp.Diff(srcObjects, got))
		}
		if b, err := pull(dst).CombinedOutput(); err != nil {
			t.Fatalf("%s: the next pull failed: %v\n%s", what, err, b)
		}
		if o := checkPulledDest(t, what+", then pulled again", dst, id, want); o != "ref at the commit" {
			t.Fatalf("%s: after the next pull: %s", what, o)
		}
		if left := stagingLeft(t, dst); len(left) != 0 {
			t.Fatalf("%s: the next pull left staging directories %v", what, left)
		}
		if n := sharedInodes(t, src.path, dst); n == 0 {
			t.Fatalf("%s: no file object of the destination is a link of the source's", what)
		}
		return outcome
	}

	outcomes := map[string]int{}
	deadline := time.Now().Add(budget)
	for i := 0; i < iterations && (i < 3 || time.Now().Before(deadline)); i++ {
		dst := newDest()
		// The first kill falls in the first half of the fastest run.
		limit := &maxDelay
		if i == 0 {
			first := min(maxDelay, durs[0]/2)
			limit = &first
		}
		outcome := "finished before the kill"
		killed, delay := killWithin(t, rng, pull(dst), limit)
		if killed {
			outcome = "killed: " + after(fmt.Sprintf("iteration %d (SIGKILL after %v)", i, delay), dst)
		} else {
			maxDelay = min(maxDelay, *limit)
		}
		outcomes[outcome]++
	}
	t.Logf("outcomes: %v", outcomes)
	if outcomes["killed: no ref"] == 0 {
		t.Errorf("no kill landed before the ref moved (outcomes %v)", outcomes)
	}

	// The instants random kills rarely hit: strace kills pull-local as it
	// renames its staging directory into use, as it publishes its first, a
	// middle and its last object, as it removes the mark that the commit
	// is partial, and as it renames the ref into place. strace counts
	// calls per thread, so a kill is placed by the path a call names.
	strace := testbin.NeedStrace(t)
	traced := func(dst string, inject ...string) (*exec.Cmd, string) {
		log := filepath.Join(t.TempDir(), "strace")
		args := append([]string{"-f", "-qq", "-o", log, "-e", "trace=renameat,renameat2,unlinkat"}, inject...)
		cmd := exec.Command(strace, append(args, pull(dst).Args...)...)
		cmd.Env = env
		return cmd, log
	}
	cmd, log := traced(newDest())
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pull-local under strace: %v\n%s", err, b)
	}
	var publishes []string
	for _, line := range tracedCalls(t, log) {
		// renameat2(STAGING, "ab/cdef….file", OBJECTS, "ab/cdef….file", RENAME_NOREPLACE)
		if f := strings.Split(line, `"`); strings.HasPrefix(line, "renameat2(") && len(f) > 1 && strings.Contains(line, "RENAME_NOREPLACE") {
			publishes = append(publishes, f[1])
		}
	}
	if len(publishes) < 100 {
		t.Fatalf("a traced pull-local published %d objects, want over 100", len(publishes))
	}
	// A path is under the destination, or, for a publish, relative to
	// the staging directory.
	points := []struct{ what, inject, path string }{
		{"renaming its staging directory into use", "renameat:signal=KILL:when=1", ""},
		{"publishing its first object", "renameat2:signal=KILL", publishes[0]},
		{"publishing a middle object", "renameat2:signal=KILL", publishes[len(publishes)/2]},
		{"publishing its last object", "renameat2:signal=KILL", publishes[len(publishes)-1]},
		{"removing the partial mark", "unlinkat:signal=KILL", "/state/" + id.String() + ".commitpartial"},
		{"renaming the ref into place", "renameat:signal=KILL", "/refs/heads/main"},
	}
	for _, at := range points {
		dst := newDest()
		what := "SIGKILL " + at.what
		inject := []string{"-e", "inject=" + at.inject}
		if strings.HasPrefix(at.path, "/") {
			inject = append(inject, "-P", dst+at.path)
		} else if at.path != "" {
			inject = append(inject, "-P", at.path)
		}
		cmd, log := traced(dst, inject...)
		if b, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("%s: pull-local was not killed:\n%s", what, b)
		}
		calls := tracedCalls(t, log)
		if at.path != "" && (len(calls) == 0 || !strings.Contains(calls[len(calls)-1], at.path)) {
			t.Fatalf("%s: strace killed pull-local at another call: %v", what, calls)
		}
		outcome := after(what, dst)
		if at.what == "renaming the ref into place" && outcome != "no ref" {
			t.Errorf("%s: the destination has %s", what, outcome)
		}
		t.Logf("%s: %s", what, outcome)
	}
}

// indexFrom returns the index of the first of lines, from from on, that
// match accepts, or -1: where in a strace log a call comes, after another.
func indexFrom(lines []string, from int, match func(string) bool) int {
	if i := slices.IndexFunc(lines[from:], match); i >= 0 {
		return from + i
	}
	return -1
}

// tracedCalls reads the calls strace logged, without pids.
func tracedCalls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, line := range strings.Split(string(b), "\n") {
		_, line, _ = strings.Cut(line, " ")
		line = strings.TrimSpace(line) // strace pads pids to one width
		// Skip signals, exits, the ends of calls that another thread's
		// line cut ("<... renameat2 resumed>"), and the calls of other
		// threads that a kill cut before strace could name them ("???(").
		if line != "" && !strings.HasPrefix(line, "---") && !strings.HasPrefix(line, "+++") && !strings.HasPrefix(line, "<...") && !strings.HasPrefix(line, "???(") {
			calls = append(calls, line)
		}
	}
	return calls
}

// checkPulledDest checks that dst has no ref, or ref main at id whose
// checkout is want, and that fsck finds no damage and no incomplete
// commit. It says which.
func checkPulledDest(t *testing.T, what, dst string, id repo.ID, want testtree.Tree) string {
	t.Helper()
	r, err := repo.Open(dst)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer r.Close()
	rep, err := r.Fsck(context.Background(), repo.FsckOptions{})
	if err != nil || !rep.OK() || len(rep.Incomplete) != 0 || len(rep.Stray) != 0 {
		t.Fatalf("%s: fsck: %v %+v", what, err, rep)
	}
	refs, err := r.ListRefs("")
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	switch {
	case len(refs) == 0:
		return "no ref"
	case len(refs) != 1 || refs[0].Name != "main" || refs[0].Commit != id || len(rep.Partial) != 0:
		t.Fatalf("%s: refs %v, partial commits %v; want none, or main at the whole commit %s", what, refs, rep.Partial, id)
	}
	co := filepath.Join(t.TempDir(), "co")
	if _, err := checkout.Checkout(context.Background(), r, id, co, checkout.Options{UserMode: true}); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if diff := cmp.Diff(want, testtree.Read(t, co, testtree.ReadOptions{})); diff != "" {
		t.Fatalf("%s: the checkout differs from the source:\n%s", what, diff)
	}
	return "ref at the commit"
}

// objectStates describes every object file of the repository at path: its
// inode, mode, owner, size, mtime and extended attributes, which a link
// shares with every repository that links it.
func objectStates(t *testing.T, path string) map[string]string {
	t.Helper()
	states := map[string]string{}
	root := filepath.Join(path, "objects")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		s := fmt.Sprintf("ino %d mode %o owner %d:%d size %d mtime %d.%d", st.Ino, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		buf := make([]byte, 4096)
		n, err := unix.Llistxattr(p, buf)
		if err != nil {
			return err
		}
		names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
		slices.Sort(names)
		for _, name := range names {
			if name == "" {
				continue
			}
			v := make([]byte, 4096)
			m, err := unix.Lgetxattr(p, name, v)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" %s=%x", name, v[:m])
		}
		rel, _ := filepath.Rel(root, p)
		states[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return states
}

// sharedInodes counts the file objects of dst that are the same inode as
// src's.
func sharedInodes(t *testing.T, src, dst string) int {
	t.Helper()
	srcStates, n := objectStates(t, src), 0
	for rel, s := range objectStates(t, dst) {
		if strings.HasSuffix(rel, ".file") && srcStates[rel] != "" &&
			strings.Fields(s)[1] == strings.Fields(srcStates[rel])[1] {
			n++
		}
	}
	return n
}

// stagingLeft lists the transaction staging directories in the
// repository's tmp/.
func stagingLeft(t *testing.T, path string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(path, "tmp"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "txn-") {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}
