package commit_test

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"flag"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ulikunitz/xz/lzma"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/limitread/limitreadtest"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

var updateCompressed = flag.Bool("update", false, "rewrite the compressed tars under testdata/compressed (needs gzip, zstd, xz and bzip2)")

const compressedDir = "testdata/compressed"

// compressedFixtures are the files under testdata/compressed, each
// fixtureTar as a tool compressed it, and the shell command (reading the
// tar on standard input, its halves in files a and b) that made it.
var compressedFixtures = []struct{ name, cmd string }{
	{"tree.tar.gz", "gzip -9 -n"},
	{"tree.tar.zst", "zstd -q -19"},
	{"tree.tar.xz", "xz"},
	{"tree.tar.bz2", "bzip2 -9"},
	// Several blocks, each with its sizes in its header; stored chunks
	// for the random bytes.
	{"blocks.tar.xz", "xz -T2 --block-size=2048"},
	// Three streams with each kind of check, stream padding between.
	{"streams.tar.xz", "head -c 6000 >a; cat >b; xz --check=crc32 <a; head -c 8 /dev/zero; head -c 3000 b | xz --check=sha256; tail -c +3001 b | xz --check=none"},
	// Two streams, as pbzip2 writes them, and the zeros a block device
	// pads with.
	{"streams.tar.bz2", "head -c 6000 >a; cat >b; bzip2 <a; bzip2 <b; head -c 512 /dev/zero"},
}

// fixtureTar is an archive with a hardlink, a PAX xattr, a symlink and
// (for xz's stored chunks) bytes that do not compress.
func fixtureTar(t testing.TB) []byte {
	t.Helper()
	noise := make([]byte, 3000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	text := strings.Repeat("all work and no play makes a dull tree\n", 200)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range []struct {
		h    tar.Header
		data string
	}{
		{tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o750, Gid: 42}, ""},
		{tar.Header{Name: "etc/conf", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 7, Gid: 42,
			PAXRecords: map[string]string{"SCHILY.xattr.user.tag": "v"}}, "conf\n"},
		{tar.Header{Name: "bin/sh", Typeflag: tar.TypeReg, Mode: 0o755}, "#!ELF"},
		{tar.Header{Name: "bin/ash", Typeflag: tar.TypeLink, Linkname: "bin/sh"}, ""},
		{tar.Header{Name: "bin/link", Typeflag: tar.TypeSymlink, Linkname: "sh"}, ""},
		{tar.Header{Name: "usr/text", Typeflag: tar.TypeReg, Mode: 0o644}, text},
		{tar.Header{Name: "usr/noise", Typeflag: tar.TypeReg, Mode: 0o644}, string(noise)},
	} {
		h := e.h
		h.Size = int64(len(e.data))
		h.ModTime = time.Unix(1700000000, 0)
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeCompressedFixtures makes the files under testdata/compressed with
// the tools (go test -run TestCompressedTars -update).
func writeCompressedFixtures(t *testing.T, plain []byte) {
	tmp := t.TempDir()
	for _, f := range compressedFixtures {
		cmd := exec.Command("sh", "-ec", f.cmd)
		cmd.Dir, cmd.Stdin, cmd.Stderr = tmp, bytes.NewReader(plain), os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %s: %v", f.name, f.cmd, err)
		}
		if err := os.WriteFile(filepath.Join(compressedDir, f.name), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(compressedDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// commitTarBytes commits data, written to a file named name, as the only
// source of an orphan commit with a fixed timestamp: the same tree gives
// the same commit id.
func commitTarBytes(t *testing.T, r *repo.Repo, name string, data []byte) (string, repo.ID, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := commit.Commit(ctx, r, commit.Options{Orphan: true, NoParent: true, Subject: "tar", NoSync: true,
		Timestamp: time.Unix(1700000000, 0), Sources: []commit.Source{{Kind: commit.SourceTar, Path: p}}})
	if err != nil {
		return p, repo.ID{}, err
	}
	return p, res.Commit, nil
}

// A tar compressed with gzip, zstd, xz or bzip2, in one stream or several,
// in one block or several, commits to the very commit the plain tar does.
func TestCompressedTars(t *testing.T) {
	plain := fixtureTar(t)
	if *updateCompressed {
		writeCompressedFixtures(t, plain)
	}
	r := newRepo(t, repo.ModeArchive)
	_, want, err := commitTarBytes(t, r, "tree.tar", plain)
	if err != nil {
		t.Fatal(err)
	}
	tree := readCommit(t, r, want, true)
	for p, e := range map[string]testtree.Entry{
		"etc/conf": {Mode: 0o640, Content: "conf\n", UID: 7, GID: 42, Xattrs: map[string]string{"user.tag": "v"}},
		"bin/ash":  {Mode: 0o755, Content: "#!ELF"},
		"bin/link": testtree.Symlink("sh"),
	} {
		if d := cmp.Diff(e, tree[p]); d != "" {
			t.Errorf("the plain tar's %s (-want +got):\n%s", p, d)
		}
	}
	for _, f := range compressedFixtures {
		_, got, err := commitTarBytes(t, r, f.name, readFixture(t, f.name))
		switch {
		case err != nil:
			t.Errorf("%s: %v", f.name, err)
		case got != want:
			t.Errorf("%s commits to %s, the plain tar to %s", f.name, got, want)
		}
	}
}

// A compressed tar cut anywhere is refused, naming the file: before the
// end of the archive and after it, where only the stream's index, footer
// or checksum is missing.
func TestTruncatedCompressedTarRefused(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	for _, name := range []string{"tree.tar.xz", "tree.tar.bz2", "blocks.tar.xz", "streams.tar.xz"} {
		data := readFixture(t, name)
		if name == "streams.tar.xz" {
			// Cut in its last stream: the padding between streams
			// may end a file.
			data = data[:len(data)-1]
		}
		// At every byte of the last 64 (the last block's end, its
		// check, the index, the footer), and at two dozen before.
		for cut := len(data) - 1; cut > 0; cut-- {
			if end := len(data) - 64; cut < end && cut%(end/24) != 0 {
				continue
			}
			p, _, err := commitTarBytes(t, r, name, data[:cut])
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("%s cut at %d of %d: got %v, want an error naming it", name, cut, len(data), err)
			}
		}
	}
}

// A tar in a compression otree recognises but cannot read is refused with
// an error naming the file and the compression; a plain tar whose first
// name starts like one of them is read.
func TestUnreadableCompressionNamed(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	junk := strings.Repeat("\x5a\xa5", 40)
	for _, c := range []struct{ name, data, want string }{
		{"t.tar.lz4", "\x04\x22\x4d\x18\x64\x40\xa7" + junk, "lz4-compressed"},
		{"t.tar.lz4", "\x02\x21\x4c\x18" + junk, "lz4-compressed"},
		{"t.tar.lz", "LZIP\x01\x0c" + junk, "lzip-compressed"},
		{"t.tar.lzma", "\x5d\x00\x00\x80\x00\xff\xff\xff\xff\xff\xff\xff\xff" + junk, "lzma-compressed"},
		{"t.tar.lzma", "\x5d\x00\x00\x00\x03\x00\x28\x00\x00\x00\x00\x00\x00" + junk, "lzma-compressed"}, // 48 MiB, size known
		{"t.tar.lzo", "\x89LZO\x00\r\n\x1a\n" + junk, "lzop-compressed"},
		{"t.tar.Z", "\x1f\x9d\x90" + junk, "Unix compress (.Z)"},
	} {
		p, _, err := commitTarBytes(t, r, c.name, []byte(c.data))
		if err == nil || !strings.Contains(err.Error(), "tar "+p+": ") || !strings.Contains(err.Error(), c.want) ||
			!strings.Contains(err.Error(), "decompress it first") {
			t.Errorf("%q: got %v, want an error naming the file and %q", c.data[:6], err, c.want)
		}
	}
	for _, first := range []string{"]", "LZIP", "BZh9", "\x04\x22\x4d\x18"} {
		p := writeTar(t, []*tar.Header{{Name: first, Typeflag: tar.TypeReg, Mode: 0o644}}, map[string]string{first: "x"})
		if _, err := commitTar(r, "plain", p); err != nil {
			t.Errorf("a tar whose first entry is %q: %v", first, err)
		}
	}
}

// xzBlockHeaders returns where data, an xz file, has block headers: a
// size byte, then as many bytes as it says, ending in their CRC32.
func xzBlockHeaders(data []byte) []int {
	var at []int
	for p := 12; p < len(data); p++ {
		n := (int(data[p]) + 1) * 4
		if data[p] == 0 || p+n > len(data) || data[p+1]&0x3c != 0 {
			continue
		}
		if crc32.ChecksumIEEE(data[p:p+n-4]) == binary.LittleEndian.Uint32(data[p+n-4:]) {
			at = append(at, p)
		}
	}
	return at
}

// setXZDict sets the LZMA2 dictionary of the xz block whose header starts
// at p to code (2^(code/2+12) bytes for an even code), keeping the header's
// CRC32 right.
func setXZDict(t *testing.T, data []byte, p int, code byte) []byte {
	t.Helper()
	data = slices.Clone(data)
	n := (int(data[p]) + 1) * 4
	i := bytes.Index(data[p:p+n], []byte{0x21, 0x01})
	if i < 0 {
		t.Fatalf("no LZMA2 filter in the block header at %d", p)
	}
	data[p+i+2] = code
	binary.LittleEndian.PutUint32(data[p+n-4:], crc32.ChecksumIEEE(data[p:p+n-4]))
	return data
}

// An xz block whose header declares a dictionary above 256 MiB is refused
// before the decoder allocates it: a file of a few hundred bytes could
// otherwise take gigabytes. The first block is refused before any entry is
// read; a later one, in a later stream too, when the stream comes to it.
func TestXZDictionaryBounded(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	one := readFixture(t, "tree.tar.xz")
	blocks := readFixture(t, "blocks.tar.xz")
	streams := readFixture(t, "streams.tar.xz")
	bh, sh := xzBlockHeaders(blocks), xzBlockHeaders(streams)
	if len(bh) < 4 || len(sh) != 3 {
		t.Fatalf("found %d block headers in blocks.tar.xz, %d in streams.tar.xz; want at least 4 and 3", len(bh), len(sh))
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"3 GiB, first block", setXZDict(t, one, 12, 39)},
		{"4 GiB, first block", setXZDict(t, one, 12, 40)},
		{"384 MiB, first block", setXZDict(t, one, 12, 33)},
		{"3 GiB, fourth block", setXZDict(t, blocks, bh[3], 39)},
		{"3 GiB, third stream", setXZDict(t, streams, sh[2], 39)},
	} {
		p, _, err := commitTarBytes(t, r, "big.tar.xz", c.data)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "dictionary") {
			t.Errorf("%s: got %v, want an error naming the file and the dictionary", c.name, err)
		}
	}
	// The same change to a dictionary that still holds the whole tar
	// (64 KiB) is read: what is refused above is the size.
	if _, _, err := commitTarBytes(t, r, "small.tar.xz", setXZDict(t, one, 12, 8)); err != nil {
		t.Errorf("a 64 KiB dictionary: %v", err)
	}
}

// A compressed archive whose stream fails its checksum is refused, though
// it decompresses into a well-formed archive: xz's check of a block,
// bzip2's of the stream.
func TestTarCompressedChecksumXZBzip2(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	xzData := slices.Clone(readFixture(t, "tree.tar.xz"))
	// The footer's backward size gives the index's; the block's check
	// (CRC64) ends where the index starts.
	index := (int(binary.LittleEndian.Uint32(xzData[len(xzData)-8:])) + 1) * 4
	xzData[len(xzData)-12-index-1] ^= 1
	bz := slices.Clone(readFixture(t, "tree.tar.bz2"))
	// The stream's CRC, after the 48-bit end magic, ends in the last byte
	// but its padding bits.
	bz[len(bz)-2] ^= 0x10
	for name, data := range map[string][]byte{"bad.tar.xz": xzData, "bad.tar.bz2": bz} {
		p, _, err := commitTarBytes(t, r, name, data)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("%s: got %v, want a checksum error naming it", name, err)
		}
	}
}

// xzBlockHeader is the header of an xz block of LZMA2 alone, of the
// dictionary code dict, with no sizes.
func xzBlockHeader(dict byte) []byte {
	h := []byte{2, 0, 0x21, 1, dict, 0, 0, 0}
	return binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(h))
}

// xzOneBlock wraps data, LZMA2 chunks decompressing to size bytes, in an
// xz stream of one block with the header h and no check.
func xzOneBlock(h, data []byte, size int) []byte {
	return xzBlocks(h, data, size, 1)
}

// xzBlocks is xzOneBlock with n such blocks.
func xzBlocks(h, data []byte, size, n int) []byte {
	xv := func(b []byte, v uint64) []byte {
		for ; v >= 0x80; v >>= 7 {
			b = append(b, byte(v)|0x80)
		}
		return append(b, byte(v))
	}
	b := append(slices.Clone(xzMagic), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte{0, 0}))
	index := xv([]byte{0}, uint64(n))
	for range n {
		b = append(append(b, h...), data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		index = xv(xv(index, uint64(len(h)+len(data))), uint64(size))
	}
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	index = binary.LittleEndian.AppendUint32(index, crc32.ChecksumIEEE(index))
	b = append(b, index...)
	foot := binary.LittleEndian.AppendUint32(nil, uint32(len(index)/4-1))
	foot = append(foot, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(foot))
	return append(append(b, foot...), 'Y', 'Z')
}

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

// xzChunkPastData returns the fixture tar as xz of one LZMA chunk, well
// formed, and the same with bytes hidden in the chunk: its header
// declares more compressed bytes than its data takes, and there follow
// an end marker, padding and the header of a block of a 384 MiB
// dictionary, which a decoder ending the chunk where its data ends reads
// as the next block.
func xzChunkPastData(t testing.TB, plain []byte) (good, bad []byte) {
	t.Helper()
	d := lzma2Data(t, plain)
	// One LZMA chunk resetting everything, then the end marker.
	packed := int(binary.BigEndian.Uint16(d[3:5])) + 1
	if d[0] < 0xe0 || len(d) != 6+packed+1 || d[len(d)-1] != 0 {
		t.Fatalf("the LZMA2 data of the fixture tar is not one LZMA chunk: % x...", d[:6])
	}
	hidden := []byte{0}
	for (6+packed+len(hidden))%4 != 0 {
		hidden = append(hidden, 0)
	}
	hidden = append(hidden, xzBlockHeader(33)...)
	bad = slices.Concat(d[:3], binary.BigEndian.AppendUint16(nil, uint16(packed+len(hidden)-1)), d[5:6+packed], hidden, d[6+packed:])
	return xzOneBlock(xzBlockHeader(8), d, len(plain)), xzOneBlock(xzBlockHeader(8), bad, len(plain))
}

// lzma2Data compresses plain as LZMA2 chunks with a 64 KiB dictionary.
func lzma2Data(t testing.TB, plain []byte) []byte {
	t.Helper()
	var data bytes.Buffer
	w, err := lzma.Writer2Config{DictCap: 64 << 10}.NewWriter2(&data)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return data.Bytes()
}

// An xz block whose LZMA2 chunk declares more compressed bytes than its
// data takes is refused, naming the file and the chunk, without
// allocating the dictionary the bytes past its data declare.
func TestXZChunkPastItsDataRefused(t *testing.T) {
	plain := fixtureTar(t)
	good, bad := xzChunkPastData(t, plain)
	r := newRepo(t, repo.ModeArchive)
	if _, _, err := commitTarBytes(t, r, "tree.tar.xz", good); err != nil {
		t.Fatalf("the well-formed file: %v", err)
	}
	var p string
	var err error
	alloc := limitreadtest.Allocated(func() {
		p, _, err = commitTarBytes(t, r, "bypass.tar.xz", bad)
	})
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "LZMA2 chunk at byte 24 ends") {
		t.Errorf("got %v, want an error naming the file and the chunk at byte 24", err)
	}
	if alloc > 64<<20 {
		t.Errorf("allocated %d MiB refusing it", alloc>>20)
	}
}

// An xz block with a filter before LZMA2 (a BCJ filter, delta) is refused,
// naming the file and the filter.
func TestXZFilterNamed(t *testing.T) {
	plain := fixtureTar(t)
	d := lzma2Data(t, plain)
	r := newRepo(t, repo.ModeArchive)
	for _, c := range []struct {
		id   byte
		want string
	}{{0x04, "x86 filter"}, {0x03, "delta filter"}, {0x0a, "ARM64 filter"}, {0x55, "unknown (0x55) filter"}} {
		h := []byte{2, 0x01, c.id, 0, 0x21, 1, 8, 0}
		h = binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(h))
		p, _, err := commitTarBytes(t, r, "filter.tar.xz", xzOneBlock(h, d, len(plain)))
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("filter %#x: got %v, want an error naming the file and %q", c.id, err, c.want)
		}
	}
}

// LZMA2 allows lc+lp ≤ 4; a chunk with more, which the decoder would
// take at a cost growing as 0x300<<(lc+lp) per chunk, is refused, naming
// the file and the chunk.
func TestXZChunkPropertiesBounded(t *testing.T) {
	plain := fixtureTar(t)
	d := lzma2Data(t, plain)
	if d[0] < 0xc0 {
		t.Fatalf("the first chunk sets no properties: % x", d[:6])
	}
	d[5] = (0*5+4)*9 + 8 // pb 0, lp 4, lc 8
	r := newRepo(t, repo.ModeArchive)
	p, _, err := commitTarBytes(t, r, "props.tar.xz", xzOneBlock(xzBlockHeader(8), d, len(plain)))
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "lc+lp over 4") {
		t.Errorf("got %v, want an error naming the file and lc+lp", err)
	}
}

// Each xz block's dictionary is allocated whole, so a file of many tiny
// blocks each declaring 256 MiB is bounded twice: a block that declares
// its size gets a dictionary no larger than that, and the dictionaries
// of all the blocks may not outgrow a budget that grows with the file.
func TestXZBlockDictionariesBounded(t *testing.T) {
	// One stored byte, the dictionary reset, then the end marker.
	data := []byte{1, 0, 0, 'x', 0}
	r := newRepo(t, repo.ModeArchive)
	// Blocks declaring their size (1): each dictionary is 4 KiB, and the
	// 600 bytes reach the tar reader, which finds them no archive.
	sized := []byte{2, 0x80, 1, 0x21, 1, 32, 0, 0}
	sized = binary.LittleEndian.AppendUint32(sized, crc32.ChecksumIEEE(sized))
	var err error
	alloc := limitreadtest.Allocated(func() {
		_, _, err = commitTarBytes(t, r, "sized.tar.xz", xzBlocks(sized, data, 1, 600))
	})
	if err == nil || strings.Contains(err.Error(), "dictionar") {
		t.Errorf("sized blocks: got %v, want the tar reader's error", err)
	}
	if alloc > 64<<20 {
		t.Errorf("sized blocks: allocated %d MiB for 600 bytes", alloc>>20)
	}
	if testing.Short() {
		return // the rest allocates 1 GiB
	}
	// Blocks without sizes: four get their 256 MiB, the fifth is over
	// the budget.
	var p string
	alloc = limitreadtest.Allocated(func() {
		p, _, err = commitTarBytes(t, r, "unsized.tar.xz", xzBlocks(xzBlockHeader(32), data, 1, 600))
	})
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "MiB of dictionaries") {
		t.Errorf("unsized blocks: got %v, want an error naming the file and the dictionaries", err)
	}
	if alloc > 1200<<20 {
		t.Errorf("unsized blocks: allocated %d MiB", alloc>>20)
	}
}

// Zeros between xz streams come in fours, as the format says; an empty
// block may declare its size; and a file followed by more zeros than
// stream padding may be ends, as one followed by anything else does.
func TestXZStreamPadding(t *testing.T) {
	plain := fixtureTar(t)
	d := lzma2Data(t, plain)
	one := xzOneBlock(xzBlockHeader(8), d, len(plain))
	empty := xzBlocks(xzBlockHeader(8), []byte{0}, 0, 0)
	r := newRepo(t, repo.ModeArchive)
	if _, _, err := commitTarBytes(t, r, "four.tar.xz", slices.Concat(one, make([]byte, 4), empty)); err != nil {
		t.Errorf("four zeros between streams: %v", err)
	}
	p, _, err := commitTarBytes(t, r, "two.tar.xz", slices.Concat(one, make([]byte, 2), empty))
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "not a multiple of 4") {
		t.Errorf("two zeros between streams: got %v, want an error naming the file and the padding", err)
	}
	// A stream of one empty block that declares its size, 0.
	zero := []byte{2, 0x80, 0, 0x21, 1, 8, 0, 0}
	zero = binary.LittleEndian.AppendUint32(zero, crc32.ChecksumIEEE(zero))
	if _, _, err := commitTarBytes(t, r, "emptyblock.tar.xz", slices.Concat(one, xzOneBlock(zero, []byte{0}, 0))); err != nil {
		t.Errorf("a stream of an empty block declaring its size: %v", err)
	}
	if _, _, err := commitTarBytes(t, r, "zeros.tar.xz", slices.Concat(one, make([]byte, 3<<20))); err != nil {
		t.Errorf("3 MiB of zeros after the stream: %v", err)
	}
}

// An LZMA2 chunk that goes on with the properties of the one before
// (control 0x80 to 0xbf) has a 5-byte header: an xz file of more than one
// chunk (here 2.6 MiB of text, written by xz 5.4) commits whole. The
// fixture is not made from fixtureTar, whose tar fits in one chunk.
func TestXZContinuedChunks(t *testing.T) {
	data := readFixture(t, "chunks.tar.xz")
	r := newRepo(t, repo.ModeArchive)
	_, id, err := commitTarBytes(t, r, "chunks.tar.xz", data)
	if err != nil {
		t.Fatal(err)
	}
	want := testtree.Tree{"text": testtree.File(strings.Repeat("all work and no play makes a dull tree\n", 70000), 0o644)}
	if d := cmp.Diff(want, readCommit(t, r, id, false)); d != "" {
		t.Errorf("(-want +got):\n%.2000s", d)
	}
}
