package remote_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/otree/otree/repo/sign"
)

// LocalCaches: objects a repository on this machine holds are taken from
// it, not fetched; a cached object that fails verification (a file's
// content, a dirtree's bytes) is fetched instead, and the pull says so.
func TestPullLocalCaches(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	cachePath := filepath.Join(t.TempDir(), "cache")
	cache, err := repo.Init(cachePath, repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if _, err := remote.PullLocal(ctx, cache, o.dir, remote.PullOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	all := len(storedObjects(t, cache))

	o.resetHits()
	dst := newDest(t, repo.ModeArchive, o.srv.URL)
	opts := fastOpts("os/stable")
	opts.LocalCaches = []string{cachePath}
	res, err := remote.Pull(ctx, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Only the commit's detached metadata, which the cache lacks (the
	// source may have signatures there), is asked for.
	meta := objectURLPath(repo.KindCommitMeta, id)
	if n := o.objectHits() - o.hitsOf(meta); n != 0 || o.hitsOf(meta) != 1 {
		t.Errorf("%d objects requested besides the detached metadata, all of them are in the cache", n)
	}
	if res.ObjectsFetched != 0 || res.ObjectsFromCaches != int64(all) {
		t.Errorf("fetched %d, from caches %d; want 0 and %d", res.ObjectsFetched, res.ObjectsFromCaches, all)
	}
	checkSameTree(t, o.r, dst, id)
	checkFsck(t, dst)

	// Damage a file object and a dirtree in the cache.
	file := lookup(t, o.r, id, "/etc/motd").ID
	dir := lookup(t, o.r, id, "/usr/share").ID
	f, err := os.OpenFile(cache.ObjectPath(repo.KindFile, file), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("appended")
	f.Close()
	dp := cache.ObjectPath(repo.KindDirTree, dir)
	data, err := os.ReadFile(dp)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	os.Chmod(dp, 0o644)
	if err := os.WriteFile(dp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	o.resetHits()
	var log bytes.Buffer
	dst2 := newDest(t, repo.ModeBareUser, o.srv.URL)
	opts.Logger = slog.New(slog.NewTextHandler(&log, nil))
	if res, err = remote.Pull(ctx, dst2, opts); err != nil {
		t.Fatalf("pull past a damaged cache: %v", err)
	}
	if o.objectHits()-o.hitsOf(meta) != 2 || o.hitsOf(objectURLPath(repo.KindFile, file)) != 1 || o.hitsOf(objectURLPath(repo.KindDirTree, dir)) != 1 {
		t.Errorf("requests: %d objects; want the damaged file and dirtree only", o.objectHits())
	}
	if res.ObjectsFetched != 2 || res.ObjectsFromCaches != int64(all-2) {
		t.Errorf("fetched %d, from caches %d; want 2 and %d", res.ObjectsFetched, res.ObjectsFromCaches, all-2)
	}
	if n := strings.Count(log.String(), "local cache object refused"); n != 2 {
		t.Errorf("%d refusals logged:\n%s", n, log.String())
	}
	// The damaged file is named, even though caches are read unverified.
	if !strings.Contains(log.String(), "file object "+file.String()+" (") || strings.Contains(log.String(), repo.ID{}.String()) {
		t.Errorf("the refusal does not name file object %s:\n%s", file, log.String())
	}
	checkSameTree(t, o.r, dst2, id)
	checkFsck(t, dst2)

	// A cache that is not a repository fails the pull, naming it.
	opts.LocalCaches = []string{filepath.Join(t.TempDir(), "nope")}
	_, err = remote.Pull(ctx, newDest(t, repo.ModeArchive, o.srv.URL), opts)
	errContains(t, err, "local cache", opts.LocalCaches[0])
}

// newCache makes a repository holding what the origin has now, for
// LocalCaches.
func newCache(t *testing.T, o *origin) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cache")
	cache, err := repo.Init(p, repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if _, err := remote.PullLocal(ctx, cache, o.dir, remote.PullOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	return p
}

// A commit's detached metadata, which is not named by its hash, is taken
// from a cache like any object: nothing is fetched for a signed commit the
// cache has. When the remote verifies signatures, a commit from a cache
// must carry a trusted signature there too: one that does not is fetched
// from the source instead, and an unsigned commit fails the pull wherever
// it comes from.
func TestPullLocalCacheCommitMeta(t *testing.T) {
	pub, priv := genKey(t)
	o, id := signedOrigin(t, priv)
	cachePath := newCache(t, o)
	pull := func(dest *repo.Repo) (*remote.PullResult, string, error) {
		t.Helper()
		o.resetHits()
		var log bytes.Buffer
		opts := fastOpts("main")
		opts.LocalCaches = []string{cachePath}
		opts.Logger = slog.New(slog.NewTextHandler(&log, nil))
		res, err := remote.Pull(ctx, dest, opts)
		return res, log.String(), err
	}
	for name, dest := range map[string]*repo.Repo{
		"plain":     newDest(t, repo.ModeBareUser, o.srv.URL),
		"verifying": verifyingDest(t, o.srv.URL, inlineKey(pub)),
	} {
		res, log, err := pull(dest)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := o.objectHits(); n != 0 || res.ObjectsFetched != 0 || strings.Contains(log, "refused") {
			t.Errorf("%s: %d objects requested, %d fetched, log:\n%s", name, n, res.ObjectsFetched, log)
		}
		if _, err := sign.VerifyCommit(dest, id, []ed25519.PublicKey{pub}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A cache filled before the commit was signed: its copy is refused,
	// and the source's, signed, is taken.
	u, uid := signedOrigin(t)
	o, id, cachePath = u, uid, newCache(t, u)
	dest := verifyingDest(t, o.srv.URL, inlineKey(pub))
	_, log, err := pull(dest)
	errContains(t, err, "remote origin", id.String())
	if !errors.Is(err, sign.ErrNoSignature) {
		t.Errorf("unsigned commit in cache and source: %v", err)
	}
	if strings.Count(log, "local cache object refused") != 1 || !strings.Contains(log, cachePath) {
		t.Errorf("log:\n%s", log)
	}
	checkNothingMoved(t, dest)
	if _, err := sign.SignCommit(ctx, o.r, id, priv); err != nil {
		t.Fatal(err)
	}
	if _, _, err = pull(dest); err != nil {
		t.Fatal(err)
	}
	if o.objectHits() != 2 || o.hitsOf(objectURLPath(repo.KindCommit, id)) != 1 || o.hitsOf(objectURLPath(repo.KindCommitMeta, id)) != 1 {
		t.Errorf("%d objects requested, want the commit and its detached metadata", o.objectHits())
	}
	if _, err := sign.VerifyCommit(dest, id, []ed25519.PublicKey{pub}); err != nil {
		t.Error(err)
	}
}
