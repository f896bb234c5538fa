package main

import (
	"encoding/json"
	"testing"
)

// sign --json prints "added" and "deleted" as numbers, 0 included, as
// other counts of --json output are.
func TestSignJSONZeroCounts(t *testing.T) {
	c := newCLI(t)
	c.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	_, secret, _ := generateKey(t, c)
	_, _, pub2 := generateKey(t, c)
	c.ok("sign", "os/stable", secret)
	for _, tc := range []struct {
		key  string
		args []string
	}{
		{"added", []string{"sign", "--json", "os/stable", secret}},
		{"deleted", []string{"sign", "--json", "--delete", "os/stable", pub2}},
	} {
		out := c.ok(tc.args...)
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, out)
		}
		if n, ok := v[tc.key].(float64); !ok || n != 0 {
			t.Errorf("%v: %q is %#v, want 0\n%s", tc.args, tc.key, v[tc.key], out)
		}
	}
}
