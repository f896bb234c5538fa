package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// Without --repo, commands find the repository where OSTree's do: the
// current directory when it is one, else $OTREE_REPO, else OSTree's
// $OSTREE_REPO.
func TestRepoWithoutFlag(t *testing.T) {
	src := source(t, fixture)
	here, env1, env2 := newCLIMode(t, repo.ModeBareUser), newCLIMode(t, repo.ModeBareUser), newCLIMode(t, repo.ModeBareUser)
	here.ok("commit", "-b", "in-cwd", src)
	env1.ok("commit", "-b", "in-otree-repo", src)
	env2.ok("commit", "-b", "in-ostree-repo", src)
	refs := func() (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"refs"}, strings.NewReader(""), &out, &errb)
		return code, strings.TrimSpace(out.String()), errb.String()
	}
	elsewhere := t.TempDir()
	for _, tc := range []struct {
		cwd, otreeRepo, ostreeRepo string
		want                       string
	}{
		{here.path, env1.path, env2.path, "in-cwd"},
		{filepath.Join(here.path, "objects"), env1.path, env2.path, "in-otree-repo"}, // only the directory itself counts
		{elsewhere, env1.path, env2.path, "in-otree-repo"},
		{elsewhere, "", env2.path, "in-ostree-repo"},
	} {
		t.Chdir(tc.cwd)
		t.Setenv("OTREE_REPO", tc.otreeRepo)
		t.Setenv("OSTREE_REPO", tc.ostreeRepo)
		if code, out, errs := refs(); code != 0 || out != tc.want {
			t.Errorf("in %s, OTREE_REPO=%q OSTREE_REPO=%q: refs = %d %q %s, want %q", tc.cwd, tc.otreeRepo, tc.ostreeRepo, code, out, errs, tc.want)
		}
	}
	// --repo beats all of them.
	t.Chdir(here.path)
	if got := strings.TrimSpace(env2.ok("refs")); got != "in-ostree-repo" {
		t.Errorf("--repo in a repository: refs = %q", got)
	}
	// With none, the error says what to do.
	t.Chdir(elsewhere)
	t.Setenv("OTREE_REPO", "")
	t.Setenv("OSTREE_REPO", "")
	if _, err := os.Stat(sysrootRepo); err == nil {
		t.Skipf("%s exists on this machine", sysrootRepo)
	}
	if code, _, errs := refs(); code != exitUsage || !strings.Contains(errs, "--repo") || !strings.Contains(errs, "OTREE_REPO") {
		t.Errorf("no repository: refs = %d %q", code, errs)
	}
}

// OSTree looks in the same order: the current directory beats
// $OSTREE_REPO.
func TestRepoWithoutFlagOSTree(t *testing.T) {
	o := needOSTree(t, "bare-user")
	other := needOSTree(t, "bare-user")
	src := source(t, fixture)
	o.ok("commit", "-b", "in-cwd", src)
	other.ok("commit", "-b", "in-env", src)
	for _, tc := range []struct{ cwd, want string }{{o.path, "in-cwd"}, {t.TempDir(), "in-env"}} {
		cmd := exec.Command(o.bin, "refs")
		cmd.Dir = tc.cwd
		cmd.Env = append(os.Environ(), "OSTREE_REPO="+other.path)
		out, err := cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("ostree refs in %s: %v %q, want %q", tc.cwd, err, got, tc.want)
		}
	}
}
