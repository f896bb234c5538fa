package main

import (
	"fmt"

	"github.com/otree/otree/deploy"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/spf13/cobra"
)

func newConfigCommand(e *env) *cobra.Command {
	var group string
	c := &cobra.Command{
		Use:   "config (get KEY | set KEY VALUE | unset KEY)",
		Short: "Read or change the repository's configuration",
		Long: `Read or change one setting of the repository's config file. KEY is
SECTION.NAME ("core.lock-timeout-secs", ` + "`remote \"origin\".url`" + `), or just NAME with
--group=SECTION. As in OSTree, SECTION ends at the first dot, so NAME may hold
dots (` + "`remote \"flathub\".xa.title`" + `); where OSTree 2022.7 differs, a quoted part
of SECTION is taken whole, dots and all (` + "`remote \"org.example.Os\".url`" + `).
core.mode and core.repo_version describe how the objects are stored and
cannot be changed here.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("config needs an operation: get, set or unset")
			}
			return usagef("unknown config operation %q (want get, set or unset)", args[0])
		},
	}
	c.PersistentFlags().StringVar(&group, "group", "", "section of KEY, which is then only the NAME")
	// key returns the section and name KEY (with --group) names, and
	// the key as SECTION.NAME for messages and value checks.
	key := func(arg string) (section, name, k string, err error) {
		if group != "" {
			// --group's section is taken as it is, dots and all.
			if arg == "" {
				return "", "", "", usagef("config key is empty")
			}
			return group, arg, group + "." + arg, nil
		}
		if section, name, err = repo.SplitConfigKey(arg); err != nil {
			return "", "", "", usagef("config key %q must look like SECTION.NAME", arg)
		}
		return section, name, arg, nil
	}
	withRepo := func(fn func(r *repo.Repo) error) error {
		r, err := e.open()
		if err != nil {
			return err
		}
		defer r.Close()
		return fn(r)
	}
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of KEY",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sec, name, k, err := key(args[0])
			if err != nil {
				return err
			}
			return withRepo(func(r *repo.Repo) error {
				v, ok := r.Config().GetIn(sec, name)
				if !ok {
					return fmt.Errorf("config key %q is not set in %s", k, r.Path("config"))
				}
				if e.json {
					return e.printJSON(configValueJSON{Key: k, Value: v})
				}
				_, err := fmt.Fprintln(e.stdout, v)
				return err
			})
		},
	}
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Set KEY to VALUE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sec, name, k, err := key(args[0])
			if err != nil {
				return err
			}
			if err := checkMutable(k); err != nil {
				return err
			}
			if err := repo.CheckConfigValue(k, args[1]); err != nil {
				return usageError{err}
			}
			if err := deploy.CheckConfigValue(k, args[1]); err != nil {
				return usageError{err}
			}
			if k == remote.ConfigDefaultFinders {
				if _, err := remote.ParseDefaultFinders(args[1]); err != nil {
					return usageError{err}
				}
			}
			return withRepo(func(r *repo.Repo) error {
				var bad error
				err := r.UpdateConfig(func(c *repo.Config) error {
					bad = c.SetIn(sec, name, args[1])
					return bad
				})
				if err != nil && err == bad {
					return usageError{err}
				}
				if err != nil {
					return fmt.Errorf("setting config key %q: %w", k, err)
				}
				if e.json {
					return e.printJSON(configValueJSON{Key: k, Value: args[1]})
				}
				return nil
			})
		},
	}
	unset := &cobra.Command{
		Use:   "unset KEY",
		Short: "Remove KEY (nothing happens if it is not set)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sec, name, k, err := key(args[0])
			if err != nil {
				return err
			}
			if err := checkMutable(k); err != nil {
				return err
			}
			return withRepo(func(r *repo.Repo) error {
				var was bool
				err := r.UpdateConfig(func(c *repo.Config) error {
					was = c.UnsetIn(sec, name)
					return nil
				})
				if err != nil {
					return fmt.Errorf("unsetting config key %q: %w", k, err)
				}
				if e.json {
					return e.printJSON(struct {
						Key     string `json:"key"` // with key_base64 when not UTF-8
						Removed bool   `json:"removed"`
					}{k, was})
				}
				return nil
			})
		},
	}
	for _, sub := range []*cobra.Command{get, set, unset} {
		e.addJSON(sub)
	}
	c.AddCommand(get, set, unset)
	return c
}

// checkMutable refuses changes to the keys that say how objects are stored:
// a repository whose config disagrees with its objects cannot be read.
func checkMutable(key string) error {
	switch key {
	case "core.mode", "core.repo_version":
		return fmt.Errorf("config key %q describes how the objects are stored and cannot be changed", key)
	}
	return nil
}

// configValueJSON is config get's and set's --json: a struct, so that a
// value that is not UTF-8 gets its value_base64 (printJSON).
type configValueJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}
