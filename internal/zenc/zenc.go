// Package zenc holds the zstd settings of archive objects, so that the
// repository and the benchmark floor (bench/floor) compress alike.
package zenc

import "github.com/klauspost/compress/zstd"

// Level is the archive level: the fastest whose objects are no larger on
// disk than OSTree's archive-z2 (the next level down adds 1.1 MiB on
// /usr/local/go, where otree's margin is 0.7 MiB).
const Level = zstd.SpeedBetterCompression

// WholeWindow is the window for content compressed whole, which is held
// in memory and at most 1 MiB: a window as large as the content loses
// nothing, and the encoder needs half the memory of the default's.
const WholeWindow = 1 << 20

// StreamWindow is the window for content compressed streaming (larger than
// 1 MiB). Against the default 8 MiB, on the 50 large files of /usr/bin and
// /usr/lib/jvm, it costs 0.2% in size and saves 9% of the CPU time and 38%
// of the encoder's memory; smaller windows cost more size than they save.
const StreamWindow = 4 << 20

// Whole returns an encoder for EncodeAll that runs up to concurrency
// encodings at once.
func Whole(level zstd.EncoderLevel, concurrency int) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(concurrency),
		zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false), zstd.WithWindowSize(WholeWindow))
}

// Block is the allocation unit an object is taken to occupy on disk: 4
// KiB, ext4's, XFS's and Btrfs's usual block.
const Block = 4096

// FastMax is the largest content Objects tries at the fastest level first.
// On /usr/local/go, content up to 8 KiB (12,200 of its 14,600 distinct
// files) takes one block at every level, and the better level costs twice
// the fastest's CPU time for it; beyond 16 KiB few fit in one block, and
// trying costs more than it saves.
const FastMax = 16 << 10

// Objects compresses content held whole, as an object's payload: small
// content at the fastest level when that fits in one Block, else at its
// level.
type Objects struct {
	fast, slow *zstd.Encoder
}

// NewObjects returns an Objects whose encoders each run up to concurrency
// encodings at once, compressing at level what the fastest level does not
// fit in one block.
func NewObjects(level zstd.EncoderLevel, concurrency int) (*Objects, error) {
	fast, err := Whole(zstd.SpeedFastest, concurrency)
	if err != nil {
		return nil, err
	}
	slow, err := Whole(level, concurrency)
	if err != nil {
		return nil, err
	}
	return &Objects{fast: fast, slow: slow}, nil
}

// EncodeAll appends src compressed to dst and returns it. used is how many
// bytes of the object precede dst's first byte (its header): content of
// up to FastMax bytes compressed at the fastest level is kept when the
// object then fits in one Block, which no level could make smaller on
// disk.
func (o *Objects) EncodeAll(src, dst []byte, used int) []byte {
	if len(src) <= FastMax {
		z := o.fast.EncodeAll(src, dst)
		if used+len(z) <= Block {
			return z
		}
		dst = z[:len(dst)]
	}
	return o.slow.EncodeAll(src, dst)
}

// Stream returns an encoder for one stream at a time (Reset, Write or
// ReadFrom, Close).
func Stream(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithWindowSize(StreamWindow))
}
