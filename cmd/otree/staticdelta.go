package main

import (
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/sign"
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
	Signatures int        `json:"signatures"`
	// Fallbacks are the file objects the delta leaves out, for a pull to
	// fetch as objects; FallbackSize sums their sizes.
	Fallbacks    []delta.Fallback `json:"fallbacks"`
	FallbackSize uint64           `json:"fallback_size"`
}

type partJSON struct {
	Size    uint64  `json:"size"`
	RawSize uint64  `json:"raw_size"`
	Sum     repo.ID `json:"sum"`
	Objects int     `json:"objects"`
}

func describeDelta(sb *delta.Superblock, raw []byte) deltaJSON {
	d := deltaJSON{Name: sb.Name.String(), From: sb.Name.From, To: sb.Name.To, Superblock: repo.Sum(raw), Parts: []partJSON{},
		Fallbacks: append([]delta.Fallback{}, sb.Fallbacks...), FallbackSize: sb.FallbackSize()}
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
is FROM-TO or TO (full ids), and an index per commit deltas lead to under
delta-indexes/. Pull uses one when the remote's summary lists it or the
index of the commit it wants (run summary -u after generating); see
docs/DELTAS.md.`,
	}
	c.AddCommand(newDeltaListCommand(e), newDeltaShowCommand(e), newDeltaDeleteCommand(e),
		newDeltaGenerateCommand(e), newDeltaApplyOfflineCommand(e), newDeltaVerifyCommand(e),
		newDeltaIndexesCommand(e), newDeltaReindexCommand(e))
	needOperation(c)
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
				return printEach(e, names, "(No static deltas)")
			})
		},
	}
	e.addJSON(c)
	return c
}

// printEach prints items one a line, or none (OSTree's line) when there
// are none; with --json, the list ([] when empty).
func printEach[T fmt.Stringer](e *env, items []T, none string) error {
	if e.json {
		return e.printJSON(append([]T{}, items...))
	}
	if len(items) == 0 {
		fmt.Fprintln(e.stdout, none)
	}
	for _, it := range items {
		fmt.Fprintln(e.stdout, it)
	}
	return nil
}

func parseDeltaArg(s string) (delta.Name, error) {
	n, err := delta.ParseName(s)
	if err != nil {
		return n, usageError{err}
	}
	return n, nil
}

// openDelta opens the delta arg names: a path (one that exists, or has a
// "/") to a delta directory, superblock or single-file delta, read
// without a repository; else the name of a delta of the repository.
func openDelta(e *env, arg string) (*delta.Offline, error) {
	if _, err := os.Lstat(arg); err == nil || strings.Contains(arg, "/") {
		return delta.Open(arg)
	}
	n, err := parseDeltaArg(arg)
	if err != nil {
		return nil, err
	}
	var o *delta.Offline
	err = e.inRepo(func(r *repo.Repo) error {
		o, err = delta.OpenStored(r, n)
		return err
	})
	return o, err
}

func newDeltaShowCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "show DELTA|PATH",
		Short: "Describe a static delta: its commits, parts and signatures",
		Long: `Describe the delta DELTA of the repository, or the one at PATH (a delta
directory, its superblock, or a single-file delta; no repository needed).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := openDelta(e, args[0])
			if err != nil {
				return err
			}
			defer o.Close()
			d := describeDelta(o.Superblock, o.Raw)
			if d.Signatures, err = o.Signed(); err != nil {
				return fmt.Errorf("delta %s: %s: %w", o.Path, delta.SignatureFile, err)
			}
			if e.json {
				return e.printJSON(d)
			}
			from := "(none: from scratch)"
			if !d.From.IsZero() {
				from = d.From.String()
			}
			signed := "no"
			if d.Signatures > 0 {
				signed = fmt.Sprintf("yes (%d ed25519 signature%s)", d.Signatures, pluralSuffix(d.Signatures))
			}
			fmt.Fprintf(e.stdout, "Delta: %s\nFrom: %s\nTo: %s\nSuperblock: %s (%d bytes)\nSigned: %s\nNumber of parts: %d\n",
				d.Name, from, d.To, d.Superblock, len(o.Raw), signed, len(d.Parts))
			if len(d.Fallbacks) > 0 {
				fmt.Fprintf(e.stdout, "Number of fallback entries: %d\n", len(d.Fallbacks))
				for _, f := range d.Fallbacks {
					fmt.Fprintf(e.stdout, "  %s\n", f.ID)
				}
				// The size in OSTree's format, as on its line of the same name.
				fmt.Fprintf(e.stdout, "Total Fallback Size: %d (%s)\n", d.FallbackSize, siBytes(int64(d.FallbackSize)))
			}
			for i, p := range d.Parts {
				fmt.Fprintf(e.stdout, "Part %d: %d objects, %s compressed, %s uncompressed\n", i, p.Objects, humanBytes(int64(p.Size)), humanBytes(int64(p.RawSize)))
			}
			// OSTree's lines, in its names and format; its totals count the
			// fallback objects too, by their content size here.
			for _, l := range []struct {
				label string
				n     uint64
			}{
				{"Total Part Size", d.Size},
				{"Total Part Uncompressed Size", d.RawSize},
				{"Total Size", d.Size + d.FallbackSize},
				{"Total Uncompressed Size", d.RawSize + d.FallbackSize},
			} {
				fmt.Fprintf(e.stdout, "%s: %d (%s)\n", l.label, l.n, siBytes(int64(l.n)))
			}
			return nil
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
			e.refsChanged = true // the summary lists deltas
			return e.inRepo(func(r *repo.Repo) error { return delta.Delete(cmd.Context(), r, n) })
		},
	}
}

func newDeltaGenerateCommand(e *env) *cobra.Command {
	var (
		from, to           string
		empty, ifNotExists bool
		disableBsdiff      bool
		maxChunk, maxPatch int64
		noSync, inline     bool
		filename           string
		minFallback        int64
		signing            signingFlags
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
at the path itself and the parts beside it.) With --inline, --filename=FILE
writes the whole delta into the one new file FILE instead.

--sign=KEY (base64 ed25519 secret key; repeatable) and --sign-from-file
sign the superblock, which names every part's BLAKE3; "static-delta verify"
and "apply-offline PATH KEY..." check the signature.

--min-fallback-size=N (megabytes of 1,000,000 bytes, as OSTree counts them;
default 4, as OSTree's) leaves out of a delta in the repository every new
file larger than N MB that is not stored as a patch: the superblock lists
it as a fallback object, which a pull fetches as an ordinary object (and
skips when it has it already). 0 puts every object in the delta. A delta written with --filename carries every object unless
--min-fallback-size is given: apply-offline cannot fetch what is left out,
and refuses a delta whose fallback objects are not stored here.`,
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
			// MaxPartSize is in bytes: a size past int64's range would wrap
			// to a small or negative one.
			// 0 is only the flag's unset value: given, it is refused, as
			// OSTree makes a part of every object then.
			if maxChunk < 0 || maxChunk > math.MaxInt64>>20 || maxChunk == 0 && cmd.Flags().Changed("max-chunk-size") {
				return usagef("--max-chunk-size=%d: want a size in MiB, 1 to %d (default 64)", maxChunk, int64(math.MaxInt64>>20))
			}
			if maxPatch <= 0 || maxPatch > delta.PatchSizeLimit>>20 {
				return usagef("--max-bsdiff-size must be 1 to %d (MiB); --disable-bsdiff stores every file whole", delta.PatchSizeLimit>>20)
			}
			if minFallback < 0 || minFallback > math.MaxInt64/delta.MB {
				return usagef("--min-fallback-size=%d: want a size in megabytes, 0 or more (0: every object in the delta)", minFallback)
			}
			if filename != "" && !cmd.Flags().Changed("min-fallback-size") {
				minFallback = 0 // a delta to apply offline carries everything
			}
			if inline && filename == "" {
				return usagef("--inline writes the delta into the file --filename names; a delta in the repository is a directory that pull fetches part by part")
			}
			keys, err := signing.secretKeys()
			if err != nil {
				return err
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
					// A parent pruned away (prune --depth) is common; say
					// which commit is missing and why it was wanted.
					if ok, err := r.HasObject(repo.KindCommit, fromID); err != nil {
						return err
					} else if !ok {
						return fmt.Errorf("the parent %s of commit %s, the default --from, is not in the repository (pruned, or never pulled): pass --from=REV, or --empty for a delta from scratch", fromID, toID)
					}
				}
				name := delta.Name{From: fromID, To: toID}
				if ifNotExists && filename == "" {
					if sb, raw, err := delta.ReadSuperblock(r, name); err == nil {
						return printGenerated(e, sb, raw, false)
					}
				}
				opts := delta.GenerateOptions{From: fromID, To: toID, MaxPartSize: maxChunk << 20, MaxPatchSize: maxPatch << 20,
					MinFallbackSize: minFallback * delta.MB, NoPatches: disableBsdiff, NoSync: noSync, Dir: filename, SignKeys: keys}
				if inline {
					opts.Dir, opts.File = "", filename
				}
				sb, err := delta.Generate(cmd.Context(), r, opts)
				if err != nil {
					return ifStopped(err, "static-delta generate stopped: it wrote no delta")
				}
				e.refsChanged = filename == "" // the summary lists deltas
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
	fl.StringVar(&filename, "filename", "", "write the delta into the new directory DIR (with --inline: the new file FILE), not the repository")
	fl.BoolVar(&inline, "inline", false, "with --filename: write the superblock, signatures and parts into one file")
	fl.Int64Var(&minFallback, "min-fallback-size", delta.DefaultMinFallbackSize/delta.MB, "leave new files over this many megabytes (10^6 bytes, as OSTree counts) out of the delta, for pull to fetch as objects (0: none; with --filename the default is 0)")
	signing.add(c, "the delta")
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
	fallbacks := ""
	if n := len(sb.Fallbacks); n > 0 {
		fallbacks = fmt.Sprintf("; %d fallback object%s (%s) left out, fetched as objects", n, pluralSuffix(n), humanBytes(int64(d.FallbackSize)))
	}
	fmt.Fprintf(e.stdout, "%s %s: %d object%s in %d part%s, %s%s\n", verb, d.Name, sb.Objects(), pluralSuffix(sb.Objects()),
		len(d.Parts), pluralSuffix(len(d.Parts)), humanBytes(int64(d.Size)), fallbacks)
	return nil
}

func newDeltaApplyOfflineCommand(e *env) *cobra.Command {
	var (
		noSync             bool
		keysFile, signType string
	)
	c := &cobra.Command{
		Use:   "apply-offline PATH [PUBKEY...]",
		Short: "Apply a static delta from a directory or a single file",
		Long: `Apply the static delta at PATH (its directory, its superblock file with the
parts beside it, or a single-file delta) to the repository: every object is
verified before it is stored, and its from-commit must be here. No ref is
written. A delta that leaves fallback objects out (generate
--min-fallback-size) applies only when they are stored here; otherwise it is
refused, naming them, before any part is read.

With public keys (PUBKEY, base64 ed25519, and --keys-file), the delta must
carry a valid signature by one of them; it is checked before any part is
read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sign.CheckType(signType); err != nil {
				return usageError{err}
			}
			trusted, err := publicKeys(args[1:], keysFile)
			if err != nil {
				return err
			}
			return e.inRepo(func(r *repo.Repo) error {
				sb, err := delta.ApplyOffline(cmd.Context(), r, args[0], delta.ApplyOfflineOptions{NoSync: noSync, Trusted: trusted})
				if err != nil {
					// Its objects are published together, at the end.
					return ifStopped(err, "static-delta apply-offline stopped: it stored nothing")
				}
				if e.json {
					return e.printJSON(map[string]any{"name": sb.Name.String(), "commit": sb.Name.To, "objects": sb.Objects(), "signature_verified": len(trusted) > 0})
				}
				fmt.Fprintf(e.stdout, "Applied %s: commit %s\n", sb.Name, sb.Name.To)
				return nil
			})
		},
	}
	fl := c.Flags()
	fl.BoolVar(&noSync, "disable-fsync", false, "do not sync objects to disk (scratch repositories only)")
	fl.StringVar(&keysFile, "keys-file", "", "require a signature by one of the public keys in FILE")
	fl.StringVar(&signType, "sign-type", sign.Type, "signature type (only ed25519)")
	e.addJSON(c)
	return c
}

func newDeltaVerifyCommand(e *env) *cobra.Command {
	var keysFile, keysDir, signType string
	c := &cobra.Command{
		Use:   "verify DELTA|PATH [PUBKEY...]",
		Short: "Check a static delta's signature",
		Long: `Check that the delta DELTA of the repository, or the one at PATH (a delta
directory, its superblock, or a single-file delta), carries a valid ed25519
signature of its superblock by one of the public keys given (PUBKEY, base64,
and --keys-file), or when none is given by a system-wide trusted key
(/etc/otree/trusted.ed25519(.d), /usr/share/otree/trusted.ed25519(.d), or
those in --keys-dir). The superblock names every part's BLAKE3, so a
valid signature covers the whole delta; apply-offline checks the parts.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sign.CheckType(signType); err != nil {
				return usageError{err}
			}
			o, err := openDelta(e, args[0])
			if err != nil {
				return err
			}
			defer o.Close()
			trusted, err := trustedKeys(args[1:], keysFile, keysDir, "delta "+o.Path)
			if err != nil {
				return err
			}
			pub, err := o.Verify(trusted)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(map[string]any{"name": o.Superblock.Name.String(), "verified": true, "key": sign.EncodeKey(pub)})
			}
			_, err = fmt.Fprintf(e.stdout, "Delta %s: valid ed25519 signature by key %s\n", o.Superblock.Name, sign.EncodeKey(pub))
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&keysFile, "keys-file", "", "read public keys from FILE, one base64 key per line")
	fl.StringVar(&keysDir, "keys-dir", "", "look up trusted keys in DIR instead of the system directories")
	fl.StringVar(&signType, "sign-type", sign.Type, "signature type (only ed25519)")
	e.addJSON(c)
	return c
}

func newDeltaIndexesCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "indexes",
		Short: "List the commits that have a static delta index",
		Long: `List the commits that static deltas lead to and that have an index of them
under delta-indexes/ (written by generate, delete, reindex and summary -u).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				ids, err := delta.ListIndexes(r)
				if err != nil {
					return err
				}
				return printEach(e, ids, "(No static deltas indexes)")
			})
		},
	}
	e.addJSON(c)
	return c
}

func newDeltaReindexCommand(e *env) *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   "reindex [--to=REV]",
		Short: "Regenerate the static delta indexes",
		Long: `Write the index of the static deltas that lead to each commit anew, and
remove the indexes of commits no delta leads to any more; with --to, only
the index of that commit. Generate and delete keep the index of their
commit right, and summary -u reindexes everything, so this is for deltas
copied in or removed by other means. With --to, a commit no delta leads to
gets no index (a stale one is removed), and reindex says so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				var opts delta.ReindexOptions
				if to != "" {
					id, err := r.ResolveRev(to)
					if err != nil {
						// A commit pruned since may still have an index.
						var perr error
						if id, perr = repo.ParseID(to); perr != nil || len(to) != 64 {
							return err
						}
					}
					opts.To = []repo.ID{id}
				}
				var had bool // an index of --to's commit, stale if no delta leads there
				if opts.To != nil {
					_, err := os.Stat(r.Path(delta.IndexRel(opts.To[0])))
					had = err == nil
				}
				out, err := delta.Reindex(cmd.Context(), r, opts)
				if err != nil {
					return err
				}
				e.refsChanged = true // the summary lists the indexes' sums
				// OSTree 2022.7 fails here with a garbled message, or not
				// at all, depending on the commit; otree says what it did.
				if opts.To != nil && len(out) == 0 {
					what := "no index to write"
					if had {
						what = "removed its index"
					}
					fmt.Fprintf(e.stdout, "No static deltas to %s: %s\n", opts.To[0], what)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&to, "to", "", "only rewrite the index of the deltas to this revision")
	return c
}
