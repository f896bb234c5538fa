package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otree/otree/internal/datetime"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
	"github.com/spf13/cobra"
)

type showFlags struct {
	metadataKey, detachedKey string
	metaSet, detachedSet     bool // the flags were given, even as ""
	sizes, raw, related      bool
}

func newShowCommand(e *env) *cobra.Command {
	f := &showFlags{}
	c := &cobra.Command{
		Use:   "show REV|OBJECT",
		Short: "Print one commit, or one of its metadata values",
		Long: `Print the commit REV resolves to (a branch, remote:branch, full id or unique
id prefix, optionally followed by ^ or ~N) in the shape of one ` + "`otree log`" + ` entry.
--print-metadata-key (--print-detached-metadata-key) prints the value of one
(detached) metadata key instead, in GVariant text as OSTree does: '1.0' for a
string; --json gives the value as stored. --raw prints the commit object's
stored bytes in hex.

The full id of a dirtree, dirmeta or file object prints that object as
OSTree's show does: "dirtree ID", "dirmeta ID", or a file's header (type,
size or target, mode, owner, xattrs).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.metaSet = cmd.Flags().Changed("print-metadata-key")
			f.detachedSet = cmd.Flags().Changed("print-detached-metadata-key")
			return runShow(e, f, args[0])
		},
	}
	c.Flags().StringVar(&f.metadataKey, "print-metadata-key", "", "print the value of metadata key KEY")
	c.Flags().StringVar(&f.detachedKey, "print-detached-metadata-key", "", "print the value of detached metadata key KEY")
	c.Flags().BoolVar(&f.raw, "raw", false, "print the commit object's stored bytes in hex (their BLAKE3 is the commit id)")
	c.Flags().BoolVar(&f.sizes, "print-sizes", false, "print what the commit's objects take and what this repository still lacks (commit --generate-sizes)")
	// OSTree lists a commit's "related" objects; otree's commits have none,
	// so the list is always empty, as OSTree's is for most commits.
	c.Flags().BoolVar(&f.related, "print-related", false, "print the commit's related objects, which otree's commits do not have: nothing")
	e.addJSON(c)
	return c
}

func runShow(e *env, f *showFlags, rev string) error {
	if f.metaSet && f.detachedSet {
		return usagef("--print-metadata-key and --print-detached-metadata-key are exclusive")
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	id, err := r.ResolveRev(rev)
	if err != nil {
		return err
	}
	c, err := r.ReadCommit(id)
	if f.related {
		if err != nil || !e.json {
			return err
		}
		// An empty list, so that a script reads valid JSON.
		return e.printJSON([]string{})
	}
	if missing := (*repo.ObjectMissingError)(nil); errors.As(err, &missing) && len(rev) == len(id.String()) && !f.raw && !f.sizes && !f.metaSet && !f.detachedSet {
		// A full id may name an object of another kind, as in OSTree.
		if shown, err := showObject(e, r, id); shown || err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	switch {
	case f.raw:
		if e.json {
			return usagef("--raw and --json are exclusive")
		}
		return writeRawCommit(e.stdout, r, id)
	case f.sizes:
		return printSizes(e, r, id, c)
	case f.metaSet:
		v, ok := c.Metadata.Get(f.metadataKey)
		if !ok {
			return fmt.Errorf("commit %s has no metadata key %q", id, f.metadataKey)
		}
		return e.printMetaValue(f.metadataKey, v)
	case f.detachedSet:
		m, err := r.ReadCommitMeta(id)
		if err != nil {
			return err
		}
		if m == nil {
			return fmt.Errorf("commit %s has no detached metadata", id)
		}
		v, ok := m.Get(f.detachedKey)
		if !ok {
			return fmt.Errorf("commit %s has no detached metadata key %q", id, f.detachedKey)
		}
		return e.printMetaValue(f.detachedKey, v)
	}
	sigs, err := sign.CommitSignatures(r, id)
	if err != nil {
		return err
	}
	if e.json {
		out := showJSON{commitJSON: newCommitJSON(id, c)}
		for _, s := range sigs {
			out.Signatures = append(out.Signatures, base64.StdEncoding.EncodeToString(s))
		}
		return e.printJSON(out)
	}
	if err := writeCommit(e.stdout, id, c); err != nil {
		return err
	}
	for _, s := range sigs {
		if _, err := fmt.Fprintf(e.stdout, "Signature: ed25519 %s\n", base64.StdEncoding.EncodeToString(s)); err != nil {
			return err
		}
	}
	return nil
}

// showJSON is the --json form of show: a commit and its signatures
// (base64, as stored in its detached metadata).
type showJSON struct {
	commitJSON
	Signatures []string `json:"signatures,omitempty"`
}

// printMetaValue prints one metadata value: in GVariant text as OSTree
// does (metadataText), or {"key", "value"} with the value as stored
// ("base64" for values that are not UTF-8).
func (e *env) printMetaValue(key string, v []byte) error {
	if e.json {
		out := map[string]string{"key": key}
		if utf8.Valid(v) {
			out["value"] = string(v)
		} else {
			out["base64"] = base64.StdEncoding.EncodeToString(v)
		}
		return e.printJSON(out)
	}
	_, err := io.WriteString(e.stdout, metadataText(key, v)+"\n")
	return err
}

// commitJSON is the --json form of a commit (show, log).
type commitJSON struct {
	ID        repo.ID `json:"id"`
	Parent    repo.ID `json:"parent"` // "" for a root commit
	Timestamp uint64  `json:"timestamp"`
	Date      string  `json:"date"` // RFC 3339, UTC
	Subject   string  `json:"subject"`
	Body      string  `json:"body"`
	RootTree  repo.ID `json:"root_tree"`
	RootMeta  repo.ID `json:"root_meta"`
	// ContentChecksum names the tree alone (contentChecksum).
	ContentChecksum repo.ID `json:"content_checksum"`
	// Metadata holds every value; printJSON adds metadata_base64 with the
	// bytes of those that are not UTF-8.
	Metadata map[string]string `json:"metadata,omitempty"`
}

func newCommitJSON(id repo.ID, c *repo.Commit) commitJSON {
	j := commitJSON{
		ID: id, Parent: c.Parent, Timestamp: c.Timestamp, Date: datetime.FormatUnix(c.Timestamp, time.UTC, time.RFC3339),
		Subject: c.Subject, Body: c.Body, RootTree: c.RootTree, RootMeta: c.RootMeta,
		ContentChecksum: contentChecksum(c),
	}
	for _, kv := range c.Metadata {
		if j.Metadata == nil {
			j.Metadata = map[string]string{}
		}
		j.Metadata[kv.Key] = string(kv.Value)
	}
	return j
}

// contentChecksum is the BLAKE3 of a commit's root dirtree and dirmeta
// ids: what OSTree's log calls the ContentChecksum, the same for every
// commit of one tree whatever their metadata and history.
func contentChecksum(c *repo.Commit) repo.ID { return repo.Sum(c.RootTree[:], c.RootMeta[:]) }

// writeCommit prints a commit the way `ostree log` and `ostree show` shape
// it: the id, Parent, ContentChecksum, Date and Version lines, then the
// subject and body indented, then a blank line.
func writeCommit(w io.Writer, id repo.ID, c *repo.Commit) error {
	var b strings.Builder
	fmt.Fprintf(&b, "commit %s\n", id)
	if !c.Parent.IsZero() {
		fmt.Fprintf(&b, "Parent:  %s\n", c.Parent)
	}
	fmt.Fprintf(&b, "ContentChecksum:  %s\n", contentChecksum(c))
	fmt.Fprintf(&b, "Date:  %s\n", datetime.FormatUnix(c.Timestamp, time.UTC, "2006-01-02 15:04:05 -0700"))
	if v, ok := c.Metadata.Get("version"); ok {
		fmt.Fprintf(&b, "Version: %s\n", v)
	}
	if c.Subject == "" {
		b.WriteString("(no subject)\n")
	} else {
		b.WriteString("\n")
		indent(&b, c.Subject)
	}
	if c.Body != "" {
		b.WriteString("\n")
		indent(&b, c.Body)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// indent writes each line of s indented by four spaces, as OSTree does:
// an empty line too (four spaces alone), and one newline ending s ends its
// last line rather than starting another.
func indent(b *strings.Builder, s string) {
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
}

// printSizes prints the totals of a commit's repo.SizesKey, and how much of
// it this repository lacks, in OSTree's words.
func printSizes(e *env, r *repo.Repo, id repo.ID, c *repo.Commit) error {
	v, ok := c.Metadata.Get(repo.SizesKey)
	if !ok {
		return fmt.Errorf("commit %s has no object sizes (commit it with --generate-sizes into an archive repository)", id)
	}
	sizes, err := repo.DecodeSizes(v)
	if err != nil {
		return fmt.Errorf("commit %s: %w", id, err)
	}
	var total, need struct{ stored, unpacked, n int64 }
	for _, s := range sizes {
		total.stored, total.unpacked, total.n = total.stored+s.Stored, total.unpacked+s.Unpacked, total.n+1
		has, err := r.HasObject(s.Kind, s.ID)
		if err != nil {
			return err
		}
		if !has {
			need.stored, need.unpacked, need.n = need.stored+s.Stored, need.unpacked+s.Unpacked, need.n+1
		}
	}
	if e.json {
		return e.printJSON(map[string]any{"commit": id,
			"stored":   map[string]int64{"needed": need.stored, "total": total.stored},
			"unpacked": map[string]int64{"needed": need.unpacked, "total": total.unpacked},
			"objects":  map[string]int64{"needed": need.n, "total": total.n}})
	}
	_, err = fmt.Fprintf(e.stdout, "Compressed size (needed/total): %s/%s\nUnpacked size (needed/total): %s/%s\nNumber of objects (needed/total): %d/%d\n",
		siBytes(need.stored), siBytes(total.stored), siBytes(need.unpacked), siBytes(total.unpacked), need.n, total.n)
	return err
}

// objectJSON is the --json form of show for an object that is not a
// commit: its kind and, for a file, its header.
type objectJSON struct {
	ID     repo.ID     `json:"id"`
	Kind   string      `json:"kind"`
	Type   string      `json:"type,omitempty"`
	Size   *uint64     `json:"size,omitempty"`
	Target string      `json:"target,omitempty"`
	Mode   *uint32     `json:"mode,omitempty"`
	UID    *uint32     `json:"uid,omitempty"`
	GID    *uint32     `json:"gid,omitempty"`
	Xattrs []xattrJSON `json:"xattrs,omitempty"`
}

// showObject prints the stored object id when it is a dirtree, dirmeta or
// file, as OSTree's show does: "KIND ID" for the first two, a file's
// header in lines. It reports whether one was there.
func showObject(e *env, r *repo.Repo, id repo.ID) (bool, error) {
	for _, kind := range []repo.Kind{repo.KindDirTree, repo.KindDirMeta, repo.KindFile} {
		if has, err := r.HasObject(kind, id); err != nil || !has {
			if err != nil {
				return false, err
			}
			continue
		}
		out := objectJSON{ID: id, Kind: kind.String()}
		if kind != repo.KindFile {
			if e.json {
				return true, e.printJSON(out)
			}
			_, err := fmt.Fprintf(e.stdout, "%s %s\n", kind, id)
			return true, err
		}
		h, err := r.StatFile(id)
		if err != nil {
			return true, err
		}
		mode := uint32(h.Type.UnixType()) | h.Mode
		if e.json {
			out.Type, out.Target, out.Mode, out.UID, out.GID, out.Xattrs = h.Type.String(), h.Target, &mode, &h.UID, &h.GID, toXattrJSON(h.Xattrs)
			if h.Type == repo.TypeRegular {
				out.Size = &h.Size
			}
			return true, e.printJSON(out)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Object: %s\nType: file\nFile Type: %s\n", id, h.Type)
		switch h.Type {
		case repo.TypeRegular:
			fmt.Fprintf(&b, "Size: %d\n", h.Size)
		case repo.TypeSymlink:
			fmt.Fprintf(&b, "Target: %s\n", h.Target)
		}
		fmt.Fprintf(&b, "Mode: 0%o\nUid: %d\nGid: %d\nExtended Attributes: { %s }\n", mode, h.UID, h.GID, gvariantXattrs(h.Xattrs))
		_, err = io.WriteString(e.stdout, b.String())
		return true, err
	}
	return false, nil
}
