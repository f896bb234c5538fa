package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

// generateKey runs otree sign --generate-key and returns the secret key
// file, the secret key and the public key printed.
func generateKey(t *testing.T, c *cli) (string, string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "secret.ed25519")
	pub := strings.TrimSpace(c.ok("sign", "--generate-key="+file))
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(file)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret key file mode %v, want 0600", fi.Mode().Perm())
	}
	secret := strings.TrimSpace(string(data))
	k, err := sign.ParseSecretKey(secret)
	if err != nil || sign.EncodeKey(k.Public().(ed25519.PublicKey)) != pub {
		t.Fatalf("generated key pair does not match: %v", err)
	}
	return file, secret, pub
}

func TestSignCommand(t *testing.T) {
	c := newCLI(t)
	id := c.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	keyFile, secret, pub := generateKey(t, c)
	_, secret2, pub2 := generateKey(t, c)
	c.fails(exitError, []string{keyFile, "exists"}, "sign", "--generate-key="+keyFile)

	c.fails(exitError, []string{id.String(), "no ed25519 signature"}, "sign", "--verify", "os/stable", pub)
	if got := c.ok("sign", "os/stable", secret); !strings.Contains(got, id.String()+": 1 signature added") {
		t.Errorf("sign printed %q", got)
	}
	// The same key again adds nothing; --keys-file works as KEY does.
	if got := c.ok("sign", "--keys-file="+keyFile, id.String()); !strings.Contains(got, "0 signatures added, 1 key had signed it already") {
		t.Errorf("sign again printed %q", got)
	}
	if got := c.ok("sign", "--verify", "os/stable", pub2, pub); !strings.Contains(got, "valid ed25519 signature by key "+pub) {
		t.Errorf("sign --verify printed %q", got)
	}
	res := c.fails(exitError, []string{id.String(), "no valid ed25519 signature by a trusted key"}, "sign", "--verify", "os/stable", pub2)
	if res.stdout != "" {
		t.Errorf("failed verify printed %q", res.stdout)
	}
	pubFile := filepath.Join(t.TempDir(), "trusted")
	os.WriteFile(pubFile, []byte("# release\n"+pub2+"\n"), 0o644)
	c.fails(exitError, []string{id.String()}, "sign", "--verify", "--keys-file="+pubFile, "os/stable")
	c.ok("sign", "os/stable", secret2)
	var j signJSON
	if err := json.Unmarshal([]byte(c.ok("sign", "--verify", "--json", "--keys-file="+pubFile, "os/stable")), &j); err != nil || !j.Verified || j.Key != pub2 || j.Commit != id {
		t.Errorf("sign --verify --json = %+v, %v", j, err)
	}
	// --keys-dir replaces the system directories.
	dir := t.TempDir()
	// The error names the files it looked for, not a list of directories.
	c.fails(exitError, []string{"no trusted ed25519 public key", "install keys in " + dir + "/trusted.ed25519(.d)"}, "sign", "--verify", "--keys-dir="+dir, "os/stable")
	os.WriteFile(filepath.Join(dir, "trusted.ed25519"), []byte(pub+"\n"), 0o644)
	if got := c.ok("sign", "--verify", "--keys-dir="+dir, "os/stable"); !strings.Contains(got, pub) {
		t.Errorf("sign --verify --keys-dir printed %q", got)
	}

	// show lists both signatures.
	if got := c.ok("show", "os/stable"); strings.Count(got, "Signature: ed25519 ") != 2 {
		t.Errorf("show printed %q", got)
	}
	var sj showJSON
	if err := json.Unmarshal([]byte(c.ok("show", "--json", "os/stable")), &sj); err != nil || len(sj.Signatures) != 2 || sj.ID != id {
		t.Errorf("show --json = %+v, %v", sj, err)
	}

	// --delete drops the signatures of the keys given, and only those.
	if got := c.ok("sign", "--delete", "os/stable", pub); !strings.Contains(got, id.String()+": 1 signature deleted") {
		t.Errorf("sign --delete printed %q", got)
	}
	c.fails(exitError, []string{"no valid ed25519 signature"}, "sign", "--verify", "os/stable", pub)
	c.ok("sign", "--verify", "os/stable", pub2)
	if got := c.ok("sign", "-d", "os/stable", pub); !strings.Contains(got, "0 signatures deleted") {
		t.Errorf("sign --delete again printed %q", got)
	}
	if err := json.Unmarshal([]byte(c.ok("sign", "--delete", "--json", "--keys-file="+pubFile, "os/stable")), &j); err != nil || j.Deleted == nil || *j.Deleted != 1 {
		t.Errorf("sign --delete --json = %+v, %v", j, err)
	}
	if got := c.ok("show", "os/stable"); strings.Contains(got, "Signature:") {
		t.Errorf("show after deleting every signature:\n%s", got)
	}
	c.fails(exitError, []string{"no ed25519 signature"}, "sign", "--verify", "os/stable", pub2)
	c.fails(exitUsage, []string{"--delete needs"}, "sign", "--delete", "os/stable")
	c.fails(exitUsage, []string{"exclude"}, "sign", "--delete", "--verify", "os/stable", pub)

	// Bad input: the key is never echoed.
	res = c.fails(exitUsage, []string{"KEY #1", "32 bytes, want 64"}, "sign", "os/stable", pub)
	if strings.Contains(res.stderr, pub) {
		t.Errorf("error echoes the key: %q", res.stderr)
	}
	c.fails(exitUsage, []string{"dummy"}, "sign", "--sign-type=dummy", "os/stable", secret)
	c.fails(exitUsage, []string{"secret KEY"}, "sign", "os/stable")
	c.fails(exitError, []string{"nope"}, "sign", "nope", secret)
	c.fails(exitUsage, []string{"PUBKEY"}, "sign", "--verify", "os/stable", "abc")
}

// A secret key given where a public key is wanted is refused without being
// written to the terminal (or a CI log): naming its place is enough.
func TestSecretKeyAsPublicNotEchoed(t *testing.T) {
	c := newCLI(t)
	_, secret, pub := generateKey(t, c)
	c.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	for _, args := range [][]string{
		{"sign", "--verify", "os/stable", pub, secret},
		{"sign", "--delete", "os/stable", secret},
		{"remote", "add", "--sign-verify=ed25519=inline:" + secret, "x", "file:///nonexistent"},
	} {
		res := c.fails(exitUsage, []string{"64 bytes, want 32", "a secret key's length"}, args...)
		if strings.Contains(res.stderr, secret) || strings.Contains(res.stdout, secret) {
			t.Errorf("otree %s echoes the secret key: %q", args[0], res.stderr)
		}
	}
	c.fails(exitUsage, []string{"PUBKEY #2"}, "sign", "--verify", "os/stable", pub, secret)
}

func TestCommitAndSummarySign(t *testing.T) {
	c := newCLI(t)
	keyFile, secret, pub := generateKey(t, c)
	_, secret2, pub2 := generateKey(t, c)
	pk, _ := sign.ParsePublicKey(pub)
	pk2, _ := sign.ParsePublicKey(pub2)
	dir := source(t, fixture)

	out := c.ok("commit", "--branch=signed", "--owner-uid=0", "--owner-gid=0", "--sign="+secret, "--sign-from-file="+keyFile, "--sign="+secret2, dir)
	id, err := repo.ParseID(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := sign.CommitSignatures(c.r, id)
	if err != nil || len(sigs) != 2 {
		t.Fatalf("commit carries %d signatures (%v), want 2: one per distinct key", len(sigs), err)
	}
	for _, k := range []ed25519.PublicKey{pk, pk2} {
		if _, err := sign.VerifyCommit(c.r, id, []ed25519.PublicKey{k}); err != nil {
			t.Error(err)
		}
	}
	// A bad key fails before anything is written.
	c.fails(exitUsage, []string{"--sign #1"}, "commit", "--branch=bad", "--sign=xyz", dir)
	c.fails(exitUsage, []string{"dummy"}, "commit", "--branch=bad", "--sign-type=dummy", "--sign="+secret, dir)
	// Signatures that do not split into 64-byte ones are refused before
	// anything is written, with or without a key to sign with: no later
	// sign, sign --delete or show of the commit could read them.
	for _, extra := range [][]string{nil, {"--sign=" + secret}} {
		args := append([]string{"commit", "--branch=bad", "--add-detached-metadata-string=otree.sign.ed25519=abc"}, extra...)
		c.fails(exitError, []string{"otree.sign.ed25519", "3 bytes"}, append(args, dir)...)
	}
	if _, err := c.r.ReadRef("bad"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("a commit with a bad key moved its branch: %v", err)
	}

	// summary -u --sign writes summary.sig; an unsigned update removes it.
	c.ok("summary", "-u", "--sign="+secret)
	sum, _ := os.ReadFile(c.r.Path("summary"))
	sig, err := os.ReadFile(c.r.Path("summary.sig"))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := sign.VerifySummary(sum, sig, []ed25519.PublicKey{pk2, pk}); err != nil || !k.Equal(pk) {
		t.Errorf("summary.sig does not verify: %v", err)
	}
	c.ok("summary", "-u")
	if _, err := os.Stat(c.r.Path("summary.sig")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unsigned summary update left summary.sig: %v", err)
	}
	c.fails(exitUsage, []string{"-u only"}, "summary", "-v", "--sign="+secret)
}

func TestRemoteSignVerifyAndPull(t *testing.T) {
	src := newCLI(t)
	keyFile, secret, pub := generateKey(t, src)
	src.ok("commit", "--branch=signed", "--owner-uid=0", "--owner-gid=0", "--sign-from-file="+keyFile, source(t, fixture))
	src.commitTree("unsigned", source(t, testtree.Tree{"f": testtree.File("x", 0o644)}), "two", 1700000000)
	src.ok("summary", "-u", "--sign="+secret)
	url := serve(t, src, nil)

	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "--sign-verify=ed25519=inline:"+pub, "origin", url)
	cfg, _ := os.ReadFile(dst.r.Path("config"))
	if !strings.Contains(string(cfg), "sign-verify=true") || !strings.Contains(string(cfg), "verification-ed25519-key="+pub) {
		t.Errorf("config after remote add --sign-verify:\n%s", cfg)
	}
	dst.ok("pull", "origin", "signed")
	dst.ok("sign", "--verify", "origin:signed", pub)
	dst.fails(exitError, []string{"remote origin", "commit ", "no ed25519 signature"}, "pull", "origin", "unsigned")
	if _, err := dst.r.ReadRef("origin:unsigned"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("refused pull wrote its ref: %v", err)
	}

	// A key file, given relative, is stored absolute; the summary too
	// must be signed once sign-verify-summary is set.
	pubFile := filepath.Join(t.TempDir(), "trusted")
	os.WriteFile(pubFile, []byte(pub+"\n"), 0o644)
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, pubFile)
	if err != nil {
		t.Fatal(err)
	}
	dst2 := newBareUserCLI(t)
	dst2.ok("remote", "add", "--sign-verify=ed25519=file:"+rel, "--set=sign-verify-summary=true", "origin", url)
	cfg, _ = os.ReadFile(dst2.r.Path("config"))
	if !strings.Contains(string(cfg), "verification-ed25519-file="+pubFile) || !strings.Contains(string(cfg), "sign-verify-summary=true") {
		t.Errorf("config after remote add --sign-verify=ed25519=file:\n%s", cfg)
	}
	dst2.ok("pull", "origin", "signed")
	src.ok("summary", "-u")
	dst2.fails(exitError, []string{"remote origin", "summary.sig"}, "pull", "origin", "signed")

	dst.fails(exitUsage, []string{"inline:PUBKEY"}, "remote", "add", "--sign-verify=ed25519", "x", url)
	dst.fails(exitUsage, []string{"dummy"}, "remote", "add", "--sign-verify=dummy=inline:abc", "x", url)
	dst.fails(exitUsage, []string{"32"}, "remote", "add", "--sign-verify=ed25519=inline:abcd", "x", url)
	dst.fails(exitError, []string{"nope"}, "remote", "add", "--sign-verify=ed25519=file:/nope", "x", url)
	dst.fails(exitUsage, []string{"exclusive"}, "remote", "add", "--sign-verify=ed25519=inline:"+pub, "--no-sign-verify", "x", url)
	dst.ok("remote", "add", "--no-sign-verify", "plain", url)
	cfg, _ = os.ReadFile(dst.r.Path("config"))
	if !strings.Contains(string(cfg), "sign-verify=false") {
		t.Errorf("--no-sign-verify did not write sign-verify=false:\n%s", cfg)
	}
}

// sign --generate-key killed at each of its writes in turn (strace) leaves
// no file, or the whole key, at the path: never an empty one that a rerun
// refuses to replace. A rerun then writes a key.
func TestSignGenerateKeyKilled(t *testing.T) {
	strace := testbin.NeedStrace(t)
	exe, env := otreeBinary(t)
	c := newCLI(t)
	for when := 1; ; when++ {
		dir := t.TempDir()
		file := filepath.Join(dir, "secret.ed25519")
		cmd := exec.Command(strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=write",
			"-e", fmt.Sprintf("inject=write:signal=KILL:when=%d", when), exe, "sign", "--generate-key="+file)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != -1 { // strace dies of its tracee's signal
			if err != nil || when == 1 {
				t.Fatalf("generate-key with write %d: not killed (%v)\n%s", when, err, out)
			}
			break
		}
		if data, err := os.ReadFile(file); err == nil {
			if _, err := sign.ParseSecretKey(strings.TrimSpace(string(data))); err != nil {
				t.Fatalf("killed at write %d, generate-key left %s holding %q: %v", when, file, data, err)
			}
			continue
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("killed at write %d, generate-key left %s in %s", when, ents[0].Name(), dir)
		}
		c.ok("sign", "--generate-key="+file)
	}
}

// --sign-verify given more than once keeps every inline key, which the
// config key holds as a list: a commit signed by the first one given pulls.
// Two key files, which the file key cannot hold, are refused.
func TestRemoteAddSignVerifyRepeated(t *testing.T) {
	src := newCLI(t)
	keyFile, _, pub1 := generateKey(t, src)
	_, _, pub2 := generateKey(t, src)
	src.ok("commit", "--branch=signed", "--owner-uid=0", "--owner-gid=0", "--sign-from-file="+keyFile, source(t, fixture))
	src.ok("summary", "-u")
	url := serve(t, src, nil)

	dst := newBareUserCLI(t)
	dst.ok("remote", "add", "--sign-verify=ed25519=inline:"+pub1, "--sign-verify=ed25519=inline:"+pub2, "origin", url)
	if got := dst.ok("config", "get", `remote "origin".verification-ed25519-key`); got != pub1+";"+pub2+"\n" {
		t.Errorf("two --sign-verify inline keys wrote verification-ed25519-key=%q, want both", got)
	}
	dst.ok("pull", "origin", "signed")

	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte(pub1+"\n"), 0o644)
	os.WriteFile(b, []byte(pub2+"\n"), 0o644)
	dst.fails(exitUsage, []string{"one ed25519=file:PATH", a, b}, "remote", "add", "--sign-verify=ed25519=file:"+a, "--sign-verify=ed25519=file:"+b, "two", url)
	dst.fails(exitError, []string{`"two"`, "not configured"}, "remote", "show-url", "two")
}

// summary -u --sign-from-file given twice signs with the keys of both
// files, so clients trusting either key read the summary.
func TestSummarySignFromTwoFiles(t *testing.T) {
	src := newCLI(t)
	file1, _, pub1 := generateKey(t, src)
	file2, _, pub2 := generateKey(t, src)
	src.commitTree("main", source(t, testtree.Tree{"f": testtree.File("x", 0o644)}), "one", 1700000000)
	src.ok("summary", "-u", "--sign-from-file="+file1, "--sign-from-file="+file2)
	url := serve(t, src, nil)

	dst := newBareUserCLI(t)
	for i, pub := range []string{pub1, pub2} {
		name := fmt.Sprintf("k%d", i+1)
		dst.ok("remote", "add", "--sign-verify=ed25519=inline:"+pub, "--set=sign-verify-summary=true", name, url)
		if got := dst.ok("remote", "refs", "--cache-dir=-", name); got != name+":main\n" {
			t.Errorf("remote refs %s (trusting the key of --sign-from-file #%d) = %q", name, i+1, got)
		}
	}
}

// An empty --sign-from-file (a variable left unset) is refused, naming the
// flag, rather than taken as no key: summary -u would remove the
// summary.sig it was asked to write, commit and static-delta generate
// would write unsigned.
func TestSignFromEmptyFileRefused(t *testing.T) {
	c := newCLI(t)
	file, _, _ := generateKey(t, c)
	c.commitTree("main", source(t, testtree.Tree{"f": testtree.File("x", 0o644)}), "one", 1700000000)
	c.ok("summary", "-u", "--sign-from-file="+file)
	sig := c.r.Path(sign.SummarySigFile)
	before, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	c.fails(exitUsage, []string{"--sign-from-file: empty path"}, "summary", "-u", "--sign-from-file=")
	c.fails(exitUsage, []string{"--sign-from-file: empty path"}, "summary", "-u", "--sign-from-file="+file, "--sign-from-file=")
	if after, err := os.ReadFile(sig); err != nil || !bytes.Equal(after, before) {
		t.Errorf("summary.sig after the refused updates: %v, changed %v", err, !bytes.Equal(after, before))
	}
	dir := source(t, testtree.Tree{"f": testtree.File("y", 0o644)})
	c.fails(exitUsage, []string{"--sign-from-file: empty path"}, "commit", "-b", "main", "--sign-from-file=", dir)
	c.fails(exitUsage, []string{"--sign-from-file: empty path"}, "static-delta", "generate", "--empty", "--to=main", "--sign-from-file=")
}
