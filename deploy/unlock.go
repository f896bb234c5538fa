package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/otree/otree/internal/durable"
	"golang.org/x/sys/unix"
)

// UnlockMode is how Unlock makes the booted deployment's /usr writable.
type UnlockMode string

const (
	// UnlockDevelopment mounts a writable overlay on /usr whose changes
	// live under /var/tmp and are gone after a reboot.
	UnlockDevelopment UnlockMode = "development"
	// UnlockTransient prepares the same overlay but mounts it read-only:
	// `mount -o remount,rw /usr` makes it writable when needed.
	UnlockTransient UnlockMode = "transient"
	// UnlockHotfix keeps the overlay's changes across reboots, inside the
	// deployment directory, and first deploys a pristine copy of the
	// deployment as the rollback target.
	UnlockHotfix UnlockMode = "hotfix"
)

// The hotfix overlay's directories, inside the deployment directory so
// that they go with it; otree-prepare-root mounts them at every boot.
const (
	hotfixUpper = ".usr-ovl-upper"
	hotfixWork  = ".usr-ovl-work"
)

// hotfixDirs returns the hotfix overlay's directories in deployment dep,
// once it has checked that both are real directories.
func hotfixDirs(dep string) (upper, work string, err error) {
	upper, work = filepath.Join(dep, hotfixUpper), filepath.Join(dep, hotfixWork)
	for _, p := range []string{upper, work} {
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			return "", "", fmt.Errorf("%s is not a directory", p)
		}
	}
	return upper, work, nil
}

// UnlockResult is what Unlock did.
type UnlockResult struct {
	Deployment *Deployment `json:"deployment"` // the booted deployment, as listed after the unlock
	Mode       UnlockMode  `json:"mode"`       // the mode asked for
	// Upper is the directory that holds the changes made in /usr.
	Upper string `json:"upper"`
	// Clone is, for a hotfix, the pristine copy deployed as the rollback
	// target.
	Clone *Deployment `json:"clone,omitempty"`
	// CloneDeploy is the deploy that made Clone (as it was listed then).
	CloneDeploy *DeployResult `json:"-"`
}

// unlockRecord says which booted deployment a development or transient
// unlock opened. It lives under run/ (/run on a booted system), which a
// reboot empties, as it unmounts the overlay.
type unlockRecord struct {
	Deployment string     `json:"deployment"` // <os>/<commit>.<serial>
	Mode       UnlockMode `json:"mode"`
	Upper      string     `json:"upper"`
}

// unlockDirPrefix starts the names of the directories under var/tmp that
// hold a development or transient unlock's overlay.
const unlockDirPrefix = "otree-unlock-"

// unlockRecordName names the record of a development or transient
// unlock (writeRunRecord).
const unlockRecordName = "unlocked-deployment"

func recordName(d *Deployment) string { return d.OS + "/" + d.Name() }

// loadUnlocked marks the booted deployment unlocked when the run record
// names it. Hotfixes are read from the origin with each deployment.
func (s *Sysroot) loadUnlocked() {
	b := s.booted
	if b == nil || b.Unlocked != "" {
		return
	}
	var rec unlockRecord
	if s.readRunRecord(unlockRecordName, &rec) && rec.Deployment == recordName(b) {
		b.Unlocked = rec.Mode
	}
}

// Unlock mounts a writable overlay on the booted system's /usr (see
// UnlockMode). Only a booted deployment can be unlocked, and only once;
// a deploy or upgrade from it starts locked again. When the mount fails
// nothing is recorded, and a hotfix's clone stays as an ordinary rollback
// deployment.
func (s *Sysroot) Unlock(ctx context.Context, mode UnlockMode) (*UnlockResult, error) {
	if mode != UnlockDevelopment && mode != UnlockTransient && mode != UnlockHotfix {
		return nil, fmt.Errorf("unlock: unknown mode %q", mode)
	}
	if err := s.checkUnlockable(); err != nil {
		return nil, err
	}
	// The clone is a deploy, which would replace the staged deployment.
	if st := s.staged; mode == UnlockHotfix && st != nil {
		return nil, fmt.Errorf("unlock %s: deployment %s is staged, and deploying the pristine copy would drop it; finalize it (reboot) or undo it with another deploy first", mode, st.Name())
	}
	res := &UnlockResult{Mode: mode}
	if mode == UnlockHotfix {
		b := s.booted
		// The copy boots as b does: its arguments come from b as the merge
		// deployment, its overlay initramfs images are given again.
		opts := DeployOptions{OS: b.OS, Retain: true, NoPrune: true}
		// It follows what b follows, as OSTree's copy does: booted after a
		// failed hotfix, its upgrades must not stay on b's commit.
		o, err := readOrigin(b.Path + ".origin")
		if err != nil {
			return nil, fmt.Errorf("unlock: reading the origin of %s: %w", b.Name(), err)
		}
		o.Pinned, o.Unlocked = false, ""
		opts.Origin = o.encode()
		for _, id := range b.OverlayInitrds {
			opts.OverlayInitrds = append(opts.OverlayInitrds, filepath.Join(s.path, "boot", overlayRel(id)))
		}
		dr, err := s.deploy(ctx, b.Commit.String(), opts, true)
		if err != nil {
			return nil, fmt.Errorf("unlock: deploying a pristine copy of %s: %w", b.Name(), err)
		}
		res.Clone, res.CloneDeploy = dr.Deployment, dr
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Again under the lock: another unlock may have run meanwhile.
	if err := s.checkUnlockable(); err != nil {
		return nil, err
	}
	b := s.booted
	usr := filepath.Join(s.runningRoot(), "usr")
	if mode == UnlockHotfix {
		res.Upper = filepath.Join(b.Path, hotfixUpper)
		if err := s.unlockHotfix(b, usr); err != nil {
			return nil, err
		}
	} else {
		upper, err := s.unlockRun(b, mode, usr)
		if err != nil {
			return nil, err
		}
		res.Upper = upper
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	res.Deployment = s.booted
	return res, nil
}

// runningRoot is where the booted deployment's mounts are (its /usr, its
// /var): the sysroot's own path, or / when the sysroot is the running
// system's opened by its physical root (/sysroot), whose usr/ and var/
// are not the deployment's.
func (s *Sysroot) runningRoot() string {
	if !s.rootBooted && s.runningDir != "" {
		return "/"
	}
	return s.path
}

func (s *Sysroot) checkUnlockable() error {
	b := s.booted
	if b == nil {
		return fmt.Errorf("unlock: sysroot %s: %w; unlock opens the running system's /usr", s.path, ErrNotBooted)
	}
	if b.Unlocked != "" {
		return fmt.Errorf("unlock: deployment %s is already unlocked (%s)", b.Name(), b.Unlocked)
	}
	return nil
}

// unlockHotfix makes the overlay's directories in deployment b, records
// the hotfix in b's origin (so that prepare-root mounts it at every
// boot), and mounts it on usr now. A failed mount puts the origin back.
func (s *Sysroot) unlockHotfix(b *Deployment, usr string) error {
	err := mutably(b.Path, func() error {
		for _, name := range []string{hotfixUpper, hotfixWork} {
			if err := os.Mkdir(filepath.Join(b.Path, name), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	upper, work, err := hotfixDirs(b.Path)
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	if err := syncDirs(b.Path); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	op := b.Path + ".origin"
	old, err := os.ReadFile(op)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unlock: %w", err)
	}
	o, err := parseOrigin(op, old)
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	o.Unlocked = string(UnlockHotfix)
	if err := durable.WriteFile(op, o.encode(), 0o644, true); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	if err := mountOverlay(usr, usr, upper, work, false); err != nil {
		if old == nil {
			os.Remove(op)
		} else {
			durable.WriteFile(op, old, 0o644, true)
		}
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}

// unlockRun mounts an overlay on usr whose upper directory is a new one
// under var/tmp, and records it under run/.
func (s *Sysroot) unlockRun(b *Deployment, mode UnlockMode, usr string) (string, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.runningRoot(), "var", "tmp"), unlockDirPrefix)
	if err != nil {
		return "", fmt.Errorf("unlock: %w", err)
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	undo := func() { os.RemoveAll(dir) }
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			undo()
			return "", fmt.Errorf("unlock: %w", err)
		}
	}
	if err := mountOverlay(usr, usr, upper, work, mode == UnlockTransient); err != nil {
		undo()
		return "", fmt.Errorf("unlock: %w", err)
	}
	rec := unlockRecord{Deployment: recordName(b), Mode: mode, Upper: upper}
	if err := s.writeRunRecord(unlockRecordName, rec, false); err != nil {
		unix.Unmount(usr, unix.MNT_DETACH)
		undo()
		return "", fmt.Errorf("unlock: recording the unlock: %w", err)
	}
	return upper, nil
}

// mountOverlay mounts an overlay of lower and upper (work is its scratch
// directory, on upper's filesystem) on target.
func mountOverlay(target, lower, upper, work string, readOnly bool) error {
	for _, p := range []string{lower, upper, work} {
		// The option string has no quoting for these.
		if strings.ContainsAny(p, ",:\\") {
			return fmt.Errorf("cannot mount an overlay with %s: the path holds ',', ':' or '\\'", p)
		}
	}
	var flags uintptr
	if readOnly {
		flags = unix.MS_RDONLY
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", target, "overlay", flags, opts); err != nil {
		return fmt.Errorf("mounting an overlay on %s (%s): %w", target, opts, err)
	}
	return nil
}

// cleanupUnlocks removes the overlay directories development and
// transient unlocks made under var/tmp in earlier boots (directories of
// the prefix owned by the effective user, as unlock makes them): only the one the
// run record names can be mounted now. It does so only on a running
// system (opened as / or by its physical root), whose var/tmp is its
// stateroot's. The directory is read, not globbed: the sysroot's path may
// hold '[' or '*'.
func (s *Sysroot) cleanupUnlocks() ([]string, error) {
	if !s.rootBooted && s.runningDir == "" {
		return nil, nil
	}
	var live string
	var rec unlockRecord
	if s.readRunRecord(unlockRecordName, &rec) {
		live = filepath.Dir(rec.Upper)
	}
	tmp := filepath.Join(s.runningRoot(), "var", "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var dirs []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), unlockDirPrefix) {
			dirs = append(dirs, filepath.Join(tmp, e.Name()))
		}
	}
	var removed []string
	for _, d := range dirs {
		// By name: the record's path is the running system's, the
		// sysroot's path may be another for the same directory.
		if live != "" && filepath.Base(d) == filepath.Base(live) {
			continue
		}
		// var/tmp is everyone's: a directory of that name another user
		// made is not an unlock's (they are made by the admin running
		// unlock), and removing it would delete that user's files and
		// walk a tree the user can change meanwhile.
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() {
			continue
		}
		if err := removeTree(d); err != nil {
			return removed, err
		}
		removed = append(removed, d)
	}
	return removed, nil
}
