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
	out.Reset()
	run(context.Background(), []string{"-v"}, strings.NewReader(""), &out, &errb)
	if strings.Contains(out.String(), "Version: '") {
		t.Errorf("-v was taken as --version: %q", out.String())
	}
}
