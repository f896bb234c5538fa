package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/internal/ctxread"
	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

type checkoutFlags struct {
	skipList, fromFile string
	fromStdin, noCache bool
}

func newCheckoutCommand(e *env) *cobra.Command {
	o := &checkout.Options{}
	f := &checkoutFlags{}
	c := &cobra.Command{
		Use:   "checkout REV [DEST]",
		Short: "Check out a commit into a directory",
		Long: `Write the tree of REV into DEST (by default a directory named REV),
hardlinking file objects from the repository where its mode allows (bare
without --user-mode, bare-user with it, bare-user-only always, except that
root's checkout without --user-mode copies objects root does not own) and
copying them otherwise. From an archive repository, a --user-mode checkout
hardlinks each file from the repository's uncompressed-object cache, and
adds to the cache each file it has to decompress, as OSTree's does: the
second checkout of a file writes nothing (--disable-cache turns this off).
Only the repository's owner uses the cache, and only for files no one else
may write. An entry changed since it was written (its mode, size or
modification time) is dropped from the cache and the file decompressed
again; "otree fsck" verifies the content of the others, and "otree prune"
removes the entries no checkout uses.

With --user-mode, entries are the user's own and get no xattrs, and, as in
OSTree, regular files lose setuid and setgid and always get their owner's
read bit (a 0000 file checks out 0400, a 0070 one 0470); directories keep
their mode. A file is hardlinked only where the object's mode on disk is
already the file's, and copied otherwise, so no object's mode changes (a
non-empty bare-user-only object stored without its owner's read bit, which
a user other than root cannot read to copy, is the exception: it is
hardlinked as it is, and --union-identical expects its mode). Device nodes other than 0:0 whiteouts are refused.

Without --user-mode, entries get the commit's owner and xattrs. A user other
than root can give only its own: where the commit has another's it fails,
naming the path, as OSTree does. A bare-user-only repository records no
owner, so there, as in OSTree, that user's entries stay its own and every
object is hardlinked, as with --user-mode. Directories checked out of a
bare-user-only repository always keep only the 0775 bits of their mode,
as with --bareuseronly-dirs and as in OSTree.

--subpath is read as a path in the commit, so "/etc/", "/etc//conf",
"/./etc" and "etc" are what they say and "" is the whole tree (OSTree
2022.7 finds only "etc" and "/etc" of these, and says the others do not
exist).

DEST must not exist unless a union mode is given, or --subpath names a
file: that goes into an existing DEST as in OSTree, where nothing of its
name may be without a union mode (a DEST otree creates gets the metadata of
the file's directory, where OSTree's is 0700);
--union replaces a file by renaming the new one over it, and leaves a file
that is already a hardlink of its object alone; a symlink where a directory
goes is replaced by it, and anything else in DEST where a directory goes
is an error, as in OSTree (nothing is deleted to make room).

Every entry written gets modification time 0, so a commit checks out
identically everywhere (hardlinked files keep the repository object's times;
directories that were in DEST keep theirs). Writes
never leave DEST: symlinks already in DEST are not followed. A checkout that
fails part way leaves in DEST the entries it finished (an entry it could not
finish is removed) and the directories it made, mode 0700 where their
entries were not all written.

--skip-list names paths to leave out, one per line, relative to what is
checked out ("/usr/share/doc"; blank lines and "#" comments are ignored). A
directory may be written with or without a trailing "/" (OSTree skips a
directory only when its line ends in "/"). A line "/" leaves out
everything: as in OSTree, the checkout then does nothing and succeeds.

--from-file=FILE (or --from-stdin) checks out many trees into DEST, in
order: the input is pairs of REV and SUBPATH (empty for the whole tree), each
ended by a NUL byte, as OSTree reads them. Every checkout after the first
needs a union mode, since DEST then exists (but for one of a file). Empty
input checks out nothing.

--fsync=POLICY takes yes, true or 1 (sync the checkout to disk before
exiting) or no, false, 0 or none.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheckout(cmd, e, o, f, args)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&o.UserMode, "user-mode", "U", false, "do not restore ownership or xattrs, clear setuid/setgid of files and give them their owner's read bit, and refuse device nodes")
	fl.BoolVarP(&o.RequireHardlinks, "require-hardlinks", "H", false, "fail if a file cannot be hardlinked from the repository")
	fl.BoolVarP(&o.ForceCopy, "force-copy", "C", false, "never hardlink (reflink where the filesystem can)")
	fl.StringVar(&o.Subpath, "subpath", "", "check out only this directory or file of the commit")
	fl.BoolVar(&o.AllowNoent, "allow-noent", false, "do nothing, successfully, if the --subpath does not exist")
	fl.BoolVar(&o.Union, "union", false, "DEST may exist: keep its directories, overwrite its files")
	fl.BoolVar(&o.UnionAdd, "union-add", false, "DEST may exist: keep everything in it, add what is missing")
	fl.BoolVar(&o.UnionIdentical, "union-identical", false, "DEST may exist: add what is missing, fail where an existing file differs (compared by content, so unlike OSTree's it needs no -H)")
	fl.BoolVar(&o.Whiteouts, "whiteouts", false, `apply OCI whiteouts (".wh.NAME", ".wh..wh..opq") instead of writing them`)
	fl.BoolVar(&o.ProcessPassthroughWhiteouts, "process-passthrough-whiteouts", false, `check a file ".ostree-wh.NAME" out as NAME, an overlayfs whiteout (a 0:0 character device)`)
	fl.BoolVarP(&o.BareUserOnlyDirs, "bareuseronly-dirs", "M", false, "give directories only the 0775 bits of their mode (no setgid, sticky or world-writable ones); always so from a bare-user-only repository")
	fl.StringVar(&f.skipList, "skip-list", "", "file listing paths to leave out, one per line")
	fl.Var(fsyncPolicy{&o.Fsync}, "fsync", "sync the checkout to disk before exiting: yes/true/1, or no/false/0/none")
	fl.BoolVar(&f.noCache, "disable-cache", false, "with --user-mode from an archive repository, neither link files from its uncompressed-object cache nor add to it")
	fl.StringVar(&f.fromFile, "from-file", "", "check out the REV/SUBPATH pairs FILE lists (NUL-separated) into DEST")
	fl.BoolVar(&f.fromStdin, "from-stdin", false, "as --from-file, reading standard input")
	e.addJSON(c)
	return c
}

// checkoutResult is one checkout's --json record.
type checkoutResult struct {
	Commit  repo.ID        `json:"commit"`
	Subpath string         `json:"subpath,omitempty"`
	Dest    string         `json:"dest"`
	Stats   checkout.Stats `json:"stats"`
}

func runCheckout(cmd *cobra.Command, e *env, o *checkout.Options, f *checkoutFlags, args []string) error {
	n := 0
	for _, b := range []bool{o.Union, o.UnionAdd, o.UnionIdentical} {
		if b {
			n++
		}
	}
	if n > 1 {
		return usagef("--union, --union-add and --union-identical exclude each other")
	}
	if o.ForceCopy && o.RequireHardlinks {
		return usagef("--force-copy and --require-hardlinks exclude each other")
	}
	many := f.fromFile != "" || f.fromStdin
	if f.fromFile != "" && f.fromStdin {
		return usagef("--from-file and --from-stdin exclude each other")
	}
	if many && len(args) != 1 {
		return usagef("with --from-file or --from-stdin, give only DEST")
	}
	if many && o.Subpath != "" {
		return usagef("--subpath does not apply to --from-file or --from-stdin: each pair names its own")
	}
	dest := args[len(args)-1]
	if dest == "" {
		return usagef("DEST is empty")
	}
	opts := *o
	opts.UncompressedCache = !f.noCache
	if f.skipList != "" {
		var err error
		if opts.SkipList, err = readSkipList(f.skipList); err != nil {
			return err
		}
	}
	// The list of checkouts: one from the arguments, or pairs read.
	type job struct{ rev, subpath string }
	jobs := []job{{args[0], o.Subpath}}
	if many {
		in, name := ctxread.Blocking(cmd.Context(), e.stdin), "standard input"
		if f.fromFile != "" {
			file, err := os.Open(f.fromFile)
			if err != nil {
				return fmt.Errorf("checkout --from-file: %w", err)
			}
			defer file.Close()
			in, name = file, f.fromFile
		}
		pairs, err := readCheckoutPairs(in, name)
		if err != nil {
			return err
		}
		jobs = jobs[:0]
		for _, p := range pairs {
			jobs = append(jobs, job{p[0], p[1]})
		}
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	results := []checkoutResult{} // none for an empty --from-file, as in OSTree
	for _, j := range jobs {
		id, err := r.ResolveRev(j.rev)
		if err != nil {
			return err
		}
		opts.Subpath = j.subpath
		b := e.newBar()
		if b != nil {
			opts.Progress = func(s checkout.Stats) { b.draw("Checking out", s.Files, "files", s.Bytes) }
		}
		st, err := checkout.Checkout(cmd.Context(), r, id, dest, opts)
		b.done()
		err = ifStopped(err, "checkout into "+dest+" stopped: what it wrote is left there")
		if err != nil {
			if many {
				return fmt.Errorf("checking out %s (subpath %q): %w", j.rev, j.subpath, err)
			}
			return err
		}
		results = append(results, checkoutResult{id, j.subpath, dest, *st})
		if isTerminal(e.stderr) && !e.json {
			linked := fmt.Sprintf("%d hardlinked", st.Hardlinked)
			if st.FromCache > 0 {
				// Only archive repositories have the cache, and there
				// every link is from it.
				linked += " from the uncompressed cache"
			}
			fmt.Fprintf(e.stderr, "Checked out %d files (%s, %d copied), %d directories, %s\n",
				st.Files, linked, st.Copied, st.Dirs, humanBytes(st.Bytes))
		}
	}
	if e.json {
		if many {
			return e.printJSON(results)
		}
		return e.printJSON(results[0])
	}
	return nil
}

// readCheckoutPairs reads --from-file input: REV NUL SUBPATH NUL, repeated.
// An empty REV ends the list, as in OSTree.
func readCheckoutPairs(in io.Reader, name string) ([][2]string, error) {
	data, err := io.ReadAll(in)
	if err != nil {
		return nil, fmt.Errorf("checkout: reading %s: %w", name, err)
	}
	fields := strings.Split(string(data), "\x00")
	if fields[len(fields)-1] == "" {
		fields = fields[:len(fields)-1]
	}
	var pairs [][2]string
	for i := 0; i < len(fields) && fields[i] != ""; i += 2 {
		if i+1 == len(fields) {
			return nil, fmt.Errorf("checkout: %s: revision %q has no subpath after it (input is REV NUL SUBPATH NUL pairs)", name, fields[i])
		}
		pairs = append(pairs, [2]string{fields[i], fields[i+1]})
	}
	return pairs, nil
}

// fsyncPolicy is the --fsync=POLICY of commit and checkout: a boolean in
// OSTree's spellings, any case. Like OSTree's, the flag always takes a
// value, so "--fsync no" reads as "--fsync=no".
type fsyncPolicy struct{ p *bool }

func (f fsyncPolicy) String() string { return strconv.FormatBool(f.p != nil && *f.p) }

func (f fsyncPolicy) Set(s string) error {
	switch strings.ToLower(s) {
	case "1", "true", "yes":
		*f.p = true
	case "0", "false", "no", "none":
		*f.p = false
	default:
		return fmt.Errorf("%q is not a boolean (yes, true, 1, no, false, 0, none)", s)
	}
	return nil
}

func (f fsyncPolicy) Type() string { return "POLICY" }
