package repo_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otree/otree/internal/ctxread/ctxreadtest"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// WriteMeta refuses bytes that do not decode strictly, naming the kind,
// and stages nothing: a hand-built DirTree with unsorted entries, a
// DirMeta with unsorted xattrs, a commit with unsorted metadata, and a
// kind it does not store.
func TestWriteMetaRefusesNonCanonical(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeArchive)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	unsortedTree := &repo.DirTree{Files: []repo.FileEntry{{Name: "zeta", ID: idOf(1)}, {Name: "alpha", ID: idOf(2)}}}
	unsortedMeta := &repo.DirMeta{Mode: 0o755, Xattrs: []repo.Xattr{{Name: "user.z"}, {Name: "user.a"}}}
	unsortedCommit := &repo.Commit{Timestamp: 1, RootTree: idOf(3), RootMeta: idOf(4),
		Metadata: repo.Metadata{{Key: "zeta", Value: []byte("1")}, {Key: "alpha", Value: []byte("2")}}}
	for _, tc := range []struct {
		kind repo.Kind
		data []byte
	}{
		{repo.KindDirTree, unsortedTree.Encode()},
		{repo.KindDirMeta, unsortedMeta.Encode()},
		{repo.KindCommit, unsortedCommit.Encode()},
		{repo.KindDirTree, (&repo.DirMeta{Mode: 0o755}).Encode()},
		{repo.KindFile, []byte("content")},
		// Stored under their commit's id, not the hash of their bytes.
		{repo.KindCommitMeta, repo.EncodeCommitMeta(repo.Metadata{{Key: "k", Value: []byte("v")}})},
		{repo.KindTombstoneCommit, repo.EncodeTombstone(idOf(5))},
	} {
		id, err := txn.WriteMeta(tc.kind, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.kind.String()+" object") {
			t.Errorf("WriteMeta(%s) of non-canonical bytes: id %s, err %v; want an error naming the kind", tc.kind, id, err)
		}
		if has, _ := txn.Has(tc.kind, repo.Sum(tc.data)); has {
			t.Errorf("WriteMeta(%s) of non-canonical bytes staged them", tc.kind)
		}
	}
	if s := txn.Stats(); s.Objects != 0 {
		t.Errorf("refused writes staged %d objects", s.Objects)
	}
	sorted := &repo.DirTree{Files: []repo.FileEntry{{Name: "alpha", ID: idOf(2)}, {Name: "zeta", ID: idOf(1)}}}
	if _, err := txn.WriteMeta(repo.KindDirTree, sorted.Encode()); err != nil {
		t.Errorf("WriteMeta of a canonical dirtree: %v", err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Fsck(context.Background(), repo.FsckOptions{})
	if err != nil || !rep.OK() {
		t.Errorf("fsck after refused writes: %+v, %v", rep, err)
	}
}

// The setters may be called while other goroutines begin transactions,
// take the ref lock and read objects (.ci/run runs it under -race).
func TestSettersRaceFree(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeArchive)
	meta := (&repo.DirMeta{Mode: 0o755}).Encode()
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			r.SetLockTimeout(time.Duration(i+1) * time.Second)
			r.SetVerify(i%2 == 0)
			r.SetRemotesDir(t.TempDir())
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: true})
			if err != nil {
				t.Error(err)
				return
			}
			id, err := txn.WriteMeta(repo.KindDirMeta, meta)
			if err == nil {
				err = txn.Commit()
			} else {
				txn.Abort()
			}
			if err != nil {
				t.Error(err)
				return
			}
			lk, err := r.LockRefs(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			lk.Unlock()
			if _, err := r.ReadRaw(repo.KindDirMeta, id); err != nil {
				t.Error(err)
			}
			if _, err := r.RemoteSections(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
}

// bigCompressible writes a file of n MiB of random hex digits (written
// out, not sparse): half of it compresses away, slowly, since no stretch
// repeats. It returns the file open, with its header and id.
func bigCompressible(t *testing.T, n int) (*os.File, *repo.FileHeader, repo.ID) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "big"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(n) << 20}
	hs := hash.New()
	hs.Write(repo.AppendFileHeader(nil, h))
	rng := rand.NewChaCha8([32]byte{1})
	chunk := make([]byte, 1<<20)
	for i := 0; i < n; i++ {
		rng.Read(chunk)
		for j, c := range chunk {
			chunk[j] = "0123456789abcdef"[c&15]
		}
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		hs.Write(chunk)
	}
	return f, h, repo.ID(hs.Sum())
}

// In archive mode, WriteFileFrom of a large file stops compressing once
// the transaction's context is done: cancelled a part of the way into
// the file, it reads little more of it, returns the context's error and
// stages nothing.
func TestCancelStopsArchivedCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 16 MiB")
	}
	const size, at = 16 << 20, 2 << 20
	f, h, id := bigCompressible(t, size>>20)
	r := newIntegrityRepo(t, repo.ModeArchive)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	var c *ctxreadtest.CancelAfter
	defer repo.SetArchiveReadHook(func(rd io.Reader) io.Reader {
		c = &ctxreadtest.CancelAfter{R: rd, At: at, Cancel: cancel}
		return c
	})()
	_, err = txn.WriteFileFrom(h, id, f)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteFileFrom cancelled: %v, want context.Canceled", err)
	}
	c.CheckStoppedSoon(t, "WriteFileFrom", size)
	if has, _ := txn.Has(repo.KindFile, id); has || txn.Stats().Objects != 0 {
		t.Errorf("a cancelled WriteFileFrom staged the object (%d objects)", txn.Stats().Objects)
	}
}

// Has answers for an object stored, one staged by the transaction and
// one stored before and since deleted behind the repository's back; its
// kind is part of the answer.
func TestTxnHas(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	stored := (&repo.DirMeta{Mode: 0o755}).Encode()
	lost := (&repo.DirMeta{Mode: 0o700}).Encode()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{stored, lost} {
		if _, err := txn.WriteMeta(repo.KindDirMeta, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.ObjectPath(repo.KindDirMeta, repo.Sum(lost))); err != nil {
		t.Fatal(err)
	}
	txn, err = r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	staged := (&repo.DirMeta{Mode: 0o750}).Encode()
	if _, err := txn.WriteMeta(repo.KindDirMeta, staged); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		kind repo.Kind
		data []byte
		want bool
	}{
		{"stored", repo.KindDirMeta, stored, true},
		{"staged", repo.KindDirMeta, staged, true},
		{"deleted", repo.KindDirMeta, lost, false},
		{"another kind", repo.KindDirTree, stored, false},
		{"never written", repo.KindDirMeta, (&repo.DirMeta{Mode: 0o711}).Encode(), false},
	} {
		if got, err := txn.Has(c.kind, repo.Sum(c.data)); got != c.want || err != nil {
			t.Errorf("%s: Has = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

// Commit and Abort end a transaction: every later write, SetRef, Publish
// or Commit fails, rather than going through the staging directory's
// closed descriptor, whose number another directory may hold by then, or
// writing the queued refs again over what others wrote since.
func TestTxnUnusableAfterEnd(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	ctx := context.Background()
	var commits [2]repo.ID
	for i := range commits {
		txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		tree, err := txn.WriteMeta(repo.KindDirTree, (&repo.DirTree{}).Encode())
		if err != nil {
			t.Fatal(err)
		}
		meta, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
		if err != nil {
			t.Fatal(err)
		}
		if commits[i], err = txn.WriteMeta(repo.KindCommit, (&repo.Commit{Timestamp: uint64(i + 1), RootTree: tree, RootMeta: meta}).Encode()); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 3}
	id := repo.FileID(h, []byte("abc"))
	big := strings.Repeat("x", 2<<20)
	bigH := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(big))}
	bigID := repo.FileID(bigH, []byte(big))
	for _, end := range []string{"Commit", "Abort"} {
		txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: true, Publishable: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.SetRef("main", commits[0]); err != nil {
			t.Fatal(err)
		}
		if end == "Commit" {
			err = txn.Commit()
		} else {
			err = txn.Abort()
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SetRef("main", commits[1]); err != nil {
			t.Fatal(err)
		}
		// Directories opened now take the numbers the transaction freed.
		victim := t.TempDir()
		for i := 0; i < 4; i++ {
			f, err := os.Open(victim)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
		}
		for name, fn := range map[string]func() error{
			"WriteFile":       func() error { _, err := txn.WriteFile(h, id, []byte("abc")); return err },
			"WriteFileStream": func() error { _, _, err := txn.WriteFileStream(h, strings.NewReader("abc")); return err },
			// Content over 1 MiB is spooled: the reader looks for the
			// spool where the descriptor's number now points.
			"WriteFileVerified": func() error {
				_, err := txn.WriteFileVerified(bigH, bigID, &peekReader{r: strings.NewReader(big), peek: func() {
					if got := names(t, victim); len(got) != 0 {
						t.Errorf("WriteFileVerified after %s spooled into a directory holding its old descriptor number: %v", end, got)
					}
				}})
				return err
			},
			"WriteMeta": func() error {
				_, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o700}).Encode())
				return err
			},
			"WriteCommitMeta": func() error { return txn.WriteCommitMeta(commits[1], repo.Metadata{{Key: "k"}}) },
			"ReadCommitMeta":  func() error { _, err := txn.ReadCommitMeta(commits[1]); return err },
			"SetRef":          func() error { return txn.SetRef("other", commits[1]) },
			"Publish":         func() error { _, err := txn.Publish(); return err },
			"Commit":          func() error { return txn.Commit() },
		} {
			if err := fn(); err == nil || !strings.Contains(err.Error(), "already been committed or aborted") {
				t.Errorf("%s after %s: %v; want an error saying the transaction ended", name, end, err)
			}
		}
		if err := txn.Abort(); err != nil {
			t.Errorf("Abort after %s: %v", end, err)
		}
		if got := names(t, victim); len(got) != 0 {
			t.Errorf("a transaction used after %s wrote into a directory holding its old descriptor number: %v", end, got)
		}
		if has, _ := r.HasObject(repo.KindFile, id); has {
			t.Errorf("a write after %s was stored", end)
		}
		if got, err := r.ReadRef("main"); got != commits[1] || err != nil {
			t.Errorf("after %s, main is %s, %v; want %s, which was set since", end, got, err, commits[1])
		}
	}
}

// WriteFile refuses content of another length than its header's Size,
// and a nil header, staging nothing: the object would be corrupt.
func TestWriteFileRefusesWrongSize(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeArchive)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 3}
	id := repo.FileID(h, []byte("abc"))
	if _, err := txn.WriteFile(h, id, []byte("ab")); err == nil || !strings.Contains(err.Error(), id.String()) {
		t.Errorf("WriteFile of 2 bytes under a 3-byte header: %v; want an error naming %s", err, id)
	}
	if _, err := txn.WriteFile(nil, id, []byte("abc")); err == nil {
		t.Error("WriteFile with a nil header succeeded")
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if has, _ := r.HasObject(repo.KindFile, id); has {
		t.Error("the refused object was stored")
	}
	if rep, err := r.Fsck(context.Background(), repo.FsckOptions{}); err != nil || !rep.OK() {
		t.Errorf("fsck: %v", err)
	}
}

// peekReader calls peek before its second read, when a spool being
// written has had its first bytes.
type peekReader struct {
	r     io.Reader
	peek  func()
	reads int
}

func (p *peekReader) Read(b []byte) (int, error) {
	if p.reads++; p.reads == 2 {
		p.peek()
	}
	return p.r.Read(b)
}

// Begin with a context already done fails with its error, though the lock
// is free, and starts nothing: no staging directory, the lock not held.
func TestBeginCancelled(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if txn, err := r.Begin(ctx, repo.TxnOptions{}); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), r.Path("")) {
		if txn != nil {
			txn.Abort()
		}
		t.Fatalf("Begin with a cancelled context: %v, want context.Canceled naming %s", err, r.Path(""))
	}
	if m, _ := filepath.Glob(r.Path("tmp/txn-*")); len(m) != 0 {
		t.Errorf("a refused Begin left %v", m)
	}
	lk, err := r.LockExclusive(context.Background())
	if err != nil {
		t.Fatalf("after a refused Begin, the exclusive lock: %v", err)
	}
	lk.Unlock()
}

// A bare repository refuses a user.* xattr on any file but a regular one,
// saying why, before it makes the inode: the kernel refuses it (EPERM) on
// a symlink, device or FIFO, to root too. Other namespaces are stored.
func TestBareRefusesUserXattrOnSpecialFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: bare objects carry their owner, and trusted.* needs CAP_SYS_ADMIN")
	}
	r := newIntegrityRepo(t, repo.ModeBare)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	for _, h := range []repo.FileHeader{
		{Type: repo.TypeSymlink, Mode: 0o777, Target: "t"},
		{Type: repo.TypeFIFO, Mode: 0o644},
		{Type: repo.TypeCharDevice, Mode: 0o600, Rdev: 259},
	} {
		h.Xattrs = []repo.Xattr{{Name: "user.foo", Value: []byte("v")}}
		_, err := txn.WriteFile(&h, repo.FileID(&h, nil), nil)
		if want := "cannot store xattr user.foo on a " + h.Type.String(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s with user.foo: %v; want an error saying %q", h.Type, err, want)
		}
		h.Xattrs = []repo.Xattr{{Name: "trusted.foo", Value: []byte("v")}}
		if _, err := txn.WriteFile(&h, repo.FileID(&h, nil), nil); err != nil {
			t.Errorf("%s with trusted.foo: %v", h.Type, err)
		}
	}
}

// A bare repository on XFS stores a file with a POSIX ACL so that it
// reads back as stored (XFS lists the ACL to root a second time, as
// trusted.SGI_ACL_FILE, which reading leaves out), and refuses, saying
// why, a header that records that name beside the ACL: it would read back
// without it, not matching its id.
func TestBareOnXFSStoresACLs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: bare objects carry their owner, and XFS shows the alias only to root")
	}
	mnt := testtree.MountXFS(t)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeBare})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// user::rw- user:1234:r-- group::r-- mask::r-- other::r--, for 0644.
	acl := []byte("\x02\x00\x00\x00" + "\x01\x00\x06\x00\xff\xff\xff\xff" + "\x02\x00\x04\x00\xd2\x04\x00\x00" +
		"\x04\x00\x04\x00\xff\xff\xff\xff" + "\x10\x00\x04\x00\xff\xff\xff\xff" + "\x20\x00\x04\x00\xff\xff\xff\xff")
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 4, Xattrs: []repo.Xattr{{Name: "system.posix_acl_access", Value: acl}}}
	id := repo.FileID(h, []byte("data"))
	if _, err := txn.WriteFile(h, id, []byte("data")); err != nil {
		t.Fatal(err)
	}
	// The alias as XFS gives it, from a file with the same ACL.
	scratch := filepath.Join(mnt, "scratch")
	os.WriteFile(scratch, nil, 0o644)
	if err := unix.Setxattr(scratch, "system.posix_acl_access", acl, 0); err != nil {
		t.Skipf("no POSIX ACLs on this XFS: %v", err)
	}
	buf := make([]byte, 1024)
	n, err := unix.Getxattr(scratch, "trusted.SGI_ACL_FILE", buf)
	if err != nil {
		t.Skipf("this kernel's XFS gives no trusted.SGI_ACL_FILE: %v", err)
	}
	alias := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 5, Xattrs: append(h.Xattrs, repo.Xattr{Name: "trusted.SGI_ACL_FILE", Value: buf[:n]})}
	_, err = txn.WriteFile(alias, repo.FileID(alias, []byte("other")), []byte("other"))
	if err == nil || !strings.Contains(err.Error(), "xattr trusted.SGI_ACL_FILE") || !strings.Contains(err.Error(), "cannot store both") {
		t.Errorf("a header with the ACL and its XFS alias: %v; want it refused, naming the alias", err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	got, rc, err := r.OpenFile(id)
	if err != nil {
		t.Fatal(err)
	}
	content, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if gid := repo.FileID(got, content); gid != id {
		t.Errorf("the object reads back as %s with xattrs %q; stored as %s with %q", gid, got.Xattrs, id, h.Xattrs)
	}
}
