package main

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/otree/otree/internal/datetime"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/spf13/cobra"
)

type pruneFlags struct {
	refsOnly, noPrune bool
	depth             int
	keepYoungerThan   string
	deleteCommit      string
	retainDepth       []string
	onlyBranches      []string
	commitOnly        bool
	deltasOnly        bool
}

func newPruneCommand(e *env) *cobra.Command {
	f := &pruneFlags{}
	c := &cobra.Command{
		Use:   "prune",
		Short: "Delete unreachable objects",
		Long: `Delete objects that no root reaches. As in OSTree, every stored commit is a
root by default, so only objects no commit needs go (left by interrupted work).
--refs-only makes refs the only roots: commits no ref reaches go with whatever
only they need, and --depth=N keeps just N parents of each ref's commit.
--retain-branch-depth=BRANCH=N gives one ref a depth of its own; --only-branch
trims only the refs it names and keeps all history of the others (both imply
--refs-only). --commit-only deletes just the commits, leaving their content
to a later prune.

In a repository whose config sets core.tombstone-commits, every commit prune
deletes leaves a tombstone, so that a deep pull from it ends there instead of
failing at a missing parent. --delete-commit turns that setting on, as in
OSTree.

The first two lines printed are OSTree's, counting objects as it does: a
commit's detached metadata is part of the commit, and tombstones are not
counted (the lines after them, otree's own, list every kind).

Where OSTree 2022.7 differs: it ignores --retain-branch-depth=BRANCH=0 (otree
keeps BRANCH's commit alone), a BRANCH that is not a ref (otree refuses it),
its --commit-only can delete commits a ref still reaches (otree's keeps
exactly the commits the same prune without it keeps), it takes a depth
below -1 as 0 (otree refuses it: only -1 means all history), it counts
the commit --delete-commit deletes in neither of its two lines (otree
counts it in both), and where refs share history it ends a ref's walk at
the first commit another ref's walk reached, so that what --depth and
--retain-branch-depth keep there depends on the order of the refs' names
(otree keeps each ref's DEPTH parents whatever the order).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPrune(cmd, e, f)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.noPrune, "no-prune", false, "only report unreachable objects; delete nothing")
	fl.BoolVar(&f.refsOnly, "refs-only", false, "only compute reachability via refs")
	fl.IntVar(&f.depth, "depth", repo.InfiniteDepth, "only traverse DEPTH parents of each commit (-1: infinite)")
	fl.StringVar(&f.keepYoungerThan, "keep-younger-than", "", `keep commits younger than DATE, in GNU date syntax; local time unless a zone is given ("2024-01-31", "20240131 1200", "3 days ago", "last week", @SECONDS); implies --refs-only`)
	fl.StringVar(&f.deleteCommit, "delete-commit", "", "delete this commit (refused if a ref points at it), leaving a tombstone; sets core.tombstone-commits")
	fl.StringArrayVar(&f.retainDepth, "retain-branch-depth", nil, "keep DEPTH parents of ref BRANCH, whatever --depth or --keep-younger-than say (BRANCH=DEPTH, repeatable; -1: all); implies --refs-only")
	fl.StringArrayVar(&f.onlyBranches, "only-branch", nil, "trim only ref BRANCH (repeatable): every other ref keeps all its history; implies --refs-only")
	fl.BoolVar(&f.commitOnly, "commit-only", false, "walk and delete commit objects only; their content goes at a later prune")
	fl.BoolVar(&f.deltasOnly, "static-deltas-only", false, "with --delete-commit, delete only the static deltas to that commit, not the commit")
	e.addJSON(c)
	return c
}

// checkDepth refuses a history depth below -1 given as flag, for every
// command that takes one. Only -1 means "all": OSTree 2022.7's prune takes
// -2 as 0 by accident (its walk tests for -1 alone) and its pull aborts on
// it, so what such a value means is unclear.
func checkDepth(flag string, d int) error {
	if d < repo.InfiniteDepth {
		return usagef("%s=%d: want -1 (all history) or 0 or more", flag, d)
	}
	return nil
}

func runPrune(cmd *cobra.Command, e *env, f *pruneFlags) error {
	opts := repo.PruneOptions{RefsOnly: f.refsOnly, Depth: f.depth, NoPrune: f.noPrune,
		OnlyBranches: f.onlyBranches, CommitOnly: f.commitOnly}
	if err := checkDepth("--depth", f.depth); err != nil {
		return err
	}
	if f.deleteCommit != "" && f.noPrune {
		return usagef("cannot combine --delete-commit and --no-prune")
	}
	if f.deltasOnly && f.deleteCommit == "" {
		return usagef("--static-deltas-only needs --delete-commit")
	}
	for _, bd := range f.retainDepth {
		branch, ds, ok := strings.Cut(bd, "=")
		d, err := strconv.Atoi(ds)
		if !ok || branch == "" || err != nil {
			return usagef("--retain-branch-depth=%s: want BRANCH=DEPTH, DEPTH an integer (-1: all)", bd)
		}
		if err := checkDepth("--retain-branch-depth="+branch, d); err != nil {
			return err
		}
		if opts.BranchDepth == nil {
			opts.BranchDepth = map[string]int{}
		}
		opts.BranchDepth[branch] = d
	}
	keepYounger := cmd.Flags().Changed("keep-younger-than")
	if keepYounger {
		// As OSTree reads it: GNU date syntax, zone-less times local;
		// "" too, as the start of today.
		t, err := datetime.Parse(f.keepYoungerThan, time.Now(), time.Local)
		if err != nil {
			return usageError{fmt.Errorf("--keep-younger-than: %w", err)}
		}
		opts.KeepYoungerThan = t
	}
	if cmd.Flags().Changed("depth") && !f.refsOnly && !keepYounger && len(f.retainDepth)+len(f.onlyBranches) == 0 {
		fmt.Fprintln(e.stderr, "note: without --refs-only every commit is a root, so --depth deletes no history (as in OSTree)")
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	var deltasTo []repo.ID
	if f.deleteCommit != "" {
		id, err := r.ResolveRev(f.deleteCommit)
		if err != nil {
			return fmt.Errorf("--delete-commit: %w", err)
		}
		switch {
		case f.deltasOnly:
			deltasTo = []repo.ID{id}
		case id.IsZero():
			// The zero id means "none" to Prune; no commit has it.
			return fmt.Errorf("prune: deleting commit: %w", &repo.ObjectMissingError{Kind: repo.KindCommit, ID: id})
		default:
			opts.DeleteCommit = id
		}
	}
	rep, err := delta.Prune(cmd.Context(), r, opts, deltasTo...)
	e.refsChanged = !f.noPrune
	if err != nil {
		if rep != nil && rep.Deleted > 0 && !e.json {
			fmt.Fprintf(e.stderr, "Deleted %d objects, %s freed before the error\n", rep.Deleted, siBytes(rep.Freed))
		}
		// Only objects no kept commit needs are deleted, commits first,
		// so whatever it reached, every kept commit is whole.
		if rep == nil || rep.Deleted == 0 || rep.DryRun {
			err = ifStopped(err, "prune stopped: it deleted nothing")
		} else {
			err = ifStopped(err, "prune stopped: what it deleted no kept commit needs; the rest goes at the next prune")
		}
		var (
			missing *repo.ObjectMissingError
			corrupt *repo.CorruptObjectError
		)
		if errors.As(err, &corrupt) || errors.As(err, &missing) && missing.ID != opts.DeleteCommit {
			return withHint(err, "run `otree fsck`")
		}
		return err
	}
	if e.json {
		return e.printJSON(rep)
	}
	// The first two lines are OSTree's, in its words and counts; what
	// otree adds comes after them.
	var total, deleted int64
	for k, n := range rep.TotalByKind {
		if ostreeCounted(k) {
			total += n
		}
	}
	for k, c := range rep.ByKind {
		if ostreeCounted(k) {
			deleted += c.Objects
		}
	}
	if f.commitOnly {
		fmt.Fprintf(e.stdout, "Total (commit only) objects: %d\n", total)
	} else {
		fmt.Fprintf(e.stdout, "Total objects: %d\n", total)
	}
	switch {
	case rep.Deleted == 0:
		fmt.Fprintln(e.stdout, "No unreachable objects")
	case rep.DryRun:
		fmt.Fprintf(e.stdout, "Would delete: %d objects, freeing %s\n", deleted, siBytes(rep.Freed))
	default:
		fmt.Fprintf(e.stdout, "Deleted %d objects, %s freed\n", deleted, siBytes(rep.Freed))
	}
	kinds := make([]string, 0, len(rep.ByKind))
	for k := range rep.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		c := rep.ByKind[k]
		fmt.Fprintf(e.stdout, "  %s: %d, %s\n", k, c.Objects, siBytes(c.Bytes))
	}
	if len(rep.Deltas) > 0 {
		fmt.Fprintln(e.stdout, deltasLine(rep))
	}
	if c := rep.Cache; c.Objects > 0 {
		verb, noun := "Removed", "entries"
		if rep.DryRun {
			verb = "Would remove"
		}
		if c.Objects == 1 {
			noun = "entry"
		}
		fmt.Fprintf(e.stdout, "%s %d uncompressed-cache %s, freeing %s\n", verb, c.Objects, noun, siBytes(c.Bytes))
	}
	return nil
}

// deltasLine says which static deltas a prune deleted (or, dry, would
// delete) and the bytes they took.
func deltasLine(rep *repo.PruneReport) string {
	n := fmt.Sprintf("%d static delta%s", len(rep.Deltas), pluralSuffix(len(rep.Deltas)))
	if rep.DryRun {
		return fmt.Sprintf("Would delete %s, freeing %s: %s", n, siBytes(rep.DeltaBytes), strings.Join(rep.Deltas, " "))
	}
	return fmt.Sprintf("Deleted %s, %s freed: %s", n, siBytes(rep.DeltaBytes), strings.Join(rep.Deltas, " "))
}

// ostreeCounted reports whether OSTree's prune counts objects of the kind
// named k in its totals: it takes detached metadata as part of its commit
// and does not list tombstones, so that a signed commit is one object.
func ostreeCounted(k string) bool {
	kind, err := repo.ParseKind(k)
	return err == nil && kind.ContentAddressed()
}
