package remote

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/otree/otree/internal/canon"
	"github.com/otree/otree/internal/limitread"
	"github.com/otree/otree/internal/workq"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/sign"
)

// DeltasKey is the summary metadata key that lists the static deltas a
// repository serves (docs/DELTAS.md).
const DeltasKey = "otree.static-deltas"

const deltasVersion = 1

// DeltaIndexesKey is the summary metadata key that lists, for each commit
// static deltas lead to, the BLAKE3 of its delta index (docs/DELTAS.md §5).
// Its presence is the indexed-deltas flag: a client then learns the
// deltas to the commit it wants from that commit's index, bound to the
// summary by the sum, so the summary need not list every delta.
const DeltaIndexesKey = "otree.static-delta-indexes"

const deltaIndexesVersion = 1

// DeltaRef is a static delta a summary lists: its name and the BLAKE3 of
// its superblock, which a client checks before trusting the superblock.
type DeltaRef struct {
	Name       delta.Name `json:"name"`       // the commits it leads from and to
	Superblock repo.ID    `json:"superblock"` // BLAKE3-256 of its superblock file
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

// encodeDeltaIndexes encodes the value of DeltaIndexesKey:
//
//	u8 version (1) · uvarint n (>= 1) · n × ( id to, id index )
//
// sorted by to (bytewise), each once.
func encodeDeltaIndexes(xs []delta.IndexRef) []byte {
	b := []byte{deltaIndexesVersion}
	b = binary.AppendUvarint(b, uint64(len(xs)))
	for _, x := range xs {
		b = append(b, x.To[:]...)
		b = append(b, x.Index[:]...)
	}
	return b
}

// decodeDeltaIndexes decodes the value of DeltaIndexesKey strictly.
func decodeDeltaIndexes(b []byte) ([]delta.IndexRef, error) {
	if len(b) < 1 || b[0] != deltaIndexesVersion {
		return nil, fmt.Errorf("unsupported delta index list version")
	}
	d := canon.NewDecoder(b, errSummary)
	d.Raw(1) // the version, checked above
	n := d.Count(64)
	if d.Err() == nil && n == 0 {
		d.Fail("empty delta index list")
	}
	out := make([]delta.IndexRef, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		x := delta.IndexRef{To: d.ID(), Index: d.ID()}
		if d.Err() != nil {
			break
		}
		switch {
		case x.To.IsZero():
			d.Fail("delta index %d: zero commit", i)
		case x.Index.IsZero():
			d.Fail("delta index of %s: zero checksum", x.To)
		case i > 0 && bytes.Compare(out[i-1].To[:], x.To[:]) >= 0:
			d.Fail("delta indexes not sorted or duplicated at %s", x.To)
		}
		out = append(out, x)
	}
	return out, d.End()
}

// listDeltas lists, with their superblock sums, the deltas stored in r
// that the summary names one by one: none when r's config sets
// repo.ConfigNoDeltasInSummary, else those a client without fallback support
// can apply (a delta with fallback objects is found through its index
// only, so that such a client fetches objects instead of failing on it).
func listDeltas(r *repo.Repo) ([]DeltaRef, error) {
	if off, err := r.Config().Bool(repo.ConfigNoDeltasInSummary, false); err != nil || off {
		return nil, err
	}
	names, err := delta.List(r)
	if err != nil {
		return nil, err
	}
	return deltaRefs(r, names)
}

// deltaRefs reads the superblocks of the deltas names lists, leaving out
// the ones that need a fallback object. A delta deleted since it was
// listed (static-delta delete or prune in another process, which do not
// wait for a summary) is left out too: it is gone, as the next listing
// would show.
func deltaRefs(r *repo.Repo, names []delta.Name) ([]DeltaRef, error) {
	var out []DeltaRef
	for _, n := range names {
		sb, data, err := delta.ReadSuperblock(r, n)
		if errors.Is(err, delta.ErrNoDelta) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("static delta %s: %w", n, err)
		}
		if len(sb.Fallbacks) == 0 {
			out = append(out, DeltaRef{Name: n, Superblock: repo.Sum(data)})
		}
	}
	return out, nil
}

// lookupDelta returns the delta of ds named n.
func lookupDelta(ds []DeltaRef, n delta.Name) (DeltaRef, bool) {
	for _, d := range ds {
		if d.Name == n {
			return d, true
		}
	}
	return DeltaRef{}, false
}

// lookupIndex returns the sum of the delta index the summary lists for
// commit to.
func (s *Summary) lookupIndex(to repo.ID) (repo.ID, bool) {
	i := sort.Search(len(s.DeltaIndexes), func(i int) bool { return bytes.Compare(s.DeltaIndexes[i].To[:], to[:]) >= 0 })
	if i < len(s.DeltaIndexes) && s.DeltaIndexes[i].To == to {
		return s.DeltaIndexes[i].Index, true
	}
	return repo.ID{}, false
}

// deltasTo returns the deltas the index of commit to lists, fetched once
// and checked against the sum the summary lists for it: none when the
// summary lists no index for to, or the server no longer has it.
func (p *puller) deltasTo(hs *httpSource, sum *Summary, to repo.ID) ([]DeltaRef, error) {
	if ds, ok := p.indexes[to]; ok {
		return ds, nil
	}
	want, ok := sum.lookupIndex(to)
	if !ok {
		return nil, nil
	}
	rel := delta.IndexRel(to)
	var ds []DeltaRef
	err := hs.get(p.ctx, rel, func(body io.Reader) error {
		data, err := limitread.ReadAll(body, delta.MaxIndex)
		if err != nil {
			return err
		}
		if got := repo.Sum(data); got != want {
			return fmt.Errorf("delta index hashes to %s, the summary says %s", got, want)
		}
		x, err := delta.DecodeIndex(data)
		if err != nil {
			return err
		}
		if x.To != to {
			return fmt.Errorf("it is the delta index of %s", x.To)
		}
		ds = ds[:0]
		for _, e := range x.Deltas {
			ds = append(ds, DeltaRef{Name: delta.Name{From: e.From, To: to}, Superblock: e.Superblock})
		}
		return nil
	})
	if errors.Is(err, repo.ErrNotFound) {
		// Listed but gone, as a delta can be: objects are fetched.
		p.opts.Logger.Info("static delta index not found; fetching objects", "commit", to.String(), "error", err)
		err, ds = nil, nil
	} else if err != nil {
		return nil, err // a *FetchError, which names the URL
	}
	if p.indexes == nil {
		p.indexes = map[repo.ID][]DeltaRef{}
	}
	p.indexes[to] = ds
	return ds, nil
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
// scratch when neither exists. Only pulls of a server's whole commits use
// deltas (not --commit-metadata-only, --subpath or local sources). With
// --depth a target that came by delta is still walked, for its parents.
func (p *puller) applyDeltas(targets []target, refName func(string) string) ([]target, error) {
	ss, ok := p.src.(*summarySource)
	if !ok || p.opts.DisableStaticDeltas || p.opts.CommitMetadataOnly || len(p.opts.Subpaths) > 0 {
		return targets, p.deltaRequired(targets)
	}
	hs := httpOf(ss)
	if hs == nil || ss.sum == nil || len(ss.sum.Deltas) == 0 && len(ss.sum.DeltaIndexes) == 0 {
		return targets, p.deltaRequired(targets)
	}
	var rest, walk []target
	for _, t := range targets {
		used, err := p.tryDelta(hs, ss.sum, t, refName)
		if err != nil {
			return nil, err
		}
		if !used {
			rest = append(rest, t)
		}
		if !used || p.opts.Depth != 0 {
			walk = append(walk, t)
		}
	}
	return walk, p.deltaRequired(rest)
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
		for _, f := range sb.Fallbacks {
			if has, err := p.r.HasObject(repo.KindFile, f.ID); err != nil {
				return nil, err
			} else if !has {
				pl.Fallbacks++
				pl.FallbackSize += f.Size
			}
		}
		res.Plan = append(res.Plan, pl)
	}
	res.BytesFetched = p.received()
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
// stored here (from the commit its ref names, else from the newest other
// commit stored here complete, as OSTree chooses, else from scratch when
// no ref exists), among those the summary lists or, when the summary lists
// none that is best and indexes its deltas, those the commit's delta
// index lists; fetches and checks its superblock against the sum listed,
// and holds the commit it carries to checkTarget's rules. ok is false when t's commit is stored
// complete, or when no usable delta is listed or the one listed is gone.
func (p *puller) findDelta(hs *httpSource, sum *Summary, t target, refName func(string) string) (DeltaRef, *delta.Superblock, bool, error) {
	if done, err := p.storedComplete(t.commit); err != nil || done {
		return DeltaRef{}, nil, false, err
	}
	// The deltas that would do, best first: from the commit of the ref
	// being written, else of the local branch, else of any other commit
	// stored here complete (rank len(want)); from scratch (rank
	// len(want)+1) only when neither ref exists, since a client a few
	// commits behind does better fetching objects than everything.
	var want []delta.Name
	anyRef := false
	if t.branch != "" {
		for _, name := range []string{refName(t.branch), t.branch} {
			from, err := p.r.ReadRef(name)
			if errors.Is(err, repo.ErrNotFound) {
				continue
			}
			if err != nil {
				return DeltaRef{}, nil, false, err
			}
			anyRef = true
			done, err := p.storedComplete(from)
			if err != nil {
				return DeltaRef{}, nil, false, err
			}
			if done && from != t.commit {
				want = append(want, delta.Name{From: from, To: t.commit})
			}
		}
	}
	none := len(want) + 2
	pick := func(offered []DeltaRef) (DeltaRef, int, error) {
		for i, n := range want {
			if d, ok := lookupDelta(offered, n); ok {
				return d, i, nil
			}
		}
		// OSTree's choice among the others: the newest from-commit.
		var best DeltaRef
		var bestTime uint64
		found := false
		for _, d := range offered {
			if d.Name.To != t.commit || d.Name.From.IsZero() {
				continue
			}
			done, err := p.storedComplete(d.Name.From)
			if err != nil {
				return DeltaRef{}, none, err
			}
			if !done {
				continue
			}
			c, err := p.r.ReadCommit(d.Name.From)
			if err != nil {
				return DeltaRef{}, none, err
			}
			if !found || c.Timestamp > bestTime {
				best, bestTime, found = d, c.Timestamp, true
			}
		}
		if found {
			return best, len(want), nil
		}
		if !anyRef {
			if d, ok := lookupDelta(offered, delta.Name{To: t.commit}); ok {
				return d, len(want) + 1, nil
			}
		}
		return DeltaRef{}, none, nil
	}
	// The summary's own list settles it when it holds the best delta;
	// otherwise the commit's index, which also lists the deltas the list
	// leaves out, may hold a better one.
	ref, rank, err := pick(sum.Deltas)
	if err != nil {
		return DeltaRef{}, nil, false, err
	}
	listedBy := "the summary"
	// A client without refs that has the summary's delta from scratch
	// looks further only when it has a commit a delta could start from:
	// an empty one gains nothing by the index.
	look := rank > 0 || len(want) == 0
	if look && len(want) == 0 && rank < none {
		commits, err := p.r.ListCommits(p.ctx)
		if err != nil {
			return DeltaRef{}, nil, false, err
		}
		look = len(commits) > 0
	}
	if look && len(sum.DeltaIndexes) > 0 {
		offered, err := p.deltasTo(hs, sum, t.commit)
		if err != nil {
			return DeltaRef{}, nil, false, err
		}
		better, r, err := pick(offered)
		if err != nil {
			return DeltaRef{}, nil, false, err
		}
		// The index lists every delta to the commit, the summary's too:
		// at the same rank its pick may be a newer from-commit.
		if r < none && r <= rank {
			ref, rank, listedBy = better, r, "its delta index"
		}
	}
	if rank == none {
		return ref, nil, false, nil
	}
	dir := ref.Name.Rel() + "/"
	var sb *delta.Superblock
	err = hs.get(p.ctx, dir+delta.SuperblockFile, func(body io.Reader) error {
		data, err := limitread.ReadAll(body, delta.MaxSuperblock)
		if err != nil {
			return err
		}
		if got := repo.Sum(data); got != ref.Superblock {
			return fmt.Errorf("superblock hashes to %s, %s says %s", got, listedBy, ref.Superblock)
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

// tryDelta pulls t's commit by static delta when one is offered, and
// tells whether it did. A commit another target of this pull already
// took by delta is not fetched again (its objects are staged, which
// storedComplete does not see): t is only held to its own checks.
func (p *puller) tryDelta(hs *httpSource, sum *Summary, t target, refName func(string) string) (bool, error) {
	if a, ok := p.applied[t.commit]; ok {
		if err := p.checkDeltaCommit(a.sb, t); err != nil {
			return false, fmt.Errorf("%s: %w", hs.url(a.ref.Name.Rel()+"/"+delta.SuperblockFile), err)
		}
		return true, nil
	}
	ref, sb, ok, err := p.findDelta(hs, sum, t, refName)
	if err != nil || !ok {
		return false, err
	}
	dir := ref.Name.Rel() + "/"
	err = delta.Apply(p.ctx, p.txn, sb, func(ctx context.Context, file string, fn func(io.Reader) error) error {
		// What earlier parts staged is published before the next is
		// fetched, so that a pull stopped during a long delta keeps it
		// and the next one skips those parts (not their commit, which is
		// staged last).
		if err := p.publishNow(); err != nil {
			return err
		}
		return hs.get(ctx, dir+file, fn)
	}, p.checkFile, p.fetchFallbacks)
	if errors.Is(err, delta.ErrFromMissing) {
		return false, nil
	}
	if fe := (*FetchError)(nil); errors.As(err, &fe) {
		return false, err // names the part's (or fallback object's) URL
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", hs.url(dir), err)
	}
	p.opts.Logger.Debug("applied static delta", "delta", ref.Name.String(), "parts", len(sb.Parts), "objects", sb.Objects())
	p.fetched.Add(int64(sb.Objects()) + 1)
	p.deltaParts.Add(int64(len(sb.Parts)))
	p.deltas = append(p.deltas, ref.Name.String())
	if p.applied == nil {
		p.applied = map[repo.ID]appliedDelta{}
	}
	c, err := repo.DecodeCommit(sb.Commit) // checked by findDelta
	if err != nil {
		return false, err
	}
	p.applied[t.commit] = appliedDelta{ref, sb, c}
	if p.r.IsCommitPartial(t.commit) {
		p.complete = append(p.complete, t.commit)
	}
	return true, nil
}

// appliedDelta is a static delta a pull applied, kept so that another
// target naming the same commit is checked against its superblock, and,
// with --depth, so that the walk of its parents starts from its commit.
type appliedDelta struct {
	ref    DeltaRef
	sb     *delta.Superblock
	commit *repo.Commit
}

// fetchFallbacks fetches the fallback objects of a delta not stored here
// as the object walk fetches file objects (verified, held to checkFile,
// resumable, published in batches), Jobs at a time.
func (p *puller) fetchFallbacks(ctx context.Context, missing []delta.Fallback) error {
	var q workq.Queue[struct{}]
	for _, f := range missing {
		if p.visit(repo.KindFile, f.ID) {
			p.needed.Add(1)
			q.Push(p.fileTask(f.ID))
		}
	}
	return q.Run(ctx, p.opts.Jobs, func() struct{} { return struct{}{} })
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
