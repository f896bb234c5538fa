package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// The commands the crash test kills. The two rollbacks differ in the switch
// they make: between deployments sharing a kernel only otree/boot.B is
// renamed to the other sub-version; between deployments of different
// kernels a new boot version is written and boot/loader renamed.
const (
	crashDeploy       = "deploy"
	crashRollbackSub  = "rollback-sub"
	crashRollbackFull = "rollback-full"
	crashUndeploy     = "undeploy"
	crashCleanup      = "cleanup"
	// finalize-staged of a deployment a completed deploy --stage wrote.
	crashFinalize = "finalize"
)

// Outcomes of a run of a command that was to be killed.
const (
	crashOld      = "old list" // killed before the switch
	crashNew      = "new list" // killed after it
	crashFinished = "finished" // exited before the kill
	// A cleanup changes no list; how far it got with the orphan tells.
	crashOrphanWhole = "orphan whole"
	crashOrphanPart  = "orphan partly removed"
	crashOrphanGone  = "orphan removed"
)

// The kernels the trees ship; different kernels have different boot
// checksums, so a switch between deployments of two is a full one. Each is
// a few MiB, so that installing one (a copy and an fsync) takes a
// measurable part of a deploy.
var crashKernels = []string{"6.1.0-1", "6.2.0-3", "6.3.0-2"}

const (
	crashHostname = "crash-host\n" // the admin's /etc/hostname, merged into every deployment
	crashKargs    = "root=LABEL=root quiet"
	crashOrigin   = "[origin]\nrefspec=os\n"
)

// TestDeploySurvivesSIGKILL kills `otree admin deploy`, `rollback` (a
// sub-version switch between deployments sharing a kernel, a full switch
// between deployments of different kernels), `undeploy` and `cleanup` at
// random instants: half at a uniform delay up to 1.2 times the command's
// usual duration, half around the moment it usually switches. After each
// kill the sysroot must open with either the deployment list the command
// started from or the one it was making; every boot entry must resolve to
// a complete deployment (its /usr matches its commit, its merged /etc and
// its origin are there) and name a copy of that deployment's own kernel and
// initramfs; and a deploy and a cleanup run to completion afterwards must
// succeed and leave no orphan behind and a repository fsck finds sound.
func TestDeploySurvivesSIGKILL(t *testing.T) {
	maxKills, budget := 200, 20*time.Second
	// Deploy is the command whose switch falls in the middle of a long
	// run, with work on both sides: it gets half the kills.
	round := []string{crashDeploy, crashDeploy, crashDeploy, crashDeploy, crashRollbackSub, crashRollbackFull, crashUndeploy, crashCleanup, crashFinalize}
	if testing.Short() {
		round = []string{crashDeploy, crashRollbackSub, crashRollbackFull, crashUndeploy, crashCleanup, crashFinalize}
		maxKills, budget = len(round), 0
	}
	r := newCrashRig(t)
	start := time.Now()
	r.createSource()
	first := r.deployFirst()
	r.commit(crashKernels[0])
	r.admin("deploy", "os")
	r.check("after the first two deploys", []crashDep{{r.head, 0}, {first, 0}})

	// Calibrate: an uninterrupted run of each command but deploy tells how
	// long it takes here; every deploy that prepares the next command,
	// alternately with --retain and without, times deploy.
	queue := shuffled(r.rng, round)
	calibrate := []string{crashRollbackSub, crashRollbackFull, crashUndeploy, crashCleanup, crashFinalize}
	for i, kind := range calibrate {
		next := queue[0]
		if i+1 < len(calibrate) {
			next = calibrate[i+1]
		}
		r.iterate(kind, false, next, i%2 == 0)
	}
	for _, v := range slices.Sorted(maps.Keys(r.runs)) {
		switch took, switched := r.estimate(v); {
		case switched < 0:
			t.Logf("%s takes about %v and switches nothing", v, took)
		default:
			t.Logf("%s takes about %v, switching after %v", v, took, switched)
		}
	}

	outcomes := map[string]map[string]int{}
	deadline := start.Add(budget)
	kills := 0
	// On a loaded machine the delays may land all on one side of the
	// switch for a while (runs there took 2 s, not 0.3: eight deploy
	// kills, all before the switch or after the end); up to three times
	// the budget is spent to see both.
	bothSides := func() bool {
		d := outcomes[crashDeploy]
		return testing.Short() || (d[crashOld] > 0 && d[crashNew] > 0) || time.Now().After(deadline.Add(2*budget))
	}
	for ; kills < maxKills && (kills < len(round) || time.Now().Before(deadline) || !bothSides()); kills++ {
		kind := queue[0]
		if queue = queue[1:]; len(queue) == 0 {
			queue = shuffled(r.rng, round)
		}
		outcome := r.iterate(kind, true, queue[0], r.rng.IntN(3) == 0)
		if outcomes[kind] == nil {
			outcomes[kind] = map[string]int{}
		}
		outcomes[kind][outcome]++
	}
	total := map[string]int{}
	for _, kind := range slices.Sorted(maps.Keys(outcomes)) {
		t.Logf("%-13s %v", kind, outcomes[kind])
		for o, n := range outcomes[kind] {
			total[o] += n
		}
	}
	t.Logf("%d runs killed or finished first, in %v: %v", kills, time.Since(start).Round(time.Millisecond), total)
	if len(r.strays) > 0 {
		t.Logf("temporary files left by killed writes, which nothing removes: %v", slices.Sorted(maps.Keys(r.strays)))
	}
	if d := outcomes[crashDeploy]; !testing.Short() && (d[crashOld] == 0 || d[crashNew] == 0) {
		t.Errorf("deploy kills: %v; want some before the switch and some after (kill delays miscalibrated?)", d)
	}
}

// newCrashRig makes a sysroot with a stateroot testos and the rig to run
// the otree command on it, its randomness seeded from $OTREE_CRASH_SEED if
// set.
func newCrashRig(t *testing.T) *crashRig {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OTREE_CRASH_SEED"); s != "" { // to replay a failure
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatalf("OTREE_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (set OTREE_CRASH_SEED to replay the same trees and commands)", seed)
	f := newFixture(t) // skips unless root: the system repository is bare
	r := &crashRig{
		t: t, bin: testbin.Build(t, "github.com/otree/otree/cmd/otree"), path: f.path, src: t.TempDir(),
		rng:      rand.New(rand.NewPCG(seed, 11)),
		content:  rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)}),
		kernelOf: map[repo.ID]string{},
		images:   map[string][2][]byte{},
		runs:     map[string][]crashRun{},
		strays:   map[string]bool{},
		sides:    map[string]map[string]int{},
	}
	r.tick = 10 * time.Millisecond
	var res unix.Timespec
	if unix.ClockGetres(unix.CLOCK_REALTIME_COARSE, &res) == nil {
		r.tick = time.Duration(res.Nano())
	}
	return r
}

// crashDep names a deployment as the lists are compared: by commit and
// serial, index by index.
type crashDep struct {
	Commit repo.ID
	Serial int
}

func (d crashDep) String() string { return fmt.Sprintf("%s.%d", d.Commit.Short(), d.Serial) }

// crashRig is the sysroot under test, the otree command run on it, the tree
// its commits are made of, and what the test knows of them.
type crashRig struct {
	t        *testing.T
	bin      string
	path     string // the sysroot
	src      string // the tree the next commit is made of
	rng      *rand.Rand
	content  *rand.ChaCha8
	commits  int
	head     repo.ID // the latest commit, on branch os
	kernel   string  // the kernel src ships
	kernelOf map[repo.ID]string
	images   map[string][2][]byte  // each kernel's vmlinuz and initramfs.img
	runs     map[string][]crashRun // by variant
	tick     time.Duration         // the resolution of file times
	strays   map[string]bool
	// sides counts the killed runs of each kind that left the old list
	// (crashOld) and the new one (crashNew).
	sides map[string]map[string]int
}

func shuffled(rng *rand.Rand, s []string) []string {
	s = slices.Clone(s)
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

// crashRun times a command that finished: how long it took, and how long
// it ran before it switched (the last rename of boot/loader or
// otree/boot.B), or -1 if it did not.
type crashRun struct{ took, switched time.Duration }

// estimate is the median duration and switch time of the last five runs
// of variant (a command, with " --retain" for a deploy that keeps every
// deployment: it removes none after its switch, so it takes a fraction of
// the time) that were not killed. Only recent runs count: the machine's
// speed drifts.
func (r *crashRig) estimate(variant string) (took, switched time.Duration) {
	runs := r.runs[variant]
	if len(runs) == 0 {
		r.t.Fatalf("no uninterrupted run of %s to time", variant)
	}
	var t, sw []time.Duration
	for _, run := range runs[max(0, len(runs)-5):] {
		t = append(t, run.took)
		if run.switched >= 0 {
			sw = append(sw, run.switched)
		}
	}
	median := func(d []time.Duration) time.Duration {
		if len(d) == 0 {
			return -1
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	return median(t), median(sw)
}

// timeRun times a command that started at begin and has just exited. The
// switch is dated by the change time of the links it renames, which is up
// to a tick of the coarse clock early.
func (r *crashRig) timeRun(begin time.Time) crashRun {
	run := crashRun{took: time.Since(begin), switched: -1}
	var latest time.Time
	for _, p := range []string{"boot/loader", "otree/boot.0", "otree/boot.1"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(r.path, p), &st); err == nil {
			if c := time.Unix(st.Ctim.Unix()); c.After(latest) {
				latest = c
			}
		}
	}
	if latest.After(begin) {
		run.switched = latest.Sub(begin)
	}
	return run
}

// createSource lays out a bootable tree with 3000 small files: enough that a
// deploy's checkout and the removal of the deployment it replaces take a
// measurable time.
func (r *crashRig) createSource() {
	r.t.Helper()
	r.kernel = crashKernels[0]
	testtree.Create(r.t, r.src, osTree(r.kernel, nil))
	r.writeKernel(r.kernel)
	for d := range 40 {
		for f := range 75 {
			r.write(fmt.Sprintf("usr/share/crash/d%02d/f%02d", d, f), 64+r.rng.IntN(512))
		}
	}
}

func (r *crashRig) write(rel string, size int) {
	r.t.Helper()
	data := make([]byte, size)
	r.content.Read(data)
	p := filepath.Join(r.src, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// writeKernel puts kernel's images in the tree, the same bytes each time.
func (r *crashRig) writeKernel(kernel string) {
	r.t.Helper()
	img, ok := r.images[kernel]
	if !ok {
		img = [2][]byte{make([]byte, 1<<20), make([]byte, 3<<20)}
		r.content.Read(img[0])
		r.content.Read(img[1])
		r.images[kernel] = img
	}
	dir := filepath.Join(r.src, "usr/lib/modules", kernel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Fatal(err)
	}
	for i, name := range []string{"vmlinuz", "initramfs.img"} {
		if err := os.WriteFile(filepath.Join(dir, name), img[i], 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
}

// otherKernel picks a kernel that none of the deployments boots, if there
// is one, so that a deploy of it installs it: the installed kernels are
// those of the deployments, as cleanups leave them.
func (r *crashRig) otherKernel(ds ...crashDep) string {
	out := slices.DeleteFunc(slices.Clone(crashKernels), func(k string) bool {
		return slices.ContainsFunc(ds, func(d crashDep) bool { return r.kernelOf[d.Commit] == k })
	})
	if len(out) == 0 {
		out = crashKernels
	}
	return out[r.rng.IntN(len(out))]
}

// deployFirst commits the source with the first kernel and deploys it
// with crashKargs, then gives its /etc the admin's change (crashHostname),
// which every later deploy must carry over; it returns the commit.
func (r *crashRig) deployFirst() repo.ID {
	first := r.commit(crashKernels[0])
	r.admin("deploy", "--karg=root=LABEL=root", "--karg=quiet", "os")
	s := r.open()
	defer s.Close()
	if err := os.WriteFile(filepath.Join(s.Deployments()[0].Path, "etc/hostname"), []byte(crashHostname), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return first
}

// commit changes some files of the tree, gives it kernel, commits it to
// branch os and returns the commit.
func (r *crashRig) commit(kernel string) repo.ID {
	r.t.Helper()
	r.commits++
	for range 40 {
		r.write(fmt.Sprintf("usr/share/crash/d%02d/f%02d", r.rng.IntN(40), r.rng.IntN(75)), 64+r.rng.IntN(512))
	}
	r.write("usr/lib/crash-generation", 8+r.commits%7)
	if kernel != r.kernel {
		if err := os.RemoveAll(filepath.Join(r.src, "usr/lib/modules", r.kernel)); err != nil {
			r.t.Fatal(err)
		}
		r.writeKernel(kernel)
		r.kernel = kernel
	}
	rp, err := repo.Open(filepath.Join(r.path, "otree", "repo"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer rp.Close()
	res, err := commit.Commit(context.Background(), rp, commit.Options{
		Branch: "os", Subject: fmt.Sprintf("crash %d", r.commits), Timestamp: time.Unix(int64(1700000000+r.commits), 0),
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: r.src}},
		NoSync:  true, // settle flushes it before any command runs
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.head = res.Commit
	r.kernelOf[res.Commit] = kernel
	return res.Commit
}

// settle writes back what the test itself wrote (commits, checkouts, the
// atimes its checks touched), so that the syncfs of the command run next
// flushes only that command's writes: its duration, and so where the kills
// land, should not depend on what ran before.
func (r *crashRig) settle() { unix.Sync() }

func (r *crashRig) command(args ...string) *exec.Cmd {
	return exec.Command(r.bin, append([]string{"admin", "--sysroot=" + r.path}, args...)...)
}

// admin runs an admin command to completion and times it.
func (r *crashRig) admin(args ...string) crashRun {
	r.t.Helper()
	cmd := r.command(args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	r.settle()
	begin := time.Now()
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("otree admin %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return r.timeRun(begin)
}

// adminKilled runs an admin command and sends it SIGKILL after delay, or
// never for a negative delay. It reports whether the command finished, and
// then what it printed and its timing; a failure is fatal.
func (r *crashRig) adminKilled(delay time.Duration, args ...string) (bool, string, crashRun) {
	r.t.Helper()
	cmd := r.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r.settle()
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var kill <-chan time.Time
	if delay >= 0 {
		kill = time.After(delay)
	}
	var err error
	select {
	case err = <-exited:
	case <-kill:
		cmd.Process.Signal(syscall.SIGKILL)
		err = <-exited
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return false, "", crashRun{}
		}
	}
	run := r.timeRun(begin)
	if err != nil {
		r.t.Fatalf("otree admin %s failed without being killed: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return true, stdout.String(), run
}

func (r *crashRig) open() *Sysroot {
	r.t.Helper()
	s, err := Open(r.path, OpenOptions{})
	if err != nil {
		r.t.Fatalf("opening the sysroot: %v", err)
	}
	return s
}

func crashList(s *Sysroot) []crashDep {
	var l []crashDep
	for _, d := range s.Deployments() {
		l = append(l, crashDep{d.Commit, d.Serial})
	}
	return l
}

// iterate runs a command of kind on a sysroot of two or three deployments,
// killing it at a random instant if kill, else letting it finish, which
// times it. It checks what the command left and returns the outcome. Then it deploys a new commit to
// completion (with --retain if retain and there are fewer than three
// deployments), so that a command of kind next finds a list it can act on,
// runs a cleanup, and checks that nothing is left over.
func (r *crashRig) iterate(kind string, kill bool, next string, retain bool) string {
	r.t.Helper()
	s := r.open()
	before := crashList(s)
	bv, sv := s.BootVersion()
	variant := kind
	var args []string
	var after []crashDep
	var orphan string
	orphanFiles := 0
	switch kind {
	case crashDeploy:
		// Mostly a new commit, half of those with a kernel to install;
		// sometimes the default's own commit again, which takes the next
		// free serial.
		rev, id := "os", before[0].Commit
		switch r.rng.IntN(4) {
		case 0:
			rev = id.String()
		case 1:
			id = r.commit(crashKernels[r.rng.IntN(len(crashKernels))])
		default:
			id = r.commit(r.otherKernel(before...))
		}
		serial, err := s.freeSerial("testos", id)
		if err != nil {
			r.t.Fatal(err)
		}
		args = []string{"deploy", rev}
		after = []crashDep{{id, serial}, before[0]} // the merge deployment stays
		if r.rng.IntN(2) == 0 {
			args = append(args, "--retain")
			variant += " --retain"
			after = append([]crashDep{{id, serial}}, before...)
		}
	case crashRollbackSub, crashRollbackFull:
		k0, k1 := s.Deployments()[0].Kernel, s.Deployments()[1].Kernel
		if (k0 == k1) != (kind == crashRollbackSub) {
			r.t.Fatalf("%s between deployments of kernels %s and %s", kind, k0, k1)
		}
		args = []string{"rollback"}
		after = append([]crashDep{before[1], before[0]}, before[2:]...)
	case crashUndeploy:
		i := r.rng.IntN(len(before))
		args = []string{"undeploy", fmt.Sprint(i)}
		after = slices.Delete(slices.Clone(before), i, i+1)
	case crashCleanup:
		orphan = r.makeOrphan(s)
		orphanFiles = countFiles(orphan)
		args = []string{"cleanup"}
		after = before
	case crashFinalize:
		// Staged in full first; the finalize merges /etc again, installs
		// the kernel and switches, as a deploy does.
		id := r.commit(r.otherKernel(before...))
		serial, err := s.freeSerial("testos", id)
		if err != nil {
			r.t.Fatal(err)
		}
		r.admin("deploy", "--stage", "os")
		args = []string{"finalize-staged"}
		after = []crashDep{{id, serial}, before[0]}
	}
	s.Close()
	delay := time.Duration(-1)
	if kill {
		took, switched := r.estimate(variant)
		delay = time.Duration(r.rng.Int64N(int64(took+took/5) + 1))
		// Half the kills land near the switch instead: what is written
		// just before it and just after decides whether every entry
		// still boots, and a uniform kill rarely lands there.
		if switched >= 0 && r.rng.IntN(2) == 0 {
			lo, hi := max(0, switched-took/10), switched+r.tick+took/10
			// On a loaded machine a command runs late or early by more
			// than that: after three kills on one side and none on the
			// other, they aim at the side not seen yet.
			switch sides := r.sides[kind]; {
			case sides[crashOld] >= 3 && sides[crashNew] == 0:
				lo, hi = switched, took+took/2
			case sides[crashNew] >= 3 && sides[crashOld] == 0:
				lo, hi = 0, switched
			}
			delay = lo + time.Duration(r.rng.Int64N(int64(hi-lo)+1))
		}
	}

	finished, stdout, run := r.adminKilled(delay, args...)
	label := fmt.Sprintf("otree admin %s, SIGKILL after %v", strings.Join(args, " "), delay)
	if finished {
		r.runs[variant] = append(r.runs[variant], run)
	}
	if !kill {
		label = fmt.Sprintf("otree admin %s (uninterrupted)", strings.Join(args, " "))
	}
	s = r.open()
	got := crashList(s)
	nb, ns := s.BootVersion()
	s.Close()
	var outcome string
	switch {
	case finished:
		outcome = crashFinished
		if !slices.Equal(got, after) {
			r.t.Fatalf("%s: finished with deployments %v, want %v", label, got, after)
		}
	case slices.Equal(got, before):
		outcome = crashOld
		if nb != bv || ns != sv {
			r.t.Errorf("%s: the list is the old one, but the boot version went from %d.%d to %d.%d", label, bv, sv, nb, ns)
		}
	case slices.Equal(got, after):
		outcome = crashNew
	default:
		r.t.Fatalf("%s: deployments are %v, neither the list before %v nor the one it was making %v", label, got, before, after)
	}
	switch {
	case outcome == crashOld:
	case kind == crashRollbackSub && (nb != bv || ns == sv):
		r.t.Errorf("%s: boot version went from %d.%d to %d.%d, want a sub-version switch", label, bv, sv, nb, ns)
	case kind == crashRollbackFull && nb == bv:
		r.t.Errorf("%s: boot version stayed %d, want a full switch", label, bv)
	}
	if finished && kind == crashRollbackSub && !strings.Contains(stdout, "(sub switch)") ||
		finished && kind == crashRollbackFull && !strings.Contains(stdout, "(full switch)") {
		r.t.Errorf("%s printed %q", label, stdout)
	}
	if kind == crashCleanup && !finished {
		switch n := countFiles(orphan); {
		case n == orphanFiles:
			outcome = crashOrphanWhole
		case n == 0:
			outcome = crashOrphanGone
		default:
			outcome = crashOrphanPart
		}
	}
	r.checkBootable(label, got)
	if kind == crashFinalize && outcome == crashOld {
		// Killed before its switch: the deployment is still staged, whole
		// with the /etc the deploy merged, and a finalize run again makes
		// it the default.
		r.checkStaged(label, after[0])
		r.admin("finalize-staged")
		label += ", then finalize-staged"
		r.check(label, after)
		got = after
	}

	// Prepare the next command: the new default's kernel is the current
	// default's before a sub-version rollback, another one before a full
	// rollback, any one otherwise.
	kernel := crashKernels[r.rng.IntN(len(crashKernels))]
	switch next {
	case crashRollbackSub:
		kernel = r.kernelOf[got[0].Commit]
	case crashRollbackFull:
		kernel = r.otherKernel(got[0])
	}
	id := r.commit(kernel)
	deployArgs := []string{"deploy", "os"}
	want := []crashDep{{id, 0}, got[0]}
	deployVariant := crashDeploy
	if len(got) < 3 && retain {
		deployArgs = append(deployArgs, "--retain")
		deployVariant += " --retain"
		want = append([]crashDep{{id, 0}}, got...)
	}
	r.runs[deployVariant] = append(r.runs[deployVariant], r.admin(deployArgs...))
	r.admin("cleanup")
	label += ", then deploy and cleanup"
	r.check(label, want)
	r.checkClean(label)
	r.noteStrays()
	if r.sides[kind] == nil {
		r.sides[kind] = map[string]int{}
	}
	r.sides[kind][outcome]++
	return outcome
}

// makeOrphan leaves what a deploy killed between its checkout and its
// switch leaves: a checkout of the latest commit that no boot entry names,
// with its origin and its ref.
func (r *crashRig) makeOrphan(s *Sysroot) string {
	r.t.Helper()
	id := r.commit(r.kernel)
	serial, err := s.freeSerial("testos", id)
	if err != nil {
		r.t.Fatal(err)
	}
	dir := s.deploymentDir("testos", id, serial)
	if _, err := checkout.Checkout(context.Background(), s.Repo(), id, dir, checkout.Options{}); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(dir+".origin", []byte(crashOrigin), 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := s.Repo().SetRef(fmt.Sprintf("otree/testos/%s.%d", id, serial), id); err != nil {
		r.t.Fatal(err)
	}
	return dir
}

// countFiles counts the entries under dir, and its origin file.
func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(string, fs.DirEntry, error) error { n++; return nil })
	if _, err := os.Lstat(dir + ".origin"); err == nil {
		n++
	}
	if _, err := os.Lstat(dir); err != nil {
		n-- // WalkDir calls back once with the error
	}
	return n
}

// check opens the sysroot, compares its deployments with want and checks
// that each is bootable.
func (r *crashRig) check(label string, want []crashDep) {
	r.t.Helper()
	s := r.open()
	got := crashList(s)
	s.Close()
	if !slices.Equal(got, want) {
		r.t.Fatalf("%s: deployments are %v, want %v", label, got, want)
	}
	r.checkBootable(label, got)
}

// checkBootable follows every boot entry of the current boot version as a
// boot loader and prepare-root would: its otree= argument must resolve to
// the directory of the deployment at its index in list, which must be
// whole (its /usr matches its commit, its /etc has the merged hostname, its
// origin is there), and its linux and initrd lines must name copies of that
// deployment's own kernel and initramfs.
func (r *crashRig) checkBootable(label string, list []crashDep) {
	r.t.Helper()
	s := r.open()
	defer s.Close()
	entries, err := readEntries(filepath.Join(r.path, "boot", "loader", "entries"))
	if err != nil {
		r.t.Fatalf("%s: reading the boot entries: %v", label, err)
	}
	if len(entries) != len(list) || len(s.Deployments()) != len(list) {
		r.t.Fatalf("%s: %d boot entries and %d deployments, want %d", label, len(entries), len(s.Deployments()), len(list))
	}
	for i, e := range entries {
		v, ok := BootArgFromCmdline(e.options)
		if !ok {
			r.t.Fatalf("%s: entry %s has no otree= argument", label, e.file)
		}
		a, err := ParseBootArg(v)
		if err != nil {
			r.t.Fatalf("%s: entry %s: %v", label, e.file, err)
		}
		dir, err := ResolveBootArg(r.path, a)
		if err != nil {
			r.t.Fatalf("%s: entry %s: %v", label, e.file, err)
		}
		d := s.Deployments()[i]
		if want := s.deploymentDir("testos", list[i].Commit, list[i].Serial); dir != want || d.Path != want {
			r.t.Fatalf("%s: entry %s resolves to %s and deployment %d is %s, want %s", label, e.file, dir, i, d.Path, want)
		}
		if d.Options != crashKargs {
			r.t.Errorf("%s: deployment %d has kernel arguments %q, want %q", label, i, d.Options, crashKargs)
		}
		ch, err := s.Verify(context.Background(), i)
		if err != nil || len(ch) > 0 {
			r.t.Fatalf("%s: deployment %d (%s): /usr differs from its commit: %v %v", label, i, d.Name(), ch, err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "etc/hostname")); err != nil || string(b) != crashHostname {
			r.t.Fatalf("%s: deployment %d: etc/hostname is %q (%v), want %q", label, i, b, err, crashHostname)
		}
		// A deployment made by commit id follows that id, as in OSTree.
		if b, err := os.ReadFile(dir + ".origin"); err != nil || string(b) != crashOrigin && string(b) != "[origin]\nrefspec="+d.Commit.String()+"\n" {
			r.t.Fatalf("%s: deployment %d: origin is %q (%v)", label, i, b, err)
		}
		kver := r.kernelOf[d.Commit]
		if d.Kernel != kver {
			r.t.Fatalf("%s: deployment %d boots kernel %s, its tree has %s", label, i, d.Kernel, kver)
		}
		if len(e.initrds) != 1 {
			r.t.Fatalf("%s: entry %s has initrds %q, want the tree's", label, e.file, e.initrds)
		}
		for _, f := range []struct{ entry, tree string }{{e.linux, "vmlinuz"}, {e.initrds[0], "initramfs.img"}} {
			want, err := os.ReadFile(filepath.Join(dir, "usr/lib/modules", kver, f.tree))
			if err != nil {
				r.t.Fatal(err)
			}
			if !strings.HasPrefix(f.entry, "/boot/otree/testos-"+d.BootCsum+"/") {
				r.t.Fatalf("%s: entry %s names %q for the %s", label, e.file, f.entry, f.tree)
			}
			got, err := os.ReadFile(filepath.Join(r.path, f.entry))
			if err != nil || !bytes.Equal(got, want) {
				r.t.Fatalf("%s: entry %s: %s (%d bytes, %v) is not a copy of the tree's %s (%d bytes)", label, e.file, f.entry, len(got), err, f.tree, len(want))
			}
		}
	}
}

// checkStaged checks that want is the staged deployment and whole: its
// /usr matches its commit, its /etc has the merged hostname, its origin is
// there.
func (r *crashRig) checkStaged(label string, want crashDep) {
	r.t.Helper()
	s := r.open()
	defer s.Close()
	st := s.Staged()
	if st == nil || st.Commit != want.Commit || st.Serial != want.Serial {
		r.t.Fatalf("%s: staged deployment %+v, want %v", label, st, want)
	}
	usr := filepath.Join(st.Path, "usr")
	ch, err := checkout.DiffDir(context.Background(), s.Repo(), st.Commit, usr, checkout.DiffOptions{Subpath: "/usr", Verify: true})
	if err == nil {
		ch, err = s.verifyMovedEtc(context.Background(), st.Commit, usr, ch)
	}
	if err != nil || len(ch) > 0 {
		r.t.Fatalf("%s: staged %s: /usr differs from its commit: %v %v", label, st.Name(), ch, err)
	}
	if b, err := os.ReadFile(filepath.Join(st.Path, "etc/hostname")); err != nil || string(b) != crashHostname {
		r.t.Fatalf("%s: staged %s: etc/hostname is %q (%v), want %q", label, st.Name(), b, err, crashHostname)
	}
	if _, err := os.Stat(st.Path + ".origin"); err != nil {
		r.t.Fatalf("%s: staged %s: %v", label, st.Name(), err)
	}
}

// checkClean checks what a cleanup leaves: the listed deployments and their
// origins and nothing else in the stateroot's deploy directory, a ref per
// deployment, the kernels they boot, the current boot version's entries
// and links alone, and a repository without problems.
func (r *crashRig) checkClean(label string) {
	r.t.Helper()
	s := r.open()
	defer s.Close()
	var wantDirs, wantRefs, wantKernels []string
	for _, d := range s.Deployments() {
		wantDirs = append(wantDirs, d.Name(), d.Name()+".origin")
		wantRefs = append(wantRefs, "otree/testos/"+d.Name())
		wantKernels = append(wantKernels, "testos-"+d.BootCsum)
	}
	sorted := func(s []string) []string { return slices.Compact(slices.Sorted(slices.Values(s))) }
	names := func(dir string) []string {
		ents, err := os.ReadDir(filepath.Join(r.path, dir))
		if err != nil {
			r.t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if got := names("otree/deploy/testos/deploy"); !slices.Equal(got, sorted(wantDirs)) {
		r.t.Fatalf("%s: the deployments directory holds %v, want %v", label, got, sorted(wantDirs))
	}
	refs, err := s.Repo().ListRefs("otree/")
	if err != nil {
		r.t.Fatal(err)
	}
	var gotRefs []string
	for _, ref := range refs {
		gotRefs = append(gotRefs, ref.Name)
	}
	if gotRefs = sorted(gotRefs); !slices.Equal(gotRefs, sorted(wantRefs)) {
		r.t.Fatalf("%s: deployment refs %v, want %v", label, gotRefs, sorted(wantRefs))
	}
	if got := names("boot/otree"); !slices.Equal(got, sorted(wantKernels)) {
		r.t.Fatalf("%s: kernel directories %v, want %v", label, got, sorted(wantKernels))
	}
	bv, sv := s.BootVersion()
	for _, p := range []string{
		fmt.Sprintf("boot/loader.%d", 1-bv), fmt.Sprintf("otree/boot.%d", 1-bv), fmt.Sprintf("otree/boot.%d.0", 1-bv),
		fmt.Sprintf("otree/boot.%d.1", 1-bv), fmt.Sprintf("otree/boot.%d.%d", bv, 1-sv),
	} {
		if _, err := os.Lstat(filepath.Join(r.path, p)); !errors.Is(err, fs.ErrNotExist) {
			r.t.Fatalf("%s: %s survived cleanup (%v)", label, p, err)
		}
	}
	rep, err := s.Repo().Fsck(context.Background(), repo.FsckOptions{})
	if err != nil || len(rep.Problems) > 0 || len(rep.Incomplete) > 0 || len(rep.Stray) > 0 {
		r.t.Fatalf("%s: fsck: %v (problems %v, incomplete %v, stray %v)", label, err, rep.Problems, rep.Incomplete, rep.Stray)
	}
}

// noteStrays records the temporary files of interrupted writes outside the
// repository that a deploy and a cleanup left. They do no harm to what
// boots, but nothing removes them.
func (r *crashRig) noteStrays() {
	for _, pat := range []string{"boot/.*.tmp", "otree/.*.tmp", "boot/otree/*/*.tmp"} {
		m, _ := filepath.Glob(filepath.Join(r.path, pat))
		for _, p := range m {
			rel, _ := filepath.Rel(r.path, p)
			r.strays[rel] = true
		}
	}
}
