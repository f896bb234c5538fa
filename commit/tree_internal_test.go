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
	"strings"
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
		p := writeGroupsTar(t, order, groups)
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

// writeGroupsTar writes the entries of groups, in order, to a tar named
// name: each regular file holds its own name.
func writeGroupsTar(t *testing.T, name string, groups [][]*tar.Header) string {
	t.Helper()
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
	p := filepath.Join(t.TempDir(), name+".tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Laying a source over another merges each directory's entries in one
// pass, where inserting the upper's names one at a time among the lower's
// moved these along for each; the tree is the one both sources in one
// make, the upper's files winning.
func TestOverlayShiftsNoEntries(t *testing.T) {
	const n = 3000
	var lower, upper, both [][]*tar.Header
	for i := range 2 * n {
		h := func() []*tar.Header {
			return []*tar.Header{{Name: fmt.Sprintf("big/f%05d", i), Typeflag: tar.TypeReg, Mode: 0o644}}
		}
		sub := func() []*tar.Header {
			return []*tar.Header{{Name: fmt.Sprintf("subs/s%05d/", i), Typeflag: tar.TypeDir, Mode: 0o750},
				{Name: fmt.Sprintf("subs/s%05d/x", i), Typeflag: tar.TypeReg, Mode: 0o600}}
		}
		// Interleaved: every name of the upper goes between two of the
		// lower's. Every tenth is in both: the upper's wins.
		if i%2 == 0 || i%10 == 1 {
			lower = append(lower, h(), sub())
		}
		if i%2 == 1 {
			upper = append(upper, h(), sub())
		}
		both = append(both, h(), sub())
	}
	upper[0][0].Mode = 0o755 // f00001, in both: the upper's mode is what the tree has
	both[2][0].Mode = 0o755
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	root := func(branch string, tars ...string) repo.ID {
		opts := Options{Branch: branch}
		for _, p := range tars {
			opts.Sources = append(opts.Sources, Source{Kind: SourceTar, Path: p})
		}
		before := shifted.Load()
		res, err := Commit(context.Background(), r, opts)
		if err != nil {
			t.Fatal(err)
		}
		if k := shifted.Load() - before; k > n {
			t.Errorf("%s: entries shifted %d times, laying %d files and directories among as many", branch, k, n)
		}
		c, err := r.ReadCommit(res.Commit)
		if err != nil {
			t.Fatal(err)
		}
		return c.RootTree
	}
	want := root("both", writeGroupsTar(t, "both", both))
	if got := root("overlay", writeGroupsTar(t, "lower", lower), writeGroupsTar(t, "upper", upper)); got != want {
		t.Errorf("overlaid: tree %s, one tar of both gave %s", got, want)
	}
}

// mergeSorted keeps the names sorted and gives a name in both the upper
// list's value, whether or not the upper list adds names.
func TestMergeSorted(t *testing.T) {
	for _, c := range []struct {
		a, b, want string // names, each with its value in upper case for b
	}{
		{"ace", "", "ace"},
		{"", "bd", "BD"},
		{"ace", "bd", "aBcDe"},
		{"ace", "ce", "aCE"},
		{"ace", "abcf", "ABCeF"},
		{"b", "a", "Ab"},
	} {
		split := func(s string, upper bool) ([]string, []string) {
			var names, vals []string
			for _, r := range s {
				v := string(r)
				if upper {
					v = strings.ToUpper(v)
				}
				names, vals = append(names, string(r)), append(vals, v)
			}
			return names, vals
		}
		an, av := split(c.a, false)
		bn, bv := split(c.b, true)
		names, vals := mergeSorted(an, av, bn, bv)
		if got := strings.Join(vals, ""); got != c.want || !slices.IsSorted(names) || strings.ToLower(got) != strings.Join(names, "") {
			t.Errorf("merging %q into %q: names %q, values %q; want values %q", c.b, c.a, names, vals, c.want)
		}
	}
}
