package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otree/otree/internal/datetime"
	"github.com/otree/otree/internal/progress"
	"github.com/otree/otree/internal/workq"
	"github.com/otree/otree/repo"
)

// DefaultAttempts is how many times a request is tried when
// PullOptions.Attempts is not set.
const DefaultAttempts = 3

// PullOptions configure Pull and PullLocal.
type PullOptions struct {
	// Remote names the configured remote to pull from (Pull), or the
	// remote whose tracking refs receive what PullLocal copies (empty:
	// local branches, as OSTree's pull-local without --remote).
	Remote string
	// URL overrides the remote's configured url (Pull only).
	URL string
	// Refs are the branches to pull. A full 64-hex commit id pulls that
	// commit without writing a ref; BRANCH@ID pulls commit ID (full hex)
	// and writes BRANCH's ref to it, whatever the source's BRANCH names,
	// as OSTree's pull does. Empty means the remote's branches=,
	// else every branch the source lists (its summary, or for a local
	// source its refs).
	Refs []string
	// Depth is how many parents of each commit to pull as well; -1 means
	// the whole history. Parents beyond it are simply absent.
	Depth int
	// CommitMetadataOnly fetches commit objects (and their detached
	// metadata) but not their trees; such commits are marked partial.
	CommitMetadataOnly bool
	// Mirror writes refs as local branches ("os/stable") instead of
	// remote-tracking refs ("origin:os/stable"). With no Refs it pulls
	// every branch the remote lists, whatever its branches= key says,
	// as OSTree's --mirror does.
	Mirror bool
	// DisableStaticDeltas fetches objects one by one even when the
	// remote's summary offers a static delta (docs/DELTAS.md).
	DisableStaticDeltas bool

	// Subpaths, if set, limits the pull to these paths of each commit's
	// tree ("/usr/share/rpm"): the directories on the way to each, and
	// everything below it. Such commits stay marked partial (a later pull
	// without Subpaths completes them); a path a commit lacks is an error,
	// and so is a ".." component. Static deltas are not used.
	Subpaths []string
	// LocalCaches are repositories on this machine, of any mode, to take
	// objects from before fetching them (OSTree's --localcache-repo).
	// Their objects are verified as fetched ones are, and one that fails
	// is fetched instead. Static deltas' parts are still fetched whole.
	LocalCaches []string
	// SummaryCacheDir is where the summary and summary.sig of a configured
	// remote are kept between pulls, so that an unchanged summary is
	// answered with 304 Not Modified instead of its bytes (OSTree's
	// --cache-dir). Empty means the repository's tmp/cache/summaries; "-"
	// turns the cache off.
	SummaryCacheDir string
	// PerObjectFsync syncs each object and the directories it lands in,
	// never the whole filesystem (repo.TxnOptions.PerObjectFsync).
	PerObjectFsync bool
	// NoHardlinks copies every file object. Otherwise one that a local
	// source or cache of the same mode on the same filesystem holds is
	// stored as a hardlink of its object, verified all the same, as
	// OSTree's pull-local links them (repo.Txn.LinkFileVerified): fast,
	// but the two repositories then share those inodes.
	NoHardlinks bool
	// DisableVerifyBindings accepts a commit whose ref binding does not
	// list the branch it is pulled for, or whose collection binding is
	// not CollectionID.
	DisableVerifyBindings bool
	// CollectionID, if set, is the collection the requested commits must
	// belong to: one bound to another is refused (repo.CollectionBindingError);
	// one without a collection binding passes. Pull takes it from the
	// remote's collection-id key when it is empty.
	CollectionID string
	// TimestampCheck refuses to move a ref to a commit older (by commit
	// timestamp) than the one it names now: a downgrade, such as a
	// mirror serving an old tree. Equal timestamps pass, unless the
	// commit is an ancestor of the current one (as far as the history
	// stored here shows).
	TimestampCheck bool
	// TimestampCheckFrom, if not zero, is a stored commit that no
	// requested commit may be older than (or, as old, an ancestor of).
	TimestampCheckFrom repo.ID
	// BareUserOnlyFiles refuses regular files whose mode has bits
	// outside 0775 (setuid, setgid, sticky, other-writable): content a
	// bare-user-only repository refuses to hold (BareUserOnlyRefusedBits),
	// refused here in a repository of any mode.
	BareUserOnlyFiles bool
	// RequireStaticDeltas fails a pull (over HTTP) of a commit the
	// remote offers no static delta for, instead of fetching its
	// objects one by one. Commits already here need none.
	RequireStaticDeltas bool
	// Header is added to every HTTP request (authorization, say).
	Header http.Header
	// DryRun changes nothing: for each requested commit not stored here
	// the pull finds the static delta it would come by, fetches and checks
	// its superblock, and reports in PullResult.Plan what the parts would
	// transfer. A commit without one is an error, as in OSTree: only a
	// delta says beforehand how much a pull fetches.
	DryRun bool

	// Jobs is the number of objects fetched at once (default 8).
	Jobs int
	// Timeout is how long a request may wait for the response or for more
	// of its body before it fails (default 30s). Time between reads of a
	// body, the reader's, does not count.
	Timeout time.Duration
	// LowSpeedLimit and LowSpeedTime fail a transfer that keeps receiving
	// bytes, but on average fewer than LowSpeedLimit a second over
	// LowSpeedTime spent waiting for them (OSTree's low-speed-limit-bytes and
	// low-speed-time-seconds; defaults 1000 and 30s): a server trickling
	// a byte every few seconds never trips Timeout. A failed transfer is
	// retried as a stalled one is. LowSpeedLimit below 0 turns the check
	// off; when 0, the remote's keys of those names, else the defaults,
	// apply.
	LowSpeedLimit int64
	LowSpeedTime  time.Duration
	// Attempts is how many times a request is tried when the server
	// answers 408, 429 or 5xx, or the transfer breaks or stalls
	// (default DefaultAttempts).
	Attempts int
	// RetryDelay is the wait before the second attempt; it doubles for
	// each further one (default 1s).
	RetryDelay time.Duration
	// Client makes the HTTP requests (default: one with a connection pool
	// sized for Jobs, closed when the call returns). A Client given here
	// keeps its idle connections for its next requests, unless the
	// remote's TLS or proxy options make the call use a copy of its
	// transport, which is closed likewise.
	Client *http.Client
	// NoSync skips fsync; only for scratch repositories.
	NoSync bool
	// TrustedKeysRoot is the directory below which the system-wide trusted
	// keys of signature verification are looked up (default "/": the
	// files /etc/otree/trusted.ed25519 and so on, see docs/PULL.md).
	TrustedKeysRoot string

	// Progress, if set, is called every ProgressInterval while objects
	// are fetched, and once at the end. A panic in a call made while
	// fetching ends the calls and is raised again by the pull, in its
	// caller's goroutine, once fetching is over and before any ref moves.
	Progress func(PullProgress)
	// ProgressInterval is how often Progress is called (default a tenth
	// of a second).
	ProgressInterval time.Duration
	// Logger receives, at Info level, what the pull decided on the way
	// (a retry, a listed static delta the server lacks, a history ending
	// at a parent the source pruned), and at Debug level every request
	// and static delta applied (default: discarded).
	Logger *slog.Logger

	// fromMount marks a pull from a repository on a mounted filesystem
	// (PullFound): its summary is written where it is made, by create-usb,
	// and unsigned, so only the commits' signatures are checked, which
	// the mount finder requires the remote to ask for.
	fromMount bool
}

// PullProgress is a snapshot of a pull's work.
type PullProgress struct {
	// Fetched counts objects fetched, verified and staged so far.
	Fetched int64
	// Needed counts objects found missing so far; it grows while trees
	// are walked and is final once Scanning is false.
	Needed int64
	// Bytes counts bytes received (over HTTP, retries included), as
	// PullResult.BytesFetched does.
	Bytes int64
	// Scanning is true while commits and directory trees are walked; file
	// objects are fetched after.
	Scanning bool
}

// RefUpdate is one ref a pull wrote.
type RefUpdate struct {
	Ref    string  `json:"ref"`    // the ref written here: "origin:os/stable", or "os/stable" mirroring
	Branch string  `json:"branch"` // the branch at the source
	Old    repo.ID `json:"old"`    // zero if the ref is new
	New    repo.ID `json:"new"`    // the commit it names now
}

// Changed reports whether the ref moved.
func (u RefUpdate) Changed() bool { return u.Old != u.New }

// PullResult is what a pull did.
type PullResult struct {
	// Refs lists every ref written, changed or not, sorted by name.
	Refs []RefUpdate `json:"refs"`
	// Commits lists the commits pulled for the requested refs and ids.
	Commits []repo.ID `json:"commits"`
	// ObjectsFetched counts objects fetched from the source (none for a
	// source with nothing new).
	ObjectsFetched int64 `json:"objects_fetched"`
	// ObjectsFromCaches counts objects taken from LocalCaches instead.
	ObjectsFromCaches  int64 `json:"objects_from_caches,omitempty"`
	MetadataFromCaches int64 `json:"metadata_from_caches,omitempty"` // the metadata objects among them
	ContentFromCaches  int64 `json:"content_from_caches,omitempty"`  // the file objects among them
	// Local is true when the source is a repository on this machine (a
	// pull-local, or a file:// remote): its objects were copied, not
	// transferred.
	Local bool `json:"local,omitempty"`
	// BytesFetched counts the bytes received (for a Local source, read)
	// for objects, static deltas and their indexes; the config, summary
	// and refs read to resolve what to pull are left out, as OSTree
	// leaves them out of the bytes it says a pull transferred.
	BytesFetched int64 `json:"bytes_fetched"`
	// BytesWritten counts bytes written to the repository, as stored.
	BytesWritten int64 `json:"bytes_written"`
	// ContentWritten counts the bytes of BytesWritten that are file
	// objects'.
	ContentWritten int64 `json:"content_bytes_written"`
	// ContentLinked counts the file objects stored as hardlinks of a
	// local repository's (PullOptions.NoHardlinks), among those fetched
	// or taken from caches; they wrote no bytes.
	ContentLinked int64 `json:"content_linked,omitempty"`
	// MetadataFetched and ContentFetched count the objects of
	// ObjectsFetched fetched one by one: metadata (commits, their detached
	// metadata, dirtrees, dirmetas, tombstones) and files. The others came
	// in the DeltaParts parts of static deltas.
	MetadataFetched int64 `json:"metadata_fetched"`
	ContentFetched  int64 `json:"content_fetched"`       // file objects fetched one by one
	DeltaParts      int64 `json:"delta_parts,omitempty"` // static delta parts fetched
	// Deltas names the static deltas used, if any.
	Deltas []string `json:"deltas,omitempty"`
	// Plan is what a DryRun would fetch, a delta per commit.
	Plan []DeltaPlan `json:"plan,omitempty"`
}

// DeltaPlan is the static delta a dry run found for one commit.
type DeltaPlan struct {
	Ref     string  `json:"ref,omitempty"` // the branch at the source; "" for a commit id
	Commit  repo.ID `json:"commit"`        // the commit to pull
	Delta   string  `json:"delta"`         // the delta's name: "FROM-TO", or "TO" from scratch
	Parts   int     `json:"parts"`         // how many parts it has
	Size    uint64  `json:"size"`          // bytes the parts transfer
	RawSize uint64  `json:"raw_size"`      // bytes they decompress to
	// Fallbacks counts the fallback objects the delta leaves out that are
	// not stored here, fetched as objects; FallbackSize sums their
	// content sizes.
	Fallbacks    int    `json:"fallbacks,omitempty"`
	FallbackSize uint64 `json:"fallback_size,omitempty"` // content bytes of those objects
}

func (o *PullOptions) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// withClient gives opts a client of its own when the caller gave none.
// release closes the idle connections of any transport made here or by
// withTransport: once the call that made them returns no one can reuse
// them, and each would hold a socket and two goroutines until the
// transport's idle timeout, piling up in a process that pulls often.
// The caller's own transport, if any, is left alone.
func withClient(opts *PullOptions) (release func()) {
	var callers http.RoundTripper
	if opts.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opts.Jobs
		tr.OnProxyConnectResponse = proxyRefusal
		opts.Client = &http.Client{Transport: tr, CheckRedirect: opts.redirect}
	} else {
		callers = opts.Client.Transport
	}
	return func() {
		if tr, ok := opts.Client.Transport.(*http.Transport); ok && tr != callers && tr != http.DefaultTransport {
			tr.CloseIdleConnections()
		}
	}
}

// redirect is the redirect policy of the client a pull makes: the headers
// given with Header (tokens, often) go only to the host they were given
// for, as Go's client treats Authorization, and none of them after a
// downgrade from https. The jar's cookies are added after this runs, by
// their own host and path rules (docs/PULL.md §6).
func (o *PullOptions) redirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	first := via[0].URL
	if req.URL.Host != first.Host || first.Scheme == "https" && req.URL.Scheme != "https" {
		for k := range o.Header {
			req.Header.Del(k)
		}
		if first.Scheme == "https" && req.URL.Scheme != "https" {
			req.Header.Del("Authorization")
			req.Header.Del("Cookie")
		}
	}
	return nil
}

// fileFunc receives a file object in its archive form (docs/FORMAT.md
// §6.1): its header, compression byte and payload. It may run more than
// once for one object, as a source retries.
type fileFunc func(h *repo.FileHeader, comp byte, payload io.Reader) error

// source is where a pull reads objects: a server or a local repository.
type source interface {
	fmt.Stringer
	// check refuses a source that is not a repository pull can read.
	check(ctx context.Context) error
	// summary returns the source's summary, or nil if it has none.
	summary(ctx context.Context) (*Summary, error)
	ref(ctx context.Context, branch string) (repo.ID, error)
	listRefs(ctx context.Context) ([]repo.Ref, error)
	// readMeta returns the bytes of a metadata object, unverified.
	readMeta(ctx context.Context, kind repo.Kind, id repo.ID) ([]byte, error)
	// openFile hands fn a file object in its archive form, unverified.
	openFile(ctx context.Context, id repo.ID, fn fileFunc) error
	// describe names an object's location for error messages.
	describe(kind repo.Kind, id repo.ID) string
	received() int64
}

// openSource opens the source a URL names; close releases it.
func openSource(raw string, opts *PullOptions) (src source, close func(), err error) {
	if err := validateURL(raw); err != nil {
		return nil, nil, err
	}
	u, _ := url.Parse(raw)
	if u.Scheme == "file" {
		sr, err := repo.Open(u.Path)
		if err != nil {
			return nil, nil, err
		}
		sr.SetVerify(false) // the pull verifies every object itself
		return &localSource{r: sr}, func() { sr.Close() }, nil
	}
	lowLimit, lowTime := opts.LowSpeedLimit, opts.LowSpeedTime
	if lowLimit == 0 {
		lowLimit = defaultLowSpeedLimit
	}
	if lowTime <= 0 {
		lowTime = defaultLowSpeedTime
	}
	return &httpSource{base: u, client: opts.Client, header: opts.Header, timeout: opts.Timeout, attempts: opts.Attempts,
		lowLimit: lowLimit, lowTime: lowTime, backoff: opts.RetryDelay, log: opts.Logger}, func() {}, nil
}

// useContentURL makes an HTTP source fetch objects and static deltas from
// raw, an HTTP(S) URL; the summary, its signature, config and refs still
// come from the remote's url, and every object is verified as ever.
func useContentURL(src source, raw string) error {
	hs, ok := src.(*httpSource)
	if !ok {
		return fmt.Errorf("contenturl %s: only an http(s) url can have a separate content url", shownRawURL(raw))
	}
	u, err := parseContentURL(raw)
	if err != nil {
		return err
	}
	hs.content = u
	return nil
}

// Pull fetches commits from the remote opts.Remote (an archive repository
// served over HTTP, or a file:// URL) into r. Every object is verified
// (decoded strictly and hashed against its id) before it is staged;
// objects r already has are not fetched. The refs move only after every
// object is durable; on any error no ref moves.
func Pull(ctx context.Context, r *repo.Repo, opts PullOptions) (*PullResult, error) {
	opts.defaults()
	if err := ValidateRemoteName(opts.Remote); err != nil {
		return nil, err
	}
	rm, err := GetRemote(r, opts.Remote)
	if err != nil && (opts.URL == "" || !errors.Is(err, ErrRemoteNotFound)) {
		return nil, err
	}
	everything := len(opts.Refs) == 0 && (rm == nil || len(rm.Branches) == 0)
	u := opts.URL
	if rm != nil {
		if u == "" {
			u = rm.URL
		}
		if len(opts.Refs) == 0 && !opts.Mirror {
			// Configured branches are names only: BRANCH@COMMIT is for
			// a caller's request, as in OSTree.
			for _, b := range rm.Branches {
				if err := validateBranch(b); err != nil {
					return nil, fmt.Errorf("remote %s: branches: %w", rm.Name, err)
				}
			}
			opts.Refs = rm.Branches
		}
		if opts.CollectionID == "" {
			opts.CollectionID = r.RemoteCollectionID(rm.Name)
		}
		if err := checkPullable(rm); err != nil {
			return nil, err
		}
	}
	src, closeSrc, err := openRemote(r, opts.Remote, rm, u, &opts)
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	src, closeCaches, err := openCaches(src, opts.LocalCaches, opts.Logger)
	if err != nil {
		return nil, err
	}
	defer closeCaches()
	name := func(branch string) string {
		if opts.Mirror {
			return branch
		}
		return opts.Remote + ":" + branch
	}
	res, err := pull(ctx, r, src, name, &opts)
	if err == nil && opts.Mirror && everything {
		err = copySummary(ctx, r, src, res, &opts)
	}
	return res, err
}

// PullLocal copies commits from the repository at srcPath (any mode) into
// r, verified as Pull verifies. Refs land as local branches, or under
// opts.Remote when it is set.
func PullLocal(ctx context.Context, r *repo.Repo, srcPath string, opts PullOptions) (*PullResult, error) {
	opts.defaults()
	if opts.Remote != "" {
		if err := ValidateRemoteName(opts.Remote); err != nil {
			return nil, err
		}
	}
	sr, err := repo.Open(srcPath)
	if err != nil {
		return nil, err
	}
	defer sr.Close()
	sr.SetVerify(false) // the pull verifies every object itself
	name := func(branch string) string {
		if opts.Remote == "" {
			return branch
		}
		return opts.Remote + ":" + branch
	}
	src, closeCaches, err := openCaches(&localSource{r: sr}, opts.LocalCaches, opts.Logger)
	if err != nil {
		return nil, err
	}
	defer closeCaches()
	return pull(ctx, r, src, name, &opts)
}

// RemoteRefs lists the branches of a configured remote: those its summary
// lists, or for a file:// remote its refs.
func RemoteRefs(ctx context.Context, r *repo.Repo, name string, opts PullOptions) ([]repo.Ref, error) {
	var refs []repo.Ref
	err := withRemote(ctx, r, name, opts, func(src source) error {
		var err error
		if _, ok := src.(*localSource); ok {
			refs, err = src.listRefs(ctx)
			return err
		}
		sum, err := src.summary(ctx)
		if err != nil {
			return err
		}
		if sum == nil {
			refs, err = src.listRefs(ctx)
			return err
		}
		refs = sum.Refs
		return nil
	})
	return refs, err
}

// RemoteSummary fetches the summary of a configured remote, its signature
// verified as a pull verifies it. A remote without one is an error
// matching ErrNoSummary and repo.ErrNotFound.
func RemoteSummary(ctx context.Context, r *repo.Repo, name string, opts PullOptions) (*Summary, error) {
	var sum *Summary
	err := withRemote(ctx, r, name, opts, func(src source) error {
		var err error
		if sum, err = src.summary(ctx); err != nil || sum != nil {
			return err
		}
		// A local source gives no summary of its own (pull reads its
		// refs), also behind a verifiedSource that checks commits only:
		// its file is read here.
		if ls, ok := unwrap[*localSource](src); ok {
			sum, err = ReadSummary(ls.r)
			return err
		}
		return &noSummaryError{fmt.Sprintf("remote %s (%s) has no summary file", name, src)}
	})
	return sum, err
}

// withRemote opens the source of the configured remote name, with the
// verification its config asks for, and hands it to fn.
func withRemote(ctx context.Context, r *repo.Repo, name string, opts PullOptions, fn func(source) error) error {
	opts.defaults()
	rm, err := GetRemote(r, name)
	if err != nil {
		return err
	}
	src, closeSrc, err := openRemote(r, name, rm, rm.URL, &opts)
	if err != nil {
		return err
	}
	defer closeSrc()
	return fn(src)
}

// openRemote opens the source at u for the remote name, configured as rm
// (nil when it is not): with rm's cookies, and when u is rm's own url its
// summary cache and content url, then with the verification rm's config
// asks for. close releases the source.
func openRemote(r *repo.Repo, name string, rm *Remote, u string, opts *PullOptions) (src source, close func(), err error) {
	release := withClient(opts)
	if rm != nil {
		if err := withCookies(r, rm.Name, opts); err != nil {
			release()
			return nil, nil, fmt.Errorf("remote %s: %w", name, err)
		}
		if err := withTransport(rm, opts); err != nil {
			release()
			return nil, nil, fmt.Errorf("remote %s: %w", name, err)
		}
		if err := withLowSpeed(rm, opts); err != nil {
			release()
			return nil, nil, fmt.Errorf("remote %s: %w", name, err)
		}
	}
	src, closeSrc, err := openSource(u, opts)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("remote %s: %w", name, err)
	}
	close = func() { closeSrc(); release() }
	if hs, ok := src.(*httpSource); ok && rm != nil {
		hs.caPath = rm.Options[KeyTLSCAPath]
		hs.clientCert = rm.Options[KeyTLSClientCertPath]
	}
	if rm != nil && u == rm.URL {
		useSummaryCache(r, src, rm, opts)
		if c := rm.ContentURL(); c != "" {
			if err := useContentURL(src, c); err != nil {
				close()
				return nil, nil, fmt.Errorf("remote %s: %w", name, err)
			}
		}
	}
	if src, err = withVerification(r, rm, src, opts); err != nil {
		close()
		return nil, nil, err
	}
	return src, close, nil
}

// target is one commit to pull and the branch it came from ("" for an id).
type target struct {
	branch string
	commit repo.ID
}

// String names the target for messages: "os/stable (commit ID)", or
// "commit ID" for one asked for by id.
func (t target) String() string {
	if t.branch == "" {
		return "commit " + t.commit.String()
	}
	return t.branch + " (commit " + t.commit.String() + ")"
}

func isFullID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// resolve finds the commits of the requested refs: from the summary when
// the source has one (one request for all), else ref by ref.
func resolve(ctx context.Context, src source, refs []string) ([]target, error) {
	if err := src.check(ctx); err != nil {
		return nil, err
	}
	sum, err := src.summary(ctx)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		var all []repo.Ref
		if sum != nil {
			all = sum.Refs
		} else if all, err = src.listRefs(ctx); err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("%s has no branches to pull", src)
		}
		out := make([]target, len(all))
		for i, ref := range all {
			out[i] = target{ref.Name, ref.Commit}
		}
		return out, nil
	}
	var out []target
	seen := map[string]bool{}
	byBranch := map[string]int{} // index in out of each branch's target
	for _, name := range refs {
		if seen[name] {
			continue
		}
		seen[name] = true
		if isFullID(name) {
			id, _ := repo.ParseID(name)
			out = append(out, target{"", id})
			continue
		}
		branch, rev, hasRev := strings.Cut(name, "@")
		if err := validateBranch(branch); err != nil {
			return nil, err
		}
		var id repo.ID
		switch {
		case hasRev:
			// The commit is the caller's choice, so the source need not
			// list the branch (OSTree's override); it is still verified
			// and its ref binding checked like any branch's.
			if !isFullID(rev) {
				return nil, fmt.Errorf("invalid %q: want BRANCH@COMMIT with the commit's full 64-hex id", name)
			}
			id, _ = repo.ParseID(rev)
		case sum != nil:
			var ok bool
			if id, ok = sum.Lookup(branch); !ok {
				return nil, fmt.Errorf("branch %q of %s: %w (its summary lists %d)", branch, src, &repo.RefNotFoundError{Ref: branch}, len(sum.Refs))
			}
		default:
			var err error
			if id, err = src.ref(ctx, branch); err != nil {
				return nil, fmt.Errorf("branch %q of %s: %w", branch, src, err)
			}
		}
		if i, ok := byBranch[branch]; ok {
			// One ref is written once: asking for the commit it gets
			// again changes nothing, asking for another is an error.
			if out[i].commit != id {
				return nil, fmt.Errorf("branch %q asked for at two commits: %s and %s", branch, out[i].commit, id)
			}
			continue
		}
		byBranch[branch] = len(out)
		out = append(out, target{branch, id})
	}
	return out, nil
}

type objKey struct {
	kind repo.Kind
	id   repo.ID
}

// puller is one pull's walk: commits, then trees and directory metadata
// recursively, collecting the file objects to fetch after.
type puller struct {
	ctx  context.Context
	r    *repo.Repo
	txn  *repo.Txn
	src  source
	opts *PullOptions
	// refName gives the ref here of a source's branch; from is the
	// commit of TimestampCheckFrom.
	refName func(string) string
	from    *repo.Commit

	mu       sync.Mutex
	seen     map[objKey]bool
	trees    map[repo.ID]*repo.DirTree // dirtrees on the way to a subpath
	files    []repo.ID                 // file objects to fetch
	complete []repo.ID                 // commits this pull completes: unmarked at the end
	marked   []repo.ID                 // commits this pull marked partial
	// srcPartial are commits whose trees this pull walks that a local
	// source has marked partial: they may lack objects there too.
	srcPartial []repo.ID
	batch      batcher
	deltas     []string                 // static deltas applied
	indexes    map[repo.ID][]DeltaRef   // delta indexes fetched, by commit
	applied    map[repo.ID]appliedDelta // static deltas applied, by commit

	fetched  atomic.Int64 // objects, those of static deltas included
	needed   atomic.Int64
	scanning atomic.Bool
	// Of fetched, the objects fetched one by one, and the static delta
	// parts fetched.
	metaFetched, fileFetched, deltaParts atomic.Int64
	// base is what the source had received once the refs were resolved.
	base int64
	// stop, while run walks, cancels the walk's context with the first
	// error a task meets (stopping).
	stop context.CancelCauseFunc
}

// received counts the bytes received since the refs were resolved: the
// config, summary and ref lookups before are not counted, as OSTree does
// not count them in the bytes a pull transferred.
func (p *puller) received() int64 { return p.src.received() - p.base }

func pull(ctx context.Context, r *repo.Repo, src source, refName func(string) string, opts *PullOptions) (*PullResult, error) {
	if opts.Depth < -1 {
		return nil, fmt.Errorf("invalid depth %d (want -1 for all, or 0 or more)", opts.Depth)
	}
	if (opts.RequireStaticDeltas || opts.DryRun) && opts.DisableStaticDeltas {
		return nil, errors.New("DisableStaticDeltas contradicts RequireStaticDeltas and DryRun, which need deltas")
	}
	whole := false
	for _, sp := range opts.Subpaths {
		clean, err := repo.TreePath(sp)
		if err != nil {
			return nil, fmt.Errorf("subpath %w", err)
		}
		whole = whole || clean == "/"
	}
	if whole {
		// A subpath of the root covers the whole tree: pull as a full
		// pull does, so that the commits are complete and unmarked.
		o := *opts
		o.Subpaths = nil
		opts = &o
	}
	var from *repo.Commit
	if !opts.TimestampCheckFrom.IsZero() {
		var err error
		if from, err = r.ReadCommit(opts.TimestampCheckFrom); err != nil {
			return nil, fmt.Errorf("timestamp check: %w", err)
		}
	}
	src = &summarySource{source: src}
	targets, err := resolve(ctx, src, opts.Refs)
	if err != nil {
		return nil, err
	}
	txn, err := r.Begin(ctx, repo.TxnOptions{NoSync: opts.NoSync, Publishable: true, PerObjectFsync: opts.PerObjectFsync})
	if err != nil {
		return nil, err
	}
	defer txn.Abort()
	if err := storedTargets(ctx, r, txn, src, targets); err != nil {
		return nil, err
	}
	resumable(src, r)
	p := &puller{ctx: ctx, r: r, txn: txn, src: src, opts: opts, refName: refName, from: from,
		seen: map[objKey]bool{}, trees: map[repo.ID]*repo.DirTree{}, base: src.received()}
	done := false
	defer func() {
		if !done {
			p.unmarkUnpublished()
		}
	}()
	if opts.DryRun {
		return p.plan(targets, refName)
	}
	p.scanning.Store(true)
	stop := progress.EveryFor(opts.ProgressInterval, p.report())
	walk, err := p.applyDeltas(targets, refName)
	if err == nil {
		err = p.run(walk)
	}
	stop()
	if f := p.report(); f != nil {
		f()
	}
	if err != nil {
		return nil, err
	}

	st := txn.Stats()
	res := &PullResult{Refs: []RefUpdate{}, ObjectsFetched: p.fetched.Load(), BytesFetched: p.received(),
		BytesWritten: st.Bytes, ContentWritten: st.FileBytes, ContentLinked: st.LinkedFiles, Deltas: p.deltas,
		MetadataFetched: p.metaFetched.Load(), ContentFetched: p.fileFetched.Load(), DeltaParts: p.deltaParts.Load()}
	_, res.Local = unwrap[*localSource](src)
	if c, ok := unwrap[*cachedSource](src); ok {
		metaHits, fileHits := c.metaHits.Load(), c.fileHits.Load()
		res.ObjectsFromCaches = metaHits + fileHits
		res.MetadataFromCaches, res.ContentFromCaches = metaHits, fileHits
		res.ObjectsFetched -= res.ObjectsFromCaches
		res.MetadataFetched -= metaHits
		res.ContentFetched -= fileHits
	}
	// Everything is published and the commits this pull completed are
	// unmarked before any ref moves, so that no ref ever names a commit
	// still marked partial, wherever the process dies.
	if _, err := txn.Publish(); err != nil {
		return nil, err
	}
	if err := r.UnmarkCommitsPartial(p.complete); err != nil {
		return nil, err
	}
	lk, err := r.LockRefs(ctx)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	for _, t := range targets {
		res.Commits = append(res.Commits, t.commit)
		if t.branch == "" {
			continue
		}
		name := refName(t.branch)
		old, err := r.ReadRef(name)
		if err != nil && !errors.Is(err, repo.ErrNotFound) {
			return nil, err
		}
		if p.opts.TimestampCheck && err == nil && old != t.commit {
			// Again under the refs lock: another pull may have moved
			// the ref since the walk checked it.
			c, err := r.ReadCommit(t.commit)
			if err != nil {
				return nil, err
			}
			if err := p.notOlder(name, old, t.commit, c); err != nil {
				return nil, fmt.Errorf("%s: %w", p.src, err)
			}
		}
		// A ref that already names the commit is left alone: rewriting
		// every unchanged ref of a mirror costs a rename and a directory
		// sync each, and a re-pull then takes as long as the first.
		if err != nil || old != t.commit {
			if err := txn.SetRef(name, t.commit); err != nil {
				return nil, err
			}
		}
		res.Refs = append(res.Refs, RefUpdate{Ref: name, Branch: t.branch, Old: old, New: t.commit})
	}
	if err := txn.Commit(); err != nil {
		return nil, err
	}
	done = true
	sort.Slice(res.Refs, func(i, j int) bool { return res.Refs[i].Ref < res.Refs[j].Ref })
	return res, nil
}

func (p *puller) report() func() {
	if p.opts.Progress == nil {
		return nil
	}
	return func() {
		p.opts.Progress(PullProgress{Fetched: p.fetched.Load(), Needed: p.needed.Load(),
			Bytes: p.received(), Scanning: p.scanning.Load()})
	}
}

type task = workq.Task[struct{}]

func (p *puller) run(targets []target) (err error) {
	// The first task to fail stops the fetches in flight, which would
	// otherwise each run to its end (a server sending endless bodies,
	// one limit's worth after another) for a pull that has failed.
	outer := p.ctx
	ctx, stop := context.WithCancelCause(outer)
	p.ctx, p.stop = ctx, stop
	defer func() {
		if err != nil && context.Cause(ctx) != nil {
			err = context.Cause(ctx) // the failure, not what it stopped
		}
		stop(nil)
		p.ctx, p.stop = outer, nil
		err = p.explainSourcePartial(err)
	}()
	var q workq.Queue[struct{}]
	if err := p.walkCommits(&q, targets); err != nil {
		return err
	}
	noScratch := func() struct{} { return struct{}{} }
	if err := q.Run(p.ctx, p.opts.Jobs, noScratch); err != nil {
		return err
	}
	p.scanning.Store(false)
	var files workq.Queue[struct{}]
	for _, id := range p.files {
		files.Push(p.fileTask(id))
	}
	return files.Run(p.ctx, p.opts.Jobs, noScratch)
}

// explainSourcePartial says, when err is an object missing from a local
// source, which of the commits walked that source has marked partial:
// the object was never there, and the commit must be completed there (or
// pulled from elsewhere) first.
func (p *puller) explainSourcePartial(err error) error {
	var me *repo.ObjectMissingError
	if err == nil || !errors.As(err, &me) || me.Kind == repo.KindCommit {
		return err
	}
	p.mu.Lock()
	ids := slices.Clone(p.srcPartial)
	p.mu.Unlock()
	switch len(ids) {
	case 0:
		return err
	case 1:
		return fmt.Errorf("%w (commit %s is partial in %s: complete it there first)", err, ids[0], p.src)
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id.String()
	}
	return fmt.Errorf("%w (commits %s are partial in %s: complete them there first)", err, strings.Join(names, ", "), p.src)
}

// stopping makes t, when it fails during run, stop the walk's other tasks.
func (p *puller) stopping(t task) task {
	return func(w struct{}) error {
		err := t(w)
		if err != nil && p.stop != nil {
			p.stop(err)
		}
		return err
	}
}

// visit reports whether kind/id is seen for the first time.
func (p *puller) visit(kind repo.Kind, id repo.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := objKey{kind, id}
	if p.seen[k] {
		return false
	}
	p.seen[k] = true
	return true
}

// fetchMeta fetches a metadata object and checks it before staging it:
// its bytes must hash to id and decode strictly (which rejects, among
// others, dirtree names such as ".." or "a/b").
func (p *puller) fetchMeta(kind repo.Kind, id repo.ID, decode func([]byte) error) error {
	p.needed.Add(1)
	data, err := p.src.readMeta(p.ctx, kind, id)
	if err != nil {
		return err
	}
	if got := repo.Sum(data); got != id {
		return fmt.Errorf("%s: %w", p.src.describe(kind, id), &repo.CorruptObjectError{Kind: kind, ID: id, Actual: got})
	}
	if err := decode(data); err != nil {
		// A commit refused by checkTarget is sound, only not wanted.
		be, ce, te := (*repo.RefBindingError)(nil), (*repo.CollectionBindingError)(nil), (*TimestampError)(nil)
		if errors.As(err, &be) || errors.As(err, &ce) || errors.As(err, &te) {
			return fmt.Errorf("%s: %w", p.src.describe(kind, id), err)
		}
		return fmt.Errorf("%s: %w", p.src.describe(kind, id), &repo.CorruptObjectError{Kind: kind, ID: id, Reason: err.Error()})
	}
	if _, err := p.txn.WriteMeta(kind, data); err != nil {
		return err
	}
	p.fetched.Add(1)
	p.metaFetched.Add(1)
	if kind == repo.KindCommit {
		return nil // staged only; the next batch publishes it, once marked partial
	}
	return p.staged(int64(len(data)))
}

// fetchCommitMeta copies a commit's detached metadata, if the source has
// any (its signatures live there).
func (p *puller) fetchCommitMeta(id repo.ID) error {
	data, err := p.src.readMeta(p.ctx, repo.KindCommitMeta, id)
	if errors.Is(err, repo.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	m, err := repo.DecodeCommitMeta(data)
	if err != nil {
		return fmt.Errorf("%s: %w", p.src.describe(repo.KindCommitMeta, id), &repo.CorruptObjectError{Kind: repo.KindCommitMeta, ID: id, Reason: err.Error()})
	}
	if err := p.txn.WriteCommitMeta(id, m); err != nil {
		return err
	}
	p.fetched.Add(1)
	p.metaFetched.Add(1)
	return nil
}

// walkCommits reads or fetches the requested commits and their history to
// the requested depth, one at a time (each parent is known only once its
// child is in), and returns the tree walks the commits need.
func (p *puller) walkCommits(q *workq.Queue[struct{}], targets []target) error {
	depth := map[repo.ID]int{} // how deep the history of each commit was walked
	commits := map[repo.ID]*repo.Commit{}
	for _, t := range targets {
		id, d := t.commit, p.opts.Depth
		tt := &t // only the commit the ref names is checked against it
		// The commit whose parent id is, once the walk has left t.
		var child repo.ID
		for {
			// Checked before the walk may stop: another ref of this pull
			// may have walked the same commit already.
			c := commits[id]
			if a, ok := p.applied[id]; ok && c == nil && p.opts.Depth != 0 {
				// With --depth a target that came by delta is walked
				// for its parents; its commit, staged complete in this
				// transaction, is neither fetched nor walked again.
				c = a.commit
				commits[id] = c
			}
			if c != nil {
				if err := p.checkTarget(id, c, tt); err != nil {
					return fmt.Errorf("%s: %w", p.src, err)
				}
			}
			prev, walked := depth[id]
			if walked && (prev == -1 || (d != -1 && d <= prev)) {
				break
			}
			depth[id] = d
			if c == nil {
				var err error
				if c, err = p.commit(q, id, tt); err != nil {
					// A commit read (c set) is at the source, whatever
					// below it is missing.
					if c == nil && tt == nil && errors.Is(err, repo.ErrNotFound) {
						if err := p.prunedParent(id, child, err); err != nil {
							return err
						}
						// Not walked: should another ref of this pull
						// name it, it is fetched (and fails) as a target.
						delete(depth, id)
						break
					}
					if c == nil && tt != nil && errors.Is(err, repo.ErrNotFound) {
						return p.deletedTarget(*tt, err)
					}
					return err
				}
				commits[id] = c
			}
			tt = nil
			if d == 0 || c.Parent.IsZero() {
				break
			}
			child, id = id, c.Parent
			if d > 0 {
				d--
			}
		}
	}
	for _, t := range targets {
		// Every ref this pull writes names a commit it read and checked.
		if commits[t.commit] == nil {
			return fmt.Errorf("%s: commit %s was not fetched", p.src, t.commit)
		}
	}
	return nil
}

// prunedParent decides what a parent commit the source lacks means (its
// history ends there, as in OSTree) and fails the pull when it is missing
// rather than deleted: a source that keeps tombstones (its config sets
// core.tombstone-commits) must have one for it, which is then kept here
// too. notFound is the error of fetching the parent, child the commit
// whose parent it is.
func (p *puller) prunedParent(id, child repo.ID, notFound error) error {
	keeps, err := keepsTombstones(p.src)
	if err != nil {
		return fmt.Errorf("%s: %w", p.src, err)
	}
	if !keeps {
		p.opts.Logger.Info("parent commit not at the source; history ends", "commit", id.String())
		return nil
	}
	p.needed.Add(1)
	data, err := p.src.readMeta(p.ctx, repo.KindTombstoneCommit, id)
	if errors.Is(err, repo.ErrNotFound) {
		return fmt.Errorf("parent %s of commit %s is missing at the source, which keeps a tombstone for every commit it deletes (%s) but has none for it: %w",
			id, child, repo.ConfigTombstoneCommits, notFound)
	}
	if err != nil {
		return err
	}
	if err := repo.CheckTombstone(data, id); err != nil {
		return fmt.Errorf("%s: %w", p.src.describe(repo.KindTombstoneCommit, id),
			&repo.CorruptObjectError{Kind: repo.KindTombstoneCommit, ID: id, Reason: err.Error()})
	}
	if err := p.txn.WriteTombstone(id); err != nil {
		return err
	}
	p.fetched.Add(1)
	p.metaFetched.Add(1)
	p.opts.Logger.Info("parent commit deleted at the source (tombstone); history ends", "commit", id.String())
	return nil
}

// deletedTarget is the error for a requested commit the source lacks:
// notFound, naming the target, and saying so when the source deleted it
// and kept a tombstone for it, or when its summary lists the commit (a
// summary written before the branch moved and the commit was pruned).
// The pull still fails: that commit was asked for.
func (p *puller) deletedTarget(t target, notFound error) error {
	if keeps, err := keepsTombstones(p.src); err == nil && keeps {
		data, err := p.src.readMeta(p.ctx, repo.KindTombstoneCommit, t.commit)
		if err == nil && repo.CheckTombstone(data, t.commit) == nil {
			return fmt.Errorf("%s: commit %s was deleted at the source (%s has a tombstone for it): %w",
				t, t.commit, p.src, notFound)
		}
	}
	if ss, ok := p.src.(*summarySource); ok && ss.sum != nil && t.branch != "" {
		if id, listed := ss.sum.Lookup(t.branch); listed && id == t.commit {
			return fmt.Errorf("%s, listed by the summary of %s, which may be stale: %w", t, p.src, notFound)
		}
	}
	return fmt.Errorf("%s: %w", t, notFound)
}

// commit reads a stored commit or fetches one, and queues the walk of its
// tree unless the commit is already complete here (or only commits are
// wanted). A commit a target requests must pass checkTarget (checked
// before a fetched commit is staged); t is nil for parents. When what
// fails is the walk of a subpath, the commit is returned with the error:
// it is at the source. A parent lacking a subpath is no error.
func (p *puller) commit(q *workq.Queue[struct{}], id repo.ID, t *target) (*repo.Commit, error) {
	stored, err := p.r.HasObject(repo.KindCommit, id)
	if err != nil {
		return nil, err
	}
	var c *repo.Commit
	if stored {
		if c, err = p.r.ReadCommit(id); err != nil {
			return nil, err
		}
		if err := p.checkTarget(id, c, t); err != nil {
			return nil, fmt.Errorf("%s: %w", p.src, err)
		}
	} else {
		err = p.fetchMeta(repo.KindCommit, id, func(b []byte) error {
			var err error
			if c, err = repo.DecodeCommit(b); err != nil {
				return err
			}
			return p.checkTarget(id, c, t)
		})
		if err == nil {
			err = p.markFetched(id)
		}
		if err == nil {
			err = p.fetchCommitMeta(id)
		}
		if err != nil {
			return nil, err
		}
	}
	partial := stored && p.r.IsCommitPartial(id)
	if s, ok := unwrap[*localSource](p.src); ok && !p.opts.CommitMetadataOnly && (!stored || partial) && s.r.IsCommitPartial(id) {
		p.mu.Lock()
		p.srcPartial = append(p.srcPartial, id)
		p.mu.Unlock()
	}
	switch {
	case p.opts.CommitMetadataOnly:
	case (!stored || partial) && len(p.opts.Subpaths) > 0:
		for _, sp := range p.opts.Subpaths {
			err := p.walkSubpath(q, id, c, sp)
			var pe *repo.PathError
			if err != nil && t == nil && errors.As(err, &pe) && pe.Commit == id {
				// A parent (--depth) may predate the path: it has
				// nothing there to fetch, and its history goes on. Only
				// a requested commit must have it.
				p.opts.Logger.Debug("subpath not in parent commit", "commit", id.String(), "subpath", sp)
				continue
			}
			if err != nil {
				// The commit is there: what is missing is below it,
				// and the caller must not take the commit for deleted.
				return c, err
			}
		}
	case !stored || partial:
		p.complete = append(p.complete, id)
		q.Push(p.metaTask(c.RootMeta))
		q.Push(p.treeTask(q, c.RootTree))
	}
	return c, nil
}

// walkSubpath fetches the directories on the way to the path sp of commit
// id, now, and queues the walk of what sp names.
func (p *puller) walkSubpath(q *workq.Queue[struct{}], id repo.ID, c *repo.Commit, sp string) error {
	clean, err := repo.TreePath(sp)
	if err != nil {
		return err
	}
	tree := c.RootTree
	q.Push(p.metaTask(c.RootMeta))
	if clean == "/" {
		q.Push(p.treeTask(q, tree))
		return nil
	}
	names := strings.Split(clean[1:], "/")
	for i, name := range names {
		t, err := p.dirTree(tree, true)
		if err != nil {
			return err
		}
		at := "/" + strings.Join(names[:i+1], "/")
		last := i == len(names)-1
		if d, ok := t.Dir(name); ok {
			tree = d.TreeID
			q.Push(p.metaTask(d.MetaID))
			if last {
				q.Push(p.treeTask(q, tree))
			}
			continue
		}
		f, isFile := t.File(name)
		if isFile && last {
			return p.wantFile(f.ID)
		}
		kind := repo.ErrNotFound
		if isFile {
			kind = repo.ErrNotDir
		}
		return fmt.Errorf("%s: subpath: %w", p.src, &repo.PathError{Commit: id, Path: clean, At: at, Err: kind})
	}
	return nil
}

// dirTree reads a stored dirtree, or fetches and stages it. Those on the
// way to a subpath are kept (keep), so a walk below reads them again
// from memory; a full walk visits each dirtree once and keeps none.
func (p *puller) dirTree(id repo.ID, keep bool) (*repo.DirTree, error) {
	p.mu.Lock()
	t := p.trees[id]
	p.mu.Unlock()
	if t != nil {
		return t, nil
	}
	has, err := p.r.HasObject(repo.KindDirTree, id)
	if err != nil {
		return nil, err
	}
	if has {
		t, err = p.r.ReadDirTree(id)
	} else {
		err = p.fetchMeta(repo.KindDirTree, id, func(b []byte) error {
			var err error
			t, err = repo.DecodeDirTree(b)
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	if keep {
		p.mu.Lock()
		p.trees[id] = t
		p.mu.Unlock()
	}
	return t, nil
}

// wantFile queues a file object for fetching unless it is seen already or
// stored.
func (p *puller) wantFile(id repo.ID) error {
	if !p.visit(repo.KindFile, id) {
		return nil
	}
	has, err := p.r.HasObject(repo.KindFile, id)
	if err != nil || has {
		return err
	}
	p.needed.Add(1)
	p.mu.Lock()
	p.files = append(p.files, id)
	p.mu.Unlock()
	return nil
}

func (p *puller) metaTask(id repo.ID) task {
	return p.stopping(func(struct{}) error {
		if !p.visit(repo.KindDirMeta, id) {
			return nil
		}
		if has, err := p.r.HasObject(repo.KindDirMeta, id); err != nil || has {
			return err
		}
		return p.fetchMeta(repo.KindDirMeta, id, func(b []byte) error {
			_, err := repo.DecodeDirMeta(b)
			return err
		})
	})
}

// treeTask walks a dirtree. One already stored is read locally and still
// walked: a pull interrupted after publishing it may not have published
// everything below it.
func (p *puller) treeTask(q *workq.Queue[struct{}], id repo.ID) task {
	return p.stopping(func(struct{}) error {
		if !p.visit(repo.KindDirTree, id) {
			return nil
		}
		t, err := p.dirTree(id, false)
		if err != nil {
			return err
		}
		for _, f := range t.Files {
			if err := p.wantFile(f.ID); err != nil {
				return err
			}
		}
		for _, d := range t.Dirs {
			q.Push(p.metaTask(d.MetaID))
			q.Push(p.treeTask(q, d.TreeID))
		}
		return nil
	})
}

func (p *puller) fileTask(id repo.ID) task {
	return p.stopping(func(struct{}) error {
		linked, err := p.linkFile(id)
		if err != nil {
			return err
		}
		if linked {
			p.fetched.Add(1)
			p.fileFetched.Add(1)
			// Nothing written: a link costs the next publish no data.
			return p.staged(0)
		}
		err = p.src.openFile(p.ctx, id, func(h *repo.FileHeader, comp byte, payload io.Reader) error {
			if err := p.checkFile(id, h); err != nil {
				return err
			}
			// An archive repository keeps a zstd payload as it came.
			if _, err := p.txn.WriteArchiveVerified(h, id, comp, payload); err != nil {
				return err
			}
			return p.staged(int64(h.Size))
		})
		if err != nil {
			return err
		}
		p.fetched.Add(1)
		p.fileFetched.Add(1)
		return nil
	})
}

// checkTarget holds a commit a target requests (t; nil for a parent,
// which is not checked) to the pull's rules: the ref binding of a commit
// pulled for a branch must list it, and with the timestamp checks it may
// not be older than the commit the ref names here, or than
// TimestampCheckFrom.
func (p *puller) checkTarget(id repo.ID, c *repo.Commit, t *target) error {
	if t == nil {
		return nil
	}
	if !p.opts.DisableVerifyBindings {
		if t.branch != "" {
			if err := repo.CheckRefBinding(id, c, t.branch); err != nil {
				return err
			}
		}
		if err := repo.CheckCollectionBinding(id, c, p.opts.CollectionID); err != nil {
			return err
		}
	}
	if p.from != nil && id != p.opts.TimestampCheckFrom {
		if err := p.notBefore("", p.opts.TimestampCheckFrom, p.from, id, c); err != nil {
			return err
		}
	}
	if !p.opts.TimestampCheck || t.branch == "" {
		return nil
	}
	ref := p.refName(t.branch)
	cur, err := p.r.ReadRef(ref)
	if errors.Is(err, repo.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return p.notOlder(ref, cur, id, c)
}

// notOlder refuses commit id (c) for ref when it is older than cur, the
// commit ref names here (TimestampCheck).
func (p *puller) notOlder(ref string, cur, id repo.ID, c *repo.Commit) error {
	if cur == id {
		return nil
	}
	cc, err := p.r.ReadCommit(cur)
	if err != nil {
		return fmt.Errorf("timestamp check of %s: %w", ref, err)
	}
	return p.notBefore(ref, cur, cc, id, c)
}

// notBefore refuses commit id (c) when it is older than cur (cc), or as old
// and one of its ancestors here: a parent made in the same second as its
// child, replayed, is as much a downgrade as an older one.
func (p *puller) notBefore(ref string, cur repo.ID, cc *repo.Commit, id repo.ID, c *repo.Commit) error {
	te := &TimestampError{Ref: ref, Commit: id, Time: c.Timestamp, Current: cur, CurrentTime: cc.Timestamp}
	switch {
	case c.Timestamp < cc.Timestamp:
		return te
	case c.Timestamp > cc.Timestamp:
		return nil
	}
	// As far as the history here goes: a commit stored without its parents
	// is no reason to refuse.
	back, err := p.r.IsAncestor(p.ctx, id, cur)
	if err != nil && !errors.Is(err, repo.ErrHistoryMissing) {
		return err
	}
	if back {
		te.Ancestor = true
		return te
	}
	return nil
}

// TimestampError refuses a commit older than the one a ref names here
// (PullOptions.TimestampCheck), or than PullOptions.TimestampCheckFrom
// (Ref is then empty), or as old and one of its ancestors.
type TimestampError struct {
	Ref         string  // the local ref it would move; "" for TimestampCheckFrom
	Commit      repo.ID // the commit refused
	Time        uint64  // Commit's timestamp, seconds since the epoch
	Current     repo.ID // the ref's commit here, or TimestampCheckFrom
	CurrentTime uint64  // Current's timestamp, seconds since the epoch
	// Ancestor: Commit is as old as Current and one of its ancestors.
	Ancestor bool
}

// Error names both commits and their times.
func (e *TimestampError) Error() string {
	what := "commit " + e.Current.String()
	if e.Ref != "" {
		what = e.Ref + "'s commit " + e.Current.String()
	}
	rel := "older than"
	if e.Ancestor {
		rel = "an ancestor of"
	}
	return fmt.Sprintf("commit %s (%s) is %s %s (%s): refusing the downgrade",
		e.Commit, commitTime(e.Time), rel, what, commitTime(e.CurrentTime))
}

// commitTime formats a commit timestamp for messages.
func commitTime(t uint64) string {
	return datetime.FormatUnix(t, time.UTC, time.RFC3339)
}

// ErrBareUserOnlyMode is matched (with errors.Is) by the error of a pull
// with PullOptions.BareUserOnlyFiles that met a regular file whose mode
// has bits outside 0775: the remote's content, not the transfer, is what
// a bare-user-only repository cannot take.
var ErrBareUserOnlyMode = errors.New("refused for bare-user-only files")

// checkFile refuses, with BareUserOnlyFiles, a regular file with bits
// outside 0775.
func (p *puller) checkFile(id repo.ID, h *repo.FileHeader) error {
	if p.opts.BareUserOnlyFiles && h.Type == repo.TypeRegular && repo.BareUserOnlyRefusedBits(h.Mode) != 0 {
		return fmt.Errorf("%s: file object %s has mode %04o, outside 0775: %w", p.src, id, h.Mode&0o7777, ErrBareUserOnlyMode)
	}
	return nil
}

// httpOf returns the HTTP source under src's wrappers, or nil for a local
// source.
func httpOf(src source) *httpSource {
	s, _ := unwrap[*httpSource](src)
	return s
}

// unwrap finds the source of type T in the chain of wrappers src starts
// (summarySource, verifiedSource).
func unwrap[T source](src source) (T, bool) {
	for {
		if s, ok := src.(T); ok {
			return s, true
		}
		switch s := src.(type) {
		case *summarySource:
			src = s.source
		case *verifiedSource:
			src = s.source
		case *cachedSource:
			src = s.source
		default:
			var zero T
			return zero, false
		}
	}
}
