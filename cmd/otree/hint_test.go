package main

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/otree/otree/deploy"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

// The library's errors say what is wrong; hint names, in the command
// line's terms, what deals with each, however deep it is wrapped. A
// command's own hint comes first.
func TestHint(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("op: %w", err) }
	for _, c := range []struct {
		err  error
		want string
	}{
		{wrap(&deploy.DowngradeError{}), "pass --allow-downgrade to deploy it"},
		{wrap(&deploy.NoStaterootError{OS: "debian"}), "create it with `otree admin os-init debian`"},
		{wrap(&deploy.NoStaterootError{OS: "debian", Missing: "/otree/deploy/debian/var"}), "complete it with `otree admin os-init debian`"},
		{wrap(deploy.ErrStaterootNeeded), "give a stateroot with --os"},
		{wrap(deploy.ErrNotSysroot), "create one with `otree admin init-fs`"},
		{wrap(deploy.ErrFellBack), "`otree admin rollback` makes the booted deployment the default"},
		{wrap(repo.ErrNoConfig), "create a repository with `otree init`"},
		{wrap(remote.ErrRemoteNotFound), "add it with `otree remote add`"},
		{wrap(remote.ErrNoSummary), "`otree summary -u` run in that repository writes one"},
		{wrap(remote.ErrSummarySigned), "write it with `otree summary -u --sign=KEY`"},
		{wrap(remote.ErrBareUserOnlyMode), "--bareuseronly-files refuses setuid, setgid, sticky and other-writable files"},
		{wrap(remote.ErrRefsDisagree), "pass --commit to choose"},
		{wrap(&delta.FallbackMissingError{}), "pull them first, or generate the delta with --min-fallback-size=0"},
		{wrap(withHint(wrap(remote.ErrRemoteNotFound), "pass --if-exists")), "pass --if-exists"},
		{repo.ErrNotRepository, ""},
		{errors.New("other"), ""},
	} {
		if got := hint(c.err); got != c.want {
			t.Errorf("hint(%T %v) = %q, want %q", errors.Unwrap(c.err), c.err, got, c.want)
		}
	}
	if withHint(nil, "x") != nil {
		t.Error("withHint(nil) is not nil")
	}
	var b bytes.Buffer
	run(t.Context(), []string{"--repo=" + t.TempDir(), "refs"}, nil, &b, &b)
	if want := "hint: create a repository with `otree init`\n"; !bytes.HasSuffix(b.Bytes(), []byte(want)) {
		t.Errorf("run printed %q, want it to end in %q", b.String(), want)
	}
}
