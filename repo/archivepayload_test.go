package repo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/repo"
)

// zstdAt compresses b at level, as another writer (or another version of
// zstd) might: not the bytes otree's own encoder would make.
func zstdAt(t *testing.T, b []byte, level zstd.EncoderLevel) []byte {
	t.Helper()
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(b, nil)
}

// An archive repository keeps a zstd payload that came from outside byte
// for byte (a mirror does not compress again); other modes store the
// content. Either way the object reads back as the content.
func TestWriteArchiveVerifiedKeepsPayload(t *testing.T) {
	content := bytes.Repeat([]byte("payload kept as it came\n"), 20000) // 480 kB, compressible
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
	id := repo.FileID(h, content)
	payload := zstdAt(t, content, zstd.SpeedFastest)
	for _, mode := range []repo.Mode{repo.ModeArchive, repo.ModeBareUser} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, mode)
			txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			isNew, err := txn.WriteArchiveVerified(h, id, 1, bytes.NewReader(payload))
			if err != nil || !isNew {
				t.Fatalf("WriteArchiveVerified: new %v, %v", isNew, err)
			}
			if isNew, err := txn.WriteArchiveVerified(h, id, 1, bytes.NewReader(payload)); err != nil || isNew {
				t.Fatalf("the same object again: new %v, %v", isNew, err)
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			if mode == repo.ModeArchive {
				stored, err := os.ReadFile(r.ObjectPath(repo.KindFile, id))
				if err != nil {
					t.Fatal(err)
				}
				want := append(append(repo.AppendFileHeader(nil, h), 1), payload...)
				if !bytes.Equal(stored, want) {
					t.Errorf("stored object is %d bytes, not the %d received", len(stored), len(want))
				}
			}
			if got := readContent(t, r, id); !bytes.Equal(got, content) {
				t.Errorf("reading the object back: %d bytes, want %d", len(got), len(content))
			}
		})
	}
}

// A payload that is not exactly the object is refused as corrupt, names
// the object, and leaves nothing behind: the same object offered again
// with a good payload (a retry, another source) is stored.
func TestWriteArchiveVerifiedRefusesBadPayloads(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o600, Size: uint64(len(content))}
	id := repo.FileID(h, content)
	good := zstdAt(t, content, zstd.SpeedDefault)
	other := append(bytes.Clone(content[:len(content)-1]), 'X')
	// A skippable frame (magic 0x184D2A50, little-endian length) pads the
	// stream without changing what it decompresses to.
	skippable := func(n int) []byte {
		b := []byte{0x50, 0x2a, 0x4d, 0x18, byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}
		return append(b, make([]byte, n)...)
	}
	cases := []payloadCase{
		{"other content", 1, zstdAt(t, other, zstd.SpeedDefault), "content hashes to"},
		{"truncated stream", 1, good[:len(good)/2], "content ended"},
		{"longer content", 1, zstdAt(t, append(bytes.Clone(content), 'x'), zstd.SpeedDefault), "longer than its header"},
		{"bytes after the stream", 1, append(bytes.Clone(good), 0, 1, 2, 3), "after the content"},
		{"a frame cut short after the stream", 1, append(bytes.Clone(good), 0x28, 0xb5, 0x2f, 0xfd), "after the content"},
		{"padded past zstd's bound", 1, append(bytes.Clone(good), skippable(int(repo.MaxPayload(h.Size)))...), "larger than"},
		{"padded before the content", 1, append(skippable(int(repo.MaxPayload(h.Size))), good...), "larger than"},
		{"not zstd", 1, bytes.Repeat([]byte{7}, 100), "magic number"},
		{"unknown compression", 2, good, "unknown compression 2"},
	}
	// The bound holds in every mode, also where the content is stored
	// decompressed.
	for _, mode := range []repo.Mode{repo.ModeArchive, repo.ModeBareUser} {
		t.Run(mode.String(), func(t *testing.T) { refuseBadPayloads(t, mode, h, id, good, cases) })
	}
}

type payloadCase struct {
	name    string
	comp    byte
	payload []byte
	want    string
}

func refuseBadPayloads(t *testing.T, mode repo.Mode, h *repo.FileHeader, id repo.ID, good []byte, cases []payloadCase) {
	skippable := func(n int) []byte {
		b := []byte{0x50, 0x2a, 0x4d, 0x18, byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}
		return append(b, make([]byte, n)...)
	}
	r := newIntegrityRepo(t, mode)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		_, err := txn.WriteArchiveVerified(h, id, c.comp, bytes.NewReader(c.payload))
		var ce *repo.CorruptObjectError
		if !errors.As(err, &ce) || ce.ID != id {
			t.Errorf("%s: %v, want a *CorruptObjectError naming %s", c.name, err, id.Short())
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), id.String()) {
			t.Errorf("%s: %q, want it to name the object and say %q", c.name, err, c.want)
		}
	}
	// Within zstd's bound, padding is kept.
	padded := append(bytes.Clone(good), skippable(64)...)
	if isNew, err := txn.WriteArchiveVerified(h, id, 1, bytes.NewReader(padded)); err != nil || !isNew {
		t.Fatalf("after the refusals, a good payload: new %v, %v", isNew, err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if rep, err := r.Fsck(context.Background(), repo.FsckOptions{}); err != nil || len(rep.Problems) > 0 {
		t.Errorf("fsck after the refusals: %v, %+v", err, rep)
	}
	if got := int64(len(padded)) + int64(len(repo.AppendFileHeader(nil, h))) + 1; mode == repo.ModeArchive && fileSize(t, r.ObjectPath(repo.KindFile, id)) != got {
		t.Errorf("stored %d bytes, want the %d received", fileSize(t, r.ObjectPath(repo.KindFile, id)), got)
	}
}

// readContent reads file object id back, verified.
func readContent(t *testing.T, r *repo.Repo, id repo.ID) []byte {
	t.Helper()
	_, rc, err := r.OpenFile(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading object %s: %v", id.Short(), err)
	}
	return got
}

// An archived symlink, device or FIFO is its header and compression byte
// 0, nothing more: the same object as header, 1 and a zstd frame of no
// content hashes alike but is not its encoding, so reading and fsck
// refuse it.
func TestArchiveNonRegularCompressed(t *testing.T) {
	for _, h := range []*repo.FileHeader{
		{Type: repo.TypeSymlink, Mode: 0o777, Target: "target"},
		{Type: repo.TypeCharDevice, Mode: 0o600, Rdev: 0x0103},
		{Type: repo.TypeFIFO, Mode: 0o644},
	} {
		t.Run(h.Type.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, repo.ModeArchive)
			id := repo.FileID(h, nil)
			obj := append(repo.AppendFileHeader(nil, h), 1)
			obj = append(obj, zstdAt(t, nil, zstd.SpeedDefault)...)
			if err := os.WriteFile(r.ObjectPath(repo.KindFile, id), obj, 0o644); err != nil {
				t.Fatal(err)
			}
			_, rc, err := r.OpenFile(id)
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			var ce *repo.CorruptObjectError
			if !errors.As(err, &ce) || ce.ID != id || ce.Path != r.ObjectPath(repo.KindFile, id) {
				t.Errorf("reading the object: %v, want a CorruptObjectError naming it", err)
			}
			rep, err := runFsck(t, r, repo.FsckOptions{})
			wantProblem(t, rep, err, repo.ProblemCorrupt, repo.KindFile, id)
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Whatever payload a server sends, WriteArchiveVerified either refuses it
// or stores an object that reads back as the content its id names.
func FuzzWriteArchiveVerified(f *testing.F) {
	content := bytes.Repeat([]byte("fuzzed payload\n"), 300)
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
	id := repo.FileID(h, content)
	e, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	good := e.EncodeAll(content, nil)
	e.Close()
	f.Add(byte(1), good)
	f.Add(byte(0), content)
	f.Add(byte(1), good[:len(good)-3])
	f.Add(byte(1), append(bytes.Clone(good), good...))
	r, err := repo.Init(f.TempDir()+"/repo", repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	f.Fuzz(func(t *testing.T, comp byte, payload []byte) {
		txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer txn.Abort()
		isNew, err := txn.WriteArchiveVerified(h, id, comp, bytes.NewReader(payload))
		if err != nil {
			var ce *repo.CorruptObjectError
			if !errors.As(err, &ce) {
				t.Fatalf("not a *CorruptObjectError: %v", err)
			}
			return
		}
		if !isNew {
			return // stored by an earlier input
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := readContent(t, r, id); !bytes.Equal(got, content) {
			t.Fatalf("stored object reads back as %d bytes, want %d", len(got), len(content))
		}
		// The next input starts from an empty store again.
		if err := os.Remove(r.ObjectPath(repo.KindFile, id)); err != nil {
			t.Fatal(err)
		}
	})
}

// failingReader yields its bytes, then err.
type failingReader struct {
	b   []byte
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, f.err
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// A payload whose source fails half-way (a dropped connection) is an error
// of the source, not a corrupt object, and the object can be stored again
// from a source that works.
func TestWriteArchiveVerifiedSourceError(t *testing.T) {
	content := bytes.Repeat([]byte("interrupted payload\n"), 50000)
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
	id := repo.FileID(h, content)
	payload := zstdAt(t, content, zstd.SpeedFastest)
	r := newIntegrityRepo(t, repo.ModeArchive)
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	dropped := errors.New("connection dropped")
	_, err = txn.WriteArchiveVerified(h, id, 1, &failingReader{b: payload[:len(payload)/2], err: dropped})
	var ce *repo.CorruptObjectError
	if !errors.Is(err, dropped) || errors.As(err, &ce) || !strings.Contains(err.Error(), id.String()) {
		t.Fatalf("source failing half-way: %v; want the source's error, naming the object, not a corrupt object", err)
	}
	if isNew, err := txn.WriteArchiveVerified(h, id, 1, bytes.NewReader(payload)); err != nil || !isNew {
		t.Fatalf("the same object from a working source: new %v, %v", isNew, err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := readContent(t, r, id); !bytes.Equal(got, content) {
		t.Errorf("stored object reads back as %d bytes, want %d", len(got), len(content))
	}
}

// A payload whose frame asks for a window larger than MaxImportWindow is
// refused, naming the object, in every mode; one at the bound is taken.
func TestWriteArchiveVerifiedBoundsWindow(t *testing.T) {
	content := bytes.Repeat([]byte("a wide window\n"), 40000) // over a block, so the size is not in the frame
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}
	id := repo.FileID(h, content)
	stream := func(window int) []byte {
		var b bytes.Buffer
		// Streamed, so the frame declares the window, not the content size.
		e, err := zstd.NewWriter(&b, zstd.WithWindowSize(window), zstd.WithSingleSegment(false), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		e.Write(content)
		e.Close()
		return b.Bytes()
	}
	for _, mode := range []repo.Mode{repo.ModeArchive, repo.ModeBareUser} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, mode)
			txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer txn.Abort()
			_, err = txn.WriteArchiveVerified(h, id, 1, bytes.NewReader(stream(2*repo.MaxImportWindow)))
			var ce *repo.CorruptObjectError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), id.String()) || !strings.Contains(err.Error(), "window") {
				t.Fatalf("payload with a %d MiB window: %v, want a corrupt-object error naming %s and the window", 2*repo.MaxImportWindow>>20, err, id)
			}
			if _, err := txn.WriteArchiveVerified(h, id, 1, bytes.NewReader(stream(repo.MaxImportWindow))); err != nil {
				t.Fatalf("payload with a %d MiB window: %v", repo.MaxImportWindow>>20, err)
			}
		})
	}
}
