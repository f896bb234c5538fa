package delta

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/otree/otree/internal/limitread"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

// SignatureFile is the file beside a delta's superblock holding ed25519
// signatures of the superblock's bytes (as sign.SignDetached encodes
// them). The superblock names the commit the delta yields and every
// part's size and BLAKE3, so a valid signature covers the whole delta.
const SignatureFile = "superblock.sig"

// fileMagic starts a single-file delta (GenerateOptions.File): the
// superblock, its signatures and the parts in one file.
const fileMagic = "OTDELTA\x01"

// maxSignatures bounds the signatures a reader accepts: thousands of keys.
const maxSignatures = 1 << 20

// Offline is a delta read from a path rather than fetched: a delta
// directory (in a repository's deltas/ or written by GenerateOptions.Dir),
// a superblock file with its parts beside it, or a single file written by
// GenerateOptions.File. Open it with Open and close it when done.
type Offline struct {
	// Path is the path it was opened at.
	Path string
	// Superblock is the decoded superblock.
	Superblock *Superblock
	// Raw is the superblock's bytes, which the signatures sign.
	Raw []byte
	// Signatures is the content of SignatureFile (or the single file's
	// signature section); nil for an unsigned delta.
	Signatures []byte

	dir     string   // directory form: where the parts are
	f       *os.File // single-file form: the open file
	offsets []int64  // single-file form: where each part starts
}

// Open reads the superblock and signatures of the delta at path, which is
// a delta directory, a superblock file, or a single-file delta. Parts are
// read later, by ApplyOffline; a single file's length must already match
// its parts' sizes exactly.
func Open(path string) (*Offline, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	o := &Offline{Path: path}
	sbPath := path
	if fi.IsDir() {
		sbPath = filepath.Join(path, SuperblockFile)
	}
	f, err := os.Open(sbPath)
	if err != nil {
		return nil, err
	}
	magic := make([]byte, len(fileMagic))
	if _, err := io.ReadFull(f, magic); err == nil && string(magic) == fileMagic {
		o.f = f
		if err := o.readSingle(fi.Size()); err != nil {
			f.Close()
			return nil, fmt.Errorf("delta file %s: %w", path, err)
		}
		return o, nil
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if o.Raw, err = limitread.ReadAll(f, MaxSuperblock); err != nil {
		return nil, fmt.Errorf("reading %s: %w", sbPath, err)
	}
	if o.Superblock, err = DecodeSuperblock(o.Raw); err != nil {
		return nil, fmt.Errorf("%s: %w", sbPath, err)
	}
	o.dir = filepath.Dir(sbPath)
	sigPath := filepath.Join(o.dir, SignatureFile)
	if sf, err := os.Open(sigPath); err == nil {
		o.Signatures, err = limitread.ReadAll(sf, maxSignatures)
		sf.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", sigPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return o, nil
}

// readSingle reads a single file's sections after the magic:
//
//	uvarint n · n bytes superblock · uvarint m · m bytes signatures (m may be 0) ·
//	each part's bytes in order, and nothing after the last
func (o *Offline) readSingle(size int64) error {
	br := bufio.NewReader(o.f)
	pos := int64(len(fileMagic))
	section := func(limit uint64, what string) ([]byte, error) {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("%s length: %w", what, eofIsTruncation(err))
		}
		if n > limit {
			return nil, fmt.Errorf("%s of %d bytes is over the limit of %d", what, n, limit)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, fmt.Errorf("%s: %w", what, eofIsTruncation(err))
		}
		pos += int64(uvarintLen(n)) + int64(n)
		return b, nil
	}
	var err error
	if o.Raw, err = section(MaxSuperblock, "superblock"); err != nil {
		return err
	}
	if o.Superblock, err = DecodeSuperblock(o.Raw); err != nil {
		return err
	}
	if o.Signatures, err = section(maxSignatures, "signatures"); err != nil {
		return err
	}
	if len(o.Signatures) == 0 {
		o.Signatures = nil
	}
	for i, p := range o.Superblock.Parts {
		o.offsets = append(o.offsets, pos)
		if pos > size || p.Size > uint64(size-pos) {
			return fmt.Errorf("%d bytes long, ending before part %d does", size, i)
		}
		pos += int64(p.Size)
	}
	if pos != size {
		return fmt.Errorf("%d bytes long, its sections and parts make %d", size, pos)
	}
	return nil
}

func eofIsTruncation(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// Close releases the file a single-file delta holds open.
func (o *Offline) Close() error {
	if o.f != nil {
		return o.f.Close()
	}
	return nil
}

// Signed reports how many signatures the delta carries; an error means a
// signature section that does not decode.
func (o *Offline) Signed() (int, error) {
	if o.Signatures == nil {
		return 0, nil
	}
	m, err := repo.DecodeCommitMeta(o.Signatures)
	if err != nil {
		return 0, err
	}
	sigs, err := sign.Signatures(m)
	return len(sigs), err
}

// Verify checks that the delta carries a valid signature of its
// superblock by one of the trusted keys and returns that key. Errors name
// the delta's path and match sign.ErrNoSignature, sign.ErrBadSignature or
// sign.ErrNoTrustedKeys.
func (o *Offline) Verify(trusted []ed25519.PublicKey) (ed25519.PublicKey, error) {
	if len(trusted) == 0 {
		return nil, fmt.Errorf("delta %s: %w", o.Path, sign.ErrNoTrustedKeys)
	}
	if o.Signatures == nil {
		return nil, fmt.Errorf("delta %s: %w (no %s)", o.Path, sign.ErrNoSignature, SignatureFile)
	}
	pub, err := sign.VerifyDetached(o.Raw, o.Signatures, trusted, SignatureFile)
	if err != nil {
		return nil, fmt.Errorf("delta %s: %w", o.Path, err)
	}
	return pub, nil
}

// fetch is the Fetch of an offline delta: a part file of the directory,
// or a part's section of the single file.
func (o *Offline) fetch(_ context.Context, file string, fn func(io.Reader) error) error {
	if o.f == nil {
		f, err := os.Open(filepath.Join(o.dir, file))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := fn(f); err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
		return nil
	}
	i, err := strconv.Atoi(file)
	if err != nil || i < 0 || i >= len(o.offsets) {
		return fmt.Errorf("%s: no part %q", o.Path, file)
	}
	sr := io.NewSectionReader(o.f, o.offsets[i], int64(o.Superblock.Parts[i].Size))
	if err := fn(sr); err != nil {
		return fmt.Errorf("%s part %d: %w", o.Path, i, err)
	}
	return nil
}
