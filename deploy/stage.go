package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/jsonout"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// ErrNoStaged is returned by FinalizeStaged when no deployment is staged.
var ErrNoStaged = errors.New("no deployment is staged")

// stagedRecord is what a staged deploy leaves for FinalizeStaged: the
// deployment written (directory, origin and ref) and how to switch to it.
// It lives under run/ of the sysroot (/run on a booted system), so a reboot
// before the finalize forgets it and the next cleanup removes the
// deployment, as OSTree does.
type stagedRecord struct {
	OS      string  `json:"os"`
	Commit  repo.ID `json:"commit"`
	Serial  int     `json:"serial"`
	Options string  `json:"options"`
	NoMerge bool    `json:"no_merge,omitempty"`
	// Merge names the merge deployment of the deploy (<commit>.<serial>,
	// of stateroot OS), whose /etc the finalize merges again, as OSTree
	// records it: another deployment's /etc is not the admin's. Empty
	// in a record of an older version: the merge deployment is then the
	// one at the finalize.
	Merge string `json:"merge,omitempty"`
	// What status shows, as the deploy found it, so that opening the
	// sysroot reads nothing from the repository for it.
	Kernel         string   `json:"kernel"`
	BootCsum       string   `json:"bootcsum"`
	Initramfs      bool     `json:"initramfs,omitempty"`
	Devicetree     bool     `json:"devicetree,omitempty"`
	FdtDir         bool     `json:"fdtdir,omitempty"`
	OverlayInitrds []string `json:"overlay_initrds,omitempty"`
	Version        string   `json:"version,omitempty"`
	// The retention and placement the deploy asked for.
	Retain         bool `json:"retain,omitempty"`
	RetainPending  bool `json:"retain_pending,omitempty"`
	RetainRollback bool `json:"retain_rollback,omitempty"`
	NotAsDefault   bool `json:"not_as_default,omitempty"`
	NoPrune        bool `json:"no_prune,omitempty"`
}

// stagedRecordName names the record of a staged deployment (writeRunRecord).
const stagedRecordName = "staged-deployment"

// stagedFile is where the record of a staged deployment is kept.
func (s *Sysroot) stagedFile() string { return s.runFile(stagedRecordName) }

// runFile is where the record name is kept: under run/otree of the
// sysroot, /run on a booted system, so that a reboot forgets it. The
// running system's sysroot opened by its physical root (/sysroot) keeps
// it in the running /run too: the physical root's run/ is on disk, where
// the finalize at shutdown would not look and a reboot would not forget.
func (s *Sysroot) runFile(name string) string {
	base := s.path
	if s.runningDir != "" {
		base = "/"
	}
	return filepath.Join(base, "run", "otree", name)
}

// readRunRecord decodes the record name into v, and tells whether there
// was one that decoded.
func (s *Sysroot) readRunRecord(name string, v any) bool {
	data, err := os.ReadFile(s.runFile(name))
	return err == nil && jsonout.Unmarshal(data, v) == nil
}

// writeRunRecord writes v as the record name, made durable when sync is
// set. Strings that are not UTF-8 (kernel arguments are bytes) keep their
// bytes in NAME_base64 fields (jsonout), which readRunRecord reads.
func (s *Sysroot) writeRunRecord(name string, v any, sync bool) error {
	data, err := jsonout.Marshal(v)
	if err != nil {
		return err
	}
	p := s.runFile(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return durable.WriteFile(p, data, 0o644, sync)
}

// Staged returns the deployment a staged deploy wrote, which becomes the
// default when FinalizeStaged runs (at shutdown), or nil.
func (s *Sysroot) Staged() *Deployment { return s.staged }

// loadStaged reads the staged record, if any. A record that names no
// deployment directory (removed by hand), or one already in the boot
// entries (a finalize that switched and died before removing it), stages
// nothing. Both are stale, and the next locked operation removes them
// before they could outlive that deployment's place in the list, or a
// later directory of that name, and stage it again; lostStaged keeps the
// former's path for FinalizeStaged to report.
func (s *Sysroot) loadStaged() {
	s.staged, s.stagedRec, s.staleStaged, s.lostStaged = nil, nil, false, ""
	var rec stagedRecord
	if !s.readRunRecord(stagedRecordName, &rec) || rec.OS == "" {
		return
	}
	path := s.deploymentDir(rec.OS, rec.Commit, rec.Serial)
	if fi, err := os.Lstat(path); err != nil || !fi.IsDir() {
		s.staleStaged, s.lostStaged = true, path
		return
	}
	for _, d := range s.deployments {
		if d.Path == path {
			s.staleStaged = true
			return
		}
	}
	d := &Deployment{Index: -1, OS: rec.OS, Commit: rec.Commit, Serial: rec.Serial, Path: path,
		Options: rec.Options, Kernel: rec.Kernel, BootCsum: rec.BootCsum, Initramfs: rec.Initramfs, Devicetree: rec.Devicetree, FdtDir: rec.FdtDir,
		OverlayInitrds: rec.OverlayInitrds, Version: rec.Version, Staged: true}
	if o, err := readOrigin(path + ".origin"); err == nil {
		o.applyTo(d)
	}
	s.staged, s.stagedRec = d, &rec
}

// stage records d, whose /etc was merged from merge (nil: none), as the
// staged deployment instead of switching to it.
func (s *Sysroot) stage(d, merge *Deployment, opts DeployOptions) error {
	rec := stagedRecord{OS: d.OS, Commit: d.Commit, Serial: d.Serial, Options: d.Options, NoMerge: merge == nil,
		Kernel: d.Kernel, BootCsum: d.BootCsum, Initramfs: d.Initramfs, Devicetree: d.Devicetree, FdtDir: d.FdtDir, OverlayInitrds: d.OverlayInitrds,
		Version: d.Version,
		Retain:  opts.Retain, RetainPending: opts.RetainPending, RetainRollback: opts.RetainRollback,
		NotAsDefault: opts.NotAsDefault, NoPrune: opts.NoPrune}
	if merge != nil {
		rec.Merge = merge.Name()
	}
	if err := s.writeRunRecord(stagedRecordName, rec, true); err != nil {
		return fmt.Errorf("staging %s: %w", d.Name(), err)
	}
	d.Staged, d.Index = true, -1
	s.staged, s.stagedRec = d, &rec
	return nil
}

// dropStaleStaged removes a stale staged record (see loadStaged). Called
// under the sysroot lock, before anything can change the list.
func (s *Sysroot) dropStaleStaged() error {
	if !s.staleStaged {
		return nil
	}
	if err := os.Remove(s.stagedFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the stale %s: %w", s.stagedFile(), err)
	}
	s.staleStaged = false
	return nil
}

// unstage forgets the staged deployment; the next cleanup removes it.
func (s *Sysroot) unstage() error {
	if err := os.Remove(s.stagedFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unstaging: %w", err)
	}
	s.staged, s.stagedRec = nil, nil
	return nil
}

// DiscardStaged removes the staged deployment, which the boot entries do
// not name yet, and prunes what only it held: what OSTree's undeploy of
// index 0 does while a deployment is staged. Without one the error is
// ErrNoStaged.
func (s *Sysroot) DiscardStaged(ctx context.Context) (*UndeployResult, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	d := s.staged
	if d == nil {
		return nil, ErrNoStaged
	}
	if err := s.unstage(); err != nil {
		return nil, err
	}
	res := &UndeployResult{Removed: d}
	if res.Prune, err = s.cleanupAfter(ctx, false, "discarded the staged deployment"); err != nil {
		return res, err
	}
	return res, nil
}

// FinalizeStaged makes the staged deployment the default (or appends it,
// as the staging deploy asked): it merges /etc again from the deploy's
// merge deployment as /etc is now, so changes made since the deploy are
// kept (one undeployed since fails it), installs the kernel and switches
// the boot entries with one rename, as Deploy does. It is meant to run at
// shutdown. Without a staged deployment the error is ErrNoStaged. A
// finalize that fails before the switch leaves the boot entries as they
// were and the deployment staged; once they have switched, the deployment
// is listed and no longer staged, whatever the error: one from the
// cleanup that follows is a *CleanupError, returned with the result.
func (s *Sysroot) FinalizeStaged(ctx context.Context) (*DeployResult, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	d, rec := s.staged, s.stagedRec
	if d == nil && s.lostStaged != "" {
		// The record is dropped with this error: it is reported once.
		return nil, fmt.Errorf("finalizing the staged deployment: %s: %w (removed since it was staged); nothing switched, deploy it again", s.lostStaged, fs.ErrNotExist)
	}
	if d == nil {
		return nil, ErrNoStaged
	}
	merge, err := s.stagedMerge(d, rec)
	if err != nil {
		return nil, err
	}
	res := &DeployResult{Deployment: d, Merge: merge}
	err = mutably(d.Path, func() error {
		res.Etc, err = remergeEtc(ctx, d, merge)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("finalizing %s: %w", d.Name(), err)
	}
	k, err := findKernel(s.repo, d.Commit)
	if err != nil {
		return nil, err
	}
	d.Staged = false
	opts := DeployOptions{Retain: rec.Retain, RetainPending: rec.RetainPending, RetainRollback: rec.RetainRollback,
		NotAsDefault: rec.NotAsDefault}
	if err := s.switchTo(ctx, d, merge, k, opts, false, res); err != nil {
		d.Staged = true
		return nil, err
	}
	// Switched: the record now names a listed deployment and would be
	// ignored; removing it is tidiness.
	if err := s.unstage(); err != nil {
		return res, err
	}
	if res.Prune, err = s.cleanupAfter(ctx, rec.NoPrune, "finalized"); err != nil {
		return res, err
	}
	return res, nil
}

// exchange swaps the entries a and b in one rename; a variable so that a
// test can play a filesystem that cannot.
var exchange = func(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

// stagedMerge finds the merge deployment the staged deploy of d recorded
// in rec among those listed now. One no longer listed (undeployed since)
// fails the finalize, as in OSTree, rather than take /etc from another
// deployment, or from none.
func (s *Sysroot) stagedMerge(d *Deployment, rec *stagedRecord) (*Deployment, error) {
	switch {
	case rec.NoMerge:
		return nil, nil
	case rec.Merge == "":
		return s.MergeDeployment(d.OS), nil
	}
	for _, x := range s.deployments {
		if x.OS == rec.OS && x.Name() == rec.Merge {
			return x, nil
		}
	}
	return nil, fmt.Errorf("finalizing %s: its merge deployment %s of %s, whose /etc it takes, is no longer listed (undeployed since it was staged); nothing switched, deploy again", d.Name(), rec.Merge, rec.OS)
}

// etcMergeName is the directory of a staged deployment that FinalizeStaged
// merges /etc into before it takes the place of the deployment's /etc.
const etcMergeName = ".etc-merge.tmp"

// remergeEtc merges /etc of the staged deployment d again, aside, and
// swaps the result with d's /etc in one rename once it is whole: a merge
// that fails (a conflict, a full disk) or is killed leaves the /etc the
// staged deploy wrote, and a later finalize can try again.
func remergeEtc(ctx context.Context, d, merge *Deployment) ([]EtcChange, error) {
	etc := filepath.Join(d.Path, "etc")
	tmp := filepath.Join(d.Path, etcMergeName)
	// What a finalize killed part way left.
	if err := removeTree(tmp); err != nil {
		return nil, err
	}
	changes, err := mergeEtcInto(ctx, d, merge, tmp)
	if err != nil {
		return changes, err
	}
	err = exchange(tmp, etc)
	switch {
	case errors.Is(err, unix.ENOENT):
		// No /etc to swap with (removed by hand): the merge becomes it.
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, etc, unix.RENAME_NOREPLACE)
	case errors.Is(err, unix.EINVAL):
		// A filesystem that cannot exchange: /etc is set aside first, and
		// a kill in between leaves the deployment staged without one,
		// which the next finalize merges anew.
		old := tmp + ".old"
		if err := removeTree(old); err != nil {
			removeTree(tmp)
			return nil, err
		}
		if err := os.Rename(etc, old); err != nil {
			removeTree(tmp)
			return nil, err
		}
		if err := os.Rename(tmp, etc); err != nil {
			os.Rename(old, etc)
			removeTree(tmp)
			return nil, err
		}
		tmp, err = old, nil
	}
	if err != nil {
		removeTree(tmp)
		return nil, &os.LinkError{Op: "exchange", Old: tmp, New: etc, Err: err}
	}
	// tmp is now the /etc the staged deploy merged.
	if err := removeTree(tmp); err != nil {
		return nil, err
	}
	return changes, nil
}
