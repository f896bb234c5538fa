package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/inroot"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// Switch says how a new deployment list was made current.
type Switch string

const (
	// SwitchFull wrote the other boot version and renamed boot/loader.
	SwitchFull Switch = "full"
	// SwitchSub kept the boot entries and renamed otree/boot.B to the
	// other sub-version: only the order of deployments sharing a kernel
	// and kernel arguments changed.
	SwitchSub Switch = "sub"
)

// deployRef is the ref that keeps a deployment's commit in the repository
// while the deployment exists.
func deployRef(d *Deployment) string { return fmt.Sprintf("otree/%s/%s", d.OS, d.Name()) }

// setRefs points the refs of the deployments in set at their commits and
// deletes the refs named in del, under the repository's refs lock.
func (s *Sysroot) setRefs(ctx context.Context, set []*Deployment, del []string) error {
	l, err := s.repo.LockRefs(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	for _, d := range set {
		if err := s.repo.SetRef(deployRef(d), d.Commit); err != nil {
			return err
		}
	}
	for _, name := range del {
		if err := s.repo.SetRef(name, repo.ID{}); err != nil {
			return err
		}
	}
	return nil
}

// bootPrefix is how boot entries name files in the boot directory: from
// the root of the boot partition when boot/ is its own filesystem, else
// from the root of the sysroot.
func (s *Sysroot) bootPrefix() (string, error) {
	var a, b unix.Stat_t
	if err := unix.Stat(s.path, &a); err != nil {
		return "", &os.PathError{Op: "stat", Path: s.path, Err: err}
	}
	p := filepath.Join(s.path, "boot")
	if err := unix.Stat(p, &b); err != nil {
		return "", &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if a.Dev == b.Dev {
		return "/boot", nil
	}
	return "", nil
}

// bootEntries gives the entries of list under boot version bv, in list
// order, and sets each deployment's boot serial.
func (s *Sysroot) bootEntries(list []*Deployment, bv int) ([]*bootEntry, error) {
	prefix, err := s.bootPrefix()
	if err != nil {
		return nil, err
	}
	serials := map[string]int{}
	var out []*bootEntry
	n := len(list)
	for i, d := range list {
		key := d.OS + "/" + d.BootCsum
		d.bootSerial = serials[key]
		serials[key]++
		arg := BootArg{BootVersion: bv, OS: d.OS, BootCsum: d.BootCsum, Serial: d.bootSerial}
		// otree= comes first, as OSTree puts ostree=: whatever the
		// admin's arguments hold (a "--" that hands the rest to init, an
		// unclosed quote), the kernel and prepare-root still find it.
		opts := strings.TrimSpace("otree=" + arg.String() + " " + d.Options)
		kdir := fmt.Sprintf("%s/otree/%s-%s/", prefix, d.OS, d.BootCsum)
		e := &bootEntry{
			file:    fmt.Sprintf("otree-%d-%s.conf", n-i, d.OS),
			os:      d.OS,
			title:   fmt.Sprintf("%s (otree:%s:%d)", menuName(d), d.OS, i),
			version: n - i,
			options: opts,
			linux:   kdir + bootName("vmlinuz", d.Kernel, ""),
		}
		if d.Initramfs {
			e.initrds = append(e.initrds, kdir+bootName("initramfs", d.Kernel, ".img"))
		}
		if d.Devicetree {
			e.devicetree = kdir + bootName("devicetree", d.Kernel, "")
		}
		if d.FdtDir {
			e.fdtdir = kdir + "dtb"
		}
		for _, id := range d.OverlayInitrds {
			e.initrds = append(e.initrds, prefix+"/"+overlayRel(id))
		}
		out = append(out, e)
	}
	return out, nil
}

// menuName is what a boot menu calls d: the OS's name and, as OSTree
// writes it, the commit's version unless the name already holds it, so
// that two builds of one OS can be told apart.
func menuName(d *Deployment) string {
	name := prettyName(d)
	if v := d.Version; v != "" && menuText(v) && !strings.Contains(name, v) {
		name += " " + v
	}
	return name
}

// menuText tells whether v can stand in a boot entry's line: no control
// characters, which could end the line and add keys of their own.
func menuText(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// prettyName is the OS's name for boot menus, from the deployment's
// os-release: PRETTY_NAME, else ID, as OSTree takes them; the stateroot's
// name when the tree has neither.
func prettyName(d *Deployment) string {
	for _, p := range []string{"usr/lib/os-release", "usr/etc/os-release"} {
		data, err := inroot.ReadFile(d.Path, p, osReleaseMax) // the tree's, not the machine's
		if err != nil {
			continue
		}
		vals := map[string]string{}
		for _, line := range strings.Split(string(data), "\n") {
			k, raw, ok := strings.Cut(line, "=")
			if !ok || (k != "PRETTY_NAME" && k != "ID") {
				continue
			}
			// The last assignment counts, as in the shell.
			if v, ok := shellUnquote(strings.TrimSpace(raw)); ok {
				vals[k] = v
			}
		}
		for _, k := range []string{"PRETTY_NAME", "ID"} {
			if v := vals[k]; v != "" && menuText(v) {
				return v
			}
		}
	}
	return d.OS
}

// shellUnquote reads an os-release value as the shell reads a word, which
// os-release(5) asks of it: quotes dropped, a backslash escaping the next
// character outside quotes and one of $`"\ inside double quotes. It
// returns false for an unclosed quote.
func shellUnquote(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", false
			}
			b.WriteString(s[i+1 : i+1+j])
			i += 1 + j
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
			if i == len(s) {
				return "", false
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// osReleaseMax bounds what is read of an os-release file: a real one is a
// few hundred bytes.
const osReleaseMax = 64 << 10

// writeDeployments makes list the deployment list. Everything the new
// state needs (deployment directories, kernels, origins, entries, links)
// is durable before the one rename that switches to it. It then re-reads
// the state.
func (s *Sysroot) writeDeployments(ctx context.Context, list []*Deployment) (Switch, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("sysroot %s: switching deployments: %w", s.root, err)
	}
	if err := s.setRefs(ctx, list, nil); err != nil {
		return "", err
	}
	lc, err := s.loaderConfig()
	if err != nil {
		return "", err
	}
	counting, err := s.countBoots(list, lc.tries)
	if err != nil {
		return "", err
	}
	switch counting {
	case countStart:
		lc.count = true
	case countKeep:
		// An environment block GRUB cannot read counts nothing either:
		// the grub.cfg stays as it is rather than fail the switch (an
		// undeploy may be what frees /boot).
		bc, err := s.BootCount()
		lc.count = err == nil && bc.Counting || err != nil && s.grubCounts()
	}
	kind := SwitchFull
	if len(list) > 0 && len(list) == len(s.deployments) {
		same, err := s.sameEntries(list, lc)
		if err != nil {
			return "", err
		}
		if same {
			kind = SwitchSub
		}
	}
	if kind == SwitchSub {
		err = s.switchSub(list)
	} else {
		err = s.switchFull(list, lc)
	}
	if err != nil {
		return "", err
	}
	if testHookSwitched != nil {
		if err := testHookSwitched(); err != nil {
			return kind, err
		}
	}
	if counting == countStop {
		if err := setGrubVar(s.grubEnvPath(), grubTriesVar, "", true); err != nil {
			return kind, fmt.Errorf("switched, but boot counting is still on: %w", err)
		}
	}
	return kind, s.load()
}

// testHookSwitched, when set by a test, runs right after a switch and
// its error fails the operation, as a failure past the switch would.
var testHookSwitched func() error

// What a switch does to boot counting.
const (
	countKeep  = iota // the default deployment stays: its count goes on
	countStart        // a new default: its tries, set before the switch
	countStop         // the booted deployment becomes the default: no count
)

// countBoots decides, with boot counting on, what the switch to list does
// to the count, and starts a new default's count before the switch: a
// crash between the two leaves the old default, booted, counting until
// its boot-complete, which is harmless; the other order could leave a new
// default with no way back. A switch that ends the count (countStop)
// writes a grub.cfg that does not read it, so a crash before the count is
// unset leaves nothing that could act on the new default.
func (s *Sysroot) countBoots(list []*Deployment, tries int) (int, error) {
	if tries == 0 {
		return countKeep, nil
	}
	switch {
	case len(list) == 0:
		return countStop, nil
	case len(s.deployments) > 0 && sameDeployment(list[0], s.deployments[0]):
		return countKeep, nil // the default stays (kargs, undeploy, pin...)
	case s.booted != nil && sameDeployment(list[0], s.booted):
		return countStop, nil // back to what runs
	case len(list) < 2:
		return countStop, nil // nothing to fall back to
	}
	if err := setGrubVar(s.grubEnvPath(), grubTriesVar, fmt.Sprint(tries), false); err != nil {
		return countKeep, fmt.Errorf("boot counting (%s): %w", ConfigBootTries, err)
	}
	return countStart, nil
}

// sameDeployment tells whether a and b are the same deployment.
func sameDeployment(a, b *Deployment) bool {
	return a.OS == b.OS && a.Name() == b.Name()
}

// sameEntries tells whether list renders to exactly the current entries
// (and grub.cfg, when one is written).
func (s *Sysroot) sameEntries(list []*Deployment, lc loaderConfig) (bool, error) {
	entries, err := s.bootEntries(list, s.bootVersion)
	if err != nil {
		return false, err
	}
	want := map[string][]byte{}
	for _, e := range entries {
		want[e.file] = e.render()
	}
	if cfg := lc.grubCfg(entries); cfg != nil {
		got, err := os.ReadFile(filepath.Join(s.path, "boot", fmt.Sprintf("loader.%d", s.bootVersion), grubConfigFile))
		if err != nil || !bytes.Equal(got, cfg) {
			return false, nil
		}
	}
	dir := filepath.Join(s.path, "boot", fmt.Sprintf("loader.%d", s.bootVersion), "entries")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	n := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "otree-") {
			continue
		}
		n++
		got, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return false, err
		}
		if w, ok := want[e.Name()]; !ok || !bytes.Equal(w, got) {
			return false, nil
		}
	}
	return n == len(want), nil
}

// writeLinks creates otree/boot.B.S with a link per deployment.
func (s *Sysroot) writeLinks(list []*Deployment, bv, sv int) error {
	dir := filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d.%d", bv, sv))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, d := range list {
		p := filepath.Join(dir, d.OS, d.BootCsum)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		target := fmt.Sprintf("../../../deploy/%s/deploy/%s", d.OS, d.Name())
		if err := os.Symlink(target, filepath.Join(p, fmt.Sprint(d.bootSerial))); err != nil {
			return err
		}
	}
	return os.MkdirAll(dir, 0o755)
}

// replaceSymlink points link at target with a rename, so readers see the
// old target or the new one, and makes the change durable.
func replaceSymlink(target, link string) error {
	tmp := filepath.Join(filepath.Dir(link), "."+filepath.Base(link)+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(link))
}

// switchFull writes the other boot version and renames boot/loader to it.
// If it fails before boot/loader names the new version, that version is
// removed again, so a failed deploy leaves /boot as it was.
func (s *Sysroot) switchFull(list []*Deployment, lc loaderConfig) (err error) {
	nb := 1 - s.bootVersion
	entries, err := s.bootEntries(list, nb)
	if err != nil {
		return err
	}
	boot := filepath.Join(s.path, "boot")
	name := fmt.Sprintf("loader.%d", nb)
	loader := filepath.Join(boot, name)
	defer func() {
		if now, _ := os.Readlink(filepath.Join(boot, "loader")); err != nil && now != name {
			os.RemoveAll(loader)
		}
	}()
	if err := os.RemoveAll(loader); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(loader, "entries"), 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if err := writeReadable(filepath.Join(loader, "entries", e.file), e.render()); err != nil {
			return err
		}
	}
	if cfg := lc.grubCfg(entries); cfg != nil {
		if err := os.WriteFile(filepath.Join(loader, grubConfigFile), cfg, 0o644); err != nil {
			return err
		}
	}
	for sv := range 2 {
		if err := os.RemoveAll(filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d.%d", nb, sv))); err != nil {
			return err
		}
	}
	if err := s.writeLinks(list, nb, 0); err != nil {
		return err
	}
	if err := replaceSymlink(fmt.Sprintf("boot.%d.0", nb), filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d", nb))); err != nil {
		return err
	}
	if err := durable.SyncFS(s.root, boot); err != nil {
		return err
	}
	return replaceSymlink(fmt.Sprintf("loader.%d", nb), filepath.Join(boot, "loader"))
}

// switchSub writes the other sub-version's links and renames
// otree/boot.B to it; the entries stay as they are. /boot is synced too:
// the entries name the same kernel directory, but installKernel may just
// have added a file to it that no entry names (a kernel's .hmac).
func (s *Sysroot) switchSub(list []*Deployment) error {
	if _, err := s.bootEntries(list, s.bootVersion); err != nil { // sets boot serials
		return err
	}
	ns := 1 - s.subVersion
	if err := s.writeLinks(list, s.bootVersion, ns); err != nil {
		return err
	}
	if err := durable.SyncFS(s.root, filepath.Join(s.path, "boot")); err != nil {
		return err
	}
	return replaceSymlink(fmt.Sprintf("boot.%d.%d", s.bootVersion, ns), filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d", s.bootVersion)))
}

// writeReadable creates path holding data, mode 0644 whatever the umask,
// as OSTree writes origins and boot entries: `admin status`, which any
// user may run, reads them, and one written 0600 by a root whose umask is
// 077 would fail it for everyone else long after that umask is gone.
func writeReadable(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
