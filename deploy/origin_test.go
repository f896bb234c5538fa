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

// A rewrite keeps the lines of keys otree does not own as they were, the
// spaces that end a value included, which GLib reads as part of it; and
// only the whitespace GLib trims is trimmed from otree's own values.
func TestOriginKeepsOtherValues(t *testing.T) {
	kept := []string{"kept=a  ", "note=\u00a0x\u00a0", "# comment \t"}
	o, err := parseOrigin("o", []byte("[origin]\nrefspec=os:main\n"+strings.Join(kept, "\n")+"\nunconfigured-state=\u00a0set up\u00a0 \n"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Unconfigured != "\u00a0set up\u00a0" {
		t.Errorf("unconfigured-state read as %q", o.Unconfigured)
	}
	o.Refspec, o.Pinned = "os:next", true
	out := string(o.encode())
	for _, l := range kept {
		if !strings.Contains(out, "\n"+l+"\n") {
			t.Errorf("origin written as %q, want the line %q kept", out, l)
		}
	}
	if o2, err := parseOrigin("o", []byte(out)); err != nil || string(o2.encode()) != out {
		t.Errorf("origin %q written again changed: %v", out, err)
	}
}
