package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
// whole (for failure messages) and as lines.
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
	return straceLog{out: string(out), log: string(b), lines: strings.Split(string(b), "\n")}, err
}
