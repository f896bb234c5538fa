package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/otree/otree/internal/testtree"
)

// pull --depth with a static delta to the requested commit, in otree and in
// OSTree 2022.7 on the same history A→B→C with a delta B→C: a client that
// has B pulls os/stable with --depth=-1 and gets C by the delta (no request
// for C's commit object) and A as objects.
func TestPullDeltaWithDepthParity(t *testing.T) {
	o := needOSTree(t, "archive")
	trees := make([]string, 3)
	tr := testtree.Tree{}
	for k, v := range fixture {
		tr[k] = v
	}
	for i, name := range []string{"a", "b", "c"} {
		tr["usr/"+name] = testtree.File(name+"\n", 0o644)
		trees[i] = source(t, tr)
	}

	type tool struct {
		name string
		dir  string
		// run runs the tool on repository dir.
		run func(dir string, args ...string) string
		// init makes a bare-user client at a new path.
		init func() string
	}
	src := newCLI(t)
	otree := tool{name: "otree", dir: src.path,
		run: func(dir string, args ...string) string {
			c := *src
			c.path = dir
			return c.ok(args...)
		},
		init: func() string { return newBareUserCLI(t).path },
	}
	for i, d := range trees {
		src.commitTree("os/stable", d, "c", int64(1700000000+100*i))
	}
	for _, d := range trees {
		o.ok("commit", "-b", "os/stable", "--tree=dir="+d, "-s", "c")
	}
	ostree := tool{name: "ostree", dir: o.path,
		run:  func(dir string, args ...string) string { return o.okIn(dir, args...) },
		init: func() string { return findOSTree(t, "bare-user").path },
	}
	for _, tl := range []tool{otree, ostree} {
		t.Run(tl.name, func(t *testing.T) {
			rev := func(dir, r string) string { return strings.TrimSpace(tl.run(dir, "rev-parse", r)) }
			c, b, a := rev(tl.dir, "os/stable"), rev(tl.dir, "os/stable^"), rev(tl.dir, "os/stable^^")
			tl.run(tl.dir, "static-delta", "generate", "--to=os/stable")
			tl.run(tl.dir, "summary", "-u")
			var mu sync.Mutex
			hits := map[string]int{}
			url := serve(t, &cli{t: t, path: tl.dir}, func(w http.ResponseWriter, r *http.Request) bool {
				mu.Lock()
				hits[r.URL.Path]++
				mu.Unlock()
				return false
			})
			dst := tl.init()
			tl.run(dst, "remote", "add", "--no-gpg-verify", "origin", url)
			tl.run(dst, "pull", "origin", b)
			tl.run(dst, "refs", "--create=origin:os/stable", b)
			mu.Lock()
			clear(hits)
			mu.Unlock()
			tl.run(dst, "pull", "--depth=-1", "origin", "os/stable")
			mu.Lock()
			defer mu.Unlock()
			superblocks := 0
			for p, n := range hits {
				if strings.HasPrefix(p, "/deltas/") && strings.HasSuffix(p, "/superblock") {
					superblocks += n
				}
			}
			commitObj := func(id string) string { return "/objects/" + id[:2] + "/" + id[2:] + ".commit" }
			if superblocks != 1 || hits[commitObj(c)] != 0 || hits[commitObj(b)] != 0 || hits[commitObj(a)] != 1 {
				t.Errorf("%d superblock requests; requests for commit objects C %d, B %d, A %d; want 1, 0, 0, 1 (%v)",
					superblocks, hits[commitObj(c)], hits[commitObj(b)], hits[commitObj(a)], hits)
			}
			if got := strings.Count(tl.run(dst, "log", "origin:os/stable"), "commit "); got != 3 {
				t.Errorf("log shows %d commits, want 3", got)
			}
			tl.run(dst, "fsck")
		})
	}
}
