package main

import (
	"fmt"
	"io"
	"os"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/internal/quote"
	"github.com/otree/otree/internal/xattr"
	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newChecksumCommand(e *env) *cobra.Command {
	var ignoreXattrs bool
	c := &cobra.Command{
		Use:   "checksum PATH...",
		Short: "Print the object id a file or directory on disk would get",
		Long: `Print the id PATH would be committed as, without a repository: for a regular
file, symlink, device or FIFO its file object id (header and content, as
` + "`otree ls -C`" + ` shows it); for a directory the id of its dirmeta (its own
owner, mode and xattrs, not its content). Owner, mode and xattrs are taken as
they are on disk, as a commit to a bare, bare-user or archive repository
without --canonical-permissions or --owner-* records them; a bare-user-only
repository canonicalises them, so its ids differ. With several PATHs each
line is "ID  PATH", PATH Go-quoted as diff quotes it when it holds invalid
UTF-8 or characters that do not print (a newline, an escape), or starts
with a double quote.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runChecksum(e, ignoreXattrs, args)
		},
	}
	c.Flags().BoolVar(&ignoreXattrs, "ignore-xattrs", false, "leave extended attributes out of the checksum")
	e.addJSON(c)
	return c
}

// checksumJSON is one --json result of checksum.
type checksumJSON struct {
	Path string  `json:"path"`
	Kind string  `json:"kind"` // "file" or "dirmeta"
	ID   repo.ID `json:"id"`
}

func runChecksum(e *env, ignoreXattrs bool, paths []string) error {
	var out []checksumJSON
	for _, p := range paths {
		kind, id, err := checksumPath(p, ignoreXattrs)
		if err != nil {
			return err
		}
		switch {
		case e.json:
			out = append(out, checksumJSON{p, kind.String(), id})
		case len(paths) == 1:
			fmt.Fprintln(e.stdout, id)
		default:
			fmt.Fprintf(e.stdout, "%s  %s\n", id, quote.Path(p))
		}
	}
	if e.json {
		return e.printJSON(out)
	}
	return nil
}

// checksumPath hashes one path the way commit would.
func checksumPath(p string, ignoreXattrs bool) (repo.Kind, repo.ID, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return 0, repo.ID{}, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		m := repo.DirMeta{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
		if !ignoreXattrs {
			x, err := xattr.List(p, commit.SkipXattr)
			if err != nil {
				return 0, repo.ID{}, fmt.Errorf("%s: %w", p, err)
			}
			m.Xattrs = x
		}
		return repo.KindDirMeta, repo.Sum(m.Encode()), nil
	}
	h, err := commit.DiskHeader(p, &st, ignoreXattrs)
	if err != nil {
		return 0, repo.ID{}, err
	}
	if h.Type != repo.TypeRegular {
		return repo.KindFile, repo.FileID(h, nil), nil
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOCTTY, 0)
	if err != nil {
		return 0, repo.ID{}, err
	}
	defer f.Close()
	hs := hash.New()
	hs.Write(repo.AppendFileHeader(nil, h))
	// Read one byte past the size to notice a file that changed.
	n, err := io.Copy(hs, io.LimitReader(f, st.Size+1))
	if err != nil {
		return 0, repo.ID{}, &os.PathError{Op: "read", Path: p, Err: err}
	}
	if n != st.Size {
		if err := commit.PseudoFileError(int(f.Fd()), p, st.Size, n); err != nil {
			return 0, repo.ID{}, err
		}
		return 0, repo.ID{}, fmt.Errorf("%s: file changed while being read (size %d, read %d)", p, st.Size, n)
	}
	return repo.KindFile, repo.ID(hs.Sum()), nil
}
