package delta

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// errReader fails every read with its error.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// A part that fails to decompress is reported as such; a failure to read
// back the part kept on disk is not, and keeps its cause.
func TestDecompressedTellsDiskFromStream(t *testing.T) {
	// Not a zstd frame: the decoder's own error.
	dec, err := newDecoder(bufio.NewReader(spooled{strings.NewReader("not a zstd frame at all")}))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	_, err = io.ReadAll(decompressed{dec})
	if err == nil || !strings.Contains(err.Error(), "does not decompress") {
		t.Errorf("a malformed frame: %v, want it called not decompressing", err)
	}
	// A frame whose bytes cannot be read back: the disk's error.
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := enc.EncodeAll([]byte(strings.Repeat("otree ", 1<<16)), nil)
	disk := io.MultiReader(strings.NewReader(string(b[:len(b)/2])), errReader{syscall.EIO})
	dec2, err := newDecoder(bufio.NewReader(spooled{disk}))
	if err != nil {
		t.Fatal(err)
	}
	defer dec2.Close()
	_, err = io.ReadAll(decompressed{dec2})
	if !errors.Is(err, syscall.EIO) || strings.Contains(err.Error(), "does not decompress") || !strings.Contains(err.Error(), "reading back the part") {
		t.Errorf("a read error of the part on disk: %v, want EIO named as reading the part back, not as a stream that does not decompress", err)
	}
}
