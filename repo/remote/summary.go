package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/otree/otree/internal/canon"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/sign"
)

// SummaryFile is the name of the summary at the root of a repository.
const SummaryFile = "summary"

// maxSummary bounds the summary a client is willing to download or read.
const maxSummary = 64 << 20

// summaryTag and summaryVersion open every summary encoding, like the
// kind tag and version of an object.
const (
	summaryTag     = 's'
	summaryVersion = 1
)

// Summary lists a repository's branches and the commits they point at, so a
// client can learn every ref with one request, and the static deltas it
// serves. Metadata keys starting with "otree." are reserved.
type Summary struct {
	Refs     []repo.Ref    // local branches, sorted by name, each once
	Metadata repo.Metadata // sorted keys, as in a commit, without DeltasKey and DeltaIndexesKey
	// Deltas lists the static deltas served, sorted by name, each once;
	// encoded as the metadata entry DeltasKey.
	Deltas []DeltaRef
	// DeltaIndexes lists the delta index of every commit deltas lead to,
	// sorted by commit, each once; encoded as the metadata entry
	// DeltaIndexesKey. Not empty means the server indexes its deltas.
	DeltaIndexes []delta.IndexRef
}

// Lookup returns the commit of a branch listed in the summary.
func (s *Summary) Lookup(name string) (repo.ID, bool) {
	for _, r := range s.Refs {
		if r.Name == name {
			return r.Commit, true
		}
	}
	return repo.ID{}, false
}

// Encode returns the canonical encoding of s (docs/PULL.md). Like the
// object encoders it does not check its input: Refs must be sorted, unique
// and valid, and Metadata sorted.
func (s *Summary) Encode() []byte {
	md := s.Metadata
	if len(s.Deltas) > 0 {
		md = append(repo.Metadata(nil), md...).Set(DeltasKey, encodeDeltas(s.Deltas))
	}
	if len(s.DeltaIndexes) > 0 {
		md = append(repo.Metadata(nil), md...).Set(DeltaIndexesKey, encodeDeltaIndexes(s.DeltaIndexes))
	}
	b := []byte{summaryTag, summaryVersion}
	b = binary.AppendUvarint(b, uint64(len(s.Refs)))
	for _, r := range s.Refs {
		b = binary.AppendUvarint(b, uint64(len(r.Name)))
		b = append(b, r.Name...)
		b = append(b, r.Commit[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(md)))
	for _, m := range md {
		b = binary.AppendUvarint(b, uint64(len(m.Key)))
		b = append(b, m.Key...)
		b = binary.AppendUvarint(b, uint64(len(m.Value)))
		b = append(b, m.Value...)
	}
	return b
}

// errSummary is wrapped by every failure to decode a summary.
var errSummary = errors.New("non-canonical summary")

// DecodeSummary decodes a summary, rejecting anything but the canonical
// encoding of a valid summary: a wrong tag or version, bad or non-minimal
// uvarints, lengths past the end, invalid, unsorted or duplicated ref
// names, names that clash as paths ("a" and "a/b"), zero commits,
// unsorted or empty metadata keys, trailing bytes.
func DecodeSummary(b []byte) (*Summary, error) {
	if len(b) < 2 || b[0] != summaryTag {
		return nil, fmt.Errorf("not a summary: does not start with %q", summaryTag)
	}
	if b[1] != summaryVersion {
		return nil, fmt.Errorf("unsupported summary version %d (want %d)", b[1], summaryVersion)
	}
	d := canon.NewDecoder(b, errSummary)
	d.Raw(2) // tag and version, checked above
	s := &Summary{}
	n := d.Count(1 + 1 + 32)
	s.Refs = make([]repo.Ref, 0, n)
	names := make(map[string]bool, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		name := string(d.Bytes())
		id := repo.ID(d.ID())
		if d.Err() != nil {
			break
		}
		if err := validateBranch(name); err != nil {
			d.Fail("%v", err)
		} else if i > 0 && s.Refs[i-1].Name >= name {
			d.Fail("ref names not sorted or duplicated at %q", name)
		} else if id.IsZero() {
			d.Fail("ref %q points at the zero id", name)
		} else if above := refAbove(name, names); above != "" {
			// Sorted, so a ref comes before those below it.
			d.Fail("refs %q and %q cannot both exist: a ref cannot also be a directory of refs", above, name)
		}
		names[name] = true
		s.Refs = append(s.Refs, repo.Ref{Name: name, Commit: id})
	}
	m := d.Count(2)
	for i := 0; i < m && d.Err() == nil; i++ {
		key := string(d.Bytes())
		value := bytes.Clone(d.Bytes())
		if d.Err() != nil {
			break
		}
		if key == "" {
			d.Fail("empty metadata key")
		} else if i > 0 && s.Metadata[i-1].Key >= key {
			d.Fail("metadata keys not sorted or duplicated at %q", key)
		}
		s.Metadata = append(s.Metadata, repo.MetaEntry{Key: key, Value: value})
	}
	if err := d.End(); err != nil {
		return nil, err
	}
	var md repo.Metadata
	for _, m := range s.Metadata {
		var err error
		switch m.Key {
		case DeltasKey:
			s.Deltas, err = decodeDeltas(m.Value)
		case DeltaIndexesKey:
			s.DeltaIndexes, err = decodeDeltaIndexes(m.Value)
		default:
			md = append(md, m)
		}
		if err != nil {
			return nil, fmt.Errorf("summary metadata %s: %w", m.Key, err)
		}
	}
	s.Metadata = md
	return s, nil
}

// refAbove returns the first of names whose path is a directory of
// branch name's path ("a" for "a/b"), or "".
func refAbove(name string, names map[string]bool) string {
	for i, c := range name {
		if c == '/' && names[name[:i]] {
			return name[:i]
		}
	}
	return ""
}

// validateBranch checks a local branch name: a valid ref name without a
// remote part.
func validateBranch(name string) error {
	if strings.Contains(name, ":") {
		return fmt.Errorf("invalid branch name %q: a remote ref", name)
	}
	return repo.ValidateRefName(name)
}

// SummaryOptions configure UpdateSummary.
type SummaryOptions struct {
	// Metadata is stored in the summary (keys starting with "otree." are
	// reserved).
	Metadata repo.Metadata
	// NoSync skips fsync; only for scratch repositories.
	NoSync bool
	// SignKeys sign the summary: their signatures are written to
	// summary.sig beside it. Without keys a stale summary.sig is removed.
	SignKeys []ed25519.PrivateKey
}

// reservedKey tells whether a summary metadata key is otree's own, which
// UpdateSummary writes and callers may not.
func reservedKey(k string) bool { return strings.HasPrefix(k, "otree.") }

// SummaryCollectionKey is the summary metadata key holding the collection
// ID of the repository it describes, when it has one.
const SummaryCollectionKey = "otree.summary.collection-id"

// UpdateSummary writes the summary of r's local branches to SummaryFile at
// its root, atomically, and returns it. The refs are read under the refs
// lock, so the summary is one consistent state of the repository.
func UpdateSummary(ctx context.Context, r *repo.Repo, opts SummaryOptions) (*Summary, error) {
	for _, m := range opts.Metadata {
		if reservedKey(m.Key) {
			return nil, fmt.Errorf("summary metadata key %q: keys starting with \"otree.\" are reserved", m.Key)
		}
	}
	if err := opts.Metadata.Validate(); err != nil {
		return nil, fmt.Errorf("summary metadata: %w", err)
	}
	if err := r.CheckWritable(); err != nil {
		return nil, fmt.Errorf("writing summary: %w", err)
	}
	lk, err := r.LockRefs(ctx)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	refs, err := r.ListRefs("")
	if err != nil {
		return nil, err
	}
	s := &Summary{Refs: []repo.Ref{}, Metadata: opts.Metadata}
	if id := r.CollectionID(); id != "" {
		s.Metadata = slices.Clone(s.Metadata).Set(SummaryCollectionKey, []byte(id))
	}
	for _, ref := range refs {
		if strings.Contains(ref.Name, ":") {
			continue
		}
		// A branch whose commit is not here would be offered to clients
		// that can only fail to fetch it: refused, as OSTree refuses it.
		has, err := r.HasObject(repo.KindCommit, ref.Commit)
		if err == nil && !has {
			err = &repo.ObjectMissingError{Kind: repo.KindCommit, ID: ref.Commit}
		}
		if err != nil {
			return nil, fmt.Errorf("summary of %s: branch %s: %w", r.Path(), ref.Name, err)
		}
		s.Refs = append(s.Refs, ref)
	}
	if s.DeltaIndexes, err = delta.Reindex(ctx, r, delta.ReindexOptions{NoSync: opts.NoSync}); err != nil {
		return nil, err
	}
	if s.Deltas, err = listDeltas(r); err != nil {
		return nil, err
	}
	data := s.Encode()
	var sig []byte
	if len(opts.SignKeys) > 0 {
		if sig, err = sign.SignSummary(data, opts.SignKeys...); err != nil {
			return nil, fmt.Errorf("signing summary: %w", err)
		}
	}
	if err := writeSummary(r, data, sig, !opts.NoSync && r.Fsync()); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrNoSummary is matched (with errors.Is) by the error for a repository
// without a summary file where one is needed, which UpdateSummary run
// there would write: ReadSummary's and RemoteSummary's, which also match
// repo.ErrNotFound, and that of a pull or RemoteRefs that must list the
// refs of an HTTP remote, which only its summary lists.
var ErrNoSummary = errors.New("no summary file")

// noSummaryError is ReadSummary's and RemoteSummary's error for a
// repository without a summary file.
type noSummaryError struct{ msg string }

func (e *noSummaryError) Error() string { return e.msg }

// Is makes errors.Is true for ErrNoSummary and repo.ErrNotFound.
func (e *noSummaryError) Is(target error) bool {
	return target == ErrNoSummary || target == repo.ErrNotFound
}

// ReadSummary reads the summary file of a local repository. A repository
// without one gives an error matching ErrNoSummary and repo.ErrNotFound.
func ReadSummary(r *repo.Repo) (*Summary, error) {
	data, err := os.ReadFile(r.Path(SummaryFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &noSummaryError{r.Path(SummaryFile) + ": not found"}
	}
	if err != nil {
		return nil, fmt.Errorf("reading summary: %w", err)
	}
	if len(data) > maxSummary {
		return nil, fmt.Errorf("%s: larger than %d bytes", r.Path(SummaryFile), maxSummary)
	}
	s, err := DecodeSummary(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Path(SummaryFile), err)
	}
	return s, nil
}

// ErrSummarySigned is matched by AutoUpdateSummary's error for a
// repository whose summary is signed: a summary written anew would carry
// no valid signature, so the signed one is left as it is.
var ErrSummarySigned = errors.New("the summary is signed, so it is not rewritten without the keys")

// AutoUpdateSummary writes r's summary anew, as UpdateSummary does, when
// r's config sets repo.ConfigAutoUpdateSummary or its older name
// repo.ConfigCommitUpdateSummary to true, keeping the metadata the
// current summary carries; it reports whether it did. Call it after
// changing refs or deltas (the otree command does). A signed summary is
// left alone, with an error matching ErrSummarySigned.
func AutoUpdateSummary(ctx context.Context, r *repo.Repo) (bool, error) {
	// Either key turns it on, as in OSTree: its older name is not
	// overridden by the newer one set to false.
	on, err := r.Config().Bool(repo.ConfigAutoUpdateSummary, false)
	if err != nil {
		return false, err
	}
	old, err := r.Config().Bool(repo.ConfigCommitUpdateSummary, false)
	if err != nil || !(on || old) {
		return false, err
	}
	if _, err := os.Stat(r.Path(sign.SummarySigFile)); err == nil {
		return false, fmt.Errorf("%s: %w", r.Path(SummaryFile), ErrSummarySigned)
	}
	var md repo.Metadata // the admin's keys; otree's own are written anew
	if old, err := ReadSummary(r); err == nil {
		for _, m := range old.Metadata {
			if !reservedKey(m.Key) {
				md = append(md, m)
			}
		}
	}
	if _, err := UpdateSummary(ctx, r, SummaryOptions{Metadata: md}); err != nil {
		return false, fmt.Errorf("updating the summary (%s): %w", repo.ConfigAutoUpdateSummary, err)
	}
	return true, nil
}
