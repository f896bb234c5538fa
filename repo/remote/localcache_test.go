package remote_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
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
	checkSameTree(t, o.r, dst2, id)
	checkFsck(t, dst2)

	// A cache that is not a repository fails the pull, naming it.
	opts.LocalCaches = []string{filepath.Join(t.TempDir(), "nope")}
	_, err = remote.Pull(ctx, newDest(t, repo.ModeArchive, o.srv.URL), opts)
	errContains(t, err, "local cache", opts.LocalCaches[0])
}
