package main

import (
	"bufio"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/spf13/cobra"
)

type pullFlags struct {
	depth              int
	commitMetadataOnly bool
	mirror             bool
	url                string
	noSync             bool
	timeout            time.Duration
	lowSpeedLimit      int64
	lowSpeedSeconds    int
	lowSpeedOff        bool // --low-speed-limit-bytes=0 was given
	retries            int
	remote             string
	untrusted          bool
	noDeltas           bool
	requireDeltas      bool
	noBindings         bool
	timestampCheck     bool
	timestampFrom      string
	bareUserOnlyFiles  bool
	headers            []string
	subpaths           []string
	dryRun             bool
	localCaches        []string
	perObjectFsync     bool
	noHardlinks        bool
	cacheDir           string
	updateMillis       int
}

// addCommon adds the flags pull and pull-local share.
func (f *pullFlags) addCommon(c *cobra.Command) {
	fl := c.Flags()
	fl.IntVar(&f.depth, "depth", 0, "also pull this many parents of each commit (-1: the whole history)")
	fl.StringArrayVarP(&f.localCaches, "localcache-repo", "L", nil, "take objects from this repository on this machine first (repeatable; verified as fetched ones are)")
	fl.BoolVar(&f.commitMetadataOnly, "commit-metadata-only", false, "fetch only commit objects; they are marked partial")
	fl.BoolVar(&f.noSync, "disable-fsync", false, "do not sync objects to disk (scratch repositories only)")
	fl.BoolVar(&f.perObjectFsync, "per-object-fsync", false, "sync each object as it lands instead of the whole filesystem (for hosts with other heavy writers)")
	fl.BoolVar(&f.noHardlinks, "no-hardlinks", false, "copy file objects a local repository of this mode on this filesystem holds, instead of hardlinking them (verified either way)")
	fl.BoolVar(&f.noBindings, "disable-verify-bindings", false, "accept commits whose ref binding does not list the branch pulled")
	fl.BoolVarP(&f.timestampCheck, "timestamp-check", "T", false, "refuse to move a ref to a commit older than the one it names")
	fl.StringVar(&f.timestampFrom, "timestamp-check-from-rev", "", "refuse any commit older than the commit REV names here")
	fl.BoolVar(&f.bareUserOnlyFiles, "bareuseronly-files", false, "refuse regular files with setuid, setgid or other-writable bits")
	fl.BoolVar(&f.requireDeltas, "require-static-deltas", false, "fail when a commit needed has no static delta")
	fl.BoolVar(&f.untrusted, "untrusted", false, "accepted for OSTree compatibility: objects are always verified")
	fl.BoolVar(&f.untrusted, "http-trusted", false, "accepted for OSTree compatibility: objects are always verified")
	fl.IntVar(&f.updateMillis, "update-frequency", 0, "redraw the progress line every this many milliseconds (0: every 100)")
}

// checkTimeout refuses a --timeout of zero or less, which the pull would
// otherwise replace by its default of 30s: no value turns it off.
func checkTimeout(d time.Duration) error {
	if d <= 0 {
		return usagef("--timeout=%v: want a duration over 0, such as 30s", d)
	}
	return nil
}

// headerName is what HTTP allows as a header name (a token).
var headerName = regexp.MustCompile("^[-!#$%&'*+.^_`|~0-9A-Za-z]+$")

// options makes the pull's options; r resolves --timestamp-check-from-rev.
func (f *pullFlags) options(r *repo.Repo, refs []string) (remote.PullOptions, error) {
	o := remote.PullOptions{
		Refs: refs, Depth: f.depth, CommitMetadataOnly: f.commitMetadataOnly, Mirror: f.mirror,
		URL: f.url, NoSync: f.noSync, Timeout: f.timeout, Attempts: f.retries + 1, Remote: f.remote,
		DisableStaticDeltas: f.noDeltas, RequireStaticDeltas: f.requireDeltas, DisableVerifyBindings: f.noBindings,
		TimestampCheck: f.timestampCheck, BareUserOnlyFiles: f.bareUserOnlyFiles, Subpaths: f.subpaths,
		DryRun: f.dryRun, LocalCaches: f.localCaches, PerObjectFsync: f.perObjectFsync, NoHardlinks: f.noHardlinks, SummaryCacheDir: f.cacheDir,
		ProgressInterval: time.Duration(f.updateMillis) * time.Millisecond,
		LowSpeedTime:     time.Duration(f.lowSpeedSeconds) * time.Second,
	}
	switch {
	case f.lowSpeedLimit > 0:
		o.LowSpeedLimit = f.lowSpeedLimit
	case f.lowSpeedOff:
		o.LowSpeedLimit = -1 // 0 turns the check off, as in OSTree
	}
	if f.updateMillis < 0 {
		return o, usagef("--update-frequency must be 0 or more milliseconds")
	}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || !headerName.MatchString(k) || strings.ContainsAny(v, "\r\n\x00") {
			return o, usagef("--http-header %q: want NAME=VALUE", h)
		}
		if o.Header == nil {
			o.Header = http.Header{}
		}
		o.Header.Add(k, v)
	}
	if f.timestampFrom != "" {
		id, err := r.ResolveRev(f.timestampFrom)
		if err != nil {
			return o, fmt.Errorf("--timestamp-check-from-rev: %w", err)
		}
		o.TimestampCheckFrom = id
	}
	return o, nil
}

func newPullCommand(e *env) *cobra.Command {
	f := &pullFlags{}
	c := &cobra.Command{
		Use:   "pull REMOTE [BRANCH[@COMMIT]...] | REMOTE:BRANCH",
		Short: "Fetch commits from a remote",
		Long: `Fetch the BRANCHes of REMOTE (default: its branches= key, else, and always
with --mirror, every branch its summary lists) with the objects they need, and point REMOTE:BRANCH at them
(BRANCH itself with --mirror). A BRANCH may also be a full commit id, pulled
without writing a ref, or BRANCH@COMMIT (a full id): that commit is pulled and
the branch's ref points at it, whatever the remote's BRANCH names. "pull REMOTE:BRANCH" pulls that one branch, as OSTree
does (further arguments are not pulled, with a warning). Objects already here are not fetched. Every object is
verified against its id before it is stored, and refs move only once every
object is on disk: a pull that fails changes no ref.

With --depth, a parent the remote no longer has ends the history pulled. A
remote whose config sets core.tombstone-commits keeps a tombstone for every
commit it deletes: there a parent with a tombstone ends the history (the
tombstone is kept here too), and one missing without it fails the pull.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.retries < 0 {
				return usagef("--network-retries must be 0 or more")
			}
			if err := checkTimeout(f.timeout); err != nil {
				return err
			}
			if fl := cmd.Flags(); fl.Changed("low-speed-limit-bytes") && f.lowSpeedLimit < 0 || fl.Changed("low-speed-time-seconds") && f.lowSpeedSeconds < 1 {
				return usagef("--low-speed-limit-bytes must be 0 or more, --low-speed-time-seconds 1 or more")
			}
			f.lowSpeedOff = cmd.Flags().Changed("low-speed-limit-bytes") && f.lowSpeedLimit == 0
			if err := checkDepth("--depth", f.depth); err != nil {
				return err
			}
			f.remote = args[0]
			refs := args[1:]
			if rm, branch, ok := strings.Cut(args[0], ":"); ok {
				if rm == "" || branch == "" {
					return usagef("%q: want REMOTE, or REMOTE:BRANCH", args[0])
				}
				if strings.Contains(branch, "@") {
					// As OSTree's refspec: a commit is chosen apart.
					return usagef("%q: want REMOTE:BRANCH; choose a commit with \"pull REMOTE BRANCH@COMMIT\"", args[0])
				}
				// OSTree pulls only BRANCH then and ignores further
				// arguments; the same here, but said.
				if len(refs) > 0 {
					fmt.Fprintf(e.stderr, "warning: %s\n", printable(fmt.Sprintf("%s names the one branch to pull; not pulling %s", args[0], strings.Join(refs, " "))))
				}
				f.remote, refs = rm, []string{branch}
			}
			return runPull(cmd, e, func(r *repo.Repo, o remote.PullOptions) (*remote.PullResult, error) {
				return remote.Pull(cmd.Context(), r, o)
			}, f, refs)
		},
	}
	f.addCommon(c)
	fl := c.Flags()
	fl.BoolVar(&f.mirror, "mirror", false, "write refs as local branches, not REMOTE:BRANCH")
	fl.StringVar(&f.url, "url", "", "fetch from this URL instead of the remote's")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "fail a request that receives nothing for this long")
	fl.IntVar(&f.retries, "network-retries", 2, "retry a request this many times on server errors, timeouts and broken transfers")
	fl.Int64Var(&f.lowSpeedLimit, "low-speed-limit-bytes", 0, "fail a transfer that averages fewer bytes a second than this over --low-speed-time-seconds; 0 for no limit (default: the remote's low-speed-limit-bytes, else 1000)")
	fl.IntVar(&f.lowSpeedSeconds, "low-speed-time-seconds", 0, "the period of --low-speed-limit-bytes (default: the remote's low-speed-time-seconds, else 30)")
	fl.BoolVar(&f.noDeltas, "disable-static-deltas", false, "fetch objects one by one even when the remote offers a static delta")
	fl.StringArrayVar(&f.headers, "http-header", nil, "add the header NAME=VALUE to every request (repeatable)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "change nothing: print what the static deltas would fetch (needs a delta per commit)")
	fl.StringArrayVar(&f.subpaths, "subpath", nil, "pull only this path of each commit's tree; the commit stays partial (repeatable)")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "keep the remote's summary here between pulls (default REPO/tmp/cache/summaries; - for none)")
	e.addJSON(c)
	return c
}

func newPullLocalCommand(e *env) *cobra.Command {
	f := &pullFlags{}
	c := &cobra.Command{
		Use:   "pull-local SRC_REPO [REF...]",
		Short: "Copy commits from another repository on this machine",
		Long: `Copy the REFs of the repository SRC_REPO (default: all its branches), in any
mode, with the objects they need, as local branches of the same names
(REMOTE:REF with --remote). Every object is verified as pull verifies it.
From a repository of the same mode on the same filesystem, file objects are
hardlinked rather than copied, as OSTree does (but verified): the two
repositories then share those files, so a chmod of one changes both;
--no-hardlinks copies them.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDepth("--depth", f.depth); err != nil {
				return err
			}
			return runPull(cmd, e, func(r *repo.Repo, o remote.PullOptions) (*remote.PullResult, error) {
				return remote.PullLocal(cmd.Context(), r, args[0], o)
			}, f, args[1:])
		},
	}
	f.addCommon(c)
	fl := c.Flags()
	fl.StringVar(&f.remote, "remote", "", "write refs as REMOTE:REF")
	e.addJSON(c)
	return c
}

// runPull runs pull (a pull or a pull-local) and prints its result.
func runPull(cmd *cobra.Command, e *env, pull func(*repo.Repo, remote.PullOptions) (*remote.PullResult, error), f *pullFlags, refs []string) error {
	if f.perObjectFsync && f.noSync {
		return usagef("--per-object-fsync and --disable-fsync exclude each other")
	}
	if (f.requireDeltas || f.dryRun) && f.noDeltas {
		return usagef("--disable-static-deltas excludes --require-static-deltas and --dry-run, which need deltas")
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	opts, err := f.options(r, refs)
	if err != nil {
		return err
	}
	opts.Logger = e.logger()
	var b *bar
	if !e.json {
		b = e.newBar()
	}
	if b != nil {
		opts.Progress = pullProgress(b)
	}
	start := time.Now()
	res, err := pull(r, opts)
	b.done()
	if err != nil {
		return ifStopped(err, "pull stopped: no ref was moved; the objects it stored are kept, so the next pull fetches only the rest")
	}
	e.refsChanged = !opts.DryRun
	if e.json {
		return e.printJSON(res)
	}
	if opts.DryRun {
		// OSTree's one line for all deltas, then one per commit. OSTree
		// counts each fallback object to fetch as a part, and its size in
		// both totals: the line is what the update will download.
		var parts int
		var size, raw uint64
		for _, p := range res.Plan {
			parts, size, raw = parts+p.Parts+p.Fallbacks, size+p.Size+p.FallbackSize, raw+p.RawSize+p.FallbackSize
		}
		fmt.Fprintf(e.stdout, "Delta update: 0/%d parts, %s/%s, %s total uncompressed\n", parts, siBytes(0), siBytes(int64(size)), siBytes(int64(raw)))
		for _, p := range res.Plan {
			what := p.Commit.String()
			if p.Ref != "" {
				what = p.Ref + ": " + what
			}
			fallbacks := ""
			if p.Fallbacks > 0 {
				fallbacks = fmt.Sprintf(", and %d fallback object%s (%s) to fetch as objects", p.Fallbacks, pluralSuffix(p.Fallbacks), siBytes(int64(p.FallbackSize)))
			}
			fmt.Fprintf(e.stdout, "%s: delta %s, %d part%s, %s to fetch, %s uncompressed%s\n", what, p.Delta, p.Parts,
				pluralSuffix(p.Parts), siBytes(int64(p.Size)), siBytes(int64(p.RawSize)), fallbacks)
		}
		return nil
	}
	// OSTree's closing line first, for scripts that read it; otree's
	// details after. One line per ref, buffered: a mirror of many refs
	// is not written line by line (a write error is kept by e.stdout and
	// reported at exit, as an unbuffered one is).
	w := bufio.NewWriter(e.stdout)
	fmt.Fprintln(w, pullSummary(res, time.Since(start)))
	for _, u := range res.Refs {
		switch {
		case !u.Changed():
			fmt.Fprintf(w, "%s: %s (unchanged)\n", u.Ref, u.New)
		case u.Old.IsZero():
			fmt.Fprintf(w, "%s: %s (new)\n", u.Ref, u.New)
		default:
			fmt.Fprintf(w, "%s: %s -> %s\n", u.Ref, u.Old.Short(), u.New)
		}
	}
	for _, d := range res.Deltas {
		fmt.Fprintf(w, "Used static delta %s\n", d)
	}
	w.Flush()
	return nil
}

// pullSummary is the line OSTree closes a pull with: the objects fetched
// (with static deltas, the parts and the objects fetched apart; from a
// repository on this machine, a pull-local or a file:// remote, the
// objects imported), those taken from local caches, the bytes received in
// whole KiB and the whole seconds taken (left out, as OSTree does, when
// nothing was received), and the bytes of content written.
func pullSummary(res *remote.PullResult, took time.Duration) string {
	var b strings.Builder
	switch {
	case res.Local:
		fmt.Fprintf(&b, "%d metadata, %d content objects imported", res.MetadataFetched, res.ContentFetched)
	case res.DeltaParts > 0:
		fmt.Fprintf(&b, "%d delta parts, %d loose fetched", res.DeltaParts, res.MetadataFetched+res.ContentFetched)
	default:
		fmt.Fprintf(&b, "%d metadata, %d content objects fetched", res.MetadataFetched, res.ContentFetched)
	}
	if res.ObjectsFromCaches > 0 {
		fmt.Fprintf(&b, " (%d meta, %d content local)", res.MetadataFromCaches, res.ContentFromCaches)
	}
	// A local source is read, not received from, whatever it counted.
	if n := res.BytesFetched; n > 0 && !res.Local {
		received := fmt.Sprintf("%d B", n)
		if n >= 1024 {
			received = fmt.Sprintf("%d KiB", n/1024)
		}
		fmt.Fprintf(&b, "; %s transferred in %d seconds", received, int64(took/time.Second))
	}
	fmt.Fprintf(&b, "; %s content written", siBytes(res.ContentWritten))
	return b.String()
}

// pullProgress draws a pull's progress on b, with an estimate of the time
// left once the walk has found every object to fetch.
func pullProgress(b *bar) func(remote.PullProgress) {
	var since time.Time
	var before int64 // objects fetched while scanning
	return func(p remote.PullProgress) {
		if p.Scanning {
			b.draw("Scanning", p.Fetched, fmt.Sprintf("of %d objects", p.Needed), p.Bytes)
			return
		}
		if since.IsZero() {
			since, before = time.Now(), p.Fetched
		}
		left := eta(p.Fetched-before, p.Needed-before, time.Since(since))
		b.drawETA("Receiving", p.Fetched, fmt.Sprintf("of %d objects", p.Needed), p.Bytes, left)
	}
}
