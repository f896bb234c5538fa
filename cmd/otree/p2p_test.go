package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/otree/otree/internal/testtree"
)

// runIn runs otree on the repository at repoPath and fails the test on a
// non-zero exit.
func runIn(t *testing.T, repoPath string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"--repo=" + repoPath}, args...), strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("otree %s: exit %d, stderr %q", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

// An offline update: a new commit reaches a booted machine on a USB stick.
// create-usb writes it on the build machine; on the booted machine, with
// the stick mounted, find-remotes --pull fetches it (the mount finder reads
// the machine's real mount table) and upgrade --deploy-only deploys it.
func TestBootedUpdateFromUSBStick(t *testing.T) {
	a := newAdmin(t)
	b := newBooter(t, a)
	const coll = "org.example.Os"
	build := filepath.Join(t.TempDir(), "build")
	runIn(t, build, "init", "--mode=archive", "--collection-id="+coll)
	tree := t.TempDir()
	writeBootableTree(t, tree, "6.1.0-1", "one\n")
	key := filepath.Join(t.TempDir(), "os.key")
	pub := strings.TrimSpace(runIn(t, build, "sign", "--generate-key="+key))
	v1 := strings.TrimSpace(runIn(t, build, "commit", "-b", "os/stable", "--timestamp=2026-01-01T00:00:00Z", tree))
	runIn(t, build, "sign", "--keys-file="+key, v1)

	// The machine follows origin:os/stable, whose server it cannot reach,
	// and trusts the vendor's key.
	a.ok("remote", "add", "--collection-id="+coll, "--sign-verify=ed25519=inline:"+pub, "origin", "http://127.0.0.1:9/")
	a.ok("pull-local", "--remote=origin", build, "os/stable")
	a.ok("admin", "deploy", "origin:os/stable")
	booted := a.status().Deployments[0].Path

	tree2 := t.TempDir()
	writeBootableTree(t, tree2, "6.1.0-2", "two\n")
	v2 := strings.TrimSpace(runIn(t, build, "commit", "-b", "os/stable", "--timestamp=2026-02-01T00:00:00Z", tree2))
	runIn(t, build, "sign", "--keys-file="+key, v2)
	stick := t.TempDir()
	out := runIn(t, build, "create-usb", stick, coll, "os/stable")
	if !strings.Contains(out, "Copied 1/1 refs of "+coll) {
		t.Errorf("create-usb printed %q", out)
	}

	usb := filepath.Join(t.TempDir(), "usb")
	out = b.boot(booted, `
mkdir -p "$USB" && mount -t tmpfs usb "$USB" && cp -a "$STICK/." "$USB/"
"$BIN" --repo="$PHYS/otree/repo" find-remotes --finders=mount `+coll+` os/stable `+coll+` os/none
"$BIN" --repo="$PHYS/otree/repo" find-remotes --finders=mount --pull `+coll+` os/stable
otree admin upgrade --deploy-only
echo status:; otree admin status --json
`, "USB="+usb, "STICK="+stick)
	wantLines(t, out,
		"Result 0: file://"+filepath.Join(usb, ".otree/repos.d", coll),
		" - Finder: mount",
		" - Remote: origin",
		"    - ("+coll+", os/stable) = "+v2+" (2026-02-01T00:00:00Z)",
		"    - ("+coll+", os/none) = (not found)",
		"1/2 refs were found.",
		" - ("+coll+", os/none)",
		"Pulled 1/1 refs successfully.")
	st := bootedStatus(t, out)
	if len(st) != 2 || st[0].Commit.String() != v2 || st[1].Commit.String() != v1 || !st[1].Booted {
		t.Errorf("after the upgrade: %+v, want %s staged as default over the booted %s", st, v2, v1)
	}
}

func TestP2PUsage(t *testing.T) {
	c := newCLI(t)
	c.fails(exitUsage, []string{"COLLECTION-ID REF pairs"}, "find-remotes", "org.example.Os", "a", "org.example.Os")
	c.fails(exitUsage, []string{"invalid collection ID"}, "find-remotes", "example", "a")
	c.fails(exitUsage, []string{"lan"}, "find-remotes", "--finders=lan", "org.example.Os", "a")
	c.fails(exitError, []string{`unknown finder "usb"`}, "find-remotes", "--finders=usb", "org.example.Os", "a")
	// An empty list, or a finder named twice, is refused, as OSTree
	// refuses them.
	c.fails(exitUsage, []string{"--finders", "empty"}, "find-remotes", "--finders=", "org.example.Os", "a")
	c.fails(exitUsage, []string{"--finders", "config is named twice"}, "find-remotes", "--finders=config,mount,config", "org.example.Os", "a")
	c.fails(exitUsage, []string{"single ref"}, "create-usb", "--commit=abc", t.TempDir(), "org.example.Os", "a", "org.example.Os", "b")
	c.fails(exitError, []string{"(org.example.Os, a): not found here"}, "create-usb", t.TempDir(), "org.example.Os", "a")
	c.fails(exitUsage, []string{"--destination-repo holds one collection", "org.example.Os, org.example.Apps"}, "create-usb", "--destination-repo=x", t.TempDir(), "org.example.Os", "a", "org.example.Apps", "b")
	// A collection no remote has is passed over, with a warning: line, as
	// every command writes them, and a hint.
	res := c.run("find-remotes", "--finders=config", "org.example.Os", "a")
	if !strings.HasPrefix(res.stderr, "warning: collection org.example.Os: no configured remote has it as collection-id") ||
		!strings.Contains(res.stderr, "hint: `otree remote add --collection-id=org.example.Os NAME URL`") {
		t.Errorf("find-remotes of a collection no remote has: %q", res.stderr)
	}
	// A repos.d entry where --destination-repo's link would go is left
	// alone.
	c.ok("config", "set", "core.collection-id", "org.example.Os")
	c.commitTree("a", source(t, fixture), "one", 1700000000)
	stick := t.TempDir()
	entry := filepath.Join(stick, ".otree/repos.d/org.example.Os")
	if err := os.MkdirAll(entry, 0o755); err != nil {
		t.Fatal(err)
	}
	c.fails(exitError, []string{entry + " is not a link to", "hint: remove it, or drop --destination-repo"}, "create-usb", "--destination-repo=x", stick, "org.example.Os", "a")
}

// The config finder from the command line: a served repository of the
// collection, its remote configured with the collection ID; --cache-dir
// keeps its summary where it is told.
func TestFindRemotesConfig(t *testing.T) {
	const coll = "org.example.Os"
	src := newCLI(t)
	src.ok("config", "set", "core.collection-id", coll)
	id := src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	src.ok("summary", "-u")
	url := serve(t, src, nil)
	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "--collection-id="+coll, "origin", url)
	cache := filepath.Join(t.TempDir(), "cache")
	out := dst.ok("find-remotes", "--finders=config", "--cache-dir="+cache, "--pull", coll, "os/stable")
	for _, want := range []string{"Result 0: " + url + "\n", " - Finder: config\n", "    - (" + coll + ", os/stable) = " + id.String() + " (2023-11-14T22:13:20Z)\n", "1/1 refs were found.\n", "Pulled 1/1 refs successfully.\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("find-remotes output lacks %q:\n%s", want, out)
		}
	}
	if got := strings.TrimSpace(dst.ok("rev-parse", "origin:os/stable")); got != id.String() {
		t.Errorf("origin:os/stable = %s, want %s", got, id)
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "origin-*.summary")); len(m) != 1 {
		t.Errorf("--cache-dir holds %q, want the summary", m)
	}
}

// find-remotes that a signal stops exits 128+signal saying it changed
// nothing, rather than listing the remotes it stopped asking as ones
// without the ref (exit 0, "No results.").
func TestFindRemotesInterrupted(t *testing.T) {
	c := newCLI(t)
	c.ok("remote", "add", "--no-gpg-verify", "--collection-id=org.example.Os", "origin", "http://127.0.0.1:9/")
	ctx, stop := context.WithCancelCause(context.Background())
	stop(interrupted{syscall.SIGINT})
	var out, errb bytes.Buffer
	code := run(ctx, []string{"--repo=" + c.path, "find-remotes", "--finders=config", "org.example.Os", "os/stable"}, strings.NewReader(""), &out, &errb)
	if code != 130 || !strings.Contains(errb.String(), "interrupted by SIGINT: find-remotes stopped before its search ended: it changed nothing") {
		t.Errorf("find-remotes interrupted: exit %d, stdout %q, stderr %q; want 130 saying it stopped", code, out.String(), errb.String())
	}
}

// create-usb that a signal stops says what it left, as every command a
// signal stops does, and running it again completes the copy.
func TestCreateUSBInterrupted(t *testing.T) {
	c := newCLI(t)
	c.ok("config", "set", "core.collection-id", "org.example.Os")
	c.commitTree("os/stable", source(t, testtree.Tree{"a": testtree.File("a", 0o644)}), "one", 1)
	stick := t.TempDir()
	ctx, stop := context.WithCancelCause(context.Background())
	stop(interrupted{syscall.SIGINT})
	var out, errb bytes.Buffer
	code := run(ctx, []string{"--repo=" + c.path, "create-usb", stick, "org.example.Os", "os/stable"}, strings.NewReader(""), &out, &errb)
	if code != 130 || !strings.Contains(errb.String(), "interrupted by SIGINT: create-usb stopped: what it copied stays on the mount, and running it again completes the copy") {
		t.Errorf("create-usb interrupted: exit %d, stderr %q; want 130 saying what it left", code, errb.String())
	}
	if out := c.ok("create-usb", stick, "org.example.Os", "os/stable"); !strings.Contains(out, "Copied 1/1 refs") {
		t.Errorf("create-usb again: %q", out)
	}
}
