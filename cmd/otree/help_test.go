package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Every command's help: no flag's says its default twice, once in words
// and once as cobra prints a non-zero default ("(default -1)", which means
// nothing to a user).
func TestHelpAndOperations(t *testing.T) {
	seen := 0
	var parents [][]string
	var visit func(path []string)
	visit = func(path []string) {
		var out, errb bytes.Buffer
		if code := run(context.Background(), append(append([]string{}, path...), "--help"), strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("%q --help: exit %d: %s", path, code, errb.String())
		}
		seen++
		inCommands := false
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Count(line, "(default") > 1 {
				t.Errorf("otree %s --help: %q", strings.Join(path, " "), strings.TrimSpace(line))
			}
			switch {
			case line == "Available Commands:":
				inCommands = true
				parents = append(parents, path)
			case line == "":
				inCommands = false
			case inCommands:
				if name := strings.Fields(line)[0]; name != "help" && name != "completion" {
					visit(append(append([]string{}, path...), name))
				}
			}
		}
	}
	visit(nil)
	if seen < 40 || len(parents) < 4 {
		t.Errorf("visited %d commands, %d with commands of their own; the walk of --help lost its way", seen, len(parents))
	}

	// A mistyped operation is a usage error naming it, for every command
	// that groups others; one left out, for those that do nothing alone.
	for _, path := range parents {
		var out, errb bytes.Buffer
		args := append(append([]string{}, path...), "no-such-op")
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), `"no-such-op"`) || len(path) > 0 && !strings.Contains(errb.String(), "(want ") {
			t.Errorf("otree %s: exit %d, %q; want a usage error naming it and the operations", strings.Join(args, " "), code, errb.String())
		}
	}
	// Nor is otree alone a success, as OSTree's is not.
	var out, errb bytes.Buffer
	if code := run(context.Background(), nil, strings.NewReader(""), &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "no command given (want admin, ") {
		t.Errorf("otree: exit %d, %q; want a usage error listing the commands", code, errb.String())
	}
	for _, cmd := range []string{"admin", "remote", "static-delta"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"--repo=" + t.TempDir(), cmd}, strings.NewReader(""), &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "needs an operation: ") {
			t.Errorf("otree %s: exit %d, %q; want a usage error listing its operations", cmd, code, errb.String())
		}
	}
}
