package deploy

import (
	"strings"
	"testing"
)

// An origin's values are read with GLib's key-file escapes, as OSTree
// reads them, and written back escaped: a message GLib wrote with a line
// break or a leading space reads as that text, and survives a rewrite.
func TestOriginValueEscapes(t *testing.T) {
	const line = `unconfigured-state=\sRun vendor-setup:\nthen upgrade \\o/`
	const want = " Run vendor-setup:\nthen upgrade \\o/"
	o, err := parseOrigin("o", []byte("[origin]\nrefspec=os:main\n"+line+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Unconfigured != want {
		t.Fatalf("unconfigured-state read as %q, want %q", o.Unconfigured, want)
	}
	o.Pinned = true
	out := o.encode()
	if !strings.Contains(string(out), "\n"+line+"\n") {
		t.Fatalf("origin written as %q, want the line %q kept", out, line)
	}
	o2, err := parseOrigin("o", out)
	if err != nil || o2.Unconfigured != want {
		t.Fatalf("written origin reads back as %q, %v; want %q", o2.Unconfigured, err, want)
	}
}
