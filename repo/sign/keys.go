package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/limitread"
)

// maxKeyFile bounds a key file: thousands of keys fit.
const maxKeyFile = 1 << 20

// ReadPublicKeys reads a file of public keys. A malformed line is an error
// naming the file and line.
func ReadPublicKeys(path string) ([]ed25519.PublicKey, error) {
	return readKeys(path, ParsePublicKey)
}

// ReadSecretKeys reads a file of secret keys. A malformed line is an error
// naming the file and line; the key itself is never shown.
func ReadSecretKeys(path string) ([]ed25519.PrivateKey, error) {
	return readKeys(path, ParseSecretKey)
}

// readKeys reads a key file given for its keys: one without a key is an
// error naming it.
func readKeys[K any](path string, parse func(string) (K, error)) ([]K, error) {
	out, err := readKeyFile(path, parse)
	if err == nil && len(out) == 0 {
		return nil, fmt.Errorf("key file %s: no keys", path)
	}
	return out, err
}

// readKeyFile reads the keys of a key file, none if it holds only blank
// lines and comments.
func readKeyFile[K any](path string, parse func(string) (K, error)) ([]K, error) {
	// Non-blocking, so that a FIFO named as a key file is refused rather
	// than waited on.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	data, err := limitread.ReadAll(f, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	var out []K
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := parse(line)
		if err != nil {
			return nil, fmt.Errorf("key file %s line %d: %w", path, i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// SystemDirs are the directories holding system-wide keys below root ("" or
// "/" for the running system): root/etc/otree and root/usr/share/otree.
func SystemDirs(root string) []string {
	if root == "" {
		root = "/"
	}
	return []string{filepath.Join(root, "etc", "otree"), filepath.Join(root, "usr", "share", "otree")}
}

// LoadTrusted loads the public keys trusted by the key directories dirs:
// in each, the file trusted.ed25519 and every file in trusted.ed25519.d,
// minus the keys listed the same way in revoked.ed25519 and
// revoked.ed25519.d. Missing files and directories are skipped, and a file
// with no key (empty, or comments only: a placeholder, or a revocation
// list with nothing revoked yet) adds none; a malformed file is an error
// naming it. It returns the keys and the files read.
func LoadTrusted(dirs ...string) ([]ed25519.PublicKey, []string, error) {
	var trusted, revoked []ed25519.PublicKey
	var files []string
	for _, dir := range dirs {
		for _, set := range []struct {
			name   string
			keys   *[]ed25519.PublicKey
			strict bool
			parse  func(string) (ed25519.PublicKey, error)
		}{{"trusted.ed25519", &trusted, false, ParsePublicKey}, {"revoked.ed25519", &revoked, true, parseRevokedKey}} {
			paths, err := keyFiles(filepath.Join(dir, set.name), set.strict)
			if err != nil {
				return nil, nil, err
			}
			for _, p := range paths {
				ks, err := readKeyFile(p, set.parse)
				if err != nil {
					return nil, nil, err
				}
				*set.keys = append(*set.keys, ks...)
				files = append(files, p)
			}
		}
	}
	out := trusted[:0]
	for _, k := range trusted {
		if !containsKey(revoked, k) && !containsKey(out, k) {
			out = append(out, k)
		}
	}
	return out, files, nil
}

// parseRevokedKey parses a revoked public key: one of small order, which
// is never trusted, may be revoked all the same.
func parseRevokedKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeKey(s, ed25519.PublicKeySize, "public key")
	return ed25519.PublicKey(b), err
}

// keyFiles lists base (if it exists) and the regular files of base.d,
// sorted by name. A base that is not a regular file is listed all the
// same, for the reading to refuse: revoked.ed25519 made a directory must
// not revoke nothing. With strict (revocations), so is every entry of
// base.d that is not one, and a dangling link, whether base, base.d or
// an entry: a revocation that cannot be read fails closed, where a
// trusted key that cannot be read is only one key fewer.
func keyFiles(base string, strict bool) ([]string, error) {
	var out []string
	if _, err := os.Stat(base); err == nil {
		out = append(out, base)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("key file: %w", err)
	} else if _, lerr := os.Lstat(base); strict && lerr == nil {
		out = append(out, base)
	}
	ents, err := os.ReadDir(base + ".d")
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(base + ".d"); strict && lerr == nil {
			return nil, fmt.Errorf("key directory %s: a dangling symbolic link", base+".d")
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		p := filepath.Join(base+".d", e.Name())
		if fi, err := os.Stat(p); strict || err == nil && fi.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out, nil
}

func containsKey(ks []ed25519.PublicKey, k ed25519.PublicKey) bool {
	for _, x := range ks {
		if x.Equal(k) {
			return true
		}
	}
	return false
}

// GenerateKey makes a new key pair, writes the secret key to path (which
// must not exist) readable by its owner only, durably, and returns the
// public key.
func GenerateKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("writing secret key: %s already exists", path)
	}
	// Named only once whole: a kill part way must not leave an empty key
	// at path, which a rerun would refuse to replace.
	if err := durable.WriteNew(path, []byte(EncodeKey(priv)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing secret key %s: %w", path, err)
	}
	return pub, nil
}
