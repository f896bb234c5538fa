package main

import (
	"path/filepath"
	"strings"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/spf13/cobra"
)

// Shell completion (`otree completion bash|zsh|fish`) offers the
// repository's refs where a command takes a revision, and its remotes'
// names where it takes a remote, as OSTree's bash completion does. A
// repository that cannot be opened offers nothing, silently.

// revArgs are the commands whose first n arguments (all, for -1) are
// revisions; the arguments after them complete as files.
var revArgs = map[string]int{
	"cat": 1, "checkout": 1, "diff": 2, "export": 1, "log": 1, "ls": 1,
	"reset": 2, "rev-parse": -1, "show": -1, "sign": 1, "refs": -1,
	"static-delta generate": 1,
	"admin deploy":          1, "admin switch": 1,
}

// revFlags are the flags that take a revision, by command.
var revFlags = map[string][]string{
	"commit":                {"parent", "base"},
	"static-delta generate": {"from", "to"},
	"static-delta reindex":  {"to"},
}

// remoteArgs are the commands whose first argument is a remote's name.
var remoteArgs = []string{
	"pull", "remote delete", "remote show-url", "remote refs", "remote summary",
	"remote list-cookies", "remote add-cookie", "remote delete-cookie",
}

// addCompletions sets the completion of the commands above under root.
func addCompletions(root *cobra.Command, e *env) {
	find := func(path string) *cobra.Command {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil || c == root {
			panic("completion for unknown command " + path)
		}
		return c
	}
	for path, n := range revArgs {
		find(path).ValidArgsFunction = func(cmd *cobra.Command, args []string, typed string) ([]string, cobra.ShellCompDirective) {
			if n >= 0 && len(args) >= n {
				return nil, cobra.ShellCompDirectiveDefault
			}
			refs := e.completeRefs(cmd, typed)
			if path == "diff" && len(refs) == 0 {
				return nil, cobra.ShellCompDirectiveDefault // a directory, then
			}
			return refs, cobra.ShellCompDirectiveNoFileComp
		}
	}
	for path, flags := range revFlags {
		c := find(path)
		for _, f := range flags {
			if err := c.RegisterFlagCompletionFunc(f, func(cmd *cobra.Command, _ []string, typed string) ([]string, cobra.ShellCompDirective) {
				return e.completeRefs(cmd, typed), cobra.ShellCompDirectiveNoFileComp
			}); err != nil {
				panic(err)
			}
		}
	}
	for _, path := range remoteArgs {
		find(path).ValidArgsFunction = func(cmd *cobra.Command, args []string, typed string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			r := e.completionRepo(cmd)
			if r == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			defer r.Close()
			var names []string
			for _, rm := range remote.ListRemotes(r) {
				if strings.HasPrefix(rm.Name, typed) {
					names = append(names, rm.Name)
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		}
	}
}

// completeRefs lists the refs, local then remote ones (REMOTE:REF), that
// start with typed.
func (e *env) completeRefs(cmd *cobra.Command, typed string) []string {
	r := e.completionRepo(cmd)
	if r == nil {
		return nil
	}
	defer r.Close()
	refs, _ := r.ListRefs("") // unreadable refs aside, the others
	var names []string
	for _, ref := range refs {
		if strings.HasPrefix(ref.Name, typed) {
			names = append(names, ref.Name)
		}
	}
	return names
}

// completionRepo opens the repository cmd works on: the sysroot's for the
// admin commands, else the one --repo or the environment names.
func (e *env) completionRepo(cmd *cobra.Command) *repo.Repo {
	if p := cmd.Parent(); p != nil && p.Name() == "admin" {
		sysroot, err := cmd.Flags().GetString("sysroot")
		if err != nil {
			return nil
		}
		r, err := repo.Open(filepath.Join(sysroot, "otree", "repo"))
		if err != nil {
			return nil
		}
		return r
	}
	r, err := e.open()
	if err != nil {
		return nil
	}
	return r
}
