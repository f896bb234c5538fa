package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// TestCheckoutFillingCacheSurvivesSIGKILL kills `checkout -U` from an
// archive repository while it fills the uncompressed-object cache, at
// random instants and (under strace) as it links its first file into the
// cache. After each kill fsck finds every entry whole (it hashes each
// one), and the next checkout gives the committed tree, linking what the
// killed ones cached.
func TestCheckoutFillingCacheSurvivesSIGKILL(t *testing.T) {
	iterations, budget := 10, 4*time.Second
	if testing.Short() {
		iterations, budget = 3, 2*time.Second
	}
	exe, env := otreeBinary(t)
	c := newCLI(t) // archive
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 13))
	srcDir := source(t, randomTree(rng, 600, 8<<10, 20))
	c.commitTree("main", srcDir, "one", 1700000000)
	want := testtree.Read(t, srcDir, testtree.ReadOptions{})
	cache := c.r.Path(repo.UncompressedCacheDir)
	checkout := func(dest string) *exec.Cmd {
		cmd := exec.Command(exe, "--repo="+c.path, "checkout", "-U", "main", dest)
		cmd.Env = env
		return cmd
	}
	durs := timeRuns(t, "checkout", func() *exec.Cmd {
		os.RemoveAll(cache)
		return checkout(filepath.Join(t.TempDir(), "co"))
	})
	maxDelay := durs[1] + durs[1]/4
	t.Logf("a checkout that fills the cache takes about %v; killing after 0..%v", durs[1], maxDelay)

	// after checks the cache a kill left, then that a checkout completes.
	after := func(what string) int {
		t.Helper()
		if res := c.run("fsck"); res.code != 0 {
			t.Fatalf("%s: fsck: %s", what, res.stderr)
		}
		entries := 0
		filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				entries++
			}
			return nil
		})
		dest := filepath.Join(t.TempDir(), "co")
		var js struct {
			Stats struct {
				FromCache int64 `json:"from_cache"`
			} `json:"stats"`
		}
		out := c.ok("checkout", "--json", "-U", "main", dest)
		if err := json.Unmarshal([]byte(out), &js); err != nil {
			t.Fatal(err)
		}
		if js.Stats.FromCache != int64(entries) {
			t.Errorf("%s: the next checkout linked %d files from the cache, which held %d", what, js.Stats.FromCache, entries)
		}
		if diff := cmp.Diff(want, testtree.Read(t, dest, testtree.ReadOptions{})); diff != "" {
			t.Fatalf("%s: the next checkout differs from the commit:\n%s", what, diff)
		}
		return entries
	}

	killed := 0
	deadline := time.Now().Add(budget)
	for i := 0; i < iterations && (i < 3 || time.Now().Before(deadline)); i++ {
		os.RemoveAll(cache)
		if ok, delay := killWithin(t, rng, checkout(filepath.Join(t.TempDir(), "co")), &maxDelay); ok {
			killed++
			t.Logf("killed after %v: %d entries cached", delay, after("SIGKILL after "+delay.String()))
		}
	}
	if killed == 0 {
		t.Errorf("no checkout was killed in %d tries", iterations)
	}

	// Killed as it links its first file into the cache: strace counts
	// calls per thread, so the first linkat of any thread is the first.
	os.RemoveAll(cache)
	if killed, out := c.killedAt("linkat", 1, "checkout", "-U", "main", filepath.Join(t.TempDir(), "co")); !killed || strings.Contains(out, "Checked out") {
		t.Fatalf("checkout under strace was not killed:\n%s", out)
	}
	if n := after("SIGKILL at the first link into the cache"); n != 0 {
		t.Errorf("killed at its first link into the cache, the checkout left %d entries", n)
	}
}
