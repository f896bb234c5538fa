package main

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// killServer serves an archive repository slowly, so that a pull can be
// killed part way, and logs every object request with the run it came from.
type killServer struct {
	files http.Handler
	big   map[string]bool // URL paths of the large objects, sent in slices

	mu      sync.Mutex
	run     int
	reqs    []killReq
	trigger func(path string, sent int64) // called as a large object is sent
}

type killReq struct {
	run      int
	path     string
	rng      string
	sent     int64
	complete bool // the handler wrote the whole response
}

// slowWriter sends a response in 32 KiB slices, 3ms apart.
type slowWriter struct {
	http.ResponseWriter
	s    *killServer
	path string
	sent int64
	err  error
}

func (w *slowWriter) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) && w.err == nil {
		n := min(len(b)-done, 32<<10)
		var m int
		m, w.err = w.ResponseWriter.Write(b[done : done+n])
		w.ResponseWriter.(http.Flusher).Flush()
		done += m
		w.sent += int64(m)
		w.s.mu.Lock()
		trigger := w.s.trigger
		w.s.mu.Unlock()
		if trigger != nil {
			trigger(w.path, w.sent)
		}
		time.Sleep(3 * time.Millisecond)
	}
	return done, w.err
}

func (s *killServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/objects/") {
		s.files.ServeHTTP(w, r)
		return
	}
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	sw := &slowWriter{ResponseWriter: w, s: s, path: r.URL.Path}
	if !s.big[r.URL.Path] {
		time.Sleep(5 * time.Millisecond)
	}
	s.files.ServeHTTP(sw, r)
	s.mu.Lock()
	s.reqs = append(s.reqs, killReq{run, r.URL.Path, r.Header.Get("Range"), sw.sent, sw.err == nil})
	s.mu.Unlock()
}

// storedSet lists the objects in a repository as URL paths, and its
// partial downloads with their sizes.
func storedSet(t *testing.T, path string) (map[string]bool, map[string]int64) {
	t.Helper()
	objs := map[string]bool{}
	root := filepath.Join(path, "objects")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		objs["/objects/"+rel] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	partials := map[string]int64{}
	ents, _ := os.ReadDir(filepath.Join(path, "tmp", "pull-partial"))
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			id := strings.TrimSuffix(e.Name(), ".file")
			partials["/objects/"+id[:2]+"/"+id[2:]+".file"] = fi.Size()
		}
	}
	return objs, partials
}

// TestPullKilledResumes kills `otree pull` at several points, some chosen
// at random, one in the middle of a large object, and checks that every
// run leaves a repository fsck accepts with no ref moved, that no run
// fetches an object an earlier run stored, that a large object is
// continued with Range rather than fetched again, and that the last run
// completes the pull.
func TestPullKilledResumes(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)

	tr := testtree.Tree{}
	for i := range 40 {
		tr[fmt.Sprintf("etc/f%02d", i)] = testtree.File(strings.Repeat(fmt.Sprintf("file %d\n", i), 30), 0o644)
	}
	bigRand := rand.New(rand.NewSource(7))
	for _, name := range []string{"usr/a.bin", "usr/b.bin"} {
		b := make([]byte, 3<<19)
		bigRand.Read(b)
		tr[name] = testtree.File(string(b), 0o644)
	}
	src := newCLI(t)
	srcDir := source(t, tr)
	id := src.commitTree("main", srcDir, "one", 1700000000)
	src.ok("summary", "-u")
	s := &killServer{files: http.FileServer(http.Dir(src.path)), big: map[string]bool{}}
	bigSize := map[string]int64{}
	for _, name := range []string{"/usr/a.bin", "/usr/b.bin"} {
		e, err := src.r.Lookup(id, name)
		if err != nil {
			t.Fatal(err)
		}
		p := objectPath(repo.KindFile, e.ID)
		s.big[p] = true
		fi, err := os.Stat(filepath.Join(src.path, p))
		if err != nil {
			t.Fatal(err)
		}
		bigSize[p] = fi.Size()
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	dst := filepath.Join(t.TempDir(), "dest")
	r, err := repo.Init(dst, repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	exe, env := otreeBinary(t)
	add := exec.Command(exe, "--repo="+dst, "remote", "add", "origin", srv.URL)
	add.Env = env
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("remote add: %v\n%s", err, out)
	}

	// Kills: at random times, then once a large object is 40% sent,
	// then at random again; the last run completes.
	type plan struct {
		after   time.Duration
		midBig  bool
		noLimit bool
	}
	plans := []plan{
		{after: time.Duration(20+rng.Intn(100)) * time.Millisecond},
		{midBig: true},
		{after: time.Duration(20+rng.Intn(150)) * time.Millisecond},
		{noLimit: true},
	}
	kills := 0
	for run, pl := range plans {
		before, partialsBefore := storedSet(t, dst)
		kill := make(chan struct{}, 1)
		s.mu.Lock()
		s.run = run
		s.trigger = nil
		if pl.midBig {
			s.trigger = func(path string, sent int64) {
				if s.big[path] && sent >= bigSize[path]*2/5 {
					select {
					case kill <- struct{}{}:
					default:
					}
				}
			}
		}
		s.mu.Unlock()
		cmd := exec.Command(exe, "--repo="+dst, "pull", "--disable-fsync", "origin")
		cmd.Env = env
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var timeout <-chan time.Time
		switch {
		case pl.noLimit:
			timeout = time.After(10 * time.Second)
		case pl.midBig:
			timeout = time.After(5 * time.Second)
		default:
			timeout = time.After(pl.after)
		}
		killed := false
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("run %d: %v\n%s", run, err, out.String())
			}
		case <-kill:
			killed = true
		case <-timeout:
			if pl.noLimit || pl.midBig {
				t.Fatalf("run %d did not finish or reach a large object", run)
			}
			killed = true
		}
		if killed {
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			kills++
		}
		s.mu.Lock()
		s.trigger = nil
		s.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // lets the server log the requests of the dead process

		after, _ := storedSet(t, dst)
		var lost []string
		s.mu.Lock()
		for _, q := range s.reqs {
			if q.run != run {
				continue
			}
			if before[q.path] {
				t.Errorf("run %d fetched %s, which an earlier run stored", run, q.path)
			}
			if p, ok := partialsBefore[q.path]; ok && p > 0 && q.rng != fmt.Sprintf("bytes=%d-", p) {
				t.Errorf("run %d asked for %s with Range %q though %d bytes were kept", run, q.path, q.rng, p)
			}
			if q.complete && !after[q.path] && !strings.HasSuffix(q.path, ".commitmeta") {
				lost = append(lost, q.path)
			}
		}
		s.mu.Unlock()
		// Only the objects in flight when the process died may be lost.
		if len(lost) > 8 {
			t.Errorf("run %d was sent %d objects it did not keep: %v", run, len(lost), lost)
		}
		t.Logf("run %d: killed %v, %d objects stored, %d sent but not kept", run, killed, len(after), len(lost))

		rr, err := repo.Open(dst)
		if err != nil {
			t.Fatal(err)
		}
		refs, _ := rr.ListRefs("")
		rep, err := rr.Fsck(context.Background(), repo.FsckOptions{})
		if err != nil || !rep.OK() || len(rep.Incomplete) != 0 {
			t.Errorf("run %d: fsck: %v %+v", run, err, rep)
		}
		// A kill after the ref moved (the pull had finished) is fine, as
		// long as the ref names the complete commit.
		if killed && len(refs) != 0 && (len(refs) != 1 || refs[0].Commit != id || len(rep.Partial) != 0) {
			t.Errorf("run %d was killed and left refs %v, partial commits %v: a ref may move only to a complete commit", run, refs, rep.Partial)
		}
		if !killed {
			if len(refs) != 1 || refs[0].Commit != id || len(rep.Partial) != 0 {
				t.Errorf("after the last run: refs %v, partial %v", refs, rep.Partial)
			}
			co := filepath.Join(t.TempDir(), "co")
			if _, err := checkout.Checkout(context.Background(), rr, id, co, checkout.Options{UserMode: true}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(testtree.Read(t, srcDir, testtree.ReadOptions{}), testtree.Read(t, co, testtree.ReadOptions{})); diff != "" {
				t.Errorf("checkout differs:\n%s", diff)
			}
		}
		rr.Close()
		if !killed {
			break
		}
	}

	// A large object crosses the wire about once in all, however often
	// its transfer was cut.
	sent := map[string]int64{}
	ranged := 0
	s.mu.Lock()
	for _, q := range s.reqs {
		sent[q.path] += q.sent
		if s.big[q.path] && q.rng != "" {
			ranged++
		}
	}
	s.mu.Unlock()
	for p, size := range bigSize {
		if sent[p] > size+int64(kills)*(512<<10) {
			t.Errorf("%s (%d bytes) was sent %d bytes over %d kills", p, size, sent[p], kills)
		}
	}
	if ranged == 0 {
		t.Error("no large object was continued with Range")
	}
	if _, partials := storedSet(t, dst); len(partials) != 0 {
		t.Errorf("partial downloads left: %v", partials)
	}
}
