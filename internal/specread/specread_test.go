package specread

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// UnmarshalText reads an id as the golden files write it: hex, or "" for
// the zero id.
func (id *ID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*id = ID{}
		return nil
	}
	v, err := ParseID(string(b))
	*id = v
	return err
}

// pseudoRandom returns n reproducible bytes that zstd cannot shrink.
func pseudoRandom(n int, seed int64) string {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return string(b)
}

// sourceTree is a varied tree; withDevices adds what only bare and archive
// can store.
func sourceTree(t *testing.T, withDevices bool) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o755); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("long/", 400) + "target"            // over 1 KiB (§6.2)
	big := strings.Repeat("0123456789abcdef\n", 1<<20/17+1000) // over 1 MiB, compressible
	testtree.Create(t, src, testtree.Tree{
		"empty":          testtree.File("", 0o644),
		"small":          testtree.File("hello\n", 0o644),
		"small.hard":     {Link: "small"},
		"exe":            testtree.File("#!/bin/sh\necho hi\n", 0o755),
		"setuid":         {Content: "setuid\n", Mode: 0o755 | fs.ModeSetuid, UID: 1000, GID: 1000},
		"private":        {Content: "mine\n", Mode: 0o600, UID: 1000, GID: 100},
		"ro":             testtree.File("read only\n", 0o444),
		"other-writable": testtree.File("anyone\n", 0o666),
		"B":              testtree.File("upper\n", 0o644),
		"a.b":            testtree.File("dot\n", 0o644),
		"a-b":            testtree.File("dash\n", 0o644),
		"ä":              testtree.File("non-ASCII\n", 0o644),
		"compressible":   testtree.File(strings.Repeat("abc", 1000), 0o644),
		"random":         testtree.File(pseudoRandom(300, 1), 0o644),
		"big1":           testtree.File(big, 0o644),
		"big8":           testtree.File(pseudoRandom(9<<20, 2), 0o755),
		"xattrs":         {Content: "x\n", Mode: 0o644, Xattrs: map[string]string{"user.b": "2", "user.a": "1", "user.empty": ""}},
		"link":           testtree.Symlink("small"),
		"dangling":       testtree.Symlink("no/such/file"),
		"absolute":       testtree.Symlink("/etc/passwd"),
		"longlink":       testtree.Symlink(long),
		"d1":             testtree.Dir(0o755),
		"d1/d2":          testtree.Dir(0o750),
		"d1/d2/d3":       testtree.Dir(0o711),
		"d1/d2/d3/leaf":  testtree.File("deep\n", 0o640),
		"sticky":         testtree.Dir(0o1777),
		"sgid":           {Mode: fs.ModeDir | fs.ModeSetgid | 0o750, UID: 1000, GID: 1000},
		"sgid/f":         testtree.File("in sgid\n", 0o644),
		"ro-dir":         testtree.Dir(0o555),
		"emptydir":       testtree.Dir(0o700),
		"xdir":           {Mode: fs.ModeDir | 0o755, Xattrs: map[string]string{"user.dir": "yes"}},
	})
	if withDevices {
		must(t, os.Mkdir(filepath.Join(src, "dev"), 0o755))
		must(t, unix.Mknod(filepath.Join(src, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mknod(filepath.Join(src, "dev/loop0"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
		must(t, unix.Mknod(filepath.Join(src, "dev/fifo"), unix.S_IFIFO|0o620, 0))
		must(t, os.Chown(filepath.Join(src, "dev/loop0"), 0, 6))
	}
	return src
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sourceListing lists a tree as lstat and llistxattr see it, as the
// Entries a commit of it in mode records (§6, §13).
func sourceListing(t *testing.T, root, mode string) []Entry {
	t.Helper()
	var out []Entry
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		must(t, unix.Lstat(p, &st))
		rel, _ := filepath.Rel(root, p)
		e := Entry{Path: rel, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			e.Type = "dir"
		case unix.S_IFREG:
			e.Type, e.Size = "regular", uint64(st.Size)
			data, err := os.ReadFile(p)
			must(t, err)
			e.Sum = blake3.Sum256(data)
		case unix.S_IFLNK:
			e.Type, e.Mode = "symlink", 0o777
			e.Target, err = os.Readlink(p)
			must(t, err)
		case unix.S_IFCHR, unix.S_IFBLK:
			e.Type, e.Rdev = map[uint32]string{unix.S_IFCHR: "char", unix.S_IFBLK: "block"}[st.Mode&unix.S_IFMT], st.Rdev
		case unix.S_IFIFO:
			e.Type = "fifo"
		}
		if e.Type != "symlink" {
			buf := make([]byte, 4096)
			n, err := unix.Llistxattr(p, buf)
			must(t, err)
			for _, name := range strings.Split(string(buf[:n]), "\x00") {
				if name == "" {
					continue
				}
				v := make([]byte, 4096)
				m, err := unix.Lgetxattr(p, name, v)
				must(t, err)
				e.Xattrs = append(e.Xattrs, Xattr{name, v[:m]})
			}
			sort.Slice(e.Xattrs, func(i, j int) bool { return e.Xattrs[i].Name < e.Xattrs[j].Name })
		}
		if mode == ModeBareUserOnly {
			e.UID, e.GID, e.Xattrs = 0, 0, nil
			if e.Type != "symlink" {
				e.Mode &= 0o755
			}
		}
		out = append(out, e)
		return nil
	})
	must(t, err)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func commitTree(t *testing.T, mode, src string, opts commit.Options) (string, repo.ID) {
	t.Helper()
	m, err := repo.ParseMode(mode)
	must(t, err)
	dir := filepath.Join(t.TempDir(), mode)
	r, err := repo.Init(dir, repo.InitOptions{Mode: m})
	must(t, err)
	defer r.Close()
	opts.Sources = []commit.Source{{Kind: commit.SourceDir, Path: src}}
	if opts.Branch == "" {
		opts.Branch = "os/x86_64/stable"
	}
	res, err := commit.Commit(context.Background(), r, opts)
	must(t, err)
	must(t, r.SetRef("origin:os/x86_64/stable", res.Commit))
	must(t, r.SetAlias("os/stable", opts.Branch))
	return dir, res.Commit
}

var commitOpts = commit.Options{
	Subject:          "spec",
	Body:             "read by the spec\n",
	Timestamp:        time.Unix(1700000000, 0),
	NoParent:         true,
	Metadata:         repo.Metadata{{Key: "version", Value: []byte("1")}},
	DetachedMetadata: repo.Metadata{{Key: "note", Value: []byte("detached")}},
}

// ignoreIDs compares listings by content: ids are checked separately.
var ignoreIDs = cmp.FilterPath(func(p cmp.Path) bool {
	s := p.Last().String()
	return s == ".ID" || s == ".Meta"
}, cmp.Ignore())

func TestReaderAgreesWithOtree(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for owners, bare mode and device nodes")
	}
	plain := sourceTree(t, false)
	devices := sourceTree(t, true)
	commits := map[string]repo.ID{}
	for _, c := range []struct {
		mode, src, name string
	}{
		{ModeBare, plain, "plain"},
		{ModeBareUser, plain, "plain"},
		{ModeArchive, plain, "plain"},
		{ModeBareUserOnly, plain, "plain"},
		{ModeBare, devices, "devices"},
		{ModeArchive, devices, "devices"},
	} {
		t.Run(c.mode+"/"+c.name, func(t *testing.T) {
			opts := commitOpts
			if c.mode == ModeBareUserOnly {
				opts.DetachedMetadata = nil
			}
			dir, id := commitTree(t, c.mode, c.src, opts)
			commits[c.mode+"/"+c.name] = id
			r, err := Open(dir)
			must(t, err)
			if r.Mode != c.mode {
				t.Errorf("mode %q, want %q", r.Mode, c.mode)
			}
			refs, err := r.Refs()
			must(t, err)
			want := map[string]ID{"os/x86_64/stable": ID(id), "os/stable": ID(id), "origin:os/x86_64/stable": ID(id)}
			if diff := cmp.Diff(want, refs); diff != "" {
				t.Errorf("refs (-want +got):\n%s", diff)
			}
			for _, err := range r.Verify() {
				t.Errorf("verify: %v", err)
			}
			got, err := r.List(ID(id))
			must(t, err)
			if diff := cmp.Diff(sourceListing(t, c.src, c.mode), got, ignoreIDs); diff != "" {
				t.Errorf("listing (-source +reader):\n%s", diff)
			}
			cm, err := r.ReadCommit(ID(id))
			must(t, err)
			if cm.Subject != opts.Subject || cm.Body != opts.Body || cm.Timestamp != 1700000000 || cm.Parent != (ID{}) {
				t.Errorf("commit %+v", cm)
			}
			if opts.DetachedMetadata != nil {
				kv, err := r.ReadCommitMeta(ID(id))
				must(t, err)
				if diff := cmp.Diff([]KV{{"note", []byte("detached")}}, kv); diff != "" {
					t.Errorf("commitmeta (-want +got):\n%s", diff)
				}
			}
			if c.mode == ModeArchive {
				checkCompression(t, r, got)
			}
		})
	}
	// §4: how an object is stored never changes its id.
	if a, b, c := commits["bare/plain"], commits["bare-user/plain"], commits["archive/plain"]; a != b || b != c {
		t.Errorf("one tree, three commit ids: bare %s, bare-user %s, archive %s", a, b, c)
	}
	if a, b := commits["bare/devices"], commits["archive/devices"]; a != b {
		t.Errorf("devices: bare %s, archive %s", a, b)
	}
}

// checkCompression asserts the writer rules of §6.1.
func checkCompression(t *testing.T, r *Repo, list []Entry) {
	want := map[string]int{"small": 0, "random": 0, "compressible": 1, "big1": 1, "big8": 1, "link": 0, "dev/null": 0, "dev/fifo": 0}
	for _, e := range list {
		w, ok := want[e.Path]
		if !ok {
			continue
		}
		f, err := r.OpenFile(e.ID)
		must(t, err)
		if f.Comp != w {
			t.Errorf("%s: compression byte %d, want %d", e.Path, f.Comp, w)
		}
		f.Close()
	}
}

// find returns the listing's entry for path.
func find(t *testing.T, list []Entry, path string) Entry {
	for _, e := range list {
		if e.Path == path {
			return e
		}
	}
	t.Fatalf("no %s in listing", path)
	return Entry{}
}

func TestReaderReportsDamage(t *testing.T) {
	src := sourceTree(t, false)
	for _, mode := range []string{ModeBareUser, ModeArchive} {
		t.Run(mode, func(t *testing.T) {
			opts := commitOpts
			dir, id := commitTree(t, mode, src, opts)
			r, err := Open(dir)
			must(t, err)
			list, err := r.List(ID(id))
			must(t, err)
			small, big, d1 := find(t, list, "small"), find(t, list, "big8"), find(t, list, "d1")
			flip := func(p string, off int64) {
				f, err := os.OpenFile(p, os.O_RDWR, 0)
				must(t, err)
				defer f.Close()
				st, err := f.Stat()
				must(t, err)
				if off < 0 {
					off += st.Size()
				}
				b := make([]byte, 1)
				_, err = f.ReadAt(b, off)
				must(t, err)
				b[0] ^= 0x20
				_, err = f.WriteAt(b, off)
				must(t, err)
			}
			flip(r.ObjectPath(small.ID, "file"), -2)
			flip(r.ObjectPath(d1.ID, "dirtree"), 5)
			p := r.ObjectPath(big.ID, "file")
			st, err := os.Stat(p)
			must(t, err)
			must(t, os.Truncate(p, st.Size()/2))

			bad := map[ID]string{}
			for _, err := range r.Verify() {
				var oe *ObjectError
				if !errors.As(err, &oe) {
					t.Errorf("verify: %v is no ObjectError", err)
					continue
				}
				bad[oe.ID] = oe.Kind
			}
			want := map[ID]string{small.ID: "file", d1.ID: "dirtree", big.ID: "file"}
			if diff := cmp.Diff(want, bad); diff != "" {
				t.Errorf("objects reported bad (-want +got):\n%s", diff)
			}
			if _, err := r.List(ID(id)); err == nil {
				t.Error("listing a damaged commit succeeded")
			}
		})
	}
}

// golden is an entry of testdata/golden/objects.json.
type golden struct {
	Name, Kind string
	Value      json.RawMessage
	Encoding   string
	Content    string
	ID         ID
}

func TestGoldenObjects(t *testing.T) {
	data, err := os.ReadFile("../../testdata/golden/objects.json")
	must(t, err)
	var objs []golden
	must(t, json.Unmarshal(data, &objs))
	for _, o := range objs {
		enc, err := hex.DecodeString(o.Encoding)
		must(t, err)
		content, err := hex.DecodeString(o.Content)
		must(t, err)
		var got, want any
		switch o.Kind {
		case "file":
			h, n, err := DecodeFileHeader(enc, false)
			if err == nil && n != len(enc) {
				t.Errorf("%s: header uses %d of %d bytes", o.Name, n, len(enc))
			}
			if err == nil && !bytes.Equal(h.Encode(), enc) {
				t.Errorf("%s: re-encodes as %x", o.Name, h.Encode())
			}
			got, want = h, new(FileHeader)
		case "dirmeta":
			got, err = DecodeDirMeta(enc)
			want = new(DirMeta)
		case "dirtree":
			got, err = DecodeDirTree(enc)
			want = new(DirTree)
		case "commit":
			got, err = DecodeCommit(enc)
			want = new(Commit)
		case "commitmeta":
			var kv []KV
			kv, err = DecodeCommitMeta(enc)
			got, want = &kv, new([]KV)
			// The example holds signatures under the reserved key (§2.5).
			if len(kv) != 1 || kv[0].Key != "otree.sign.ed25519" || len(kv[0].Value)%64 != 0 {
				t.Errorf("%s: %q is no signature list", o.Name, kv)
			}
		case "tombstone-commit":
			var id ID
			id, err = DecodeTombstone(enc)
			got, want = &id, new(ID)
		default:
			t.Errorf("%s: unknown kind %s", o.Name, o.Kind)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", o.Name, err)
			continue
		}
		must(t, json.Unmarshal(o.Value, want))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: decoded (-golden +reader):\n%s", o.Name, diff)
		}
		if o.ID != (ID{}) {
			if id := Sum(append(enc, content...)); id != o.ID {
				t.Errorf("%s: hashes to %s, golden %s", o.Name, id, o.ID)
			}
		}
	}
}

// TestGoldenTree commits testdata/golden/tree.json with otree and checks
// that the reader finds the ids of tree-ids.json.
func TestGoldenTree(t *testing.T) {
	var spec struct {
		Branch, Subject, Body string
		Timestamp             int64
		Metadata              map[string]string
		RootMode              string `json:"root_mode"`
		Entries               []struct {
			Path, Type, Mode, Content, Repeat, Target, Link string
			Count                                           int
			Xattrs                                          map[string]string
		}
	}
	type ids struct {
		Commit ID
		Files  map[string]ID
		Dirs   map[string]struct{ Tree, Meta ID }
	}
	var want map[string]ids
	for name, v := range map[string]any{"tree.json": &spec, "tree-ids.json": &want} {
		data, err := os.ReadFile("../../testdata/golden/" + name)
		must(t, err)
		must(t, json.Unmarshal(data, v))
	}
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o755))
	tree := testtree.Tree{}
	for _, e := range spec.Entries {
		var m uint64
		for _, c := range e.Mode {
			m = m*8 + uint64(c-'0')
		}
		mode := fs.FileMode(m & 0o777)
		if m&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if m&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		if m&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		content := e.Content + strings.Repeat(e.Repeat, e.Count)
		switch e.Type {
		case "file":
			tree[e.Path] = testtree.Entry{Content: content, Mode: mode, Xattrs: e.Xattrs}
		case "dir":
			tree[e.Path] = testtree.Entry{Mode: fs.ModeDir | mode, Xattrs: e.Xattrs}
		case "symlink":
			tree[e.Path] = testtree.Symlink(e.Target)
		case "hardlink":
			tree[e.Path] = testtree.Entry{Link: e.Link}
		}
	}
	testtree.Create(t, src, tree)
	zero := uint32(0)
	md := repo.Metadata{}
	for k, v := range spec.Metadata {
		md = md.Set(k, []byte(v))
	}
	for _, c := range []struct {
		mode, ids string
		canon     bool
	}{
		{ModeBareUser, "owner0", false},
		{ModeArchive, "owner0", false},
		{ModeBareUser, "canonical", true},
		{ModeBareUserOnly, "canonical", false},
	} {
		t.Run(c.mode+"/"+c.ids, func(t *testing.T) {
			dir, id := commitTree(t, c.mode, src, commit.Options{
				Branch: spec.Branch, Subject: spec.Subject, Body: spec.Body, NoParent: true,
				Timestamp: time.Unix(spec.Timestamp, 0), Metadata: md,
				OwnerUID: &zero, OwnerGID: &zero, CanonicalPermissions: c.canon,
			})
			r, err := Open(dir)
			must(t, err)
			list, err := r.List(ID(id))
			must(t, err)
			got := ids{Commit: ID(id), Files: map[string]ID{}, Dirs: map[string]struct{ Tree, Meta ID }{}}
			for _, e := range list {
				if e.Type == "dir" {
					got.Dirs[e.Path] = struct{ Tree, Meta ID }{e.ID, e.Meta}
				} else {
					got.Files[e.Path] = e.ID
				}
			}
			if diff := cmp.Diff(want[c.ids], got); diff != "" {
				t.Errorf("ids (-golden +reader):\n%s", diff)
			}
		})
	}
}

// TestArchivePayloadForms stores one file's archive object in each form
// §6.1 allows or forbids, and checks that the reader and otree both read
// the allowed ones and both refuse the others.
func TestArchivePayloadForms(t *testing.T) {
	content := []byte(strings.Repeat("archive payload\n", 500))
	src := filepath.Join(t.TempDir(), "src")
	testtree.Create(t, filepath.Dir(src), testtree.Tree{"src": testtree.Dir(0o755), "src/f": testtree.File(string(content), 0o644)})
	dir, id := commitTree(t, ModeArchive, src, commitOpts)
	sr, err := Open(dir)
	must(t, err)
	list, err := sr.List(ID(id))
	must(t, err)
	f := find(t, list, "f")
	h := &FileHeader{Type: TypeRegular, Mode: 0o644, UID: f.UID, GID: f.GID, Size: uint64(len(content))}
	frame := func(b []byte, crc bool) []byte {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(crc))
		must(t, err)
		return enc.EncodeAll(b, nil)
	}
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'p', 'a', 'd'}
	half := len(content) / 2
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		name    string
		comp    byte
		payload []byte
		ok      bool
	}{
		{"raw", 0, content, true},
		{"one frame", 1, frame(content, false), true},
		{"with checksum", 1, frame(content, true), true},
		{"two frames", 1, cat(frame(content[:half], false), frame(content[half:], true)), true},
		{"skippable frames around", 1, cat(skippable, frame(content, false), skippable), true},
		{"empty frame after", 1, cat(frame(content, false), frame(nil, false)), true},
		{"raw, a byte more", 0, cat(content, []byte("x")), false},
		{"bytes after the stream", 1, cat(frame(content, false), []byte("xx")), false},
		{"a frame cut short after", 1, cat(frame(content, false), []byte{0x28, 0xb5, 0x2f, 0xfd}), false},
		{"more content after", 1, cat(frame(content, false), frame([]byte("x"), false)), false},
		{"stream cut short", 1, frame(content, false)[:50], false},
	} {
		t.Run(c.name, func(t *testing.T) {
			obj := cat(h.Encode(), []byte{c.comp}, c.payload)
			must(t, os.WriteFile(sr.ObjectPath(f.ID, "file"), obj, 0o644))
			readerErr := sr.VerifyFile(f.ID)
			r, err := repo.Open(dir)
			must(t, err)
			defer r.Close()
			_, rc, otreeErr := r.OpenFile(repo.ID(f.ID))
			if otreeErr == nil {
				_, otreeErr = io.ReadAll(rc)
				rc.Close()
			}
			if (readerErr == nil) != c.ok || (otreeErr == nil) != c.ok {
				t.Errorf("reader: %v; otree: %v; want success %v", readerErr, otreeErr, c.ok)
			}
		})
	}
}

// TestNonCanonical checks that the reader and otree refuse the same
// non-canonical encodings (§3), and accept the same edge cases.
func TestNonCanonical(t *testing.T) {
	x := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		must(t, err)
		return b
	}
	id := strings.Repeat("11", 32)
	for _, c := range []struct {
		name, kind, hex string
		ok              bool
	}{
		{"file", "file", "6601 01 a403 00 00 00 00 00 06", true},
		{"file, non-minimal uvarint", "file", "6601 01 a403 8000 00 00 00 00 06", false},
		{"file, uvarint 11 bytes", "file", "6601 01 a403 00 00 ffffffffffffffffff7f 00 00 00", false},
		{"file, uid above u32", "file", "6601 01 a403 8080808010 00 00 00 00 00", false},
		{"file, mode above 07777", "file", "6601 01 8020 00 00 00 00 00 00", false},
		{"file, type 6", "file", "6601 06 a403 00 00 00 00 00 00", false},
		{"file, version 2", "file", "6602 01 a403 00 00 00 00 00 06", false},
		{"symlink, mode 0755", "file", "6601 02 ed03 00 00 00 01 78 00 00", false},
		{"symlink, no target", "file", "6601 02 ff03 00 00 00 00 00 00", false},
		{"fifo, size", "file", "6601 05 a403 00 00 00 00 00 01", false},
		{"fifo, rdev", "file", "6601 05 a403 00 00 01 00 00 00", false},
		{"xattrs unsorted", "file", "6601 01 a403 00 00 00 00 02 01 62 00 01 61 00 00", false},
		{"xattr empty value", "file", "6601 01 a403 00 00 00 00 01 01 61 00 00", true},
		{"xattr name with NUL", "file", "6601 01 a403 00 00 00 00 01 02 6100 00 00", false},
		{"xattr count past the end", "file", "6601 01 a403 00 00 00 00 05 01 61 00 00", false},
		{"dirmeta", "dirmeta", "6d01 ed03 00 00 00", true},
		{"dirmeta, trailing byte", "dirmeta", "6d01 ed03 00 00 00 00", false},
		{"dirtree, empty", "dirtree", "7401 00 00", true},
		{"dirtree, name ..", "dirtree", "7401 01 022e2e" + id + " 00", false},
		{"dirtree, name with /", "dirtree", "7401 01 03612f62" + id + " 00", false},
		{"dirtree, file and dir", "dirtree", "7401 01 0161" + id + " 01 0161" + id + id, false},
		{"dirtree, files unsorted", "dirtree", "7401 02 0162" + id + " 0161" + id + " 00", false},
		{"dirtree, count too big", "dirtree", "7401 02 0161" + id + " 00", false},
		{"commit", "commit", "6301" + id + "000000006553f100 00 00" + id + id + "00", true},
		{"commit, metadata key with NUL", "commit", "6301" + id + "000000006553f100 00 00" + id + id + "01 026100 00", true},
		{"commit, empty metadata key", "commit", "6301" + id + "000000006553f100 00 00" + id + id + "01 00 00", false},
		{"commit, short timestamp", "commit", "6301" + id + "0000", false},
		{"tombstone", "tombstone-commit", "7801" + id, true},
		{"tombstone of zero", "tombstone-commit", "7801" + strings.Repeat("00", 32), false},
	} {
		b := x(c.hex)
		var mine, theirs error
		switch c.kind {
		case "file":
			var n, m int
			_, n, mine = DecodeFileHeader(b, false)
			_, m, theirs = repo.DecodeFileHeader(b)
			if mine == nil && theirs == nil && (n != len(b) || m != len(b)) {
				t.Errorf("%s: headers end at %d and %d of %d bytes", c.name, n, m, len(b))
			}
		case "dirmeta":
			_, mine = DecodeDirMeta(b)
			_, theirs = repo.DecodeDirMeta(b)
		case "dirtree":
			_, mine = DecodeDirTree(b)
			_, theirs = repo.DecodeDirTree(b)
		case "commit":
			_, mine = DecodeCommit(b)
			_, theirs = repo.DecodeCommit(b)
		case "tombstone-commit":
			_, mine = DecodeTombstone(b)
			_, theirs = repo.DecodeTombstone(b)
		}
		if (mine == nil) != c.ok || (theirs == nil) != c.ok {
			t.Errorf("%s: reader %v, otree %v; want success %v", c.name, mine, theirs, c.ok)
		}
	}
}

// TestConfigParsing checks §7's parsing rules against otree's parser.
func TestConfigParsing(t *testing.T) {
	for _, c := range []struct {
		text string
		keys []string
	}{
		{"[core]\nmode=bare-user\nrepo_version=1\n", []string{"core.mode", "core.repo_version"}},
		{"# c\n; c\n  [ core ]  \r\n mode = archive \r\n[core]\nmode=bare\n", []string{"core.mode"}},
		{"[remote \"org.example.Os\"]\nurl=http://x\nxa.title=T\n", []string{`remote "org.example.Os".url`, `remote "org.example.Os".xa.title`}},
		{"[remote \"flathub\"]\nxa.title=F=G\n", []string{`remote "flathub".xa.title`}},
		{"[core]\na=\\s two\\tx\\\\y\\q\\\n", []string{"core.a"}},
		{"[\u00a0x]\n\fa\u3000 =\f\u00a0v\u0085\v\n\vb=1\n", []string{"\u00a0x.a\u3000", "\u00a0x.\vb"}},
		{"mode=bare\n", nil},
		{"[core\n", nil},
		{"[]\n", nil},
		{"[ ]\n", nil},
		{"[a[b]\n", nil},
		{"[core]\njunk\n", nil},
		{"[core]\nk=" + strings.Repeat("v", 64<<10-2) + "\n", []string{"core.k"}},
		{"[core]\nk=" + strings.Repeat("v", 64<<10-1) + "\n", nil},
	} {
		mine, err := ParseConfig([]byte(c.text))
		theirs, terr := repo.ParseConfig([]byte(c.text))
		if (err == nil) != (terr == nil) || (err == nil) != (c.keys != nil) {
			t.Errorf("%q: reader %v, otree %v", c.text, err, terr)
			continue
		}
		for _, k := range c.keys {
			v, ok := mine.Get(k)
			w, wok := theirs.Get(k)
			if v != w || ok != wok || !ok {
				t.Errorf("%q: %s is %q (%v) to the reader, %q (%v) to otree", c.text, k, v, ok, w, wok)
			}
		}
	}
}
