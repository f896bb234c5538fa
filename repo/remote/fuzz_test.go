package remote_test

import (
	"bytes"
	"net/http"
	"os"
	"sync/atomic"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// FuzzPullFileObject serves arbitrary bytes as the archive form of a file
// object a commit needs, as a hostile or broken server would: the pull
// either fails, writing no ref, or stores an object that verifies (the
// bytes were another valid encoding of the same header and content).
func FuzzPullFileObject(f *testing.F) {
	o := newOrigin(f)
	id := o.commit("os/stable", testtree.Tree{"f": testtree.File("some content, some content, some content\n", 0o644)}, 1700000000)
	file := lookup(f, o.r, id, "/f").ID
	real, err := os.ReadFile(o.r.ObjectPath(repo.KindFile, file))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add(real[:len(real)-1])
	f.Add([]byte{})
	var body atomic.Pointer[[]byte]
	path := objectURLPath(repo.KindFile, file)
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if req.URL.Path != path {
			return false
		}
		w.Write(*body.Load())
		return true
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		body.Store(&b)
		dst, err := repo.Init(t.TempDir()+"/dest", repo.InitOptions{Mode: repo.ModeBareUser})
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		if _, err := remote.AddRemote(dst, remote.Remote{Name: "origin", URL: o.srv.URL}, remote.AddOptions{}); err != nil {
			t.Fatal(err)
		}
		opts := fastOpts("os/stable")
		opts.Attempts = 1
		if _, err := remote.Pull(ctx, dst, opts); err != nil {
			if refs, _ := dst.ListRefs(""); len(refs) != 0 {
				t.Fatalf("a failed pull wrote refs %v", refs)
			}
			return
		}
		rep, err := dst.Fsck(ctx, repo.FsckOptions{})
		if err != nil || !rep.OK() {
			t.Fatalf("served %x: the pull stored problems: %v %v", b, err, rep.Problems)
		}
		if !bytes.Equal(b, real) {
			t.Logf("another encoding of the object was accepted: %x", b)
		}
	})
}
