package delta_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/sign"
	"golang.org/x/sys/unix"
)

func key(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func open(t *testing.T, p string) *delta.Offline {
	t.Helper()
	o, err := delta.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// A signed delta verifies by its key only, and a superblock swapped for
// another delta's, or a damaged signature, fails; ApplyOffline with keys
// refuses every such delta before storing anything.
func TestSignedDelta(t *testing.T) {
	pub, priv := key(t)
	other, otherPriv := key(t)
	src, dst, _, b, sb := setup(t, delta.GenerateOptions{NoSync: true, SignKeys: []ed25519.PrivateKey{priv, otherPriv}})
	dir := delta.Path(src, sb.Name)
	o := open(t, dir)
	if n, err := o.Signed(); n != 2 || err != nil {
		t.Errorf("Signed() = %d, %v; want 2 signatures", n, err)
	}
	if got, err := o.Verify([]ed25519.PublicKey{pub}); err != nil || !got.Equal(pub) {
		t.Errorf("Verify(key) = %v, %v", got, err)
	}
	stranger, _ := key(t)
	if _, err := o.Verify([]ed25519.PublicKey{stranger}); !errors.Is(err, sign.ErrBadSignature) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Verify(stranger) = %v, want ErrBadSignature naming %s", err, dir)
	}
	if _, err := o.Verify(nil); !errors.Is(err, sign.ErrNoTrustedKeys) {
		t.Errorf("Verify(nil) = %v", err)
	}

	// An unsigned delta from scratch, in the same repository.
	unsigned, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	udir := delta.Path(src, unsigned.Name)
	if _, err := open(t, udir).Verify([]ed25519.PublicKey{pub}); !errors.Is(err, sign.ErrNoSignature) {
		t.Errorf("Verify(unsigned) = %v, want ErrNoSignature", err)
	}
	_, err = delta.ApplyOffline(ctx, dst, udir, delta.ApplyOfflineOptions{NoSync: true, Trusted: []ed25519.PublicKey{pub}})
	if !errors.Is(err, sign.ErrNoSignature) {
		t.Errorf("ApplyOffline(unsigned, keys) = %v", err)
	}

	// The signature of one delta does not cover another's superblock.
	swapped := filepath.Join(t.TempDir(), "swapped")
	copyDir(t, udir, swapped)
	copyFile(t, filepath.Join(dir, delta.SignatureFile), filepath.Join(swapped, delta.SignatureFile))
	if _, err := open(t, swapped).Verify([]ed25519.PublicKey{pub, other}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("Verify(swapped superblock) = %v, want ErrBadSignature", err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged")
	copyDir(t, dir, damaged)
	sig, _ := os.ReadFile(filepath.Join(damaged, delta.SignatureFile))
	sig[len(sig)-1] ^= 1
	os.WriteFile(filepath.Join(damaged, delta.SignatureFile), sig, 0o644)
	// The flipped byte is in the second signature, other's.
	for p, keys := range map[string][]ed25519.PublicKey{swapped: {pub, other}, damaged: {other}} {
		_, err := delta.ApplyOffline(ctx, dst, p, delta.ApplyOfflineOptions{NoSync: true, Trusted: keys})
		if !errors.Is(err, sign.ErrBadSignature) {
			t.Errorf("ApplyOffline(%s) = %v, want ErrBadSignature", filepath.Base(p), err)
		}
	}
	if _, err := open(t, damaged).Verify([]ed25519.PublicKey{pub}); err != nil {
		t.Errorf("the undamaged first signature: %v", err)
	}
	if has, _ := dst.HasObject(repo.KindCommit, b); has {
		t.Fatal("a delta that failed verification stored its commit")
	}

	// The good one applies with its key; without keys, any delta applies.
	if _, err := delta.ApplyOffline(ctx, dst, dir, delta.ApplyOfflineOptions{NoSync: true, Trusted: []ed25519.PublicKey{other}}); err != nil {
		t.Fatal(err)
	}
	if has, _ := dst.HasObject(repo.KindCommit, b); !has {
		t.Fatal("commit not stored")
	}
	appliedClean(t, src, dst, b)
}

// A single-file delta carries superblock, signatures and parts; it
// applies like the directory, and a truncated, extended or damaged file is
// refused naming it, storing nothing.
func TestSingleFileDelta(t *testing.T) {
	pub, priv := key(t)
	src, dst := newRepo(t, repo.ModeArchive), newRepo(t, repo.ModeBareUser)
	b := commitTree(t, src, "main", treeB, false)
	file := filepath.Join(t.TempDir(), "update.delta")
	// From scratch, in parts of 64 KiB: several parts at offsets.
	fsb, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, MaxPartSize: 64 << 10, File: file, SignKeys: []ed25519.PrivateKey{priv}})
	if err != nil {
		t.Fatal(err)
	}
	if len(fsb.Parts) < 2 {
		t.Fatalf("want several parts, got %d", len(fsb.Parts))
	}
	if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Fatalf("single file: %v, %v", fi, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) != 1 {
		t.Errorf("generation left %d entries beside the file", len(ents))
	}
	o := open(t, file)
	if diff := cmp.Diff(fsb, o.Superblock); diff != "" {
		t.Errorf("superblock read back differs:\n%s", diff)
	}
	if _, err := o.Verify([]ed25519.PublicKey{pub}); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, File: file}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("generate over an existing file: %v", err)
	}
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, File: file + "2", Dir: file + "3"}); err == nil {
		t.Error("generate with both File and Dir succeeded")
	}

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)-10] ^= 0x40 // inside the last part
	bad := map[string]struct {
		data []byte
		want string
	}{
		"truncated": {data[:len(data)-1], "bytes long"},
		"extended":  {append(append([]byte(nil), data...), 0), "bytes long"},
		"header":    {data[:12], "superblock"},
		"damaged":   {flipped, "part " + strconv.Itoa(len(fsb.Parts)-1)},
	}
	for name, c := range bad {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, c.data, 0o644)
		_, err := delta.ApplyOffline(ctx, dst, p, delta.ApplyOfflineOptions{NoSync: true})
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ApplyOffline = %v, want an error naming %s and %q", name, err, p, c.want)
		}
	}
	if has, _ := dst.HasObject(repo.KindCommit, b); has {
		t.Fatal("a refused delta stored its commit")
	}
	if _, err := delta.ApplyOffline(ctx, dst, file, delta.ApplyOfflineOptions{NoSync: true, Trusted: []ed25519.PublicKey{pub}}); err != nil {
		t.Fatal(err)
	}
	appliedClean(t, src, dst, b)
}

// FuzzOpenFile: any bytes after the single-file magic are read without
// panicking, and what opens holds parts that exactly fill the file.
func FuzzOpenFile(f *testing.F) {
	src := newRepo(f, repo.ModeArchive)
	a := commitTree(f, src, "main", treeA, false)
	file := filepath.Join(f.TempDir(), "d")
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{To: a, File: file, NoSync: true}); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "d")
		os.WriteFile(p, append([]byte("OTDELTA\x01"), data...), 0o644)
		o, err := delta.Open(p)
		if err != nil {
			return
		}
		defer o.Close()
		var sum uint64
		for _, part := range o.Superblock.Parts {
			sum += part.Size
		}
		if sum > uint64(len(data)) {
			t.Errorf("opened a file of %d bytes whose parts need %d", len(data), sum)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Mkdir(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		copyFile(t, filepath.Join(from, e.Name()), filepath.Join(to, e.Name()))
	}
}

// Applying a delta to a repository that already holds its commit keeps the
// detached metadata stored there and only adds to it: a signature made
// locally survives applying the delta again, or a tampered copy of it,
// and signatures the delta adds are merged in. A commit not stored yet
// gets the delta's detached metadata as it is.
func TestApplyKeepsStoredCommitMeta(t *testing.T) {
	pub1, priv1 := key(t)
	pub2, priv2 := key(t)
	pub3, priv3 := key(t)
	src, dst := newRepo(t, repo.ModeArchive), newRepo(t, repo.ModeBareUser)
	b := commitTree(t, src, "main", treeA, false)
	if _, err := sign.SignCommit(ctx, src, b, priv1); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "update.delta")
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, File: file, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	apply := func(p string) {
		t.Helper()
		if _, err := delta.ApplyOffline(ctx, dst, p, delta.ApplyOfflineOptions{NoSync: true}); err != nil {
			t.Fatalf("ApplyOffline(%s): %v", p, err)
		}
	}
	verified := func(pubs ...ed25519.PublicKey) {
		t.Helper()
		for i, pub := range pubs {
			if _, err := sign.VerifyCommit(dst, b, []ed25519.PublicKey{pub}); err != nil {
				t.Errorf("key %d: %v", i, err)
			}
		}
	}
	apply(file)
	want, _ := src.ReadRaw(repo.KindCommitMeta, b)
	if got, err := dst.ReadRaw(repo.KindCommitMeta, b); err != nil || !bytes.Equal(got, want) {
		t.Errorf("first apply stored commitmeta %x, %v; want the delta's %x", got, err, want)
	}
	if _, err := sign.SignCommit(ctx, dst, b, priv2); err != nil {
		t.Fatal(err)
	}
	apply(file)
	verified(pub1, pub2)

	// A copy whose signature was damaged on the way.
	sigs, err := sign.CommitSignatures(src, b)
	if err != nil || len(sigs) != 1 {
		t.Fatalf("signatures %d, %v", len(sigs), err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, sigs[0])
	if at < 0 {
		t.Fatal("the delta does not carry the signature")
	}
	data[at+5] ^= 1
	tampered := filepath.Join(t.TempDir(), "tampered.delta")
	if err := os.WriteFile(tampered, data, 0o644); err != nil {
		t.Fatal(err)
	}
	apply(tampered)
	verified(pub1, pub2)

	// A delta made after the source signed again: its signature is added.
	if _, err := sign.SignCommit(ctx, src, b, priv3); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(t.TempDir(), "newer.delta")
	if _, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, File: newer, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	apply(newer)
	verified(pub1, pub2, pub3)
}

// A single-file delta whose place cannot be written (a read-only
// directory) fails before any of it is made: the repository's deltas/,
// where its parts would be made, is not even created.
func TestGenerateFileUnwritablePlaceFailsFirst(t *testing.T) {
	src := newRepo(t, repo.ModeArchive)
	b := commitTree(t, src, "main", treeB, false)
	out := testtree.SmallFS(t, 1<<20)
	if err := unix.Mount("", out, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	file := filepath.Join(out, "d")
	_, err := delta.Generate(ctx, src, delta.GenerateOptions{To: b, File: file, NoSync: true})
	if !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), file) {
		t.Fatalf("generating into a read-only directory: %v, want EROFS naming %s", err, file)
	}
	if _, err := os.Stat(src.Path(delta.Dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused generation made %s: %v", src.Path(delta.Dir), err)
	}
}
