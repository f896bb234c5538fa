package deploy

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseBootArg(t *testing.T) {
	csum := strings.Repeat("0f", 32)
	good := []struct {
		in   string
		want BootArg
	}{
		{"/otree/boot.0/os1/abc123/0", BootArg{0, "os1", "abc123", 0}},
		{"/otree/boot.1/fedora/" + csum + "/12", BootArg{1, "fedora", csum, 12}},
		{"/otree/boot.1/my.os-2_x/0/3", BootArg{1, "my.os-2_x", "0", 3}},
		{"/otree/boot.0/...os/ff/7", BootArg{0, "...os", "ff", 7}},
	}
	for _, tc := range good {
		got, err := ParseBootArg(tc.in)
		if err != nil {
			t.Errorf("ParseBootArg(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseBootArg(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if s := got.String(); s != tc.in {
			t.Errorf("ParseBootArg(%q).String() = %q", tc.in, s)
		}
	}

	bad := []string{
		"",
		"/",
		"otree/boot.0/os/ab/0",
		"/ostree/boot.0/os/ab/0",
		"/otree/boot0/os/ab/0",
		"/otree/boot.2/os/ab/0",
		"/otree/boot.01/os/ab/0",
		"/otree/boot./os/ab/0",
		"/otree/boot.0.1/os/ab/0",
		"/otree/boot.0//ab/0",
		"/otree/boot.0/./ab/0",
		"/otree/boot.0/../ab/0",
		"/otree/boot.0/o\x00s/ab/0",
		"/otree/boot.0/os//0",
		"/otree/boot.0/os/AB/0",
		"/otree/boot.0/os/xyz/0",
		"/otree/boot.0/os/ab/",
		"/otree/boot.0/os/ab/01",
		"/otree/boot.0/os/ab/-1",
		"/otree/boot.0/os/ab/+1",
		"/otree/boot.0/os/ab/1x",
		"/otree/boot.0/os/ab/99999999999999999999999",
		"/otree/boot.0/os/ab",
		"/otree/boot.0/os/ab/0/",
		"/otree/boot.0/os/ab/0/1",
		"//otree/boot.0/os/ab/0",
		" /otree/boot.0/os/ab/0",
	}
	for _, in := range bad {
		got, err := ParseBootArg(in)
		if err == nil {
			t.Errorf("ParseBootArg(%q) = %+v, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(in)) {
			t.Errorf("ParseBootArg(%q): error %q does not quote the value", in, err)
		}
	}
}

func TestBootArgFromCmdline(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    string
		ok      bool
	}{
		{"", "", false},
		{"   \n", "", false},
		{"root=/dev/vda quiet", "", false},
		{"otree=/a", "/a", true},
		{"otree=/a\n", "/a", true},
		{"\troot=x\totree=/a\tquiet\n", "/a", true},
		{"root=x otree=/a otree=/b quiet", "/b", true},
		{`otree="/a b" quiet`, "/a b", true},
		{`"otree=/a b" quiet`, "/a b", true},
		{`x="y otree=/bad" otree=/good`, "/good", true},
		{`x="y otree=/bad"`, "", false},
		{`otree=/good x="otree=/bad z"`, "/good", true},
		{`otree="/unterminated`, "/unterminated", true},
		{"otree=/a=b", "/a=b", true},
		{"otree=", "", true},
		{"otree", "", false},
		{"xotree=/a otree.x=/b", "", false},
		{"otree=/a -- otree=/b", "/a", true},
		{"-- otree=/b", "", false},
		{"--=x otree=/b", "/b", true},
	} {
		got, ok := BootArgFromCmdline(tc.cmdline)
		if got != tc.want || ok != tc.ok {
			t.Errorf("BootArgFromCmdline(%q) = %q, %v; want %q, %v", tc.cmdline, got, ok, tc.want, tc.ok)
		}
	}
}

// testLayout is a hand-built sysroot with the links the doc comment of the
// package describes.
type testLayout struct {
	sysroot string
	id      string // commit of every deployment
	csum    string // bootcsum of os1
}

func newTestLayout(t *testing.T) testLayout {
	t.Helper()
	l := testLayout{
		sysroot: t.TempDir(),
		id:      strings.Repeat("ab", 32),
		csum:    strings.Repeat("cd", 32),
	}
	for _, d := range []string{
		"otree/deploy/os1/var",
		"otree/deploy/os1/deploy/" + l.id + ".0",
		"otree/deploy/os1/deploy/" + l.id + ".1",
		"otree/deploy/os2/var",
		"otree/deploy/os2/deploy/" + l.id + ".0",
		"otree/boot.1.0/os1/" + l.csum,
		"otree/boot.0.1/os1/" + l.csum,
		"etc",
	} {
		l.mkdir(t, d)
	}
	l.write(t, "otree/deploy/os1/deploy/"+l.id+".0.origin", "[origin]\nrefspec=os1\n")
	l.link(t, "boot.1.0", "otree/boot.1")
	l.link(t, "../../../deploy/os1/deploy/"+l.id+".0", "otree/boot.1.0/os1/"+l.csum+"/0")
	l.link(t, "../../../deploy/os1/deploy/"+l.id+".1", "otree/boot.1.0/os1/"+l.csum+"/1")
	// Boot version 0 uses absolute links, which must be read relative to
	// the sysroot.
	l.link(t, "/otree/boot.0.1", "otree/boot.0")
	l.link(t, "/otree/deploy/os1/deploy/"+l.id+".1", "otree/boot.0.1/os1/"+l.csum+"/0")
	return l
}

func (l testLayout) mkdir(t *testing.T, rel string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(l.sysroot, rel), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (l testLayout) write(t *testing.T, rel, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(l.sysroot, rel), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (l testLayout) link(t *testing.T, target, rel string) {
	t.Helper()
	p := filepath.Join(l.sysroot, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func TestResolveBootArg(t *testing.T) {
	l := newTestLayout(t)
	for _, tc := range []struct {
		arg  BootArg
		want string
	}{
		{BootArg{1, "os1", l.csum, 0}, "otree/deploy/os1/deploy/" + l.id + ".0"},
		{BootArg{1, "os1", l.csum, 1}, "otree/deploy/os1/deploy/" + l.id + ".1"},
		{BootArg{0, "os1", l.csum, 0}, "otree/deploy/os1/deploy/" + l.id + ".1"},
	} {
		// A sysroot path that is not clean still gives a clean result.
		got, err := ResolveBootArg(l.sysroot+"/./", tc.arg)
		if err != nil {
			t.Errorf("ResolveBootArg(%v): %v", tc.arg, err)
			continue
		}
		if want := filepath.Join(l.sysroot, tc.want); got != want {
			t.Errorf("ResolveBootArg(%v) = %q, want %q", tc.arg, got, want)
		}
	}
}

func TestResolveBootArgRejects(t *testing.T) {
	l := newTestLayout(t)
	// A complete sysroot elsewhere on the host: links aimed at it must not
	// reach it.
	outside := newTestLayout(t)
	outsideDep := filepath.Join(outside.sysroot, "otree/deploy/os1/deploy", outside.id+".0")
	base := filepath.Base(l.sysroot)
	csumDir := "otree/boot.1.0/os1/" + l.csum + "/"

	for _, tc := range []struct {
		name   string
		serial int
		target string // of otree/boot.1.0/os1/<csum>/<serial>; empty: no link
		extra  [2]string
		want   string // in the error
	}{
		{name: "missing", serial: 9, want: csumDir + "9: no such file or directory"},
		{name: "etc", serial: 2, target: "/etc", want: "resolves to etc, not a deployment"},
		{name: "host etc via dots", serial: 3, target: "../../../../../../../../etc", want: csumDir + "3 -> ../../../../../../../../etc leads outside the sysroot"},
		{name: "out and back in", serial: 4, target: "../../../../../" + base + "/otree/deploy/os1/deploy/" + l.id + ".0", want: "leads outside the sysroot"},
		{name: "absolute host path", serial: 5, target: outsideDep, want: strings.Split(outsideDep, "/")[1] + ": no such file or directory (reached through symlink " + csumDir + "5 -> /"},
		{name: "escaping chain", serial: 6, target: "../../../hop", extra: [2]string{"../..", "otree/hop"}, want: "symlink otree/hop -> ../.. leads outside the sysroot"},
		{name: "other os", serial: 7, target: "../../../deploy/os2/deploy/" + l.id + ".0", want: "not a deployment otree/deploy/os1/deploy/<id>.<serial>"},
		{name: "loop", serial: 8, target: "8", want: "too many levels of symbolic links"},
		{name: "file", serial: 10, target: "../../../deploy/os1/deploy/" + l.id + ".0.origin", want: "is not a directory"},
		{name: "through a file", serial: 11, target: "../../../deploy/os1/deploy/" + l.id + ".0.origin/x", want: "is not a directory"},
		{name: "deployment dir is a link out", serial: 12, target: "../../../deploy/os1/deploy/" + l.id + ".12", extra: [2]string{"/etc", "otree/deploy/os1/deploy/" + l.id + ".12"}, want: "resolves to etc"},
		{name: "deployment parent", serial: 13, target: "../../../deploy/os1/deploy", want: "not a deployment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.target != "" {
				l.link(t, tc.target, csumDir+strconv.Itoa(tc.serial))
			}
			if tc.extra[0] != "" {
				l.link(t, tc.extra[0], tc.extra[1])
			}
			got, err := ResolveBootArg(l.sysroot, BootArg{1, "os1", l.csum, tc.serial})
			if err == nil {
				t.Fatalf("resolved to %q, want an error", got)
			}
			if got != "" {
				t.Errorf("returned %q with the error", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
