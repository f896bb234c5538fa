package main

import (
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

func TestStaticDeltaCommands(t *testing.T) {
	c := newCLI(t)
	if got := c.ok("static-delta", "list"); got != "(No static deltas)\n" {
		t.Errorf("list of none = %q", got)
	}
	a := c.commitTree("main", source(t, fixture), "one", 1700000000)
	changed := maps.Clone(fixture)
	changed["a.txt"] = testtree.File(strings.Repeat("hello again\n", 100), 0o644)
	b := c.commitTree("main", source(t, changed), "two", 1700000100)

	c.fails(exitError, []string{"has no parent", "--empty"}, "static-delta", "generate", "--to=main^")
	c.fails(exitUsage, []string{"--to"}, "static-delta", "generate")
	c.fails(exitUsage, []string{"--empty and --from"}, "static-delta", "generate", "--empty", "--from=main^", "main")
	c.fails(exitUsage, []string{"--max-bsdiff-size"}, "static-delta", "generate", "--max-bsdiff-size=65", "main")
	// 2^44+1 MiB is 2^64 + 1 MiB bytes: refused, not taken as 1 MiB parts.
	c.fails(exitUsage, []string{"--max-chunk-size=17592186044417", "MiB"}, "static-delta", "generate", "--max-chunk-size=17592186044417", "main")
	c.fails(exitUsage, []string{"--max-chunk-size=-1"}, "static-delta", "generate", "--max-chunk-size=-1", "main")
	// Given, 0 is no size: OSTree makes a part of every object, otree
	// refuses it rather than take it as the default.
	c.fails(exitUsage, []string{"--max-chunk-size=0", "1 to"}, "static-delta", "generate", "--max-chunk-size=0", "main")
	// Default from: the parent of --to.
	out := c.ok("static-delta", "generate", "--to=main")
	if want := "Generated " + a.String() + "-" + b.String() + ": "; !strings.HasPrefix(out, want) {
		t.Errorf("generate printed %q, want %q...", out, want)
	}
	if out := c.ok("static-delta", "generate", "-n", "--from", a.String(), "main"); !strings.HasPrefix(out, "Exists ") {
		t.Errorf("generate -n printed %q", out)
	}
	var d deltaJSON
	if err := json.Unmarshal([]byte(c.ok("static-delta", "generate", "--empty", "--to=main", "--json")), &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != b.String() || !d.From.IsZero() || d.To != b || len(d.Parts) != 1 || d.Parts[0].Objects == 0 || d.Size == 0 {
		t.Errorf("generate --empty --json = %+v", d)
	}
	want := []string{a.String() + "-" + b.String(), b.String()}
	if got := c.ok("static-delta", "list"); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("list = %q", got)
	}
	var names []string
	if err := json.Unmarshal([]byte(c.ok("static-delta", "list", "--json")), &names); err != nil || len(names) != 2 {
		t.Errorf("list --json = %v, %v", names, err)
	}
	show := c.ok("static-delta", "show", want[0])
	for _, w := range []string{"Delta: " + want[0], "From: " + a.String(), "To: " + b.String(), "Number of parts: 1", "Part 0: "} {
		if !strings.Contains(show, w) {
			t.Errorf("show printed %q, missing %q", show, w)
		}
	}
	c.fails(exitUsage, []string{"invalid delta name"}, "static-delta", "show", "main")
	c.fails(exitError, []string{a.String(), "not found"}, "static-delta", "show", a.String())

	// apply-offline into a repository that has A gives B, with no ref.
	dst := newBareUserCLI(t)
	if got := dst.commitTree("main", source(t, fixture), "one", 1700000000); got != a {
		t.Fatalf("same tree, other commit %s", got)
	}
	dst.fails(exitError, []string{"no such file"}, "static-delta", "apply-offline", filepath.Join(t.TempDir(), "none"))
	out = dst.ok("static-delta", "apply-offline", filepath.Join(c.path, "deltas", want[0]))
	if out != "Applied "+want[0]+": commit "+b.String()+"\n" {
		t.Errorf("apply-offline printed %q", out)
	}
	if got := dst.ok("rev-parse", "main"); got != a.String()+"\n" {
		t.Errorf("apply-offline moved main to %q", got)
	}
	dst.ok("fsck", "-q")
	co := filepath.Join(t.TempDir(), "co")
	dst.ok("checkout", "-U", b.String(), co)
	if got := testtree.Read(t, co, testtree.ReadOptions{}); got["a.txt"].Content != changed["a.txt"].Content {
		t.Errorf("checkout after apply-offline: a.txt = %q", got["a.txt"].Content)
	}

	// --filename: the delta goes into a new directory, not the repository,
	// and apply-offline of that directory gives the commit.
	offline := filepath.Join(t.TempDir(), "usb", "update")
	os.MkdirAll(filepath.Dir(offline), 0o755)
	c.ok("static-delta", "generate", "--empty", "--to=main", "--filename="+offline)
	if got := c.ok("static-delta", "list"); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("--filename changed the repository's deltas: %q", got)
	}
	c.fails(exitError, []string{offline, "exists"}, "static-delta", "generate", "--empty", "--to=main", "--filename="+offline)
	fresh := newBareUserCLI(t)
	if out := fresh.ok("static-delta", "apply-offline", offline); out != "Applied "+b.String()+": commit "+b.String()+"\n" {
		t.Errorf("apply-offline of --filename's directory printed %q", out)
	}
	fresh.ok("fsck", "-q")
	if ents, _ := os.ReadDir(filepath.Dir(offline)); len(ents) != 1 {
		t.Errorf("--filename left %d entries beside the delta", len(ents))
	}

	c.ok("static-delta", "delete", want[1])
	if got := c.ok("static-delta", "list"); got != want[0]+"\n" {
		t.Errorf("list after delete = %q", got)
	}
	c.fails(exitError, []string{want[1], "not found"}, "static-delta", "delete", want[1])
}

// generate without --from, when the parent of --to was pruned, says that
// the parent is missing and what to pass instead.
func TestStaticDeltaParentPruned(t *testing.T) {
	c := newCLI(t)
	a := c.commitTree("main", source(t, fixture), "one", 1700000000)
	changed := maps.Clone(fixture)
	changed["a.txt"] = testtree.File("two\n", 0o644)
	b := c.commitTree("main", source(t, changed), "two", 1700000100)
	c.ok("prune", "--refs-only", "--depth=0")
	c.fails(exitError, []string{"parent " + a.String(), b.String(), "--from", "--empty"}, "static-delta", "generate", "--to=main")
}

// generate --inline --sign writes one signed file; show, verify and
// apply-offline read it without the source repository, and a wrong key
// or a missing signature is refused before anything is stored.
func TestStaticDeltaSignedFile(t *testing.T) {
	c := newCLI(t)
	b := c.commitTree("main", source(t, fixture), "one", 1700000000)
	keyFile, secret, pub := generateKey(t, c)
	_, _, strangerPub := generateKey(t, c)
	file := filepath.Join(t.TempDir(), "update.delta")

	c.fails(exitUsage, []string{"--inline", "--filename"}, "static-delta", "generate", "--empty", "--inline", "main")
	c.fails(exitUsage, []string{"--sign #1"}, "static-delta", "generate", "--empty", "--sign=bm90IGEga2V5", "main")
	c.ok("static-delta", "generate", "--empty", "--inline", "--min-fallback-size=0", "--filename="+file, "--sign="+secret, "main")
	if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("--inline wrote %v, %v; want one file", fi, err)
	}
	if got := c.ok("static-delta", "list"); got != "(No static deltas)\n" {
		t.Errorf("--filename changed the repository's deltas: %q", got)
	}
	show := newBareUserCLI(t).ok("static-delta", "show", file)
	for _, w := range []string{"Delta: " + b.String(), "Signed: yes (1 ed25519 signature)", "Number of parts: 1"} {
		if !strings.Contains(show, w) {
			t.Errorf("show FILE printed %q, missing %q", show, w)
		}
	}

	dst := newBareUserCLI(t)
	if out := dst.ok("static-delta", "verify", file, pub); out != "Delta "+b.String()+": valid ed25519 signature by key "+pub+"\n" {
		t.Errorf("verify printed %q", out)
	}
	dst.fails(exitError, []string{file, "no valid ed25519 signature"}, "static-delta", "verify", file, strangerPub)
	dst.fails(exitError, []string{file, "no valid ed25519 signature"}, "static-delta", "apply-offline", file, strangerPub)
	if has, _ := dst.r.HasObject(repo.KindCommit, b); has {
		t.Fatal("apply-offline with the wrong key stored the commit")
	}
	keys := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keys, []byte(pub+"\n"), 0o644)
	var res map[string]any
	if err := json.Unmarshal([]byte(dst.ok("static-delta", "apply-offline", "--keys-file="+keys, "--json", file)), &res); err != nil || res["signature_verified"] != true {
		t.Errorf("apply-offline --keys-file --json = %v, %v", res, err)
	}
	dst.ok("fsck", "-q")
	dst.ok("checkout", "-U", b.String(), filepath.Join(t.TempDir(), "co"))

	// A delta in the repository, signed from a key file; one unsigned.
	a2 := c.commitTree("main", source(t, testtree.Tree{"x": testtree.File("x\n", 0o644)}), "two", 1700000100)
	c.ok("static-delta", "generate", "--sign-from-file="+keyFile, "main")
	name := b.String() + "-" + a2.String()
	if out := c.ok("static-delta", "verify", name, pub); !strings.Contains(out, "valid ed25519 signature") {
		t.Errorf("verify %s printed %q", name, out)
	}
	c.ok("static-delta", "generate", "--empty", "main")
	c.fails(exitError, []string{"no ed25519 signature"}, "static-delta", "verify", a2.String(), pub)
	if show := c.ok("static-delta", "show", a2.String()); !strings.Contains(show, "Signed: no\n") {
		t.Errorf("show of an unsigned delta printed %q", show)
	}
	c.fails(exitError, []string{"no trusted ed25519 public key", "--keys-file"}, "static-delta", "verify", name, "--keys-dir="+t.TempDir())
}

func TestPullStaticDelta(t *testing.T) {
	src := newCLI(t)
	a := src.commitTree("os/stable", source(t, fixture), "one", 1700000000)
	changed := testtree.Tree{}
	for k, v := range fixture {
		changed[k] = v
	}
	changed["sub/secret"] = testtree.File("psst, changed", 0o600)
	b := src.commitTree("os/stable", source(t, changed), "two", 1700000100)
	src.ok("static-delta", "generate", "--to=os/stable")
	if out := src.ok("summary", "-u", "--json"); !strings.Contains(out, a.String()+"-"+b.String()) {
		t.Errorf("summary -u --json lists no delta: %s", out)
	}
	var mu sync.Mutex
	var objects int
	url := serve(t, src, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/objects/") {
			mu.Lock()
			objects++
			mu.Unlock()
		}
		return false
	})
	for _, disable := range []bool{false, true} {
		dst := newBareUserCLI(t)
		dst.ok("remote", "add", "origin", url)
		dst.ok("pull", "origin", a.String())
		dst.ok("refs", "--create=origin:os/stable", a.String())
		if !disable {
			out := dst.ok("pull", "--dry-run", "origin", "os/stable")
			if want := "Delta update: 0/1 parts, 0 bytes/"; !strings.HasPrefix(out, want) || !strings.Contains(out, "total uncompressed\nos/stable: "+b.String()+": delta "+a.String()+"-"+b.String()+", 1 part, ") {
				t.Errorf("pull --dry-run printed %q, want %q...", out, want)
			}
			if got := dst.ok("rev-parse", "origin:os/stable"); got != a.String()+"\n" {
				t.Errorf("pull --dry-run moved the ref: %q", got)
			}
			dst.fails(exitUsage, []string{"--dry-run"}, "pull", "--dry-run", "--disable-static-deltas", "origin")
		}
		mu.Lock()
		objects = 0
		mu.Unlock()
		args := []string{"pull", "--json", "origin"}
		if disable {
			args = append(args, "--disable-static-deltas")
		}
		var res remote.PullResult
		if err := json.Unmarshal([]byte(dst.ok(args...)), &res); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		n := objects
		mu.Unlock()
		if used := len(res.Deltas) == 1 && res.Deltas[0] == a.String()+"-"+b.String(); used == disable || (n == 0) != !disable {
			t.Errorf("disable=%v: deltas %v, %d object requests", disable, res.Deltas, n)
		}
		// The delta's part, or the objects one by one.
		if parts, loose := res.DeltaParts, res.MetadataFetched+res.ContentFetched; (parts == 1) == disable || (loose == 0) == disable {
			t.Errorf("disable=%v: %d delta parts, %d objects fetched one by one", disable, parts, loose)
		}
		if got := dst.ok("rev-parse", "origin:os/stable"); got != b.String()+"\n" {
			t.Errorf("after pull: %q", got)
		}
		dst.ok("fsck", "-q")
	}
}

// TestPruneDeletesOrphanDeltas checks prune removes the deltas that lead to
// a commit it deletes (dry run: only names them) and keeps those whose
// from-commit it deletes, as OSTree does.
func TestPruneDeletesOrphanDeltas(t *testing.T) {
	c := newCLI(t)
	a := c.commitTree("main", source(t, fixture), "one", 1700000000)
	changed := testtree.Tree{"a.txt": testtree.File("changed\n", 0o644)}
	b := c.commitTree("main", source(t, changed), "two", 1700000100)
	x := c.commitTree("tmp", source(t, testtree.Tree{"x": testtree.File("x\n", 0o644)}), "x", 1700000200)
	c.ok("static-delta", "generate", "--from="+a.String(), "--to=main")
	c.ok("static-delta", "generate", "--from="+b.String(), "--to=tmp")
	c.ok("refs", "--delete", "tmp")
	toX := b.String() + "-" + x.String()
	var parts int64
	filepath.WalkDir(filepath.Join(c.path, "deltas", toX), func(p string, d fs.DirEntry, err error) error {
		if fi, ierr := os.Lstat(p); err == nil && ierr == nil && !d.IsDir() {
			parts += fi.Size()
		}
		return nil
	})
	if out := c.ok("prune", "--refs-only", "--depth=0", "--no-prune"); parts == 0 || !strings.Contains(out, "Would delete 1 static delta, freeing "+siBytes(parts)+": "+toX) {
		t.Errorf("dry run printed %q, want the delta and its %d bytes", out, parts)
	}
	if got := c.ok("static-delta", "list"); !strings.Contains(got, toX) {
		t.Errorf("a dry run deleted a delta: %q", got)
	}
	var rep struct {
		Commits []string `json:"deleted_commits"`
		Deltas  []string `json:"deleted_deltas"`
		Bytes   int64    `json:"deleted_delta_bytes"`
	}
	if err := json.Unmarshal([]byte(c.ok("prune", "--refs-only", "--depth=0", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Commits) != 2 || len(rep.Deltas) != 1 || rep.Deltas[0] != toX || rep.Bytes != parts {
		t.Errorf("prune --json = %+v", rep)
	}
	// a was deleted too (depth 0), but the delta from it to main stays.
	if got := c.ok("static-delta", "list"); got != a.String()+"-"+b.String()+"\n" {
		t.Errorf("deltas after prune: %q", got)
	}
}
