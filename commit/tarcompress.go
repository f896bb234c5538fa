package commit

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// The first bytes of the compressed formats a tar source may come in.
var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	bzip2Block = []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59} // after "BZh1" to "BZh9": a block
	bzip2End   = []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90} // or the end of an empty stream
)

// unreadable are formats otree recognises but does not read, each with its
// first bytes and how the error names it.
var unreadable = []struct {
	magic []byte
	ok    func(magic []byte) bool // checks the bytes after magic, if set
	what  string
}{
	// lz4's frame: a version of 01 in the flags byte after the magic.
	{[]byte{0x04, 0x22, 0x4d, 0x18}, func(m []byte) bool { return len(m) > 4 && m[4]>>6 == 1 }, "lz4-compressed"},
	{[]byte{0x02, 0x21, 0x4c, 0x18}, nil, "lz4-compressed (legacy format)"},
	{[]byte("LZIP\x01"), nil, "lzip-compressed"},
	{[]byte{0x89, 'L', 'Z', 'O', 0, '\r', '\n', 0x1a, '\n'}, nil, "lzop-compressed"},
	// compress: then the largest code size, 9 to 16 bits.
	{[]byte{0x1f, 0x9d}, func(m []byte) bool { return len(m) > 2 && m[2]&0x1f >= 9 && m[2]&0x1f <= 16 }, "compressed with Unix compress (.Z)"},
}

// decompress returns the tar stream of br, which may be plain or
// compressed with gzip, zstd, xz or bzip2, told by its first bytes; a
// stream in another compression otree recognises is refused, naming it.
// Memory stays bounded whatever the input claims: gzip's and bzip2's
// windows are small and fixed, zstd's is capped by its decoder (512 MiB)
// and xz's by xzGuard.
func decompress(br *bufio.Reader) (io.Reader, error) {
	magic, _ := br.Peek(16)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, zstdMagic):
		d, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case bytes.HasPrefix(magic, xzMagic):
		// Check the stream header and the first block's now, so that a
		// refusal of the first block names no tar entry.
		g := &xzGuard{br: br}
		for range 2 {
			if err := g.step(); err != nil {
				return nil, err
			}
		}
		return xz.NewReader(g)
	case isBzip2(magic):
		return bzip2.NewReader(br), nil
	case isLzmaAlone(magic):
		return nil, unreadableError("lzma-compressed (the format before xz)")
	}
	for _, u := range unreadable {
		if bytes.HasPrefix(magic, u.magic) && (u.ok == nil || u.ok(magic)) {
			return nil, unreadableError(u.what)
		}
	}
	return br, nil
}

func unreadableError(what string) error {
	return fmt.Errorf("the archive is %s, which otree cannot read (it reads tars plain or compressed with gzip, zstd, xz or bzip2): decompress it first", what)
}

// isBzip2 reports whether magic starts a bzip2 stream: "BZh", the block
// size 1 to 9, and the magic of a block or of the stream's end.
func isBzip2(magic []byte) bool {
	if len(magic) < 10 || !bytes.HasPrefix(magic, []byte("BZh")) || magic[3] < '1' || magic[3] > '9' {
		return false
	}
	return bytes.Equal(magic[4:10], bzip2Block) || bytes.Equal(magic[4:10], bzip2End)
}

// isLzmaAlone reports whether magic starts an .lzma file (LZMA_Alone),
// which has no magic number: the default properties byte 0x5d, a
// dictionary size of 2^n or 2^n+2^(n-1) bytes (at least 4 KiB), and an
// uncompressed size that is unknown (all ones) or below 2^56. A tar's
// first header, a NUL-padded name, does not look like that.
func isLzmaAlone(magic []byte) bool {
	if len(magic) < 13 || magic[0] != 0x5d {
		return false
	}
	dict := binary.LittleEndian.Uint32(magic[1:5])
	size := binary.LittleEndian.Uint64(magic[5:13])
	if dict < 4096 || (size != ^uint64(0) && size >= 1<<56) {
		return false
	}
	low := dict & -dict // the lowest bit set
	return dict == low || dict == low|low<<1
}

// checkStreamEnd reads what follows the archive, up to maxTarTrailer, so
// that a compressed stream's checksum is checked: a corrupt stream can
// still decompress into a well-formed archive. What lies beyond the bound
// is not read, as tar itself ignores it, and neither are bytes after the
// last compressed member, frame or stream that do not start another (the
// zeros a block device pads with), as gzip -d ignores them.
func checkStreamEnd(rd io.Reader) error {
	_, err := io.CopyN(io.Discard, rd, maxTarTrailer)
	if err == io.EOF || errors.Is(err, gzip.ErrHeader) || errors.Is(err, zstd.ErrMagicMismatch) ||
		errors.Is(err, bzip2.StructuralError("bad magic value in continuation file")) {
		return nil
	}
	return err
}

// maxXZDict bounds the LZMA2 dictionary of an xz block. The decoder
// allocates a block's dictionary whole, at the size its header declares
// (up to 4 GiB), before it decodes a byte, so a file of a hundred bytes
// could claim gigabytes. xz -9 uses 64 MiB.
const maxXZDict = 256 << 20

// xzGuard passes an xz file on to the decoder, parsing the container
// format as it goes (stream headers, block headers, the LZMA2 chunks'
// headers, indexes, footers) so as to refuse a block whose dictionary is
// larger than maxXZDict before the decoder reads that block's header.
// Stream padding, and whatever follows the last stream without starting
// another, is not passed on: the decoder sees the end there. The decoder
// checks everything else, checksums included.
type xzGuard struct {
	br    *bufio.Reader
	pos   int64   // bytes of the file passed on or skipped
	free  int64   // bytes from pos on checked already, to pass on
	state xzState // what starts at pos+free, the next byte to check
	check int64   // size of each block's check, in the current stream
	data  int64   // where the current block's compressed data starts
	index int64   // where the current index starts
	left  uint64  // index records still to come
	err   error
}

type xzState int8

const (
	xzStreamHeader xzState = iota
	xzBlockOrIndex         // a block header, or the index indicator
	xzChunk                // an LZMA2 chunk of the current block
	xzRecord               // an index record, or the index's end
	xzStreamEnd            // stream padding, another stream, or the end
)

func (g *xzGuard) Read(p []byte) (int, error) {
	if err := g.fill(); err != nil {
		return 0, err
	}
	if int64(len(p)) > g.free {
		p = p[:g.free]
	}
	n, err := g.br.Read(p)
	g.pos += int64(n)
	g.free -= int64(n)
	if err == io.EOF {
		err = g.truncated(g.pos)
	}
	return n, err
}

// fill checks the structures from pos+free on until free is not zero.
func (g *xzGuard) fill() error {
	for g.free == 0 && g.err == nil {
		g.err = g.step()
	}
	if g.free > 0 {
		return nil
	}
	return g.err
}

// step checks the structure at pos+free and frees its bytes, with any
// data that follows up to the next structure. It looks ahead of what is
// passed on only as far as the buffer of br holds: fill steps with
// nothing free.
func (g *xzGuard) step() error {
	at := g.pos + g.free // for errors and offsets
	switch g.state {
	case xzStreamHeader:
		h, err := g.peek(12)
		if err != nil {
			return err
		}
		if !bytes.Equal(h[:6], xzMagic) {
			return fmt.Errorf("xz: no stream header at byte %d", at)
		}
		// The check's size by its type (its low 4 bits): 0 none, 1-3 4
		// bytes, 4-6 8, 7-9 16, 10-12 32, 13-15 64.
		g.check = [16]int64{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}[h[7]&0x0f]
		g.free, g.state = g.free+12, xzBlockOrIndex
	case xzBlockOrIndex:
		b, err := g.peek(1)
		if err != nil {
			return err
		}
		if b[0] == 0 { // the index indicator, then the number of records
			n, k, err := g.varint(1)
			if err != nil {
				return err
			}
			g.index, g.left = at, n
			g.free, g.state = g.free+int64(1+k), xzRecord
			return nil
		}
		size := (int(b[0]) + 1) * 4
		h, err := g.peek(size)
		if err != nil {
			return err
		}
		dict, err := xzBlockDict(h)
		if err != nil {
			return fmt.Errorf("xz: block header at byte %d: %w", at, err)
		}
		if dict > maxXZDict {
			return fmt.Errorf("xz: the block at byte %d declares a dictionary of %d MiB; otree reads at most %d MiB (xz -9 uses 64 MiB)",
				at, (dict+(1<<20)-1)>>20, maxXZDict>>20)
		}
		g.data = at + int64(size)
		g.free, g.state = g.free+int64(size), xzChunk
	case xzChunk:
		c, err := g.peek(1)
		if err != nil {
			return err
		}
		switch {
		case c[0] == 0: // the block's end: padding to 4 bytes, its check
			pad := (4 - (at+1-g.data)%4) % 4
			g.free, g.state = g.free+1+pad+g.check, xzBlockOrIndex
		case c[0] == 1 || c[0] == 2: // stored: size-1 (big-endian), data
			h, err := g.peek(3)
			if err != nil {
				return err
			}
			g.free += 3 + int64(binary.BigEndian.Uint16(h[1:])) + 1
		case c[0] >= 0x80: // LZMA: unpacked size-1, packed size-1, properties if reset
			n := 5
			if c[0] >= 0xc0 {
				n = 6
			}
			h, err := g.peek(n)
			if err != nil {
				return err
			}
			g.free += int64(n) + int64(binary.BigEndian.Uint16(h[3:5])) + 1
		default:
			return fmt.Errorf("xz: invalid LZMA2 chunk at byte %d", at)
		}
	case xzRecord:
		if g.left == 0 { // padding to 4 bytes, CRC32, then the stream footer
			pad := (4 - (at-g.index)%4) % 4
			g.free, g.state = g.free+pad+4+12, xzStreamEnd
			return nil
		}
		_, a, err := g.varint(0) // unpadded size
		if err != nil {
			return err
		}
		_, b, err := g.varint(a) // uncompressed size
		if err != nil {
			return err
		}
		g.left--
		g.free += int64(a + b)
	case xzStreamEnd:
		if g.free != 0 {
			panic("xzGuard: stream end checked ahead")
		}
		for {
			b, _ := g.br.Peek(len(xzMagic))
			if len(b) > 0 && b[0] == 0 {
				z := len(b) - len(bytes.TrimLeft(b, "\x00"))
				g.br.Discard(z)
				g.pos += int64(z)
				continue
			}
			if !bytes.Equal(b, xzMagic) {
				return io.EOF
			}
			g.state = xzStreamHeader
			return nil
		}
	}
	return nil
}

// peek returns the n bytes at pos+free, which must all be there.
func (g *xzGuard) peek(n int) ([]byte, error) {
	b, err := g.br.Peek(int(g.free) + n)
	if len(b) < int(g.free)+n {
		if err == nil || err == io.EOF {
			err = g.truncated(g.pos + int64(len(b)))
		}
		return nil, err
	}
	return b[g.free:], nil
}

// varint reads the xz multibyte integer at pos+free+off and says how many
// bytes it takes.
func (g *xzGuard) varint(off int) (uint64, int, error) {
	off += int(g.free)
	b, err := g.br.Peek(off + 9)
	if len(b) <= off {
		if err == nil || err == io.EOF {
			err = g.truncated(g.pos + int64(len(b)))
		}
		return 0, 0, err
	}
	v, n, ok := xzVarint(b[off:])
	if !ok {
		if len(b) < off+9 {
			return 0, 0, g.truncated(g.pos + int64(len(b)))
		}
		return 0, 0, fmt.Errorf("xz: invalid integer at byte %d", g.pos+int64(off))
	}
	return v, n, nil
}

func (g *xzGuard) truncated(at int64) error {
	return fmt.Errorf("xz: truncated at byte %d: %w", at, io.ErrUnexpectedEOF)
}

// xzVarint decodes an xz multibyte integer: 7 bits a byte, least
// significant first, the high bit set on all but the last of at most 9.
func xzVarint(b []byte) (uint64, int, bool) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1, i == 0 || b[i] != 0
		}
	}
	return 0, 0, false
}

// xzBlockDict returns the LZMA2 dictionary size a block header h (its
// check included) declares. The last of its filters must be LZMA2, whose
// chunks xzGuard parses; the decoder refuses the others it does not know.
func xzBlockDict(h []byte) (uint64, error) {
	body := h[:len(h)-4] // its CRC32 is the decoder's to check
	if len(body) < 2 {
		return 0, errors.New("too short")
	}
	flags, off := body[1], 2
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed and uncompressed size
		if present {
			_, n, ok := xzVarint(body[off:])
			if !ok {
				return 0, errors.New("invalid size")
			}
			off += n
		}
	}
	var id, dict uint64
	for range int(flags&3) + 1 {
		var n int
		var ok bool
		if id, n, ok = xzVarint(body[off:]); !ok {
			return 0, errors.New("invalid filter")
		}
		off += n
		size, n, ok := xzVarint(body[off:])
		if !ok || size > uint64(len(body)-off-n) {
			return 0, errors.New("invalid filter properties")
		}
		off += n
		props := body[off : off+int(size)]
		off += int(size)
		if id == 0x21 { // LZMA2: one byte, the dictionary size
			if len(props) != 1 || props[0] > 40 {
				return 0, errors.New("invalid LZMA2 properties")
			}
			if props[0] == 40 {
				dict = 1<<32 - 1
			} else {
				dict = uint64(2|props[0]&1) << (props[0]/2 + 11)
			}
		}
	}
	if id != 0x21 {
		return 0, fmt.Errorf("the last filter is %#x, not LZMA2", id)
	}
	return dict, nil
}
