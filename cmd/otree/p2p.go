package main

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/otree/otree/internal/datetime"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/spf13/cobra"
)

func newFindRemotesCommand(e *env) *cobra.Command {
	var finders, cacheDir string
	var pull, mirror, noSync bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "find-remotes COLLECTION-ID REF [COLLECTION-ID REF...]",
		Short: "Find remotes and mounted repositories that serve the given refs",
		Long: `Look for the refs, each named by its collection ID and branch, in the
repositories of mounted filesystems (.otree/repo and .otree/repos.d/* at a
mount's top, as create-usb writes them) and at every configured remote that has
one of the collection IDs (remote add --collection-id), and list each source with
the commits it offers.

A collection is only looked for when a configured remote has it: that remote's
keys and binding checks apply to its commits, wherever they come from, and its
tracking refs (REMOTE:REF) receive what --pull fetches.

--pull fetches each ref from the source offering the newest commit, passing to
the next when one fails verification, and never moves a ref to an older commit
than the one it names. Then 'otree admin upgrade --deploy-only' deploys it.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := remote.ParseCollectionRefs(args)
			if err != nil {
				return usagef("%v", err)
			}
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			var fs []string
			if cmd.Flags().Changed("finders") {
				// Refused as OSTree refuses them: an empty list (which
				// may have meant none, not the default) and a finder
				// named twice.
				if finders == "" {
					return usagef("--finders: the list is empty: give %s, %s or both, or leave the option out for the default", remote.FinderMount, remote.FinderConfig)
				}
				for _, f := range strings.Split(finders, ",") {
					switch {
					case f == "lan":
						return usagef("--finders: lan (DNS-SD on the local network) is not supported; use config and mount")
					case slices.Contains(fs, f):
						return usagef("--finders: %s is named twice", f)
					}
					fs = append(fs, f)
				}
			}
			r, err := e.open()
			if err != nil {
				return err
			}
			defer r.Close()
			po := remote.PullOptions{NoSync: noSync, Timeout: timeout, Logger: e.logger(), Mirror: mirror, SummaryCacheDir: cacheDir}
			res, err := remote.FindRemotes(cmd.Context(), r, refs, remote.FindOptions{Finders: fs, Pull: po})
			if err != nil {
				return ifStopped(err, "find-remotes stopped before its search ended: it changed nothing")
			}
			var pulled []remote.PulledRef
			var pullErr error
			if pull {
				pulled, pullErr = remote.PullFound(cmd.Context(), r, res, refs, po)
				pullErr = ifStopped(pullErr, "find-remotes stopped: no ref moved but those it lists as pulled")
				e.refsChanged = true
			}
			if e.json {
				shown := *res
				// Nothing found, or nothing missing, is [], as every empty list.
				if shown.Remotes == nil {
					shown.Remotes = []remote.FoundRemote{}
				}
				if shown.Missing == nil {
					shown.Missing = []remote.CollectionRef{}
				}
				if err := e.printJSON(struct {
					Remotes []foundRemoteJSON `json:"remotes"`
					*remote.FindResult
					Pulled []remote.PulledRef `json:"pulled,omitempty"`
				}{foundJSON(shown.Remotes), &shown, pulled}); err != nil {
					return err
				}
				return pullErr
			}
			printFound(e, res, refs)
			for _, p := range pulled {
				switch {
				case p.Err != "":
					fmt.Fprintf(e.stdout, "%s: not pulled: %s\n", p.CollectionRef, p.Err)
				case p.Note != "":
					fmt.Fprintf(e.stdout, "%s: %s: %s\n", p.CollectionRef, p.Ref, p.Note)
				default:
					fmt.Fprintf(e.stdout, "%s: %s %s from %s\n", p.CollectionRef, p.Ref, p.New, p.From)
				}
			}
			if pull {
				n := 0
				for _, p := range pulled {
					if p.Err == "" {
						n++
					}
				}
				fmt.Fprintf(e.stdout, "Pulled %d/%d refs successfully.\n", n, len(refs))
			}
			return pullErr
		},
	}
	fl := c.Flags()
	fl.StringVar(&finders, "finders", "", "where to look, comma-separated: mount, config (default: core.default-repo-finders, or both in that order)")
	fl.BoolVar(&pull, "pull", false, "pull each ref found, from the source with the newest commit")
	fl.BoolVar(&mirror, "mirror", false, "with --pull, write refs as local branches, not REMOTE:REF")
	fl.BoolVar(&noSync, "disable-fsync", false, "do not sync pulled objects to disk (scratch repositories only)")
	fl.DurationVar(&timeout, "timeout", 30*time.Second, "give up on a remote that sends nothing for this long")
	fl.StringVar(&cacheDir, "cache-dir", "", "keep remotes' summaries here between runs (default REPO/tmp/cache/summaries; - for none)")
	e.addJSON(c)
	return c
}

// foundRefJSON is a FoundRef as --json prints it: its commit's time as
// log and show print one, Unix seconds in "timestamp" and RFC 3339 (UTC)
// in "date".
type foundRefJSON struct {
	CollectionRef remote.CollectionRef `json:"collection_ref"`
	Commit        repo.ID              `json:"commit"`
	Timestamp     uint64               `json:"timestamp"`
	Date          string               `json:"date"`
}

// foundRemoteJSON is a FoundRemote with its refs as --json prints them.
type foundRemoteJSON struct {
	remote.FoundRemote
	Refs []foundRefJSON `json:"refs"`
}

// foundJSON returns rs as --json prints them.
func foundJSON(rs []remote.FoundRemote) []foundRemoteJSON {
	out := make([]foundRemoteJSON, len(rs))
	for i, r := range rs {
		out[i] = foundRemoteJSON{FoundRemote: r, Refs: make([]foundRefJSON, len(r.Refs))}
		for j, f := range r.Refs {
			ts := uint64(f.Timestamp.Unix()) // the commit's, as FindRemotes read it
			out[i].Refs[j] = foundRefJSON{f.CollectionRef, f.Commit, ts, datetime.FormatUnix(ts, time.UTC, time.RFC3339)}
		}
	}
	return out
}

// printFound lists the sources found as OSTree's find-remotes does: one
// result per source, then the refs found nowhere.
func printFound(e *env, res *remote.FindResult, refs []remote.CollectionRef) {
	for _, p := range res.Problems {
		fmt.Fprintf(e.stderr, "warning: %s\n", printable(fmt.Sprint(p)))
	}
	for _, c := range res.Unverifiable {
		fmt.Fprintf(e.stderr, "hint: `otree remote add --collection-id=%s NAME URL` configures a remote of collection %s\n", c, c)
	}
	if len(res.Remotes) == 0 {
		fmt.Fprintln(e.stdout, "No results.")
	}
	for i, fr := range res.Remotes {
		fmt.Fprintf(e.stdout, "Result %d: %s\n - Finder: %s\n - Remote: %s\n - Refs:\n", i, fr.URL, fr.Finder, fr.Remote)
		// Every ref asked for, as OSTree lists them: those this source
		// lacks as "(not found)".
		for _, cr := range refs {
			i := slices.IndexFunc(fr.Refs, func(f remote.FoundRef) bool { return f.CollectionRef == cr })
			if i < 0 {
				fmt.Fprintf(e.stdout, "    - %s = (not found)\n", cr)
				continue
			}
			f := fr.Refs[i]
			fmt.Fprintf(e.stdout, "    - %s = %s (%s)\n", f.CollectionRef, f.Commit, f.Timestamp.Format(time.RFC3339))
		}
		fmt.Fprintln(e.stdout)
	}
	fmt.Fprintf(e.stdout, "%d/%d refs were found.\n", len(refs)-len(res.Missing), len(refs))
	if len(res.Missing) > 0 {
		fmt.Fprintln(e.stdout, "Refs not found in any remote:")
		for _, m := range res.Missing {
			fmt.Fprintf(e.stdout, " - %s\n", m)
		}
	}
}

func newCreateUSBCommand(e *env) *cobra.Command {
	var opts remote.USBOptions
	c := &cobra.Command{
		Use:   "create-usb MOUNT-PATH COLLECTION-ID REF [COLLECTION-ID REF...]",
		Short: "Copy refs onto a USB stick (or any mounted filesystem) for find-remotes",
		Long: `Copy each REF of COLLECTION-ID, with every object its commit reaches, into an
archive repository at MOUNT-PATH/.otree/repos.d/COLLECTION-ID (one per
collection; --destination-repo puts it elsewhere on the mount and links it
from there). 'otree find-remotes' on another machine finds it once the
filesystem is mounted, and pulls from it with the keys of that machine's remote
of the collection.

A REF is taken from this repository's branch when the repository has that
collection ID, else from the tracking ref of a remote that has it. Nothing is
written through a symbolic link on the mount. The summary of the repository on
the mount is written anew.`,
		Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := remote.ParseCollectionRefs(args[1:])
			if err != nil {
				return usagef("%v", err)
			}
			if opts.Commit != "" && len(refs) != 1 {
				return usagef("--commit only works with a single ref")
			}
			if colls := collections(refs); opts.DestinationRepo != "" && len(colls) > 1 {
				return usagef("--destination-repo holds one collection, and %d were given (%s); give each its own run", len(colls), strings.Join(colls, ", "))
			}
			r, err := e.open()
			if err != nil {
				return err
			}
			defer r.Close()
			repos, err := remote.CreateUSB(cmd.Context(), r, args[0], refs, opts)
			if opts.DestinationRepo != "" && errors.Is(err, fs.ErrExist) {
				err = withHint(err, "remove it, or drop --destination-repo")
			}
			if e.json && err == nil {
				return e.printJSON(repos)
			}
			for _, ur := range repos {
				fmt.Fprintf(e.stdout, "Copied %d/%d refs of %s from %s to %s.\n", len(ur.Refs), countColl(refs, ur.CollectionID), ur.CollectionID, r.Path(), ur.Path)
			}
			return ifStopped(err, "create-usb stopped: what it copied stays on the mount, and running it again completes the copy")
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.DestinationRepo, "destination-repo", "", "put the repository at this path within the mount (one collection only)")
	fl.StringVar(&opts.Commit, "commit", "", "copy this commit instead of the ref's (one ref only)")
	fl.BoolVar(&opts.NoSync, "disable-fsync", false, "do not sync objects to the mount")
	e.addJSON(c)
	return c
}

// collections lists the collections of refs, each once, in the order
// first named.
func collections(refs []remote.CollectionRef) []string {
	var out []string
	for _, cr := range refs {
		if !slices.Contains(out, cr.CollectionID) {
			out = append(out, cr.CollectionID)
		}
	}
	return out
}

func countColl(refs []remote.CollectionRef, coll string) int {
	n := 0
	for _, cr := range refs {
		if cr.CollectionID == coll {
			n++
		}
	}
	return n
}
