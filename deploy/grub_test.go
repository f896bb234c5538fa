package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// grubMenu lists the menu entries of a grub.cfg as "title | linux line".
func grubMenu(t *testing.T, cfg []byte) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^menuentry '([^']*)'[^{]*\{\n\tlinux (.*)\n`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(cfg), -1) {
		out = append(out, m[1]+" | "+m[2])
	}
	return out
}

// With sysroot.bootloader=grub2 each switch writes a grub.cfg beside the
// boot entries, in boot order, which GRUB's own checker accepts and which
// switches with the entries; kernel arguments reach GRUB quoted, their
// double quotes left to GRUB (TestGrubHandsKernelEntryArgs); an unknown boot loader is refused before anything changes,
// and "none" writes the entries alone.
func TestGrubConfig(t *testing.T) {
	f := newFixture(t)
	cfg := f.s.Repo().Config()
	one := f.commit("os", osTree("6.1.0", nil))
	f.deploy(one.String(), DeployOptions{Kargs: []string{"root=LABEL=root"}})
	grubCfg := filepath.Join(f.path, "boot", "loader", "grub.cfg")
	if _, err := os.Stat(grubCfg); !os.IsNotExist(err) {
		t.Fatalf("a grub.cfg without sysroot.bootloader: %v", err)
	}

	cfg.Set(ConfigBootloader, "syslinux")
	two := f.commit("os", osTree("6.2.0", nil))
	if _, err := f.s.Deploy(context.Background(), two.String(), DeployOptions{}); err == nil || !strings.Contains(err.Error(), ConfigBootloader) {
		t.Fatalf("deploy with sysroot.bootloader=syslinux: %v", err)
	}
	if got := f.order(); len(got) != 1 {
		t.Fatalf("a refused deploy changed the deployments: %v", got)
	}

	cfg.Set(ConfigBootloader, "grub2")
	f.deploy(two.String(), DeployOptions{Kargs: []string{"root=LABEL=root", `quiet`, `x="a b"`, `y=$z'q`}})
	data, err := os.ReadFile(grubCfg)
	if err != nil {
		t.Fatalf("grub.cfg through boot/loader: %v", err)
	}
	entries, err := readEntries(filepath.Join(f.path, "boot", "loader", "entries"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range entries { // highest version, the default, first
		want = append(want, e.title+" | '"+e.linux+"'")
	}
	menu := grubMenu(t, data)
	if len(menu) != 2 || !strings.HasPrefix(menu[0], want[0]) || !strings.HasPrefix(menu[1], want[1]) {
		t.Fatalf("grub menu:\n%s\nwant, in this order:\n%s\n%s", strings.Join(menu, "\n"), want[0], want[1])
	}
	for _, w := range []string{`'x=a b'`, `'y=$z'\''q'`, `'root=LABEL=root'`, "'otree=/otree/boot."} {
		if !strings.Contains(menu[0], w) {
			t.Errorf("the default entry's linux line lacks %s: %s", w, menu[0])
		}
	}
	if strings.Contains(menu[1], "x=") {
		t.Errorf("the second entry has the first's arguments: %s", menu[1])
	}
	if check, err := exec.LookPath("grub-script-check"); err == nil {
		if out, err := exec.Command(check, grubCfg).CombinedOutput(); err != nil {
			t.Errorf("grub-script-check: %v\n%s\n%s", err, out, data)
		}
	} else {
		t.Log("grub-script-check is not installed (CI installs grub-common): GRUB's syntax unchecked")
	}

	// A rollback switches grub.cfg with the entries.
	if _, err := f.s.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(grubCfg)
	if err != nil {
		t.Fatal(err)
	}
	if m := grubMenu(t, after); len(m) != 2 || !strings.Contains(m[0], "vmlinuz-6.1.0") || !strings.Contains(m[1], "vmlinuz-6.2.0") {
		t.Errorf("grub menu after rollback:\n%s", strings.Join(m, "\n"))
	}

	cfg.Set(ConfigBootloader, "none")
	f.deploy(one.String(), DeployOptions{})
	if _, err := os.Stat(grubCfg); !os.IsNotExist(err) {
		t.Errorf("sysroot.bootloader=none still wrote a grub.cfg: %v", err)
	}
}

// Whether a grub.cfg counts boots is told by the line that loads the
// count, which no title (a line without control characters, menuName) or
// kernel argument (split at whitespace, each quoted) can make: one that
// only mentions it does not count.
func TestGrubCountsOnlyByItsOwnLine(t *testing.T) {
	entries := []*bootEntry{
		{file: "otree-1-os.conf", title: "OS load_env " + grubTriesVar, linux: "/vmlinuz", options: "x='\n\tload_env " + grubTriesVar + "\n'"},
		{file: "otree-2-os.conf", title: "OS 2", linux: "/vmlinuz"},
	}
	s := &Sysroot{path: t.TempDir()}
	cfg := filepath.Join(s.path, "boot", "loader.0", grubConfigFile)
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tries := range []int{0, 2} {
		if err := os.WriteFile(cfg, renderGrub(entries, tries), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := s.grubCounts(); got != (tries > 0) {
			t.Errorf("a grub.cfg written with tries=%d counts: %v", tries, got)
		}
	}
}
