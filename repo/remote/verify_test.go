package remote_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/otree/otree/repo/sign"
)

var smallTree = testtree.Tree{
	"etc/demo.conf": testtree.File("key=value\n", 0o644),
	"bin/hello":     testtree.File("#!/bin/sh\necho hello\n", 0o755),
}

func genKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// signedOrigin serves a commit on main; keys sign it (none: unsigned).
func signedOrigin(t *testing.T, keys ...ed25519.PrivateKey) (*origin, repo.ID) {
	t.Helper()
	o := newOrigin(t)
	id := o.commit("main", smallTree, 1700000000)
	if len(keys) > 0 {
		if _, err := sign.SignCommit(ctx, o.r, id, keys...); err != nil {
			t.Fatal(err)
		}
	}
	return o, id
}

// verifyingDest makes a repository whose remote origin has the given keys.
func verifyingDest(t *testing.T, url string, set map[string]string) *repo.Repo {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := remote.AddRemote(r, remote.Remote{Name: "origin", URL: url}, remote.AddOptions{Set: set}); err != nil {
		t.Fatal(err)
	}
	return r
}

func inlineKey(pub ed25519.PublicKey) map[string]string {
	return map[string]string{"sign-verify": "true", "verification-ed25519-key": sign.EncodeKey(pub)}
}

// treeHits counts requests for objects other than commits and their
// detached metadata.
func (o *origin) treeHits() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for p, c := range o.hits {
		if strings.HasPrefix(p, "/objects/") && !strings.HasSuffix(p, ".commit") && !strings.HasSuffix(p, ".commitmeta") {
			n += c
		}
	}
	return n
}

func TestPullVerifiesCommitSignature(t *testing.T) {
	pub, priv := genKey(t)
	o, id := signedOrigin(t, priv)
	dest := verifyingDest(t, o.srv.URL, inlineKey(pub))
	res, err := remote.Pull(ctx, dest, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dest, "origin:main"); got != id || len(res.Refs) != 1 {
		t.Fatalf("origin:main = %s, want %s", got, id)
	}
	// The signature came along: the pulled commit verifies locally.
	if k, err := sign.VerifyCommit(dest, id, []ed25519.PublicKey{pub}); err != nil || !k.Equal(pub) {
		t.Errorf("pulled commit does not verify locally: %v", err)
	}
	checkSameTree(t, o.r, dest, id)
	checkFsck(t, dest)
}

func TestPullRefusesBadCommitSignatures(t *testing.T) {
	trusted, trustedPriv := genKey(t)
	_, untrustedPriv := genKey(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (*origin, repo.ID)
		want  error
	}{
		{"unsigned", func(t *testing.T) (*origin, repo.ID) { return signedOrigin(t) }, sign.ErrNoSignature},
		{"untrusted key", func(t *testing.T) (*origin, repo.ID) { return signedOrigin(t, untrustedPriv) }, sign.ErrBadSignature},
		{"signature over other bytes", func(t *testing.T) (*origin, repo.ID) {
			// The commit carries a valid signature by the trusted key,
			// but of another commit.
			o, id := signedOrigin(t)
			other := o.commit("other", testtree.Tree{"x": testtree.File("x", 0o644)}, 1700000001)
			if _, err := sign.SignCommit(ctx, o.r, other, trustedPriv); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(o.r.ObjectPath(repo.KindCommitMeta, other))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(o.r.ObjectPath(repo.KindCommitMeta, id), data, 0o644); err != nil {
				t.Fatal(err)
			}
			return o, id
		}, sign.ErrBadSignature},
		{"tampered signature", func(t *testing.T) (*origin, repo.ID) {
			o, id := signedOrigin(t, trustedPriv)
			m, err := o.r.ReadCommitMeta(id)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := m.Get(sign.MetadataKey)
			v[5] ^= 0x40
			if err := os.WriteFile(o.r.ObjectPath(repo.KindCommitMeta, id), repo.EncodeCommitMeta(m), 0o644); err != nil {
				t.Fatal(err)
			}
			return o, id
		}, sign.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, id := tc.setup(t)
			dest := verifyingDest(t, o.srv.URL, inlineKey(trusted))
			o.resetHits()
			_, err := remote.Pull(ctx, dest, fastOpts("main"))
			errContains(t, err, "remote origin", id.String())
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v does not match %v", err, tc.want)
			}
			if n := o.treeHits(); n != 0 {
				t.Errorf("%d tree or file objects fetched for a refused commit", n)
			}
			checkNothingMoved(t, dest)
		})
	}
}

func TestPullVerifiesStoredCommit(t *testing.T) {
	pub, priv := genKey(t)
	o, id := signedOrigin(t)
	// The commit arrives first through a remote that does not verify.
	dest := verifyingDest(t, o.srv.URL, nil)
	if _, err := remote.Pull(ctx, dest, fastOpts("main")); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.AddRemote(dest, remote.Remote{Name: "signed", URL: o.srv.URL}, remote.AddOptions{Set: inlineKey(pub)}); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts("main")
	opts.Remote = "signed"
	before := storedObjects(t, dest)
	_, err := remote.Pull(ctx, dest, opts)
	errContains(t, err, "remote signed", id.String())
	if _, err := dest.ReadRef("signed:main"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("signed:main written by a refused pull: %v", err)
	}
	if after := storedObjects(t, dest); len(after) != len(before) {
		t.Errorf("objects: %d before, %d after a refused pull", len(before), len(after))
	}

	// Once the origin signs it, the stored commit verifies with the
	// remote's signature, which is kept here.
	if _, err := sign.SignCommit(ctx, o.r, id, priv); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(ctx, dest, opts); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dest, "signed:main"); got != id {
		t.Errorf("signed:main = %s", got)
	}
	if _, err := sign.VerifyCommit(dest, id, []ed25519.PublicKey{pub}); err != nil {
		t.Errorf("the remote's signature was not stored: %v", err)
	}
}

func TestPullVerifiesSummarySignature(t *testing.T) {
	pub, priv := genKey(t)
	o, id := signedOrigin(t, priv)
	set := inlineKey(pub)
	set["sign-verify-summary"] = "true"
	signSummary := func() {
		t.Helper()
		if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true, SignKeys: []ed25519.PrivateKey{priv}}); err != nil {
			t.Fatal(err)
		}
	}

	// Unsigned summary: refused before any object is fetched, whether
	// or not the refs are named (ref files are never read instead).
	for _, refs := range [][]string{nil, {"main"}} {
		dest := verifyingDest(t, o.srv.URL, set)
		o.resetHits()
		_, err := remote.Pull(ctx, dest, fastOpts(refs...))
		errContains(t, err, "remote origin", "summary.sig")
		if o.objectHits() != 0 || o.hitsOf("/refs/heads/main") != 0 {
			t.Errorf("refused summary: %d object requests, %d ref requests", o.objectHits(), o.hitsOf("/refs/heads/main"))
		}
		checkNothingMoved(t, dest)
	}

	signSummary()
	if _, err := os.Stat(filepath.Join(o.dir, "summary.sig")); err != nil {
		t.Fatal(err)
	}
	dest := verifyingDest(t, o.srv.URL, set)
	if _, err := remote.Pull(ctx, dest, fastOpts()); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dest, "origin:main"); got != id {
		t.Errorf("origin:main = %s", got)
	}
	refs, err := remote.RemoteRefs(ctx, dest, "origin", fastOpts())
	if err != nil || len(refs) != 1 || refs[0].Commit != id {
		t.Errorf("RemoteRefs = %v, %v", refs, err)
	}

	// A summary changed after signing (a new branch, the old summary.sig
	// put back) is refused.
	oldSig, _ := os.ReadFile(filepath.Join(o.dir, "summary.sig"))
	o.commit("evil", smallTree, 1700000005) // rewrites the summary unsigned
	if _, err := os.Stat(filepath.Join(o.dir, "summary.sig")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unsigned summary update left summary.sig: %v", err)
	}
	if err := os.WriteFile(filepath.Join(o.dir, "summary.sig"), oldSig, 0o644); err != nil {
		t.Fatal(err)
	}
	dest = verifyingDest(t, o.srv.URL, set)
	o.resetHits()
	_, err = remote.Pull(ctx, dest, fastOpts())
	errContains(t, err, "remote origin", "summary")
	if !errors.Is(err, sign.ErrBadSignature) || o.objectHits() != 0 {
		t.Errorf("tampered summary: %v, %d object requests", err, o.objectHits())
	}
	checkNothingMoved(t, dest)
	if _, err := remote.RemoteRefs(ctx, dest, "origin", fastOpts()); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("RemoteRefs of a tampered summary = %v", err)
	}
}

func TestPullSystemWideKeys(t *testing.T) {
	pub, priv := genKey(t)
	o, id := signedOrigin(t, priv)
	root := t.TempDir()
	set := map[string]string{"sign-verify": "true"}

	// No key anywhere: an error naming the remote, before any object.
	dest := verifyingDest(t, o.srv.URL, set)
	opts := fastOpts()
	opts.TrustedKeysRoot = root
	o.resetHits()
	_, err := remote.Pull(ctx, dest, opts)
	errContains(t, err, "remote origin", "no trusted ed25519 public key")
	if !errors.Is(err, sign.ErrNoTrustedKeys) || o.objectHits() != 0 {
		t.Errorf("no keys: %v, %d object requests", err, o.objectHits())
	}
	checkNothingMoved(t, dest)

	// Another key installed system-wide: refused.
	other, _ := genKey(t)
	writeKeys := func(path string, keys ...ed25519.PublicKey) {
		t.Helper()
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(sign.EncodeKey(k) + "\n")
		}
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeKeys(filepath.Join(root, "etc/otree/trusted.ed25519"), other)
	if _, err := remote.Pull(ctx, dest, opts); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("pull with only an untrusted system key = %v", err)
	}
	checkNothingMoved(t, dest)

	// The right key in a vendor directory: accepted.
	writeKeys(filepath.Join(root, "usr/share/otree/trusted.ed25519.d/vendor"), pub)
	if _, err := remote.Pull(ctx, dest, opts); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dest, "origin:main"); got != id {
		t.Errorf("origin:main = %s", got)
	}

	// A remote naming its own key ignores the system-wide ones.
	dest2 := verifyingDest(t, o.srv.URL, inlineKey(other))
	if _, err := remote.Pull(ctx, dest2, opts); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("remote key ignored in favour of system keys: %v", err)
	}

	// A revocation list that cannot be read (here a directory) fails
	// closed: it might revoke the key that signed.
	revoked := filepath.Join(root, "etc/otree/revoked.ed25519")
	if err := os.Mkdir(revoked, 0o755); err != nil {
		t.Fatal(err)
	}
	dest3 := verifyingDest(t, o.srv.URL, set)
	o.resetHits()
	_, err = remote.Pull(ctx, dest3, opts)
	errContains(t, err, "remote origin", revoked, "not a regular file")
	if n := o.objectHits(); n != 0 {
		t.Errorf("%d object requests with an unreadable revocation list", n)
	}
	checkNothingMoved(t, dest3)
}

func TestRemoteVerificationConfig(t *testing.T) {
	pub, _ := genKey(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	os.WriteFile(file, []byte(sign.EncodeKey(pub)+"\n"), 0o644)
	for _, tc := range []struct {
		name string
		set  map[string]string
		want string // error substring, "" for none
		keys int
	}{
		{"off", map[string]string{"verification-ed25519-key": "junk"}, "", 0},
		{"inline", inlineKey(pub), "", 1},
		{"file", map[string]string{"sign-verify": "true", "verification-ed25519-file": file}, "", 1},
		{"inline and file", map[string]string{"sign-verify": "1", "verification-ed25519-file": file, "verification-ed25519-key": sign.EncodeKey(pub)}, "", 2},
		{"bad bool", map[string]string{"sign-verify": "maybe"}, `unsupported signature type "maybe"`, 0},
		{"empty list", map[string]string{"sign-verify": ";"}, `sign-verify=";" is neither`, 0},
		// OSTree's list of the types that must verify.
		{"type list", map[string]string{"sign-verify": "ed25519;", "verification-ed25519-key": sign.EncodeKey(pub)}, "", 1},
		{"summary type list", map[string]string{"sign-verify-summary": "ed25519", "verification-ed25519-key": sign.EncodeKey(pub)}, "", 1},
		{"other type", map[string]string{"sign-verify": "ed25519;dummy", "verification-ed25519-key": sign.EncodeKey(pub)}, `unsupported signature type "dummy"`, 0},
		{"bad inline key", map[string]string{"sign-verify": "true", "verification-ed25519-key": "abc"}, "verification-ed25519-key", 0},
		{"missing file", map[string]string{"sign-verify-summary": "true", "verification-ed25519-file": filepath.Join(dir, "nope")}, filepath.Join(dir, "nope"), 0},
		// Separators only: the remote names its keys, so not the
		// system-wide ones, and has none.
		{"inline without a key", map[string]string{"sign-verify": "true", "verification-ed25519-key": " ; "}, `verification-ed25519-key=" ; " holds no key`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rm := &remote.Remote{Name: "origin", Options: tc.set}
			v, err := remote.RemoteVerification(rm, t.TempDir())
			if tc.want != "" {
				errContains(t, err, "remote origin", tc.want)
				if strings.Contains(tc.name, "without a key") && !errors.Is(err, sign.ErrNoTrustedKeys) {
					t.Errorf("error %v does not match sign.ErrNoTrustedKeys", err)
				}
				return
			}
			if err != nil || len(v.Keys) != tc.keys {
				t.Errorf("verification = %+v, %v; want %d keys", v, err, tc.keys)
			}
			on := func(k string) bool { return tc.set[k] != "" && tc.set[k] != "false" && tc.set[k] != "0" }
			if err == nil && (v.Commits != on("sign-verify") || v.Summary != on("sign-verify-summary")) {
				t.Errorf("verification = %+v; want commits %v, summary %v", v, on("sign-verify"), on("sign-verify-summary"))
			}
		})
	}
}

func TestPullFileRemoteVerifiesSummary(t *testing.T) {
	pub, priv := genKey(t)
	o, id := signedOrigin(t, priv)
	set := inlineKey(pub)
	set["sign-verify-summary"] = "true"
	dest := verifyingDest(t, "file://"+o.dir, set)
	// A file:// remote's refs are normally read directly; with summary
	// verification on, only a signed summary is believed.
	_, err := remote.Pull(ctx, dest, fastOpts("main"))
	errContains(t, err, "remote origin", filepath.Join(o.dir, "summary.sig"))
	checkNothingMoved(t, dest)
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true, SignKeys: []ed25519.PrivateKey{priv}}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(ctx, dest, fastOpts("main")); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dest, "origin:main"); got != id {
		t.Errorf("origin:main = %s", got)
	}
}

// RemoteSummary of a file:// remote that verifies commits, but not the
// summary, reads the source's summary file as it does with no
// verification at all, rather than reporting it missing.
func TestRemoteSummaryFileRemoteVerifyingCommits(t *testing.T) {
	pub, priv := genKey(t)
	o, id := signedOrigin(t, priv)
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	dest := verifyingDest(t, "file://"+o.dir, inlineKey(pub))
	s, err := remote.RemoteSummary(ctx, dest, "origin", remote.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Lookup("main"); !ok || got != id {
		t.Errorf("remote summary lists main at %s (%v), want %s", got, ok, id)
	}
}

// TestPullAddsLaterSignatures: a commit signed at the source after it was
// pulled gets that signature at the next pull, beside the one made here,
// and pull-local does the same.
func TestPullAddsLaterSignatures(t *testing.T) {
	pubA, privA := genKey(t)
	pubB, privB := genKey(t)
	o, id := signedOrigin(t)
	dest := verifyingDest(t, o.srv.URL, nil)
	if _, err := remote.Pull(ctx, dest, fastOpts("main")); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.SignCommit(ctx, dest, id, privA); err != nil { // signed here
		t.Fatal(err)
	}
	if _, err := sign.SignCommit(ctx, o.r, id, privB); err != nil { // and at the source
		t.Fatal(err)
	}
	if _, err := remote.Pull(ctx, dest, fastOpts("main")); err != nil {
		t.Fatal(err)
	}
	for _, pub := range []ed25519.PublicKey{pubA, pubB} {
		if _, err := sign.VerifyCommit(dest, id, []ed25519.PublicKey{pub}); err != nil {
			t.Errorf("after the second pull: %v", err)
		}
	}

	local, err := repo.Init(filepath.Join(t.TempDir(), "local"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if _, err := remote.PullLocal(ctx, local, o.dir, remote.PullOptions{Refs: []string{"main"}, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	_, privC := genKey(t)
	pubC := privC.Public().(ed25519.PublicKey)
	if _, err := sign.SignCommit(ctx, o.r, id, privC); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.PullLocal(ctx, local, o.dir, remote.PullOptions{Refs: []string{"main"}, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.VerifyCommit(local, id, []ed25519.PublicKey{pubC}); err != nil {
		t.Errorf("pull-local: %v", err)
	}
}

// TestPullRefusesSmallOrderKey trusts a key of small order (the identity,
// as a placeholder of zeros would be): anyone can sign for it, so the
// server's forged signature must not let its commit in, whether the key
// is the remote's or installed system-wide.
func TestPullRefusesSmallOrderKey(t *testing.T) {
	o, id := signedOrigin(t)
	weak := ed25519.PublicKey(append([]byte{1}, make([]byte, 31)...))
	// R = the identity, S = 0: crypto/ed25519 takes it for any data.
	forged := append([]byte{1}, make([]byte, 63)...)
	m := repo.Metadata{}.Set(sign.MetadataKey, forged)
	if err := os.WriteFile(o.r.ObjectPath(repo.KindCommitMeta, id), repo.EncodeCommitMeta(m), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	keys := filepath.Join(root, "etc/otree/trusted.ed25519")
	os.MkdirAll(filepath.Dir(keys), 0o755)
	if err := os.WriteFile(keys, []byte(sign.EncodeKey(weak)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, set := range map[string]map[string]string{
		"inline":      inlineKey(weak),
		"system-wide": {"sign-verify": "true"},
	} {
		t.Run(name, func(t *testing.T) {
			dest := verifyingDest(t, o.srv.URL, set)
			opts := fastOpts("main")
			opts.TrustedKeysRoot = root
			_, err := remote.Pull(ctx, dest, opts)
			errContains(t, err, "remote origin", sign.EncodeKey(weak), "small order")
			checkNothingMoved(t, dest)
		})
	}
}

// TestPullSignVerifyTypeList reads sign-verify as OSTree does when it
// lists signature types: "ed25519;" verifies ed25519 signatures.
func TestPullSignVerifyTypeList(t *testing.T) {
	pub, priv := genKey(t)
	set := map[string]string{"sign-verify": "ed25519;", "verification-ed25519-key": sign.EncodeKey(pub)}
	unsigned, _ := signedOrigin(t)
	dest := verifyingDest(t, unsigned.srv.URL, set)
	if _, err := remote.Pull(ctx, dest, fastOpts("main")); !errors.Is(err, sign.ErrNoSignature) {
		t.Errorf("unsigned commit with sign-verify=ed25519: %v", err)
	}
	checkNothingMoved(t, dest)
	signed, id := signedOrigin(t, priv)
	dest = verifyingDest(t, signed.srv.URL, set)
	if _, err := remote.Pull(ctx, dest, fastOpts("main")); err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dest, "origin:main"); got != id {
		t.Errorf("origin:main = %s, want %s", got, id)
	}
}

// A summary that cannot be signed is not written: the summary and its
// signature stay the pair they were, which clients still verify, and
// nothing staged is left beside them.
func TestUpdateSummaryFailedSignKeepsPair(t *testing.T) {
	pub, priv := genKey(t)
	o, id := signedOrigin(t, priv)
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true, SignKeys: []ed25519.PrivateKey{priv}}); err != nil {
		t.Fatal(err)
	}
	read := func() (sum, sig []byte) {
		t.Helper()
		sum, err := os.ReadFile(o.r.Path(remote.SummaryFile))
		if err != nil {
			t.Fatal(err)
		}
		if sig, err = os.ReadFile(o.r.Path(sign.SummarySigFile)); err != nil {
			t.Fatal(err)
		}
		return sum, sig
	}
	sum0, sig0 := read()
	if err := o.r.SetRef("other", id); err != nil { // a new summary differs
		t.Fatal(err)
	}
	_, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true, SignKeys: []ed25519.PrivateKey{priv, ed25519.PrivateKey("short")}})
	errContains(t, err, "signing summary")
	sum, sig := read()
	if string(sum) != string(sum0) || string(sig) != string(sig0) {
		t.Errorf("a failed signed update changed the summary (%v) or its signature (%v)", string(sum) != string(sum0), string(sig) != string(sig0))
	}
	if _, err := sign.VerifySummary(sum, sig, []ed25519.PublicKey{pub}); err != nil {
		t.Errorf("after a failed update: %v", err)
	}
	ents, _ := os.ReadDir(o.r.Path())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
