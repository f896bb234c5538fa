package delta

import (
	"math/rand"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/internal/limitread/limitreadtest"
)

// A patch whose base and result need a 32 MiB window gets an encoder
// whose history holds one window and a block, not two windows: about
// 100 MiB with the best level's tables, not 132. Its frame decodes to
// the result.
func TestLargePatchEncoderHistory(t *testing.T) {
	base := make([]byte, 12<<20)
	rand.New(rand.NewSource(5)).Read(base)
	target := append([]byte(nil), base...)
	target[len(target)/2]++
	g := &generator{}
	defer g.close()
	var patch []byte
	var err error
	alloc := limitreadtest.Allocated(func() { patch, err = g.encodePatch(base, target) })
	if err != nil {
		t.Fatal(err)
	}
	const limit = 112 << 20
	if alloc > limit {
		t.Errorf("encoding a patch of window 32 MiB allocated %d MiB, want at most %d", alloc>>20, limit>>20)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderDictRaw(patchDict, base), zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got, err := dec.DecodeAll(patch, nil)
	if err != nil || string(got) != string(target) {
		t.Fatalf("patch of %d bytes decodes wrong (%v)", len(patch), err)
	}
	t.Logf("allocated %d MiB, patch %d bytes", alloc>>20, len(patch))
}
