package remote_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// A configured remote's summary is kept between pulls and asked for
// again with the validators the server sent: unchanged, it costs a 304
// and no bytes; changed, it is fetched. A copy fetched in the second the
// file changed, a damaged copy, and a pull with the cache off fetch it
// whole.
func TestPullSummaryCache(t *testing.T) {
	o := newOrigin(t)
	o.commit("os/stable", testtree.Tree{"a": testtree.File("a\n", 0o644)}, 1700000000)
	summary := filepath.Join(o.dir, remote.SummaryFile)
	past := time.Now().Add(-time.Hour)
	age := func() {
		if err := os.Chtimes(summary, past, past); err != nil {
			t.Fatal(err)
		}
	}
	age()
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	pull := func() *remote.PullResult {
		t.Helper()
		o.resetHits()
		res, err := remote.Pull(ctx, dst, fastOpts("os/stable"))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	fetched := func() bool { return o.servedOf("/summary") > 0 }

	pull()
	if !fetched() {
		t.Fatal("the first pull did not fetch the summary")
	}
	if res := pull(); fetched() || o.hitsOf("/summary") != 1 || res.Refs[0].Old != res.Refs[0].New {
		t.Errorf("an unchanged summary was sent again (%d bytes) or the pull moved a ref: %+v", o.servedOf("/summary"), res.Refs)
	}

	// A new commit rewrites the summary: fetched, and the ref moves.
	second := o.commit("os/stable", testtree.Tree{"b": testtree.File("b\n", 0o644)}, 1700000100)
	if res := pull(); !fetched() || res.Refs[0].New != second {
		t.Errorf("a changed summary was not fetched: %+v", res.Refs)
	}
	// That copy was fetched in the second its file changed: a 304 could
	// hide a rewrite within that second, so it is fetched whole again.
	if pull(); !fetched() {
		t.Error("a copy fetched in the second its file changed was vouched for by a 304")
	}

	// A damaged cached copy is not used.
	age()
	pull()
	if pull(); fetched() {
		t.Fatal("no 304 for an aged, unchanged summary")
	}
	copies, _ := filepath.Glob(filepath.Join(dst.CacheDir(), "summaries", "origin-*.summary"))
	if len(copies) != 1 {
		t.Fatalf("cached summaries: %q", copies)
	}
	if err := os.WriteFile(copies[0], []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pull(); !fetched() {
		t.Error("a damaged cached summary was used")
	}

	// SummaryCacheDir "-": no cache.
	opts := fastOpts("os/stable")
	opts.SummaryCacheDir = "-"
	o.resetHits()
	if _, err := remote.Pull(ctx, dst, opts); err != nil || !fetched() {
		t.Errorf("with the cache off: %v, fetched %v", err, fetched())
	}
}
