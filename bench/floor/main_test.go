package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
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

// The floor must do the work it stands for: every distinct content of a
// regular file lands in DST once, compressed with -zstd; hardlinks and
// copies of a content already written are not written again.
func TestFloorWritesEveryFile(t *testing.T) {
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

	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, level := range []string{"none", "default", "better"} {
		dst := filepath.Join(t.TempDir(), "dst")
		if err := run(src, dst, level); err != nil {
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
	if err := run(src, filepath.Join(t.TempDir(), "x"), "fast"); err == nil || !strings.Contains(err.Error(), "-zstd=fast") {
		t.Errorf("unknown level: got %v, want an error naming it", err)
	}
}
