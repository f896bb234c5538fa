package remote

import (
	"sync"
	"time"

	"github.com/otree/otree/repo"
)

// A pull publishes what it has verified as it goes, so that a pull killed
// half-way keeps it and a re-run fetches only the rest. Publishing costs
// two syncs, so objects are published in batches: every publishObjects
// objects, publishBytes bytes or publishEvery, whichever comes first (a
// pull-local of /usr/local/go, 16k objects, took 2.0 s in batches of 1024
// against 2.4 s in batches of 256; the byte and time bounds still cap what
// a kill loses). A large object is published at once, before its partial
// download (if it had one) is removed. Without fsync a publish is a rename
// per object, so every object is published as soon as it is staged.
const (
	publishObjects = 1024
	publishBytes   = 16 << 20
	publishEvery   = time.Second
	// publishLarge is the content size of objects published at once. It
	// is below partialMin because an archive object is at most its header
	// and one byte longer than its content (zstd is kept only when it
	// saves space), so every object kept as a partial download is larger.
	publishLarge = partialMin / 2
)

// batcher decides when a pull publishes the objects it has staged.
type batcher struct {
	mu      sync.Mutex
	objects int
	bytes   int64
	last    time.Time
	publish sync.Mutex // one Publish at a time
}

// staged counts an object of size bytes just staged in p's transaction and
// publishes everything staged when a batch is full.
func (p *puller) staged(size int64) error {
	b := &p.batch
	b.mu.Lock()
	if b.last.IsZero() {
		b.last = time.Now()
	}
	b.objects++
	b.bytes += size
	due := p.opts.NoSync || size >= publishLarge || b.objects >= publishObjects ||
		b.bytes >= publishBytes || time.Since(b.last) >= publishEvery
	b.mu.Unlock()
	if !due {
		return nil
	}
	return p.publishNow()
}

// publishNow publishes everything staged so far, as a full batch would.
func (p *puller) publishNow() error {
	b := &p.batch
	b.mu.Lock()
	b.objects, b.bytes, b.last = 0, 0, time.Now()
	b.mu.Unlock()
	b.publish.Lock()
	defer b.publish.Unlock()
	_, err := p.txn.Publish()
	return err
}

// markFetched marks a commit just fetched partial: a batch may publish it
// before the objects it needs. The pull unmarks it once they are stored.
func (p *puller) markFetched(id repo.ID) error {
	mark := p.r.MarkCommitPartial
	if p.opts.NoSync {
		// A mark needs no more durability than the objects it covers:
		// syncing it cost two fsyncs a commit, most of a deep pull's time.
		mark = p.r.MarkCommitPartialNoSync
	}
	if err := mark(id); err != nil {
		return err
	}
	p.mu.Lock()
	p.marked = append(p.marked, id)
	p.mu.Unlock()
	return nil
}

// unmarkUnpublished removes the marks of commits a failed pull fetched but
// never published, which would otherwise name commits that are not there.
func (p *puller) unmarkUnpublished() {
	for _, id := range p.marked {
		if has, err := p.r.HasObject(repo.KindCommit, id); err == nil && !has {
			p.r.UnmarkCommitPartial(id)
		}
	}
}
