package main

import (
	"encoding/json"
	"strings"
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

// A deploy whose /etc has no change to merge, and a config-diff with none
// to show, print "etc": [].
func TestAdminEtcJSONNoChange(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	jsonLists(t, "admin deploy --json", a.ok("admin", "deploy", "--json", "cli/stable"), "etc")
	jsonLists(t, "admin deploy --json (merge)", a.ok("admin", "deploy", "--json", "cli/stable"), "etc")
	jsonLists(t, "admin config-diff --json", a.ok("admin", "config-diff", "--json"), "etc")
	jsonLists(t, "admin config-diff --into=1 --json", a.ok("admin", "config-diff", "--into=1", "--json"), "etc")
	a.commit("one\n", "6.1.0-2") // a new kernel, the same /etc
	var up struct {
		Deployed json.RawMessage `json:"deployed"`
	}
	out := a.ok("admin", "upgrade", "--json")
	if err := json.Unmarshal([]byte(out), &up); err != nil {
		t.Fatalf("admin upgrade --json: %v\n%s", err, out)
	}
	jsonLists(t, "admin upgrade --json: deployed", string(up.Deployed), "etc")
}

// deploy --json numbers its deployments as status does: a staged one is
// 0 and the others follow it.
func TestAdminDeployJSONIndexAsStatus(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	a.commit("two\n", "6.1.0-1")
	var dep struct {
		Deployment struct {
			Index int    `json:"index"`
			Path  string `json:"path"`
		} `json:"deployment"`
		Merge struct {
			Index int    `json:"index"`
			Path  string `json:"path"`
		} `json:"merge"`
	}
	out := a.ok("admin", "deploy", "--stage", "--json", "cli/stable")
	if err := json.Unmarshal([]byte(out), &dep); err != nil {
		t.Fatalf("admin deploy --stage --json: %v\n%s", err, out)
	}
	shown := map[string]int{}
	for _, d := range a.status().Deployments {
		shown[d.Path] = d.Index
	}
	for _, d := range []struct {
		name, path string
		index      int
	}{{"deployment", dep.Deployment.Path, dep.Deployment.Index}, {"merge", dep.Merge.Path, dep.Merge.Index}} {
		if want, ok := shown[d.path]; !ok || d.index != want {
			t.Errorf("deploy --stage --json: %s %s has index %d, status numbers it %d (listed: %v)", d.name, d.path, d.index, want, ok)
		}
	}
}

// Every boolean of a deployment is in status --json, false too: a script
// that selects .staged == false must not miss the deployments not staged.
func TestAdminStatusJSONBooleansPresent(t *testing.T) {
	a := newAdmin(t)
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	var st struct {
		Deployments []map[string]any `json:"deployments"`
	}
	out := a.ok("admin", "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Deployments) != 1 {
		t.Fatalf("admin status --json: %v\n%s", err, out)
	}
	for _, k := range []string{"staged", "pinned", "booted", "pending", "rollback", "initramfs", "devicetree", "fdtdir"} {
		if _, ok := st.Deployments[0][k].(bool); !ok {
			t.Errorf("admin status --json: %q is %#v, want a boolean", k, st.Deployments[0][k])
		}
	}
}

// The deployment GRUB falls back to is numbered as status lists it, also
// while a deployment is staged (then 0).
func TestAdminStatusBootCountFallbackIndex(t *testing.T) {
	a := newAdmin(t)
	a.ok("config", "set", "sysroot.bootloader", "grub2")
	a.ok("config", "set", "sysroot.boot-counting-tries", "3")
	a.commit("one\n", "6.1.0-1")
	a.ok("admin", "deploy", "cli/stable")
	a.commit("two\n", "6.1.0-2")
	a.ok("admin", "deploy", "cli/stable")
	a.commit("three\n", "6.1.0-3")
	a.ok("admin", "deploy", "--stage", "cli/stable")
	var st struct {
		Deployments []struct {
			Index    int  `json:"index"`
			Rollback bool `json:"rollback"`
		} `json:"deployments"`
		BootCount struct {
			Fallback int `json:"fallback"`
		} `json:"boot_count"`
	}
	out := a.ok("admin", "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Deployments) != 3 {
		t.Fatalf("admin status --json: %v\n%s", err, out)
	}
	if !st.Deployments[2].Rollback || st.BootCount.Fallback != st.Deployments[2].Index {
		t.Errorf("admin status --json: boot_count.fallback %d, want %d, the rollback deployment\n%s", st.BootCount.Fallback, st.Deployments[2].Index, out)
	}
	if out := a.ok("admin", "status"); !strings.Contains(out, "GRUB falls back to deployment 2\n") {
		t.Errorf("admin status does not name deployment 2 as GRUB's fallback:\n%s", out)
	}
}
