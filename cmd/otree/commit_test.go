package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

func TestCommitCommand(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"etc/demo.conf": testtree.File("x=1\n", 0o644), "skip/me": testtree.File("s", 0o644)})
	skip := filepath.Join(t.TempDir(), "skip-list")
	os.WriteFile(skip, []byte("# comment\n/skip\n"), 0o644)

	out := c.ok("commit", "-b", "uat", "-s", "First", "-m", "Body text", "--add-metadata-string=version=1.0",
		"--add-metadata-string=os=demo", "--timestamp=2024-01-02 03:04:05", "--skip-list="+skip, src)
	id, err := repo.ParseID(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("commit printed %q, want a commit id", out)
	}
	if head, _ := c.r.ReadRef("uat"); head != id {
		t.Fatalf("uat = %s, want the printed id %s", head, id)
	}
	cm, err := c.r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cm.Metadata.Get("version"); string(v) != "1.0" || cm.Subject != "First" || cm.Body != "Body text" {
		t.Errorf("commit = %+v", cm)
	}
	if want := time.Date(2024, 1, 2, 3, 4, 5, 0, time.Local).Unix(); cm.Timestamp != uint64(want) {
		t.Errorf("timestamp %d, want %d", cm.Timestamp, want)
	}
	if _, err := c.r.Lookup(id, "/skip"); err == nil {
		t.Error("--skip-list path was committed")
	}

	// --json and --stats report the work; nothing changed, so nothing new
	// but the commit object is written.
	res := c.run("commit", "-b", "uat", "--json", "--stats", "--skip-list="+skip, src)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var js struct {
		Commit repo.ID `json:"commit"`
		Parent repo.ID `json:"parent"`
		Stats  struct {
			Files        int64 `json:"files"`
			Objects      int64 `json:"objects"`
			BytesDeduped int64 `json:"bytes_deduped"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &js); err != nil {
		t.Fatalf("--json output %q: %v", res.stdout, err)
	}
	if js.Parent != id || js.Stats.Objects != 1 || js.Stats.Files != 1 {
		t.Errorf("--json = %+v", js)
	}
	if !strings.Contains(res.stderr, "Objects written: 1") {
		t.Errorf("--stats summary missing: %q", res.stderr)
	}
	skipped := c.ok("commit", "-b", "uat", "--skip-if-unchanged", "--skip-list="+skip, src)
	if strings.TrimSpace(skipped) != js.Commit.String() {
		t.Errorf("--skip-if-unchanged printed %q, want the current commit %s", skipped, js.Commit)
	}

	// Overlays and orphans.
	over := source(t, testtree.Tree{"etc/demo.conf": testtree.File("x=2\n", 0o644)})
	orphan := strings.TrimSpace(c.ok("commit", "--orphan", "--tree=ref=uat", "--tree=dir="+over))
	oid, _ := repo.ParseID(orphan)
	e, err := c.r.Lookup(oid, "/etc/demo.conf")
	if err != nil {
		t.Fatal(err)
	}
	if _, rc, _ := c.r.OpenFile(e.ID); rc != nil {
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		if b.String() != "x=2\n" {
			t.Errorf("overlay gave %q", b.String())
		}
	}
	if head, _ := c.r.ReadRef("uat"); head != js.Commit {
		t.Error("--orphan moved a branch")
	}
}

// OSTree's flags for the message and metadata, and for what is recorded
// of each file, reach the commit.
func TestCommitCommandMoreOSTreeFlags(t *testing.T) {
	c := newCLI(t)
	x := map[string]string{"user.note": "n"}
	src := source(t, testtree.Tree{"bin/tool": {Mode: 0o755, Content: "#!/bin/sh\n", Xattrs: x}})
	dir := t.TempDir()
	body := filepath.Join(dir, "body")
	os.WriteFile(body, []byte("Line one\n\nMore text.\n"), 0o644)

	first := strings.TrimSpace(c.ok("commit", "-b", "uat", "-s", "First", "-m", "ignored", "-F", body,
		"--add-metadata-string=version=1.0", "--add-detached-metadata-string=approved-by=qa", src))
	id, _ := repo.ParseID(first)
	cm, err := c.r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Body != "Line one\n\nMore text.\n" {
		t.Errorf("--body-file gave body %q", cm.Body)
	}
	if dm, err := c.r.ReadCommitMeta(id); err != nil {
		t.Errorf("detached metadata: %v", err)
	} else if v, _ := dm.Get("approved-by"); string(v) != "qa" {
		t.Errorf("--add-detached-metadata-string: detached metadata %v", dm)
	}
	header := func(commit, p string) *repo.FileHeader {
		t.Helper()
		id, _ := repo.ParseID(commit)
		e, err := c.r.Lookup(id, p)
		if err != nil {
			t.Fatal(err)
		}
		h, rc, err := c.r.OpenFile(e.ID)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		return h
	}
	if h := header(first, "/bin/tool"); h.Mode != 0o755 || len(h.Xattrs) != 1 {
		t.Fatalf("plain commit: /bin/tool mode %o, xattrs %v", h.Mode, h.Xattrs)
	}

	second := strings.TrimSpace(c.ok("commit", "-b", "uat", "--keep-metadata=version", "--no-xattrs", "--mode-ro-executables", src))
	id, _ = repo.ParseID(second)
	if cm, err = c.r.ReadCommit(id); err != nil {
		t.Fatal(err)
	}
	if v, _ := cm.Metadata.Get("version"); string(v) != "1.0" {
		t.Errorf("--keep-metadata=version: metadata %v", cm.Metadata)
	}
	if h := header(second, "/bin/tool"); h.Mode != 0o555 || len(h.Xattrs) != 0 {
		t.Errorf("--no-xattrs --mode-ro-executables: /bin/tool mode %o, xattrs %v", h.Mode, h.Xattrs)
	}

	latin1 := filepath.Join(dir, "latin1")
	os.WriteFile(latin1, []byte("caf\xe9\n"), 0o644)
	c.fails(exitError, []string{filepath.Join(dir, "gone")}, "commit", "-b", "uat", "-F", filepath.Join(dir, "gone"), src)
	c.fails(exitError, []string{latin1, "UTF-8"}, "commit", "-b", "uat", "-F", latin1, src)
	// A NUL is no text's either; OSTree refuses it as not UTF-8.
	binary := filepath.Join(dir, "binary")
	os.WriteFile(binary, []byte("line\x00more\n"), 0o644)
	c.fails(exitError, []string{binary, "UTF-8"}, "commit", "-b", "uat", "-F", binary, src)
	c.fails(exitError, []string{`subject "caf\xe9"`, "not UTF-8"}, "commit", "-b", "uat", "-s", "caf\xe9", src)
	c.fails(exitError, []string{`body "\xff"`, "not UTF-8"}, "commit", "-b", "uat", "-m", "\xff", src)
	c.fails(exitUsage, []string{"--add-detached-metadata-string", "KEY=VALUE"}, "commit", "-b", "uat", "--add-detached-metadata-string=novalue", src)
	c.fails(exitError, []string{"nokey"}, "commit", "-b", "uat", "--keep-metadata=nokey", src)
	if head, _ := c.r.ReadRef("uat"); head.String() != second {
		t.Errorf("failed commits moved uat to %s", head)
	}
}

// --tree=ref= takes the modifier flags as a directory does, and, as in
// OSTree, canonical permissions refuse a non-zero owner override.
func TestCommitCommandRefSourceWithModifiers(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{
		"bin/su":   {Mode: fs.ModeSetuid | 0o755, Content: "s"},
		"etc/conf": testtree.File("c", 0o664),
	})
	c.ok("commit", "-b", "base", src)
	skip := filepath.Join(t.TempDir(), "skip")
	os.WriteFile(skip, []byte("/bin/su\n"), 0o644)
	c.ok("commit", "-b", "canon", "--tree=ref=base", "--canonical-permissions", "--skip-list="+skip)
	if got, want := c.ok("ls", "-R", "canon"), "d00755 0 0      0 /\n"+
		"d00755 0 0      0 /bin\n"+
		"d00755 0 0      0 /etc\n"+
		"-00644 0 0      1 /etc/conf\n"; got != want {
		t.Errorf("ls -R canon:\n%s\nwant:\n%s", got, want)
	}
	c.fails(exitUsage, []string{"--canonical-permissions", "--owner-uid"}, "commit", "-b", "bad", "--tree=ref=base", "--canonical-permissions", "--owner-uid=5")
	c.fails(exitUsage, []string{"--canonical-permissions", "--owner-gid"}, "commit", "-b", "bad", src, "--canonical-permissions", "--owner-gid=5")
	if _, err := c.r.ReadRef("bad"); err == nil {
		t.Error("a refused commit created its branch")
	}
	c.ok("commit", "-b", "zero", "--tree=ref=base", "--canonical-permissions", "--owner-uid=0")
}

// --statoverride reads OSTree's format; a malformed line or a path the
// tree lacks is refused, naming it, and moves nothing.
func TestCommitCommandStatOverride(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"bin/su": testtree.File("s", 0o755), "etc/conf": testtree.File("c", 0o644)})
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	c.ok("commit", "-b", "main", "--statoverride="+file("good", "2048 /bin/su\n=384 /etc/conf\n"), src)
	out := c.ok("ls", "main", "/bin/su", "/etc/conf")
	for _, want := range []string{"-04755 0 0      1 /bin/su", "-00600 0 0      1 /etc/conf"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls: want %q in\n%s", want, out)
		}
	}
	head, _ := c.r.ReadRef("main")
	bad := file("bad", "2048 /bin/su\n0644/etc/conf\n")
	c.fails(exitUsage, []string{bad, "line 2"}, "commit", "-b", "main", "--statoverride="+bad, src)
	c.fails(exitError, []string{"/bin/gone"}, "commit", "-b", "main", "--statoverride="+file("gone", "2048 /bin/gone\n"), src)
	// A path is taken as written: a trailing space shows in the error.
	c.fails(exitError, []string{`"/bin/su "`}, "commit", "-b", "main", "--statoverride="+file("space", "2048 /bin/su \n"), src)
	rel := file("relative", "2048 bin/su\n")
	c.fails(exitUsage, []string{rel, "line 1", `"bin/su" does not start with "/"`}, "commit", "-b", "main", "--statoverride="+rel, src)
	c.fails(exitError, []string{filepath.Join(dir, "none")}, "commit", "-b", "main", "--statoverride="+filepath.Join(dir, "none"), src)
	if now, _ := c.r.ReadRef("main"); now != head {
		t.Errorf("refused commits moved main to %s", now)
	}
}

// OSTree's --link-checkout-speedup and -I are accepted, and what they ask
// for is what otree always does: a hardlinked checkout commits again
// without reading a file, to the same tree.
func TestCommitCommandLinkCheckoutSpeedup(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	r := c.r
	src := source(t, testtree.Tree{"etc/a.conf": testtree.File("a\n", 0o644), "bin/tool": testtree.File("#!/bin/sh\n", 0o755)})
	first, _ := repo.ParseID(strings.TrimSpace(c.ok("commit", "-b", "base", src)))
	co := filepath.Join(t.TempDir(), "co")
	c.ok("checkout", "-U", "base", co)
	var js struct {
		Commit repo.ID `json:"commit"`
		Stats  struct {
			Files       int64 `json:"files"`
			FilesHashed int64 `json:"files_hashed"`
		} `json:"stats"`
	}
	out := c.ok("commit", "-b", "again", "--json", "--link-checkout-speedup", "-I", co)
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if js.Stats.Files != 2 || js.Stats.FilesHashed != 0 {
		t.Errorf("commit of a hardlinked checkout: %+v, want 2 files and none read", js.Stats)
	}
	a, _ := r.ReadCommit(first)
	b, _ := r.ReadCommit(js.Commit)
	if a == nil || b == nil || a.RootTree != b.RootTree {
		t.Error("the hardlinked checkout did not commit to the same tree")
	}
}

// After a chmod or setfattr through a hardlinked checkout of a bare-user
// or bare repository (which changes the object too), the commit records the
// file as it now is, reading only the changed files. In bare, as in
// OSTree's system repository, root checks out hardlinks without -U.
func TestCommitCommandChangedHardlinkedCheckout(t *testing.T) {
	modes := []repo.Mode{repo.ModeBareUser}
	if os.Getuid() == 0 {
		modes = append(modes, repo.ModeBare)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := newCLIMode(t, mode)
			src := source(t, testtree.Tree{"etc/a.conf": testtree.File("a\n", 0o644), "bin/tool": testtree.File("#!/bin/sh\n", 0o755),
				"etc/b.conf": testtree.File("b\n", 0o644)})
			c.ok("commit", "-b", "base", src)
			co := filepath.Join(t.TempDir(), "co")
			if mode == repo.ModeBare {
				c.ok("checkout", "base", co)
			} else {
				c.ok("checkout", "-U", "base", co)
			}
			var js struct {
				Commit repo.ID `json:"commit"`
				Stats  struct {
					FilesHashed int64 `json:"files_hashed"`
				} `json:"stats"`
			}
			commit := func() {
				t.Helper()
				if err := json.Unmarshal([]byte(c.ok("commit", "-b", "base", "--json", co)), &js); err != nil {
					t.Fatal(err)
				}
			}
			commit()
			if js.Stats.FilesHashed != 0 {
				t.Errorf("unchanged checkout: hashed %d files, want 0", js.Stats.FilesHashed)
			}
			if err := os.Chmod(filepath.Join(co, "etc/a.conf"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(filepath.Join(co, "bin/tool"), "user.z", []byte("1"), 0); err != nil {
				t.Fatal(err)
			}
			commit()
			if js.Stats.FilesHashed != 2 {
				t.Errorf("hashed %d files, want the 2 changed ones", js.Stats.FilesHashed)
			}
			out := c.ok("ls", "-X", "base", "/etc/a.conf", "/bin/tool")
			if !strings.Contains(out, "-00600 ") || !strings.Contains(out, "user.z") {
				t.Errorf("ls of the new commit: want /etc/a.conf 0600 and /bin/tool with user.z:\n%s", out)
			}
			if diff := c.ok("diff", "base^", "base"); !strings.Contains(diff, "M    /etc/a.conf") || !strings.Contains(diff, "M    /bin/tool") {
				t.Errorf("diff base^ base:\n%s", diff)
			}
		})
	}
}

// Objects that came into a bare-user-only repository by pull-local are
// indexed as committed ones are, so a hardlink checkout of them commits
// again without reading a file.
func TestCommitCommandHardlinksOfPulledObjects(t *testing.T) {
	src := newCLI(t)
	src.commitTree("base", source(t, testtree.Tree{"etc/a.conf": testtree.File("a\n", 0o644), "bin/tool": testtree.File("#!/bin/sh\n", 0o755)}), "one", 1700000000)
	c := newCLIMode(t, repo.ModeBareUserOnly)
	c.ok("pull-local", src.path, "base")
	co := filepath.Join(t.TempDir(), "co")
	c.ok("checkout", "-U", "base", co)
	var js struct {
		Stats struct {
			FilesHashed int64 `json:"files_hashed"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(c.ok("commit", "-b", "again", "--json", co)), &js); err != nil {
		t.Fatal(err)
	}
	if js.Stats.FilesHashed != 0 {
		t.Errorf("hashed %d files of a hardlink checkout of pulled objects, want 0", js.Stats.FilesHashed)
	}
}

// --orphan with -b starts the branch's history over, as in OSTree: the
// branch moves to a commit with no parent (unless --parent), bound to it.
func TestCommitCommandOrphanBranch(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"f": testtree.File("1", 0o644)})
	first := strings.TrimSpace(c.ok("commit", "-b", "main", src))
	os.WriteFile(filepath.Join(src, "f"), []byte("2"), 0o644)
	id, err := repo.ParseID(strings.TrimSpace(c.ok("commit", "--orphan", "-b", "main", src)))
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := c.r.ReadRef("main"); head != id {
		t.Fatalf("--orphan -b main left main at %s, want %s", head, id)
	}
	cm, err := c.r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	if !cm.Parent.IsZero() {
		t.Errorf("--orphan -b: parent %s, want none", cm.Parent)
	}
	if v, _ := cm.Metadata.Get(repo.RefBindingKey); string(v) != "main" {
		t.Errorf("--orphan -b: bound to %q, want main", v)
	}
	withParent, _ := repo.ParseID(strings.TrimSpace(c.ok("commit", "--orphan", "-b", "main", "--parent="+first, src)))
	if cm, err := c.r.ReadCommit(withParent); err != nil || cm.Parent.String() != first {
		t.Errorf("--orphan --parent: %+v, %v; want parent %s", cm, err, first)
	}
}

// Each --skip-list line is a path exactly as written up to the newline:
// spaces and a carriage return belong to the name; empty and "#" lines are
// ignored; a line that could match nothing is refused, naming it.
func TestCommitCommandSkipListLines(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"a": testtree.File("keep", 0o644), "a ": testtree.File("drop", 0o644),
		"b\r": testtree.File("cr", 0o644), "c": testtree.File("c", 0o644)})
	skip := filepath.Join(t.TempDir(), "skip")
	os.WriteFile(skip, []byte("# comment\n\n/a \n/b\r\n"), 0o644)
	c.ok("commit", "-b", "main", "--skip-list="+skip, src)
	if got := c.ok("ls", "--nul-filenames-only", "main"); got != "/\x00/a\x00/c\x00" {
		t.Errorf("tree after skipping \"/a \" and \"/b\\r\": %q", got)
	}
	for _, bad := range []string{"\ta", " /a", "c", "/c/"} {
		os.WriteFile(skip, []byte("/c\n"+bad+"\n"), 0o644)
		c.fails(exitUsage, []string{skip, strconv.Quote(bad)}, "commit", "-b", "main", "--skip-list="+skip, src)
	}
}

func TestCommitCommandErrors(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	c.fails(exitUsage, []string{"branch"}, "commit", src)
	c.fails(exitUsage, []string{"owner-uid"}, "commit", "-b", "x", "--owner-uid=abc", src)
	c.fails(exitUsage, []string{"--owner-gid", "4294967295"}, "commit", "-b", "x", "--owner-gid=4294967295", src)
	c.fails(exitUsage, []string{"--tree: ", "bogus=x"}, "commit", "-b", "x", "--tree=bogus=x")
	c.fails(exitUsage, []string{"--tar-pathname-filter: ", `"abc"`, "REGEX,REPLACEMENT"}, "commit", "-b", "x", "--tar-pathname-filter=abc", "--tree=tar=x.tar")
	c.fails(exitUsage, []string{"--timestamp"}, "commit", "-b", "x", "--timestamp=whenever", src)
	c.fails(exitUsage, []string{"KEY=VALUE"}, "commit", "-b", "x", "--add-metadata-string=novalue", src)
	c.fails(exitUsage, []string{"a//b"}, "commit", "-b", "a//b", src)
	c.fails(exitError, []string{"no-such-rev"}, "commit", "-b", "x", "--parent=no-such-rev", src)
	missing := filepath.Join(t.TempDir(), "gone")
	c.fails(exitError, []string{missing}, "commit", "-b", "x", missing)
	c.fails(exitError, []string{"nope.tar"}, "commit", "-b", "x", "--tree=tar="+filepath.Join(t.TempDir(), "nope.tar"))
	if refs, _ := c.r.ListRefs(""); len(refs) != 0 {
		t.Fatalf("failed commits created refs: %v", refs)
	}
	// Any negative owner means unset, as in OSTree: the same tree as none.
	plain := strings.TrimSpace(c.ok("commit", "--orphan", "--timestamp=2024-01-01", src))
	for _, flag := range []string{"--owner-uid=-5", "--owner-gid=-2"} {
		if got := strings.TrimSpace(c.ok("commit", "--orphan", "--timestamp=2024-01-01", flag, src)); got != plain {
			t.Errorf("%s: commit %s, want %s as with no owner flag", flag, got, plain)
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"commit", "-b", "x", src}, strings.NewReader(""), &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "OTREE_REPO") {
		t.Errorf("no repository: exit %d, %q", code, errb.String())
	}
}

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no pseudo-terminals here:", err)
	}
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skip("unlockpt:", e)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skip("ptsname:", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("open pts:", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// readScreen reads what was written to the terminal whose master end is
// m, until until appears (if not ""), the writers are gone, or two seconds
// pass.
func readScreen(m *os.File, until string) string {
	var screen string
	m.SetReadDeadline(time.Now().Add(2 * time.Second))
	for buf := make([]byte, 4096); until == "" || !strings.Contains(screen, until); {
		n, err := m.Read(buf)
		screen += string(buf[:n])
		if err != nil {
			break
		}
	}
	return screen
}

// On a terminal, commit draws progress and prints its summary; elsewhere
// (the other tests) standard error stays clean.
func TestCommitProgressOnTerminal(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"a": testtree.File("aaa", 0o644), "b/c": testtree.File("c", 0o644)})
	m, s := openPTY(t)
	var out bytes.Buffer
	code := run(context.Background(), []string{"--repo=" + c.path, "commit", "-b", "x", src}, strings.NewReader(""), &out, s)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	s.Close()
	screen := readScreen(m, "deduplicated")
	for _, want := range []string{"Scanning: 2 files", "Files scanned: 2", "Objects written:", "Bytes deduplicated:"} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal output %q lacks %q", screen, want)
		}
	}
	res := c.run("commit", "-b", "x", src)
	if res.stderr != "" {
		t.Errorf("not a terminal, yet stderr = %q", res.stderr)
	}
}

// TestCommitRefBindings checks the commit is bound to its branch by
// default, to --bind-ref refs as well, and to nothing with --no-bindings or
// --orphan, as OSTree's commit does.
func TestCommitRefBindings(t *testing.T) {
	c := newCLI(t)
	src := source(t, fixture)
	key := "--print-metadata-key=" + repo.RefBindingKey
	c.ok("commit", "-b", "os/stable", "--bind-ref=os/lts", "--bind-ref=os/lts", src)
	if got := c.ok("show", key, "os/stable"); got != "['os/lts', 'os/stable']\n" {
		t.Errorf("bindings of a commit with --bind-ref: %q", got)
	}
	c.ok("commit", "-b", "os/stable", src)
	if got := c.ok("show", key, "os/stable"); got != "['os/stable']\n" {
		t.Errorf("bindings of a plain commit: %q", got)
	}
	c.ok("commit", "-b", "os/stable", "--no-bindings", "--bind-ref=os/lts", src)
	c.fails(1, []string{repo.RefBindingKey}, "show", key, "os/stable")
	id := strings.TrimSpace(c.ok("commit", "--orphan", src))
	c.fails(1, []string{repo.RefBindingKey}, "show", key, id)
	c.fails(2, []string{"--bind-ref", "bad name"}, "commit", "-b", "os/stable", "--bind-ref=bad name", src)
	if got := c.ok("log", "os/stable"); strings.Count(got, "commit ") != 3 {
		t.Errorf("a refused commit moved the branch: log has %d commits", strings.Count(got, "commit "))
	}
}

// commit's --fsync=POLICY takes OSTree's boolean spellings, as a separate
// argument too; the no-spellings (and OSTree's --disable-fsync) sync
// nothing, the yes-spellings sync.
func TestCommitFsyncPolicy(t *testing.T) {
	testbin.NeedStrace(t)
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, fixture)
	for i, policy := range [][]string{{"--fsync=no"}, {"--fsync", "none"}, {"--fsync=FALSE"}, {"--fsync=0"}, {"--disable-fsync"},
		{"--fsync=yes"}, {"--fsync", "true"}, {"--fsync=1"}} {
		// Not "b6": OSTree also reads a branch name of hex digits as a
		// commit id prefix, and fails when two commits start with it.
		branch := fmt.Sprintf("p%d", i)
		args := append([]string{"commit", "-b", branch}, policy...)
		args = append(args, src)
		o.ok(args...)
		st, err := straced(t, "-e trace=syncfs,fsync,fdatasync,sync", append([]string{"--repo=" + c.path}, args...)...)
		if err != nil {
			t.Fatalf("otree %v: %v\n%s", args, err, st.out)
		}
		synced := regexp.MustCompile(`(syncfs|fsync|fdatasync|sync)\(`).MatchString(st.log)
		if want := i >= 5; synced != want {
			t.Errorf("otree %v: synced %v, want %v", policy, synced, want)
		}
		if got := strings.TrimSpace(c.ok("rev-parse", branch)); len(got) != 64 {
			t.Errorf("otree %v: branch %s = %q", policy, branch, got)
		}
	}
	// Anything else is refused, by both, and moves no branch.
	for _, policy := range [][]string{{"--fsync=maybe"}, {"--fsync"}} {
		args := append([]string{"commit", "-b", "refused"}, policy...)
		if len(policy) == 1 && policy[0] == "--fsync" {
			args = append([]string{"commit", "-b", "refused", src}, policy...)
		} else {
			args = append(args, src)
		}
		c.fails(exitUsage, []string{"--fsync"}, args...)
		if out, err := o.run(args...); err == nil {
			t.Errorf("ostree %v succeeded: %s", args, out)
		}
	}
	c.fails(1, []string{"refused"}, "rev-parse", "refused")
}

// A durable commit that takes objects a --fsync=false commit stored (here
// every one: the same tree) syncs them before it moves its branch, since
// it wrote none of them itself; after that, durable commits of that tree
// sync nothing.
func TestDurableCommitSyncsUnsyncedObjects(t *testing.T) {
	testbin.NeedStrace(t)
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, fixture)
	c.ok("commit", "-b", "scratch", "--fsync=false", src)
	commit := func(branch string) (syncfs, refRename int) {
		st, err := straced(t, "-e trace=syncfs,rename,renameat,renameat2", "--repo="+c.path, "commit", "-b", branch, src)
		if err != nil {
			t.Fatalf("commit: %v\n%s", err, st.out)
		}
		syncfs, refRename = -1, -1
		for i, l := range st.lines {
			if strings.Contains(l, "syncfs(") && syncfs < 0 {
				syncfs = i
			}
			if strings.Contains(l, "rename") && strings.Contains(l, "refs/heads/"+branch) {
				refRename = i
			}
		}
		return
	}
	if s, r := commit("durable"); s < 0 || r < 0 || s > r {
		t.Errorf("durable commit over unsynced objects: syncfs at line %d, ref written at line %d; want a syncfs first", s, r)
	}
	if s, r := commit("again"); s >= 0 || r < 0 {
		t.Errorf("durable commit after the sync: syncfs at line %d (want none), ref written at line %d", s, r)
	}
}

// A durable commit makes its renames into objects/ durable before it
// writes its branch: each is followed, before the ref's rename, by an
// fsync of the fan-out directory it landed in or by a syncfs. Else a crash
// could keep the ref and lose an object it needs. Each rename is also
// preceded by an fsync of the staged file it moves, or by a syncfs, so
// that no object lands in objects/ before its data is durable. A few
// objects are synced one by one, many with syncfs: both ways are checked.
func TestCommitSyncsObjectRenamesBeforeRef(t *testing.T) {
	testbin.NeedStrace(t)
	c := newCLIMode(t, repo.ModeBareUser)
	rename := regexp.MustCompile(`renameat2?\(\d+<([^>]*)>, "([^"]*)", \d+<([^>]*)>, "([0-9a-f]{2})/[^"]*"`)
	for _, tc := range []struct {
		branch string
		tree   testtree.Tree
	}{
		{"few", fixture},
		{"many", randomTree(rand.New(rand.NewPCG(1, 2)), 150, 512, 6)},
	} {
		tr, err := straced(t, "-e trace=fsync,syncfs,rename,renameat,renameat2", "--repo="+c.path, "commit", "-b", tc.branch, source(t, tc.tree))
		if err != nil {
			t.Fatalf("commit: %v\n%s", err, tr.out)
		}
		data, lines := tr.log, tr.lines
		ref := slices.IndexFunc(lines, func(l string) bool {
			return strings.Contains(l, "rename") && strings.Contains(l, "refs/heads/"+tc.branch)
		})
		if ref < 0 {
			t.Fatalf("%s: no rename of the ref in:\n%s", tc.branch, data)
		}
		objects := filepath.Join(c.path, "objects")
		moved := 0
		for i, l := range lines[:ref] {
			m := rename.FindStringSubmatch(l)
			if m == nil || m[3] != objects {
				continue
			}
			moved++
			staged := filepath.Join(m[1], m[2])
			if !slices.ContainsFunc(lines[:i], func(l string) bool {
				return strings.Contains(l, "syncfs(") || strings.Contains(l, "fsync(") && strings.Contains(l, "<"+staged+">")
			}) {
				t.Errorf("%s: %s is moved into objects/ at line %d before it is synced:\n%s", tc.branch, staged, i, data)
				break
			}
			dir := filepath.Join(objects, m[4])
			if !slices.ContainsFunc(lines[i+1:ref], func(l string) bool {
				return strings.Contains(l, "syncfs(") || strings.Contains(l, "fsync(") && strings.Contains(l, "<"+dir+">")
			}) {
				t.Errorf("%s: the rename into %s at line %d is not made durable before the ref is written (line %d):\n%s", tc.branch, dir, i, ref, data)
				break
			}
		}
		if moved == 0 {
			t.Errorf("%s: no rename into %s before the ref's:\n%s", tc.branch, objects, data)
		}
	}
}

// --parent takes a full id of a commit that is not here, as OSTree's does
// (a history cut where a shallow pull leaves one); a ref or prefix that
// names nothing is still an error, and --keep-metadata needs the parent.
func TestCommitParentNotHere(t *testing.T) {
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, fixture)
	gone := strings.Repeat("1", 64)
	// OSTree's ids are SHA-256, of the same length: the same text works for both.
	o.ok("commit", "-b", "pz", "--parent="+gone, src)
	id := strings.TrimSpace(c.ok("commit", "-b", "pz", "--parent="+gone, src))
	cid, err := repo.ParseID(id)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := c.r.ReadCommit(cid)
	if err != nil || cm.Parent.String() != gone {
		t.Fatalf("commit %s: parent %v, %v", id, cm, err)
	}
	for tool, log := range map[string]string{"otree": c.ok("log", "pz"), "ostree": o.ok("log", "pz")} {
		if !strings.Contains(log, "<< History beyond this commit not fetched >>") {
			t.Errorf("%s log of a commit whose parent is not here:\n%s", tool, log)
		}
	}
	if res := c.run("fsck"); res.code != 0 {
		t.Errorf("fsck: %d %s", res.code, res.stderr)
	}
	c.fails(exitError, []string{"1111"}, "commit", "-b", "x", "--parent=1111", src)
	c.fails(exitError, []string{"keep", "parent"}, "commit", "-b", "x", "--parent="+gone, "--keep-metadata=version", src)
}

// --consume deletes the sources only once the commit is durable, even
// with --fsync=false: they are the other copy of what it holds.
func TestCommitConsumeSyncsFirst(t *testing.T) {
	testbin.NeedStrace(t)
	c := newCLIMode(t, repo.ModeBareUser)
	src := source(t, fixture)
	tr, err := straced(t, "-e trace=syncfs,unlinkat", "--repo="+c.path, "commit", "-b", "b", "--consume", "--fsync=false", src)
	if err != nil {
		t.Fatalf("commit --consume: %v\n%s", err, tr.out)
	}
	if _, err := os.Stat(src); err == nil {
		t.Fatal("--consume left the source")
	}
	data := tr.log
	syncfs, consumed := -1, -1
	for i, l := range tr.lines {
		if strings.Contains(l, "syncfs(") && syncfs < 0 {
			syncfs = i
		}
		if strings.Contains(l, "unlinkat(") && strings.Contains(l, src) && consumed < 0 {
			consumed = i
		}
	}
	if syncfs < 0 || consumed < 0 || syncfs > consumed {
		t.Errorf("syncfs at line %d, first removal in the source at line %d:\n%s", syncfs, consumed, data)
	}
}

// A tar's xattrs come from SCHILY.xattr records and from libarchive's
// LIBARCHIVE.xattr ones (URL-encoded name, base64 value), which bsdtar may
// write alone: both tools record the same xattrs. A record that does not
// decode is refused, naming it.
func TestCommitTarLibarchiveXattrs(t *testing.T) {
	o := needOSTree(t, "bare-user")
	c := newCLIMode(t, repo.ModeBareUser)
	dir := t.TempDir()
	writeTar := func(name string, pax map[string]string) string {
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX})
		tw.WriteHeader(&tar.Header{Name: "./f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, PAXRecords: pax, Format: tar.FormatPAX})
		tw.Write([]byte("c"))
		tw.Close()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, tb.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b64 := base64.StdEncoding.EncodeToString
	good := writeTar("x.tar", map[string]string{
		"LIBARCHIVE.xattr.user.only":   b64([]byte("v1")),
		"LIBARCHIVE.xattr.user.bin%01": b64([]byte{0, 1, 2}),
		"SCHILY.xattr.user.both":       "schily",
		"LIBARCHIVE.xattr.user.both":   b64([]byte("schily")),
	})
	o.ok("commit", "-b", "x", "--tree=tar="+good)
	c.ok("commit", "-b", "x", "--tree=tar="+good)
	// OSTree lists user.both twice, unsorted; otree once, in order.
	want, got := o.ok("ls", "-X", "x", "/f"), c.ok("ls", "-X", "x", "/f")
	if wantGot := "-00644 0 0      1 { [(b'user.bin\\001', [byte 0x00, 0x01, 0x02]), (b'user.both', [0x73, 0x63, 0x68, 0x69, 0x6c, 0x79]), (b'user.only', [0x76, 0x31])] } /f\n"; got != wantGot {
		t.Errorf("ls -X of the tar's file: %q, want %q", got, wantGot)
	}
	for _, name := range []string{`user.bin\001`, "user.both", "user.only"} {
		if !strings.Contains(want, "(b'"+name+"'") {
			t.Errorf("ostree did not record %s: %q", name, want)
		}
	}
	bad := writeTar("bad.tar", map[string]string{"LIBARCHIVE.xattr.user.x": "not base64!"})
	c.fails(exitError, []string{"LIBARCHIVE.xattr.user.x", "base64"}, "commit", "-b", "bad", "--tree=tar="+bad)
}

// A partial commit (a pull has not completed it) is refused as a stored
// source: its tree would be taken unread, objects missing and all.
func TestCommitRefSourcePartial(t *testing.T) {
	c := newCLIMode(t, repo.ModeBareUser)
	id := c.commitTree("src", source(t, fixture), "one", 1700000000)
	if err := c.r.MarkCommitPartial(id); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--tree=ref=", "--base="} {
		c.fails(exitError, []string{id.String(), "partial"}, "commit", "-b", "derived", flag+id.String())
	}
	if _, err := c.r.ReadRef("derived"); err == nil {
		t.Error("a refused commit set its branch")
	}
	if err := c.r.UnmarkCommitPartial(id); err != nil {
		t.Fatal(err)
	}
	c.ok("commit", "-b", "derived", "--tree=ref="+id.String())
}

// --tree=tar=- reads the tar from standard input; one cut short is refused
// naming it, and its branch is not created.
func TestCommitTarFromStdin(t *testing.T) {
	c := newCLI(t)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("a\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	withStdin := func(in []byte, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"--repo=" + c.path}, args...), bytes.NewReader(in), &out, &errb)
		return code, errb.String()
	}
	if code, stderr := withStdin(tb.Bytes(), "commit", "-b", "main", "--tree=tar=-"); code != 0 {
		t.Fatalf("commit of a tar on standard input: exit %d: %s", code, stderr)
	}
	if got := c.ok("ls", "main", "/a"); !strings.HasSuffix(got, " 2 /a\n") {
		t.Errorf("ls /a: %q", got)
	}
	if code, stderr := withStdin(tb.Bytes()[:600], "commit", "-b", "cut", "--tree=tar=-"); code != exitError || !strings.Contains(stderr, "tar -: truncated") {
		t.Errorf("a tar cut short on standard input: exit %d, %q", code, stderr)
	}
	if _, err := c.r.ReadRef("cut"); err == nil {
		t.Error("a tar cut short created its branch")
	}
}

// A metadata key that is not UTF-8 is refused, as OSTree refuses it: the
// metadata object of --json output could not carry its bytes.
func TestMetadataKeyNotUTF8Refused(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"f": testtree.File("x", 0o644)})
	for _, flag := range []string{"--add-metadata-string", "--add-metadata", "--add-detached-metadata-string"} {
		c.fails(exitUsage, []string{flag, `k\xff=`, "not UTF-8"}, "commit", "-b", "x", flag+"=k\xff='v'", src)
	}
	c.ok("commit", "-b", "x", "--add-metadata-string=k\u00e9=v\xff", src)
	c.fails(exitUsage, []string{`k\xff=`, "not UTF-8"}, "summary", "-u", "-m", "k\xff='v'")
}

// A large file copied into a bare repository has its stretches of data
// listed once (lseek SEEK_HOLE from its start), for both the free-space
// budget and the copy, which listed them again where the filesystem
// cannot reflink; the copies read back whole.
func TestCommitListsExtentsOnce(t *testing.T) {
	testbin.NeedStrace(t)
	c := newCLIMode(t, repo.ModeBareUser)
	src := t.TempDir()
	dense := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: over the size commit reads whole
	if err := os.WriteFile(filepath.Join(src, "dense"), dense, 0o644); err != nil {
		t.Fatal(err)
	}
	// Starting with a hole: the one SEEK_HOLE from offset 0 is the listing's first.
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(dense[:1<<20], 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tr, err := straced(t, "-e trace=lseek", "--repo="+c.path, "commit", "-b", "b", src)
	if err != nil {
		t.Fatalf("commit: %v\n%s", err, tr.out)
	}
	for _, name := range []string{"dense", "sparse"} {
		// No closing parenthesis: strace -f may split the line (<unfinished ...>).
		if n := strings.Count(tr.log, "<"+filepath.Join(src, name)+">, 0, SEEK_HOLE"); n != 1 {
			t.Errorf("%s: its stretches were listed %d times, want once:\n%s", name, n, tr.log)
		}
	}
	out := t.TempDir() + "/out"
	c.ok("checkout", "b", out)
	for _, name := range []string{"dense", "sparse"} {
		want, _ := os.ReadFile(filepath.Join(src, name))
		if got, err := os.ReadFile(filepath.Join(out, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s checked out differs (%v)", name, err)
		}
	}
}

// On a terminal narrower than the progress line, the line is cut to fit,
// so that no redraw wraps and leaves rows behind; a dumb terminal gets no
// escape codes, only the summary.
func TestCommitProgressNarrowAndDumbTerminal(t *testing.T) {
	c := newCLI(t)
	src := source(t, testtree.Tree{"a": testtree.File("aaa", 0o644), "b/c": testtree.File("c", 0o644)})
	m, s := openPTY(t)
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 20}); err != nil {
		t.Skip("set the terminal's size:", err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--repo=" + c.path, "commit", "-b", "x", src}, strings.NewReader(""), &out, s); code != 0 {
		t.Fatalf("exit %d", code)
	}
	s.Close()
	screen := readScreen(m, "deduplicated")
	if !strings.Contains(screen, "\r\033[KScanning: 2 files") {
		t.Fatalf("no progress drawn on the terminal: %q", screen)
	}
	for _, l := range strings.Split(strings.SplitN(screen, "Files scanned", 2)[0], "\r\033[K") {
		if len(strings.TrimRight(l, "\r\n")) > 19 {
			t.Errorf("progress line %q is wider than the 20-column terminal less one", l)
		}
	}

	t.Setenv("TERM", "dumb")
	m, s = openPTY(t)
	if code := run(context.Background(), []string{"--repo=" + c.path, "commit", "-b", "y", src}, strings.NewReader(""), &out, s); code != 0 {
		t.Fatalf("exit %d", code)
	}
	s.Close()
	screen = readScreen(m, "deduplicated")
	if strings.Contains(screen, "\033") || !strings.Contains(screen, "Files scanned: 2") {
		t.Errorf("TERM=dumb: terminal output %q; want the summary and no escape codes", screen)
	}
}
