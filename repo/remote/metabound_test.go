package remote_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// A server that sends endless bytes for every dirtree makes a pull hold
// one body of the metadata limit at a time, not one per parallel fetch:
// the others wait after their first few MiB. The pull fails naming the
// URL and the limit, writes no ref, and the next pull from a good server
// succeeds.
func TestPullEndlessDirtreesReadOneAtATime(t *testing.T) {
	const limit = 64 << 20
	defer remote.SetMaxMetaObject(limit)()
	o := newOrigin(t)
	tr := testtree.Tree{}
	for i := range 8 {
		tr[fmt.Sprintf("d%d/f", i)] = testtree.File(strconv.Itoa(i)+"\n", 0o644)
	}
	id := o.commit("main", tr, 1)
	c, err := o.r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	root := objectURLPath(repo.KindDirTree, c.RootTree)
	// What the kernel buffers between server and client comes on top of
	// the 4 MiB a waiting fetch reads.
	const waiting = 4<<20 + 40<<20
	var mu sync.Mutex
	var over, most int // bodies sent past waiting: now, at most at once
	chunk := make([]byte, 64<<10)
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if !strings.HasSuffix(req.URL.Path, ".dirtree") || req.URL.Path == root {
			return false
		}
		for sent := 0; ; sent += len(chunk) {
			if sent == waiting {
				mu.Lock()
				over++
				most = max(most, over)
				mu.Unlock()
				defer func() {
					mu.Lock()
					over--
					mu.Unlock()
				}()
			}
			if _, err := w.Write(chunk); err != nil {
				return true
			}
		}
	}
	dest := newDest(t, repo.ModeArchive, o.srv.URL)
	opts := fastOpts("main")
	opts.Jobs = 8
	_, err = remote.Pull(ctx, dest, opts)
	if err == nil || !strings.Contains(err.Error(), o.srv.URL+"/objects/") ||
		!strings.Contains(err.Error(), fmt.Sprintf("larger than %d bytes", limit)) {
		t.Fatalf("pull: %v, want the size limit at a dirtree's URL", err)
	}
	if most > 1 {
		t.Errorf("%d dirtree bodies were sent past %d bytes at once, want at most one", most, waiting)
	}
	if _, err := dest.ReadRef("origin:main"); err == nil {
		t.Error("the failed pull wrote origin:main")
	}
	o.fault = nil
	if _, err := remote.Pull(ctx, dest, opts); err != nil {
		t.Fatalf("pull from the good server: %v", err)
	}
	if got, err := dest.ReadRef("origin:main"); err != nil || got != id {
		t.Errorf("origin:main = %s, %v; want %s", got, err, id)
	}
}
