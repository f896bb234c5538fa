package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/otree/otree/internal/datetime"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// UpgradeOptions configure Upgrade and SwitchRef.
type UpgradeOptions struct {
	DeployOptions
	// AllowDowngrade deploys a commit older than the current one, or one
	// of its ancestors.
	AllowDowngrade bool
	// PullOnly fetches the update without deploying it; DeployOnly deploys
	// what the repository already holds without fetching.
	PullOnly, DeployOnly bool
	// OverrideCommit, if not zero, is deployed instead of the commit the
	// origin refspec names: fetched by id from the origin's remote, held
	// to the downgrade guard, and refused when its ref binding lists other
	// branches only. The new deployment's origin records it
	// (override-commit=), and an upgrade without it drops the key. The
	// refspec's ref is not moved.
	OverrideCommit repo.ID
	// Pull configures the fetch of a refspec "REMOTE:BRANCH" (Remote and
	// Refs are set from the refspec). Progress and timeouts go here.
	Pull remote.PullOptions
}

// UpgradeResult is what Upgrade and SwitchRef did.
type UpgradeResult struct {
	// Refspec is the origin followed: "REMOTE:BRANCH" or a local branch.
	Refspec string `json:"refspec"`
	// Pulled is the fetch from the remote; nil for a local refspec or
	// with DeployOnly.
	Pulled *remote.PullResult `json:"pulled,omitempty"`
	// PullTime is how long the pull took, the deploy after it left out,
	// for the transfer time a report of the pull gives.
	PullTime time.Duration `json:"-"`
	// Commit is the commit the refspec names after the pull.
	Commit repo.ID `json:"commit"`
	// Deployed is the new deployment; nil when there was nothing to deploy
	// (ErrNoUpgrade) or with PullOnly.
	Deployed *DeployResult `json:"deployed,omitempty"`
	// DeletedRef is the remote-tracking ref of the old origin that a
	// switch deleted ("REMOTE:BRANCH"), as OSTree's does; "" if none.
	DeletedRef string `json:"deleted_ref,omitempty"`
}

// ErrNoUpgrade is returned by Upgrade when the origin's ref still names
// the deployed commit, with PullOnly too.
var ErrNoUpgrade = errors.New("no upgrade available")

// DowngradeError refuses a commit older than the deployed one, or one
// of its ancestors.
type DowngradeError struct {
	Ref         string      // the refspec whose commit it is
	Commit      repo.ID     // the commit refused
	Override    bool        // Commit was given as the override commit, not named by Ref
	Current     *Deployment // the deployment whose commit Commit would replace
	CurrentTime uint64      // the deployed commit's timestamp, Unix seconds
	FoundTime   uint64      // Commit's timestamp, Unix seconds
}

// Error names both commits and their times.
func (e *DowngradeError) Error() string {
	what := "commit " + e.Commit.String() + " of " + e.Ref
	if e.Override {
		what = "override commit " + e.Commit.String() + " (of " + e.Ref + ")"
	}
	at := func(t uint64) string { return datetime.FormatUnix(t, time.UTC, time.RFC3339) }
	return fmt.Sprintf("%s, made %s, is older than or an ancestor of the deployed %s, made %s",
		what, at(e.FoundTime), e.Current.Commit, at(e.CurrentTime))
}

// SplitRefspec splits "REMOTE:BRANCH" into its remote and branch; a
// refspec without a colon is a local branch (remote "").
func SplitRefspec(refspec string) (remoteName, branch string) {
	if i := strings.IndexByte(refspec, ':'); i >= 0 {
		return refspec[:i], refspec[i+1:]
	}
	return "", refspec
}

// Upgrade fetches the merge deployment's origin refspec (the booted
// deployment's, else the default's) from its remote, when it has one,
// and deploys the commit it names when that differs from the deployed
// one. When it does not, the error is ErrNoUpgrade and the result still
// says what was pulled. An origin with unconfigured-state= is refused
// with its message, as in OSTree. A failure of the cleanup that follows the
// deploy is a *CleanupError, returned with the result (SwitchRef's too).
func (s *Sysroot) Upgrade(ctx context.Context, opts UpgradeOptions) (*UpgradeResult, error) {
	// Held from the choice of what to deploy to the deploy, as OSTree's
	// upgrader holds it: two upgrades at once would otherwise both
	// deploy the new commit, and the second drop the rollback.
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, osName, err := s.current(opts.OS)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	// An origin the OS vendor marked unconfigured is refused with its
	// words, before anything else, as OSTree's upgrader refuses it; a
	// switch names a refspec and so configures it.
	op := cur.Path + ".origin"
	o, err := readOrigin(op)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	if o.Unconfigured != "" {
		return nil, fmt.Errorf("upgrade: %s: origin unconfigured-state: %s", op, o.Unconfigured)
	}
	if cur.Origin == "" {
		return nil, fmt.Errorf("upgrade: deployment %s has no origin refspec", cur.Name())
	}
	return s.follow(ctx, cur, osName, cur.Origin, false, opts)
}

// SwitchRef makes refspec the origin of the stateroot: it fetches it (as
// Upgrade does) and deploys the commit it names with refspec recorded as
// the new deployment's origin, so later upgrades follow it. A refspec
// without "REMOTE:" keeps the current origin's remote, and "REMOTE:"
// alone the current origin's branch. As in OSTree, the
// downgrade guard does not apply to another branch, whose commits are
// what the admin chose; a switch to the current origin is an upgrade, and
// refuses a commit older than the deployed one unless AllowDowngrade.
// Once deployed, the old origin's remote-tracking ref is deleted, as
// OSTree does (UpgradeResult.DeletedRef). The new origin drops the old
// one's unconfigured-state, which Upgrade refuses.
func (s *Sysroot) SwitchRef(ctx context.Context, refspec string, opts UpgradeOptions) (*UpgradeResult, error) {
	unlock, err := s.lock(ctx) // as Upgrade
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, osName, err := s.current(opts.OS)
	if err != nil {
		return nil, fmt.Errorf("switch: %w", err)
	}
	switch {
	case strings.HasSuffix(refspec, ":"):
		// "REMOTE:" moves the current branch to another remote, as
		// OSTree's switch does.
		_, branch := SplitRefspec(cur.Origin)
		if _, pinned := s.commitRefspec(cur.Origin); branch == "" || pinned {
			return nil, fmt.Errorf("switch: %s keeps the current branch, and deployment %s follows none (origin %q)", refspec, cur.Name(), cur.Origin)
		}
		refspec += branch
	case !strings.Contains(refspec, ":"):
		if rm, _ := SplitRefspec(cur.Origin); rm != "" {
			refspec = rm + ":" + refspec
		}
	}
	return s.follow(ctx, cur, osName, refspec, true, opts)
}

// current returns the merge deployment of the stateroot osName (or of the
// booted/default one). The caller holds the sysroot lock, whose taking
// loaded the state.
func (s *Sysroot) current(osName string) (*Deployment, string, error) {
	osName, err := s.chooseOS(osName)
	if err != nil {
		return nil, "", err
	}
	cur := s.MergeDeployment(osName)
	if cur == nil {
		return nil, "", fmt.Errorf("stateroot %s has no deployment", osName)
	}
	return cur, osName, nil
}

// follow pulls refspec (when it names a remote) and deploys its commit
// over cur. A switch deploys even the deployed commit, to record the new
// origin.
func (s *Sysroot) follow(ctx context.Context, cur *Deployment, osName, refspec string, isSwitch bool, opts UpgradeOptions) (*UpgradeResult, error) {
	op := "upgrade"
	if isSwitch {
		op = "switch"
	}
	if opts.PullOnly && opts.DeployOnly {
		return nil, fmt.Errorf("%s: pull-only and deploy-only exclude each other", op)
	}
	res := &UpgradeResult{Refspec: refspec}
	// A deployment of a commit by id follows that id, as in OSTree: there
	// is nothing to pull, and no branch to follow until a switch names one.
	pinned, isPinned := s.commitRefspec(refspec)
	isPinned = isPinned && !isSwitch
	rmName, branch := SplitRefspec(refspec)
	if err := repo.ValidateRefName(branch); err != nil {
		return nil, fmt.Errorf("%s: refspec %q: %w", op, refspec, err)
	}
	override := !opts.OverrideCommit.IsZero()
	if override && isPinned {
		return nil, fmt.Errorf("%s: the origin %s is a commit, not a branch to take another commit of", op, refspec)
	}
	// A switch to another branch deploys whatever that branch names, as
	// OSTree's does: its commits are not newer or older than the current
	// branch's in any sense the guard could check.
	guard := !opts.AllowDowngrade && (!isSwitch || cur.Origin == refspec)
	if rmName != "" && !opts.DeployOnly {
		po := opts.Pull
		po.Remote, po.Refs, po.Mirror, po.URL = rmName, []string{branch}, false, ""
		if override {
			po.Refs = []string{opts.OverrideCommit.String()}
		} else if guard {
			// Refused by the pull, as OSTree's upgrader pulls with its
			// timestamp check: an older commit must not move the ref
			// either, with PullOnly too.
			po.TimestampCheck, po.TimestampCheckFrom = true, cur.Commit
		}
		start := time.Now()
		pr, err := remote.Pull(ctx, s.repo, po)
		res.PullTime = time.Since(start)
		if te := (*remote.TimestampError)(nil); errors.As(err, &te) && te.Ref == "" {
			err = &DowngradeError{Ref: refspec, Commit: te.Commit, Current: cur, CurrentTime: te.CurrentTime, FoundTime: te.Time}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: pulling %s: %w", op, refspec, err)
		}
		res.Pulled = pr
	}
	var id repo.ID
	var err error
	switch {
	case isPinned:
		id = pinned
	case override:
		id = opts.OverrideCommit
		err = s.checkOverride(id, branch)
	default:
		id, err = s.repo.ReadRef(refspec)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	res.Commit = id
	// Checked before PullOnly returns, as OSTree's upgrader tells "No
	// update available." after a pull-only one too.
	if id == cur.Commit && (!isSwitch || cur.Origin == refspec) {
		return res, ErrNoUpgrade
	}
	if opts.PullOnly {
		return res, nil
	}
	if guard && id != cur.Commit {
		if err := s.checkDowngrade(ctx, cur, refspec, id); err != nil {
			if de := (*DowngradeError)(nil); errors.As(err, &de) {
				de.Override = override
			}
			return nil, err
		}
	}
	do := opts.DeployOptions
	do.OS = osName
	if do.Origin == nil {
		// The current origin's other keys carry over, as in OSTree.
		o, err := readOrigin(cur.Path + ".origin")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		o.Refspec, o.Pinned, o.OverrideCommit = refspec, false, ""
		if isSwitch {
			o.Unconfigured = ""
		}
		if override {
			o.OverrideCommit = id.String()
		}
		do.Origin = o.encode()
	}
	res.Deployed, err = s.Deploy(ctx, id.String(), do)
	// A *CleanupError comes with the deploy's result: the deployment is
	// made, and the caller is told which.
	var cleanupErr *CleanupError
	if err != nil && (!errors.As(err, &cleanupErr) || res.Deployed == nil) {
		return nil, err
	}
	if isSwitch && cur.Origin != refspec {
		var derr error
		if res.DeletedRef, derr = s.dropOldOrigin(ctx, cur.Origin, osName); derr != nil && err == nil {
			return res, &CleanupError{Done: "switch: deployed", Err: derr}
		}
	}
	return res, err
}

// dropOldOrigin deletes the remote-tracking ref a switch left, as OSTree's
// switch does, so that the old branch's newest commit is not kept for
// ever: the deployments of it keep their commits through their own refs,
// and an upgrade of one pulls the ref again. A local branch is the
// admin's, and stays; so does a ref another stateroot's upgrades follow
// (its merge deployment's origin).
// It returns the ref deleted, or "".
func (s *Sysroot) dropOldOrigin(ctx context.Context, old, osName string) (string, error) {
	if rm, _ := SplitRefspec(old); rm == "" {
		return "", nil
	}
	for _, d := range s.deployments {
		if d.OS != osName && s.MergeDeployment(d.OS).Origin == old {
			return "", nil
		}
	}
	l, err := s.repo.LockRefs(ctx)
	if err != nil {
		return "", fmt.Errorf("deleting the old origin's ref %s: %w", old, err)
	}
	defer l.Unlock()
	if _, err := s.repo.ReadRef(old); errors.Is(err, repo.ErrNotFound) {
		return "", nil
	}
	if err := s.repo.SetRef(old, repo.ID{}); err != nil {
		return "", fmt.Errorf("deleting the old origin's ref %s: %w", old, err)
	}
	return old, nil
}

// checkOverride checks that an override commit is stored complete and
// was not built for other branches than branch.
func (s *Sysroot) checkOverride(id repo.ID, branch string) error {
	c, err := s.repo.ReadCommit(id)
	if err != nil {
		return fmt.Errorf("override commit: %w", err)
	}
	if s.repo.IsCommitPartial(id) {
		return fmt.Errorf("override commit %s is only partly stored here", id)
	}
	if err := repo.CheckRefBinding(id, c, branch); err != nil {
		return fmt.Errorf("override commit: %w", err)
	}
	return nil
}

// checkDowngrade refuses id when it is older than the deployed commit or
// one of its ancestors.
func (s *Sysroot) checkDowngrade(ctx context.Context, cur *Deployment, ref string, id repo.ID) error {
	a, err := s.repo.ReadCommit(cur.Commit)
	if err != nil {
		return err
	}
	b, err := s.repo.ReadCommit(id)
	if err != nil {
		return err
	}
	// As far as the repository holds the history: a pull of the newest
	// commit alone is no reason to refuse it.
	back, err := s.repo.IsAncestor(ctx, id, cur.Commit)
	if err != nil && !errors.Is(err, repo.ErrHistoryMissing) {
		return err
	}
	if b.Timestamp < a.Timestamp || back {
		return &DowngradeError{Ref: ref, Commit: id, Current: cur, CurrentTime: a.Timestamp, FoundTime: b.Timestamp}
	}
	return nil
}

// commitRefspec tells whether refspec is a commit id (what deploying a
// commit by id records) rather than a branch: a full id that no ref is
// named.
func (s *Sysroot) commitRefspec(refspec string) (repo.ID, bool) {
	id, err := repo.ParseID(refspec)
	if err != nil {
		return repo.ID{}, false
	}
	if _, err := s.repo.ReadRef(refspec); err == nil {
		return repo.ID{}, false
	}
	return id, true
}
