package remote_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// objectPaths lists the URL paths of r's objects (detached metadata too).
func objectPaths(t *testing.T, r *repo.Repo) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for o := range storedObjects(t, r) {
		out["/objects/"+o[:2]+"/"+o[2:]] = true
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// A pull from nginx, the static server a repository is typically published
// with, then an update that fetches only the new objects.
func TestPullFromNginx(t *testing.T) {
	o := newOrigin(t)
	first := o.commit("os/stable", tree, 1700000000)
	srv := startNginx(t, o.dir)
	dest := newDest(t, repo.ModeBareUser, srv.URL)

	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dest, "origin:os/stable"); got != first {
		t.Errorf("origin:os/stable = %s, want %s", got, first)
	}
	checkSameTree(t, o.r, dest, first)
	if rep := checkFsck(t, dest); len(rep.Partial) != 0 {
		t.Errorf("partial commits after a full pull: %v", rep.Partial)
	}
	srv.newRequests()

	changed := testtree.Tree{}
	for k, v := range tree {
		changed[k] = v
	}
	changed["etc/motd"] = testtree.File("a new message\n", 0o644)
	changed["etc/new.conf"] = testtree.File("new=1\n", 0o644)
	before := objectPaths(t, dest)
	second := o.commit("os/stable", changed, 1700000100)
	want := map[string]bool{}
	for p := range objectPaths(t, o.r) {
		if !before[p] {
			want[p] = true
		}
	}
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, req := range srv.newRequests() {
		if strings.HasPrefix(req.Path, "/objects/") && req.Status == 200 {
			if got[req.Path] {
				t.Errorf("%s fetched twice", req.Path)
			}
			got[req.Path] = true
		}
	}
	if fmt.Sprint(sortedKeys(got)) != fmt.Sprint(sortedKeys(want)) {
		t.Errorf("update fetched %v\nwant the new objects %v", sortedKeys(got), sortedKeys(want))
	}
	checkSameTree(t, o.r, dest, second)
	checkFsck(t, dest)
}

// nginx answers the Range request for the rest of a partial download with
// 206 and exactly the missing bytes.
func TestPullResumeFromNginx(t *testing.T) {
	o := newOrigin(t)
	id, path, raw := bigObject(t, o)
	srv := startNginx(t, o.dir)
	dest := newDest(t, repo.ModeBareUser, srv.URL)
	k := len(raw) / 3
	big := lookup(t, o.r, id, "/usr/share/big.bin").ID
	writePartial(t, dest, big, raw[:k])
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	var reqs []nginxRequest
	for _, req := range srv.newRequests() {
		if req.Path == path {
			reqs = append(reqs, req)
		}
	}
	want := nginxRequest{Status: 206, Bytes: int64(len(raw) - k), Path: path, Range: fmt.Sprintf("bytes=%d-", k)}
	if len(reqs) != 1 || reqs[0] != want {
		t.Errorf("requests for the large object: %+v, want one %+v", reqs, want)
	}
	checkSameTree(t, o.r, dest, id)
	checkFsck(t, dest)
	checkNoPartials(t, dest)
}
