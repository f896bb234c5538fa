package checkout_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// sparseSource makes a directory holding disk.img, a file of size bytes
// whose data is only 4 KiB at each offset in data, the rest holes, and
// returns it with the file's bytes; it skips the test where the
// filesystem does not keep holes.
func sparseSource(t *testing.T, size int64, data ...int64) (string, []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	f, err := os.Create(filepath.Join(src, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range data {
		f.WriteAt(bytes.Repeat([]byte("data"), 4096/4), off)
	}
	f.Truncate(size)
	f.Close()
	if st := coStat(t, filepath.Join(src, "disk.img")); st.Blocks*512 >= size/2 {
		t.Skipf("the filesystem of %s does not keep holes", src)
	}
	want, _ := os.ReadFile(filepath.Join(src, "disk.img"))
	return src, want
}

// A sparse file stays sparse: its object in a bare, bare-user or
// bare-user-only repository has the holes the source had, and so does a
// copying checkout of it, with the same bytes.
func TestSparseFilesStaySparse(t *testing.T) {
	const size = 64 << 20
	src, want := sparseSource(t, size, 0, 20<<20, size-4096-512)
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

// An archive repository's objects are compressed and hold no holes, but
// the file decompressed from one gets a hole for each 64 KiB of zeros at a
// 64 KiB offset, as a pulled file does: in a plain checkout and in the
// uncompressed-object cache a user-mode one fills and later links.
func TestSparseFromArchive(t *testing.T) {
	const size = 64<<20 + 1000 // ends past the last whole 64 KiB
	src, want := sparseSource(t, size, 0, 20<<20+100, 40<<20, size-1000-4096)
	r := coRepo(t, repo.ModeArchive)
	id := coCommit(t, r, src)
	for _, c := range []struct {
		name   string
		o      checkout.Options
		linked bool // a link of the cache entry
	}{
		{"plain", checkout.Options{}, false},
		{"user mode, filling the cache", checkout.Options{UserMode: true, UncompressedCache: true}, true},
		{"user mode, from the cache", checkout.Options{UserMode: true, UncompressedCache: true}, true},
	} {
		_, dest := coCheckout(t, r, id, "", c.o)
		p := filepath.Join(dest, "disk.img")
		if st := coStat(t, p); st.Size != size || st.Blocks*512 >= size/2 {
			t.Errorf("%s: size %d, %d bytes allocated for 16 KiB of data", c.name, st.Size, st.Blocks*512)
		} else if linked := st.Nlink > 1; linked != c.linked {
			t.Errorf("%s: %d links, want a link of the cache entry: %v", c.name, st.Nlink, c.linked)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
			t.Errorf("%s: the checkout's bytes differ from the source's", c.name)
		}
	}
}

// A sparse object whose data starts after a hole is copied into a
// checkout on another filesystem, where copy_file_range may refuse to
// cross (EXDEV): the copy falls back to reading and writing, and the hole
// stays a hole.
func TestSparseCopyAcrossFilesystems(t *testing.T) {
	const size = 8 << 20
	src, want := sparseSource(t, size, 4<<20)
	r := coRepo(t, repo.ModeBareUser)
	id := coCommit(t, r, src)
	_, dest := coCheckout(t, r, id, filepath.Join(testtree.SmallFS(t, 64<<20), "co"), checkout.Options{UserMode: true})
	p := filepath.Join(dest, "disk.img")
	if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
		t.Errorf("the checkout's bytes differ from the source's")
	}
	if st := coStat(t, p); st.Size != size || st.Blocks*512 >= size/2 {
		t.Errorf("checkout on another filesystem: size %d, %d bytes allocated", st.Size, st.Blocks*512)
	}
}
