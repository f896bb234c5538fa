package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/otree/otree/repo/remote"
)

func TestRemoteCommands(t *testing.T) {
	c := newCLI(t)
	c.ok("remote", "add", "--no-gpg-verify", "origin", "https://example.com/repo", "os/stable", "os/testing")
	c.ok("remote", "add", "--set=sign-verify=false", "--set=branches=main", "mirror2", "file:///srv/repo")
	if got := c.ok("remote", "list"); got != "mirror2\norigin\n" {
		t.Errorf("remote list = %q", got)
	}
	if got := c.ok("remote", "list", "-u"); got != "mirror2  file:///srv/repo\norigin   https://example.com/repo\n" {
		t.Errorf("remote list -u = %q", got)
	}
	if got := c.ok("remote", "show-url", "origin"); got != "https://example.com/repo\n" {
		t.Errorf("show-url = %q", got)
	}
	data, _ := os.ReadFile(c.r.Path("config"))
	if !strings.Contains(string(data), "[remote \"origin\"]\nbranches=os/stable;os/testing;\nurl=https://example.com/repo\n") ||
		!strings.Contains(string(data), "[remote \"mirror2\"]\nbranches=main\nsign-verify=false\nurl=file:///srv/repo\n") {
		t.Errorf("config:\n%s", data)
	}
	var list []remote.Remote
	if err := json.Unmarshal([]byte(c.ok("remote", "list", "--json")), &list); err != nil || len(list) != 2 || list[1].Branches[1] != "os/testing" {
		t.Errorf("remote list --json = %+v, %v", list, err)
	}

	c.fails(exitError, []string{`"origin"`, "already exists", "--force"}, "remote", "add", "origin", "http://x/")
	c.ok("remote", "add", "--if-not-exists", "origin", "http://x/")
	if got := c.ok("remote", "show-url", "origin"); got != "https://example.com/repo\n" {
		t.Errorf("--if-not-exists changed the remote: %q", got)
	}
	c.ok("remote", "add", "--force", "origin", "http://x/")
	c.ok("remote", "add", "--contenturl=https://cdn.example.com/repo", "cdn", "https://example.com/repo")
	if got := c.ok("config", "get", `remote "cdn".contenturl`); got != "https://cdn.example.com/repo\n" {
		t.Errorf("--contenturl wrote %q", got)
	}
	c.fails(exitError, []string{"contenturl"}, "remote", "add", "--contenturl=file:///srv", "cdn2", "https://example.com/repo")
	c.ok("remote", "delete", "cdn")
	if got := c.ok("remote", "show-url", "origin"); got != "http://x/\n" {
		t.Errorf("--force did not replace: %q", got)
	}
	c.fails(exitUsage, []string{"exclusive"}, "remote", "add", "--force", "--if-not-exists", "o", "http://x/")
	c.fails(exitError, []string{"ftp://x"}, "remote", "add", "o", "ftp://x/")
	c.fails(exitError, []string{`"a/b"`}, "remote", "add", "a/b", "http://x/")
	c.fails(exitUsage, []string{"KEY=VALUE"}, "remote", "add", "--set=novalue", "o", "http://x/")
	c.fails(exitUsage, nil, "remote", "add", "o")
	c.fails(exitUsage, []string{"add, delete"}, "remote")
	c.fails(exitUsage, []string{`"frob"`}, "remote", "frob")

	c.ok("remote", "delete", "mirror2")
	c.fails(exitError, []string{`"mirror2"`, "not configured"}, "remote", "delete", "mirror2")
	c.ok("remote", "delete", "--if-exists", "mirror2")
	c.fails(exitError, []string{`"mirror2"`}, "remote", "show-url", "mirror2")
	if got := c.ok("remote", "list"); got != "origin\n" {
		t.Errorf("after delete: %q", got)
	}
}
