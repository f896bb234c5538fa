package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otree/otree/internal/datetime"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
	"github.com/spf13/cobra"
)

// summaryJSON is the --json form of a summary.
type summaryJSON struct {
	Refs     []repo.Ref        `json:"refs"`
	Metadata map[string]string `json:"metadata"`
	Deltas   []remote.DeltaRef `json:"static_deltas"`
	// DeltaIndexes, not empty when the server indexes its deltas.
	DeltaIndexes []delta.IndexRef `json:"static_delta_indexes"`
}

func newSummaryCommand(e *env) *cobra.Command {
	var (
		update, view bool
		metadata     []string
		noSync       bool
		signing      signingFlags
	)
	c := &cobra.Command{
		Use:   "summary (-u [-m KEY=VALUE]... | -v)",
		Short: "Write or show the summary file that lists the repository's branches",
		Long: `-u writes the summary file at the root of the repository: every local
branch and its commit, read in one consistent state, in the encoding
docs/PULL.md defines, with the static deltas and the delta index of each
commit they lead to (indexes are written anew first, as by static-delta
reindex; core.no-deltas-in-summary=true leaves the deltas out, for clients
to find through the indexes). Pull reads it to learn a remote's branches
with one request; run it after each commit to a repository that is served.
--sign / --sign-from-file write the summary's ed25519 signatures to
summary.sig beside it; without them a stale summary.sig is removed.
-v prints the summary file as it is, each branch laid out as OSTree lays
it out. A branch whose commit is stored here also gets that commit's size
and date, read from the commit: otree's summary holds no metadata of its
own for a branch, so the date's line is "Timestamp:" where OSTree's, which
prints the summary's ostree.commit.timestamp key, is "Timestamp
(ostree.commit.timestamp):", and a branch whose commit is not stored here
has neither line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Here -v is OSTree's --view; the global -v (--verbose) lands
			// in e.verbose, and a summary has nothing to say verbosely.
			view = view || (e.verbose && !update)
			if update == view {
				return usagef("summary needs exactly one of -u (update) or -v (view)")
			}
			if view && (len(metadata) > 0 || signing.given()) {
				return usagef("--add-metadata, --sign and --sign-from-file apply to -u only")
			}
			keys, err := signing.secretKeys()
			if err != nil {
				return err
			}
			var md repo.Metadata
			for _, m := range metadata {
				k, v, ok := strings.Cut(m, "=")
				if !ok || k == "" {
					return usagef("--add-metadata wants KEY=VALUE, got %q", m)
				}
				if !utf8.ValidString(k) { // as commit's: --json prints the key
					return usagef("invalid --add-metadata %q: the key is not UTF-8", m)
				}
				// VALUE is GVariant text, as OSTree's, stored as commit's
				// --add-metadata stores it.
				b, err := gvariantValue(v)
				if err != nil {
					return usagef("--add-metadata %s: %v", k, err)
				}
				md = md.Set(k, b)
			}
			return e.inRepo(func(r *repo.Repo) error {
				var s *remote.Summary
				var err error
				if update {
					s, err = remote.UpdateSummary(cmd.Context(), r, remote.SummaryOptions{Metadata: md, NoSync: noSync, SignKeys: keys})
				} else if s, err = remote.ReadSummary(r); errors.Is(err, remote.ErrNoSummary) {
					err = withHint(err, "create it with `otree summary -u`")
				}
				if err != nil && update {
					// It waits only for the refs lock, before writing.
					return ifStopped(err, "summary -u stopped: "+r.Path(remote.SummaryFile)+" is as it was")
				}
				if err != nil {
					return err
				}
				if update && !e.json {
					fmt.Fprintf(e.stdout, "Wrote %s: %d branch%s\n", r.Path(remote.SummaryFile), len(s.Refs), map[bool]string{true: "", false: "es"}[len(s.Refs) == 1])
					return nil
				}
				return printSummary(e, r, s)
			})
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&update, "update", "u", false, "write the summary file")
	fl.BoolVar(&view, "view", false, "print the summary file (also -v, as in OSTree)")
	fl.StringArrayVarP(&metadata, "add-metadata", "m", nil, "with -u, store KEY=VALUE in the summary, VALUE in GVariant text ('a string', b'bytes', true, 42) (repeatable)")
	fl.BoolVar(&noSync, "disable-fsync", false, "do not sync the file to disk")
	signing.add(c, "the summary (with -u)")
	e.addJSON(c)
	return c
}

// printSummary prints a summary's branches, metadata and static deltas, or
// with --json its summaryJSON. Branches are laid out as OSTree's summary
// --view lays them out, the commit id on the line after "Latest Commit";
// a commit r holds also gets its size and time (local, as there).
func printSummary(e *env, r *repo.Repo, s *remote.Summary) error {
	if e.json {
		out := summaryJSON{Refs: s.Refs, Metadata: map[string]string{}, Deltas: append([]remote.DeltaRef{}, s.Deltas...),
			DeltaIndexes: append([]delta.IndexRef{}, s.DeltaIndexes...)}
		for _, m := range s.Metadata {
			out.Metadata[m.Key] = string(m.Value)
		}
		return e.printJSON(out)
	}
	for _, ref := range s.Refs {
		// One read gives both the size and the commit.
		data, err := r.ReadRaw(repo.KindCommit, ref.Commit)
		var c *repo.Commit
		if err == nil {
			c, err = repo.DecodeCommit(data)
		}
		if err != nil {
			fmt.Fprintf(e.stdout, "* %s\n    Latest Commit:\n      %s\n\n", ref.Name, ref.Commit)
			continue
		}
		fmt.Fprintf(e.stdout, "* %s\n    Latest Commit (%d bytes):\n      %s\n    Timestamp: %s\n\n",
			ref.Name, len(data), ref.Commit, summaryTime(c.Timestamp))
	}
	for _, m := range s.Metadata {
		fmt.Fprintf(e.stdout, "%s: %s\n", m.Key, metadataText(m.Key, m.Value))
	}
	for _, d := range s.Deltas {
		fmt.Fprintf(e.stdout, "Static delta %s\n    Superblock: %s\n", d.Name, d.Superblock)
	}
	if len(s.DeltaIndexes) > 0 {
		fmt.Fprintln(e.stdout, "Indexed deltas: true")
	}
	for _, x := range s.DeltaIndexes {
		fmt.Fprintf(e.stdout, "Static delta index %s\n    Index: %s\n", x.To, x.Index)
	}
	return nil
}

// summaryTime formats a commit time in local time as OSTree's summary
// --view does (GLib's %:::z): the offset in hours alone ("+05") unless it
// has minutes ("+05:30").
func summaryTime(ts uint64) string {
	return strings.TrimSuffix(datetime.FormatUnix(ts, time.Local, "2006-01-02T15:04:05-07:00"), ":00")
}
