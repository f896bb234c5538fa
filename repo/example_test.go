package repo_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

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
