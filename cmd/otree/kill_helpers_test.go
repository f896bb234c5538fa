package main

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
)

// randomTree is n files of about size bytes of random text each, spread
// over dirs directories, for tests that must kill a command part way.
func randomTree(rng *rand.Rand, n, size, dirs int) testtree.Tree {
	tree := testtree.Tree{}
	for i := range n {
		var b strings.Builder
		for b.Len() < size {
			fmt.Fprintf(&b, "%d %x\n", rng.Uint32(), rng.Uint64())
		}
		tree[fmt.Sprintf("d%d/f%d", i%dirs, i)] = testtree.File(b.String(), 0o644)
	}
	return tree
}

// timeRuns runs three commands made by mk to completion and returns
// their durations, sorted: where kills are to fall.
func timeRuns(t *testing.T, what string, mk func() *exec.Cmd) []time.Duration {
	t.Helper()
	var durs []time.Duration
	for range 3 {
		start := time.Now()
		if b, err := mk().CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, b)
		}
		durs = append(durs, time.Since(start))
	}
	slices.Sort(durs)
	return durs
}

// killAfter starts cmd and sends it SIGKILL after delay, unless it exits
// first; it reports whether the kill ended it. A run that fails unkilled
// fails the test.
func killAfter(t *testing.T, cmd *exec.Cmd, delay time.Duration) bool {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("%s failed unkilled: %v", strings.Join(cmd.Args, " "), err)
		}
		return false
	case <-time.After(delay):
		cmd.Process.Signal(syscall.SIGKILL)
		return <-exited != nil
	}
}

// killWithin runs cmd and sends it SIGKILL after a random delay up to
// *max, reporting whether the kill ended it and the delay. A run that
// finished first lowers *max to a quarter more than it took: the runs
// timeRuns measured may have been slower than the later ones (a busier
// machine), and kills drawn past the end land nowhere.
func killWithin(t *testing.T, rng *rand.Rand, cmd *exec.Cmd, max *time.Duration) (bool, time.Duration) {
	t.Helper()
	delay := time.Duration(rng.Int64N(int64(*max) + 1))
	start := time.Now()
	if killAfter(t, cmd, delay) {
		return true, delay
	}
	if took := time.Since(start); took+took/4 < *max {
		*max = took + took/4
	}
	return false, delay
}

// killedAt runs otree ARGS on c's repository under strace, which sends it
// SIGKILL at its when-th call of call (counted per thread), and reports
// whether that ended it (it ran to its end, having fewer) and what it
// printed.
func (c *cli) killedAt(call string, when int, args ...string) (bool, string) {
	c.t.Helper()
	exe, env := otreeBinary(c.t)
	cmd := exec.Command(testbin.NeedStrace(c.t), append([]string{"-f", "-qq", "-o", "/dev/null", "-e", "trace=" + call,
		"-e", fmt.Sprintf("inject=%s:signal=KILL:when=%d", call, when), exe, "--repo=" + c.path}, args...)...)
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode() == -1, string(out) // strace dies of its tracee's signal
}
