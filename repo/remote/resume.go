package remote

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
)

// partialMin is the smallest response whose bytes are kept while they
// arrive, so that a transfer that breaks continues where it stopped
// instead of starting again. Smaller objects are cheaper to fetch again
// than to keep on disk.
const partialMin = 1 << 20

// partial is the partial download of one file object: the raw bytes of
// the archive object received so far, in r.PartialDir()/<id>.file. The
// file is flock'ed while in use, so two pulls into one repository never
// write it at once. Its bytes are never trusted: the object they complete
// is verified as a whole.
type partial struct {
	dir  string
	path string
	f    *os.File // nil: nothing kept for this object
}

// open takes an existing partial download, if there is one no other pull
// holds.
func (p *partial) open() {
	f, err := os.OpenFile(p.path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	p.lock(f)
}

// create starts keeping the object's bytes, size of them, where the
// filesystem has room for them three times over: the object they make
// needs as much again, or more where it is stored uncompressed (any mode
// but archive), and on a nearly full disk the room goes to it, as a pull
// keeping nothing (OSTree's) would need no more. Failing to is no error:
// the object is then fetched as if it were small.
func (p *partial) create(size int64) {
	if err := os.MkdirAll(p.dir, durable.DirPerm); err != nil {
		return
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p.dir, &st); err != nil || st.Bavail*uint64(st.Bsize)/3 < uint64(size) {
		return
	}
	f, err := os.OpenFile(p.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	p.lock(f)
}

// testHookPartialOpened, if set, runs between a partial download's open
// and its lock.
var testHookPartialOpened func()

func (p *partial) lock(f *os.File) {
	if testHookPartialOpened != nil {
		testHookPartialOpened()
	}
	// Once locked, the file must still be at p.path: cleanup of
	// abandoned downloads (core.tmp-expiry-secs) may have removed it
	// since it was opened, and bytes kept in it would be lost.
	var a, b unix.Stat_t
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil ||
		unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(p.path, &b) != nil || a.Dev != b.Dev || a.Ino != b.Ino {
		f.Close()
		return
	}
	p.f = f
}

// size is how many bytes are kept.
func (p *partial) size() int64 {
	if p.f == nil {
		return 0
	}
	fi, err := p.f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// remove deletes the partial download: its object is stored, or its bytes
// are wrong.
func (p *partial) remove() {
	if p.f != nil {
		os.Remove(p.path)
		p.f.Close()
		p.f = nil
	}
}

// close lets go of the partial download and keeps its bytes for a later
// attempt; an empty one (nothing came, or its disk filled) is removed.
func (p *partial) close() {
	if p.f != nil {
		if p.size() == 0 {
			os.Remove(p.path)
		}
		p.f.Close()
		p.f = nil
	}
}

// appender writes what a response body yields after the bytes already
// kept. Keeping them is not what the download is for: a write that fails
// (the disk filled since create) empties the file, giving its room to the
// object, and keeps nothing more, rather than fail the object as if its
// source had.
type appender struct {
	f      *os.File
	off    int64
	failed bool
}

func (a *appender) Write(b []byte) (int, error) {
	if a.failed {
		return len(b), nil
	}
	n, err := a.f.WriteAt(b, a.off)
	a.off += int64(n)
	if err != nil {
		a.failed = true
		a.f.Truncate(0)
	}
	return len(b), nil
}

// retry says what to do after a failed attempt.
type retry int

const (
	final      retry = iota // give up
	later                   // transient: try again after the backoff
	startAgain              // the kept bytes are unusable: drop them and fetch the whole object, once
)

// openFileResumable is openFile for a source that keeps partial
// downloads. An object with kept bytes is requested with Range for the
// rest: a 206 whose Content-Range starts where the kept bytes end
// continues them, a 200 (a server that ignores Range) replaces them, and a
// 416 means they already are the whole object, or are wrong. The kept bytes
// and the rest are verified together; if that fails, the object is fetched
// once more from its first byte.
func (s *httpSource) openFileResumable(ctx context.Context, id repo.ID, fn fileFunc) error {
	rel := objectRel(repo.KindFile, id)
	u := s.url(rel)
	p := &partial{dir: s.partialDir, path: filepath.Join(s.partialDir, id.String()+".file")}
	p.open()
	delay := s.backoff
	restarted := false
	for attempt := 1; ; {
		next, err := s.tryFile(ctx, rel, id, p, fn)
		switch {
		case err == nil:
			p.remove()
			return nil
		case next == startAgain && !restarted:
			restarted = true
			s.log.Info("fetching whole object again", "url", u, "error", err)
			if p.f != nil {
				p.f.Truncate(0)
			}
			continue
		case next == later && attempt < s.attempts && ctx.Err() == nil:
			s.log.Info("retrying", "url", u, "attempt", attempt+1, "error", err)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				p.close()
				return &FetchError{URL: u, Err: ctx.Err()}
			}
			delay *= 2
			attempt++
			continue
		case next == later || ctx.Err() != nil:
			p.close() // a later pull continues from here
		default:
			p.remove()
		}
		return err
	}
}

// tryFile makes one request for a file object, continuing p's kept bytes
// when there are some.
func (s *httpSource) tryFile(ctx context.Context, rel string, id repo.ID, p *partial, fn fileFunc) (retry, error) {
	actx, timer, stalled, end := s.begin(ctx)
	defer end()
	transient := func() retry {
		if ctx.Err() != nil {
			return final
		}
		return later
	}
	have := p.size()
	u := s.url(rel)
	req, err := s.request(actx, rel, nil)
	if err != nil {
		return final, &FetchError{URL: u, Err: err}
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return transient(), &FetchError{URL: u, Err: stalled(err)}
	}
	defer resp.Body.Close()
	var kept int64 // bytes of p that precede the body
	var body io.Reader = resp.Body
	switch c := resp.StatusCode; {
	case c == http.StatusOK:
		if p.f == nil && resp.ContentLength >= partialMin {
			p.create(resp.ContentLength)
		}
	case c == http.StatusPartialContent && have > 0:
		start, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have || total <= have {
			return startAgain, &FetchError{URL: u, Status: c, Err: fmt.Errorf("asked for bytes %d- and got Content-Range %q", have, resp.Header.Get("Content-Range"))}
		}
		kept = have
	case c == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// "bytes */LENGTH": when LENGTH is what is kept, the object is
		// complete on disk (the transfer broke after its last byte).
		if total, ok := parseUnsatisfiedRange(resp.Header.Get("Content-Range")); !ok || total != have {
			return startAgain, &FetchError{URL: u, Status: c, Err: fmt.Errorf("asked for bytes %d- and the server has %s", have, resp.Header.Get("Content-Range"))}
		}
		kept, body = have, http.NoBody
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
		s.log.Debug("answered", "url", u, "status", c)
		err := &FetchError{URL: u, Status: c, Err: fmt.Errorf("server answered %s", resp.Status)}
		if retryable(c) {
			return transient(), err
		}
		return final, err
	}
	wb := s.watch(body, timer)
	start := time.Now()
	var r io.Reader = wb
	if p.f != nil {
		if err := p.f.Truncate(kept); err != nil {
			return final, &FetchError{URL: u, Err: fmt.Errorf("partial download %s: %w", p.path, err)}
		}
		r = io.MultiReader(io.NewSectionReader(p.f, 0, kept), io.TeeReader(wb, &appender{f: p.f, off: kept}))
	}
	if err := s.decodeFile(id, r, fn); err != nil {
		switch {
		case wb.err != nil:
			return transient(), &FetchError{URL: u, Err: stalled(err)}
		case kept > 0:
			// The kept bytes may be what is wrong (a crash can leave
			// garbage in a file that was never synced).
			return startAgain, &FetchError{URL: u, Err: fmt.Errorf("continuing %s: %w", p.path, err)}
		}
		return final, &FetchError{URL: u, Err: err}
	}
	// Logged as try logs every other request: -v lists each one.
	s.log.Debug("fetched", "url", u, "bytes", wb.read, "kept", kept, "took", time.Since(start).Round(time.Millisecond))
	return final, nil
}

// parseContentRange parses "bytes FIRST-LAST/LENGTH" (LENGTH may be "*",
// given as -1).
func parseContentRange(v string) (first, last, length int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, size, found := strings.Cut(rest, "/")
	a, b, found2 := strings.Cut(rng, "-")
	if !found || !found2 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	first, err1 = parseDigits(a)
	last, err2 = parseDigits(b)
	length = -1
	if size != "*" {
		length, err3 = parseDigits(size)
	}
	if err1 != nil || err2 != nil || err3 != nil || last < first || (length >= 0 && last >= length) {
		return 0, 0, 0, false
	}
	return first, last, length, true
}

// parseUnsatisfiedRange parses the "bytes */LENGTH" of a 416.
func parseUnsatisfiedRange(v string) (int64, bool) {
	size, found := strings.CutPrefix(v, "bytes */")
	if !found {
		return 0, false
	}
	n, err := parseDigits(size)
	return n, err == nil
}

// parseDigits parses a number of a Content-Range: decimal digits only, as
// RFC 9110 has them; strconv.ParseInt would take a sign too, and so a
// negative length.
func parseDigits(s string) (int64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number of bytes", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

// resumable lets an HTTP source keep partial downloads in r.
func resumable(src source, r *repo.Repo) {
	if s := httpOf(src); s != nil {
		s.partialDir = r.PartialDir()
	}
}
