package remote_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	// Its Last-Modified a while ahead, so that the fetch below is within
	// the second the file changed however slowly the machine runs.
	ahead := time.Now().Add(time.Minute)
	if err := os.Chtimes(summary, ahead, ahead); err != nil {
		t.Fatal(err)
	}
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

// A server that refuses the conditional request the cache makes (nginx
// answers 400 to an If-None-Match longer than its header buffers, as an
// ETag another server sent can be) does not fail every later pull: the
// summary is fetched again without the validators, and the cache keeps
// the new server's.
func TestPullSummaryCacheRefusedValidators(t *testing.T) {
	o := agedOrigin(t)
	past := time.Now().Add(-time.Hour)
	long := `"` + strings.Repeat("x", 60000) + `"`
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if req.URL.Path != "/summary" {
			return false
		}
		if len(req.Header.Get("If-None-Match")) > 8<<10 {
			http.Error(w, "Request Header Or Cookie Too Large", http.StatusBadRequest)
			return true
		}
		if req.Header.Get("If-None-Match") == "" {
			w.Header().Set("ETag", long)
		}
		return false
	}
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
		t.Fatal(err)
	}
	// The server now sends a short ETag of its own.
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if req.URL.Path == "/summary" && len(req.Header.Get("If-None-Match")) > 8<<10 {
			http.Error(w, "Request Header Or Cookie Too Large", http.StatusBadRequest)
			return true
		}
		return false
	}
	second := o.commit("os/stable", testtree.Tree{"b": testtree.File("b\n", 0o644)}, 1700000100)
	if err := os.Chtimes(filepath.Join(o.dir, remote.SummaryFile), past, past); err != nil {
		t.Fatal(err)
	}
	o.resetHits()
	res, err := remote.Pull(ctx, dst, fastOpts("os/stable"))
	if err != nil {
		t.Fatalf("pull after the server refused the cached validators: %v", err)
	}
	if res.Refs[0].New != second {
		t.Errorf("origin:os/stable = %s, want %s", res.Refs[0].New, second)
	}
	// The cache now holds what the server answers 304 to.
	o.resetHits()
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
		t.Fatal(err)
	}
	if n, sent := o.hitsOf("/summary"), o.servedOf("/summary"); n != 1 || sent != 0 {
		t.Errorf("third pull: summary requested %d times, %d bytes sent; want once, answered 304", n, sent)
	}
}

// A server whose clock is behind this one's: a summary fetched in the
// second it changed, by the server's clock (its Date), is fetched whole
// next time, not vouched for by a 304 that could hide a rewrite within
// that second.
func TestPullSummaryCacheServerClockBehind(t *testing.T) {
	o := newOrigin(t)
	o.commit("os/stable", testtree.Tree{"a": testtree.File("a\n", 0o644)}, 1700000000)
	serverNow := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	if err := os.Chtimes(filepath.Join(o.dir, remote.SummaryFile), serverNow, serverNow); err != nil {
		t.Fatal(err)
	}
	o.fault = func(w http.ResponseWriter, req *http.Request, n int) bool {
		w.Header().Set("Date", serverNow.UTC().Format(http.TimeFormat))
		return false
	}
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	for i := range 2 {
		o.resetHits()
		if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
			t.Fatal(err)
		}
		if o.servedOf("/summary") == 0 {
			t.Errorf("pull %d: a summary fetched in the second it changed, by the server's clock, was vouched for by a 304", i+1)
		}
	}
}

// A remote whose URL changes keeps the summary of its present URL alone:
// the copies kept for earlier URLs go once the new one's is stored, so
// that a URL changed now and then does not fill tmp/cache. Another
// remote's copies, one named like the first with a suffix included, stay.
func TestPullSummaryCacheKeepsPresentURLOnly(t *testing.T) {
	o := agedOrigin(t)
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	other := "origin-0123456789abcdef"
	if _, err := remote.AddRemote(dst, remote.Remote{Name: other, URL: o.srv.URL}, remote.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	otherOpts := fastOpts("os/stable")
	otherOpts.Remote = other
	if _, err := remote.Pull(ctx, dst, otherOpts); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dst.CacheDir(), "summaries")
	list := func() (mine, others []string) {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), other+"-") {
				others = append(others, e.Name())
			} else {
				mine = append(mine, e.Name())
			}
		}
		return mine, others
	}
	_, before := list()
	for i := 0; i < 5; i++ {
		// The same server under another URL each time.
		u := o.srv.URL + strings.Repeat("/", i+1)
		if _, err := remote.AddRemote(dst, remote.Remote{Name: "origin", URL: u}, remote.AddOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
			t.Fatal(err)
		}
	}
	mine, others := list()
	if len(mine) != 2 || !slices.Equal(others, before) || len(before) != 2 {
		t.Errorf("after pulls from 5 URLs the cache holds %q for origin, want a summary and its validators; %q for %s, want %q", mine, others, other, before)
	}
}

// A remote moved to a URL that serves no summary keeps no copy of its
// earlier URL's either: the copy the new URL does not have goes with the
// copies of every other URL the remote had.
func TestPullSummaryCacheDropsOldURLWhenNewHasNone(t *testing.T) {
	o := agedOrigin(t)
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dst.CacheDir(), "summaries")
	if ents, _ := os.ReadDir(dir); len(ents) == 0 {
		t.Fatal("the first pull cached no summary")
	}
	if err := os.Remove(filepath.Join(o.dir, remote.SummaryFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.AddRemote(dst, remote.Remote{Name: "origin", URL: o.srv.URL + "/"}, remote.AddOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	remote.Pull(ctx, dst, fastOpts("os/stable")) // with no summary to fetch, it may fail
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 0 {
		t.Errorf("the remote's URL serves no summary, yet the cache keeps %q", names)
	}
}

// agedOrigin is an origin holding one commit on os/stable whose summary
// was written an hour ago: older than a cache's freshness, so that each
// pull asks the server again.
func agedOrigin(t *testing.T) *origin {
	t.Helper()
	o := newOrigin(t)
	o.commit("os/stable", testtree.Tree{"a": testtree.File("a\n", 0o644)}, 1700000000)
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(o.dir, remote.SummaryFile), past, past); err != nil {
		t.Fatal(err)
	}
	return o
}
