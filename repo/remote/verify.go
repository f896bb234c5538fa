package remote

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

// The remote config keys that turn signature verification on and name the
// keys to verify with (OSTree's names).
const (
	KeySignVerify        = "sign-verify"
	KeySignVerifySummary = "sign-verify-summary"
	KeyVerificationKey   = "verification-ed25519-key"
	KeyVerificationFile  = "verification-ed25519-file"
)

// OSTree's remote keys for GPG signatures, which otree cannot check.
const (
	KeyGPGVerify        = "gpg-verify"
	KeyGPGVerifySummary = "gpg-verify-summary"
	KeyGPGKeyPath       = "gpgkeypath"
)

// checkNoGPG refuses a remote whose config asks for GPG signatures to be
// checked, which otree has no means to do: pulling without the check
// would take what the admin asked to have refused. Unset, gpg-verify asks
// for nothing here (otree never checks GPG, and OSTree's remote add
// writes it only as false), unless gpgkeypath names keys to check with.
func checkNoGPG(name string, keys map[string]string) error {
	for _, k := range []string{KeyGPGVerify, KeyGPGVerifySummary} {
		switch v := strings.TrimSpace(keys[k]); v {
		case "", "false", "0":
		default:
			return fmt.Errorf("remote %s: %s=%s asks for GPG signatures, which otree cannot check (it checks ed25519 ones: %s); set %s=false to pull without them", name, k, v, KeySignVerify, k)
		}
	}
	if p := keys[KeyGPGKeyPath]; p != "" && keys[KeyGPGVerify] == "" {
		return fmt.Errorf("remote %s: %s=%s names GPG keys to check signatures with, which otree cannot do (it checks ed25519 ones: %s); set %s=false to pull without them", name, KeyGPGKeyPath, p, KeySignVerify, KeyGPGVerify)
	}
	return nil
}

// gpgKeyring is where OSTree keeps the GPG keys of remote name.
func gpgKeyring(r *repo.Repo, name string) string { return r.Path(name + ".trustedkeys.gpg") }

// checkNoGPGKeyring refuses remote rm when, with gpg-verify unset, the
// repository holds GPG keys for it where OSTree's remote add --gpg-import
// puts them (NAME.trustedkeys.gpg beside the config, which that command
// writes no key for): the admin asked for its signatures to be checked.
func checkNoGPGKeyring(r *repo.Repo, rm *Remote) error {
	if strings.TrimSpace(rm.Options[KeyGPGVerify]) != "" {
		return nil // checkNoGPG has judged it
	}
	p := gpgKeyring(r, rm.Name)
	if _, err := os.Lstat(p); err != nil {
		return nil
	}
	return fmt.Errorf("remote %s: %s holds GPG keys (OSTree's remote add --gpg-import) to check its signatures with, which otree cannot do (it checks ed25519 ones: %s); set %s=false to pull without them", rm.Name, p, KeySignVerify, KeyGPGVerify)
}

// maxSummarySig bounds the summary.sig a client is willing to download.
const maxSummarySig = 1 << 20

// Verification is what a remote's config asks pull to verify, and with
// which keys.
type Verification struct {
	Commits bool // sign-verify: every pulled commit must be signed
	Summary bool // sign-verify-summary: the summary must be signed
	// Keys are the trusted public keys: the remote's own
	// (verification-ed25519-key and -file) or, when it names none, the
	// system-wide ones.
	Keys []ed25519.PublicKey
	// Sources names where Keys came from: "inline", key files.
	Sources []string
}

// parseVerify reads sign-verify or sign-verify-summary as OSTree does: a
// boolean as GKeyFile reads one, or else a ';'-separated list of the
// signature types that must verify ("ed25519;"), of which otree has
// ed25519 only: another type is an error, not a check passed over.
func parseVerify(rm *Remote, key string) (bool, error) {
	switch v := strings.TrimSpace(rm.Options[key]); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		types := 0
		for _, t := range strings.Split(v, ";") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			if t != sign.Type {
				return false, fmt.Errorf("remote %s: %s=%q: unsupported signature type %q (want true, false, or a list of types, of which otree verifies %s only)", rm.Name, key, v, t, sign.Type)
			}
			types++
		}
		if types == 0 {
			return false, fmt.Errorf("remote %s: %s=%q is neither a boolean nor a list of signature types", rm.Name, key, v)
		}
		return true, nil
	}
}

// RemoteVerification reads what rm's config asks pull to verify and loads
// the trusted keys. Keys come from verification-ed25519-key (one base64
// public key, or several separated by ';') and verification-ed25519-file;
// when the remote names neither, from the system-wide key directories below
// keysRoot ("" for "/"; see sign.SystemDirs). Verification that is on with
// no trusted key at all is an error naming the remote.
func RemoteVerification(rm *Remote, keysRoot string) (*Verification, error) {
	v := &Verification{}
	var err error
	if v.Commits, err = parseVerify(rm, KeySignVerify); err != nil {
		return nil, err
	}
	if v.Summary, err = parseVerify(rm, KeySignVerifySummary); err != nil {
		return nil, err
	}
	if !v.Commits && !v.Summary {
		return v, nil
	}
	inline, file := rm.Options[KeyVerificationKey], rm.Options[KeyVerificationFile]
	for _, s := range strings.FieldsFunc(inline, func(r rune) bool { return r == ';' || r == ',' || r == ' ' || r == '\t' }) {
		k, err := sign.ParsePublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("remote %s: %s: %w", rm.Name, KeyVerificationKey, err)
		}
		v.Keys = append(v.Keys, k)
		v.Sources = append(v.Sources, "inline")
	}
	if len(v.Keys) == 0 && strings.TrimSpace(inline) != "" && file == "" {
		// Not the system-wide keys either: the remote names its own.
		return nil, fmt.Errorf("remote %s: %s=%q holds no key, so there is %w", rm.Name, KeyVerificationKey, inline, sign.ErrNoTrustedKeys)
	}
	if file != "" {
		ks, err := sign.ReadPublicKeys(file)
		if err != nil {
			return nil, fmt.Errorf("remote %s: %s: %w", rm.Name, KeyVerificationFile, err)
		}
		v.Keys = append(v.Keys, ks...)
		v.Sources = append(v.Sources, file)
	}
	if strings.TrimSpace(inline) == "" && file == "" {
		dirs := sign.SystemDirs(keysRoot)
		if v.Keys, v.Sources, err = sign.LoadTrusted(dirs...); err != nil {
			return nil, fmt.Errorf("remote %s: %w", rm.Name, err)
		}
		if len(v.Keys) == 0 {
			return nil, fmt.Errorf("remote %s: signature verification is on but there is %w: set %s or %s, or install keys in %s/trusted.ed25519(.d)",
				rm.Name, sign.ErrNoTrustedKeys, KeyVerificationKey, KeyVerificationFile, strings.Join(dirs, "/trusted.ed25519(.d) or "))
		}
	}
	return v, nil
}

// verifiedSource checks signatures on what a source serves before pull
// sees it: each commit against its detached metadata, and the summary
// against summary.sig.
type verifiedSource struct {
	source
	remote string
	v      *Verification

	mu    sync.Mutex
	metas map[repo.ID][]byte // detached metadata of verified commits
}

// withVerification wraps src when rm's config turns verification on. It
// fails, before anything is fetched, when the config is bad or no trusted
// key is found.
func withVerification(r *repo.Repo, rm *Remote, src source, opts *PullOptions) (source, error) {
	if rm == nil {
		return src, nil
	}
	if err := checkNoGPG(rm.Name, rm.Options); err != nil {
		return nil, err
	}
	if err := checkNoGPGKeyring(r, rm); err != nil {
		return nil, err
	}
	v, err := RemoteVerification(rm, opts.TrustedKeysRoot)
	if err != nil {
		return nil, err
	}
	if opts.fromMount {
		v.Summary = false
	}
	if !v.Commits && !v.Summary {
		return src, nil
	}
	return &verifiedSource{source: src, remote: rm.Name, v: v, metas: map[repo.ID][]byte{}}, nil
}

// summary returns the source's summary once its signature is verified. A
// missing summary or summary.sig is an error: refs read one by one could
// not be verified.
func (s *verifiedSource) summary(ctx context.Context) (*Summary, error) {
	if !s.v.Summary {
		return s.source.summary(ctx)
	}
	data, sig, err := rawSummary(ctx, s.source)
	if err != nil {
		return nil, fmt.Errorf("remote %s: summary verification: %w", s.remote, err)
	}
	if _, err := sign.VerifySummary(data, sig, s.v.Keys); err != nil {
		return nil, fmt.Errorf("remote %s: summary of %s: %w", s.remote, s.source, err)
	}
	sum, err := DecodeSummary(data)
	if err != nil {
		return nil, fmt.Errorf("remote %s: summary of %s: %w", s.remote, s.source, err)
	}
	return sum, nil
}

// rawSummary reads the summary and summary.sig files of a source.
func rawSummary(ctx context.Context, src source) (summary, sig []byte, err error) {
	if summary, err = readRaw(ctx, src, SummaryFile, maxSummary); err != nil {
		return nil, nil, err
	}
	if sig, err = readRaw(ctx, src, sign.SummarySigFile, maxSummarySig); err != nil {
		return nil, nil, err
	}
	return summary, sig, nil
}

// readMeta fetches a commit together with its detached metadata and
// returns the commit only once a trusted key's signature over its bytes is
// found; pull then stages it. The detached metadata is kept for the read
// pull makes next.
func (s *verifiedSource) readMeta(ctx context.Context, kind repo.Kind, id repo.ID) ([]byte, error) {
	if s.v.Commits && kind == repo.KindCommitMeta {
		s.mu.Lock()
		m, ok := s.metas[id]
		s.mu.Unlock()
		if ok {
			return m, nil
		}
	}
	data, err := s.source.readMeta(ctx, kind, id)
	if err != nil || !s.v.Commits || kind != repo.KindCommit {
		return data, err
	}
	if got := repo.Sum(data); got != id {
		return nil, fmt.Errorf("%s: %w", s.describe(kind, id), &repo.CorruptObjectError{Kind: kind, ID: id, Actual: got})
	}
	raw, err := s.source.readMeta(ctx, repo.KindCommitMeta, id)
	switch {
	case errors.Is(err, repo.ErrNotFound):
		raw = nil
	case err != nil:
		return nil, err
	}
	if err := s.accept(id, data, raw); err != nil {
		var ce *repo.CorruptObjectError
		if errors.As(err, &ce) {
			err = fmt.Errorf("%s: %w", s.describe(repo.KindCommitMeta, id), err)
		}
		return nil, err
	}
	return data, nil
}

// accept checks that commit id, whose bytes are data, carries a trusted
// signature in the detached metadata raw (nil for none), and keeps raw for
// the read of it pull makes next.
func (s *verifiedSource) accept(id repo.ID, data, raw []byte) error {
	var m repo.Metadata
	if raw != nil {
		var err error
		if m, err = repo.DecodeCommitMeta(raw); err != nil {
			return &repo.CorruptObjectError{Kind: repo.KindCommitMeta, ID: id, Reason: err.Error()}
		}
	}
	if _, err := sign.Verify(data, m, s.v.Keys); err != nil {
		return fmt.Errorf("remote %s: commit %s: %w", s.remote, id, err)
	}
	s.mu.Lock()
	s.metas[id] = raw
	s.mu.Unlock()
	return nil
}

// storedTargets brings the requested commits that are already stored
// here, which pull does not fetch again, up to date with the source's
// detached metadata: signatures made since they were pulled are added
// (sign.MergeMetadata; nothing here is dropped), as OSTree's pull fetches
// a commit's detached metadata again. When the remote verifies commits,
// the result must hold a trusted signature. What changed is staged in txn.
func storedTargets(ctx context.Context, r *repo.Repo, txn *repo.Txn, src source, targets []target) error {
	vs, verifying := unwrap[*verifiedSource](src)
	verifying = verifying && vs.v.Commits
	done := map[repo.ID]bool{}
	for _, t := range targets {
		id := t.commit
		if done[id] {
			continue
		}
		done[id] = true
		if has, err := r.HasObject(repo.KindCommit, id); err != nil || !has {
			if err != nil {
				return err
			}
			continue
		}
		local, err := r.ReadCommitMeta(id)
		if err != nil {
			return err
		}
		var theirs repo.Metadata
		raw, err := src.readMeta(ctx, repo.KindCommitMeta, id)
		switch {
		case errors.Is(err, repo.ErrNotFound):
		case err != nil:
			return err
		default:
			if theirs, err = repo.DecodeCommitMeta(raw); err != nil {
				return fmt.Errorf("%s: %w", src.describe(repo.KindCommitMeta, id),
					&repo.CorruptObjectError{Kind: repo.KindCommitMeta, ID: id, Reason: err.Error()})
			}
		}
		merged, added, err := sign.MergeMetadata(local, theirs)
		if err != nil {
			return fmt.Errorf("%s: %w", src.describe(repo.KindCommitMeta, id),
				&repo.CorruptObjectError{Kind: repo.KindCommitMeta, ID: id, Reason: err.Error()})
		}
		if verifying {
			data, err := r.ReadRaw(repo.KindCommit, id)
			if err != nil {
				return err
			}
			if _, err := sign.Verify(data, merged, vs.v.Keys); err != nil {
				return fmt.Errorf("remote %s: commit %s: %w", vs.remote, id, err)
			}
		}
		if added > 0 {
			if err := txn.WriteCommitMeta(id, merged); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeSummary writes the summary content data and its summary.sig, sig,
// or removes a stale signature when sig is nil (the summary is not
// signed: it could only fail verification). Both are written beside their
// places before either is replaced, so that a failure to write one leaves
// the pair as it was, never a summary its signature does not match.
func writeSummary(r *repo.Repo, data, sig []byte, sync bool) error {
	var st *durable.Staged
	if sig != nil {
		var err error
		if st, err = durable.Stage(r.Path(sign.SummarySigFile), sig, 0o644, sync); err != nil {
			return fmt.Errorf("writing summary signature: %w", err)
		}
	}
	if err := durable.WriteFile(r.Path(SummaryFile), data, 0o644, sync); err != nil {
		if st != nil {
			st.Abort()
		}
		return fmt.Errorf("writing summary: %w", err)
	}
	if st != nil {
		if err := st.Replace(); err != nil {
			return fmt.Errorf("writing summary signature: %w", err)
		}
		return nil
	}
	err := os.Remove(r.Path(sign.SummarySigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && sync {
		err = durable.SyncDir(r.Path())
	}
	if err != nil {
		return fmt.Errorf("removing stale summary signature: %w", err)
	}
	return nil
}
