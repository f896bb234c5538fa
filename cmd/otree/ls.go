package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"

	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

type lsFlags struct {
	recursive, checksum, xattrs, dirOnly, nulNames bool
}

func newLsCommand(e *env) *cobra.Command {
	f := &lsFlags{}
	c := &cobra.Command{
		Use:   "ls [-R] [-C] [-X] [-d] REV [PATH...]",
		Short: "List paths of a commit",
		Long: `List PATHs (default /) inside the commit REV names, one line each:

  TYPE+MODE UID GID SIZE [CHECKSUM] [XATTRS] PATH [-> TARGET]

TYPE is - (regular file), d (directory), l (symlink), c, b (devices) or p (FIFO);
MODE is octal with setuid/setgid/sticky bits. A directory is listed with its
entries (files, then subdirectories); -R recurses, -d lists the directory
alone (-R overrides -d, as in OSTree). -C adds the object id (for a directory: its dirtree and dirmeta ids).
Paths start with "/"; a relative PATH is taken from the root.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLs(cmd, e, f, args[0], args[1:])
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&f.recursive, "recursive", "R", false, "list directories recursively")
	fl.BoolVarP(&f.checksum, "checksum", "C", false, "print object ids")
	fl.BoolVarP(&f.xattrs, "xattrs", "X", false, "print extended attributes")
	fl.BoolVarP(&f.dirOnly, "dironly", "d", false, "list a directory itself, not its entries")
	fl.BoolVar(&f.nulNames, "nul-filenames-only", false, "print only the paths, each followed by NUL")
	e.addJSON(c)
	return c
}

// lsEntry is one listed path, and its --json form.
type lsEntry struct {
	Path   string        `json:"path"` // with path_base64 when not UTF-8 (printJSON)
	Type   string        `json:"type"` // regular, directory, symlink, chardev, blockdev, fifo
	Mode   uint32        `json:"mode"` // permission bits (07777)
	UID    uint32        `json:"uid"`
	GID    uint32        `json:"gid"`
	Size   uint64        `json:"size"`
	Rdev   uint64        `json:"rdev,omitempty"`
	Target string        `json:"target,omitempty"`
	ID     repo.ID       `json:"id"`            // file object or dirtree
	MetaID repo.ID       `json:"meta,omitzero"` // dirmeta of a directory
	Xattrs []xattrJSON   `json:"xattrs,omitempty"`
	typ    repo.FileType // zero for a directory
	xattrs []repo.Xattr
}

// xattrJSON is an extended attribute in --json output; Value is set when it
// is UTF-8, Base64 otherwise.
type xattrJSON struct {
	Name   string `json:"name"`
	Value  string `json:"value,omitempty"`
	Base64 string `json:"base64,omitempty"`
}

func toXattrJSON(x []repo.Xattr) []xattrJSON {
	var out []xattrJSON
	for _, a := range x {
		j := xattrJSON{Name: a.Name}
		if utf8.Valid(a.Value) {
			j.Value = string(a.Value)
		} else {
			j.Base64 = base64.StdEncoding.EncodeToString(a.Value)
		}
		out = append(out, j)
	}
	return out
}

type lister struct {
	e    *env
	r    *repo.Repo
	f    *lsFlags
	w    *bufio.Writer
	json []lsEntry
}

func runLs(cmd *cobra.Command, e *env, f *lsFlags, rev string, paths []string) (err error) {
	if f.nulNames && e.json {
		return usagef("--nul-filenames-only and --json are exclusive")
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
	defer func() { err = r.ExplainMissing(id, err) }()
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	l := &lister{e: e, r: r, f: f, w: bufio.NewWriter(e.stdout), json: []lsEntry{}}
	defer l.w.Flush()
	for _, p := range paths {
		if err := cmd.Context().Err(); err != nil {
			return err
		}
		ent, err := r.Lookup(id, p)
		if err != nil {
			return err
		}
		err = r.Walk(cmd.Context(), ent, func(e repo.Entry) error {
			if err := l.entry(e); err != nil {
				return err
			}
			// -R overrides -d, as in OSTree.
			if e.IsDir() && !f.recursive && (f.dirOnly || e.Path != ent.Path) {
				return fs.SkipDir
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if e.json {
		return e.printJSON(l.json)
	}
	return l.w.Flush()
}

// entry prints (or collects) one path.
func (l *lister) entry(ent repo.Entry) error {
	le := lsEntry{Path: ent.Path, ID: ent.ID}
	if ent.IsDir() {
		m, err := l.r.ReadDirMeta(ent.MetaID)
		if err != nil {
			return fmt.Errorf("%s: %w", ent.Path, err)
		}
		le.Type, le.Mode, le.UID, le.GID, le.xattrs = "directory", m.Mode, m.UID, m.GID, m.Xattrs
		le.MetaID = ent.MetaID
	} else {
		h, err := l.r.StatFile(ent.ID)
		if err != nil {
			return fmt.Errorf("%s: %w", ent.Path, err)
		}
		le.Type, le.typ = h.Type.String(), h.Type
		le.Mode, le.UID, le.GID, le.Size, le.Rdev, le.Target = h.Mode, h.UID, h.GID, h.Size, h.Rdev, h.Target
		le.xattrs = h.Xattrs
	}
	switch {
	case l.e.json:
		le.Xattrs = toXattrJSON(le.xattrs)
		l.json = append(l.json, le)
	case l.f.nulNames:
		l.w.WriteString(le.Path)
		l.w.WriteByte(0)
	default:
		l.w.WriteString(lsLine(le, l.f))
	}
	return nil
}

// lsLine formats one line of text output.
func lsLine(le lsEntry, f *lsFlags) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%c%05o %d %d %6d", typeChar(le), le.Mode, le.UID, le.GID, le.Size)
	if f.checksum {
		b.WriteString(" " + le.ID.String())
		if !le.MetaID.IsZero() {
			b.WriteString(" " + le.MetaID.String())
		}
	}
	if f.xattrs {
		b.WriteString(" { " + gvariantXattrs(le.xattrs) + " }") // as OSTree prints them
	}
	b.WriteString(" " + le.Path)
	if le.Target != "" {
		b.WriteString(" -> " + le.Target)
	}
	b.WriteByte('\n')
	return b.String()
}

func typeChar(le lsEntry) byte {
	switch le.typ {
	case 0:
		return 'd'
	case repo.TypeRegular:
		return '-'
	case repo.TypeSymlink:
		return 'l'
	case repo.TypeCharDevice:
		return 'c'
	case repo.TypeBlockDevice:
		return 'b'
	case repo.TypeFIFO:
		return 'p'
	}
	return '?'
}
