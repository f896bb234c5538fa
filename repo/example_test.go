package repo_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
)

// Create a repository, then open it again as another program would.
func ExampleInit() {
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)

	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		log.Fatal(err)
	}
	r.Close()

	r, err = repo.Open(filepath.Join(tmp, "repo"))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	fmt.Println("mode:", r.Mode())
	refs, _ := r.ListRefs("")
	fmt.Println("refs:", len(refs))
	// Output:
	// mode: archive
	// refs: 0
}

// An alias is a branch that stands for another: reading it, or committing
// to it, uses the branch it names.
func ExampleRepo_SetAlias() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	src := filepath.Join(tmp, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "motd"), []byte("hello\n"), 0o644)
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "os/x86_64/stable", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err != nil {
		log.Fatal(err)
	}

	lock, err := r.LockRefs(ctx)
	if err != nil {
		log.Fatal(err)
	}
	err = r.SetAlias("os/stable", "os/x86_64/stable")
	lock.Unlock()
	if err != nil {
		log.Fatal(err)
	}
	id, _ := r.ReadRef("os/stable")
	fmt.Println("same commit:", id == res.Commit)
	aliases, _ := r.ListAliases("")
	for _, a := range aliases {
		fmt.Println(a.Name, "->", a.Target)
	}
	// Output:
	// same commit: true
	// os/stable -> os/x86_64/stable
}

// Keep only each branch's newest commit, free what older ones alone used,
// then check that what is left is whole: what `otree prune --refs-only
// --depth=0` and `otree fsck` do.
func ExampleRepo_Prune() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	src := filepath.Join(tmp, "src")
	os.MkdirAll(src, 0o755)
	for _, version := range []string{"1", "2", "3"} {
		os.WriteFile(filepath.Join(src, "version"), []byte(version+"\n"), 0o644)
		if _, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}}); err != nil {
			log.Fatal(err)
		}
	}

	pruned, err := r.Prune(ctx, repo.PruneOptions{RefsOnly: true, Depth: 0})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("commits deleted:", len(pruned.Commits))
	fmt.Println("file objects deleted:", pruned.ByKind["file"].Objects)

	report, err := r.Fsck(ctx, repo.FsckOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("fsck ok:", report.OK(), "commits:", report.Objects["commit"])
	// Output:
	// commits deleted: 2
	// file objects deleted: 2
	// fsck ok: true commits: 1
}
