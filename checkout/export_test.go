package checkout_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// exExport exports commit with opts and returns the tar.
func exExport(t *testing.T, r *repo.Repo, id repo.ID, opts checkout.ExportOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := checkout.Export(t.Context(), r, id, &buf, opts); err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes()
}

// exImport commits a tar into r as an orphan commit.
func exImport(t *testing.T, r *repo.Repo, data []byte, mod ...func(*commit.Options)) repo.ID {
	t.Helper()
	p := filepath.Join(t.TempDir(), "export.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	o := commit.Options{Orphan: true, NoSync: true, NoStatCache: true, Subject: "imported",
		Sources: []commit.Source{{Kind: commit.SourceTar, Path: p}}}
	for _, m := range mod {
		m(&o)
	}
	res, err := commit.Commit(t.Context(), r, o)
	if err != nil {
		t.Fatalf("importing the export: %v", err)
	}
	return res.Commit
}

// exSameTree fails unless commits a and b hold the same tree.
func exSameTree(t *testing.T, r *repo.Repo, a, b repo.ID) {
	t.Helper()
	ca, err := r.ReadCommit(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := r.ReadCommit(b)
	if err != nil {
		t.Fatal(err)
	}
	if ca.RootTree != cb.RootTree || ca.RootMeta != cb.RootMeta {
		changes, err := checkout.Diff(t.Context(), r, a, b, checkout.DiffOptions{Verify: true})
		t.Fatalf("round trip changed the tree: tree %s -> %s, meta %s -> %s; diff (err %v):\n%v",
			ca.RootTree.Short(), cb.RootTree.Short(), ca.RootMeta.Short(), cb.RootMeta.Short(), err, dtLines(changes))
	}
}

// exHeaders reads every header of a tar.
func exHeaders(t *testing.T, data []byte) []*tar.Header {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var hs []*tar.Header
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hs
		}
		if err != nil {
			t.Fatalf("reading the export: %v", err)
		}
		hs = append(hs, h)
	}
}

var exBig = strings.Repeat("big file content, more than a MiB of it\n", 30000)

// exDiskFixture is a tree with every kind of entry a directory can hold
// unprivileged, plus devices and other owners when root.
func exDiskFixture() testtree.Tree {
	tree := testtree.Tree{
		"bin/su":            {Mode: os.ModeSetuid | 0o755, Content: "#!su\n"},
		"bin/sgid":          {Mode: os.ModeSetgid | 0o2711, Content: "sg"},
		"bin/sh -> busybox": testtree.Symlink("busybox"),
		"bin/abs":           testtree.Symlink("/usr/bin/env"),
		"bin/dangling":      testtree.Symlink("../nowhere/at all"),
		"etc/shadow":        testtree.File("root:*:\n", 0o600),
		"etc/empty1":        testtree.File("", 0o644),
		"etc/empty2":        testtree.File("", 0o644),
		"etc/same-a":        testtree.File("same\n", 0o644),
		"etc/same-b":        testtree.File("same\n", 0o644),
		"etc/tagged":        {Mode: 0o644, Content: "t", Xattrs: map[string]string{"user.tag": "v", "user.bin": "\x00\xff\x01", "user.k=v": "eq", "user.50%": "pc", "user.%3D": "lit"}},
		"tmp":               {Mode: os.ModeDir | os.ModeSticky | 0o777},
		"var/lib/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/" + strings.Repeat("long", 30): testtree.File("deep", 0o644),
		"names/with space":     testtree.File("s", 0o644),
		"names/ünïcödé ☃":      testtree.File("u", 0o644),
		"names/new\nline":      testtree.File("n", 0o644),
		"names/bad\xff\xfeutf": testtree.File("b", 0o644),
		"names/-dash":          testtree.File("d", 0o644),
		"names/.hidden":        testtree.File("h", 0o644),
		"names/x=y":            testtree.File("e", 0o644),
		"private":              {Mode: os.ModeDir | 0o700, Xattrs: map[string]string{"user.dir": "yes"}},
		"private/key":          testtree.File("k", 0o400),
		"usr/big":              testtree.File(exBig, 0o644),
		"usr/share/emptydir":   testtree.Dir(0o755),
		"run/fifo":             {Mode: os.ModeNamedPipe | 0o600},
	}
	if os.Getuid() == 0 {
		tree["home/user/file"] = testtree.Entry{Mode: 0o640, Content: "mine", UID: 1000, GID: 100}
		tree["home/user"] = testtree.Entry{Mode: os.ModeDir | 0o750, UID: 1000, GID: 100}
		tree["home/big-id"] = testtree.Entry{Mode: 0o644, Content: "far", UID: 3000000, GID: 4000000000}
	}
	return tree
}

// exFixtureCommit commits the disk fixture (and, when root, devices) into
// an archive repository.
func exFixtureCommit(t *testing.T, r *repo.Repo) repo.ID {
	t.Helper()
	dir := dtMakeDir(t, exDiskFixture())
	if os.Getuid() == 0 {
		os.Mkdir(filepath.Join(dir, "dev"), 0o755)
		for _, d := range []struct {
			name         string
			typ          uint32
			major, minor uint32
		}{{"null", unix.S_IFCHR, 1, 3}, {"sda", unix.S_IFBLK, 8, 0}, {"big", unix.S_IFCHR, 4000, 1 << 19}} {
			if err := unix.Mknod(filepath.Join(dir, "dev", d.name), d.typ|0o660, int(unix.Mkdev(d.major, d.minor))); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dtCommitDir(t, r, dir)
}

// The tar of a commit imports back to the same tree, and its shape is
// OSTree's: "./" first, relative names, directories with "/", mtime 0.
func TestExportRoundTrip(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	id := exFixtureCommit(t, r)
	data := exExport(t, r, id, checkout.ExportOptions{})
	exSameTree(t, r, id, exImport(t, r, data))

	if again := exExport(t, r, id, checkout.ExportOptions{}); !bytes.Equal(data, again) {
		t.Error("two exports of one commit differ")
	}
	hs := exHeaders(t, data)
	if hs[0].Name != "./" || hs[0].Typeflag != tar.TypeDir {
		t.Errorf("first entry %q (type %c), want the root ./", hs[0].Name, hs[0].Typeflag)
	}
	seen := map[string]*tar.Header{}
	for i, h := range hs {
		seen[h.Name] = h
		if h.ModTime.Unix() != 0 {
			t.Errorf("%q: mtime %v, want 0", h.Name, h.ModTime)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%q: owner names %q:%q, want numeric owners only", h.Name, h.Uname, h.Gname)
		}
		if h.Typeflag == tar.TypeLink {
			t.Errorf("%q: a hard link without Hardlinks", h.Name)
		}
		if i > 0 && (strings.HasPrefix(h.Name, "./") || strings.HasPrefix(h.Name, "/")) {
			t.Errorf("entry name %q is not relative", h.Name)
		}
		if (h.Typeflag == tar.TypeDir) != strings.HasSuffix(h.Name, "/") {
			t.Errorf("entry %q of type %c", h.Name, h.Typeflag)
		}
	}
	for _, want := range []string{"bin/", "bin/su", "names/new\nline", "names/bad\xff\xfeutf", "usr/big", "run/fifo", "tmp/", "usr/share/emptydir/"} {
		if seen[want] == nil {
			t.Errorf("no entry %q in the export", want)
		}
	}
	if h := seen["bin/su"]; h != nil && h.Mode != 0o4755 {
		t.Errorf("bin/su mode %o", h.Mode)
	}
	if h := seen["tmp/"]; h != nil && h.Mode != 0o1777 {
		t.Errorf("tmp/ mode %o", h.Mode)
	}
	// Names with "=" or "%" are encoded as GNU tar encodes them.
	if h := seen["etc/tagged"]; h != nil && (h.PAXRecords["SCHILY.xattr.user.tag"] != "v" || h.PAXRecords["SCHILY.xattr.user.bin"] != "\x00\xff\x01" ||
		h.PAXRecords["SCHILY.xattr.user.k%3Dv"] != "eq" || h.PAXRecords["SCHILY.xattr.user.50%25"] != "pc" || h.PAXRecords["SCHILY.xattr.user.%253D"] != "lit") {
		t.Errorf("etc/tagged PAX records %q", h.PAXRecords)
	}
	if h := seen["run/fifo"]; h != nil && h.Typeflag != tar.TypeFifo {
		t.Errorf("run/fifo type %c", h.Typeflag)
	}
	if h := seen["usr/big"]; h != nil && h.Size != int64(len(exBig)) {
		t.Errorf("usr/big size %d", h.Size)
	}
	if os.Getuid() == 0 {
		if h := seen["dev/sda"]; h == nil || h.Typeflag != tar.TypeBlock || h.Devmajor != 8 || h.Devminor != 0 {
			t.Errorf("dev/sda: %+v", h)
		}
		if h := seen["dev/big"]; h == nil || h.Typeflag != tar.TypeChar || h.Devmajor != 4000 || h.Devminor != 1<<19 {
			t.Errorf("dev/big: %+v", h)
		}
		if h := seen["home/big-id"]; h == nil || h.Uid != 3000000 || h.Gid != 4000000000 {
			t.Errorf("home/big-id: %+v", h)
		}
	}
	// Tree order: a directory's entries sorted, each directory followed by
	// its contents.
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
	}
	if i, j := exIndex(names, "bin/"), exIndex(names, "bin/abs"); i < 0 || j != i+1 {
		t.Errorf("bin/abs at %d, bin/ at %d", j, i)
	}
}

func exIndex(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

// A tree built object by object holds what a directory cannot without
// root: devices, FIFOs, any owner, binary xattrs on directories and
// symlinks, and a root with its own metadata.
func TestExportRoundTripObjects(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	x := []repo.Xattr{{Name: "security.selinux", Value: []byte("system_u:object_r:etc_t:s0\x00")}, {Name: "user.bin", Value: []byte{0, 1, 0xff}}}
	id := dtBuild(t, r, map[string]dtNode{
		"":          {Dir: true, Meta: repo.DirMeta{Mode: 0o700, UID: 5, GID: 6, Xattrs: x}},
		"dev/null":  {H: repo.FileHeader{Type: repo.TypeCharDevice, Mode: 0o666, Rdev: unix.Mkdev(1, 3)}},
		"dev/loop0": {H: repo.FileHeader{Type: repo.TypeBlockDevice, Mode: 0o660, GID: 6, Rdev: unix.Mkdev(7, 0)}},
		"dev/huge":  {H: repo.FileHeader{Type: repo.TypeCharDevice, Mode: 0o600, Rdev: unix.Mkdev(4095, 1<<20-1)}},
		"dev/fifo":  {H: repo.FileHeader{Type: repo.TypeFIFO, Mode: 0o620, UID: 7}},
		"dev":       {Dir: true, Meta: repo.DirMeta{Mode: 0o755, Xattrs: x}},
		"etc/link":  {H: repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "/etc/x", UID: 9, Xattrs: x}},
		"etc/file":  {H: repo.FileHeader{Type: repo.TypeRegular, Mode: 0o6755, UID: 0xfffffffe, GID: 0xfffffffe, Xattrs: x}, Content: "f"},
		"etc/empty": {H: repo.FileHeader{Type: repo.TypeRegular, Mode: 0}},
	})
	data := exExport(t, r, id, checkout.ExportOptions{})
	exSameTree(t, r, id, exImport(t, r, data))
}

// In a bare-user repository (no devices or FIFOs) the round trip holds too,
// setuid files included.
func TestExportRoundTripBareUser(t *testing.T) {
	r := dtRepo(t, repo.ModeBareUser)
	tree := exDiskFixture()
	delete(tree, "run/fifo")
	id := dtCommitDir(t, r, dtMakeDir(t, tree))
	exSameTree(t, r, id, exImport(t, r, exExport(t, r, id, checkout.ExportOptions{})))

	// A commit made with owner overrides imports back with the same ones.
	zero := uint32(0)
	id = dtCommitDir(t, r, dtMakeDir(t, tree), func(o *commit.Options) { o.OwnerUID, o.OwnerGID = &zero, &zero })
	exSameTree(t, r, id, exImport(t, r, exExport(t, r, id, checkout.ExportOptions{}), func(o *commit.Options) { o.OwnerUID, o.OwnerGID = &zero, &zero }))
}

// With Hardlinks, repeated objects become hard links to their first path,
// and the tar still imports to the same tree.
func TestExportHardlinks(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	id := exFixtureCommit(t, r)
	data := exExport(t, r, id, checkout.ExportOptions{Hardlinks: true})
	links := map[string]string{}
	for _, h := range exHeaders(t, data) {
		if h.Typeflag == tar.TypeLink {
			links[h.Name] = h.Linkname
		}
	}
	if links["etc/empty2"] != "etc/empty1" || links["etc/same-b"] != "etc/same-a" {
		t.Errorf("hard links %q", links)
	}
	exSameTree(t, r, id, exImport(t, r, data))
	if plain := exExport(t, r, id, checkout.ExportOptions{}); len(plain) <= len(data) {
		t.Errorf("hard links did not make the tar smaller: %d vs %d bytes", len(data), len(plain))
	}
}

func TestExportSubpath(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	id := exFixtureCommit(t, r)
	sub, err := r.Lookup(id, "/private")
	if err != nil {
		t.Fatal(err)
	}
	imported := exImport(t, r, exExport(t, r, id, checkout.ExportOptions{Subpath: "private/"}))
	c, err := r.ReadCommit(imported)
	if err != nil {
		t.Fatal(err)
	}
	if c.RootTree != sub.ID || c.RootMeta != sub.MetaID {
		t.Errorf("subpath export imports to tree %s meta %s, want %s %s", c.RootTree.Short(), c.RootMeta.Short(), sub.ID.Short(), sub.MetaID.Short())
	}

	hs := exHeaders(t, exExport(t, r, id, checkout.ExportOptions{Subpath: "/bin/su"}))
	if len(hs) != 1 || hs[0].Name != "su" || hs[0].Mode != 0o4755 {
		t.Errorf("exporting a file: %+v", hs)
	}

	var buf bytes.Buffer
	err = checkout.Export(t.Context(), r, id, &buf, checkout.ExportOptions{Subpath: "/no/such"})
	if !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), "/no/such") {
		t.Errorf("missing subpath: %v", err)
	}
}

// Content is verified as it is exported: a damaged object is an error
// naming the path and the object.
func TestExportCorrupt(t *testing.T) {
	r := dtRepo(t, repo.ModeArchive)
	id := dtBuild(t, r, map[string]dtNode{"a/ok": dtFile("fine", 0o644), "a/bad": dtFile("will be damaged", 0o644)})
	e, err := r.Lookup(id, "/a/bad")
	if err != nil {
		t.Fatal(err)
	}
	p := r.ObjectPath(repo.KindFile, e.ID)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = checkout.Export(t.Context(), r, id, io.Discard, checkout.ExportOptions{})
	var ce *repo.CorruptObjectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "/a/bad") || !strings.Contains(err.Error(), e.ID.String()) {
		t.Errorf("export of a corrupt object: %v", err)
	}
}

// GNU tar extracts the export to a directory that commits to the same tree.
func TestExportGNUTar(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("extracting owners and devices needs root")
	}
	gnutar, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar")
	}
	r := dtRepo(t, repo.ModeArchive)
	id := exFixtureCommit(t, r)
	p := filepath.Join(t.TempDir(), "x.tar")
	os.WriteFile(p, exExport(t, r, id, checkout.ExportOptions{}), 0o644)
	dir := filepath.Join(t.TempDir(), "out")
	os.Mkdir(dir, 0o755)
	out, err := exec.Command(gnutar, "--xattrs", "--xattrs-include=*", "--numeric-owner", "-p", "-xf", p, "-C", dir).CombinedOutput()
	if err != nil {
		t.Skipf("tar cannot extract here: %v: %s", err, out)
	}
	exSameTree(t, r, id, dtCommitDir(t, r, dir))
}

// stalledWriter is a pipe whose reader stopped reading: its first Write
// says so on writing and then waits for release.
type stalledWriter struct {
	writing, release chan struct{}
	once             sync.Once
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.writing) })
	<-w.release
	return 0, io.ErrClosedPipe
}

// A cancel ends an export whose writer waits (a pipe nobody reads any
// more): Export returns the context's error without waiting for the Write.
func TestCancelEndsExportToStalledWriter(t *testing.T) {
	r := dtRepo(t, repo.ModeBareUser)
	id := dtBuild(t, r, map[string]dtNode{"a/big": dtFile(strings.Repeat("x", 1<<20), 0o644)})
	w := &stalledWriter{writing: make(chan struct{}), release: make(chan struct{})}
	defer close(w.release)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- checkout.Export(ctx, r, id, w, checkout.ExportOptions{}) }()
	<-w.writing
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled export: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute): // a hang, not a slow machine
		t.Fatal("Export still waits on its writer a minute after the cancel")
	}
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if err := checkout.Export(ctx, r, id, io.Discard, checkout.ExportOptions{}); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), id.String()) {
		t.Errorf("export with a cancelled context: %v, want context.Canceled naming %s", err, id)
	}
}

// A POSIX ACL goes out in GNU tar's SCHILY.acl text record too, with
// numbers for users and groups: GNU tar and bsdtar, extracting with
// --acls, read only that record and ignore the xattr's. The export still
// imports to the same tree.
func TestExportACLText(t *testing.T) {
	acl := func(entries ...uint32) []byte {
		b := []byte{2, 0, 0, 0}
		for i := 0; i+2 < len(entries); i += 3 {
			b = binary.LittleEndian.AppendUint16(b, uint16(entries[i]))
			b = binary.LittleEndian.AppendUint16(b, uint16(entries[i+1]))
			b = binary.LittleEndian.AppendUint32(b, entries[i+2])
		}
		return b
	}
	const userObj, user, groupObj, group, mask, other, none = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0xffffffff
	access := acl(userObj, 6, none, user, 7, 1000, groupObj, 4, none, group, 6, 42, mask, 4, none, other, 4, none)
	def := acl(userObj, 7, none, user, 5, 1000, groupObj, 5, none, mask, 5, none, other, 5, none)
	r := dtRepo(t, repo.ModeArchive)
	id := dtBuild(t, r, map[string]dtNode{
		"d": {Dir: true, Meta: repo.DirMeta{Mode: 0o755, Xattrs: []repo.Xattr{{Name: "system.posix_acl_default", Value: def}}}},
		"d/f": {H: repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644,
			Xattrs: []repo.Xattr{{Name: "system.posix_acl_access", Value: access}}}, Content: "f"},
	})
	data := exExport(t, r, id, checkout.ExportOptions{})
	want := map[string][2]string{
		"d/":  {"SCHILY.acl.default", "user::rwx\nuser:1000:r-x\ngroup::r-x\nmask::r-x\nother::r-x\n"},
		"d/f": {"SCHILY.acl.access", "user::rw-\nuser:1000:rwx\ngroup::r--\ngroup:42:rw-\nmask::r--\nother::r--\n"},
	}
	for _, h := range exHeaders(t, data) {
		if w, ok := want[h.Name]; ok {
			if got := h.PAXRecords[w[0]]; got != w[1] {
				t.Errorf("%s: %s %q, want %q", h.Name, w[0], got, w[1])
			}
			delete(want, h.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("no entries %v in the export", want)
	}
	exSameTree(t, r, id, exImport(t, r, data))
	if len(exHeaders(t, exExport(t, r, id, checkout.ExportOptions{NoXattrs: true}))[1].PAXRecords) != 0 {
		t.Error("--no-xattrs exported an ACL")
	}
	gnutar, err := exec.LookPath("tar")
	if err != nil || os.Getuid() != 0 {
		return
	}
	p := filepath.Join(t.TempDir(), "x.tar")
	os.WriteFile(p, data, 0o644)
	dir := filepath.Join(t.TempDir(), "out")
	os.Mkdir(dir, 0o755)
	if out, err := exec.Command(gnutar, "--acls", "--numeric-owner", "-p", "-xf", p, "-C", dir).CombinedOutput(); err != nil {
		t.Skipf("tar cannot extract ACLs here: %v: %s", err, out)
	}
	for name, w := range map[string][]byte{"d/f": access, "d": def} {
		attr := "system.posix_acl_access"
		if name == "d" {
			attr = "system.posix_acl_default"
		}
		buf := make([]byte, 256)
		n, err := unix.Getxattr(filepath.Join(dir, name), attr, buf)
		if err != nil || !bytes.Equal(buf[:n], w) {
			t.Errorf("GNU tar --acls extracted %s with %s %x (%v), want %x", name, attr, buf[:max(n, 0)], err, w)
		}
	}
}

// A path of more than 1 MiB (a tree over 4000 directories of 250-byte
// names deep) needs a tar extended header archive/tar neither writes nor
// reads: export fails saying so, naming the first such path. (Names
// longer than a filesystem takes make the path here: exporting the
// directories above the leaf of a tree that deep writes gigabytes.)
func TestExportPathOverTarLimit(t *testing.T) {
	r := dtRepo(t, repo.ModeBareUser)
	deep := strings.Repeat(strings.Repeat("h", 250<<10)+"/", 5) + "f"
	id := dtBuild(t, r, map[string]dtNode{deep: dtFile("f", 0o644)})
	err := checkout.Export(t.Context(), r, id, io.Discard, checkout.ExportOptions{})
	if !errors.Is(err, tar.ErrFieldTooLong) || !strings.Contains(err.Error(), "over 1 MiB") || !strings.Contains(err.Error(), "/"+strings.TrimSuffix(deep, "/f")+" in commit") {
		t.Errorf("export of a %d-byte path: %.300v; want it refused for the 1 MiB limit, naming the path", len(deep), err)
	}
}
