package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/otree/otree/repo/sign"
)

// ErrNoDeployment is returned for an index that names no deployment.
var ErrNoDeployment = errors.New("no such deployment")

// Deployment returns deployment index of the list (0 boots by default),
// or an error matching ErrNoDeployment that names it.
func (s *Sysroot) Deployment(index int) (*Deployment, error) {
	if index < 0 || index >= len(s.deployments) {
		return nil, fmt.Errorf("deployment %d: %w (the sysroot has %d)", index, ErrNoDeployment, len(s.deployments))
	}
	return s.deployments[index], nil
}

// moveFirst makes a new list from the current one with d moved to index 0.
func (s *Sysroot) moveFirst(d *Deployment) []*Deployment {
	list := []*Deployment{d}
	for _, x := range s.deployments {
		if x != d {
			list = append(list, x)
		}
	}
	return list
}

// Rollback makes the previous deployment the default, moving the current
// default to index 1: the first of the default's stateroot behind it, so
// that other stateroots' deployments in between are not taken for the
// previous one, or deployment 1 when that stateroot has no other and it
// is booted (GRUB fell back to it). With one stateroot it swaps deployments 0
// and 1, and running it twice restores the original order.
func (s *Sysroot) Rollback(ctx context.Context) (Switch, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	d, err := s.rollbackTarget()
	if err != nil {
		return "", err
	}
	if err := s.stagedAsDefault("rollback"); err != nil {
		return "", err
	}
	return s.reorder(ctx, s.moveFirst(d))
}

// rollbackTarget is the deployment Rollback makes the default.
func (s *Sysroot) rollbackTarget() (*Deployment, error) {
	if len(s.deployments) < 2 {
		return nil, fmt.Errorf("rollback: the sysroot has %d deployment(s), nothing to roll back to", len(s.deployments))
	}
	// Where GRUB's boot counting falls back, so that status's "GRUB
	// boots deployment N ('otree admin rollback' makes it the default)"
	// holds: another system's deployment 1 only when booted and the
	// default's stateroot has no other.
	first := s.deployments[0]
	d := s.deployments[fallbackIndex(len(s.deployments), func(i int) string { return s.deployments[i].OS })]
	if d.OS == first.OS || d.Booted {
		return d, nil
	}
	return nil, fmt.Errorf("rollback: stateroot %s has no deployment behind the default %s to roll back to; deployment 1 is stateroot %s's (set-default 1 makes it the default)",
		first.OS, first.Name(), s.deployments[1].OS)
}

// ErrStagedDefault is matched (with errors.Is) by the error of Rollback
// and SetDefault while a deployment is staged to become the default:
// finalizing it at shutdown would put it first again, undoing the change.
// DiscardStaged deals with it.
var ErrStagedDefault = errors.New("a deployment is staged to become the default")

// stagedAsDefault refuses op, a change of the default deployment, while
// one is staged to become the default, so that the machine does not boot
// another deployment than the one the admin just chose.
func (s *Sysroot) stagedAsDefault(op string) error {
	if st := s.staged; st != nil && !s.stagedRec.NotAsDefault {
		return fmt.Errorf("%s: %w: %s would be put first again at shutdown, undoing this", op, ErrStagedDefault, st.Name())
	}
	return nil
}

// SetDefault moves deployment index to the top of the boot order.
func (s *Sysroot) SetDefault(ctx context.Context, index int) (Switch, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	d, err := s.Deployment(index)
	if err != nil {
		return "", err
	}
	if index == 0 {
		return "", nil
	}
	if err := s.stagedAsDefault("making " + d.Name() + " the default"); err != nil {
		return "", err
	}
	return s.reorder(ctx, s.moveFirst(d))
}

// reorder switches to list, which holds the same deployments, then removes
// the boot files only the previous boot version used, as OSTree does after
// every switch, so that a small /boot does not fill with old versions'
// entries. The repository is not pruned: no deployment went.
func (s *Sysroot) reorder(ctx context.Context, list []*Deployment) (Switch, error) {
	sw, err := s.writeDeployments(ctx, list)
	if err != nil {
		return sw, err
	}
	if _, err := s.cleanupAfter(ctx, true, "switched"); err != nil {
		return sw, err
	}
	return sw, nil
}

// UndeployResult is what Undeploy did.
type UndeployResult struct {
	// Removed is the deployment removed, as it was listed.
	Removed *Deployment `json:"removed"`
	Switch  Switch      `json:"switch"` // how the boot entries changed
	// Prune is what pruning the repository deleted afterwards: the
	// removed deployment's commit, when no ref reaches it any more, with
	// its objects.
	Prune *repo.PruneReport `json:"prune,omitempty"`
}

// Undeploy removes deployment index, then prunes the repository of the
// commits no ref reaches any more, as OSTree's undeploy does. The booted
// deployment and pinned ones are refused.
func (s *Sysroot) Undeploy(ctx context.Context, index int) (*UndeployResult, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	d, err := s.Deployment(index)
	if err != nil {
		return nil, err
	}
	if d.Booted {
		return nil, fmt.Errorf("deployment %s is booted; it cannot be removed", d.Name())
	}
	if d.Pinned {
		return nil, fmt.Errorf("deployment %s is pinned; unpin it first", d.Name())
	}
	var list []*Deployment
	for _, x := range s.deployments {
		if x != d {
			list = append(list, x)
		}
	}
	sw, err := s.writeDeployments(ctx, list)
	if err != nil {
		return nil, err
	}
	res := &UndeployResult{Removed: d, Switch: sw}
	if res.Prune, err = s.cleanupAfter(ctx, false, "undeployed"); err != nil {
		return res, err
	}
	return res, nil
}

// Pin marks deployment index as pinned (or not): a pinned deployment is
// kept by Deploy's retention and refused by Undeploy. The mark lives in
// its .origin file and needs no switch.
func (s *Sysroot) Pin(ctx context.Context, index int, pinned bool) error {
	return s.editOrigin(ctx, index, func(o *origin) { o.Pinned = pinned })
}

// SetOrigin makes refspec ("REMOTE:BRANCH" or a local branch) the origin
// of deployment index, which later upgrades follow, without deploying
// anything. The origin's other keys stay, but for an override-commit,
// which belonged to the old refspec.
func (s *Sysroot) SetOrigin(ctx context.Context, index int, refspec string) error {
	rm, branch := SplitRefspec(refspec)
	// The remote too: a line break in it would add lines of its own to
	// the origin file.
	if repo.ValidateRefName(branch) != nil || strings.Contains(refspec, ":") && remote.ValidateRemoteName(rm) != nil {
		return fmt.Errorf("set-origin: invalid refspec %q", refspec)
	}
	return s.editOrigin(ctx, index, func(o *origin) { o.Refspec, o.OverrideCommit = refspec, "" })
}

// editOrigin rewrites the .origin file of deployment index durably with
// edit applied; no switch is needed.
func (s *Sysroot) editOrigin(ctx context.Context, index int, edit func(*origin)) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	d, err := s.Deployment(index)
	if err != nil {
		return err
	}
	o, err := readOrigin(d.Path + ".origin")
	if err != nil {
		return err
	}
	edit(o)
	if err := durable.WriteFile(d.Path+".origin", o.encode(), 0o644, true); err != nil {
		return err
	}
	return s.load()
}

// SetKargs edits the kernel arguments of deployment index; they take
// effect at its next boot. An index that names no deployment, a negative
// one too, gives an error matching ErrNoDeployment (SetKargsAll edits
// every deployment).
func (s *Sysroot) SetKargs(ctx context.Context, index int, edit KargsEdit) (Switch, error) {
	return s.setKargs(ctx, index, false, edit)
}

// SetKargsAll applies edit to the kernel arguments of every deployment
// (OSTree's kargs edit-in-place), with one switch, and to those of the
// staged deployment, which boots next once finalized; an edit that fails
// for any deployment changes none.
func (s *Sysroot) SetKargsAll(ctx context.Context, edit KargsEdit) (Switch, error) {
	return s.setKargs(ctx, 0, true, edit)
}

// setKargs edits deployment index's arguments, or every deployment's
// with all. A flag rather than a negative index, which SetKargs must
// refuse (ErrNoDeployment) rather than take for every deployment.
func (s *Sysroot) setKargs(ctx context.Context, index int, all bool, edit KargsEdit) (Switch, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	if !all {
		if _, err := s.Deployment(index); err != nil {
			return "", err
		}
	}
	var staged *stagedRecord
	if st := s.staged; all && st != nil {
		rec := *s.stagedRec
		if rec.Options, err = edit.apply(st.Options); err != nil {
			return "", fmt.Errorf("staged deployment %s of stateroot %s: %w", st.Name(), st.OS, err)
		}
		if rec.Options != st.Options {
			staged = &rec
		}
	}
	changed := false
	list := make([]*Deployment, len(s.deployments))
	for i, x := range s.deployments {
		c := *x
		if all || i == index {
			if c.Options, err = edit.apply(x.Options); err != nil {
				// The caller of SetKargs chose the index, and may number
				// deployments otherwise (status counts a staged one).
				if !all {
					return "", fmt.Errorf("deployment %s of stateroot %s: %w", x.Name(), x.OS, err)
				}
				return "", fmt.Errorf("deployment %d (%s of stateroot %s): %w", i, x.Name(), x.OS, err)
			}
			changed = changed || c.Options != x.Options
		}
		list[i] = &c
	}
	sw := Switch("")
	if changed {
		if sw, err = s.reorder(ctx, list); err != nil {
			return sw, err
		}
	}
	if staged != nil {
		// The finalize switches with the record's arguments.
		if err := s.writeRunRecord(stagedRecordName, staged, true); err != nil {
			return sw, fmt.Errorf("editing the kernel arguments of the staged deployment %s: %w", s.staged.Name(), err)
		}
		s.staged.Options, s.stagedRec = staged.Options, staged
	}
	return sw, nil
}

// Verify reports every path of deployment index's /usr that no longer
// matches its commit. For the deployment running as the sysroot's / (or
// as /, the sysroot opened by its physical root), that is the /usr
// mounted there, so an unlock's changes count too; for
// another hotfixed deployment, its usr as its overlay changes it.
func (s *Sysroot) Verify(ctx context.Context, index int) ([]checkout.Change, error) {
	d, err := s.Deployment(index)
	if err != nil {
		return nil, err
	}
	usr := filepath.Join(d.Path, "usr")
	running := d == s.booted && (s.rootBooted || s.runningDir != "")
	if running {
		usr = filepath.Join(s.runningRoot(), "usr")
	}
	changes, err := checkout.DiffDir(ctx, s.repo, d.Commit, usr, checkout.DiffOptions{Subpath: "/usr", Verify: true})
	if err != nil {
		return nil, err
	}
	if changes, err = s.verifyMovedEtc(ctx, d.Commit, usr, changes); err != nil || running || d.Unlocked != UnlockHotfix {
		return changes, err
	}
	hot, err := hotfixChanges(filepath.Join(d.Path, hotfixUpper), usr)
	if err != nil {
		return nil, fmt.Errorf("deployment %d: hotfix overlay: %w", index, err)
	}
	return mergeChanges(changes, hot), nil
}

// verifyMovedEtc corrects the drift of a deployment whose commit ships
// /etc rather than /usr/etc: deploy moved it to usr/etc, which the
// comparison of /usr took for an addition. The commit's /etc is compared
// with usr/etc instead, its changes reported under /usr/etc.
func (s *Sysroot) verifyMovedEtc(ctx context.Context, commit repo.ID, usr string, changes []checkout.Change) ([]checkout.Change, error) {
	etc, err := s.repo.Lookup(commit, "/etc")
	if errors.Is(err, repo.ErrNotFound) || err == nil && !etc.IsDir() {
		return changes, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.repo.Lookup(commit, "/usr/etc"); err == nil {
		return changes, nil // both: deploy refuses such a tree
	}
	kept := changes[:0]
	for _, c := range changes {
		if c.Path != "/usr/etc" && !strings.HasPrefix(c.Path, "/usr/etc/") {
			kept = append(kept, c)
		}
	}
	moved := filepath.Join(usr, "etc")
	if _, err := os.Lstat(moved); errors.Is(err, fs.ErrNotExist) {
		return mergeChanges(kept, []checkout.Change{{Kind: checkout.Deleted, Path: "/usr/etc"}}), nil
	}
	etcChanges, err := checkout.DiffDir(ctx, s.repo, commit, moved, checkout.DiffOptions{Subpath: "/etc", Verify: true})
	if err != nil {
		return nil, err
	}
	for i := range etcChanges {
		etcChanges[i].Path = "/usr" + etcChanges[i].Path
	}
	return mergeChanges(kept, etcChanges), nil
}

// ConfigDiff reports the admin's changes to /etc in deployment index: every
// path where its etc differs from its usr/etc, each with fate local. With
// a non-nil into, it previews the merge into that deployment's defaults
// instead: the fate each path would have.
func (s *Sysroot) ConfigDiff(ctx context.Context, index int, into *Deployment) ([]EtcChange, error) {
	d, err := s.Deployment(index)
	if err != nil {
		return nil, err
	}
	defaults := filepath.Join(d.Path, "usr", "etc")
	newDefaults := defaults
	if into != nil {
		newDefaults = filepath.Join(into.Path, "usr", "etc")
	}
	recs, err := MergeEtc(ctx, defaults, filepath.Join(d.Path, "etc"), newDefaults, "")
	if ce := (*EtcConflictError)(nil); err != nil && !errors.As(err, &ce) {
		return nil, fmt.Errorf("config diff of deployment %s of %s: %w", d.Name(), d.OS, err)
	}
	return recs, err
}

// SignatureStatus is what VerifySignature found for a deployment's commit.
type SignatureStatus struct {
	// Remote is the remote of the deployment's origin whose keys were
	// used; empty when the origin names no remote that asks for signed
	// commits, and nothing was checked.
	Remote string `json:"remote,omitempty"`
	// Key is the trusted key that signed the commit (base64), when one did.
	Key string `json:"key,omitempty"`
	// Error says why no trusted key vouches for the commit.
	Error string `json:"error,omitempty"`
}

// VerifySignature checks the commit of deployment index against the keys
// of the remote its origin follows, as OSTree's status --verify does,
// when that remote asks for signed commits (sign-verify=true).
func (s *Sysroot) VerifySignature(index int) (*SignatureStatus, error) {
	d, err := s.Deployment(index)
	if err != nil {
		return nil, err
	}
	name, _ := SplitRefspec(d.Origin)
	if name == "" {
		return &SignatureStatus{}, nil
	}
	rm, err := remote.GetRemote(s.repo, name)
	if errors.Is(err, remote.ErrRemoteNotFound) {
		return &SignatureStatus{}, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := remote.RemoteVerification(rm, "")
	if err != nil {
		return nil, err
	}
	if !v.Commits {
		return &SignatureStatus{}, nil
	}
	st := &SignatureStatus{Remote: name}
	if pub, err := sign.VerifyCommit(s.repo, d.Commit, v.Keys); err != nil {
		st.Error = err.Error()
	} else {
		st.Key = sign.EncodeKey(pub)
	}
	return st, nil
}
