package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
)

func TestSummaryCommand(t *testing.T) {
	c := newCLI(t)
	c.fails(exitError, []string{"summary", "otree summary -u"}, "summary", "-v")
	a := c.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	b := c.commitTree("main", source(t, testtree.Tree{"f": testtree.File("x", 0o644)}), "two", 1700000000)
	if got := c.ok("summary", "-u", "-m", "title=demo"); got != "Wrote "+c.r.Path("summary")+": 2 branches\n" {
		t.Errorf("summary -u = %q", got)
	}
	want := "* main\n    Latest Commit: " + b.String() + "\n* os/stable\n    Latest Commit: " + a.String() + "\ntitle: \"demo\"\n"
	if got := c.ok("summary", "-v"); got != want {
		t.Errorf("summary -v = %q, want %q", got, want)
	}
	var s summaryJSON
	if err := json.Unmarshal([]byte(c.ok("summary", "-v", "--json")), &s); err != nil || len(s.Refs) != 2 || s.Refs[1].Commit != a || s.Metadata["title"] != "demo" {
		t.Errorf("summary -v --json = %+v, %v", s, err)
	}
	c.fails(exitUsage, []string{"-u", "-v"}, "summary")
	c.fails(exitUsage, []string{"-u", "-v"}, "summary", "-u", "--view")
	// As in OSTree, -v beside -u is the global --verbose: it updates.
	if got := c.ok("summary", "-u", "-v"); !strings.HasPrefix(got, "Wrote ") {
		t.Errorf("summary -u -v = %q", got)
	}
	c.fails(exitUsage, []string{"KEY=VALUE"}, "summary", "-u", "-m", "x")
	c.fails(exitError, []string{"reserved"}, "summary", "-u", "-m", "otree.deltas=x")
}
