package repo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/otree/otree/repo"
)

// sameBucket returns two distinct dirmeta encodings and two distinct
// regular file contents whose ids share their first byte: objects staged
// in the same fan-out directory of a staging directory.
func sameBucket(t *testing.T) (metas [2][]byte, files [2][]byte) {
	t.Helper()
	seenMeta, seenFile := map[byte][]byte{}, map[byte][]byte{}
	var gotMeta, gotFile bool
	for i := uint32(0); !gotMeta || !gotFile; i++ {
		if !gotMeta {
			m := (&repo.DirMeta{UID: i, Mode: 0o755}).Encode()
			b := repo.Sum(m)[0]
			if prev, ok := seenMeta[b]; ok {
				metas, gotMeta = [2][]byte{prev, m}, true
			}
			seenMeta[b] = m
		}
		if !gotFile {
			c := []byte(fmt.Sprint("content ", i))
			b := repo.FileID(fileHeader(c), c)[0]
			if prev, ok := seenFile[b]; ok {
				files, gotFile = [2][]byte{prev, c}, true
			}
			seenFile[b] = c
		}
	}
	return metas, files
}

func fileHeader(content []byte) *repo.FileHeader {
	return &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
}

// A fan-out directory of the staging directory that cannot be created (a
// full disk) fails the object being staged with the real errno, naming
// the directory, and is tried again for the next object of that
// directory, which is staged: the failure is not remembered for the rest
// of the transaction.
func TestStagingDirectoryFailureRetried(t *testing.T) {
	metas, files := sameBucket(t)
	r := newIntegrityRepo(t, repo.ModeArchive)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	failing := true
	defer repo.SetStageMkdirat(func(dirfd int, path string, mode uint32) error {
		if failing {
			failing = false
			return syscall.ENOSPC
		}
		return syscall.Mkdirat(dirfd, path, mode)
	})()
	check := func(what string, id repo.ID, err error) {
		t.Helper()
		dir := fmt.Sprintf("%02x", id[0])
		if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") ||
			!strings.Contains(err.Error(), filepath.Join(r.Path("tmp"), "txn-")) || !strings.Contains(err.Error(), "/"+dir+":") {
			t.Errorf("%s with mkdir of %s failing: %v; want ENOSPC naming the directory", what, dir, err)
		}
	}
	write := func(kind repo.Kind, data []byte) (repo.ID, error) {
		if kind == repo.KindFile {
			id := repo.FileID(fileHeader(data), data)
			_, err := txn.WriteFile(fileHeader(data), id, data)
			return id, err
		}
		return txn.WriteMeta(kind, data)
	}
	for _, tc := range []struct {
		kind repo.Kind
		objs [2][]byte
	}{{repo.KindDirMeta, metas}, {repo.KindFile, files}} {
		failing = true
		id, err := write(tc.kind, tc.objs[0])
		if tc.kind == repo.KindDirMeta {
			id = repo.Sum(tc.objs[0])
		}
		check("staging a "+tc.kind.String(), id, err)
		if has, _ := txn.Has(tc.kind, id); has {
			t.Errorf("%s %s staged though its directory could not be made", tc.kind, id)
		}
		// The same directory again, for another object and for the one
		// that failed.
		for i := 1; i >= 0; i-- {
			if _, err := write(tc.kind, tc.objs[i]); err != nil {
				t.Errorf("staging %s %d after a failed mkdir of its directory: %v", tc.kind, i, err)
			}
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, m := range metas {
		if has, err := r.HasObject(repo.KindDirMeta, repo.Sum(m)); !has || err != nil {
			t.Errorf("dirmeta %s not stored: %v", repo.Sum(m), err)
		}
	}
	for _, c := range files {
		if has, err := r.HasObject(repo.KindFile, repo.FileID(fileHeader(c), c)); !has || err != nil {
			t.Errorf("file %s not stored: %v", repo.FileID(fileHeader(c), c), err)
		}
	}
}

// The same on a real full filesystem (a small ext4 image, loop-mounted;
// root only): the object whose directory cannot be made fails with "no
// space left on device", not with ENOENT from the file's open, and once
// space is freed the same transaction stages objects of that directory.
func TestStagingDirectoryOnFullDisk(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting a filesystem image needs root")
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("no mkfs.ext4")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v\n%s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("mounting an ext4 image: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()

	// Fill the filesystem: the filler's last write fails with ENOSPC.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v", mnt, err)
	}
	// Smaller writes take the last blocks a megabyte could not, and
	// those that ext4 held back for delayed allocation until a sync.
	for range 10 {
		f.Sync()
		n := 0
		for ; ; n++ {
			if _, err := f.Write(buf[:4096]); err != nil {
				break
			}
		}
		if n == 0 {
			break
		}
	}
	f.Close()
	// ext4 still finds a block or two for a directory (its reserve):
	// take those with directories until mkdir fails too.
	for i := 0; ; i++ {
		if err := os.Mkdir(fmt.Sprintf("%s.%d", filler, i), 0o755); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}

	metas, _ := sameBucket(t)
	_, err = txn.WriteMeta(repo.KindDirMeta, metas[0])
	sub := fmt.Sprintf("%02x", repo.Sum(metas[0])[0])
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/"+sub+":") {
		t.Fatalf("staging a dirmeta on a full disk: %v; want ENOSPC naming directory %s", err, sub)
	}
	fillers, _ := filepath.Glob(filler + "*")
	for _, p := range fillers {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range metas {
		if _, err := txn.WriteMeta(repo.KindDirMeta, m); err != nil {
			t.Errorf("staging dirmeta %s once space was freed: %v", repo.Sum(m), err)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
}
