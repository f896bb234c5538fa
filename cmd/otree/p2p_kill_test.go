package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// TestCreateUSBSurvivesSIGKILL kills create-usb at random instants, on a
// blank stick and on one holding the previous commit, as pulling the
// stick out would stop it, and checks that the stick's repository then
// names the old commit (or nothing) or the new one, complete either way,
// and that the next create-usb finishes the job.
func TestCreateUSBSurvivesSIGKILL(t *testing.T) {
	iterations, budget := 12, 5*time.Second
	if testing.Short() {
		iterations, budget = 4, 3*time.Second
	}
	const coll = "org.example.Os"
	exe, env := otreeBinary(t)
	build := filepath.Join(t.TempDir(), "build")
	runIn(t, build, "init", "--collection-id="+coll)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	tree := randomTree(rng, 60, 48<<10, 5)
	v1 := strings.TrimSpace(runIn(t, build, "commit", "-b", "os/stable", source(t, tree)))
	tree["d0/f0"] = testtree.File("changed\n", 0o644)
	tree["d9/new"] = testtree.File(strings.Repeat("new ", 30000), 0o644)
	v2 := strings.TrimSpace(runIn(t, build, "commit", "-b", "os/stable", source(t, tree)))

	// A stick holding v1, copied for the runs that start from it.
	old := t.TempDir()
	runIn(t, build, "create-usb", "--commit="+v1, old, coll, "os/stable")
	createUSB := func(stick string) *exec.Cmd {
		cmd := exec.Command(exe, "--repo="+build, "create-usb", stick, coll, "os/stable")
		cmd.Env = env
		return cmd
	}
	durs := timeRuns(t, "create-usb", func() *exec.Cmd { return createUSB(t.TempDir()) })
	t.Logf("create-usb takes about %v", durs[1])

	outcomes := map[string]int{}
	deadline := time.Now().Add(budget)
	for i := 0; i < iterations && (i < 4 || time.Now().Before(deadline)); i++ {
		stick := t.TempDir()
		fromOld := i%2 == 1
		if fromOld {
			if b, err := exec.Command("cp", "-a", old+"/.", stick).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v: %s", err, b)
			}
		}
		delay := time.Duration(rng.Int64N(int64(durs[1]*11/10) + 1))
		killed := killAfter(t, createUSB(stick), delay)
		dest := filepath.Join(stick, ".otree/repos.d", coll)
		ref := checkStickRepo(t, dest)
		allowed := []string{v2, "none"}
		if fromOld {
			allowed = []string{v2, v1}
		}
		if !slices.Contains(allowed, ref) {
			t.Fatalf("iteration %d (killed %v after %v): os/stable on the stick is %s, want one of %q", i, killed, delay, ref, allowed)
		}
		outcomes[fmt.Sprintf("killed=%v, ref %s", killed, map[string]string{v1: "old", v2: "new", "none": "none"}[ref])]++
		// The next run completes it.
		if b, err := createUSB(stick).CombinedOutput(); err != nil {
			t.Fatalf("iteration %d: create-usb after the kill: %v\n%s", i, err, b)
		}
		if ref := checkStickRepo(t, dest); ref != v2 {
			t.Fatalf("iteration %d: after a full run os/stable is %s, want %s", i, ref, v2)
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// checkStickRepo checks the repository at dest with fsck and returns the
// commit os/stable names there ("none" when there is no repository or no
// such ref yet).
func checkStickRepo(t *testing.T, dest string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dest, "config")); err != nil {
		return "none"
	}
	r, err := repo.Open(dest)
	if err != nil {
		t.Fatalf("the stick's repository does not open: %v", err)
	}
	defer r.Close()
	rep, err := r.Fsck(context.Background(), repo.FsckOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("fsck of the stick's repository: %v %+v", err, rep.Problems)
	}
	id, err := r.ReadRef("os/stable")
	if err != nil {
		return "none"
	}
	return id.String()
}
