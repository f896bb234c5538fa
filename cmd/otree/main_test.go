package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testbin"
)

// TestMain lets tests run this test binary as the otree command (for
// scripts in another mount namespace, or processes a test kills): with
// OTREE_TEST_AS_OTREE=1 in its environment it is otree.
//
// The tools the tests run get a UTF-8 locale whatever the machine's is:
// in the C locale OSTree prints a size's no-break space, and non-ASCII
// metadata, as '?', refuses non-ASCII --add-metadata-string values, and
// its export loses non-ASCII file names, so parity tests would fail on a
// machine whose environment sets no LANG.
func TestMain(m *testing.M) {
	if os.Getenv("OTREE_TEST_AS_OTREE") == "1" {
		main()
	}
	os.Setenv("LC_ALL", "C.UTF-8")
	os.Unsetenv("LANGUAGE")
	os.Exit(m.Run())
}

// otreeBinary returns a path and environment that run otree: this test
// binary in its otree role.
func otreeBinary(t *testing.T) (string, []string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe, append(os.Environ(), "OTREE_TEST_AS_OTREE=1")
}

// straceLog is what straced returns: otree's output, and strace's log,
// whole (for failure messages) and as lines, one per call: a call strace
// split in two (<unfinished ...>, then <... resumed>, when another thread's
// call came between) is joined in the place of its second half, where it
// returned.
type straceLog struct {
	out   string
	log   string
	lines []string
}

// straced runs otree with args under strace -f -y (paths beside
// descriptors), with the further strace flags in opts ("-e trace=fsync",
// "-z -e trace=…"), and returns its output and strace's log, and its error.
// It skips the test where strace cannot run.
func straced(t *testing.T, opts string, args ...string) (straceLog, error) {
	t.Helper()
	strace := testbin.NeedStrace(t)
	exe, env := otreeBinary(t)
	logPath := filepath.Join(t.TempDir(), "strace")
	cmd := exec.Command(strace, append(append(append([]string{"-f", "-y", "-o", logPath}, strings.Fields(opts)...), exe), args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	b, rerr := os.ReadFile(logPath)
	if rerr != nil && err == nil {
		t.Fatalf("reading strace's log: %v", rerr)
	}
	return straceLog{out: string(out), log: string(b), lines: joinStraceLines(strings.Split(string(b), "\n"))}, err
}

var (
	straceUnfinished = regexp.MustCompile(`^(\d+) +(.*) <unfinished \.\.\.>$`)
	straceResumed    = regexp.MustCompile(`^(\d+) +<\.\.\. [a-z0-9_]+ resumed>(.*)$`)
	stracePID        = regexp.MustCompile(`^\d+ `)
)

// joinStraceLines puts each call strace logged in two lines back on one.
// The second half is "PID <... call resumed>REST", or, when strace ends
// the call right after its first half (-z: it holds a call back until it
// knows it succeeded), REST alone, with no pid.
func joinStraceLines(lines []string) []string {
	started := map[string]string{} // pid -> the call's first half
	last := ""                     // the pid of the line before, if it was a first half
	var out []string
	for _, l := range lines {
		if m := straceUnfinished.FindStringSubmatch(l); m != nil {
			started[m[1]] = m[2]
			last = m[1]
			continue
		}
		if m := straceResumed.FindStringSubmatch(l); m != nil {
			if first, ok := started[m[1]]; ok {
				delete(started, m[1])
				l = m[1] + "  " + first + m[2]
			}
		} else if first, ok := started[last]; ok && !stracePID.MatchString(l) {
			delete(started, last)
			l = last + "  " + first + l
		}
		last = ""
		out = append(out, l)
	}
	return out
}

// A call strace split around another thread's line reads as one line, in
// the place it returned, so that tests of the order of calls see it whole.
func TestJoinStraceLines(t *testing.T) {
	got := joinStraceLines([]string{
		`4481  renameat(AT_FDCWD</x>, "/a/.tmp-1", AT_FDCWD</x>, "/a/os.tar") = 0`,
		`4474  fsync(8</a> <unfinished ...>`,
		`4481  --- SIGURG {si_signo=SIGURG} ---`,
		`4474  <... fsync resumed>)              = 0`,
		`4490  fsync(12</a/objects/85> <unfinished ...>`,
		`)                                       = 0`,
		`4490  unlinkat(5</a/objects>, "85/47.commit", 0) = 0`,
	})
	want := []string{
		`4481  renameat(AT_FDCWD</x>, "/a/.tmp-1", AT_FDCWD</x>, "/a/os.tar") = 0`,
		`4481  --- SIGURG {si_signo=SIGURG} ---`,
		`4474  fsync(8</a>)              = 0`,
		`4490  fsync(12</a/objects/85>)                                       = 0`,
		`4490  unlinkat(5</a/objects>, "85/47.commit", 0) = 0`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("joined lines (-want +got):\n%s", diff)
	}
}
