package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/otree/otree/internal/hash"
	"github.com/otree/otree/repo"
)

// contents lists the contents of the regular files under dir, sorted.
func contents(t *testing.T, dir string, decode func([]byte) []byte) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got = append(got, string(decode(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// source makes a tree with a copy, a hardlink, an empty file, a symlink and
// a file large enough to be compressed streaming, and returns it with its
// distinct contents, sorted.
func source(t *testing.T) (string, []string) {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{
		"a":         "alpha",
		"sub/b":     strings.Repeat("otree ", 50000),
		"sub/c":     "",
		"sub/d/e/f": "deep",
		"sub/copy":  "alpha",
		"large":     strings.Repeat("a large file, compressed streaming\n", 40000),
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "sub/b"), filepath.Join(src, "hardlink")); err != nil {
		t.Fatal(err)
	}
	want := slices.Compact(contents(t, src, func(b []byte) []byte { return b }))
	if len(want) != 5 {
		t.Fatalf("the source has %d distinct contents, want 5", len(want))
	}

	return src, want
}

// The floor must do the work it stands for: every distinct content of a
// regular file lands in DST once, compressed with -zstd; hardlinks and
// copies of a content already written are not written again.
func TestFloorWritesEveryFile(t *testing.T) {
	src, want := source(t)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, level := range []string{"none", "default", "better"} {
		dst := filepath.Join(t.TempDir(), "dst")
		if err := run(src, dst, level, false); err != nil {
			t.Fatalf("-zstd=%s: %v", level, err)
		}
		got := contents(t, dst, func(b []byte) []byte {
			if level == "none" {
				return b
			}
			out, err := dec.DecodeAll(b, nil)
			if err != nil {
				t.Fatalf("-zstd=%s: %v", level, err)
			}
			return out
		})
		if !slices.Equal(got, want) {
			t.Errorf("-zstd=%s: DST holds %d files, want the %d distinct contents of SRC, each once", level, len(got), len(want))
		}
	}
	if err := run(src, filepath.Join(t.TempDir(), "x"), "fast", false); err == nil || !strings.Contains(err.Error(), "-zstd=fast") {
		t.Errorf("unknown level: got %v, want an error naming it", err)
	}
}

// With -objects each distinct content becomes an object as otree stores
// it: named by its BLAKE3 id, with its header in a user.otreemeta xattr and
// times zeroed (bare-user) or in front of the compressed content (archive),
// and nothing left in DST/tmp/.
func TestFloorObjects(t *testing.T) {
	src, want := source(t)
	headers := map[repo.ID][]byte{}
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, _ := os.ReadFile(p)
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		headers[repo.ID(hash.Sum(b))] = repo.AppendFileHeader(nil, &repo.FileHeader{Type: repo.TypeRegular,
			Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Size: uint64(len(b))})
		return nil
	})
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, level := range []string{"none", "better"} {
		dst := filepath.Join(t.TempDir(), "dst")
		if err := run(src, dst, level, true); err != nil {
			t.Fatalf("-zstd=%s -objects: %v", level, err)
		}
		var got []string
		err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(dst, p)
			id, err := repo.ParseID(strings.TrimSuffix(filepath.Base(p), ".file"))
			if err != nil || rel != fmt.Sprintf("%02x/%s.file", id[0], id) {
				t.Fatalf("-zstd=%s -objects: %s is not named as an object", level, rel)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			head := headers[id]
			if level == "none" {
				x := make([]byte, 256)
				n, err := unix.Getxattr(p, "user.otreemeta", x)
				if err != nil || !bytes.Equal(x[:n], head) {
					t.Errorf("-objects: %s: header xattr %x (%v), want %x", rel, x[:max(n, 0)], err, head)
				}
				var st unix.Stat_t
				if err := unix.Stat(p, &st); err != nil || st.Mtim.Nano() != 0 {
					t.Errorf("-objects: %s: mtime %d, want 0", rel, st.Mtim.Nano())
				}
			} else {
				if !bytes.HasPrefix(b, head) {
					t.Fatalf("-zstd=%s -objects: %s does not start with its header %x", level, rel, head)
				}
				if b, err = dec.DecodeAll(b[len(head):], nil); err != nil {
					t.Fatalf("-zstd=%s -objects: %s: %v", level, rel, err)
				}
			}
			if repo.ID(hash.Sum(b)) != id {
				t.Errorf("-zstd=%s -objects: %s holds content of another id", level, rel)
			}
			got = append(got, string(b))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("-zstd=%s -objects: DST holds %d objects, want the %d distinct contents of SRC, each once", level, len(got), len(want))
		}
	}
}

// TestFloorStat counts every entry once, the tree's top included, without
// following a symlink to a directory, and names a tree it cannot open.
func TestFloorStat(t *testing.T) {
	src, _ := source(t)
	outside := t.TempDir()
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(outside, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(src, "sub", "d", "out")); err != nil {
		t.Fatal(err)
	}
	var want int64
	if err := filepath.WalkDir(src, func(string, fs.DirEntry, error) error { want++; return nil }); err != nil {
		t.Fatal(err)
	}
	n, _, err := statTree(src)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("stat-ed %d entries, want %d", n, want)
	}
	missing := filepath.Join(src, "missing")
	if _, _, err := statTree(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("statTree of a missing tree: %v, want an error naming %s", err, missing)
	}
}
