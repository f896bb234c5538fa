package repo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

func writeContent(t *testing.T, r *repo.Repo, size int) (repo.ID, error) {
	t.Helper()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		return repo.ID{}, err
	}
	defer txn.Abort()
	content := bytes.Repeat([]byte{byte(size)}, size)
	id, _, err := txn.WriteFileStream(&repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(size)}, bytes.NewReader(content))
	if err != nil {
		return id, err
	}
	return id, txn.Commit()
}

// A transaction refuses to write past the free-space reserve, OSTree's 3%
// of the filesystem by default, naming the setting; it stores nothing of
// the object it refused, and one that writes nothing still commits.
// core.min-free-space-percent and -size change the reserve; bad values
// are refused naming the key.
func TestMinFreeSpace(t *testing.T) {
	const size = 32 << 20
	mnt := testtree.SmallFS(t, size)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	testtree.FillTo(t, mnt, size*2/100) // 2% free, under the default reserve

	_, err = writeContent(t, r, 4096)
	if !errors.Is(err, repo.ErrMinFreeSpace) || !strings.Contains(err.Error(), "core.min-free-space-percent=3%") || !strings.Contains(err.Error(), r.Path()) {
		t.Fatalf("write under the default reserve: %v, want ErrMinFreeSpace naming the repository and the setting", err)
	}
	txn, err := r.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Errorf("a transaction writing nothing: %v", err)
	}

	// 1%: about 320 KiB may be written.
	set := func(key, value string) {
		t.Helper()
		r.Config().Unset(repo.ConfigMinFreePercent)
		r.Config().Unset(repo.ConfigMinFreeSize)
		if err := r.Config().Set(key, value); err != nil {
			t.Fatal(err)
		}
	}
	set(repo.ConfigMinFreePercent, "1")
	if _, err := writeContent(t, r, 64<<10); err != nil {
		t.Fatalf("64 KiB with a 1%% reserve: %v", err)
	}
	id, err := writeContent(t, r, 1<<20)
	if !errors.Is(err, repo.ErrMinFreeSpace) {
		t.Fatalf("1 MiB with a 1%% reserve: %v, want ErrMinFreeSpace", err)
	}
	if has, _ := r.HasObject(repo.KindFile, id); has {
		t.Error("the refused object was stored")
	}
	ents, _ := os.ReadDir(r.Path("tmp"))
	for _, e := range ents {
		if e.Name() != "cache" {
			t.Errorf("the refused transaction left tmp/%s", e.Name())
		}
	}

	// A size wins over a percentage. 0MB leaves the reserve to the
	// percentage when one is set, and is no reserve without one, as in
	// OSTree (whose 3% default applies only when neither key is set).
	set(repo.ConfigMinFreeSize, "1MB")
	if _, err := writeContent(t, r, 4096); !errors.Is(err, repo.ErrMinFreeSpace) || !strings.Contains(err.Error(), "core.min-free-space-size=1MB") {
		t.Errorf("with 1MB reserved of about 0.3 MiB free: %v", err)
	}
	r.Config().Set(repo.ConfigMinFreePercent, "50")
	r.Config().Set(repo.ConfigMinFreeSize, "0MB")
	if _, err := writeContent(t, r, 4096); !errors.Is(err, repo.ErrMinFreeSpace) || !strings.Contains(err.Error(), "core.min-free-space-percent=50%") {
		t.Errorf("0MB with 50%%: %v, want ErrMinFreeSpace naming the percentage", err)
	}
	r.Config().Unset(repo.ConfigMinFreePercent)
	if _, err := writeContent(t, r, 200<<10); err != nil {
		t.Errorf("0MB alone, no reserve: %v", err)
	}
	r.Config().Set(repo.ConfigMinFreePercent, "0")
	if _, err := writeContent(t, r, 200<<10); err != nil {
		t.Errorf("with no reserve: %v", err)
	}

	for key, bad := range map[string]string{repo.ConfigMinFreePercent: "100", repo.ConfigMinFreeSize: "19XB"} {
		set(key, bad)
		if _, err := r.Begin(context.Background(), repo.TxnOptions{}); err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s=%s: Begin = %v, want an error naming both", key, bad, err)
		}
	}
}

// Content streamed into a transaction is spooled uncompressed while it is
// hashed, however small the archive object it becomes: the spool counts
// against the reserve (an error naming it, not ENOSPC half-way), and what
// it took is given back once it is removed.
func TestMinFreeSpaceCountsSpool(t *testing.T) {
	const size = 32 << 20
	mnt := testtree.SmallFS(t, size)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Config().Set(repo.ConfigMinFreeSize, "1MB"); err != nil {
		t.Fatal(err)
	}
	testtree.FillTo(t, mnt, 8<<20) // about 7 MiB may be written
	// Not zeros, which a spool leaves as holes.
	ones := func(n int) (*repo.FileHeader, *bytes.Reader) {
		return &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(n)}, bytes.NewReader(bytes.Repeat([]byte{1}, n))
	}

	txn, err := r.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Two 4 MiB files, each a few bytes once compressed: the first spool
	// is gone before the second is written.
	for i := range 2 {
		h, src := ones(4<<20 + i)
		if _, _, err := txn.WriteFileStream(h, src); err != nil {
			t.Fatalf("file %d of 4 MiB: %v", i, err)
		}
	}
	// 16 MiB would not fit: refused by the reserve, before the disk fills.
	h, src := ones(16 << 20)
	_, _, err = txn.WriteFileStream(h, src)
	if !errors.Is(err, repo.ErrMinFreeSpace) || !strings.Contains(err.Error(), "core.min-free-space-size=1MB") {
		t.Errorf("a 16 MiB spool with about 7 MiB to spare: %v, want ErrMinFreeSpace", err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatalf("commit after the refused object: %v", err)
	}
}

// The holes of a sparse file take no room, and the reserve does not count
// them: a 64 MiB file with 8 KiB of data is stored, from a stream or from
// a file, where 8 MiB may be written.
func TestMinFreeSpaceSkipsHoles(t *testing.T) {
	const size = 64 << 20
	mnt := testtree.SmallFS(t, 32<<20)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Config().Set(repo.ConfigMinFreeSize, "1MB"); err != nil {
		t.Fatal(err)
	}
	testtree.FillTo(t, mnt, 9<<20)
	content := make([]byte, size)
	copy(content[4<<20:], bytes.Repeat([]byte{1}, 4096))
	copy(content[40<<20:], bytes.Repeat([]byte{2}, 4096))
	src := filepath.Join(mnt, "sparse")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt(content[4<<20:4<<20+4096], 4<<20)
	f.WriteAt(content[40<<20:40<<20+4096], 40<<20)
	f.Truncate(size)

	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: size}
	if _, _, err := txn.WriteFileStream(h, bytes.NewReader(content)); err != nil {
		t.Errorf("streamed: %v", err)
	}
	h.Mode = 0o600 // another object
	if _, err := txn.WriteFileFrom(h, repo.FileID(h, content), f); err != nil {
		t.Errorf("from a file: %v", err)
	}
}

// Content spooled while it is hashed that does not fit on the repository's
// filesystem fails naming the spool file, not as a read of the source (a
// tar entry, another repository's object, a download): the disk at fault
// is the repository's. Nothing of the object is kept.
func TestSpoolOnFullDisk(t *testing.T) {
	mnt := testtree.SmallFS(t, 16<<20)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Config().Set(repo.ConfigMinFreePercent, "0"); err != nil {
		t.Fatal(err)
	}
	testtree.FillTo(t, mnt, 1<<20)
	const size = 4 << 20 // spooled: over 1 MiB
	content := bytes.Repeat([]byte{1}, size)
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: size}
	id := repo.FileID(h, content)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "spooling content to "+r.Path("tmp")) || strings.Contains(err.Error(), "reading") {
			t.Errorf("%s on a full disk: %v, want ENOSPC naming the spool in %s, as no read error", what, err, r.Path("tmp"))
		}
	}
	_, _, err = txn.WriteFileStream(h, bytes.NewReader(content))
	check("WriteFileStream", err)
	_, err = txn.WriteFileVerified(h, id, bytes.NewReader(content))
	check("WriteFileVerified", err)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if has, _ := r.HasObject(repo.KindFile, id); has {
		t.Error("the object that did not fit was stored")
	}
}

// A large object that arrives as a stream is spooled once and the spool
// becomes the object, in every mode where the object is the content: on
// a filesystem with room for it once (not twice) it is stored, and the
// staging directory keeps no copy.
func TestSpoolBecomesObject(t *testing.T) {
	const size = 6 << 20 // spooled: over 1 MiB
	content := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly, repo.ModeBare} {
		t.Run(mode.String(), func(t *testing.T) {
			mnt := testtree.SmallFS(t, 16<<20)
			r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.Config().Set(repo.ConfigMinFreePercent, "0"); err != nil {
				t.Fatal(err)
			}
			testtree.FillTo(t, mnt, size+(2<<20)) // room for one copy, not two
			h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o4755, UID: 0, GID: 0, Size: size}
			if mode == repo.ModeBareUserOnly {
				h.Mode = 0o755
			}
			id := repo.FileID(h, content)
			txn, err := r.Begin(context.Background(), repo.TxnOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer txn.Abort()
			isNew, err := txn.WriteFileVerified(h, id, bytes.NewReader(content))
			if err != nil || !isNew {
				t.Fatalf("WriteFileVerified of %d bytes with room for them once: %v, %v", size, isNew, err)
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			gotH, rc, err := r.OpenFile(id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, content) || gotH.Mode != h.Mode {
				t.Errorf("stored object: %d bytes, mode %o, %v; want the content, mode %o", len(got), gotH.Mode, err, h.Mode)
			}
			if rep, err := r.Fsck(context.Background(), repo.FsckOptions{}); err != nil || len(rep.Problems) != 0 {
				t.Errorf("fsck: %v", err)
			}
			if left, _ := os.ReadDir(r.Path("tmp")); slices.ContainsFunc(left, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), "txn-") }) {
				t.Errorf("staging left in tmp: %v", left)
			}
		})
	}
}
