package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/quote"
	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

type diffFlags struct {
	stat, stats, fsDiff, verify, noXattrs bool
	ignoreOwners, canonical               bool
	ownerUID, ownerGID                    int64
}

func newDiffCommand(e *env) *cobra.Command {
	f := &diffFlags{}
	c := &cobra.Command{
		Use:   "diff [REV|DIR] REV|DIR",
		Short: "Show the paths that differ between two commits or directories, or a commit and a directory",
		Long: `Compare the tree of the first REV (old) with the second REV, or with the directory
DIR on disk (new), and print one line per path that differs. With one REV,
compare its parent (REV^) with it, as OSTree does:

  A    /path     only in the new tree
  M    /path     in both, different (content, type, or metadata only)
  D    /path     only in the old tree

in tree order (a directory's entries sorted by name, each directory followed by
its contents). "/" stands for the root directory's own metadata. The contents of
an added directory are listed; a removed directory is one line unless --verify.
Paths with invalid UTF-8 or characters that do not print (control characters,
U+202E), or that start with a double quote, are printed Go-quoted.

The second argument is a directory if one exists there; if it also names a
revision, write ./NAME (or an absolute path) for the directory. The first is
a directory when written as a path (/DIR, ./DIR, ../DIR), as in OSTree: the
directory (old) is then compared with the revision (new), or with the
second directory. Where no repository is found, two names of directories
are taken as directories. A directory is
hashed the way commit would hash it (nothing is written to the repository);
when it was checked out by an unprivileged user, pass the commit's owner with
--owner-uid/--owner-gid (or --ignore-owners), and --no-xattrs if the filesystem
adds or drops extended attributes. For a commit made with
--canonical-permissions, pass it here too; a bare-user-only repository records
every commit so, and its directories are always compared so.

--verify lists every path that differs (the contents of removed directories
too) and exits 1 if any does: the check that a deployed tree has not drifted.
--stat prints counts and sizes instead of paths; with --fs-diff too, the paths
and then the counts. --stats prints OSTree's object statistics of two
commits instead: the objects each needs, and the count and size on disk of
those both need; with --fs-diff too, the paths and then the statistics
(under "objects" with --json). --json prints the changes
with both sides' type, mode, owner, size, target and xattrs, and which fields
differ.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				args = []string{args[0] + "^", args[0]}
			}
			return runDiff(cmd, e, f, args[0], args[1])
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.stat, "stat", false, "print a summary (files and bytes added, modified, removed) instead of paths")
	fl.BoolVar(&f.stats, "stats", false, "print how many objects each commit needs, and how many (and what size on disk) both need, as OSTree's --stats")
	fl.BoolVar(&f.fsDiff, "fs-diff", false, "print the paths (the default; with --stat or --stats, before the counts)")
	fl.BoolVar(&f.verify, "verify", false, "list every differing path; exit 1 if any differs")
	fl.Int64Var(&f.ownerUID, "owner-uid", -1, "take this uid as the owner of every entry of DIR")
	fl.Int64Var(&f.ownerGID, "owner-gid", -1, "take this gid as the owner of every entry of DIR")
	fl.BoolVar(&f.ignoreOwners, "ignore-owners", false, "do not compare uid and gid")
	fl.BoolVar(&f.noXattrs, "no-xattrs", false, "do not compare extended attributes")
	fl.BoolVar(&f.canonical, "canonical-permissions", false, "take the entries of each DIR as commit --canonical-permissions records them (0:0, no xattrs, no setuid, setgid, sticky or group and others' write bits)")
	e.addJSON(c)
	return c
}

// diffOutput is the --json form of a diff.
type diffOutput struct {
	From    repo.ID             `json:"from,omitzero"`
	FromDir string              `json:"from_dir,omitempty"` // or the directory, as the first argument
	To      repo.ID             `json:"to,omitzero"`        // the second commit
	Dir     string              `json:"dir,omitempty"`      // or the directory
	Changes []diffChangeJSON    `json:"changes"`
	Stats   *checkout.DiffStats `json:"stats,omitempty"`
	Objects *diffObjectStats    `json:"objects,omitempty"` // --stats with --fs-diff
}

// diffChangeJSON is a checkout.Change with xattrs in ls --json's form.
type diffChangeJSON struct {
	Kind   checkout.ChangeKind `json:"kind"`
	Path   string              `json:"path"` // with path_base64 when not UTF-8 (printJSON)
	Meta   bool                `json:"meta,omitempty"`
	Fields []string            `json:"fields,omitempty"`
	Old    *diffEntryJSON      `json:"old,omitempty"`
	New    *diffEntryJSON      `json:"new,omitempty"`
}

type diffEntryJSON struct {
	*checkout.EntryInfo
	Xattrs []xattrJSON `json:"xattrs,omitempty"`
}

func toDiffEntryJSON(e *checkout.EntryInfo) *diffEntryJSON {
	if e == nil {
		return nil
	}
	return &diffEntryJSON{EntryInfo: e, Xattrs: toXattrJSON(e.Xattrs)}
}

func runDiff(cmd *cobra.Command, e *env, f *diffFlags, from, to string) error {
	var opts checkout.DiffOptions
	for _, o := range []struct {
		v    int64
		dst  **uint32
		name string
	}{{f.ownerUID, &opts.OwnerUID, "--owner-uid"}, {f.ownerGID, &opts.OwnerGID, "--owner-gid"}} {
		if o.v < -1 || o.v > 0xfffffffe {
			return usagef("invalid %s %d", o.name, o.v)
		}
		if o.v >= 0 {
			v := uint32(o.v)
			*o.dst = &v
		}
	}
	opts.IgnoreOwners, opts.IgnoreXattrs, opts.CanonicalPermissions = f.ignoreOwners, f.noXattrs, f.canonical
	// Counting needs the contents of removed directories too.
	opts.Verify = f.verify || f.stat
	if f.stats {
		if f.stat || f.verify {
			return usagef("--stats counts objects; it takes neither --stat nor --verify")
		}
		for _, arg := range []string{from, to} {
			if isPathArg(arg) {
				return usagef("--stats compares the objects of two commits, and %q is a directory", arg)
			}
		}
	}
	if isPathArg(from) && isPathArg(to) {
		return runDiffDirs(cmd, e, f, opts, from, to)
	}
	r, err := e.open()
	if errors.Is(err, errNoRepo) && isDir(from) && isDir(to) {
		// No repository to hold revisions of those names: directories.
		return runDiffDirs(cmd, e, f, opts, from, to)
	}
	if err != nil {
		return err
	}
	defer r.Close()
	if isPathArg(from) {
		// First, only a path is a directory, as in OSTree: a bare name
		// stays the revision it always was.
		if _, _, err := diffTarget(r, from); err != nil {
			return err
		}
		return runDiffFromDir(cmd, e, f, r, opts, from, to)
	}
	a, err := r.ResolveRev(from)
	if err != nil {
		return err
	}
	if f.stats {
		b, err := r.ResolveRev(to)
		if err != nil {
			return err
		}
		return runDiffObjectStats(cmd.Context(), e, f, r, opts, a, b)
	}
	out := diffOutput{From: a}
	var changes []checkout.Change
	if dir, isDir, err := diffTarget(r, to); err != nil {
		return err
	} else if isDir {
		out.Dir = dir
		changes, err = checkout.DiffDir(cmd.Context(), r, a, dir, opts)
		if err != nil {
			return err
		}
	} else {
		if opts.OwnerUID != nil || opts.OwnerGID != nil || opts.CanonicalPermissions {
			return usagef("--owner-uid, --owner-gid and --canonical-permissions apply to a directory, and %q is a revision", to)
		}
		if out.To, err = r.ResolveRev(to); err != nil {
			return err
		}
		if changes, err = checkout.Diff(cmd.Context(), r, a, out.To, opts); err != nil {
			return err
		}
	}
	if err := printDiff(e, f, &out, changes); err != nil {
		return err
	}
	if f.verify && len(changes) > 0 {
		against := to
		if out.Dir == "" {
			against = out.To.String()
		}
		return differ(len(changes), a.String(), against)
	}
	return nil
}

// runDiffObjectStats prints the object statistics of commits a and b
// (--stats), after their changed paths with --fs-diff, as OSTree prints
// both.
func runDiffObjectStats(ctx context.Context, e *env, f *diffFlags, r *repo.Repo, opts checkout.DiffOptions, a, b repo.ID) error {
	st, err := commonObjects(ctx, r, a, b)
	if err != nil {
		return err
	}
	if !f.fsDiff {
		if e.json {
			return e.printJSON(st)
		}
		return writeObjectStats(e.stdout, st)
	}
	changes, err := checkout.Diff(ctx, r, a, b, opts)
	if err != nil {
		return err
	}
	if e.json {
		return printDiff(e, f, &diffOutput{From: a, To: b, Objects: &st}, changes)
	}
	if err := printDiff(e, f, &diffOutput{From: a, To: b}, changes); err != nil {
		return err
	}
	return writeObjectStats(e.stdout, st)
}

// isPathArg tells whether arg is written as a path, which no ref name can
// be: it starts with "/", "./" or "../", or is "." or "..".
func isPathArg(arg string) bool {
	return strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, "./") || strings.HasPrefix(arg, "../") || arg == "." || arg == ".."
}

// runDiffFromDir compares the directory dir (old) with revision to (new),
// as OSTree's diff takes a directory first: the commit is compared with
// the directory and the changes read the other way.
func runDiffFromDir(cmd *cobra.Command, e *env, f *diffFlags, r *repo.Repo, opts checkout.DiffOptions, dir, to string) error {
	if to, isDir, err := diffTarget(r, to); err != nil {
		return err
	} else if isDir {
		return runDiffDirs(cmd, e, f, opts, dir, to)
	}
	b, err := r.ResolveRev(to)
	if err != nil {
		return err
	}
	// Every path, so that what the directory had and the commit lacks
	// can be listed whole; the contents of what went are folded below.
	verify := opts.Verify
	opts.Verify = true
	changes, err := checkout.DiffDir(cmd.Context(), r, b, dir, opts)
	if err != nil {
		return err
	}
	changes = reverseChanges(changes, verify)
	out := diffOutput{FromDir: dir, To: b}
	if err := printDiff(e, f, &out, changes); err != nil {
		return err
	}
	if f.verify && len(changes) > 0 {
		return differ(len(changes), dir, b.String())
	}
	return nil
}

// runDiffDirs compares two directories; no repository is needed.
func runDiffDirs(cmd *cobra.Command, e *env, f *diffFlags, opts checkout.DiffOptions, a, b string) error {
	changes, err := checkout.DiffDirs(cmd.Context(), a, b, opts)
	if err != nil {
		return err
	}
	if err := printDiff(e, f, &diffOutput{FromDir: a, Dir: b}, changes); err != nil {
		return err
	}
	if f.verify && len(changes) > 0 {
		return differ(len(changes), a, b)
	}
	return nil
}

// isDir tells whether p is a directory (following a symlink).
func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// differ is the error of diff --verify: n paths differ between a and b.
func differ(n int, a, b string) error {
	what := fmt.Sprintf("%d paths differ", n)
	if n == 1 {
		what = "1 path differs"
	}
	return fmt.Errorf("%s between %s and %s", what, a, b)
}

// reverseChanges turns the changes from a to b into those from b to a.
// Unless verify, a directory that goes is one line, as Diff gives it: the
// contents of one removed (or replaced by a file) are left out.
func reverseChanges(changes []checkout.Change, verify bool) []checkout.Change {
	out := changes[:0]
	cut := "" // the directory whose removed contents are folded
	for _, c := range changes {
		c.Old, c.New = c.New, c.Old
		switch c.Kind {
		case checkout.Added:
			c.Kind = checkout.Deleted
		case checkout.Deleted:
			c.Kind = checkout.Added
		}
		if cut != "" && strings.HasPrefix(c.Path, cut) && c.Kind == checkout.Deleted && !verify {
			continue
		}
		cut = ""
		if c.Old != nil && c.Old.Type == checkout.TypeDirectory && (c.Kind == checkout.Deleted || c.New != nil && c.New.Type != checkout.TypeDirectory) && c.Path != "/" {
			cut = c.Path + "/"
		}
		out = append(out, c)
	}
	return out
}

// diffTarget says whether the second argument is a directory. A name that
// is both an existing directory and a revision is ambiguous unless written
// as a path (with a "/" before its first character, as in ./NAME or /NAME),
// which no ref name can be.
func diffTarget(r *repo.Repo, arg string) (string, bool, error) {
	isPath := isPathArg(arg)
	fi, err := os.Stat(arg)
	switch {
	case err != nil && isPath:
		return "", false, fmt.Errorf("diff: %w", err)
	case err == nil && !fi.IsDir() && isPath:
		return "", false, fmt.Errorf("diff: %s is not a directory", arg)
	case err != nil || !fi.IsDir():
		return "", false, nil
	case isPath:
		return arg, true, nil
	}
	if _, err := r.ResolveRev(arg); err == nil {
		return "", false, usagef("%q is both a revision and a directory: write ./%s for the directory", arg, arg)
	} else if !errors.Is(err, repo.ErrNotFound) && repo.ValidateRefName(arg) == nil {
		return "", false, err
	}
	return arg, true, nil
}

func printDiff(e *env, f *diffFlags, out *diffOutput, changes []checkout.Change) error {
	paths := f.fsDiff || !f.stat
	var s checkout.DiffStats
	if f.stat {
		s = checkout.Summarize(changes)
		if !f.verify {
			changes = topRemoved(changes)
		}
	}
	if e.json {
		if !paths {
			return e.printJSON(struct {
				From    repo.ID            `json:"from,omitzero"`
				FromDir string             `json:"from_dir,omitempty"`
				To      repo.ID            `json:"to,omitzero"`
				Dir     string             `json:"dir,omitempty"`
				Stats   checkout.DiffStats `json:"stats"`
			}{out.From, out.FromDir, out.To, out.Dir, s})
		}
		out.Changes = make([]diffChangeJSON, len(changes))
		for i, c := range changes {
			out.Changes[i] = diffChangeJSON{Kind: c.Kind, Path: c.Path, Meta: c.Meta, Fields: c.Fields,
				Old: toDiffEntryJSON(c.Old), New: toDiffEntryJSON(c.New)}
		}
		if f.stat {
			out.Stats = &s
		}
		return e.printJSON(out)
	}
	w := bufio.NewWriter(e.stdout)
	if paths {
		for _, c := range changes {
			fmt.Fprintf(w, "%c    %s\n", c.Kind, quote.Path(c.Path))
		}
	}
	if f.stat {
		fmt.Fprintf(w, "Files added: %d (%s)\nFiles modified: %d (%s -> %s)\nFiles removed: %d (%s)\n",
			s.FilesAdded, humanBytes(int64(s.BytesAdded)), s.FilesModified, humanBytes(int64(s.BytesOld)),
			humanBytes(int64(s.BytesNew)), s.FilesDeleted, humanBytes(int64(s.BytesDeleted)))
		fmt.Fprintf(w, "Directories added: %d, modified: %d, removed: %d\n", s.DirsAdded, s.DirsModified, s.DirsDeleted)
	}
	return w.Flush()
}

// topRemoved drops the contents of removed directories from a diff made
// with Verify, giving the listing made without it.
func topRemoved(changes []checkout.Change) []checkout.Change {
	out := changes[:0:0]
	gone := "" // the last removed directory kept, with a trailing "/"
	for _, c := range changes {
		if gone != "" && c.Kind == checkout.Deleted && strings.HasPrefix(c.Path, gone) {
			continue
		}
		gone = ""
		if c.Kind == checkout.Deleted && c.IsDir() {
			gone = strings.TrimSuffix(c.Path, "/") + "/"
		}
		out = append(out, c)
	}
	return out
}
