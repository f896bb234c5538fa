package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// No flag's help says its default twice: once in words and once as cobra
// prints a non-zero default ("(default -1)", which means nothing to a user).
func TestHelpStatesDefaultsOnce(t *testing.T) {
	seen := 0
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
	if seen < 40 {
		t.Errorf("visited %d commands; the walk of --help lost its way", seen)
	}
}
