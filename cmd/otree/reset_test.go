package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
)

// lockWaitWriter collects what a command writes to stderr and closes
// waiting once it reports a wait for a repository lock.
type lockWaitWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	waiting chan struct{}
}

func newLockWaitWriter() *lockWaitWriter { return &lockWaitWriter{waiting: make(chan struct{})} }

func (w *lockWaitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), "waiting for the repository lock")
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), "waiting for the repository lock") {
		close(w.waiting)
	}
	return len(p), nil
}

func (w *lockWaitWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startWhileRefsHeld runs otree with args while another Repo of c's
// repository holds the refs lock, and returns that Repo once the command
// waits for the lock, with a function that releases it and returns the
// command's result.
func (c *cli) startWhileRefsHeld(args ...string) (*repo.Repo, func() result) {
	c.t.Helper()
	holder, err := repo.Open(c.path)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { holder.Close() })
	lk, err := holder.LockRefs(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	w := newLockWaitWriter()
	done := make(chan result, 1)
	go func() {
		var out bytes.Buffer
		code := run(context.Background(), append([]string{"--repo=" + c.path}, args...), strings.NewReader(""), &out, w)
		done <- result{out.String(), w.String(), code}
	}()
	select {
	case <-w.waiting:
	case res := <-done:
		lk.Unlock()
		c.t.Fatalf("otree %s did not wait for the refs lock: exit %d, stderr %q", strings.Join(args, " "), res.code, res.stderr)
	case <-time.After(20 * time.Second):
		c.t.Fatalf("otree %s: no lock wait reported", strings.Join(args, " "))
	}
	return holder, func() result {
		lk.Unlock()
		return <-done
	}
}

// A commit that lands on REF while reset waits for the refs lock is the one
// "REF^" is resolved against: reset moves REF back one commit from where it
// is, rather than two from where it was, which would drop that commit from
// the branch although neither command named it.
func TestResetResolvesRevUnderRefsLock(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	first := c.commitTree("main", src, "one", 1700000000)
	second := c.commitTree("main", src, "two", 1700000060)
	third := c.commitTree("side", src, "three", 1700000120, func(o *commit.Options) { o.Parent = second })

	holder, finish := c.startWhileRefsHeld("reset", "main", "main^")
	// A ref write through the Repo that holds the lock goes ahead: the
	// concurrent commit landing.
	if err := holder.SetRef("main", third); err != nil {
		t.Fatal(err)
	}
	if res := finish(); res.code != 0 {
		t.Fatalf("reset: exit %d, stderr %q", res.code, res.stderr)
	}
	got, err := c.r.ReadRef("main")
	if err != nil {
		t.Fatal(err)
	}
	if got != second {
		which := got.String()
		if got == first {
			which = "the parent of the commit main was at before the reset waited, dropping " + third.String()
		}
		t.Errorf("after reset main^ with main moved to %s meanwhile: main = %s, want its parent %s", third, which, second)
	}
}
