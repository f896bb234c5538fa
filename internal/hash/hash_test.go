package hash

import (
	"encoding/hex"
	"testing"
)

// The BLAKE3 reference vector for the empty input pins the algorithm choice.
func TestEmptyVector(t *testing.T) {
	got := Sum()
	want := "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	if hex.EncodeToString(got[:]) != want {
		t.Fatalf("Sum() = %x, want %s", got, want)
	}
}

func TestHasherMatchesSum(t *testing.T) {
	h := New()
	h.Write([]byte("dirty"))
	h.Reset()
	h.Write([]byte("hello "))
	h.Write([]byte("world"))
	if h.Sum() != Sum([]byte("hello world")) {
		t.Fatal("streamed digest differs from one-shot digest after Reset")
	}
}

func benchHash(b *testing.B, n int) {
	buf := make([]byte, n)
	h := New()
	b.SetBytes(int64(n))
	for b.Loop() {
		h.Reset()
		h.Write(buf[:64])
		h.Write(buf[64:])
		h.Sum()
	}
}

func BenchmarkHash4K(b *testing.B)  { benchHash(b, 4<<10) }
func BenchmarkHash64K(b *testing.B) { benchHash(b, 64<<10) }
func BenchmarkHash1M(b *testing.B)  { benchHash(b, 1<<20) }
