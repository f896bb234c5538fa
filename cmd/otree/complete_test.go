package main

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// complete runs cobra's completion request for args and returns the
// candidates and the directive line (":4" is no file completion, ":0"
// files as usual).
func complete(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"__complete"}, args...), strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("__complete %q: exit %d, %s", args, code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

// Completion offers the refs, local and remote, that start with what is
// typed where a command takes a revision (arguments and flags), files
// past those arguments, remote names where a remote is taken, the
// sysroot's refs for admin deploy, and nothing for a repository that
// cannot be opened.
func TestCompletion(t *testing.T) {
	c := newCLI(t)
	id := c.commitTree("uat", source(t, testtree.Tree{"a": testtree.File("a", 0o644)}), "first", 1)
	for _, ref := range []string{"dev/x", "origin:uat"} {
		if err := c.r.SetRef(ref, id); err != nil {
			t.Fatal(err)
		}
	}
	c.ok("remote", "add", "--no-gpg-verify", "origin", "http://example.invalid/repo")
	c.ok("remote", "add", "--no-gpg-verify", "other", "http://example.invalid/other")
	repoFlag := "--repo=" + c.path
	for _, tc := range []struct {
		args []string
		want []string
		dir  string
	}{
		{[]string{repoFlag, "log", ""}, []string{"dev/x", "uat", "origin:uat"}, ":4"},
		{[]string{repoFlag, "ls", "u"}, []string{"uat"}, ":4"},
		{[]string{repoFlag, "ls", "uat", "/"}, nil, ":0"},
		{[]string{repoFlag, "diff", "uat", "o"}, []string{"origin:uat"}, ":4"},
		{[]string{repoFlag, "diff", "uat", "./sr"}, nil, ":0"},
		{[]string{repoFlag, "show", "uat", "d"}, []string{"dev/x"}, ":4"},
		{[]string{repoFlag, "commit", "--parent=d"}, []string{"dev/x"}, ":4"},
		{[]string{repoFlag, "static-delta", "generate", "--from", "u"}, []string{"uat"}, ":4"},
		{[]string{repoFlag, "pull", "o"}, []string{"origin", "other"}, ":4"},
		{[]string{repoFlag, "remote", "delete", "ot"}, []string{"other"}, ":4"},
		{[]string{"--repo=" + filepath.Join(t.TempDir(), "none"), "log", ""}, nil, ":4"},
	} {
		got, dir := complete(t, tc.args...)
		if !slices.Equal(got, tc.want) || dir != tc.dir {
			t.Errorf("complete %q = %q %s, want %q %s", tc.args, got, dir, tc.want, tc.dir)
		}
	}

	sysroot := t.TempDir()
	r, err := repo.Init(filepath.Join(sysroot, "otree", "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ReadCommit(id); err == nil {
		t.Fatal("the sysroot's repository already has the commit")
	}
	c.ok("pull-local", "--repo="+r.Path(), c.path, "uat")
	if got, dir := complete(t, "admin", "deploy", "--sysroot="+sysroot, ""); !slices.Equal(got, []string{"uat"}) || dir != ":4" {
		t.Errorf("admin deploy in the sysroot completes %q %s, want [uat] :4", got, dir)
	}
}
