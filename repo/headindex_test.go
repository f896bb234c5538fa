package repo_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

func hiEntries(n, seed int) []repo.IndexedHeader {
	out := make([]repo.IndexedHeader, n)
	for i := range out {
		h := &repo.FileHeader{Type: repo.TypeRegular, Mode: uint32(0o400 + i%0o400), UID: uint32(seed), Size: uint64(i * 1000)}
		out[i] = repo.IndexedHeaderOf(repo.Sum([]byte{byte(seed), byte(i), byte(i >> 8)}), h)
	}
	return out
}

// hiCheck asserts the index holds exactly want.
func hiCheck(t *testing.T, r *repo.Repo, want []repo.IndexedHeader) {
	t.Helper()
	x := r.LoadHeaderIndex()
	defer x.Close()
	if x.Len() != len(want) {
		t.Errorf("index has %d entries, want %d", x.Len(), len(want))
	}
	for _, h := range want {
		got, ok := x.Lookup(h.ID)
		if !ok || got != h {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v", h.ID.Short(), got, ok, h)
		}
	}
	if _, ok := x.Lookup(repo.Sum([]byte("not there"))); ok {
		t.Error("Lookup found an id never added")
	}
}

// Entries merge into one sorted index; adding only known entries does not
// rewrite it.
func TestHeaderIndexAdd(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	hiCheck(t, r, nil) // no file: empty
	a, b := hiEntries(300, 1), hiEntries(200, 2)
	if err := r.AddToHeaderIndex(append(a[:200:200], a[:10]...)); err != nil { // duplicates within one call
		t.Fatal(err)
	}
	hiCheck(t, r, a[:200])
	if err := r.AddToHeaderIndex(append(append([]repo.IndexedHeader{}, a[100:]...), b...)); err != nil {
		t.Fatal(err)
	}
	all := append(append([]repo.IndexedHeader{}, a...), b...)
	hiCheck(t, r, all)
	path := filepath.Join(r.CacheDir(), "file-headers")
	var before, after unix.Stat_t
	unix.Stat(path, &before)
	if err := r.AddToHeaderIndex(b[:50]); err != nil {
		t.Fatal(err)
	}
	unix.Stat(path, &after)
	if before.Ino != after.Ino {
		t.Error("adding known entries rewrote the index")
	}
	if err := r.AddToHeaderIndex([]repo.IndexedHeader{{ID: repo.Sum([]byte("x")), Mode: 0o10644}}); err == nil {
		t.Error("a mode with type bits was added")
	}
}

// A damaged or foreign index is ignored, and the next addition replaces it.
func TestHeaderIndexDamaged(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	a := hiEntries(50, 3)
	if err := r.AddToHeaderIndex(a); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.CacheDir(), "file-headers")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// resum rewrites the checksum, so only the check named is at stake.
	resum := func(b []byte) []byte {
		b = b[:len(b)-4]
		return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	}
	const rec0, rec = 16, 64 // magic, record size
	damage := map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[rec0+60] ^= 1; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-10] },
		"empty":        func(b []byte) []byte { return nil },
		"foreign":      func(b []byte) []byte { b[0] = 'x'; return resum(b) },
		"version 1":    func(b []byte) []byte { b[15] = '1'; return resum(b) },
		"half record":  func(b []byte) []byte { return resum(append(b[:len(b)-4], make([]byte, rec/2+4)...)) },
		"unsorted": func(b []byte) []byte {
			r0, r1 := b[rec0:rec0+rec], b[rec0+rec:rec0+2*rec]
			tmp := append([]byte{}, r0...)
			copy(r0, r1)
			copy(r1, tmp)
			return resum(b)
		},
		"duplicate": func(b []byte) []byte { copy(b[rec0+rec:rec0+2*rec], b[rec0:rec0+rec]); return resum(b) },
		"reserved":  func(b []byte) []byte { b[rec0+44] = 1; return resum(b) },
		"type bits": func(b []byte) []byte { binary.LittleEndian.PutUint32(b[rec0+40:], 0o100644); return resum(b) },
	}
	for name, f := range damage {
		if err := os.WriteFile(path, f(append([]byte{}, good...)), 0o644); err != nil {
			t.Fatal(err)
		}
		x := r.LoadHeaderIndex()
		if x.Len() != 0 {
			t.Errorf("%s: index with %d entries loaded", name, x.Len())
		}
		x.Close()
	}
	b := hiEntries(5, 4)
	if err := r.AddToHeaderIndex(b); err != nil {
		t.Fatal(err)
	}
	hiCheck(t, r, b)
}

// A bare, bare-user or bare-user-only transaction indexes the regular files
// it stores, and only those, with their whole header's digest; archive
// indexes nothing.
func TestHeaderIndexFromTxn(t *testing.T) {
	modes := []repo.Mode{repo.ModeBareUser, repo.ModeArchive, repo.ModeBareUserOnly}
	if os.Getuid() == 0 {
		modes = append(modes, repo.ModeBare)
	}
	for _, mode := range modes {
		r := newIntegrityRepo(t, mode)
		txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		content := []byte("indexed\n")
		reg := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o4750, UID: 7, GID: 8, Size: uint64(len(content)),
			Xattrs: []repo.Xattr{{Name: "user.a", Value: []byte("1")}}}
		regID := repo.FileID(reg, content)
		link := &repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "indexed"}
		linkID := repo.FileID(link, nil)
		if mode == repo.ModeBareUserOnly {
			reg.Mode, reg.UID, reg.GID, reg.Xattrs = 0o755, 0, 0, nil
			regID = repo.FileID(reg, content)
		}
		if _, err := txn.WriteFile(reg, regID, content); err != nil {
			t.Fatal(err)
		}
		if _, err := txn.WriteFile(link, linkID, nil); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		// Regular files of the modes that store files as files are
		// indexed; archive objects carry their header in the file.
		if mode == repo.ModeArchive {
			hiCheck(t, r, nil)
		} else {
			hiCheck(t, r, []repo.IndexedHeader{repo.IndexedHeaderOf(regID, reg)})
		}
	}
}

// A header's digest changes with every field of the header: it is what
// tells a bare object changed through a hardlink.
func TestDigestHeader(t *testing.T) {
	base := func() *repo.FileHeader {
		return &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, UID: 1, GID: 2, Size: 3,
			Xattrs: []repo.Xattr{{Name: "user.a", Value: []byte("1")}}}
	}
	seen := map[repo.HeaderDigest]string{repo.DigestHeader(base()): "base"}
	for name, change := range map[string]func(*repo.FileHeader){
		"mode":        func(h *repo.FileHeader) { h.Mode = 0o4644 },
		"uid":         func(h *repo.FileHeader) { h.UID = 0 },
		"gid":         func(h *repo.FileHeader) { h.GID = 0 },
		"size":        func(h *repo.FileHeader) { h.Size = 4 },
		"xattr value": func(h *repo.FileHeader) { h.Xattrs[0].Value = []byte("2") },
		"xattr name":  func(h *repo.FileHeader) { h.Xattrs[0].Name = "user.b" },
		"type":        func(h *repo.FileHeader) { h.Type, h.Size = repo.TypeSymlink, 0; h.Target = "x" },
		"target":      func(h *repo.FileHeader) { h.Type, h.Size = repo.TypeSymlink, 0; h.Target = "y" },
		"no xattrs":   func(h *repo.FileHeader) { h.Xattrs = nil },
	} {
		h := base()
		change(h)
		d := repo.DigestHeader(h)
		if other, ok := seen[d]; ok {
			t.Errorf("changing the %s gives the digest of %s", name, other)
		}
		seen[d] = name
	}
}
