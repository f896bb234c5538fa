package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ostreeCommands is every command of OSTree 2022.7 (`ostree --help`,
// `ostree admin --help`, ...) with every option its --help lists but the
// global ones (--help, --repo, --sysroot, -v/--verbose, --version), as an
// OSTree user types it: "-S,--long" a switch, "--long=VALUE" an option
// with a value (VALUE parses as otree's flag: a number where otree takes
// one), "+" after it one OSTree takes more than once, each adding. The
// operands are command lines OSTree's usage allows, after the options.
// sign's --keys-file and --keys-dir are in OSTree builds with ed25519
// (Debian's has none, so its --help leaves them out).
var ostreeCommands = []struct {
	cmd, opts string
	operands  [][]string
}{
	{"admin boot-complete", "", nil},
	{"admin cleanup", "", nil},
	{"admin config-diff", "--os=OSNAME", nil},
	{"admin deploy", "--os=OSNAME --origin-file=FILENAME --no-prune --no-merge --retain --stage --retain-pending --retain-rollback --not-as-default --karg-proc-cmdline --karg=NAME=VALUE+ --karg-append=NAME=VALUE+ --karg-none --karg-delete=NAME=VALUE+ --overlay-initrd=FILE+", [][]string{{"REMOTE:REF"}}},
	{"admin finalize-staged", "", nil},
	{"admin init-fs", "--modern", [][]string{{"PATH"}}},
	{"admin instutil", "", nil},
	{"admin kargs edit-in-place", "--append-if-missing=NAME=VALUE+", [][]string{{}}},
	{"admin os-init", "", [][]string{{"OSNAME"}}},
	{"admin pin", "-u,--unpin", [][]string{{"0"}}},
	{"admin set-origin", "-s,--set=KEY=VALUE+ --index=1", [][]string{{"REMOTE", "URL"}, {"REMOTE", "URL", "BRANCH"}}},
	{"admin status", "-V,--verify", [][]string{{}}},
	{"admin switch", "-r,--reboot --os=OSNAME", [][]string{{"REF"}, {"REMOTE:REF"}}},
	{"admin undeploy", "", [][]string{{"1"}}},
	{"admin unlock", "--hotfix --transient", [][]string{{}}},
	{"admin upgrade", "--os=OSNAME -r,--reboot --allow-downgrade --override-commit=CHECKSUM --pull-only --deploy-only --stage", [][]string{{}}},
	{"cat", "", [][]string{{"REV", "/PATH"}, {"REV", "/A", "/B"}}},
	{"checkout", "-U,--user-mode --disable-cache --subpath=PATH --union --union-add --union-identical --whiteouts --process-passthrough-whiteouts --allow-noent --from-stdin --from-file=FILE --fsync=yes -H,--require-hardlinks -C,--force-copy -M,--bareuseronly-dirs --skip-list=FILE --selinux-policy=PATH --selinux-prefix=PREFIX", [][]string{{"REV"}, {"REV", "DEST"}}},
	{"checksum", "--ignore-xattrs", [][]string{{"PATH"}}},
	{"commit", "--parent=COMMIT -s,--subject=SUBJECT -m,--body=BODY -F,--body-file=FILE -e,--editor -b,--branch=BRANCH --orphan --no-bindings --bind-ref=BRANCH+ --base=REV --tree=dir=PATH+ --add-metadata-string=KEY=VALUE+ --add-metadata=KEY=VALUE+ --keep-metadata=KEY+ --add-detached-metadata-string=KEY=VALUE+ --owner-uid=1 --owner-gid=1 --canonical-permissions --bootable --mode-ro-executables --no-xattrs --selinux-policy=PATH -P,--selinux-policy-from-base --link-checkout-speedup -I,--devino-canonical --tar-autocreate-parents --tar-pathname-filter=REGEX,REPLACEMENT --skip-if-unchanged --statoverride=PATH --skip-list=PATH --consume --table-output --gpg-sign=KEY-ID+ --gpg-homedir=HOMEDIR --sign=KEY_ID+ --sign-type=NAME --generate-sizes --fsync=yes --timestamp=TIMESTAMP", [][]string{{}, {"DIR"}}},
	{"config", "--group=core", [][]string{{"get", "core.mode"}, {"set", "core.fsync", "false"}, {"unset", "core.fsync"}}},
	{"create-usb", "--disable-fsync --destination-repo=DEST --commit=COMMIT", [][]string{{"MOUNT", "org.example.C", "REF"}, {"MOUNT", "org.example.C", "REF", "org.example.D", "REF"}}},
	{"diff", "--stats --fs-diff --no-xattrs --owner-uid=1 --owner-gid=1", [][]string{{"REV", "REV"}, {"REV", "/DIR"}}},
	{"export", "--no-xattrs --subpath=PATH --prefix=PATH -o,--output=PATH", [][]string{{"REV"}}},
	{"find-remotes", "--cache-dir=DIR --disable-fsync --finders=FINDERS --pull --mirror", [][]string{{"org.example.C", "REF"}}},
	{"fsck", "--add-tombstones -q,--quiet -a,--all --delete --verify-bindings --verify-back-refs", [][]string{{}}},
	{"gpg-sign", "-d,--delete --gpg-homedir=HOMEDIR", nil},
	{"init", "--mode=archive --collection-id=COLLECTION-ID", [][]string{{}}},
	{"log", "--raw", [][]string{{"REV"}}},
	{"ls", "-d,--dironly -R,--recursive -C,--checksum -X,--xattrs --nul-filenames-only", [][]string{{"REV"}, {"REV", "/A", "/B"}}},
	{"prune", "--no-prune --refs-only --depth=1 --delete-commit=COMMIT --keep-younger-than=DATE --static-deltas-only --retain-branch-depth=BRANCH=1+ --only-branch=BRANCH+ --commit-only", [][]string{{}}},
	{"pull-local", "--commit-metadata-only --remote=REMOTE --disable-fsync --per-object-fsync --untrusted --bareuseronly-files --require-static-deltas --gpg-verify --gpg-verify-summary --disable-verify-bindings --depth=1", [][]string{{"SRC"}, {"SRC", "REF", "REF"}}},
	{"pull", "--commit-metadata-only --cache-dir=DIR --disable-fsync --per-object-fsync --disable-static-deltas --require-static-deltas --mirror --subpath=/usr+ --untrusted --http-trusted --bareuseronly-files --dry-run --depth=1 --url=URL --http-header=NAME=VALUE+ --update-frequency=1 --network-retries=1 -L,--localcache-repo=REPO+ -T,--timestamp-check --timestamp-check-from-rev=REV --disable-verify-bindings", [][]string{{"REMOTE"}, {"REMOTE", "REF", "REF"}, {"REMOTE:REF"}}},
	{"refs", "--delete --list -A,--alias --create=NEWREF -c,--collections --force", [][]string{{}, {"PREFIX"}}},
	{"remote add-cookie", "", [][]string{{"NAME", "DOMAIN", "/", "COOKIE", "VALUE"}}},
	{"remote add", "--set=KEY=VALUE+ --no-gpg-verify --no-sign-verify --sign-verify=ed25519=file:PATH+ --if-not-exists --force --gpg-import=FILE --custom-backend=NAME --contenturl=URL --collection-id=COLLECTION-ID", [][]string{{"NAME", "URL"}, {"NAME", "URL", "BRANCH", "BRANCH"}}},
	{"remote delete-cookie", "", [][]string{{"NAME", "DOMAIN", "/", "COOKIE"}}},
	{"remote delete", "--if-exists", [][]string{{"NAME"}}},
	{"remote gpg-import", "-k,--keyring=FILE+ --stdin", nil},
	{"remote gpg-list-keys", "", nil},
	{"remote list-cookies", "", [][]string{{"NAME"}}},
	{"remote list", "-u,--show-urls", [][]string{{}}},
	{"remote refs", "--cache-dir=DIR", [][]string{{"NAME"}}},
	{"remote show-url", "", [][]string{{"NAME"}}},
	{"remote summary", "--cache-dir=DIR --raw", [][]string{{"NAME"}}},
	{"reset", "", [][]string{{"REF", "REV"}}},
	{"rev-parse", "-S,--single", [][]string{{"REV"}}},
	{"show", "--print-related --print-variant-type=TYPE --print-metadata-key=KEY --print-detached-metadata-key=KEY --print-sizes --raw -B,--no-byteswap --gpg-homedir=HOMEDIR --gpg-verify-remote=REMOTE", [][]string{{"REV"}}},
	{"sign", "-d,--delete --verify -s,--sign-type=NAME --keys-file=FILE --keys-dir=DIR", [][]string{{"COMMIT", "KEY", "KEY"}}},
	{"static-delta apply-offline", "--sign-type=NAME", [][]string{{"PATH"}}},
	{"static-delta delete", "", [][]string{{"DELTA"}}},
	{"static-delta generate", "--from=REV --empty --inline --to=REV --disable-bsdiff -n,--if-not-exists --set-endianness=ENDIAN --swap-endianness --min-fallback-size=1 --max-bsdiff-size=1 --max-chunk-size=1 --filename=PATH --sign=KEY_ID+ --sign-type=NAME", [][]string{{}, {"TO"}}},
	{"static-delta indexes", "", [][]string{{}}},
	{"static-delta list", "", [][]string{{}}},
	{"static-delta reindex", "--to=REV", [][]string{{}}},
	{"static-delta show", "", [][]string{{"DELTA"}}},
	{"static-delta verify", "--sign-type=NAME", [][]string{{"PATH"}, {"PATH", "KEY"}}},
	{"summary", "-u,--update -v,--view --raw --gpg-sign=KEY-ID+ --gpg-homedir=HOMEDIR --sign=KEY-ID+ --sign-type=NAME -m,--add-metadata=KEY=VALUE+", [][]string{{}}},
}

// ostreeOption is one option of ostreeCommands.
type ostreeOption struct {
	short, long, value string // value "" for a switch
	repeat             bool
}

func parseOSTreeOptions(t *testing.T, opts string) []ostreeOption {
	var out []ostreeOption
	for _, tok := range strings.Fields(opts) {
		var o ostreeOption
		tok, o.repeat = strings.CutSuffix(tok, "+")
		if len(tok) > 3 && tok[1] != '-' && tok[2] == ',' { // "-S,--long"
			o.short, tok = tok[1:2], tok[3:]
		}
		tok, o.value, _ = strings.Cut(tok, "=")
		o.long = strings.TrimPrefix(tok, "--")
		if o.long == tok || o.repeat && o.value == "" {
			t.Fatalf("bad option %q in the table", tok)
		}
		out = append(out, o)
	}
	return out
}

// ostreeOnlyIn returns what otree has instead of OSTree's opt of cmd, and
// whether otree refuses it (opt "" for the command itself).
func ostreeOnlyIn(cmd, opt string) (string, bool) {
	for _, o := range ostreeOnly {
		if o.cmd == cmd && (o.opt == opt || o.opt == "") {
			return o.instead, true
		}
	}
	return "", false
}

// findCommand returns otree's command cmd in a root made anew, so that
// no flag is left set by another case.
func findCommand(t *testing.T, cmd string) *cobra.Command {
	t.Helper()
	root := newRootCommand(&env{stdin: strings.NewReader(""), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer)})
	c, _, err := root.Find(strings.Fields(cmd))
	if err != nil || c.CommandPath() != "otree "+cmd {
		t.Fatalf("otree has no command %q (found %q, %v)", cmd, c.CommandPath(), err)
	}
	return c
}

// Every option of OSTree's commands: otree takes it under the same name,
// short form, kind (switch or value, given as --long=V, --long V, -S V or
// -SV) and repeatability, or refuses it, as it refuses an unknown option
// (exit 2), naming it and saying what otree has instead, and README.md
// lists it among the options otree does not take. Each command takes the
// operands OSTree's usage line allows.
func TestOSTreeOptions(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, notTaken, _ := strings.Cut(string(readme), "\n## OSTree options otree does not take\n")
	notTaken, _, _ = strings.Cut(notTaken, "\n## ")
	if notTaken == "" {
		t.Fatal(`README.md has no section "OSTree options otree does not take"`)
	}
	same, refused := 0, 0
	refuses := func(cmd string, args []string, named, instead string) {
		t.Helper()
		var out, errb bytes.Buffer
		args = append(append(strings.Fields(cmd), args...), "--repo="+t.TempDir()+"/none", "ARG")
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), named) || !strings.Contains(errb.String(), "\nhint: "+instead+"\n") {
			t.Errorf("otree %s: exit %d, stderr %q; want a usage error naming %s, with the hint %q", strings.Join(args, " "), code, errb.String(), named, instead)
		}
		if !strings.Contains(notTaken, "`"+named+"`") {
			t.Errorf("README.md's \"OSTree options otree does not take\" does not mention `%s` (of %s)", named, cmd)
		}
		refused++
	}
	listed := map[[2]string]bool{}
	for _, tc := range ostreeCommands {
		opts := parseOSTreeOptions(t, tc.opts)
		if instead, ok := ostreeOnlyIn(tc.cmd, ""); ok {
			listed[[2]string{tc.cmd, ""}] = true
			refuses(tc.cmd, nil, tc.cmd, instead)
			continue
		}
		c := findCommand(t, tc.cmd)
		// The global options, as OSTree's commands take them.
		globals := []string{"repo", "verbose", "version"}
		if strings.HasPrefix(tc.cmd, "admin ") {
			globals = append(globals, "sysroot")
		}
		for _, g := range globals {
			if c.Flag(g) == nil {
				t.Errorf("otree %s has no --%s", tc.cmd, g)
			}
		}
		for _, form := range tc.operands {
			if err := c.ValidateArgs(form); err != nil {
				t.Errorf("otree %s %s: %v", tc.cmd, strings.Join(form, " "), err)
			}
		}
		for _, o := range opts {
			if instead, ok := ostreeOnlyIn(tc.cmd, "--"+o.long); ok {
				listed[[2]string{tc.cmd, "--" + o.long}] = true
				arg := "--" + o.long
				if o.value != "" {
					arg += "=" + o.value
				}
				refuses(tc.cmd, []string{arg}, "--"+o.long, instead)
				if o.short != "" {
					listed[[2]string{tc.cmd, "-" + o.short}] = true
					refuses(tc.cmd, []string{"-" + o.short}, "-"+o.short, instead)
				}
				continue
			}
			same++
			f := findCommand(t, tc.cmd).Flag(o.long)
			if f == nil {
				t.Errorf("otree %s has no --%s, and does not refuse it as OSTree's", tc.cmd, o.long)
				continue
			}
			// An option taken for OSTree's scripts is described where a
			// user looks: in --help's flag list, or in its text.
			if f.Hidden && !strings.Contains(c.Long, "--"+o.long) {
				t.Errorf("otree %s takes OSTree's --%s but its --help does not describe it", tc.cmd, o.long)
			}
			if switchFlag := f.NoOptDefVal != ""; switchFlag != (o.value == "") {
				t.Errorf("otree %s --%s: a switch %v, in OSTree %v", tc.cmd, o.long, switchFlag, o.value == "")
			}
			// summary's -v is OSTree's --view, which summary reads off
			// the global -v.
			if o.short != f.Shorthand && !(tc.cmd == "summary" && o.short == "v") {
				t.Errorf("otree %s --%s: short form %q, OSTree's %q", tc.cmd, o.long, f.Shorthand, o.short)
			}
			var forms [][]string
			if o.value == "" {
				forms = [][]string{{"--" + o.long}}
				if o.short != "" {
					forms = append(forms, []string{"-" + o.short})
				}
			} else {
				forms = [][]string{{"--" + o.long + "=" + o.value}, {"--" + o.long, o.value}}
				if o.short != "" {
					forms = append(forms, []string{"-" + o.short, o.value}, []string{"-" + o.short + o.value})
				}
			}
			for _, form := range forms {
				c := findCommand(t, tc.cmd)
				if err := c.ParseFlags(form); err != nil {
					t.Errorf("otree %s %s: %v", tc.cmd, strings.Join(form, " "), err)
				} else if !c.Flag(o.long).Changed && !(tc.cmd == "summary" && o.short == "v") {
					t.Errorf("otree %s %s did not set --%s", tc.cmd, strings.Join(form, " "), o.long)
				}
			}
			if o.repeat {
				c := findCommand(t, tc.cmd)
				// A comma is part of the value, as in OSTree's.
				args := []string{"--" + o.long + "=" + o.value, "--" + o.long + "=" + o.value + ",2"}
				if err := c.ParseFlags(args); err != nil {
					t.Errorf("otree %s %s: %v", tc.cmd, strings.Join(args, " "), err)
				} else if s, ok := c.Flag(o.long).Value.(pflag.SliceValue); !ok || !slices.Equal(s.GetSlice(), []string{o.value, o.value + ",2"}) {
					t.Errorf("otree %s %s: --%s is %q, want both values as given", tc.cmd, strings.Join(args, " "), o.long, c.Flag(o.long).Value.String())
				}
			}
		}
	}
	for _, o := range ostreeOnly {
		if !listed[[2]string{o.cmd, o.opt}] {
			t.Errorf("ostreeOnly lists %s %s, which no OSTree command in the table has", o.cmd, o.opt)
		}
	}
	t.Logf("%d options of OSTree's taken, %d refused", same, refused)
}

// The table above lists every command and option of the OSTree installed,
// when it is 2022.7 (a later one may have more, for the table to gain).
func TestOSTreeOptionsTableComplete(t *testing.T) {
	bin, err := exec.LookPath("ostree")
	if err != nil {
		t.Skip("ostree is not installed (CI installs Debian's ostree package)")
	}
	if v, _ := exec.Command(bin, "--version").Output(); !strings.Contains(string(v), "Version: '2022.7'") {
		t.Skipf("the table is OSTree 2022.7's; this is %q", v)
	}
	table := map[string][]ostreeOption{}
	for _, tc := range ostreeCommands {
		table[tc.cmd] = parseOSTreeOptions(t, tc.opts)
	}
	help := func(args ...string) string {
		out, _ := exec.Command(bin, append(args, "--help")...).CombinedOutput()
		return string(out)
	}
	// The commands each group lists, less those with commands of their
	// own ("admin kargs" has only edit-in-place; instutil is refused).
	cmdLine := regexp.MustCompile(`(?m)^  ([a-z][a-z0-9-]*)  `)
	for _, group := range []string{"", "admin", "remote", "static-delta"} {
		text := help(strings.Fields(group)...)
		_, text, _ = strings.Cut(text, "Commands:\n")
		text, _, _ = strings.Cut(text, "\n\n")
		for _, m := range cmdLine.FindAllStringSubmatch(text+"\n", -1) {
			name := strings.TrimSpace(group + " " + m[1])
			if _, ok := table[name]; !ok && name != "admin" && name != "remote" && name != "static-delta" && name != "admin kargs" {
				t.Errorf("OSTree's %q is not in the table", name)
			}
		}
	}
	optLine := regexp.MustCompile(`^  (?:-(\w), )?--([a-z0-9-]+)`)
	for cmd, opts := range table {
		text := help(strings.Fields(cmd)...)
		_, text, _ = strings.Cut(text, "Application Options:\n")
		for _, line := range strings.Split(text, "\n") {
			m := optLine.FindStringSubmatch(line)
			if m == nil || slices.Contains([]string{"repo", "sysroot", "verbose", "version"}, m[2]) {
				continue
			}
			if !slices.ContainsFunc(opts, func(o ostreeOption) bool { return o.long == m[2] && o.short == m[1] }) {
				t.Errorf("ostree %s: %q is not in the table", cmd, strings.TrimSpace(line))
			}
		}
	}
}
