package delta_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/limitread/limitreadtest"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
)

// zstdFrame is a zstd frame of window 2^windowLog that decompresses to
// prefix and then zeros zero bytes: the zeros are RLE blocks of four bytes
// each, so a frame of a few KiB stands for hundreds of MiB.
func zstdFrame(windowLog uint, prefix []byte, zeros uint64) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0, byte(windowLog-10) << 3}
	const maxBlock = 128 << 10
	block := func(typ byte, size uint64, last bool) {
		h := uint32(size)<<3 | uint32(typ)<<1
		if last {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16))
	}
	if len(prefix) == 0 && zeros == 0 {
		block(0, 0, true)
	}
	for len(prefix) > 0 {
		n := min(len(prefix), maxBlock)
		block(0, uint64(n), n == len(prefix) && zeros == 0)
		b = append(b, prefix[:n]...)
		prefix = prefix[n:]
	}
	for zeros > 0 {
		n := min(zeros, maxBlock)
		zeros -= n
		block(1, n, zeros == 0)
		b = append(b, 0)
	}
	return b
}

// applyPart applies to dst a delta like sb whose only part is part,
// listing objects and decompressing to rawSize bytes, as a server that
// generated a hostile delta could send it: its size and hash match the
// superblock. It returns the bytes allocated meanwhile and Apply's error.
func applyPart(t *testing.T, dst *repo.Repo, sb *delta.Superblock, objects []delta.ObjectRef, part []byte, rawSize uint64) (uint64, error) {
	t.Helper()
	hostile := *sb
	hostile.Parts = []delta.Part{{Size: uint64(len(part)), RawSize: rawSize, Sum: repo.Sum(part), Objects: objects}}
	txn, err := dst.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	alloc := limitreadtest.Allocated(func() {
		err = delta.Apply(ctx, txn, &hostile, func(_ context.Context, _ string, fn func(io.Reader) error) error {
			return fn(bytes.NewReader(part))
		}, nil, nil)
	})
	return alloc, err
}

// storeZeros stores in r a regular file of size zero bytes and returns
// its id.
func storeZeros(t *testing.T, r *repo.Repo, size int) repo.ID {
	t.Helper()
	content := make([]byte, size)
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(size)}
	id := repo.FileID(h, content)
	txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if _, err := txn.WriteFile(h, id, content); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return id
}

// A part whose sizes are far beyond what a reader accepts is refused,
// naming the delta and the part, without allocating what it states. Each
// part is a few KiB of zstd that decompresses to as much as its stated
// sizes need to be believed, so a missing bound shows as an allocation.
func TestApplyRefusesHugeSizes(t *testing.T) {
	_, dst, a, _, sb := setup(t, delta.GenerateOptions{NoSync: true})
	file := delta.ObjectRef{Kind: repo.KindFile, ID: id(9)}
	tree := delta.ObjectRef{Kind: repo.KindDirTree, ID: id(9)}
	const huge = 4 << 30
	// A file stored here one byte larger than a patch base may be.
	bigBase := storeZeros(t, dst, delta.PatchSizeLimit+1)
	c, err := dst.ReadCommit(a)
	if err != nil {
		t.Fatal(err)
	}
	// entry encodes a part entry: the byte how, base when not nil, then
	// each field with its length before it.
	entry := func(how byte, base *repo.ID, fields ...[]byte) []byte {
		b := []byte{how}
		if base != nil {
			b = append(b, base[:]...)
		}
		for _, f := range fields {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
		return b
	}
	header := func(size uint64) []byte {
		return repo.AppendFileHeader(nil, &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: size})
	}
	base := fileID(t, dst, a, "usr/lib/big.txt")
	cases := []struct {
		name     string
		object   delta.ObjectRef
		window   uint   // log2 of the part frame's window
		stream   []byte // the start of the part's stream
		zeros    uint64 // zero bytes after it
		rawSize  uint64 // the superblock's raw size; 0: the stream's
		want     []string
		wantErr  error
		maxAlloc uint64
	}{
		// Lengths stated before the bytes: refused before any is read,
		// although 128 MiB follow.
		{name: "file header of 4 GiB", object: file, window: 20, stream: binary.AppendUvarint([]byte{0}, huge), zeros: 128 << 20,
			want: []string{"file header of 4294967296 bytes is larger than 16777216"}, maxAlloc: 64 << 20},
		{name: "dirtree of 4 GiB", object: tree, window: 20, stream: binary.AppendUvarint([]byte{0}, huge), zeros: 128 << 20,
			want: []string{"dirtree of 4294967296 bytes is larger than 268435456"}, maxAlloc: 64 << 20},
		// A length a reader accepts, in a part whose raw size is 1 KiB:
		// the stream is read no further than that, though 200 MiB follow.
		{name: "dirtree of 200 MiB past the raw size", object: tree, window: 20, stream: binary.AppendUvarint([]byte{0}, 200<<20), zeros: 200 << 20,
			rawSize: 1 << 10, want: []string{tree.ID.String(), "stream ends early"}, maxAlloc: 64 << 20},
		// A patch yields at most 64 MiB: a file header that says more is
		// refused before its patch is decoded, a dirtree patch once it has
		// yielded 64 MiB (held in memory to be hashed) of its 1 GiB.
		{name: "patch to a file of 4 GiB", object: file, window: 20,
			stream: entry(1, &base, header(huge), zstdFrame(20, nil, 128<<20)),
			want:   []string{file.ID.String(), "4294967296 bytes cannot be a patch"}, maxAlloc: 64 << 20},
		{name: "dirtree patch that yields 1 GiB", object: tree, window: 20,
			stream: entry(1, &c.RootTree, zstdFrame(20, nil, 1<<30)),
			want:   []string{tree.ID.String(), "patch yields more than 67108864 bytes"}, maxAlloc: growLimit},
		// A patch base is read whole into memory: one over 64 MiB is
		// refused before it is read.
		{name: "patch base over 64 MiB", object: file, window: 20,
			stream: entry(1, &bigBase, header(1), zstdFrame(20, nil, 1)),
			want:   []string{file.ID.String(), "its base " + bigBase.String(), "67108865 bytes, which cannot be a patch base"}, maxAlloc: 32 << 20},
		// The window a frame needs is allocated when its first block is
		// decoded: 256 MiB is twice what a reader accepts.
		{name: "frame window of 256 MiB", object: file, window: 28, stream: []byte{0}, zeros: 1 << 10,
			want: []string{"does not decompress"}, wantErr: zstd.ErrWindowSizeExceeded, maxAlloc: 64 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			part := zstdFrame(c.window, c.stream, c.zeros)
			raw := c.rawSize
			if raw == 0 {
				raw = uint64(len(c.stream)) + c.zeros
			}
			alloc, err := applyPart(t, dst, sb, []delta.ObjectRef{c.object}, part, raw)
			if err == nil {
				t.Fatal("applied")
			}
			for _, w := range append([]string{"delta " + sb.Name.String() + " part 0: "}, c.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("error %q is not %q", err, c.wantErr)
			}
			if alloc > c.maxAlloc {
				t.Errorf("allocated %d MiB refusing it, want at most %d MiB", alloc>>20, c.maxAlloc>>20)
			}
		})
	}
}

// A part is read no further than one byte past the size the superblock
// gives it: a server that sends more (here 64 MiB more) is cut off there,
// not written to disk until it stops.
func TestApplyReadsPartNoFurther(t *testing.T) {
	src, dst, _, _, sb := setup(t, delta.GenerateOptions{NoSync: true})
	part, err := os.ReadFile(filepath.Join(delta.Path(src, sb.Name), "0"))
	if err != nil {
		t.Fatal(err)
	}
	txn, err := dst.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	var body *limitreadtest.Counting
	err = delta.Apply(ctx, txn, sb, func(_ context.Context, _ string, fn func(io.Reader) error) error {
		body = &limitreadtest.Counting{R: io.MultiReader(bytes.NewReader(part), io.LimitReader(limitreadtest.Endless(0), 64<<20))}
		return fn(body)
	}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "part 0: part is more than") {
		t.Errorf("Apply of a part followed by 64 MiB: %v, want an error that part 0 is more than its size", err)
	}
	if want := int64(sb.Parts[0].Size) + 1; body.N > want {
		t.Errorf("read %d bytes of a part of %d", body.N, sb.Parts[0].Size)
	}
}

// superblockWith is a superblock that decodes, of a small commit, with
// parts and fallbacks as given.
func superblockWith(parts []delta.Part, fallbacks []delta.Fallback) *delta.Superblock {
	c := &repo.Commit{Subject: "x", RootTree: id(1), RootMeta: id(2)}
	enc := c.Encode()
	return &delta.Superblock{Name: delta.Name{To: repo.Sum(enc)}, Commit: enc, Parts: parts, Fallbacks: fallbacks}
}

// A superblock that states more objects in a part, or more fallbacks,
// than its remaining bytes can hold is refused without making room for
// them: 2^27 of either would take over 4 GiB; and so is a delta index
// that states 2^27 deltas (8 GiB).
func TestDecodeRefusesHugeCounts(t *testing.T) {
	part := []delta.Part{{Size: 1, RawSize: 1, Sum: id(3), Objects: []delta.ObjectRef{{Kind: repo.KindFile, ID: id(4)}}}}
	superblock := func(b []byte) error { _, err := delta.DecodeSuperblock(b); return err }
	index := func(b []byte) error { _, err := delta.DecodeIndex(b); return err }
	for _, c := range []struct {
		name   string
		b      []byte
		entry  int // bytes of the one entry after the count
		decode func([]byte) error
	}{
		{"superblock objects", superblockWith(part, nil).Encode(), 33, superblock},
		{"superblock fallbacks", superblockWith(part, []delta.Fallback{{ID: id(5), Size: 1}}).Encode(), 33, superblock},
		{"index deltas", (&delta.Index{To: id(6), Deltas: []delta.IndexEntry{{From: id(7), Superblock: id(8)}}}).Encode(), 64, index},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.decode(c.b); err != nil {
				t.Fatal(err)
			}
			// The encoding ends with a count of 1 and its one entry: the
			// count becomes 2^27.
			at := len(c.b) - c.entry - 1
			if c.b[at] != 1 {
				t.Fatalf("byte %d is %d, not the count 1", at, c.b[at])
			}
			b := append(binary.AppendUvarint(bytes.Clone(c.b[:at]), 1<<27), c.b[at+1:]...)
			var err error
			alloc := limitreadtest.Allocated(func() { err = c.decode(b) })
			if err == nil || !strings.Contains(err.Error(), "count 134217728 past the end") {
				t.Errorf("decoding = %v, want an error that the count 134217728 runs past the end", err)
			}
			if alloc > 64<<20 {
				t.Errorf("allocated %d MiB refusing it, want at most 64 MiB", alloc>>20)
			}
		})
	}
}

// Open refuses a delta whose sections or parts are larger than it is,
// naming it, without allocating what they state: a single file's
// superblock or signatures of 4 GiB, or parts whose sizes add up, past
// 2^64, to its length; a superblock file of 1 GiB (sparse), read no
// further than the 64 MiB a superblock may be.
func TestOpenRefusesHugeSections(t *testing.T) {
	const magic = "OTDELTA\x01"
	raw := superblockWith([]delta.Part{{Size: 1, RawSize: 1, Sum: id(3), Objects: []delta.ObjectRef{{Kind: repo.KindFile, ID: id(4)}}}}, nil).Encode()
	wrap := superblockWith([]delta.Part{
		{Size: 1 << 63, RawSize: 1, Sum: id(3), Objects: []delta.ObjectRef{{Kind: repo.KindFile, ID: id(4)}}},
		{Size: 1<<63 + 5, RawSize: 1, Sum: id(5), Objects: []delta.ObjectRef{{Kind: repo.KindFile, ID: id(6)}}},
	}, nil).Encode()
	section := func(b []byte, s []byte) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	for _, c := range []struct {
		name     string
		file     []byte // a single file's bytes; nil: a directory with a superblock of 1 GiB
		want     string
		maxAlloc uint64
	}{
		{"superblock section of 4 GiB", binary.AppendUvarint([]byte(magic), 4<<30), "superblock of 4294967296 bytes is over the limit of 67108864", 64 << 20},
		{"signatures of 4 GiB", binary.AppendUvarint(section([]byte(magic), raw), 4<<30), "signatures of 4294967296 bytes is over the limit of 1048576", 64 << 20},
		{"parts that wrap around", append(section(section([]byte(magic), wrap), nil), "12345"...), "ending before part 0 does", 64 << 20},
		{"superblock file of 1 GiB", nil, "larger than 67108864 bytes", growLimit},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "d")
			if c.file != nil {
				if err := os.WriteFile(p, c.file, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p, delta.SuperblockFile), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(filepath.Join(p, delta.SuperblockFile), 1<<30); err != nil {
					t.Skipf("sparse file: %v", err)
				}
			}
			var err error
			alloc := limitreadtest.Allocated(func() {
				var o *delta.Offline
				if o, err = delta.Open(p); err == nil {
					o.Close()
				}
			})
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open = %v, want an error naming %s and %q", err, p, c.want)
			}
			if alloc > c.maxAlloc {
				t.Errorf("allocated %d MiB refusing it, want at most %d MiB", alloc>>20, c.maxAlloc>>20)
			}
		})
	}
}

// growLimit bounds what reading up to a 64 MiB limit may allocate where
// the reader grows its buffer step by step (io.ReadAll): about 2.5 times
// the limit, and 5 under the race detector. It is 8 times the limit, so
// it catches a read with no limit (these cases then allocate over 2 GiB),
// not a limit raised a little.
const growLimit = 512 << 20
