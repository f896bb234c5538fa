package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// On a filesystem with less free space than the reserve (OSTree's
// core.min-free-space-percent, 3% by default), commit and pull-local fail
// naming the setting and leave the branch where it was; lowering the
// reserve lets them through. config set refuses values the reserve and
// durability keys cannot take.
func TestCommitMinFreeSpace(t *testing.T) {
	const size = 32 << 20
	mnt := testtree.SmallFS(t, size)
	p := filepath.Join(mnt, "repo")
	r, err := repo.Init(p, repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c := &cli{t: t, path: p, r: r}
	first := c.commitTree("main", source(t, fixture), "one", 1700000000)

	testtree.FillTo(t, mnt, size*2/100)
	changed := testtree.Tree{}
	for k, v := range fixture {
		changed[k] = v
	}
	changed["new"] = testtree.File(strings.Repeat("x", 100<<10), 0o644)
	src := source(t, changed)
	c.fails(exitError, []string{"core.min-free-space-percent=3%", p}, "commit", "-b", "main", src)
	if got := c.ok("rev-parse", "main"); got != first.String()+"\n" {
		t.Errorf("a refused commit moved main to %s", got)
	}
	other := newCLI(t)
	other.commitTree("main", src, "two", 1700000100)
	c.fails(exitError, []string{"core.min-free-space-percent=3%"}, "pull-local", "--remote=o", other.path, "main")
	c.fails(exitError, []string{`"o:main" not found`}, "rev-parse", "o:main")
	c.ok("fsck", "-q")

	c.ok("config", "set", "core.min-free-space-percent", "1")
	c.ok("commit", "-b", "main", src)
	c.ok("pull-local", "--remote=o", other.path, "main")

	for _, bad := range [][2]string{{"core.min-free-space-percent", "100"}, {"core.min-free-space-percent", "3%"},
		{"core.min-free-space-size", "500"}, {"core.min-free-space-size", "1.5GB"}, {"core.fsync", "no"}, {"core.per-object-fsync", "yes"}} {
		c.fails(exitUsage, []string{fmt.Sprintf("%s=%q", bad[0], bad[1])}, "config", "set", bad[0], bad[1])
	}
	c.ok("config", "set", "core.min-free-space-size", "500MB")
	c.fails(exitError, []string{"core.min-free-space-size=500MB"}, "commit", "-b", "main", "--orphan", source(t, testtree.Tree{"y": testtree.File("y", 0o644)}))
}
