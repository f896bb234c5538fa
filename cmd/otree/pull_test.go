package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// serve publishes c's repository over HTTP; hook, if it returns true, has
// answered the request itself.
func serve(t *testing.T, c *cli, hook func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	files := http.FileServer(http.Dir(c.path))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hook != nil && hook(w, r) {
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// servedPair is a repository with the fixture committed to os/stable,
// served over HTTP, and a bare-user repository with it as remote origin.
func servedPair(t *testing.T) (src, dst *cli) {
	t.Helper()
	src = newCLI(t)
	src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	src.ok("summary", "-u")
	url := serve(t, src, nil)
	dst = newBareUserCLI(t)
	dst.ok("remote", "add", "origin", url)
	return src, dst
}

// newBareUserCLI is a bare-user repository to pull into.
func newBareUserCLI(t *testing.T) *cli {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dest")
	r, err := repo.Init(p, repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &cli{t: t, path: p, r: r}
}

func objectPath(kind repo.Kind, id repo.ID) string {
	s := id.String()
	return "/objects/" + s[:2] + "/" + s[2:] + "." + kind.String()
}

func TestPullCommand(t *testing.T) {
	src := newCLI(t)
	first := src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	src.ok("summary", "-u")
	url := serve(t, src, nil)

	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "origin", url)
	if got := dst.ok("remote", "refs", "origin"); got != "origin:os/stable\n" {
		t.Errorf("remote refs = %q", got)
	}
	// remote summary prints the server's summary as summary -v prints it
	// there (size and time only of commits already here); a file://
	// remote's summary file is read directly.
	if got, want := dst.ok("remote", "summary", "origin"), "* os/stable\n    Latest Commit:\n      "+first.String()+"\n\n"; got != want {
		t.Errorf("remote summary = %q, want %q", got, want)
	}
	dst.ok("remote", "add", "local", "file://"+src.path)
	if got := dst.ok("remote", "summary", "--json", "local"); got != src.ok("summary", "-v", "--json") {
		t.Errorf("remote summary of a file:// remote = %q", got)
	}
	bare := newCLI(t)
	dst.ok("remote", "add", "nosummary", "file://"+bare.path)
	dst.fails(exitError, []string{"summary", "hint: `otree summary -u` run in that repository writes one"}, "remote", "summary", "nosummary")
	dst.fails(exitError, []string{"nope"}, "remote", "summary", "nope")
	dst.ok("remote", "delete", "local")
	dst.ok("remote", "delete", "nosummary")
	out := dst.ok("pull", "origin", "os/stable")
	// OSTree's closing line (TestPullSummaryParityWithOSTree), then the refs.
	closing := regexp.MustCompile(`^5 metadata, 5 content objects fetched; \d+ (B|KiB) transferred in \d+ seconds; \d+(\.\d\x{a0}kB| bytes) content written\n`)
	if !closing.MatchString(out) || !strings.HasSuffix(out, "\norigin:os/stable: "+first.String()+" (new)\n") {
		t.Errorf("pull printed %q", out)
	}
	if got := dst.ok("rev-parse", "origin:os/stable"); got != first.String()+"\n" {
		t.Errorf("rev-parse = %q", got)
	}
	dst.ok("fsck", "-q")
	co := filepath.Join(t.TempDir(), "co")
	dst.ok("checkout", "-U", "origin:os/stable", co)
	if got := testtree.Read(t, co, testtree.ReadOptions{}); got["sub/secret"].Content != "psst" || got["link"].Target != "a.txt" {
		t.Errorf("checkout of the pulled commit: %+v", got)
	}

	// A new commit: --json reports the move and counts only new objects.
	second := src.commitTree("os/stable", source(t, testtree.Tree{"a.txt": testtree.File("hello\n", 0o644)}), "two", 1700000100)
	src.ok("summary", "-u")
	var res remote.PullResult
	if err := json.Unmarshal([]byte(dst.ok("pull", "--json", "origin")), &res); err != nil {
		t.Fatal(err)
	}
	// commit + root dirtree (a.txt and the root dirmeta are already here)
	if len(res.Refs) != 1 || res.Refs[0].Old != first || res.Refs[0].New != second || res.ObjectsFetched != 2 ||
		res.MetadataFetched != 2 || res.ContentFetched != 0 || res.ContentWritten != 0 || res.BytesWritten == 0 {
		t.Errorf("pull --json = %+v", res)
	}
	// Nothing new: nothing transferred, which OSTree's line leaves out.
	if out := dst.ok("pull", "origin"); !strings.Contains(out, "(unchanged)") || !strings.HasPrefix(out, "0 metadata, 0 content objects fetched; 0 bytes content written\n") {
		t.Errorf("second pull printed %q", out)
	}
	// A file:// remote is imported from, as with pull-local.
	byFile := newBareUserCLI(t)
	byFile.ok("remote", "add", "local", "file://"+src.path)
	if out := byFile.ok("pull", "local", "os/stable"); !regexp.MustCompile(`^\d+ metadata, \d+ content objects imported; \d+(\.\d\x{a0}kB| bytes) content written\n`).MatchString(out) {
		t.Errorf("pull from a file:// remote printed %q", out)
	}

	// --mirror writes the local branch; --depth=1 brings the parent.
	mir := newBareUserCLI(t)
	mir.ok("remote", "add", "origin", url)
	mir.ok("pull", "--mirror", "--depth=1", "origin")
	if got := mir.ok("rev-parse", "os/stable^"); got != first.String()+"\n" {
		t.Errorf("mirror parent = %q", got)
	}
	mir.ok("fsck", "-q")

	// --commit-metadata-only leaves a partial commit fsck accepts.
	meta := newBareUserCLI(t)
	meta.ok("remote", "add", "origin", url)
	if err := json.Unmarshal([]byte(meta.ok("pull", "--json", "--commit-metadata-only", "origin")), &res); err != nil || res.ObjectsFetched != 1 {
		t.Errorf("--commit-metadata-only: %+v, %v", res, err)
	}
	if !meta.r.IsCommitPartial(second) {
		t.Error("commit-only pull did not mark the commit partial")
	}
	meta.ok("fsck", "-q")

	dst.fails(exitUsage, []string{"--depth"}, "pull", "--depth=-2", "origin")
	dst.fails(exitUsage, nil, "pull")
	dst.fails(exitError, []string{`"nope"`, "not configured"}, "pull", "nope")
	dst.fails(exitError, []string{`"zzz"`}, "pull", "origin", "zzz")
}

func TestPullCommandFailures(t *testing.T) {
	src := newCLI(t)
	id := src.commitTree("main", source(t, fixture), "one", 1700000000)
	src.ok("summary", "-u")
	secret := mustLookup(t, src.r, id, "/sub/secret").ID
	missing := objectPath(repo.KindFile, secret)
	url := serve(t, src, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != missing {
			return false
		}
		http.NotFound(w, r)
		return true
	})
	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "origin", url)
	dst.fails(exitError, []string{url + missing, "404"}, "pull", "origin")
	if refs := dst.ok("refs"); refs != "" {
		t.Errorf("a failed pull wrote refs: %q", refs)
	}
	dst.fails(exitUsage, []string{"network-retries"}, "pull", "--network-retries=-1", "origin")
}

func TestPullCommandTimeout(t *testing.T) {
	src := newCLI(t)
	src.commitTree("main", source(t, fixture), "one", 1700000000)
	src.ok("summary", "-u")
	url := serve(t, src, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/summary" {
			return false
		}
		<-r.Context().Done()
		return true
	})
	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "origin", url)
	dst.fails(exitError, []string{url + "/summary", "timed out"}, "pull", "--timeout=50ms", "--network-retries=1", "origin")
	if refs := dst.ok("refs"); refs != "" {
		t.Errorf("a failed pull wrote refs: %q", refs)
	}
	// No value turns the timeout off: zero or less is refused, not
	// taken as the default.
	for v, want := range map[string]string{"0": "--timeout=0s", "-1s": "--timeout=-1s"} {
		start := time.Now()
		dst.fails(exitUsage, []string{want}, "pull", "--timeout="+v, "--network-retries=0", "origin")
		dst.fails(exitUsage, []string{want}, "find-remotes", "--timeout="+v, "org.example.Os", "main")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("--timeout=%s: refused after %v", v, d)
		}
	}
}

func TestPullLocalCommand(t *testing.T) {
	src := newCLI(t)
	id := src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	dst := newBareUserCLI(t)
	if out := dst.ok("pull-local", src.path); !regexp.MustCompile(`^5 metadata, 5 content objects imported; \d+ bytes content written\nos/stable: ` + id.String() + ` \(new\)\n$`).MatchString(out) {
		t.Errorf("pull-local printed %q", out)
	}
	var res remote.PullResult
	if err := json.Unmarshal([]byte(dst.ok("pull-local", "--json", "--remote=up", src.path, "os/stable")), &res); err != nil ||
		len(res.Refs) != 1 || res.Refs[0].Ref != "up:os/stable" || res.ObjectsFetched != 0 {
		t.Errorf("pull-local --remote --json = %+v, %v", res, err)
	}
	dst.ok("fsck", "-q")
	// A corrupt source object is refused and named.
	obj := src.r.ObjectPath(repo.KindFile, mustLookup(t, src.r, id, "/sub/secret").ID)
	b, _ := os.ReadFile(obj)
	b[len(b)-1] ^= 1
	os.WriteFile(obj, b, 0o644)
	fresh := newBareUserCLI(t)
	fresh.fails(exitError, []string{obj, "corrupt"}, "pull-local", src.path)
	if refs := fresh.ok("refs"); refs != "" {
		t.Errorf("a failed pull-local wrote refs: %q", refs)
	}
	fresh.fails(exitError, []string{"none: no such directory"}, "pull-local", filepath.Join(t.TempDir(), "none"))
	fresh.fails(exitError, []string{"no config", "hint: create a repository with `otree init`"}, "pull-local", t.TempDir())
}

// pull-local from a repository of the same mode on the same filesystem
// hardlinks the file objects, as OSTree's does, and writes no content;
// --no-hardlinks copies them.
func TestPullLocalHardlinksCommand(t *testing.T) {
	src := newBareUserCLI(t)
	id := src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	obj := objectPath(repo.KindFile, mustLookup(t, src.r, id, "/a.txt").ID)
	same := func(c *cli) bool {
		t.Helper()
		a, err := os.Stat(filepath.Join(src.path, obj))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.Stat(filepath.Join(c.path, obj))
		if err != nil {
			t.Fatal(err)
		}
		return os.SameFile(a, b)
	}
	linked := newBareUserCLI(t)
	if out := linked.ok("pull-local", src.path); !strings.HasPrefix(out, "5 metadata, 5 content objects imported; 0 bytes content written\n") {
		t.Errorf("pull-local printed %q", out)
	}
	if !same(linked) {
		t.Errorf("pull-local copied %s", obj)
	}
	linked.ok("fsck", "-q")
	src.ok("fsck", "-q")
	copied := newBareUserCLI(t)
	var res remote.PullResult
	if err := json.Unmarshal([]byte(copied.ok("pull-local", "--no-hardlinks", "--json", src.path)), &res); err != nil ||
		res.ContentLinked != 0 || res.ContentWritten == 0 {
		t.Errorf("pull-local --no-hardlinks --json = %+v, %v", res, err)
	}
	if same(copied) {
		t.Errorf("pull-local --no-hardlinks linked %s", obj)
	}
	copied.ok("fsck", "-q")
}

// On a terminal, pull draws its progress: objects of those needed, bytes,
// rate and, while receiving, the time left.
func TestPullProgressOnTerminal(t *testing.T) {
	src := newCLI(t)
	tr := testtree.Tree{}
	for i := range 40 {
		tr[fmt.Sprintf("f%02d", i)] = testtree.File(strings.Repeat(fmt.Sprint(i), 1000), 0o644)
	}
	src.commitTree("main", source(t, tr), "one", 1700000000)
	src.ok("summary", "-u")
	url := serve(t, src, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ".file") {
			time.Sleep(80 * time.Millisecond) // long enough for a few progress lines
		}
		return false
	})
	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "origin", url)
	m, s := openPTY(t)
	var out bytes.Buffer
	code := run(context.Background(), []string{"--repo=" + dst.path, "pull", "origin", "main"}, strings.NewReader(""), &out, s)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	s.Close()
	screen := readScreen(m, "")
	// 40 files, one dirtree, one dirmeta and the commit; its commitmeta
	// is asked for and absent.
	for _, want := range []string{"Receiving: 43 of 43 objects", "/s", ", ETA 0:0"} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal output %q lacks %q", screen, want)
		}
	}
	if !strings.Contains(out.String(), "origin:main") {
		t.Errorf("stdout %q", out.String())
	}
}

// --update-frequency sets how often the progress line is redrawn: a pull
// of over half a second draws it several times at the default tenth of a
// second, and once (the final count) at one every 5 s.
func TestPullUpdateFrequency(t *testing.T) {
	src := newCLI(t)
	src.commitTree("main", source(t, testtree.Tree{"slow": testtree.File("slow", 0o644)}), "one", 1700000000)
	src.ok("summary", "-u")
	url := serve(t, src, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ".file") {
			time.Sleep(700 * time.Millisecond)
		}
		return false
	})
	draws := func(flags ...string) int {
		dst := newBareUserCLI(t)
		dst.ok("remote", "add", "origin", url)
		m, s := openPTY(t)
		args := append([]string{"--repo=" + dst.path, "pull", "origin", "main"}, flags...)
		if code := run(context.Background(), args, strings.NewReader(""), io.Discard, s); code != 0 {
			t.Fatalf("%q: exit %d", args, code)
		}
		s.Close()
		screen := readScreen(m, "")
		return strings.Count(screen, "Receiving:")
	}
	if n := draws(); n < 3 {
		t.Errorf("default frequency: %d progress lines in 0.7 s, want several", n)
	}
	if n := draws("--update-frequency=5000"); n != 1 {
		t.Errorf("--update-frequency=5000: %d progress lines in 0.7 s, want only the final one", n)
	}
	dst := newBareUserCLI(t)
	dst.fails(exitUsage, []string{"--update-frequency"}, "pull", "--update-frequency=-1", "origin")
}

// The pull flags OSTree has for checks reach the library: a downgrade is
// refused by --timestamp-check and --timestamp-check-from-rev, a mode
// outside 0775 by --bareuseronly-files, a wrong binding passes with
// --disable-verify-bindings; --http-header is sent; bad values are usage
// errors.
func TestPullCheckFlags(t *testing.T) {
	src := newCLI(t)
	old := src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	suid := maps.Clone(fixture)
	suid["su"] = testtree.Entry{Mode: fs.ModeSetuid | 0o755, Content: "su"}
	cur := src.commitTree("os/stable", source(t, suid), "two", 1700000100)
	dst := newBareUserCLI(t)
	dst.fails(exitError, []string{"outside 0775", "hint: --bareuseronly-files refuses"}, "pull-local", "--bareuseronly-files", src.path, "os/stable")
	dst.ok("pull-local", src.path, "os/stable")
	if err := src.r.SetRef("os/stable", old); err != nil {
		t.Fatal(err)
	}
	dst.fails(exitError, []string{"older", old.String(), cur.String()}, "pull-local", "--timestamp-check", src.path, "os/stable")
	dst.fails(exitError, []string{"older", old.String(), cur.String()}, "pull-local", "-T", src.path, "os/stable") // OSTree's short name
	dst.fails(exitError, []string{"older", old.String()}, "pull-local", "--timestamp-check-from-rev=os/stable", src.path, old.String())
	dst.fails(exitError, []string{"--timestamp-check-from-rev", "nope"}, "pull-local", "--timestamp-check-from-rev=nope", src.path)
	if got, _ := dst.r.ReadRef("os/stable"); got != cur {
		t.Fatalf("a refused pull moved os/stable to %s", got)
	}
	dst.ok("pull-local", src.path, "os/stable")

	// Served under another name, the commit's binding does not match.
	if err := src.r.SetRef("os/other", cur); err != nil {
		t.Fatal(err)
	}
	dst.fails(exitError, []string{"os/other"}, "pull-local", src.path, "os/other")
	dst.ok("pull-local", "--disable-verify-bindings", src.path, "os/other")

	src.ok("summary", "-u")
	var mu sync.Mutex
	var got []string
	url := serve(t, src, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		return false
	})
	web := newBareUserCLI(t)
	web.ok("remote", "add", "origin", url)
	web.ok("pull", "--http-header=Authorization=Bearer t0ken", "origin", "os/stable")
	mu.Lock()
	sent := slices.Clone(got)
	mu.Unlock()
	if len(sent) == 0 || slices.ContainsFunc(sent, func(h string) bool { return h != "Bearer t0ken" }) {
		t.Errorf("Authorization headers received: %q", sent)
	}
	sub := newBareUserCLI(t)
	sub.ok("remote", "add", "origin", url)
	sub.ok("pull", "--subpath=/sub", "origin", "os/stable")
	if !sub.r.IsCommitPartial(old) { // os/stable was set back to old above
		t.Error("pull --subpath left the commit unmarked")
	}
	if has, _ := sub.r.HasObject(repo.KindFile, mustLookup(t, src.r, old, "/a.txt").ID); has {
		t.Error("pull --subpath=/sub fetched /a.txt")
	}
	sub.ok("checkout", "-U", "--subpath=/sub", "origin:os/stable", filepath.Join(t.TempDir(), "co"))
	web.fails(exitUsage, []string{"--http-header"}, "pull", "--http-header=Bad Name=x", "origin")
	web.fails(exitUsage, []string{"--http-header"}, "pull", "--http-header=novalue", "origin")
	web.fails(exitUsage, []string{"--require-static-deltas"}, "pull", "--require-static-deltas", "--disable-static-deltas", "origin")
	web.fails(exitError, []string{"no static delta"}, "pull", "--require-static-deltas", "origin", "os/other")
}

// What a pull decides on the way reaches stderr: a retry and a listed
// static delta the server lacks always; with -v also every request.
func TestPullReportsOnStderr(t *testing.T) {
	src := newCLI(t)
	id := src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	src.ok("static-delta", "generate", "--empty", "--to=os/stable")
	src.ok("summary", "-u")
	var summaries atomic.Int32
	url := serve(t, src, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.URL.Path == "/summary" && summaries.Add(1) == 1:
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		case strings.HasPrefix(r.URL.Path, "/deltas/"):
			http.NotFound(w, r)
			return true
		}
		return false
	})
	for _, verbose := range []bool{false, true} {
		dst := newBareUserCLI(t)
		dst.ok("remote", "add", "origin", url)
		summaries.Store(0)
		args := []string{"pull", "origin", "os/stable"}
		if verbose {
			args = append([]string{"-v"}, args...)
		}
		res := dst.run(args...)
		if res.code != 0 {
			t.Fatalf("pull: exit %d, %s", res.code, res.stderr)
		}
		for _, want := range []string{
			"level=INFO msg=retrying url=" + url + "/summary attempt=2",
			`level=INFO msg="static delta not found; fetching objects" delta=` + id.String(),
		} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("verbose=%v: stderr lacks %q:\n%s", verbose, want, res.stderr)
			}
		}
		fetched := "level=DEBUG msg=fetched url=" + url + objectPath(repo.KindCommit, id) + " bytes="
		if got := strings.Contains(res.stderr, fetched); got != verbose {
			t.Errorf("verbose=%v: stderr names the commit's request: %v\n%s", verbose, got, res.stderr)
		}
		// Every request: file objects' too, and those answered 404 (the
		// commit has no detached metadata).
		fileFetched := regexp.MustCompile(`level=DEBUG msg=fetched url=` + regexp.QuoteMeta(url) + `/objects/\S+\.file bytes=`)
		if got := len(fileFetched.FindAllString(res.stderr, -1)); got != 0 != verbose {
			t.Errorf("verbose=%v: stderr names %d file object requests\n%s", verbose, got, res.stderr)
		}
		answered := "level=DEBUG msg=answered url=" + url + objectPath(repo.KindCommitMeta, id) + " status=404"
		if got := strings.Contains(res.stderr, answered); got != verbose {
			t.Errorf("verbose=%v: stderr names the commitmeta's 404: %v\n%s", verbose, got, res.stderr)
		}
		if strings.Contains(res.stderr, "time=") {
			t.Errorf("stderr carries timestamps:\n%s", res.stderr)
		}
	}
}

// pull and pull-local -L take objects from a local repository first.
func TestPullLocalCacheFlag(t *testing.T) {
	src, dst := servedPair(t)
	cache := newBareUserCLI(t)
	cache.ok("pull-local", src.path)
	out := dst.ok("pull", "-L", cache.path, "origin", "os/stable")
	// The objects taken from the cache are counted apart, as OSTree does.
	if !strings.HasPrefix(out, "0 metadata, 0 content objects fetched (5 meta, 5 content local); ") {
		t.Errorf("pull -L printed %q", out)
	}
	local := newBareUserCLI(t)
	if out := local.ok("pull-local", "--localcache-repo="+cache.path, src.path); !strings.HasPrefix(out, "0 metadata, 0 content objects imported (5 meta, 5 content local); ") {
		t.Errorf("pull-local --localcache-repo printed %q", out)
	}
	dst.fails(exitError, []string{"local cache", "/nope"}, "pull", "-L", "/nope", "origin")
}

// --per-object-fsync syncs each object and never calls syncfs; without it
// a pull of more than a few objects syncs the filesystem once per batch.
func TestPullPerObjectFsync(t *testing.T) {
	strace := testbin.NeedStrace(t)
	src := newCLI(t)
	tree := testtree.Tree{}
	for i := range 100 {
		tree[fmt.Sprintf("d%d/f%d", i%7, i)] = testtree.File(fmt.Sprintf("file %d\n", i), 0o644)
	}
	src.commitTree("main", source(t, tree), "many", 1700000000)
	exe, env := otreeBinary(t)
	// The flag, and OSTree's repository-wide keys: core.per-object-fsync
	// does what the flag does, core.fsync=false syncs nothing.
	for _, c := range []struct {
		flag        bool
		config      string
		perObject   bool
		noSyncAtAll bool
	}{{}, {flag: true, perObject: true}, {config: "core.per-object-fsync=true", perObject: true}, {config: "core.fsync=false", noSyncAtAll: true}} {
		dst := newBareUserCLI(t)
		if k, v, ok := strings.Cut(c.config, "="); ok {
			dst.ok("config", "set", k, v)
		}
		log := filepath.Join(t.TempDir(), "strace")
		args := []string{"-f", "-y", "-o", log, "-e", "trace=syncfs,fsync,fdatasync", exe, "--repo=" + dst.path, "pull-local", "--json", src.path}
		if c.flag {
			args = append(args, "--per-object-fsync")
		}
		cmd := exec.Command(strace, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("strace otree pull-local: %v\n%s", err, out)
		}
		var res remote.PullResult
		if err := json.Unmarshal(out, &res); err != nil || res.ObjectsFetched < 100 {
			t.Fatalf("pull-local --json: %v, %+v", err, res)
		}
		data, _ := os.ReadFile(log)
		syncfs := strings.Count(string(data), "syncfs(")
		staged := len(regexp.MustCompile(`fsync\(\d+</[^>]*/tmp/txn-[^>]*/[^>]*>`).FindAllString(string(data), -1))
		syncs := strings.Count(string(data), "sync(") // fsync, fdatasync, syncfs
		switch {
		case c.noSyncAtAll && syncs != 0:
			t.Errorf("%s: %d sync calls, want none", c.config, syncs)
		case c.perObject && (syncfs != 0 || staged < int(res.ObjectsFetched)):
			t.Errorf("--per-object-fsync %s: %d syncfs, %d staged objects fsynced of %d", c.config, syncfs, staged, res.ObjectsFetched)
		case !c.perObject && !c.noSyncAtAll && syncfs == 0:
			t.Errorf("a pull of %d objects without --per-object-fsync called no syncfs", res.ObjectsFetched)
		}
		dst.ok("fsck", "-q")
	}
	newCLI(t).fails(exitUsage, []string{"--per-object-fsync", "--disable-fsync"}, "pull-local", "--per-object-fsync", "--disable-fsync", src.path)
}

// --cache-dir puts the summary cache where it is told; "-" turns it off.
func TestPullCacheDir(t *testing.T) {
	_, dst := servedPair(t)
	dir := filepath.Join(t.TempDir(), "cache")
	dst.ok("pull", "--cache-dir="+dir, "origin", "os/stable")
	if m, _ := filepath.Glob(filepath.Join(dir, "origin-*.summary")); len(m) != 1 {
		t.Errorf("--cache-dir holds %q, want the summary", m)
	}
	dst.ok("pull", "--cache-dir=-", "origin", "os/stable")
	if m, _ := filepath.Glob(filepath.Join(dst.r.CacheDir(), "summaries", "*")); len(m) != 0 {
		t.Errorf("--cache-dir=- wrote %q", m)
	}
	// remote refs and remote summary take it too, as in OSTree.
	for _, sub := range []string{"refs", "summary"} {
		d := filepath.Join(t.TempDir(), sub)
		dst.ok("remote", sub, "--cache-dir="+d, "origin")
		if m, _ := filepath.Glob(filepath.Join(d, "origin-*.summary")); len(m) != 1 {
			t.Errorf("remote %s --cache-dir holds %q, want the summary", sub, m)
		}
	}
}

// pull REMOTE:BRANCH pulls that branch of REMOTE, as OSTree does; further
// arguments are not pulled then (OSTree ignores them), with a warning.
// REMOTE BRANCH@COMMIT pulls COMMIT for BRANCH.
func TestPullRemoteColonBranch(t *testing.T) {
	src, dst := servedPair(t)
	other := src.commitTree("other", source(t, testtree.Tree{"o": testtree.File("other\n", 0o644)}), "other", 1700000001)
	src.ok("summary", "-u")
	stable, err := src.r.ReadRef("os/stable")
	if err != nil {
		t.Fatal(err)
	}

	// The arguments left out are named as README says warnings name
	// things: an escape sequence escaped, not sent to the terminal.
	res := dst.run("pull", "origin:os/stable", "other", "x\x1b[2J")
	if res.code != 0 || !strings.Contains(res.stdout, "origin:os/stable: "+stable.String()) ||
		!strings.Contains(res.stderr, `warning: origin:os/stable names the one branch to pull; not pulling other x\x1b[2J`+"\n") {
		t.Errorf("pull origin:os/stable other: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if got := dst.ok("refs"); got != "origin:os/stable\n" {
		t.Errorf("refs = %q", got)
	}
	dst.ok("pull", "origin:other")
	if got := dst.ok("rev-parse", "origin:other"); got != other.String()+"\n" {
		t.Errorf("origin:other = %q, want %s", got, other)
	}
	dst.fails(exitUsage, []string{`"origin:"`}, "pull", "origin:")
	dst.fails(exitUsage, []string{`":other"`}, "pull", ":other")
	dst.fails(exitError, []string{"nosuch"}, "pull", "origin:nosuch")

	// BRANCH@COMMIT points the ref at that commit, as OSTree's pull does;
	// OSTree's refspec takes no commit, and neither does otree's.
	dst.ok("pull", "origin", "other@"+stable.String(), "--disable-verify-bindings")
	if got := dst.ok("rev-parse", "origin:other"); got != stable.String()+"\n" {
		t.Errorf("origin:other = %q after other@%s, want it", got, stable)
	}
	dst.fails(exitUsage, []string{`"origin:other@`, "BRANCH@COMMIT"}, "pull", "origin:other@"+other.String())
}

// An OSTree archive repository served over HTTP is recognised by its
// config and refused by name before its summary or any object is
// requested; remote refs names it too.
func TestPullFromOSTreeRepository(t *testing.T) {
	o := needOSTree(t, "archive")
	tree := source(t, testtree.Tree{"f": testtree.File("ostree\n", 0o644)})
	o.ok("commit", "-b", "main", "--tree=dir="+tree)
	o.ok("summary", "-u")
	var mu sync.Mutex
	var asked []string
	url := serve(t, &cli{t: t, path: o.path}, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		asked = append(asked, r.URL.Path)
		mu.Unlock()
		return false
	})

	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "origin", url)
	want := []string{url + "/config", "an OSTree repository, not an otree one", "core.mode=archive-z2"}
	dst.fails(exitError, want, "pull", "origin", "main")
	mu.Lock()
	if !slices.Equal(asked, []string{"/config"}) {
		t.Errorf("pull requested %v; want the config only", asked)
	}
	mu.Unlock()
	dst.fails(exitError, want, "remote", "refs", "origin")
	if got := dst.ok("refs"); got != "" {
		t.Errorf("refs after refused pulls: %q", got)
	}
}

// pull and pull-local close with OSTree's line, in its words and forms: a
// script that reads OSTree's reads otree's. The counts, bytes and seconds
// are left out of the comparison (the two store other objects); the
// shape of each line is compared, for a pull of objects, of a static
// delta, with nothing new, a --dry-run and a --commit-metadata-only pull.
func TestPullSummaryParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "bare-user") // the client OSTree pulls into
	// One server each, with the same two commits of os/stable and a static
	// delta between them.
	src := newCLI(t)
	osrv := filepath.Join(t.TempDir(), "ostree-server")
	o.okIn(osrv, "init", "--mode=archive")
	for _, tree := range []string{source(t, fixture), source(t, testtree.Tree{"a.txt": testtree.File("changed\n", 0o644)})} {
		src.ok("commit", "-b", "os/stable", tree)
		o.okIn(osrv, "commit", "-b", "os/stable", tree)
	}
	src.ok("static-delta", "generate", "os/stable")
	o.okIn(osrv, "static-delta", "generate", "os/stable")
	src.ok("summary", "-u")
	o.okIn(osrv, "summary", "-u")
	// OSTree counts the body of a 404 in the bytes it transferred (it asks
	// for detached metadata that is not there): none is sent, so that a
	// pull with nothing new transfers nothing there either.
	ourl := serve(t, &cli{t: t, path: osrv}, func(w http.ResponseWriter, r *http.Request) bool {
		if _, err := os.Stat(filepath.Join(osrv, filepath.FromSlash(path.Clean(r.URL.Path)))); err != nil {
			w.WriteHeader(http.StatusNotFound)
			return true
		}
		return false
	})
	url := serve(t, src, nil)

	transferred := regexp.MustCompile(`\d+ (B|KiB) transferred`)
	shape := func(s string) string {
		return regexp.MustCompile(`\d+`).ReplaceAllString(transferred.ReplaceAllString(normSizes(s), "XFER transferred"), "N")
	}
	// compare checks otree's first line against OSTree's one line.
	compare := func(what string, mine, theirs string) {
		t.Helper()
		line, _, _ := strings.Cut(mine, "\n")
		if theirs = strings.TrimSuffix(theirs, "\n"); strings.Contains(theirs, "\n") || shape(line) != shape(theirs) {
			t.Errorf("%s: otree\n%s\nOSTree\n%s", what, mine, theirs)
		}
	}
	fresh := func() (*cli, string) {
		c := newBareUserCLI(t)
		c.ok("remote", "add", "origin", url)
		p := filepath.Join(t.TempDir(), "ostree-client")
		o.okIn(p, "init", "--mode=bare-user")
		o.okIn(p, "remote", "add", "--no-gpg-verify", "origin", ourl)
		return c, p
	}
	c, p := fresh()
	both := func(what string, args ...string) {
		t.Helper()
		compare(what, c.ok(args...), o.okIn(p, args...))
	}
	first, ofirst := strings.TrimSpace(src.ok("rev-parse", "os/stable^")), strings.TrimSpace(o.okIn(osrv, "rev-parse", "os/stable^"))
	mine, theirs := c.ok("pull", "origin", first), o.okIn(p, "pull", "origin", ofirst)
	compare("pull of objects", mine, theirs)
	// The static delta starts from the commit the branch names here.
	c.ok("refs", "--create=origin:os/stable", first)
	o.okIn(p, "refs", "--create=origin:os/stable", ofirst)
	if !strings.HasSuffix(shape(theirs), " metadata, N content objects fetched; XFER transferred in N seconds; SIZE content written\n") {
		t.Errorf("OSTree's line has another shape: %q", theirs)
	}
	both("pull --dry-run", "pull", "--require-static-deltas", "--dry-run", "origin", "os/stable")
	both("pull of a delta", "pull", "origin", "os/stable")
	// With nothing new, nothing is transferred (the config and summary
	// are not counted) and the line says nothing of it.
	if mine := c.ok("pull", "origin", "os/stable"); !strings.HasPrefix(mine, "0 metadata, 0 content objects fetched; 0 bytes content written\n") {
		t.Errorf("pull with nothing new printed %q", mine)
	}
	both("pull --disable-static-deltas with nothing new", "pull", "--disable-static-deltas", "origin", "os/stable")
	// OSTree too leaves it out when it transferred nothing.
	if theirs := o.okIn(p, "pull", "--disable-static-deltas", "origin", "os/stable"); strings.Contains(theirs, "transferred") {
		t.Errorf("OSTree's line with nothing new: %q", theirs)
	}
	mine, theirs = c.ok("pull", "--require-static-deltas", "--dry-run", "origin", "os/stable"), o.okIn(p, "pull", "--require-static-deltas", "--dry-run", "origin", "os/stable")
	if want := "Delta update: 0/0 parts, 0 bytes/0 bytes, 0 bytes total uncompressed\n"; mine != want || theirs != want {
		t.Errorf("pull --dry-run with nothing new: otree %q, OSTree %q, want %q", mine, theirs, want)
	}

	// Objects from a local cache are counted apart; here every object
	// is in it, and nothing is transferred.
	cached, pc := fresh()
	mine, theirs = cached.ok("pull", "-L", c.path, "origin", "os/stable"), o.okIn(pc, "pull", "--localcache-repo="+p, "origin", "os/stable")
	// What each transfers besides differs (OSTree fetches the commit from
	// the remote all the same, otree looks for a delta index), so that
	// part is left out of the comparison.
	noXfer := regexp.MustCompile(`; \d+ (B|KiB) transferred in \d+ seconds`)
	compare("pull -L", noXfer.ReplaceAllString(mine, ""), noXfer.ReplaceAllString(theirs, ""))
	if !strings.HasSuffix(shape(theirs), " metadata, N content objects fetched (N meta, N content local); XFER transferred in N seconds; SIZE content written\n") {
		t.Errorf("OSTree's line has another shape: %q", theirs)
	}

	// A file:// remote is imported from, as pull-local does.
	c, p = fresh()
	c.ok("remote", "add", "local", "file://"+src.path)
	o.okIn(p, "remote", "add", "--no-gpg-verify", "local", "file://"+osrv)
	mine, theirs = c.ok("pull", "local", "os/stable"), o.okIn(p, "pull", "local", "os/stable")
	compare("pull from a file:// remote", mine, theirs)
	if !strings.HasSuffix(shape(theirs), " metadata, N content objects imported; SIZE content written\n") {
		t.Errorf("OSTree's line has another shape: %q", theirs)
	}

	c, p = fresh()
	both("pull --commit-metadata-only", "pull", "--commit-metadata-only", "origin", "os/stable")
	c, p = fresh()
	mine, theirs = c.ok("pull-local", src.path, "os/stable"), o.okIn(p, "pull-local", osrv, "os/stable")
	compare("pull-local", mine, theirs)
	if !strings.HasSuffix(shape(theirs), " metadata, N content objects imported; SIZE content written\n") {
		t.Errorf("OSTree's line has another shape: %q", theirs)
	}
}

// A bare-user-only repository refuses a file whose mode has bits outside
// 0775, pulled or applied from a delta, as OSTree's does: its objects keep
// their mode and are hardlinked into checkouts.
func TestBareUserOnlyRefusesPulledModes(t *testing.T) {
	suid := maps.Clone(fixture)
	suid["su"] = testtree.Entry{Mode: fs.ModeSetuid | 0o755, Content: "su"}
	suid["ww"] = testtree.Entry{Mode: 0o666, Content: "ww"}
	tree := source(t, suid)
	src := newCLI(t)
	id := src.commitTree("os/stable", tree, "one", 1700000000)
	delta := filepath.Join(t.TempDir(), "delta")
	src.ok("static-delta", "generate", "--empty", "--to=os/stable", "--filename="+delta)

	dst := newCLIMode(t, repo.ModeBareUserOnly)
	dst.fails(exitError, []string{"bare-user-only repository refuses mode"}, "pull-local", src.path, "os/stable")
	dst.fails(exitError, []string{"bare-user-only"}, "static-delta", "apply-offline", delta)
	if has, _ := dst.r.HasObject(repo.KindCommit, id); has {
		t.Error("a refused commit was stored")
	}
	if refs, _ := dst.r.ListRefs(""); len(refs) != 0 {
		t.Errorf("refused pulls set refs: %v", refs)
	}
	if out, err := exec.Command("find", dst.path+"/objects", "-type", "f", "(", "-perm", "-4000", "-o", "-perm", "-0002", ")").CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("objects with refused modes on disk: %v %s", err, out)
	}

	// OSTree refuses the same pull.
	o := needOSTree(t, "archive")
	o.ok("commit", "-b", "os/stable", tree)
	ob := needOSTree(t, "bare-user-only")
	if out, err := ob.run("pull-local", o.path, "os/stable"); err == nil || !strings.Contains(string(out), "invalid mode") {
		t.Errorf("ostree pull-local into bare-user-only: %v %s", err, out)
	}
}

// A pulled file that has an owner other than 0:0 is refused by a
// bare-user-only repository, naming the owner; the error gives no commit
// advice, which would not apply to a pull.
func TestBareUserOnlyPullNamesOwner(t *testing.T) {
	src := newCLI(t)
	owner := uint32(1000)
	src.commitTree("os/stable", source(t, testtree.Tree{"f": testtree.File("f", 0o644)}), "one", 1700000000,
		func(o *commit.Options) { o.OwnerUID, o.OwnerGID = &owner, &owner })
	dst := newCLIMode(t, repo.ModeBareUserOnly)
	res := dst.fails(exitError, []string{"bare-user-only", "owned by 1000:1000"}, "pull-local", src.path, "os/stable")
	if strings.Contains(res.stderr, "canonical") {
		t.Errorf("pull error gives commit advice: %q", res.stderr)
	}
}

// A user other than root pulling into a bare repository links only the
// objects it owns: a copy of another user's object would need a chown it
// may not make, and a link of it would let that user rewrite the object
// after it was verified. The copy then fails, as without links.
func TestPullLocalBareAsUserLinksOnlyOwn(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run otree as another user")
	}
	dir, bin, env := nobodyDir(t)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, env, asNobody()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	src := filepath.Join(dir, "src")
	if _, err := repo.Init(src, repo.InitOptions{Mode: repo.ModeBare}); err != nil {
		t.Fatal(err)
	}
	commitOwned := func(branch string, owners map[string]int) {
		tree := filepath.Join(dir, "tree-"+branch)
		os.Mkdir(tree, 0o755)
		for name, uid := range owners {
			p := filepath.Join(tree, name)
			os.WriteFile(p, []byte(name+"\n"), 0o666)
			os.Chmod(p, 0o666) // readable and writable by all, so the kernel lets anyone link it
			if err := os.Chown(p, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
		commit := exec.Command(bin, "--repo="+src, "commit", "-b", branch, tree)
		commit.Env = env
		if out, err := commit.CombinedOutput(); err != nil {
			t.Fatalf("commit: %v\n%s", err, out)
		}
	}
	commitOwned("own", map[string]int{"mine": nobody})
	commitOwned("other", map[string]int{"theirs": 1234})
	object := func(repoPath, branch, name string) string {
		r, err := repo.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		id, err := r.ResolveRev(branch)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(repoPath, objectPath(repo.KindFile, mustLookup(t, r, id, "/"+name).ID))
	}
	shared := func(a, b string) bool {
		fa, errA := os.Stat(a)
		fb, errB := os.Stat(b)
		return errA == nil && errB == nil && os.SameFile(fa, fb)
	}

	dst := filepath.Join(dir, "dst")
	if out, err := run("--repo="+dst, "init", "--mode=bare"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if out, err := run("--repo="+dst, "pull-local", src, "own"); err != nil {
		t.Fatalf("pull-local of the user's own objects: %v\n%s", err, out)
	}
	if !shared(object(src, "own", "mine"), object(dst, "own", "mine")) {
		t.Errorf("the user's own object was copied, not linked")
	}
	out, err := run("--repo="+dst, "pull-local", src, "other")
	if err == nil {
		t.Errorf("pull-local of another user's object succeeded:\n%s", out)
	}
	if shared(object(src, "other", "theirs"), object(dst, "other", "theirs")) {
		t.Errorf("another user's object was linked into the pulling user's bare repository")
	}
}

// pull-local prints its line per ref in a few writes, not one write each:
// a mirror of 100,000 refs otherwise made as many write calls.
func TestPullLocalPrintsRefsBuffered(t *testing.T) {
	testbin.NeedStrace(t)
	src := newCLI(t)
	id := src.commitTree("main", source(t, fixture), "s", 1700000000)
	const n = 40
	for i := range n {
		if err := src.r.SetRef(fmt.Sprintf("many/r%02d", i), id); err != nil {
			t.Fatal(err)
		}
	}
	dst := newCLI(t)
	tr, err := straced(t, "-e trace=write", "--repo="+dst.path, "pull-local", "--disable-verify-bindings", src.path)
	if err != nil {
		t.Fatalf("pull-local: %v\n%s", err, tr.out)
	}
	if got := strings.Count(tr.out, ": "+id.String()+" (new)\n"); got != n+1 {
		t.Fatalf("pull-local printed %d new refs, want %d:\n%s", got, n+1, tr.out)
	}
	writes := 0
	for _, l := range tr.lines {
		if countCalls([]string{l}, "write") == 1 && strings.Contains(l, "write(1<") {
			writes++
		}
	}
	if writes > 2 {
		t.Errorf("pull-local of %d refs wrote standard output %d times; want at most 2", n+1, writes)
	}
}
