package commit

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/otree/otree/repo"
)

// A directory filled unsorted, as a tar fills it, ends up as one kept
// sorted all along, whatever order its entries came in, replaced and
// removed.
func TestUnsortedDirEndsAsSorted(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{3}))
	sorted, unsorted := &dir{}, &dir{anyOrder: true}
	for step := range 5000 {
		name := fmt.Sprintf("n%03d", rng.IntN(300))
		id := repo.Sum([]byte{byte(step), byte(step >> 8)})
		for _, d := range []*dir{sorted, unsorted} {
			switch op := step % 5; {
			case op < 2:
				d.setFile(name, id)
			case op < 4:
				d.setDir(name, &dir{meta: id})
			case d.findFile(name) >= 0:
				d.removeFile(d.findFile(name))
			case d.findDir(name) >= 0:
				d.removeDir(d.findDir(name))
			}
		}
		if f, g := sorted.findFile(name) >= 0, unsorted.findFile(name) >= 0; f != g {
			t.Fatalf("step %d: file %q found %v sorted, %v unsorted", step, name, f, g)
		}
		if f, g := sorted.findDir(name) >= 0, unsorted.findDir(name) >= 0; f != g {
			t.Fatalf("step %d: directory %q found %v sorted, %v unsorted", step, name, f, g)
		}
	}
	unsorted.sortEntries()
	if unsorted.anyOrder || unsorted.fileAt != nil || unsorted.dirAt != nil {
		t.Error("sortEntries left the directory marked unsorted")
	}
	if !slices.Equal(sorted.fileNames, unsorted.fileNames) || !slices.Equal(sorted.fileIDs, unsorted.fileIDs) {
		t.Errorf("files differ:\nsorted   %q\nunsorted %q", sorted.fileNames, unsorted.fileNames)
	}
	if !slices.Equal(sorted.dirNames, unsorted.dirNames) {
		t.Errorf("directories differ:\nsorted   %q\nunsorted %q", sorted.dirNames, unsorted.dirNames)
	}
	for i := range sorted.dirs {
		if sorted.dirs[i].meta != unsorted.dirs[i].meta {
			t.Errorf("directory %q: the wrong one kept", sorted.dirNames[i])
		}
	}
}

// A tar whose entries come in reverse or random order, as GNU tar writes
// them in readdir's, is read without shifting entries along to keep each
// directory sorted, which costs time quadratic in a directory's size, and
// gives the tree the same tar in sorted order gives.
func TestTarOutOfOrderShiftsNoEntries(t *testing.T) {
	const files, dirs = 3000, 500
	// Groups of entries, each in the order a tar needs; the groups are
	// what gets reordered.
	var groups [][]*tar.Header
	for i := range files {
		groups = append(groups, []*tar.Header{{Name: fmt.Sprintf("big/f%05d", i), Typeflag: tar.TypeReg, Mode: 0o644}})
	}
	for i := range dirs {
		d := fmt.Sprintf("subs/s%04d/", i)
		groups = append(groups, []*tar.Header{{Name: d, Typeflag: tar.TypeDir, Mode: 0o750},
			{Name: d + "x", Typeflag: tar.TypeReg, Mode: 0o600}})
		// Hardlinks whose targets may come later.
		groups = append(groups, []*tar.Header{{Name: fmt.Sprintf("links/l%04d", i), Typeflag: tar.TypeLink,
			Linkname: fmt.Sprintf("big/f%05d", i*5)}})
	}
	slices.SortFunc(groups, func(a, b []*tar.Header) int {
		if a[0].Name < b[0].Name {
			return -1
		}
		return 1
	})
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	commitOrder := func(order string, groups [][]*tar.Header) repo.ID {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, g := range groups {
			for _, h := range g {
				body := []byte(h.Name)
				if h.Typeflag == tar.TypeReg {
					h.Size = int64(len(body))
				}
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				if h.Typeflag == tar.TypeReg {
					tw.Write(body)
				}
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), order+".tar")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		before := shifted.Load()
		res, err := Commit(context.Background(), r, Options{Branch: order, Sources: []Source{{Kind: SourceTar, Path: p}}})
		if err != nil {
			t.Fatal(err)
		}
		// Entries the tar gives in sorted order go at the end of their
		// directory; out of order, each went before the ones already
		// there, which moved: about files²/2 for the reversed tar.
		if n := shifted.Load() - before; n > files {
			t.Errorf("%s order: entries shifted %d times for a tar of %d files in one directory", order, n, files)
		}
		c, err := r.ReadCommit(res.Commit)
		if err != nil {
			t.Fatal(err)
		}
		return c.RootTree
	}
	want := commitOrder("sorted", groups)
	slices.Reverse(groups)
	if got := commitOrder("reverse", groups); got != want {
		t.Errorf("reverse order: tree %s, sorted order gave %s", got, want)
	}
	rand.New(rand.NewChaCha8([32]byte{4})).Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	if got := commitOrder("random", groups); got != want {
		t.Errorf("random order: tree %s, sorted order gave %s", got, want)
	}
}
