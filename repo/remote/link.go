package remote

import (
	"errors"
	"fmt"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// linkFile stores file object id as a hardlink of the object of a
// repository on this machine of the same mode on the same filesystem (a
// local cache holding it, else a local source), verified as a copy would
// be (repo.Txn.LinkFileVerified), unless PullOptions.NoHardlinks. It
// reports whether the object is stored; false means it is to be copied.
func (p *puller) linkFile(id repo.ID) (bool, error) {
	if p.opts.NoHardlinks {
		return false, nil
	}
	if c, ok := unwrap[*cachedSource](p.src); ok {
		for _, cs := range c.caches {
			linked, err := cs.link(p, id)
			if err != nil {
				if p.ctx.Err() != nil {
					return false, err
				}
				// Refused here, the object is still asked of the source.
				p.opts.Logger.Info("local cache object refused; fetching it", "error", err)
				continue
			}
			if linked {
				c.fileHits.Add(1)
				return true, nil
			}
		}
	}
	if s, ok := unwrap[*localSource](p.src); ok {
		return s.link(p, id)
	}
	return false, nil
}

// link stores file object id as a hardlink of s's object in p's
// transaction. It reports false, without error, when the object is to be
// copied: s cannot give links to p's repository (another mode or
// filesystem, found once), or not this one (a link the filesystem
// refuses, an inode unlike a copy). An object that fails verification is
// an error naming it in s.
func (s *localSource) link(p *puller, id repo.ID) (bool, error) {
	s.linkCheck.Do(func() {
		if err := p.txn.Linkable(s.r); err != nil {
			s.noLinks.Store(true)
			p.opts.Logger.Debug("copying objects, not linking them", "source", s.r.Path(), "reason", err)
		}
	})
	if s.noLinks.Load() {
		return false, nil
	}
	var read int64
	_, err := p.txn.LinkFileVerified(s.r, id, func(h *repo.FileHeader) error {
		read = int64(len(repo.AppendFileHeader(nil, h))) + 1 + int64(h.Size)
		return p.checkFile(id, h)
	})
	switch {
	case errors.Is(err, repo.ErrNotLinkable):
		if errors.Is(err, unix.EXDEV) {
			// Another mount of the same filesystem: no object will link.
			s.noLinks.Store(true)
		}
		p.opts.Logger.Debug("copying an object, not linking it", "reason", err)
		return false, nil
	case err != nil:
		if ce := (*repo.CorruptObjectError)(nil); errors.As(err, &ce) && ce.Path != "" {
			return false, err // names s's object already
		}
		return false, fmt.Errorf("%s: %w", s.describe(repo.KindFile, id), err)
	}
	s.bytes.Add(read)
	return true, nil
}
