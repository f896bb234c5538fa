package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/datetime"
	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

type commitFlags struct {
	branch, subject, body, bodyFile, parent, timestamp, skipList, statOverride string
	base, tarFilter                                                            string
	orphan, canonical, skipIfUnchanged, fsync, consume, bootable               bool
	tarAutocreate, tableOutput, editor, generateSizes, disableFsync            bool
	noXattrs, roExecutables, linkSpeedup, devinoCanonical                      bool
	metadata, detached, keepMetadata, trees, typedMeta                         []string
	ownerUID, ownerGID                                                         int64
	summary                                                                    bool
	bindRefs                                                                   []string
	noBindings                                                                 bool
	signing                                                                    signingFlags
}

func newCommitCommand(e *env) *cobra.Command {
	f := &commitFlags{}
	c := &cobra.Command{
		Use:   "commit [DIR]",
		Short: "Commit a directory (or tar, or existing trees) to a branch",
		Long: `Commit DIR (default: the current directory), or the --tree sources instead,
as a new commit and move the branch to it. Prints the new commit id. Several
--tree options overlay in order; a directory among them is --tree=dir=DIR
(DIR and --tree are not given together). --base=REV lays DIR or the --tree
sources over REV's tree.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCommit(cmd, e, f, args)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.branch, "branch", "b", "", "branch to commit to")
	fl.StringVarP(&f.subject, "subject", "s", "", "one-line subject")
	fl.StringVarP(&f.body, "body", "m", "", "full description")
	fl.StringVarP(&f.bodyFile, "body-file", "F", "", "read the full description from FILE (instead of --body)")
	fl.BoolVarP(&f.editor, "editor", "e", false, "write the subject and body in $OTREE_EDITOR, $OSTREE_EDITOR, $VISUAL or $EDITOR (vi); $VISUAL and vi are not used where $TERM is unset or dumb")
	fl.StringVar(&f.parent, "parent", "", `parent commit (a full id need not be here), or "none"`)
	fl.BoolVar(&f.orphan, "orphan", false, "create a commit with no parent (unless --parent): with -b the branch moves to it, starting its history over; without, no branch moves")
	fl.StringArrayVar(&f.metadata, "add-metadata-string", nil, "add KEY=VALUE to the commit metadata (repeatable; a key keeps its first value, and wins over --add-metadata)")
	fl.StringArrayVar(&f.typedMeta, "add-metadata", nil, "add KEY=VALUE, VALUE in GVariant text ('a string', b'bytes', true, 42), stored as its text (repeatable; a key keeps its first value)")
	fl.StringArrayVar(&f.detached, "add-detached-metadata-string", nil, "add KEY=VALUE to the detached metadata (repeatable; a key keeps its first value)")
	fl.StringArrayVar(&f.keepMetadata, "keep-metadata", nil, "copy metadata KEY and its value from the parent commit (repeatable)")
	fl.StringVar(&f.timestamp, "timestamp", "", `commit time, in GNU date syntax, from 1970 on; local time unless a zone is given ("2024-01-31 12:00", "20240131 1200", "2024-01-31T12:00:00Z", "yesterday", @UNIXSECONDS)`)
	fl.StringArrayVar(&f.trees, "tree", nil, "source: dir=PATH, tar=FILE (plain, or compressed with gzip, zstd, xz or bzip2) or ref=REV (repeatable; later overlay earlier: their files and directory metadata win, but for directories a tar leaves out)")
	fl.StringVar(&f.base, "base", "", "start from REV's tree as stored (no option or skip list applies to it); DIR and --tree overlay it")
	fl.StringVar(&f.tarFilter, "tar-pathname-filter", "", "rename tar entries: REGEX,REPLACEMENT (every match; \\1, \\12 or \\g<name> for groups)")
	// otree always creates the parents a tar leaves out (0755, owner 0,
	// unless an earlier source has them).
	fl.BoolVar(&f.tarAutocreate, "tar-autocreate-parents", false, "accepted for OSTree scripts: parent directories a tar leaves out are always created (0755, owner 0), keeping an earlier source's metadata where it has them")
	fl.BoolVar(&f.tableOutput, "table-output", false, "print the commit id and the objects written as \"KEY: VALUE\" lines, as OSTree does")
	fl.BoolVar(&f.generateSizes, "generate-sizes", false, "record every object's size in the metadata (archive repositories), for show --print-sizes")
	fl.BoolVar(&f.consume, "consume", false, "once the commit has landed and is durable (even with --fsync=false), remove from the directory sources what it holds as it is on disk; anything else is kept and reported, and the command then fails after printing the commit id")
	fl.BoolVar(&f.bootable, "bootable", false, "record the tree's kernel (usr/lib/modules/<version>/vmlinuz, else usr/lib/ostree-boot or boot/vmlinuz-<version>-<sha256>) in the metadata: ostree.bootable, ostree.linux")
	fl.Int64Var(&f.ownerUID, "owner-uid", -1, "set the owner uid of every entry (negative: keep each entry's)")
	fl.Int64Var(&f.ownerGID, "owner-gid", -1, "set the owner gid of every entry (negative: keep each entry's)")
	fl.BoolVar(&f.canonical, "canonical-permissions", false, "record uid/gid 0, no xattrs, and modes masked with 0755 (no setuid/setgid/sticky, no group or other write)")
	fl.BoolVar(&f.noXattrs, "no-xattrs", false, "record no extended attributes")
	fl.BoolVar(&f.roExecutables, "mode-ro-executables", false, "record executable files without write permission")
	// otree always knows a hardlink of a repository object by device and
	// inode, and takes it unread while its inode matches the object's
	// header; OSTree's flag asking for that is accepted so its scripts run.
	fl.BoolVar(&f.linkSpeedup, "link-checkout-speedup", false, "accepted for OSTree scripts: without it too, a hardlink of a repository object is taken unread while its metadata matches the object")
	fl.BoolVarP(&f.devinoCanonical, "devino-canonical", "I", false, "take hardlinks of repository objects as unmodified without checking their metadata (a chmod, chown or setfattr through such a link is then not recorded)")
	fl.StringVar(&f.skipList, "skip-list", "", "file listing paths to leave out, one per line, each taken exactly as written (\"/usr/share/doc\"; empty lines and \"#\" lines ignored)")
	fl.StringVar(&f.statOverride, "statoverride", "", "FILE of permission changes, one \"MODE PATH\" (add bits) or \"=MODE PATH\" (set them) per line, MODE in decimal as in OSTree")
	fl.BoolVar(&f.skipIfUnchanged, "skip-if-unchanged", false, "make no commit if the tree equals the parent's")
	fl.StringArrayVar(&f.bindRefs, "bind-ref", nil, "also bind the commit to this ref, besides --branch (repeatable)")
	fl.BoolVar(&f.noBindings, "no-bindings", false, "write no ref binding (pull then accepts the commit for any ref)")
	f.fsync = true
	fl.Var(fsyncPolicy{&f.fsync}, "fsync", "sync objects to disk before moving the branch: yes/true/1, or no/false/0/none")
	fl.BoolVar(&f.disableFsync, "disable-fsync", false, "do not sync objects to disk (as --fsync=false)")
	fl.BoolVar(&f.summary, "stats", false, "print a summary of the work done to stderr")
	f.signing.add(c, "the commit")
	e.addJSON(c)
	return c
}

// parseTimestamp reads --timestamp as OSTree does, with GNU's date syntax
// and zone-less times in local time. Times before 1970 are refused: a
// commit stores unsigned seconds, and OSTree's wrapped values read as
// 1969 in its show and log but as the far future in its prune. The check
// is here, not left to commit.Commit, because 0001-01-01 UTC is the zero
// time, which there means "now".
func parseTimestamp(s string) (time.Time, error) {
	t, err := datetime.Parse(s, time.Now(), time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("--timestamp: %w", err)
	}
	if t.Unix() < 0 {
		return time.Time{}, fmt.Errorf("--timestamp: %q is %s, before 1970, which a commit cannot record", s, t.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	return t, nil
}

func runCommit(cmd *cobra.Command, e *env, f *commitFlags, args []string) error {
	opts := commit.Options{
		Branch: f.branch, Subject: f.subject, Body: f.body,
		// With a branch, --orphan only cuts the history (below), as
		// in OSTree; without one, no ref moves.
		Orphan:               f.orphan && f.branch == "",
		CanonicalPermissions: f.canonical, SkipIfUnchanged: f.skipIfUnchanged, NoSync: !f.fsync || f.disableFsync,
		BindRefs: f.bindRefs, NoBindings: f.noBindings,
		NoXattrs: f.noXattrs, ModeROExecutables: f.roExecutables, KeepMetadata: f.keepMetadata,
		Consume: f.consume, Bootable: f.bootable, GenerateSizes: f.generateSizes,
		DevinoCanonical: f.devinoCanonical, Logger: e.logger(),
	}
	if f.tarFilter != "" {
		filter, err := commit.ParsePathnameFilter(f.tarFilter)
		if err != nil {
			return usageError{fmt.Errorf("--tar-pathname-filter: %w", err)}
		}
		opts.TarPathnameFilter = filter
	}
	if f.base != "" {
		opts.Sources = append(opts.Sources, commit.Source{Kind: commit.SourceBase, Path: f.base})
	}
	if f.bodyFile != "" { // wins over --body, as in OSTree
		data, err := os.ReadFile(f.bodyFile)
		if err != nil {
			return fmt.Errorf("reading --body-file: %w", err)
		}
		if !isText(string(data)) {
			return fmt.Errorf("--body-file %s is not UTF-8 text", f.bodyFile)
		}
		opts.Body = string(data)
	}
	keys, err := f.signing.secretKeys()
	if err != nil {
		return err
	}
	opts.SignKeys = keys
	if f.branch == "" && !f.orphan {
		return usagef("a branch is required: pass --branch=NAME (or --orphan)")
	}
	if f.branch != "" {
		if err := repo.ValidateRefName(f.branch); err != nil {
			return usageError{err}
		}
	}
	for _, ref := range f.bindRefs {
		if err := repo.ValidateRefName(ref); err != nil {
			return usagef("invalid --bind-ref: %v", err)
		}
	}
	if len(args) == 1 && len(f.trees) > 0 {
		// OSTree ignores DIR then, and a layer silently left out (or
		// silently added) is not what either reader of the line expects.
		return usagef("both DIR (%s) and --tree given: pass the directory as --tree=dir=%s, in the order it overlays the other sources", args[0], args[0])
	}
	if len(args) == 1 {
		opts.Sources = append(opts.Sources, commit.Source{Kind: commit.SourceDir, Path: args[0]})
	}
	for _, t := range f.trees {
		s, err := commit.ParseSource(t)
		if err != nil {
			return usageError{fmt.Errorf("--tree: %w", err)}
		}
		if s.Kind == commit.SourceTar && s.Path == "-" {
			s.Reader = e.stdin // Commit stops waiting on a pipe at Ctrl-C
		}
		opts.Sources = append(opts.Sources, s)
	}
	if len(args) == 0 && len(f.trees) == 0 {
		opts.Sources = append(opts.Sources, commit.Source{Kind: commit.SourceDir, Path: "."})
	}
	// --add-metadata's VALUE is GVariant text, stored as its text; the
	// others are stored as given. As in OSTree, the first value given for
	// a key wins, and --add-metadata-string wins over --add-metadata
	// whatever their order (OSTree stores every value, and readers take
	// the first).
	asGiven := func(v string) ([]byte, error) { return []byte(v), nil }
	for _, m := range []struct {
		flag  string
		kvs   []string
		dst   *repo.Metadata
		value func(string) ([]byte, error)
	}{{"--add-metadata-string", f.metadata, &opts.Metadata, asGiven}, {"--add-metadata", f.typedMeta, &opts.Metadata, gvariantValue},
		{"--add-detached-metadata-string", f.detached, &opts.DetachedMetadata, asGiven}} {
		for _, kv := range m.kvs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("invalid %s %q: want KEY=VALUE", m.flag, kv)
			}
			// A key is a GVariant string in OSTree, and a JSON object
			// key could not carry its bytes.
			if !utf8.ValidString(k) {
				return usagef("invalid %s %q: the key is not UTF-8", m.flag, kv)
			}
			b, err := m.value(v)
			if err != nil {
				err = usagef("%s %s: %v", m.flag, k, err)
				if m.flag == "--add-metadata" {
					// Only commit has the flag that takes any text.
					err = withHint(err, "--add-metadata-string=KEY=VALUE stores VALUE as given")
				}
				return err
			}
			if _, set := m.dst.Get(k); !set {
				*m.dst = m.dst.Set(k, b)
			}
		}
	}
	// Given even as "" (the start of today, as GNU date reads it).
	if cmd.Flags().Changed("timestamp") {
		ts, err := parseTimestamp(f.timestamp)
		if err != nil {
			return usageError{err}
		}
		opts.Timestamp = ts
	}
	for _, o := range []struct {
		v    int64
		dst  **uint32
		name string
	}{{f.ownerUID, &opts.OwnerUID, "--owner-uid"}, {f.ownerGID, &opts.OwnerGID, "--owner-gid"}} {
		if o.v > 0xfffffffe { // any negative value means unset, as in OSTree
			return usagef("invalid %s %d", o.name, o.v)
		}
		if o.v > 0 && f.canonical { // as in OSTree: canonical means owner 0
			return usagef("--canonical-permissions and a non-zero %s conflict", o.name)
		}
		if o.v >= 0 {
			v := uint32(o.v)
			*o.dst = &v
		}
	}
	if f.statOverride != "" {
		data, err := os.ReadFile(f.statOverride)
		if err != nil {
			return fmt.Errorf("reading --statoverride: %w", err)
		}
		if opts.StatOverrides, err = commit.ParseStatOverrides(data); err != nil {
			return usagef("--statoverride %s: %v", f.statOverride, err)
		}
	}
	if f.skipList != "" {
		var err error
		if opts.SkipList, err = readSkipList(f.skipList); err != nil {
			return err
		}
		// A line that could match nothing is refused up front rather
		// than tidied into a path that might match something else.
		for _, p := range opts.SkipList {
			if err := commit.CheckSkipPath(p); err != nil {
				return usagef("--skip-list %s: %v", f.skipList, err)
			}
		}
	}
	if f.editor {
		var err error
		if opts.Subject, opts.Body, err = editMessage(e, f.branch, opts.Subject, opts.Body); err != nil {
			return err
		}
	}
	// As in OSTree: a subject or body that is not UTF-8 is text in
	// another encoding, which every reader of the log would see mangled.
	for _, t := range []struct{ what, v string }{{"subject", opts.Subject}, {"body", opts.Body}} {
		if !isText(t.v) {
			return fmt.Errorf("the commit's %s %s is not UTF-8 text", t.what, strconv.Quote(t.v))
		}
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	if f.parent != "" {
		if f.parent == "none" {
			opts.NoParent = true
		} else {
			id, err := r.ResolveRev(f.parent)
			if err != nil {
				return fmt.Errorf("--parent: %w", err)
			}
			opts.Parent = id
		}
	} else if f.orphan {
		opts.NoParent = true
	}
	if r.Mode() == repo.ModeBareUserOnly {
		// Refused rather than dropped (OSTree records 0:0 silently):
		// the commit would not say what the flag asked for.
		for _, o := range []struct {
			v    int64
			name string
		}{{f.ownerUID, "--owner-uid"}, {f.ownerGID, "--owner-gid"}} {
			if o.v > 0 {
				return usagef("%s=%d: a bare-user-only repository records no owner, every entry is 0:0: leave %s out, or commit to a bare, bare-user or archive repository", o.name, o.v, o.name)
			}
		}
	}
	if f.generateSizes && r.Mode() != repo.ModeArchive {
		fmt.Fprintf(e.stderr, "note: --generate-sizes records nothing in a %s repository (pulls read archive ones)\n", r.Mode())
	}
	b := e.newBar()
	if b != nil {
		opts.Progress = func(s commit.Stats) { b.draw("Scanning", s.Files, "files", s.BytesScanned) }
	}
	res, err := commit.Commit(cmd.Context(), r, opts)
	b.done()
	if res == nil {
		left := "no ref was written"
		if opts.Branch != "" {
			left = "branch " + opts.Branch + " is unmoved"
		}
		return ifStopped(err, "commit stopped: "+left+"; objects it stored stay until prune")
	}
	// With res, the commit landed even if err is set (--consume kept
	// entries, say): it is printed like any other, then the error.
	landedErr := err
	var printErr error
	if e.json {
		printErr = e.printJSON(res)
	} else if f.tableOutput {
		s := res.Stats
		dirs, err := treeDirs(r, res.Commit)
		if err != nil {
			landedErr = errors.Join(landedErr, err)
		} else {
			// OSTree counts a dirtree and a dirmeta per directory, and the
			// commit, whether stored anew or found: so does the table, also
			// when the stat cache spared otree those writes.
			_, printErr = fmt.Fprintf(e.stdout, "Commit: %s\nMetadata Total: %d\nMetadata Written: %d\nContent Total: %d\nContent Written: %d\nContent Cache Hits: %d\nContent Bytes Written: %d\n",
				res.Commit, 2*dirs+1, s.Objects-s.FileObjects, s.Files, s.FileObjects, s.FilesCached, s.BytesScanned-s.BytesDeduped)
		}
	} else {
		_, printErr = fmt.Fprintln(e.stdout, res.Commit)
	}
	if printErr != nil {
		// The commit landed all the same: its id must not be lost.
		landed := "stored, no ref written"
		if opts.Branch != "" {
			landed = "is now branch " + opts.Branch
		}
		landedErr = errors.Join(fmt.Errorf("commit %s %s, but printing it failed: %w", res.Commit, landed, printErr), landedErr)
	}
	e.refsChanged = opts.Branch != ""
	if landedErr != nil && e.refsChanged {
		// run updates the summary only after a success; the ref moved.
		e.refsChanged = false
		if err := e.autoUpdateSummary(cmd.Context()); err != nil {
			landedErr = errors.Join(landedErr, err)
		}
	}
	if f.summary || isTerminal(e.stderr) {
		s := res.Stats
		fmt.Fprintf(e.stderr, "Files scanned: %d (%s), hashed: %d\nObjects written: %d (%s)\nBytes deduplicated: %s\n",
			s.Files, humanBytes(s.BytesScanned), s.FilesHashed, s.Objects, humanBytes(s.BytesWritten), humanBytes(s.BytesDeduped))
		if res.Unchanged {
			fmt.Fprintln(e.stderr, "Tree unchanged: no new commit")
		}
	}
	return landedErr
}

// treeDirs counts the directories of a commit's tree, the root included.
func treeDirs(r *repo.Repo, commit repo.ID) (int64, error) {
	c, err := r.ReadCommit(commit)
	if err != nil {
		return 0, err
	}
	var n int64
	var walk func(repo.ID) error
	walk = func(id repo.ID) error {
		n++
		t, err := r.ReadDirTree(id)
		if err != nil {
			return err
		}
		for _, d := range t.Dirs {
			if err := walk(d.TreeID); err != nil {
				return err
			}
		}
		return nil
	}
	return n, walk(c.RootTree)
}

// isText reports whether s is UTF-8 text as OSTree takes a commit's
// subject and body: valid UTF-8 without a NUL, which no text holds (a
// binary file given to -F) and which ends the string in OSTree's format.
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// readSkipList reads a --skip-list file: one path per line, taken exactly
// as written up to the newline (spaces and a carriage return are part of
// the name, as in OSTree). Empty lines and lines starting with "#" (never a
// path, which starts with "/") are ignored.
func readSkipList(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading --skip-list: %w", err)
	}
	var paths []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			paths = append(paths, l)
		}
	}
	return paths, nil
}
