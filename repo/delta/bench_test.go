package delta_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
)

// BenchmarkGenerate generates the delta of an update that appends a line
// to 5% of 2000 small text files in 40 directories, as a release of a
// source tree does: 100 file patches and 41 dirtree patches, each against
// its base as a zstd dictionary.
func BenchmarkGenerate(b *testing.B) {
	a, c := testtree.Tree{}, testtree.Tree{}
	for i := range 2000 {
		p := fmt.Sprintf("d%02d/f%04d.go", i%40, i)
		content := text[i*97%len(text)/2:][:1000+i*37%20000]
		a[p] = testtree.File(content, 0o644)
		if i%20 == 0 {
			content += "// changed\n"
		}
		c[p] = testtree.File(content, 0o644)
	}
	r := newRepo(b, repo.ModeArchive)
	from := commitTree(b, r, "main", a, false)
	to := commitTree(b, r, "main", c, true)
	dir := b.TempDir()
	n := 0
	for b.Loop() {
		n++
		sb, err := delta.Generate(ctx, r, delta.GenerateOptions{From: from, To: to, NoSync: true,
			Dir: filepath.Join(dir, fmt.Sprint(n))})
		if err != nil {
			b.Fatal(err)
		}
		if len(sb.Parts) == 0 {
			b.Fatal("no part")
		}
	}
}
