package remote

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/limitread"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

// summaryCache keeps the last summary and summary.sig a remote served,
// with the validators (ETag, Last-Modified) the server sent, so that the
// next fetch is a conditional request and an unchanged summary costs a
// 304 instead of its bytes, as OSTree's summary cache does. What it gives
// is checked as a fetched summary is (signature, decoding).
type summaryCache struct {
	dir  string // where the files are kept
	name string // the remote's
	key  string // the remote's name and a hash of its URL
}

// summaryCacheKey names the cache files of remote name served at url: a
// new URL starts afresh, since another server's Last-Modified says
// nothing about this one's files.
func summaryCacheKey(name, url string) string {
	return name + "-" + repo.Sum([]byte(url)).String()[:urlHashLen]
}

// urlHashLen is how many hex digits of its URL's hash a key holds.
const urlHashLen = 16

// validators are the response headers a conditional request sends back,
// and when the cached copy was fetched.
type validators struct {
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Fetched      time.Time `json:"fetched"`
	Sum          repo.ID   `json:"sum"` // of the cached bytes: a damaged copy is not used
}

func (c *summaryCache) path(rel string) string { return filepath.Join(c.dir, c.key+"."+rel) }

// conditional returns the request headers for rel and the cached bytes
// they stand for, or nil when there is nothing usable cached.
func (c *summaryCache) conditional(rel string) (http.Header, []byte) {
	data, err := os.ReadFile(c.path(rel))
	if err != nil {
		return nil, nil
	}
	raw, err := os.ReadFile(c.path(rel) + ".http")
	var v validators
	if err != nil || json.Unmarshal(raw, &v) != nil || repo.Sum(data) != v.Sum {
		return nil, nil
	}
	// A file changed in the second it was fetched may change again within
	// that second with the same Last-Modified (and, from servers that
	// derive it from the time, the same ETag): such a copy is never
	// vouched for by a 304.
	if lm, err := http.ParseTime(v.LastModified); err == nil && !lm.Before(v.Fetched.Add(-time.Second)) {
		return nil, nil
	}
	h := http.Header{}
	if v.ETag != "" {
		h.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		h.Set("If-Modified-Since", v.LastModified)
	}
	if len(h) == 0 {
		return nil, nil
	}
	return h, data
}

// store keeps data, served for rel with the response headers resp. A
// cache that cannot be written only costs bytes next time.
func (c *summaryCache) store(rel string, data []byte, resp http.Header, fetched time.Time) {
	if os.MkdirAll(c.dir, durable.DirPerm) != nil {
		return
	}
	// Last-Modified is the server's clock, which may be behind this one:
	// the response's Date, when earlier, is when the copy was fetched, so
	// that one fetched in the second its file changed is not vouched for.
	if d, err := http.ParseTime(resp.Get("Date")); err == nil && d.Before(fetched) {
		fetched = d
	}
	v, _ := json.Marshal(validators{ETag: resp.Get("ETag"), LastModified: resp.Get("Last-Modified"), Fetched: fetched, Sum: repo.Sum(data)})
	// The bytes first: validators beside the wrong bytes would vouch for them.
	os.Remove(c.path(rel) + ".http")
	if durable.WriteFile(c.path(rel), data, 0o644, false) == nil {
		durable.WriteFile(c.path(rel)+".http", v, 0o644, false)
	}
	c.dropOtherURLs(rel)
}

// dropOtherURLs removes the copies of rel kept for the remote at URLs
// other than its present one: the key changes with the URL, and a remote
// whose URL is changed now and then would otherwise leave a summary
// behind for every URL it ever had, as OSTree's cache, kept under the
// remote's name alone, does not.
func (c *summaryCache) dropOtherURLs(rel string) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		for _, suffix := range []string{"." + rel, "." + rel + ".http"} {
			key, ok := strings.CutSuffix(e.Name(), suffix)
			if !ok || key == c.key || len(key) != len(c.name)+1+urlHashLen || !strings.HasPrefix(key, c.name+"-") {
				continue
			}
			if _, err := hex.DecodeString(key[len(c.name)+1:]); err == nil {
				os.Remove(filepath.Join(c.dir, e.Name()))
			}
		}
	}
}

// drop forgets rel, which the server no longer has, with the copies kept
// for the remote's other URLs: no store will replace them.
func (c *summaryCache) drop(rel string) {
	os.Remove(c.path(rel) + ".http")
	os.Remove(c.path(rel))
	c.dropOtherURLs(rel)
}

// fetchSmall reads the whole of rel, at most limit bytes, through the
// summary cache when rel is the summary or its signature and the source
// has one.
func (s *httpSource) fetchSmall(ctx context.Context, rel string, limit int64) ([]byte, error) {
	var data []byte
	read := func(body io.Reader) error {
		var err error
		data, err = limitread.ReadAll(body, limit)
		return err
	}
	c := s.summaries
	if c == nil || (rel != SummaryFile && rel != sign.SummarySigFile) {
		err := s.get(ctx, rel, read)
		return data, err
	}
	req, cached := c.conditional(rel)
	cond := &conditional{request: req}
	start := time.Now()
	err := s.getCond(ctx, rel, cond, read)
	if fe := (*FetchError)(nil); len(req) > 0 && errors.As(err, &fe) && refusedRequest(fe.Status) {
		// The server refused the request the cached validators made
		// (an ETag too long for it, which another server may have
		// sent): asked without them, it can answer; the copy goes.
		c.drop(rel)
		cond, start = &conditional{}, time.Now()
		err = s.getCond(ctx, rel, cond, read)
	}
	switch {
	case errors.Is(err, repo.ErrNotFound):
		c.drop(rel)
		return nil, err
	case err != nil:
		return nil, err
	case cond.notModified:
		return cached, nil
	}
	c.store(rel, data, cond.response, start)
	return data, nil
}

// refusedRequest tells whether status says the request was at fault
// (4xx), rather than the file missing (404), which needs no retry.
func refusedRequest(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusNotFound
}

// useSummaryCache gives an HTTP source of remote rm the summary cache opts
// asks for.
func useSummaryCache(r *repo.Repo, src source, rm *Remote, opts *PullOptions) {
	hs := httpOf(src)
	if hs == nil || opts.SummaryCacheDir == "-" {
		return
	}
	dir := opts.SummaryCacheDir
	if dir == "" {
		dir = filepath.Join(r.CacheDir(), "summaries")
	}
	hs.summaries = &summaryCache{dir: dir, name: rm.Name, key: summaryCacheKey(rm.Name, rm.URL)}
}
