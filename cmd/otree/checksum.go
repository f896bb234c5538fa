package main

import (
	"fmt"
	"io"
	"os"

	"github.com/otree/otree/internal/hash"
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
line is "ID  PATH".`,
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
			fmt.Fprintf(e.stdout, "%s  %s\n", id, p)
		}
	}
	if e.json {
		return e.printJSON(out)
	}
	return nil
}

// skipXattr drops the attribute bare-user repositories keep their own
// metadata in, as commit does.
func skipXattr(name string) bool { return name == "user.otreemeta" }

// checksumPath hashes one path the way commit would.
func checksumPath(p string, ignoreXattrs bool) (repo.Kind, repo.ID, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return 0, repo.ID{}, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	xattrs := func() ([]repo.Xattr, error) {
		if ignoreXattrs {
			return nil, nil
		}
		a, err := xattr.List(p, skipXattr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return a, nil
	}
	h := repo.FileHeader{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		x, err := xattrs()
		if err != nil {
			return 0, repo.ID{}, err
		}
		m := repo.DirMeta{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Xattrs: x}
		return repo.KindDirMeta, repo.Sum(m.Encode()), nil
	case unix.S_IFREG:
		id, err := checksumRegular(p, ignoreXattrs)
		return repo.KindFile, id, err
	case unix.S_IFLNK:
		t, err := os.Readlink(p)
		if err != nil {
			return 0, repo.ID{}, err
		}
		h.Type, h.Target, h.Mode = repo.TypeSymlink, t, 0o777
	case unix.S_IFCHR:
		h.Type, h.Rdev = repo.TypeCharDevice, st.Rdev
	case unix.S_IFBLK:
		h.Type, h.Rdev = repo.TypeBlockDevice, st.Rdev
	case unix.S_IFIFO:
		h.Type = repo.TypeFIFO
	default:
		return 0, repo.ID{}, fmt.Errorf("%s: a socket or other special file has no object id", p)
	}
	x, err := xattrs()
	if err != nil {
		return 0, repo.ID{}, err
	}
	h.Xattrs = x
	if err := h.Validate(); err != nil {
		return 0, repo.ID{}, fmt.Errorf("%s: %w", p, err)
	}
	return repo.KindFile, repo.FileID(&h, nil), nil
}

// checksumRegular hashes a regular file's header and content, read once.
func checksumRegular(p string, ignoreXattrs bool) (repo.ID, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOCTTY, 0)
	if err != nil {
		return repo.ID{}, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return repo.ID{}, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return repo.ID{}, fmt.Errorf("%s: changed while being read", p)
	}
	h := repo.FileHeader{Type: repo.TypeRegular, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Size: uint64(st.Size)}
	if !ignoreXattrs {
		a, err := xattr.FList(int(f.Fd()), skipXattr)
		if err != nil {
			return repo.ID{}, fmt.Errorf("%s: %w", p, err)
		}
		h.Xattrs = a
	}
	hs := hash.New()
	hs.Write(repo.AppendFileHeader(nil, &h))
	// Read one byte past the size to notice a file that grew.
	n, err := io.Copy(hs, io.LimitReader(f, st.Size+1))
	if err != nil {
		return repo.ID{}, &os.PathError{Op: "read", Path: p, Err: err}
	}
	if n != st.Size {
		return repo.ID{}, fmt.Errorf("%s: file changed while being read (size %d, read %d)", p, st.Size, n)
	}
	return repo.ID(hs.Sum()), nil
}
