package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
)

// A name holding a newline stays inside its error line: it cannot start
// a line that reads as an error of its own.
func TestErrorNameWithNewlineIsOneLine(t *testing.T) {
	c := newCLI(t)
	const name = "x\nerror: forged"
	src := source(t, testtree.Tree{"f": testtree.File("f", 0o644)})
	if err := unix.Mknod(filepath.Join(src, name), unix.S_IFSOCK|0o644, 0); err != nil {
		t.Fatal(err)
	}
	res := c.fails(exitError, []string{`x\nerror: forged`, "socket"}, "commit", "-b", "main", src)
	if strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("commit: stderr %q is not one line", res.stderr)
	}
	if err := os.Remove(filepath.Join(src, name)); err != nil {
		t.Fatal(err)
	}
	testtree.Create(t, src, testtree.Tree{name: testtree.File("y", 0o644)})
	c.commitTree("main", src, "s", 1700000000)
	dest := filepath.Join(t.TempDir(), "dest")
	testtree.Create(t, dest, testtree.Tree{name: testtree.Dir(0o755)})
	res = c.fails(exitError, []string{`x\nerror: forged`, "in the way"}, "checkout", "--union", "main", dest)
	if strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("checkout: stderr %q is not one line", res.stderr)
	}
}

// Errors joined by errors.Join print one "error:" line each, an error of
// the operands its usage line below it, and nothing else breaks a line.
func TestPrintErrorLines(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("open /a\nb: denied"), "error: open /a\\nb: denied\n"},
		{errors.Join(errors.New("one"), errors.New("t\nwo")), "error: one\nerror: t\\nwo\n"},
		{fmt.Errorf("%w: %w", errors.New("a"), errors.New("b\nc")), "error: a: b\\nc\n"},
		{fmt.Errorf("ctx: %w", errors.Join(errors.New("a"), errors.New("b"))), "error: ctx: a\\nb\n"},
		{usageError{withUsage{"otree log: missing REV", "otree log REV [flags]"}}, "error: otree log: missing REV\nUsage: otree log REV [flags]\n"},
	} {
		var b bytes.Buffer
		printError(&b, "", tc.err)
		if b.String() != tc.want {
			t.Errorf("printError(%q) = %q, want %q", tc.err, b.String(), tc.want)
		}
	}
}

// A word that names no command is one error line; the commands cobra
// suggests for it come as a hint below, not as lines of the error.
func TestUnknownCommandSuggestionIsHint(t *testing.T) {
	c := newCLI(t)
	for args, want := range map[string]string{
		"summ":  "error: unknown command \"summ\" for \"otree\"\nhint: did you mean `otree summary`?\n",
		"chec":  "error: unknown command \"chec\" for \"otree\"\nhint: did you mean `otree checkout` or `otree checksum`?\n",
		"zzzzz": "error: unknown command \"zzzzz\" for \"otree\"\n",
	} {
		if res := c.fails(exitUsage, nil, args); res.stderr != want {
			t.Errorf("otree %s: stderr %q, want %q", args, res.stderr, want)
		}
	}
}
