package remote_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
	"github.com/otree/otree/repo/sign"
)

// TestPullDeltaVerifiesCommit checks that a commit arriving in a static
// delta's superblock passes the checks a commit fetched as an object
// passes: a trusted signature when the remote asks for one, and its ref
// binding. A refused delta applies no part and publishes nothing.
func TestPullDeltaVerifiesCommit(t *testing.T) {
	o, a, b, name := deltaOrigin(t, false)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.AddRemote(dest, remote.Remote{Name: "signed", URL: o.srv.URL}, remote.AddOptions{Set: inlineKey(pub)}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(ctx, dest, fastOpts(a.String())); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"signed:os/stable", "origin:os/testing"} {
		if err := dest.SetRef(ref, a); err != nil {
			t.Fatal(err)
		}
	}
	before := storedObjects(t, dest)
	refused := func(what string, err error, is func(error) bool) {
		t.Helper()
		if !is(err) {
			t.Fatalf("%s: err = %v", what, err)
		}
		errContains(t, err, b.String(), name.Rel()+"/superblock")
		if _, parts := deltaHits(t, o, name); parts != 0 {
			t.Errorf("%s: %d delta parts fetched", what, parts)
		}
		if got := storedObjects(t, dest); len(got) != len(before) {
			t.Errorf("%s: %d objects published", what, len(got)-len(before))
		}
		if got := mustRef(t, dest, "signed:os/stable"); got != a {
			t.Errorf("%s: signed:os/stable moved to %s", what, got)
		}
	}

	// B is unsigned: the delta is refused before any part is fetched.
	o.resetHits()
	opts := fastOpts("os/stable")
	opts.Remote = "signed"
	_, err := remote.Pull(ctx, dest, opts)
	refused("unsigned", err, func(err error) bool { return errors.Is(err, sign.ErrNoSignature) })

	// B is served as os/testing, but it is bound to os/stable.
	if err := o.r.SetRef("os/testing", b); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	o.resetHits()
	_, err = remote.Pull(ctx, dest, fastOpts("os/testing"))
	refused("bound elsewhere", err, func(err error) bool { var be *repo.RefBindingError; return errors.As(err, &be) })

	// Signed, and the delta regenerated to carry the signature: it is used.
	if _, err := sign.SignCommit(ctx, o.r, b, priv); err != nil {
		t.Fatal(err)
	}
	if _, err := delta.Generate(ctx, o.r, delta.GenerateOptions{From: a, To: b, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	res, err := remote.Pull(ctx, dest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{name.String()}, res.Deltas); diff != "" {
		t.Errorf("deltas used (-want +got):\n%s", diff)
	}
	if _, err := sign.VerifyCommit(dest, b, []ed25519.PublicKey{pub}); err != nil {
		t.Errorf("the signature did not arrive with the delta: %v", err)
	}
	checkFsck(t, dest)
}
