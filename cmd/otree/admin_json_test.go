package main

import (
	"encoding/json"
	"testing"
)

// emptySysroot lays out a sysroot with one stateroot and no deployment.
func emptySysroot(t *testing.T) *admin {
	t.Helper()
	a := &admin{t: t, sys: t.TempDir()}
	a.ok("admin", "init-fs", a.sys)
	a.ok("admin", "os-init", "debian")
	return a
}

// jsonLists decodes out, an object, and fails for each of keys whose
// value is not a list ([] when empty, never null).
func jsonLists(t *testing.T, cmd, out string, keys ...string) {
	t.Helper()
	var v map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	for _, k := range keys {
		var l []any
		if raw, ok := v[k]; !ok || json.Unmarshal(raw, &l) != nil || l == nil {
			t.Errorf("%s: %q is %s, want a list\n%s", cmd, k, raw, out)
		}
	}
}

func TestAdminStatusJSONNoDeployments(t *testing.T) {
	a := emptySysroot(t)
	jsonLists(t, "admin status --json", a.ok("admin", "status", "--json"), "deployments")
	jsonLists(t, "admin status --verify --json", a.ok("admin", "status", "--verify", "--json"), "deployments")
}

func TestAdminCleanupJSONNothingRemoved(t *testing.T) {
	a := emptySysroot(t)
	jsonLists(t, "admin cleanup --json", a.ok("admin", "cleanup", "--json"), "deployments", "boot", "refs")
	jsonLists(t, "admin cleanup --no-prune --json", a.ok("admin", "cleanup", "--no-prune", "--json"), "deployments", "boot", "refs")
}

func TestAdminKargsEditInPlaceJSONNoDeployments(t *testing.T) {
	a := emptySysroot(t)
	out := a.ok("admin", "kargs", "edit-in-place", "--append-if-missing=quiet", "--json")
	jsonLists(t, "admin kargs edit-in-place --json", out, "deployments")
}
