package deploy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/otree/otree/repo/sign"
)

// server is an archive repository served over HTTP, counting requests.
type server struct {
	t    *testing.T
	r    *repo.Repo
	srv  *httptest.Server
	hits atomic.Int64
	down atomic.Bool // answer 503 to everything
	ts   int64
}

func newServer(t *testing.T) *server {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "srv"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	s := &server{t: t, r: r, ts: 1700000000}
	files := http.FileServer(http.Dir(r.Path()))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// serveOrigin starts a server and adds it to f's repository as remote
// origin.
func (f *fixture) serveOrigin() *server {
	f.t.Helper()
	srv := newServer(f.t)
	if _, err := remote.AddRemote(f.s.Repo(), remote.Remote{Name: "origin", URL: srv.srv.URL}, remote.AddOptions{}); err != nil {
		f.t.Fatal(err)
	}
	return srv
}

// pullFromOrigin pulls refs from remote origin into f's repository,
// without syncing.
func (f *fixture) pullFromOrigin(refs ...string) {
	f.t.Helper()
	if _, err := remote.Pull(context.Background(), f.s.Repo(), remote.PullOptions{Remote: "origin", Refs: refs, NoSync: true}); err != nil {
		f.t.Fatal(err)
	}
}

// commit commits tree to branch at the next timestamp (or at ts, if given)
// and updates the summary.
func (s *server) commit(branch string, tree testtree.Tree, ts ...int64) repo.ID {
	s.t.Helper()
	dir := s.t.TempDir()
	testtree.Create(s.t, dir, tree)
	s.ts += 100
	when := s.ts
	if len(ts) > 0 {
		when = ts[0]
	}
	res, err := commit.Commit(context.Background(), s.r, commit.Options{
		Branch: branch, Subject: "build", Timestamp: time.Unix(when, 0), NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: dir}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.summary()
	return res.Commit
}

func (s *server) setRef(branch string, id repo.ID) {
	s.t.Helper()
	if err := s.r.SetRef(branch, id); err != nil {
		s.t.Fatal(err)
	}
	s.summary()
}

func (s *server) summary() {
	if _, err := remote.UpdateSummary(context.Background(), s.r, remote.SummaryOptions{NoSync: true}); err != nil {
		s.t.Fatal(err)
	}
}

func quickPull() remote.PullOptions {
	return remote.PullOptions{NoSync: true, RetryDelay: time.Millisecond, Timeout: 5 * time.Second, Attempts: 2}
}

// TestUpgradeAndSwitchFromRemote follows a branch served over HTTP:
// upgrade pulls and deploys, --pull-only and --deploy-only split the two,
// the downgrade guard refuses an older or ancestor commit the server
// offers, switch moves the origin to another branch (keeping the remote),
// and a server that fails leaves the deployments as they were.
func TestUpgradeAndSwitchFromRemote(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	srv := f.serveOrigin()
	old := srv.commit("os/old", osTree("6.1.0-1", testtree.Tree{"usr/bin/old": testtree.File("old", 0o755)}), 1600000000)
	a := srv.commit("os/stable", osTree("6.1.0-1", nil))
	f.pullFromOrigin("os/stable")
	if d := f.deploy("origin:os/stable", DeployOptions{}).Deployment; d.Origin != "origin:os/stable" || d.Commit != a {
		t.Fatalf("first deployment %+v", d)
	}
	opts := UpgradeOptions{Pull: quickPull()}

	res, err := f.s.Upgrade(ctx, opts)
	if !errors.Is(err, ErrNoUpgrade) || res == nil || res.Pulled == nil || res.Commit != a {
		t.Fatalf("upgrade with nothing new: %+v, %v", res, err)
	}
	po := opts
	po.PullOnly = true
	if res, err = f.s.Upgrade(ctx, po); !errors.Is(err, ErrNoUpgrade) || res == nil || res.Pulled == nil || res.Commit != a {
		t.Fatalf("pull-only with nothing new: %+v, %v", res, err)
	}

	b := srv.commit("os/stable", osTree("6.1.0-2", nil))
	if res, err = f.s.Upgrade(ctx, po); err != nil || res.Deployed != nil || res.Commit != b {
		t.Fatalf("pull-only: %+v, %v", res, err)
	}
	if diff := cmp.Diff([]repo.ID{a}, f.order()); diff != "" {
		t.Fatalf("pull-only deployed: %s", diff)
	}
	if got, _ := f.s.Repo().ReadRef("origin:os/stable"); got != b {
		t.Fatalf("pull-only left origin:os/stable at %s", got)
	}
	srv.hits.Store(0)
	do := opts
	do.DeployOnly = true
	if res, err = f.s.Upgrade(ctx, do); err != nil || res.Pulled != nil || res.Deployed.Deployment.Commit != b {
		t.Fatalf("deploy-only: %+v, %v", res, err)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("deploy-only made %d requests", n)
	}

	c := srv.commit("os/stable", osTree("6.1.0-3", testtree.Tree{"usr/bin/c": testtree.File("c", 0o755)}))
	if res, err = f.s.Upgrade(ctx, opts); err != nil || res.Deployed.Deployment.Commit != c || res.Pulled.ObjectsFetched == 0 || res.PullTime <= 0 {
		t.Fatalf("upgrade: %+v, %v", res, err)
	}
	if diff := cmp.Diff([]repo.ID{c, b}, f.order()); diff != "" {
		t.Fatal(diff)
	}

	// The server rolls the branch back to an older commit (a replay of
	// what it once served): refused by the pull, as OSTree's upgrader
	// refuses it, so the ref stays too, with --pull-only as well.
	srv.setRef("os/stable", b)
	var de *DowngradeError
	for _, o := range []UpgradeOptions{opts, po} {
		if _, err := f.s.Upgrade(ctx, o); !errors.As(err, &de) || de.Ref != "origin:os/stable" || de.Commit != b || de.Current.Commit != c {
			t.Fatalf("upgrade (pull-only %v) to an older commit: %v", o.PullOnly, err)
		}
		if got, _ := f.s.Repo().ReadRef("origin:os/stable"); got != c {
			t.Fatalf("refused downgrade (pull-only %v) moved origin:os/stable to %s", o.PullOnly, got)
		}
	}
	if diff := cmp.Diff([]repo.ID{c, b}, f.order()); diff != "" {
		t.Fatalf("refused downgrade changed the deployments: %s", diff)
	}
	srv.setRef("os/stable", c)

	// A failing server: the error names it, nothing changes.
	srv.down.Store(true)
	if _, err := f.s.Upgrade(ctx, opts); err == nil || !strings.Contains(err.Error(), srv.srv.URL) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("upgrade from a failing server: %v", err)
	}
	srv.down.Store(false)

	// switch: a branch alone keeps the remote; later upgrades follow it.
	d := srv.commit("os/testing", osTree("6.1.0-3", testtree.Tree{"usr/bin/d": testtree.File("d", 0o755)}))
	if res, err = f.s.SwitchRef(ctx, "os/testing", opts); err != nil {
		t.Fatal(err)
	}
	if got := res.Deployed.Deployment; got.Commit != d || got.Origin != "origin:os/testing" || res.Refspec != "origin:os/testing" {
		t.Fatalf("switch deployed %+v (refspec %q)", got, res.Refspec)
	}
	// The old remote-tracking ref goes, as in OSTree; the deployments of
	// its commits keep them.
	if _, err := f.s.Repo().ReadRef("origin:os/stable"); !errors.Is(err, repo.ErrNotFound) || res.DeletedRef != "origin:os/stable" {
		t.Fatalf("after the switch origin:os/stable: %v (deleted %q)", err, res.DeletedRef)
	}
	if _, err := f.s.Repo().Prune(ctx, repo.PruneOptions{RefsOnly: true, Depth: 0}); err != nil {
		t.Fatal(err)
	}
	if fr, err := f.s.Repo().Fsck(ctx, repo.FsckOptions{}); err != nil || !fr.OK() {
		t.Fatalf("fsck after the switch and a prune: %v %+v", err, fr)
	}
	e := srv.commit("os/testing", osTree("6.1.0-3", testtree.Tree{"usr/bin/e": testtree.File("e", 0o755)}))
	if res, err = f.s.Upgrade(ctx, opts); err != nil || res.Deployed.Deployment.Commit != e {
		t.Fatalf("upgrade after switch: %+v, %v", res, err)
	}

	// switch to another branch deploys what it names, even an older
	// commit, as OSTree's switch does.
	if res, err = f.s.SwitchRef(ctx, "origin:os/old", opts); err != nil || res.Deployed.Deployment.Commit != old {
		t.Fatalf("switch to another branch with an older commit: %+v, %v", res, err)
	}
	// A switch to the current origin is an upgrade: the guard applies.
	srv.commit("os/old", osTree("6.1.0-1", testtree.Tree{"usr/bin/older": testtree.File("o", 0o755)}), 1500000000)
	before := f.order()
	if _, err := f.s.SwitchRef(ctx, "origin:os/old", opts); !errors.As(err, &de) {
		t.Fatalf("switch to the current branch's older commit: %v", err)
	}
	if diff := cmp.Diff(before, f.order()); diff != "" {
		t.Fatalf("refused switch changed the deployments: %s", diff)
	}
	ao := opts
	ao.AllowDowngrade = true
	if res, err = f.s.SwitchRef(ctx, "origin:os/old", ao); err != nil || res.Deployed.Deployment.Commit == old {
		t.Fatalf("allowed switch: %+v, %v", res, err)
	}
	if _, err := f.s.SwitchRef(ctx, "origin:bad name", opts); err == nil || !strings.Contains(err.Error(), "bad name") {
		t.Fatalf("switch to an invalid ref: %v", err)
	}
	if _, err := f.s.SwitchRef(ctx, "origin:os/none", opts); err == nil || !strings.Contains(err.Error(), "os/none") {
		t.Fatalf("switch to a missing branch: %v", err)
	}
}

// TestUpgradeVerifiesSignatures follows a remote with signature
// verification on: a signed update deploys, an unsigned one (or one signed
// by another key) is refused by the pull and nothing is deployed.
func TestUpgradeVerifiesSignatures(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	srv := newServer(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	set := map[string]string{"sign-verify": "true", "verification-ed25519-key": sign.EncodeKey(pub)}
	if _, err := remote.AddRemote(f.s.Repo(), remote.Remote{Name: "origin", URL: srv.srv.URL}, remote.AddOptions{Set: set}); err != nil {
		t.Fatal(err)
	}
	signed := func(tree testtree.Tree, key ed25519.PrivateKey) repo.ID {
		id := srv.commit("os/stable", tree)
		if key != nil {
			if _, err := sign.SignCommit(ctx, srv.r, id, key); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	a := signed(osTree("6.1.0-1", nil), priv)
	f.pullFromOrigin()
	f.deploy("origin:os/stable", DeployOptions{})
	opts := UpgradeOptions{Pull: quickPull()}
	for name, key := range map[string]ed25519.PrivateKey{"unsigned": nil, "signed by another key": other} {
		bad := signed(osTree("6.1.0-1", testtree.Tree{"usr/bin/" + strings.ReplaceAll(name, " ", "-"): testtree.File("x", 0o755)}), key)
		_, err := f.s.Upgrade(ctx, opts)
		if err == nil || !strings.Contains(err.Error(), bad.String()) {
			t.Fatalf("upgrade to an %s commit: %v", name, err)
		}
		if diff := cmp.Diff([]repo.ID{a}, f.order()); diff != "" {
			t.Fatalf("%s: deployments changed: %s", name, diff)
		}
		if has, _ := f.s.Repo().HasObject(repo.KindCommit, bad); has {
			t.Errorf("%s: the refused commit was stored", name)
		}
	}
	b := signed(osTree("6.1.0-2", nil), priv)
	if res, err := f.s.Upgrade(ctx, opts); err != nil || res.Deployed.Deployment.Commit != b {
		t.Fatalf("signed upgrade: %+v, %v", res, err)
	}
}

// TestUpgradeOverrideCommit deploys a chosen commit of the origin branch,
// fetched by id: the origin records it, the ref does not move, the
// downgrade guard still applies, a commit built for another branch is
// refused, an origin key otree does not know survives, and a later plain
// upgrade drops the override and goes to the newest commit.
func TestUpgradeOverrideCommit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	srv := f.serveOrigin()
	a := srv.commit("os/stable", osTree("6.1.0-1", nil))
	b := srv.commit("os/stable", osTree("6.1.0-2", testtree.Tree{"usr/bin/b": testtree.File("b", 0o755)}))
	c := srv.commit("os/stable", osTree("6.1.0-3", testtree.Tree{"usr/bin/c": testtree.File("c", 0o755)}))
	other := srv.commit("os/testing", osTree("6.1.0-9", testtree.Tree{"usr/bin/t": testtree.File("t", 0o755)}))
	f.pullFromOrigin(a.String())
	origin := "[origin]\nrefspec=origin:os/stable\n[custom]\nkey=kept\n"
	f.deploy(a.String(), DeployOptions{Origin: []byte(origin)})

	opts := UpgradeOptions{Pull: quickPull(), OverrideCommit: b}
	res, err := f.s.Upgrade(ctx, opts)
	if err != nil || res.Commit != b || res.Deployed.Deployment.Commit != b || res.Deployed.Deployment.OverrideCommit != b.String() {
		t.Fatalf("upgrade --override-commit: %+v, %v", res, err)
	}
	if got, err := f.s.Repo().ReadRef("origin:os/stable"); err == nil {
		t.Errorf("the override moved origin:os/stable to %s (it was never pulled)", got)
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	data := read(res.Deployed.Deployment.Path + ".origin")
	for _, want := range []string{"refspec=origin:os/stable\n", "override-commit=" + b.String() + "\n", "[custom]\nkey=kept\n"} {
		if !strings.Contains(data, want) {
			t.Errorf("origin file %q lacks %q", data, want)
		}
	}
	if d := f.s.Deployments()[0]; d.OverrideCommit != b.String() {
		t.Errorf("status: override %q", d.OverrideCommit)
	}

	// Older than the deployed commit: refused unless allowed.
	opts.OverrideCommit = a
	var de *DowngradeError
	if _, err := f.s.Upgrade(ctx, opts); !errors.As(err, &de) {
		t.Fatalf("override to an older commit: %v", err)
	}
	// Another branch's commit: refused, naming the binding.
	opts.OverrideCommit = other
	var be *repo.RefBindingError
	if _, err := f.s.Upgrade(ctx, opts); !errors.As(err, &be) || be.Commit != other || !strings.Contains(err.Error(), "override commit") {
		t.Fatalf("override with another branch's commit: %v", err)
	}
	// Not on the server at all.
	opts.OverrideCommit = repo.ID{7}
	if _, err := f.s.Upgrade(ctx, opts); err == nil || !strings.Contains(err.Error(), repo.ID{7}.String()[2:]) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("override with an unknown commit: %v", err)
	}
	if diff := cmp.Diff([]repo.ID{b, a}, f.order()); diff != "" {
		t.Fatalf("refused overrides changed the deployments: %s", diff)
	}

	// A plain upgrade follows the branch again and drops the key.
	res, err = f.s.Upgrade(ctx, UpgradeOptions{Pull: quickPull()})
	if err != nil || res.Deployed.Deployment.Commit != c || res.Deployed.Deployment.OverrideCommit != "" {
		t.Fatalf("upgrade after an override: %+v, %v", res, err)
	}
	data = read(res.Deployed.Deployment.Path + ".origin")
	if strings.Contains(data, "override-commit") || !strings.Contains(data, "key=kept") {
		t.Errorf("origin after a plain upgrade: %q", data)
	}
}

// A tree can ship the remote it updates from in usr/etc/otree/remotes.d:
// the system repository reads it from the default (or booted)
// deployment's /etc, so upgrade finds it without `remote add`, and an
// update that moves the remote to another server is followed from then
// on.
func TestUpgradeFromShippedRemote(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	one, two := newServer(t), newServer(t)
	shipping := func(url, marker string) testtree.Tree {
		return osTree("6.1.0-1", testtree.Tree{
			"usr/etc/otree/remotes.d/vendor.conf": testtree.File("[remote \"vendor\"]\nurl="+url+"\n", 0o644),
			"usr/bin/marker":                      testtree.File(marker, 0o755)})
	}
	if _, err := remote.GetRemote(f.s.Repo(), "vendor"); !errors.Is(err, remote.ErrRemoteNotFound) {
		t.Fatalf("before any deployment: %v", err)
	}
	a := f.commit("os", shipping(one.srv.URL, "a"))
	if err := f.s.Repo().SetRef("vendor:os/stable", a); err != nil {
		t.Fatal(err)
	}
	f.deploy("vendor:os/stable", DeployOptions{})
	rm, err := remote.GetRemote(f.s.Repo(), "vendor")
	if err != nil || rm.URL != one.srv.URL || !strings.HasSuffix(rm.File, "/etc/otree/remotes.d/vendor.conf") {
		t.Fatalf("the shipped remote: %+v, %v", rm, err)
	}
	// The update moves the remote to the second server.
	b := one.commit("os/stable", shipping(two.srv.URL, "b"))
	res, err := f.s.Upgrade(ctx, UpgradeOptions{Pull: quickPull()})
	if err != nil || res.Deployed == nil || res.Deployed.Deployment.Commit != b {
		t.Fatalf("upgrade from the shipped remote: %+v, %v", res, err)
	}
	c := two.commit("os/stable", shipping(two.srv.URL, "c"))
	one.down.Store(true)
	res, err = f.s.Upgrade(ctx, UpgradeOptions{Pull: quickPull()})
	if err != nil || res.Deployed == nil || res.Deployed.Deployment.Commit != c {
		t.Fatalf("upgrade after the remote moved: %+v, %v", res, err)
	}
	if n := two.hits.Load(); n == 0 {
		t.Error("the second server was never asked")
	}
}

// A switch deletes only the old origin's remote-tracking ref: a local
// branch is the admin's, and a ref another stateroot follows stays.
func TestSwitchKeepsLocalAndFollowedRefs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.commit("os/a", osTree("6.1.0-1", nil))
	b := f.commit("os/b", osTree("6.1.0-2", nil))
	f.deploy("os/a", DeployOptions{})
	res, err := f.s.SwitchRef(ctx, "os/b", UpgradeOptions{})
	if err != nil || res.Deployed.Deployment.Commit != b {
		t.Fatalf("switch: %+v, %v", res, err)
	}
	if _, err := f.s.Repo().ReadRef("os/a"); err != nil || res.DeletedRef != "" {
		t.Fatalf("the local branch os/a after a switch: %v (deleted %q)", err, res.DeletedRef)
	}

	// Two stateroots follow origin:os/c; one switches away.
	srv := f.serveOrigin()
	srv.commit("os/c", osTree("6.1.0-3", nil))
	srv.commit("os/d", osTree("6.1.0-4", nil))
	if err := f.s.OSInit(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	opts := UpgradeOptions{Pull: quickPull()}
	opts.OS = "testos"
	if _, err := f.s.SwitchRef(ctx, "origin:os/c", opts); err != nil {
		t.Fatal(err)
	}
	f.deploy("origin:os/c", DeployOptions{OS: "other"})
	opts.OS = "testos"
	if res, err = f.s.SwitchRef(ctx, "origin:os/d", opts); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Repo().ReadRef("origin:os/c"); err != nil || res.DeletedRef != "" {
		t.Fatalf("origin:os/c, followed by stateroot other: %v (deleted %q)", err, res.DeletedRef)
	}
	opts.OS = "other"
	if res, err = f.s.SwitchRef(ctx, "origin:os/d", opts); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Repo().ReadRef("origin:os/c"); !errors.Is(err, repo.ErrNotFound) || res.DeletedRef != "origin:os/c" {
		t.Fatalf("origin:os/c, followed by no one: %v (deleted %q)", err, res.DeletedRef)
	}
}

// An origin with unconfigured-state= is refused by Upgrade with the OS
// vendor's words, as OSTree's upgrader refuses it, before any request
// (with --pull-only and --deploy-only too); a switch configures it: the
// new origin drops the key and keeps the others, and upgrades run again.
func TestUpgradeRefusesUnconfiguredState(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	srv := f.serveOrigin()
	a := srv.commit("os/stable", osTree("6.1.0-1", nil))
	opts := UpgradeOptions{Pull: quickPull()}
	f.pullFromOrigin("os/stable")
	cur := f.deploy("origin:os/stable", DeployOptions{}).Deployment
	op := cur.Path + ".origin"
	if err := os.WriteFile(op, []byte("[origin]\nrefspec=origin:os/stable\nunconfigured-state=Run vendor-setup first\nkept=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.commit("os/stable", osTree("6.1.0-2", nil))
	srv.hits.Store(0)
	for _, o := range []UpgradeOptions{opts, {Pull: quickPull(), PullOnly: true}, {DeployOnly: true}} {
		_, err := f.s.Upgrade(ctx, o)
		if err == nil || !strings.Contains(err.Error(), "origin unconfigured-state: Run vendor-setup first") || !strings.Contains(err.Error(), op) {
			t.Fatalf("upgrade (pull-only %v, deploy-only %v) of an unconfigured origin: %v", o.PullOnly, o.DeployOnly, err)
		}
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("the refused upgrades made %d requests", n)
	}
	if diff := cmp.Diff([]repo.ID{a}, f.order()); diff != "" {
		t.Fatalf("refused upgrades changed the deployments: %s", diff)
	}

	b := srv.commit("os/testing", osTree("6.1.0-3", nil))
	res, err := f.s.SwitchRef(ctx, "os/testing", opts)
	if err != nil || res.Deployed.Deployment.Commit != b {
		t.Fatalf("switch from an unconfigured origin: %+v, %v", res, err)
	}
	got, err := os.ReadFile(res.Deployed.Deployment.Path + ".origin")
	if want := "[origin]\nrefspec=origin:os/testing\nkept=1\n"; err != nil || string(got) != want {
		t.Fatalf("origin after the switch = %q, %v; want %q", got, err, want)
	}
	srv.commit("os/testing", osTree("6.1.0-4", nil))
	if _, err := f.s.Upgrade(ctx, opts); err != nil {
		t.Fatalf("upgrade after the switch: %v", err)
	}
}

// "REMOTE:" alone switches the current branch to another remote, as
// OSTree's switch does; from an origin without a branch it is refused,
// naming the deployment.
func TestSwitchRemoteOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	srv := newServer(t)
	for _, name := range []string{"origin", "mirror"} {
		if _, err := remote.AddRemote(f.s.Repo(), remote.Remote{Name: name, URL: srv.srv.URL}, remote.AddOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a := srv.commit("os/stable", osTree("6.1.0-1", nil))
	f.pullFromOrigin("os/stable")
	f.deploy("origin:os/stable", DeployOptions{})
	opts := UpgradeOptions{Pull: quickPull()}
	res, err := f.s.SwitchRef(ctx, "mirror:", opts)
	if err != nil || res.Refspec != "mirror:os/stable" || res.Deployed.Deployment.Origin != "mirror:os/stable" || res.Deployed.Deployment.Commit != a || res.DeletedRef != "origin:os/stable" {
		t.Fatalf("switch mirror: = %+v, %v", res, err)
	}

	f.deploy(a.String(), DeployOptions{}) // an origin that is a commit
	if _, err := f.s.SwitchRef(ctx, "origin:", opts); err == nil || !strings.Contains(err.Error(), "origin:") || !strings.Contains(err.Error(), a.String()+".") {
		t.Fatalf("switch origin: from a commit origin: %v", err)
	}
}

// A DowngradeError names each commit's own date, even one stamped past
// the int64 range, which a signed conversion printed as 1969.
func TestDowngradeErrorFarFuture(t *testing.T) {
	e := &DowngradeError{Ref: "os:main", Current: &Deployment{}, FoundTime: 1700000000, CurrentTime: 1<<64 - 1}
	for _, want := range []string{"made 2023-11-14T22:13:20Z", "made 584554051223-11-09T07:00:15Z"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("%q does not name %s", e.Error(), want)
		}
	}
}
