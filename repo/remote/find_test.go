package remote_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/otree/otree/repo/sign"
)

const coll = "org.example.Os"

var osStable = remote.CollectionRef{CollectionID: coll, Ref: "os/stable"}

// osKey signs the collection's commits; clients verify with its public half.
var osKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// collectionRepo makes a repository of the collection c (archive mode,
// so that it can be served over HTTP as it is).
func collectionRepo(t *testing.T, c string) *repo.Repo {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "build"), repo.InitOptions{Mode: repo.ModeArchive, CollectionID: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// commitAt commits tr to branch of r with the timestamp ts, signed by
// osKey, and writes r's summary anew.
func commitAt(t *testing.T, r *repo.Repo, branch string, tr testtree.Tree, ts int64) repo.ID {
	t.Helper()
	id := commitUnsigned(t, r, branch, tr, ts)
	if _, err := sign.SignCommit(ctx, r, id, osKey); err != nil {
		t.Fatal(err)
	}
	return id
}

func commitUnsigned(t *testing.T, r *repo.Repo, branch string, tr testtree.Tree, ts int64) repo.ID {
	t.Helper()
	src := t.TempDir()
	testtree.Create(t, src, tr)
	res, err := commit.Commit(ctx, r, commit.Options{
		Branch: branch, Subject: "test", Timestamp: time.Unix(ts, 0), NoSync: true,
		OwnerUID: &zero, OwnerGID: &zero, Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	return res.Commit
}

// client makes a repository with the remote origin of collection coll at
// url, verifying osKey's signatures, with the extra keys set.
func client(t *testing.T, url string, set map[string]string) *repo.Repo {
	t.Helper()
	if set == nil {
		set = inlineKey(osKey.Public().(ed25519.PublicKey))
	}
	set["collection-id"] = coll
	return verifyingDest(t, url, set)
}

func treeV(v string) testtree.Tree {
	return testtree.Tree{"etc/version": testtree.File(v+"\n", 0o644), "usr/bin/tool": testtree.File("#!/bin/sh\necho "+v+"\n", 0o755)}
}

func findOn(t *testing.T, r *repo.Repo, mounts []string, refs ...remote.CollectionRef) *remote.FindResult {
	t.Helper()
	return findWith(t, r, nil, mounts, refs...)
}

func findWith(t *testing.T, r *repo.Repo, finders, mounts []string, refs ...remote.CollectionRef) *remote.FindResult {
	t.Helper()
	res, err := remote.FindRemotes(ctx, r, refs, remote.FindOptions{Finders: finders, Mounts: mounts, Pull: fastOpts()})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestCreateUSBThenFindAndPull carries an update on a stick: create-usb on
// the build machine, then on a client find-remotes sees the stick and the
// configured remote, and pulls from whichever has the newer commit.
func TestCreateUSBThenFindAndPull(t *testing.T) {
	build := collectionRepo(t, coll)
	v1 := commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	srv := newFileServer(t, build.Path())
	v2 := commitAt(t, build, "os/stable", treeV("2"), 1700000100)
	commitAt(t, build, "os/testing", treeV("t"), 1700000200)

	// The server now serves v2 too; the stick gets v2 and os/testing.
	stick := t.TempDir()
	repos, err := remote.CreateUSB(ctx, build, stick, []remote.CollectionRef{osStable, {coll, "os/testing"}}, remote.USBOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	onStick := filepath.Join(stick, remote.MountReposDir, coll)
	if len(repos) != 1 || repos[0].Path != onStick || !repos[0].Created || len(repos[0].Refs) != 2 {
		t.Fatalf("create-usb wrote %+v", repos)
	}
	sr, err := repo.Open(onStick)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Mode() != repo.ModeArchive || sr.CollectionID() != coll {
		t.Errorf("the stick's repository is %v of collection %q", sr.Mode(), sr.CollectionID())
	}
	if id, _ := sr.ReadRef("os/stable"); id != v2 {
		t.Errorf("os/stable on the stick is %s, want %s", id, v2)
	}
	if sum, err := remote.ReadSummary(sr); err != nil || len(sum.Refs) != 2 {
		t.Errorf("the stick's summary: %+v, %v", sum, err)
	}
	checkFsck(t, sr)
	sr.Close()

	// Rebuilding the server's summary so it lists v1 only: the server
	// lags behind the stick.
	os.WriteFile(filepath.Join(build.Path(), "refs/heads/os/stable"), []byte(v1.String()+"\n"), 0o644)
	if _, err := remote.UpdateSummary(ctx, build, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}

	c := client(t, srv, nil)
	other := t.TempDir() // a mount without repositories
	res := findOn(t, c, []string{other, stick}, osStable, remote.CollectionRef{CollectionID: coll, Ref: "os/none"})
	if len(res.Remotes) != 2 {
		t.Fatalf("found %+v, want the stick and the remote", res.Remotes)
	}
	m, cfg := res.Remotes[0], res.Remotes[1]
	if m.Finder != remote.FinderMount || m.Remote != "origin" || m.URL != "file://"+onStick || len(m.Refs) != 1 || m.Refs[0].Commit != v2 {
		t.Errorf("mount result %+v", m)
	}
	if cfg.Finder != remote.FinderConfig || cfg.URL != srv || len(cfg.Refs) != 1 || cfg.Refs[0].Commit != v1 || !cfg.Refs[0].Timestamp.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("config result %+v", cfg)
	}
	if len(res.Missing) != 1 || res.Missing[0].Ref != "os/none" {
		t.Errorf("missing %+v", res.Missing)
	}

	pulled, err := remote.PullFound(ctx, c, res, []remote.CollectionRef{osStable}, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if len(pulled) != 1 || pulled[0].New != v2 || pulled[0].From != m.URL || pulled[0].Ref != "origin:os/stable" {
		t.Fatalf("pulled %+v, want v2 from the stick", pulled)
	}
	if id, _ := c.ReadRef("origin:os/stable"); id != v2 {
		t.Errorf("origin:os/stable is %s, want %s", id, v2)
	}
	checkFsck(t, c)

	// The server moves on to v3: now it is the newest source.
	v3 := commitAt(t, build, "os/stable", treeV("3"), 1700000300)
	res = findOn(t, c, []string{stick}, osStable)
	pulled, err = remote.PullFound(ctx, c, res, []remote.CollectionRef{osStable}, fastOpts())
	if err != nil || pulled[0].New != v3 || pulled[0].From != srv {
		t.Fatalf("pulled %+v, %v; want v3 from the server", pulled, err)
	}

	// The stick is stale now: it is not an update, and nothing moves.
	res = findWith(t, c, []string{remote.FinderMount}, []string{stick}, osStable)
	pulled, err = remote.PullFound(ctx, c, res, []remote.CollectionRef{osStable}, fastOpts())
	if err != nil || pulled[0].New != v3 || pulled[0].From != "" || !strings.Contains(pulled[0].Note, "older") {
		t.Fatalf("a stale stick: %+v, %v", pulled, err)
	}
}

// TestFindNeedsAConfiguredRemote: a collection no remote is configured for
// is not looked for, and a mounted repository is not taken for a remote
// that does not verify signatures, since nothing here could tell its
// commits from anyone's.
func TestFindNeedsAConfiguredRemote(t *testing.T) {
	build := collectionRepo(t, coll)
	commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	stick := t.TempDir()
	if _, err := remote.CreateUSB(ctx, build, stick, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	c := verifyingDest(t, "file:///nonexistent", nil) // origin without collection-id
	res := findOn(t, c, []string{stick}, osStable)
	if len(res.Remotes) != 0 || len(res.Missing) != 1 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "no configured remote") ||
		len(res.Unverifiable) != 1 || res.Unverifiable[0] != osStable.CollectionID {
		t.Errorf("found %+v", res)
	}
	// A remote of the collection that does not verify signatures: the
	// stick is not taken, since anyone could have written it.
	unverified := client(t, "file:///nonexistent", map[string]string{})
	res = findWith(t, unverified, []string{remote.FinderMount}, []string{stick}, osStable)
	if len(res.Remotes) != 0 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "sign-verify") {
		t.Errorf("with a remote that does not verify signatures, found %+v", res)
	}
}

// TestPullFoundPassesOverBadSources: the newest commit is on a stick whose
// objects were tampered with, or that is not signed; the pull refuses it,
// moves no ref for it, and takes the next source.
func TestPullFoundPassesOverBadSources(t *testing.T) {
	build := collectionRepo(t, coll)
	v1 := commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	srv := newFileServer(t, build.Path())

	// Stick A: a newer commit, signed, with a file object damaged.
	a := collectionRepo(t, coll)
	commitAt(t, a, "os/stable", treeV("a"), 1700000100)
	stickA := t.TempDir()
	if _, err := remote.CreateUSB(ctx, a, stickA, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	damageOneFile(t, filepath.Join(stickA, remote.MountReposDir, coll))

	// Stick B: the newest commit, unsigned.
	b := collectionRepo(t, coll)
	commitUnsigned(t, b, "os/stable", treeV("b"), 1700000200)
	stickB := t.TempDir()
	if _, err := remote.CreateUSB(ctx, b, stickB, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}

	c := client(t, srv, nil)
	res := findOn(t, c, []string{stickA, stickB}, osStable)
	if len(res.Remotes) != 3 {
		t.Fatalf("found %+v", res)
	}
	pulled, err := remote.PullFound(ctx, c, res, []remote.CollectionRef{osStable}, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	p := pulled[0]
	if p.New != v1 || p.From != srv || len(p.Tried) != 2 {
		t.Fatalf("pulled %+v: want v1 from the server after both sticks failed", p)
	}
	if !strings.Contains(p.Tried[0], "signature") || !strings.Contains(p.Tried[1], "corrupt") {
		t.Errorf("why the sticks failed: %q", p.Tried)
	}
	checkFsck(t, c)

	// With the server gone from the results, both sticks fail: an error,
	// and the ref stays at v1.
	res = findWith(t, c, []string{remote.FinderMount}, []string{stickA, stickB}, osStable)
	_, err = remote.PullFound(ctx, c, res, []remote.CollectionRef{osStable}, fastOpts())
	if err == nil || !strings.Contains(err.Error(), osStable.String()) {
		t.Errorf("every source bad: %v", err)
	}
	if id, _ := c.ReadRef("origin:os/stable"); id != v1 {
		t.Errorf("origin:os/stable moved to %s", id)
	}
}

// A configured remote's password stays hidden in what PullFound reports:
// the URL a ref came from, and the sources that failed.
func TestPullFoundHidesURLPassword(t *testing.T) {
	build := collectionRepo(t, coll)
	commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	srv := newFileServer(t, build.Path())
	withPW := strings.Replace(srv, "://", "://user:s3cret@", 1)

	c := client(t, withPW, nil)
	pulled, err := remote.PullFound(ctx, c, findOn(t, c, nil, osStable), []remote.CollectionRef{osStable}, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if p := pulled[0]; p.From != "http://user:***@"+strings.TrimPrefix(srv, "http://") {
		t.Errorf("pulled from %q", p.From)
	}

	// A source found whose objects then fail to come names its URL.
	commitAt(t, build, "os/stable", treeV("2"), 1700000100)
	res := findOn(t, c, nil, osStable)
	err = filepath.WalkDir(filepath.Join(build.Path(), "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".commit") && !strings.HasSuffix(p, ".commitmeta") {
			err = os.Remove(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pulled, err = remote.PullFound(ctx, c, res, []remote.CollectionRef{osStable}, fastOpts())
	if err == nil || len(pulled) != 1 || len(pulled[0].Tried) != 1 {
		t.Fatalf("pull of a source without its objects: %+v, %v", pulled, err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
	for _, s := range []string{pulled[0].Err, pulled[0].Tried[0]} {
		if strings.Contains(s, "s3cret") || !strings.Contains(s, "user:***@") {
			t.Errorf("%q shows the password or not the URL", s)
		}
	}
}

// TestPullFoundIntoEachSourcesRemote: with two remotes of the collection,
// a ref pulled from one of them lands in, is compared with, and is
// reported as, that remote's tracking ref, not that of the remote of a
// source that failed before it.
func TestPullFoundIntoEachSourcesRemote(t *testing.T) {
	build := collectionRepo(t, coll)
	v1 := commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	srv := newFileServer(t, build.Path())
	// The stick, damaged, offers a newer commit, under remote aa (the
	// first by name); the server is zz's.
	commitAt(t, build, "os/stable", treeV("2"), 1700000100)
	stick := t.TempDir()
	if _, err := remote.CreateUSB(ctx, build, stick, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	damageOneFile(t, filepath.Join(stick, remote.MountReposDir, coll))
	if err := build.SetRef("os/stable", v1); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, build, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	set := inlineKey(osKey.Public().(ed25519.PublicKey))
	set["collection-id"] = coll
	c, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, rm := range []remote.Remote{{Name: "zz", URL: srv}, {Name: "aa", URL: "file:///nonexistent/otree-test"}} {
		if _, err := remote.AddRemote(c, rm, remote.AddOptions{Set: set}); err != nil {
			t.Fatal(err)
		}
	}
	for run := 0; run < 2; run++ {
		res := findOn(t, c, []string{stick}, osStable)
		if len(res.Remotes) != 2 || res.Remotes[0].Remote != "aa" || res.Remotes[1].Remote != "zz" {
			t.Fatalf("found %+v", res.Remotes)
		}
		pulled, err := remote.PullFound(ctx, c, res, []remote.CollectionRef{osStable}, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		p := pulled[0]
		if p.Ref != "zz:os/stable" || p.New != v1 || len(p.Tried) != 1 {
			t.Errorf("run %d: pulled %+v: want zz:os/stable at v1 after the stick failed", run, p)
		}
		if run == 1 && (p.Old != v1 || p.Note != "up to date") {
			t.Errorf("run %d: pulled %+v: want zz:os/stable up to date", run, p)
		}
		if id, _ := c.ReadRef("zz:os/stable"); id != v1 {
			t.Errorf("run %d: zz:os/stable is %s, want %s", run, id, v1)
		}
		if _, err := c.ReadRef("aa:os/stable"); !errors.Is(err, repo.ErrNotFound) {
			t.Errorf("run %d: aa:os/stable: %v, want none", run, err)
		}
	}
	checkFsck(t, c)
}

// TestPullFoundStaleAsOld: a source offering an ancestor of the commit
// here, made in the same second, is as stale as one offering an older
// commit: nothing is pulled, and that is no failure.
func TestPullFoundStaleAsOld(t *testing.T) {
	build := collectionRepo(t, coll)
	v1 := commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	v2 := commitAt(t, build, "os/stable", treeV("2"), 1700000000)
	srv := newFileServer(t, build.Path())
	c := client(t, srv, nil)
	if _, err := remote.PullFound(ctx, c, findOn(t, c, []string{}, osStable), []remote.CollectionRef{osStable}, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if err := build.SetRef("os/stable", v1); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, build, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.PullFound(ctx, c, findOn(t, c, []string{}, osStable), []remote.CollectionRef{osStable}, fastOpts())
	if err != nil || len(pulled) != 1 || pulled[0].Note == "" || pulled[0].Err != "" || pulled[0].New != v2 {
		t.Errorf("source offering an ancestor as old: %+v, %v", pulled, err)
	}
	if id, _ := c.ReadRef("origin:os/stable"); id != v2 {
		t.Errorf("origin:os/stable moved to %s", id)
	}
	checkFsck(t, c)
}

// A stopped context stops FindRemotes and PullFound with an error that
// says so, not a result: a remote left unasked is not one without the
// ref, nor a pull cut short a source that failed (the next would be
// tried, and the ref reported as one no source could serve).
func TestFindAndPullFoundStopWithTheirContext(t *testing.T) {
	build := collectionRepo(t, coll)
	commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	c := client(t, newFileServer(t, build.Path()), nil)
	stopped, stop := context.WithCancel(ctx)
	stop()
	res, err := remote.FindRemotes(stopped, c, []remote.CollectionRef{osStable}, remote.FindOptions{Mounts: []string{}, Pull: fastOpts()})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("FindRemotes stopped: %+v, %v; want a cancellation", res, err)
	}
	found := findOn(t, c, []string{}, osStable)
	pulled, err := remote.PullFound(stopped, c, found, []remote.CollectionRef{osStable}, fastOpts())
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), osStable.String()) || len(pulled) != 0 {
		t.Errorf("PullFound stopped: %+v, %v; want a cancellation naming %s, nothing pulled", pulled, err, osStable)
	}
	if _, err := c.ReadRef("origin:os/stable"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("origin:os/stable after a stopped PullFound: %v, want none", err)
	}
}

// TestFindRunsEachFinderOnce: a finder named twice, in the options or in
// core.default-repo-finders, runs once: each source is listed once.
func TestFindRunsEachFinderOnce(t *testing.T) {
	build := collectionRepo(t, coll)
	commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	c := client(t, newFileServer(t, build.Path()), nil)
	stick := t.TempDir()
	if _, err := remote.CreateUSB(ctx, build, stick, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if res := findWith(t, c, []string{remote.FinderConfig, remote.FinderMount, remote.FinderConfig}, []string{stick}, osStable); len(res.Remotes) != 2 {
		t.Errorf("finders config, mount, config: found %+v, want the server and the stick once each", res.Remotes)
	}
	if err := c.UpdateConfig(func(cfg *repo.Config) error { return cfg.Set(remote.ConfigDefaultFinders, "mount;config;mount") }); err != nil {
		t.Fatal(err)
	}
	if res := findOn(t, c, []string{stick}, osStable); len(res.Remotes) != 2 {
		t.Errorf("%s=mount;config;mount: found %+v, want the stick and the server once each", remote.ConfigDefaultFinders, res.Remotes)
	}
}

// damageOneFile flips a byte in the largest file object of the repository
// at dir.
func damageOneFile(t *testing.T, dir string) {
	t.Helper()
	var biggest string
	var size int64
	filepath.Walk(filepath.Join(dir, "objects"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".file") && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	b, err := os.ReadFile(biggest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 0xff
	if err := os.WriteFile(biggest, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCreateUSBLooksUpRefs: a ref is this repository's branch when the
// collection is its own, else a remote-tracking ref of that collection;
// refs that disagree, are missing, or are bound elsewhere are refused
// before anything is written.
func TestCreateUSBLooksUpRefs(t *testing.T) {
	build := collectionRepo(t, coll)
	v1 := commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	srv := newFileServer(t, build.Path())

	// A machine without a collection of its own that pulled os/stable.
	c := client(t, srv, nil)
	if _, err := remote.Pull(ctx, c, fastOpts("os/stable")); err != nil {
		t.Fatal(err)
	}
	stick := t.TempDir()
	repos, err := remote.CreateUSB(ctx, c, stick, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true})
	if err != nil || len(repos) != 1 || repos[0].Refs[0].New != v1 {
		t.Fatalf("from a remote ref: %+v, %v", repos, err)
	}
	// A second run updates the same repository, and brings the stick's
	// copy of the commit the signature added here since.
	pub2, key2 := genKey(t)
	if _, err := sign.SignCommit(ctx, c, v1, key2); err != nil {
		t.Fatal(err)
	}
	if repos, err = remote.CreateUSB(ctx, c, stick, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil || repos[0].Created || repos[0].Refs[0].Old != v1 {
		t.Fatalf("a second run: %+v, %v", repos, err)
	}
	sr, err := repo.Open(repos[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.VerifyCommit(sr, v1, []ed25519.PublicKey{pub2}); err != nil {
		t.Errorf("the stick lacks the signature added since the first run: %v", err)
	}
	sr.Close()

	// A second remote of the collection that names another commit.
	v2 := commitAt(t, build, "os/stable", treeV("2"), 1700000100)
	if _, err := remote.AddRemote(c, remote.Remote{Name: "mirror", URL: srv}, remote.AddOptions{Set: map[string]string{"collection-id": coll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(ctx, c, remote.PullOptions{Remote: "mirror", Refs: []string{"os/stable"}, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	fresh := t.TempDir()
	_, err = remote.CreateUSB(ctx, c, fresh, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true})
	if !errors.Is(err, remote.ErrRefsDisagree) || !strings.Contains(err.Error(), "mirror:os/stable") || !strings.Contains(err.Error(), "origin:os/stable") {
		t.Errorf("remotes that disagree: %v", err)
	}
	if repos, err = remote.CreateUSB(ctx, c, fresh, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true, Commit: v2.String()}); err != nil || repos[0].Refs[0].New != v2 {
		t.Errorf("Commit chooses: %+v, %v", repos, err)
	}

	if err := c.SetRef("origin:os/stable", v2); err != nil { // agreeing again
		t.Fatal(err)
	}
	missing := remote.CollectionRef{CollectionID: coll, Ref: "os/none"}
	other := remote.CollectionRef{CollectionID: "org.example.Other", Ref: "os/stable"}
	for _, cr := range []remote.CollectionRef{missing, other} {
		empty := t.TempDir()
		_, err := remote.CreateUSB(ctx, c, empty, []remote.CollectionRef{osStable, cr}, remote.USBOptions{NoSync: true, Commit: ""})
		if !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), cr.String()) {
			t.Errorf("%s: %v", cr, err)
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Errorf("%s: a refused create-usb wrote %v", cr, ents)
		}
	}

	// A commit bound to another collection is not put under this one.
	stray := collectionRepo(t, "org.example.Other")
	sv := commitAt(t, stray, "os/stable", treeV("x"), 1700000000)
	if _, err := remote.PullLocal(ctx, c, stray.Path(), remote.PullOptions{Refs: []string{"os/stable"}, Remote: "origin", NoSync: true, DisableVerifyBindings: true}); err != nil {
		t.Fatal(err)
	}
	c.SetRef("mirror:os/stable", sv)
	_, err = remote.CreateUSB(ctx, c, t.TempDir(), []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true})
	var be *repo.CollectionBindingError
	if !errors.As(err, &be) {
		t.Errorf("a commit bound to another collection: %v", err)
	}
}

// TestCreateUSBRefusesPartialCommit: a ref whose commit is partial here
// (--commit-metadata-only) is refused before anything is written, rather
// than leave a repository without it on the stick.
func TestCreateUSBRefusesPartialCommit(t *testing.T) {
	build := collectionRepo(t, coll)
	v1 := commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	c := client(t, newFileServer(t, build.Path()), nil)
	opts := fastOpts("os/stable")
	opts.CommitMetadataOnly = true
	if _, err := remote.Pull(ctx, c, opts); err != nil {
		t.Fatal(err)
	}
	stick := t.TempDir()
	_, err := remote.CreateUSB(ctx, c, stick, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true})
	if !errors.Is(err, remote.ErrPartialCommit) || !strings.Contains(err.Error(), osStable.String()) || !strings.Contains(err.Error(), v1.String()) {
		t.Errorf("a partial commit: %v", err)
	}
	if ents, _ := os.ReadDir(stick); len(ents) != 0 {
		t.Errorf("a refused create-usb wrote %v", ents)
	}
}

// TestCreateUSBWritesOnlyOnTheMount: a stick whose directories link off
// it is refused and nothing is written there; --destination-repo stays
// within the mount and is linked from repos.d; the finder passes over a
// repos.d entry that links off its mount.
func TestCreateUSBWritesOnlyOnTheMount(t *testing.T) {
	build := collectionRepo(t, coll)
	commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	refs := []remote.CollectionRef{osStable}
	opts := remote.USBOptions{NoSync: true}

	outside := t.TempDir()
	stick := t.TempDir()
	os.Symlink(outside, filepath.Join(stick, ".otree"))
	if _, err := remote.CreateUSB(ctx, build, stick, refs, opts); err == nil || !strings.Contains(err.Error(), ".otree") {
		t.Errorf(".otree a link off the stick: %v", err)
	}
	// A repository on the stick whose objects/XX links off it.
	stick2 := t.TempDir()
	if _, err := remote.CreateUSB(ctx, build, stick2, refs, opts); err != nil {
		t.Fatal(err)
	}
	xx := filepath.Join(stick2, remote.MountReposDir, coll, "objects", "00")
	os.RemoveAll(xx)
	os.Symlink(outside, xx)
	v2 := commitAt(t, build, "os/stable", treeV("2"), 1700000100)
	if _, err := remote.CreateUSB(ctx, build, stick2, refs, opts); err == nil || !strings.Contains(err.Error(), xx) {
		t.Errorf("objects/00 a link off the stick: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("create-usb wrote off the stick: %v", ents)
	}
	for _, d := range []string{"/abs", "../up", "a/../../up", "."} {
		if _, err := remote.CreateUSB(ctx, build, t.TempDir(), refs, remote.USBOptions{NoSync: true, DestinationRepo: d}); err == nil {
			t.Errorf("--destination-repo %q accepted", d)
		}
	}

	// The mount path given may itself be a link.
	linked := filepath.Join(t.TempDir(), "usb")
	os.Symlink(stick2, linked)
	os.RemoveAll(xx)
	os.Mkdir(xx, 0o755)
	if repos, err := remote.CreateUSB(ctx, build, linked, refs, opts); err != nil || repos[0].Path != filepath.Join(stick2, remote.MountReposDir, coll) {
		t.Errorf("through a linked mount path: %+v, %v", repos, err)
	}

	// --destination-repo: the repository there, linked from repos.d.
	stick3 := t.TempDir()
	if _, err := remote.CreateUSB(ctx, build, stick3, refs, remote.USBOptions{NoSync: true, DestinationRepo: "updates/os"}); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(stick3, remote.MountReposDir, coll)); err != nil || l != "../../updates/os" {
		t.Errorf("repos.d link: %q, %v", l, err)
	}
	c := client(t, "file:///nonexistent", nil)
	res := findOn(t, c, []string{stick3}, osStable)
	if len(res.Remotes) != 1 || res.Remotes[0].Refs[0].Commit != v2 || res.Remotes[0].URL != "file://"+filepath.Join(stick3, "updates/os") {
		t.Errorf("found %+v", res)
	}
	// A later run without --destination-repo follows the link; another
	// collection's --destination-repo beside it is fine.
	v3 := commitAt(t, build, "os/stable", treeV("3"), 1700000200)
	if repos, err := remote.CreateUSB(ctx, build, stick3, refs, opts); err != nil || repos[0].Path != filepath.Join(stick3, "updates/os") || repos[0].Refs[0].New != v3 {
		t.Errorf("a run following the link: %+v, %v", repos, err)
	}
	other := collectionRepo(t, "org.example.Apps")
	commitAt(t, other, "app", treeV("a"), 1700000000)
	if _, err := remote.CreateUSB(ctx, other, stick3, []remote.CollectionRef{{CollectionID: "org.example.Apps", Ref: "app"}}, remote.USBOptions{NoSync: true, DestinationRepo: "updates/apps"}); err != nil {
		t.Errorf("a second collection beside the first: %v", err)
	}
	// A destination repository holds one collection; a repos.d entry that
	// is no link to it is left alone.
	two := []remote.CollectionRef{osStable, {CollectionID: "org.example.Apps", Ref: "app"}}
	if _, err := remote.CreateUSB(ctx, build, t.TempDir(), two, remote.USBOptions{NoSync: true, DestinationRepo: "updates/os"}); err == nil || !strings.Contains(err.Error(), "updates/os") {
		t.Errorf("a destination repository for two collections: %v", err)
	}
	stick5 := t.TempDir()
	entry := filepath.Join(stick5, remote.MountReposDir, coll)
	os.MkdirAll(entry, 0o755)
	if _, err := remote.CreateUSB(ctx, build, stick5, refs, remote.USBOptions{NoSync: true, DestinationRepo: "updates/os"}); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), entry) {
		t.Errorf("a repos.d directory where the link goes: %v", err)
	}
	// A link in repos.d that leaves the mount is not followed.
	for _, target := range []string{outside, "../../../elsewhere"} {
		link := filepath.Join(stick3, remote.MountReposDir, coll)
		os.Remove(link)
		os.Symlink(target, link)
		if _, err := remote.CreateUSB(ctx, build, stick3, refs, opts); err == nil || !strings.Contains(err.Error(), "outside the mount") {
			t.Errorf("repos.d link to %s: %v", target, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("create-usb wrote off the stick: %v", ents)
	}

	// A repos.d entry that links to a repository off the mount.
	stick4 := t.TempDir()
	os.MkdirAll(filepath.Join(stick4, remote.MountReposDir), 0o755)
	os.Symlink(build.Path(), filepath.Join(stick4, remote.MountReposDir, coll))
	res = findOn(t, c, []string{stick4}, osStable)
	if len(res.Remotes) != 0 || !strings.Contains(strings.Join(res.Problems, "\n"), "outside the mount") {
		t.Errorf("a link off the mount: %+v", res)
	}
}

// TestFindReadsOnlyOnTheMount: a repository on a stick whose config,
// refs/ or objects/XX links off the mount is passed over, naming the
// link, and what the link leads to is neither read nor printed.
func TestFindReadsOnlyOnTheMount(t *testing.T) {
	build := collectionRepo(t, coll)
	v1 := commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	c := client(t, "file:///nonexistent", nil)
	outside := t.TempDir()
	secret := filepath.Join(outside, "shadow")
	if err := os.WriteFile(secret, []byte("root:SECRET-HASH:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// refs/ and objects/XX copied off the stick, then linked from it: the
	// repository would still read as it did.
	for _, name := range []string{"config", "refs", "objects/" + v1.String()[:2]} {
		stick := t.TempDir()
		if _, err := remote.CreateUSB(ctx, build, stick, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(stick, remote.MountReposDir, coll, name)
		target := secret
		if name != "config" {
			target = filepath.Join(outside, strings.ReplaceAll(name, "/", "-"))
			if err := os.Rename(p, target); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		res := findOn(t, c, []string{stick}, osStable)
		problems := strings.Join(res.Problems, "\n")
		if len(res.Remotes) != 0 || !strings.Contains(problems, p+" is a symbolic link") {
			t.Errorf("%s linked off the mount: remotes %+v, problems %q", name, res.Remotes, problems)
		}
		if strings.Contains(problems, "SECRET") {
			t.Errorf("%s linked off the mount: the file it leads to was printed: %q", name, problems)
		}
	}
}

// TestPullFoundFromStickUnderSummaryVerification: a stick's summary is
// written by create-usb and unsigned, so a remote that also verifies its
// server's summary still takes the stick's signed commits; an unsigned one
// is still refused.
func TestPullFoundFromStickUnderSummaryVerification(t *testing.T) {
	build := collectionRepo(t, coll)
	v1 := commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	stick := t.TempDir()
	if _, err := remote.CreateUSB(ctx, build, stick, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	set := inlineKey(osKey.Public().(ed25519.PublicKey))
	set["sign-verify-summary"] = "true"
	c := client(t, "file:///nonexistent", set)
	res := findWith(t, c, []string{remote.FinderMount}, []string{stick}, osStable)
	pulled, err := remote.PullFound(ctx, c, res, []remote.CollectionRef{osStable}, fastOpts())
	if err != nil || pulled[0].New != v1 {
		t.Fatalf("pulled %+v, %v", pulled, err)
	}

	unsigned := collectionRepo(t, coll)
	commitUnsigned(t, unsigned, "os/stable", treeV("2"), 1700000100)
	stick2 := t.TempDir()
	if _, err := remote.CreateUSB(ctx, unsigned, stick2, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	res = findWith(t, c, []string{remote.FinderMount}, []string{stick2}, osStable)
	if _, err := remote.PullFound(ctx, c, res, []remote.CollectionRef{osStable}, fastOpts()); err == nil {
		t.Errorf("an unsigned commit from a stick was pulled")
	}
	if id, _ := c.ReadRef("origin:os/stable"); id != v1 {
		t.Errorf("origin:os/stable moved to %s", id)
	}
}

// TestFindDefaultFindersFromConfig: core.default-repo-finders (OSTree's
// key) chooses the finders when none are given, so an admin who drops
// mount there keeps updates from being taken off a stick; finders given
// still win, and a finder otree lacks is an error naming the key.
func TestFindDefaultFindersFromConfig(t *testing.T) {
	build := collectionRepo(t, coll)
	commitAt(t, build, "os/stable", treeV("1"), 1700000000)
	stick := t.TempDir()
	if _, err := remote.CreateUSB(ctx, build, stick, []remote.CollectionRef{osStable}, remote.USBOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	c := client(t, newFileServer(t, build.Path()), nil)
	setConfig := func(v string) {
		t.Helper()
		if err := c.UpdateConfig(func(cfg *repo.Config) error { return cfg.Set(remote.ConfigDefaultFinders, v) }); err != nil {
			t.Fatal(err)
		}
	}
	finders := func(res *remote.FindResult) (out []string) {
		for _, f := range res.Remotes {
			out = append(out, f.Finder)
		}
		return out
	}
	setConfig("config;")
	if got := finders(findOn(t, c, []string{stick}, osStable)); len(got) != 1 || got[0] != remote.FinderConfig {
		t.Errorf("with %s=config; found on %v, want config alone", remote.ConfigDefaultFinders, got)
	}
	setConfig(" config ; mount ;")
	if got := finders(findOn(t, c, []string{stick}, osStable)); len(got) != 2 || got[0] != remote.FinderConfig || got[1] != remote.FinderMount {
		t.Errorf("with %s=config;mount; found on %v, want config then mount", remote.ConfigDefaultFinders, got)
	}
	if got := finders(findWith(t, c, []string{remote.FinderMount}, []string{stick}, osStable)); len(got) != 1 || got[0] != remote.FinderMount {
		t.Errorf("--finders=mount found on %v, want mount alone", got)
	}
	// An empty list, which OSTree refuses, is not taken for the default
	// (mount among them): an admin may have meant none.
	for _, bad := range []string{"config;lan;", "disk", "", ";", " ; "} {
		setConfig(bad)
		_, err := remote.FindRemotes(ctx, c, []remote.CollectionRef{osStable}, remote.FindOptions{Mounts: []string{stick}, Pull: fastOpts()})
		if err == nil || !strings.Contains(err.Error(), remote.ConfigDefaultFinders) {
			t.Errorf("%s=%s: %v, want an error naming the key", remote.ConfigDefaultFinders, bad, err)
		}
	}
}
