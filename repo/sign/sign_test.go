package sign_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// newCommit stores a commit (its tree need not exist for signing) and
// returns the repository and the commit id.
func newCommit(t *testing.T, subject string) (*repo.Repo, repo.ID) {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, addCommit(t, r, subject)
}

func addCommit(t *testing.T, r *repo.Repo, subject string) repo.ID {
	t.Helper()
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	c := repo.Commit{Subject: subject, Timestamp: 1700000000, RootTree: repo.Sum([]byte("t")), RootMeta: repo.Sum([]byte("m"))}
	id, err := txn.WriteMeta(repo.KindCommit, c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSignVerifyCommit(t *testing.T) {
	ctx := context.Background()
	r, id := newCommit(t, "one")
	pubA, privA := newKey(t)
	pubB, privB := newKey(t)
	pubC, _ := newKey(t)

	if _, err := sign.VerifyCommit(r, id, []ed25519.PublicKey{pubA}); !errors.Is(err, sign.ErrNoSignature) || !strings.Contains(err.Error(), id.String()) {
		t.Fatalf("verify unsigned = %v, want ErrNoSignature naming the commit", err)
	}
	// Other detached metadata is kept.
	txn, _ := r.Begin(ctx, repo.TxnOptions{NoSync: true})
	if err := txn.WriteCommitMeta(id, repo.Metadata{{Key: "note", Value: []byte("kept")}}); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}

	if n, err := sign.SignCommit(ctx, r, id, privA); err != nil || n != 1 {
		t.Fatalf("sign = %d, %v", n, err)
	}
	if got, err := sign.VerifyCommit(r, id, []ed25519.PublicKey{pubC, pubA}); err != nil || !got.Equal(pubA) {
		t.Fatalf("verify = %v, %v; want key A", got, err)
	}
	if _, err := sign.VerifyCommit(r, id, []ed25519.PublicKey{pubB}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify with untrusted key = %v, want ErrBadSignature", err)
	}
	if _, err := sign.VerifyCommit(r, id, nil); !errors.Is(err, sign.ErrNoTrustedKeys) {
		t.Errorf("verify with no keys = %v, want ErrNoTrustedKeys", err)
	}

	// The same key again is a no-op; another key adds a signature.
	if n, err := sign.SignCommit(ctx, r, id, privA, privB); err != nil || n != 1 {
		t.Fatalf("sign again = %d, %v, want 1 added", n, err)
	}
	sigs, err := sign.CommitSignatures(r, id)
	if err != nil || len(sigs) != 2 {
		t.Fatalf("signatures = %d, %v, want 2", len(sigs), err)
	}
	if got, err := sign.VerifyCommit(r, id, []ed25519.PublicKey{pubB}); err != nil || !got.Equal(pubB) {
		t.Errorf("verify with key B = %v, %v", got, err)
	}
	m, _ := r.ReadCommitMeta(id)
	if v, ok := m.Get("note"); !ok || string(v) != "kept" {
		t.Errorf("detached metadata lost its other key: %v", m)
	}

	// UnsignCommit drops A's signature only, then B's with the key; the
	// other metadata stays, and a key that never signed removes nothing.
	if n, err := sign.UnsignCommit(ctx, r, id, pubA, pubC); err != nil || n != 1 {
		t.Fatalf("unsign A = %d, %v, want 1", n, err)
	}
	if _, err := sign.VerifyCommit(r, id, []ed25519.PublicKey{pubA}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify with A after deleting its signature = %v", err)
	}
	if n, err := sign.UnsignCommit(ctx, r, id, pubC); err != nil || n != 0 {
		t.Errorf("unsign C = %d, %v, want 0", n, err)
	}
	if n, err := sign.UnsignCommit(ctx, r, id, pubB); err != nil || n != 1 {
		t.Fatalf("unsign B = %d, %v", n, err)
	}
	left, _ := r.ReadCommitMeta(id)
	if _, ok := left.Get(sign.MetadataKey); ok || len(left) != 1 || string(left[0].Value) != "kept" {
		t.Errorf("metadata after deleting every signature: %v", left)
	}

	// A signature of one commit does not verify another.
	other := addCommit(t, r, "two")
	txn, _ = r.Begin(ctx, repo.TxnOptions{NoSync: true})
	txn.WriteCommitMeta(other, m)
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.VerifyCommit(r, other, []ed25519.PublicKey{pubA, pubB}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify of a commit carrying another commit's signatures = %v, want ErrBadSignature", err)
	}
}

func TestVerifyTampered(t *testing.T) {
	pub, priv := newKey(t)
	data := []byte("commit bytes")
	m, n, err := sign.AddSignatures(nil, data, priv)
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if _, err := sign.Verify(data, m, []ed25519.PublicKey{pub}); err != nil {
		t.Fatalf("verify = %v", err)
	}
	tampered := []byte("commit bytez")
	if _, err := sign.Verify(tampered, m, []ed25519.PublicKey{pub}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify of tampered data = %v", err)
	}
	sig, _ := m.Get(sign.MetadataKey)
	bad := append([]byte(nil), sig...)
	bad[10] ^= 1
	if _, err := sign.Verify(data, repo.Metadata{{Key: sign.MetadataKey, Value: bad}}, []ed25519.PublicKey{pub}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify of tampered signature = %v", err)
	}
	if _, err := sign.Verify(data, repo.Metadata{{Key: sign.MetadataKey, Value: sig[:63]}}, []ed25519.PublicKey{pub}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify of a truncated signature = %v", err)
	}
}

func TestSummarySignature(t *testing.T) {
	pub, priv := newKey(t)
	other, _ := newKey(t)
	summary := []byte("summary bytes")
	sig, err := sign.SignSummary(summary, priv)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sign.VerifySummary(summary, sig, []ed25519.PublicKey{other, pub}); err != nil || !got.Equal(pub) {
		t.Errorf("verify = %v, %v", got, err)
	}
	if _, err := sign.VerifySummary([]byte("summary bytez"), sig, []ed25519.PublicKey{pub}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify of a changed summary = %v", err)
	}
	if _, err := sign.VerifySummary(summary, sig, []ed25519.PublicKey{other}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify with an untrusted key = %v", err)
	}
	if _, err := sign.VerifySummary(summary, []byte("junk"), []ed25519.PublicKey{pub}); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("verify of a malformed summary.sig = %v", err)
	}
}

// Every error of VerifyDetached names the signature file it was given,
// as its doc says, whatever the reason the signature is refused.
func TestVerifyDetachedNamesFile(t *testing.T) {
	pub, priv := newKey(t)
	other, _ := newKey(t)
	data := []byte("summary bytes")
	sig, err := sign.SignDetached(data, priv)
	if err != nil {
		t.Fatal(err)
	}
	empty := repo.EncodeCommitMeta(nil)
	for name, tc := range map[string]struct {
		sig     []byte
		trusted []ed25519.PublicKey
		want    error
	}{
		"untrusted key": {sig, []ed25519.PublicKey{other}, sign.ErrBadSignature},
		"no signature":  {empty, []ed25519.PublicKey{pub}, sign.ErrNoSignature},
		"no keys":       {sig, nil, sign.ErrNoTrustedKeys},
		"malformed":     {[]byte("junk"), []ed25519.PublicKey{pub}, sign.ErrBadSignature},
	} {
		_, err := sign.VerifyDetached(data, tc.sig, tc.trusted, "the/file.sig")
		if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), "the/file.sig") {
			t.Errorf("%s: %v; want an error naming the/file.sig and matching %v", name, err, tc.want)
		}
	}
}

func TestParseKeys(t *testing.T) {
	pub, priv := newKey(t)
	if k, err := sign.ParsePublicKey(sign.EncodeKey(pub)); err != nil || !k.Equal(pub) {
		t.Errorf("public key round trip = %v, %v", k, err)
	}
	if k, err := sign.ParseSecretKey(sign.EncodeKey(priv)); err != nil || !k.Equal(priv) {
		t.Errorf("secret key round trip: %v", err)
	}
	mismatched := append(append([]byte(nil), priv[:32]...), make([]byte, 32)...)
	for _, tc := range []struct {
		name, s, want string
		secret        bool
	}{
		{"public not base64", "@@@", "not base64", false},
		{"public too short", sign.EncodeKey(pub[:31]), "31 bytes, want 32", false},
		{"secret given as public", sign.EncodeKey(priv), "64 bytes, want 32", false},
		{"public given as secret", sign.EncodeKey(pub), "32 bytes, want 64", true},
		{"secret halves mismatch", sign.EncodeKey(mismatched), "does not match", true},
	} {
		var err error
		if tc.secret {
			_, err = sign.ParseSecretKey(tc.s)
		} else {
			_, err = sign.ParsePublicKey(tc.s)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	pubA, privA := newKey(t)
	pubB, _ := newKey(t)
	good := filepath.Join(dir, "keys")
	writeFile(t, good, "# release keys\n\n"+sign.EncodeKey(pubA)+"\n  "+sign.EncodeKey(pubB)+"  \n")
	ks, err := sign.ReadPublicKeys(good)
	if err != nil || len(ks) != 2 || !ks[0].Equal(pubA) || !ks[1].Equal(pubB) {
		t.Errorf("ReadPublicKeys = %v, %v", ks, err)
	}
	secret := filepath.Join(dir, "secret")
	writeFile(t, secret, sign.EncodeKey(privA)+"\n")
	if sk, err := sign.ReadSecretKeys(secret); err != nil || len(sk) != 1 || !sk[0].Equal(privA) {
		t.Errorf("ReadSecretKeys = %v", err)
	}
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, sign.EncodeKey(pubA)+"\nnot-a-key\n")
	if _, err := sign.ReadPublicKeys(bad); err == nil || !strings.Contains(err.Error(), bad+" line 2") {
		t.Errorf("malformed key file: %v, want the file and line named", err)
	}
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "# nothing\n\n")
	if _, err := sign.ReadPublicKeys(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty key file: %v", err)
	}
	if _, err := sign.ReadSecretKeys(good); err == nil || !strings.Contains(err.Error(), good) {
		t.Errorf("public keys read as secret: %v", err)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := sign.ReadPublicKeys(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing key file: %v", err)
	}
	// Not regular files: refused, naming them; a FIFO is not waited on.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, dir} {
		if _, err := sign.ReadPublicKeys(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("key file %s: %v", p, err)
		}
	}
	link := filepath.Join(dir, "link")
	os.Symlink(good, link)
	if ks, err := sign.ReadPublicKeys(link); err != nil || len(ks) != 2 {
		t.Errorf("a symbolic link to a key file: %v, %v", ks, err)
	}
}

func TestLoadTrusted(t *testing.T) {
	root := t.TempDir()
	pubA, _ := newKey(t)
	pubB, _ := newKey(t)
	pubC, _ := newKey(t)
	if ks, files, err := sign.LoadTrusted(sign.SystemDirs(root)...); err != nil || len(ks) != 0 || len(files) != 0 {
		t.Fatalf("empty root = %v, %v, %v", ks, files, err)
	}
	writeFile(t, filepath.Join(root, "etc/otree/trusted.ed25519"), sign.EncodeKey(pubA)+"\n")
	writeFile(t, filepath.Join(root, "etc/otree/trusted.ed25519.d/vendor"), sign.EncodeKey(pubB)+"\n"+sign.EncodeKey(pubA)+"\n")
	writeFile(t, filepath.Join(root, "usr/share/otree/trusted.ed25519.d/os"), sign.EncodeKey(pubC)+"\n")
	os.MkdirAll(filepath.Join(root, "usr/share/otree/trusted.ed25519.d/subdir"), 0o755)
	ks, files, err := sign.LoadTrusted(sign.SystemDirs(root)...)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 3 || !ks[0].Equal(pubA) || !ks[1].Equal(pubB) || !ks[2].Equal(pubC) || len(files) != 3 {
		t.Errorf("keys = %d, files = %v; want A, B, C once each from 3 files", len(ks), files)
	}
	// A revoked key is not trusted, wherever it was listed.
	writeFile(t, filepath.Join(root, "usr/share/otree/revoked.ed25519"), sign.EncodeKey(pubB)+"\n")
	ks, _, err = sign.LoadTrusted(sign.SystemDirs(root)...)
	if err != nil || len(ks) != 2 || !ks[0].Equal(pubA) || !ks[1].Equal(pubC) {
		t.Errorf("after revoking B: %d keys, %v", len(ks), err)
	}
	// Links in a .d directory are followed to regular files; dangling
	// ones are passed over.
	os.Symlink(filepath.Join(root, "nowhere"), filepath.Join(root, "etc/otree/trusted.ed25519.d/dangling"))
	os.MkdirAll(filepath.Join(root, "etc/otree/revoked.ed25519.d"), 0o755)
	link := filepath.Join(root, "etc/otree/revoked.ed25519.d/link")
	os.Symlink(filepath.Join(root, "usr/share/otree/revoked.ed25519"), link)
	ks, files, err = sign.LoadTrusted(sign.SystemDirs(root)...)
	if err != nil || len(ks) != 2 || !slices.Contains(files, link) {
		t.Errorf("with links: %d keys from %v, %v", len(ks), files, err)
	}
	// A revocation list that cannot be read fails closed.
	revoked := filepath.Join(root, "etc/otree/revoked.ed25519")
	os.Mkdir(revoked, 0o755)
	if ks, _, err := sign.LoadTrusted(sign.SystemDirs(root)...); err == nil || !strings.Contains(err.Error(), revoked) {
		t.Errorf("%s a directory: %d keys, %v; want an error naming it", revoked, len(ks), err)
	}
	os.Remove(revoked)
	// So does one that is a dangling link, as the list, as its .d
	// directory or in it, where a dangling trusted key is only passed over.
	for _, p := range []string{revoked, filepath.Join(root, "etc/otree/revoked.ed25519.d/dangling"), filepath.Join(root, "usr/share/otree/revoked.ed25519.d")} {
		os.Symlink(filepath.Join(root, "nowhere"), p)
		if ks, _, err := sign.LoadTrusted(sign.SystemDirs(root)...); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s a dangling link: %d keys, %v; want an error naming it", p, len(ks), err)
		}
		os.Remove(p)
	}
	// A revocation list may revoke a key of small order (never trusted
	// anyway): the list is read, the other keys in it still revoked.
	writeFile(t, filepath.Join(root, "usr/share/otree/revoked.ed25519"), strings.Repeat("A", 43)+"=\n"+sign.EncodeKey(pubB)+"\n")
	if ks, _, err := sign.LoadTrusted(sign.SystemDirs(root)...); err != nil || len(ks) != 2 || containsKey(ks, pubB) {
		t.Errorf("a small-order key revoked beside B: %d keys, %v; want A and C", len(ks), err)
	}
	// A file with no key, trusted or revoked, adds none: an empty
	// revocation list revokes nothing, and fails nothing.
	writeFile(t, filepath.Join(root, "etc/otree/revoked.ed25519"), "")
	writeFile(t, filepath.Join(root, "etc/otree/trusted.ed25519.d/00-placeholder"), "# keys of the vendor go here\n\n")
	if ks, files, err := sign.LoadTrusted(sign.SystemDirs(root)...); err != nil || len(ks) != 2 || containsKey(ks, pubB) {
		t.Errorf("with an empty revocation list and a trusted file of comments: %d keys from %v, %v; want A and C", len(ks), files, err)
	}
	bad := filepath.Join(root, "etc/otree/trusted.ed25519.d/broken")
	writeFile(t, bad, "xyz\n")
	if _, _, err := sign.LoadTrusted(sign.SystemDirs(root)...); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("malformed system key file: %v, want it named", err)
	}
}

func TestGenerateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	pub, err := sign.GenerateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file mode = %v, %v", fi.Mode(), err)
	}
	ks, err := sign.ReadSecretKeys(path)
	if err != nil || len(ks) != 1 || !ks[0].Public().(ed25519.PublicKey).Equal(pub) {
		t.Errorf("generated secret key does not match the public key: %v", err)
	}
	if _, err := sign.GenerateKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("overwriting a key: %v", err)
	}
	if again, _ := sign.ReadSecretKeys(path); len(again) != 1 || !again[0].Equal(ks[0]) {
		t.Errorf("existing secret key was replaced")
	}
}

func TestCheckType(t *testing.T) {
	if sign.CheckType("ed25519") != nil || sign.CheckType("") != nil {
		t.Error("ed25519 refused")
	}
	if err := sign.CheckType("dummy"); err == nil || !strings.Contains(err.Error(), "dummy") {
		t.Errorf("dummy accepted: %v", err)
	}
}

func TestMergeMetadata(t *testing.T) {
	data := []byte("commit bytes")
	pubA, a := newKey(t)
	pubB, b := newKey(t)
	local, _, _ := sign.AddSignatures(repo.Metadata{}.Set("note", []byte("mine")), data, a)
	theirs, _, _ := sign.AddSignatures(repo.Metadata{}.Set("note", []byte("theirs")).Set("extra", []byte("x")), data, a, b)
	merged, added, err := sign.MergeMetadata(local, theirs)
	if err != nil || added != 2 {
		t.Fatalf("merged %v, added %d, %v; want B's signature and the key extra added", merged, added, err)
	}
	for _, pub := range []ed25519.PublicKey{pubA, pubB} {
		if _, err := sign.Verify(data, merged, []ed25519.PublicKey{pub}); err != nil {
			t.Errorf("merged metadata: %v", err)
		}
	}
	if sigs, _ := sign.Signatures(merged); len(sigs) != 2 {
		t.Errorf("%d signatures, want A's once and B's", len(sigs))
	}
	if v, _ := merged.Get("note"); string(v) != "mine" {
		t.Errorf("note = %q: a key here was replaced", v)
	}
	if again, n, _ := sign.MergeMetadata(merged, theirs); n != 0 || len(again) != len(merged) {
		t.Errorf("merging again added %d", n)
	}
	if _, _, err := sign.MergeMetadata(local, repo.Metadata{}.Set(sign.MetadataKey, []byte("short"))); err == nil {
		t.Errorf("a malformed signature value merged")
	}
}

// TestSmallOrderKeys refuses the public keys of small order, in every
// encoding crypto/ed25519 decodes: with them, a signature of anything
// verifies without any secret key (libsodium refuses them too).
func TestSmallOrderKeys(t *testing.T) {
	ff := func(first byte, last byte) string {
		return fmt.Sprintf("%02x%s%02x", first, strings.Repeat("ff", 30), last)
	}
	var weak []string
	for _, h := range []string{
		strings.Repeat("00", 32),        // y = 0, order 4
		"01" + strings.Repeat("00", 31), // the identity
		ff(0xec, 0x7f),                  // y = p-1, order 2
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
		ff(0xed, 0x7f), // y = p: 0, not canonical
		ff(0xee, 0x7f), // y = p+1: 1, not canonical
	} {
		b, _ := hex.DecodeString(h)
		neg := bytes.Clone(b)
		neg[31] |= 0x80
		weak = append(weak, base64.StdEncoding.EncodeToString(b), base64.StdEncoding.EncodeToString(neg))
	}
	data := []byte("commit bytes the key holder never signed")
	// R = the identity, S = 0: valid for the identity key over any data.
	forged := append([]byte{1}, make([]byte, 63)...)
	m := repo.Metadata{}.Set(sign.MetadataKey, forged)
	for _, s := range weak {
		k, err := sign.ParsePublicKey(s)
		if err == nil || !strings.Contains(err.Error(), s) || !strings.Contains(err.Error(), "small order") {
			t.Errorf("ParsePublicKey(%s) = %v, %v; want an error naming it", s, k, err)
		}
		pub, _ := base64.StdEncoding.DecodeString(s)
		if !sign.SmallOrder(pub) {
			t.Errorf("SmallOrder(%s) = false", s)
		}
		if ed25519.Verify(pub, data, forged) {
			// crypto/ed25519 takes the forgery: Verify must not.
			if _, err := sign.Verify(data, m, []ed25519.PublicKey{pub}); err == nil {
				t.Errorf("Verify accepted a forged signature for the small-order key %s", s)
			}
		}
	}
	id, _ := base64.StdEncoding.DecodeString(weak[2])
	if !ed25519.Verify(id, data, forged) {
		t.Fatal("the forgery does not verify with crypto/ed25519: the test proves nothing")
	}
	for i := 0; i < 1000; i++ {
		pub, _ := newKey(t)
		if sign.SmallOrder(pub) {
			t.Fatalf("SmallOrder(%s) = true for a generated key", sign.EncodeKey(pub))
		}
	}
}

func containsKey(ks []ed25519.PublicKey, k ed25519.PublicKey) bool {
	return slices.ContainsFunc(ks, func(x ed25519.PublicKey) bool { return x.Equal(k) })
}

// lockWaitLog closes waiting once a Repo reports a wait for a lock.
type lockWaitLog struct {
	once    sync.Once
	waiting chan struct{}
}

func (w *lockWaitLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("waiting for the repository lock")) {
		w.once.Do(func() { close(w.waiting) })
	}
	return len(p), nil
}

// A prune that deletes a commit while signing it waits for the repository
// lock leaves nothing signed: the commit is read once the transaction
// holds the lock, so signing fails naming it, and writes no detached
// metadata for a commit that is gone (it used to print "signed" and
// leave a stray commitmeta object).
func TestSignCommitPrunedWhileWaiting(t *testing.T) {
	r, id := newCommit(t, "doomed")
	_, priv := newKey(t)
	pruner, err := repo.Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer pruner.Close()
	lk, err := pruner.LockExclusive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := &lockWaitLog{waiting: make(chan struct{})}
	r.SetLogger(slog.New(slog.NewTextHandler(w, nil)))
	done := make(chan error, 1)
	go func() {
		_, err := sign.SignCommit(context.Background(), r, id, priv)
		done <- err
	}()
	select {
	case <-w.waiting:
	case err := <-done:
		lk.Unlock()
		t.Fatalf("SignCommit did not wait for the lock a prune holds: %v", err)
	case <-time.After(20 * time.Second):
		lk.Unlock()
		t.Fatal("SignCommit reported no wait for the lock")
	}
	// What the prune does while it holds the lock.
	if err := os.Remove(pruner.ObjectPath(repo.KindCommit, id)); err != nil {
		t.Fatal(err)
	}
	lk.Unlock()
	err = <-done
	var missing *repo.ObjectMissingError
	if !errors.As(err, &missing) || missing.ID != id {
		t.Errorf("signing a commit pruned meanwhile: %v, want it named missing", err)
	}
	if _, serr := os.Stat(r.ObjectPath(repo.KindCommitMeta, id)); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("signing a commit pruned meanwhile left its detached metadata: %v", serr)
	}
}
