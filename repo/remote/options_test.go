package remote_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

// DisableVerifyBindings accepts a commit served under a branch its
// binding does not list; without it the pull is refused.
func TestPullDisableVerifyBindings(t *testing.T) {
	o := newOrigin(t)
	testing2 := o.commit("os/testing", testtree.Tree{"a": testtree.File("a\n", 0o644)}, 1700000100)
	if err := o.r.SetRef("os/stable", testing2); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	var be *repo.RefBindingError
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); !errors.As(err, &be) {
		t.Fatalf("pull of a commit bound elsewhere: %v", err)
	}
	opts := fastOpts("os/stable")
	opts.DisableVerifyBindings = true
	if _, err := remote.Pull(ctx, dst, opts); err != nil {
		t.Fatalf("DisableVerifyBindings: %v", err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != testing2 {
		t.Errorf("origin:os/stable = %s, want %s", got, testing2)
	}
}

// TimestampCheck refuses to move a ref back to an older commit, whether its
// objects would come one by one or in a static delta, before fetching any
// of its tree; an equal timestamp passes. TimestampCheckFrom holds every
// requested commit, by id too, to a given commit's time.
func TestPullTimestampCheck(t *testing.T) {
	o := newOrigin(t)
	old := o.commit("os/stable", tree, 1700000000)
	changed := maps.Clone(tree)
	changed["etc/motd"] = testtree.File("new motd\n", 0o644)
	cur := o.commit("os/stable", changed, 1700000100)
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
		t.Fatal(err)
	}
	// The server goes back to the old commit, which the client never had;
	// with a delta from the current commit to it, and without one.
	if err := o.r.SetRef("os/stable", old); err != nil {
		t.Fatal(err)
	}
	name := delta.Name{From: cur, To: old}
	for _, withDelta := range []bool{true, false} {
		if withDelta {
			if _, err := delta.Generate(ctx, o.r, delta.GenerateOptions{From: cur, To: old, NoSync: true}); err != nil {
				t.Fatal(err)
			}
		} else if err := delta.Delete(context.Background(), o.r, name); err != nil {
			t.Fatal(err)
		}
		if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
			t.Fatal(err)
		}
		o.resetHits()
		opts := fastOpts("os/stable")
		opts.TimestampCheck = true
		_, err := remote.Pull(ctx, dst, opts)
		var te *remote.TimestampError
		if !errors.As(err, &te) || te.Ref != "origin:os/stable" || te.Commit != old || te.Current != cur {
			t.Fatalf("delta=%v: pull of an older commit: %v, want a TimestampError", withDelta, err)
		}
		errContains(t, err, old.String(), cur.String(), "origin:os/stable", "2023-11-14T22:13:20Z", "older")
		if got := mustRef(t, dst, "origin:os/stable"); got != cur {
			t.Errorf("delta=%v: the ref moved to %s", withDelta, got)
		}
		if n := o.hitsOf(objectURLPath(repo.KindDirTree, mustTree(t, o.r, old))) + o.hitsOf("/"+name.Rel()+"/0"); n != 0 {
			t.Errorf("delta=%v: fetched the refused commit's tree or delta part (%d requests)", withDelta, n)
		}
		checkKilledState(t, dst)
	}
	// Without the check the ref goes back.
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != old {
		t.Errorf("pull without --timestamp-check: ref %s, want %s", got, old)
	}

	// The same timestamp passes; so does the commit the ref names already.
	same := o.commit("os/stable", testtree.Tree{"x": testtree.File("x\n", 0o644)}, 1700000000)
	opts := fastOpts("os/stable")
	opts.TimestampCheck = true
	for range 2 {
		if _, err := remote.Pull(ctx, dst, opts); err != nil {
			t.Fatalf("pull of a commit as old as the current one: %v", err)
		}
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != same {
		t.Errorf("ref %s, want %s", got, same)
	}

	// A parent made in the same second as its child, replayed: refused as
	// an ancestor, with TimestampCheck and with TimestampCheckFrom.
	child := o.commit("os/stable", testtree.Tree{"y": testtree.File("y\n", 0o644)}, 1700000000)
	if _, err := remote.Pull(ctx, dst, opts); err != nil {
		t.Fatal(err)
	}
	if err := o.r.SetRef("os/stable", same); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	var ae *remote.TimestampError
	if _, err := remote.Pull(ctx, dst, opts); !errors.As(err, &ae) || !ae.Ancestor || ae.Commit != same || ae.Current != child {
		t.Errorf("pull of the same-second parent: %v, want a TimestampError naming it an ancestor", err)
	} else {
		errContains(t, err, same.String(), child.String(), "an ancestor of")
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != child {
		t.Errorf("the same-second parent moved the ref to %s, want %s", got, child)
	}
	fromChild := fastOpts(same.String())
	fromChild.TimestampCheckFrom = child
	if _, err := remote.Pull(ctx, dst, fromChild); !errors.As(err, &ae) || !ae.Ancestor {
		t.Errorf("TimestampCheckFrom, the same-second parent by id: %v", err)
	}

	// TimestampCheckFrom: the current commit is stored here; the old one
	// is refused even by id, the newer one passes.
	from := fastOpts(old.String())
	from.TimestampCheckFrom = cur
	var te *remote.TimestampError
	if _, err := remote.Pull(ctx, dst, from); !errors.As(err, &te) || te.Ref != "" || te.Current != cur {
		t.Errorf("TimestampCheckFrom, older commit by id: %v", err)
	}
	from.Refs = []string{cur.String()}
	if _, err := remote.Pull(ctx, dst, from); err != nil {
		t.Errorf("TimestampCheckFrom, the commit itself: %v", err)
	}
	from.TimestampCheckFrom = repo.ID{1}
	if _, err := remote.Pull(ctx, dst, from); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("TimestampCheckFrom naming no stored commit: %v", err)
	}
}

func mustTree(t *testing.T, r *repo.Repo, id repo.ID) repo.ID {
	t.Helper()
	c, err := r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	return c.RootTree
}

// badBareUserOnlyModes are file modes a bare-user-only repository refuses.
var badBareUserOnlyModes = []fs.FileMode{fs.ModeSetuid | 0o755, fs.ModeSetgid | 0o755, fs.ModeSticky | 0o755, 0o666}

// badModeOrigin serves os/stable at a, then at b, which adds the file
// /usr/bin/tool (its object tool) of mode bad, with a static delta a to b.
func badModeOrigin(t *testing.T, bad fs.FileMode) (o *origin, a, b, tool repo.ID) {
	t.Helper()
	o = newOrigin(t)
	a = o.commit("os/stable", tree, 1700000000)
	changed := maps.Clone(tree)
	changed["usr/bin/tool"] = testtree.File("tool\n", bad)
	b = o.commit("os/stable", changed, 1700000100)
	if _, err := delta.Generate(ctx, o.r, delta.GenerateOptions{From: a, To: b, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	return o, a, b, lookup(t, o.r, b, "/usr/bin/tool").ID
}

// BareUserOnlyFiles refuses regular files with setuid, setgid, sticky or
// other-writable bits, fetched one by one or in a static delta, and
// stores none of them.
func TestPullBareUserOnlyFiles(t *testing.T) {
	for _, bad := range badBareUserOnlyModes {
		o, a, b, tool := badModeOrigin(t, bad)
		for _, withDelta := range []bool{true, false} {
			dst := newDest(t, repo.ModeBareUser, o.srv.URL)
			opts := fastOpts(a.String())
			opts.BareUserOnlyFiles = true
			if _, err := remote.Pull(ctx, dst, opts); err != nil {
				t.Fatalf("a tree without such files: %v", err)
			}
			if err := dst.SetRef("origin:os/stable", a); err != nil {
				t.Fatal(err)
			}
			o.resetHits()
			opts.Refs, opts.DisableStaticDeltas = []string{"os/stable"}, !withDelta
			_, err := remote.Pull(ctx, dst, opts)
			errContains(t, err, tool.String(), "outside 0775")
			if !errors.Is(err, remote.ErrBareUserOnlyMode) {
				t.Errorf("mode %v: %v, want ErrBareUserOnlyMode", bad, err)
			}
			if used := o.hitsOf("/"+delta.Name{From: a, To: b}.Rel()+"/superblock") > 0; used != withDelta {
				t.Errorf("mode %v: delta used %v, want %v", bad, used, withDelta)
			}
			if has, _ := dst.HasObject(repo.KindFile, tool); has {
				t.Errorf("mode %v, delta=%v: the refused file was stored", bad, withDelta)
			}
			if got := mustRef(t, dst, "origin:os/stable"); got != a {
				t.Errorf("the ref moved to %s", got)
			}
			opts.BareUserOnlyFiles = false
			if _, err := remote.Pull(ctx, dst, opts); err != nil {
				t.Errorf("mode %v without BareUserOnlyFiles: %v", bad, err)
			}
		}
	}
}

// A bare-user-only repository refuses such files itself, without
// BareUserOnlyFiles: its objects keep their modes on disk and are
// hardlinked into checkouts, so a setuid object would be a setuid file
// anyone on the machine could run.
func TestPullIntoBareUserOnlyRefusesModes(t *testing.T) {
	for _, bad := range badBareUserOnlyModes {
		o, a, _, tool := badModeOrigin(t, bad)
		for _, withDelta := range []bool{true, false} {
			dst := newDest(t, repo.ModeBareUserOnly, o.srv.URL)
			opts := fastOpts(a.String())
			if _, err := remote.Pull(ctx, dst, opts); err != nil {
				t.Fatalf("a tree without such files: %v", err)
			}
			if err := dst.SetRef("origin:os/stable", a); err != nil {
				t.Fatal(err)
			}
			opts.Refs, opts.DisableStaticDeltas = []string{"os/stable"}, !withDelta
			_, err := remote.Pull(ctx, dst, opts)
			errContains(t, err, tool.String(), "bare-user-only", fmt.Sprintf("%04o", uint32(bad.Perm())|modeBits(bad)))
			if has, _ := dst.HasObject(repo.KindFile, tool); has {
				t.Errorf("mode %v, delta=%v: the refused file was stored", bad, withDelta)
			}
			if got := mustRef(t, dst, "origin:os/stable"); got != a {
				t.Errorf("mode %v, delta=%v: the ref moved to %s", bad, withDelta, got)
			}
		}
	}
}

// modeBits gives the setuid, setgid and sticky bits of m as Unix bits.
func modeBits(m fs.FileMode) uint32 {
	var b uint32
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// RequireStaticDeltas pulls through a delta when one leads to the commit,
// and otherwise fails without fetching objects; commits already stored
// need none.
func TestPullRequireStaticDeltas(t *testing.T) {
	o, a, b, name := deltaOrigin(t, false)
	opts := fastOpts("os/stable")
	opts.RequireStaticDeltas = true

	fresh := newDest(t, repo.ModeBareUser, o.srv.URL) // no from-commit: no delta applies
	o.resetHits()
	_, err := remote.Pull(ctx, fresh, opts)
	errContains(t, err, "no static delta", "os/stable", b.String())
	if n := o.objectHits(); n != 0 {
		t.Errorf("fetched %d objects", n)
	}
	checkNothingMoved(t, fresh)

	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts(a.String())); err != nil {
		t.Fatal(err)
	}
	dest.SetRef("origin:os/stable", a)
	res, err := remote.Pull(ctx, dest, opts)
	if err != nil || len(res.Deltas) != 1 || res.Deltas[0] != name.String() {
		t.Fatalf("pull through the delta: %+v, %v", res, err)
	}
	if _, err := remote.Pull(ctx, dest, opts); err != nil {
		t.Errorf("pull of a stored commit: %v", err)
	}
	opts.DisableStaticDeltas = true
	if _, err := remote.Pull(ctx, dest, opts); err == nil {
		t.Error("RequireStaticDeltas with DisableStaticDeltas: no error")
	}
}

// Header goes with every request: a server that wants a token gets it.
func TestPullHeader(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	var without int
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if req.Header.Get("Authorization") != "Bearer s3cret" || req.Header.Get("X-Otree-Test") != "1" {
			without++
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	}
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	_, err := remote.Pull(ctx, dst, fastOpts("os/stable"))
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("pull without the header: %v", err)
	}
	opts := fastOpts("os/stable")
	opts.Header = http.Header{"Authorization": {"Bearer s3cret"}, "X-Otree-Test": {"1"}}
	before := without
	if _, err := remote.Pull(ctx, dst, opts); err != nil {
		t.Fatal(err)
	}
	if without != before {
		t.Errorf("%d requests went without the header", without-before)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != id {
		t.Errorf("ref %s, want %s", got, id)
	}
}

// Header goes to the host it was given for only: a redirect to another
// host (here another port) gets none of it, as Go's client keeps
// Authorization and cookies to their host.
func TestPullHeaderNotRedirected(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	var mu sync.Mutex
	var leaked []string
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		for _, h := range []string{"Authorization", "X-Otree-Test"} {
			if req.Header.Get(h) != "" {
				leaked = append(leaked, h+" to "+req.URL.Path)
			}
		}
		mu.Unlock()
		http.FileServer(http.Dir(o.dir)).ServeHTTP(w, req)
	}))
	t.Cleanup(mirror.Close)
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if strings.HasPrefix(req.URL.Path, "/objects/") {
			http.Redirect(w, req, mirror.URL+req.URL.Path, http.StatusFound)
			return true
		}
		return false
	}
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	opts := fastOpts("os/stable")
	opts.Header = http.Header{"Authorization": {"Bearer s3cret"}, "X-Otree-Test": {"1"}}
	if _, err := remote.Pull(ctx, dst, opts); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != id {
		t.Errorf("ref %s, want %s", got, id)
	}
	if len(leaked) > 0 {
		t.Errorf("headers sent to the other host: %v", leaked)
	}
	if o.objectHits() == 0 {
		t.Error("no object was redirected")
	}
}

// After a redirect from https to http, a request carries the cookies of
// the host it now goes to, port aside, as OSTree's: the other host's own,
// and the first host's when only the port and scheme changed, with those
// the server set during the pull; Authorization goes to neither.
func TestPullCookiesAfterHTTPSRedirect(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	var mu sync.Mutex
	got := map[string]map[string]bool{} // host -> Cookie headers seen
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		host, _, _ := strings.Cut(req.Host, ":")
		mu.Lock()
		if got[host] == nil {
			got[host] = map[string]bool{}
		}
		got[host][req.Header.Get("Cookie")+" "+req.Header.Get("Authorization")] = true
		mu.Unlock()
		http.FileServer(http.Dir(o.dir)).ServeHTTP(w, req)
	}))
	t.Cleanup(plain.Close)
	_, port, _ := strings.Cut(strings.TrimPrefix(plain.URL, "http://"), ":")
	n := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "srv", Value: "1", Path: "/"})
		if strings.HasPrefix(req.URL.Path, "/objects/") {
			mu.Lock()
			n++
			host := []string{"localhost", "127.0.0.1"}[n%2]
			mu.Unlock()
			http.Redirect(w, req, "http://"+host+":"+port+req.URL.Path, http.StatusFound)
			return
		}
		o.srv.Config.Handler.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	dst := newDest(t, repo.ModeArchive, srv.URL)
	if _, err := remote.AddRemote(dst, remote.Remote{Name: "origin", URL: srv.URL}, remote.AddOptions{Force: true, Set: map[string]string{remote.KeyTLSPermissive: "true"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []remote.Cookie{{Domain: "127.0.0.1", Path: "/", Name: "a", Value: "1"}, {Domain: "localhost", Path: "/", Name: "b", Value: "2"}} {
		if err := remote.AddCookie(dst, "origin", c); err != nil {
			t.Fatal(err)
		}
	}
	opts := fastOpts("os/stable")
	opts.Header = http.Header{"Authorization": {"Bearer s3cret"}}
	if _, err := remote.Pull(ctx, dst, opts); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != id {
		t.Errorf("ref %s, want %s", got, id)
	}
	want := map[string]map[string]bool{"localhost": {"b=2 ": true}, "127.0.0.1": {"a=1; srv=1 ": true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cookies and Authorization after the redirect to http, by host (-want +got):\n%s", diff)
	}
}

// With contenturl, objects and static deltas come from the content server
// and nothing else does; the summary and config come from url.
func TestPullContentURL(t *testing.T) {
	o, a, b, name := deltaOrigin(t, false)
	type server struct {
		srv  *httptest.Server
		mu   sync.Mutex
		seen []string
	}
	files := http.FileServer(http.Dir(o.dir))
	serve := func(content bool) *server {
		s := &server{}
		s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			s.mu.Lock()
			s.seen = append(s.seen, req.URL.Path)
			s.mu.Unlock()
			p := req.URL.Path
			isContent := strings.HasPrefix(p, "/objects/") || strings.HasPrefix(p, "/deltas/")
			if isContent != content {
				http.NotFound(w, req)
				return
			}
			files.ServeHTTP(w, req)
		}))
		t.Cleanup(s.srv.Close)
		return s
	}
	meta, content := serve(false), serve(true)
	dst, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := remote.AddRemote(dst, remote.Remote{Name: "origin", URL: meta.srv.URL},
		remote.AddOptions{Set: map[string]string{"contenturl": content.srv.URL}}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(ctx, dst, fastOpts(a.String())); err != nil {
		t.Fatal(err)
	}
	dst.SetRef("origin:os/stable", a)
	res, err := remote.Pull(ctx, dst, fastOpts("os/stable"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deltas) != 1 || res.Deltas[0] != name.String() {
		t.Errorf("deltas used: %v", res.Deltas)
	}
	checkSameTree(t, o.r, dst, b)
	for _, s := range []*server{meta, content} {
		s.mu.Lock()
		for _, p := range s.seen {
			isContent := strings.HasPrefix(p, "/objects/") || strings.HasPrefix(p, "/deltas/")
			if isContent != (s == content) {
				t.Errorf("%s requested from the wrong server", p)
			}
		}
		if len(s.seen) == 0 {
			t.Errorf("a server got no request")
		}
		s.mu.Unlock()
	}

	// A contenturl that is not http(s), or on a file:// remote, is refused
	// when the remote is added.
	for _, c := range []struct{ url, content string }{{meta.srv.URL, "file:///tmp"}, {meta.srv.URL, "ftp://x"}, {"file://" + o.dir, content.srv.URL}} {
		if _, err := remote.AddRemote(dst, remote.Remote{Name: "bad", URL: c.url},
			remote.AddOptions{Set: map[string]string{"contenturl": c.content}, Force: true}); err == nil || !strings.Contains(err.Error(), "contenturl") {
			t.Errorf("url %s, contenturl %s: %v", c.url, c.content, err)
		}
	}
}

// Subpaths pull only the directories on the way to each path and what is
// below it: the commit stays partial, its ref moves, the subpath checks
// out, other files were not fetched, and a later full pull completes it.
func TestPullSubpath(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	opts := fastOpts("os/stable")
	opts.Subpaths = []string{"/usr/share", "etc/demo.conf", "/usr/share/doc"}
	o.resetHits()
	if _, err := remote.Pull(ctx, dst, opts); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != id {
		t.Fatalf("ref %s, want %s", got, id)
	}
	if !dst.IsCommitPartial(id) {
		t.Error("a subpath pull left the commit unmarked")
	}
	for p, want := range map[string]bool{
		"/usr/share/big.bin": true, "/usr/share/doc/a": true, "/etc/demo.conf": true,
		"/etc/motd": false, "/usr/lib/empty": false, "/bin/hi": false,
	} {
		e := lookup(t, o.r, id, p)
		if has, _ := dst.HasObject(repo.KindFile, e.ID); has != want {
			t.Errorf("%s stored: %v, want %v", p, has, want)
		}
	}
	// The dirtree of /usr/lib was not needed and not fetched.
	if n := o.hitsOf(objectURLPath(repo.KindDirTree, lookup(t, o.r, id, "/usr/lib").ID)); n != 0 {
		t.Errorf("fetched /usr/lib's dirtree %d times", n)
	}
	dest := filepath.Join(t.TempDir(), "co")
	if _, err := checkout.Checkout(ctx, dst, id, dest, checkout.Options{UserMode: true, Subpath: "/usr/share"}); err != nil {
		t.Errorf("checkout of the pulled subpath: %v", err)
	}
	// A full checkout fails, saying why the object is missing.
	_, err := checkout.Checkout(ctx, dst, id, filepath.Join(t.TempDir(), "full"), checkout.Options{UserMode: true})
	var pce *repo.PartialCommitError
	if !errors.As(err, &pce) || pce.Commit != id || !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("full checkout of the partial commit: %v, want a PartialCommitError", err)
	}
	checkKilledState(t, dst)

	// A path the commit lacks, or one below a file, fails, naming it.
	for _, sp := range []string{"/usr/nope", "/etc/demo.conf/x"} {
		fresh := newDest(t, repo.ModeBareUser, o.srv.URL)
		opts.Subpaths = []string{sp}
		_, err := remote.Pull(ctx, fresh, opts)
		var pe *repo.PathError
		if !errors.As(err, &pe) || pe.Commit != id {
			t.Errorf("subpath %s: %v, want a PathError naming the commit", sp, err)
		}
		checkNothingMoved(t, fresh)
	}
	// A ".." is refused before anything is fetched.
	fresh := newDest(t, repo.ModeBareUser, o.srv.URL)
	o.resetHits()
	opts.Subpaths = []string{"/usr/share/../../etc"}
	if _, err := remote.Pull(ctx, fresh, opts); !errors.Is(err, repo.ErrDotDot) || !strings.Contains(err.Error(), opts.Subpaths[0]) {
		t.Errorf("subpath %s: %v, want ErrDotDot naming it", opts.Subpaths[0], err)
	}
	o.mu.Lock()
	for path, n := range o.hits {
		if strings.HasPrefix(path, "/objects/") {
			t.Errorf("a refused subpath fetched %s (%d times)", path, n)
		}
	}
	o.mu.Unlock()
	checkNothingMoved(t, fresh)

	// A full pull completes the commit, fetching only what was missing.
	o.resetHits()
	if _, err := remote.Pull(ctx, dst, fastOpts("os/stable")); err != nil {
		t.Fatal(err)
	}
	if dst.IsCommitPartial(id) {
		t.Error("the full pull left the commit partial")
	}
	if n := o.hitsOf(objectURLPath(repo.KindFile, lookup(t, o.r, id, "/usr/share/big.bin").ID)); n != 0 {
		t.Errorf("refetched a file the subpath pull stored (%d requests)", n)
	}
	checkSameTree(t, o.r, dst, id)
	checkFsck(t, dst)
	// Complete now: a missing object is lost, not unpulled.
	missing := &repo.ObjectMissingError{Kind: repo.KindFile, ID: repo.ID{1}}
	if err := dst.ExplainMissing(id, missing); err != missing {
		t.Errorf("ExplainMissing on a complete commit: %v", err)
	}
}

// A subpath of the root ("/", or one that cleans to it, among others) pulls the whole
// tree, so the commit is complete: it is not left marked partial, which
// would keep deploy from taking it.
func TestPullSubpathRoot(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	for _, sps := range [][]string{{"/"}, {"/etc", "/./"}} {
		dst := newDest(t, repo.ModeBareUser, o.srv.URL)
		opts := fastOpts("os/stable")
		opts.Subpaths = sps
		if _, err := remote.Pull(ctx, dst, opts); err != nil {
			t.Fatalf("subpaths %q: %v", sps, err)
		}
		if dst.IsCommitPartial(id) {
			t.Errorf("subpaths %q: the commit stays marked partial after its whole tree was pulled", sps)
		}
		if len(opts.Subpaths) != len(sps) {
			t.Errorf("subpaths %q: the caller's options were changed to %q", sps, opts.Subpaths)
		}
		checkSameTree(t, o.r, dst, id)
		checkFsck(t, dst)
	}
}

// A remote with a collection ID refuses commits bound to another
// collection, before storing anything; commits bound to none pass, and
// DisableVerifyBindings turns the check off.
func TestPullCollectionBinding(t *testing.T) {
	o := newOrigin(t)
	unbound := o.commit("os/old", tree, 1700000000)
	if err := o.r.UpdateConfig(func(c *repo.Config) error { return c.Set("core.collection-id", "org.example.Os") }); err != nil {
		t.Fatal(err)
	}
	bound := o.commit("os/stable", testtree.Tree{"a": testtree.File("a\n", 0o644)}, 1700000100)
	if c, _ := o.r.ReadCommit(bound); c == nil {
		t.Fatal("no commit")
	} else if b, ok := c.CollectionBinding(); !ok || b != "org.example.Os" {
		t.Fatalf("a commit in a collection repository is bound to %q, %v", b, ok)
	}
	dest := func(collection string) *repo.Repo {
		r, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: repo.ModeArchive})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if _, err := remote.AddRemote(r, remote.Remote{Name: "origin", URL: o.srv.URL},
			remote.AddOptions{Set: map[string]string{"collection-id": collection}}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	other := dest("org.other.Os")
	_, err := remote.Pull(ctx, other, fastOpts("os/stable"))
	var ce *repo.CollectionBindingError
	if !errors.As(err, &ce) || ce.Commit != bound || ce.Want != "org.other.Os" || ce.Binding != "org.example.Os" {
		t.Fatalf("pull from a remote of another collection: %v", err)
	}
	checkNothingMoved(t, other)
	if _, err := remote.Pull(ctx, other, fastOpts("os/old")); err != nil {
		t.Errorf("a commit bound to no collection: %v", err)
	}
	opts := fastOpts("os/stable")
	opts.DisableVerifyBindings = true
	if _, err := remote.Pull(ctx, other, opts); err != nil {
		t.Errorf("DisableVerifyBindings: %v", err)
	}
	same := dest("org.example.Os")
	if _, err := remote.Pull(ctx, same, fastOpts("os/stable", "os/old")); err != nil {
		t.Errorf("pull from the commit's own collection: %v", err)
	}
	if got := mustRef(t, same, "origin:os/old"); got != unbound {
		t.Errorf("origin:os/old = %s", got)
	}
	if _, err := remote.AddRemote(same, remote.Remote{Name: "bad", URL: o.srv.URL},
		remote.AddOptions{Set: map[string]string{"collection-id": "nodots"}}); err == nil || !strings.Contains(err.Error(), "nodots") {
		t.Errorf("an invalid collection ID: %v", err)
	}
	if s, err := remote.ReadSummary(o.r); err != nil {
		t.Fatal(err)
	} else if v, ok := s.Metadata.Get(remote.SummaryCollectionKey); !ok || string(v) != "org.example.Os" {
		t.Errorf("summary collection ID %q, %v", v, ok)
	}
}

// DryRun reports the static delta each commit would come by, with the
// sizes its superblock gives, and changes nothing; a commit without a
// delta is an error, and one stored here needs none.
func TestPullDryRun(t *testing.T) {
	o, a, b, name := deltaOrigin(t, false)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts(a.String())); err != nil {
		t.Fatal(err)
	}
	dest.SetRef("origin:os/stable", a)
	before := storedObjects(t, dest)
	sb, _, err := delta.ReadSuperblock(o.r, name)
	if err != nil {
		t.Fatal(err)
	}
	var size, raw uint64
	for _, p := range sb.Parts {
		size, raw = size+p.Size, raw+p.RawSize
	}
	o.resetHits()
	opts := fastOpts("os/stable")
	opts.DryRun = true
	res, err := remote.Pull(ctx, dest, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []remote.DeltaPlan{{Ref: "os/stable", Commit: b, Delta: name.String(), Parts: len(sb.Parts), Size: size, RawSize: raw}}
	if d := cmp.Diff(want, res.Plan); d != "" {
		t.Errorf("plan (-want +got):\n%s", d)
	}
	if got := mustRef(t, dest, "origin:os/stable"); got != a {
		t.Errorf("a dry run moved the ref to %s", got)
	}
	if d := cmp.Diff(before, storedObjects(t, dest)); d != "" {
		t.Errorf("a dry run stored objects:\n%s", d)
	}
	if n := o.objectHits() + o.hitsOf("/"+name.Rel()+"/0"); n != 0 {
		t.Errorf("a dry run fetched %d objects or parts", n)
	}
	// No ref here and no delta from scratch: nothing says the size.
	fresh := newDest(t, repo.ModeBareUser, o.srv.URL)
	_, err = remote.Pull(ctx, fresh, opts)
	errContains(t, err, "dry run", "static delta", b.String())
	// A commit stored here needs nothing.
	if _, err := remote.Pull(ctx, dest, fastOpts("os/stable")); err != nil {
		t.Fatal(err)
	}
	if res, err := remote.Pull(ctx, dest, opts); err != nil || len(res.Plan) != 0 {
		t.Errorf("dry run of a stored commit: %+v, %v", res, err)
	}
}

// A parent the server pruned ends the history a deep pull fetches, as in
// OSTree, instead of failing it; a requested commit the server lacks still
// fails.
func TestPullPrunedHistory(t *testing.T) {
	o := newOrigin(t)
	first := o.commit("os/stable", tree, 1700000000)
	second := o.commit("os/stable", testtree.Tree{"a": testtree.File("2\n", 0o644)}, 1700000100)
	third := o.commit("os/stable", testtree.Tree{"a": testtree.File("3\n", 0o644)}, 1700000200)
	if _, err := o.r.Prune(ctx, repo.PruneOptions{RefsOnly: true, Depth: 0}); err != nil {
		t.Fatal(err)
	}
	if has, _ := o.r.HasObject(repo.KindCommit, second); has {
		t.Fatal("the origin's prune kept the parent")
	}
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	opts := fastOpts("os/stable")
	opts.Depth = -1
	if _, err := remote.Pull(ctx, dst, opts); err != nil {
		t.Fatalf("deep pull of a pruned history: %v", err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != third {
		t.Errorf("ref %s, want %s", got, third)
	}
	checkFsck(t, dst)
	if dst.IsCommitPartial(third) {
		t.Error("the head commit was left partial")
	}
	// The origin keeps no tombstones: none is asked for.
	if n := o.hitsOf(objectURLPath(repo.KindTombstoneCommit, second)); n != 0 {
		t.Errorf("asked %d times for a tombstone the origin does not keep", n)
	}
	opts.Refs = []string{first.String()}
	if _, err := remote.Pull(ctx, dst, opts); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("pull of a commit the server pruned: %v, want a not-found error", err)
	}
}

// TimestampCheck holds when another pull moves the ref while this one
// runs: the check is made again under the refs lock, so a pull that
// checked against an older ref cannot move it back.
func TestPullTimestampCheckRace(t *testing.T) {
	o := newOrigin(t)
	old := o.commit("os/stable", tree, 1700000000)
	changed := maps.Clone(tree)
	changed["etc/motd"] = testtree.File("new motd\n", 0o644)
	cur := o.commit("os/other", changed, 1700000100)
	// The destination gets cur (another pull, in effect) while this pull
	// of old fetches its first object.
	dst := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.PullLocal(ctx, dst, o.dir, remote.PullOptions{Refs: []string{"os/other"}, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if strings.HasPrefix(req.URL.Path, "/objects/") && !strings.HasSuffix(req.URL.Path, ".commit") {
			once.Do(func() {
				if err := dst.SetRef("origin:os/stable", cur); err != nil {
					t.Error(err)
				}
			})
		}
		return false
	}
	opts := fastOpts("os/stable")
	opts.TimestampCheck, opts.DisableVerifyBindings = true, true
	_, err := remote.Pull(ctx, dst, opts)
	var te *remote.TimestampError
	if !errors.As(err, &te) || te.Commit != old || te.Current != cur {
		t.Fatalf("pull of an older commit than the ref got meanwhile: %v, want a TimestampError", err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != cur {
		t.Errorf("the ref moved back to %s", got)
	}
}

// A pull from a local repository holding a commit pulled there in part
// fails on the first object that repository lacks, saying the commit is
// partial there rather than only that the object is missing; the part
// that is there still pulls.
func TestPullLocalFromPartialCommit(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	mid := newDest(t, repo.ModeArchive, o.srv.URL)
	opts := fastOpts("os/stable")
	opts.Subpaths = []string{"/usr/share"}
	if _, err := remote.Pull(ctx, mid, opts); err != nil {
		t.Fatal(err)
	}
	dst := initRepo(t, filepath.Join(t.TempDir(), "dst"), repo.ModeBareUser)
	_, err := remote.PullLocal(ctx, dst, mid.Path(), remote.PullOptions{Refs: []string{id.String()}, NoSync: true})
	var me *repo.ObjectMissingError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "commit "+id.String()+" is partial in "+mid.Path()) {
		t.Errorf("pull-local of a commit partial at the source: %v, want an error naming it partial there", err)
	}
	if _, err := remote.PullLocal(ctx, dst, mid.Path(), remote.PullOptions{Refs: []string{id.String()}, NoSync: true, Subpaths: []string{"/usr/share"}}); err != nil {
		t.Errorf("pull-local of the subpath the source holds: %v", err)
	}
}

// With --depth, a parent that predates a subpath has nothing there to
// fetch: the walk goes on to its parents, as OSTree's does, instead of
// taking the parent for one the source deleted (which ended the history
// there, or failed the pull at a source keeping tombstones). A requested
// commit lacking the subpath fails naming the path, not blaming a stale
// summary.
func TestPullSubpathAbsentFromParents(t *testing.T) {
	for _, tombstones := range []bool{false, true} {
		o := newOrigin(t)
		if tombstones {
			if err := o.r.UpdateConfig(func(c *repo.Config) error { return c.Set(repo.ConfigTombstoneCommits, "true") }); err != nil {
				t.Fatal(err)
			}
		}
		old := testtree.Tree{"etc/demo.conf": testtree.File("key=value\n", 0o644)}
		c1 := o.commit("os/stable", old, 1700000000)
		c2 := o.commit("os/stable", old, 1700000001)
		c3 := o.commit("os/stable", tree, 1700000002)
		dst := newDest(t, repo.ModeBareUser, o.srv.URL)
		opts := fastOpts("os/stable")
		opts.Subpaths = []string{"/usr/share/doc"}
		opts.Depth = -1
		if _, err := remote.Pull(ctx, dst, opts); err != nil {
			t.Fatalf("tombstones %v: %v", tombstones, err)
		}
		for _, id := range []repo.ID{c1, c2, c3} {
			if has, _ := dst.HasObject(repo.KindCommit, id); !has || !dst.IsCommitPartial(id) {
				t.Errorf("tombstones %v: commit %s stored %v, partial %v; want a partial commit", tombstones, id, has, dst.IsCommitPartial(id))
			}
		}
		if e := lookup(t, o.r, c3, "/usr/share/doc/a"); !hasObject(t, dst, repo.KindFile, e.ID) {
			t.Errorf("tombstones %v: the subpath of the tip was not fetched", tombstones)
		}

		fresh := newDest(t, repo.ModeBareUser, o.srv.URL)
		opts.Subpaths, opts.Depth = []string{"/nope"}, 0
		_, err := remote.Pull(ctx, fresh, opts)
		var pe *repo.PathError
		if !errors.As(err, &pe) || pe.Commit != c3 || strings.Contains(err.Error(), "stale") || strings.Contains(err.Error(), "deleted") {
			t.Errorf("tombstones %v: subpath the tip lacks: %v, want a PathError only", tombstones, err)
		}
	}
}

func hasObject(t *testing.T, r *repo.Repo, kind repo.Kind, id repo.ID) bool {
	t.Helper()
	has, err := r.HasObject(kind, id)
	if err != nil {
		t.Fatal(err)
	}
	return has
}

// A TimestampError names each commit's own date, even one stamped past
// the int64 range, which a signed conversion printed as 1969.
func TestTimestampErrorFarFuture(t *testing.T) {
	e := &remote.TimestampError{Ref: "main", Time: 1700000000, CurrentTime: 1<<64 - 1}
	for _, want := range []string{"(2023-11-14T22:13:20Z)", "(584554051223-11-09T07:00:15Z)"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("%q does not name %s", e.Error(), want)
		}
	}
}
