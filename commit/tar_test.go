package commit_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

func writeTar(t *testing.T, hdrs []*tar.Header, bodies map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := bodies[h.Name]
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "in.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func commitTar(r *repo.Repo, branch, tarPath string) (*commit.Result, error) {
	return commit.Commit(ctx, r, commit.Options{Branch: branch,
		Sources: []commit.Source{{Kind: commit.SourceTar, Path: tarPath}}})
}

func TestTarImportKeepsMetadata(t *testing.T) {
	r := newRepo(t, repo.ModeArchive) // archive holds devices without root
	p := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 0, Gid: 42},
		{Name: "./etc/conf", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 7, Gid: 42,
			PAXRecords: map[string]string{"SCHILY.xattr.user.tag": "v", "SCHILY.xattr.security.x": "y"}},
		{Name: "bin/sh", Typeflag: tar.TypeReg, Mode: 0o4755},
		{Name: "bin/ash", Typeflag: tar.TypeLink, Linkname: "bin/sh"},
		{Name: "bin/link", Typeflag: tar.TypeSymlink, Linkname: "sh"},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "dev/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
	}, map[string]string{"./etc/conf": "conf\n", "bin/sh": "ELF"})
	res, err := commitTar(r, "main", p)
	if err != nil {
		t.Fatal(err)
	}
	got := readCommit(t, r, res.Commit, true)
	want := testtree.Tree{
		"etc":      {Mode: fs.ModeDir | 0o750, GID: 42},
		"etc/conf": {Mode: 0o640, Content: "conf\n", UID: 7, GID: 42, Xattrs: map[string]string{"user.tag": "v", "security.x": "y"}},
		"bin":      testtree.Dir(0o755),
		"bin/sh":   {Mode: fs.ModeSetuid | 0o755, Content: "ELF"},
		"bin/ash":  {Mode: fs.ModeSetuid | 0o755, Content: "ELF"},
		"bin/link": testtree.Symlink("sh"),
		"dev":      testtree.Dir(0o755),
		"dev/null": {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666},
		"dev/fifo": {Mode: fs.ModeNamedPipe | 0o600},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("tar import (-want +got):\n%s", d)
	}
	dt, _ := r.ReadDirTree(mustCommit(t, r, res.Commit).RootTree)
	bin, _ := dt.Dir("bin")
	bt, _ := r.ReadDirTree(bin.TreeID)
	sh, _ := bt.File("sh")
	ash, _ := bt.File("ash")
	if sh.ID != ash.ID {
		t.Error("a tar hardlink did not commit as the same object")
	}
}

// An xattr name holding "=" or "%" comes out of a GNU tar's SCHILY record
// decoded, as GNU tar extracts it; libarchive (bsdtar 3.3 on) writes each
// xattr twice, under the same URL-encoded name, which comes out decoded
// once (bsdtar 3.6.2 writes the records of "bsd" for "user.a=b%c é"), and
// before 3.3 it wrote the LIBARCHIVE record alone.
func TestTarXattrNamesEncoded(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	p := writeTar(t, []*tar.Header{
		{Name: "gnu", Typeflag: tar.TypeReg, Mode: 0o644,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k%3Dv": "eq", "SCHILY.xattr.user.50%25": "pc", "SCHILY.xattr.user.%253D": "lit", "SCHILY.xattr.user.%41": "other"}},
		{Name: "bsd", Typeflag: tar.TypeReg, Mode: 0o644,
			PAXRecords: map[string]string{
				"SCHILY.xattr.user.a%3Db%25c%20%C3%A9": "\x00\xff", "LIBARCHIVE.xattr.user.a%3Db%25c%20%C3%A9": "AP8=",
				"SCHILY.xattr.user.plain": "p", "LIBARCHIVE.xattr.user.plain": "cA==",
			}},
		{Name: "bsd-old", Typeflag: tar.TypeReg, Mode: 0o644,
			PAXRecords: map[string]string{"LIBARCHIVE.xattr.user.50%25": "cmF3"}},
	}, nil)
	res, err := commitTar(r, "main", p)
	if err != nil {
		t.Fatal(err)
	}
	got := readCommit(t, r, res.Commit, true)
	want := testtree.Tree{
		"gnu":     {Mode: 0o644, Xattrs: map[string]string{"user.k=v": "eq", "user.50%": "pc", "user.%3D": "lit", "user.%41": "other"}},
		"bsd":     {Mode: 0o644, Xattrs: map[string]string{"user.a=b%c é": "\x00\xff", "user.plain": "p"}},
		"bsd-old": {Mode: 0o644, Xattrs: map[string]string{"user.50%": "raw"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("tar import (-want +got):\n%s", d)
	}
}

func mustCommit(t testing.TB, r *repo.Repo, id repo.ID) *repo.Commit {
	t.Helper()
	c, err := r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A tree committed from disk and the same tree committed from a tar give
// the same commit id.
func TestTarAndDirGiveSameCommit(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"a/b": testtree.File("b", 0o640), "a/l": testtree.Symlink("b"), "c": testtree.File("", 0o755)})
	for _, p := range []string{"", "a"} {
		os.Chmod(filepath.Join(src, p), 0o755)
	}
	zero := uint32(0)
	p := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a/b", Typeflag: tar.TypeReg, Mode: 0o640},
		{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "b"},
		{Name: "c", Typeflag: tar.TypeReg, Mode: 0o755},
	}, map[string]string{"a/b": "b"})
	ts := mustCommit(t, r, commitDir(t, r, "dir", src, func(o *commit.Options) { o.OwnerUID, o.OwnerGID = &zero, &zero }).Commit)
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "tar", OwnerUID: &zero, OwnerGID: &zero,
		Sources: []commit.Source{{Kind: commit.SourceTar, Path: p}}})
	if err != nil {
		t.Fatal(err)
	}
	tc := mustCommit(t, r, res.Commit)
	if tc.RootTree != ts.RootTree || tc.RootMeta != ts.RootMeta {
		t.Fatalf("tar tree %s/%s differs from dir tree %s/%s", tc.RootTree, tc.RootMeta, ts.RootTree, ts.RootMeta)
	}
}

func TestHostileTarRefused(t *testing.T) {
	cases := []struct {
		name string
		hdrs []*tar.Header
		want string
	}{
		{"dotdot", []*tar.Header{{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}}, `"../evil"`},
		{"inner dotdot", []*tar.Header{{Name: "a/../../evil", Typeflag: tar.TypeReg, Mode: 0o644}}, "leaves the tree"},
		{"hardlink outside", []*tar.Header{{Name: "x", Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"}}, "hardlink target"},
		{"hardlink to unknown", []*tar.Header{{Name: "x", Typeflag: tar.TypeLink, Linkname: "later"}}, `"later", which the tar does not have`},
		{"hardlink cycle", []*tar.Header{
			{Name: "a", Typeflag: tar.TypeLink, Linkname: "./b"},
			{Name: "b", Typeflag: tar.TypeLink, Linkname: "a"},
		}, "links back"},
		{"hardlink to itself", []*tar.Header{{Name: "a", Typeflag: tar.TypeLink, Linkname: "./a"}}, "links back"},
		{"hardlink to a directory", []*tar.Header{
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "d"},
			{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
		}, `"d", which is a directory`},
		{"hardlink to the root", []*tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "."}}, "hardlink to the tree's root, which is a directory"},
		{"hardlink to the root, empty", []*tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: ""}}, "hardlink to the tree's root, which is a directory"},
		{"hardlink to the root, absolute", []*tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "/"}}, "hardlink to the tree's root, which is a directory"},
		// A target ending in "/" names a directory: extracting the tar
		// fails (ENOTDIR), and so does OSTree.
		{"hardlink to a file written as a directory", []*tar.Header{
			{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "f/"},
		}, `hardlink to "f/", but "f" is not a directory`},
		{"hardlink to a file written with /.", []*tar.Header{
			{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "./d/f/."},
		}, `hardlink to "./d/f/.", but "d/f" is not a directory`},
		{"hardlink to a later hardlink written as a directory", []*tar.Header{
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "g/"},
			{Name: "g", Typeflag: tar.TypeLink, Linkname: "f"},
			{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644},
		}, `hardlink to "g/", but "g" is not a directory`},
		{"hardlink to itself written as a directory", []*tar.Header{
			{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "f", Typeflag: tar.TypeLink, Linkname: "f/"},
		}, `hardlink to "f/", but "f" is not a directory`},
		{"hardlink through a file", []*tar.Header{
			{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "f/x"},
		}, "does not have"},
		// A later entry of the same name must not silently drop what an
		// earlier directory entry held (OSTree refuses too).
		{"directory replaced by a file", []*tar.Header{
			{Name: "./y/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "./y/child", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "./y", Typeflag: tar.TypeReg, Mode: 0o644},
		}, "cannot replace a directory"},
		{"directory replaced by a hardlink", []*tar.Header{
			{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "y/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "y", Typeflag: tar.TypeLink, Linkname: "f"},
		}, "cannot replace a directory"},
		{"file replaced by a directory", []*tar.Header{
			{Name: "y", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "y/", Typeflag: tar.TypeDir, Mode: 0o755},
		}, "cannot replace a file"},
		{"symlink replaced by a directory", []*tar.Header{
			{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/x"},
			{Name: "l/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "l/x", Typeflag: tar.TypeReg, Mode: 0o644},
		}, "cannot replace a file"},
		{"huge declared size", []*tar.Header{{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 40}}, "big"},
		{"dotdot below an absolute name", []*tar.Header{{Name: "/etc/../../evil", Typeflag: tar.TypeReg, Mode: 0o644}}, "leaves the tree"},
		{"dotdot after an absolute ./", []*tar.Header{{Name: "/./../evil", Typeflag: tar.TypeReg, Mode: 0o644}}, "leaves the tree"},
		{"absolute hardlink outside", []*tar.Header{{Name: "/x", Typeflag: tar.TypeLink, Linkname: "/etc/../../shadow"}}, "hardlink target"},
		{"through a symlink", []*tar.Header{
			{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
			{Name: "a/passwd", Typeflag: tar.TypeReg, Mode: 0o644},
		}, "not a directory"},
		{"root not a dir", []*tar.Header{{Name: ".", Typeflag: tar.TypeReg, Mode: 0o644}}, "root"},
		// Owners past 32 bits (PAX) or negative (GNU base-256) must not
		// wrap round to another owner, such as root.
		{"uid past 32 bits", []*tar.Header{{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1 << 32, Format: tar.FormatPAX}}, "owner 4294967296:0 out of range"},
		{"gid past 32 bits", []*tar.Header{{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Gid: 1 << 32, Format: tar.FormatPAX}}, "owner 0:4294967296 out of range"},
		{"negative uid", []*tar.Header{{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Uid: -1, Format: tar.FormatGNU}}, "owner -1:0 out of range"},
		{"negative gid", []*tar.Header{{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, Gid: -1, Format: tar.FormatGNU}}, "owner 0:-1 out of range"},
		// Names and targets no checkout could write.
		{"name past NAME_MAX", []*tar.Header{{Name: "d/" + strings.Repeat("n", 256), Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}}, "component of 256 bytes"},
		{"directory name past NAME_MAX", []*tar.Header{{Name: strings.Repeat("d", 300) + "/f", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}}, "component of 300 bytes"},
		{"symlink target past PATH_MAX", []*tar.Header{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: strings.Repeat("x", 4096), Format: tar.FormatPAX}}, "target of 4096 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRepo(t, repo.ModeBareUser)
			var p string
			if c.name == "huge declared size" {
				// A header promising a terabyte followed by a few bytes.
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				tw.WriteHeader(c.hdrs[0])
				tw.Write([]byte("only this"))
				p = filepath.Join(t.TempDir(), "trunc.tar")
				os.WriteFile(p, buf.Bytes(), 0o644)
			} else {
				p = writeTar(t, c.hdrs, nil)
			}
			_, err := commitTar(r, "main", p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want an error naming the tar and %s", err, c.want)
			}
			if _, err := r.ReadRef("main"); err == nil {
				t.Fatal("a refused tar created the branch")
			}
		})
	}
}

// The longest name and symlink target Linux allows commit, and check out.
func TestTarLongestNameAndTarget(t *testing.T) {
	name, target := strings.Repeat("n", 255), strings.Repeat("x", 4095)
	p := writeTar(t, []*tar.Header{
		{Name: name + "/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX},
		{Name: "l", Typeflag: tar.TypeSymlink, Linkname: target, Format: tar.FormatPAX},
	}, map[string]string{name + "/" + name: "body"})
	r := newRepo(t, repo.ModeBareUser)
	res, err := commitTar(r, "main", p)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "co")
	if _, err := checkout.Checkout(ctx, r, res.Commit, dst, checkout.Options{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, name, name)); err != nil || string(b) != "body" {
		t.Fatalf("long name: %q, %v", b, err)
	}
	if got, err := os.Readlink(filepath.Join(dst, "l")); err != nil || got != target {
		t.Fatalf("long target: %d bytes, %v", len(got), err)
	}
}

// Absolute names ("tar -P" writes them) are taken from the tree's root, as
// OSTree does: leading slashes, and ".." right below the root, which is the
// root, go; so do "./" prefixes. The pathname filter sees the name without
// them, and its result may be absolute too. Hardlink targets are taken the
// same way.
func TestTarAbsoluteNames(t *testing.T) {
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
	p := writeTar(t, []*tar.Header{
		{Name: "/", Typeflag: tar.TypeDir, Mode: 0o700},
		{Name: "/etc/", Typeflag: tar.TypeDir, Mode: 0o750},
		reg("/etc/x"), reg("//y"), reg("/./z"), reg("/../../w"), reg("/.././v"), reg("/..x"), reg("/a//b/./c"),
		{Name: "/h", Typeflag: tar.TypeLink, Linkname: "//../etc/x"},
		{Name: "/l", Typeflag: tar.TypeSymlink, Linkname: "/etc/x", Mode: 0o777},
	}, map[string]string{"/etc/x": "x", "//y": "y", "/./z": "z", "/../../w": "w", "/.././v": "v", "/..x": "dx", "/a//b/./c": "c"})
	r := newRepo(t, repo.ModeBareUser)
	res, err := commitTar(r, "main", p)
	if err != nil {
		t.Fatal(err)
	}
	want := testtree.Tree{
		"etc": testtree.Dir(0o750), "etc/x": testtree.File("x", 0o644), "y": testtree.File("y", 0o644),
		"z": testtree.File("z", 0o644), "w": testtree.File("w", 0o644), "v": testtree.File("v", 0o644),
		"..x": testtree.File("dx", 0o644), "a": testtree.Dir(0o755), "a/b": testtree.Dir(0o755),
		"a/b/c": testtree.File("c", 0o644), "h": testtree.File("x", 0o644), "l": testtree.Symlink("/etc/x"),
	}
	if d := cmp.Diff(want, readCommit(t, r, res.Commit, false)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if m, _ := r.ReadDirMeta(mustCommit(t, r, res.Commit).RootMeta); m.Mode != 0o700 {
		t.Errorf("root mode %04o, want the 0700 of the tar's \"/\" entry", m.Mode)
	}

	for _, c := range []struct {
		filter string
		want   testtree.Tree // nil: refused
	}{
		{"^etc,opt", testtree.Tree{"opt": testtree.Dir(0o755), "opt/x": testtree.File("x", 0o644), "h": testtree.File("x", 0o644)}},
		{"^/etc,opt", testtree.Tree{"etc": testtree.Dir(0o755), "etc/x": testtree.File("x", 0o644), "h": testtree.File("x", 0o644)}},
		{"^,/", testtree.Tree{"etc": testtree.Dir(0o755), "etc/x": testtree.File("x", 0o644), "h": testtree.File("x", 0o644)}},
		{"^,/../", nil},
	} {
		p := writeTar(t, []*tar.Header{reg("/etc/x"), {Name: "/h", Typeflag: tar.TypeLink, Linkname: "/etc/x"}}, map[string]string{"/etc/x": "x"})
		f, err := commit.ParsePathnameFilter(c.filter)
		if err != nil {
			t.Fatal(err)
		}
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "filtered", TarPathnameFilter: f,
			Sources: []commit.Source{{Kind: commit.SourceTar, Path: p}}})
		if c.want == nil {
			if err == nil || !strings.Contains(err.Error(), "leaves the tree") {
				t.Errorf("%s: err = %v, want the renamed name refused", c.filter, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.filter, err)
			continue
		}
		if d := cmp.Diff(c.want, readCommit(t, r, res.Commit, false)); d != "" {
			t.Errorf("%s: (-want +got):\n%s", c.filter, d)
		}
	}
}

// Whatever bytes a tar holds, committing it fails with an error naming the
// tar or lands a commit whose whole tree reads back; it never panics, and
// a failure leaves the branch alone.
func FuzzTarSource(f *testing.F) {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	// Each seed plain, and compressed with gzip and with zstd (the
	// corpus under testdata has the found inputs in every compression).
	seed := func(hdrs []*tar.Header, bodies map[string]string) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(bodies[h.Name]))
			}
			tw.WriteHeader(h)
			tw.Write([]byte(bodies[h.Name]))
		}
		tw.Close()
		f.Add(buf.Bytes())
		var gz bytes.Buffer
		gw := gzip.NewWriter(&gz)
		gw.Write(buf.Bytes())
		gw.Close()
		f.Add(gz.Bytes())
		f.Add(zw.EncodeAll(buf.Bytes(), nil))
	}
	// xz and bzip2, which the standard library cannot write, as their
	// tools wrote them: one stream or several, one block or several.
	for _, fx := range compressedFixtures {
		if strings.HasSuffix(fx.name, ".xz") || strings.HasSuffix(fx.name, ".bz2") {
			f.Add(readFixture(f, fx.name))
		}
	}
	// An LZMA2 chunk hiding a block header past its data.
	_, bypass := xzChunkPastData(f, fixtureTar(f))
	f.Add(bypass)
	seed([]*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/conf", Typeflag: tar.TypeReg, Mode: 0o640, PAXRecords: map[string]string{"SCHILY.xattr.user.tag": "v"}},
		{Name: "bin/sh", Typeflag: tar.TypeReg, Mode: 0o4755},
		{Name: "bin/ash", Typeflag: tar.TypeLink, Linkname: "bin/sh"},
		{Name: "bin/link", Typeflag: tar.TypeSymlink, Linkname: "sh"},
		{Name: "dev/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
	}, map[string]string{"etc/conf": "k=v\n", "bin/sh": "#!\n"})
	seed([]*tar.Header{{Name: strings.Repeat("long/", 40) + "f", Typeflag: tar.TypeReg, Mode: 0o644}}, nil)
	seed([]*tar.Header{{Name: "a/../../x", Typeflag: tar.TypeReg}, {Name: "l", Typeflag: tar.TypeLink, Linkname: "../x"}}, nil)
	seed([]*tar.Header{{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, {Name: "a/p", Typeflag: tar.TypeReg}}, nil)
	f.Add([]byte{})
	r, err := repo.Init(filepath.Join(f.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	p := filepath.Join(f.TempDir(), "in.tar")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		before, berr := r.ReadRef("main")
		// A few bytes can claim a sparse file of exabytes, whose holes are
		// read as zeros, as they would be from disk: bounded here, so the
		// fuzzer moves on (the failure is checked like any other).
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		res, err := commit.Commit(tctx, r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceTar, Path: p}}})
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the tar: %v", err)
			}
			if after, aerr := r.ReadRef("main"); after != before || (aerr == nil) != (berr == nil) {
				t.Fatalf("a failed commit moved main from %s to %s", before, after)
			}
			return
		}
		// Every object the tree needs is stored and reads back whole.
		c, err := r.ReadCommit(res.Commit)
		if err != nil {
			t.Fatal(err)
		}
		var walk func(repo.ID)
		walk = func(id repo.ID) {
			dt, err := r.ReadDirTree(id)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range dt.Files {
				_, rc, err := r.OpenFile(e.ID)
				if err == nil {
					_, err = io.Copy(io.Discard, rc)
					rc.Close()
				}
				if err != nil {
					t.Fatalf("%s: %v", e.Name, err)
				}
			}
			for _, d := range dt.Dirs {
				walk(d.TreeID)
			}
		}
		walk(c.RootTree)
	})
}

// Hardlinks are resolved once the whole archive is read, to what their
// target names then, as OSTree does: a target may come later, be a
// symlink (GNU tar's entry for a hardlinked symlink) or a hardlink itself.
// A later entry of a non-directory's name replaces it.
func TestTarHardlinksAndReplacedEntries(t *testing.T) {
	link := func(name, target string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}
	}
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
	for _, c := range []struct {
		name   string
		hdrs   []*tar.Header
		bodies map[string]string
		want   testtree.Tree
	}{
		{"to a symlink", []*tar.Header{
			{Name: "./s", Typeflag: tar.TypeSymlink, Linkname: "target"}, link("./h", "./s"),
		}, nil, testtree.Tree{"s": testtree.Symlink("target"), "h": testtree.Symlink("target")}},
		{"before its target", []*tar.Header{link("./h", "./y"), reg("./y")},
			map[string]string{"./y": "one"}, testtree.Tree{"h": testtree.File("one", 0o644), "y": testtree.File("one", 0o644)}},
		{"chain out of order", []*tar.Header{link("a", "b"), link("b", "c"), reg("c")},
			map[string]string{"c": "x"}, testtree.Tree{"a": testtree.File("x", 0o644), "b": testtree.File("x", 0o644), "c": testtree.File("x", 0o644)}},
		{"target replaced later", []*tar.Header{reg("y"), link("h", "y"), {Name: "y", Typeflag: tar.TypeReg, Mode: 0o600}},
			map[string]string{"y": "v"}, testtree.Tree{"h": testtree.File("v", 0o600), "y": testtree.File("v", 0o600)}},
		{"regular file twice", []*tar.Header{reg("./d/y"), {Name: "./d/y", Typeflag: tar.TypeReg, Mode: 0o755}},
			map[string]string{"./d/y": "z"}, testtree.Tree{"d": testtree.Dir(0o755), "d/y": testtree.File("z", 0o755)}},
		{"hardlink replaced by a file", []*tar.Header{reg("y"), link("h", "nowhere"), {Name: "h", Typeflag: tar.TypeSymlink, Linkname: "y"}},
			map[string]string{"y": "v"}, testtree.Tree{"h": testtree.Symlink("y"), "y": testtree.File("v", 0o644)}},
		{"file replaced by a symlink", []*tar.Header{reg("y"), {Name: "y", Typeflag: tar.TypeSymlink, Linkname: "t"}},
			map[string]string{"y": "v"}, testtree.Tree{"y": testtree.Symlink("t")}},
		// "tar -cf x.tar d d/f" stores d/f the second time as a link to
		// itself, which extracting leaves as it was.
		{"file linked to itself", []*tar.Header{{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, reg("d/f"), link("d/f", "d/f")},
			map[string]string{"d/f": "f"}, testtree.Tree{"d": testtree.Dir(0o755), "d/f": testtree.File("f", 0o644)}},
		{"hardlink linked to itself", []*tar.Header{link("h", "y"), link("./h", "h"), reg("y")},
			map[string]string{"y": "v"}, testtree.Tree{"h": testtree.File("v", 0o644), "y": testtree.File("v", 0o644)}},
		{"directory twice", []*tar.Header{{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, reg("d/f"), {Name: "d/", Typeflag: tar.TypeDir, Mode: 0o700}},
			map[string]string{"d/f": "f"}, testtree.Tree{"d": testtree.Dir(0o700), "d/f": testtree.File("f", 0o644)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRepo(t, repo.ModeBareUser)
			// The same body for every entry of a name: writeTar looks it up by name.
			res, err := commitTar(r, "main", writeTar(t, c.hdrs, c.bodies))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, readCommit(t, r, res.Commit, false)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// A tar with no entry at all (what a failed download leaves) does not
// become an empty tree on the branch; OSTree refuses it too. A tar with
// only its root entry, an empty directory, or an empty tar laid over
// another source commit, as in OSTree.
func TestEmptyTarRefused(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"f": testtree.File("f", 0o644)})
	head := commitDir(t, r, "main", src).Commit
	dir := t.TempDir()
	empty, zeros := filepath.Join(dir, "empty.tar"), filepath.Join(dir, "zeros.tar")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(zeros, make([]byte, 10240), 0o644)
	for _, srcs := range [][]commit.Source{
		{{Kind: commit.SourceTar, Path: empty}},
		{{Kind: commit.SourceTar, Path: zeros}},
		{{Kind: commit.SourceTar, Path: writeTar(t, nil, nil)}},
		{{Kind: commit.SourceTar, Path: empty}, {Kind: commit.SourceTar, Path: zeros}},
	} {
		_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: srcs})
		if err == nil || !strings.Contains(err.Error(), "tar "+srcs[0].Path) || !strings.Contains(err.Error(), "empty tree") {
			t.Errorf("%v: got %v, want an error naming the tar", srcs, err)
		}
	}
	if id, _ := r.ReadRef("main"); id != head {
		t.Fatal("an empty tar moved the branch")
	}
	root := writeTar(t, []*tar.Header{{Name: "./", Typeflag: tar.TypeDir, Mode: 0o700}}, nil)
	emptyDir := t.TempDir()
	for _, srcs := range [][]commit.Source{
		{{Kind: commit.SourceTar, Path: root}},
		{{Kind: commit.SourceDir, Path: emptyDir}},
		{{Kind: commit.SourceDir, Path: src}, {Kind: commit.SourceTar, Path: empty}},
	} {
		if _, err := commit.Commit(ctx, r, commit.Options{Branch: "other", Sources: srcs}); err != nil {
			t.Errorf("%v: %v", srcs, err)
		}
	}
}

// A tar cut short, what an interrupted download leaves, is refused naming
// it, and the branch stays, unless the cut leaves the whole archive and
// its first end-of-archive block: archive/tar alone takes a cut inside an
// entry's padding, or between entries, for the end of the archive. Cut
// at every block, and inside blocks, of archives GNU tar writes in its
// formats and sparse versions, with long names, data ending in zero
// blocks (the last entry's too), and a sparse file of 1 TiB the skip list
// leaves out, which must not be read as 1 TiB of zeros.
func TestTruncatedTarRefused(t *testing.T) {
	gnuTar, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar")
	}
	if out, _ := exec.Command(gnuTar, "--version").Output(); !bytes.Contains(out, []byte("GNU tar")) {
		t.Skip("tar is not GNU tar")
	}
	long := strings.Repeat("long-name-", 12)
	zeros := string(make([]byte, 1024))
	src := makeTree(t, testtree.Tree{
		"a":           testtree.File("a\n", 0o644),
		"skip/x":      testtree.File("x", 0o644),
		"sub/b":       testtree.File("hi\n", 0o644),
		"sub/" + long: testtree.File("long\n", 0o644),
		"sub/zeros":   testtree.File(zeros, 0o644),
		"zz":          testtree.File(zeros, 0o644),
	})
	sparse := func(name string, size int64) {
		f, err := os.Create(filepath.Join(src, name))
		if err == nil {
			_, err = f.WriteAt([]byte("data"), 300000)
		}
		if err == nil {
			err = f.Truncate(size)
		}
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	sparse("sparse", 1<<20)
	sparse("skip/sparse", 1<<40)
	const block = 512
	dir := t.TempDir()
	for _, format := range [][]string{
		{"--format=gnu"},
		{"--format=posix", "--sparse-version=0.0"},
		{"--format=posix", "--sparse-version=0.1"},
		{"--format=posix", "--sparse-version=1.0"},
	} {
		t.Run(strings.Join(format, " "), func(t *testing.T) {
			full := filepath.Join(dir, "full.tar")
			args := append([]string{"--sparse", "--sort=name", "--owner=0", "--group=0", "-cf", full, "-C", src}, format...)
			if out, err := exec.Command(gnuTar, append(args, ".")...).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v: %s", err, out)
			}
			skip := []string{"/skip"}
			// GNU tar says where its end-of-archive blocks start.
			out, err := exec.Command(gnuTar, "-tvR", "-f", full).Output()
			if err != nil {
				t.Fatal(err)
			}
			var nuls int64 = -1
			for _, l := range strings.Split(string(out), "\n") {
				if b, ok := strings.CutSuffix(l, ": ** Block of NULs **"); ok {
					nuls, _ = strconv.ParseInt(strings.TrimPrefix(b, "block "), 10, 64)
				}
			}
			if nuls < 0 {
				t.Fatalf("tar -tvR shows no end-of-archive block:\n%s", out)
			}
			data, err := os.ReadFile(full)
			if err != nil {
				t.Fatal(err)
			}
			r := newRepo(t, repo.ModeBareUser)
			opts := func(p string) commit.Options {
				return commit.Options{Branch: "main", SkipList: skip, NoSync: true,
					Sources: []commit.Source{{Kind: commit.SourceTar, Path: p}}}
			}
			res, err := commit.Commit(ctx, r, opts(full))
			if err != nil {
				t.Fatal(err)
			}
			want := mustCommit(t, r, res.Commit).RootTree
			if _, ok := readCommit(t, r, res.Commit, false)["zz"]; !ok {
				t.Fatal("the whole archive lacks its last entry")
			}
			// Sparse files, GNU's old type included, hold what the
			// directory does.
			zero := uint32(0)
			if fromDir := mustCommit(t, r, commitDir(t, r, "dir", src, func(o *commit.Options) {
				o.SkipList, o.OwnerUID, o.OwnerGID = skip, &zero, &zero
			}).Commit); fromDir.RootTree != want {
				t.Fatalf("the archive's tree %s differs from the directory's %s", want, fromDir.RootTree)
			}
			var cuts []int64
			for b := int64(0); b*block <= int64(len(data)); b++ {
				cuts = append(cuts, b*block)
				if b <= nuls+2 {
					cuts = append(cuts, b*block+1, b*block+block-1)
				}
			}
			for _, cut := range cuts {
				if cut > int64(len(data)) {
					continue
				}
				for _, gz := range []bool{false, true} {
					if gz && cut%block != 0 {
						continue
					}
					in := data[:cut]
					if gz {
						var b bytes.Buffer
						zw := gzip.NewWriter(&b)
						zw.Write(in)
						zw.Close()
						in = b.Bytes()
					}
					p := filepath.Join(dir, "cut.tar")
					if err := os.WriteFile(p, in, 0o644); err != nil {
						t.Fatal(err)
					}
					head, _ := r.ReadRef("main")
					res, err := commit.Commit(ctx, r, opts(p))
					complete := cut >= (nuls+1)*block
					// archive/tar reads the second block whole, as libarchive
					// need not: a cut inside it may fail.
					mayFail := cut > (nuls+1)*block && cut < (nuls+2)*block
					switch {
					case err == nil && !complete:
						t.Errorf("cut at %d (gzip %v), before the end-of-archive block at %d, committed", cut, gz, nuls*block)
					case err == nil && mustCommit(t, r, res.Commit).RootTree != want:
						t.Errorf("cut at %d (gzip %v) committed a tree other than the whole archive's", cut, gz)
					case err != nil && complete && !mayFail:
						t.Errorf("cut at %d (gzip %v), after the end-of-archive block: %v", cut, gz, err)
					case err != nil && !strings.Contains(err.Error(), "tar "+p):
						t.Errorf("cut at %d (gzip %v): %v, want an error naming the tar", cut, gz, err)
					}
					if now, _ := r.ReadRef("main"); err != nil && now != head {
						t.Errorf("cut at %d (gzip %v) failed but moved the branch", cut, gz)
					}
				}
			}
		})
	}
}

// A header archive/tar cannot read, a NUL in a PAX path or one cut short,
// is refused naming the tar, where the header starts and the entry before
// it: archive/tar's own error says none of them.
func TestBadTarHeaderSaysWhere(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "ok", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("ok"))
	name := "d/\u00e9/a@b" // not ASCII: a PAX path record
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	rec := bytes.Index(data, []byte("path="+name))
	if rec < 0 {
		t.Fatal("no PAX path record")
	}
	nul := bytes.Clone(data)
	nul[rec+len("path=")+len(name)-2] = 0
	r := newRepo(t, repo.ModeBareUser)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"NUL in PAX path", nul, `header at byte 1024, after entry "ok": archive/tar: invalid tar header`},
		{"cut in PAX header", data[:1024+100], `truncated at byte 1124, inside the headers at byte 1024, after entry "ok"`},
	} {
		p := filepath.Join(t.TempDir(), "in.tar")
		if err := os.WriteFile(p, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := commitTar(r, "main", p)
		if err == nil || !strings.Contains(err.Error(), "tar "+p+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming the tar and %q", c.name, err, c.want)
		}
	}
}

// A tar source can be an io.Reader, plain or compressed: Path, which need
// not exist, then names it in errors, and an error keeps the branch.
func TestTarSourceReader(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	p := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/conf", Typeflag: tar.TypeReg, Mode: 0o640},
	}, map[string]string{"etc/conf": "conf\n"})
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	missing := filepath.Join(t.TempDir(), "not-a-file.tar")
	want := testtree.Tree{"etc": testtree.Dir(0o755), "etc/conf": testtree.File("conf\n", 0o640)}
	for _, in := range [][]byte{data, gz.Bytes()} {
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "main",
			Sources: []commit.Source{{Kind: commit.SourceTar, Path: missing, Reader: bytes.NewReader(in)}}})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, readCommit(t, r, res.Commit, false)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	}
	head, _ := r.ReadRef("main")
	for _, c := range []struct {
		src  commit.Source
		want string
	}{
		{commit.Source{Kind: commit.SourceTar, Path: missing, Reader: bytes.NewReader(data[:700])}, "tar " + missing + ": truncated"},
		{commit.Source{Kind: commit.SourceTar, Reader: bytes.NewReader(data[:700])}, "the tar reader: truncated"},
		{commit.Source{Kind: commit.SourceDir, Path: t.TempDir(), Reader: bytes.NewReader(data)}, "only a tar source"},
	} {
		_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: []commit.Source{c.src}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error with %q", c.src, err, c.want)
		}
	}
	if id, _ := r.ReadRef("main"); id != head {
		t.Error("a failed commit moved the branch")
	}
}

// A PAX global header, which git archive writes first (its comment is
// the commit id), is taken as the archive's; one whose records would
// change the entries after it is refused, naming the record.
func TestTarGlobalHeader(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	entries := []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644},
	}
	plain := writeTar(t, entries, map[string]string{"a": "a"})
	global := func(recs map[string]string) string {
		return writeTar(t, append([]*tar.Header{{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: recs}}, entries...), map[string]string{"a": "a"})
	}
	want, err := commitTar(r, "plain", plain)
	if err != nil {
		t.Fatal(err)
	}
	res, err := commitTar(r, "git", global(map[string]string{"comment": "0123456789abcdef0123456789abcdef01234567"}))
	if err != nil {
		t.Fatalf("a git archive's global header: %v", err)
	}
	if got := mustCommit(t, r, res.Commit).RootTree; got != mustCommit(t, r, want.Commit).RootTree {
		t.Errorf("with a global header the tree is %s, without %s", got, mustCommit(t, r, want.Commit).RootTree)
	}
	if _, err := commitTar(r, "xattr", global(map[string]string{"SCHILY.xattr.user.a": "1"})); err == nil || !strings.Contains(err.Error(), `"SCHILY.xattr.user.a"`) {
		t.Errorf("a global xattr: %v", err)
	}
	if _, err := r.ReadRef("xattr"); err == nil {
		t.Error("the refused archive was committed")
	}
	// A global header alone is no entry: the tree would be empty.
	only := writeTar(t, []*tar.Header{{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}}, nil)
	if _, err := commitTar(r, "only", only); err == nil || !strings.Contains(err.Error(), "empty tree") {
		t.Errorf("a tar holding only a global header: %v", err)
	}
}

// GNU tar's --selinux writes a file's SELinux label in an
// RHT.security.selinux record, which is recorded as the security.selinux
// xattr, as OSTree (libarchive) records it; a SCHILY.xattr record of the
// same xattr wins.
func TestTarSELinuxRecord(t *testing.T) {
	const label = "system_u:object_r:bin_t:s0"
	p := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"RHT.security.selinux": "system_u:object_r:root_t:s0"}},
		{Name: "bin/sh", Typeflag: tar.TypeReg, Mode: 0o755, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"RHT.security.selinux": label}},
		{Name: "bin/both", Typeflag: tar.TypeReg, Mode: 0o755, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"RHT.security.selinux": "other", "SCHILY.xattr.security.selinux": label + "\x00"}},
	}, map[string]string{"bin/sh": "sh", "bin/both": "sh"})
	r := newRepo(t, repo.ModeArchive)
	res, err := commitTar(r, "main", p)
	if err != nil {
		t.Fatal(err)
	}
	tree := readCommit(t, r, res.Commit, false)
	for name, want := range map[string]string{"bin/sh": label, "bin/both": label + "\x00"} {
		if got := tree[name].Xattrs; got["security.selinux"] != want || len(got) != 1 {
			t.Errorf("%s: xattrs %q, want security.selinux %q", name, got, want)
		}
	}
	m, err := r.ReadDirMeta(mustCommit(t, r, res.Commit).RootMeta)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Xattrs) != 1 || m.Xattrs[0].Name != "security.selinux" || string(m.Xattrs[0].Value) != "system_u:object_r:root_t:s0" {
		t.Errorf("the root's xattrs %q, want its label", m.Xattrs)
	}
}

// GNU tar's volume label (`tar -V LABEL`), a 'V' entry first in the GNU
// format and a GNU.volume.label global record in PAX, names the archive,
// not a path: it is skipped, as OSTree (libarchive) skips it, and alone
// is no entry.
func TestTarVolumeLabel(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	entries := []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644},
	}
	want, err := commitTar(r, "plain", writeTar(t, entries, map[string]string{"a": "a"}))
	if err != nil {
		t.Fatal(err)
	}
	label := &tar.Header{Name: "backup 2026/../x", Typeflag: 'V', Format: tar.FormatGNU}
	global := &tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader,
		PAXRecords: map[string]string{"GNU.volume.label": "backup 2026"}}
	for _, c := range []struct {
		name  string
		first *tar.Header
	}{{"gnu", label}, {"pax", global}} {
		res, err := commitTar(r, c.name, writeTar(t, append([]*tar.Header{c.first}, entries...), map[string]string{"a": "a"}))
		if err != nil {
			t.Errorf("%s: a labelled tar: %v", c.name, err)
			continue
		}
		if got := mustCommit(t, r, res.Commit).RootTree; got != mustCommit(t, r, want.Commit).RootTree {
			t.Errorf("%s: with a label the tree is %s, without %s", c.name, got, mustCommit(t, r, want.Commit).RootTree)
		}
	}
	if _, err := commitTar(r, "only", writeTar(t, []*tar.Header{label}, nil)); err == nil || !strings.Contains(err.Error(), "empty tree") {
		t.Errorf("a tar holding only a label: %v", err)
	}
}

// A compressed archive whose stream fails its checksum is refused, though
// it decompresses into a well-formed archive.
func TestTarCompressedChecksum(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	data, err := os.ReadFile(writeTar(t, []*tar.Header{{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644}}, map[string]string{"a": "content"}))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	gz := b.Bytes()
	p := filepath.Join(t.TempDir(), "in.tar.gz")
	os.WriteFile(p, gz, 0o644)
	if _, err := commitTar(r, "good", p); err != nil {
		t.Fatal(err)
	}
	// Zeros after the stream, as a block device pads it, are ignored, as
	// gzip -d ignores them.
	padded := filepath.Join(t.TempDir(), "padded.tar.gz")
	os.WriteFile(padded, append(slices.Clone(gz), make([]byte, 10240)...), 0o644)
	if _, err := commitTar(r, "padded", padded); err != nil {
		t.Errorf("a gzip stream followed by zeros: %v", err)
	}
	gz[len(gz)-8] ^= 1 // gzip's CRC-32 of the content
	os.WriteFile(p, gz, 0o644)
	if _, err := commitTar(r, "bad", p); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("a gzip stream with a bad CRC: %v", err)
	}
}

// A directory a tar only implies (a parent it leaves out, its root without
// a "./" entry) keeps the metadata an earlier source gives it, as in
// OSTree; it gets the default (0755, owner 0) only where no earlier source
// has it. A directory the tar names overrides, as a later source does.
func TestTarImplicitDirsKeepEarlierMetadata(t *testing.T) {
	r := newRepo(t, repo.ModeArchive) // records any owner without root
	lower := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 7, Gid: 8},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, Uid: 5, Gid: 6},
		{Name: "tmp/keep", Typeflag: tar.TypeReg, Mode: 0o644},
	}, nil)
	if _, err := commitTar(r, "lower", lower); err != nil {
		t.Fatal(err)
	}
	disk := makeTree(t, testtree.Tree{"tmp": testtree.Dir(0o755)})
	for p, m := range map[string]uint32{"": 0o750, "tmp": 0o1777} {
		if err := syscall.Chmod(filepath.Join(disk, p), m); err != nil {
			t.Fatal(err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(disk, &st); err != nil {
		t.Fatal(err)
	}
	tmpFoo := writeTar(t, []*tar.Header{{Name: "tmp/foo", Typeflag: tar.TypeReg, Mode: 0o644}}, nil)
	deep := writeTar(t, []*tar.Header{{Name: "tmp/new/f", Typeflag: tar.TypeReg, Mode: 0o644}}, nil)
	named := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 3, Gid: 4},
		{Name: "tmp/foo", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o711, Uid: 1, Gid: 2}, // after an entry that implied it
	}, nil)
	plain := writeTar(t, []*tar.Header{{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644}}, nil)
	tarSrc := func(p string) commit.Source { return commit.Source{Kind: commit.SourceTar, Path: p} }
	ref := commit.Source{Kind: commit.SourceRef, Path: "lower"}
	type meta struct{ mode, uid, gid uint32 }
	dflt := meta{0o755, 0, 0}
	lowRoot, lowTmp := meta{0o750, 7, 8}, meta{0o1777, 5, 6}
	for _, c := range []struct {
		name      string
		sources   []commit.Source
		filter    string
		root, tmp meta
		more      map[string]meta
	}{
		{"ref, then an implied tmp", []commit.Source{ref, tarSrc(tmpFoo)}, "", lowRoot, lowTmp, nil},
		{"base, then an implied tmp", []commit.Source{{Kind: commit.SourceBase, Path: "lower"}, tarSrc(tmpFoo)}, "", lowRoot, lowTmp, nil},
		{"dir, then an implied tmp", []commit.Source{{Kind: commit.SourceDir, Path: disk}, tarSrc(tmpFoo)}, "",
			meta{0o750, st.Uid, st.Gid}, meta{0o1777, st.Uid, st.Gid}, nil},
		{"a tar naming tmp, then one implying it", []commit.Source{tarSrc(lower), tarSrc(tmpFoo)}, "", lowRoot, lowTmp, nil},
		{"a new directory below an implied tmp", []commit.Source{ref, tarSrc(deep)}, "", lowRoot, lowTmp, map[string]meta{"/tmp/new": dflt}},
		{"the pathname filter implying tmp", []commit.Source{ref, tarSrc(plain)}, "^,tmp/", lowRoot, lowTmp, nil},
		{"a tar naming the root and tmp", []commit.Source{ref, tarSrc(named)}, "", meta{0o700, 3, 4}, meta{0o711, 1, 2}, nil},
		{"an implied tmp, then a source naming it", []commit.Source{tarSrc(tmpFoo), ref}, "", lowRoot, lowTmp, nil},
		{"an implied tmp alone", []commit.Source{tarSrc(tmpFoo)}, "", dflt, dflt, nil},
	} {
		o := commit.Options{Branch: "main", Sources: c.sources}
		if c.filter != "" {
			var err error
			if o.TarPathnameFilter, err = commit.ParsePathnameFilter(c.filter); err != nil {
				t.Fatal(err)
			}
		}
		res, err := commit.Commit(ctx, r, o)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		want := map[string]meta{"/": c.root, "/tmp": c.tmp}
		for p, m := range c.more {
			want[p] = m
		}
		for p, w := range want {
			m, err := r.ReadDirMeta(mustLookup(t, r, res.Commit, p).MetaID)
			if err != nil {
				t.Fatal(err)
			}
			if got := (meta{m.Mode, m.UID, m.GID}); got != w {
				t.Errorf("%s: %s is %o %d:%d, want %o %d:%d", c.name, p, got.mode, got.uid, got.gid, w.mode, w.uid, w.gid)
			}
		}
	}
}

// A stat override naming a directory a tar only implies applies where the
// default is kept; where an earlier source has the directory, that
// source's metadata stays, with the override applied to it unless the
// source is a base, to which no option applies: the override then names a
// path no source has.
func TestTarImplicitDirStatOverride(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	lower := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 7, Gid: 8},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, Uid: 5, Gid: 6},
	}, nil)
	if _, err := commitTar(r, "lower", lower); err != nil {
		t.Fatal(err)
	}
	tmpFoo := commit.Source{Kind: commit.SourceTar, Path: writeTar(t, []*tar.Header{{Name: "tmp/foo", Typeflag: tar.TypeReg, Mode: 0o644}}, nil)}
	ref := commit.Source{Kind: commit.SourceRef, Path: "lower"}
	base := commit.Source{Kind: commit.SourceBase, Path: "lower"}
	for _, c := range []struct {
		name    string
		sources []commit.Source
		path    string
		want    repo.DirMeta // zero: the override names a path no source has
	}{
		{"tar alone, tmp", []commit.Source{tmpFoo}, "/tmp", repo.DirMeta{Mode: 0o700}},
		{"tar alone, root", []commit.Source{tmpFoo}, "/", repo.DirMeta{Mode: 0o700}},
		{"ref, then tar", []commit.Source{ref, tmpFoo}, "/tmp", repo.DirMeta{Mode: 0o700, UID: 5, GID: 6}},
		{"ref, then tar, root", []commit.Source{ref, tmpFoo}, "/", repo.DirMeta{Mode: 0o700, UID: 7, GID: 8}},
		{"base, then tar", []commit.Source{base, tmpFoo}, "/tmp", repo.DirMeta{}},
	} {
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: c.sources,
			StatOverrides: []commit.StatOverride{{Path: c.path, Set: true, Mode: 0o700}}})
		if c.want.Mode == 0 {
			if err == nil || !strings.Contains(err.Error(), "stat overrides name paths no source has: "+strconv.Quote(c.path)) {
				t.Errorf("%s: got %v, want the override refused as naming a path no source has", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		m, err := r.ReadDirMeta(mustLookup(t, r, res.Commit, c.path).MetaID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Mode != c.want.Mode || m.UID != c.want.UID || m.GID != c.want.GID {
			t.Errorf("%s: %s is %o %d:%d, want %o %d:%d", c.name, c.path, m.Mode, m.UID, m.GID, c.want.Mode, c.want.UID, c.want.GID)
		}
	}
}

// TestSourceStatsCountAlike checks that a tar and a rewritten ref count
// what they read as a directory walk does: every directory, the root
// included, and the content bytes they read, so that the bytes
// deduplicated (scanned less new) are never negative.
func TestSourceStatsCountAlike(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	src := makeTree(t, testtree.Tree{
		"a/one": testtree.File("one\n", 0o644), "a/b/two": testtree.File("two!\n", 0o644), "c": testtree.Dir(0o755),
	})
	walked := commitDir(t, r, "dir", src).Stats
	p := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./a/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./a/one", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./a/b/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./a/b/two", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./c/", Typeflag: tar.TypeDir, Mode: 0o755},
	}, map[string]string{"./a/one": "one\n", "./a/b/two": "two!\n"})
	res, err := commitTar(r, "tar", p)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Stats; got.Dirs != walked.Dirs || got.Dirs != 4 {
		t.Errorf("tar: %d directories scanned, the walk %d, want 4", got.Dirs, walked.Dirs)
	}
	uid := uint32(7)
	for i, want := range []int64{0, 9} { // all new, then all found
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "owned", OwnerUID: &uid,
			Sources: []commit.Source{{Kind: commit.SourceRef, Path: "dir"}}})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Stats
		if s.Dirs != 4 || s.BytesScanned != 9 || s.BytesHashed != 9 || s.BytesDeduped != want {
			t.Errorf("ref, run %d: dirs %d, bytes scanned %d, hashed %d, deduplicated %d; want 4, 9, 9, %d",
				i, s.Dirs, s.BytesScanned, s.BytesHashed, s.BytesDeduped, want)
		}
	}
}

// A tar thousands of directories deep commits in time linear in its size:
// each entry's check against the skip list once walked every directory
// above it, cleaning each one's path, so that this tar took hours.
func TestTarDeepNamesWithSkipList(t *testing.T) {
	if testing.Short() {
		t.Skip("commits a tar 6000 directories deep")
	}
	// The old check took some 25 minutes at this depth.
	const depth = 6000
	r := newRepo(t, repo.ModeBareUser)
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		name := ""
		for i := 0; i < depth; i++ {
			name += "d/"
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				pw.CloseWithError(err)
				return
			}
			if i == 1 {
				if err := tw.WriteHeader(&tar.Header{Name: name + "skipped", Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}
		err := tw.WriteHeader(&tar.Header{Name: name + "leaf", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
		if err == nil {
			_, err = tw.Write([]byte("leaf"))
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true, SkipList: []string{"/d/d/skipped"},
		Sources: []commit.Source{{Kind: commit.SourceTar, Reader: pr}}})
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	leaf := "/" + strings.Repeat("d/", depth) + "leaf"
	if ent, err := r.Resolve(res.Commit, leaf); err != nil || ent.IsDir() {
		t.Fatalf("the leaf %d directories deep: %v, %v", depth, ent, err)
	}
	if ent, err := r.Resolve(res.Commit, "/d/d/skipped"); err == nil {
		t.Fatalf("/d/d/skipped, in the skip list, was committed: %v", ent)
	}
}

// tarACL encodes a system.posix_acl_access value from (tag, perm, id)
// triples.
func tarACL(entries ...uint32) string {
	b := []byte{2, 0, 0, 0}
	for i := 0; i+2 < len(entries); i += 3 {
		b = append(b, byte(entries[i]), byte(entries[i]>>8), byte(entries[i+1]), byte(entries[i+1]>>8),
			byte(entries[i+2]), byte(entries[i+2]>>8), byte(entries[i+2]>>16), byte(entries[i+2]>>24))
	}
	return string(b)
}

// A tar entry whose POSIX ACL a filesystem would not keep as given with its
// mode (a mask at odds with the group bits, an ACL that says no more than
// the mode) fails the commit in every mode, naming the entry and the xattr,
// and the branch does not move: a checkout would otherwise write another
// ACL than the commit records. An ACL that agrees with the mode is kept.
func TestTarACLAtOddsWithModeRefused(t *testing.T) {
	const userObj, user, groupObj, mask, other, none = 0x01, 0x02, 0x04, 0x10, 0x20, 0xffffffff
	named := tarACL(userObj, 6, none, user, 4, 1234, groupObj, 4, none, mask, 4, none, other, 4, none)
	minimal := tarACL(userObj, 6, none, groupObj, 4, none, other, 4, none)
	for _, mode := range []repo.Mode{repo.ModeArchive, repo.ModeBareUser} {
		r := newRepo(t, mode)
		for _, c := range []struct {
			name, entry string
			typ         byte
			mode        int64
			acl         string
		}{
			{"mask at odds", "f", tar.TypeReg, 0o664, named},
			{"minimal", "f", tar.TypeReg, 0o644, minimal},
			{"directory mask at odds", "d/", tar.TypeDir, 0o775, named},
		} {
			p := writeTar(t, []*tar.Header{{Name: c.entry, Typeflag: c.typ, Mode: c.mode, Format: tar.FormatPAX,
				PAXRecords: map[string]string{"SCHILY.xattr.system.posix_acl_access": c.acl}}}, map[string]string{"f": "data"})
			_, err := commitTar(r, "main", p)
			if err == nil || !strings.Contains(err.Error(), strconv.Quote(c.entry)) || !strings.Contains(err.Error(), "xattr system.posix_acl_access") {
				t.Errorf("%s, %s: %v; want it refused, naming the entry and the xattr", mode, c.name, err)
			}
			if _, err := r.ReadRef("main"); err == nil {
				t.Errorf("%s, %s: the refused commit made the branch", mode, c.name)
			}
		}
		p := writeTar(t, []*tar.Header{{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"SCHILY.xattr.system.posix_acl_access": named}}}, map[string]string{"f": "data"})
		res, err := commitTar(r, "main", p)
		if err != nil {
			t.Fatalf("%s: an ACL that agrees with the mode: %v", mode, err)
		}
		if got := readCommit(t, r, res.Commit, false)["f"]; got.Xattrs["system.posix_acl_access"] != named {
			t.Errorf("%s: f's xattrs %v, want the ACL", mode, got.Xattrs)
		}
	}
}

// gnuHeader makes an old GNU format header block, with the sparse map's
// "more follows" flag set when extended.
func gnuHeader(name string, typ byte, size int, extended bool) []byte {
	b := make([]byte, 512)
	copy(b, name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = typ
	copy(b[257:], "ustar  \x00")
	copy(b[483:], "00000000000\x00") // a sparse file's real size
	if extended {
		b[482] = 1
	}
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// A GNU sparse entry whose sparse map is longer than archive/tar reads
// (1 MiB) fails the commit naming the entry, whether its name is in its
// header, longer than the header holds in a GNU long name before it, or,
// in PAX sparse format 1.0, in its GNU.sparse.name record.
func TestTarSparseMapTooLongNamesEntry(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	long := strings.Repeat("d/", 60) + "sparse"
	for _, c := range []struct {
		name string
		pax  bool
	}{{"sparse", false}, {long, false}, {"pax/sparse", true}} {
		name := c.name
		var b bytes.Buffer
		b.Write(gnuHeader("./", tar.TypeDir, 0, false))
		hdrName := name
		if len(name) > 100 {
			b.Write(gnuHeader("././@LongLink", tar.TypeGNULongName, len(name)+1, false))
			b.Write(append([]byte(name), make([]byte, 512-len(name))...))
			hdrName = name[:100]
		}
		if c.pax {
			var recs string
			for _, kv := range []string{"GNU.sparse.major=1", "GNU.sparse.minor=0", "GNU.sparse.name=" + name, "GNU.sparse.realsize=0"} {
				n := len(kv) + 3
				if len(strconv.Itoa(n)) > 1 {
					n++
				}
				recs += fmt.Sprintf("%d %s\n", n, kv)
			}
			b.Write(gnuHeader("PaxHeaders/sparse", tar.TypeXHeader, len(recs), false))
			b.Write(append([]byte(recs), make([]byte, 512-len(recs))...))
			// The map, in the entry's data: a count, then newlines
			// that never come.
			b.Write(gnuHeader("GNUSparseFile.0/sparse", tar.TypeReg, 2<<20, false))
			b.Write(append([]byte("1000000000\n"), make([]byte, 2<<20-11)...))
		} else {
			b.Write(gnuHeader(hdrName, tar.TypeGNUSparse, 0, true))
			ext := make([]byte, 512)
			ext[504] = 1 // more extension blocks follow, each over the last
			for range (1<<20)/505 + 1 {
				b.Write(ext)
			}
		}
		p := filepath.Join(t.TempDir(), "sparse.tar")
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := commitTar(r, "main", p)
		if err == nil || !strings.Contains(err.Error(), "sparse map too long") || !strings.Contains(err.Error(), strconv.Quote(name)) {
			t.Errorf("sparse map too long: %v; want an error naming entry %q", err, name)
		}
		if _, err := r.ReadRef("main"); err == nil {
			t.Error("the failed commit made the branch")
		}
	}
}

// A stat override that changes the mode of an entry with an ACL, read from
// disk or stored in a ref, so that the ACL is at odds with it fails the
// commit, naming the path and the xattr: a checkout would write another
// ACL, and mode, than the commit records. One that keeps the mode commits.
func TestStatOverrideAtOddsWithACLRefused(t *testing.T) {
	const userObj, user, groupObj, mask, other, none = 0x01, 0x02, 0x04, 0x10, 0x20, 0xffffffff
	acl := tarACL(userObj, 6, none, user, 6, 1234, groupObj, 4, none, mask, 6, none, other, 4, none)
	src := makeTree(t, testtree.Tree{"f": testtree.File("data", 0o664)})
	f := filepath.Join(src, "f")
	if err := syscall.Setxattr(f, "system.posix_acl_access", []byte(acl), 0); err != nil {
		t.Skipf("the test directory's filesystem takes no POSIX ACLs (CI needs one that does, ext4 or tmpfs): %v", err)
	}
	for _, mode := range []repo.Mode{repo.ModeArchive, repo.ModeBareUser} {
		r := newRepo(t, mode)
		odds, err := commit.ParseStatOverrides([]byte("=420 /f\n"))
		if err != nil {
			t.Fatal(err)
		}
		same, err := commit.ParseStatOverrides([]byte("=436 /f\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true, StatOverrides: odds,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), "xattr system.posix_acl_access") {
			t.Errorf("%s: %v; want it refused, naming %s and the xattr", mode, err, f)
		}
		if _, err := r.ReadRef("main"); err == nil {
			t.Errorf("%s: the refused commit made the branch", mode)
		}
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true, StatOverrides: same,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		if err != nil {
			t.Fatalf("%s: an override keeping the mode: %v", mode, err)
		}
		if got := readCommit(t, r, res.Commit, false)["f"]; got.Xattrs["system.posix_acl_access"] != acl {
			t.Errorf("%s: f's xattrs %v, want the ACL", mode, got.Xattrs)
		}
		_, err = commit.Commit(ctx, r, commit.Options{Branch: "other", NoSync: true, StatOverrides: odds,
			Sources: []commit.Source{{Kind: commit.SourceRef, Path: "main"}}})
		if err == nil || !strings.Contains(err.Error(), "/f") || !strings.Contains(err.Error(), "xattr system.posix_acl_access") {
			t.Errorf("%s, ref source: %v; want it refused, naming /f and the xattr", mode, err)
		}
	}
}

// A header archive/tar refuses for a negative size fails the commit with
// an error naming where, whatever header it is: naming the entry must not
// take the size as given.
func TestTarNegativeSizeRefused(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	for _, typ := range []byte{tar.TypeReg, tar.TypeXHeader, tar.TypeGNULongName} {
		h := gnuHeader("neg", typ, 0, false)
		copy(h[124:], "-0000000001")
		copy(h[148:], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
		p := filepath.Join(t.TempDir(), "neg.tar")
		if err := os.WriteFile(p, append(h, make([]byte, 1024)...), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := commitTar(r, "main", p)
		if err == nil || !strings.Contains(err.Error(), "header at byte 0") {
			t.Errorf("type %q: %v; want an error for the header at byte 0", typ, err)
		}
		if _, err := r.ReadRef("main"); err == nil {
			t.Errorf("type %q: the failed commit made the branch", typ)
		}
	}
}

// A POSIX ACL a tar gives only as text (`tar --acls` without --xattrs,
// bsdtar) is recorded as the system.posix_acl_* xattr a checkout writes,
// rather than dropped, with the mode setting it leaves; one that names a user or group without its number
// fails the commit, naming the entry and the record; the xattr, where the
// tar has both, wins; --no-xattrs drops both.
func TestTarTextACLKept(t *testing.T) {
	const userObj, user, groupObj, group, mask, other, none = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0xffffffff
	fileACL := tarACL(userObj, 6, none, user, 4, 1234, groupObj, 4, none, group, 6, 42, mask, 4, none, other, 4, none)
	dirACL := tarACL(userObj, 7, none, user, 5, 1000, groupObj, 5, none, mask, 5, none, other, 5, none)
	p := writeTar(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX},
		// libarchive's form: commas, the number after the permissions.
		{Name: "./f", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.acl.access": "user::rw-,group:adm:rw-:42,user:alice:r--:1234,group::r--,mask::r--,other::r--"}},
		// GNU tar's: lines, a number for a name the host lacks.
		{Name: "./d/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.acl.access":  "user::rwx\ngroup::r-x\nother::r-x\n",
			"SCHILY.acl.default": "user::rwx\nuser:1000:r-x\t#effective:r-x\ngroup::r-x\nmask::r-x\nother::r-x\n"}},
		// As bsdtar writes a file of mode 0664 with that ACL: the group
		// entry's bits in the mode, the mask's only in the ACL.
		{Name: "./lib", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.acl.access": "user::rw-,group::r--,other::r--,user:messagebus:rw-:100,mask::rw-"}},
		{Name: "./both", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.acl.access":                    "user::rw-\nuser:someone:rwx\ngroup::r--\nmask::rwx\nother::r--\n",
			"SCHILY.xattr.system.posix_acl_access": fileACL}},
	}, map[string]string{"./f": "data", "./both": "data", "./lib": "data"})
	libACL := tarACL(userObj, 6, none, user, 6, 100, groupObj, 4, none, mask, 6, none, other, 4, none)
	for _, mode := range []repo.Mode{repo.ModeArchive, repo.ModeBareUser} {
		r := newRepo(t, mode)
		res, err := commitTar(r, "main", p)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		tree := readCommit(t, r, res.Commit, false)
		if got := tree["f"].Xattrs; got["system.posix_acl_access"] != fileACL || len(got) != 1 {
			t.Errorf("%s: f's xattrs %q, want the access ACL %q", mode, got, fileACL)
		}
		ent, err := r.Lookup(res.Commit, "/d")
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.ReadDirMeta(ent.MetaID)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Xattrs) != 1 || m.Xattrs[0].Name != "system.posix_acl_default" || string(m.Xattrs[0].Value) != dirACL {
			t.Errorf("%s: d's xattrs %q, want only the default ACL %q", mode, m.Xattrs, dirACL)
		}
		if got := tree["lib"]; got.Xattrs["system.posix_acl_access"] != libACL || got.Mode != 0o664 {
			t.Errorf("%s: lib has mode %v, xattrs %q; want 0664, as extracting it leaves it, and the ACL %q", mode, got.Mode, got.Xattrs, libACL)
		}
		if got := tree["both"].Xattrs; got["system.posix_acl_access"] != fileACL || len(got) != 1 {
			t.Errorf("%s: both's xattrs %q, want the xattr's ACL %q", mode, got, fileACL)
		}
		res, err = commit.Commit(ctx, r, commit.Options{Branch: "nox", NoXattrs: true,
			Sources: []commit.Source{{Kind: commit.SourceTar, Path: p}}})
		if err != nil {
			t.Fatalf("%s: --no-xattrs: %v", mode, err)
		}
		if got := readCommit(t, r, res.Commit, false)["f"].Xattrs; len(got) != 0 {
			t.Errorf("%s: --no-xattrs: f's xattrs %q, want none", mode, got)
		}
	}
	named := writeTar(t, []*tar.Header{{Name: "./f", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"SCHILY.acl.access": "user::rw-\nuser:alice:r--\ngroup::r--\nmask::r--\nother::r--\n"}}},
		map[string]string{"./f": "data"})
	r := newRepo(t, repo.ModeArchive)
	if _, err := commitTar(r, "main", named); err == nil || !strings.Contains(err.Error(), `"./f"`) ||
		!strings.Contains(err.Error(), "SCHILY.acl.access") || !strings.Contains(err.Error(), `"alice"`) {
		t.Errorf("an ACL naming a user without a number: %v; want it refused, naming the entry, record and name", err)
	}
}

// A tar xattr that no Linux filesystem takes, a name over 255 bytes or a
// value over 64 KiB, fails the commit naming the entry, in an archive
// repository too (which could store it, for no checkout to write); the
// longest ones Linux allows are kept.
func TestTarXattrOverLinuxLimitsRefused(t *testing.T) {
	r := newRepo(t, repo.ModeArchive)
	longest := "user." + strings.Repeat("n", 250)
	for _, c := range []struct {
		name string
		recs map[string]string
		want string
	}{
		{"long name", map[string]string{"SCHILY.xattr." + longest + "n": "v"}, "of 256 bytes"},
		{"long value", map[string]string{"SCHILY.xattr.user.big": strings.Repeat("v", 64<<10+1)}, "xattr user.big has a value of 65537 bytes"},
		{"long libarchive value", map[string]string{"LIBARCHIVE.xattr.user.big": base64.StdEncoding.EncodeToString(make([]byte, 64<<10+1))}, "xattr user.big has a value of 65537 bytes"},
	} {
		p := writeTar(t, []*tar.Header{{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX, PAXRecords: c.recs}}, map[string]string{"f": "data"})
		_, err := commitTar(r, "main", p)
		if err == nil || !strings.Contains(err.Error(), `"f"`) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want it refused, naming the entry and saying %q", c.name, err, c.want)
		}
	}
	if _, err := r.ReadRef("main"); err == nil {
		t.Error("a refused commit made the branch")
	}
	p := writeTar(t, []*tar.Header{{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"SCHILY.xattr." + longest: "v", "SCHILY.xattr.user.big": strings.Repeat("v", 64<<10)}}}, map[string]string{"f": "data"})
	res, err := commitTar(r, "main", p)
	if err != nil {
		t.Fatalf("xattrs at Linux's limits: %v", err)
	}
	if got := readCommit(t, r, res.Commit, false)["f"]; len(got.Xattrs[longest]) != 1 || len(got.Xattrs["user.big"]) != 64<<10 {
		t.Errorf("f's xattrs lost or cut at Linux's limits: %d names", len(got.Xattrs))
	}
}

// xfsACL is tarACL's entries (tag, perm, id) as XFS stores the ACL and
// lists it to root as trusted.SGI_ACL_*: a big-endian count, then tag, id,
// perm and padding per entry.
func xfsACL(entries ...uint32) string {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(entries)/3))
	for i := 0; i+2 < len(entries); i += 3 {
		b = binary.BigEndian.AppendUint32(b, entries[i])
		b = binary.BigEndian.AppendUint32(b, entries[i+2])
		b = binary.BigEndian.AppendUint16(b, uint16(entries[i+1]))
		b = append(b, 0, 0)
	}
	return string(b)
}

// GNU tar run by root on XFS records each POSIX ACL twice, also under the
// trusted.SGI_ACL_* name XFS lists it by: the commit records the ACL
// once, as a commit of the directory does. Such a name without the ACL
// it would repeat, or whose value is not XFS's form of it (one set on
// another filesystem), is an xattr like others, which a commit of the
// directory keeps too.
func TestTarXFSACLAliasDropped(t *testing.T) {
	const userObj, user, groupObj, mask, other, none = 0x01, 0x02, 0x04, 0x10, 0x20, 0xffffffff
	entries := []uint32{userObj, 7, none, user, 5, 1234, groupObj, 5, none, mask, 5, none, other, 5, none}
	acl, xfs := tarACL(entries...), xfsACL(entries...)
	r := newRepo(t, repo.ModeArchive)
	p := writeTar(t, []*tar.Header{
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.xattr.system.posix_acl_access": acl, "SCHILY.xattr.trusted.SGI_ACL_FILE": xfs,
			"SCHILY.xattr.system.posix_acl_default": acl, "SCHILY.xattr.trusted.SGI_ACL_DEFAULT": xfs}},
		{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.xattr.trusted.SGI_ACL_FILE": "alone", "SCHILY.xattr.user.k": "v"}},
		{Name: "g", Typeflag: tar.TypeReg, Mode: 0o755, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.xattr.system.posix_acl_access": acl, "SCHILY.xattr.trusted.SGI_ACL_FILE": "set on ext4"}},
	}, map[string]string{"f": "data", "g": "data"})
	res, err := commitTar(r, "main", p)
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.Lookup(res.Commit, "/d")
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.ReadDirMeta(e.MetaID)
	if err != nil {
		t.Fatal(err)
	}
	if w := []repo.Xattr{{Name: "system.posix_acl_access", Value: []byte(acl)}, {Name: "system.posix_acl_default", Value: []byte(acl)}}; !cmp.Equal(w, m.Xattrs) {
		t.Errorf("d's xattrs %q, want %q", m.Xattrs, w)
	}
	got := readCommit(t, r, res.Commit, false)
	if w := map[string]string{"trusted.SGI_ACL_FILE": "alone", "user.k": "v"}; !cmp.Equal(w, got["f"].Xattrs) {
		t.Errorf("f's xattrs %q, want %q", got["f"].Xattrs, w)
	}
	if w := map[string]string{"system.posix_acl_access": acl, "trusted.SGI_ACL_FILE": "set on ext4"}; !cmp.Equal(w, got["g"].Xattrs) {
		t.Errorf("g's xattrs %q, want %q", got["g"].Xattrs, w)
	}
}

// A hardlink whose target the tar lacks links to that path in the tree of
// the sources before the tar, as extracting the tar over that tree would,
// and as OSTree does: a layer may link to a file of what it is laid over.
func TestTarHardlinkToEarlierSource(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	lower := testtree.Tree{
		"usr":         testtree.Dir(0o755),
		"usr/bin":     testtree.Dir(0o755),
		"usr/bin/git": testtree.File("git", 0o755),
		"etc":         testtree.Dir(0o755),
	}
	src := makeTree(t, lower)
	commitDir(t, r, "lower", src)
	layer := writeTar(t, []*tar.Header{
		{Name: "usr/bin/git-add", Typeflag: tar.TypeLink, Linkname: "usr/bin/git"},
		{Name: "./g", Typeflag: tar.TypeLink, Linkname: "/usr/bin/git"},
		{Name: "usr/bin/new", Typeflag: tar.TypeReg, Mode: 0o644},
	}, map[string]string{"usr/bin/new": "n"})
	want := testtree.Tree{
		"usr":             testtree.Dir(0o755),
		"usr/bin":         testtree.Dir(0o755),
		"usr/bin/git":     testtree.File("git", 0o755),
		"usr/bin/git-add": testtree.File("git", 0o755),
		"usr/bin/new":     testtree.File("n", 0o644),
		"g":               testtree.File("git", 0o755),
		"etc":             testtree.Dir(0o755),
	}
	for _, c := range []struct {
		name  string
		first commit.Source
	}{
		{"dir", commit.Source{Kind: commit.SourceDir, Path: src}},
		{"ref", commit.Source{Kind: commit.SourceRef, Path: "lower"}},
		{"base", commit.Source{Kind: commit.SourceBase, Path: "lower"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := commit.Commit(ctx, r, commit.Options{Branch: "main",
				Sources: []commit.Source{c.first, {Kind: commit.SourceTar, Path: layer}}})
			if err != nil {
				t.Fatal(err)
			}
			got := readCommit(t, r, res.Commit, false)
			delete(got, "")
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	for _, c := range []struct {
		name, target, want string
	}{
		{"missing in both", "usr/bin/nope", `hardlink to "usr/bin/nope", which neither the tar nor an earlier source has`},
		{"missing directory", "opt/x", `hardlink to "opt/x", which neither the tar nor an earlier source has`},
		{"directory below", "etc", `hardlink to "etc", which is a directory in an earlier source`},
		// The tar's usr/bin/git, skipped, is not the base's.
		{"skipped", "usr/bin/git", `hardlink to "usr/bin/git", which the skip list leaves out`},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := writeTar(t, []*tar.Header{
				{Name: "usr/bin/git", Typeflag: tar.TypeReg, Mode: 0o755},
				{Name: "h", Typeflag: tar.TypeLink, Linkname: c.target},
			}, map[string]string{"usr/bin/git": "new git"})
			var skip []string
			if c.name == "skipped" {
				skip = []string{"/usr/bin/git"}
			}
			_, err := commit.Commit(ctx, r, commit.Options{Branch: "bad", SkipList: skip,
				Sources: []commit.Source{{Kind: commit.SourceBase, Path: "lower"}, {Kind: commit.SourceTar, Path: bad}}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %s", err, c.want)
			}
		})
	}
}

// A regular entry whose name ends in "/" is a directory, as old tars
// wrote one and as GNU tar and OSTree extract it, not a file of that name;
// one with content, which either reading would lose, is refused.
func TestTarRegularEntryWithSlashIsDirectory(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	// archive/tar writes no such entry: the headers are made by hand.
	write := func(blocks ...[]byte) string {
		p := filepath.Join(t.TempDir(), "old.tar")
		if err := os.WriteFile(p, slices.Concat(append(blocks, make([]byte, 1024))...), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	data := make([]byte, 512)
	data[0] = 'f'
	res, err := commitTar(r, "main", write(gnuHeader("./", tar.TypeDir, 0, false),
		gnuHeader("./d/", tar.TypeReg, 0, false), gnuHeader("./d/f", tar.TypeReg, 1, false), data,
		gnuHeader("./e/", tar.TypeReg, 0, false)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/d", "/e"} {
		e, err := r.Lookup(res.Commit, p)
		if err != nil {
			t.Fatal(err)
		}
		if !e.IsDir() {
			t.Errorf("%s: a regular entry named %s/ is not a directory in the tree", p, p)
			continue
		}
		if m, err := r.ReadDirMeta(e.MetaID); err != nil || m.Mode != 0o644 {
			t.Errorf("%s: dirmeta %+v, %v; want the entry's mode 0644", p, m, err)
		}
	}
	_, err = commitTar(r, "full", write(gnuHeader("d/", tar.TypeReg, 1, false), data))
	if err == nil || !strings.Contains(err.Error(), `"d/"`) || !strings.Contains(err.Error(), "size 1") {
		t.Errorf("a regular entry d/ with content: %v; want it refused, naming it", err)
	}
}

// A contiguous file (type '7') is a regular file, as POSIX has readers
// without contiguous files take it and as GNU tar and OSTree do; named
// with a trailing "/", it is a directory as a regular entry is.
func TestTarContiguousFileIsRegular(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	data := make([]byte, 512)
	copy(data, "hi")
	var b []byte
	for _, blk := range [][]byte{gnuHeader("./", tar.TypeDir, 0, false), gnuHeader("./c", tar.TypeCont, 2, false), data,
		gnuHeader("./d/", tar.TypeCont, 0, false), make([]byte, 1024)} {
		b = append(b, blk...)
	}
	p := filepath.Join(t.TempDir(), "cont.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := commitTar(r, "main", p)
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.Lookup(res.Commit, "/c")
	if err != nil {
		t.Fatal(err)
	}
	h, rc, err := r.OpenFile(e.ID)
	if err != nil {
		t.Fatal(err)
	}
	content, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || h.Type != repo.TypeRegular || string(content) != "hi" {
		t.Errorf("/c: %s %q, %v; want a regular file holding \"hi\"", h.Type, content, err)
	}
	if d, err := r.Lookup(res.Commit, "/d"); err != nil || !d.IsDir() {
		t.Errorf("/d: %+v, %v; want a directory", d, err)
	}
}

// GNU tar's incremental archives (tar -g) give each directory type 'D',
// its data the names it held: it is a directory, as GNU tar and OSTree
// extract it, its data read past.
func TestTarGNUDumpDirIsDirectory(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	listing := func(s string) []byte {
		b := make([]byte, 512)
		copy(b, s)
		return b
	}
	content := listing("f")
	var b []byte
	for _, blk := range [][]byte{gnuHeader("./", 'D', 7, false), listing("Dsub\x00\x00\x00"),
		gnuHeader("./sub/", 'D', 4, false), listing("Yf\x00\x00"), gnuHeader("./sub/f", tar.TypeReg, 1, false), content,
		make([]byte, 1024)} {
		b = append(b, blk...)
	}
	p := filepath.Join(t.TempDir(), "incremental.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := commitTar(r, "main", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/sub"} {
		e, err := r.Lookup(res.Commit, p)
		if err != nil || !e.IsDir() {
			t.Errorf("%s: %+v, %v; want a directory", p, e, err)
			continue
		}
		if m, err := r.ReadDirMeta(e.MetaID); err != nil || m.Mode != 0o644 {
			t.Errorf("%s: dirmeta %+v, %v; want the entry's mode 0644", p, m, err)
		}
	}
	if e, err := r.Lookup(res.Commit, "/sub/f"); err != nil || e.IsDir() {
		t.Errorf("/sub/f: %+v, %v; want the file", e, err)
	}
}

// An extended header over 1 MiB, the most archive/tar reads (a name of a
// tree some 4000 directories deep), fails the commit saying so.
func TestTarExtendedHeaderOverLimit(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	body := " path=" + strings.Repeat(strings.Repeat("h", 250)+"/", 4300) + "f\n"
	n := len(body)
	for len(strconv.Itoa(n)+body) != n {
		n = len(strconv.Itoa(n) + body)
	}
	rec := strconv.Itoa(n) + body
	data := append([]byte(rec), make([]byte, (512-len(rec)%512)%512)...)
	content := make([]byte, 512)
	b := slices.Concat(gnuHeader("PaxHeader", tar.TypeXHeader, len(rec), false), data,
		gnuHeader("f", tar.TypeReg, 1, false), content, make([]byte, 1024))
	p := filepath.Join(t.TempDir(), "deep.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := commitTar(r, "main", p); !errors.Is(err, tar.ErrFieldTooLong) || !strings.Contains(err.Error(), "over 1 MiB") {
		t.Errorf("a tar with a %d-byte PAX header: %v; want it refused for the 1 MiB limit", len(rec), err)
	}
}
