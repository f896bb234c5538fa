package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// --low-speed-limit-bytes=0 turns the check off (the library's -1), left
// out it defers to the remote's key (0), and bad values are usage errors.
func TestPullLowSpeedFlags(t *testing.T) {
	for _, tc := range []struct {
		f    pullFlags
		want int64
	}{
		{pullFlags{}, 0},
		{pullFlags{lowSpeedOff: true}, -1},
		{pullFlags{lowSpeedLimit: 500}, 500},
	} {
		o, err := tc.f.options(nil, nil)
		if err != nil || o.LowSpeedLimit != tc.want {
			t.Errorf("%+v: LowSpeedLimit %d, %v; want %d", tc.f, o.LowSpeedLimit, err, tc.want)
		}
	}
	o, _ := (&pullFlags{lowSpeedSeconds: 7}).options(nil, nil)
	if o.LowSpeedTime != 7*time.Second {
		t.Errorf("LowSpeedTime %v, want 7s", o.LowSpeedTime)
	}
	dir := t.TempDir()
	runIn(t, dir, "init")
	for _, arg := range []string{"--low-speed-limit-bytes=-1", "--low-speed-time-seconds=0"} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"--repo=" + dir, "pull", arg, "origin"}, strings.NewReader(""), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "--low-speed") {
			t.Errorf("pull %s: exit %d, stderr %q; want a usage error naming the option", arg, code, errb.String())
		}
	}
}
