package deploy

import (
	"slices"
	"strings"
	"testing"
)

// balanced tells whether every argument has its quotes closed, so that
// arguments after it stay arguments of their own.
func balanced(args []string) bool {
	for _, a := range args {
		if strings.Count(a, `"`)%2 != 0 {
			return false
		}
	}
	return true
}

// FuzzSplitArgs checks that splitting a command line keeps every byte of
// each argument and that the arguments joined again split the same way,
// at the same whitespace the kernel splits at.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{
		"otree=/otree/boot.0/os/abc/0 root=LABEL=root quiet",
		`a="b c" d`,
		"console=ttyS0,115200\tconsole=tty0\n",
		"quiet\rsplash",
		`x="unclosed y`,
		"caf\xe9 \xff=1",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := splitArgs(s)
		for _, a := range args {
			if a == "" || !strings.Contains(s, a) {
				t.Fatalf("splitArgs(%q) gives %q, not a piece of the line", s, a)
			}
		}
		if again := splitArgs(strings.Join(args, " ")); !slices.Equal(again, args) {
			t.Fatalf("splitArgs(%q) = %q; joined, they split as %q", s, args, again)
		}
		// Where the kernel finds arguments: the same number, so each edit
		// names what the kernel sees.
		var kernel []string
		for rest := s; strings.TrimLeftFunc(rest, func(r rune) bool { return r < 0x80 && bootArgIsSpace(byte(r)) }) != ""; {
			var p string
			p, _, _, rest = bootArgNextParam(rest)
			kernel = append(kernel, p)
		}
		if len(kernel) != len(args) {
			t.Fatalf("splitArgs(%q) = %q, but the kernel finds %d arguments (%q)", s, args, len(kernel), kernel)
		}
	})
}

// FuzzKargsEdit checks that an edit accepted gives a command line whose
// arguments are those edited: an appended argument is one argument at the
// end, a replaced key holds only the new value, a deleted key is gone.
func FuzzKargsEdit(f *testing.F) {
	f.Add("root=LABEL=root quiet", "console=ttyS0", "quiet", "root=LABEL=other")
	f.Add(`a="b c" d`, `e="f g"`, "a", "d=1")
	f.Add("x=1 x=2", `y="z`, "x=2", "x=2=3")
	f.Add("", `a b"`, "b", "c")
	f.Add("", "a=\"b\nc\"", "b", "c")
	f.Fuzz(func(t *testing.T, cmdline, app, del, repl string) {
		old := splitArgs(cmdline)
		if !balanced(old) {
			return // an unclosed quote already takes in all that follows
		}
		if out, err := (KargsEdit{Append: []string{app}}).apply(cmdline); err == nil {
			if strings.Contains(out, "\n") {
				t.Fatalf("appending %q to %q gives %q, which breaks the options line", app, cmdline, out)
			}
			if got, want := splitArgs(out), append(slices.Clone(old), app); !slices.Equal(got, want) {
				t.Fatalf("appending %q to %q gives %q, whose arguments are %q, not %q", app, cmdline, out, got, want)
			}
		}
		if out, err := (KargsEdit{Replace: []string{repl}}).apply(cmdline); err == nil {
			key := argKey(repl)
			var vals []string
			for _, a := range splitArgs(out) {
				if argKey(a) == key {
					vals = append(vals, a)
				}
			}
			_, _, oldNew := strings.Cut(strings.TrimPrefix(repl, key+"="), "=")
			if !oldNew && !slices.Equal(vals, []string{repl}) {
				t.Fatalf("replacing %q in %q gives %q, whose %s arguments are %q", repl, cmdline, out, key, vals)
			}
		}
		if !strings.Contains(del, "=") {
			if out, err := (KargsEdit{Delete: []string{del}}).apply(cmdline); err == nil {
				for _, a := range splitArgs(out) {
					if argKey(a) == del {
						t.Fatalf("deleting %q from %q leaves %q", del, cmdline, out)
					}
				}
			}
		}
	})
}

// FuzzParseEntry checks that a boot entry that parses is written back in a
// form that parses to the same entry.
func FuzzParseEntry(f *testing.F) {
	real := (&bootEntry{
		title:      "Debian GNU/Linux 12 (bookworm) 1.0 (otree:debian:0)",
		version:    2,
		options:    "otree=/otree/boot.1/debian/8f3a/0 root=UUID=1234 rw quiet",
		linux:      "/otree/debian-8f3a/vmlinuz-6.1.0-18-amd64",
		initrds:    []string{"/otree/debian-8f3a/initramfs-6.1.0-18-amd64.img", "/otree/initramfs-overlays/ab.img"},
		devicetree: "/otree/debian-8f3a/devicetree-6.1.0-18-amd64",
		fdtdir:     "/otree/debian-8f3a/dtb",
	}).render()
	f.Add(real)
	f.Add([]byte("# comment\ntitle  Fedora\nversion 1\nlinux /vmlinuz\noptions a=1\noptions b\n"))
	f.Add([]byte("title\tX\nversion\t3\nlinux\t/k\noptions\tquiet\n"))
	f.Add([]byte("version 1\nlinux /k\nmachine-id 1234\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseEntry("entries", "otree-1-os.conf", data)
		if err != nil {
			return
		}
		out := e.render()
		e2, err := parseEntry("entries", "otree-1-os.conf", out)
		if err != nil {
			t.Fatalf("entry %q written as %q does not parse: %v", data, out, err)
		}
		if e2.title != e.title || e2.version != e.version || e2.options != e.options || e2.linux != e.linux ||
			!slices.Equal(e2.initrds, e.initrds) || e2.devicetree != e.devicetree || e2.fdtdir != e.fdtdir {
			t.Fatalf("entry %q written as %q parses as %+v, not %+v", data, out, e2, e)
		}
	})
}

// FuzzOrigin checks that an origin file, with otree's keys set to values a
// deployment can have, is written in a form that reads back with those
// values, and that writing it again changes nothing.
func FuzzOrigin(f *testing.F) {
	f.Add([]byte("[origin]\nrefspec=origin:os/x86_64/stable\n"), "origin:os/x86_64/stable", "", true)
	f.Add([]byte("[origin]\nrefspec=r:b\nunconfigured-state=x\n[otree]\npinned=true\n[rpmostree]\npackages=a;b\n"), "os:main", "", false)
	f.Add([]byte("# c\n; d\n[[origin]]\nx=1\n"), "main", "0123abcd", false)
	f.Add([]byte("[origin ]\nrefspec = main \r\n"), "main", "", true)
	f.Fuzz(func(t *testing.T, data []byte, refspec, override string, pinned bool) {
		o, err := parseOrigin("o", data)
		if err != nil {
			return
		}
		if repoRefOK(refspec) {
			o.Refspec = refspec
		}
		if override == "" || strings.Trim(override, "0123456789abcdef") == "" {
			o.OverrideCommit = override
		}
		o.Pinned = pinned
		out := o.encode()
		o2, err := parseOrigin("o", out)
		if err != nil {
			t.Fatalf("origin %q written as %q does not parse: %v", data, out, err)
		}
		if o2.Refspec != o.Refspec || o2.OverrideCommit != o.OverrideCommit || o2.Unlocked != o.Unlocked || o2.Pinned != o.Pinned {
			t.Fatalf("origin %q with %q written as %q reads back as %+v, not %+v", data, refspec, out, o2, o)
		}
		if out2 := o2.encode(); string(out2) != string(out) {
			t.Fatalf("origin written again changed:\n %q\n %q", out, out2)
		}
	})
}

// repoRefOK tells whether s could be a deployment's refspec.
func repoRefOK(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == ' ' || r == '=' || r == '[' || r == ']' || r == 0x7f })
}

// FuzzParseBootArg checks that an otree= value that parses is the one its
// parts format to, and that it is found on a command line as written.
func FuzzParseBootArg(f *testing.F) {
	f.Add("/otree/boot.1/debian/8f3a09/0")
	f.Add("/otree/boot.0/os/abc/12")
	f.Add("/otree/boot.0/os/abc/012")
	f.Add("/otree/boot.1/a\"b/0/1")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseBootArg(s)
		if err != nil {
			return
		}
		if a.String() != s {
			t.Fatalf("ParseBootArg(%q).String() = %q", s, a.String())
		}
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x80 && bootArgIsSpace(byte(r)) || r == '"' }) {
			return
		}
		if v, ok := BootArgFromCmdline("otree=" + s + " quiet"); !ok || v != s {
			t.Fatalf("otree=%s on a command line reads as %q, %v", s, v, ok)
		}
	})
}

// A tab separates key and value as a space does, as the Boot Loader
// Specification and OSTree's reader have it: an entry an editor indented
// with tabs keeps its options.
func TestParseEntryTabs(t *testing.T) {
	e, err := parseEntry("entries", "otree-1-os.conf", []byte("title\tOS\nversion\t3\nlinux \t/k\noptions\totree=/otree/boot.0/os/ab/0 quiet\ninitrd\t/i\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e.title != "OS" || e.version != 3 || e.linux != "/k" || e.options != "otree=/otree/boot.0/os/ab/0 quiet" || !slices.Equal(e.initrds, []string{"/i"}) {
		t.Errorf("parsed %+v", e)
	}
}
