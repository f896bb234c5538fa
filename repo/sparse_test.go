package repo_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// Content that arrives as a stream (a pull, a tar) is stored with its
// aligned runs of zeros as holes, in the bare modes: a mostly empty 8 MiB
// file takes little room, reads back whole, and has the id of its bytes,
// also when it ends in zeros or in a stretch of zeros too short to be a
// hole.
func TestStreamedZerosStoredAsHoles(t *testing.T) {
	const mb = 1 << 20
	probe, err := os.Create(t.TempDir() + "/probe")
	if err != nil {
		t.Fatal(err)
	}
	probe.Truncate(8 * mb)
	if hole, err := unix.Seek(int(probe.Fd()), 0, unix.SEEK_HOLE); err != nil || hole != 0 {
		t.Skipf("the filesystem of %s does not report holes", probe.Name())
	}
	probe.Close()
	data := bytes.Repeat([]byte("data"), mb/4)
	for name, content := range map[string][]byte{
		"zeros between":  append(append(append([]byte{}, data...), make([]byte, 6*mb)...), data...),
		"zeros at end":   append(append([]byte{}, data...), make([]byte, 7*mb)...),
		"short zero end": append(append(append([]byte{}, data...), make([]byte, 7*mb)...), make([]byte, 1000)...),
	} {
		for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly} {
			r := newIntegrityRepo(t, mode)
			txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
			id, _, err := txn.WriteFileStream(h, bytes.NewReader(content))
			if err != nil {
				t.Fatal(err)
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			if want := repo.FileID(h, content); id != want {
				t.Fatalf("%s, %s: id %s, want %s", name, mode, id, want)
			}
			var st unix.Stat_t
			if err := unix.Stat(r.ObjectPath(repo.KindFile, id), &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != int64(len(content)) || st.Blocks*512 > 3*mb {
				t.Errorf("%s, %s: object of %d bytes (1 MiB of data): size %d, %d bytes allocated", name, mode, len(content), st.Size, st.Blocks*512)
			}
			_, rc, err := r.OpenFile(id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("%s, %s: read back %d bytes, %v; want the %d written", name, mode, len(got), err, len(content))
			}
		}
	}
}

// Prune counts what a sparse object took, its blocks, not its size: a
// 64 MiB object with 64 KiB of data frees well under 1 MiB.
func TestPruneCountsSparseObjectBlocks(t *testing.T) {
	const mb = 1 << 20
	r := newIntegrityRepo(t, repo.ModeBareUser)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	content := make([]byte, 64*mb)
	copy(content[32*mb:], bytes.Repeat([]byte("data"), 16<<10))
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
	id, _, err := txn.WriteFileStream(h, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(r.ObjectPath(repo.KindFile, id), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > mb {
		t.Skipf("the filesystem of %s keeps no holes (%d bytes allocated)", r.Path(), st.Blocks*512)
	}
	rep := mustPrune(t, r, repo.PruneOptions{})
	if c := rep.ByKind["file"]; c.Objects != 1 || c.Bytes != st.Blocks*512 || rep.Freed != st.Blocks*512 {
		t.Errorf("prune of a %d-byte object taking %d bytes: %+v, %d bytes freed", st.Size, st.Blocks*512, c, rep.Freed)
	}
}
