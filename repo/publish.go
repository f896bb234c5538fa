package repo

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/otree/otree/internal/durable"
)

// settle ends the staging of a claimed object. One staged without error
// is recorded as ready, so that Publish may move it into the store while
// other objects are still being written; one that failed loses its claim,
// so that it can be written again (a pull retrying it, or taking it from
// another source).
func (t *Txn) settle(kind Kind, id ID, err error) {
	k := objKey{kind, id}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err != nil:
		delete(t.staged, k)
	case t.ready != nil:
		t.ready[k] = struct{}{}
	}
}

// publishHook, when set (by tests), is called in Publish once it has
// taken the objects it publishes ("taken") and once it has moved them
// into the store ("moved"), so that a test can act at those steps.
var publishHook func(step string)

// Publish makes every object staged so far durable and moves it into the
// store, as Commit does, but keeps the transaction open: writes may go on
// concurrently, objects still being written stay staged, and queued refs
// wait for Commit. A long write such as a pull calls it now and then so
// that what it has verified survives the process being killed. It returns
// how many objects it published. The transaction must have been begun
// with TxnOptions.Publishable. A WriteCommitMeta called meanwhile waits
// for it.
//
// Commit objects are published last, as in Commit; a caller publishing a
// commit before everything it needs is stored marks it partial first.
func (t *Txn) Publish() (int, error) {
	if err := t.live(); err != nil {
		return 0, err
	}
	if t.ready == nil {
		return 0, errors.New("publish: the transaction was not begun Publishable")
	}
	// WriteCommitMeta stages a commit's detached metadata again under the
	// name it had: run between the taking of keys and their sync or
	// rename, it would leave that name moved already for the next Publish
	// or Commit, and run after the rename, it would be forgotten below
	// with its new file still staged.
	t.metaMu.Lock()
	defer t.metaMu.Unlock()
	t.mu.Lock()
	var keys, commits []objKey
	for k := range t.ready {
		if k.kind == KindCommit {
			commits = append(commits, k)
		} else {
			keys = append(keys, k)
		}
		delete(t.ready, k)
	}
	t.mu.Unlock()
	keys = append(keys, commits...)
	if len(keys) == 0 {
		return 0, nil
	}
	if publishHook != nil {
		publishHook("taken")
	}
	if err := t.moveIn(keys); err != nil {
		return 0, err
	}
	if publishHook != nil {
		publishHook("moved")
	}
	// Forgotten only now: until the rename, claim must still find them
	// staged rather than absent from both places. None is staged again
	// meanwhile: claim finds it staged, and WriteCommitMeta waits.
	t.mu.Lock()
	for _, k := range keys {
		delete(t.staged, k)
	}
	t.mu.Unlock()
	return len(keys), nil
}

// PartialDir is where pulls keep the bytes of large objects whose transfer
// broke off (tmp/pull-partial), so that a retry or a later pull fetches only
// the rest. Nothing there is trusted: an object completed from it is
// verified as a whole before it is stored.
func (r *Repo) PartialDir() string { return r.Path("tmp", "pull-partial") }

// ConfigTmpExpiry is OSTree's config key for how long, in whole seconds,
// a partial download may go unwritten before it is removed; absent, a day
// (OSTree's default).
const ConfigTmpExpiry = "core.tmp-expiry-secs"

// defaultTmpExpiry is the expiry when ConfigTmpExpiry does not say.
const defaultTmpExpiry = 24 * time.Hour

// parseTmpExpiry parses a ConfigTmpExpiry value.
func parseTmpExpiry(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > int64(math.MaxInt64/time.Second) {
		return 0, errors.New("want a whole number of seconds")
	}
	return time.Duration(n) * time.Second, nil
}

// cleanPartialDownloads removes partial downloads that no pull holds
// (flock) and that were not written to for ConfigTmpExpiry, or whose
// object is stored: a pull publishes a large object before it removes its
// partial download, and one killed in between leaves bytes that nothing
// will ever fetch again, since the object is no longer missing.
func (r *Repo) cleanPartialDownloads() {
	ents, err := os.ReadDir(r.PartialDir())
	if err != nil {
		return
	}
	expiry := defaultTmpExpiry
	if v, ok := r.Config().Get(ConfigTmpExpiry); ok {
		// A value that does not parse keeps the default: this cleanup
		// is no place to fail a transaction.
		if d, err := parseTmpExpiry(v); err == nil {
			expiry = d
		}
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < expiry && !r.partialStored(e.Name()) {
			continue
		}
		durable.RemoveAbandoned(filepath.Join(r.PartialDir(), e.Name()))
	}
}

// partialStored reports whether the partial download name (<id>.file)
// is of a file object the repository holds.
func (r *Repo) partialStored(name string) bool {
	hex, ok := strings.CutSuffix(name, ".file")
	if !ok {
		return false
	}
	id, err := ParseID(hex)
	if err != nil {
		return false
	}
	has, err := r.HasObject(KindFile, id)
	return err == nil && has
}
