package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"github.com/otree/otree/deploy"
	"github.com/otree/otree/internal/jsonout"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the operation failed
	exitUsage = 2 // the command line was malformed
	// 128+N: SIGINT, SIGTERM or SIGHUP (N) stopped the command, as a
	// shell reports a process its signal killed.
)

// interrupted is the cause of main's context when a signal cancelled it.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return "interrupted by " + unix.SignalName(i.sig) }

// Is makes an interruption a cancellation: net/http returns the context's
// cause, not context.Canceled, from a request the signal stopped.
func (interrupted) Is(target error) bool { return target == context.Canceled }

// ifStopped adds to err, if it is a cancellation, what the stopped command
// left behind (say): "context canceled" alone tells a user nothing.
func ifStopped(err error, say string) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", say, err)
	}
	return err
}

// env is what every command shares: global flags and the output streams,
// injectable so tests run the CLI in-process.
type env struct {
	repoPath string
	json     bool
	verbose  bool
	// refsChanged: the command changed the repository's refs or deltas,
	// so run makes the summary anew if the config asks for it.
	refsChanged bool
	// reader: the command changes nothing, so it may die at the first
	// write its reader's going away fails (readers).
	reader bool
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// shownBar is the progress bar on stderr, if one was drawn: the
	// logger's records clear its line first (logWriter).
	shownBar atomic.Pointer[bar]
}

// usageError marks errors in how the command was invoked.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run executes the CLI and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	out := &outWriter{w: stdout}
	e := &env{stdin: stdin, stdout: out, stderr: stderr}
	root := newRootCommand(e)
	if f, ok := stdout.(*os.File); ok && f == os.Stdout {
		out.onBrokenPipe = func() {
			if e.reader {
				dieOfBrokenPipe()
			}
		}
	}
	root.PersistentPreRun = func(cmd *cobra.Command, args []string) {
		e.reader = readers[cmd.CommandPath()]
	}
	usageArgs(root)
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		err = unknownCommand(err)
	}
	if err == nil && e.refsChanged {
		err = e.autoUpdateSummary(ctx)
	}
	if out.brokenPipe() && (err == nil || onlyFrom(err, out.err)) {
		// The reader has what it wanted: stop silently, as a Unix tool
		// SIGPIPE kills does. The command itself ran to its end (a
		// commit moved its branch and updated the summary).
		return exitBrokenPipe
	}
	if err == nil {
		err = out.failed()
	}
	if err == nil {
		return exitOK
	}
	if in := (interrupted{}); errors.As(context.Cause(ctx), &in) && errors.Is(err, context.Canceled) {
		// The command's own error ends in "context canceled", which says
		// nothing of why; or in the signal itself, where net/http passed
		// up the context's cause, which is then named once, in front.
		if msg := err.Error(); strings.HasSuffix(msg, ": "+in.Error()) {
			err = errors.New(strings.TrimSuffix(msg, ": "+in.Error()))
		}
		printError(stderr, in.Error()+": ", err)
		return 128 + int(in.sig)
	}
	printError(stderr, "", err)
	printHint(stderr, err)
	var ue usageError
	if errors.As(err, &ue) || isFlagError(err) {
		return exitUsage
	}
	return exitError
}

// hinted is an error a command gives a hint of its own, where only the
// command knows what to suggest (the flags it was given).
type hinted struct {
	error
	hint string
}

func (h *hinted) Unwrap() error { return h.error }

// withHint gives err the hint h; nil stays nil.
func withHint(err error, h string) error {
	if err == nil {
		return nil
	}
	return &hinted{err, h}
}

// sentinelHints are the hints of the library's sentinel errors.
var sentinelHints = []struct {
	err  error
	hint string
}{
	{deploy.ErrStaterootNeeded, "give a stateroot with --os"},
	{deploy.ErrNotSysroot, "create one with `otree admin init-fs`"},
	{deploy.ErrFellBack, "`otree admin rollback` makes the booted deployment the default"},
	{repo.ErrNoConfig, "create a repository with `otree init`"},
	{remote.ErrRemoteNotFound, "add it with `otree remote add`"},
	{remote.ErrNoSummary, "`otree summary -u` run in that repository writes one"},
	{remote.ErrSummarySigned, "write it with `otree summary -u --sign=KEY`"},
	{remote.ErrBareUserOnlyMode, "--bareuseronly-files refuses setuid, setgid, sticky and other-writable files"},
	{remote.ErrRefsDisagree, "pass --commit to choose"},
}

// hint returns what to run or pass about err, in the command line's
// terms: the library's errors say what is wrong and name what it
// concerns, and the flags and commands that deal with it are the CLI's to
// name. A command's own hint comes first. "" for none.
func hint(err error) string {
	var (
		h  *hinted
		de *deploy.DowngradeError
		ns *deploy.NoStaterootError
		fm *delta.FallbackMissingError
		ur *repo.UnreadableRefsError
	)
	switch {
	case errors.As(err, &h):
		return h.hint
	case errors.As(err, &de):
		return "pass --allow-downgrade to deploy it"
	case errors.As(err, &ns):
		if ns.Missing != "" {
			// os-init makes what is missing and keeps what is there.
			return fmt.Sprintf("complete it with `otree admin os-init %s`", ns.OS)
		}
		return fmt.Sprintf("create it with `otree admin os-init %s`", ns.OS)
	case errors.As(err, &fm):
		return "pull them first, or generate the delta with --min-fallback-size=0"
	case errors.As(err, &ur):
		// What is no valid ref name (a symlink in place of a remote's
		// directory, a file in refs/remotes) no ref command can touch.
		for _, n := range ur.Refs {
			if repo.ValidateRefName(n) != nil {
				return fmt.Sprintf("%s names no ref otree can delete or write: move what stands there in the repository's refs/ (the error names it) out by hand", n)
			}
		}
		// Whatever failed on it (refs, prune, summary -u), these repair it.
		ref, it := "REF", "one"
		if len(ur.Refs) == 1 {
			ref, it = ur.Refs[0], "it"
		}
		return fmt.Sprintf("`otree refs --delete %s` deletes %s, `otree refs --create=%s --force REV` points %s at a commit", ref, it, ref, it)
	}
	for _, s := range sentinelHints {
		if errors.Is(err, s.err) {
			return s.hint
		}
	}
	return ""
}

// printHint prints err's hint, if it has one, on the line below it.
func printHint(w io.Writer, err error) {
	if h := hint(err); h != "" {
		fmt.Fprintf(w, "hint: %s\n", printable(h))
	}
}

// printError writes err on w as "error: " lines, prefix after the word:
// one line for each error errors.Join joined, then the usage line of an
// error in the operands (withUsage).
func printError(w io.Writer, prefix string, err error) {
	msg, usage := err.Error(), ""
	if ue, ok := err.(usageError); ok {
		if u, ok := ue.error.(withUsage); ok {
			msg, usage = u.msg, u.use
		}
	}
	for _, l := range joinedLines(err, msg) {
		fmt.Fprintf(w, "error: %s%s\n", prefix, printable(l))
	}
	if usage != "" {
		fmt.Fprintf(w, "Usage: %s\n", usage)
	}
}

// joinedLines returns the messages of the errors errors.Join joined into
// err, whose message is msg, or msg alone when err joins none: the
// newlines between them are the only ones an error line keeps.
func joinedLines(err error, msg string) []string {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []string{msg}
	}
	var parts []string
	for _, e := range j.Unwrap() {
		parts = append(parts, e.Error())
	}
	// fmt.Errorf with several %w also unwraps to a list, but writes
	// its errors within one message.
	if strings.Join(parts, "\n") != msg {
		return []string{msg}
	}
	var lines []string
	for i, e := range j.Unwrap() {
		lines = append(lines, joinedLines(e, parts[i])...)
	}
	return lines
}

// printable returns s with each character that does not print, newline
// included (tab excepted), and each byte that is not UTF-8 written as a Go
// escape (\x1b, \n, \u202e, \xff): a name in an error or warning cannot
// recolour the terminal, move its cursor, reorder the line it is read in
// or start a line of its own.
func printable(s string) string {
	keep := func(r rune) bool { return r == '\t' || strconv.IsPrint(r) }
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !keep(r) }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keep(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

func isFlagError(err error) bool {
	var fe interface{ FlagError() }
	if errors.As(err, &fe) {
		return true
	}
	// cobra's own error for a word that names no command; flag errors go
	// through the root's FlagErrorFunc and argument counts through
	// usageArgs, so no error of a command's work is mistaken for one.
	return strings.HasPrefix(err.Error(), "unknown command ")
}

// usageArgs makes the argument-count errors of c and its subcommands
// usage errors.
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{argError(c, args, err)}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "otree",
		Short:         "Store filesystem trees as content-addressed commits",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       "-", // cobra's --version, printed by the template below
	}
	// Without a command: a usage error listing them, as OSTree's "No
	// command specified", not cobra's help and exit 0.
	root.RunE = func(cmd *cobra.Command, args []string) error {
		return usagef("no command given (want %s)", strings.Join(operations(cmd), ", "))
	}
	root.SetVersionTemplate(versionText())
	// Defined here so cobra adds no -v: that is OSTree's --verbose.
	// Persistent, and every command given a Version below, so that
	// `otree log --version` prints it too, as OSTree's commands do.
	root.PersistentFlags().Bool("version", false, "print otree's version")
	root.PersistentFlags().StringVar(&e.repoPath, "repo", "", "path to the repository (default: the current directory if it is one, else $OTREE_REPO or $OSTREE_REPO, else "+sysrootRepo+")")
	root.PersistentFlags().BoolVarP(&e.verbose, "verbose", "v", false, "print debug information (each request of a pull, the stat cache of a commit) on stderr")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if o := ostreeOnlyFlag(c, err); o != nil {
			return o
		}
		if negativeOperand(err) {
			return withHint(usageError{err}, fmt.Sprintf("put -- before the arguments, so that one starting with '-' is not read as an option: %s -- ARG...", c.CommandPath()))
		}
		return usageError{flagError(err)}
	})
	root.AddCommand(
		newInitCommand(e),
		newCommitCommand(e),
		newRefsCommand(e),
		newRevParseCommand(e),
		newLogCommand(e),
		newShowCommand(e),
		newLsCommand(e),
		newCatCommand(e),
		newChecksumCommand(e),
		newConfigCommand(e),
		newResetCommand(e),
		newFsckCommand(e),
		newPruneCommand(e),
		newCheckoutCommand(e),
		newDiffCommand(e), newExportCommand(e),
		newAdminCommand(e),
		newRemoteCommand(e), newPullCommand(e), newPullLocalCommand(e), newSummaryCommand(e),
		newFindRemotesCommand(e), newCreateUSBCommand(e),
		newSignCommand(e),
		newStaticDeltaCommand(e),
	)
	addOSTreeOnlyCommands(root)
	versioned(root)
	addCompletions(root, e)
	return root
}

// negativeOperand tells whether err is pflag's for an unknown shorthand
// that is a digit: a negative number meant as an argument (config set KEY
// -1), which only comes through after "--".
func negativeOperand(err error) bool {
	const prefix = "unknown shorthand flag: '"
	msg := err.Error()
	return strings.HasPrefix(msg, prefix) && len(msg) > len(prefix) && msg[len(prefix)] >= '0' && msg[len(prefix)] <= '9'
}

// versioned makes cobra answer --version on c's subcommands as on c:
// cobra does so only for a command with a Version.
func versioned(c *cobra.Command) {
	for _, sub := range c.Commands() {
		sub.Version = c.Version
		versioned(sub)
	}
}

// logger writes what the library reports on the way to stderr: notices
// (a retry, a fallback) always, debug information with --verbose.
func (e *env) logger() *slog.Logger {
	level := slog.LevelInfo
	if e.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(logWriter{e}, &slog.HandlerOptions{Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // the terminal's own time is enough
			}
			return a
		}}))
}

// addJSON adds --json to a reporting command.
func (e *env) addJSON(c *cobra.Command) {
	c.Flags().BoolVar(&e.json, "json", false, "print machine-readable JSON")
}

// sysrootRepo is the booted system's repository, where OSTree's commands
// look for /sysroot/ostree/repo.
const sysrootRepo = "/sysroot/otree/repo"

// errNoRepo is the usage error of a command that found no repository.
var errNoRepo = usagef("no repository: pass --repo=PATH, set OTREE_REPO, or run in a repository")

// repoDir is the repository commands work on, in the order OSTree looks:
// --repo; else the current directory when it is a repository; else
// $OTREE_REPO, or OSTree's $OSTREE_REPO; else the booted system's. It is
// "" when there is none.
func (e *env) repoDir() string {
	if e.repoPath != "" {
		return e.repoPath
	}
	if wd, err := os.Getwd(); err == nil && isRepo(wd) {
		return wd
	}
	for _, v := range []string{"OTREE_REPO", "OSTREE_REPO"} {
		if p := os.Getenv(v); p != "" {
			return p
		}
	}
	if isRepo(sysrootRepo) {
		return sysrootRepo
	}
	return ""
}

// isRepo tells whether dir looks like a repository: a config file and an
// objects directory, as OSTree tells.
func isRepo(dir string) bool {
	c, err := os.Stat(filepath.Join(dir, "config"))
	o, err2 := os.Stat(filepath.Join(dir, "objects"))
	return err == nil && err2 == nil && c.Mode().IsRegular() && o.IsDir()
}

// open opens the repository repoDir names.
func (e *env) open() (*repo.Repo, error) {
	dir := e.repoDir()
	if dir == "" {
		return nil, errNoRepo
	}
	r, err := repo.Open(dir)
	if err != nil {
		return nil, err
	}
	r.SetLogger(e.logger())
	// The running system's repository (/otree/repo) reads the remotes its
	// deployment ships, as the admin commands do.
	if here, err := os.Stat(r.Path()); err == nil {
		if sys, err := os.Stat("/otree/repo"); err == nil && os.SameFile(here, sys) {
			r.SetRemotesDir(filepath.Join("/", deploy.RemotesDir))
		}
	}
	return r, nil
}

// autoUpdateSummary writes the summary anew after a command changed refs
// or deltas, when the repository's config sets core.auto-update-summary
// (OSTree's key). A signed summary is left as it is, with a warning.
func (e *env) autoUpdateSummary(ctx context.Context) error {
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = remote.AutoUpdateSummary(ctx, r)
	// The command itself is done: only the summary lags its refs. Said
	// whatever stopped the summary (a full disk, a signal), so that a
	// script does not take the change for undone and make it again.
	sum := r.Path(remote.SummaryFile)
	switch {
	case errors.Is(err, remote.ErrSummarySigned):
		fmt.Fprintf(e.stderr, "warning: %s\n", printable(err.Error()))
		printHint(e.stderr, err)
		return nil
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("stopped updating the summary after the command was done: %s is as it was; `otree summary -u` updates it: %w", sum, err)
	case err != nil:
		return fmt.Errorf("the command was done, but %s is as it was; `otree summary -u` updates it: %w", sum, err)
	}
	return nil
}

// printJSON writes v as indented JSON, with the bytes of every string
// that is not UTF-8 beside it (internal/jsonout).
func (e *env) printJSON(v any) error {
	out, err := jsonout.Marshal(v)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, out, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err = e.stdout.Write(b.Bytes())
	return err
}
