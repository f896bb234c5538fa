package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// OSTree's options and commands that otree deliberately lacks (README.md,
// "OSTree options otree does not take"). Given one, otree refuses it as
// any unknown option, and says what it is and what otree has instead, so
// that an OSTree user's command line fails with a way forward rather than
// a bare "unknown flag".

const (
	gpgSignInstead    = "otree signs with ed25519 only: commit --sign=KEY, or `otree sign COMMIT KEY` (`otree sign --generate-key=FILE` makes a key)"
	gpgVerifyInstead  = "otree verifies ed25519 signatures only: `otree sign --verify COMMIT [PUBKEY...]`"
	gpgKeysInstead    = "otree verifies ed25519 signatures only: give a remote its keys with `otree remote add --sign-verify=ed25519=inline:PUBKEY` (or ed25519=file:PATH)"
	selinuxInstead    = "otree labels no files: labels a tree carries in security.selinux are kept like other xattrs"
	gvariantInstead   = "otree's objects are not GVariant and have one byte order (docs/FORMAT.md): `otree show --raw` prints an object's stored bytes"
	summaryRawInstead = "-v prints the summary decoded; its encoding is in docs/PULL.md §2.1"
)

// ostreeOnly is what OSTree's command line has and otree's lacks: the
// command (as otree names it, without "otree"), the option (--long or -s)
// or, for a command of OSTree's that otree lacks, "" and what otree has
// instead.
var ostreeOnly = []struct{ cmd, opt, instead string }{
	{"commit", "--gpg-sign", gpgSignInstead},
	{"commit", "--gpg-homedir", gpgSignInstead},
	{"commit", "--selinux-policy", selinuxInstead},
	{"commit", "--selinux-policy-from-base", selinuxInstead},
	{"commit", "-P", selinuxInstead},
	{"checkout", "--selinux-policy", selinuxInstead},
	{"checkout", "--selinux-prefix", selinuxInstead},
	{"summary", "--gpg-sign", "otree signs with ed25519 only: summary -u --sign=KEY (or --sign-from-file=FILE)"},
	{"summary", "--gpg-homedir", "otree signs with ed25519 only: summary -u --sign=KEY (or --sign-from-file=FILE)"},
	{"summary", "--raw", summaryRawInstead},
	{"remote summary", "--raw", "remote summary prints it decoded; its encoding is in docs/PULL.md §2.1"},
	{"show", "--gpg-homedir", gpgVerifyInstead},
	{"show", "--gpg-verify-remote", gpgVerifyInstead},
	{"show", "--print-variant-type", gvariantInstead},
	{"show", "--no-byteswap", gvariantInstead},
	{"show", "-B", gvariantInstead},
	{"pull-local", "--gpg-verify", "pull-local checks no signatures: `otree pull` from a remote whose url is file://SRC checks those its sign-verify asks for"},
	{"pull-local", "--gpg-verify-summary", "pull-local checks no signatures: `otree pull` from a remote whose url is file://SRC checks those its sign-verify-summary asks for"},
	{"remote add", "--gpg-import", gpgKeysInstead},
	{"remote add", "--custom-backend", "otree fetches from every remote itself (http, https, file)"},
	{"static-delta generate", "--set-endianness", "otree's deltas have one byte order (docs/DELTAS.md)"},
	{"static-delta generate", "--swap-endianness", "otree's deltas have one byte order (docs/DELTAS.md)"},
	{"gpg-sign", "", gpgSignInstead},
	{"remote gpg-import", "", gpgKeysInstead},
	{"remote gpg-list-keys", "", "a remote's keys are its verification-ed25519-key and verification-ed25519-file config keys: `otree config get 'remote \"NAME\".verification-ed25519-key'`"},
	{"admin instutil", "", "`otree admin kargs` edits kernel arguments; otree writes its boot entries itself and labels no files"},
}

// ostreeOnlyFlag returns the error for the flag of err, pflag's error for
// a flag c does not have, when it is one of OSTree's that otree lacks;
// else nil.
func ostreeOnlyFlag(c *cobra.Command, err error) error {
	var ne *pflag.NotExistError
	if !errors.As(err, &ne) {
		return nil
	}
	opt := "--" + ne.GetSpecifiedName()
	if ne.GetSpecifiedShortnames() != "" {
		opt = "-" + ne.GetSpecifiedName()
	}
	path := commandName(c)
	for _, o := range ostreeOnly {
		if o.cmd == path && o.opt == opt {
			return withHint(usageError{fmt.Errorf("%v (an option of OSTree's %s that otree does not have)", err, path)}, o.instead)
		}
	}
	return nil
}

// commandName is c's path without "otree ".
func commandName(c *cobra.Command) string {
	_, name, _ := strings.Cut(c.CommandPath(), " ")
	return name
}

// addOSTreeOnlyCommands adds to root, hidden, the commands of OSTree's
// that otree lacks, each refusing to run with what otree has instead: an
// unknown command would be refused too, without the way forward.
func addOSTreeOnlyCommands(root *cobra.Command) {
	for _, o := range ostreeOnly {
		if o.opt != "" {
			continue
		}
		words := strings.Fields(o.cmd)
		parent, _, err := root.Find(words[:len(words)-1])
		if err != nil {
			panic("OSTree command under unknown command: " + o.cmd)
		}
		instead, name := o.instead, o.cmd
		parent.AddCommand(&cobra.Command{
			Use:                words[len(words)-1],
			Hidden:             true,
			DisableFlagParsing: true, // OSTree's flags, which otree has not
			RunE: func(*cobra.Command, []string) error {
				return withHint(usagef("unknown command %q (a command of OSTree's that otree does not have)", name), instead)
			},
		})
	}
}
