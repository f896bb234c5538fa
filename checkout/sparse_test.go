package checkout_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/repo"
)

// A sparse file stays sparse: its object in a bare, bare-user or
// bare-user-only repository has the holes the source had, and so does a
// copying checkout of it, with the same bytes.
func TestSparseFilesStaySparse(t *testing.T) {
	const size = 64 << 20
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	f, err := os.Create(filepath.Join(src, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("data"), 4096/4)
	for _, off := range []int64{0, 20 << 20, size - 4096 - 512} {
		f.WriteAt(data, off)
	}
	f.Truncate(size)
	f.Close()
	if st := coStat(t, filepath.Join(src, "disk.img")); st.Blocks*512 >= size/2 {
		t.Skipf("the filesystem of %s does not keep holes", src)
	}
	want, _ := os.ReadFile(filepath.Join(src, "disk.img"))
	modes := []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly}
	if coRoot() {
		modes = append(modes, repo.ModeBare)
	}
	for _, mode := range modes {
		r := coRepo(t, mode)
		id := coCommit(t, r, src)
		if st := coObject(t, r, id, "/disk.img"); st.Size != size || st.Blocks*512 >= size/2 {
			t.Errorf("%s: object of a 64 MiB file with 12 KiB of data: size %d, %d bytes allocated", mode, st.Size, st.Blocks*512)
		}
		_, dest := coCheckout(t, r, id, "", checkout.Options{ForceCopy: true, UserMode: mode != repo.ModeBare})
		p := filepath.Join(dest, "disk.img")
		if st := coStat(t, p); st.Size != size || st.Blocks*512 >= size/2 {
			t.Errorf("%s: copied checkout: size %d, %d bytes allocated", mode, st.Size, st.Blocks*512)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
			t.Errorf("%s: the checkout's bytes differ from the source's", mode)
		}
	}
}
