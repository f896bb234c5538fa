package remote_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// endlessLimit is the metadata limit the tests of endless bodies pull
// with; endlessWaiting is what a fetch waiting its turn may have been
// sent: its first 4 MiB, and what the kernel buffers between server and
// client.
const (
	endlessLimit   = 64 << 20
	endlessWaiting = 4<<20 + 40<<20
)

// endlessBodies counts the dirtree bodies an origin sent past
// endlessWaiting: at once at most, and in all.
type endlessBodies struct {
	mu         sync.Mutex
	over, most int
	all        int
}

// pullEndlessDirtrees pulls, with 8 jobs, a commit of 8 directories from
// an origin that sends endless bytes for every dirtree but the root's,
// checks that the pull fails naming a dirtree's URL and the limit and
// writes no ref, and that the next pull from the origin, repaired,
// succeeds. It returns what the origin sent.
func pullEndlessDirtrees(t *testing.T) *endlessBodies {
	t.Helper()
	defer remote.SetMaxMetaObject(endlessLimit)()
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
	var b endlessBodies
	chunk := make([]byte, 64<<10)
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if !strings.HasSuffix(req.URL.Path, ".dirtree") || req.URL.Path == root {
			return false
		}
		for sent := 0; ; sent += len(chunk) {
			if sent == endlessWaiting {
				b.mu.Lock()
				b.over++
				b.all++
				b.most = max(b.most, b.over)
				b.mu.Unlock()
				defer func() {
					b.mu.Lock()
					b.over--
					b.mu.Unlock()
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
		!strings.Contains(err.Error(), fmt.Sprintf("larger than %d bytes", endlessLimit)) {
		t.Fatalf("pull: %v, want the size limit at a dirtree's URL", err)
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
	b.mu.Lock()
	defer b.mu.Unlock()
	return &b
}

// A server that sends endless bytes for every dirtree makes a pull hold
// one body of the metadata limit at a time, not one per parallel fetch:
// the others wait after their first few MiB.
func TestPullEndlessDirtreesReadOneAtATime(t *testing.T) {
	if b := pullEndlessDirtrees(t); b.most > 1 {
		t.Errorf("%d dirtree bodies were sent past %d bytes at once, want at most one", b.most, endlessWaiting)
	}
}

// The first object that fails a pull stops the fetches in flight: the
// dirtrees waiting their turn are not read to the limit one after the
// other once the pull has failed.
func TestPullFailureStopsFetchesInFlight(t *testing.T) {
	if b := pullEndlessDirtrees(t); b.all > 1 {
		t.Errorf("%d dirtree bodies were sent past %d bytes, want only the one that failed the pull", b.all, endlessWaiting)
	}
}

// A local repository anyone could have written (a USB stick) with large
// sparse files where a commit's dirtrees go has them read one at a time,
// as from a server: the pull fails naming the first, and never holds one
// per parallel job.
func TestPullLocalLargeDirtreesReadOneAtATime(t *testing.T) {
	o := newOrigin(t)
	tr := testtree.Tree{}
	for i := range 8 {
		tr[fmt.Sprintf("d%d/f", i)] = testtree.File(strconv.Itoa(i)+"\n", 0o644)
	}
	id := o.commit("main", tr, 1)
	for i := range 8 {
		d := lookup(t, o.r, id, fmt.Sprintf("/d%d", i)).ID
		if err := os.Truncate(o.r.ObjectPath(repo.KindDirTree, d), 8<<20); err != nil {
			t.Fatal(err)
		}
	}
	// Each reader waits a while for another to come in beside it: with
	// one at a time, none does.
	var mu sync.Mutex
	in, most := 0, 0
	two := make(chan struct{})
	var once sync.Once
	defer remote.SetLocalBigMetaHook(func() {
		mu.Lock()
		in++
		most = max(most, in)
		if in > 1 {
			once.Do(func() { close(two) })
		}
		mu.Unlock()
		select {
		case <-two:
		case <-time.After(200 * time.Millisecond):
		}
		mu.Lock()
		in--
		mu.Unlock()
	})()
	dest, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	_, err = remote.PullLocal(ctx, dest, o.dir, remote.PullOptions{NoSync: true, Jobs: 8})
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.Kind != repo.KindDirTree || !strings.Contains(err.Error(), o.dir) {
		t.Fatalf("pull-local: %v, want a corrupt dirtree of %s", err, o.dir)
	}
	if most > 1 {
		t.Errorf("%d large dirtrees were read at once, want one", most)
	}
}
