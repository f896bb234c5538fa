package delta_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
)

// FuzzApplyPart feeds Apply a part whose decompressed stream is arbitrary
// bytes, under a superblock that vouches for them (the right size and
// hash), as a server that generated a hostile delta would: the part
// passes the transport checks, so every decoder behind them is exercised.
// Apply either fails, and nothing is published, or every object it stored
// hashes to its id and the commit is complete.
func FuzzApplyPart(f *testing.F) {
	src, dst, _, _, sb := setup(f, delta.GenerateOptions{})
	if len(sb.Parts) != 1 {
		f.Fatalf("the fixture delta has %d parts, want 1", len(sb.Parts))
	}
	comp, err := os.ReadFile(filepath.Join(delta.Path(src, sb.Name), "0"))
	if err != nil {
		f.Fatal(err)
	}
	dec, err := zstd.NewReader(bytes.NewReader(comp))
	if err != nil {
		f.Fatal(err)
	}
	raw, err := io.ReadAll(dec)
	dec.Close()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte{})
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		part := enc.EncodeAll(stream, nil)
		hostile := *sb
		p := sb.Parts[0]
		p.Size, p.RawSize, p.Sum = uint64(len(part)), uint64(len(stream)), repo.Sum(part)
		hostile.Parts = []delta.Part{p}
		txn, err := dst.Begin(context.Background(), repo.TxnOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer txn.Abort()
		err = delta.Apply(context.Background(), txn, &hostile, func(_ context.Context, _ string, fn func(io.Reader) error) error {
			return fn(bytes.NewReader(part))
		}, nil, nil)
		if err != nil {
			return
		}
		if err := txn.Commit(); err != nil {
			t.Fatal(err)
		}
		rep, err := dst.Fsck(context.Background(), repo.FsckOptions{})
		if err != nil || !rep.OK() {
			t.Fatalf("an applied part left problems: %v %v", err, rep.Problems)
		}
		if _, err := dst.ReadCommit(sb.Name.To); err != nil {
			t.Fatalf("an applied part left no commit: %v", err)
		}
	})
}
