package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/deploy"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo/remote"
	"golang.org/x/sys/unix"
)

// admin runs `otree admin --sysroot=DIR ARGS...` in-process.
type admin struct {
	t   *testing.T
	sys string
}

func (a *admin) run(args ...string) result {
	a.t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"--repo=" + filepath.Join(a.sys, "otree/repo")}, args...)
	if args[0] == "admin" {
		full = append([]string{"admin", "--sysroot=" + a.sys}, args[1:]...)
	}
	code := run(context.Background(), full, strings.NewReader(""), &out, &errb)
	return result{out.String(), errb.String(), code}
}

func (a *admin) ok(args ...string) string {
	a.t.Helper()
	res := a.run(args...)
	if res.code != 0 {
		a.t.Fatalf("otree %s: exit %d, stderr %q", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

func (a *admin) fails(code int, want string, args ...string) {
	a.t.Helper()
	res := a.run(args...)
	if res.code != code || !strings.Contains(res.stderr, want) {
		a.t.Errorf("otree %s: exit %d stderr %q, want exit %d naming %q", strings.Join(args, " "), res.code, res.stderr, code, want)
	}
}

type statusJSON struct {
	Deployments []struct {
		Index          int    `json:"index"`
		Commit         string `json:"commit"`
		Origin         string `json:"origin"`
		OverrideCommit string `json:"override_commit"`
		Pinned         bool   `json:"pinned"`
		Rollback       bool   `json:"rollback"`
		Path           string `json:"path"`
		Options        string `json:"options"`
		Drift          []struct {
			Kind string `json:"kind"`
			Path string `json:"path"`
		} `json:"drift"`
	} `json:"deployments"`
}

func (a *admin) status(args ...string) statusJSON {
	a.t.Helper()
	var st statusJSON
	res := a.run(append([]string{"admin", "status", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		a.t.Fatalf("status --json: %v (exit %d)\n%s", err, res.code, res.stdout)
	}
	return st
}

func newAdmin(t *testing.T) *admin {
	if os.Geteuid() != 0 {
		t.Skip("deployments need root: the system repository is bare")
	}
	a := &admin{t: t, sys: filepath.Join(t.TempDir(), "sysroot")}
	testtree.ClearImmutable(t, a.sys)
	a.ok("admin", "init-fs", a.sys)
	a.ok("admin", "os-init", "cli")
	return a
}

func (a *admin) commit(motd string, kver string) string {
	a.t.Helper()
	dir := a.t.TempDir()
	writeBootableTree(a.t, dir, kver, motd)
	return strings.TrimSpace(a.ok("commit", "-b", "cli/stable", dir))
}

// --print-current-dir prints the deployment under the sysroot as given,
// as OSTree's does, not under the physical root its otree/ resolves to:
// on a booted system /otree/deploy/..., through a link to a sysroot the
// link's path.
func TestAdminPrintCurrentDirUnderSysrootAsGiven(t *testing.T) {
	a := newAdmin(t)
	c := a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(a.sys, link); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"admin", "--sysroot=" + link, "--print-current-dir"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("admin --print-current-dir: exit %d, %s", code, errb.String())
	}
	if got, want := strings.TrimSpace(out.String()), filepath.Join(link, "otree/deploy/cli/deploy", c+".0"); got != want {
		t.Errorf("--print-current-dir of the sysroot through %s = %q, want %q", link, got, want)
	}
}

// set-origin refusing to change a configured remote's url names that url
// without its password.
func TestAdminSetOriginHidesConfiguredPassword(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	a.ok("admin", "set-origin", "mirror", "http://user:s3cret@example.invalid/repo", "cli/stable")
	res := a.run("admin", "set-origin", "mirror", "http://elsewhere.invalid/repo", "cli/stable")
	if res.code != 1 || !strings.Contains(res.stderr, "http://user:***@example.invalid/repo") || strings.Contains(res.stderr, "s3cret") {
		t.Errorf("set-origin to another url: exit %d, stderr %q; want the configured url shown without its password", res.code, res.stderr)
	}
}

// A deployment index flag below -1 (its unset value) is refused, naming
// the flag, as OSTree refuses it, rather than taken as left out: the
// default deployment's origin and kernel arguments stay as they were.
func TestAdminNegativeIndexFlags(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg=root=LABEL=root", "cli/stable")
	a.fails(exitUsage, "--index=-2: want a deployment index", "admin", "set-origin", "--index=-2", "elsewhere", "http://example.invalid/repo", "cli/stable")
	a.fails(exitUsage, "--deployment=-2: want a deployment index", "admin", "kargs", "--deployment=-2", "--append=x=1")
	a.fails(exitUsage, "--deployment=-2: want a deployment index", "admin", "config-diff", "--deployment=-2")
	a.fails(exitUsage, "--into=-1: want a deployment index", "admin", "config-diff", "--into=-1")
	if st := a.status(); st.Deployments[0].Origin != "cli/stable" || st.Deployments[0].Options != "root=LABEL=root" {
		t.Errorf("after refused edits: origin %q, options %q", st.Deployments[0].Origin, st.Deployments[0].Options)
	}
	// -1 is the unset value, as in OSTree: the default deployment.
	a.ok("admin", "kargs", "--deployment=-1", "--append=x=1")
	if st := a.status(); st.Deployments[0].Options != "root=LABEL=root x=1" {
		t.Errorf("kargs --deployment=-1: options %q", st.Deployments[0].Options)
	}
}

// upgrade and switch refuse a --timeout of zero or less, which the pull
// would take as its default, naming the flag.
func TestAdminTimeoutFlag(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	a.fails(exitUsage, "--timeout=0s: want a duration over 0", "admin", "upgrade", "--timeout=0")
	a.fails(exitUsage, "--timeout=-1s: want a duration over 0", "admin", "switch", "--timeout=-1s", "cli/stable")
}

func TestAdminCommands(t *testing.T) {
	a := newAdmin(t)
	c1 := a.commit("one\n", "6.1.0-1")
	out := a.ok("admin", "deploy", "--karg=root=LABEL=root", "--karg-append=console=ttyS0", "cli/stable")
	if !strings.Contains(out, "Deployed cli "+c1+".0 as deployment 0 (full switch)") {
		t.Errorf("deploy printed %q", out)
	}
	st := a.status()
	if len(st.Deployments) != 1 || st.Deployments[0].Commit != c1 || st.Deployments[0].Origin != "cli/stable" ||
		st.Deployments[0].Options != "root=LABEL=root console=ttyS0" {
		t.Fatalf("status = %+v", st)
	}
	d1 := st.Deployments[0].Path

	// The admin edits /etc; config-diff shows it.
	os.WriteFile(filepath.Join(d1, "etc/motd"), []byte("local\n"), 0o644)
	os.WriteFile(filepath.Join(d1, "etc/added.conf"), []byte("x\n"), 0o644)
	var cd struct {
		Etc []struct{ Path, Fate, Local string } `json:"etc"`
	}
	if err := json.Unmarshal([]byte(a.ok("admin", "config-diff", "--json")), &cd); err != nil {
		t.Fatal(err)
	}
	if len(cd.Etc) != 2 || cd.Etc[0].Path != "/etc/added.conf" || cd.Etc[0].Local != "A" || cd.Etc[1].Path != "/etc/motd" || cd.Etc[1].Local != "M" {
		t.Errorf("config-diff = %+v", cd.Etc)
	}
	if got := a.ok("admin", "config-diff", "--json", "--os=cli"); got != a.ok("admin", "config-diff", "--json") {
		t.Errorf("config-diff --os=cli differs from the merge deployment's:\n%s", got)
	}
	a.fails(1, "nope", "admin", "config-diff", "--os=nope")
	a.fails(2, "--os", "admin", "config-diff", "--os=cli", "--deployment=0")

	// A new default for motd that the admin also changed: both, kept local.
	c2 := a.commit("two\n", "6.1.0-1")
	var dep struct {
		Etc    []struct{ Path, Fate string } `json:"etc"`
		Switch string                        `json:"switch"`
	}
	if err := json.Unmarshal([]byte(a.ok("admin", "deploy", "--json", "cli/stable")), &dep); err != nil {
		t.Fatal(err)
	}
	fates := map[string]string{}
	for _, e := range dep.Etc {
		fates[e.Path] = e.Fate
	}
	if fates["/etc/motd"] != "both" || fates["/etc/added.conf"] != "local" {
		t.Errorf("fates = %v", fates)
	}
	st = a.status()
	if len(st.Deployments) != 2 || st.Deployments[0].Commit != c2 || !st.Deployments[1].Rollback {
		t.Fatalf("status = %+v", st)
	}
	d2 := st.Deployments[0].Path
	if b, _ := os.ReadFile(filepath.Join(d2, "etc/motd")); string(b) != "local\n" {
		t.Errorf("etc/motd = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(d2, "usr/etc/motd")); string(b) != "two\n" {
		t.Errorf("usr/etc/motd = %q", b)
	}
	text := a.ok("admin", "status")
	if !strings.HasPrefix(text, "  cli "+c2+".0\n") || !strings.Contains(text, "\n  cli "+c1+".0\n") {
		t.Errorf("status text:\n%s", text)
	}

	// rollback twice restores the order.
	if out := a.ok("admin", "rollback"); !strings.Contains(out, "Default is now cli "+c1+".0") {
		t.Errorf("rollback printed %q", out)
	}
	if a.status().Deployments[0].Commit != c1 {
		t.Error("rollback did not switch")
	}
	a.ok("admin", "rollback")
	if a.status().Deployments[0].Commit != c2 {
		t.Error("second rollback did not restore")
	}
	a.ok("admin", "set-default", "1")
	if a.status().Deployments[0].Commit != c1 {
		t.Error("set-default 1 did not switch")
	}
	a.ok("admin", "set-default", "1")

	// kargs
	if out := a.ok("admin", "kargs"); out != "root=LABEL=root console=ttyS0\n" {
		t.Errorf("kargs = %q", out)
	}
	a.ok("admin", "kargs", "--delete=console", "--append=quiet")
	if out := a.ok("admin", "kargs"); out != "root=LABEL=root quiet\n" {
		t.Errorf("kargs after edit = %q", out)
	}

	// pin, undeploy, printing what OSTree's print.
	if out := a.ok("admin", "pin", "1"); out != "Deployment 1 is now pinned\n" {
		t.Errorf("pin printed %q", out)
	}
	if !a.status().Deployments[1].Pinned {
		t.Error("pin did not stick")
	}
	if out := a.ok("admin", "pin", "0", "1"); out != "Deployment 0 is now pinned\nDeployment 1 is already pinned\n" {
		t.Errorf("pin 0 1 printed %q", out)
	}
	a.fails(1, "pinned", "admin", "undeploy", "1")
	if out := a.ok("admin", "pin", "--unpin", "0", "1"); out != "Deployment 0 is now unpinned\nDeployment 1 is now unpinned\n" {
		t.Errorf("pin --unpin 0 1 printed %q", out)
	}
	a.fails(1, "sysroot "+a.sys+": no such deployment 5", "admin", "undeploy", "5")
	a.fails(1, "sysroot "+a.sys+": no such deployment 5", "admin", "pin", "5")
	a.fails(2, "not a number", "admin", "undeploy", "x")
	gone := a.status().Deployments[1].Commit
	undeployed := regexp.MustCompile(`^Bootloader updated; bootconfig swap: yes; bootversion: boot\.\d\.\d, deployment count change: -1\n` +
		`Freed objects: .*\nDeleted deployment ` + gone + `\.0\n$`)
	if out := a.ok("admin", "undeploy", "1"); !undeployed.MatchString(out) {
		t.Errorf("undeploy printed %q", out)
	}
	if n := len(a.status().Deployments); n != 1 {
		t.Errorf("%d deployments after undeploy", n)
	}
	if _, err := os.Stat(d1); err == nil {
		t.Error("undeployed directory is still there")
	}
	a.fails(1, "nothing to roll back to", "admin", "rollback")

	// upgrade: nothing new, then a new commit, then a refused downgrade.
	if out := a.ok("admin", "upgrade"); out != "No update available.\n" {
		t.Errorf("upgrade printed %q", out)
	}
	c3 := a.commit("three\n", "6.1.0-1")
	a.ok("admin", "upgrade")
	if a.status().Deployments[0].Commit != c3 {
		t.Error("upgrade did not deploy the new commit")
	}
	a.ok("reset", "cli/stable", c2)
	a.fails(1, "\nhint: pass --allow-downgrade to deploy it\n", "admin", "upgrade")
	a.fails(1, "commit "+c2+" of cli/stable", "admin", "upgrade")
	a.ok("admin", "upgrade", "--allow-downgrade")
	if a.status().Deployments[0].Commit != c2 {
		t.Error("upgrade --allow-downgrade did not deploy")
	}

	// status --verify reports drift in /usr and fails.
	d := a.status().Deployments[0].Path
	os.Remove(filepath.Join(d, "usr/bin/sh"))
	res := a.run("admin", "status", "--verify")
	if res.code != 1 || !strings.Contains(res.stdout, "drift: D /usr/bin/sh") {
		t.Errorf("status --verify: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	st = a.status("--verify")
	if len(st.Deployments[0].Drift) != 1 || st.Deployments[0].Drift[0].Path != "/usr/bin/sh" {
		t.Errorf("drift = %+v", st.Deployments[0].Drift)
	}

	var cl struct {
		Prune *struct {
			Deleted int `json:"deleted_objects"`
		} `json:"prune"`
	}
	if err := json.Unmarshal([]byte(a.ok("admin", "cleanup", "--json")), &cl); err != nil || cl.Prune == nil {
		t.Fatalf("cleanup --json: %v %+v", err, cl)
	}

	// Cleanup's prune takes the static deltas to the commits it deletes.
	scratch := t.TempDir()
	os.WriteFile(filepath.Join(scratch, "f"), []byte("gone\n"), 0o644)
	a.ok("commit", "-b", "gone", scratch)
	a.ok("static-delta", "generate", "--empty", "--to=gone")
	name := strings.TrimSpace(a.ok("static-delta", "list"))
	a.ok("refs", "--delete", "gone")
	if out := a.ok("admin", "cleanup"); !regexp.MustCompile(`\nDeleted 1 static delta, [0-9.]+ (bytes|[kMG]B) freed: ` + name + "\n").MatchString(out) {
		t.Errorf("cleanup printed %q, want delta %s deleted", out, name)
	}
	if got := a.ok("static-delta", "list"); got != "(No static deltas)\n" {
		t.Errorf("static-delta list after cleanup = %q", got)
	}
}

func TestAdminDeployErrors(t *testing.T) {
	a := newAdmin(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "usr/bin/sh"), []byte("x"), 0o755)
	id := strings.TrimSpace(a.ok("commit", "-b", "nokernel", dir))
	a.fails(1, "commit "+id+" has no kernel", "admin", "deploy", "nokernel")
	a.fails(1, "nosuch", "admin", "deploy", "nosuch")
	a.fails(1, "stateroot \"other\" does not exist", "admin", "deploy", "--os=other", "nokernel")
	a.fails(1, "hint: create it with `otree admin os-init other`", "admin", "deploy", "--os=other", "nokernel")
	a.ok("admin", "os-init", "second")
	a.fails(1, "2 stateroots", "admin", "deploy", "nokernel")
	a.fails(1, "hint: give a stateroot with --os", "admin", "deploy", "nokernel")
	if n := len(a.status().Deployments); n != 0 {
		t.Errorf("%d deployments after failures", n)
	}
	bad := filepath.Join(t.TempDir(), "not-a-sysroot")
	res := a.run("admin", "--sysroot="+bad, "status")
	if res.code != 1 || !strings.Contains(res.stderr, bad) || !strings.Contains(res.stderr, "hint: create one with `otree admin init-fs`") {
		t.Errorf("status on a non-sysroot: %d %q", res.code, res.stderr)
	}
}

// On a terminal, deploy draws the checkout's progress.
func TestAdminDeployProgressOnTerminal(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	m, s := openPTY(t)
	var out bytes.Buffer
	code := run(context.Background(), []string{"admin", "--sysroot=" + a.sys, "deploy", "cli/stable"}, strings.NewReader(""), &out, s)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	s.Close()
	screen := readScreen(m, "")
	if !strings.Contains(screen, "Checking out: 5 files") {
		t.Errorf("terminal output %q lacks the checkout's progress", screen)
	}
	if !strings.Contains(out.String(), "as deployment 0") {
		t.Errorf("stdout %q", out.String())
	}
}

// TestAdminUpgradeAndSwitchFromRemote drives upgrade and switch against an
// archive repository served over HTTP.
func TestAdminUpgradeAndSwitchFromRemote(t *testing.T) {
	a := newAdmin(t)
	srv := newCLI(t)
	hs := httptest.NewServer(http.FileServer(http.Dir(srv.path)))
	t.Cleanup(hs.Close)
	ts := 1700000000
	build := func(branch, motd string) string {
		dir := t.TempDir()
		writeBootableTree(t, dir, "6.1.0-1", motd)
		ts += 100
		id := strings.TrimSpace(srv.ok("commit", "-b", branch, "--timestamp=@"+strconv.Itoa(ts), dir))
		srv.ok("summary", "-u")
		return id
	}
	c1 := build("cli/stable", "one\n")
	a.ok("remote", "add", "origin", hs.URL)
	a.ok("pull", "origin", "cli/stable")
	a.ok("admin", "deploy", "origin:cli/stable")
	// Nothing new: OSTree's words with --pull-only too.
	if res := a.run("admin", "upgrade", "--pull-only"); res.code != 0 || res.stdout != "No update available.\n" {
		t.Errorf("upgrade --pull-only with nothing new: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}

	c2 := build("cli/stable", "two\n")
	srv.ok("static-delta", "generate", "--from="+c1, "--to="+c2)
	srv.ok("summary", "-u")
	// Standard output as OSTree's (nothing); what was pulled on stderr,
	// with the static delta used.
	if res := a.run("admin", "upgrade", "--pull-only"); res.code != 0 || res.stdout != "" || !strings.Contains(res.stderr, "Pulled origin:cli/stable: "+c2+"\n") ||
		!strings.Contains(res.stderr, "\n1 delta parts, ") || !strings.Contains(res.stderr, "\nUsed static delta "+c1+"-"+c2+"\n") {
		t.Errorf("upgrade --pull-only: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if st := a.status(); len(st.Deployments) != 1 || st.Deployments[0].Commit != c1 {
		t.Fatalf("--pull-only deployed: %+v", st)
	}
	if out := a.ok("admin", "upgrade"); !strings.Contains(out, "Deployed cli "+c2+".0 as deployment 0") {
		t.Errorf("upgrade printed %q", out)
	}
	c3 := build("cli/testing", "three\n")
	var res struct {
		Refspec  string `json:"refspec"`
		Commit   string `json:"commit"`
		Deployed struct {
			Deployment struct{ Origin string } `json:"deployment"`
		} `json:"deployed"`
		DeletedRef string `json:"deleted_ref"`
	}
	if err := json.Unmarshal([]byte(a.ok("admin", "switch", "--json", "cli/testing")), &res); err != nil {
		t.Fatal(err)
	}
	if refs := a.ok("refs"); strings.Contains(refs, "origin:cli/stable") || !strings.Contains(refs, "origin:cli/testing") {
		t.Error("switch kept the old origin's ref origin:cli/stable")
	}
	if res.Refspec != "origin:cli/testing" || res.Commit != c3 || res.Deployed.Deployment.Origin != "origin:cli/testing" || res.DeletedRef != "origin:cli/stable" {
		t.Errorf("switch --json = %+v", res)
	}
	if st := a.status(); st.Deployments[0].Commit != c3 || st.Deployments[0].Origin != "origin:cli/testing" {
		t.Errorf("after switch: %+v", st.Deployments[0])
	}
	a.fails(2, "pull-only", "admin", "upgrade", "--pull-only", "--deploy-only")
	a.fails(2, "missing [REMOTE:]BRANCH", "admin", "switch")

	// --override-commit: a newer commit of the origin branch than the
	// deployed one, by full id; then a prefix of a stored commit.
	c4 := build("cli/testing", "four\n")
	build("cli/testing", "five\n")
	if out := a.ok("admin", "upgrade", "--override-commit="+c4); !strings.Contains(out, "Deployed cli "+c4+".0") {
		t.Errorf("upgrade --override-commit printed %q", out)
	}
	if d := a.status().Deployments[0]; d.Commit != c4 || d.OverrideCommit != c4 {
		t.Errorf("after --override-commit: %+v", d)
	}
	if out := a.ok("admin", "status"); !strings.Contains(out, "    override commit: "+c4+"\n") {
		t.Errorf("status does not show the override:\n%s", out)
	}
	a.fails(1, "--allow-downgrade", "admin", "upgrade", "--override-commit="+c3[:12])
	a.fails(1, "override commit "+c3, "admin", "upgrade", "--override-commit="+c3[:12])
	// Another branch's commit: its binding refuses it, and the hint names
	// the command that follows another branch.
	a.fails(1, "bound to refs [cli/stable]", "admin", "upgrade", "--override-commit="+c2)
	a.fails(1, "hint: `otree admin switch` deploys another branch", "admin", "upgrade", "--override-commit="+c2)

	// set-origin: a new remote for the same server, then upgrades follow it.
	a.ok("admin", "set-origin", "-s", "branches=cli/stable", "mirror", hs.URL, "cli/stable") // -s is --set, as in OSTree
	if d := a.status().Deployments[0]; d.Origin != "mirror:cli/stable" || d.OverrideCommit != "" || d.Commit != c4 {
		t.Errorf("after set-origin: %+v", d)
	}
	c6 := build("cli/stable", "six\n")
	if res := a.run("admin", "upgrade"); res.code != 0 || !strings.Contains(res.stdout, "Deployed cli "+c6+".0") || !strings.Contains(res.stderr, " content objects fetched; ") {
		t.Errorf("upgrade after set-origin: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	a.ok("admin", "set-origin", "mirror", hs.URL) // same url, branch kept
	a.fails(1, "remote add --force", "admin", "set-origin", "origin", "http://elsewhere.example/", "cli/stable")
	a.fails(1, "no such deployment", "admin", "set-origin", "--index=9", "mirror", hs.URL)
	a.fails(1, "--override-commit", "admin", "upgrade", "--override-commit=nope")
	a.fails(2, "unknown flag", "admin", "switch", "--override-commit="+c4, "cli/stable")
}

// deploy's --retain-rollback, --karg-none and --no-prune reach the library:
// the rollback stays, the merge's arguments are dropped, and the commit of
// a dropped deployment is pruned only without --no-prune.
func TestAdminDeployRetainKargsPrune(t *testing.T) {
	a := newAdmin(t)
	c1 := a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg=quiet", "cli/stable")
	c2 := a.commit("two\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg-none", "--karg-append=console=ttyS0", "cli/stable")
	c3 := a.commit("three\n", "6.1.0-1")
	a.ok("admin", "deploy", "--retain-rollback", "cli/stable")
	st := a.status()
	var got []string
	for _, d := range st.Deployments {
		got = append(got, d.Commit)
	}
	if strings.Join(got, " ") != strings.Join([]string{c3, c2, c1}, " ") {
		t.Fatalf("--retain-rollback kept %v", got)
	}
	if st.Deployments[1].Options != "console=ttyS0" {
		t.Errorf("--karg-none: options %q", st.Deployments[1].Options)
	}
	a.commit("four\n", "6.1.0-1")
	a.ok("admin", "deploy", "--no-prune", "cli/stable") // drops c2 and c1
	if n := len(a.status().Deployments); n != 2 {
		t.Fatalf("%d deployments, want 2", n)
	}
	if res := a.run("show", c1); res.code != 0 {
		t.Errorf("--no-prune: commit %s pruned", c1)
	}
	a.commit("five\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	for _, c := range []string{c1, c2} {
		if res := a.run("show", c); res.code == 0 {
			t.Errorf("deploy did not prune commit %s", c)
		}
	}
}

// --karg-proc-cmdline and --karg-none contradict each other: deploy,
// upgrade and switch refuse them as a malformed command line, as OSTree's
// deploy does, before touching the sysroot.
func TestAdminKargsNoneWithProcCmdline(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg=quiet", "cli/stable")
	before := a.status()
	a.commit("two\n", "6.1.0-1")
	for _, args := range [][]string{{"deploy", "cli/stable"}, {"upgrade"}, {"switch", "cli/stable"}} {
		args = append([]string{"admin"}, append(args, "--karg-proc-cmdline", "--karg-none")...)
		res := a.run(args...)
		if res.code != 2 || !strings.Contains(res.stderr, "--karg-proc-cmdline and --karg-none") {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming both flags", args, res.code, res.stderr)
		}
	}
	if after := a.status(); len(after.Deployments) != 1 || after.Deployments[0].Commit != before.Deployments[0].Commit {
		t.Errorf("refused commands changed the deployments: %+v", after.Deployments)
	}
}

// deploy --stage and upgrade --stage write a deployment that status shows
// as staged and that finalize-staged makes the default.
func TestAdminStage(t *testing.T) {
	a := newAdmin(t)
	c1 := a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	c2 := a.commit("two\n", "6.1.0-1")
	if out := a.ok("admin", "deploy", "--stage", "cli/stable"); !strings.Contains(out, "Staged cli "+c2+".0") {
		t.Errorf("deploy --stage printed %q", out)
	}
	if out := a.ok("admin", "status"); !strings.HasPrefix(out, "  cli "+c2+".0 (staged)\n") ||
		!strings.Contains(out, "\n  cli "+c1+".0\n") {
		t.Errorf("status with a staged deployment:\n%s", out)
	}
	var st struct {
		Deployments []struct {
			Commit string `json:"commit"`
			Staged bool   `json:"staged"`
			Index  int    `json:"index"`
		} `json:"deployments"`
	}
	// Numbered as OSTree numbers them: the staged deployment is 0.
	if err := json.Unmarshal([]byte(a.ok("admin", "status", "--json")), &st); err != nil || len(st.Deployments) != 2 ||
		!st.Deployments[0].Staged || st.Deployments[0].Commit != c2 || st.Deployments[0].Index != 0 || st.Deployments[1].Index != 1 {
		t.Errorf("status --json = %+v, %v", st, err)
	}
	if out := a.ok("admin", "status"); !regexp.MustCompile(`(?s)\(staged\).*index: 0 .*finalized at shutdown.*` + c1 + `\.0\n.*index: 1 `).MatchString(out) {
		t.Errorf("status numbers the staged deployment 0 and the default 1:\n%s", out)
	}
	// --print-current-dir prints deployment 0 as numbered here, the
	// staged one, as OSTree's does.
	if got, want := strings.TrimSpace(a.ok("admin", "--print-current-dir")), filepath.Join(a.sys, "otree/deploy/cli/deploy", c2+".0"); got != want {
		t.Errorf("--print-current-dir with a staged deployment = %q, want %q", got, want)
	}
	a.fails(1, "staged", "admin", "pin", "0")
	a.fails(1, "staged", "admin", "set-default", "0")
	a.fails(1, "staged", "admin", "kargs", "--deployment=0", "--append=x=1")
	// A failed edit names the deployment as status numbers it.
	a.fails(1, "admin kargs --deployment=1: deployment "+c1+".0 of stateroot cli: kernel argument nosuch not found", "admin", "kargs", "--deployment=1", "--delete=nosuch")
	if got := strings.TrimSpace(a.ok("admin", "kargs", "--deployment=1")); got != strings.TrimSpace(a.ok("admin", "kargs")) {
		t.Errorf("kargs --deployment=1 (the default, after the staged one) = %q", got)
	}
	// undeploy 0 discards the staged deployment, as OSTree's does, and
	// leaves the default alone.
	stagedPath := filepath.Join(a.sys, "otree/deploy/cli/deploy", c2+".0")
	// Only OSTree's line: the boot entries are not rewritten, so there is
	// no line on a boot loader transaction.
	if out := a.ok("admin", "undeploy", "0"); out != "Deleted deployment "+c2+".0\n" {
		t.Errorf("undeploy 0 with a staged deployment printed %q", out)
	}
	if d := a.status().Deployments; len(d) != 1 || d[0].Commit != c1 || d[0].Index != 0 {
		t.Fatalf("after undeploy 0: %+v", d)
	}
	if _, err := os.Lstat(stagedPath); err == nil {
		t.Error("the discarded staged deployment is still there")
	}
	if out := a.ok("admin", "finalize-staged"); out != "No deployment is staged.\n" {
		t.Errorf("finalize-staged after undeploy 0 printed %q", out)
	}
	if out := a.ok("admin", "deploy", "--stage", "cli/stable"); !strings.Contains(out, "Staged cli "+c2+".0") {
		t.Errorf("deploy --stage again printed %q", out)
	}
	if out := a.ok("admin", "finalize-staged"); !strings.Contains(out, "Deployed cli "+c2+".0 as deployment 0") {
		t.Errorf("finalize-staged printed %q", out)
	}
	if out := a.ok("admin", "finalize-staged"); out != "No deployment is staged.\n" {
		t.Errorf("finalize-staged with nothing staged printed %q", out)
	}
	c3 := a.commit("three\n", "6.1.0-1")
	if out := a.ok("admin", "upgrade", "--stage"); !strings.Contains(out, "Staged cli "+c3+".0") {
		t.Errorf("upgrade --stage printed %q", out)
	}
	if d := a.status().Deployments; d[0].Commit != c3 || d[1].Commit != c2 {
		t.Errorf("after upgrade --stage: %+v", d)
	}
	a.ok("admin", "finalize-staged")
	if d := a.status().Deployments; len(d) != 2 || d[0].Commit != c3 {
		t.Errorf("after the second finalize: %+v", d)
	}
}

// kargs edit-in-place --append-if-missing adds an argument to every
// deployment that lacks its key, in one switch; kargs --append-if-missing
// does it for one deployment.
func TestAdminKargsEditInPlace(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg=console=tty0", "cli/stable")
	a.commit("two\n", "6.1.0-1")
	a.ok("admin", "deploy", "--karg-none", "--karg=root=LABEL=r", "cli/stable")
	options := func() []string {
		var o []string
		for _, d := range a.status().Deployments {
			o = append(o, d.Options)
		}
		return o
	}
	before := options()
	if strings.Join(before, "|") != "root=LABEL=r|console=tty0" {
		t.Fatalf("options before: %q", before)
	}
	a.fails(1, "otree= is managed by otree", "admin", "kargs", "edit-in-place", "--append-if-missing=quiet", "--append-if-missing=otree=/x")
	if got := options(); strings.Join(got, "|") != strings.Join(before, "|") {
		t.Fatalf("a refused edit changed the options: %q", got)
	}
	if out := a.ok("admin", "kargs", "edit-in-place"); out != "" { // nothing to do, as in OSTree
		t.Errorf("edit-in-place without an argument printed %q", out)
	}
	res := a.run("admin", "kargs", "edit-in-place", "--append-if-missing=console=ttyS0", "--append-if-missing=quiet")
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("edit-in-place: exit %d, stdout %q (want none, as OSTree's)", res.code, res.stdout)
	}
	out := res.stderr
	want := []string{"root=LABEL=r console=ttyS0 quiet", "console=tty0 quiet"}
	if got := options(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("options after edit-in-place: %q, want %q", got, want)
	}
	if out != "0: "+want[0]+"\n1: "+want[1]+"\n" {
		t.Errorf("edit-in-place printed %q", out)
	}
	// The boot entries on disk carry the new options.
	entries, _ := filepath.Glob(filepath.Join(a.sys, "boot/loader/entries/*.conf"))
	n := 0
	for _, e := range entries {
		b, _ := os.ReadFile(e)
		if strings.Contains(string(b), " quiet otree=") || strings.Contains(string(b), " quiet\n") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d of %d boot entries carry quiet", n, len(entries))
	}
	a.ok("admin", "kargs", "--deployment=1", "--append-if-missing=splash", "--append-if-missing=quiet")
	if got := options(); got[1] != "console=tty0 quiet splash" || got[0] != want[0] {
		t.Errorf("kargs --append-if-missing on deployment 1: %q", got)
	}
}

// upgrade --reboot (-r) runs systemctl reboot once it has deployed, and
// not when there is nothing to deploy, nor for a sysroot that is not the
// running system's root.
func TestAdminUpgradeReboot(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "calls")
	fake := "#!/bin/sh\necho \"$@\" >> " + log + "\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	// A sysroot that is not the running system's root is not what a
	// reboot starts: OSTree's -r reboots only for /, and so does otree's
	// (TestAdminUpgradeRebootBooted boots one).
	a.commit("zero\n", "6.1.0-1")
	if res := a.run("admin", "upgrade", "-r"); res.code != 0 || !strings.Contains(res.stderr, "Not rebooting: sysroot "+a.sys+" is not the running system's root /\n") {
		t.Fatalf("upgrade -r of a sysroot in a directory: exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := os.Stat(log); err == nil {
		t.Fatalf("systemctl ran for a sysroot that is not the running system's root")
	}
	defer func(old func(*deploy.Sysroot) (bool, string)) { bootedAsRoot = old }(bootedAsRoot)
	bootedAsRoot = func(*deploy.Sysroot) (bool, string) { return true, "" }
	if out := a.ok("admin", "upgrade", "--reboot"); !strings.Contains(out, "No update available") {
		t.Fatalf("upgrade printed %q", out)
	}
	if _, err := os.Stat(log); err == nil {
		t.Fatalf("systemctl ran although nothing was deployed")
	}
	c2 := a.commit("two\n", "6.1.0-1")
	a.ok("admin", "upgrade", "-r")
	if b, _ := os.ReadFile(log); string(b) != "reboot\n" {
		t.Errorf("systemctl calls %q, want one reboot", b)
	}
	if d := a.status().Deployments; d[0].Commit != c2 {
		t.Errorf("deployed %s before the reboot, want %s", d[0].Commit, c2)
	}
	// A reboot that fails is reported; the deployment stays.
	os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\necho refused >&2\nexit 1\n"), 0o755)
	a.commit("three\n", "6.1.0-1")
	a.fails(1, "systemctl reboot failed", "admin", "upgrade", "--reboot")
}

// init-fs --modern makes only boot/ and otree/, and deploys work there.
func TestAdminInitFSModern(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("deployments need root: the system repository is bare")
	}
	a := &admin{t: t, sys: filepath.Join(t.TempDir(), "sysroot")}
	testtree.ClearImmutable(t, a.sys)
	a.ok("admin", "init-fs", "--modern", a.sys)
	ents, err := os.ReadDir(a.sys)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "boot otree" {
		t.Errorf("init-fs --modern made %q", names)
	}
	a.ok("admin", "os-init", "cli")
	c := a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	if d := a.status().Deployments; len(d) != 1 || d[0].Commit != c {
		t.Errorf("status after a deploy: %+v", d)
	}
}

// status --verify (-V) also checks each deployment's commit against the
// keys of its origin's remote when that remote asks for signed commits,
// as OSTree's status --verify checks signatures; a commit that lost its
// signature makes it fail.
func TestAdminStatusVerifySignature(t *testing.T) {
	a := newAdmin(t)
	srv := newCLI(t)
	keyFile, _, pub := generateKey(t, srv)
	dir := t.TempDir()
	writeBootableTree(t, dir, "6.1.0-1", "signed\n")
	id := strings.TrimSpace(srv.ok("commit", "-b", "cli/stable", "--sign-from-file="+keyFile, dir))
	srv.ok("summary", "-u")
	hs := httptest.NewServer(http.FileServer(http.Dir(srv.path)))
	t.Cleanup(hs.Close)
	a.ok("remote", "add", "--sign-verify=ed25519=inline:"+pub, "origin", hs.URL)
	a.ok("pull", "origin", "cli/stable")
	a.ok("admin", "deploy", "origin:cli/stable")
	if out := a.ok("admin", "status", "-V"); !strings.Contains(out, "    signature: good, key "+pub+" (remote origin)\n") {
		t.Errorf("status -V printed:\n%s", out)
	}
	if out := a.ok("admin", "status"); strings.Contains(out, "signature") {
		t.Errorf("status without --verify checked signatures:\n%s", out)
	}
	a.ok("sign", "--delete", id, pub)
	res := a.run("admin", "status", "--verify")
	if res.code != 1 || !strings.Contains(res.stderr, "1 deployment(s) lack a trusted signature") ||
		!strings.Contains(res.stdout, "    signature: NOT VERIFIED (remote origin): commit "+id) {
		t.Errorf("status --verify of an unsigned commit: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// newOSTreeSysroot makes an OSTree sysroot with the stateroot cli, the twin
// of newAdmin's, and returns it with a function that runs ostree (its
// output; the test fails if it fails).
func newOSTreeSysroot(t *testing.T, o *ostreeRepo) (string, func(args ...string) string) {
	osys := filepath.Join(t.TempDir(), "ostree-sysroot")
	testtree.ClearImmutable(t, osys)
	ost := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(o.bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ostree %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	os.MkdirAll(osys, 0o755)
	ost("admin", "init-fs", osys)
	ost("admin", "--sysroot="+osys, "os-init", "cli")
	return osys, ost
}

// deploy, undeploy and cleanup report what pruning the repository freed
// as OSTree does, "Freed objects: SIZE" among OSTree's other lines, and
// undeploy prints OSTree's lines: scripts that read OSTree's output read
// otree's. otree's own lines come after OSTree's.
func TestAdminFreedParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "bare")
	a := newAdmin(t)
	osys, ost := newOSTreeSysroot(t, o)
	orepo := "--repo=" + filepath.Join(osys, "ostree/repo")
	// Sizes, ids and boot versions differ; the lines do not.
	ids, bootVersion := regexp.MustCompile(`[0-9a-f]{64}`), regexp.MustCompile(`bootversion: boot\.\d\.\d`)
	norm := func(s string) []string {
		s = bootVersion.ReplaceAllString(ids.ReplaceAllString(normSizes(s), "ID"), "bootversion: B")
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l != "" && !strings.HasPrefix(l, "Relabeling ") { // OSTree's SELinux note
				out = append(out, l)
			}
		}
		return out
	}
	compare := func(what, mine, theirs string) {
		t.Helper()
		m, th := norm(mine), norm(theirs)
		if len(m) < len(th) || !slices.Equal(m[:len(th)], th) {
			t.Errorf("%s: otree\n%s\nOSTree\n%s", what, mine, theirs)
		}
	}
	both := func(args ...string) {
		a.ok(args...)
		ost(append([]string{orepo}, args...)...)
	}
	for i := range 3 {
		dir := t.TempDir()
		writeBootableTree(t, dir, "6.1.0-1", fmt.Sprint(i))
		os.WriteFile(filepath.Join(dir, "usr/bin/data"), bytes.Repeat([]byte(fmt.Sprint(i)), 5000), 0o644)
		both("commit", "-b", "cli/stable", dir)
		mine, theirs := a.ok("admin", "deploy", "--os=cli", "cli/stable"), ost("admin", "--sysroot="+osys, "deploy", "--os=cli", "cli/stable")
		compare(fmt.Sprint("deploy ", i), mine, theirs)
		// The third deploy drops the first deployment, and the prune that
		// follows its commit.
		if freed := strings.Contains(mine, "\nFreed objects: "); freed != (i == 2) {
			t.Errorf("deploy %d: freed objects %v\n%s", i, freed, mine)
		}
	}
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "junk"), []byte("junk"), 0o644)
	both("commit", "-b", "junk", junk)
	both("refs", "--delete", "junk")
	mine, theirs := a.ok("admin", "cleanup"), ost("admin", "--sysroot="+osys, "cleanup")
	compare("cleanup", mine, theirs)
	if !strings.HasPrefix(mine, "Freed objects: ") {
		t.Errorf("cleanup of an unreachable commit printed %q", mine)
	}
	if mine, theirs := a.ok("admin", "cleanup"), ost("admin", "--sysroot="+osys, "cleanup"); mine != "" || theirs != "" {
		t.Errorf("cleanup with nothing to do: otree %q, OSTree %q", mine, theirs)
	}
	mine, theirs = a.ok("admin", "undeploy", "1"), ost("admin", "--sysroot="+osys, "undeploy", "1")
	compare("undeploy", mine, theirs)
	if !strings.Contains(mine, "\nFreed objects: ") {
		t.Errorf("undeploy did not prune the removed deployment's commit:\n%s", mine)
	}
	// With --json, the prune's report.
	gone := a.status().Deployments[0].Commit
	a.commit("4", "6.1.0-1")
	a.ok("admin", "deploy", "--os=cli", "cli/stable")
	var un struct {
		Prune *struct {
			Commits []string `json:"deleted_commits"`
		} `json:"prune"`
	}
	if err := json.Unmarshal([]byte(a.ok("admin", "undeploy", "--json", "1")), &un); err != nil || un.Prune == nil || !slices.Equal(un.Prune.Commits, []string{gone}) {
		t.Errorf("undeploy --json: %v, prune %+v, want commit %s deleted", err, un.Prune, gone)
	}
}

// admin status prints what OSTree's prints, in the same shape, for the same
// deployments (ids aside): scripts written for OSTree's output read
// otree's. otree's extra detail lines come after OSTree's and are left out
// of the comparison.
func TestAdminStatusParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "bare")
	a := newAdmin(t)
	osys, ost := newOSTreeSysroot(t, o)
	for i, version := range []string{"", "2.0"} {
		dir := t.TempDir()
		writeBootableTree(t, dir, "6.1.0-1", fmt.Sprint(i))
		for _, f := range []string{"usr/etc/a.conf", "usr/etc/hostname"} {
			os.WriteFile(filepath.Join(dir, f), []byte(f+"\n"), 0o644)
		}
		args := []string{"commit", "-b", "cli/stable", dir}
		if version != "" {
			args = append(args, "--add-metadata-string=version="+version)
		}
		a.ok(args...)
		ost(append([]string{"--repo=" + filepath.Join(osys, "ostree/repo")}, args...)...)
		mine := strings.Split(a.ok("admin", "deploy", "--os=cli", "cli/stable"), "\n")
		theirs := strings.Split(strings.TrimSpace(ost("admin", "--sysroot="+osys, "deploy", "--os=cli", "cli/stable")), "\n")
		// OSTree's lines come first (less its SELinux relabeling note);
		// the boot sub-versions count differently, so the last is
		// compared up to its bootversion.
		theirs = slices.DeleteFunc(theirs, func(l string) bool { return strings.HasPrefix(l, "Relabeling ") })
		for j, l := range theirs {
			if cut, _, ok := strings.Cut(l, " bootversion: "); ok {
				l = cut
			}
			if j >= len(mine) || !strings.HasPrefix(mine[j], l) {
				t.Errorf("deploy %d, line %d: OSTree's %q, otree's %q", i, j, theirs[j], mine)
			}
		}
	}
	a.ok("admin", "pin", "1")
	ost("admin", "--sysroot="+osys, "pin", "1")
	ids := regexp.MustCompile(`[0-9a-f]{64}`)
	norm := func(s string) []string {
		var out []string
		for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			if strings.HasPrefix(l, "    index: ") || strings.HasPrefix(l, "    kernel: ") || strings.HasPrefix(l, "    override commit: ") ||
				strings.HasPrefix(l, "    overlay initrd: ") {
				continue
			}
			out = append(out, ids.ReplaceAllString(l, "ID"))
		}
		return out
	}
	mine, theirs := a.ok("admin", "status"), ost("admin", "--sysroot="+osys, "status")
	if diff := cmp.Diff(norm(theirs), norm(mine)); diff != "" {
		t.Errorf("status (-ostree +otree):\n%s\notree:\n%s\nostree:\n%s", diff, mine, theirs)
	}

	// config-diff: the admin's changes to the default deployment's /etc.
	for _, etc := range []string{
		filepath.Join(a.status().Deployments[0].Path, "etc"),
		filepath.Join(strings.TrimSpace(ost("admin", "--sysroot="+osys, "--print-current-dir")), "etc"),
	} {
		os.WriteFile(filepath.Join(etc, "a.conf"), []byte("mine\n"), 0o644)
		os.Remove(filepath.Join(etc, "hostname"))
		os.WriteFile(filepath.Join(etc, "added.conf"), []byte("x\n"), 0o644)
	}
	mine, theirs = a.ok("admin", "config-diff", "--os=cli"), ost("admin", "--sysroot="+osys, "config-diff", "--os=cli")
	if want := "M    a.conf\nD    hostname\nA    added.conf\n"; mine != theirs || mine != want {
		t.Errorf("config-diff: otree\n%s\nOSTree\n%s\nwant\n%s", mine, theirs, want)
	}
}

// A staged deploy makes the deployment it wrote durable (a syncfs of its
// filesystem, after the last file written for it) before it records the
// deployment as staged: the finalize, at shutdown, only merges /etc again
// and switches the entries, so the record must never name a tree of which
// a crash could lose files.
func TestAdminStageSyncsBeforeRecord(t *testing.T) {
	testbin.NeedStrace(t)
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	c2 := a.commit("two\n", "6.1.0-1")

	tr, err := straced(t, "-e trace=openat,syncfs,rename,renameat,renameat2", "admin", "--sysroot="+a.sys, "deploy", "--stage", "cli/stable")
	if err != nil || !strings.Contains(tr.out, "Staged cli "+c2+".0") {
		t.Fatalf("deploy --stage: %v\n%s", err, tr.out)
	}
	data, lines := tr.log, tr.lines
	record := slices.IndexFunc(lines, func(l string) bool {
		return strings.Contains(l, "rename") && strings.Contains(l, "\""+filepath.Join(a.sys, "run/otree/staged-deployment")+"\"")
	})
	if record < 0 {
		t.Fatalf("no rename of the staged record into place in:\n%s", data)
	}
	// The deployment's last file: its origin, written after the checkout
	// and the /etc merge.
	deployment := filepath.Join(a.sys, "otree/deploy/cli/deploy", c2+".0")
	written := -1
	for i, l := range lines[:record] {
		if strings.Contains(l, "openat(") && strings.Contains(l, "O_CREAT") && strings.Contains(l, "\""+deployment) {
			written = i
		}
	}
	if written < 0 {
		t.Fatalf("no file of %s written before the record (line %d):\n%s", deployment, record+1, data)
	}
	if !slices.ContainsFunc(lines[written:record], func(l string) bool {
		return strings.Contains(l, "syncfs(") && strings.Contains(l, "<"+a.sys+"/")
	}) {
		t.Errorf("no syncfs between the deployment's last file written (line %d) and the record's rename (line %d):\n%s", written+1, record+1, data)
	}
}

// A sub switch (entries unchanged) that installs a file into an existing
// kernel directory of /boot (a kernel's .hmac, which no entry names) syncs
// /boot before it switches: /boot may be a filesystem of its own.
func TestAdminSubSwitchSyncsBoot(t *testing.T) {
	testbin.NeedStrace(t)
	a := newAdmin(t)
	const kver = "6.1.0-1"
	for _, motd := range []string{"one\n", "two\n"} {
		a.commit(motd, kver)
		a.ok("admin", "deploy", "cli/stable")
	}
	dir := t.TempDir()
	writeBootableTree(t, dir, kver, "three\n")
	if err := os.WriteFile(filepath.Join(dir, "usr/lib/modules", kver, ".vmlinuz.hmac"), []byte("hmac\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.ok("commit", "-b", "cli/stable", dir)

	tr, err := straced(t, "-e trace=syncfs,rename,renameat,renameat2", "admin", "--sysroot="+a.sys, "deploy", "cli/stable")
	if err != nil || !strings.Contains(tr.out, "(sub switch)") {
		t.Fatalf("deploy: %v\n%s", err, tr.out)
	}
	if _, err := os.Stat(filepath.Join(a.sys, "boot/otree")); err != nil {
		t.Fatal(err)
	}
	data, lines := tr.log, tr.lines
	find := func(from int, match func(string) bool) int { return indexFrom(lines, from, match) }
	boot := filepath.Join(a.sys, "boot")
	hmac := find(0, func(l string) bool {
		return strings.Contains(l, "rename") && strings.Contains(l, ".vmlinuz-"+kver+".hmac\"")
	})
	swtch := find(0, func(l string) bool {
		return strings.Contains(l, "rename") && regexp.MustCompile(`otree/boot\.\d"`).MatchString(l)
	})
	if hmac < 0 || swtch < 0 || hmac > swtch {
		t.Fatalf("no rename of the .hmac (%d) before the switch (%d) in:\n%s", hmac, swtch, data)
	}
	if sync := find(hmac, func(l string) bool { return strings.Contains(l, "syncfs(") && strings.Contains(l, "<"+boot+">") }); sync < 0 || sync > swtch {
		t.Errorf("no syncfs of %s between the .hmac's rename (line %d) and the switch (line %d):\n%s", boot, hmac, swtch, data)
	}
}

// A full switch (a new boot version) makes everything the new entries
// need durable before the rename of boot/loader that switches to them:
// the new deployment and its otree/boot.N links on the sysroot, the
// entries and kernel in /boot, which may be a filesystem of its own.
func TestAdminFullSwitchSyncsBeforeSwitch(t *testing.T) {
	testbin.NeedStrace(t)
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	a.commit("two\n", "6.2.0-1")

	tr, err := straced(t, "-e trace=syncfs,rename,renameat,renameat2", "admin", "--sysroot="+a.sys, "deploy", "cli/stable")
	if err != nil || !strings.Contains(tr.out, "(full switch)") {
		t.Fatalf("deploy: %v\n%s", err, tr.out)
	}
	data, lines := tr.log, tr.lines
	boot := filepath.Join(a.sys, "boot")
	swtch := slices.IndexFunc(lines, func(l string) bool {
		return strings.Contains(l, "rename") && strings.Contains(l, "\""+filepath.Join(boot, "loader")+"\"")
	})
	links := slices.IndexFunc(lines, func(l string) bool {
		return strings.Contains(l, "rename") && regexp.MustCompile(`otree/boot\.\d"`).MatchString(l)
	})
	if swtch < 0 || links < 0 || links > swtch {
		t.Fatalf("no rename of otree/boot.N (%d) before that of boot/loader (%d) in:\n%s", links, swtch, data)
	}
	for _, dir := range []string{a.sys, boot} {
		if !slices.ContainsFunc(lines[links:swtch], func(l string) bool { return strings.Contains(l, "syncfs(") && strings.Contains(l, "<"+dir+">") }) {
			t.Errorf("no syncfs of %s between the links' rename (line %d) and the switch (line %d):\n%s", dir, links, swtch, data)
		}
	}
}

// admin cleanup makes the boot switch it goes by durable (a killed deploy
// may have renamed it into place unsynced) before it removes anything.
func TestAdminCleanupSyncsSwitchFirst(t *testing.T) {
	testbin.NeedStrace(t)
	a := newAdmin(t)
	for _, motd := range []string{"one\n", "two\n"} {
		a.commit(motd, "6.1.0-1")
		a.ok("admin", "deploy", "cli/stable")
	}
	// A deployment directory no deployment lists, as a killed deploy
	// leaves one: cleanup removes it.
	stray := filepath.Join(a.sys, "otree/deploy/cli/deploy", strings.Repeat("e", 64)+".0")
	if err := os.MkdirAll(filepath.Join(stray, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr, err := straced(t, "-e trace=fsync,unlinkat,rmdir", "admin", "--sysroot="+a.sys, "cleanup")
	if err != nil {
		t.Fatalf("cleanup: %v\n%s", err, tr.out)
	}
	if _, err := os.Stat(stray); err == nil {
		t.Fatal("cleanup left the stray deployment")
	}
	data := tr.log
	first := func(match func(string) bool) int {
		for i, l := range tr.lines {
			if match(l) {
				return i
			}
		}
		return -1
	}
	removal := first(func(l string) bool { return strings.Contains(l, "unlinkat(") || strings.Contains(l, "rmdir(") })
	for _, dir := range []string{filepath.Join(a.sys, "boot"), filepath.Join(a.sys, "otree")} {
		if i := first(func(l string) bool { return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+dir+">") }); i < 0 || removal < 0 || i > removal {
			t.Errorf("fsync of %s at line %d, first removal at line %d:\n%s", dir, i, removal, data)
		}
	}
}

// Deploying a commit by id records that id as the origin, as OSTree does:
// upgrades then stay on it ("No update available.") until a switch names
// a branch again. On a new stateroot too.
func TestAdminDeployByIDStays(t *testing.T) {
	a := newAdmin(t)
	c1 := a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	c2 := a.commit("two\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	a.ok("admin", "deploy", c1) // stepping back
	st := a.status()
	if st.Deployments[0].Commit != c1 || st.Deployments[0].Origin != c1 {
		t.Fatalf("after deploy %s: %+v", c1, st.Deployments[0])
	}
	if b, err := os.ReadFile(st.Deployments[0].Path + ".origin"); err != nil || string(b) != "[origin]\nrefspec="+c1+"\n" {
		t.Errorf("origin file %q, %v", b, err)
	}
	if out := a.ok("admin", "upgrade"); out != "No update available.\n" {
		t.Errorf("upgrade of a deployment made by id: %q", out)
	}
	if st := a.status(); st.Deployments[0].Commit != c1 {
		t.Errorf("upgrade moved off %s: %+v", c1, st.Deployments[0])
	}
	a.ok("admin", "switch", "cli/stable")
	if st := a.status(); st.Deployments[0].Commit != c2 || st.Deployments[0].Origin != "cli/stable" {
		t.Errorf("switch back to the branch: %+v", st.Deployments[0])
	}

	// A stateroot with no deployment yet.
	a.ok("admin", "os-init", "fresh")
	a.ok("admin", "deploy", "--os=fresh", c2)
	if out := a.ok("admin", "upgrade", "--os=fresh"); out != "No update available.\n" {
		t.Errorf("upgrade of a first deployment made by id: %q", out)
	}
	// An origin naming another id (set-origin can't; an edit can) is
	// deployed by upgrade; an override has no branch to come from.
	a.fails(1, "is a commit", "admin", "upgrade", "--os=fresh", "--override-commit="+c1)
	var fresh string
	for _, d := range a.status().Deployments {
		if strings.Contains(d.Path, "/fresh/") {
			fresh = d.Path
		}
	}
	if err := os.WriteFile(fresh+".origin", []byte("[origin]\nrefspec="+c1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.ok("admin", "upgrade", "--os=fresh", "--allow-downgrade")
	for _, d := range a.status().Deployments {
		if strings.Contains(d.Path, "/fresh/") { // the first is the new one
			if d.Commit != c1 {
				t.Errorf("upgrade of a deployment whose origin names %s deployed %s", c1, d.Commit)
			}
			break
		}
	}
}

// os-init lays out a stateroot as OSTree's does: var/tmp sticky and open
// to all (past the umask), var/run and var/lock leading to /run.
func TestAdminOSInitLayoutParity(t *testing.T) {
	ostree, err := exec.LookPath("ostree")
	if err != nil {
		t.Skip("ostree is not installed (CI installs Debian's ostree package)")
	}
	a := newAdmin(t)
	if out := a.ok("admin", "os-init", "parity"); out != "otree/deploy/parity initialized as otree root\n" {
		t.Errorf("os-init printed %q", out)
	}
	osys := filepath.Join(t.TempDir(), "osys")
	testtree.ClearImmutable(t, osys)
	if err := os.Mkdir(osys, 0o755); err != nil { // OSTree's init-fs wants it made
		t.Fatal(err)
	}
	for _, args := range [][]string{{"admin", "init-fs", osys}, {"admin", "--sysroot=" + osys, "os-init", "parity"}} {
		if out, err := exec.Command(ostree, args...).CombinedOutput(); err != nil {
			t.Fatalf("ostree %v: %v\n%s", args, err, out)
		}
	}
	list := func(dir string) []string {
		out, err := exec.Command("find", dir, "-printf", `%M %P %l\n`).Output()
		if err != nil {
			t.Fatal(err)
		}
		l := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		slices.Sort(l)
		return l
	}
	want, got := list(filepath.Join(osys, "ostree/deploy/parity")), list(filepath.Join(a.sys, "otree/deploy/parity"))
	if d := cmp.Diff(want, slices.DeleteFunc(got, func(l string) bool { return strings.HasSuffix(l, " deploy ") })); d != "" {
		t.Errorf("stateroot layout (-ostree +otree):\n%s", d)
	}
	if fi, err := os.Stat(filepath.Join(a.sys, "tmp")); err != nil || fi.Mode()&fs.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("init-fs tmp: %v %v", fi.Mode(), err)
	}
}

// An admin command waiting for the sysroot lock another process holds
// says so, then goes on once it is released.
func TestAdminWaitsForSysrootLock(t *testing.T) {
	a := newAdmin(t)
	f, err := os.OpenFile(filepath.Join(a.sys, "otree", "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}()
	res := a.run("admin", "cleanup")
	if res.code != 0 || !strings.Contains(res.stderr, "waiting for the sysroot lock") {
		t.Errorf("cleanup with the lock held elsewhere: exit %d, stderr %q", res.code, res.stderr)
	}
}

// Without --sysroot, admin manages $OTREE_SYSROOT, else OSTree's
// $OSTREE_SYSROOT, else /.
func TestAdminSysrootFromEnvironment(t *testing.T) {
	sys := filepath.Join(t.TempDir(), "sysroot")
	a := &admin{t: t, sys: sys}
	testtree.ClearImmutable(t, sys)
	a.ok("admin", "init-fs", sys)
	status := func() result {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"admin", "status"}, strings.NewReader(""), &out, &errb)
		return result{out.String(), errb.String(), code}
	}
	bogus := filepath.Join(t.TempDir(), "none")
	for _, env := range []struct{ otree, ostree, want string }{
		{"", sys, sys},
		{sys, bogus, sys},
		{bogus, sys, bogus},
	} {
		t.Setenv("OTREE_SYSROOT", env.otree)
		t.Setenv("OSTREE_SYSROOT", env.ostree)
		res := status()
		if env.want == sys && (res.code != 0 || !strings.Contains(res.stdout, "No deployments")) {
			t.Errorf("OTREE_SYSROOT=%q OSTREE_SYSROOT=%q: exit %d, %q %q; want the status of %s", env.otree, env.ostree, res.code, res.stdout, res.stderr, sys)
		}
		if env.want == bogus && (res.code == 0 || !strings.Contains(res.stderr, bogus)) {
			t.Errorf("OTREE_SYSROOT=%q OSTREE_SYSROOT=%q: exit %d, %q; want an error naming %s", env.otree, env.ostree, res.code, res.stderr, bogus)
		}
	}
}

// remote add and delete take --sysroot, as OSTree's do: the sysroot's
// repository, whatever --repo says.
func TestRemoteSysroot(t *testing.T) {
	sys := filepath.Join(t.TempDir(), "sysroot")
	a := &admin{t: t, sys: sys}
	testtree.ClearImmutable(t, sys)
	a.ok("admin", "init-fs", sys)
	elsewhere := newCLI(t)
	elsewhere.ok("remote", "add", "--sysroot="+sys, "os", "https://updates.example/repo", "os/stable")
	if got := a.ok("remote", "list", "-u"); got != "os  https://updates.example/repo\n" {
		t.Errorf("the sysroot's remotes after remote add --sysroot: %q", got)
	}
	if got := elsewhere.ok("remote", "list"); got != "" {
		t.Errorf("remote add --sysroot added to --repo too: %q", got)
	}
	elsewhere.ok("remote", "delete", "--sysroot="+sys, "os")
	if got := a.ok("remote", "list"); got != "" {
		t.Errorf("the sysroot's remotes after remote delete --sysroot: %q", got)
	}
	elsewhere.fails(exitError, []string{sys}, "remote", "add", "--sysroot="+filepath.Join(sys, "nope"), "os", "https://x/")
}

// config-diff and deploy's counts list a directory the admin deleted once,
// as OSTree does, not each path that was below it; a sibling whose name
// sorts between them is still listed. A path whose type the admin changed
// is one modification, what was or is below it not listed apart; a
// directory whose mode alone the admin changed is listed with what the
// admin added below it.
func TestOstreeLocalDeletions(t *testing.T) {
	var changes []deploy.EtcChange
	for _, p := range []string{"/etc/sub", "/etc/sub-a", "/etc/sub-a/f", "/etc/sub/deep", "/etc/sub/deep/x", "/etc/subx"} {
		changes = append(changes, deploy.EtcChange{Path: p, Local: "D"})
	}
	changes = append(changes, deploy.EtcChange{Path: "/etc/sub/y", Default: "A"},
		deploy.EtcChange{Path: "/etc/d2f", Local: "M", Fields: []string{"type"}},
		deploy.EtcChange{Path: "/etc/d2f/old", Local: "D"},
		deploy.EtcChange{Path: "/etc/f2d", Local: "M", Fields: []string{"type"}},
		deploy.EtcChange{Path: "/etc/f2d/new", Local: "A"},
		deploy.EtcChange{Path: "/etc/f2d/new/deeper", Local: "A"},
		deploy.EtcChange{Path: "/etc/mode", Local: "M", Fields: []string{"mode"}},
		deploy.EtcChange{Path: "/etc/mode/new", Local: "A"})
	slices.SortFunc(changes, func(a, b deploy.EtcChange) int { return strings.Compare(a.Path, b.Path) })
	var buf bytes.Buffer
	printLocalEtc(&buf, changes)
	if want := "M    d2f\nM    f2d\nM    mode\nD    sub\nD    sub-a\nD    subx\nA    mode/new\n"; buf.String() != want {
		t.Errorf("printLocalEtc = %q, want %q", buf.String(), want)
	}
}

// The admin's changes to an /etc thousands of directories deep are
// counted in time linear in their paths' length: each path once climbed
// every directory above it, cleaning each one's path, so that config-diff
// and deploy took minutes over such a tree (3000 directories of 20-byte
// names: 109 s) and hours over this one.
func TestOstreeLocalDeep(t *testing.T) {
	const depth = 16000
	long := "/etc" + strings.Repeat("/d", depth) // every path shares its bytes
	changes := []deploy.EtcChange{{Path: "/etc/a", Local: "M", Fields: []string{"type"}}, {Path: "/etc/a/b", Local: "A"}}
	for i := len("/etc/d"); i <= len(long); i += 2 {
		changes = append(changes, deploy.EtcChange{Path: long[:i], Local: "A"})
	}
	changes = append(changes, deploy.EtcChange{Path: "/etc/e", Local: "D"}, deploy.EtcChange{Path: "/etc/e/f", Local: "D"})
	got := ostreeLocal(changes)
	if len(got) != depth+2 || got[0].Path != "/etc/a" || got[1].Path != "/etc/d" || got[depth].Path != long || got[depth+1].Path != "/etc/e" {
		t.Fatalf("ostreeLocal kept %d changes, want the %d added directories between /etc/a and /etc/e", len(got), depth)
	}
}

// deploy counts the admin's changes to /etc as OSTree does: a directory
// the admin deleted is one removal, not one for each path it held.
func TestDeployCountsDeletedEtcDirOnce(t *testing.T) {
	a := newAdmin(t)
	dir := t.TempDir()
	writeBootableTree(t, dir, "6.1.0-1", "one\n")
	for _, p := range []string{"usr/etc/sub/a", "usr/etc/sub/deep/b"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a.ok("commit", "-b", "cli/stable", dir)
	a.ok("admin", "deploy", "cli/stable")
	if err := os.RemoveAll(filepath.Join(a.status().Deployments[0].Path, "etc/sub")); err != nil {
		t.Fatal(err)
	}
	out := a.ok("admin", "deploy", "cli/stable")
	if !strings.Contains(out, "Copying /etc changes: 0 modified, 1 removed, 0 added\n") {
		t.Errorf("deploy printed %q", out)
	}
}

// In a sysroot without deployments, a command that works on the booted or
// default one says which sysroot has none.
func TestAdminNoDeploymentNamesSysroot(t *testing.T) {
	a := newAdmin(t)
	a.fails(1, "sysroot "+a.sys+": no such deployment", "admin", "config-diff")
	a.fails(1, "sysroot "+a.sys+": no such deployment", "admin", "set-origin", "origin", "http://example.invalid/")
	a.fails(1, "sysroot "+a.sys+": no such deployment", "admin", "kargs")
	a.fails(1, "sysroot "+a.sys+": no such deployment", "admin", "kargs", "--append=quiet")
}

// A warning names a path of the deployed tree as an error does: a
// character that does not print is escaped, so a name in a commit cannot
// clear or recolour the admin's terminal.
func TestDeployWarningEscapesNames(t *testing.T) {
	a := newAdmin(t)
	dir := t.TempDir()
	writeBootableTree(t, dir, "6.1.0-1", "one\n")
	if err := os.MkdirAll(filepath.Join(dir, "var", "x\x1b[2Jy"), 0o755); err != nil {
		t.Fatal(err)
	}
	a.ok("commit", "-b", "cli/stable", dir)
	res := a.run("admin", "deploy", "cli/stable")
	if res.code != 0 || !strings.Contains(res.stderr, `warning: /var/x\x1b[2Jy in commit`) || strings.Contains(res.stderr, "\x1b") {
		t.Errorf("deploy: exit %d, stderr %q; want the /var entry's warning with its escape written as \\x1b", res.code, res.stderr)
	}
}

// An upgrade's report of its pull gives the pull's time, not that of the
// pull and the deploy after it (a checkout of every file).
func TestAdminReportPullTime(t *testing.T) {
	var errb bytes.Buffer
	a := &adminEnv{env: &env{stderr: &errb}}
	a.reportPull(&deploy.UpgradeResult{Pulled: &remote.PullResult{MetadataFetched: 4, ContentFetched: 1, BytesFetched: 4096, Deltas: []string{"A-B"}}, PullTime: 7 * time.Second})
	want := "4 metadata, 1 content objects fetched; 4 KiB transferred in 7 seconds; 0 bytes content written\nUsed static delta A-B\n"
	if errb.String() != want {
		t.Errorf("reported %q, want %q", errb.String(), want)
	}
}

// A name in /etc, or in a tree's /usr, reaches the terminal from
// config-diff, a deploy's /etc lines and status --verify as diff writes
// one: Go-quoted when it holds a character that does not print, so that
// a file named with an escape sequence cannot clear or recolour the
// admin's terminal. --json keeps the bytes.
func TestAdminEtcNamesQuoted(t *testing.T) {
	a := newAdmin(t)
	dir := t.TempDir()
	writeBootableTree(t, dir, "6.1.0-1", "one\n")
	a.ok("commit", "-b", "cli/stable", dir)
	a.ok("admin", "deploy", "cli/stable")
	dep := a.status().Deployments[0].Path
	const name = "x\x1b[2Jy"
	if err := os.WriteFile(filepath.Join(dep, "etc", name), []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	quoted := `x\x1b[2Jy"`
	for _, args := range [][]string{{"admin", "config-diff"}, {"admin", "config-diff", "--into=0"}, {"admin", "deploy", "cli/stable"}} {
		res := a.run(args...)
		if res.code != 0 || !strings.Contains(res.stdout, quoted) || strings.Contains(res.stdout+res.stderr, "\x1b") {
			t.Errorf("%s: exit %d, stdout %q; want %s", strings.Join(args, " "), res.code, res.stdout, quoted)
		}
	}
	if out := a.ok("admin", "config-diff", "--json"); !strings.Contains(out, `"/etc/x\u001b[2Jy"`) {
		t.Errorf("config-diff --json: %s; want the name's bytes", out)
	}
	// A file added to the deployment's /usr: drift.
	usr := filepath.Join(a.status().Deployments[0].Path, "usr")
	testtree.SetImmutable(usr, false)
	if err := os.WriteFile(filepath.Join(usr, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := a.run("admin", "status", "--verify")
	if !strings.Contains(res.stdout, "drift: A \"/usr/x\\x1b[2Jy\"") || strings.Contains(res.stdout, "\x1b") {
		t.Errorf("status --verify: exit %d, stdout %q; want the added file Go-quoted", res.code, res.stdout)
	}
}

// status prints a commit's version quoted when it holds a control
// character: the version comes with the commit, and a newline in it
// would otherwise forge status lines (a booted mark, an origin).
func TestAdminStatusQuotesVersion(t *testing.T) {
	a := newAdmin(t)
	dir := t.TempDir()
	writeBootableTree(t, dir, "6.1.0-1", "one\n")
	version := "1.0\n* forged 0000.0 (booted)"
	a.ok("commit", "-b", "os", "--add-metadata-string=version="+version, dir)
	a.ok("admin", "deploy", "os")
	out := a.ok("admin", "status")
	if strings.Contains(out, "\n* forged") || !strings.Contains(out, "    Version: "+strconv.Quote(version)+"\n") {
		t.Errorf("status printed %q, want the version quoted", out)
	}
	var st struct {
		Deployments []struct{ Version string } `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(a.ok("admin", "status", "--json")), &st); err != nil || len(st.Deployments) != 1 || st.Deployments[0].Version != version {
		t.Errorf("status --json: %v %+v, want version %q", err, st.Deployments, version)
	}
}

// An index names the deployment at that place when the command acts, as
// under OSTree's sysroot lock: a deploy by another process between the
// command's start and its change neither makes undeploy report removing a
// deployment other than the one it removed nor pin take a deployment for
// pinned that is not.
func TestAdminIndexResolvedUnderLock(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	a.ok("admin", "deploy", "cli/stable")
	a.ok("admin", "pin", "1")
	// Another deploy lands once the next command has opened the sysroot.
	deployMeanwhile := func() {
		t.Cleanup(func() { testHookOpened = nil })
		testHookOpened = func() {
			testHookOpened = nil
			a.ok("admin", "deploy", "cli/stable")
		}
	}
	paths := func() []string {
		var ps []string
		for _, d := range a.status().Deployments {
			ps = append(ps, filepath.Base(d.Path))
		}
		return ps
	}

	// [.1, .0 pinned] becomes [.2, .1, .0 pinned]: index 1 is .1, unpinned.
	deployMeanwhile()
	out := a.ok("admin", "pin", "1")
	st := a.status()
	if len(st.Deployments) != 3 || !st.Deployments[1].Pinned || !strings.Contains(out, "Deployment 1 is now pinned") {
		t.Errorf("pin 1 while a deploy added a deployment: printed %q, then status %+v", out, st)
	}
	a.ok("admin", "pin", "--unpin", "1", "2")

	before := paths()
	deployMeanwhile()
	out = a.ok("admin", "undeploy", "1")
	// The deploy kept [new, before[0]] and undeploy removed before[0].
	after := paths()
	if len(after) != 1 || slices.Contains(after, before[0]) || !strings.Contains(out, "Deleted deployment "+before[0]) {
		t.Errorf("undeploy 1 while a deploy added a deployment: printed %q; deployments %q, then %q", out, before, after)
	}
}

// status --verify reads every file of each deployment; a deploy by another
// process that removes one of them meanwhile makes it read the new list,
// not fail on, or report as drift, the files the deploy removed.
func TestAdminStatusVerifyWhileDeploying(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	a.ok("admin", "deploy", "cli/stable")
	t.Cleanup(func() { testHookOpened = nil })
	// The deploy keeps the new deployment and .1, and removes .0.
	testHookOpened = func() {
		testHookOpened = nil
		a.ok("admin", "deploy", "cli/stable")
	}
	res := a.run("admin", "status", "--verify", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(res.stdout), &st); res.code != 0 || err != nil {
		t.Fatalf("status --verify while a deploy removed a deployment: exit %d, stderr %q, stdout %q", res.code, res.stderr, res.stdout)
	}
	if len(st.Deployments) != 2 || !strings.HasSuffix(st.Deployments[0].Path, ".2") || len(st.Deployments[0].Drift)+len(st.Deployments[1].Drift) != 0 {
		t.Errorf("status --verify while a deploy removed a deployment: %+v", st)
	}
}

// A user other than root running an admin command that changes the
// sysroot is refused before anything changes, with an error naming the
// sysroot's lock and saying that it takes root; status still reads it.
func TestAdminAsUserSaysItNeedsRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to make the sysroot and run otree as another user")
	}
	dir, bin, env := nobodyDir(t)
	sys := filepath.Join(dir, "sysroot")
	testtree.ClearImmutable(t, sys)
	for _, args := range [][]string{{"admin", "init-fs", sys}, {"admin", "--sysroot=" + sys, "os-init", "cli"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("otree %v: %v\n%s", args, err, out)
		}
	}
	for _, args := range [][]string{{"os-init", "other"}, {"cleanup"}, {"deploy", "--os=cli", "cli/stable"}} {
		cmd := exec.Command(bin, append([]string{"admin", "--sysroot=" + sys}, args...)...)
		cmd.Env, cmd.SysProcAttr = env, asNobody()
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), filepath.Join(sys, "otree", "lock")) || !strings.Contains(string(out), "needs root") {
			t.Errorf("otree admin %v as nobody: %v\n%s\nwant a refusal naming the lock and root", args, err, out)
		}
	}
	if _, err := os.Lstat(filepath.Join(sys, "otree", "deploy", "other")); err == nil {
		t.Error("os-init as nobody made the stateroot")
	}
	cmd := exec.Command(bin, "admin", "--sysroot="+sys, "status")
	cmd.Env, cmd.SysProcAttr = env, asNobody()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("otree admin status as nobody: %v\n%s", err, out)
	}
}
