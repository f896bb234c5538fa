package checkout_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
)

// Commit a directory to a bare-user repository, then check it out in user
// mode: the file is a hardlink of the repository's object.
func ExampleCheckout() {
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "tree")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc", "demo.conf"), []byte("greeting=hello\n"), 0o644)

	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	res, err := commit.Commit(context.Background(), r, commit.Options{
		Branch:  "uat",
		Subject: "First version",
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}},
	})
	if err != nil {
		log.Fatal(err)
	}

	dest := filepath.Join(tmp, "checkout")
	st, err := checkout.Checkout(context.Background(), r, res.Commit, dest, checkout.Options{UserMode: true})
	if err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dest, "etc", "demo.conf"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))
	fmt.Printf("%d file, %d hardlinked, %d directories\n", st.Files, st.Hardlinked, st.Dirs)
	// Output:
	// greeting=hello
	// 1 file, 1 hardlinked, 2 directories
}
