package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/otree/otree/internal/limitread"
	"github.com/otree/otree/repo"
)

// FetchError reports a request to a remote that failed: a transport error,
// a stalled transfer, an unexpected HTTP status, or content that failed
// verification. It always names the URL.
type FetchError struct {
	URL    string // the URL requested, its password (if any) shown as ***
	Status int    // HTTP status when the server answered with a bad one, else 0
	Err    error  // the cause
}

// Error names the request and what went wrong, naming the URL once: Go's
// client says `Get "URL": ` again before a transport error.
func (e *FetchError) Error() string {
	cause := e.Err.Error()
	// Go's client escapes an IDN host that e.URL shows as written.
	if ue := (*url.Error)(nil); errors.As(e.Err, &ue) && (ue.URL == e.URL || shownRawURL(ue.URL) == e.URL) {
		cause = strings.Replace(cause, fmt.Sprintf("%s %q: ", ue.Op, ue.URL), "", 1)
	}
	return fmt.Sprintf("GET %s: %s", e.URL, cause)
}

// Unwrap returns the cause, such as a *repo.CorruptObjectError.
func (e *FetchError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, repo.ErrNotFound) true for a 404.
func (e *FetchError) Is(target error) bool {
	return target == repo.ErrNotFound && e.Status == http.StatusNotFound
}

// errStalled cancels a request whose transfer made no progress in time.
var errStalled = errors.New("stalled")

// Limits on what a server may make a client hold in memory.
const (
	maxRefFile    = 1 << 10
	maxConfigFile = repo.MaxConfigSize
	// metaAlone is how much of a metadata object a source reads without
	// entering its bigMetaGate: past it, objects are read one at a time,
	// so that a server sending endless bytes for every dirtree makes the
	// client hold one maxMetaObject, not one per parallel job.
	metaAlone = 4 << 20
)

// maxMetaObject bounds a metadata object's body, as repo refuses larger
// stored objects; a variable so that tests can lower it.
var maxMetaObject int64 = 256 << 20

// httpSource reads an archive repository served over HTTP.
type httpSource struct {
	base     *url.URL
	content  *url.URL // objects/ and deltas/, when the remote sets contenturl
	client   *http.Client
	timeout  time.Duration // longest wait for a response or the next body bytes
	attempts int
	backoff  time.Duration
	// lowLimit and lowTime: a body that brings fewer than lowLimit
	// bytes a second over lowTime fails (off when lowLimit < 0).
	lowLimit int64
	lowTime  time.Duration
	log      *slog.Logger
	// partialDir, if set, keeps the bytes of large file objects received
	// so far, so a broken transfer continues with a Range request.
	partialDir string
	header     http.Header   // added to every request
	caPath     string        // the remote's tls-ca-path, named when it did not help
	clientCert string        // the remote's tls-client-cert-path, named when refused
	summaries  *summaryCache // nil: the summary is always fetched whole
	tombstones bool          // its config sets core.tombstone-commits (read by check)
	bytes      atomic.Int64  // body bytes received, retries included
	bigMeta    bigMetaGate   // entered to read a metadata body past metaAlone
}

// bigMetaGate lets one metadata object larger than metaAlone be read at a
// time. The zero value is ready to use.
type bigMetaGate struct {
	once sync.Once
	ch   chan struct{}
}

// enter waits for the gate, or gives up with ctx's error.
func (g *bigMetaGate) enter(ctx context.Context) error {
	g.once.Do(func() { g.ch = make(chan struct{}, 1) })
	select {
	case g.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leave lets the next reader in.
func (g *bigMetaGate) leave() { <-g.ch }

func (s *httpSource) String() string { return shownURL(s.base) }

// endpoint is the URL rel is fetched from, with the user and password the
// remote's url (or contenturl) holds, if any.
func (s *httpSource) endpoint(rel string) *url.URL {
	if s.content != nil && (strings.HasPrefix(rel, "objects/") || strings.HasPrefix(rel, "deltas/")) {
		return joinURL(s.content, rel)
	}
	return joinURL(s.base, rel)
}

// joinURL is base with rel appended to its path after a '/'. Dot segments
// are removed (RFC 3986 §5.2.4), as OSTree's fetcher does, but empty ones
// are kept: a server may tell "//repo" from "/repo", and OSTree asks for
// the path as written (url.URL.JoinPath would fold "//" into "/").
func joinURL(base *url.URL, rel string) *url.URL {
	p := base.EscapedPath()
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	segs := strings.Split(strings.TrimPrefix(p+rel, "/"), "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		switch seg {
		case ".", "..":
			if seg == ".." && len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	escaped := "/" + strings.Join(out, "/")
	u := *base
	u.Path, _ = url.PathUnescape(escaped) // escaped came from EscapedPath
	u.RawPath = escaped
	return &u
}

// url is the URL of rel as errors and logs name it, without a password.
func (s *httpSource) url(rel string) string { return shownURL(s.endpoint(rel)) }

// ShownURL is the URL raw as errors and logs show it: with the password
// of a USER:PASSWORD@ in it replaced by "***", whether or not it parses.
func ShownURL(raw string) string { return shownRawURL(raw) }

// shownRawURL is shownURL of the URL raw, or, when it does not parse as
// one with a user, raw with the password of a SCHEME://USER:PASSWORD@
// prefix (or of a USER:PASSWORD@ one) replaced by "***". What parses
// with an '@' and no user has a password where url.Parse did not look
// for one: "user:pw@host", as a proxy may be given, parses as scheme
// "user" with the rest opaque, "https//u:pw@h" (a colon missing) as a
// path. A password holding an unescaped '/', '?' or '#' is hidden up to
// the last '@'.
func shownRawURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && (u.User != nil || !strings.Contains(raw, "@")) {
		return shownURL(u)
	}
	i, n := strings.Index(raw, "://"), 3
	if i < 0 {
		i, n = strings.Index(raw, "//"), 2
	}
	if i < 0 || strings.Contains(raw[:i], "@") {
		i, n = 0, 0 // no scheme: the authority starts the string
	}
	rest := raw[i+n:]
	auth := rest
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		// A password holding a '/', '?' or '#' not escaped ends the
		// authority early ("https://u:pa#ss@h" reads as port "pa"): the
		// user's part runs to the last '@'.
		at = strings.LastIndex(rest, "@")
	}
	colon := strings.Index(auth, ":")
	if at < 0 || colon < 0 || colon > at {
		return raw
	}
	return raw[:i+n+colon+1] + "***" + raw[i+n+at:]
}

// shownURL is u with its password, if any, replaced by "***", as Go's
// HTTP client shows it: errors and logs are read by others than the admin
// who wrote the password into the remote's url (OSTree hides it too).
//
// A host holding letters outside ASCII (an IDN, "bücher.example") is shown
// as written, not with its UTF-8 bytes %-escaped as url.URL.String
// escapes them: that text is neither the name the admin wrote nor the
// name looked up.
func shownURL(u *url.URL) string {
	c := *u
	if _, ok := u.User.Password(); ok {
		c.User = url.UserPassword(u.User.Username(), "***")
	}
	s := c.String()
	if _, ok := u.User.Password(); ok {
		s = strings.Replace(s, "%2A%2A%2A@", "***@", 1)
	}
	if c.Host != "" && strings.ContainsFunc(c.Host, func(r rune) bool { return r >= utf8.RuneSelf }) {
		// The host follows "SCHEME://" and "USERINFO@", if any.
		head := (&url.URL{Scheme: c.Scheme, User: c.User}).String()
		if c.User == nil {
			head += "//"
		}
		if _, ok := u.User.Password(); ok {
			head = strings.Replace(head, "%2A%2A%2A@", "***@", 1)
		}
		escaped := strings.TrimPrefix((&url.URL{Host: c.Host}).String(), "//")
		if rest, ok := strings.CutPrefix(s, head+escaped); ok {
			s = head + c.Host + rest
		}
	}
	return s
}

// get fetches rel and hands the body to fn. Statuses 408, 429 and 5xx,
// transport errors, stalls and body read errors are retried with
// exponential backoff (fn must then be safe to run again); everything
// else, including fn's own verdict on the bytes, is final. Every error is
// a *FetchError.
func (s *httpSource) get(ctx context.Context, rel string, fn func(io.Reader) error) error {
	return s.getCond(ctx, rel, nil, fn)
}

// conditional is what a conditional GET sends and learns besides the
// body: fn is not called when the server answers 304 Not Modified.
type conditional struct {
	request     http.Header // If-None-Match, If-Modified-Since
	response    http.Header // the answer's headers (ETag, Last-Modified)
	notModified bool
}

// getCond is get, with the request headers of c (when not nil) and what
// the server answered recorded in it.
func (s *httpSource) getCond(ctx context.Context, rel string, c *conditional, fn func(io.Reader) error) error {
	u := s.url(rel)
	delay := s.backoff
	for attempt := 1; ; attempt++ {
		err, transient := s.try(ctx, rel, c, fn)
		if err == nil {
			return nil
		}
		if !transient || attempt >= s.attempts || ctx.Err() != nil {
			return err
		}
		s.log.Info("retrying", "url", u, "attempt", attempt+1, "error", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return &FetchError{URL: u, Err: ctx.Err()}
		}
		delay *= 2
	}
}

// begin starts one request: a context that the stall timer cancels, the
// timer (pushed back by watchedBody as bytes arrive), stalled (which turns
// an error caused by the timer into a timeout error) and end.
func (s *httpSource) begin(ctx context.Context) (actx context.Context, timer *time.Timer, stalled func(error) error, end func()) {
	actx, cancel := context.WithCancelCause(ctx)
	timer = time.AfterFunc(s.timeout, func() { cancel(errStalled) })
	stalled = func(err error) error {
		if errors.Is(context.Cause(actx), errStalled) {
			return fmt.Errorf("timed out: no data for %s", s.timeout)
		}
		return err
	}
	return actx, timer, stalled, func() { timer.Stop(); cancel(nil) }
}

// request makes a GET of rel with the configured headers and extra.
func (s *httpSource) request(ctx context.Context, rel string, extra http.Header) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint(rel).String(), nil)
	if err == nil {
		for _, h := range []http.Header{s.header, extra} {
			for k, v := range h {
				req.Header[k] = v
			}
		}
	}
	return req, err
}

// retryable tells whether an HTTP status is worth another attempt.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

func (s *httpSource) try(ctx context.Context, rel string, c *conditional, fn func(io.Reader) error) (error, bool) {
	actx, timer, stalled, end := s.begin(ctx)
	defer end()
	var cond http.Header
	if c != nil {
		cond = c.request
	}
	u := s.url(rel)
	req, err := s.request(actx, rel, cond)
	if err != nil {
		return &FetchError{URL: u, Err: err}, false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.As(err, new(*tls.CertificateVerificationError)) {
			// Retrying cannot help; the option that can is named.
			return &FetchError{URL: u, Err: tlsError(err, s.caPath)}, false
		}
		if err, ok := clientCertError(err, s.clientCert); ok {
			return &FetchError{URL: u, Err: err}, false
		}
		if pe := (*ProxyError)(nil); errors.As(err, &pe) {
			return &FetchError{URL: u, Err: err}, retryable(pe.Status)
		}
		return &FetchError{URL: u, Err: stalled(err)}, ctx.Err() == nil
	}
	defer resp.Body.Close()
	if c != nil {
		c.response = resp.Header
		if c.notModified = resp.StatusCode == http.StatusNotModified && len(c.request) > 0; c.notModified {
			s.log.Debug("not modified", "url", u)
			return nil, false
		}
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
		c := resp.StatusCode
		s.log.Debug("answered", "url", u, "status", c)
		return &FetchError{URL: u, Status: c, Err: fmt.Errorf("server answered %s", resp.Status)}, retryable(c)
	}
	body := s.watch(resp.Body, timer)
	start := time.Now()
	if err := fn(body); err != nil {
		if body.err != nil {
			return &FetchError{URL: u, Err: stalled(err)}, ctx.Err() == nil
		}
		return &FetchError{URL: u, Err: err}, false
	}
	s.log.Debug("fetched", "url", u, "bytes", body.read, "took", time.Since(start).Round(time.Millisecond))
	return nil, false
}

// watch wraps a response body whose headers just came. The stall timer
// stops until the body is read: from here on it runs only while a read
// waits for the server.
func (s *httpSource) watch(r io.Reader, timer *time.Timer) *watchedBody {
	timer.Stop()
	return &watchedBody{r: r, timer: timer, timeout: s.timeout, n: &s.bytes,
		lowLimit: s.lowLimit, lowTime: s.lowTime}
}

// watchedBody counts bytes, runs the stall timer during each read alone,
// fails a transfer that stays below the low-speed limit, and remembers a
// read error, which makes the attempt worth retrying. Neither the stall
// timer nor the low-speed check counts the time between reads: that is
// the reader's (the kept bytes of a resumed download, a slow disk, a wait
// for other fetches), not the server's.
type watchedBody struct {
	r       io.Reader
	timer   *time.Timer
	timeout time.Duration
	n       *atomic.Int64
	read    int64 // by this body
	err     error
	// The low-speed check: bytes counts what came in the current period,
	// waited the time spent in reads of r, waiting for the server; each
	// period of lowTime waited must bring its share. Time between reads
	// is the reader's (a slow disk, other fetches), not the server's.
	lowLimit int64
	lowTime  time.Duration
	waited   time.Duration
	bytes    int64
}

func (b *watchedBody) Read(p []byte) (int, error) {
	start := time.Now()
	b.timer.Reset(b.timeout)
	n, err := b.r.Read(p)
	b.timer.Stop()
	b.n.Add(int64(n))
	b.read += int64(n)
	if err == nil && b.lowLimit >= 0 {
		b.bytes += int64(n)
		b.waited += time.Since(start)
		if d := b.waited; d >= b.lowTime {
			if float64(b.bytes) < float64(b.lowLimit)*d.Seconds() {
				err = fmt.Errorf("too slow: %d bytes in %s, under %d a second (%s, %s)",
					b.bytes, d.Round(time.Millisecond), b.lowLimit, KeyLowSpeedLimit, KeyLowSpeedTime)
			}
			b.waited, b.bytes = 0, 0
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func objectRel(kind repo.Kind, id repo.ID) string {
	s := id.String()
	return "objects/" + s[:2] + "/" + s[2:] + "." + kind.String()
}

func (s *httpSource) describe(kind repo.Kind, id repo.ID) string {
	return "GET " + s.url(objectRel(kind, id))
}

func (s *httpSource) received() int64 { return s.bytes.Load() }

// ErrOSTreeRepository is matched by the error of pulling from a URL that
// serves an OSTree repository rather than an otree one.
var ErrOSTreeRepository = errors.New("an OSTree repository, not an otree one")

// check fetches the remote's config: pulling from anything but an otree
// archive repository would fail object by object with confusing errors.
func (s *httpSource) check(ctx context.Context) error {
	return s.get(ctx, "config", func(body io.Reader) error {
		data, err := limitread.ReadAll(body, maxConfigFile)
		if err != nil {
			return err
		}
		cfg, err := repo.ParseConfig(data)
		if err != nil {
			return fmt.Errorf("not an otree repository config: %w", err)
		}
		if v, _ := cfg.Get("core.repo_version"); v != "1" {
			return fmt.Errorf("not an otree repository: core.repo_version is %q, want 1", v)
		}
		mode, _ := cfg.Get("core.mode")
		// OSTree writes its archive mode as archive-z2, which otree never
		// does, and core.indexed-deltas, which otree does not know: its
		// objects would all fail verification (other ids, other encodings).
		_, indexed := cfg.Get("core.indexed-deltas")
		if mode == "archive-z2" || indexed {
			what := "core.indexed-deltas"
			if mode == "archive-z2" {
				what = "core.mode=archive-z2"
			}
			return fmt.Errorf("%w: its config has %s, which OSTree writes; its summary and objects are in OSTree's format (SHA-256 ids), which otree cannot read: pull from it with OSTree", ErrOSTreeRepository, what)
		}
		if m, err := repo.ParseMode(mode); err != nil || m != repo.ModeArchive {
			return fmt.Errorf("the remote repository is %q, but only archive repositories can be pulled over HTTP", mode)
		}
		s.tombstones, err = cfg.Bool(repo.ConfigTombstoneCommits, false)
		return err
	})
}

func (s *httpSource) summary(ctx context.Context) (*Summary, error) {
	data, err := s.fetchSmall(ctx, SummaryFile, maxSummary)
	if errors.Is(err, repo.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sum, err := DecodeSummary(data)
	if err != nil {
		// Read without a pull's config check first (remote refs): an
		// OSTree repository is named as such rather than its summary
		// called malformed.
		if cerr := s.check(ctx); errors.Is(cerr, ErrOSTreeRepository) {
			return nil, cerr
		}
		return nil, &FetchError{URL: s.url(SummaryFile), Err: err}
	}
	return sum, nil
}

func (s *httpSource) ref(ctx context.Context, name string) (repo.ID, error) {
	var id repo.ID
	err := s.get(ctx, "refs/heads/"+name, func(body io.Reader) error {
		data, err := limitread.ReadAll(body, maxRefFile)
		if err != nil {
			return err
		}
		id, err = repo.ParseID(strings.TrimSpace(string(data)))
		if err != nil {
			return fmt.Errorf("not a ref file: %w", err)
		}
		return nil
	})
	return id, err
}

func (s *httpSource) listRefs(context.Context) ([]repo.Ref, error) {
	return nil, fmt.Errorf("%s has %w, so its refs cannot be listed; name them instead", s, ErrNoSummary)
}

func (s *httpSource) readMeta(ctx context.Context, kind repo.Kind, id repo.ID) ([]byte, error) {
	var data []byte
	err := s.get(ctx, objectRel(kind, id), func(body io.Reader) error {
		var err error
		data, err = s.readMetaBody(ctx, body)
		return err
	})
	return data, err
}

// readMetaBody reads a metadata object's body of at most maxMetaObject
// bytes, holding bigMeta for what follows its first metaAlone bytes.
func (s *httpSource) readMetaBody(ctx context.Context, body io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, metaAlone))
	if err != nil || len(data) < metaAlone {
		return data, err
	}
	// The stall timer runs only while the body is read, not while this
	// waits for other fetches.
	if err := s.bigMeta.enter(ctx); err != nil {
		return nil, err
	}
	defer s.bigMeta.leave()
	return limitread.ReadAll(io.MultiReader(bytes.NewReader(data), body), maxMetaObject)
}

// openFile fetches an archive file object and hands fn its header,
// compression byte and payload. fn verifies.
func (s *httpSource) openFile(ctx context.Context, id repo.ID, fn fileFunc) error {
	if s.partialDir != "" {
		return s.openFileResumable(ctx, id, fn)
	}
	return s.get(ctx, objectRel(repo.KindFile, id), func(body io.Reader) error {
		return s.decodeFile(id, body, fn)
	})
}

// decodeFile reads an archive file object's header and compression byte
// from r and hands fn them and the payload.
func (s *httpSource) decodeFile(id repo.ID, r io.Reader, fn fileFunc) error {
	h, comp, rest, err := repo.ReadArchiveHeader(id, r)
	if err != nil {
		return err
	}
	return fn(h, comp, rest)
}

// readRaw returns the bytes of a top-level file of a source (summary,
// summary.sig), or an error matching repo.ErrNotFound.
func readRaw(ctx context.Context, src source, name string, limit int64) ([]byte, error) {
	if s := httpOf(src); s != nil {
		return s.fetchSmall(ctx, name, limit)
	}
	s, ok := unwrap[*localSource](src)
	if !ok {
		return nil, fmt.Errorf("%s has no %s: %w", src, name, repo.ErrNotFound)
	}
	data, err := os.ReadFile(s.r.Path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", s.r.Path(name), repo.ErrNotFound)
	}
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("%s: larger than %d bytes", s.r.Path(name), limit)
	}
	return data, err
}

// localBigMetaHook, when set by a test, is called where a local source
// reads a metadata object larger than metaAlone.
var localBigMetaHook func()

// localSource reads another repository on this machine, of any mode.
type localSource struct {
	r       *repo.Repo
	bigMeta bigMetaGate  // entered to read a metadata object larger than metaAlone
	bytes   atomic.Int64 // object bytes read (encodings, headers and content)
	// noLinks is set once its objects are known not to link into the
	// pull's repository (link), which linkCheck finds out first.
	linkCheck sync.Once
	noLinks   atomic.Bool
}

func (s *localSource) String() string { return s.r.Path() }

func (s *localSource) describe(kind repo.Kind, id repo.ID) string { return s.r.ObjectPath(kind, id) }

func (s *localSource) received() int64 { return s.bytes.Load() }

func (s *localSource) check(context.Context) error { return nil }

// keepsTombstones reports whether src stores a tombstone for each commit it
// deletes (its config sets core.tombstone-commits; an HTTP source's is read
// by check): a parent it lacks without one is then missing, not pruned.
func keepsTombstones(src source) (bool, error) {
	if s := httpOf(src); s != nil {
		return s.tombstones, nil
	}
	if s, ok := unwrap[*localSource](src); ok {
		return s.r.TombstoneCommits()
	}
	return false, nil
}

// summary is nil: the refs of a local repository are read directly, never
// from a summary that may be stale.
func (s *localSource) summary(context.Context) (*Summary, error) { return nil, nil }

func (s *localSource) ref(_ context.Context, name string) (repo.ID, error) { return s.r.ReadRef(name) }

func (s *localSource) listRefs(context.Context) ([]repo.Ref, error) {
	refs, err := s.r.ListRefs("")
	if err != nil {
		return nil, err
	}
	out := refs[:0]
	for _, ref := range refs {
		if !strings.Contains(ref.Name, ":") {
			out = append(out, ref)
		}
	}
	return out, nil
}

func (s *localSource) readMeta(ctx context.Context, kind repo.Kind, id repo.ID) ([]byte, error) {
	// As from a server: a repository anyone could have written (a USB
	// stick) may hold large (sparse) files where metadata objects go,
	// read whole before they are hashed.
	if st, err := os.Lstat(s.describe(kind, id)); err == nil && st.Size() > metaAlone {
		if err := s.bigMeta.enter(ctx); err != nil {
			return nil, err
		}
		defer s.bigMeta.leave()
		if localBigMetaHook != nil {
			localBigMetaHook()
		}
	}
	data, err := s.r.ReadRaw(kind, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.describe(kind, id), err)
	}
	s.bytes.Add(int64(len(data)))
	return data, nil
}

func (s *localSource) openFile(_ context.Context, id repo.ID, fn fileFunc) error {
	h, comp, rc, err := s.r.OpenFilePayload(id)
	if err == nil {
		defer rc.Close()
		cr := &countingReader{r: rc}
		err = fn(h, comp, cr)
		s.bytes.Add(int64(len(repo.AppendFileHeader(nil, h))) + 1 + cr.n)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.describe(repo.KindFile, id), err)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
