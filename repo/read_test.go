package repo_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/otree/otree/internal/limitread/limitreadtest"
	"github.com/otree/otree/repo"
)

// Archive objects whose headers straddle or exceed the first read (large
// xattrs) still read back whole.
func TestArchiveHeadersOfAnySize(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("content "), 100)
	var ids []repo.ID
	var sizes []int
	for _, n := range []int{0, 4000, 4060, 4070, 4080, 4090, 4100, 16384, 65536, 70000, 300000} {
		h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content)),
			Xattrs: []repo.Xattr{{Name: "user.big", Value: bytes.Repeat([]byte{'x'}, n)}}}
		id := repo.FileID(h, content)
		if _, err := txn.WriteFile(h, id, content); err != nil {
			t.Fatal(err)
		}
		ids, sizes = append(ids, id), append(sizes, n)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		h, rc, err := r.OpenFile(id)
		if err != nil {
			t.Fatalf("xattr of %d bytes: %v", sizes[i], err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, content) || len(h.Xattrs[0].Value) != sizes[i] {
			t.Fatalf("xattr of %d bytes: content %d bytes, err %v, xattr %d bytes", sizes[i], len(got), err, len(h.Xattrs[0].Value))
		}
	}
}

// Reading an object verifies what fsck does: bytes appended after an
// archive object's compressed content (whether or not they start like a
// zstd frame: a frame cut short is no more part of the stream than
// garbage), and a bare-user symlink whose stored content no longer repeats
// its target.
func TestOpenFileCatchesTampering(t *testing.T) {
	regular := func() *repo.FileHeader { return &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644} }
	for _, c := range []struct {
		mode     repo.Mode
		h        *repo.FileHeader
		body     []byte
		appended string
	}{
		{repo.ModeArchive, regular(), bytes.Repeat([]byte("compress me "), 200), "garbage"},
		{repo.ModeArchive, regular(), bytes.Repeat([]byte("compress me "), 200), "xx"},
		{repo.ModeArchive, regular(), bytes.Repeat([]byte("compress me "), 200), "\x28\xb5\x2f\xfd"},
		{repo.ModeBareUser, &repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "target"}, nil, "garbage"},
	} {
		r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		txn, _ := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
		c.h.Size = uint64(len(c.body))
		id := repo.FileID(c.h, c.body)
		if _, err := txn.WriteFile(c.h, id, c.body); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(r.ObjectPath(repo.KindFile, id), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(c.appended))
		f.Close()
		_, rc, err := r.OpenFile(id)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		var ce *repo.CorruptObjectError
		if !errors.As(err, &ce) || ce.ID != id {
			t.Errorf("%s, %q appended: tampered object read with err %v, want a CorruptObjectError for %s", c.mode, c.appended, err, id)
		}
		if c.h.Type != repo.TypeRegular {
			continue
		}
		// Unverified reads still notice the bytes past the content, and
		// name the object.
		r.SetVerify(false)
		_, rc, err = r.OpenFile(id)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		r.SetVerify(true)
		if !errors.As(err, &ce) || ce.ID != id || ce.Path != r.ObjectPath(repo.KindFile, id) || !strings.Contains(err.Error(), id.String()) {
			t.Errorf("%s, %q appended, unverified: tampered object read with err %v, want a CorruptObjectError naming %s", c.mode, c.appended, err, id)
		}
	}
}

// An OSTree repository has otree's config shape and object names, so it
// must be recognised and refused by name rather than opened and every
// object reported corrupt. The real one is made by ostree when installed.
func TestOpenRefusesOSTreeRepository(t *testing.T) {
	handMade := filepath.Join(t.TempDir(), "ostree")
	for _, d := range []string{"extensions", "objects", "refs/heads", "refs/mirrors", "refs/remotes", "state", "tmp"} {
		if err := os.MkdirAll(filepath.Join(handMade, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(handMade, "config"), []byte("[core]\nrepo_version=1\nmode=bare-user\n"), 0o644)
	paths := []string{handMade}
	if ostree, err := exec.LookPath("ostree"); err == nil {
		real := filepath.Join(t.TempDir(), "real")
		if out, err := exec.Command(ostree, "--repo="+real, "init", "--mode=bare-user").CombinedOutput(); err != nil {
			t.Fatalf("ostree init: %v\n%s", err, out)
		}
		paths = append(paths, real)
	}
	for _, p := range paths {
		_, err := repo.Open(p)
		if err == nil || !strings.Contains(err.Error(), "OSTree repository") || !strings.Contains(err.Error(), p) {
			t.Errorf("Open(%s) = %v, want an error naming it an OSTree repository", p, err)
		}
	}
	// An otree repository with a directory of that name is still otree's.
	r, err := repo.Init(filepath.Join(t.TempDir(), "otree"), repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(r.Path(), "extensions"), 0o755)
	r.Close()
	if r2, err := repo.Open(r.Path()); err != nil {
		t.Errorf("otree repository with extensions/ but no refs/mirrors/: %v", err)
	} else {
		r2.Close()
	}
}

func TestReadArchiveHeader(t *testing.T) {
	var id repo.ID
	id[0] = 7
	// A header with 40 KiB of xattrs: the prefix read grows past its first
	// 4 KiB to find the compression byte.
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 3,
		Xattrs: []repo.Xattr{{Name: "user.big", Value: bytes.Repeat([]byte{'x'}, 40<<10)}}}
	enc := repo.AppendFileHeader(nil, h)
	obj := append(append(bytes.Clone(enc), 0), "abc"...)
	got, comp, rest, err := repo.ReadArchiveHeader(id, bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := io.ReadAll(rest)
	if comp != 0 || string(payload) != "abc" || !bytes.Equal(repo.AppendFileHeader(nil, got), enc) {
		t.Errorf("ReadArchiveHeader = comp %d, payload %q, header equal %v", comp, payload, bytes.Equal(repo.AppendFileHeader(nil, got), enc))
	}

	// Malformed objects are corrupt and name the object.
	for name, b := range map[string][]byte{
		"truncated header":    enc[:len(enc)/2],
		"no compression byte": enc,
		"empty":               nil,
		"not a file header":   []byte("\x00\x01garbage"),
	} {
		_, _, _, err := repo.ReadArchiveHeader(id, bytes.NewReader(b))
		var ce *repo.CorruptObjectError
		if !errors.As(err, &ce) || ce.ID != id || ce.Kind != repo.KindFile {
			t.Errorf("%s: err = %v, want *CorruptObjectError for %s", name, err, id)
		}
	}

	// A reader that fails is its own error, not a corrupt object.
	cut := errors.New("connection reset")
	_, _, _, err = repo.ReadArchiveHeader(id, &failingReader{b: enc[:10], err: cut})
	var ce *repo.CorruptObjectError
	if !errors.Is(err, cut) || errors.As(err, &ce) || !strings.Contains(err.Error(), id.String()) {
		t.Errorf("failing reader: err = %v, want %v naming %s and not corrupt", err, cut, id)
	}
}

// An archive file object's header and compression byte must lie within
// its first 16 MiB (docs/FORMAT.md §6.1): with a header of 16 MiB - 1
// bytes the object reads; with one of 16 MiB it is corrupt, naming the
// object; and one whose xattr claims 4 GiB, its bytes going on, is refused
// after reading no more than 16 MiB and allocating under 64 MiB.
func TestReadArchiveHeaderWithin16MiB(t *testing.T) {
	var id repo.ID
	id[0] = 7
	const limit = 16 << 20
	// header is the encoding of a header of exactly n bytes, filled by an
	// xattr (whose length takes 4 bytes at this size, not 1).
	header := func(n int) []byte {
		h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 3, Xattrs: []repo.Xattr{{Name: "user.big"}}}
		h.Xattrs[0].Value = make([]byte, n-len(repo.AppendFileHeader(nil, h))-3)
		enc := repo.AppendFileHeader(nil, h)
		if len(enc) != n {
			t.Fatalf("header of %d bytes, want %d", len(enc), n)
		}
		return enc
	}
	var ce *repo.CorruptObjectError
	obj := append(header(limit-1), 0, 'a', 'b', 'c')
	if _, comp, rest, err := repo.ReadArchiveHeader(id, bytes.NewReader(obj)); err != nil || comp != 0 {
		t.Errorf("header of 16 MiB - 1 bytes: comp %d, %v", comp, err)
	} else if payload, _ := io.ReadAll(rest); string(payload) != "abc" {
		t.Errorf("header of 16 MiB - 1 bytes: payload %q", payload)
	}
	obj = append(header(limit), 0, 'a', 'b', 'c')
	_, _, _, err := repo.ReadArchiveHeader(id, bytes.NewReader(obj))
	if !errors.As(err, &ce) || ce.ID != id || !strings.Contains(err.Error(), "header larger than 16777216 bytes") {
		t.Errorf("header of 16 MiB: %v, want a CorruptObjectError for %s: header larger than 16777216 bytes", err, id)
	}

	// A one-byte xattr value whose length says 4 GiB, followed by 256 MiB.
	small := repo.AppendFileHeader(nil, &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644,
		Xattrs: []repo.Xattr{{Name: "user.big", Value: []byte("v")}}})
	claim := binary.AppendUvarint(bytes.Clone(small[:len(small)-3]), 4<<30)
	src := &limitreadtest.Counting{R: io.MultiReader(bytes.NewReader(claim), io.LimitReader(limitreadtest.Endless('x'), 256<<20))}
	alloc := limitreadtest.Allocated(func() { _, _, _, err = repo.ReadArchiveHeader(id, src) })
	if !errors.As(err, &ce) || ce.ID != id || !strings.Contains(err.Error(), "header larger than 16777216 bytes") {
		t.Errorf("header claiming 4 GiB: %v, want a CorruptObjectError for %s: header larger than 16777216 bytes", err, id)
	}
	if src.N > limit {
		t.Errorf("header claiming 4 GiB: read %d bytes, want at most %d", src.N, limit)
	}
	if alloc > 64<<20 {
		t.Errorf("header claiming 4 GiB: allocated %d MiB, want at most 64 MiB", alloc>>20)
	}
}

// A config file larger than MaxConfigSize (a sparse 1 TiB one on a stick
// find-remotes looks at) is refused by Open, naming it, not read whole.
func TestOpenRefusesHugeConfig(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cfg := r.Path("config")
	if err := os.Truncate(cfg, 1<<40); err != nil {
		t.Skipf("sparse file: %v", err)
	}
	if _, err := repo.Open(r.Path()); err == nil || !strings.Contains(err.Error(), cfg) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Open with a 1 TiB config: %v", err)
	}
}

// A metadata object is checked against its id when loaded: another valid
// object's bytes under its name are corrupt, not decoded; one larger than
// any valid object is refused before it is read.
func TestReadMetaCatchesTampering(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := txn.WriteMeta(repo.KindDirTree, (&repo.DirTree{}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	other := (&repo.DirMeta{Mode: 0o4777}).Encode()
	p := r.ObjectPath(repo.KindDirMeta, id)
	os.Remove(p)
	if err := os.WriteFile(p, other, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := r.ReadDirMeta(id)
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.ID != id || ce.Actual != repo.Sum(other) || ce.Path != p {
		t.Errorf("dirmeta %s holding another's bytes: %+v, %v; want a CorruptObjectError naming both ids", id, m, err)
	}

	p = r.ObjectPath(repo.KindDirTree, tree)
	os.Remove(p)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 256<<20+1); err != nil { // sparse
		t.Fatal(err)
	}
	r.SetVerify(false) // the bound holds without hashing
	_, err = r.ReadDirTree(tree)
	if !errors.As(err, &ce) || ce.ID != tree || !strings.Contains(err.Error(), "larger than any valid object") {
		t.Errorf("dirtree of 256 MiB: %v, want a CorruptObjectError: larger than any valid object", err)
	}
}

// Content shorter than its header says is corrupt even when reads are not
// hashed.
func TestOpenFileShortContentUnverified(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeBareUser)
	id := storeFiles(t, r, "twelve bytes")[0]
	if err := os.Truncate(r.ObjectPath(repo.KindFile, id), 5); err != nil {
		t.Fatal(err)
	}
	r.SetVerify(false)
	_, rc, err := r.OpenFile(id)
	var got []byte
	if err == nil {
		got, err = io.ReadAll(rc)
		rc.Close()
	}
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.ID != id || !strings.Contains(err.Error(), "content is 5 bytes, header says 12") {
		t.Errorf("truncated object read as %q with err %v, want a CorruptObjectError: content is 5 bytes, header says 12", got, err)
	}
}

// A truncated archive object stops its decoder inside the content: the
// read fails naming the object and its path as corrupt, not with the
// decoder's bare "unexpected EOF", which names nothing.
func TestOpenFileTruncatedArchive(t *testing.T) {
	r := newIntegrityRepo(t, repo.ModeArchive)
	content := make([]byte, 1<<20)
	for i := range content {
		content[i] = byte(i*7919>>5) ^ byte(i>>11) // compresses, but not to nothing
	}
	id := storeFiles(t, r, string(content))[0]
	p := r.ObjectPath(repo.KindFile, id)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	_, rc, err := r.OpenFile(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || ce.ID != id || !strings.Contains(err.Error(), p) {
		t.Errorf("reading the truncated object: %v, want a CorruptObjectError naming %s", err, p)
	}
}

// failAfter reads r, then fails with err.
type failAfter struct {
	r   io.Reader
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// A file object's content ends where its header says; what comes after
// decides how the read ends: bytes or a decoder's complaint make the object
// corrupt, but a failure to read the file (EIO, a closed file) is a read
// error, which says nothing of the object. Either failing within the
// content is told apart alike, and names the object.
func TestFileReadEnd(t *testing.T) {
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 2}
	id := repo.FileID(h, []byte("ab"))
	eio := &fs.PathError{Op: "read", Path: "object", Err: unix.EIO}
	for _, tc := range []struct {
		name    string
		src     io.Reader
		corrupt bool
		is      error
	}{
		{"whole", strings.NewReader("ab"), false, nil},
		{"appended", strings.NewReader("abc"), true, nil},
		{"decoder error after", &failAfter{strings.NewReader("ab"), errors.New("zstd: unexpected data")}, true, nil},
		{"read error after", &failAfter{strings.NewReader("ab"), eio}, false, unix.EIO},
		{"decoder error within", &failAfter{strings.NewReader("a"), io.ErrUnexpectedEOF}, true, nil},
		{"read error within", &failAfter{strings.NewReader("a"), eio}, false, unix.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := io.ReadAll(repo.NewFileReader(tc.src, h, id))
			var ce *repo.CorruptObjectError
			if got := errors.As(err, &ce); got != tc.corrupt {
				t.Errorf("err %v: corrupt %v, want %v", err, got, tc.corrupt)
			}
			if tc.is != nil && (!errors.Is(err, tc.is) || !strings.Contains(err.Error(), id.String())) {
				t.Errorf("err %v, want %v naming %s", err, tc.is, id)
			}
			if tc.name == "whole" && err != nil {
				t.Errorf("err %v", err)
			}
		})
	}
}

// Reading a file object reuses the hasher of one closed before (a BLAKE3
// hasher is some 18 KiB: export allocated it again for every file), and
// a reader closed mid-way yields nothing more, not content unverified.
func TestOpenFileReusesHasher(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		t.Run(mode.String(), func(t *testing.T) {
			r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			content := []byte("some content\n")
			h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
			id := repo.FileID(h, content)
			if _, err := txn.WriteFile(h, id, content); err != nil {
				t.Fatal(err)
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			read := func() {
				_, rc, err := r.OpenFile(id)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, content) {
					t.Fatalf("read %q, %v", got, err)
				}
				rc.Close()
			}
			read()
			const n = 200
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range n {
				read()
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 8<<10 && !raceDetector {
				t.Errorf("OpenFile, read and Close allocate %d bytes each; want under 8 KiB", per)
			}

			_, rc, err := r.OpenFile(id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rc.Read(make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
			rc.Close()
			if n, err := rc.Read(make([]byte, 64)); n != 0 || !errors.Is(err, fs.ErrClosed) {
				t.Errorf("Read after Close = %d, %v; want 0, fs.ErrClosed", n, err)
			}
		})
	}
}
