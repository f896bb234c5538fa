package delta

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/repo"
)

// Both ways writeSingle names its file, unnamed (O_TMPFILE, then linkat)
// and named (a temporary name, then a rename that does not replace, for
// filesystems such as FAT that have neither), give a file Open reads back
// whole, leave nothing else beside it, and never replace an existing file.
func TestWriteSingleNaming(t *testing.T) {
	c := &repo.Commit{Subject: "x", RootTree: repo.Sum([]byte("t")), RootMeta: repo.Sum([]byte("m"))}
	enc := c.Encode()
	sb := &Superblock{Name: Name{To: repo.Sum(enc)}, Commit: enc}
	parts := []string{"first part", "second"}
	dir := t.TempDir()
	for i, p := range parts {
		os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), []byte(p), 0o644)
		sb.Parts = append(sb.Parts, Part{Size: uint64(len(p)), RawSize: 1, Sum: repo.Sum([]byte(p)),
			Objects: []ObjectRef{{Kind: repo.KindFile, ID: repo.Sum([]byte(p + "object"))}}})
	}
	raw := sb.Encode()
	for _, unnamed := range []bool{true, false} {
		out := t.TempDir()
		final := filepath.Join(out, "d")
		if err := writeSingle(dir, final, raw, []byte("sig"), len(parts), true, unnamed); err != nil {
			t.Fatal(err)
		}
		o, err := Open(final)
		if err != nil {
			t.Fatalf("unnamed=%v: %v", unnamed, err)
		}
		var got []string
		for i := range parts {
			err := o.fetch(context.Background(), strconv.Itoa(i), func(r io.Reader) error {
				b, err := io.ReadAll(r)
				got = append(got, string(b))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		o.Close()
		if diff := cmp.Diff(parts, got); diff != "" || string(o.Signatures) != "sig" {
			t.Errorf("unnamed=%v: parts read back differ (-want +got):\n%s; signatures %q", unnamed, diff, o.Signatures)
		}
		if fi, _ := os.Stat(final); fi.Mode().Perm() != 0o644 {
			t.Errorf("unnamed=%v: mode %v", unnamed, fi.Mode())
		}
		err = writeSingle(dir, final, raw, nil, len(parts), true, unnamed)
		if err == nil || !strings.Contains(err.Error(), final) {
			t.Errorf("unnamed=%v: writing over an existing file: %v", unnamed, err)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 1 {
			t.Errorf("unnamed=%v: %d entries beside the file, want none", unnamed, len(ents)-1)
		}
		if fi, _ := os.Stat(final); fi.Size() != int64(len(fileMagic)+2+len(raw)+1+3+len("first partsecond")) {
			t.Errorf("unnamed=%v: the refused write changed the file (%d bytes)", unnamed, fi.Size())
		}
	}
}
