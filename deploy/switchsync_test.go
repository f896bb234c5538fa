package deploy

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// cutShortSysrootEnv, in the environment of this test binary, names the
// sysroot that TestRollbackSyncsSwitchItself, run again as a process of
// its own, rolls back with a failure injected right after the switch.
const cutShortSysrootEnv = "OTREE_TEST_CUT_SHORT_SYSROOT"

// A rollback makes its switch durable as it renames the link, not only
// through the cleanup after it: a rollback that fails right after the
// rename (re-reading the entries, ending a boot count) never gets to that
// cleanup, yet the new default is in place and stays (see
// TestDeployFailingAfterSwitchKeepsDeployment), and a crash must not bring
// back a boot order that was already replaced. Traced by strace, a rollback
// cut short after its switch fsyncs the directory of the link it renamed,
// after the rename: otree/boot.B in a sub switch (the two deployments share
// a kernel), boot/loader in a full one.
func TestRollbackSyncsSwitchItself(t *testing.T) {
	if path := os.Getenv(cutShortSysrootEnv); path != "" {
		rollbackCutShort(t, path)
		return
	}
	strace := testbin.NeedStrace(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		second testtree.Tree // the tree deployed second, then rolled back from
		full   bool          // whether the rollback writes a new boot version
		link   string        // the link the switch renames last, under the sysroot
	}{
		{"sub", osTree("6.1.0-1", testtree.Tree{"usr/bin/new": testtree.File("x", 0o755)}), false, `otree/boot\.[01]`},
		{"full", osTree("6.1.0-2", testtree.Tree{"usr/lib/modules/6.1.0-1": gone,
			"usr/lib/modules/6.1.0-1/vmlinuz": gone, "usr/lib/modules/6.1.0-1/initramfs.img": gone}), true, `boot/loader`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			a := f.commit("os", osTree("6.1.0-1", nil))
			f.deploy("os", DeployOptions{})
			b := f.commit("os", tc.second)
			f.deploy("os", DeployOptions{})
			bv, _ := f.s.BootVersion()

			log := filepath.Join(t.TempDir(), "strace")
			cmd := exec.Command(strace, "-f", "-z", "-y", "-o", log, "-e", "trace=rename,renameat,renameat2,fsync,syncfs",
				exe, "-test.run=^TestRollbackSyncsSwitchItself$", "-test.count=1")
			cmd.Env = append(os.Environ(), cutShortSysrootEnv+"="+f.path)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the rollback cut short: %v\n%s", err, out)
			}
			s, err := Open(f.path, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var order []repo.ID
			for _, d := range s.Deployments() {
				order = append(order, d.Commit)
			}
			if diff := cmp.Diff([]repo.ID{a, b}, order); diff != "" {
				t.Fatalf("the rollback cut short after its switch did not switch (-want +got):\n%s", diff)
			}
			if nb, _ := s.BootVersion(); (nb != bv) != tc.full {
				t.Fatalf("boot version %d before the rollback, %d after; want a full switch: %v", bv, nb, tc.full)
			}

			data, _ := os.ReadFile(log)
			lines := strings.Split(string(data), "\n")
			rename := regexp.MustCompile(`rename(at2?)?\(.*"(` + regexp.QuoteMeta(f.path) + `/` + tc.link + `)"(, [A-Z_|]+)?\) = 0`)
			swtch, link := -1, ""
			for i, l := range lines {
				if m := rename.FindStringSubmatch(l); m != nil {
					swtch, link = i, m[2]
				}
			}
			if swtch < 0 {
				t.Fatalf("no rename onto %s/%s in:\n%s", f.path, tc.link, data)
			}
			dir := filepath.Dir(link)
			if !slices.ContainsFunc(lines[swtch:], func(l string) bool {
				return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+dir+">")
			}) {
				t.Errorf("no fsync of %s after the rename of %s (line %d):\n%s", dir, link, swtch+1, data)
			}
		})
	}
}

// rollbackCutShort rolls back the sysroot at path, failing the rollback
// right after its switch.
func rollbackCutShort(t *testing.T, path string) {
	s, err := Open(path, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cut := errors.New("cut short after the switch")
	testHookSwitched = func() error { return cut }
	defer func() { testHookSwitched = nil }()
	if _, err := s.Rollback(context.Background()); !errors.Is(err, cut) {
		t.Fatalf("rollback: %v, want the failure injected after the switch", err)
	}
}
