package remote_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// bigObject commits tree and returns the commit, the URL path of the large
// file object and its stored (archive) bytes.
func bigObject(t *testing.T, o *origin) (repo.ID, string, []byte) {
	t.Helper()
	id := o.commit("main", tree, 1700000000)
	big := lookup(t, o.r, id, "/usr/share/big.bin").ID
	raw, err := os.ReadFile(filepath.Join(o.dir, objectURLPath(repo.KindFile, big)))
	if err != nil {
		t.Fatal(err)
	}
	return id, objectURLPath(repo.KindFile, big), raw
}

// dropAfter answers a request for path with the first k bytes of raw
// under a Content-Length of all of it, then drops the connection.
func dropAfter(w http.ResponseWriter, raw []byte, k int) {
	w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
	w.WriteHeader(http.StatusOK)
	w.Write(raw[:k])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

func partialFiles(t *testing.T, r *repo.Repo) []string {
	t.Helper()
	ents, err := os.ReadDir(r.PartialDir())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// checkNoPartials fails the test where r keeps partial downloads.
func checkNoPartials(t *testing.T, r *repo.Repo) {
	t.Helper()
	if p := partialFiles(t, r); len(p) != 0 {
		t.Errorf("partial downloads left: %v", p)
	}
}

// writePartial puts b in r as a kept partial download of file object id,
// as a broken transfer leaves it.
func writePartial(t *testing.T, r *repo.Repo, id repo.ID, b []byte) {
	t.Helper()
	if err := os.MkdirAll(r.PartialDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.PartialDir(), id.String()+".file"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A transfer that breaks part way continues with a Range request for the
// rest: the object crosses the wire about once, not once and a half.
func TestPullDroppedTransferContinuesWithRange(t *testing.T) {
	o := newOrigin(t)
	id, path, raw := bigObject(t, o)
	k := len(raw) / 2
	o.fault = func(w http.ResponseWriter, req *http.Request, hit int) bool {
		if req.URL.Path == path && hit == 1 {
			dropAfter(w, raw, k)
		}
		return false
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if got, want := o.rangesOf(path), []string{"", fmt.Sprintf("bytes=%d-", k)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests for the large object had Range %q, want %q", got, want)
	}
	if served := o.servedOf(path); served < int64(len(raw)) || served > int64(len(raw))+64<<10 {
		t.Errorf("served %d bytes of a %d-byte object", served, len(raw))
	}
	checkNoPartials(t, dest)
	checkSameTree(t, o.r, dest, id)
	checkFsck(t, dest)
}

// A server that ignores Range answers 200 with the whole object; the kept
// bytes are replaced, not prepended.
func TestPullRangeIgnored(t *testing.T) {
	o := newOrigin(t)
	id, path, raw := bigObject(t, o)
	o.fault = func(w http.ResponseWriter, req *http.Request, hit int) bool {
		if req.URL.Path != path {
			return false
		}
		if hit == 1 {
			dropAfter(w, raw, len(raw)/3)
		}
		req.Header.Del("Range")
		return false
	}
	dest := newDest(t, repo.ModeArchive, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if got := o.rangesOf(path); len(got) != 2 || got[1] == "" {
		t.Errorf("Range headers %q, want a second request with Range", got)
	}
	checkSameTree(t, o.r, dest, id)
	checkFsck(t, dest)
}

// When every attempt breaks, the pull fails but keeps what arrived; the
// next pull asks only for the rest.
func TestPullKeepsPartialForNextPull(t *testing.T) {
	o := newOrigin(t)
	id, path, raw := bigObject(t, o)
	k := len(raw) / 4
	o.fault = func(w http.ResponseWriter, req *http.Request, hit int) bool {
		if req.URL.Path == path && hit == 1 {
			dropAfter(w, raw, k)
		}
		if req.URL.Path == path {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	_, err := remote.Pull(ctx, dest, fastOpts())
	errContains(t, err, o.srv.URL+path, "503")
	checkNothingMoved(t, dest)
	if p := partialFiles(t, dest); len(p) != 1 {
		t.Fatalf("partial downloads after the failed pull: %v", p)
	}
	if b, _ := os.ReadFile(filepath.Join(dest.PartialDir(), partialFiles(t, dest)[0])); !bytes.Equal(b, raw[:k]) {
		t.Fatalf("partial download holds %d bytes, want the first %d of the object", len(b), k)
	}

	o.fault = nil
	o.resetHits()
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if got := o.rangesOf(path); len(got) != 1 || got[0] != fmt.Sprintf("bytes=%d-", k) {
		t.Errorf("second pull requested the large object with Range %q", got)
	}
	if served := o.servedOf(path); served != int64(len(raw)-k) {
		t.Errorf("second pull was sent %d bytes of the object, want the missing %d", served, len(raw)-k)
	}
	// Objects published before the failure are not fetched again.
	for p := range o.hits {
		if strings.HasPrefix(p, "/objects/") && p != path && !strings.HasSuffix(p, ".commitmeta") {
			t.Errorf("second pull fetched %s again", p)
		}
	}
	checkSameTree(t, o.r, dest, id)
	checkFsck(t, dest)
	checkNoPartials(t, dest)
}

// Kept bytes that are wrong fail verification with the rest; the object is
// then fetched whole, once.
func TestPullCorruptPartialFetchedAgain(t *testing.T) {
	o := newOrigin(t)
	id, path, raw := bigObject(t, o)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	bad := append([]byte(nil), raw[:len(raw)/2]...)
	for i := len(bad) / 2; i < len(bad); i += 4096 {
		bad[i] ^= 0xff
	}
	big := lookup(t, o.r, id, "/usr/share/big.bin").ID
	writePartial(t, dest, big, bad)
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if got, want := o.rangesOf(path), []string{fmt.Sprintf("bytes=%d-", len(bad)), ""}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests had Range %q, want %q", got, want)
	}
	checkSameTree(t, o.r, dest, id)
	checkFsck(t, dest)
	checkNoPartials(t, dest)
}

// Kept bytes that are the whole object (the transfer broke after its last
// byte) get a 416 for the rest and are verified as they are.
func TestPullPartialAlreadyComplete(t *testing.T) {
	o := newOrigin(t)
	id, path, raw := bigObject(t, o)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	big := lookup(t, o.r, id, "/usr/share/big.bin").ID
	writePartial(t, dest, big, raw)
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if got := o.rangesOf(path); len(got) != 1 || got[0] != fmt.Sprintf("bytes=%d-", len(raw)) {
		t.Errorf("requests had Range %q", got)
	}
	if served := o.servedOf(path); served > 1<<10 {
		t.Errorf("served %d bytes for an object already on disk", served)
	}
	checkSameTree(t, o.r, dest, id)
}

// A server that answers a Range with bytes from the wrong offset is not
// believed: the object is fetched whole.
func TestPullWrongContentRange(t *testing.T) {
	o := newOrigin(t)
	id, path, raw := bigObject(t, o)
	o.fault = func(w http.ResponseWriter, req *http.Request, hit int) bool {
		if req.URL.Path != path {
			return false
		}
		switch hit {
		case 1:
			dropAfter(w, raw, len(raw)/2)
		case 2:
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(raw)-1, len(raw)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(raw)
			return true
		}
		return false
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if got := o.rangesOf(path); len(got) != 3 || got[2] != "" {
		t.Errorf("requests had Range %q, want a last one without", got)
	}
	checkSameTree(t, o.r, dest, id)
}

// A large object is kept as it arrives only where there is room for it
// twice: on a nearly full disk, with room for the object and half as much
// again, the pull stores it (as OSTree's, which keeps nothing, does)
// instead of failing for the copy it would have kept.
func TestPullNearlyFullDiskKeepsNoPartial(t *testing.T) {
	o := newOrigin(t)
	id, _, raw := bigObject(t, o)
	mnt := testtree.SmallFS(t, 16<<20)
	dest, err := repo.Init(filepath.Join(mnt, "dest"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	if err := dest.Config().Set(repo.ConfigMinFreePercent, "0"); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.AddRemote(dest, remote.Remote{Name: "origin", URL: o.srv.URL}, remote.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	testtree.FillTo(t, mnt, int64(len(raw))*3/2)
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatalf("pull of a %d-byte object with room for it and half as much again: %v", len(raw), err)
	}
	checkNoPartials(t, dest)
	checkSameTree(t, o.r, dest, id)
	checkFsck(t, dest)
}
