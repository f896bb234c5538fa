package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

// otree --version prints OSTree's shape, with the Go release that built it;
// -v is OSTree's --verbose.
func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("--version: exit %d: %s", code, errb.String())
	}
	got := out.String()
	if !strings.HasPrefix(got, "otree:\n Version: '") || !strings.HasSuffix(got, " Go: "+runtime.Version()+"\n") {
		t.Errorf("--version printed %q", got)
	}
	// Any command takes it, as OSTree's do, before its arguments are
	// checked: log wants a revision.
	for _, args := range [][]string{{"log", "--version"}, {"admin", "status", "--version"}, {"--repo=/nonexistent", "refs", "--version"}} {
		out.Reset()
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 || out.String() != got {
			t.Errorf("%q: exit %d, printed %q", args, code, out.String())
		}
	}
	out.Reset()
	run(context.Background(), []string{"-v"}, strings.NewReader(""), &out, &errb)
	if strings.Contains(out.String(), "Version: '") {
		t.Errorf("-v was taken as --version: %q", out.String())
	}
}
