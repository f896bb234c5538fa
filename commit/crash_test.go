package commit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/repo"
)

// TestCommitSurvivesSIGKILL kills `otree commit` at random instants, from
// before it starts walking to after it moves the ref, and checks after each
// kill that the branch names either the previous commit or the new one, that
// the commit it names is complete and verifies, that its tree is exactly the
// source state it was made from, and that the next commit succeeds and
// leaves no staging directory behind.
func TestCommitSurvivesSIGKILL(t *testing.T) {
	iterations, budget := 60, 12*time.Second
	if testing.Short() {
		iterations, budget = 5, 5*time.Second
	}
	bin := testbin.Build(t, "github.com/otree/otree/cmd/otree")
	base := t.TempDir()
	src, repoPath := filepath.Join(base, "src"), filepath.Join(base, "repo")
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OTREE_CRASH_SEED"); s != "" { // to replay a failure
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatalf("OTREE_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (set OTREE_CRASH_SEED to replay the same trees)", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	r, err := repo.Init(repoPath, repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	m := &mutator{root: src, rng: rng, bytes: rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})}
	m.create(t)
	want := sourceState(t, src)
	head := runCommit(t, bin, repoPath, src)
	checkCommit(t, repoPath, head, repo.ID{}, want)

	// Calibrate: how long does a commit of a mutated tree take here?
	var durs []time.Duration
	for i := 0; i < 3; i++ {
		m.mutate(t)
		want = sourceState(t, src)
		start := time.Now()
		id := runCommit(t, bin, repoPath, src)
		durs = append(durs, time.Since(start))
		checkCommit(t, repoPath, id, head, want)
		head = id
	}
	slices.Sort(durs)
	maxDelay := durs[1] + durs[1]/4
	t.Logf("commit takes about %v; killing after 0..%v", durs[1], maxDelay)

	outcomes := map[string]int{}
	deadline := time.Now().Add(budget)
	done := 0
	for ; done < iterations && (done < 3 || time.Now().Before(deadline)); done++ {
		prev, prevState := head, want
		m.mutate(t)
		want = sourceState(t, src)
		commitsBefore := countCommitObjects(t, repoPath)
		// Half the kills spread over the whole run, half over its last
		// part, where the short publish and ref-write phases are.
		delay := time.Duration(rng.Int64N(int64(maxDelay) + 1))
		if rng.IntN(2) == 0 {
			delay = durs[1]*6/10 + time.Duration(rng.Int64N(int64(durs[1]/2)+1))
		}

		cmd := exec.Command(bin, "--repo="+repoPath, "commit", "-b", "main", src)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var outcome string
		var finished error
		select {
		case finished = <-exited:
			outcome = "finished before the kill"
		case <-time.After(delay):
			cmd.Process.Signal(syscall.SIGKILL)
			finished = <-exited
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				finished = nil
			} else {
				outcome = "finished before the kill"
			}
		}
		if finished != nil {
			t.Fatalf("iteration %d: otree commit failed without being killed: %v\n%s", done, finished, stderr.String())
		}

		r, err := repo.Open(repoPath)
		if err != nil {
			t.Fatalf("iteration %d (killed after %v): %v", done, delay, err)
		}
		got, err := r.ReadRef("main")
		r.Close()
		if err != nil {
			t.Fatalf("iteration %d (killed after %v): branch lost: %v", done, delay, err)
		}
		switch {
		case outcome != "":
			if got.String() != strings.TrimSpace(stdout.String()) {
				t.Fatalf("iteration %d: otree commit printed %q but the branch is at %s", done, stdout.String(), got)
			}
			checkCommit(t, repoPath, got, prev, want)
		case got == prev:
			// The previous commit must still be whole and unchanged.
			checkCommit(t, repoPath, got, prevParent(t, repoPath, prev), prevState)
			outcome = phaseOf(t, repoPath, commitsBefore)
		default:
			checkCommit(t, repoPath, got, prev, want)
			outcome = "killed after the ref moved"
		}
		outcomes[outcome]++

		// The next commit of the same state succeeds, cleans up after the
		// killed one, and names the state.
		head = runCommit(t, bin, repoPath, src)
		checkCommit(t, repoPath, head, got, want)
		if left := stagingDirs(t, repoPath); len(left) > 0 {
			t.Fatalf("iteration %d: staging directories survived a successful commit: %v", done, left)
		}
	}
	t.Logf("%d kill iterations: %v", done, outcomes)
	if strays := strayTempFiles(t, repoPath); len(strays) > 0 {
		t.Logf("temporary files left by killed writes (harmless, never cleaned): %v", strays)
	}
	if !testing.Short() && outcomes["finished before the kill"] == done {
		t.Fatalf("no commit was killed in %d iterations: the kill delays are miscalibrated", done)
	}

	// Stale staging directories of dead transactions are removed by the next
	// transaction: one whose lock is free, and an unlocked "new-" one older
	// than a minute.
	for _, d := range []string{"txn-stale", "new-stale"} {
		p := filepath.Join(repoPath, "tmp", d)
		if err := os.MkdirAll(filepath.Join(p, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "x.file"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-2 * time.Minute)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	m.mutate(t)
	want = sourceState(t, src)
	final := runCommit(t, bin, repoPath, src)
	checkCommit(t, repoPath, final, head, want)
	if left := stagingDirs(t, repoPath); len(left) > 0 {
		t.Fatalf("staging directories survived the final commit: %v", left)
	}

	// Every object stored, including those killed commits published but no
	// ref reaches, must verify: a later commit would deduplicate against it.
	r, err = repo.Open(repoPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Fsck(context.Background(), repo.FsckOptions{})
	if err != nil {
		t.Fatalf("fsck after the kills: %v", err)
	}
	if len(rep.Stray) > 0 || len(rep.Incomplete) > 0 {
		t.Fatalf("fsck after the kills: stray entries %v, incomplete commits %v", rep.Stray, rep.Incomplete)
	}
	t.Logf("fsck: %v objects, %d unreferenced (left by killed commits)", rep.Objects, rep.Unreferenced)
}

// runCommit runs an uninterrupted commit and returns the id it printed,
// checking that the branch points at it.
func runCommit(t *testing.T, bin, repoPath, src string) repo.ID {
	t.Helper()
	cmd := exec.Command(bin, "--repo="+repoPath, "commit", "-b", "main", src)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("otree commit: %v\n%s", err, stderr.String())
	}
	id, err := repo.ParseID(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("otree commit printed %q: %v", out, err)
	}
	r, err := repo.Open(repoPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.ReadRef("main"); err != nil || got != id {
		t.Fatalf("after otree commit printed %s the branch is at %s (%v)", id, got, err)
	}
	return id
}

// checkCommit loads commit id through a freshly opened repository, reading
// every object it reaches (which verifies each one against its id), and
// compares its parent and tree with what was committed.
func checkCommit(t *testing.T, repoPath string, id, parent repo.ID, want map[string]string) {
	t.Helper()
	r, err := repo.Open(repoPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, c, err := commitState(r, id)
	if err != nil {
		t.Fatalf("commit %s is not whole: %v", id, err)
	}
	if c.Parent != parent {
		t.Fatalf("commit %s has parent %s, want %s", id, c.Parent, parent)
	}
	if d := diffStates(want, got); d != "" {
		t.Fatalf("commit %s differs from the tree committed:\n%s", id, d)
	}
}

func prevParent(t *testing.T, repoPath string, id repo.ID) repo.ID {
	t.Helper()
	r, err := repo.Open(repoPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.ReadCommit(id)
	if err != nil {
		t.Fatalf("commit %s: %v", id, err)
	}
	return c.Parent
}

// commitState describes every path of a commit as sourceState does.
func commitState(r *repo.Repo, id repo.ID) (map[string]string, *repo.Commit, error) {
	c, err := r.ReadCommit(id)
	if err != nil {
		return nil, nil, err
	}
	if _, err := r.ReadDirMeta(c.RootMeta); err != nil {
		return nil, nil, err
	}
	state := map[string]string{}
	var walk func(prefix string, tree repo.ID) error
	walk = func(prefix string, tree repo.ID) error {
		dt, err := r.ReadDirTree(tree)
		if err != nil {
			return err
		}
		for _, f := range dt.Files {
			h, rc, err := r.OpenFile(f.ID)
			if err != nil {
				return fmt.Errorf("%s%s: %w", prefix, f.Name, err)
			}
			sum := sha256.New()
			_, err = io.Copy(sum, rc) // fails at EOF on a hash mismatch
			rc.Close()
			if err != nil {
				return fmt.Errorf("%s%s: %w", prefix, f.Name, err)
			}
			switch h.Type {
			case repo.TypeRegular:
				state[prefix+f.Name] = fmt.Sprintf("file %04o %d %x", h.Mode, h.Size, sum.Sum(nil))
			case repo.TypeSymlink:
				state[prefix+f.Name] = "symlink " + h.Target
			default:
				state[prefix+f.Name] = "type " + h.Type.String()
			}
		}
		for _, d := range dt.Dirs {
			m, err := r.ReadDirMeta(d.MetaID)
			if err != nil {
				return fmt.Errorf("%s%s: %w", prefix, d.Name, err)
			}
			state[prefix+d.Name] = fmt.Sprintf("dir %04o", m.Mode)
			if err := walk(prefix+d.Name+"/", d.TreeID); err != nil {
				return err
			}
		}
		return nil
	}
	return state, c, walk("", c.RootTree)
}

// sourceState describes every path under root: type, mode, size and a hash
// of the content, or a symlink's target.
func sourceState(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		perm := uint32(fi.Mode().Perm())
		switch {
		case fi.IsDir():
			state[rel] = fmt.Sprintf("dir %04o", perm)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			state[rel] = "symlink " + target
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			state[rel] = fmt.Sprintf("file %04o %d %x", perm, len(data), sha256.Sum256(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func diffStates(want, got map[string]string) string {
	var lines []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			lines = append(lines, "missing "+p+": "+w)
		} else if g != w {
			lines = append(lines, "changed "+p+": want "+w+", got "+g)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			lines = append(lines, "extra "+p+": "+g)
		}
	}
	sort.Strings(lines)
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("... and %d more", len(lines)-20))
	}
	return strings.Join(lines, "\n")
}

// countCommitObjects counts the commit objects stored.
func countCommitObjects(t *testing.T, repoPath string) int {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(repoPath, "objects", "*", "*.commit"))
	if err != nil {
		t.Fatal(err)
	}
	return len(matches)
}

// phaseOf guesses where a commit killed before moving the ref stopped.
func phaseOf(t *testing.T, repoPath string, commitsBefore int) string {
	t.Helper()
	if countCommitObjects(t, repoPath) > commitsBefore {
		return "killed after publishing, before the ref"
	}
	staged := 0
	for _, d := range stagingDirs(t, repoPath) {
		ents, _ := os.ReadDir(filepath.Join(repoPath, "tmp", d))
		staged += len(ents)
	}
	if staged > 0 {
		return "killed while staging or syncing"
	}
	return "killed before staging"
}

// stagingDirs lists transaction staging directories in tmp/.
func stagingDirs(t *testing.T, repoPath string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(repoPath, "tmp"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() && (strings.HasPrefix(e.Name(), "txn-") || e.Name() == "new-stale") {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

// strayTempFiles lists temporary files of durable writes (refs, caches)
// that a kill left behind.
func strayTempFiles(t *testing.T, repoPath string) []string {
	t.Helper()
	var strays []string
	filepath.WalkDir(repoPath, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".tmp-") {
			rel, _ := filepath.Rel(repoPath, p)
			strays = append(strays, rel)
		}
		return nil
	})
	return strays
}

// mutator makes a source tree and changes it between commits: small files
// added, rewritten, re-moded and deleted, directories and symlinks come and
// go, and large files are rewritten so that a commit takes a while.
type mutator struct {
	root  string
	rng   *rand.Rand
	bytes *rand.ChaCha8 // content
	n     int
}

func (m *mutator) write(t *testing.T, rel string, size int, mode os.FileMode) {
	t.Helper()
	data := make([]byte, size)
	m.bytes.Read(data)
	p := filepath.Join(m.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

func (m *mutator) create(t *testing.T) {
	t.Helper()
	for d := 0; d < 16; d++ {
		for f := 0; f < 50; f++ {
			m.write(t, fmt.Sprintf("d%d/f%d", d, f), m.rng.IntN(4096), 0o644)
		}
		if err := os.Symlink(fmt.Sprintf("f%d", d), filepath.Join(m.root, fmt.Sprintf("d%d/link", d))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		m.write(t, fmt.Sprintf("big/b%d", i), 4<<20+m.rng.IntN(4<<20), 0o644)
	}
}

// files lists the regular files under the root, sorted.
func (m *mutator) files(t *testing.T, under string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(m.root, under), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func (m *mutator) mutate(t *testing.T) {
	t.Helper()
	m.n++
	small := m.files(t, "")
	small = slices.DeleteFunc(small, func(p string) bool { return strings.Contains(p, "/big/") })
	pick := func() string { return small[m.rng.IntN(len(small))] }
	rel := func(p string) string { return p[len(m.root)+1:] }
	for i := 0; i < 5; i++ { // rewrite
		m.write(t, rel(pick()), m.rng.IntN(8192), 0o644)
	}
	for i := 0; i < 5; i++ { // add
		m.write(t, fmt.Sprintf("d%d/new%d-%d", m.rng.IntN(16), m.n, i), m.rng.IntN(8192), 0o644)
	}
	p := pick() // re-mode
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // delete
		os.Remove(pick())
	}
	switch m.n % 4 {
	case 0: // a new directory, with a symlink
		m.write(t, fmt.Sprintf("extra%d/sub/file", m.n), 100, 0o600)
		os.Symlink("../../d0", filepath.Join(m.root, fmt.Sprintf("extra%d/sub/up", m.n)))
	case 2: // remove an earlier one
		dirs, _ := filepath.Glob(filepath.Join(m.root, "extra*"))
		if len(dirs) > 0 {
			if err := os.RemoveAll(dirs[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One large file gets new content each time: a few MiB to hash, stage
	// and sync.
	m.write(t, fmt.Sprintf("big/b%d", m.n%3), 4<<20+m.rng.IntN(6<<20), 0o644)
}
