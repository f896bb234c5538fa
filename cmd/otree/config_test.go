package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// Processes changing the config at once, each a key or remote of its own:
// none loses another's change.
func TestConfigWritersAtOnce(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	exe, env := otreeBinary(t)
	const n = 8
	var cmds []*exec.Cmd
	for i := 0; i < n; i++ {
		args := []string{"--repo=" + c.path, "config", "set", fmt.Sprintf("test.key%d", i), fmt.Sprint(i)}
		if i%2 == 1 {
			args = []string{"--repo=" + c.path, "remote", "add", fmt.Sprintf("r%d", i), fmt.Sprintf("https://example.com/%d", i)}
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = env
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("otree %s: %v: %s", strings.Join(cmd.Args[1:], " "), err, cmd.Stderr)
		}
	}
	for i := 0; i < n; i++ {
		k, want := fmt.Sprintf("test.key%d", i), fmt.Sprint(i)
		if i%2 == 1 {
			k, want = fmt.Sprintf(`remote "r%d".url`, i), fmt.Sprintf("https://example.com/%d", i)
		}
		if got := strings.TrimSpace(c.run("config", "get", k).stdout); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
}

// A key's section ends at its first dot, as in OSTree, so keys may hold
// dots: a remote with flatpak's xa.* keys, which OSTree writes as
// xa.title in [remote "flathub"], reads back, and `remote delete` removes
// it whole; --group takes its section as it is. (otree split at the last
// dot: it read such keys nowhere, wrote them to a section
// [remote "flathub".xa], and a remote delete left the remote configured.)
func TestConfigKeysWithDots(t *testing.T) {
	c := newCLIMode(t, repo.ModeArchive)
	o := findOSTree(t, "archive")
	c.ok("remote", "add", "--set=xa.title=Flathub", "flathub", "https://example.com/repo")
	c.ok("config", "--group", `remote "flathub"`, "set", "xa.prio", "2")
	c.ok("config", "set", "core.a.b", "c")
	c.ok("config", "--group", "x.y", "set", "z", "w")
	c.ok("config", "set", `remote "org.example.Os".url`, "https://example.org")
	for k, want := range map[string]string{`remote "flathub".xa.title`: "Flathub", `remote "flathub".xa.prio`: "2",
		"core.a.b": "c", `remote "org.example.Os".url`: "https://example.org"} {
		if got := strings.TrimSpace(c.ok("config", "get", k)); got != want {
			t.Errorf("config get %s = %q, want %q", k, got, want)
		}
	}
	if got := strings.TrimSpace(c.ok("config", "--group", "x.y", "get", "z")); got != "w" {
		t.Errorf("config --group x.y get z = %q, want w", got)
	}
	if o != nil {
		// OSTree reads what otree wrote where it put it.
		for _, kv := range [][3]string{{`remote "flathub"`, "xa.title", "Flathub"}, {`remote "flathub"`, "xa.prio", "2"},
			{"core", "a.b", "c"}, {"x.y", "z", "w"}} {
			if got := strings.TrimSpace(o.okIn(c.path, "config", "--group", kv[0], "get", kv[1])); got != kv[2] {
				t.Errorf("ostree config --group %s get %s = %q, want %q", kv[0], kv[1], got, kv[2])
			}
		}
	}
	c.ok("remote", "delete", "flathub")
	if out := c.ok("remote", "list"); strings.Contains(out, "flathub") {
		t.Errorf("remote delete flathub left it configured: remote list says\n%s", out)
	}
	if o != nil {
		// A remote OSTree added with such a key goes whole too.
		o.okIn(c.path, "remote", "add", "--no-gpg-verify", "--set=xa.title=Flathub", "flathub", "https://example.com/repo")
		if got := strings.TrimSpace(c.ok("config", "get", `remote "flathub".xa.title`)); got != "Flathub" {
			t.Errorf("config get of OSTree's xa.title = %q, want Flathub", got)
		}
		c.ok("remote", "delete", "flathub")
		if out := c.ok("remote", "list"); strings.Contains(out, "flathub") {
			t.Errorf("remote delete flathub left OSTree's remote configured: remote list says\n%s", out)
		}
	}
}

// Config values are read and written with GLib's key-file escapes, as
// OSTree's are: a value with a backslash that otree sets, OSTree reads as
// set; values OSTree sets with a backslash, a tab or spaces at either end
// (written escaped), otree reads as set; and otree rewriting the file
// keeps them so.
func TestConfigValueEscapes(t *testing.T) {
	c := newCLIMode(t, repo.ModeArchive)
	o := findOSTree(t, "archive")
	c.ok("config", "set", "core.mine", `c:\path\s`)
	if got := strings.TrimSpace(c.ok("config", "get", "core.mine")); got != `c:\path\s` {
		t.Errorf("config get core.mine = %q, want it as set", got)
	}
	if o == nil {
		return
	}
	if got := strings.TrimSuffix(o.okIn(c.path, "config", "get", "core.mine"), "\n"); got != `c:\path\s` {
		t.Errorf("ostree config get core.mine = %q, want it as otree set it", got)
	}
	theirs := map[string]string{"core.lead": "  two spaces", "core.tab": "a\tb", "core.slash": `x\y`}
	for k, v := range theirs {
		o.okIn(c.path, "config", "set", k, v)
	}
	c.ok("config", "set", "core.touch", "1") // otree rewrites the file
	for k, v := range theirs {
		if got := strings.TrimSuffix(c.ok("config", "get", k), "\n"); got != v {
			t.Errorf("config get %s of OSTree's value = %q, want %q", k, got, v)
		}
		if got := strings.TrimSuffix(o.okIn(c.path, "config", "get", k), "\n"); got != v {
			t.Errorf("after otree rewrote the file, ostree config get %s = %q, want %q", k, got, v)
		}
	}
}

// A value with spaces at either end, a tab or a line break, which OSTree's
// config set takes, otree's takes too: written escaped, it reads back as
// set, in otree and in OSTree, and so do \v and U+00A0 at an end, which
// GLib does not trim. Whitespace that reading would trim and no escape
// keeps (\f at an end) is refused.
func TestConfigSetEdgeWhitespace(t *testing.T) {
	c := newCLIMode(t, repo.ModeArchive)
	o := findOSTree(t, "archive")
	values := map[string]string{"core.lead": "  two", "core.trail": "x ", "core.tab": "\tx", "core.lines": "a\nb\r", "core.nbsp": "\u00a0x\u00a0", "core.vt": "\vx\v"}
	for k, v := range values {
		c.ok("config", "set", k, v)
	}
	for k, v := range values {
		if got := strings.TrimSuffix(c.ok("config", "get", k), "\n"); got != v {
			t.Errorf("config get %s = %q, want %q as set", k, got, v)
		}
		if o == nil {
			continue
		}
		if got := strings.TrimSuffix(o.okIn(c.path, "config", "get", k), "\n"); got != v {
			t.Errorf("ostree config get %s = %q, want %q as otree set it", k, got, v)
		}
	}
	for _, v := range []string{"\fx", "x\f"} {
		c.fails(exitUsage, []string{"read back unchanged"}, "config", "set", "core.odd", v)
	}
}

// A negative number given as an argument is read as an option, as in
// OSTree; the error says how to pass it, and that way sets it.
func TestConfigSetNegativeValueHint(t *testing.T) {
	c := newCLI(t)
	c.fails(exitUsage, []string{"unknown shorthand flag: '1'", "hint: put -- before the arguments", "otree config set -- ARG..."}, "config", "set", "core.lock-timeout-secs", "-1")
	c.ok("config", "set", "--", "core.lock-timeout-secs", "-1")
	if got := c.ok("config", "get", "core.lock-timeout-secs"); got != "-1\n" {
		t.Errorf("config get after set -- KEY -1 = %q", got)
	}
	// A letter is an unknown option, with no such hint.
	if res := c.run("log", "-x", "main"); strings.Contains(res.stderr, "put --") {
		t.Errorf("log -x: %q", res.stderr)
	}
}

// A value OSTree writes with spaces at its end (GLib escapes only those
// at the start) keeps them, for OSTree, when otree rewrites the file for
// another key; otree reads it trimmed, as FORMAT.md §7 says.
func TestConfigRewriteKeepsOSTreeTrailingSpaces(t *testing.T) {
	c := newCLIMode(t, repo.ModeArchive)
	o := findOSTree(t, "archive")
	if o == nil {
		t.Skip("no ostree")
	}
	o.okIn(c.path, "config", "set", "core.trail", "x  ")
	o.okIn(c.path, "config", "set", `remote "r".xa.title`, " Title ")
	c.ok("config", "set", "core.touch", "1") // otree rewrites the file
	for k, v := range map[string]string{"core.trail": "x  ", `remote "r".xa.title`: " Title "} {
		if got := strings.TrimSuffix(o.okIn(c.path, "config", "get", k), "\n"); got != v {
			t.Errorf("after otree rewrote the file, ostree config get %s = %q, want %q", k, got, v)
		}
	}
	if got := c.ok("config", "get", "core.trail"); got != "x\n" {
		t.Errorf("config get core.trail = %q, want %q", got, "x\n")
	}
}
