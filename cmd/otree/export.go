package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/xattr"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type exportFlags struct {
	subpath, output, prefix string
	hardlinks, noXattrs     bool
}

func newExportCommand(e *env) *cobra.Command {
	f := &exportFlags{}
	c := &cobra.Command{
		Use:   "export REV [--subpath=PATH] [-o FILE]",
		Short: "Write the tree of a commit as a tar",
		Long: `Write the tree of the commit REV names (or its --subpath) as a PAX tar to
standard output, or to FILE with -o. Entries keep the tree's numeric owners,
modes (setuid included), extended attributes (SCHILY.xattr.* records, a "%"
or "=" in a name written "%25" or "%3D", as GNU tar writes and reads them;
a POSIX ACL also as SCHILY.acl.* text with numeric users and groups, which
GNU tar and bsdtar extract with --acls),
symlinks, devices and FIFOs; every mtime is 0, so one tree always gives the same bytes,
and ` + "`otree commit --tree=tar=FILE`" + ` gives back the same tree. Names are "./"
for the root, then relative paths in tree order; --prefix=DIR puts them all
under DIR/ instead (OSTree pastes its prefix in front of each name as it is,
so without a trailing "/" it gives "DIRname").

Content is verified as it is written. With -o the tar is written to an
unnamed file in FILE's directory and put in FILE's place only when
complete, so a failure or a kill leaves no partial FILE, nor a temporary
file beside it; on standard output a failure means the bytes
already written must be discarded. A FILE that is a symbolic link is
followed, and a device or FIFO (-o /dev/null) is written to, not replaced.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd, e, f, args[0])
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.subpath, "subpath", "", "export only this path of the tree")
	fl.StringVarP(&f.output, "output", "o", "", "write the tar to FILE instead of standard output")
	fl.BoolVar(&f.hardlinks, "hardlinks", false, "write repeated identical files as hard links to their first path")
	fl.StringVar(&f.prefix, "prefix", "", "put every name under this directory")
	fl.BoolVar(&f.noXattrs, "no-xattrs", false, "leave extended attributes out")
	return c
}

// aclAccess is the xattr of a file's POSIX access ACL.
const aclAccess = "system.posix_acl_access"

func runExport(cmd *cobra.Command, e *env, f *exportFlags, rev string) error {
	if f.output == "" && isTerminal(e.stdout) {
		return usagef("refusing to write a tar to a terminal: pass -o FILE or redirect standard output")
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
	opts := checkout.ExportOptions{Subpath: f.subpath, Hardlinks: f.hardlinks, Prefix: f.prefix, NoXattrs: f.noXattrs}
	if f.output == "" {
		return ifStopped(checkout.Export(cmd.Context(), r, id, e.stdout, opts), "export stopped: the tar written to standard output is cut short")
	}
	out, err := followLinks(f.output)
	if err != nil {
		return fmt.Errorf("export to %s: %w", f.output, err)
	}
	var old *syscall.Stat_t // the regular file FILE replaces, if any
	var oldACL []byte       // its access ACL, if it has one
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		old, _ = fi.Sys().(*syscall.Stat_t)
		oldACL, _ = xattr.Get(out, aclAccess)
	} else if err == nil && !fi.IsDir() {
		// A device, FIFO or socket is written to, never replaced.
		w, err := openWriteEnd(cmd.Context(), out, fi)
		if err != nil {
			return ifStopped(fmt.Errorf("export to %s: %w", f.output, err), "export stopped: it wrote nothing to "+f.output)
		}
		if err := checkout.Export(cmd.Context(), r, id, w, opts); err != nil {
			w.Close()
			return ifStopped(fmt.Errorf("export to %s: %w", f.output, err), "export stopped: the tar written to "+f.output+" is cut short")
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("export to %s: %w", f.output, err)
		}
		return nil
	}
	// Written unnamed and named only once whole, so that a kill leaves
	// neither a short FILE nor a temporary file beside it.
	tmp, err := durable.CreateNew(out, true)
	if err != nil {
		return fmt.Errorf("export to %s: %w", f.output, err)
	}
	defer tmp.Close()
	if err := checkout.Export(cmd.Context(), r, id, tmp, opts); err != nil {
		return ifStopped(fmt.Errorf("export to %s: %w", f.output, err), "export stopped: "+f.output+" is as it was")
	}
	// CreateNew makes 0600 files; give the tar the mode a new file gets,
	// or, replacing a file, that file's owner and mode, as OSTree's export
	// truncates and writes it: a FILE made 0600 to keep it private stays so.
	mode := 0o666 &^ exportUmask()
	if old != nil {
		mode = os.FileMode(old.Mode & 0o777)
		// Only root may give the file away; another user keeps its group
		// when a member of it, and otherwise shares nothing with its own.
		if tmp.Chown(int(old.Uid), int(old.Gid)) != nil && tmp.Chown(-1, int(old.Gid)) != nil {
			mode &^= 0o070
			oldACL = nil // its group:: entry was for the group not kept
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("export to %s: %w", f.output, err)
	}
	// With an ACL the group bits are its mask, not the owning group's
	// permission: without the ACL, a group it denied would read the tar.
	if len(oldACL) > 0 {
		if err := unix.Fsetxattr(int(tmp.Fd()), aclAccess, oldACL, 0); err != nil {
			return fmt.Errorf("export to %s: keeping its ACL: %w", f.output, err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("export to %s: %w", f.output, err)
	}
	// The new name is durable only once its directory is (Replace syncs
	// it): without that, a crash after success could leave the old file,
	// or none.
	if err := tmp.Replace(true); err != nil {
		return fmt.Errorf("export to %s: %w", f.output, err)
	}
	return nil
}

// followLinks resolves p while it is a symbolic link, dangling or not, so
// that -o through a link writes the file it names, as OSTree does, instead
// of replacing the link.
func followLinks(p string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return p, nil
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(t) {
			// Relative to the link's directory as the kernel finds it:
			// that directory may itself be reached through links, which
			// a textual join would undo ("dir/../x").
			dir, err := filepath.EvalSymlinks(filepath.Dir(p))
			if err != nil {
				return "", err
			}
			t = filepath.Join(dir, t)
		}
		p = t
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", p)
}

// exportUmask returns the process umask (reading it means setting it, so
// it is set straight back).
func exportUmask() os.FileMode {
	m := unix.Umask(0o22)
	unix.Umask(m)
	return os.FileMode(m)
}

// fifoPoll is how often openWriteEnd looks for a FIFO's reader.
const fifoPoll = 20 * time.Millisecond

// openWriteEnd opens the device or FIFO at p, which fi describes, for
// writing. The open of a FIFO waits for a reader, which may never come,
// and could not end with ctx (a Ctrl-C) while it did: the FIFO is opened
// without waiting instead, again until a reader is there or ctx ends.
func openWriteEnd(ctx context.Context, p string, fi fs.FileInfo) (*os.File, error) {
	if fi.Mode().Type() != fs.ModeNamedPipe {
		return os.OpenFile(p, os.O_WRONLY, 0)
	}
	for {
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			// Non-blocking, the descriptor goes to the runtime's
			// poller, as an os.OpenFile of a FIFO would.
			return os.NewFile(uintptr(fd), p), nil
		}
		if err != unix.ENXIO { // ENXIO: no reader yet
			return nil, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a reader: %w", ctx.Err())
		case <-time.After(fifoPoll):
		}
	}
}
