package remote_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// Serve an archive repository over HTTP and pull a branch from it into
// another repository, then pull again: the second pull finds everything
// already there and fetches nothing.
func ExamplePull() {
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "demo.conf"), []byte("greeting=hello\n"), 0o644)

	// The server side: an archive repository with a summary.
	server, err := repo.Init(filepath.Join(tmp, "server"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	c, err := commit.Commit(context.Background(), server, commit.Options{
		Branch: "os/stable", Subject: "v1",
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: tree}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := remote.UpdateSummary(context.Background(), server, remote.SummaryOptions{}); err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(server.Path())))
	defer srv.Close()

	// The client side.
	client, err := repo.Init(filepath.Join(tmp, "client"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if _, err := remote.AddRemote(client, remote.Remote{Name: "origin", URL: srv.URL}, remote.AddOptions{}); err != nil {
		log.Fatal(err)
	}
	res, err := remote.Pull(context.Background(), client, remote.PullOptions{Remote: "origin"})
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range res.Refs {
		fmt.Println("updated", u.Ref, u.New == c.Commit)
	}
	fmt.Println("objects fetched:", res.ObjectsFetched)

	res, err = remote.Pull(context.Background(), client, remote.PullOptions{Remote: "origin"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("objects fetched again:", res.ObjectsFetched)
	// Output:
	// updated origin:os/stable true
	// objects fetched: 5
	// objects fetched again: 0
}
