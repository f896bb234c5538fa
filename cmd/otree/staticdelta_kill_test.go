package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/sign"
)

// TestStaticDeltaFileSurvivesSIGKILL kills "static-delta generate --inline
// --sign" at random instants and checks that the destination directory then
// holds nothing, or the whole signed file, which applies; and that the
// repository's deltas/ keeps nothing of the killed runs once the next
// generation has run.
func TestStaticDeltaFileSurvivesSIGKILL(t *testing.T) {
	iterations, budget := 12, 4*time.Second
	if testing.Short() {
		iterations, budget = 4, 3*time.Second
	}
	exe, env := otreeBinary(t)
	c := newCLI(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	tree := randomTree(rng, 40, 64<<10, 4)
	id := c.commitTree("main", source(t, tree), "one", 1700000000)
	keyFile, _, pub := generateKey(t, c)
	pk, err := sign.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	generate := func(out string) *exec.Cmd {
		cmd := exec.Command(exe, "--repo="+c.path, "static-delta", "generate", "--empty", "--inline",
			"--filename="+out, "--sign-from-file="+keyFile, "main")
		cmd.Env = env
		return cmd
	}
	durs := timeRuns(t, "generate", func() *exec.Cmd { return generate(filepath.Join(t.TempDir(), "d")) })
	maxDelay := durs[1] + durs[1]/4
	t.Logf("generate takes about %v; killing after 0..%v", durs[1], maxDelay)

	outcomes := map[string]int{}
	deadline := time.Now().Add(budget)
	for i := 0; i < iterations && (i < 3 || time.Now().Before(deadline)); i++ {
		dir := t.TempDir()
		out := filepath.Join(dir, "update.delta")
		// Half the kills spread over the whole run, half over its end,
		// where the file is written, synced and named.
		delay := time.Duration(rng.Int64N(int64(maxDelay) + 1))
		if i == 0 {
			// One kill surely before the end (half the fastest run), so
			// that a busy machine, where the first runs were slower than
			// the rest, still tries one.
			delay = time.Duration(rng.Int64N(int64(durs[0]/2) + 1))
		}
		if i%2 == 1 {
			delay = durs[0]*9/10 + time.Duration(rng.Int64N(int64(durs[2]-durs[0]*9/10)+1))
		}
		outcome := "finished before the kill"
		if killAfter(t, generate(out), delay) {
			outcome = "killed"
		}
		ents, _ := os.ReadDir(dir)
		switch {
		case len(ents) == 0 && outcome == "killed":
			outcome = "killed: no file"
		case len(ents) == 1 && ents[0].Name() == "update.delta":
			o, err := delta.Open(out)
			if err != nil {
				t.Fatalf("iteration %d (%s after %v): the file is there but does not open: %v", i, outcome, delay, err)
			}
			_, err = o.Verify([]ed25519.PublicKey{pk})
			o.Close()
			if err != nil {
				t.Fatalf("iteration %d (%s after %v): %v", i, outcome, delay, err)
			}
			dst := newBareUserCLI(t)
			dst.ok("static-delta", "apply-offline", "--disable-fsync", out, pub)
			dst.ok("checkout", "-U", id.String(), filepath.Join(t.TempDir(), "co"))
			if outcome == "killed" {
				outcome = "killed: whole file"
			}
		default:
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("iteration %d (%s after %v): the destination holds %v, want nothing or the whole file", i, outcome, delay, names)
		}
		outcomes[outcome]++
	}
	t.Logf("outcomes: %v", outcomes)
	if outcomes["killed: no file"] == 0 {
		t.Errorf("no kill landed before the file was named (outcomes %v)", outcomes)
	}

	// The instant that matters most, which random kills rarely hit: the
	// file written and synced, about to be named. strace kills otree as
	// it makes the call that names it.
	strace := testbin.NeedStrace(t)
	dir, log := t.TempDir(), filepath.Join(t.TempDir(), "strace")
	out := filepath.Join(dir, "update.delta")
	args := append([]string{"-f", "-qq", "-o", log, "-e", "trace=link,linkat,rename,renameat,renameat2",
		"-e", "inject=link,linkat,renameat2:signal=KILL", exe}, generate(out).Args[1:]...)
	cmd := exec.Command(strace, args...)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("generate under strace was not killed:\n%s", b)
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), `"`+out+`"`) {
		t.Fatalf("strace killed generate at another call than the one naming %s:\n%s", out, b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("killed as it named the file, generate left %d entries (%s ...)", len(ents), ents[0].Name())
	}

	c.ok("static-delta", "generate", "--empty", "--inline", "--filename="+filepath.Join(t.TempDir(), "last"), "main")
	ents, _ := os.ReadDir(filepath.Join(c.path, delta.Dir))
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("deltas/ keeps %v after the next generation", names)
	}
}

// TestStaticDeltaDeleteSurvivesSIGKILL kills "static-delta delete" at each
// of its unlinkat and renameat calls in turn (strace) and checks that no
// delta index then names a delta the repository no longer has (pulls
// would fetch it), and that the delta is gone once a rerun of the delete,
// where it is still there, has run.
func TestStaticDeltaDeleteSurvivesSIGKILL(t *testing.T) {
	strace := testbin.NeedStrace(t)
	exe, env := otreeBinary(t)
	kills := 0
	for _, call := range []string{"unlinkat", "renameat"} {
		for when := 1; ; when++ {
			c := newCLI(t)
			c.commitTree("main", source(t, testtree.Tree{"f": testtree.File("one\n", 0o644)}), "one", 1700000000)
			to := c.commitTree("main", source(t, testtree.Tree{"f": testtree.File("two\n", 0o644)}), "two", 1700000001)
			c.ok("static-delta", "generate", "main")
			name := strings.TrimSpace(c.ok("static-delta", "list"))
			cmd := exec.Command(strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace="+call,
				"-e", fmt.Sprintf("inject=%s:signal=KILL:when=%d", call, when), exe, "--repo="+c.path, "static-delta", "delete", name)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != -1 { // strace dies of its tracee's signal
				if err != nil {
					t.Fatalf("delete with %s %d not killed, and failed: %v\n%s", call, when, err, out)
				}
				break
			}
			kills++
			stored := map[string]bool{}
			for _, n := range strings.Fields(c.ok("static-delta", "list")) {
				stored[n] = true
			}
			if x, _, err := delta.ReadIndex(c.r, to); err == nil {
				for _, e := range x.Deltas {
					if n := (delta.Name{From: e.From, To: to}).String(); !stored[n] {
						t.Errorf("killed at %s %d, delete left the index of %s naming delta %s, which is gone", call, when, to, n)
					}
				}
			} else if !errors.Is(err, repo.ErrNotFound) {
				t.Fatalf("killed at %s %d: %v", call, when, err)
			}
			if stored[name] {
				c.ok("static-delta", "delete", name)
			}
			if got := strings.TrimSpace(c.ok("static-delta", "list")); got != "(No static deltas)" {
				t.Errorf("killed at %s %d, then rerun: static-delta list says %q", call, when, got)
			}
			if _, _, err := delta.ReadIndex(c.r, to); !errors.Is(err, repo.ErrNotFound) {
				t.Errorf("killed at %s %d, then rerun: the index of %s is still there (%v)", call, when, to, err)
			}
		}
	}
	if kills == 0 {
		t.Fatal("no run of delete was killed")
	}
}

// TestStaticDeltaDirKilledLeavesNothing kills "static-delta generate
// --filename=DIR" part way, again and again, and checks that once a
// generation to DIR has finished, DIR's parent holds DIR alone: what the
// killed runs were making beside it is gone.
func TestStaticDeltaDirKilledLeavesNothing(t *testing.T) {
	iterations := 6
	if testing.Short() {
		iterations = 3
	}
	exe, env := otreeBinary(t)
	c := newCLI(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	c.commitTree("main", source(t, randomTree(rng, 60, 64<<10, 4)), "one", 1700000000)
	parent := t.TempDir()
	out := filepath.Join(parent, "update")
	generate := func() *exec.Cmd {
		cmd := exec.Command(exe, "--repo="+c.path, "static-delta", "generate", "--empty", "--filename="+out, "main")
		cmd.Env = env
		return cmd
	}
	durs := timeRuns(t, "generate", func() *exec.Cmd {
		os.RemoveAll(out)
		return generate()
	})
	os.RemoveAll(out)
	killed := 0
	for range iterations {
		// Within the fastest run, past its start: the delta is being made.
		delay := durs[0]/4 + time.Duration(rng.Int64N(int64(durs[0]/2)+1))
		if killAfter(t, generate(), delay) {
			killed++
		}
		os.RemoveAll(out)
	}
	if killed == 0 {
		t.Fatalf("no generation was killed (each takes about %v)", durs[1])
	}
	c.ok("static-delta", "generate", "--empty", "--filename="+out, "main")
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "update" {
		t.Errorf("after %d killed generations and one whole, %s holds %v; want [update]", killed, parent, names)
	}
}
