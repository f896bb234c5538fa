package deploy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/repo"
)

// sysrootState reads what the changes below would touch: the boot
// entries, the deployments' origins and the stateroots.
func sysrootState(t *testing.T, root string) map[string]string {
	t.Helper()
	st := map[string]string{}
	for _, dir := range []string{"boot/loader/entries", "otree/deploy", "otree/deploy/testos/deploy"} {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			st[p] = ""
			if e.Type().IsRegular() {
				b, err := os.ReadFile(filepath.Join(root, p))
				if err != nil {
					t.Fatal(err)
				}
				st[p] = string(b)
			}
		}
	}
	return st
}

// A closed Sysroot changes nothing: every change fails with an error
// matching repo.ErrClosed, those that need no repository object (OSInit,
// Pin, SetKargs, Rollback) as well as those that do, and the sysroot is
// left as it was. Reads of what it loaded still answer.
func TestClosedSysrootChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.commit("testos/stable", osTree("6.1.0-1", nil))
	f.deploy("testos/stable", DeployOptions{})
	f.commit("testos/stable", osTree("6.1.0-1", nil))
	f.deploy("testos/stable", DeployOptions{})
	before := sysrootState(t, f.path)
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, change := range map[string]func() error{
		"OSInit":     func() error { return f.s.OSInit(context.Background(), "other") },
		"Pin":        func() error { return f.s.Pin(ctx, 1, true) },
		"SetKargs":   func() error { _, err := f.s.SetKargs(ctx, 0, KargsEdit{Append: []string{"quiet"}}); return err },
		"SetDefault": func() error { _, err := f.s.SetDefault(ctx, 1); return err },
		"Rollback":   func() error { _, err := f.s.Rollback(ctx); return err },
		"Undeploy":   func() error { _, err := f.s.Undeploy(ctx, 1); return err },
		"SetOrigin":  func() error { return f.s.SetOrigin(ctx, 0, "testos/other") },
		"Cleanup":    func() error { _, err := f.s.Cleanup(ctx, CleanupOptions{}); return err },
		"Deploy":     func() error { _, err := f.s.Deploy(ctx, "testos/stable", DeployOptions{}); return err },
	} {
		if err := change(); !errors.Is(err, repo.ErrClosed) {
			t.Errorf("%s on a closed Sysroot: %v, want an error matching repo.ErrClosed", name, err)
		}
	}
	if diff := cmp.Diff(before, sysrootState(t, f.path)); diff != "" {
		t.Errorf("a closed Sysroot changed the sysroot (-before +after):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(f.path, "otree/deploy/other")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OSInit on a closed Sysroot made its stateroot: %v", err)
	}
	if len(f.s.Deployments()) != 2 {
		t.Errorf("%d deployments listed after Close, want the 2 loaded", len(f.s.Deployments()))
	}
	if err := f.s.Close(); err != nil {
		t.Errorf("closing again: %v", err)
	}
}
