package sign_test

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/otree/otree/repo/sign"
)

// FuzzParseKeys checks that a key accepted is one that can sign or verify,
// written back reads as the same key, and that no error about a secret
// key repeats the key.
func FuzzParseKeys(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	f.Add(sign.EncodeKey(seed.Public().(ed25519.PublicKey)))
	f.Add(sign.EncodeKey(seed))
	f.Add(" " + sign.EncodeKey(seed)[:80] + "\r")
	f.Add("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") // small order
	f.Add("not base64!")
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := sign.ParsePublicKey(s); err == nil {
			if len(k) != ed25519.PublicKeySize || sign.SmallOrder(k) {
				t.Fatalf("ParsePublicKey(%q) = %x, not a usable public key", s, k)
			}
			if k2, err := sign.ParsePublicKey(sign.EncodeKey(k)); err != nil || !k2.Equal(k) {
				t.Fatalf("ParsePublicKey(%q) = %x; written back it reads %x, %v", s, k, k2, err)
			}
		}
		k, err := sign.ParseSecretKey(s)
		if err != nil {
			// Long and without spaces, the key cannot be a piece of the
			// message's own words ("not base64").
			if secret := strings.TrimSpace(s); len(secret) >= 16 && !strings.Contains(secret, " ") && strings.Contains(err.Error(), secret) {
				t.Fatalf("ParseSecretKey error %q repeats the key", err)
			}
			return
		}
		sig := ed25519.Sign(k, []byte("x"))
		if !ed25519.Verify(k.Public().(ed25519.PublicKey), []byte("x"), sig) {
			t.Fatalf("ParseSecretKey(%q) = a key whose signatures its public key does not verify", s)
		}
		if k2, err := sign.ParseSecretKey(sign.EncodeKey(k)); err != nil || !k2.Equal(k) {
			t.Fatalf("ParseSecretKey(%q); written back it reads differently: %v", s, err)
		}
	})
}
