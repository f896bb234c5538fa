package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/otree/otree/deploy"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/otree/otree/repo/sign"
	"github.com/spf13/cobra"
)

func newRemoteCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "remote OPERATION",
		Short: "Manage the remotes commits are pulled from",
		Long: `Manage remotes: named sources of commits, kept in the repository's config as
[remote "NAME"] sections with url= and branches= keys, as OSTree keeps them.`,
	}
	subs := []*cobra.Command{newRemoteAddCommand(e), newRemoteDeleteCommand(e), newRemoteListCommand(e),
		newRemoteShowURLCommand(e), newRemoteRefsCommand(e), newRemoteSummaryCommand(e),
		newRemoteAddCookieCommand(e), newRemoteDeleteCookieCommand(e), newRemoteListCookiesCommand(e)}
	c.AddCommand(subs...)
	needOperation(c)
	return c
}

func newRemoteAddCookieCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "add-cookie NAME DOMAIN PATH COOKIE_NAME VALUE",
		Short: "Send a cookie with every request to the remote NAME",
		Long: `Make every request of a pull from the remote NAME to DOMAIN (that host,
not its subdomains), for PATH and below, carry the cookie COOKIE_NAME=VALUE,
replacing one of the same domain, path and name. Cookies are kept in REPO/NAME.cookies.txt
(the cookie file format curl reads), readable by its owner only.`,
		Args: cobra.ExactArgs(5),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				return remote.AddCookie(r, args[0], remote.Cookie{Domain: args[1], Path: args[2], Name: args[3], Value: args[4]})
			})
		},
	}
}

func newRemoteDeleteCookieCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete-cookie NAME DOMAIN PATH COOKIE_NAME",
		Short: "Stop sending a cookie to the remote NAME",
		Args:  cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				return remote.DeleteCookie(r, args[0], args[1], args[2], args[3])
			})
		},
	}
}

func newRemoteListCookiesCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "list-cookies NAME",
		Short: "List the cookies sent to the remote NAME",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				cs, err := remote.ListCookies(r, args[0])
				if err != nil {
					return err
				}
				if e.json {
					return e.printJSON(append([]remote.Cookie{}, cs...))
				}
				for _, c := range cs {
					fmt.Fprintf(e.stdout, "--\nDomain: %s\nPath: %s\nName: %s\nValue: %s\n", c.Domain, c.Path, c.Name, c.Value)
				}
				return nil
			})
		},
	}
	e.addJSON(c)
	return c
}

// inRepo runs fn on the opened repository.
func (e *env) inRepo(fn func(r *repo.Repo) error) error {
	r, err := e.open()
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(r)
}

// inRepoOf runs fn on the system repository of sysroot when one is given
// (OSTree's --sysroot, which overrides --repo), with the remotes its
// deployment ships; otherwise on the repository, as inRepo.
func (e *env) inRepoOf(sysroot string, fn func(r *repo.Repo) error) error {
	if sysroot == "" {
		return e.inRepo(fn)
	}
	a := &adminEnv{env: e, sysroot: sysroot}
	return a.inSysroot(func(s *deploy.Sysroot) error { return fn(s.Repo()) })
}

func newRemoteAddCommand(e *env) *cobra.Command {
	var (
		sysroot              string
		sets                 []string
		ifNotExists, force   bool
		noGPGVerify, noVerif bool
		signVerify           []string
		contentURL           string
		collectionID         string
	)
	c := &cobra.Command{
		Use:   "add NAME URL [BRANCH...]",
		Short: "Add a remote",
		Long: `Add a remote named NAME fetching from URL (http://, https:// or file://).
BRANCHes become its branches= key: what "otree pull NAME" fetches by default.
--set=KEY=VALUE sets any other key of the section (repeatable).
--sign-verify=ed25519=inline:PUBKEY or ed25519=file:PATH makes pull refuse
commits not signed by that key (or the keys in PATH): it sets sign-verify=true
and verification-ed25519-key or -file. --no-sign-verify sets sign-verify and
sign-verify-summary to false. --no-gpg-verify, and --no-sign-verify, set
gpg-verify to false, as OSTree does. --contenturl=URL (the contenturl key) fetches
objects and static deltas from another server, a CDN say; the summary, its
signature and the refs, which say what to trust, still come from URL.
--collection-id=ID (the collection-id key) makes pull refuse commits bound to
another collection than ID.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ifNotExists && force {
				return usagef("--if-not-exists and --force are exclusive")
			}
			set, err := parseSets(sets)
			if err != nil {
				return err
			}
			opts := remote.AddOptions{IfNotExists: ifNotExists, Force: force, Set: set}
			// A --set of contenturl wins over --contenturl, as in
			// OSTree (where --collection-id wins over its --set).
			if _, set := opts.Set["contenturl"]; contentURL != "" && !set {
				opts.Set["contenturl"] = contentURL
			}
			if collectionID != "" {
				opts.Set["collection-id"] = collectionID
			}
			if noVerif && len(signVerify) > 0 {
				return usagef("--sign-verify and --no-sign-verify are exclusive")
			}
			// The key option holds a list, so every inline key given is
			// kept; the file option holds one path.
			var inline []string
			for _, sv := range signVerify {
				k, v, err := parseSignVerify(sv)
				if err != nil {
					return err
				}
				if k == remote.KeyVerificationKey {
					inline = append(inline, v)
				} else if old, ok := opts.Set[k]; ok && old != v {
					return usagef("--sign-verify: one ed25519=file:PATH only (%s or %s): put their keys in one file", old, v)
				}
				opts.Set[k] = v
				opts.Set[remote.KeySignVerify] = "true"
			}
			if len(inline) > 0 {
				opts.Set[remote.KeyVerificationKey] = strings.Join(inline, ";")
			}
			if noVerif {
				opts.Set[remote.KeySignVerify] = "false"
				opts.Set[remote.KeySignVerifySummary] = "false"
			}
			if noGPGVerify || noVerif {
				// As OSTree writes it, over a --set of the key: the
				// config then reads the same to both, and a gpgkeypath
				// or NAME.trustedkeys.gpg no longer asks for checks.
				opts.Set[remote.KeyGPGVerify] = "false"
			}
			rm := remote.Remote{Name: args[0], URL: args[1], Branches: args[2:]}
			return e.inRepoOf(sysroot, func(r *repo.Repo) error {
				changed, err := remote.AddRemote(r, rm, opts)
				if errors.Is(err, remote.ErrRemoteExists) && !force && !inRemotesDir(r, rm.Name) {
					return withHint(err, "pass --force to replace it")
				}
				if err != nil {
					return err
				}
				if e.json {
					return e.printJSON(map[string]any{"name": rm.Name, "added": changed})
				}
				return nil
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&sysroot, "sysroot", "", "add the remote to the repository of the sysroot at PATH (overrides --repo)")
	fl.StringArrayVar(&sets, "set", nil, "set config key KEY=VALUE of the remote (repeatable)")
	fl.StringVar(&collectionID, "collection-id", "", "the remote's collection ID: pull refuses commits bound to another collection")
	fl.StringVar(&contentURL, "contenturl", "", "fetch objects and static deltas from URL (the summary and refs still come from the remote's URL)")
	fl.BoolVar(&ifNotExists, "if-not-exists", false, "do nothing if the remote exists")
	fl.BoolVar(&force, "force", false, "replace the remote if it exists")
	fl.BoolVar(&noGPGVerify, "no-gpg-verify", false, "set gpg-verify=false, as OSTree does (otree never checks GPG signatures)")
	fl.BoolVar(&noVerif, "no-sign-verify", false, "do not verify signatures")
	fl.StringArrayVar(&signVerify, "sign-verify", nil, "verify commit signatures with ed25519=inline:PUBKEY or ed25519=file:PATH (repeatable: every inline key is trusted)")
	fl.MarkHidden("no-gpg-verify")
	e.addJSON(c)
	return c
}

// inRemotesDir reports whether a file of r's remotes directory defines
// the remote name, which --force does not replace.
func inRemotesDir(r *repo.Repo, name string) bool {
	for _, rm := range remote.ListRemotes(r) {
		if rm.Name == name && rm.File != "" {
			return true
		}
	}
	return false
}

func newRemoteDeleteCommand(e *env) *cobra.Command {
	var ifExists bool
	var sysroot string
	c := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a remote (its remote-tracking refs stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepoOf(sysroot, func(r *repo.Repo) error {
				err := remote.DeleteRemote(r, args[0])
				if errors.Is(err, remote.ErrRemoteNotFound) {
					if ifExists {
						return nil
					}
					return withHint(err, "pass --if-exists to ignore a remote that is not configured")
				}
				return err
			})
		},
	}
	c.Flags().BoolVar(&ifExists, "if-exists", false, "do nothing if the remote does not exist")
	c.Flags().StringVar(&sysroot, "sysroot", "", "delete the remote from the repository of the sysroot at PATH (overrides --repo)")
	return c
}

func newRemoteListCommand(e *env) *cobra.Command {
	var urls bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the remotes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				rms := remote.ListRemotes(r)
				if e.json {
					if rms == nil {
						rms = []remote.Remote{}
					}
					return e.printJSON(rms)
				}
				width := 0
				for _, rm := range rms {
					width = max(width, len(rm.Name))
				}
				for _, rm := range rms {
					if urls {
						fmt.Fprintf(e.stdout, "%-*s  %s\n", width, rm.Name, rm.URL)
					} else {
						fmt.Fprintln(e.stdout, rm.Name)
					}
				}
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&urls, "show-urls", "u", false, "show each remote's URL")
	e.addJSON(c)
	return c
}

func newRemoteShowURLCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show-url NAME",
		Short: "Print a remote's URL",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				rm, err := remote.GetRemote(r, args[0])
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(e.stdout, rm.URL)
				return err
			})
		},
	}
}

func newRemoteRefsCommand(e *env) *cobra.Command {
	var cacheDir string
	c := &cobra.Command{
		Use:   "refs NAME",
		Short: "List a remote's branches (from its summary file)",
		Long: `List the branches a remote offers, as NAME:BRANCH. An http(s) remote must
publish a summary file ("otree summary -u" there); a file:// remote's refs are
read directly.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				refs, err := remote.RemoteRefs(cmd.Context(), r, args[0], remote.PullOptions{Logger: e.logger(), SummaryCacheDir: cacheDir})
				if err != nil {
					return err
				}
				if e.json {
					if refs == nil {
						refs = []repo.Ref{}
					}
					return e.printJSON(refs)
				}
				for _, ref := range refs {
					fmt.Fprintf(e.stdout, "%s:%s\n", args[0], ref.Name)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&cacheDir, "cache-dir", "", "keep the remote's summary here between runs (default REPO/tmp/cache/summaries; - for none)")
	e.addJSON(c)
	return c
}

func newRemoteSummaryCommand(e *env) *cobra.Command {
	var cacheDir string
	c := &cobra.Command{
		Use:   "summary NAME",
		Short: "Show a remote's summary: its branches, metadata and static deltas",
		Long: `Fetch the summary file of the remote NAME (its signature verified when the
remote asks for that, as pull does) and print it as "otree summary -v" prints
a local one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.inRepo(func(r *repo.Repo) error {
				s, err := remote.RemoteSummary(cmd.Context(), r, args[0], remote.PullOptions{Logger: e.logger(), SummaryCacheDir: cacheDir})
				if err != nil {
					return err
				}
				return printSummary(e, r, s)
			})
		},
	}
	c.Flags().StringVar(&cacheDir, "cache-dir", "", "keep the remote's summary here between runs (default REPO/tmp/cache/summaries; - for none)")
	e.addJSON(c)
	return c
}

// parseSets parses --set=KEY=VALUE flags into the keys they set.
func parseSets(sets []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--set wants KEY=VALUE, got %q", kv)
		}
		out[k] = v
	}
	return out, nil
}

// parseSignVerify parses OSTree's --sign-verify=TYPE=inline:PUBKEY or
// TYPE=file:PATH into the remote config key and value it sets.
func parseSignVerify(s string) (string, string, error) {
	typ, spec, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", usagef("--sign-verify wants ed25519=inline:PUBKEY or ed25519=file:PATH, got %q", s)
	}
	if err := sign.CheckType(typ); err != nil || typ == "" {
		return "", "", usagef("--sign-verify %q: unsupported signature type %q (only ed25519)", s, typ)
	}
	how, v, _ := strings.Cut(spec, ":")
	switch {
	case how == "inline" && v != "":
		if _, err := sign.ParsePublicKey(v); err != nil {
			// Not shown: it may be a secret key given by mistake.
			return "", "", usagef("--sign-verify %s=inline:PUBKEY: %v", typ, err)
		}
		return remote.KeyVerificationKey, v, nil
	case how == "file" && v != "":
		if _, err := sign.ReadPublicKeys(v); err != nil {
			return "", "", fmt.Errorf("--sign-verify: %w", err)
		}
		abs, err := filepath.Abs(v)
		if err != nil {
			return "", "", err
		}
		return remote.KeyVerificationFile, abs, nil
	}
	return "", "", usagef("--sign-verify wants ed25519=inline:PUBKEY or ed25519=file:PATH, got %q", s)
}
