package repo_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
	"golang.org/x/sys/unix"
)

// Golden vectors pin the encoding: a change that alters any id shows up
// here. Regenerate deliberately with `go test ./repo/ -run Golden -update`
// and say why in the change.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const goldenDir = "../testdata/golden"

// goldenObject is one entry of testdata/golden/objects.json.
type goldenObject struct {
	Name     string          `json:"name"`
	Kind     string          `json:"kind"`
	Value    json.RawMessage `json:"value"`             // the Go value, for readers of the file
	Encoding string          `json:"encoding"`          // hex: the canonical encoding (a file's header)
	Content  *string         `json:"content,omitempty"` // hex: a file's content
	ID       string          `json:"id,omitempty"`      // hex: absent for commitmeta and tombstone-commit
}

// vector is a golden object as a Go value.
type vector struct {
	name    string
	kind    repo.Kind
	value   any
	enc     []byte
	content []byte
	id      repo.ID
}

func goldenVectors() []vector {
	var vs []vector
	file := func(name string, h *repo.FileHeader, content string) repo.ID {
		h.Size = 0
		if h.Type == repo.TypeRegular {
			h.Size = uint64(len(content))
		}
		id := repo.FileID(h, []byte(content))
		vs = append(vs, vector{name, repo.KindFile, h, repo.AppendFileHeader(nil, h), []byte(content), id})
		return id
	}
	meta := func(name string, kind repo.Kind, v any, enc []byte) repo.ID {
		id := repo.Sum(enc)
		vs = append(vs, vector{name: name, kind: kind, value: v, enc: enc, id: id})
		return id
	}
	hello := file("file-regular", &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644}, "hello\n")
	tool := file("file-regular-setuid-xattrs", &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o4755, UID: 1000, GID: 1000,
		Xattrs: []repo.Xattr{{Name: "security.capability", Value: []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, {Name: "user.comment", Value: []byte("golden")}}},
		"#!/bin/sh\nexit 0\n")
	empty := file("file-empty", &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o600}, "")
	link := file("file-symlink", &repo.FileHeader{Type: repo.TypeSymlink, Mode: 0o777, Target: "../lib/libc.so.6"}, "")
	null := file("file-chardev", &repo.FileHeader{Type: repo.TypeCharDevice, Mode: 0o666, Rdev: 0x103}, "")
	file("file-blockdev", &repo.FileHeader{Type: repo.TypeBlockDevice, Mode: 0o660, GID: 6, Rdev: 0x800}, "")
	fifo := file("file-fifo", &repo.FileHeader{Type: repo.TypeFIFO, Mode: 0o644, UID: 0xffffffff, GID: 65534}, "")

	dm := &repo.DirMeta{Mode: 0o755}
	dir755 := meta("dirmeta-0755", repo.KindDirMeta, dm, dm.Encode())
	dm2 := &repo.DirMeta{Mode: 0o1777, UID: 0, GID: 1000, Xattrs: []repo.Xattr{{Name: "user.a", Value: []byte("1")}, {Name: "user.b", Value: []byte{}}}}
	sticky := meta("dirmeta-sticky-xattrs", repo.KindDirMeta, dm2, dm2.Encode())

	et := &repo.DirTree{}
	emptyTree := meta("dirtree-empty", repo.KindDirTree, et, et.Encode())
	sub := &repo.DirTree{
		Files: []repo.FileEntry{{Name: "fifo", ID: fifo}, {Name: "null", ID: null}},
		Dirs:  []repo.DirEntry{{Name: "empty", TreeID: emptyTree, MetaID: dir755}},
	}
	subTree := meta("dirtree-dev", repo.KindDirTree, sub, sub.Encode())
	root := &repo.DirTree{
		Files: []repo.FileEntry{{Name: "B", ID: hello}, {Name: "a", ID: hello}, {Name: "empty", ID: empty}, {Name: "link", ID: link}, {Name: "tool", ID: tool}, {Name: "\u00e4", ID: hello}},
		Dirs:  []repo.DirEntry{{Name: "dev", TreeID: subTree, MetaID: dir755}, {Name: "tmp", TreeID: emptyTree, MetaID: sticky}},
	}
	rootTree := meta("dirtree-root", repo.KindDirTree, root, root.Encode())

	c1 := &repo.Commit{Timestamp: 1700000000, Subject: "Initial commit", RootTree: rootTree, RootMeta: dir755,
		Metadata: repo.Metadata{}.Set("version", []byte("1.0"))}
	first := meta("commit-root", repo.KindCommit, c1, c1.Encode())
	c2 := &repo.Commit{Parent: first, Timestamp: 1700003600, Subject: "Second", Body: "A body\nover two lines.\n",
		RootTree: subTree, RootMeta: sticky,
		Metadata: repo.Metadata{}.Set("version", []byte("1.1")).Set("a", []byte{}).Set("binary", []byte{0, 0xff})}
	child := meta("commit-child", repo.KindCommit, c2, c2.Encode())

	// The reserved signature key (FORMAT.md §2.5), so that the example is
	// what a signed commit's commitmeta looks like.
	cm := repo.Metadata{}.Set(sign.MetadataKey, bytes.Repeat([]byte{0x5a}, 64))
	vs = append(vs, vector{name: "commitmeta", kind: repo.KindCommitMeta, value: cm, enc: repo.EncodeCommitMeta(cm)})
	vs = append(vs, vector{name: "tombstone-commit", kind: repo.KindTombstoneCommit, value: child, enc: repo.EncodeTombstone(child)})
	return vs
}

func (v vector) golden(t *testing.T) goldenObject {
	val, err := json.Marshal(v.value)
	if err != nil {
		t.Fatal(err)
	}
	g := goldenObject{Name: v.name, Kind: v.kind.String(), Value: val, Encoding: hex.EncodeToString(v.enc)}
	if v.kind == repo.KindFile {
		c := hex.EncodeToString(v.content)
		g.Content = &c
	}
	if v.kind.ContentAddressed() {
		g.ID = v.id.String()
	}
	return g
}

// decodeGolden decodes the encoding of a golden object of the given kind.
func decodeGolden(kind repo.Kind, enc []byte) (any, error) {
	switch kind {
	case repo.KindFile:
		h, n, err := repo.DecodeFileHeader(enc)
		if err == nil && n != len(enc) {
			return nil, io.ErrShortBuffer
		}
		return h, err
	case repo.KindDirMeta:
		return repo.DecodeDirMeta(enc)
	case repo.KindDirTree:
		return repo.DecodeDirTree(enc)
	case repo.KindCommit:
		return repo.DecodeCommit(enc)
	case repo.KindTombstoneCommit:
		return repo.DecodeTombstone(enc)
	default:
		return repo.DecodeCommitMeta(enc)
	}
}

func TestGoldenObjects(t *testing.T) {
	path := filepath.Join(goldenDir, "objects.json")
	var want []goldenObject
	vs := goldenVectors()
	for _, v := range vs {
		want = append(want, v.golden(t))
	}
	if *update {
		writeGolden(t, path, want)
	}
	var got []goldenObject
	readGolden(t, path, &got)
	if len(got) != len(want) {
		t.Fatalf("%s has %d objects, the test %d (run with -update after a deliberate change)", path, len(got), len(want))
	}
	for i, g := range got {
		w, v := want[i], vs[i]
		if d := cmp.Diff(w, g, compactJSON); d != "" {
			t.Errorf("%s differs from %s (-computed +golden):\n%s", w.Name, path, d)
		}
		// The golden bytes must decode to the value and hash to the id.
		enc, err := hex.DecodeString(g.Encoding)
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		dec, err := decodeGolden(v.kind, enc)
		if err != nil {
			t.Errorf("%s: golden encoding does not decode: %v", g.Name, err)
			continue
		}
		if d := cmp.Diff(v.value, dec, equateEmpty); d != "" {
			t.Errorf("%s: golden encoding decodes to something else (-want +got):\n%s", g.Name, d)
		}
		if g.ID == "" {
			continue
		}
		parts := [][]byte{enc}
		if g.Content != nil {
			c, _ := hex.DecodeString(*g.Content)
			parts = append(parts, c)
		}
		if id := repo.Sum(parts...).String(); id != g.ID {
			t.Errorf("%s: golden bytes hash to %s, golden id is %s", g.Name, id, g.ID)
		}
	}
}

// compactJSON compares JSON values regardless of layout.
var compactJSON = cmp.Transformer("json", func(m json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, m); err != nil {
		return string(m)
	}
	return b.String()
})

func writeGolden(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readGolden(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// goldenTree is testdata/golden/tree.json.
type goldenTree struct {
	Branch    string            `json:"branch"`
	Subject   string            `json:"subject"`
	Body      string            `json:"body"`
	Timestamp int64             `json:"timestamp"`
	Metadata  map[string]string `json:"metadata"`
	RootMode  string            `json:"root_mode"`
	Entries   []struct {
		Path    string            `json:"path"`
		Type    string            `json:"type"`
		Mode    string            `json:"mode"`
		Content string            `json:"content"`
		Repeat  string            `json:"repeat"`
		Count   int               `json:"count"`
		Target  string            `json:"target"`
		Link    string            `json:"link"`
		Xattrs  map[string]string `json:"xattrs"`
	} `json:"entries"`
}

// treeIDs is what one commit of the golden tree must produce.
type treeIDs struct {
	Commit string            `json:"commit"`
	Files  map[string]string `json:"files"` // path -> file object id
	Dirs   map[string]dirIDs `json:"dirs"`  // path ("." for the root) -> ids
}

type dirIDs struct {
	Tree string `json:"tree"`
	Meta string `json:"meta"`
}

// goldenTreeIDs is testdata/golden/tree-ids.json.
type goldenTreeIDs struct {
	Owner0    treeIDs `json:"owner0"`    // OwnerUID=OwnerGID=0
	Canonical treeIDs `json:"canonical"` // CanonicalPermissions
}

func octal(t *testing.T, s string) uint32 {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		t.Fatalf("bad mode %q in tree.json", s)
	}
	return uint32(v)
}

func fileMode(m uint32) fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

// createGoldenTree builds tree.json's tree in a fresh directory.
func createGoldenTree(t *testing.T, g *goldenTree) string {
	t.Helper()
	tree := testtree.Tree{}
	declared := map[string]map[string]string{}
	for _, e := range g.Entries {
		declared[e.Path] = e.Xattrs
		switch e.Type {
		case "dir":
			tree[e.Path] = testtree.Entry{Mode: fs.ModeDir | fileMode(octal(t, e.Mode)), Xattrs: e.Xattrs}
		case "file":
			content := e.Content
			if e.Repeat != "" {
				content = strings.Repeat(e.Repeat, e.Count)
			}
			tree[e.Path] = testtree.Entry{Mode: fileMode(octal(t, e.Mode)), Content: content, Xattrs: e.Xattrs}
		case "symlink":
			tree[e.Path] = testtree.Symlink(e.Target)
		case "hardlink":
			tree[e.Path] = testtree.Entry{Link: e.Link}
			declared[e.Path] = declared[e.Link]
		default:
			t.Fatalf("tree.json: unknown type %q", e.Type)
		}
	}
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // let TempDir's cleanup remove read-only directories
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	testtree.Create(t, dir, tree)
	if err := os.Chmod(dir, fs.FileMode(octal(t, g.RootMode))); err != nil {
		t.Fatal(err)
	}
	// A host that labels files (SELinux) or adds other xattrs would change
	// the ids: such a host cannot check this vector.
	for p := range tree {
		buf := make([]byte, 4096)
		n, err := unix.Llistxattr(filepath.Join(dir, p), buf)
		if err != nil {
			continue
		}
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if _, ok := declared[p][name]; name != "" && !ok {
				t.Skipf("the filesystem adds xattr %s to %s; ids would differ", name, p)
			}
		}
	}
	return dir
}

// readTreeIDs walks a commit, reading (and so verifying) every object.
func readTreeIDs(t *testing.T, r *repo.Repo, id repo.ID) treeIDs {
	t.Helper()
	c, err := r.ReadCommit(id)
	if err != nil {
		t.Fatal(err)
	}
	out := treeIDs{Commit: id.String(), Files: map[string]string{}, Dirs: map[string]dirIDs{}}
	var walk func(path string, tree, meta repo.ID)
	walk = func(path string, tree, meta repo.ID) {
		out.Dirs[path] = dirIDs{Tree: tree.String(), Meta: meta.String()}
		if _, err := r.ReadDirMeta(meta); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		dt, err := r.ReadDirTree(tree)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		join := func(name string) string {
			if path == "." {
				return name
			}
			return path + "/" + name
		}
		for _, f := range dt.Files {
			_, rc, err := r.OpenFile(f.ID)
			if err != nil {
				t.Fatalf("%s: %v", join(f.Name), err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s in %s repository: %v", join(f.Name), r.Mode(), err)
			}
			out.Files[join(f.Name)] = f.ID.String()
		}
		for _, d := range dt.Dirs {
			walk(join(d.Name), d.TreeID, d.MetaID)
		}
	}
	walk(".", c.RootTree, c.RootMeta)
	return out
}

func TestGoldenTree(t *testing.T) {
	var g goldenTree
	readGolden(t, filepath.Join(goldenDir, "tree.json"), &g)
	src := createGoldenTree(t, &g)

	modes := []repo.Mode{repo.ModeBareUser, repo.ModeArchive}
	if os.Getuid() == 0 {
		modes = append(modes, repo.ModeBare)
	}
	zero := uint32(0)
	variants := []struct {
		name  string
		modes []repo.Mode
		set   func(*commit.Options)
	}{
		{"owner0", modes, func(o *commit.Options) { o.OwnerUID, o.OwnerGID = &zero, &zero }},
		{"canonical", append([]repo.Mode{repo.ModeBareUserOnly}, modes...), func(o *commit.Options) { o.CanonicalPermissions = true }},
	}
	got := map[string]treeIDs{}
	for _, v := range variants {
		for _, mode := range v.modes {
			r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			o := commit.Options{Branch: g.Branch, Subject: g.Subject, Body: g.Body, Timestamp: time.Unix(g.Timestamp, 0),
				NoParent: true, NoSync: true, NoStatCache: true, Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}}
			for k, val := range g.Metadata {
				o.Metadata = o.Metadata.Set(k, []byte(val))
			}
			v.set(&o)
			res, err := commit.Commit(context.Background(), r, o)
			if err != nil {
				t.Fatalf("%s into %s: %v", v.name, mode, err)
			}
			if ref, err := r.ReadRef(g.Branch); err != nil || ref != res.Commit {
				t.Errorf("%s into %s: ref %s = %s, %v; want %s", v.name, mode, g.Branch, ref, err, res.Commit)
			}
			ids := readTreeIDs(t, r, res.Commit)
			if prev, ok := got[v.name]; ok {
				if d := cmp.Diff(prev, ids); d != "" {
					t.Errorf("%s: a %s repository gives other ids than a %s one (-first +this):\n%s", v.name, mode, v.modes[0], d)
				}
				continue
			}
			got[v.name] = ids
		}
	}
	computed := goldenTreeIDs{Owner0: got["owner0"], Canonical: got["canonical"]}
	path := filepath.Join(goldenDir, "tree-ids.json")
	if *update {
		writeGolden(t, path, computed)
	}
	var want goldenTreeIDs
	readGolden(t, path, &want)
	if d := cmp.Diff(want, computed, equateEmpty); d != "" {
		t.Errorf("ids differ from %s (-golden +computed):\n%s", path, d)
	}
	if want.Owner0.Commit == want.Canonical.Commit {
		t.Error("canonical permissions did not change the commit")
	}
}
