package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/otree/otree/internal/canon"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/sign"
)

// DeltasKey is the summary metadata key that lists the static deltas a
// repository serves (docs/DELTAS.md).
const DeltasKey = "otree.static-deltas"

const deltasVersion = 1

// DeltaRef is a static delta a summary lists: its name and the BLAKE3 of
// its superblock, which a client checks before trusting the superblock.
type DeltaRef struct {
	Name       delta.Name `json:"name"`
	Superblock repo.ID    `json:"superblock"`
}

// String is the delta's name.
func (d DeltaRef) String() string { return d.Name.String() }

// encodeDeltas encodes the value of DeltasKey:
//
//	u8 version (1) · uvarint n (>= 1) · n × ( id from, id to, id superblock )
//
// sorted by name (Name.String, bytewise), each name once.
func encodeDeltas(ds []DeltaRef) []byte {
	b := []byte{deltasVersion}
	b = binary.AppendUvarint(b, uint64(len(ds)))
	for _, d := range ds {
		b = append(b, d.Name.From[:]...)
		b = append(b, d.Name.To[:]...)
		b = append(b, d.Superblock[:]...)
	}
	return b
}

// decodeDeltas decodes the value of DeltasKey strictly.
func decodeDeltas(b []byte) ([]DeltaRef, error) {
	if len(b) < 1 || b[0] != deltasVersion {
		return nil, fmt.Errorf("unsupported static delta index version")
	}
	d := canon.NewDecoder(b, errSummary)
	d.Raw(1) // the version, checked above
	n := d.Count(96)
	if d.Err() == nil && n == 0 {
		d.Fail("empty static delta index")
	}
	out := make([]DeltaRef, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		var e DeltaRef
		e.Name.From = d.ID()
		e.Name.To = d.ID()
		e.Superblock = d.ID()
		if d.Err() != nil {
			break
		}
		switch {
		case e.Name.To.IsZero() || e.Name.From == e.Name.To:
			d.Fail("delta %d: to-commit is zero or equal to the from-commit", i)
		case e.Superblock.IsZero():
			d.Fail("delta %s: zero superblock checksum", e.Name)
		case i > 0 && out[i-1].Name.String() >= e.Name.String():
			d.Fail("deltas not sorted or duplicated at %s", e.Name)
		}
		out = append(out, e)
	}
	return out, d.End()
}

// listDeltas lists the deltas stored in r with their superblock sums.
func listDeltas(r *repo.Repo) ([]DeltaRef, error) {
	names, err := delta.List(r)
	if err != nil {
		return nil, err
	}
	var out []DeltaRef
	for _, n := range names {
		_, data, err := delta.ReadSuperblock(r, n)
		if err != nil {
			return nil, fmt.Errorf("static delta %s: %w", n, err)
		}
		out = append(out, DeltaRef{Name: n, Superblock: repo.Sum(data)})
	}
	return out, nil
}

// lookupDelta returns the delta the summary lists under n.
func (s *Summary) lookupDelta(n delta.Name) (DeltaRef, bool) {
	for _, d := range s.Deltas {
		if d.Name == n {
			return d, true
		}
	}
	return DeltaRef{}, false
}

// summarySource remembers the summary a pull resolved its refs with, so
// that choosing deltas costs no second request.
type summarySource struct {
	source
	sum  *Summary
	done bool
}

func (s *summarySource) summary(ctx context.Context) (*Summary, error) {
	if !s.done {
		sum, err := s.source.summary(ctx)
		if err != nil {
			return nil, err
		}
		s.sum, s.done = sum, true
	}
	return s.sum, nil
}

// applyDeltas pulls by static delta every target the remote's summary
// offers one for, staging its objects in the pull's transaction, and
// returns the targets left for the object walk. A delta is used from a
// commit stored here complete: the ref's current commit (REMOTE:BRANCH or
// the mirrored branch), else the local branch of the same name; or from
// scratch when neither exists. Only plain pulls of a server's commits use
// deltas (not --depth, --commit-metadata-only or local sources).
func (p *puller) applyDeltas(targets []target, refName func(string) string) ([]target, error) {
	ss, ok := p.src.(*summarySource)
	if !ok || p.opts.DisableStaticDeltas || p.opts.CommitMetadataOnly || p.opts.Depth != 0 || len(p.opts.Subpaths) > 0 {
		return targets, p.deltaRequired(targets)
	}
	hs := httpOf(ss)
	if hs == nil || ss.sum == nil || len(ss.sum.Deltas) == 0 {
		return targets, p.deltaRequired(targets)
	}
	var rest []target
	for _, t := range targets {
		used, err := p.tryDelta(hs, ss.sum, t, refName)
		if err != nil {
			return nil, err
		}
		if !used {
			rest = append(rest, t)
		}
	}
	return rest, p.deltaRequired(rest)
}

// plan is a dry run: the delta each target not stored here would come by.
func (p *puller) plan(targets []target, refName func(string) string) (*PullResult, error) {
	res := &PullResult{Refs: []RefUpdate{}, Plan: []DeltaPlan{}}
	ss, _ := p.src.(*summarySource)
	hs := httpOf(p.src)
	for _, t := range targets {
		res.Commits = append(res.Commits, t.commit)
		if done, err := p.storedComplete(t.commit); err != nil {
			return nil, err
		} else if done {
			continue
		}
		var sb *delta.Superblock
		var ok bool
		if hs != nil && ss.sum != nil {
			var err error
			if _, sb, ok, err = p.findDelta(hs, ss.sum, t, refName); err != nil {
				return nil, err
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s: a dry run needs a static delta, and there is none to %s", p.src, t)
		}
		pl := DeltaPlan{Ref: t.branch, Commit: t.commit, Delta: sb.Name.String(), Parts: len(sb.Parts)}
		for _, part := range sb.Parts {
			pl.Size += part.Size
			pl.RawSize += part.RawSize
		}
		res.Plan = append(res.Plan, pl)
	}
	res.BytesFetched = p.src.received()
	return res, nil
}

// storedComplete tells whether commit id is stored here with everything
// it needs: neither missing nor marked partial.
func (p *puller) storedComplete(id repo.ID) (bool, error) {
	has, err := p.r.HasObject(repo.KindCommit, id)
	return has && !p.r.IsCommitPartial(id), err
}

// deltaRequired fails, with RequireStaticDeltas, when a commit the pull
// still needs came with no static delta.
func (p *puller) deltaRequired(targets []target) error {
	if !p.opts.RequireStaticDeltas {
		return nil
	}
	for _, t := range targets {
		if done, err := p.storedComplete(t.commit); err != nil {
			return err
		} else if done {
			continue
		}
		return fmt.Errorf("%s: no static delta to %s, and static deltas are required", p.src, t)
	}
	return nil
}

// findDelta finds the static delta that leads to t's commit from what is
// stored here (from the commit its ref names, else from scratch when no
// ref does), fetches and checks its superblock, and holds the commit it
// carries to checkTarget's rules. ok is false when t's commit is stored
// complete, or when no usable delta is listed or the one listed is gone.
func (p *puller) findDelta(hs *httpSource, sum *Summary, t target, refName func(string) string) (DeltaRef, *delta.Superblock, bool, error) {
	if done, err := p.storedComplete(t.commit); err != nil || done {
		return DeltaRef{}, nil, false, err
	}
	ref, ok := DeltaRef{}, false
	anyRef := false
	if t.branch != "" {
		for _, name := range []string{refName(t.branch), t.branch} {
			from, err := p.r.ReadRef(name)
			if errors.Is(err, repo.ErrNotFound) {
				continue
			}
			if err != nil {
				return ref, nil, false, err
			}
			anyRef = true
			done, err := p.storedComplete(from)
			if err != nil {
				return ref, nil, false, err
			}
			if done && from != t.commit {
				if ref, ok = sum.lookupDelta(delta.Name{From: from, To: t.commit}); ok {
					break
				}
			}
		}
	}
	if !ok && !anyRef {
		ref, ok = sum.lookupDelta(delta.Name{To: t.commit})
	}
	if !ok {
		return ref, nil, false, nil
	}
	dir := ref.Name.Rel() + "/"
	var sb *delta.Superblock
	err := hs.get(p.ctx, dir+delta.SuperblockFile, func(body io.Reader) error {
		data, err := readAll(body, delta.MaxSuperblock)
		if err != nil {
			return err
		}
		if got := repo.Sum(data); got != ref.Superblock {
			return fmt.Errorf("superblock hashes to %s, the summary says %s", got, ref.Superblock)
		}
		if sb, err = delta.DecodeSuperblock(data); err == nil && sb.Name != ref.Name {
			err = fmt.Errorf("superblock is for delta %s", sb.Name)
		}
		return err
	})
	if errors.Is(err, repo.ErrNotFound) {
		// Listed but gone (deleted since the summary was written, or a
		// mirror without deltas): the objects are fetched instead.
		p.opts.Logger.Info("static delta not found; fetching objects", "delta", ref.Name.String(), "error", err)
		return ref, nil, false, nil
	}
	if err == nil {
		if err = p.checkDeltaCommit(sb, t); err != nil {
			err = fmt.Errorf("%s: %w", hs.url(dir+delta.SuperblockFile), err)
		}
	}
	if err != nil {
		return ref, nil, false, err
	}
	return ref, sb, true, nil
}

func (p *puller) tryDelta(hs *httpSource, sum *Summary, t target, refName func(string) string) (bool, error) {
	ref, sb, ok, err := p.findDelta(hs, sum, t, refName)
	if err != nil || !ok {
		return false, err
	}
	dir := ref.Name.Rel() + "/"
	err = delta.Apply(p.ctx, p.txn, sb, func(ctx context.Context, file string, fn func(io.Reader) error) error {
		return hs.get(ctx, dir+file, fn)
	}, p.checkFile)
	if errors.Is(err, delta.ErrFromMissing) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", hs.url(dir), err)
	}
	p.opts.Logger.Debug("applied static delta", "delta", ref.Name.String(), "parts", len(sb.Parts), "objects", sb.Objects())
	p.fetched.Add(int64(sb.Objects()) + 1)
	p.deltaParts.Add(int64(len(sb.Parts)))
	p.deltas = append(p.deltas, ref.Name.String())
	if p.r.IsCommitPartial(t.commit) {
		p.complete = append(p.complete, t.commit)
	}
	return true, nil
}

// checkDeltaCommit holds the commit a superblock carries to what the
// object walk checks before staging a commit: its ref binding and, when
// the remote asks for it, a trusted signature in its detached metadata.
func (p *puller) checkDeltaCommit(sb *delta.Superblock, t target) error {
	c, err := repo.DecodeCommit(sb.Commit)
	if err != nil {
		return err
	}
	if err := p.checkTarget(t.commit, c, &t); err != nil {
		return err
	}
	vs, ok := unwrap[*verifiedSource](p.src)
	if !ok || !vs.v.Commits {
		return nil
	}
	var m repo.Metadata
	if sb.CommitMeta != nil {
		if m, err = repo.DecodeCommitMeta(sb.CommitMeta); err != nil {
			return err
		}
	}
	if _, err := sign.Verify(sb.Commit, m, vs.v.Keys); err != nil {
		return fmt.Errorf("remote %s: commit %s: %w", vs.remote, t.commit, err)
	}
	return nil
}
