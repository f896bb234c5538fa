// Package sign signs commits and summaries with ed25519 and verifies them,
// in OSTree's key formats: a public key is the base64 of its 32 bytes, a
// secret key the base64 of 64 bytes (seed then public key), and a key file
// holds one such key per line.
//
// A commit's signatures are kept in its detached metadata under
// MetadataKey, as concatenated 64-byte signatures over the commit object's
// canonical bytes. A summary's are kept in the file SummarySigFile beside
// it, encoded as detached metadata with the same key.
package sign

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/otree/otree/repo"
)

// Type is the only signature type otree knows (OSTree's --sign-type).
const Type = "ed25519"

// MetadataKey is the detached metadata key holding ed25519 signatures.
const MetadataKey = "otree.sign.ed25519"

// SummarySigFile is the file beside a repository's summary holding the
// summary's signatures.
const SummarySigFile = "summary.sig"

// ErrNoSignature is matched (with errors.Is) by verification errors about
// data that carries no signature at all.
var ErrNoSignature = errors.New("no ed25519 signature")

// ErrBadSignature is matched (with errors.Is) by verification errors about
// data whose signatures are all invalid or made by untrusted keys.
var ErrBadSignature = errors.New("no valid ed25519 signature by a trusted key")

// ErrNoTrustedKeys is matched (with errors.Is) by errors about a
// verification that has no trusted key to verify with.
var ErrNoTrustedKeys = errors.New("no trusted ed25519 public key")

// CheckType accepts the signature types otree can use: "" and "ed25519".
func CheckType(t string) error {
	if t != "" && t != Type {
		return fmt.Errorf("unsupported signature type %q (only %q is supported)", t, Type)
	}
	return nil
}

// EncodeKey returns the base64 form of a public or secret key.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

func decodeKey(s string, size int, what string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("invalid ed25519 %s: not base64: %v", what, err)
	}
	if len(b) == ed25519.PrivateKeySize && size == ed25519.PublicKeySize {
		return nil, fmt.Errorf("invalid ed25519 %s: %d bytes, want %d (a secret key's length: give its public key)", what, len(b), size)
	}
	if len(b) != size {
		return nil, fmt.Errorf("invalid ed25519 %s: %d bytes, want %d", what, len(b), size)
	}
	return b, nil
}

// ParsePublicKey parses a base64 public key (32 bytes). A key any
// signature could be forged for (SmallOrder) is refused.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeKey(s, ed25519.PublicKeySize, "public key")
	if err == nil && SmallOrder(b) {
		return nil, fmt.Errorf("invalid ed25519 public key %s: a point of small order, for which anyone can make a valid signature of anything", strings.TrimSpace(s))
	}
	return ed25519.PublicKey(b), err
}

// fieldP is 2^255 - 19, the order of the field ed25519's points are over.
var fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// smallOrderY are the y coordinates of the eight points of small order:
// the identity (1), (0, -1), (±sqrt(-1), 0) and the four of order 8.
var smallOrderY = func() []*big.Int {
	y8, _ := new(big.Int).SetString("2707385501144840649318225287225658788936804267575313519463743609750303402022", 10)
	return []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(fieldP, big.NewInt(1)), y8, new(big.Int).Sub(fieldP, y8)}
}()

// SmallOrder reports whether the public key pub encodes a point of small
// order, in any of its encodings (either sign bit; y or y+p). With such a
// key, signatures of any data can be made without a secret key, and
// crypto/ed25519 accepts them; libsodium, which OSTree verifies with,
// refuses such keys, and so does Verify.
func SmallOrder(pub []byte) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	le := make([]byte, len(pub))
	for i, c := range pub {
		le[len(pub)-1-i] = c
	}
	le[0] &= 0x7f // the sign of x
	y := new(big.Int).SetBytes(le)
	if y.Cmp(fieldP) >= 0 {
		y.Sub(y, fieldP)
	}
	for _, s := range smallOrderY {
		if y.Cmp(s) == 0 {
			return true
		}
	}
	return false
}

// ParseSecretKey parses a base64 secret key (64 bytes: seed, then public
// key). A key whose public half does not belong to its seed is refused:
// it would make signatures no public key verifies.
func ParseSecretKey(s string) (ed25519.PrivateKey, error) {
	b, err := decodeKey(s, ed25519.PrivateKeySize, "secret key")
	if err != nil {
		return nil, err
	}
	k := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	if !bytes.Equal(k, b) {
		return nil, fmt.Errorf("invalid ed25519 secret key: its public half does not match its seed")
	}
	return k, nil
}

// Signatures splits the signatures stored in detached metadata.
func Signatures(m repo.Metadata) ([][]byte, error) {
	v, ok := m.Get(MetadataKey)
	if !ok {
		return nil, nil
	}
	if len(v)%ed25519.SignatureSize != 0 {
		return nil, fmt.Errorf("%s holds %d bytes, not a whole number of %d-byte signatures", MetadataKey, len(v), ed25519.SignatureSize)
	}
	out := make([][]byte, 0, len(v)/ed25519.SignatureSize)
	for i := 0; i < len(v); i += ed25519.SignatureSize {
		out = append(out, v[i:i+ed25519.SignatureSize])
	}
	return out, nil
}

// AddSignatures returns m with a signature of data by each key added, and
// how many were added: a key that already signed data is skipped. Other
// keys of m are kept.
func AddSignatures(m repo.Metadata, data []byte, keys ...ed25519.PrivateKey) (repo.Metadata, int, error) {
	sigs, err := Signatures(m)
	if err != nil {
		return nil, 0, err
	}
	var v []byte
	for _, s := range sigs {
		v = append(v, s...)
	}
	added := 0
	for _, k := range keys {
		if len(k) != ed25519.PrivateKeySize {
			return nil, 0, fmt.Errorf("invalid ed25519 secret key: %d bytes", len(k))
		}
		pub := k.Public().(ed25519.PublicKey)
		if signedBy(data, v, pub) {
			continue
		}
		v = append(v, ed25519.Sign(k, data)...)
		added++
	}
	out := append(repo.Metadata(nil), m...)
	if added > 0 {
		out = out.Set(MetadataKey, v)
	}
	return out, added, nil
}

// MergeMetadata returns local with what theirs adds: the signatures of
// theirs local lacks, and the keys local has not got. Nothing of local is
// replaced or dropped, so a signature that verifies here still does. It
// also returns how many signatures and keys were added.
func MergeMetadata(local, theirs repo.Metadata) (repo.Metadata, int, error) {
	mine, err := Signatures(local)
	if err != nil {
		return nil, 0, err
	}
	others, err := Signatures(theirs)
	if err != nil {
		return nil, 0, err
	}
	out := append(repo.Metadata(nil), local...)
	added := 0
	var v []byte
	for _, s := range mine {
		v = append(v, s...)
	}
	for _, s := range others {
		if !slices.ContainsFunc(mine, func(m []byte) bool { return bytes.Equal(m, s) }) {
			v = append(v, s...)
			mine = append(mine, s)
			added++
		}
	}
	if added > 0 {
		out = out.Set(MetadataKey, v)
	}
	for _, e := range theirs {
		if _, ok := out.Get(e.Key); !ok {
			out = out.Set(e.Key, e.Value)
			added++
		}
	}
	return out, added, nil
}

// signedBy reports whether one of the concatenated signatures sigs is pub's
// over data.
func signedBy(data, sigs []byte, pub ed25519.PublicKey) bool {
	for i := 0; i+ed25519.SignatureSize <= len(sigs); i += ed25519.SignatureSize {
		if ed25519.Verify(pub, data, sigs[i:i+ed25519.SignatureSize]) {
			return true
		}
	}
	return false
}

// Verify checks that m holds a valid signature of data by one of the
// trusted keys and returns that key. A trusted key of small order
// (SmallOrder) verifies nothing. Errors match ErrNoTrustedKeys,
// ErrNoSignature or ErrBadSignature.
func Verify(data []byte, m repo.Metadata, trusted []ed25519.PublicKey) (ed25519.PublicKey, error) {
	trusted = slices.DeleteFunc(slices.Clone(trusted), func(k ed25519.PublicKey) bool { return SmallOrder(k) })
	if len(trusted) == 0 {
		return nil, ErrNoTrustedKeys
	}
	sigs, err := Signatures(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if len(sigs) == 0 {
		return nil, ErrNoSignature
	}
	for _, pub := range trusted {
		for _, s := range sigs {
			if len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, data, s) {
				return pub, nil
			}
		}
	}
	return nil, fmt.Errorf("%w (%d signature%s checked against %d key%s)", ErrBadSignature,
		len(sigs), plural(len(sigs)), len(trusted), plural(len(trusted)))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// SignCommit adds a signature by each key to the detached metadata of the
// commit id in r, in one durable transaction, and returns how many were
// added (a key that already signed the commit adds none).
func SignCommit(ctx context.Context, r *repo.Repo, id repo.ID, keys ...ed25519.PrivateKey) (int, error) {
	return editCommitMeta(ctx, r, id, "signing", func(m repo.Metadata, data []byte) (repo.Metadata, int, error) {
		return AddSignatures(m, data, keys...)
	})
}

// UnsignCommit removes from the detached metadata of the commit id in r
// every signature one of pubs made, in one durable transaction, and
// returns how many it removed.
func UnsignCommit(ctx context.Context, r *repo.Repo, id repo.ID, pubs ...ed25519.PublicKey) (int, error) {
	return editCommitMeta(ctx, r, id, "deleting signatures of", func(m repo.Metadata, data []byte) (repo.Metadata, int, error) {
		return DeleteSignatures(m, data, pubs...)
	})
}

// DeleteSignatures returns m without the signatures of data that one of
// pubs made, and how many it dropped. Signatures by other keys stay; when
// none is left the key goes too. Other keys of m are kept.
func DeleteSignatures(m repo.Metadata, data []byte, pubs ...ed25519.PublicKey) (repo.Metadata, int, error) {
	sigs, err := Signatures(m)
	if err != nil {
		return nil, 0, err
	}
	var v []byte
	removed := 0
	for _, s := range sigs {
		if slices.ContainsFunc(pubs, func(p ed25519.PublicKey) bool {
			return len(p) == ed25519.PublicKeySize && ed25519.Verify(p, data, s)
		}) {
			removed++
			continue
		}
		v = append(v, s...)
	}
	out := make(repo.Metadata, 0, len(m))
	for _, e := range m {
		if e.Key != MetadataKey {
			out = append(out, e)
		}
	}
	if len(v) > 0 {
		out = out.Set(MetadataKey, v)
	}
	return out, removed, nil
}

// editCommitMeta rewrites the detached metadata of the commit id with
// edit, given the commit's bytes, in one durable transaction, unless edit
// reports no change.
func editCommitMeta(ctx context.Context, r *repo.Repo, id repo.ID, what string,
	edit func(m repo.Metadata, data []byte) (repo.Metadata, int, error)) (int, error) {
	txn, err := r.Begin(ctx, repo.TxnOptions{})
	if err != nil {
		return 0, err
	}
	defer txn.Abort()
	// Read under the transaction (which excludes a concurrent prune: one
	// that deleted the commit before it began leaves nothing to sign) and
	// the refs lock (which serialises editors of the same commit).
	data, err := r.ReadRaw(repo.KindCommit, id)
	if err != nil {
		return 0, fmt.Errorf("%s commit %s: %w", what, id, err)
	}
	lk, err := r.LockRefs(ctx)
	if err != nil {
		return 0, err
	}
	defer lk.Unlock()
	m, err := r.ReadCommitMeta(id)
	if err != nil {
		return 0, fmt.Errorf("%s commit %s: %w", what, id, err)
	}
	m, n, err := edit(m, data)
	if err != nil {
		return 0, fmt.Errorf("%s commit %s: %w", what, id, err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := txn.WriteCommitMeta(id, m); err != nil {
		return 0, err
	}
	if err := txn.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// VerifyCommit checks that the commit id in r carries a valid signature by
// one of the trusted keys, over the commit object's bytes, and returns that
// key.
func VerifyCommit(r *repo.Repo, id repo.ID, trusted []ed25519.PublicKey) (ed25519.PublicKey, error) {
	data, err := r.ReadRaw(repo.KindCommit, id)
	if err != nil {
		return nil, fmt.Errorf("verifying commit %s: %w", id, err)
	}
	m, err := r.ReadCommitMeta(id)
	if err != nil {
		return nil, fmt.Errorf("verifying commit %s: %w", id, err)
	}
	pub, err := Verify(data, m, trusted)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	return pub, nil
}

// CommitSignatures returns the signatures the commit id carries in r.
func CommitSignatures(r *repo.Repo, id repo.ID) ([][]byte, error) {
	m, err := r.ReadCommitMeta(id)
	if err != nil {
		return nil, err
	}
	sigs, err := Signatures(m)
	if err != nil {
		return nil, fmt.Errorf("detached metadata of commit %s: %w", id, err)
	}
	return sigs, nil
}

// SignDetached returns detached signatures of data by every key: the
// encoding of detached metadata holding them, the content of a
// SummarySigFile or of a static delta's signature file.
func SignDetached(data []byte, keys ...ed25519.PrivateKey) ([]byte, error) {
	m, _, err := AddSignatures(nil, data, keys...)
	if err != nil {
		return nil, err
	}
	return repo.EncodeCommitMeta(m), nil
}

// VerifyDetached checks that sig, made by SignDetached, holds a valid
// signature of data by one of the trusted keys, and returns that key. what
// names sig in errors.
func VerifyDetached(data, sig []byte, trusted []ed25519.PublicKey, what string) (ed25519.PublicKey, error) {
	m, err := repo.DecodeCommitMeta(sig)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not valid: %v", ErrBadSignature, what, err)
	}
	pub, err := Verify(data, m, trusted)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return pub, nil
}

// SignSummary returns the content of SummarySigFile for the summary file
// content summary, signed by every key.
func SignSummary(summary []byte, keys ...ed25519.PrivateKey) ([]byte, error) {
	return SignDetached(summary, keys...)
}

// VerifySummary checks that sig (the content of SummarySigFile) holds a
// valid signature of the summary file content summary by one of the
// trusted keys, and returns that key.
func VerifySummary(summary, sig []byte, trusted []ed25519.PublicKey) (ed25519.PublicKey, error) {
	return VerifyDetached(summary, sig, trusted, SummarySigFile)
}
