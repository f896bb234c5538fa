package remote_test

import (
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

// A pull that fails in the middle of a static delta keeps the objects of
// the parts it applied, and the next pull goes on from there: it does not
// fetch those parts again.
func TestPullDeltaResumesAfterAppliedParts(t *testing.T) {
	o := newOrigin(t)
	rng := rand.New(rand.NewSource(7))
	tr := testtree.Tree{}
	for i := range 24 {
		b := make([]byte, 24<<10)
		rng.Read(b)
		tr[fmt.Sprintf("usr/lib/f%02d", i)] = testtree.File(string(b), 0o644)
	}
	c := o.commit("os/stable", tr, 1700000000)
	name := delta.Name{To: c}
	sb, err := delta.Generate(ctx, o.r, delta.GenerateOptions{To: c, NoSync: true, MaxPartSize: 64 << 10, MinFallbackSize: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.Parts) < 4 {
		t.Fatalf("the delta has %d parts, want at least 4", len(sb.Parts))
	}
	if _, err := remote.UpdateSummary(ctx, o.r, remote.SummaryOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	failAt := len(sb.Parts) / 2
	failing := fmt.Sprintf("/%s/%d", name.Rel(), failAt)
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if req.URL.Path == failing {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	if _, err := remote.Pull(ctx, dest, fastOpts("os/stable")); err == nil || !strings.Contains(err.Error(), failing) {
		t.Fatalf("pull with part %d failing: %v", failAt, err)
	}
	checkNothingMoved(t, dest)

	o.mu.Lock()
	o.fault = nil
	o.mu.Unlock()
	o.resetHits()
	res, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deltas) != 1 {
		t.Fatalf("deltas used: %v", res.Deltas)
	}
	for i := range sb.Parts {
		n := o.hitsOf(fmt.Sprintf("/%s/%d", name.Rel(), i))
		if want := map[bool]int{true: 0, false: 1}[i < failAt]; n != want {
			t.Errorf("the second pull fetched part %d %d times, want %d (part %d failed the first)", i, n, want, failAt)
		}
	}
	checkSameTree(t, o.r, dest, c)
	checkFsck(t, dest)
}
