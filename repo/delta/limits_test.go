package delta_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
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
// superblock. It returns Apply's error and the bytes allocated meanwhile.
func applyPart(t *testing.T, dst *repo.Repo, sb *delta.Superblock, objects []delta.ObjectRef, part []byte, rawSize uint64) (error, uint64) {
	t.Helper()
	hostile := *sb
	hostile.Parts = []delta.Part{{Size: uint64(len(part)), RawSize: rawSize, Sum: repo.Sum(part), Objects: objects}}
	txn, err := dst.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err = delta.Apply(ctx, txn, &hostile, func(_ context.Context, _ string, fn func(io.Reader) error) error {
		return fn(bytes.NewReader(part))
	}, nil, nil)
	runtime.ReadMemStats(&after)
	return err, after.TotalAlloc - before.TotalAlloc
}

// A part whose sizes are far beyond what a reader accepts is refused,
// naming the delta and the part, without allocating what it states. Each
// part is a few KiB of zstd that decompresses to as much as its stated
// sizes need to be believed, so a missing bound shows as an allocation.
func TestApplyRefusesHugeSizes(t *testing.T) {
	_, dst, _, _, sb := setup(t, delta.GenerateOptions{NoSync: true})
	file := delta.ObjectRef{Kind: repo.KindFile, ID: id(9)}
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
			err, alloc := applyPart(t, dst, sb, []delta.ObjectRef{c.object}, part, raw)
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
