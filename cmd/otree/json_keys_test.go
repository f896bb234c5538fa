package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/spf13/cobra"
)

// jsonRun records the --json outputs a test read, by command path
// ("otree admin status"), and the commands this machine cannot run.
type jsonRun struct {
	t         *testing.T
	ran       map[string]bool
	cannotRun []string // command path prefixes
}

// check reads out, what args (with --json) printed, as a stream of JSON
// documents and reports every object key with an uppercase letter, by
// its path in the document. At least one document must be there.
func (j *jsonRun) check(args []string, out string) {
	j.t.Helper()
	root := newRootCommand(&env{})
	cmd, _, err := root.Find(args)
	if err != nil {
		j.t.Fatalf("otree %s: %v", strings.Join(args, " "), err)
	}
	j.ran[cmd.CommandPath()] = true
	dec := json.NewDecoder(strings.NewReader(out))
	n := 0
	for {
		var v any
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			j.t.Errorf("otree %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		n++
		for _, k := range nonSnakeKeys(v, "") {
			j.t.Errorf("otree %s: key %s is not snake_case", strings.Join(args, " "), k)
		}
	}
	if n == 0 {
		j.t.Errorf("otree %s printed no JSON", strings.Join(args, " "))
	}
}

// snakeKey is a key of otree's own: lowercase words joined by "_".
var snakeKey = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)

// dataMaps are the objects whose keys are data, not otree's names: a
// commit's metadata keys and a remote's options, as the user gave them.
var dataMaps = map[string]bool{"metadata": true, "metadata_base64": true, "options": true}

// nonSnakeKeys returns the paths of the object keys in v that are not
// snake_case, leaving out the keys of the data maps.
func nonSnakeKeys(v any, at string) []string {
	var bad []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !snakeKey.MatchString(k) {
				bad = append(bad, at+"."+k)
			}
			if _, ok := e.(map[string]any); ok && dataMaps[k] {
				continue // keys and values the user gave
			}
			bad = append(bad, nonSnakeKeys(e, at+"."+k)...)
		}
	case []any:
		for i, e := range v {
			bad = append(bad, nonSnakeKeys(e, fmt.Sprintf("%s[%d]", at, i))...)
		}
	}
	sort.Strings(bad)
	return bad
}

// jsonCommands lists the path of every command that takes --json.
func jsonCommands() []string {
	var out []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("json") != nil {
			out = append(out, c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCommand(&env{}))
	return out
}

// Every key of every command's --json output is snake_case. The test runs
// each command that takes --json (a new one fails it until it is run
// here), over data whose own names (refs, metadata keys) are lowercase,
// and walks every object of what it prints.
func TestJSONKeysAreSnakeCase(t *testing.T) {
	j := &jsonRun{t: t, ran: map[string]bool{}}
	j.sub("repository", "otree ", jsonRepoCommands)
	j.sub("admin", "otree admin ", jsonAdminCommands)
	j.t = t
	for _, p := range jsonCommands() {
		skipped := slices.ContainsFunc(j.cannotRun, func(prefix string) bool { return strings.HasPrefix(p, prefix) })
		if !j.ran[p] && !skipped {
			t.Errorf("%s takes --json, and this test does not run it: add it", p)
		}
	}
}

// sub runs f as a subtest; when it is skipped (the machine cannot run
// it), the commands whose paths start with prefix are not required.
func (j *jsonRun) sub(name, prefix string, f func(*testing.T, *jsonRun)) {
	parent := j.t
	parent.Run(name, func(t *testing.T) {
		j.t = t
		defer func() {
			if t.Skipped() {
				j.cannotRun = append(j.cannotRun, prefix)
			}
			j.t = parent
		}()
		f(t, j)
	})
}

// run runs otree with args (--repo included) and checks its JSON; the
// run must exit with code.
func (j *jsonRun) run(code int, args ...string) string {
	j.t.Helper()
	var out, errb bytes.Buffer
	if got := run(context.Background(), args, strings.NewReader(""), &out, &errb); got != code {
		j.t.Fatalf("otree %s: exit %d, want %d: %s", strings.Join(args, " "), got, code, errb.String())
	}
	// Global flags (--repo) go before the command; Find needs them out.
	var cmdArgs []string
	for _, a := range args {
		if !strings.HasPrefix(a, "--repo=") {
			cmdArgs = append(cmdArgs, a)
		}
	}
	j.check(cmdArgs, out.String())
	return out.String()
}

func jsonRepoCommands(t *testing.T, j *jsonRun) {
	const coll = "org.example.os"
	c := newCLI(t)
	in := func(c *cli, args ...string) string {
		t.Helper()
		return j.run(0, append([]string{"--repo=" + c.path}, append(args, "--json")...)...)
	}
	dir := t.TempDir()
	in(c, "config", "set", "core.collection-id", coll)
	in(c, "config", "set", "core.x-note", "one")
	in(c, "config", "get", "core.x-note")
	in(c, "config", "unset", "core.x-note")
	j.run(0, "--repo="+filepath.Join(dir, "new"), "init", "--mode=archive", "--json")

	src := source(t, testtree.Tree{"etc/a.conf": testtree.File("a\n", 0o644), "bin/run": testtree.File("#!\n", 0o755), "link": testtree.Symlink("etc/a.conf")})
	in(c, "commit", "-b", "main", "--generate-sizes", "--add-metadata-string=version=1", src)
	os.WriteFile(filepath.Join(src, "etc/a.conf"), []byte("b\n"), 0o644)
	os.WriteFile(filepath.Join(src, "etc/new.conf"), []byte("n\n"), 0o644)
	in(c, "commit", "-b", "main", "--generate-sizes", "--add-metadata-string=version=2", src)
	in(c, "log", "main")
	in(c, "show", "main")
	in(c, "show", "--print-metadata-key=version", "main")
	in(c, "show", "--print-sizes", "main")
	cm, err := c.r.ReadCommit(mustRev(t, c, "main"))
	if err != nil {
		t.Fatal(err)
	}
	in(c, "show", cm.RootTree.String())
	file, err := c.r.Lookup(mustRev(t, c, "main"), "/etc/a.conf")
	if err != nil {
		t.Fatal(err)
	}
	in(c, "show", file.ID.String())
	in(c, "ls", "-R", "main")
	in(c, "diff", "main^", "main")
	in(c, "diff", "--stat", "main^", "main")
	in(c, "diff", "--fs-diff", "--stat", "main^", "main")
	in(c, "diff", "--stats", "main^", "main")
	in(c, "checksum", filepath.Join(src, "etc/a.conf"), filepath.Join(src, "etc"))
	in(c, "checkout", "main", filepath.Join(dir, "co"))
	in(c, "rev-parse", "main", "main^")
	in(c, "refs", "--create=other", "main")
	in(c, "reset", "other", "main^")
	in(c, "refs", "--alias", "--create=latest", "main")
	in(c, "refs")
	in(c, "refs", "--alias")
	in(c, "refs", "--collections")
	in(c, "refs", "--delete", "other")

	key := filepath.Join(dir, "os.key")
	pub := in(c, "sign", "--generate-key="+key)
	var gen map[string]string
	if err := json.Unmarshal([]byte(pub), &gen); err != nil || gen["public_key"] == "" {
		t.Fatalf("sign --generate-key --json: %v %q", err, pub)
	}
	in(c, "sign", "--keys-file="+key, "main")
	in(c, "sign", "--verify", "main", gen["public_key"])

	deltaFile := filepath.Join(dir, "delta")
	in(c, "static-delta", "generate", "--to=main")
	in(c, "static-delta", "generate", "--empty", "--to=main", "--filename="+deltaFile, "--sign-from-file="+key)
	in(c, "static-delta", "list")
	in(c, "static-delta", "indexes")
	in(c, "static-delta", "show", deltaFile)
	in(c, "static-delta", "verify", deltaFile, gen["public_key"])
	in(c, "summary", "-u")
	in(c, "summary", "-v")
	in(c, "fsck")
	in(c, "prune", "--no-prune", "--refs-only", "--depth=0")
	stick := filepath.Join(dir, "stick")
	if err := os.Mkdir(stick, 0o755); err != nil {
		t.Fatal(err)
	}
	in(c, "create-usb", stick, coll, "main")

	// A second repository: remotes, pulls and what reads them.
	url := serve(t, c, nil)
	d := newBareUserCLI(t)
	in(d, "static-delta", "apply-offline", deltaFile)
	in(d, "remote", "add", "--collection-id="+coll, "origin", url)
	in(d, "remote", "list")
	in(d, "remote", "refs", "origin")
	in(d, "remote", "summary", "origin")
	d.ok("remote", "add-cookie", "origin", "127.0.0.1", "/", "session", "one")
	in(d, "remote", "list-cookies", "origin")
	in(d, "pull", "origin", "main")
	in(d, "pull-local", c.path, "main")
	in(d, "find-remotes", "--finders=config", coll, "main")
	in(c, "sign", "--delete", "main", gen["public_key"])
}

// mustRev resolves rev in c's repository.
func mustRev(t *testing.T, c *cli, rev string) repo.ID {
	t.Helper()
	got, err := c.r.ResolveRev(rev)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func jsonAdminCommands(t *testing.T, j *jsonRun) {
	a := newAdmin(t)
	adm := func(code int, args ...string) string {
		t.Helper()
		return j.run(code, append([]string{"admin", "--sysroot=" + a.sys}, append(args, "--json")...)...)
	}
	a.commit("one\n", "6.1.0-1")
	adm(0, "deploy", "--karg=root=LABEL=root", "cli/stable")
	a.commit("two\n", "6.1.0-1")
	adm(0, "upgrade")
	adm(0, "status", "--verify")
	adm(0, "config-diff")
	adm(0, "kargs")
	adm(0, "kargs", "edit-in-place", "--append-if-missing=quiet=1")
	adm(0, "rollback")
	adm(0, "set-default", "1")
	a.ok("refs", "--create=cli/other", "cli/stable")
	adm(0, "switch", "cli/other")
	adm(0, "undeploy", "1")
	adm(0, "cleanup")
	a.commit("three\n", "6.1.0-1")
	adm(0, "deploy", "--stage", "cli/other")
	adm(0, "finalize-staged")
	adm(0, "boot-complete")

	// unlock needs the deployment booted.
	j.sub("booted", "otree admin unlock", func(t *testing.T, j *jsonRun) {
		a.t = t
		b := newBooter(t, a)
		needOverlay(t)
		out := b.boot(a.status().Deployments[0].Path, `echo json:; otree admin unlock --transient --json`)
		_, js, _ := strings.Cut(out, "json:\n")
		j.check([]string{"admin", "unlock", "--json"}, js)
	})
}

// README.md names every command that takes no --json, in the sentence
// that says every reporting command takes it: a command added without
// --json fails this test until it gets the flag or the README names it.
func TestCommandsWithoutJSONInREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sentence, _ := strings.Cut(string(readme), "Every reporting command takes `--json` (")
	sentence, _, _ = strings.Cut(sentence, ")")
	if sentence == "" {
		t.Fatal("README.md has no sentence \"Every reporting command takes `--json` (...)\"")
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(sentence, -1) {
		named["otree "+m[1]] = true
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if named[c.CommandPath()] {
			return // its subcommands too (completion bash)
		}
		if !c.HasAvailableSubCommands() && c.Flags().Lookup("json") == nil {
			t.Errorf("%s takes no --json, and README.md does not say so", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	root := newRootCommand(&env{})
	root.InitDefaultCompletionCmd() // cobra adds it only when run
	walk(root)
	for p := range named {
		if c, _, err := root.Find(strings.Fields(p)[1:]); err != nil || c.CommandPath() != p {
			t.Errorf("README.md names %s as taking no --json, and there is no such command", p)
		} else if c.Flags().Lookup("json") != nil {
			t.Errorf("README.md names %s as taking no --json, and it takes it", p)
		}
	}
}
