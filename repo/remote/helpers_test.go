package remote_test

import (
	"context"
	"encoding/hex"
	"io/fs"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// bigContent is larger than what an import holds in memory, so it takes
// the spooled path; half of it compresses, half does not.
var bigContent = func() string {
	rng := rand.New(rand.NewSource(1))
	b := make([]byte, 3<<20/2)
	rng.Read(b)
	return strings.Repeat("otree ", (3<<20/2)/6) + string(b)
}()

// tree has every kind of entry pull must carry: tiny files (stored
// uncompressed), compressible ones, a large one, symlinks, an executable,
// nested and empty directories.
var tree = testtree.Tree{
	"etc/demo.conf":      testtree.File("key=value\n", 0o644),
	"etc/motd":           testtree.File(strings.Repeat("welcome to the demo host\n", 20), 0o644),
	"bin/hello":          testtree.File("#!/bin/sh\necho hello\n", 0o755),
	"bin/hi":             testtree.Symlink("hello"),
	"usr/share/big.bin":  testtree.File(bigContent, 0o644),
	"usr/share/doc/a":    testtree.File("a\n", 0o644),
	"usr/lib/empty":      testtree.File("", 0o600),
	"usr/lib/up":         testtree.Symlink("../../etc/demo.conf"),
	"var/lib/thing":      testtree.Dir(0o750),
	"var/lib/thing/deep": testtree.Dir(0o700),
}

var zero uint32

// origin is an archive repository served over HTTP, with a request log and
// an optional fault per request.
type origin struct {
	t   testing.TB
	r   *repo.Repo
	dir string
	srv *httptest.Server

	mu     sync.Mutex
	hits   map[string]int
	served map[string]int64    // body bytes written, by path
	ranges map[string][]string // Range header of each request, by path
	fault  func(w http.ResponseWriter, req *http.Request, hit int) bool
}

// countingWriter counts the body bytes a handler writes.
type countingWriter struct {
	http.ResponseWriter
	o    *origin
	path string
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.o.mu.Lock()
	w.o.served[w.path] += int64(n)
	w.o.mu.Unlock()
	return n, err
}

func (w *countingWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func newOrigin(t testing.TB) *origin {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "origin")
	r, err := repo.Init(dir, repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	o := &origin{t: t, r: r, dir: dir, hits: map[string]int{}, served: map[string]int64{}, ranges: map[string][]string{}}
	files := http.FileServer(http.Dir(dir))
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		o.mu.Lock()
		o.hits[req.URL.Path]++
		n := o.hits[req.URL.Path]
		o.ranges[req.URL.Path] = append(o.ranges[req.URL.Path], req.Header.Get("Range"))
		fault := o.fault
		o.mu.Unlock()
		w = &countingWriter{ResponseWriter: w, o: o, path: req.URL.Path}
		if fault != nil && fault(w, req, n) {
			return
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// commit commits tree to branch and updates the summary.
func (o *origin) commit(branch string, tr testtree.Tree, ts int64, bindRefs ...string) repo.ID {
	o.t.Helper()
	src := filepath.Join(o.t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		o.t.Fatal(err)
	}
	os.Chmod(src, 0o755)
	testtree.Create(o.t, src, tr)
	res, err := commit.Commit(context.Background(), o.r, commit.Options{
		Branch: branch, BindRefs: bindRefs, Subject: "test", Timestamp: time.Unix(ts, 0), NoSync: true,
		OwnerUID: &zero, OwnerGID: &zero,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}},
	})
	if err != nil {
		o.t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(context.Background(), o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		o.t.Fatal(err)
	}
	return res.Commit
}

// objectHits counts requests for objects since the last reset.
func (o *origin) objectHits() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for p, c := range o.hits {
		if strings.HasPrefix(p, "/objects/") {
			n += c
		}
	}
	return n
}

func (o *origin) resetHits() {
	o.mu.Lock()
	o.hits = map[string]int{}
	o.served = map[string]int64{}
	o.ranges = map[string][]string{}
	o.mu.Unlock()
}

// servedOf is how many body bytes were sent for path.
func (o *origin) servedOf(path string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.served[path]
}

// rangesOf lists the Range header of each request for path ("" for none).
func (o *origin) rangesOf(path string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ranges[path]...)
}

func (o *origin) hitsOf(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

// objectURLPath is the path a client requests for an object.
func objectURLPath(kind repo.Kind, id repo.ID) string {
	s := id.String()
	return "/objects/" + s[:2] + "/" + s[2:] + "." + kind.String()
}

// newDest makes a repository to pull into with origin configured.
func newDest(t *testing.T, mode repo.Mode, url string) *repo.Repo {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := remote.AddRemote(r, remote.Remote{Name: "origin", URL: url}, remote.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// fastOpts are pull options for tests: no fsync, quick retries.
func fastOpts(refs ...string) remote.PullOptions {
	return remote.PullOptions{Remote: "origin", Refs: refs, NoSync: true, RetryDelay: time.Millisecond, Timeout: 5 * time.Second}
}

// storedObjects lists every object file in a repository as "kind id".
func storedObjects(t *testing.T, r *repo.Repo) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(r.Path("objects"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(r.Path("objects"), p)
		out[strings.ReplaceAll(rel, "/", "")] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkSameTree checks out commit from both repositories and compares.
func checkSameTree(t *testing.T, a, b *repo.Repo, id repo.ID) {
	t.Helper()
	read := func(r *repo.Repo) testtree.Tree {
		dst := filepath.Join(t.TempDir(), "co")
		if _, err := checkout.Checkout(context.Background(), r, id, dst, checkout.Options{UserMode: true}); err != nil {
			t.Fatal(err)
		}
		return testtree.Read(t, dst, testtree.ReadOptions{})
	}
	want, got := read(a), read(b)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checkout differs (-source +pulled):\n%s", diff)
	}
}

// checkFsck runs fsck and fails on any problem.
func checkFsck(t *testing.T, r *repo.Repo) *repo.FsckReport {
	t.Helper()
	rep, err := r.Fsck(context.Background(), repo.FsckOptions{})
	if err != nil {
		t.Fatalf("fsck: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("fsck found problems: %v", rep.Problems)
	}
	return rep
}

// checkNothingMoved checks that a failed pull wrote no ref and left the
// repository consistent: it may keep verified objects it published before
// the failure, but every commit among them is marked partial and fsck finds
// nothing wrong.
func checkNothingMoved(t *testing.T, r *repo.Repo) {
	t.Helper()
	refs, err := r.ListRefs("")
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 0 {
		t.Errorf("refs written by a failed pull: %v", refs)
	}
	checkKilledState(t, r)
}

// checkKilledState checks what an interrupted pull may leave: fsck finds
// no problem (an unreferenced commit missing objects but not marked
// partial would be one), and no commit is incomplete without its mark.
func checkKilledState(t *testing.T, r *repo.Repo) {
	t.Helper()
	rep := checkFsck(t, r)
	if len(rep.Incomplete) != 0 {
		t.Errorf("commits neither complete nor marked partial: %v", rep.Incomplete)
	}
}

func mustRef(t *testing.T, r *repo.Repo, name string) repo.ID {
	t.Helper()
	id, err := r.ReadRef(name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func lookup(t testing.TB, r *repo.Repo, commit repo.ID, p string) repo.Entry {
	t.Helper()
	e, err := r.Lookup(commit, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// summaryCase is an encoded summary (hex) that DecodeSummary rejects with
// an error mentioning want.
type summaryCase struct{ name, hex, want string }

// rejectSummaries checks that DecodeSummary rejects each case, with an
// error mentioning its want and each of also.
func rejectSummaries(t *testing.T, cases []summaryCase, also ...string) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := hex.DecodeString(c.hex)
			if err != nil {
				t.Fatal(err)
			}
			_, err = remote.DecodeSummary(b)
			errContains(t, err, append(also, c.want)...)
		})
	}
}

func errContains(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}
