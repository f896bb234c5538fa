package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/bootname"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// DeployOptions configure Deploy.
type DeployOptions struct {
	// OS is the stateroot; empty means the booted deployment's, else the
	// only stateroot there is (not the default deployment's: with several
	// and none booted, the error matches ErrStaterootNeeded).
	OS string
	// Kargs set kernel arguments (KEY=VALUE replaces every KEY; VALUE may
	// hold '=', there is no KEY=OLD=NEW form as in KargsEdit), applied
	// after KargsProcCmdline, then KargsAppend, then KargsDelete, in
	// OSTree's order: a delete also removes what an append added.
	Kargs []string
	// KargsAppend adds arguments even when their key is present.
	KargsAppend []string
	// KargsDelete removes KEY=VALUE, or every value of a bare KEY; one
	// not present fails the deploy.
	KargsDelete []string
	// KargsProcCmdline starts from the running kernel's command line
	// instead of the merge deployment's arguments.
	KargsProcCmdline bool
	// Retain keeps every existing deployment. Without it the new list is
	// the new deployment, the booted and merge deployments, pinned ones,
	// and those of other stateroots.
	Retain bool
	// RetainPending also keeps the deployments ahead of the booted one
	// (of the merge one when none is booted): those not booted yet.
	// RetainRollback keeps those behind it. Without a booted or merge
	// deployment either keeps every deployment, as in OSTree.
	RetainPending, RetainRollback bool
	// KargsNone starts the kernel arguments from nothing instead of the
	// merge deployment's (/etc is still merged). It excludes
	// KargsProcCmdline.
	KargsNone bool
	// Stage writes the deployment (checkout, /etc merge, origin) but does
	// not switch to it: FinalizeStaged does, merging /etc again, and is
	// meant to run at shutdown (docs/DEPLOY.md). A reboot before that
	// forgets the staged deployment. A later deploy, staged or not,
	// replaces it; one that fails before its switch leaves it staged.
	Stage bool
	// NoPrune leaves the repository alone after the switch. By default the
	// commits no ref reaches any more (those of removed deployments) are
	// pruned with their objects, as OSTree's deploy does.
	NoPrune bool
	// NotAsDefault puts the new deployment right behind the booted
	// deployment (of whichever stateroot), else the merge one, as OSTree
	// does (last when there is neither), instead of first.
	NotAsDefault bool
	// NoMerge starts /etc from the new tree's defaults and the kernel
	// arguments from nothing, ignoring the merge deployment.
	NoMerge bool
	// Origin is the content of the .origin file (OSTree's INI form,
	// [origin] refspec=REF). When nil, the revision becomes the refspec,
	// as in OSTree: a ref, which upgrades follow, or the commit's id,
	// which keeps upgrades on that commit until a switch (the merge
	// deployment's other origin keys carry over).
	Origin []byte
	// OverlayInitrds are initramfs images (files) the boot entry loads
	// after the tree's own, in order, as OSTree's --overlay-initrd: each
	// is copied into the boot directory under the id of its content. A
	// later deploy does not carry them over unless given again.
	OverlayInitrds []string
	// Progress, if set, receives the checkout's progress. A panic in it
	// fails the deploy as an error does (what it wrote is removed) and is
	// raised again by Deploy.
	Progress func(checkout.Stats)
}

// DeployResult is what Deploy did.
type DeployResult struct {
	Deployment *Deployment `json:"deployment"` // the new deployment, as listed after the switch
	// Merge is the deployment /etc and the kernel arguments came from.
	Merge *Deployment `json:"merge,omitempty"`
	// Etc is the fate of every /etc path that changed on either side.
	Etc    []EtcChange    `json:"etc"`
	Switch Switch         `json:"switch"`   // how the boot entries changed; "" for a staged deploy
	Stats  checkout.Stats `json:"checkout"` // the checkout of the commit's tree
	// Removed lists the deployments the retention rules dropped.
	Removed []*Deployment `json:"removed,omitempty"`
	// Warnings are what the deploy found worth telling the admin but not
	// worth refusing, such as a tree that holds /home, /root, /srv, /opt,
	// /mnt or /media as a directory rather than a link into /var (what
	// is written there would stay behind with this deployment), or that
	// holds something in /var, which the stateroot's /var hides.
	Warnings []string `json:"warnings,omitempty"`
	// Prune is what pruning the repository after the switch deleted (nil
	// with NoPrune): the commits of dropped deployments, with their objects.
	Prune *repo.PruneReport `json:"prune,omitempty"`
}

// CleanupError is the error of an operation whose change is made (the
// boot entries switched, a deployment staged) but whose cleanup after it
// failed: what the cleanup did not remove goes at the next one.
type CleanupError struct {
	Done string // what was done: "deployed", "staged", ...
	Err  error
}

// Error says what was done, then why the cleanup failed.
func (e *CleanupError) Error() string { return e.Done + ", but cleaning up failed: " + e.Err.Error() }

// Unwrap returns the cleanup's error.
func (e *CleanupError) Unwrap() error { return e.Err }

// cleanupAfter runs the cleanup that follows a switch which may have
// dropped deployments, and returns what its prune freed (nil with
// noPrune); an error is a *CleanupError saying done.
func (s *Sysroot) cleanupAfter(ctx context.Context, noPrune bool, done string) (*repo.PruneReport, error) {
	rep, err := s.cleanup(ctx, CleanupOptions{NoPrune: noPrune})
	if err != nil {
		return nil, &CleanupError{Done: done, Err: s.nameCancel(ctx, err)}
	}
	return rep.Prune, nil
}

// stateDirs are the directories of / where a running system keeps state
// of its own. In a deployment only /etc and /var (and what links into
// them) outlive it; a tree that holds one of these as a directory gives
// each deployment its own, so what was written there is left behind at
// the next upgrade and deleted with the old deployment. OSTree's trees
// make them links into /var (home -> var/home); a deploy warns about a
// tree that does not.
var stateDirs = []string{"home", "root", "srv", "opt", "mnt", "media"}

// stateDirWarnings returns a warning for each of stateDirs that is a
// directory in deployment d.
func stateDirWarnings(d *Deployment) []string {
	var out []string
	for _, name := range stateDirs {
		if fi, err := os.Lstat(filepath.Join(d.Path, name)); err == nil && fi.IsDir() {
			out = append(out, fmt.Sprintf("/%s is a directory in commit %s: what the running system writes there stays with this deployment and is deleted with it; make it a link into /var in the tree (/%s -> var/%s)",
				name, d.Commit, name, name))
		}
	}
	return out
}

// varWarnings returns a warning for each entry of deployment d's /var,
// which is never seen: the stateroot's /var is mounted over it at boot.
// OSTree notes each one too.
// A /var that is not a directory is listed not at all: a symlink there
// leads out of the deployment (and prepareTree refuses it).
func varWarnings(d *Deployment) []string {
	dir := filepath.Join(d.Path, "var")
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return nil // no /var: the deploy makes the mount point
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		out = append(out, fmt.Sprintf("/var/%s in commit %s is ignored: /var is the stateroot's, shared by its deployments; create it at boot (systemd-tmpfiles) instead",
			e.Name(), d.Commit))
	}
	return out
}

// NoKernelError is returned for a tree with a kernel in none of the
// layouts findKernel reads.
type NoKernelError struct {
	Commit repo.ID // the commit whose tree has no kernel
}

// Error names the commit and where its kernel was looked for.
func (e *NoKernelError) Error() string {
	return fmt.Sprintf("commit %s has no kernel: no usr/lib/modules/<version>/vmlinuz, nor vmlinuz-<version>-<sha256> in usr/lib/ostree-boot or boot", e.Commit)
}

// kernel is the boot files a tree ships in usr/lib/modules/<version>/.
type kernel struct {
	version    string
	vmlinuz    repo.ID
	initramfs  repo.ID // initramfs.img (or initramfs); zero if absent
	devicetree repo.ID // devicetree, for boards whose firmware has none; zero if absent
	hmac       repo.ID // .vmlinuz.hmac, the kernel's FIPS checksum; zero if absent
	// dtbTree is the dirtree of dtb/, the device trees of many boards,
	// which U-Boot picks from (fdtdir); looked for only without a
	// devicetree. Zero if absent.
	dtbTree  repo.ID
	dtbFiles []dtbEntry // dtb/ itself and what it holds, each directory before its contents
	bootCsum string
}

// dtbEntry is a kernel's dtb/ directory or a directory or regular file
// below it.
type dtbEntry struct {
	rel  string  // slash-separated path below dtb/; "" for dtb/ itself
	dir  bool    // a directory
	id   repo.ID // the file object; zero for a directory
	mode uint32  // permission bits
}

// bootFile is one file installKernel puts in a kernel's /boot directory.
type bootFile struct {
	name string
	id   repo.ID
}

// files lists what goes to /boot, under the names boot loaders and
// dracut's FIPS check look for.
func (k *kernel) files() []bootFile {
	out := []bootFile{{bootName("vmlinuz", k.version, ""), k.vmlinuz}}
	for _, f := range []bootFile{
		{bootName("initramfs", k.version, ".img"), k.initramfs},
		{bootName("devicetree", k.version, ""), k.devicetree},
		{bootName(".vmlinuz", k.version, ".hmac"), k.hmac},
	} {
		if !f.id.IsZero() {
			out = append(out, f)
		}
	}
	return out
}

// bootName is the name of a kernel's file in /boot: base-version+ext, or
// base+ext for a kernel without a version (a legacy vmlinuz-<sha256>).
func bootName(base, version, ext string) string {
	if version == "" {
		return base + ext
	}
	return base + "-" + version + ext
}

// findKernel finds the tree's kernel as OSTree does: in usr/lib/modules
// (modulesKernel), else in the first of bootname.LegacyDirs the tree has
// (legacyKernel).
func findKernel(r *repo.Repo, commit repo.ID) (*kernel, error) {
	if k, err := modulesKernel(r, commit); k != nil || err != nil {
		return k, err
	}
	for _, dir := range bootname.LegacyDirs {
		// A link is followed, as OSTree follows it, but only within the
		// tree; what is there and not a directory refuses the tree, as in
		// OSTree, rather than letting the next layout boot in its stead.
		e, err := r.Resolve(commit, "/"+dir)
		if pe := (*repo.PathError)(nil); errors.As(err, &pe) && errors.Is(pe.Err, repo.ErrNotFound) {
			continue
		}
		if errors.As(err, new(*repo.PathError)) {
			return nil, fmt.Errorf("kernel directory: %w", err) // it names the commit
		}
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", commit, err)
		}
		if !e.IsDir() {
			return nil, fmt.Errorf("commit %s: kernel directory %s: %s is not a directory", commit, dir, strings.TrimPrefix(e.Path, "/"))
		}
		return legacyKernel(r, commit, e.ID, strings.TrimPrefix(e.Path, "/"))
	}
	return nil, &NoKernelError{commit}
}

// modulesKernel looks for exactly one usr/lib/modules/<kver>/vmlinuz, and
// the initramfs, devicetree (else a dtb/ directory) and HMAC file beside
// it. Each must be a regular file, and dtb/ hold only regular files and
// directories: a link would install its target's name, not a kernel. It
// returns nil, nil for a tree with none.
func modulesKernel(r *repo.Repo, commit repo.ID) (*kernel, error) {
	// Only a path the tree lacks means no kernel: a missing commit or
	// dirtree (pruned, or never pulled) is that object's error.
	e, err := r.Lookup(commit, "/usr/lib/modules")
	if errors.As(err, new(*repo.PathError)) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	if !e.IsDir() {
		return nil, nil
	}
	t, err := r.ReadDirTree(e.ID)
	if err != nil {
		return nil, err
	}
	var found []*kernel
	for _, d := range t.Dirs {
		// file returns the regular file name in this version's directory.
		file := func(name string) (repo.ID, error) {
			f, err := r.LookupTree(d.TreeID, d.MetaID, "/"+name)
			if err != nil && !errors.As(err, new(*repo.PathError)) {
				return repo.ID{}, fmt.Errorf("commit %s: usr/lib/modules/%s: %w", commit, d.Name, err)
			}
			if err != nil || f.IsDir() {
				return repo.ID{}, nil
			}
			h, err := r.StatFile(f.ID)
			if err != nil {
				return repo.ID{}, err
			}
			if h.Type != repo.TypeRegular {
				return repo.ID{}, fmt.Errorf("commit %s: usr/lib/modules/%s/%s is not a regular file; a deployment installs the file itself", commit, d.Name, name)
			}
			return f.ID, nil
		}
		k := &kernel{version: d.Name}
		if k.vmlinuz, err = file("vmlinuz"); err != nil {
			return nil, err
		}
		if k.vmlinuz.IsZero() {
			continue
		}
		if !bootname.VersionOK(d.Name) {
			return nil, fmt.Errorf("commit %s: kernel version directory usr/lib/modules/%q holds a space or control character, which boot entries cannot carry", commit, d.Name)
		}
		for _, f := range []struct {
			id    *repo.ID
			names []string
		}{{&k.initramfs, []string{"initramfs.img", "initramfs"}}, {&k.devicetree, []string{"devicetree"}}, {&k.hmac, []string{".vmlinuz.hmac"}}} {
			for _, name := range f.names {
				if *f.id, err = file(name); err != nil {
					return nil, err
				}
				if !f.id.IsZero() {
					break
				}
			}
		}
		// A single devicetree wins over a directory of them, as in OSTree.
		if k.devicetree.IsZero() {
			if err := findDtb(r, commit, d, k); err != nil {
				return nil, err
			}
		}
		k.setBootCsum()
		found = append(found, k)
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	var names []string
	for _, k := range found {
		names = append(names, k.version)
	}
	return nil, fmt.Errorf("commit %s has %d kernels (%s) in usr/lib/modules; a deployment boots one", commit, len(found), strings.Join(names, ", "))
}

// setBootCsum sets k.bootCsum from the ids of what k installs.
func (k *kernel) setBootCsum() {
	// The devicetree and dtb/ count only when there, so that kernels
	// without keep the boot checksum they always had.
	parts := [][]byte{k.vmlinuz[:], k.initramfs[:]}
	if !k.devicetree.IsZero() {
		parts = append(parts, k.devicetree[:])
	}
	if !k.dtbTree.IsZero() {
		parts = append(parts, k.dtbTree[:])
	}
	k.bootCsum = repo.Sum(parts...).String()
}

// legacyKernel reads the layout of trees made by older tooling, as OSTree
// does: in the directory dir (dirtree tree), vmlinuz-<kver>-<sha256> is
// the kernel, and initramfs-*-<sha256> and devicetree-*-<sha256> go with
// it. A name without the checksum is not part of the layout; the boot
// files must carry their kernel's checksum. Unlike OSTree, which picks one
// of several as the directory lists them, otree refuses a tree with more
// than one kernel, initramfs or devicetree. The boot checksum is that of
// the content, as for usr/lib/modules, not the one in the names, which
// nothing checks: two kernels named alike must not share a /boot
// directory.
func legacyKernel(r *repo.Repo, commit, tree repo.ID, dir string) (*kernel, error) {
	t, err := r.ReadDirTree(tree)
	if err != nil {
		return nil, fmt.Errorf("commit %s: reading %s: %w", commit, dir, err)
	}
	names := make([]string, len(t.Files))
	for i, f := range t.Files {
		names[i] = f.Name
	}
	l, err := bootname.ReadLegacy(dir, names)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	if l == nil {
		return nil, &NoKernelError{commit}
	}
	k := &kernel{version: l.Version}
	for _, kind := range bootname.Kinds {
		name := l.Files[kind]
		if name == "" {
			continue
		}
		f, _ := t.File(name)
		h, err := r.StatFile(f.ID)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %s/%s: %w", commit, dir, name, err)
		}
		if h.Type != repo.TypeRegular {
			return nil, fmt.Errorf("commit %s: %s/%s is not a regular file; a deployment installs the file itself", commit, dir, name)
		}
		switch kind {
		case "vmlinuz":
			k.vmlinuz = f.ID
		case "initramfs":
			k.initramfs = f.ID
		default:
			k.devicetree = f.ID
		}
	}
	k.setBootCsum()
	return k, nil
}

// findDtb records the directory dtb/ in the kernel version directory d,
// if there is one, with everything below it. A boot loader reads what it
// finds there, so anything but regular files and directories (a link could
// point anywhere on the boot filesystem) is refused. A non-directory named
// dtb that is a regular file is not the layout looked for and is left out,
// as a directory named devicetree is.
func findDtb(r *repo.Repo, commit repo.ID, d repo.DirEntry, k *kernel) error {
	base := "usr/lib/modules/" + d.Name + "/dtb"
	e, err := r.LookupTree(d.TreeID, d.MetaID, "/dtb")
	if errors.As(err, new(*repo.PathError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("commit %s: %s: %w", commit, base, err)
	}
	if !e.IsDir() {
		h, err := r.StatFile(e.ID)
		if err != nil {
			return fmt.Errorf("commit %s: %s: %w", commit, base, err)
		}
		if h.Type != repo.TypeRegular {
			return fmt.Errorf("commit %s: %s is not a directory; a deployment installs the device trees themselves", commit, base)
		}
		return nil
	}
	var files []dtbEntry
	// dir records the directory rel (its dirmeta meta) and then walks
	// what dirtree tree lists.
	var dir func(rel string, tree, meta repo.ID) error
	dir = func(rel string, tree, meta repo.ID) error {
		m, err := r.ReadDirMeta(meta)
		if err != nil {
			return fmt.Errorf("commit %s: %s: %w", commit, path.Join(base, rel), err)
		}
		files = append(files, dtbEntry{rel: rel, dir: true, mode: m.Mode})
		t, err := r.ReadDirTree(tree)
		if err != nil {
			return fmt.Errorf("commit %s: reading %s: %w", commit, path.Join(base, rel), err)
		}
		for _, f := range t.Files {
			p := path.Join(rel, f.Name)
			h, err := r.StatFile(f.ID)
			if err != nil {
				return fmt.Errorf("commit %s: %s: %w", commit, path.Join(base, p), err)
			}
			if h.Type != repo.TypeRegular {
				return fmt.Errorf("commit %s: %s is not a regular file; a boot loader reading dtb/ must find the device trees themselves", commit, path.Join(base, p))
			}
			files = append(files, dtbEntry{rel: p, id: f.ID, mode: h.Mode})
		}
		for _, sub := range t.Dirs {
			if err := dir(path.Join(rel, sub.Name), sub.TreeID, sub.MetaID); err != nil {
				return err
			}
		}
		return nil
	}
	if err := dir("", e.ID, e.MetaID); err != nil {
		return err
	}
	k.dtbTree, k.dtbFiles = e.ID, files
	return nil
}

// installKernel puts the kernel's files in boot/otree/<os>-<bootcsum>/
// unless they are there: hardlinks of the repository's objects when /boot
// is on the repository's filesystem, as OSTree does, else copies; dtb/ is
// copied whole (installDtb). Each is made under a temporary name and
// renamed, so a present one is complete. If one fails (a full /boot,
// typically), what this call installed is removed again, so that a failed
// deploy leaves /boot as it was; undo removes it too, for a switch that
// fails after this call.
func (s *Sysroot) installKernel(osName string, k *kernel) (undo func(), err error) {
	if err := s.checkBootDirs(); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.path, "boot", "otree", osName+"-"+k.bootCsum)
	var installed []string
	if _, serr := os.Lstat(dir); errors.Is(serr, fs.ErrNotExist) {
		installed = append(installed, dir)
	}
	remove := func() {
		for _, p := range slices.Backward(installed) {
			removeTree(p) // dtb is a directory; all were made by this call
		}
	}
	defer func() {
		if err != nil {
			remove()
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, f := range k.files() {
		dst := filepath.Join(dir, f.name)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := s.installObject(f.id, dst); err != nil {
			return nil, fmt.Errorf("installing %s: %w", dst, err)
		}
		installed = append(installed, dst)
	}
	if len(k.dtbFiles) > 0 {
		dst := filepath.Join(dir, "dtb")
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			if err := s.installDtb(k, dst); err != nil {
				return nil, fmt.Errorf("installing %s: %w", dst, err)
			}
			installed = append(installed, dst)
		} else if err != nil {
			return nil, err
		}
	}
	return remove, nil // made durable with the switch's sync of /boot
}

// installDtb copies the kernel's dtb/ to dst. Copies wherever /boot is,
// not hardlinks where it could be: device trees are small, and one way of
// installing them is one way to get right. Directories and files get the
// tree's permission bits, but never set-id or sticky bits, which mean
// nothing to a boot loader. The
// copy is built in dst.tmp, which this sysroot's lock keeps to this call
// (a leftover of a crash is removed first), and flushed to disk before the
// rename: a dtb present after a crash is then whole, and a later deploy of
// the same kernel can keep it.
func (s *Sysroot) installDtb(k *kernel, dst string) (err error) {
	tmp := dst + ".tmp"
	if err := removeTree(tmp); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			removeTree(tmp)
		}
	}()
	for _, e := range k.dtbFiles {
		p := filepath.Join(tmp, filepath.FromSlash(e.rel))
		if e.dir {
			// Writable while it is filled; its own mode comes once it is.
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			continue
		}
		// O_EXCL with O_NOFOLLOW: no link planted there redirects the
		// write; the tree's bits are set whatever the umask.
		if err := s.writeObject(e.id, p, os.O_EXCL|unix.O_NOFOLLOW, os.FileMode(e.mode&0o777), true, false); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	// Children before parents, so that no directory is closed to writes
	// while one below it still needs its mode.
	for _, e := range slices.Backward(k.dtbFiles) {
		if e.dir {
			if err := os.Chmod(filepath.Join(tmp, filepath.FromSlash(e.rel)), os.FileMode(e.mode&0o777)); err != nil {
				return err
			}
		}
	}
	if err := durable.SyncFS(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// installObject makes dst a hardlink of the file object id where the
// repository stores its content as is (bare modes) on dst's filesystem,
// and a synced copy otherwise.
func (s *Sysroot) installObject(id repo.ID, dst string) error {
	tmp := dst + ".tmp"
	os.Remove(tmp)
	if m := s.repo.Mode(); m == repo.ModeBare || m == repo.ModeBareUser || m == repo.ModeBareUserOnly {
		err := os.Link(s.repo.ObjectPath(repo.KindFile, id), tmp)
		if err == nil {
			return os.Rename(tmp, dst)
		}
		if !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EMLINK) && !errors.Is(err, unix.EPERM) {
			return err
		}
	}
	if err := s.writeObject(id, tmp, os.O_TRUNC, 0o644, false, true); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// writeObject writes the content of file object id to the file p, opened
// with flags besides O_WRONLY|O_CREATE and made with mode perm (exactly,
// whatever the umask, when chmod), synced when sync. A file it does not
// finish is removed.
func (s *Sysroot) writeObject(id repo.ID, p string, flags int, perm os.FileMode, chmod, sync bool) (err error) {
	_, rc, err := s.repo.OpenFile(id)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|flags, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(p)
		}
	}()
	if _, err := io.Copy(f, rc); err != nil {
		return err
	}
	if chmod {
		if err := f.Chmod(perm); err != nil {
			return err
		}
	}
	if sync {
		return f.Sync()
	}
	return nil
}

// NoStaterootError reports a stateroot the sysroot does not have, or
// has only in part, so that a caller can make it (or finish it) with
// OSInit.
type NoStaterootError struct {
	OS string // the stateroot asked for
	// Missing is the path of the stateroot's var when its directory
	// exists without it (an os-init killed part way, a var removed);
	// "" when the stateroot's directory itself is missing.
	Missing string
}

// Error names the stateroot and, for one made in part, what it lacks.
func (e *NoStaterootError) Error() string {
	if e.Missing != "" {
		return fmt.Sprintf("stateroot %q is incomplete: %s does not exist", e.OS, e.Missing)
	}
	return fmt.Sprintf("stateroot %q does not exist", e.OS)
}

// checkStateroot reports whether stateroot osName has the var a
// deployment of it boots with: a *NoStaterootError if it or its var is
// missing, another error if either is there but no directory (a link),
// or if it cannot be told.
func (s *Sysroot) checkStateroot(osName string) error {
	dir := filepath.Join(s.root, "otree", "deploy", osName)
	v := filepath.Join(dir, "var")
	// Not followed: a link there, dangling or not, is no stateroot that
	// os-init could complete (it refuses one), nor one to deploy into.
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return &NoStaterootError{OS: osName}
	}
	if err := checkDirs(dir, v); err != nil {
		return fmt.Errorf("stateroot %q: %w", osName, err)
	}
	if _, err := os.Lstat(v); errors.Is(err, fs.ErrNotExist) {
		return &NoStaterootError{OS: osName, Missing: v}
	} else if err != nil {
		return fmt.Errorf("stateroot %q: %w", osName, err)
	}
	return nil
}

// ErrStaterootNeeded is matched (with errors.Is) by the error of a deploy,
// upgrade or switch given no stateroot (DeployOptions.OS) when nothing
// decides one: no deployment is booted, and the sysroot has no stateroot
// or several. Naming one in the options deals with it.
var ErrStaterootNeeded = errors.New("no stateroot given")

// chooseOS picks the stateroot for a deployment when none is given.
func (s *Sysroot) chooseOS(osName string) (string, error) {
	if osName != "" {
		if err := validOSName(osName); err != nil {
			return "", err
		}
		if err := s.checkStateroot(osName); err != nil {
			return "", err
		}
		return osName, nil
	}
	if s.booted != nil {
		return s.booted.OS, nil
	}
	// Not the default deployment's: a commit of one system deployed into
	// another's stateroot would merge that one's /etc and drop its
	// rollback. OSTree's deploy and upgrade refuse outright.
	roots, err := s.stateroots()
	if err != nil {
		return "", err
	}
	if len(roots) == 1 {
		// One that os-init has not finished (killed part way) has no var
		// for the deployment to boot with, as a named one must have.
		if err := s.checkStateroot(roots[0]); err != nil {
			return "", err
		}
		return roots[0], nil
	}
	return "", fmt.Errorf("%w, no deployment is booted, and the sysroot %s has %d stateroots (%s)", ErrStaterootNeeded, s.root, len(roots), strings.Join(roots, ", "))
}

// MergeDeployment is the deployment a new one of stateroot osName takes
// its /etc and kernel arguments from: the booted one if it is of that
// stateroot, else the first of that stateroot in boot order.
func (s *Sysroot) MergeDeployment(osName string) *Deployment {
	if s.booted != nil && s.booted.OS == osName {
		return s.booted
	}
	for _, d := range s.deployments {
		if d.OS == osName {
			return d
		}
	}
	return nil
}

// Deploy checks out rev as a new deployment, merges /etc, installs its
// kernel, and makes it the default (see DeployOptions). An error before
// the switch leaves the deployment list as it was. Once the boot entries
// have switched (or the deployment is staged) the deployment stays: a
// failure of the cleanup that follows is a *CleanupError, returned with
// the result, and a failure in the switch's last steps, after its rename,
// is returned alone, with Deployments listing the new deployment. So
// after an error, check Deployments before deploying again.
func (s *Sysroot) Deploy(ctx context.Context, rev string, opts DeployOptions) (*DeployResult, error) {
	return s.deploy(ctx, rev, opts, false)
}

// deploy is Deploy; afterBooted places the new deployment right behind
// the booted one, where rollback finds it (Unlock's hotfix clone).
func (s *Sysroot) deploy(ctx context.Context, rev string, opts DeployOptions, afterBooted bool) (_ *DeployResult, err error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Boot loader settings the switch would refuse, refused before the
	// checkout.
	if _, err := s.loaderConfig(); err != nil {
		return nil, err
	}
	osName, err := s.chooseOS(opts.OS)
	if err != nil {
		return nil, err
	}
	// Resolving the revision and pointing the deployment's ref at the
	// commit happen under the refs lock, so a prune of the repository
	// cannot remove the commit in between; the ref keeps it from then on.
	refs, err := s.repo.LockRefs(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if refs != nil {
			refs.Unlock()
		}
	}()
	commit, err := s.repo.ResolveRev(rev)
	if err != nil {
		return nil, err
	}
	k, err := findKernel(s.repo, commit)
	if err != nil {
		return nil, err
	}
	var merge *Deployment
	if !opts.NoMerge {
		merge = s.MergeDeployment(osName)
	}
	// from names where the arguments came from, for a KargsDelete that
	// finds nothing there.
	cmdline, from := "", "of the empty command line (no deployment of "+osName+" to merge)"
	switch {
	case opts.KargsNone && opts.KargsProcCmdline:
		// Which to start from is the caller's to say, as OSTree's deploy
		// has it.
		return nil, errors.New("deploy: KargsNone and KargsProcCmdline exclude each other")
	case opts.KargsNone:
		from = "of the empty command line (KargsNone)"
	case opts.KargsProcCmdline:
		from = "taken from the booted command line (KargsProcCmdline)"
		c := s.cmdline
		if c == "" {
			b, err := os.ReadFile("/proc/cmdline")
			if err != nil {
				return nil, err
			}
			c = string(b)
		}
		// /proc/cmdline ends the command line with a newline it does not
		// hold; after an unclosed quote (the kernel takes the rest as the
		// last value) it would read as part of that argument, and no
		// options line can hold it.
		c = strings.TrimSuffix(c, "\n")
		for _, key := range []string{"otree", "BOOT_IMAGE", "initrd"} {
			c = removeArg(c, key)
		}
		cmdline = c
	case opts.NoMerge:
		// The stateroot may well have a deployment: NoMerge left it out.
		from = "of the empty command line (NoMerge: no deployment merged)"
	case merge != nil:
		cmdline, from = merge.Options, fmt.Sprintf("taken from deployment %s of %s (the merge deployment)", merge.Name(), merge.OS)
	}
	// KargsEdit deletes before it appends; a deploy appends first, as
	// OSTree's does.
	if cmdline, err = (KargsEdit{Replace: opts.Kargs, Append: opts.KargsAppend, wholeValues: true}).apply(cmdline); err != nil {
		return nil, err
	}
	if cmdline, err = (KargsEdit{Delete: opts.KargsDelete}).apply(cmdline); err != nil {
		return nil, fmt.Errorf("deploy of commit %s: KargsDelete (--karg-delete): %w in the kernel arguments %s", commit, err, from)
	}
	o := &origin{}
	switch {
	case opts.Origin != nil:
		if o, err = parseOrigin("origin file", opts.Origin); err != nil {
			return nil, err
		}
	case isRefName(s.repo, rev):
		o.Refspec = rev
	case merge != nil:
		mo, err := readOrigin(merge.Path + ".origin")
		if err != nil {
			return nil, err
		}
		mo.Pinned, mo.OverrideCommit, mo.Refspec = false, "", commit.String()
		o = mo
	default:
		o.Refspec = commit.String()
	}
	// A new deployment starts without the overlay an unlock gave another.
	o.Unlocked = ""

	d := &Deployment{OS: osName, Commit: commit, Version: s.commitVersion(commit), Kernel: k.version, BootCsum: k.bootCsum,
		Initramfs: !k.initramfs.IsZero(), Devicetree: !k.devicetree.IsZero(), FdtDir: !k.dtbTree.IsZero(), Options: cmdline, Origin: o.Refspec, OverrideCommit: o.OverrideCommit}
	// Installed before anything else is written: a missing file then
	// fails the deploy with nothing to undo but unreferenced images,
	// which cleanup removes.
	if d.OverlayInitrds, err = s.installOverlays(opts.OverlayInitrds); err != nil {
		return nil, err
	}
	if d.Serial, err = s.freeSerial(osName, commit); err != nil {
		return nil, err
	}
	d.Path = s.deploymentDir(osName, commit, d.Serial)
	// Cleanup removes the ref if the deployment never becomes current.
	if err := s.repo.SetRef(deployRef(d), commit); err != nil {
		return nil, err
	}
	refs.Unlock()
	refs = nil
	switched := false
	// checkedOut is set once the checkout returns: a panic in it (the
	// caller's Progress, raised again once the files are written) fails
	// the deploy too, with err not set.
	checkedOut := false
	// replaced is the record of the staged deployment this one replaces,
	// once it is unstaged.
	var replaced *stagedRecord
	defer func() {
		// What a failed deploy wrote is not referenced by any boot entry;
		// remove it now rather than leave it to the next cleanup.
		if (err != nil || !checkedOut) && !switched && !s.listsAfterFailure(d) {
			removeTree(d.Path)
			os.Remove(d.Path + ".origin")
			s.setRefs(context.WithoutCancel(ctx), nil, []string{deployRef(d)})
			// Nothing replaced the staged deployment: it is staged
			// again, rather than lost to a deploy that failed (a full
			// /boot). It stays unstaged only if a crash comes first.
			if replaced != nil {
				if werr := s.writeRunRecord(stagedRecordName, *replaced, true); werr != nil {
					err = fmt.Errorf("%w; and the deployment it was to replace, %s.%d, could not be staged again: %v", err, replaced.Commit, replaced.Serial, werr)
				}
				s.loadStaged()
			}
		}
	}()
	res := &DeployResult{Deployment: d, Merge: merge}
	st, err := checkout.Checkout(ctx, s.repo, commit, d.Path, checkout.Options{
		UserMode: s.repo.Mode() != repo.ModeBare, Progress: opts.Progress})
	checkedOut = true
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", commit, err)
	}
	res.Stats = *st
	res.Warnings = append(stateDirWarnings(d), varWarnings(d)...)
	if res.Etc, err = s.prepareTree(ctx, d, merge); err != nil {
		return nil, err
	}
	if err := writeReadable(d.Path+".origin", o.encode()); err != nil {
		return nil, err
	}
	if err := setImmutable(d.Path, true); err != nil {
		return nil, err
	}
	// This deployment replaces a staged one, now that it is written. A
	// staged deploy's record replaces the other's in one rename, so that
	// a kill before it leaves that one staged; one that switches forgets
	// it first, so that a crash after the switch cannot leave it to be
	// finalized over this one at shutdown, and stages it again if it
	// fails before the switch.
	if s.staged != nil && !opts.Stage {
		rec := *s.stagedRec
		if err := s.unstage(); err != nil {
			return nil, err
		}
		replaced = &rec
	}
	if opts.Stage {
		// Durable before it is recorded: the finalize, at shutdown, only
		// merges /etc and writes boot entries.
		if err := durable.SyncFS(d.Path); err != nil {
			return nil, err
		}
		if err := s.stage(d, merge, opts); err != nil {
			return nil, err
		}
		switched = true
		if _, err := s.cleanupAfter(ctx, true, "staged"); err != nil {
			return res, err
		}
		return res, nil
	}
	if err := s.switchTo(ctx, d, merge, k, opts, afterBooted, res); err != nil {
		return nil, err
	}
	switched = true
	if res.Prune, err = s.cleanupAfter(ctx, opts.NoPrune, "deployed"); err != nil {
		return res, err
	}
	return res, nil
}

// listsAfterFailure tells whether the boot entries, read anew after a
// failed deploy, list d. A switch can fail after its rename (syncing the
// directory, ending a boot count, re-reading the entries), and then d is
// what boots by default and must stay. Entries that cannot be read count
// as listing it: the next cleanup decides once they can.
func (s *Sysroot) listsAfterFailure(d *Deployment) bool {
	if err := s.load(); err != nil {
		return true
	}
	return slices.ContainsFunc(s.deployments, func(x *Deployment) bool { return x.Path == d.Path })
}

// switchTo installs d's kernel and switches to a list with d first (with
// NotAsDefault right behind the booted deployment, else the merge one, else
// last;
// right behind the booted deployment with afterBooted)
// and the deployments opts retains; res gets the switch made, the
// deployments dropped and d as listed now.
func (s *Sysroot) switchTo(ctx context.Context, d, merge *Deployment, k *kernel, opts DeployOptions, afterBooted bool, res *DeployResult) error {
	undo, err := s.installKernel(d.OS, k)
	if err != nil {
		return err
	}
	bv := s.bootVersion
	links := s.switchLinks(bv)
	keep, removed := s.retained(merge, d.OS, opts)
	var list []*Deployment
	switch at := slices.Index(keep, s.booted); {
	case afterBooted && at >= 0:
		list = slices.Insert(keep, at+1, d)
	case opts.NotAsDefault:
		// As OSTree's: right behind the deployment that divides pending
		// from rollback ones (the booted one, else the merge one), even
		// when the merge one of another stateroot comes first; last when
		// there is none, or the booted one is not listed.
		cross := s.booted
		if cross == nil {
			cross = merge
		}
		if at := slices.Index(keep, cross); at >= 0 {
			list = slices.Insert(keep, at+1, d)
		} else {
			list = append(keep, d)
		}
	default:
		list = append([]*Deployment{d}, keep...)
	}
	sw, err := s.writeDeployments(ctx, list)
	if err != nil {
		// Failed before the switch (the links it renames are as they
		// were), no entry names what installKernel added: a kernel left
		// on a full /boot would stay in the way of the next deploy.
		if s.switchLinks(bv) == links {
			undo()
		}
		return err
	}
	res.Switch, res.Removed = sw, removed
	for _, x := range s.deployments {
		if x.Path == d.Path {
			res.Deployment = x
		}
	}
	return nil
}

// switchLinks reads the links whose rename is a switch from boot version
// bv: boot/loader for a full switch, otree/boot.<bv> for a sub-version
// one.
func (s *Sysroot) switchLinks(bv int) [2]string {
	var l [2]string
	l[0], _ = os.Readlink(filepath.Join(s.path, "boot", "loader"))
	l[1], _ = os.Readlink(filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d", bv)))
	return l
}

// retained splits the existing deployments into those a deploy keeps and
// those it drops. The booted deployment (else the merge one) divides the
// pending deployments ahead of it from the rollback ones behind.
func (s *Sysroot) retained(merge *Deployment, osName string, opts DeployOptions) (keep, drop []*Deployment) {
	cross := s.booted
	if cross == nil {
		cross = merge
	}
	all := opts.Retain || (cross == nil && (opts.RetainPending || opts.RetainRollback))
	keep = []*Deployment{}
	behind := false
	for _, x := range s.deployments {
		if x == cross {
			behind = true
		}
		if all || x.Booted || x == merge || x.Pinned || x.OS != osName ||
			(opts.RetainPending && !behind) || (opts.RetainRollback && behind) {
			keep = append(keep, x)
		} else {
			drop = append(drop, x)
		}
	}
	return keep, drop
}

// isRefName tells whether rev is the name of a ref itself (not an id, a
// prefix, or a ref with ^ or ~N).
func isRefName(r *repo.Repo, rev string) bool {
	_, err := r.ReadRef(rev)
	return err == nil
}

// checkDeployDir returns an error when stateroot osName, or its deploy
// directory, is there but not a directory: a symlink there would lead a
// deploy's checkout, and cleanup's removals, out of the sysroot.
func (s *Sysroot) checkDeployDir(osName string) error {
	root := filepath.Join(s.root, "otree", "deploy", osName)
	return checkDirs(root, filepath.Join(root, "deploy"))
}

// checkBootDirs returns an error when boot/otree, or the directory of
// overlay images in it, is there but not a directory: kernels and images
// are installed into them, and cleanup removes what it finds there by name.
func (s *Sysroot) checkBootDirs() error {
	return checkDirs(filepath.Join(s.path, "boot", "otree"), filepath.Join(s.path, "boot", overlayDir))
}

// checkDirs returns an error naming the first of paths that is there but
// not a directory (a symlink, say); a missing one is no error.
func checkDirs(paths ...string) error {
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory (mode %v): nothing is written or removed through it", p, fi.Mode())
		}
	}
	return nil
}

// freeSerial is the serial for a new deployment of commit: one above the
// highest a deployment of it has, as in OSTree, so that a serial is not
// given again while an older boot entry may still name it; and past any
// directory an interrupted deploy left on disk.
func (s *Sysroot) freeSerial(osName string, commit repo.ID) (int, error) {
	if err := s.checkDeployDir(osName); err != nil {
		return 0, err
	}
	// prepare-root refuses to boot with a stateroot var that is not a
	// directory: no deployment is made that could not boot.
	if err := checkDirs(filepath.Join(s.root, "otree", "deploy", osName, "var")); err != nil {
		return 0, err
	}
	first := 0
	for _, d := range append(s.deployments[:len(s.deployments):len(s.deployments)], s.staged) {
		if d != nil && d.OS == osName && d.Commit == commit && d.Serial >= first {
			first = d.Serial + 1
		}
	}
	for n := first; ; n++ {
		p := s.deploymentDir(osName, commit, n)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Lstat(p + ".origin"); errors.Is(err, fs.ErrNotExist) {
				return n, nil
			}
		} else if err != nil {
			return 0, err
		}
	}
}

// prepareTree turns a fresh checkout into a bootable root: /etc moves to
// usr/etc, the new /etc is merged from the merge deployment, and the
// mount points prepare-root needs exist.
func (s *Sysroot) prepareTree(ctx context.Context, d, merge *Deployment) ([]EtcChange, error) {
	etc := filepath.Join(d.Path, "etc")
	usrEtc := filepath.Join(d.Path, "usr", "etc")
	// /usr, /etc and /usr/etc are written through below: a symlink in
	// their place would lead the writes out of the deployment. prepare-root
	// mounts on /var and /sysroot (and /usr) and refuses to boot a
	// deployment where one is not a directory, as mount(2) would follow a
	// symlink there: such a tree is refused now, not at the next boot.
	for _, p := range []string{"usr", "etc", "usr/etc", "var", "sysroot"} {
		if fi, err := os.Lstat(filepath.Join(d.Path, p)); err == nil && !fi.IsDir() {
			return nil, fmt.Errorf("commit %s: /%s is not a directory (mode %v)", d.Commit, p, fi.Mode())
		}
	}
	_, errEtc := os.Lstat(etc)
	_, errUsrEtc := os.Lstat(usrEtc)
	switch {
	case errEtc == nil && errUsrEtc == nil:
		return nil, fmt.Errorf("commit %s has both /etc and /usr/etc", d.Commit)
	case errEtc == nil:
		if _, err := os.Lstat(filepath.Join(d.Path, "usr")); err != nil {
			return nil, fmt.Errorf("commit %s has no /usr: %w", d.Commit, err)
		}
		if err := os.Rename(etc, usrEtc); err != nil {
			return nil, err
		}
	case errUsrEtc != nil:
		if err := os.MkdirAll(usrEtc, 0o755); err != nil {
			return nil, err
		}
	}
	changes, err := mergeEtcInto(ctx, d, merge, etc)
	if err != nil {
		return changes, err
	}
	// Mount points the booted system needs: its var and the physical
	// root, and those systemd and the initramfs mount on. The deployment's
	// top level is immutable once written, so a tree that lacks one gets
	// it now.
	for _, p := range []struct {
		name string
		mode os.FileMode
	}{{"var", 0o755}, {"sysroot", 0o755}, {"boot", 0o755}, {"dev", 0o755}, {"proc", 0o555}, {"run", 0o755},
		{"sys", 0o555}, {"tmp", 0o777 | os.ModeSticky}} {
		dir := filepath.Join(d.Path, p.name)
		if _, err := os.Lstat(dir); err == nil {
			continue
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chmod(dir, p.mode); err != nil {
			return nil, err
		}
	}
	// A deployed system reaches the sysroot's otree directory (and so its
	// repository and deployments) at /otree.
	if _, err := os.Lstat(filepath.Join(d.Path, "otree")); errors.Is(err, fs.ErrNotExist) {
		if err := os.Symlink("sysroot/otree", filepath.Join(d.Path, "otree")); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// mergeEtcInto merges the /etc of merge (none when nil) with d's defaults
// into dest, which must not exist.
func mergeEtcInto(ctx context.Context, d, merge *Deployment, dest string) ([]EtcChange, error) {
	oldDefaults, oldEtc := "", ""
	if merge != nil {
		oldDefaults = filepath.Join(merge.Path, "usr", "etc")
		oldEtc = filepath.Join(merge.Path, "etc")
	}
	return MergeEtc(ctx, oldDefaults, oldEtc, filepath.Join(d.Path, "usr", "etc"), dest)
}
