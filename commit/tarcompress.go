package commit

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz/lzma"
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
// and xz's by xzReader.
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
		// The stream header and the first block's are checked now, so
		// that a refusal of the first block names no tar entry.
		return newXZReader(br)
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

// xzDictBudget is the dictionary memory all the blocks of a file may
// declare in all, beyond 4 KiB per byte of the file read: a file of one
// block at xz -9 declares 64 MiB.
const xzDictBudget = 1 << 30

// xzReader decompresses an xz file. It parses the container itself
// (streams, block headers, LZMA2 chunk headers, checks, indexes, footers)
// and hands the LZMA2 decoder one block at a time, created only once the
// block's dictionary is known to be at most maxXZDict. The decoder is fed
// one chunk at a time and must consume exactly the bytes each chunk's
// header declares: otherwise bytes the container counts as chunk data
// could be read by the decoder as structure (a block header declaring a
// larger dictionary, say). Stream padding, and whatever follows the last
// stream without starting another, ends the file.
type xzReader struct {
	br       *bufio.Reader
	pos      int64 // bytes of the file read
	inStream bool  // between a stream's header and its footer
	streams  int   // streams read whole
	flags    [2]byte
	newCheck func() hash.Hash // nil for no check
	records  []xzRecord       // the current stream's blocks so far
	// The current block, while dec is set.
	dec    *lzma.Reader2
	block  int64  // where its header starts
	hsize  int64  // its header's size
	packed int64  // its compressed size as its header declares, or -1
	size   int64  // its uncompressed size as its header declares, or -1
	dicts  uint64 // dictionary bytes of all the blocks so far
	check  hash.Hash
	out    int64 // bytes the decoder gave
	chunk  xzChunks
	err    error
}

// xzRecord is a block as the index lists it.
type xzRecord struct{ unpadded, size uint64 }

// xzChunks gives the LZMA2 decoder the bytes of the current chunk only,
// the header included; xzReader parses the next chunk's header once the
// decoder has given all the previous ones hold.
type xzChunks struct {
	x        *xzReader
	start    int64 // where the current chunk starts
	left     int64 // its bytes not yet read
	end      bool  // it is the end marker
	declared int64 // uncompressed bytes of the chunks parsed so far
	packed   int64 // bytes of the chunks parsed so far
}

var crc64Table = crc64.MakeTable(crc64.ECMA)

// xzFilters names the filters of the xz format other than LZMA2.
var xzFilters = map[uint64]string{3: "delta", 4: "x86", 5: "PowerPC", 6: "IA-64", 7: "ARM", 8: "ARM-Thumb", 9: "SPARC", 0x0a: "ARM64", 0x0b: "RISC-V"}

var errChunkOverrun = errors.New("read past its chunk")

func (c *xzChunks) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, errChunkOverrun
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.x.br.Read(p)
	c.left -= int64(n)
	c.x.pos += int64(n)
	if err == io.EOF {
		err = nil
		if n == 0 {
			err = c.x.truncated(c.x.pos)
		}
	}
	return n, err
}

// next parses the header of the chunk at pos, which stays to be read.
func (c *xzChunks) next() error {
	x := c.x
	b, err := x.peek(1)
	if err != nil {
		return err
	}
	var hdr, data, unpacked int64
	switch ctl := b[0]; {
	case ctl == 0:
		hdr = 1
	case ctl == 1 || ctl == 2: // stored: size-1 (big-endian), data
		if b, err = x.peek(3); err != nil {
			return err
		}
		hdr, data = 3, int64(binary.BigEndian.Uint16(b[1:]))+1
		unpacked = data
	case ctl >= 0x80: // LZMA: unpacked size-1, packed size-1, properties if reset
		hdr = 5
		if ctl >= 0xc0 {
			hdr = 6
		}
		if b, err = x.peek(int(hdr)); err != nil {
			return err
		}
		unpacked = int64(ctl&0x1f)<<16 + int64(binary.BigEndian.Uint16(b[1:3])) + 1
		data = int64(binary.BigEndian.Uint16(b[3:5])) + 1
		// LZMA2 allows lc+lp ≤ 4 (xz refuses more). The decoder does
		// not check, and resets 0x300<<(lc+lp) probabilities for each
		// such chunk: a chunk of a dozen bytes could cost 6 MiB of work.
		// Only a chunk that sets new properties (control 0xc0 and up)
		// has a properties byte.
		if hdr == 6 {
			if p := b[5]; p >= 9*5*5 || p%9+p/9%5 > 4 {
				return fmt.Errorf("xz: the LZMA2 chunk at byte %d has properties %#x (lc+lp over 4)", x.pos, p)
			}
		}
	default:
		return fmt.Errorf("xz: invalid LZMA2 chunk at byte %d", x.pos)
	}
	c.start, c.left, c.end = x.pos, hdr+data, b[0] == 0
	c.declared += unpacked
	c.packed += hdr + data
	return nil
}

// newXZReader returns a reader of the xz file br, whose stream header and
// first block header it has checked already.
func newXZReader(br *bufio.Reader) (*xzReader, error) {
	x := &xzReader{br: br}
	x.chunk.x = x
	if err := x.next(); err != nil && err != io.EOF {
		return nil, err
	}
	return x, nil
}

func (x *xzReader) Read(p []byte) (int, error) {
	for x.err == nil {
		if x.dec == nil {
			x.err = x.next()
			continue
		}
		n, err := x.readBlock(p)
		if err != nil {
			x.err = err
		}
		if n > 0 || len(p) == 0 {
			return n, nil
		}
	}
	return 0, x.err
}

// readBlock reads the current block's data, within one chunk at a time,
// and ends the block after its end marker.
func (x *xzReader) readBlock(p []byte) (int, error) {
	c := &x.chunk
	if x.out == c.declared { // the decoder gave all the chunks so far hold
		if c.left != 0 {
			return 0, fmt.Errorf("xz: the LZMA2 chunk at byte %d ends %d bytes before the size its header declares", c.start, c.left)
		}
		if !c.end {
			if err := c.next(); err != nil {
				return 0, err
			}
		}
	}
	want := c.declared - x.out
	if want == 0 { // the end marker: the decoder must end on it
		var b [1]byte
		n, err := x.dec.Read(b[:])
		if n != 0 || err != io.EOF || !c.end || c.left != 0 {
			return 0, x.decodeError(err)
		}
		return 0, x.endBlock()
	}
	if int64(len(p)) > want {
		p = p[:want]
	}
	n, err := x.dec.Read(p)
	x.out += int64(n)
	if x.check != nil {
		x.check.Write(p[:n])
	}
	if err != nil {
		return n, x.decodeError(err)
	}
	return n, nil
}

func (x *xzReader) decodeError(err error) error {
	switch {
	case err == nil || err == io.EOF || errors.Is(err, errChunkOverrun):
		return fmt.Errorf("xz: the LZMA2 data of the chunk at byte %d does not match its header", x.chunk.start)
	case errors.Is(err, io.ErrUnexpectedEOF) && strings.HasPrefix(err.Error(), "xz: truncated"):
		return err
	}
	return fmt.Errorf("xz: the LZMA2 chunk at byte %d: %w", x.chunk.start, err)
}

// endBlock checks the current block's sizes, padding and check, and
// records it for the index.
func (x *xzReader) endBlock() error {
	packed := x.chunk.packed
	if (x.packed >= 0 && x.packed != packed) || (x.size >= 0 && x.size != x.out) {
		return fmt.Errorf("xz: the block at byte %d holds %d bytes (%d compressed), not the sizes its header declares", x.block, x.out, packed)
	}
	pad, err := x.read(int((4 - (x.hsize+packed)%4) % 4))
	if err != nil {
		return err
	}
	if !allZero(pad) {
		return fmt.Errorf("xz: the block at byte %d has nonzero padding", x.block)
	}
	unpadded := x.hsize + packed
	if x.check != nil {
		sum := x.check.Sum(nil)
		if len(sum) != 32 { // CRC32 and CRC64 are stored little-endian
			slices.Reverse(sum)
		}
		got, err := x.read(len(sum))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, sum) {
			return fmt.Errorf("xz: the block at byte %d fails its checksum", x.block)
		}
		unpadded += int64(len(sum))
	}
	x.records = append(x.records, xzRecord{uint64(unpadded), uint64(x.out)})
	x.dec = nil
	return nil
}

// next reads on to the next block's header and starts the block, or
// returns io.EOF at the end of the file.
func (x *xzReader) next() error {
	for {
		if !x.inStream {
			if err := x.streamHeader(); err != nil {
				return err
			}
		}
		b, err := x.peek(1)
		if err != nil {
			return err
		}
		if b[0] == 0 {
			if err := x.index(); err != nil {
				return err
			}
			continue
		}
		return x.startBlock()
	}
}

// streamHeader reads a stream's header, after skipping the zeros that pad
// the previous stream; io.EOF if no stream starts there.
func (x *xzReader) streamHeader() error {
	if x.streams > 0 {
		// Stream padding is zeros, a multiple of 4 of them; past
		// maxTarTrailer they, like anything else that starts no
		// stream, are what follows the file.
		var zeros int64
		for {
			b, err := x.br.Peek(len(xzMagic))
			if len(b) > 0 && b[0] == 0 && zeros < maxTarTrailer {
				z := len(b) - len(bytes.TrimLeft(b, "\x00"))
				x.br.Discard(z)
				x.pos += int64(z)
				zeros += int64(z)
				continue
			}
			if !bytes.Equal(b, xzMagic) {
				if err != nil && err != io.EOF {
					return err
				}
				return io.EOF
			}
			if zeros%4 != 0 {
				return fmt.Errorf("xz: the stream at byte %d follows %d bytes of padding, not a multiple of 4", x.pos, zeros)
			}
			break
		}
	}
	at := x.pos
	h, err := x.read(12)
	if err != nil {
		return err
	}
	if !bytes.Equal(h[:6], xzMagic) {
		return fmt.Errorf("xz: no stream header at byte %d", at)
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:]) {
		return fmt.Errorf("xz: the stream header at byte %d fails its checksum", at)
	}
	if h[6] != 0 || h[7]&0xf0 != 0 {
		return fmt.Errorf("xz: the stream header at byte %d has unknown flags", at)
	}
	switch h[7] {
	case 0:
		x.newCheck = nil
	case 1:
		x.newCheck = func() hash.Hash { return crc32.NewIEEE() }
	case 4:
		x.newCheck = func() hash.Hash { return crc64.New(crc64Table) }
	case 10:
		x.newCheck = sha256.New
	default:
		return fmt.Errorf("xz: the stream at byte %d has a check of type %d, which otree does not know", at, h[7])
	}
	x.flags = [2]byte{h[6], h[7]}
	x.inStream, x.records = true, x.records[:0]
	return nil
}

// startBlock reads a block header and starts the decoder on its data.
func (x *xzReader) startBlock() error {
	x.block = x.pos
	b, _ := x.peek(1)
	h, err := x.read((int(b[0]) + 1) * 4)
	if err != nil {
		return err
	}
	body := h[:len(h)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(h[len(body):]) {
		return fmt.Errorf("xz: the block header at byte %d fails its checksum", x.block)
	}
	bad := func(what string) error { return fmt.Errorf("xz: block header at byte %d: %s", x.block, what) }
	flags, off := body[1], 2
	if flags&0x3c != 0 {
		return bad("unknown flags")
	}
	x.packed, x.size = -1, -1
	for _, s := range []struct {
		present bool
		v       *int64
	}{{flags&0x40 != 0, &x.packed}, {flags&0x80 != 0, &x.size}} {
		if s.present {
			v, n, ok := xzVarint(body[off:])
			// An empty block may declare its size; not a zero
			// compressed size.
			if !ok || v == 0 && s.v == &x.packed || v >= 1<<62 {
				return bad("invalid size")
			}
			*s.v, off = int64(v), off+n
		}
	}
	var dict uint64
	for i := range int(flags&3) + 1 {
		id, n, ok := xzVarint(body[off:])
		if !ok {
			return bad("invalid filter")
		}
		off += n
		size, n, ok := xzVarint(body[off:])
		if !ok || size > uint64(len(body)-off-n) {
			return bad("invalid filter properties")
		}
		off += n
		props := body[off : off+int(size)]
		off += int(size)
		if id != 0x21 {
			name := xzFilters[id]
			if name == "" {
				name = fmt.Sprintf("unknown (%#x)", id)
			}
			return fmt.Errorf("xz: the block at byte %d uses the %s filter; otree reads only LZMA2 blocks without filters", x.block, name)
		}
		if i != int(flags&3) {
			return bad("LZMA2 is not the last filter")
		}
		if len(props) != 1 || props[0] > 40 {
			return bad("invalid LZMA2 properties")
		}
		if props[0] == 40 {
			dict = 1<<32 - 1
		} else {
			dict = uint64(2|props[0]&1) << (props[0]/2 + 11)
		}
	}
	if !allZero(body[off:]) {
		return bad("nonzero padding")
	}
	if dict > maxXZDict {
		return fmt.Errorf("xz: the block at byte %d declares a dictionary of %d MiB; otree reads at most %d MiB (xz -9 uses 64 MiB)",
			x.block, (dict+(1<<20)-1)>>20, maxXZDict>>20)
	}
	// The decoder allocates the dictionary whole for every block: no
	// larger than the block's data, where its header declares that size,
	// and no more in all than a budget that grows with the bytes read, so
	// that many small blocks each declaring a large dictionary cannot
	// cost seconds apiece.
	if x.size >= 0 {
		dict = min(dict, max(4096, uint64(x.size)))
	}
	if x.dicts += dict; x.dicts > xzDictBudget+4096*uint64(x.pos) {
		return fmt.Errorf("xz: the blocks up to byte %d declare %d MiB of dictionaries in all, more than otree allocates for a file of that size",
			x.block, x.dicts>>20)
	}
	x.hsize, x.out = int64(len(h)), 0
	x.check = nil
	if x.newCheck != nil {
		x.check = x.newCheck()
	}
	x.chunk = xzChunks{x: x}
	if err := x.chunk.next(); err != nil {
		return err
	}
	// NewReader2 reads the first chunk's header; an error there it
	// gives back on the first read.
	x.dec, err = lzma.Reader2Config{DictCap: int(dict)}.NewReader2(&x.chunk)
	return err
}

// index reads a stream's index, checks it against the blocks read, and
// reads the stream's footer.
func (x *xzReader) index() error {
	at := x.pos
	crc := crc32.NewIEEE()
	varint := func() (uint64, error) {
		if _, err := x.peek(1); err != nil {
			return 0, err
		}
		b, _ := x.br.Peek(9)
		v, n, ok := xzVarint(b)
		if !ok {
			if len(b) < 9 {
				return 0, x.truncated(x.pos + int64(len(b)))
			}
			return 0, fmt.Errorf("xz: invalid integer at byte %d", x.pos)
		}
		b, _ = x.read(n)
		crc.Write(b)
		return v, nil
	}
	b, _ := x.read(1)
	crc.Write(b)
	count, err := varint()
	if err != nil {
		return err
	}
	if count != uint64(len(x.records)) {
		return fmt.Errorf("xz: the index at byte %d lists %d blocks; the stream has %d", at, count, len(x.records))
	}
	for i, r := range x.records {
		var got xzRecord
		if got.unpadded, err = varint(); err != nil {
			return err
		}
		if got.size, err = varint(); err != nil {
			return err
		}
		if got != r {
			return fmt.Errorf("xz: the index at byte %d does not match block %d", at, i)
		}
	}
	pad, err := x.read(int((4 - (x.pos-at)%4) % 4))
	if err != nil {
		return err
	}
	crc.Write(pad)
	size := x.pos - at + 4
	sum, err := x.read(4)
	if err != nil {
		return err
	}
	if !allZero(pad) || crc.Sum32() != binary.LittleEndian.Uint32(sum) {
		return fmt.Errorf("xz: the index at byte %d fails its checksum", at)
	}
	foot := x.pos
	f, err := x.read(12)
	if err != nil {
		return err
	}
	switch {
	case !bytes.Equal(f[10:], []byte("YZ")):
		return fmt.Errorf("xz: no stream footer at byte %d", foot)
	case crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f):
		return fmt.Errorf("xz: the stream footer at byte %d fails its checksum", foot)
	case (int64(binary.LittleEndian.Uint32(f[4:]))+1)*4 != size || [2]byte(f[8:10]) != x.flags:
		return fmt.Errorf("xz: the stream footer at byte %d does not match its stream", foot)
	}
	x.inStream = false
	x.streams++
	return nil
}

// peek returns the n bytes at pos, which must all be there.
func (x *xzReader) peek(n int) ([]byte, error) {
	b, err := x.br.Peek(n)
	if len(b) < n {
		if err == nil || err == io.EOF {
			err = x.truncated(x.pos + int64(len(b)))
		}
		return nil, err
	}
	return b, nil
}

// read reads the n bytes at pos, which must all be there.
func (x *xzReader) read(n int) ([]byte, error) {
	b, err := x.peek(n)
	if err != nil {
		return nil, err
	}
	b = slices.Clone(b)
	x.br.Discard(n)
	x.pos += int64(n)
	return b, nil
}

func (x *xzReader) truncated(at int64) error {
	return fmt.Errorf("xz: truncated at byte %d: %w", at, io.ErrUnexpectedEOF)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
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
