package zenc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// sample is compressible content of n bytes with matches near and far.
func sample(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d of %d: %x\n", i, rng.IntN(50), rng.Uint32()%4096)
	}
	return b.Bytes()[:n]
}

// Streams round-trip and need no larger window than StreamWindow, so a
// reader's memory per object is bounded by it.
func TestStreamWindow(t *testing.T) {
	src := sample(3 * StreamWindow)
	e, err := Stream(Level)
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	e.Reset(&z)
	e.Write(src)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := zstd.NewReader(nil, zstd.WithDecoderMaxWindow(StreamWindow))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.DecodeAll(z.Bytes(), nil)
	if err != nil {
		t.Fatalf("decoding with a %d-byte window: %v", StreamWindow, err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("stream did not round-trip")
	}
}

// Content compressed whole, up to 1 MiB, compresses exactly as well with
// WholeWindow as with the default window, and round-trips.
func TestWholeWindowLosesNothing(t *testing.T) {
	e, err := Whole(Level, 2)
	if err != nil {
		t.Fatal(err)
	}
	def, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(Level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := zstd.NewReader(nil)
	defer d.Close()
	for _, n := range []int{100, 64 << 10, WholeWindow} {
		src := sample(n)
		z := e.EncodeAll(src, nil)
		if want := len(def.EncodeAll(src, nil)); len(z) != want {
			t.Errorf("%d bytes: %d compressed with WholeWindow, %d with the default window", n, len(z), want)
		}
		if got, err := d.DecodeAll(z, nil); err != nil || !bytes.Equal(got, src) {
			t.Errorf("%d bytes: did not round-trip (%v)", n, err)
		}
	}
}
