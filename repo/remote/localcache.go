package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/otree/otree/repo"
)

// cachedSource takes objects from repositories on this machine
// (PullOptions.LocalCaches, OSTree's --localcache-repo) before asking the
// source. What they give is verified as anything pulled is, a commit's
// signature included when the remote asks for one; an object a cache
// fails to give (unreadable, or refused by the pull's checks) is asked of
// the source instead.
type cachedSource struct {
	source
	caches []*localSource
	log    *slog.Logger
	// The metadata and file objects taken from caches.
	metaHits, fileHits atomic.Int64
	// verified holds the commits whose detached metadata came from a
	// cache with them, when the remote verifies signatures.
	verified sync.Map
}

// openCaches opens the repositories at paths as caches in front of src;
// close releases them.
func openCaches(src source, paths []string, log *slog.Logger) (source, func(), error) {
	if len(paths) == 0 {
		return src, func() {}, nil
	}
	s := &cachedSource{source: src, log: log}
	closeAll := func() {
		for _, c := range s.caches {
			c.r.Close()
		}
	}
	for _, p := range paths {
		r, err := repo.Open(p)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("local cache %s: %w", p, err)
		}
		r.SetVerify(false) // the pull verifies every object itself
		s.caches = append(s.caches, &localSource{r: r})
	}
	return s, closeAll, nil
}

func (s *cachedSource) readMeta(ctx context.Context, kind repo.Kind, id repo.ID) ([]byte, error) {
	if kind == repo.KindTombstoneCommit {
		// Only the source can say that it deleted a commit.
		return s.source.readMeta(ctx, kind, id)
	}
	vs, verifying := unwrap[*verifiedSource](s.source)
	verifying = verifying && vs.v.Commits
	if verifying && kind == repo.KindCommitMeta {
		// What the commit was verified with, from a cache (taken) or the
		// source.
		if _, ok := s.verified.LoadAndDelete(id); ok {
			s.metaHits.Add(1)
		}
		return s.source.readMeta(ctx, kind, id)
	}
	for _, c := range s.caches {
		if ok, _ := c.r.HasObject(kind, id); !ok {
			continue
		}
		data, err := c.readMeta(ctx, kind, id)
		// Checked here, where the source can still be asked instead.
		switch {
		case err != nil:
		case kind == repo.KindCommitMeta:
			// Detached metadata is not named by its hash: it is only
			// decoded, and what it holds is checked as fetched metadata is.
			if _, derr := repo.DecodeCommitMeta(data); derr != nil {
				err = fmt.Errorf("%s: %w", c.describe(kind, id), &repo.CorruptObjectError{Kind: kind, ID: id, Reason: derr.Error()})
			}
		default:
			if got := repo.Sum(data); got != id {
				err = fmt.Errorf("%s: %w", c.describe(kind, id), &repo.CorruptObjectError{Kind: kind, ID: id, Actual: got})
			}
		}
		if err == nil && verifying && kind == repo.KindCommit {
			err = s.verify(ctx, vs, c, id, data)
		}
		if err == nil {
			s.metaHits.Add(1)
			return data, nil
		}
		s.log.Info("local cache object refused; fetching it", "error", err)
	}
	return s.source.readMeta(ctx, kind, id)
}

// verify holds a commit from cache c to the signature check the remote
// asks for, as the source's copy would be, with the detached metadata c
// has for it; vs keeps that metadata for the pull to store.
func (s *cachedSource) verify(ctx context.Context, vs *verifiedSource, c *localSource, id repo.ID, data []byte) error {
	raw, err := c.readMeta(ctx, repo.KindCommitMeta, id)
	if errors.Is(err, repo.ErrNotFound) {
		raw, err = nil, nil
	}
	if err != nil {
		return err
	}
	if err := vs.accept(id, data, raw); err != nil {
		return fmt.Errorf("%s: %w", c.describe(repo.KindCommit, id), err)
	}
	if raw != nil {
		s.verified.Store(id, true)
	}
	return nil
}

func (s *cachedSource) openFile(ctx context.Context, id repo.ID, fn fileFunc) error {
	for _, c := range s.caches {
		if ok, _ := c.r.HasObject(repo.KindFile, id); !ok {
			continue
		}
		// fn may run again: it must be, for a source's retries.
		err := c.openFile(ctx, id, fn)
		if err == nil {
			s.fileHits.Add(1)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		s.log.Info("local cache object refused; fetching it", "error", err)
	}
	return s.source.openFile(ctx, id, fn)
}
