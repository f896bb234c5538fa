package delta_test

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
	"github.com/otree/otree/repo/remote"
)

// Generate a static delta between two versions of a tree on the server and
// apply it, offline, to a repository that has the first version: the second
// arrives complete, and its large file as a patch a fraction of its size.
func ExampleGenerate() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	os.MkdirAll(tree, 0o755)
	// 700 KB of random hex: compression alone would halve it at best.
	rng := rand.New(rand.NewPCG(1, 2))
	var sb0 strings.Builder
	for range 20000 {
		fmt.Fprintf(&sb0, "%016x%016x\n", rng.Uint64(), rng.Uint64())
	}
	big := sb0.String()
	build := func(r *repo.Repo, content string) repo.ID {
		os.WriteFile(filepath.Join(tree, "big.conf"), []byte(content), 0o644)
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "os/stable",
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: tree}}})
		if err != nil {
			log.Fatal(err)
		}
		return res.Commit
	}
	server, err := repo.Init(filepath.Join(tmp, "server"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	v1 := build(server, big)
	v2 := build(server, big+"one more line\n")
	sb, err := delta.Generate(ctx, server, delta.GenerateOptions{From: v1, To: v2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("delta:", sb.Name == delta.Name{From: v1, To: v2})
	var size uint64
	for _, p := range sb.Parts {
		size += p.Size
	}
	fmt.Println("parts smaller than a tenth of the file:", size < uint64(len(big))/10)

	// A client that has v1 (here copied with PullLocal).
	client, err := repo.Init(filepath.Join(tmp, "client"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if _, err := remote.PullLocal(ctx, client, server.Path(), remote.PullOptions{Refs: []string{v1.String()}}); err != nil {
		log.Fatal(err)
	}
	if _, err := delta.ApplyOffline(ctx, client, delta.Path(server, sb.Name), delta.ApplyOfflineOptions{}); err != nil {
		log.Fatal(err)
	}
	has, _ := client.HasObject(repo.KindCommit, v2)
	fmt.Println("client has v2:", has)
	// Output:
	// delta: true
	// parts smaller than a tenth of the file: true
	// client has v2: true
}
