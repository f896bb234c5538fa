package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
)

// crashEtcFiles is how many files the trees' /usr/etc holds in
// TestFinalizeStagedSurvivesSIGKILL: enough that the /etc merge of a
// finalize takes a measurable part of it.
const crashEtcFiles = 1200

// TestFinalizeStagedSurvivesSIGKILL stages deployments whose /etc is large
// and kills `otree admin finalize-staged` at random instants, again and
// again on the same staged deployment until one run switches or finishes;
// between the kills the admin edits /etc. After each kill the sysroot must
// list either the old deployments, with the deployment still staged and
// whole (its /usr, its origin and an /etc with every file and the admin's
// edits made before it was staged), or the new list, each entry booting a
// whole deployment whose /etc has the admin's latest edits. A cleanup then
// leaves nothing behind.
func TestFinalizeStagedSurvivesSIGKILL(t *testing.T) {
	rounds, budget := 40, 20*time.Second
	if testing.Short() {
		rounds, budget = 2, 0
	}
	r := newCrashRig(t)
	start := time.Now()
	// The rig's tree without its 3000 files of /usr/share: only the /etc
	// merge needs to take time here.
	r.kernel = crashKernels[0]
	testtree.Create(t, r.src, osTree(r.kernel, nil))
	r.writeKernel(r.kernel)
	for i := range crashEtcFiles {
		r.write(fmt.Sprintf("usr/etc/many/d%02d/f%03d", i%20, i), 64+r.rng.IntN(256))
	}
	first := r.deployFirst()
	r.check("after the first deploy", []crashDep{{first, 0}})

	// edit is the admin's latest change to /etc; every edit is a new
	// file, as the merge deployment's /etc holds it when a run starts.
	edit := 0
	editEtc := func() {
		s := r.open()
		defer s.Close()
		edit++
		p := filepath.Join(s.Deployments()[0].Path, "etc", fmt.Sprintf("admin-%03d", edit))
		if err := os.WriteFile(p, []byte("edit\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hasEdits := func(label, dir string, upTo int) {
		t.Helper()
		for i := 1; i <= upTo; i++ {
			if _, err := os.Stat(filepath.Join(dir, "etc", fmt.Sprintf("admin-%03d", i))); err != nil {
				t.Fatalf("%s: the admin's edit %d is missing: %v", label, i, err)
			}
		}
		n := 0
		filepath.WalkDir(filepath.Join(dir, "etc/many"), func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return nil
		})
		if n != crashEtcFiles {
			t.Fatalf("%s: %s/etc/many holds %d files, want %d", label, dir, n, crashEtcFiles)
		}
	}

	outcomes := map[string]int{}
	for round := 0; round < rounds && (round < 2 || time.Since(start) < budget); round++ {
		s := r.open()
		before := crashList(s)
		id := r.commit(r.otherKernel(before...))
		serial, err := s.freeSerial("testos", id)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		editEtc()
		r.admin("deploy", "--stage", "os")
		staged := edit
		after := []crashDep{{id, serial}, before[0]}
		for try := 0; ; try++ {
			editEtc()
			delay := time.Duration(-1)
			if round > 0 && try < 8 {
				// Half the kills land in the part before the switch, where
				// the /etc merge is.
				took, switched := r.estimate("finalize")
				if switched > 0 && r.rng.IntN(2) == 0 {
					took = switched
				}
				delay = time.Duration(r.rng.Int64N(int64(took+took/5) + 1))
			}
			finished, _, run := r.adminKilled(delay, "finalize-staged")
			label := fmt.Sprintf("round %d: otree admin finalize-staged, SIGKILL after %v", round, delay)
			if finished {
				r.runs["finalize"] = append(r.runs["finalize"], run)
			}
			s := r.open()
			got := crashList(s)
			st := s.Staged()
			s.Close()
			switch {
			case slices.Equal(got, after):
				outcomes[map[bool]string{true: crashFinished, false: crashNew}[finished]]++
				r.checkBootable(label, after)
				hasEdits(label, s.deploymentDir("testos", id, serial), edit)
			case finished:
				t.Fatalf("%s: finished with deployments %v, want %v", label, got, after)
			case slices.Equal(got, before):
				outcomes[crashOld]++
				r.checkBootable(label, before)
				r.checkStaged(label, after[0])
				hasEdits(label, st.Path, staged)
				continue
			default:
				t.Fatalf("%s: deployments are %v, neither %v nor %v", label, got, before, after)
			}
			break
		}
		r.admin("cleanup")
		r.checkClean(fmt.Sprintf("round %d, after cleanup", round))
	}
	took, switched := r.estimate("finalize")
	t.Logf("finalize takes about %v, switching after %v; runs in %v: %v", took, switched, time.Since(start).Round(time.Millisecond), outcomes)
}

// TestStageSurvivesSIGKILL kills `otree admin deploy --stage` while another
// deployment is staged, at random instants: after each kill the earlier
// staged deployment or the new one must be staged, whole, and never
// neither, so that a shutdown during a staged upgrade still finalizes the
// upgrade staged before it.
func TestStageSurvivesSIGKILL(t *testing.T) {
	kills, budget := 30, 15*time.Second
	if testing.Short() {
		kills, budget = 3, 0
	}
	r := newCrashRig(t)
	start := time.Now()
	r.kernel = crashKernels[0]
	testtree.Create(t, r.src, osTree(r.kernel, nil))
	r.writeKernel(r.kernel)
	for i := range 1500 {
		r.write(fmt.Sprintf("usr/share/stage/d%02d/f%03d", i%20, i), 64+r.rng.IntN(512))
	}
	first := r.deployFirst()
	r.check("after the first deploy", []crashDep{{first, 0}})
	stage := func() crashDep {
		s := r.open()
		defer s.Close()
		id := r.commit(crashKernels[r.rng.IntN(len(crashKernels))])
		serial, err := s.freeSerial("testos", id)
		if err != nil {
			t.Fatal(err)
		}
		return crashDep{id, serial}
	}
	staged := stage()
	begin := time.Now()
	r.runs["stage"] = append(r.runs["stage"], r.admin("deploy", "--stage", "os"))
	recordAt := []time.Duration{r.recordTime(begin)}
	outcomes := map[string]int{}
	for n := 0; n < kills && (n < 3 || time.Since(start) < budget); n++ {
		next := stage()
		took, _ := r.estimate("stage")
		delay := time.Duration(r.rng.Int64N(int64(took+took/5) + 1))
		// Half the kills land just before the record is written, when
		// the one it replaces is at stake.
		if rec := recordAt[len(recordAt)-1]; r.rng.IntN(2) == 0 {
			delay = max(0, rec-rec/4+time.Duration(r.rng.Int64N(int64(rec/4)+1)))
		}
		begin := time.Now()
		finished, _, run := r.adminKilled(delay, "deploy", "--stage", "os")
		if finished {
			recordAt = append(recordAt, r.recordTime(begin))
		}
		label := fmt.Sprintf("otree admin deploy --stage os, SIGKILL after %v", delay)
		if finished {
			r.runs["stage"] = append(r.runs["stage"], run)
		}
		s := r.open()
		st := s.Staged()
		s.Close()
		switch {
		case st == nil:
			t.Fatalf("%s: nothing is staged; want %v or %v", label, staged, next)
		case st.Commit == next.Commit && st.Serial == next.Serial:
			outcomes[map[bool]string{true: crashFinished, false: crashNew}[finished]]++
			staged = next
		case finished:
			t.Fatalf("%s: finished with %s staged, want %v", label, st.Name(), next)
		case st.Commit == staged.Commit && st.Serial == staged.Serial:
			outcomes[crashOld]++
		default:
			t.Fatalf("%s: %s is staged; want %v or %v", label, st.Name(), staged, next)
		}
		r.checkStaged(label, staged)
		r.checkBootable(label, []crashDep{{first, 0}})
	}
	r.admin("finalize-staged")
	r.check("after the kills, finalize-staged", []crashDep{staged, {first, 0}})
	r.admin("cleanup")
	r.checkClean("after the kills, finalize-staged and cleanup")
	t.Logf("deploy --stage runs in %v: %v", time.Since(start).Round(time.Millisecond), outcomes)
}

// recordTime is how long after begin the staged record was last written.
func (r *crashRig) recordTime(begin time.Time) time.Duration {
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(r.path, "run/otree", stagedRecordName), &st); err != nil {
		r.t.Fatal(err)
	}
	return time.Unix(st.Ctim.Unix()).Sub(begin)
}
