package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

type fsckFlags struct {
	delete, quiet, all         bool
	verifyBindings, verifyBack bool
	addTombstones              bool
}

func newFsckCommand(e *env) *cobra.Command {
	f := &fsckFlags{}
	c := &cobra.Command{
		Use:   "fsck",
		Short: "Check the repository for consistency",
		Long: `Re-hash every object, check that every commit has every object it needs and
that every ref points at a stored commit, and (bare-user) that no file object's
permissions were changed through a hardlink. Every problem is printed; the exit
status is non-zero when there is any.

With --delete, corrupt objects are removed and every commit that needs a missing
or removed object is marked partial, so that a pull can complete it again. Such
a commit stays an error for later runs until a pull completes it, or, once
every object it needs is here again (stored by a later commit), until
--delete takes the mark away; a commit partial because its pull was
interrupted or fetched only metadata is not one. An
object this user may not read, or that could not be opened or read for want
of descriptors or memory or for an I/O error, is reported as unreadable and
never deleted (OSTree 2022.7 deletes an object it gets EIO reading). A
directory of objects that cannot be listed is reported, and the check goes
on. A
bare-user object whose content is sound but whose permissions were changed
(by a chmod through a hardlink in a checkout) is not deleted either: it is
rewritten with the permissions it records, and the checkouts that linked it
keep the old copy with theirs.
A corrupt commit removed leaves no tombstone: it was not deleted on purpose
(OSTree 2022.7 writes one when core.tombstone-commits is set).

A commit's missing parent is not a problem, with or without a tombstone: prune
and shallow pulls end history on purpose. --add-tombstones stores a tombstone
for every such parent that has none and turns core.tombstone-commits on, as
OSTree documents it (OSTree 2022.7 instead deletes the commit whose parent is
missing): history deleted by hand then reads as deleted on purpose.

--verify-bindings also checks that each ref's commit lists the ref in its ref
binding (otree.ref-binding); --verify-back-refs checks, for every commit, that
each ref its binding lists points at it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFsck(cmd, e, f)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.delete, "delete", false, "remove corrupt objects and mark commits that need them partial")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only problems")
	fl.BoolVarP(&f.all, "all", "a", false, "accepted for OSTree compatibility: every problem is always reported")
	fl.BoolVar(&f.verifyBindings, "verify-bindings", false, "check that each ref's commit is bound to that ref")
	fl.BoolVar(&f.verifyBack, "verify-back-refs", false, "check that every ref a commit is bound to points at it (implies --verify-bindings)")
	fl.BoolVar(&f.addTombstones, "add-tombstones", false, "store a tombstone for each missing parent of a stored commit, and turn core.tombstone-commits on")
	e.addJSON(c)
	return c
}

func runFsck(cmd *cobra.Command, e *env, f *fsckFlags) error {
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	opts := repo.FsckOptions{Delete: f.delete, VerifyBindings: f.verifyBindings, VerifyBackRefs: f.verifyBack,
		AddTombstones: f.addTombstones}
	var b *bar
	if !e.json && !f.quiet {
		b = e.newBar()
	}
	if b != nil {
		opts.Progress = func(p repo.FsckProgress) {
			b.draw("Verifying", p.Checked, fmt.Sprintf("of %d objects", p.Total), p.Bytes)
		}
	}
	rep, err := r.Fsck(cmd.Context(), opts)
	b.done()
	if rep == nil {
		// Fsck deletes, and adds tombstones, only once every check is
		// done (it may have taken the mark away from a partial commit it
		// found complete).
		say := "fsck stopped before its checks ended: it deleted no object"
		if !f.delete {
			say = "fsck stopped before its checks ended: it changed nothing"
		}
		return ifStopped(err, say)
	}
	if e.json {
		if perr := e.printJSON(rep); perr != nil {
			return perr
		}
	} else {
		printFsck(e, f, rep)
	}
	var fe *repo.FsckError
	if err != nil {
		if errors.As(err, &fe) {
			return fmt.Errorf("fsck found %d problem%s in %s", len(rep.Problems), pluralSuffix(len(rep.Problems)), r.Path())
		}
		return err
	}
	return nil
}

func printFsck(e *env, f *fsckFlags, rep *repo.FsckReport) {
	for _, p := range rep.Problems {
		fmt.Fprintf(e.stderr, "error: %s\n", printable(p.Error()))
		// A commit fsck marked partial that has every object again.
		if p.Type == repo.ProblemPartial && !errors.Is(p, repo.ErrNotFound) {
			fmt.Fprintln(e.stderr, "hint: `otree fsck --delete` takes the mark away")
		}
		if p.Type == repo.ProblemCache && !p.Deleted {
			fmt.Fprintln(e.stderr, "hint: the object is sound; `otree fsck --delete` removes the entry, and checkouts then decompress the file")
		}
	}
	for _, id := range rep.Tombstoned {
		fmt.Fprintf(e.stdout, "Adding tombstone for commit %s\n", id)
	}
	if f.quiet {
		return
	}
	var total int64
	kinds := make([]string, 0, len(rep.Objects))
	for k, n := range rep.Objects {
		total += n
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", rep.Objects[k], k)
	}
	if rep.BadRefs == 0 {
		fmt.Fprintf(e.stdout, "Validated %d ref%s\n", rep.Refs, pluralSuffix(rep.Refs))
	} else {
		fmt.Fprintf(e.stdout, "Validated %d of %d refs (%d with problems)\n", rep.Refs-rep.BadRefs, rep.Refs, rep.BadRefs)
	}
	// "Checked": the count includes the objects found damaged, which the
	// line after it counts.
	fmt.Fprintf(e.stdout, "Checked %d objects (%s hashed)", total, humanBytes(rep.Bytes))
	if len(parts) > 0 {
		fmt.Fprintf(e.stdout, ": %s", strings.Join(parts, ", "))
	}
	fmt.Fprintln(e.stdout)
	damagedObjects := countProblems(rep, func(p *repo.FsckProblem) bool {
		// Kind zero: a fan-out directory, no object.
		return p.Kind != 0 && (p.Type == repo.ProblemCorrupt || p.Type == repo.ProblemMode || p.Type == repo.ProblemUnreadable)
	})
	if damagedObjects > 0 {
		fmt.Fprintf(e.stdout, "%d of them damaged or unreadable (each named in an error)\n", damagedObjects)
	}
	// Commits partial from fsck-detected corruption are printed as errors
	// above; the rest are incomplete pulls.
	damaged := map[repo.ID]bool{}
	for _, p := range rep.Problems {
		if p.Type == repo.ProblemPartial {
			damaged[p.ID] = true
		}
	}
	var pulled []repo.ID
	for _, id := range rep.Partial {
		if !damaged[id] {
			pulled = append(pulled, id)
		}
	}
	if n := len(pulled); n > 0 {
		fmt.Fprintf(e.stdout, "%d partial commit%s (pulled in part: objects they lack are not errors):\n", n, pluralSuffix(n))
		for _, id := range pulled {
			fmt.Fprintf(e.stdout, "  %s\n", id)
		}
	}
	if rep.Deleted > 0 {
		fmt.Fprintf(e.stdout, "Deleted %d corrupt object%s\n", rep.Deleted, pluralSuffix(rep.Deleted))
	}
	if rep.Repaired > 0 {
		fmt.Fprintf(e.stdout, "Rewrote %d object%s with the permissions recorded (the files linking the old copies keep theirs)\n", rep.Repaired, pluralSuffix(rep.Repaired))
	}
	if n := countProblems(rep, func(p *repo.FsckProblem) bool { return p.Type == repo.ProblemCache && p.Deleted }); n > 0 {
		noun := "entries"
		if n == 1 {
			noun = "entry"
		}
		fmt.Fprintf(e.stdout, "Removed %d uncompressed-cache %s\n", n, noun)
	}
	if n := len(rep.MarkedPartial); n > 0 {
		fmt.Fprintf(e.stdout, "Marked %d commit%s partial:\n", n, pluralSuffix(n))
		for _, id := range rep.MarkedPartial {
			fmt.Fprintf(e.stdout, "  %s\n", id)
		}
	}
	if n := len(rep.Unmarked); n > 0 {
		fmt.Fprintf(e.stdout, "Complete again, no longer marked partial: %d commit%s:\n", n, pluralSuffix(n))
		for _, id := range rep.Unmarked {
			fmt.Fprintf(e.stdout, "  %s\n", id)
		}
	}
	switch {
	case rep.Unreferenced > 0 && rep.UnreadableRefs > 0:
		// Those refs may need them: not "unreferenced", and not pruned.
		fmt.Fprintf(e.stdout, "%d object%s no readable ref reaches (the refs that cannot be read may need them: `otree prune` refuses to run until they are repaired or deleted)\n", rep.Unreferenced, pluralSuffix(int(rep.Unreferenced)))
	case rep.Unreferenced > 0 && countProblems(rep, damagedTree) > 0:
		// What a tree that cannot be read names is counted
		// unreferenced, and prune would delete what the commit needs.
		fmt.Fprintf(e.stdout, "%d object%s no readable tree reaches (a commit or tree reported above may need them: complete it by a pull before `otree prune` removes them)\n", rep.Unreferenced, pluralSuffix(int(rep.Unreferenced)))
	case rep.Unreferenced > 0:
		fmt.Fprintf(e.stdout, "%d unreferenced object%s (not an error; `otree prune --refs-only` removes them)\n", rep.Unreferenced, pluralSuffix(int(rep.Unreferenced)))
	}
	if len(rep.Stray) > 0 {
		fmt.Fprintf(e.stdout, "%d unexpected entr%s under objects/ (ignored):\n", len(rep.Stray), map[bool]string{true: "y", false: "ies"}[len(rep.Stray) == 1])
		for _, p := range rep.Stray {
			fmt.Fprintf(e.stdout, "  %s\n", p)
		}
	}
	if len(rep.Problems) == 0 {
		fmt.Fprintln(e.stdout, "No problems found")
	}
}

// damagedTree reports whether a problem leaves a commit's tree, or part of
// it, unread: a commit or dirtree corrupt, missing or unreadable, or a
// commit fsck marked partial.
func damagedTree(p *repo.FsckProblem) bool {
	switch p.Type {
	case repo.ProblemCorrupt, repo.ProblemMissing, repo.ProblemUnreadable, repo.ProblemPartial:
		return p.Kind == repo.KindCommit || p.Kind == repo.KindDirTree
	}
	return false
}

// countProblems counts the problems of rep that match.
func countProblems(rep *repo.FsckReport, match func(*repo.FsckProblem) bool) int {
	n := 0
	for _, p := range rep.Problems {
		if match(p) {
			n++
		}
	}
	return n
}

func pluralSuffix(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
