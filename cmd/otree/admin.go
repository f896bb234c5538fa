package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/deploy"
	"github.com/otree/otree/internal/quote"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/spf13/cobra"
)

// adminEnv is what the admin commands share.
type adminEnv struct {
	*env
	sysroot string
}

func newAdminCommand(e *env) *cobra.Command {
	a := &adminEnv{env: e}
	c := &cobra.Command{
		Use:   "admin",
		Short: "Manage a sysroot: deployments, boot entries, /etc merges",
		Long: `Manage the deployments of a sysroot: the root filesystem of a machine (by
default /) or any directory laid out by init-fs. Each deployment is a
hardlink checkout of a commit with its own /etc; boot entries list them in
boot order and one rename switches from one list to the next.`,
	}
	def := cmp.Or(os.Getenv("OTREE_SYSROOT"), os.Getenv("OSTREE_SYSROOT"), "/")
	c.PersistentFlags().StringVar(&a.sysroot, "sysroot", def, "the sysroot to manage; $OTREE_SYSROOT, else OSTree's $OSTREE_SYSROOT, sets the default")
	var printCurrent bool
	c.Flags().BoolVar(&printCurrent, "print-current-dir", false, "print the directory of deployment 0 as status numbers them: the staged one, else the one that boots next (as OSTree's option)")
	c.Args = cobra.NoArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if !printCurrent {
			return noOperation(cmd)
		}
		return a.inSysroot(func(s *deploy.Sysroot) error {
			// Numbered as status lists them: a staged deployment is 0,
			// as in OSTree's list.
			if len(s.Deployments()) == 0 && s.Staged() == nil {
				return fmt.Errorf("sysroot %s: %w", a.sysroot, deploy.ErrNoDeployment)
			}
			d, _, err := byIndex(s, 0)
			if err != nil {
				return err
			}
			// Under the sysroot as given, as OSTree prints it: on a
			// booted system /otree/deploy/..., not the physical
			// root's /sysroot/otree/deploy/... that d.Path is under.
			fmt.Fprintln(a.stdout, filepath.Join(s.Path(), "otree", "deploy", d.OS, "deploy", filepath.Base(d.Path)))
			return nil
		})
	}
	c.AddCommand(
		newInitFSCommand(a), newOSInitCommand(a), newAdminDeployCommand(a), newUpgradeCommand(a), newSwitchCommand(a),
		newStatusCommand(a), newRollbackCommand(a), newSetDefaultCommand(a), newUndeployCommand(a),
		newPinCommand(a), newCleanupCommand(a), newKargsCommand(a), newConfigDiffCommand(a), newSetOriginCommand(a), newFinalizeStagedCommand(a),
		newUnlockCommand(a), newBootCompleteCommand(a),
	)
	return c
}

func newBootCompleteCommand(a *adminEnv) *cobra.Command {
	var opts deploy.BootCompleteOptions
	c := &cobra.Command{
		Use:   "boot-complete",
		Short: "Record that this boot completed, so GRUB stops counting its tries",
		Long: `Record that the running system's boot completed. With boot counting on
(sysroot.boot-counting-tries=N and sysroot.bootloader=grub2 in the system
repository's config), a new default deployment is booted at most N times
before GRUB boots the previous deployment instead; this command, run by
otree-boot-complete.service once boot-complete.target is reached, ends the
count when the booted deployment is the default one. When GRUB fell back to
the previous deployment, it says so and fails: 'otree admin rollback' then
makes the booted deployment the default. With --rollback-after-fallback it
makes the booted deployment the default itself (what the shipped unit does),
keeping the failed one second. Without boot counting it does nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inSysroot(func(s *deploy.Sysroot) error {
				bc, err := s.BootComplete(cmd.Context(), opts)
				switch {
				case bc == nil:
				case a.json:
					shownBootCount(s, bc)
					if jerr := a.printJSON(bc); jerr != nil {
						return jerr
					}
				case err != nil:
				case bc.RolledBack:
					ds := s.Deployments()
					fmt.Fprintf(a.stdout, "The default deployment did not complete a boot in %d tries and GRUB fell back to this one: %s is now deployment %d, the failed %s deployment %d.\n",
						bc.Tries, ds[0].Name(), shownIndex(s, ds[0]), ds[1].Name(), shownIndex(s, ds[1]))
				case bc.Completed:
					fmt.Fprintf(a.stdout, "Boot of deployment %d complete; GRUB no longer counts its tries.\n", shownIndex(s, s.Deployments()[0]))
				case bc.Counting:
					fmt.Fprintf(a.stdout, "This boot is not of the default deployment, whose count goes on: %d of %d tries left.\n", bc.Left, bc.Tries)
				}
				return err
			})
		},
	}
	c.Flags().BoolVar(&opts.RollbackAfterFallback, "rollback-after-fallback", false, "after GRUB's fallback, make the booted deployment the default")
	a.addJSON(c)
	return c
}

func (a *adminEnv) open() (*deploy.Sysroot, error) {
	return deploy.Open(a.sysroot, deploy.OpenOptions{Logger: a.logger()})
}

// inSysroot runs fn on the opened sysroot.
func (a *adminEnv) inSysroot(fn func(s *deploy.Sysroot) error) error {
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.Close()
	if testHookOpened != nil {
		testHookOpened()
	}
	return fn(s)
}

// testHookOpened, when set by a test, runs once a command has opened the
// sysroot, where another process may change it.
var testHookOpened func()

// inLockedSysroot runs fn on the opened sysroot holding its lock, for a
// command that picks deployments by index: the index then names the
// deployment the change acts on, not one another process's deploy or
// undeploy has moved meanwhile.
func (a *adminEnv) inLockedSysroot(ctx context.Context, fn func(s *deploy.Sysroot) error) error {
	return a.inSysroot(func(s *deploy.Sysroot) error {
		unlock, err := s.Lock(ctx)
		if err != nil {
			return err
		}
		defer unlock()
		return fn(s)
	})
}

// adminStopped adds to err, if a signal stopped op, what is true after it:
// stopped before its switch, op changed no deployment and removed what it
// wrote (left, if set, says what stays); stopped in the cleanup after it,
// the change is made.
func adminStopped(err error, op, left string) error {
	if ce := (*deploy.CleanupError)(nil); errors.As(err, &ce) {
		return ifStopped(err, op+" stopped after its change was made (`otree admin status` shows it): only the cleanup after it was cut short")
	}
	say := op + " stopped: the deployments and boot entries are as they were"
	if left != "" {
		say += "; " + left
	}
	return ifStopped(err, say)
}

// orBooted is deployment index (numbered as status shows them), or when
// index is negative (not given) the booted deployment, else the default.
// It must be in the boot order; what names the operation, for the error.
func orBooted(s *deploy.Sysroot, index int, what string) (*deploy.Deployment, error) {
	switch {
	case index >= 0:
		return inBootOrder(s, index, what)
	case s.Booted() != nil:
		return s.Booted(), nil
	case len(s.Deployments()) > 0:
		return s.Deployments()[0], nil
	}
	return nil, fmt.Errorf("sysroot %s: %w", s.Path(), deploy.ErrNoDeployment)
}

// checkIndexFlag refuses a deployment index flag below -1: -1 is how the
// flag is left unset (OSTree's too), and a value under it would pick the
// default deployment in its place, where OSTree refuses it.
func checkIndexFlag(flag string, n int) error {
	if n < -1 {
		return usagef("--%s=%d: want a deployment index, 0 or more, as status lists them", flag, n)
	}
	return nil
}

func parseIndex(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, usagef("deployment index %q is not a number >= 0", s)
	}
	return n, nil
}

// The CLI numbers deployments as status lists them, and as OSTree does: a
// staged deployment, when there is one, is 0, and the boot order follows
// from 1. The deploy library's Index counts the boot order alone.

// shownIndex is d's number as status shows it.
func shownIndex(s *deploy.Sysroot, d *deploy.Deployment) int {
	switch {
	case d.Staged:
		return 0
	case s.Staged() != nil:
		return d.Index + 1
	}
	return d.Index
}

// byIndex resolves INDEX, numbered as status shows deployments, to a
// deployment; staged is set when it is the staged one.
func byIndex(s *deploy.Sysroot, n int) (d *deploy.Deployment, staged bool, err error) {
	i := n
	if st := s.Staged(); st != nil {
		if n == 0 {
			return st, true, nil
		}
		i--
	}
	if i < 0 || i >= len(s.Deployments()) {
		total := len(s.Deployments())
		if s.Staged() != nil {
			total++
		}
		return nil, false, fmt.Errorf("sysroot %s: no such deployment %d: there are %d (otree admin status lists them)", s.Path(), n, total)
	}
	return s.Deployments()[i], false, nil
}

// inBootOrder resolves INDEX for an operation on the boot order, which
// the staged deployment is not in yet.
func inBootOrder(s *deploy.Sysroot, n int, what string) (*deploy.Deployment, error) {
	d, staged, err := byIndex(s, n)
	if err == nil && staged {
		err = fmt.Errorf("deployment %d (%s) is staged, not in the boot order yet: cannot %s it (otree admin undeploy %d discards it)", n, d.Name(), what, n)
	}
	return d, err
}

// shownBootCount numbers bc's fallback as status lists deployments: one
// more while a deployment is staged (0).
func shownBootCount(s *deploy.Sysroot, bc *deploy.BootCount) {
	if bc.Fallback > 0 && s.Staged() != nil {
		bc.Fallback++
	}
}

// shownDeployment is a deployment in --json output, with its number as
// status shows it.
type shownDeployment struct {
	*deploy.Deployment
	Index int `json:"index"`
}

// shownList is ds as --json prints them.
func shownList(s *deploy.Sysroot, ds []*deploy.Deployment) []shownDeployment {
	out := make([]shownDeployment, len(ds))
	for i, d := range ds {
		out[i] = shownDeployment{d, shownIndex(s, d)}
	}
	return out
}

func newInitFSCommand(a *adminEnv) *cobra.Command {
	var opts deploy.InitFSOptions
	c := &cobra.Command{
		Use:   "init-fs DIR",
		Short: "Lay out an empty sysroot in DIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deploy.InitFSWithOptions(args[0], opts)
		},
	}
	c.Flags().BoolVar(&opts.Modern, "modern", false, "make only boot/ and otree/, not the mount points of a root filesystem")
	return c
}

func newOSInitCommand(a *adminEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "os-init NAME",
		Short: "Create the stateroot NAME with its shared /var",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inSysroot(func(s *deploy.Sysroot) error {
				if err := s.OSInit(cmd.Context(), args[0]); err != nil {
					return err
				}
				// OSTree's line, in otree's words.
				fmt.Fprintf(a.stdout, "otree/deploy/%s initialized as otree root\n", args[0])
				return nil
			})
		},
	}
}

// deployFlags are the flags deploy and upgrade share.
func deployFlags(c *cobra.Command, o *deploy.DeployOptions) {
	fl := c.Flags()
	fl.StringVar(&o.OS, "os", "", "stateroot (default: the booted deployment's, else the sysroot's only one)")
	fl.StringArrayVar(&o.Kargs, "karg", nil, "set kernel argument KEY=VALUE, replacing any with the same KEY (repeatable)")
	fl.StringArrayVar(&o.KargsAppend, "karg-append", nil, "append kernel argument KEY=VALUE (repeatable)")
	fl.StringArrayVar(&o.KargsDelete, "karg-delete", nil, "delete kernel argument KEY=VALUE or every KEY (repeatable)")
	fl.BoolVar(&o.KargsProcCmdline, "karg-proc-cmdline", false, "start from the running kernel's arguments (/proc/cmdline)")
	fl.BoolVar(&o.Retain, "retain", false, "keep every existing deployment")
	fl.BoolVar(&o.RetainPending, "retain-pending", false, "keep the deployments ahead of the booted one")
	fl.BoolVar(&o.RetainRollback, "retain-rollback", false, "keep the deployments behind the booted one")
	fl.BoolVar(&o.KargsNone, "karg-none", false, "start the kernel arguments from nothing instead of the merge deployment's")
	fl.BoolVar(&o.NoPrune, "no-prune", false, "do not prune the repository of commits no ref reaches any more")
	fl.BoolVar(&o.Stage, "stage", false, "write the deployment now, switch to it at shutdown (admin finalize-staged)")
	fl.BoolVar(&o.NotAsDefault, "not-as-default", false, "put the new deployment right behind the booted deployment (else the merge one) instead of making it the default")
	fl.BoolVar(&o.NoMerge, "no-merge", false, "take /etc and kernel arguments from the new tree alone")
}

// checkDeployFlags refuses deploy flags that contradict each other, as
// OSTree's deploy does.
func checkDeployFlags(o *deploy.DeployOptions) error {
	if o.KargsProcCmdline && o.KargsNone {
		return usagef("--karg-proc-cmdline and --karg-none exclude each other")
	}
	return nil
}

func newAdminDeployCommand(a *adminEnv) *cobra.Command {
	o := &deploy.DeployOptions{}
	var originFile string
	c := &cobra.Command{
		Use:   "deploy REV",
		Short: "Check out REV as a new deployment and make it the default",
		Long: `Check REV out as a new deployment, move its /etc to /usr/etc, merge the
admin's changes to /etc from the merge deployment (the booted one, else the
first of its stateroot), install its kernel (usr/lib/modules/<kver>/vmlinuz and
initramfs.img) and write boot entries, then switch to them with one rename.
The new deployment's origin is REV: a branch, which upgrades follow, or a
commit id, which they stay on until a switch (as in OSTree).

Every /etc path that changed on either side is listed with its fate:
  local     the admin's change is kept (the default did not change)
  default   the new default is taken (the admin had not changed it)
  same      both sides made the same change
  both      both changed: the admin's version stays in /etc, the new
            default is in the new deployment's /usr/etc
  conflict  cannot be merged (the deploy fails; nothing changes)

By default the new list keeps the new deployment, the booted and merge
deployments, pinned ones and other stateroots'; --retain keeps all,
--retain-pending those ahead of the booted one (of the merge one when none
is booted), --retain-rollback those behind it. Then the repository is pruned
of the commits no ref reaches any more, with their objects (--no-prune: not).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDeployFlags(o); err != nil {
				return err
			}
			opts := *o
			if originFile != "" {
				data, err := os.ReadFile(originFile)
				if err != nil {
					return err
				}
				opts.Origin = data
			}
			return a.inSysroot(func(s *deploy.Sysroot) error {
				b := a.newBar()
				if b != nil {
					opts.Progress = func(st checkout.Stats) { b.draw("Checking out", st.Files, "files", st.Bytes) }
				}
				res, err := s.Deploy(cmd.Context(), args[0], opts)
				b.done()
				return adminStopped(a.printDeploy(s, res, err), "deploy", "what it wrote is removed")
			})
		},
	}
	deployFlags(c, o)
	c.Flags().StringVar(&originFile, "origin-file", "", "use FILE as the deployment's .origin")
	c.Flags().StringArrayVar(&o.OverlayInitrds, "overlay-initrd", nil, "load this initramfs image after the tree's own (repeatable)")
	a.addJSON(c)
	return c
}

// printDeploy reports a deploy or upgrade; a conflict's paths are printed
// before the error.
func (a *adminEnv) printDeploy(s *deploy.Sysroot, res *deploy.DeployResult, err error) error {
	var ce *deploy.EtcConflictError
	if err != nil {
		if errors.As(err, &ce) && !a.json {
			for _, c := range ce.Conflicts {
				fmt.Fprintln(a.stdout, etcLine(c))
			}
		}
		return err
	}
	if a.json {
		return a.printJSON(deployView(s, res))
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", printable(w))
	}
	d := res.Deployment
	// OSTree's lines first, for scripts that read them; otree's details
	// after.
	a.printDeployOSTree(s, res)
	for _, c := range res.Etc {
		fmt.Fprintln(a.stdout, etcLine(c))
	}
	if d.Staged {
		fmt.Fprintf(a.stdout, "Staged %s %s: it becomes a deployment when \"otree admin finalize-staged\" runs (at shutdown)\n", d.OS, d.Name())
		return nil
	}
	fmt.Fprintf(a.stdout, "Deployed %s %s as deployment %d (%s switch)\n", d.OS, d.Name(), shownIndex(s, d), res.Switch)
	for _, r := range res.Removed {
		fmt.Fprintf(a.stdout, "Removed %s %s\n", r.OS, r.Name())
	}
	return nil
}

// deployJSON is a DeployResult as --json prints it: its deployments
// numbered as status numbers them, and its Etc list [] rather than nil
// when /etc had no change, as every empty list prints.
type deployJSON struct {
	Deployment           *shownDeployment `json:"deployment"`
	Merge                *shownDeployment `json:"merge,omitempty"`
	*deploy.DeployResult                  // its other fields
}

// deployView returns res as --json prints it; nil for nil.
func deployView(s *deploy.Sysroot, res *deploy.DeployResult) *deployJSON {
	if res == nil {
		return nil
	}
	r := *res
	if r.Etc == nil {
		r.Etc = []deploy.EtcChange{}
	}
	v := &deployJSON{DeployResult: &r}
	if d := res.Deployment; d != nil {
		v.Deployment = &shownDeployment{d, shownIndex(s, d)}
	}
	if d := res.Merge; d != nil {
		v.Merge = &shownDeployment{d, shownIndex(s, d)}
	}
	return v
}

// printDeployOSTree prints the lines OSTree prints for a deploy: the /etc
// merge's counts and the switch (both but for a staged deployment, whose
// switch comes at shutdown), then what the prune freed.
func (a *adminEnv) printDeployOSTree(s *deploy.Sysroot, res *deploy.DeployResult) {
	if staged := res.Deployment.Staged; !staged {
		if res.Merge != nil {
			n := map[string]int{}
			for _, c := range ostreeLocal(res.Etc) {
				n[c.Local]++
			}
			fmt.Fprintf(a.stdout, "Copying /etc changes: %d modified, %d removed, %d added\n", n["M"], n["D"], n["A"])
		}
		a.printBootSwitch(s, res.Switch, 1-len(res.Removed))
	}
	a.printFreed(res.Prune)
}

// printBootSwitch prints OSTree's line on a switch of the boot entries:
// how it was made, the boot version now and how many deployments it added
// (negative: removed).
func (a *adminEnv) printBootSwitch(s *deploy.Sysroot, sw deploy.Switch, change int) {
	if sw == "" { // nothing switched: discarding a staged deployment
		return
	}
	what, swap := "Bootloader updated", "yes"
	if sw != deploy.SwitchFull {
		what, swap = "Transaction complete", "no"
	}
	b, sub := s.BootVersion()
	fmt.Fprintf(a.stdout, "%s; bootconfig swap: %s; bootversion: boot.%d.%d, deployment count change: %d\n", what, swap, b, sub, change)
}

// printFreed prints OSTree's line on what a prune that followed a change of
// deployments freed, when it freed anything.
func (a *adminEnv) printFreed(rep *repo.PruneReport) {
	if rep != nil && rep.Freed > 0 {
		fmt.Fprintf(a.stdout, "Freed objects: %s\n", siBytes(rep.Freed))
	}
	if rep != nil && len(rep.Deltas) > 0 {
		fmt.Fprintln(a.stdout, deltasLine(rep))
	}
}

func newUpgradeCommand(a *adminEnv) *cobra.Command {
	return newFollowCommand(a, &cobra.Command{
		Use:   "upgrade",
		Short: "Pull the origin ref of the booted deployment and deploy its newest commit",
		Long: `Fetch the origin refspec of the booted deployment (else of the first of the
--os stateroot, or of the sysroot's only one) from its remote when it is REMOTE:BRANCH, and deploy the commit it names if that
is not the deployed one. A commit older than the deployed one, or one of its
ancestors, is refused unless --allow-downgrade.

--override-commit=CHECKSUM deploys that commit instead (fetched by id; one
built for another branch is refused), and the new deployment's origin
records it; the next upgrade without it follows the branch again. Unlike
OSTree, the branch's ref is not moved to the commit.`,
		Args: cobra.NoArgs,
	})
}

func newSwitchCommand(a *adminEnv) *cobra.Command {
	return newFollowCommand(a, &cobra.Command{
		Use:   "switch [REMOTE:]BRANCH",
		Short: "Pull another ref and deploy it, making it the origin later upgrades follow",
		Long: `Fetch REMOTE:BRANCH (a BRANCH alone keeps the current origin's remote, and
REMOTE: alone its branch, as in OSTree) and deploy the commit it names with
the refspec recorded as the new origin. As for upgrade, a commit older than
the deployed one, or one of its ancestors, is refused unless
--allow-downgrade. As in OSTree, the old origin's
remote-tracking ref is then deleted, so that pruning can free the commits
no deployment uses; a local branch, or a ref another stateroot follows,
is kept.`,
		Args: cobra.ExactArgs(1),
	})
}

// newFollowCommand completes upgrade and switch, which differ only in
// where the refspec comes from.
func newFollowCommand(a *adminEnv, c *cobra.Command) *cobra.Command {
	o := &deploy.UpgradeOptions{}
	var timeout time.Duration
	var retries int
	var override string
	var reboot bool
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if retries < 0 {
			return usagef("--network-retries must be 0 or more")
		}
		if err := checkTimeout(timeout); err != nil {
			return err
		}
		if o.PullOnly && o.DeployOnly {
			return usagef("--pull-only and --deploy-only exclude each other")
		}
		if err := checkDeployFlags(&o.DeployOptions); err != nil {
			return err
		}
		return a.inSysroot(func(s *deploy.Sysroot) error {
			var err error
			opts := *o
			opts.Pull.Timeout, opts.Pull.Attempts, opts.Pull.Logger = timeout, retries+1, a.logger()
			if override != "" {
				// A full id is fetched; anything else must name a stored commit.
				if opts.OverrideCommit, err = repo.ParseID(override); err != nil {
					if opts.OverrideCommit, err = s.Repo().ResolveRev(override); err != nil {
						return fmt.Errorf("--override-commit: %w", err)
					}
				}
			}
			var b *bar
			if !a.json {
				b = a.newBar()
			}
			if b != nil {
				opts.Pull.Progress = pullProgress(b)
				opts.Progress = func(st checkout.Stats) { b.draw("Checking out", st.Files, "files", st.Bytes) }
			}
			var res *deploy.UpgradeResult
			if len(args) == 1 {
				res, err = s.SwitchRef(cmd.Context(), args[0], opts)
			} else {
				res, err = s.Upgrade(cmd.Context(), opts)
			}
			b.done()
			if be := (*repo.RefBindingError)(nil); errors.As(err, &be) && !opts.OverrideCommit.IsZero() && be.Commit == opts.OverrideCommit {
				err = withHint(err, "`otree admin switch` deploys another branch")
			}
			if te := (*remote.TimestampError)(nil); errors.As(err, &te) {
				// Older than the remote-tracking ref's commit, which
				// is not the deployed one (a DowngradeError says that).
				err = withHint(err, "pass --allow-downgrade to take it")
			}
			if errors.Is(err, deploy.ErrNoUpgrade) || (err == nil && res.Deployed == nil) {
				if a.json {
					return a.printJSON(res)
				}
				// Standard output says what OSTree's says; what was
				// fetched is told on standard error.
				if res.Pulled != nil {
					fmt.Fprintf(a.stderr, "Pulled %s: %s\n", res.Refspec, res.Commit)
					a.reportPull(res)
				}
				if err != nil {
					fmt.Fprintln(a.stdout, "No update available.")
				}
				return nil
			}
			if err != nil {
				return adminStopped(a.printDeploy(s, nil, err), cmd.Name(), "what it wrote is removed, and what it pulled is kept")
			}
			if a.json {
				err = a.printJSON(struct {
					*deploy.UpgradeResult
					Deployed *deployJSON `json:"deployed,omitempty"`
				}{res, deployView(s, res.Deployed)})
			} else {
				if res.Pulled != nil {
					a.reportPull(res)
				}
				err = a.printDeploy(s, res.Deployed, nil)
				if err == nil && res.DeletedRef != "" {
					fmt.Fprintf(a.stdout, "Deleted ref '%s'\n", res.DeletedRef)
				}
			}
			if err == nil && reboot {
				err = a.rebootNow(cmd.Context(), s)
			}
			return err
		})
	}
	deployFlags(c, &o.DeployOptions)
	fl := c.Flags()
	fl.BoolVar(&o.AllowDowngrade, "allow-downgrade", false, "deploy even a commit older than the current one, or one of its ancestors")
	fl.BoolVar(&o.PullOnly, "pull-only", false, "fetch the update but do not deploy it")
	fl.BoolVar(&o.DeployOnly, "deploy-only", false, "deploy what the repository holds without fetching")
	fl.BoolVarP(&reboot, "reboot", "r", false, "reboot (systemctl reboot) once a new deployment is written, when the sysroot is / and the running system booted one of its deployments")
	if c.Name() == "upgrade" {
		fl.StringVar(&override, "override-commit", "", "deploy this commit of the origin branch instead of its newest")
	}
	fl.DurationVar(&timeout, "timeout", 30*time.Second, "fail a request that receives nothing for this long")
	fl.IntVar(&retries, "network-retries", 2, "retry a request this many times on server errors, timeouts and broken transfers")
	a.addJSON(c)
	return c
}

// bootedAsRoot tells whether s is opened as / and the running system
// booted one of its deployments, which is when -r reboots, as OSTree's
// does; if not, why. So neither a sysroot in a directory (an image being
// built, another disk, the running one's physical root /sysroot) nor /
// without a booted deployment (a rescue system's chroot into a sysroot)
// reboots the machine. A variable so that tests can stand a sysroot in a
// directory in for the running one.
var bootedAsRoot = func(s *deploy.Sysroot) (bool, string) {
	switch {
	case !sameFile(s.Path(), "/"):
		return false, fmt.Sprintf("sysroot %s is not the running system's root /", s.Path())
	case s.Booted() == nil:
		return false, "the running system did not boot a deployment of sysroot /"
	}
	return true, ""
}

// rebootNow asks systemd to reboot the machine when it runs a deployment
// of s opened as / (bootedAsRoot).
func (a *adminEnv) rebootNow(ctx context.Context, s *deploy.Sysroot) error {
	if ok, why := bootedAsRoot(s); !ok {
		fmt.Fprintf(a.stderr, "Not rebooting: %s\n", why)
		return nil
	}
	out, err := exec.CommandContext(ctx, "systemctl", "reboot").CombinedOutput()
	if err != nil {
		return fmt.Errorf("deployed, but systemctl reboot failed: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func newStatusCommand(a *adminEnv) *cobra.Command {
	var verify bool
	c := &cobra.Command{
		Use:   "status",
		Short: "List deployments in boot order",
		Long: `List deployments in boot order; index 0 boots by default. "*" marks the
booted one. With --verify, every file of each deployment's /usr that no
longer matches its commit is listed, and the commit's signature is checked
against the keys of its origin's remote when that remote asks for signed
commits; the command fails on any drift or missing trusted signature.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for try := 1; ; try++ {
				err := statusOnce(cmd.Context(), a, verify)
				if !errors.Is(err, errSwitchedWhileVerifying) || try == verifyTries {
					return err
				}
			}
		},
	}
	c.Flags().BoolVarP(&verify, "verify", "V", false, "check each deployment's /usr against its commit, and its commit's signature when its remote asks for one")
	a.addJSON(c)
	return c
}

// verifyTries bounds how many times status --verify starts again because
// another process switched the deployments while it read their files.
const verifyTries = 3

// errSwitchedWhileVerifying: the deployments status --verify was reading
// were switched, and one may have been removed, meanwhile.
var errSwitchedWhileVerifying = errors.New("the deployments were switched by another process while status --verify read them (a deploy, undeploy or cleanup): run it again")

// statusOnce lists the deployments, verifying them with verify; it fails
// with errSwitchedWhileVerifying, printing nothing, when a switch may have
// removed files it verified.
func statusOnce(ctx context.Context, a *adminEnv, verify bool) error {
	return a.inSysroot(func(s *deploy.Sysroot) error {
		bc, err := s.BootCount()
		if err != nil {
			return err
		}
		if bc.Tries == 0 {
			bc = nil
		} else {
			shownBootCount(s, bc)
		}
		type item struct {
			*deploy.Deployment
			Index     int                     `json:"index"` // as status numbers it (shownIndex)
			Drift     []checkout.Change       `json:"drift,omitempty"`
			Signature *deploy.SignatureStatus `json:"signature,omitempty"`
		}
		items := []item{} // [] in --json when there are none, as other lists
		drift, unsigned := 0, 0
		all := s.Deployments()
		if st := s.Staged(); st != nil {
			all = append([]*deploy.Deployment{st}, all...)
		}
		for _, d := range all {
			it := item{Deployment: d, Index: shownIndex(s, d)}
			if verify && !d.Staged {
				if it.Drift, err = s.Verify(ctx, d.Index); err != nil {
					if s.Switched() {
						return fmt.Errorf("sysroot %s: %w", s.Path(), errSwitchedWhileVerifying)
					}
					return err
				}
				drift += len(it.Drift)
				if it.Signature, err = s.VerifySignature(d.Index); err != nil {
					if s.Switched() {
						return fmt.Errorf("sysroot %s: %w", s.Path(), errSwitchedWhileVerifying)
					}
					return err
				}
				if it.Signature.Remote == "" {
					it.Signature = nil
				} else if it.Signature.Error != "" {
					unsigned++
				}
			}
			items = append(items, it)
		}
		// Drift found in a deployment being removed is no drift.
		if verify && s.Switched() {
			return fmt.Errorf("sysroot %s: %w", s.Path(), errSwitchedWhileVerifying)
		}
		if a.json {
			if err := a.printJSON(struct {
				Deployments []item            `json:"deployments"`
				BootCount   *deploy.BootCount `json:"boot_count,omitempty"`
			}{items, bc}); err != nil {
				return err
			}
		} else {
			if len(items) == 0 {
				fmt.Fprintln(a.stdout, "No deployments.")
			}
			booted := s.Booted() != nil
			for _, it := range items {
				printDeployment(a.stdout, it.Deployment, it.Index, booted)
				if it.Deployment.Index == 0 && !it.Staged && bc != nil && bc.Counting {
					if bc.FellBack {
						fmt.Fprintf(a.stdout, "    boot: did not complete in %d tries; GRUB boots deployment %d ('otree admin rollback' makes it the default)\n", bc.Tries, bc.Fallback)
					} else {
						fmt.Fprintf(a.stdout, "    boot: not completed yet; %d of %d tries left before GRUB falls back to deployment %d\n", bc.Left, bc.Tries, bc.Fallback)
					}
				}
				if sig := it.Signature; sig != nil && sig.Error == "" {
					fmt.Fprintf(a.stdout, "    signature: good, key %s (remote %s)\n", sig.Key, sig.Remote)
				} else if sig != nil {
					fmt.Fprintf(a.stdout, "    signature: NOT VERIFIED (remote %s): %s\n", sig.Remote, sig.Error)
				}
				for _, ch := range it.Drift {
					fmt.Fprintf(a.stdout, "    drift: %s %s\n", ch.Kind, quote.Path(ch.Path))
				}
			}
		}
		switch {
		case drift > 0 && unsigned > 0:
			return fmt.Errorf("%d path(s) of /usr differ from their commits, and %d deployment(s) lack a trusted signature", drift, unsigned)
		case drift > 0:
			return fmt.Errorf("%d path(s) of /usr differ from their commits", drift)
		case unsigned > 0:
			return fmt.Errorf("%d deployment(s) lack a trusted signature", unsigned)
		}
		return nil
	})
}

// printDeployment prints d as OSTree's admin status does: a line with the
// booted mark, stateroot, deployment and role, then indented details, so
// that scripts written for OSTree's output read otree's. Deployments are
// listed in index order (0 boots by default); otree's own details follow
// OSTree's lines. As in OSTree, roles other than staged are shown only on
// a booted system, where rollback and pending mean something.
func printDeployment(w io.Writer, d *deploy.Deployment, index int, booted bool) {
	mark := " "
	if d.Booted {
		mark = "*"
	}
	role := ""
	switch {
	case d.Staged:
		role = " (staged)"
	case booted && d.Pending:
		role = " (pending)"
	case booted && d.Rollback:
		role = " (rollback)"
	}
	fmt.Fprintf(w, "%s %s %s%s\n", mark, d.OS, d.Name(), role)
	if d.Version != "" {
		// The version comes with the commit: a newline in it must not
		// forge a line.
		fmt.Fprintf(w, "    Version: %s\n", quote.Path(d.Version))
	}
	if d.Unlocked != "" {
		fmt.Fprintf(w, "    Unlocked: %s\n", d.Unlocked)
	}
	if d.Pinned {
		fmt.Fprintln(w, "    Pinned: yes")
	}
	if d.Origin != "" {
		fmt.Fprintf(w, "    origin refspec: %s\n", d.Origin)
	} else {
		fmt.Fprintln(w, "    origin: none")
	}
	if d.OverrideCommit != "" {
		fmt.Fprintf(w, "    override commit: %s\n", d.OverrideCommit)
	}
	for _, id := range d.OverlayInitrds {
		fmt.Fprintf(w, "    overlay initrd: %s\n", id)
	}
	fmt.Fprintf(w, "    index: %d  kernel: %s  options: %s\n", index, d.Kernel, d.Options)
	if d.Staged {
		fmt.Fprintln(w, "    finalized at shutdown (otree admin finalize-staged)")
	}
}

// ostreeLocal is changes as OSTree counts the admin's: what lay below a
// directory the admin deleted is not listed apart from it, nor is what
// lay or lies below a path whose type the admin changed (a file made a
// directory, a directory replaced by a file or a link), which is one
// modification.
func ostreeLocal(changes []deploy.EtcChange) []deploy.EtcChange {
	var out []deploy.EtcChange
	whole := map[string]bool{} // paths counted whole; a parent sorts before its children
	known := map[string]bool{} // directories looked at: whether in whole or below one of it
	for _, ch := range changes {
		if ch.Local == "" {
			out = append(out, ch)
			continue
		}
		if under(ch.Path, whole, known) {
			continue
		}
		if ch.Local == "D" || ch.Local == "M" && slices.Contains(ch.Fields, checkout.FieldType) {
			whole[ch.Path] = true
		}
		out = append(out, ch)
	}
	return out
}

// under tells whether a directory above p is in dirs. known keeps the
// answer for each directory climbed, which holds as long as no directory
// is added to dirs after a path below it is looked at: climbing from every
// path to the root would cost a tree thousands of directories deep time
// cubic in its depth.
func under(p string, dirs, known map[string]bool) bool {
	var climbed []string
	in := false
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		if k, ok := known[d]; ok {
			in = k
			break
		}
		climbed = append(climbed, d)
		if dirs[d] {
			in = true
			break
		}
	}
	for _, d := range climbed {
		known[d] = in
	}
	return in
}

// printLocalEtc prints the admin's changes to /etc as OSTree's
// config-diff does: the letter, four spaces and the path below /etc,
// modified paths first, then deleted, then added.
func printLocalEtc(w io.Writer, changes []deploy.EtcChange) {
	changes = ostreeLocal(changes)
	for _, letter := range []string{"M", "D", "A"} {
		for _, ch := range changes {
			if ch.Local != letter {
				continue
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(ch.Path, "/etc"), "/")
			if rel == "" {
				rel = "."
			}
			fmt.Fprintf(w, "%s    %s\n", letter, quote.Path(rel))
		}
	}
}

// etcLine is c's line as diff writes a path: Go-quoted when it holds a
// character that does not print, so that a name in /etc cannot drive
// the terminal.
func etcLine(c deploy.EtcChange) string {
	c.Path = quote.Path(c.Path)
	c.Detail = printable(c.Detail)
	return c.String()
}

func newFinalizeStagedCommand(a *adminEnv) *cobra.Command {
	c := &cobra.Command{
		Use:   "finalize-staged",
		Short: "Switch to the staged deployment (run at shutdown)",
		Long: `Make the deployment "deploy --stage" (or "upgrade --stage") wrote the default:
merge /etc again from the deploy's merge deployment as it is now, so
changes made since the deploy are kept (it fails if that deployment was
undeployed since), install its kernel and switch the boot entries with one
rename. A systemd unit runs it at shutdown (docs/DEPLOY.md). With
nothing staged it does nothing; a failure leaves the boot entries as they
were.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inSysroot(func(s *deploy.Sysroot) error {
				res, err := s.FinalizeStaged(cmd.Context())
				if errors.Is(err, deploy.ErrNoStaged) {
					if a.json {
						return a.printJSON(struct{}{})
					}
					fmt.Fprintln(a.stdout, "No deployment is staged.")
					return nil
				}
				return adminStopped(a.printDeploy(s, res, err), "finalize-staged", "the deployment stays staged, for the next finalize")
			})
		},
	}
	a.addJSON(c)
	return c
}

func newUnlockCommand(a *adminEnv) *cobra.Command {
	var hotfix, transient bool
	c := &cobra.Command{
		Use:   "unlock",
		Short: "Make the booted deployment's /usr writable, for development or a hotfix",
		Long: `Mount a writable overlay on the booted system's /usr. By default the
changes live under /var/tmp and are gone after a reboot. With --transient
the overlay is mounted read-only (mount -o remount,rw /usr opens it).
With --hotfix the changes are kept across reboots, in the deployment's
directory, and a pristine copy of the deployment is deployed first as the
rollback target. A later deploy or upgrade starts locked again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mode := deploy.UnlockDevelopment
			switch {
			case hotfix && transient:
				return usagef("--hotfix and --transient exclude each other")
			case hotfix:
				mode = deploy.UnlockHotfix
			case transient:
				mode = deploy.UnlockTransient
			}
			return a.inSysroot(func(s *deploy.Sysroot) error {
				res, err := s.Unlock(cmd.Context(), mode)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(unlockView(s, res))
				}
				// OSTree's lines (for a hotfix, its clone's deploy first),
				// then where the changes go.
				switch mode {
				case deploy.UnlockHotfix:
					a.printDeployOSTree(s, res.CloneDeploy)
					fmt.Fprint(a.stdout, "Hotfix mode enabled.  A writable overlayfs is now mounted on /usr\n"+
						"for this booted deployment.  A non-hotfixed clone has been created\n"+
						"as the non-default rollback target.\n")
					fmt.Fprintf(a.stdout, "The changes are kept in %s; deployment %d (%s) is the clone.\n", res.Upper, shownIndex(s, res.Clone), res.Clone.Name())
				case deploy.UnlockTransient:
					fmt.Fprint(a.stdout, "A writable overlayfs is prepared for /usr, but is mounted read-only by default.\n"+
						"All changes there will be discarded on reboot.\n")
					fmt.Fprintf(a.stdout, "mount -o remount,rw /usr makes it writable; the changes are kept in %s until then.\n", res.Upper)
				default:
					fmt.Fprint(a.stdout, "Development mode enabled.  A writable overlayfs is now mounted on /usr.\n"+
						"All changes there will be discarded on reboot.\n")
					fmt.Fprintf(a.stdout, "The changes are kept in %s until then.\n", res.Upper)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVar(&hotfix, "hotfix", false, "keep the changes across reboots; a pristine copy becomes the rollback target")
	c.Flags().BoolVar(&transient, "transient", false, "mount the overlay read-only")
	a.addJSON(c)
	return c
}

// unlockJSON is an unlock's result as --json prints it: its deployments
// numbered as status numbers them.
type unlockJSON struct {
	Deployment           *shownDeployment `json:"deployment"`
	Clone                *shownDeployment `json:"clone,omitempty"`
	*deploy.UnlockResult                  // its other fields
}

func unlockView(s *deploy.Sysroot, res *deploy.UnlockResult) unlockJSON {
	v := unlockJSON{UnlockResult: res}
	if d := res.Deployment; d != nil {
		v.Deployment = &shownDeployment{d, shownIndex(s, d)}
	}
	if d := res.Clone; d != nil {
		v.Clone = &shownDeployment{d, shownIndex(s, d)}
	}
	return v
}

// switchCommand builds a command that changes the boot order through do
// and reports the new default.
func switchCommand(a *adminEnv, c *cobra.Command, do func(ctx context.Context, s *deploy.Sysroot, args []string) (deploy.Switch, error)) *cobra.Command {
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return a.inLockedSysroot(cmd.Context(), func(s *deploy.Sysroot) error {
			sw, err := do(cmd.Context(), s, args)
			if errors.Is(err, deploy.ErrStagedDefault) {
				err = withHint(err, "`otree admin undeploy 0` discards the staged deployment")
			}
			if err != nil {
				return err
			}
			return a.printSwitch(s, sw)
		})
	}
	a.addJSON(c)
	return c
}

// indexed adapts a method taking a deployment index to switchCommand.
func indexed(f func(*deploy.Sysroot, context.Context, int) (deploy.Switch, error)) func(context.Context, *deploy.Sysroot, []string) (deploy.Switch, error) {
	return func(ctx context.Context, s *deploy.Sysroot, args []string) (deploy.Switch, error) {
		n, err := parseIndex(args[0])
		if err != nil {
			return "", err
		}
		d, err := inBootOrder(s, n, "make the default")
		if err != nil {
			return "", err
		}
		return f(s, ctx, d.Index)
	}
}

func newRollbackCommand(a *adminEnv) *cobra.Command {
	return switchCommand(a, &cobra.Command{
		Use:   "rollback",
		Short: "Make the previous deployment of the default's stateroot the default",
		Long: `Swap deployments 0 and 1 in boot order; running it twice restores the order.
When deployment 1 is another stateroot's, the first deployment of the
default's stateroot behind it becomes the default instead, where GRUB's boot
counting falls back (set-default 1 boots the other system); deployment 1 only
when it is booted and the default's stateroot has no other.`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, s *deploy.Sysroot, _ []string) (deploy.Switch, error) {
		return s.Rollback(ctx)
	})
}

// printSwitch reports the new default after a change of order.
func (a *adminEnv) printSwitch(s *deploy.Sysroot, sw deploy.Switch) error {
	ds := s.Deployments()
	if a.json {
		return a.printJSON(struct {
			Switch      deploy.Switch     `json:"switch"`
			Deployments []shownDeployment `json:"deployments"`
		}{sw, shownList(s, ds)})
	}
	if len(ds) > 0 && sw != "" {
		fmt.Fprintf(a.stdout, "Default is now %s %s (%s switch)\n", ds[0].OS, ds[0].Name(), sw)
	}
	return nil
}

func newSetDefaultCommand(a *adminEnv) *cobra.Command {
	return switchCommand(a, &cobra.Command{
		Use:   "set-default INDEX",
		Short: "Make deployment INDEX the default",
		Args:  cobra.ExactArgs(1),
	}, indexed((*deploy.Sysroot).SetDefault))
}

func newUndeployCommand(a *adminEnv) *cobra.Command {
	c := &cobra.Command{
		Use:   "undeploy INDEX",
		Short: "Remove deployment INDEX (never the booted or a pinned one) and prune the repository",
		Long: `Remove deployment INDEX, numbered as status lists deployments (and as
OSTree numbers them): while a deployment is staged it is 0, and undeploy 0
discards it. The booted deployment and pinned ones are refused. The
repository is then pruned of the commits no ref reaches any more.`,
		Args: cobra.ExactArgs(1),
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		n, err := parseIndex(args[0])
		if err != nil {
			return err
		}
		return a.inLockedSysroot(cmd.Context(), func(s *deploy.Sysroot) error {
			gone, staged, err := byIndex(s, n)
			if err != nil {
				return err
			}
			var oldDefault *deploy.Deployment
			if ds := s.Deployments(); len(ds) > 0 {
				oldDefault = ds[0]
			}
			var res *deploy.UndeployResult
			if staged {
				res, err = s.DiscardStaged(cmd.Context())
			} else {
				res, err = s.Undeploy(cmd.Context(), gone.Index)
			}
			if err != nil {
				return adminStopped(err, "undeploy", "")
			}
			if a.json {
				return a.printJSON(struct {
					Switch      deploy.Switch     `json:"switch"`
					Deployments []shownDeployment `json:"deployments"`
					Prune       *repo.PruneReport `json:"prune,omitempty"`
				}{res.Switch, shownList(s, s.Deployments()), res.Prune})
			}
			// OSTree's lines, then the new default when it changed.
			a.printBootSwitch(s, res.Switch, -1)
			a.printFreed(res.Prune)
			fmt.Fprintf(a.stdout, "Deleted deployment %s\n", gone.Name())
			if now := s.Deployments(); len(now) > 0 && oldDefault != nil && now[0].Path != oldDefault.Path {
				return a.printSwitch(s, res.Switch)
			}
			return nil
		})
	}
	a.addJSON(c)
	return c
}

func newSetOriginCommand(a *adminEnv) *cobra.Command {
	index := -1
	var sets []string
	c := &cobra.Command{
		Use:   "set-origin REMOTE URL [BRANCH]",
		Short: "Make REMOTE:BRANCH the origin a deployment's upgrades follow",
		Long: `Add the remote REMOTE fetching from URL to the system repository (with
--set=KEY=VALUE keys), unless it is configured with that URL already, and
make REMOTE:BRANCH the origin refspec of deployment INDEX (default: the
booted one, else 0): the next upgrade pulls from there. BRANCH defaults to
the branch of the current origin. Nothing is deployed. A remote of that name
with another URL is an error: change it with "otree remote add --force".`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkIndexFlag("index", index); err != nil {
				return err
			}
			set, err := parseSets(sets)
			if err != nil {
				return err
			}
			return a.inLockedSysroot(cmd.Context(), func(s *deploy.Sysroot) error {
				d, err := orBooted(s, index, "set the origin of")
				if err != nil {
					return err
				}
				var branch string
				if len(args) == 3 {
					branch = args[2]
				} else if _, branch = deploy.SplitRefspec(d.Origin); branch == "" {
					return usagef("deployment %d has no origin to take a branch from: give BRANCH", shownIndex(s, d))
				}
				name, u := args[0], args[1]
				r := s.Repo()
				if rm, err := remote.GetRemote(r, name); err == nil {
					if rm.URL != u || len(set) > 0 {
						return fmt.Errorf("remote %s is configured with url %s: change it with \"otree remote add --force\" first", name, remote.ShownURL(rm.URL))
					}
				} else if !errors.Is(err, remote.ErrRemoteNotFound) {
					return err
				} else if _, err := remote.AddRemote(r, remote.Remote{Name: name, URL: u}, remote.AddOptions{Set: set}); err != nil {
					return err
				}
				return s.SetOrigin(cmd.Context(), d.Index, name+":"+branch)
			})
		},
	}
	c.Flags().IntVar(&index, "index", -1, "the deployment whose origin to set, numbered as status lists them (default: the booted one, else the default)")
	wordedDefault(c, "index")
	c.Flags().StringArrayVarP(&sets, "set", "s", nil, "set config key KEY=VALUE of a new remote (repeatable)")
	return c
}

func newPinCommand(a *adminEnv) *cobra.Command {
	var unpin bool
	c := &cobra.Command{
		Use:   "pin INDEX...",
		Short: "Keep deployments INDEX... until they are unpinned",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ns []int
			for _, arg := range args {
				n, err := parseIndex(arg)
				if err != nil {
					return err
				}
				ns = append(ns, n)
			}
			state := map[bool]string{true: "pinned", false: "unpinned"}[!unpin]
			return a.inLockedSysroot(cmd.Context(), func(s *deploy.Sysroot) error {
				for _, n := range ns {
					d, err := inBootOrder(s, n, "pin")
					if err != nil {
						return err
					}
					if d.Pinned == !unpin {
						fmt.Fprintf(a.stdout, "Deployment %d is already %s\n", n, state)
						continue
					}
					if err := s.Pin(cmd.Context(), d.Index, !unpin); err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "Deployment %d is now %s\n", n, state)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&unpin, "unpin", "u", false, "remove the pin")
	return c
}

func newCleanupCommand(a *adminEnv) *cobra.Command {
	var noPrune bool
	c := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove what no deployment uses, and prune the repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inSysroot(func(s *deploy.Sysroot) error {
				rep, err := s.Cleanup(cmd.Context(), deploy.CleanupOptions{NoPrune: noPrune})
				if err != nil {
					return ifStopped(err, "cleanup stopped: the deployments are as they were; the next cleanup removes what is left")
				}
				if a.json {
					// Nothing removed is [], as in prune's report.
					for _, l := range []*[]string{&rep.Deployments, &rep.Boot, &rep.Refs} {
						if *l == nil {
							*l = []string{}
						}
					}
					return a.printJSON(rep)
				}
				// OSTree's one line (when the prune freed anything), then
				// what else went.
				a.printFreed(rep.Prune)
				for _, p := range rep.Deployments {
					fmt.Fprintf(a.stdout, "Removed deployment %s\n", p)
				}
				for _, p := range append(rep.Boot, rep.Unlocks...) {
					fmt.Fprintf(a.stdout, "Removed %s\n", p)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVar(&noPrune, "no-prune", false, "leave the repository alone")
	a.addJSON(c)
	return c
}

func newKargsCommand(a *adminEnv) *cobra.Command {
	var edit deploy.KargsEdit
	index := -1
	c := &cobra.Command{
		Use:   "kargs",
		Short: "Show or edit a deployment's kernel arguments",
		Long: `Print the kernel arguments of deployment --deployment (numbered as status
lists them; default: the default deployment), or edit them:
--replace=KEY=VALUE sets KEY, replacing all its values; KEY=OLD=NEW
replaces the value OLD alone where KEY=OLD is present, and elsewhere sets
KEY to all of OLD=NEW, as root=UUID=... means; --delete=KEY[=VALUE]
removes, --append=KEY=VALUE adds, --append-if-missing=KEY=VALUE adds
unless KEY is there. Each flag takes one argument: a value with spaces is
quoted (x="a b"), and two arguments in one flag are refused (OSTree's
--karg-append splits them). Edits take effect at the deployment's next
boot.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkIndexFlag("deployment", index); err != nil {
				return err
			}
			edits := len(edit.Replace)+len(edit.Delete)+len(edit.Append)+len(edit.AppendIfMissing) > 0
			in := a.inSysroot
			if edits {
				in = func(fn func(s *deploy.Sysroot) error) error { return a.inLockedSysroot(cmd.Context(), fn) }
			}
			return in(func(s *deploy.Sysroot) error {
				var d *deploy.Deployment
				var err error
				switch {
				case index < 0 && len(s.Deployments()) == 0:
					return fmt.Errorf("sysroot %s: %w", s.Path(), deploy.ErrNoDeployment)
				case index < 0:
					d = s.Deployments()[0]
				case edits:
					d, err = inBootOrder(s, index, "edit the kernel arguments of")
				default:
					d, _, err = byIndex(s, index)
				}
				if err != nil {
					return err
				}
				sw := deploy.Switch("")
				if edits {
					lib := d.Index
					if sw, err = s.SetKargs(cmd.Context(), lib, edit); err != nil {
						return fmt.Errorf("admin kargs --deployment=%d: %w", shownIndex(s, d), err)
					}
					if d, err = s.Deployment(lib); err != nil {
						return err
					}
				}
				if a.json {
					return a.printJSON(struct {
						Index   int           `json:"index"`
						Options string        `json:"options"`
						Switch  deploy.Switch `json:"switch,omitempty"`
					}{shownIndex(s, d), d.Options, sw})
				}
				fmt.Fprintln(a.stdout, d.Options)
				return nil
			})
		},
	}
	fl := c.Flags()
	fl.IntVar(&index, "deployment", -1, "the deployment's index, as status lists them (default: the default deployment)")
	wordedDefault(c, "deployment")
	fl.StringArrayVar(&edit.Replace, "replace", nil, "set KEY=VALUE, or KEY=OLD=NEW (repeatable)")
	fl.StringArrayVar(&edit.Delete, "delete", nil, "delete KEY=VALUE or every KEY (repeatable)")
	fl.StringArrayVar(&edit.Append, "append", nil, "append KEY=VALUE (repeatable)")
	fl.StringArrayVar(&edit.AppendIfMissing, "append-if-missing", nil, "append KEY=VALUE unless KEY is present (repeatable)")
	a.addJSON(c)
	c.AddCommand(newKargsEditInPlaceCommand(a))
	return c
}

func newKargsEditInPlaceCommand(a *adminEnv) *cobra.Command {
	var edit deploy.KargsEdit
	c := &cobra.Command{
		Use:   "edit-in-place",
		Short: "Edit the kernel arguments of every deployment",
		Long: `Apply --append-if-missing=KEY=VALUE to the kernel arguments of every
deployment, the staged one included, with one switch of the boot entries; an argument whose key a
deployment has already is left as it is there. Without one it does nothing,
as OSTree's. Each deployment's arguments are then listed on standard error
(standard output stays empty, as OSTree's), or with --json on standard
output.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(edit.AppendIfMissing) == 0 {
				return nil
			}
			return a.inSysroot(func(s *deploy.Sysroot) error {
				sw, err := s.SetKargsAll(cmd.Context(), edit)
				if err != nil {
					return err
				}
				type dep struct {
					Index   int    `json:"index"`
					Options string `json:"options"`
				}
				ds := []dep{} // [] in --json when there are none
				all := s.Deployments()
				if st := s.Staged(); st != nil {
					all = append([]*deploy.Deployment{st}, all...)
				}
				for _, d := range all {
					ds = append(ds, dep{shownIndex(s, d), d.Options})
				}
				if a.json {
					return a.printJSON(struct {
						Deployments []dep         `json:"deployments"`
						Switch      deploy.Switch `json:"switch,omitempty"`
					}{ds, sw})
				}
				for _, d := range ds {
					fmt.Fprintf(a.stderr, "%d: %s\n", d.Index, d.Options)
				}
				return nil
			})
		},
	}
	c.Flags().StringArrayVar(&edit.AppendIfMissing, "append-if-missing", nil, "append KEY=VALUE to each deployment that lacks KEY (repeatable)")
	a.addJSON(c)
	return c
}

func newConfigDiffCommand(a *adminEnv) *cobra.Command {
	index := -1
	var into int
	var osName string
	c := &cobra.Command{
		Use:   "config-diff",
		Short: "Show the admin's changes to /etc, or how they would merge",
		Long: `List every path where the merge deployment's /etc (the booted one, else the
default; with --os, that stateroot's) differs from its /usr/etc: the admin's
changes. With --into=INDEX,
preview instead the merge into deployment INDEX's defaults, with each
path's fate as deploy would report it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkIndexFlag("deployment", index); err != nil {
				return err
			}
			if into < 0 {
				return usagef("--into=%d: want a deployment index, 0 or more, as status lists them", into)
			}
			return a.inSysroot(func(s *deploy.Sysroot) error {
				var of *deploy.Deployment
				if osName != "" {
					if index >= 0 {
						return usagef("--os and --deployment exclude each other")
					}
					if of = s.MergeDeployment(osName); of == nil {
						return fmt.Errorf("stateroot %s: %w", osName, deploy.ErrNoDeployment)
					}
				} else {
					var err error
					if of, err = orBooted(s, index, "show the /etc changes of"); err != nil {
						return err
					}
				}
				var target *deploy.Deployment
				if cmd.Flags().Changed("into") {
					var err error
					if target, _, err = byIndex(s, into); err != nil {
						return err
					}
				}
				changes, err := s.ConfigDiff(cmd.Context(), of.Index, target)
				var ce *deploy.EtcConflictError
				if err != nil && !errors.As(err, &ce) {
					return err
				}
				if a.json {
					if changes == nil {
						changes = []deploy.EtcChange{} // [], as every empty list
					}
					if err := a.printJSON(struct {
						Etc []deploy.EtcChange `json:"etc"`
					}{changes}); err != nil {
						return err
					}
				} else if target == nil {
					printLocalEtc(a.stdout, changes)
				} else {
					for _, ch := range changes {
						fmt.Fprintln(a.stdout, etcLine(ch))
					}
				}
				return err
			})
		},
	}
	c.Flags().IntVar(&index, "deployment", -1, "the deployment whose /etc to show, numbered as status lists them (default: booted, else the default)")
	wordedDefault(c, "deployment")
	c.Flags().IntVar(&into, "into", 0, "preview the merge into this deployment's defaults (numbered as status lists them)")
	c.Flags().StringVar(&osName, "os", "", "show the merge deployment of this stateroot")
	a.addJSON(c)
	return c
}

// wordedDefault keeps help from adding "(default -1)" to a flag whose usage
// says in words what leaving it out means; -1 is only how the code knows.
func wordedDefault(c *cobra.Command, name string) {
	c.Flags().Lookup(name).DefValue = "0"
}

// reportPull tells on standard error what an upgrade's pull fetched, in
// pull's closing line (its time the pull's, not the deploy's), and the
// static deltas it used.
func (a *adminEnv) reportPull(res *deploy.UpgradeResult) {
	fmt.Fprintln(a.stderr, pullSummary(res.Pulled, res.PullTime))
	for _, d := range res.Pulled.Deltas {
		fmt.Fprintf(a.stderr, "Used static delta %s\n", d)
	}
}

// sameFile tells whether paths a and b name the same file; false when
// either cannot be read.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
