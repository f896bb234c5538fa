package main

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
	"github.com/spf13/cobra"
)

type signFlags struct {
	verify, delete     bool
	keysFile, keysDir  string
	signType, generate string
}

// signJSON is the --json form of otree sign.
type signJSON struct {
	Commit repo.ID `json:"commit"`
	// Added and Deleted are counts, set (0 too) by signing and --delete.
	Added    *int   `json:"added,omitempty"`
	Deleted  *int   `json:"deleted,omitempty"`
	Verified bool   `json:"verified,omitempty"`
	Key      string `json:"key,omitempty"` // the public key that verified, or was generated
}

func newSignCommand(e *env) *cobra.Command {
	f := &signFlags{}
	c := &cobra.Command{
		Use:   "sign COMMIT [KEY...] | --verify COMMIT [PUBKEY...] | --delete COMMIT PUBKEY... | --generate-key=FILE",
		Short: "Sign a commit with ed25519 keys, or verify its signatures",
		Long: `Add an ed25519 signature by each secret KEY (base64 of 64 bytes) and each key
of --keys-file to the detached metadata of COMMIT. A key that already signed
the commit adds nothing.

--verify checks that COMMIT carries a valid signature by one of the public
keys given (PUBKEY, base64 of 32 bytes, and --keys-file), or when none is
given by a system-wide trusted key (/etc/otree/trusted.ed25519(.d),
/usr/share/otree/trusted.ed25519(.d), or those files in --keys-dir), and
names the key that verified; it fails when none does.

--delete removes from COMMIT every signature one of the public keys given
(PUBKEY, and --keys-file) made; other signatures stay.

--generate-key=FILE writes a new secret key to FILE (mode 0600, which must
not exist) and prints its public key.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSign(cmd, e, f, args)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.verify, "verify", false, "verify the commit's signatures instead of signing")
	fl.BoolVarP(&f.delete, "delete", "d", false, "delete the signatures the public keys given made")
	fl.StringVar(&f.keysFile, "keys-file", "", "read keys from FILE, one base64 key per line")
	fl.StringVar(&f.keysDir, "keys-dir", "", "with --verify, look up trusted keys in DIR instead of the system directories")
	fl.StringVarP(&f.signType, "sign-type", "s", sign.Type, "signature type (only ed25519)")
	fl.StringVar(&f.generate, "generate-key", "", "write a new secret key to FILE and print its public key")
	e.addJSON(c)
	return c
}

func runSign(cmd *cobra.Command, e *env, f *signFlags, args []string) error {
	if err := sign.CheckType(f.signType); err != nil {
		return usageError{err}
	}
	if f.generate != "" {
		if len(args) > 0 || f.verify || f.keysFile != "" {
			return usagef("--generate-key takes no commit, keys or --verify")
		}
		pub, err := sign.GenerateKey(f.generate)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(struct {
				SecretKeyFile string `json:"secret_key_file"` // with secret_key_file_base64 when not UTF-8
				PublicKey     string `json:"public_key"`
			}{f.generate, sign.EncodeKey(pub)})
		}
		_, err = fmt.Fprintln(e.stdout, sign.EncodeKey(pub))
		return err
	}
	if len(args) == 0 {
		return usagef("sign needs a COMMIT")
	}
	if f.keysDir != "" && !f.verify {
		return usagef("--keys-dir applies to --verify only")
	}
	if f.verify && f.delete {
		return usagef("--verify and --delete exclude each other")
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	id, err := r.ResolveRev(args[0])
	if err != nil {
		return err
	}
	if f.verify {
		return verifyCommit(e, r, id, f, args[1:])
	}
	if f.delete {
		pubs, err := publicKeys(args[1:], f.keysFile)
		if err != nil {
			return err
		}
		if len(pubs) == 0 {
			return usagef("--delete needs a PUBKEY or --keys-file")
		}
		n, err := sign.UnsignCommit(cmd.Context(), r, id, pubs...)
		if err != nil {
			return err
		}
		if e.json {
			return e.printJSON(signJSON{Commit: id, Deleted: &n})
		}
		_, err = fmt.Fprintf(e.stdout, "Commit %s: %d signature%s deleted\n", id, n, pluralSuffix(n))
		return err
	}
	keys, err := secretKeys(args[1:], "KEY", f.keysFile)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return usagef("sign needs a secret KEY or --keys-file")
	}
	added, err := sign.SignCommit(cmd.Context(), r, id, keys...)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(signJSON{Commit: id, Added: &added})
	}
	fmt.Fprintf(e.stdout, "Commit %s: %d signature%s added, %d key%s had signed it already\n",
		id, added, pluralSuffix(added), len(keys)-added, pluralSuffix(len(keys)-added))
	return nil
}

// publicKeys parses public keys given on the command line and from a file.
// A bad PUBKEY is named by its place, not shown: it may be a secret key
// given by mistake.
func publicKeys(args []string, file string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, a := range args {
		k, err := sign.ParsePublicKey(a)
		if err != nil {
			return nil, usagef("PUBKEY #%d: %v", i+1, err)
		}
		keys = append(keys, k)
	}
	if file != "" {
		ks, err := sign.ReadPublicKeys(file)
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	return keys, nil
}

// trustedKeys returns the public keys to verify with: those given (args
// and keysFile), else the system-wide trusted keys (those of keysDir
// instead when set). what names the verification in errors.
func trustedKeys(args []string, keysFile, keysDir, what string) ([]ed25519.PublicKey, error) {
	trusted, err := publicKeys(args, keysFile)
	if err != nil || len(trusted) > 0 {
		return trusted, err
	}
	dirs := sign.SystemDirs("")
	if keysDir != "" {
		dirs = []string{keysDir}
	}
	ks, _, err := sign.LoadTrusted(dirs...)
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("verifying %s: %w: give PUBKEYs or --keys-file, or install keys in %s/trusted.ed25519(.d)",
			what, sign.ErrNoTrustedKeys, strings.Join(dirs, "/trusted.ed25519(.d) or "))
	}
	return ks, nil
}

func verifyCommit(e *env, r *repo.Repo, id repo.ID, f *signFlags, args []string) error {
	trusted, err := trustedKeys(args, f.keysFile, f.keysDir, "commit "+id.String())
	if err != nil {
		return err
	}
	pub, err := sign.VerifyCommit(r, id, trusted)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(signJSON{Commit: id, Verified: true, Key: sign.EncodeKey(pub)})
	}
	_, err = fmt.Fprintf(e.stdout, "Commit %s: valid ed25519 signature by key %s\n", id, sign.EncodeKey(pub))
	return err
}

// signingFlags are the --sign, --sign-from-file and --sign-type flags of
// the commands that sign what they write (commit, summary -u, static-delta
// generate).
type signingFlags struct {
	keys, files []string
	kind        string
}

// add declares the flags; what names what is signed ("the commit") and
// may carry a condition ("with -u, the summary").
func (s *signingFlags) add(c *cobra.Command, what string) {
	fl := c.Flags()
	fl.StringArrayVar(&s.keys, "sign", nil, "sign "+what+" with secret KEY (base64; repeatable)")
	fl.StringArrayVar(&s.files, "sign-from-file", nil, "sign "+what+" with the secret keys in FILE (repeatable)")
	fl.StringVar(&s.kind, "sign-type", sign.Type, "signature type (only ed25519)")
}

// given reports whether a key was given.
func (s *signingFlags) given() bool { return len(s.keys) > 0 || len(s.files) > 0 }

// secretKeys checks --sign-type and parses the keys given.
func (s *signingFlags) secretKeys() ([]ed25519.PrivateKey, error) {
	if err := sign.CheckType(s.kind); err != nil {
		return nil, usageError{err}
	}
	// An empty path (a variable left unset) would sign with nothing: the
	// commit or delta unsigned, summary -u removing summary.sig.
	if slices.Contains(s.files, "") {
		return nil, usagef("--sign-from-file: empty path, want the file of secret keys to sign with")
	}
	return secretKeys(s.keys, "--sign", s.files...)
}

// secretKeys parses secret keys given on the command line (flag names
// them in errors; the keys themselves are never shown) and from files.
func secretKeys(keys []string, flag string, files ...string) ([]ed25519.PrivateKey, error) {
	var out []ed25519.PrivateKey
	for i, s := range keys {
		k, err := sign.ParseSecretKey(s)
		if err != nil {
			return nil, usagef("%s #%d: %v", flag, i+1, err)
		}
		out = append(out, k)
	}
	for _, file := range files {
		if file == "" {
			continue
		}
		ks, err := sign.ReadSecretKeys(file)
		if err != nil {
			return nil, err
		}
		out = append(out, ks...)
	}
	return out, nil
}
