package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOperands(t *testing.T) {
	for _, tc := range []struct {
		use      string
		required []string
		max      int
		ok       bool
	}{
		{"log REV", []string{"REV"}, 1, true},
		{"fsck", nil, 0, true},
		{"cat REV PATH...", []string{"REV", "PATH"}, -1, true},
		{"checkout REV [DEST]", []string{"REV"}, 2, true},
		{"ls [-R] [-C] [-X] [-d] REV [PATH...]", []string{"REV"}, -1, true},
		{"create-usb MOUNT-PATH COLLECTION-ID REF [COLLECTION-ID REF...]", []string{"MOUNT-PATH", "COLLECTION-ID", "REF"}, -1, true},
		{"diff [REV|DIR] REV|DIR", []string{"REV|DIR"}, 2, true},
		{"export REV [--subpath=PATH] [-o FILE]", []string{"REV"}, 1, true},
		{"set-origin REMOTE URL [BRANCH]", []string{"REMOTE", "URL"}, 3, true},
		{"switch [REMOTE:]BRANCH", []string{"[REMOTE:]BRANCH"}, 1, true},
		{"pin INDEX...", []string{"INDEX"}, -1, true},
		{"rev-parse REV... | --single", nil, 0, false},
		{"config (get KEY | set KEY VALUE | unset KEY)", nil, 0, false},
	} {
		required, max, ok := operands(tc.use)
		if ok != tc.ok || ok && (max != tc.max || !cmp.Equal(required, tc.required)) {
			t.Errorf("operands(%q) = %q, %d, %v; want %q, %d, %v", tc.use, required, max, ok, tc.required, tc.max, tc.ok)
		}
	}
}

// A wrong count of operands names the one missing or the first one too
// many, with the usage line; a flag value that is no number says so in
// words, not in strconv's. All are usage errors.
func TestUsageErrorsSayWhat(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"log"}, "otree log: missing REV\nUsage: otree log REV [flags]\n"},
		{[]string{"cat", "main"}, "otree cat: missing PATH\n"},
		{[]string{"reset"}, "otree reset: missing REF REV\n"},
		{[]string{"fsck", "extra"}, "otree fsck: unexpected argument \"extra\"\n"},
		{[]string{"diff", "a", "b", "c"}, "otree diff: unexpected argument \"c\"\n"},
		{[]string{"config", "get"}, "otree config get: missing KEY\n"},
		{[]string{"static-delta", "show"}, "otree static-delta show: missing DELTA|PATH\n"},
		{[]string{"prune", "--depth=abc"}, "error: --depth: \"abc\" is not a whole number\n"},
		{[]string{"prune", "--depth=99999999999999999999"}, "error: --depth: \"99999999999999999999\" is out of range\n"},
		{[]string{"fsck", "--all=maybe"}, "error: --all: \"maybe\" is not true or false\n"},
		{[]string{"checkout", "--fsync=maybe", "main", "x"}, "error: --fsync: \"maybe\" is not a boolean"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"--repo=" + c.path}, tc.args...), strings.NewReader(""), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("otree %s: exit %d, %q; want exit %d and %q", strings.Join(tc.args, " "), code, errb.String(), exitUsage, tc.want)
		}
	}
}
