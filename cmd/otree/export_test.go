package main

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/internal/xattr"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

var exportFixture = testtree.Tree{
	"bin/su":          {Mode: os.ModeSetuid | 0o755, Content: "su"},
	"bin/sh":          testtree.Symlink("busybox"),
	"etc/shadow":      testtree.File("root:*:\n", 0o600),
	"etc/empty":       testtree.File("", 0o644),
	"etc/tagged":      {Mode: 0o644, Content: "t", Xattrs: map[string]string{"user.tag": "v"}},
	"names/a b":       testtree.File("s", 0o644),
	"names/ünï\ncode": testtree.File("u", 0o644),
	"run/fifo":        {Mode: os.ModeNamedPipe | 0o600},
	"usr/big":         testtree.File(strings.Repeat("0123456789abcdef", 70000), 0o644),
	"var/a/b/c/d/e/f": testtree.File("deep", 0o644),
}

func exportRoots(t *testing.T, r *repo.Repo, id repo.ID) (repo.ID, repo.ID) {
	t.Helper()
	c, err := r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	return c.RootTree, c.RootMeta
}

// export, then commit --tree=tar= with the same owner flags: the same tree.
func TestExportCommand(t *testing.T) {
	c := newCLI(t)
	id := c.commitTree("os/stable", source(t, exportFixture), "one", 1700000000)
	out := filepath.Join(t.TempDir(), "os.tar")
	if got := c.ok("export", "os/stable", "-o", out); got != "" {
		t.Errorf("export -o printed %q", got)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if stdout := c.ok("export", id.String()); stdout != string(data) {
		t.Error("export to standard output differs from export -o")
	}
	back, err := repo.ParseID(strings.TrimSpace(c.ok("commit", "-b", "imported", "--owner-uid=0", "--owner-gid=0", "--timestamp=@1700000000", "-s", "one", "--tree=tar="+out)))
	if err != nil {
		t.Fatal(err)
	}
	t1, m1 := exportRoots(t, c.r, id)
	t2, m2 := exportRoots(t, c.r, back)
	if t1 != t2 || m1 != m2 {
		t.Errorf("export and import changed the tree: %s %s -> %s %s\n%s", t1, m1, t2, m2, c.ok("diff", id.String(), back.String()))
	}
	if got := c.ok("diff", "os/stable", "imported"); got != "" {
		t.Errorf("diff of the round trip: %q", got)
	}

	sub := c.ok("export", "--subpath=/var/a", "os/stable")
	tr := tar.NewReader(strings.NewReader(sub))
	var names []string
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
	}
	if strings.Join(names, " ") != "./ b/ b/c/ b/c/d/ b/c/d/e/ b/c/d/e/f" {
		t.Errorf("--subpath entries: %q", names)
	}
	hl := c.ok("export", "--hardlinks", "os/stable")
	if len(hl) != len(data) { // no object repeats in this fixture
		t.Errorf("--hardlinks changed a tree without repeats: %d vs %d bytes", len(hl), len(data))
	}

	c.fails(exitError, []string{"/no/such"}, "export", "--subpath=/no/such", "os/stable")
	c.fails(exitError, []string{"nope"}, "export", "nope")
	c.fails(exitUsage, nil, "export")
}

// export -o makes FILE durable as the repository's writes are: the
// temporary file is synced, renamed over FILE, and FILE's directory
// synced after the rename, so that a crash after success keeps the tar.
func TestExportCommandSyncsFileAndDirectory(t *testing.T) {
	testbin.NeedStrace(t)
	c := newCLI(t)
	c.commitTree("os/stable", source(t, exportFixture), "one", 1700000000)
	dir := t.TempDir()
	out := filepath.Join(dir, "os.tar")
	tr, err := straced(t, "-e trace=fsync,rename,renameat,renameat2", "--repo="+c.path, "export", "os/stable", "-o", out)
	if err != nil {
		t.Fatalf("export: %v\n%s", err, tr.out)
	}
	rename := slices.IndexFunc(tr.lines, func(l string) bool {
		return strings.Contains(l, "rename") && strings.Contains(l, `"`+out+`"`) && strings.HasSuffix(l, "= 0")
	})
	if rename < 0 {
		t.Fatalf("no rename onto %s in:\n%s", out, tr.log)
	}
	// The tar is written unnamed: strace shows it as dir/#INODE (deleted).
	if !slices.ContainsFunc(tr.lines[:rename], func(l string) bool {
		return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+dir+"/")
	}) {
		t.Errorf("the tar is not synced before its rename (line %d):\n%s", rename, tr.log)
	}
	if !slices.ContainsFunc(tr.lines[rename+1:], func(l string) bool {
		return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+dir+">") && strings.HasSuffix(l, "= 0")
	}) {
		t.Errorf("%s is not synced after the rename onto %s (line %d):\n%s", dir, out, rename, tr.log)
	}
}

// export -o killed while it writes the tar leaves nothing in FILE's
// directory, however often it is killed, and an existing FILE as it was.
func TestExportCommandKilledLeavesNothing(t *testing.T) {
	exe, env := otreeBinary(t)
	c := newCLI(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	c.commitTree("b", source(t, randomTree(rng, 200, 64<<10, 8)), "one", 1700000000)
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar")
	export := func() *exec.Cmd {
		cmd := exec.Command(exe, "--repo="+c.path, "export", "b", "-o", out)
		cmd.Env = env
		return cmd
	}
	durs := timeRuns(t, "export", export)
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	killed := 0
	for range 6 {
		// Within the fastest run, past its start: the tar is being written.
		if killAfter(t, export(), durs[0]/4+time.Duration(rng.Int64N(int64(durs[0]/2)+1))) {
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no export was killed (each takes about %v)", durs[1])
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "b.tar" {
		t.Errorf("after %d killed exports, %s holds %v; want b.tar alone", killed, dir, ents)
	}
	if got, _ := os.ReadFile(out); string(got) != "old" && killed == 6 {
		t.Errorf("killed exports replaced %s: %d bytes", out, len(got))
	}
}

// A failed export -o leaves neither FILE nor a temporary file.
func TestExportCommandFailureLeavesNoFile(t *testing.T) {
	c := newCLI(t)
	id := c.commitTree("b", source(t, testtree.Tree{"a": testtree.File("will be damaged", 0o644)}), "one", 1700000000)
	e := mustLookup(t, c.r, id, "/a")
	p := c.r.ObjectPath(repo.KindFile, e.ID)
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1
	os.Chmod(p, 0o644)
	os.WriteFile(p, b, 0o644)

	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar")
	c.fails(exitError, []string{"/a", e.ID.String(), "corrupt"}, "export", "b", "-o", out)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed export left %v", ents)
	}
	// An existing FILE is left as it was.
	os.WriteFile(out, []byte("old"), 0o644)
	c.fails(exitError, []string{"corrupt"}, "export", "b", "-o", out)
	if got, _ := os.ReadFile(out); string(got) != "old" {
		t.Errorf("failed export replaced FILE: %q", got)
	}
}

// export -o follows a symbolic link to the file it names, dangling or
// not, and writes into a FIFO or device instead of replacing it.
func TestExportCommandOutputKinds(t *testing.T) {
	c := newCLI(t)
	c.commitTree("b", source(t, testtree.Tree{"a": testtree.File("content", 0o644)}), "one", 1700000000)
	want := c.ok("export", "b")
	dir := t.TempDir()

	target := filepath.Join(dir, "target.tar")
	os.WriteFile(target, []byte("old"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink("target.tar", link)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("sub/new.tar", dangling)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	for _, l := range []string{link, dangling} {
		c.ok("export", "b", "-o", l)
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s was replaced: %v %v", l, fi.Mode(), err)
		}
	}
	for _, p := range []string{target, filepath.Join(dir, "sub/new.tar")} {
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("%s holds %d bytes, want the tar (%d)", p, len(got), len(want))
		}
	}

	// A relative link in a directory reached through a link: its target
	// is found from where the directory really is.
	os.MkdirAll(filepath.Join(dir, "real/sub"), 0o755)
	os.Symlink("real/sub", filepath.Join(dir, "dl"))
	os.Symlink("../x.tar", filepath.Join(dir, "real/sub/out.tar"))
	c.ok("export", "b", "-o", filepath.Join(dir, "dl/out.tar"))
	if got, _ := os.ReadFile(filepath.Join(dir, "real/x.tar")); string(got) != want {
		t.Errorf("real/x.tar holds %d bytes, want the tar (%d)", len(got), len(want))
	}
	if _, err := os.Lstat(filepath.Join(dir, "x.tar")); err == nil {
		t.Error("the tar was written beside dl, where the textual path leads")
	}

	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- b
	}()
	c.ok("export", "b", "-o", fifo)
	select {
	case b := <-got:
		if string(b) != want {
			t.Errorf("the FIFO's reader got %d bytes, want %d", len(b), len(want))
		}
	case <-time.After(5 * time.Second):
		t.Error("nothing was written into the FIFO")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi.Mode(), err)
	}
	if os.Geteuid() != 0 {
		return // mknod needs root
	}
	null := filepath.Join(dir, "null") // a /dev/null of the test's own
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	c.ok("export", "b", "-o", null)
	if fi, err := os.Lstat(null); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("the device was replaced: %v %v", fi.Mode(), err)
	}
}

// hostileTar builds a tar from headers; a body longer than zero is
// written after its header; truncate cuts the stream after the last body
// (no end-of-archive blocks, the body possibly shorter than its header says).
func hostileTar(t *testing.T, hdrs []*tar.Header, bodies map[string]string, truncate bool) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(bodies[h.Name]))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if b := bodies[h.Name]; b != "" {
			tw.Write([]byte(b))
		}
	}
	if !truncate {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "hostile.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Hostile tars given to `otree commit --tree=tar=` are refused with an
// error naming the entry, and no ref moves.
func TestCommitHostileTar(t *testing.T) {
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg} }
	cases := []struct {
		name     string
		hdrs     []*tar.Header
		bodies   map[string]string
		truncate bool
		want     []string // in the error
	}{
		{name: "parent", hdrs: []*tar.Header{reg("../x")}, want: []string{`"../x"`}},
		{name: "parent inside", hdrs: []*tar.Header{reg("a/../../x")}, want: []string{`"a/../../x"`}},
		{name: "dotdot component", hdrs: []*tar.Header{reg("a/b/../c")}, want: []string{`"a/b/../c"`}},
		{name: "dotdot below an absolute name", hdrs: []*tar.Header{reg("/etc/../../x")}, want: []string{`"/etc/../../x"`, "leaves the tree"}},
		{name: "through a symlink", hdrs: []*tar.Header{
			{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, reg("a/passwd"),
		}, want: []string{`"a/passwd"`, "not a directory"}},
		{name: "through a relative symlink", hdrs: []*tar.Header{
			{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "d/up", Typeflag: tar.TypeSymlink, Linkname: "../.."}, reg("d/up/etc/passwd"),
		}, want: []string{`"d/up/etc/passwd"`, "not a directory"}},
		{name: "directory replaced by a symlink", hdrs: []*tar.Header{
			{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, reg("a/passwd"),
		}, want: []string{`"a"`, "cannot replace a directory"}},
		{name: "through a file", hdrs: []*tar.Header{reg("f"), reg("f/x")}, want: []string{`"f/x"`, "not a directory"}},
		{name: "hardlink outside", hdrs: []*tar.Header{
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"},
		}, want: []string{`"h"`, "../../etc/passwd"}},
		{name: "hardlink absolute outside", hdrs: []*tar.Header{
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/../../passwd"},
		}, want: []string{`"h"`, "/etc/../../passwd", "leaves the tree"}},
		{name: "hardlink absolute to nothing", hdrs: []*tar.Header{
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"},
		}, want: []string{`"h"`, "etc/passwd", "does not have"}},
		{name: "hardlink to nothing", hdrs: []*tar.Header{
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "never"}, reg("later"),
		}, want: []string{`"h"`, "never"}},
		{name: "hardlink to a directory", hdrs: []*tar.Header{
			{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "d"},
		}, want: []string{`"h"`, "directory"}},
		{name: "huge size, truncated data", hdrs: []*tar.Header{
			reg("ok"), {Name: "big", Typeflag: tar.TypeReg, Size: 1 << 40},
		}, bodies: map[string]string{"ok": "fine", "big": strings.Repeat("x", 1000)}, truncate: true,
			want: []string{`"big"`}},
		{name: "small size, truncated data", hdrs: []*tar.Header{
			{Name: "small", Typeflag: tar.TypeReg, Size: 5000},
		}, bodies: map[string]string{"small": "only this"}, truncate: true, want: []string{`"small"`}},
		{name: "root as a file", hdrs: []*tar.Header{reg(".")}, want: []string{`"."`}},
	}
	c := newCLI(t)
	before := c.commitTree("main", source(t, testtree.Tree{"keep": testtree.File("k", 0o644)}), "before", 1700000000)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &cli{t: t, path: c.path, r: c.r}
			p := hostileTar(t, tc.hdrs, tc.bodies, tc.truncate)
			res := c.run("commit", "-b", "main", "--tree=tar="+p)
			t.Logf("exit %d: %s", res.code, strings.TrimSpace(res.stderr))
			if res.code == exitOK {
				t.Errorf("hostile tar accepted: committed %s", strings.TrimSpace(res.stdout))
			} else {
				for _, w := range tc.want {
					if !strings.Contains(res.stderr, w) {
						t.Errorf("error %q does not mention %s", res.stderr, w)
					}
				}
				if !strings.Contains(res.stderr, p) {
					t.Errorf("error %q does not name the tar %s", res.stderr, p)
				}
			}
			if head, err := c.r.ReadRef("main"); err != nil || head != before {
				t.Errorf("main moved to %s (%v), want %s", head, err, before)
			}
			if refs, _ := c.r.ListRefs(""); len(refs) != 1 {
				t.Errorf("refs after a refused tar: %v", refs)
			}
		})
	}
}

// export --prefix (ending in "/", the form OSTree pastes correctly) gives
// the entries OSTree's gives: the same names, types, modes, owners, sizes
// and link targets. Order and times are not compared (OSTree writes the
// commit's time; otree 0). --no-xattrs leaves out the xattrs otree writes
// otherwise.
func TestExportPrefixParityWithOSTree(t *testing.T) {
	o := needOSTree(t, "archive")
	c := newCLI(t)
	tree := maps.Clone(exportFixture)
	delete(tree, "run/fifo") // OSTree stores FIFOs only in bare mode
	src := source(t, tree)
	c.ok("commit", "-b", "main", "--owner-uid=0", "--owner-gid=0", src)
	o.ok("commit", "-b", "main", "--owner-uid=0", "--owner-gid=0", src)
	type entry struct {
		Type     byte
		Mode     int64
		UID, GID int
		Size     int64
		Link     string
		Xattrs   map[string]string
	}
	read := func(data []byte) map[string]entry {
		t.Helper()
		m := map[string]entry{}
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return m
			}
			if err != nil {
				t.Fatal(err)
			}
			x := map[string]string{}
			for k, v := range h.PAXRecords {
				if strings.HasPrefix(k, "SCHILY.xattr.") {
					x[k] = v
				}
			}
			m[h.Name] = entry{h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname, x}
		}
	}
	for _, args := range [][]string{
		{"--prefix=usr/lib/app/"},
		{"--prefix=usr/lib/app/", "--subpath=/var/a"},
		{"--prefix=p/", "--no-xattrs"},
		{"--no-xattrs"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			mine, theirs := filepath.Join(dir, "otree.tar"), filepath.Join(dir, "ostree.tar")
			c.ok(append([]string{"export", "main", "-o", mine}, args...)...)
			o.ok(append([]string{"export", "main", "--output=" + theirs}, args...)...)
			a, _ := os.ReadFile(mine)
			b, _ := os.ReadFile(theirs)
			got, want := read(a), read(b)
			// OSTree 2022.7 writes no xattrs at all, so those are checked
			// on otree's side only.
			noX := slices.Contains(args, "--no-xattrs")
			for n, e := range got {
				tagged := strings.HasSuffix(n, "etc/tagged")
				if has := len(e.Xattrs) > 0; has != (tagged && !noX) {
					t.Errorf("%s: xattrs %v (--no-xattrs %v)", n, e.Xattrs, noX)
				}
				e.Xattrs = nil
				got[n] = e
			}
			for n, e := range want {
				e.Xattrs = nil
				want[n] = e
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("export %v differs from OSTree's (-ostree +otree):\n%s", args, d)
			}
		})
	}
	c.fails(exitError, []string{`"../x"`}, "export", "--prefix=../x", "main", "-o", filepath.Join(t.TempDir(), "x.tar"))

	// A file --subpath goes under the prefix too (OSTree 2022.7 aborts on
	// a file subpath); a prefix without its trailing "/" is a directory
	// all the same.
	tr := tar.NewReader(strings.NewReader(c.ok("export", "--prefix=/opt//app", "--subpath=/etc/tagged", "main")))
	var names []string
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
	}
	if d := cmp.Diff([]string{"opt/app/tagged"}, names); d != "" {
		t.Errorf("export --prefix of a file (-want +got):\n%s", d)
	}
}

// export -o over a regular file gives the tar that file's mode and owner,
// as OSTree's export, which writes into it, does: a FILE made 0600 to keep
// the tree's private files private is not left readable by everyone.
func TestExportCommandKeepsReplacedFilesMode(t *testing.T) {
	c := newCLI(t)
	c.commitTree("b", source(t, testtree.Tree{"key": testtree.File("secret", 0o600)}), "one", 1700000000)
	out := filepath.Join(t.TempDir(), "out.tar")
	if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o600); err != nil {
		t.Fatal(err)
	}
	owner := os.Geteuid()
	if owner == 0 {
		owner = nobody
		if err := os.Chown(out, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	c.ok("export", "b", "-o", out)
	st := lstat(t, out)
	if st.Mode&0o7777 != 0o600 || int(st.Uid) != owner {
		t.Errorf("%s after export -o: mode %04o, owner %d; want 0600, %d as it was", out, st.Mode&0o7777, st.Uid, owner)
	}
	if st.Size < 1024 {
		t.Errorf("%s holds %d bytes, not the tar", out, st.Size)
	}
}

// export -o over a file with an access ACL keeps the ACL, as OSTree's
// export, which writes into the file, does: the group bits of its mode
// are the ACL's mask, and without the ACL they would let the owning
// group, which the ACL denies, read the tar.
func TestExportCommandKeepsReplacedFilesACL(t *testing.T) {
	c := newCLI(t)
	c.commitTree("b", source(t, testtree.Tree{"key": testtree.File("secret", 0o600)}), "one", 1700000000)
	out := filepath.Join(t.TempDir(), "out.tar")
	if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// user::rw- user:nobody:r-- group::--- mask::r-- other::---
	acl := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range [][3]uint32{{0x01, 6, ^uint32(0)}, {0x02, 4, nobody}, {0x04, 0, ^uint32(0)}, {0x10, 4, ^uint32(0)}, {0x20, 0, ^uint32(0)}} {
		acl = binary.LittleEndian.AppendUint16(acl, uint16(e[0]))
		acl = binary.LittleEndian.AppendUint16(acl, uint16(e[1]))
		acl = binary.LittleEndian.AppendUint32(acl, e[2])
	}
	if err := unix.Setxattr(out, "system.posix_acl_access", acl, 0); err != nil {
		t.Skipf("setting an ACL on %s: %v", out, err)
	}
	c.ok("export", "b", "-o", out)
	got, err := xattr.Get(out, "system.posix_acl_access")
	if !bytes.Equal(got, acl) {
		t.Errorf("%s after export -o: ACL %x (%v), want %x as it was", out, got, err, acl)
	}
	if st := lstat(t, out); st.Mode&0o777 != 0o640 || st.Size < 1024 {
		t.Errorf("%s after export -o: mode %04o, %d bytes; want 0640 (the mask r--) and the tar", out, st.Mode&0o777, st.Size)
	}
}

// export -o FIFO waits for the FIFO's reader, as OSTree's does, but a
// SIGINT ends that wait: exit 130, saying nothing was written, where the
// open of the FIFO held otree until a second signal killed it.
func TestExportToFIFOInterruptedWaitingForReader(t *testing.T) {
	exe, env := otreeBinary(t)
	c := newCLI(t)
	c.commitTree("b", source(t, testtree.Tree{"a": testtree.File("a", 0o644)}), "one", 1700000000)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "--repo="+c.path, "export", "b", "-o", fifo)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	time.Sleep(300 * time.Millisecond) // waiting for a reader by now
	err := signalAndWait(t, cmd, exited, syscall.SIGINT, 10*time.Second, "export -o FIFO went on waiting for a reader")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "interrupted by SIGINT: export stopped: it wrote nothing to "+fifo) {
		t.Errorf("export -o FIFO after SIGINT: %v, stderr %q; want exit 130 saying it wrote nothing", err, stderr.String())
	}
}
