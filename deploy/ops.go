package deploy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
)

// ErrNoDeployment is returned for an index that names no deployment.
var ErrNoDeployment = errors.New("no such deployment")

func (s *Sysroot) at(index int) (*Deployment, error) {
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

// Rollback makes deployment 1 the default, moving the current default to
// index 1, so running it twice restores the original order.
func (s *Sysroot) Rollback(ctx context.Context) (Switch, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	if len(s.deployments) < 2 {
		return "", fmt.Errorf("rollback: the sysroot has %d deployment(s), nothing to roll back to", len(s.deployments))
	}
	return s.writeDeployments(ctx, s.moveFirst(s.deployments[1]))
}

// SetDefault moves deployment index to the top of the boot order.
func (s *Sysroot) SetDefault(ctx context.Context, index int) (Switch, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	d, err := s.at(index)
	if err != nil {
		return "", err
	}
	if index == 0 {
		return "", nil
	}
	return s.writeDeployments(ctx, s.moveFirst(d))
}

// Undeploy removes deployment index. The booted deployment and pinned
// ones are refused.
func (s *Sysroot) Undeploy(ctx context.Context, index int) (Switch, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	d, err := s.at(index)
	if err != nil {
		return "", err
	}
	if d.Booted {
		return "", fmt.Errorf("deployment %d (%s) is booted; it cannot be removed", index, d.Name())
	}
	if d.Pinned {
		return "", fmt.Errorf("deployment %d (%s) is pinned; unpin it first", index, d.Name())
	}
	var list []*Deployment
	for _, x := range s.deployments {
		if x != d {
			list = append(list, x)
		}
	}
	sw, err := s.writeDeployments(ctx, list)
	if err != nil {
		return "", err
	}
	if _, err := s.cleanup(ctx, CleanupOptions{NoPrune: true}); err != nil {
		return sw, fmt.Errorf("undeployed, but cleaning up failed: %w", err)
	}
	return sw, nil
}

// Pin marks deployment index as pinned (or not): a pinned deployment is
// kept by Deploy's retention and refused by Undeploy. The mark lives in
// its .origin file and needs no switch.
func (s *Sysroot) Pin(ctx context.Context, index int, pinned bool) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	d, err := s.at(index)
	if err != nil {
		return err
	}
	o, err := readOrigin(d.Path + ".origin")
	if err != nil {
		return err
	}
	o.Pinned = pinned
	if err := durable.WriteFile(d.Path+".origin", o.encode(), 0o644, true); err != nil {
		return err
	}
	return s.load()
}

// SetKargs edits the kernel arguments of deployment index; they take
// effect at its next boot.
func (s *Sysroot) SetKargs(ctx context.Context, index int, edit KargsEdit) (Switch, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	d, err := s.at(index)
	if err != nil {
		return "", err
	}
	opts, err := edit.apply(d.Options)
	if err != nil {
		return "", err
	}
	if opts == d.Options {
		return "", nil
	}
	list := make([]*Deployment, len(s.deployments))
	for i, x := range s.deployments {
		c := *x
		if x == d {
			c.Options = opts
		}
		list[i] = &c
	}
	return s.writeDeployments(ctx, list)
}

// UpgradeOptions configure Upgrade.
type UpgradeOptions struct {
	DeployOptions
	// AllowDowngrade deploys a commit older than the current one.
	AllowDowngrade bool
}

// ErrNoUpgrade is returned by Upgrade when the origin's ref still names
// the deployed commit.
var ErrNoUpgrade = errors.New("no upgrade available")

// DowngradeError refuses a commit older than the deployed one, or one
// of its ancestors.
type DowngradeError struct {
	Ref         string
	Current     *Deployment
	CurrentTime uint64 // the deployed commit's timestamp
	FoundTime   uint64 // the timestamp of the commit the ref names
}

func (e *DowngradeError) Error() string {
	return fmt.Sprintf("ref %s names a commit (timestamp %d) older than or an ancestor of the deployed %s (timestamp %d); pass --allow-downgrade to deploy it",
		e.Ref, e.FoundTime, e.Current.Commit, e.CurrentTime)
}

// Upgrade deploys the newest commit of the merge deployment's origin ref
// (the booted deployment's, else the default's) when it differs from the
// deployed one.
func (s *Sysroot) Upgrade(ctx context.Context, opts UpgradeOptions) (*DeployResult, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	osName, err := s.chooseOS(opts.OS)
	if err != nil {
		return nil, err
	}
	cur := s.MergeDeployment(osName)
	if cur == nil {
		return nil, fmt.Errorf("upgrade: stateroot %s has no deployment to upgrade", osName)
	}
	if cur.Origin == "" {
		return nil, fmt.Errorf("upgrade: deployment %s has no origin refspec", cur.Name())
	}
	id, err := s.repo.ReadRef(cur.Origin)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	if id == cur.Commit {
		return nil, ErrNoUpgrade
	}
	if !opts.AllowDowngrade {
		a, err := s.repo.ReadCommit(cur.Commit)
		if err != nil {
			return nil, err
		}
		b, err := s.repo.ReadCommit(id)
		if err != nil {
			return nil, err
		}
		if b.Timestamp < a.Timestamp || s.isAncestor(id, a) {
			return nil, &DowngradeError{Ref: cur.Origin, Current: cur, CurrentTime: a.Timestamp, FoundTime: b.Timestamp}
		}
	}
	do := opts.DeployOptions
	do.OS = osName
	if do.Origin == nil {
		do.Origin = (&origin{Refspec: cur.Origin}).encode()
	}
	return s.Deploy(ctx, id.String(), do)
}

// isAncestor tells whether id is a parent, grandparent... of c, as far
// as the repository holds the history.
func (s *Sysroot) isAncestor(id repo.ID, c *repo.Commit) bool {
	for p := c.Parent; !p.IsZero(); {
		if p == id {
			return true
		}
		pc, err := s.repo.ReadCommit(p)
		if err != nil {
			return false
		}
		p = pc.Parent
	}
	return false
}

// Verify reports every path of deployment index's /usr that no longer
// matches its commit.
func (s *Sysroot) Verify(ctx context.Context, index int) ([]checkout.Change, error) {
	d, err := s.at(index)
	if err != nil {
		return nil, err
	}
	return checkout.DiffDir(ctx, s.repo, d.Commit, filepath.Join(d.Path, "usr"), checkout.DiffOptions{Subpath: "/usr", Verify: true})
}

// ConfigDiff reports the admin's changes to /etc in deployment index: every
// path where its etc differs from its usr/etc, each with fate local. With
// a non-nil into, it previews the merge into that deployment's defaults
// instead: the fate each path would have.
func (s *Sysroot) ConfigDiff(ctx context.Context, index int, into *Deployment) ([]EtcChange, error) {
	d, err := s.at(index)
	if err != nil {
		return nil, err
	}
	defaults := filepath.Join(d.Path, "usr", "etc")
	newDefaults := defaults
	if into != nil {
		newDefaults = filepath.Join(into.Path, "usr", "etc")
	}
	return MergeEtc(ctx, defaults, filepath.Join(d.Path, "etc"), newDefaults, "")
}
