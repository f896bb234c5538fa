package repo_test

import (
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// FuzzValidateRefName checks that a ref name accepted is one a file of
// refs/heads (or refs/remotes/REMOTE) can be named after without leaving
// that directory, and that a name refused is named, quoted, in the error.
func FuzzValidateRefName(f *testing.F) {
	for _, s := range []string{"os/x86_64/stable", "origin:os/main", "a/../b", "./a", "a//b", "a/", "-a", "a.", "a:b:c", "a/b:c", ":a", "caf\xe9", "_", strings.Repeat("a", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := repo.ValidateRefName(name)
		if err != nil {
			// The name, or for "remote:branch" the branch refused.
			_, branch, _ := strings.Cut(name, ":")
			if name != "" && !strings.Contains(err.Error(), strconv.Quote(name)) && !strings.Contains(err.Error(), strconv.Quote(branch)) {
				t.Fatalf("ValidateRefName(%q): %v: the name is not in the error", name, err)
			}
			return
		}
		remote, branch, isRemote := strings.Cut(name, ":")
		if !isRemote {
			branch, remote = remote, ""
		}
		if isRemote && (remote == "" || strings.ContainsAny(remote, "/:") || remote[0] == '.' || remote[0] == '-') {
			t.Fatalf("ValidateRefName(%q) accepts remote %q", name, remote)
		}
		if branch == "" || strings.Contains(branch, ":") || path.Clean(branch) != branch || path.IsAbs(branch) {
			t.Fatalf("ValidateRefName(%q) accepts branch %q, not a plain relative path", name, branch)
		}
		for _, c := range strings.Split(branch, "/") {
			if c == "." || c == ".." || len(c) > 255 || c[0] == '.' || c[0] == '-' {
				t.Fatalf("ValidateRefName(%q) accepts component %q", name, c)
			}
		}
		if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			t.Fatalf("ValidateRefName(%q) accepts a space, control or non-ASCII byte", name)
		}
	})
}
