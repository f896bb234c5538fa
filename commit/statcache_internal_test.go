package commit

import (
	"fmt"
	"hash/maphash"
	"testing"
)

// A directory's records are found by name through refIndex, reused from
// one directory to the next by a walk's worker: each name of the last
// directory indexed is found at its index, and no other name, also none
// of an earlier, larger directory's.
func TestRefIndexFindsExactlyTheIndexedNames(t *testing.T) {
	x := refIndex{seed: maphash.MakeSeed()}
	var earlier []fileRef
	for _, n := range []int{300, 0, 1, 2, 7, 64, 5} {
		refs := make([]fileRef, n)
		for i := range refs {
			refs[i].name = fmt.Appendf(nil, "zsyscall_linux_%04d.go", i)
		}
		x.index(refs)
		for i := range refs {
			if got := x.find(refs, string(refs[i].name)); got != i {
				t.Errorf("%d names: find(%q) = %d, want %d", n, refs[i].name, got, i)
			}
		}
		for _, name := range []string{"", "zsyscall_linux_", fmt.Sprintf("zsyscall_linux_%04d.go", n), "zsyscall_linux_0000.g"} {
			if got := x.find(refs, name); got != -1 {
				t.Errorf("%d names: find(%q) = %d, want -1", n, name, got)
			}
		}
		for _, e := range earlier {
			if got := x.find(refs, string(e.name)); got >= 0 && string(refs[got].name) != string(e.name) {
				t.Errorf("%d names: find(%q) of an earlier directory = %d (%q)", n, e.name, got, refs[got].name)
			}
		}
		earlier = refs
	}
}

// BenchmarkRefIndex looks up every name of directories of 4 to 1,024
// entries whose names share long prefixes, listed in another order than
// the records', as a re-commit of an unchanged tree does.
func BenchmarkRefIndex(b *testing.B) {
	var dirs [][]fileRef
	for n := 4; n <= 1024; n *= 2 {
		refs := make([]fileRef, n)
		for i := range refs {
			refs[i].name = fmt.Appendf(nil, "zsyscall_linux_%04d.go", i)
		}
		dirs = append(dirs, refs)
	}
	x := refIndex{seed: maphash.MakeSeed()}
	for b.Loop() {
		for _, refs := range dirs {
			x.index(refs)
			for i := len(refs) - 1; i >= 0; i-- {
				if x.find(refs, string(refs[i].name)) != i {
					b.Fatal("not found")
				}
			}
		}
	}
}
