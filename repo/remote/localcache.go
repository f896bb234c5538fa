package remote

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/otree/otree/repo"
)

// cachedSource takes objects from repositories on this machine
// (PullOptions.LocalCaches, OSTree's --localcache-repo) before asking the
// source. What they give is verified as anything pulled is; an object a
// cache fails to give (unreadable, or refused by the pull's checks) is
// asked of the source instead.
type cachedSource struct {
	source
	caches []*localSource
	log    *slog.Logger
	hits   atomic.Int64
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
	for _, c := range s.caches {
		if ok, _ := c.r.HasObject(kind, id); !ok {
			continue
		}
		data, err := c.readMeta(ctx, kind, id)
		if err == nil {
			// Checked here, where the source can still be asked instead.
			if got := repo.Sum(data); got != id {
				err = fmt.Errorf("%s: %w", c.describe(kind, id), &repo.CorruptObjectError{Kind: kind, ID: id, Actual: got})
			}
		}
		if err == nil {
			s.hits.Add(1)
			return data, nil
		}
		s.log.Info("local cache object refused; fetching it", "error", err)
	}
	return s.source.readMeta(ctx, kind, id)
}

func (s *cachedSource) openFile(ctx context.Context, id repo.ID, fn func(*repo.FileHeader, io.Reader) error) error {
	for _, c := range s.caches {
		if ok, _ := c.r.HasObject(repo.KindFile, id); !ok {
			continue
		}
		// fn may run again: it must be, for a source's retries.
		err := c.openFile(ctx, id, fn)
		if err == nil {
			s.hits.Add(1)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		s.log.Info("local cache object refused; fetching it", "error", err)
	}
	return s.source.openFile(ctx, id, fn)
}
