package main

import (
	"fmt"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

func newCheckoutCommand(e *env) *cobra.Command {
	o := &checkout.Options{}
	c := &cobra.Command{
		Use:   "checkout REV DEST",
		Short: "Check out a commit into a directory",
		Long: `Write the tree of REV into DEST, hardlinking file objects from the repository
where its mode allows (bare as root; bare-user and bare-user-only with
--user-mode) and copying them otherwise (archive repositories are always
decompressed). DEST must not exist unless a union mode is given.

Every entry gets modification time 0, so a commit checks out identically
everywhere (hardlinked files keep the repository object's times). Writes
never leave DEST: symlinks already in DEST are not followed. A checkout that
fails part way leaves what it wrote in DEST.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheckout(cmd, e, o, args)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&o.UserMode, "user-mode", "U", false, "do not restore ownership or xattrs, and clear setuid/setgid")
	fl.BoolVarP(&o.RequireHardlinks, "require-hardlinks", "H", false, "fail if a file cannot be hardlinked from the repository")
	fl.BoolVarP(&o.ForceCopy, "force-copy", "C", false, "never hardlink (reflink where the filesystem can)")
	fl.StringVar(&o.Subpath, "subpath", "", "check out only this directory or file of the commit")
	fl.BoolVar(&o.Union, "union", false, "DEST may exist: keep its directories, overwrite its files")
	fl.BoolVar(&o.UnionAdd, "union-add", false, "DEST may exist: keep everything in it, add what is missing")
	fl.BoolVar(&o.UnionIdentical, "union-identical", false, "DEST may exist: add what is missing, fail where an existing file differs")
	fl.BoolVar(&o.Whiteouts, "whiteouts", false, `apply OCI whiteouts (".wh.NAME", ".wh..wh..opq") instead of writing them`)
	e.addJSON(c)
	return c
}

func runCheckout(cmd *cobra.Command, e *env, o *checkout.Options, args []string) error {
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
	if args[1] == "" {
		return usagef("DEST is empty")
	}
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	id, err := r.ResolveRev(args[0])
	if err != nil {
		return err
	}
	opts := *o
	b := newBar(e.stderr)
	if b != nil {
		opts.Progress = func(s checkout.Stats) { b.draw("Checking out", s.Files, "files", s.Bytes) }
	}
	st, err := checkout.Checkout(cmd.Context(), r, id, args[1], opts)
	b.done()
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(struct {
			Commit repo.ID
			Dest   string
			Stats  checkout.Stats
		}{id, args[1], *st})
	}
	if b != nil {
		fmt.Fprintf(e.stderr, "Checked out %d files (%d hardlinked, %d copied), %d directories, %s\n",
			st.Files, st.Hardlinked, st.Copied, st.Dirs, humanBytes(st.Bytes))
	}
	return nil
}
