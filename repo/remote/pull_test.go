package remote_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/otree/otree/repo/sign"
)

var ctx = context.Background()

func TestPullRoundTrip(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive, repo.ModeBareUserOnly, repo.ModeBare} {
		t.Run(mode.String(), func(t *testing.T) {
			if mode == repo.ModeBare && os.Getuid() != 0 {
				t.Skip("bare mode needs root")
			}
			o := newOrigin(t)
			id := o.commit("os/stable", tree, 1700000000)
			dest := newDest(t, mode, o.srv.URL)

			var last remote.PullProgress
			opts := fastOpts()
			opts.Progress = func(p remote.PullProgress) { last = p }
			res, err := remote.Pull(ctx, dest, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Refs) != 1 || res.Refs[0].Ref != "origin:os/stable" || res.Refs[0].Branch != "os/stable" ||
				!res.Refs[0].Old.IsZero() || res.Refs[0].New != id || !res.Refs[0].Changed() {
				t.Errorf("refs = %+v", res.Refs)
			}
			if got := mustRef(t, dest, "origin:os/stable"); got != id {
				t.Errorf("origin:os/stable = %s, want %s", got, id)
			}
			want := len(storedObjects(t, o.r))
			if res.ObjectsFetched != int64(want) || len(storedObjects(t, dest)) != want {
				t.Errorf("fetched %d objects, stored %d, origin has %d", res.ObjectsFetched, len(storedObjects(t, dest)), want)
			}
			if res.BytesFetched < int64(len(bigContent))/2 {
				t.Errorf("bytes fetched = %d", res.BytesFetched)
			}
			if last.Scanning || last.Fetched != res.ObjectsFetched || last.Needed != last.Fetched || last.Bytes != res.BytesFetched {
				t.Errorf("last progress = %+v, result %+v", last, res)
			}
			checkSameTree(t, o.r, dest, id)
			if rep := checkFsck(t, dest); len(rep.Partial) != 0 || rep.Unreferenced != 0 {
				t.Errorf("fsck after pull: %+v", rep)
			}

			// Nothing new: only the summary, config and the commit's
			// detached metadata (for signatures made since) are read.
			o.resetHits()
			res, err = remote.Pull(ctx, dest, fastOpts())
			if err != nil {
				t.Fatal(err)
			}
			meta := objectURLPath(repo.KindCommitMeta, id)
			if res.ObjectsFetched != 0 || o.objectHits() != 1 || o.hitsOf(meta) != 1 || res.Refs[0].Changed() {
				t.Errorf("second pull fetched %d objects (%d requests, %d of %s), refs %+v", res.ObjectsFetched, o.objectHits(), o.hitsOf(meta), meta, res.Refs)
			}
		})
	}
}

func TestPullUpdateFetchesOnlyNew(t *testing.T) {
	o := newOrigin(t)
	first := o.commit("main", tree, 1700000000)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts("main")); err != nil {
		t.Fatal(err)
	}
	changed := testtree.Tree{}
	for k, v := range tree {
		changed[k] = v
	}
	changed["etc/demo.conf"] = testtree.File("key=other\n", 0o644)
	second := o.commit("main", changed, 1700000100)

	have := storedObjects(t, dest)
	var missing int
	for k := range storedObjects(t, o.r) {
		if !have[k] {
			missing++
		}
	}
	// commit, root dirtree, etc's dirtree, demo.conf
	if missing != 4 {
		t.Fatalf("origin has %d objects the destination lacks, want 4", missing)
	}
	o.resetHits()
	res, err := remote.Pull(ctx, dest, fastOpts("main"))
	if err != nil {
		t.Fatal(err)
	}
	// One more request than objects: the commit's detached metadata (404).
	if res.ObjectsFetched != int64(missing) || o.objectHits() != missing+1 {
		t.Errorf("fetched %d objects in %d requests, want %d", res.ObjectsFetched, o.objectHits(), missing)
	}
	if len(res.Refs) != 1 || res.Refs[0].Old != first || res.Refs[0].New != second {
		t.Errorf("refs = %+v", res.Refs)
	}
	checkSameTree(t, o.r, dest, second)
	checkFsck(t, dest)

	// The parent is not pulled at depth 0; --depth=1 fetches it too.
	fresh := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, fresh, fastOpts("main")); err != nil {
		t.Fatal(err)
	}
	if ok, _ := fresh.HasObject(repo.KindCommit, first); ok {
		t.Error("depth 0 pulled the parent commit")
	}
	opts := fastOpts("main")
	opts.Depth = -1
	res, err = remote.Pull(ctx, fresh, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.ObjectsFetched != 4 { // the first commit, its root and etc dirtrees, its demo.conf
		t.Errorf("depth -1 fetched %d objects, want 4", res.ObjectsFetched)
	}
	checkSameTree(t, o.r, fresh, first)
	checkFsck(t, fresh)
}

func TestPullWithoutSummary(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("main", tree, 1700000000)
	o.commit("other", testtree.Tree{"x": testtree.File("x", 0o644)}, 1700000000)
	if err := os.Remove(o.r.Path(remote.SummaryFile)); err != nil {
		t.Fatal(err)
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	_, err := remote.Pull(ctx, dest, fastOpts())
	errContains(t, err, o.srv.URL, "no summary")
	if !errors.Is(err, remote.ErrNoSummary) || errors.Is(err, repo.ErrNotFound) {
		t.Errorf("pull of all refs without a summary: %v, want ErrNoSummary only", err)
	}

	res, err := remote.Pull(ctx, dest, fastOpts("main"))
	if err != nil {
		t.Fatal(err)
	}
	if o.hitsOf("/refs/heads/main") != 1 || len(res.Refs) != 1 || res.Refs[0].New != id {
		t.Errorf("refs = %+v, ref file requested %d times", res.Refs, o.hitsOf("/refs/heads/main"))
	}
	_, err = remote.Pull(ctx, dest, fastOpts("nope"))
	errContains(t, err, o.srv.URL+"/refs/heads/nope", "404")
	if !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("missing ref: %v does not match repo.ErrNotFound", err)
	}
}

func TestPullRefsFromBranchesAndSummary(t *testing.T) {
	o := newOrigin(t)
	a := o.commit("a", testtree.Tree{"f": testtree.File("a", 0o644)}, 1700000000)
	b := o.commit("b/c", testtree.Tree{"f": testtree.File("b", 0o644)}, 1700000000)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)

	// No refs and no branches=: everything the summary lists.
	res, err := remote.Pull(ctx, dest, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refs) != 2 || res.Refs[0].Ref != "origin:a" || res.Refs[1].Ref != "origin:b/c" || res.Refs[1].New != b {
		t.Errorf("refs = %+v", res.Refs)
	}
	// branches= limits what is pulled.
	if _, err := remote.AddRemote(dest, remote.Remote{Name: "origin", URL: o.srv.URL, Branches: []string{"a"}}, remote.AddOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	res, err = remote.Pull(ctx, dest, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refs) != 1 || res.Refs[0].Ref != "origin:a" {
		t.Errorf("refs with branches=a: %+v", res.Refs)
	}
	// --mirror writes local branches and, given no refs, pulls every
	// branch whatever branches= says, as OSTree's does; it copies no
	// summary, as OSTree's does not with branches configured.
	opts := fastOpts()
	opts.Mirror = true
	res, err = remote.Pull(ctx, dest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refs) != 2 || res.Refs[0].Ref != "a" || res.Refs[1].Ref != "b/c" || mustRef(t, dest, "a") != a || mustRef(t, dest, "b/c") != b {
		t.Errorf("mirror refs = %+v", res.Refs)
	}
	if _, err := os.Stat(dest.Path(remote.SummaryFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a mirror with branches= configured copied the summary: %v", err)
	}
	// A branch the summary does not list is an error naming it.
	_, err = remote.Pull(ctx, dest, fastOpts("zzz"))
	errContains(t, err, `"zzz"`, o.srv.URL)
	// A commit id pulls the commit and writes no ref.
	res, err = remote.Pull(ctx, newDest(t, repo.ModeBareUser, o.srv.URL), fastOpts(b.String()))
	if err != nil || len(res.Refs) != 0 || len(res.Commits) != 1 || res.Commits[0] != b {
		t.Errorf("pull by id: %+v, %v", res, err)
	}
}

// TestPullMirrorIntoArchiveAndServeOn mirrors every branch into an archive
// repository, which then serves them on as its source did: with the
// source's summary and summary.sig, copied as OSTree's pull --mirror does.
// A mirror of named branches copies no summary.
func TestPullMirrorIntoArchiveAndServeOn(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	o.commit("os/testing", testtree.Tree{"a": testtree.File("a\n", 0o644)}, 1700000100)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true, SignKeys: []ed25519.PrivateKey{priv}}); err != nil {
		t.Fatal(err)
	}
	kept := []repo.ID{reencode(t, o, id, "/usr/share/big.bin"), reencode(t, o, id, "/etc/demo.conf")}
	mirror := newDest(t, repo.ModeArchive, o.srv.URL)
	opts := fastOpts()
	opts.Mirror = true
	if _, err := remote.Pull(ctx, mirror, opts); err != nil {
		t.Fatal(err)
	}
	if mustRef(t, mirror, "os/stable") != id {
		t.Fatal("mirror did not write the local branch")
	}
	checkFsck(t, mirror)
	// The mirror keeps the objects as its source compressed them, over
	// HTTP and from a local archive repository alike.
	local, err := repo.Init(filepath.Join(t.TempDir(), "local"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if _, err := remote.PullLocal(ctx, local, o.dir, remote.PullOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*repo.Repo{mirror, local} {
		for _, f := range kept {
			want, _ := os.ReadFile(o.r.ObjectPath(repo.KindFile, f))
			if got, err := os.ReadFile(r.ObjectPath(repo.KindFile, f)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: object %s is %d bytes (%v), not the source's %d", r.Path(), f.Short(), len(got), err, len(want))
			}
		}
	}
	for _, f := range []string{remote.SummaryFile, sign.SummarySigFile} {
		want, _ := os.ReadFile(o.r.Path(f))
		if got, err := os.ReadFile(mirror.Path(f)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s of the mirror: %v (%d bytes, want %d)", f, err, len(got), len(want))
		}
	}
	srv := newFileServer(t, mirror.Path())
	set := inlineKey(pub)
	set["sign-verify-summary"] = "true"
	set["sign-verify"] = "false"
	leaf := verifyingDest(t, srv, set)
	if _, err := remote.Pull(ctx, leaf, fastOpts("os/stable")); err != nil {
		t.Fatal(err)
	}
	checkSameTree(t, o.r, leaf, id)
	checkFsck(t, leaf)

	partial := newDest(t, repo.ModeArchive, o.srv.URL)
	opts.Refs = []string{"os/stable"}
	if _, err := remote.Pull(ctx, partial, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial.Path(remote.SummaryFile)); !os.IsNotExist(err) {
		t.Errorf("a mirror of some branches copied the summary: %v", err)
	}
}

// reencode rewrites the origin's object for path in commit with its content
// compressed by another zstd writer (with a checksum, which otree's never
// writes), so that a copy of it is told from a recompression.
func reencode(t *testing.T, o *origin, commit repo.ID, path string) repo.ID {
	t.Helper()
	e, err := o.r.Lookup(commit, path)
	if err != nil {
		t.Fatal(err)
	}
	h, rc, err := o.r.OpenFile(e.ID)
	if err != nil {
		t.Fatal(err)
	}
	content, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	obj := append(append(repo.AppendFileHeader(nil, h), 1), enc.EncodeAll(content, nil)...)
	enc.Close()
	if err := os.WriteFile(o.r.ObjectPath(repo.KindFile, e.ID), obj, 0o644); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

func newFileServer(t *testing.T, dir string) string {
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPullCommitMetadataOnly(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("main", tree, 1700000000)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	opts := fastOpts("main")
	opts.CommitMetadataOnly = true
	res, err := remote.Pull(ctx, dest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.ObjectsFetched != 1 || !dest.IsCommitPartial(id) || mustRef(t, dest, "origin:main") != id {
		t.Fatalf("commit-metadata-only: %+v, partial %v", res, dest.IsCommitPartial(id))
	}
	if rep := checkFsck(t, dest); len(rep.Partial) != 1 || rep.Partial[0] != id {
		t.Errorf("fsck partial = %v", rep.Partial)
	}
	// A full pull completes the commit and clears the marker.
	res, err = remote.Pull(ctx, dest, fastOpts("main"))
	if err != nil {
		t.Fatal(err)
	}
	if dest.IsCommitPartial(id) || res.ObjectsFetched != int64(len(storedObjects(t, o.r))-1) {
		t.Errorf("completing pull: %+v, still partial %v", res, dest.IsCommitPartial(id))
	}
	if rep := checkFsck(t, dest); len(rep.Partial) != 0 {
		t.Errorf("fsck partial after completing = %v", rep.Partial)
	}
	checkSameTree(t, o.r, dest, id)
}

// corruptFile rewrites the last byte of a small uncompressed file object.
func corruptFile(t *testing.T, o *origin, id repo.ID, p string) repo.ID {
	e := lookup(t, o.r, id, p)
	path := o.r.ObjectPath(repo.KindFile, e.ID)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x20
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// Every way a server can hand over something wrong ends in an error that
// names the URL, with no ref written and no object published.
func TestPullFaults(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, o *origin, id repo.ID) (refs []string, want []string)
		opts  func(*remote.PullOptions)
	}{
		{"corrupt file object", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			f := corruptFile(t, o, id, "/etc/demo.conf")
			return nil, []string{o.srv.URL + objectURLPath(repo.KindFile, f), "content hashes to"}
		}, nil},
		{"truncated compressed object", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			f := lookup(t, o.r, id, "/usr/share/big.bin").ID
			path := o.r.ObjectPath(repo.KindFile, f)
			b, _ := os.ReadFile(path)
			os.WriteFile(path, b[:len(b)/2], 0o644)
			return nil, []string{o.srv.URL + objectURLPath(repo.KindFile, f), f.String()}
		}, nil},
		{"HTML page instead of a dirtree", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			d := lookup(t, o.r, id, "/etc").ID
			p := objectURLPath(repo.KindDirTree, d)
			o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
				if req.URL.Path != p {
					return false
				}
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html><body>Welcome to nginx!</body></html>\n"))
				return true
			}
			return nil, []string{o.srv.URL + p, "dirtree object " + d.String(), "hashes to"}
		}, nil},
		{"HTML page instead of a file", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			f := lookup(t, o.r, id, "/bin/hello").ID
			p := objectURLPath(repo.KindFile, f)
			o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
				if req.URL.Path != p {
					return false
				}
				w.Write([]byte("<!DOCTYPE html><html>oops</html>"))
				return true
			}
			return nil, []string{o.srv.URL + p, "file object " + f.String(), "corrupt"}
		}, nil},
		{"dotdot in a dirtree", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			c, err := o.r.ReadCommit(id)
			if err != nil {
				t.Fatal(err)
			}
			f := lookup(t, o.r, id, "/etc/demo.conf").ID
			bad := (&repo.DirTree{Files: []repo.FileEntry{{Name: "..", ID: f}}}).Encode()
			badID := repo.Sum(bad)
			writeObject(t, o.r, repo.KindDirTree, badID, bad)
			evil := *c
			evil.RootTree = badID
			evil.Metadata = nil // unbound, so the tree is what gets refused
			enc := evil.Encode()
			evilID := repo.Sum(enc)
			writeObject(t, o.r, repo.KindCommit, evilID, enc)
			if err := o.r.SetRef("evil", evilID); err != nil {
				t.Fatal(err)
			}
			if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
				t.Fatal(err)
			}
			return []string{"evil"}, []string{o.srv.URL + objectURLPath(repo.KindDirTree, badID), `invalid name ".."`}
		}, nil},
		{"missing object", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			f := lookup(t, o.r, id, "/usr/share/doc/a").ID
			os.Remove(o.r.ObjectPath(repo.KindFile, f))
			return nil, []string{o.srv.URL + objectURLPath(repo.KindFile, f), "404"}
		}, nil},
		{"server error every time", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			d := lookup(t, o.r, id, "/usr").ID
			p := objectURLPath(repo.KindDirTree, d)
			o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
				if req.URL.Path != p {
					return false
				}
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
				return true
			}
			t.Cleanup(func() {
				if n := o.hitsOf(p); n != 3 {
					t.Errorf("%s requested %d times, want 3", p, n)
				}
			})
			return nil, []string{o.srv.URL + p, "503"}
		}, nil},
		{"hung server", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			f := lookup(t, o.r, id, "/etc/motd").ID
			p := objectURLPath(repo.KindFile, f)
			o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
				if req.URL.Path != p {
					return false
				}
				<-req.Context().Done()
				return true
			}
			return nil, []string{o.srv.URL + p, "timed out"}
		}, func(opts *remote.PullOptions) { opts.Timeout = 100 * time.Millisecond; opts.Attempts = 2 }},
		{"server stalls mid-body", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			f := lookup(t, o.r, id, "/usr/share/big.bin").ID
			p := objectURLPath(repo.KindFile, f)
			o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
				if req.URL.Path != p {
					return false
				}
				b, _ := os.ReadFile(o.r.ObjectPath(repo.KindFile, f))
				w.Header().Set("Content-Length", "1000000000")
				w.Write(b[:len(b)/2])
				w.(http.Flusher).Flush()
				<-req.Context().Done()
				return true
			}
			return nil, []string{o.srv.URL + p, "timed out"}
		}, func(opts *remote.PullOptions) { opts.Timeout = 200 * time.Millisecond; opts.Attempts = 1 }},
		{"server trickles", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			return nil, trickleObject(t, o, repo.KindFile, lookup(t, o.r, id, "/usr/share/big.bin").ID)
		}, func(opts *remote.PullOptions) { opts.LowSpeedTime = 100 * time.Millisecond; opts.Attempts = 2 }},
		{"server trickles a dirtree", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			return nil, trickleObject(t, o, repo.KindDirTree, lookup(t, o.r, id, "/usr").ID)
		}, func(opts *remote.PullOptions) { opts.LowSpeedTime = 100 * time.Millisecond; opts.Attempts = 1 }},
		{"not a repository", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
				w.Write([]byte("<html>hello</html>"))
				return true
			}
			return nil, []string{o.srv.URL + "/config", "not an otree repository"}
		}, nil},
		{"corrupt summary", func(t *testing.T, o *origin, id repo.ID) ([]string, []string) {
			os.WriteFile(o.r.Path(remote.SummaryFile), []byte("s\x01\x01"), 0o644)
			return nil, []string{o.srv.URL + "/summary", "non-canonical summary"}
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t)
			id := o.commit("main", tree, 1700000000)
			refs, want := tc.setup(t, o, id)
			dest := newDest(t, repo.ModeBareUser, o.srv.URL)
			opts := fastOpts(refs...)
			if tc.opts != nil {
				tc.opts(&opts)
			}
			// A guard against a pull that never gives up, which is
			// then reported as such, not as the test binary's timeout.
			pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			_, err := remote.Pull(pctx, dest, opts)
			if pctx.Err() != nil {
				t.Fatalf("the pull did not give up: %v", err)
			}
			errContains(t, err, want...)
			t.Log(err)
			// A failing pull gives up: nothing is asked for more times
			// than a request is tried.
			attempts := cmp.Or(opts.Attempts, remote.DefaultAttempts)
			o.mu.Lock()
			for p, n := range o.hits {
				if n > attempts {
					t.Errorf("%s requested %d times, at most %d tries", p, n, attempts)
				}
			}
			o.mu.Unlock()
			checkNothingMoved(t, dest)
			checkFsck(t, dest)
		})
	}
}

// trickleObject has o's server trickle the object kind id (TrickleBody)
// and returns what the pull's error must name: its URL and "too slow".
func trickleObject(t *testing.T, o *origin, kind repo.Kind, id repo.ID) []string {
	t.Helper()
	p := objectURLPath(kind, id)
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if req.URL.Path != p {
			return false
		}
		b, _ := os.ReadFile(o.r.ObjectPath(kind, id))
		remote.TrickleBody(w, req, b)
		return true
	}
	return []string{o.srv.URL + p, "too slow"}
}

func writeObject(t *testing.T, r *repo.Repo, kind repo.Kind, id repo.ID, data []byte) {
	t.Helper()
	if err := os.WriteFile(r.ObjectPath(kind, id), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPullRetries(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusRequestTimeout} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			o := newOrigin(t)
			id := o.commit("main", tree, 1700000000)
			f := lookup(t, o.r, id, "/usr/share/big.bin").ID
			p := objectURLPath(repo.KindFile, f)
			o.fault = func(w http.ResponseWriter, req *http.Request, hit int) bool {
				if (req.URL.Path == p || req.URL.Path == "/summary") && hit < 3 {
					http.Error(w, "try again", status)
					return true
				}
				return false
			}
			dest := newDest(t, repo.ModeBareUser, o.srv.URL)
			if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
				t.Fatal(err)
			}
			if o.hitsOf(p) != 3 || o.hitsOf("/summary") != 3 {
				t.Errorf("requests: object %d, summary %d, want 3 each", o.hitsOf(p), o.hitsOf("/summary"))
			}
			checkSameTree(t, o.r, dest, id)
			checkFsck(t, dest)
		})
	}
	// A broken transfer is retried too: the first answer is cut short.
	o := newOrigin(t)
	id := o.commit("main", tree, 1700000000)
	f := lookup(t, o.r, id, "/usr/share/big.bin").ID
	p := objectURLPath(repo.KindFile, f)
	o.fault = func(w http.ResponseWriter, req *http.Request, hit int) bool {
		if req.URL.Path != p || hit > 1 {
			return false
		}
		b, _ := os.ReadFile(o.r.ObjectPath(repo.KindFile, f))
		w.Header().Set("Content-Length", "1000000000")
		w.Write(b[:len(b)/2])
		return true
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if o.hitsOf(p) != 2 {
		t.Errorf("cut-short object requested %d times, want 2", o.hitsOf(p))
	}
	checkFsck(t, dest)
}

func TestPullCanceled(t *testing.T) {
	o := newOrigin(t)
	o.commit("main", tree, 1700000000)
	cctx, cancel := context.WithCancel(ctx)
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if strings.HasSuffix(req.URL.Path, ".file") {
			cancel()
			<-req.Context().Done()
			return true
		}
		return false
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	_, err := remote.Pull(cctx, dest, fastOpts())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	checkNothingMoved(t, dest)
}

func TestPullLocal(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	// Archive to bare-user, then bare-user back to archive.
	bu := newDest(t, repo.ModeBareUser, o.srv.URL)
	res, err := remote.PullLocal(ctx, bu, o.dir, remote.PullOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refs) != 1 || res.Refs[0].Ref != "os/stable" || int(res.ObjectsFetched) != len(storedObjects(t, o.r)) {
		t.Errorf("pull-local: %+v", res)
	}
	checkSameTree(t, o.r, bu, id)
	checkFsck(t, bu)

	ar, err := repo.Init(filepath.Join(t.TempDir(), "ar"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer ar.Close()
	res, err = remote.PullLocal(ctx, ar, bu.Path(), remote.PullOptions{NoSync: true, Remote: "up", Refs: []string{"os/stable"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refs) != 1 || res.Refs[0].Ref != "up:os/stable" {
		t.Errorf("pull-local --remote: %+v", res.Refs)
	}
	checkSameTree(t, o.r, ar, id)
	checkFsck(t, ar)
	res, err = remote.PullLocal(ctx, ar, bu.Path(), remote.PullOptions{NoSync: true, Remote: "up"})
	if err != nil || res.ObjectsFetched != 0 {
		t.Errorf("second pull-local fetched %+v, %v", res, err)
	}

	// A corrupt object in the source is refused, naming its path.
	f := corruptFile(t, o, id, "/etc/demo.conf")
	fresh := newDest(t, repo.ModeBareUser, o.srv.URL)
	_, err = remote.PullLocal(ctx, fresh, o.dir, remote.PullOptions{NoSync: true})
	errContains(t, err, o.r.ObjectPath(repo.KindFile, f), "content hashes to")
	checkNothingMoved(t, fresh)
}

func TestPullFileURL(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("main", tree, 1700000000)
	dest := newDest(t, repo.ModeBareUser, "file://"+o.dir)
	res, err := remote.Pull(ctx, dest, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refs) != 1 || res.Refs[0].Ref != "origin:main" {
		t.Errorf("refs = %+v", res.Refs)
	}
	checkSameTree(t, o.r, dest, id)
	refs, err := remote.RemoteRefs(ctx, dest, "origin", remote.PullOptions{})
	if err != nil || len(refs) != 1 || refs[0].Name != "main" || refs[0].Commit != id {
		t.Errorf("remote refs = %v, %v", refs, err)
	}
}

// TestPullURLPathAsWritten checks that the path of a remote's url is
// asked for as OSTree asks for it: "//" kept, as a server may tell it from
// "/", and dot segments removed.
func TestPullURLPathAsWritten(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("main", tree, 1700000000)
	var mu sync.Mutex
	var paths []string
	files := http.StripPrefix("//r", http.FileServer(http.Dir(o.dir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		paths = append(paths, req.URL.EscapedPath())
		mu.Unlock()
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	for _, u := range []string{srv.URL + "//r", srv.URL + "//x/../r/./"} {
		dest := newDest(t, repo.ModeBareUser, u)
		if _, err := remote.Pull(ctx, dest, fastOpts("main")); err != nil {
			t.Fatalf("url %s: %v (asked for %q)", u, err, paths)
		}
		checkSameTree(t, o.r, dest, id)
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "//r/") {
			t.Errorf("asked for %q, want paths under //r/", p)
		}
	}
}

// file://localhost/PATH is PATH, whatever the case of the host name.
func TestPullFileURLLocalhost(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("main", tree, 1700000000)
	for _, host := range []string{"localhost", "LocalHost"} {
		dest := newDest(t, repo.ModeBareUser, "file://"+host+o.dir)
		if _, err := remote.Pull(ctx, dest, fastOpts("main")); err != nil {
			t.Fatalf("file://%s: %v", host, err)
		}
		checkSameTree(t, o.r, dest, id)
	}
}

func TestPullErrors(t *testing.T) {
	o := newOrigin(t)
	o.commit("main", tree, 1700000000)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	_, err := remote.Pull(ctx, dest, remote.PullOptions{Remote: "nope"})
	errContains(t, err, `"nope"`)
	if !errors.Is(err, remote.ErrRemoteNotFound) {
		t.Errorf("%v does not match ErrRemoteNotFound", err)
	}
	_, err = remote.Pull(ctx, dest, remote.PullOptions{Remote: "origin", Depth: -2})
	errContains(t, err, "depth")
	_, err = remote.Pull(ctx, dest, fastOpts("bad..name/"))
	errContains(t, err, "bad..name/")
	checkNothingMoved(t, dest)

	// What the destination's mode cannot hold is refused, naming it.
	fifo := o.commit("fifo", testtree.Tree{"p": {Mode: fs.ModeNamedPipe | 0o644}}, 1700000000)
	f := lookup(t, o.r, fifo, "/p").ID
	_, err = remote.Pull(ctx, dest, fastOpts("fifo"))
	errContains(t, err, o.srv.URL+objectURLPath(repo.KindFile, f), "cannot store a fifo")
	checkNothingMoved(t, dest)
}

// A pull whose refs clash as paths with refs here ("origin:z" where
// "origin:z/x" exists) fails before it writes any of them, naming both;
// a summary listing "a" and "a/b" is refused before any object is
// fetched, also by a mirror pull.
func TestPullRefClash(t *testing.T) {
	o := newOrigin(t)
	c := o.commit("a", testtree.Tree{"f": testtree.File("x\n", 0o644)}, 1700000000)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts("a")); err != nil {
		t.Fatal(err)
	}
	if err := dest.SetRef("origin:z/x", c); err != nil {
		t.Fatal(err)
	}
	o.commit("a", testtree.Tree{"f": testtree.File("y\n", 0o644)}, 1700000001)
	o.commit("z", testtree.Tree{"f": testtree.File("z\n", 0o644)}, 1700000001)
	before, err := dest.ListRefs("")
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Pull(ctx, dest, fastOpts("a", "z"))
	errContains(t, err, "origin:z", "origin:z/x")
	var ce *repo.RefClashError
	if !errors.As(err, &ce) {
		t.Errorf("%v is not a RefClashError", err)
	}
	if after, _ := dest.ListRefs(""); !slices.Equal(before, after) {
		t.Errorf("refs before a failed pull %v, after %v", before, after)
	}

	// The server's summary lists "a" and "a/b".
	s := &remote.Summary{Refs: []repo.Ref{{Name: "a", Commit: c}, {Name: "a/b", Commit: c}}}
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if req.URL.Path != "/summary" {
			return false
		}
		w.Write(s.Encode())
		return true
	}
	for _, mirror := range []bool{false, true} {
		fresh := newDest(t, repo.ModeBareUser, o.srv.URL)
		o.resetHits()
		opts := fastOpts()
		opts.Mirror = mirror
		_, err := remote.Pull(ctx, fresh, opts)
		errContains(t, err, o.srv.URL+"/summary", `"a" and "a/b"`)
		if n := o.objectHits(); n != 0 {
			t.Errorf("mirror %v: %d objects requested from a summary that cannot be used", mirror, n)
		}
		checkNothingMoved(t, fresh)
	}
}

// A config only OSTree writes (archive-z2, indexed-deltas) makes the pull
// fail at once with ErrOSTreeRepository, naming the config's URL.
func TestPullRefusesOSTreeConfig(t *testing.T) {
	o := newOrigin(t)
	o.commit("main", smallTree, 1700000000)
	for _, cfg := range []string{
		"[core]\nrepo_version=1\nmode=archive-z2\n",
		"[core]\nrepo_version=1\nmode=archive\nindexed-deltas=true\n",
	} {
		o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
			if req.URL.Path != "/config" {
				return false
			}
			w.Write([]byte(cfg))
			return true
		}
		o.resetHits()
		dest := newDest(t, repo.ModeBareUser, o.srv.URL)
		_, err := remote.Pull(ctx, dest, fastOpts("main"))
		errContains(t, err, o.srv.URL+"/config", "OSTree")
		if !errors.Is(err, remote.ErrOSTreeRepository) {
			t.Errorf("%q: %v does not match ErrOSTreeRepository", cfg, err)
		}
		if n := o.hitsOf("/summary") + o.objectHits(); n != 0 {
			t.Errorf("%q: %d requests after the config", cfg, n)
		}
		checkNothingMoved(t, dest)
	}
}

// BRANCH@ID pulls commit ID and points the branch's ref at it, as OSTree's
// pull does: an older commit the summary no longer names, or one of a
// branch the summary does not list.
func TestPullBranchAtCommit(t *testing.T) {
	o := newOrigin(t)
	first := o.commit("main", tree, 1700000000)
	second := o.commit("main", testtree.Tree{"f": testtree.File("new\n", 0o644)}, 1700000100)
	bound := o.commit("bound", testtree.Tree{"g": testtree.File("g\n", 0o644)}, 1700000000)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)

	res, err := remote.Pull(ctx, dest, fastOpts("main@"+first.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refs) != 1 || res.Refs[0].Ref != "origin:main" || res.Refs[0].New != first || mustRef(t, dest, "origin:main") != first {
		t.Errorf("refs = %+v, want origin:main at the first commit %s", res.Refs, first)
	}
	checkSameTree(t, o.r, dest, first)
	checkFsck(t, dest)

	// Without a summary the ref file is not asked for.
	if err := os.Remove(o.r.Path(remote.SummaryFile)); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts("other@" + second.String())
	opts.Mirror = true
	opts.DisableVerifyBindings = true // commits are bound to their branch
	if _, err := remote.Pull(ctx, dest, opts); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dest, "other"); got != second || o.hitsOf("/refs/heads/other") != 0 {
		t.Errorf("other = %s (ref file asked %d times), want %s", got, o.hitsOf("/refs/heads/other"), second)
	}

	// Refused, changing nothing: a commit bound to other refs, an
	// abbreviated id, a branch asked for at two commits.
	for _, refs := range [][]string{
		{"main@" + bound.String()},
		{"main@" + first.String()[:10]},
		{"main@" + first.String(), "main@" + second.String()},
		{"main", "main@" + first.String()},
	} {
		_, err := remote.Pull(ctx, dest, fastOpts(refs...))
		if err == nil {
			t.Errorf("pull of %q succeeded", refs)
		}
		if got := mustRef(t, dest, "origin:main"); got != first {
			t.Errorf("pull of %q: origin:main moved to %s", refs, got)
		}
	}
	// The remote's branches= names branches, never commits.
	if err := dest.UpdateConfig(func(c *repo.Config) error {
		return c.Set(`remote "origin".branches`, "main@"+second.String()+";")
	}); err != nil {
		t.Fatal(err)
	}
	_, err = remote.Pull(ctx, dest, fastOpts())
	errContains(t, err, "remote origin", "main@")
	if got := mustRef(t, dest, "origin:main"); got != first {
		t.Errorf("pull of branches=main@: origin:main moved to %s", got)
	}
	// The same commit asked for twice is one ref written.
	res, err = remote.Pull(ctx, dest, fastOpts("main@"+second.String(), "main@"+second.String()))
	if err != nil || len(res.Refs) != 1 || res.Refs[0].New != second {
		t.Errorf("pull of main@ twice: %+v, %v", res, err)
	}
}

// A branch the source does not have is a *repo.RefNotFoundError, matching
// repo.ErrNotFound, whether the pull goes over HTTP (the summary lacks it)
// or is local (no such ref): a caller tells it from a failed transfer the
// same way for both, and the error names the branch and the source.
func TestPullMissingBranchIsRefNotFound(t *testing.T) {
	o := newOrigin(t)
	o.commit("os/stable", tree, 1700000000)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	for name, pull := range map[string]func() error{
		"http": func() error {
			_, err := remote.Pull(ctx, dest, fastOpts("os/nope"))
			return err
		},
		"local": func() error {
			_, err := remote.PullLocal(ctx, dest, o.r.Path(), remote.PullOptions{Refs: []string{"os/nope"}})
			return err
		},
	} {
		err := pull()
		var nf *repo.RefNotFoundError
		if !errors.As(err, &nf) || nf.Ref != "os/nope" || !errors.Is(err, repo.ErrNotFound) {
			t.Errorf("%s pull of a missing branch: %v, want a *repo.RefNotFoundError for os/nope", name, err)
		}
		var fe *remote.FetchError
		if errors.As(err, &fe) {
			t.Errorf("%s pull of a missing branch is a FetchError: %v", name, err)
		}
	}
	checkNothingMoved(t, dest)
}

// The remote's low-speed-* keys set the check when the caller does not.
func TestPullLowSpeedRemoteKeys(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("main", tree, 1700000000)
	slow := trickleObject(t, o, repo.KindFile, lookup(t, o.r, id, "/usr/share/big.bin").ID)
	for _, tc := range []struct {
		time string
		want []string
	}{
		{"1", slow},
		{"soon", []string{"origin", remote.KeyLowSpeedTime, `"soon"`}},
	} {
		t.Run(tc.time, func(t *testing.T) {
			dest, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: repo.ModeArchive})
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			rm := remote.Remote{Name: "origin", URL: o.srv.URL}
			if _, err := remote.AddRemote(dest, rm, remote.AddOptions{Set: map[string]string{remote.KeyLowSpeedTime: "1"}}); err != nil {
				t.Fatal(err)
			}
			// Written past AddRemote, which refuses a bad value, as a
			// config edited by hand or by another tool may hold one.
			if err := dest.UpdateConfig(func(c *repo.Config) error {
				return c.SetIn(`remote "origin"`, remote.KeyLowSpeedTime, tc.time)
			}); err != nil {
				t.Fatal(err)
			}
			opts := fastOpts()
			opts.Attempts = 1
			pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			_, err = remote.Pull(pctx, dest, opts)
			if pctx.Err() != nil {
				t.Fatalf("the pull did not give up: %v", err)
			}
			errContains(t, err, tc.want...)
			checkNothingMoved(t, dest)
			checkFsck(t, dest)
		})
	}
}
