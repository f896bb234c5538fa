package main

import (
	"fmt"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/spf13/cobra"
)

// deltaJSON is the --json form of a delta.
type deltaJSON struct {
	Name       string     `json:"name"`
	From       repo.ID    `json:"from"`
	To         repo.ID    `json:"to"`
	Superblock repo.ID    `json:"superblock"`
	Parts      []partJSON `json:"parts"`
	Size       uint64     `json:"size"`
	RawSize    uint64     `json:"raw_size"`
}

type partJSON struct {
	Size    uint64  `json:"size"`
	RawSize uint64  `json:"raw_size"`
	Sum     repo.ID `json:"sum"`
	Objects int     `json:"objects"`
}

func describeDelta(sb *delta.Superblock, raw []byte) deltaJSON {
	d := deltaJSON{Name: sb.Name.String(), From: sb.Name.From, To: sb.Name.To, Superblock: repo.Sum(raw), Parts: []partJSON{}}
	for _, p := range sb.Parts {
		d.Parts = append(d.Parts, partJSON{Size: p.Size, RawSize: p.RawSize, Sum: p.Sum, Objects: len(p.Objects)})
		d.Size += p.Size
		d.RawSize += p.RawSize
	}
	return d
}

func newStaticDeltaCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "static-delta COMMAND",
		Short: "Generate, list, show, delete and apply static deltas",
		Long: `A static delta holds the objects one commit needs beyond another (or all of
them, from scratch) in a few compressed parts under deltas/NAME/, where NAME
is FROM-TO or TO (full ids). Pull uses one when the remote's summary lists it
(run summary -u after generating); see docs/DELTAS.md.`,
	}
	c.AddCommand(newDeltaListCommand(e), newDeltaShowCommand(e), newDeltaDeleteCommand(e),
		newDeltaGenerateCommand(e), newDeltaApplyOfflineCommand(e))
	return c
}

func newDeltaListCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "list",
		Short: "List the static deltas of the repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				names, err := delta.List(r)
				if err != nil {
					return err
				}
				if e.json {
					out := []string{}
					for _, n := range names {
						out = append(out, n.String())
					}
					return e.printJSON(out)
				}
				if len(names) == 0 {
					fmt.Fprintln(e.stdout, "(No static deltas)")
				}
				for _, n := range names {
					fmt.Fprintln(e.stdout, n)
				}
				return nil
			})
		},
	}
	e.addJSON(c)
	return c
}

func parseDeltaArg(s string) (delta.Name, error) {
	n, err := delta.ParseName(s)
	if err != nil {
		return n, usageError{err}
	}
	return n, nil
}

func newDeltaShowCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "show DELTA",
		Short: "Describe a static delta: its commits and parts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseDeltaArg(args[0])
			if err != nil {
				return err
			}
			return e.inRepo(func(r *repo.Repo) error {
				sb, raw, err := delta.ReadSuperblock(r, n)
				if err != nil {
					return err
				}
				d := describeDelta(sb, raw)
				if e.json {
					return e.printJSON(d)
				}
				from := "(none: from scratch)"
				if !n.From.IsZero() {
					from = n.From.String()
				}
				fmt.Fprintf(e.stdout, "Delta: %s\nFrom: %s\nTo: %s\nSuperblock: %s (%d bytes)\nNumber of parts: %d\n",
					d.Name, from, n.To, d.Superblock, len(raw), len(d.Parts))
				for i, p := range d.Parts {
					fmt.Fprintf(e.stdout, "Part %d: %d objects, %s compressed, %s uncompressed\n", i, p.Objects, humanBytes(int64(p.Size)), humanBytes(int64(p.RawSize)))
				}
				fmt.Fprintf(e.stdout, "Total Part Size: %d\nTotal Uncompressed Part Size: %d\n", d.Size, d.RawSize)
				return nil
			})
		},
	}
	e.addJSON(c)
	return c
}

func newDeltaDeleteCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete DELTA",
		Short: "Remove a static delta",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseDeltaArg(args[0])
			if err != nil {
				return err
			}
			return e.inRepo(func(r *repo.Repo) error { return delta.Delete(r, n) })
		},
	}
}

func newDeltaGenerateCommand(e *env) *cobra.Command {
	var (
		from, to           string
		empty, ifNotExists bool
		disableBsdiff      bool
		maxChunk, maxPatch int64
		noSync             bool
		filename           string
	)
	c := &cobra.Command{
		Use:   "generate [--from=REV | --empty] [--to=REV | TO]",
		Short: "Generate a static delta",
		Long: `Write the static delta from --from (default: the parent of --to) to --to,
or from scratch with --empty, into deltas/ of the repository, replacing one
of the same name. Changed files are stored as zstd patches against a file of
the from-commit (the one at the same path, else one of the same name) when
that is smaller.

--filename=DIR writes the delta into the new directory DIR instead (its
superblock and parts, as in deltas/), to carry to a machine that applies it
with "otree static-delta apply-offline DIR". (OSTree writes its superblock
at the path itself and the parts beside it.)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if to != "" {
					return usagef("give the to-commit as --to or as an argument, not both")
				}
				to = args[0]
			}
			if to == "" {
				return usagef("generate needs --to=REV")
			}
			if empty && from != "" {
				return usagef("--empty and --from cannot be combined")
			}
			if maxChunk < 0 {
				return usagef("--max-chunk-size must be positive")
			}
			if maxPatch <= 0 || maxPatch > delta.PatchSizeLimit>>20 {
				return usagef("--max-bsdiff-size must be 1 to %d (MiB); --disable-bsdiff stores every file whole", delta.PatchSizeLimit>>20)
			}
			return e.inRepo(func(r *repo.Repo) error {
				toID, err := r.ResolveRev(to)
				if err != nil {
					return err
				}
				var fromID repo.ID
				switch {
				case empty:
				case from != "":
					if fromID, err = r.ResolveRev(from); err != nil {
						return err
					}
				default:
					c, err := r.ReadCommit(toID)
					if err != nil {
						return err
					}
					if c.Parent.IsZero() {
						return fmt.Errorf("commit %s has no parent: pass --from=REV, or --empty for a delta from scratch", toID)
					}
					fromID = c.Parent
				}
				name := delta.Name{From: fromID, To: toID}
				if ifNotExists && filename == "" {
					if sb, raw, err := delta.ReadSuperblock(r, name); err == nil {
						return printGenerated(e, sb, raw, false)
					}
				}
				sb, err := delta.Generate(cmd.Context(), r, delta.GenerateOptions{From: fromID, To: toID,
					MaxPartSize: maxChunk << 20, MaxPatchSize: maxPatch << 20, NoPatches: disableBsdiff, NoSync: noSync, Dir: filename})
				if err != nil {
					return err
				}
				return printGenerated(e, sb, sb.Encode(), true)
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&from, "from", "", "create the delta from this revision (default: the parent of --to)")
	fl.StringVar(&to, "to", "", "create the delta to this revision")
	fl.BoolVar(&empty, "empty", false, "create a delta from scratch")
	fl.BoolVarP(&ifNotExists, "if-not-exists", "n", false, "only generate if the delta does not exist yet")
	fl.BoolVar(&disableBsdiff, "disable-bsdiff", false, "store changed files whole, never as patches")
	fl.Int64Var(&maxChunk, "max-chunk-size", 0, "uncompressed size of a part in MiB (default 64)")
	fl.Int64Var(&maxPatch, "max-bsdiff-size", delta.PatchSizeLimit>>20, "largest file in MiB stored as a patch; larger ones are stored whole (at most the default)")
	fl.BoolVar(&noSync, "disable-fsync", false, "do not sync the delta to disk")
	fl.StringVar(&filename, "filename", "", "write the delta into the new directory DIR, not the repository")
	e.addJSON(c)
	return c
}

func printGenerated(e *env, sb *delta.Superblock, raw []byte, generated bool) error {
	d := describeDelta(sb, raw)
	if e.json {
		return e.printJSON(d)
	}
	verb := "Generated"
	if !generated {
		verb = "Exists"
	}
	fmt.Fprintf(e.stdout, "%s %s: %d object%s in %d part%s, %s\n", verb, d.Name, sb.Objects(), pluralSuffix(sb.Objects()),
		len(d.Parts), pluralSuffix(len(d.Parts)), humanBytes(int64(d.Size)))
	return nil
}

func newDeltaApplyOfflineCommand(e *env) *cobra.Command {
	var noSync bool
	c := &cobra.Command{
		Use:   "apply-offline PATH",
		Short: "Apply a static delta from a directory",
		Long: `Apply the static delta at PATH (its directory, or its superblock file with
the parts beside it) to the repository: every object is verified before it
is stored, and its from-commit must be here. No ref is written.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				sb, err := delta.ApplyOffline(cmd.Context(), r, args[0], delta.ApplyOfflineOptions{NoSync: noSync})
				if err != nil {
					return err
				}
				if e.json {
					return e.printJSON(map[string]any{"name": sb.Name.String(), "commit": sb.Name.To, "objects": sb.Objects()})
				}
				fmt.Fprintf(e.stdout, "Applied %s: commit %s\n", sb.Name, sb.Name.To)
				return nil
			})
		},
	}
	c.Flags().BoolVar(&noSync, "disable-fsync", false, "do not sync objects to disk (scratch repositories only)")
	e.addJSON(c)
	return c
}
