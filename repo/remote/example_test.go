package remote_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"github.com/otree/otree/repo/sign"
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

// Carry a signed branch to an offline machine on a USB stick: CreateUSB
// writes it to the stick, FindRemotes on the other machine finds it there
// (Mounts stands in for the machine's mount table), and PullFound pulls
// it, verified with the keys of the machine's remote of that collection.
func ExampleCreateUSB() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "demo.conf"), []byte("greeting=hello\n"), 0o644)
	pub, key, _ := ed25519.GenerateKey(nil)

	// The build machine: a repository of the collection org.example.Os.
	build, err := repo.Init(filepath.Join(tmp, "build"), repo.InitOptions{Mode: repo.ModeArchive, CollectionID: "org.example.Os"})
	if err != nil {
		log.Fatal(err)
	}
	defer build.Close()
	c, err := commit.Commit(ctx, build, commit.Options{
		Branch: "os/stable", Subject: "v1", SignKeys: []ed25519.PrivateKey{key},
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: tree}},
	})
	if err != nil {
		log.Fatal(err)
	}
	stick := filepath.Join(tmp, "stick")
	os.Mkdir(stick, 0o755)
	ref := remote.CollectionRef{CollectionID: "org.example.Os", Ref: "os/stable"}
	if _, err := remote.CreateUSB(ctx, build, stick, []remote.CollectionRef{ref}, remote.USBOptions{}); err != nil {
		log.Fatal(err)
	}

	// The offline machine: its remote of the collection verifies
	// signatures with the build machine's public key.
	machine, err := repo.Init(filepath.Join(tmp, "machine"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		log.Fatal(err)
	}
	defer machine.Close()
	_, err = remote.AddRemote(machine, remote.Remote{Name: "origin", URL: "https://updates.example/os"}, remote.AddOptions{Set: map[string]string{
		"collection-id": "org.example.Os", "sign-verify": "true", "verification-ed25519-key": sign.EncodeKey(pub),
	}})
	if err != nil {
		log.Fatal(err)
	}
	found, err := remote.FindRemotes(ctx, machine, []remote.CollectionRef{ref}, remote.FindOptions{
		Finders: []string{remote.FinderMount}, Mounts: []string{stick},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, fr := range found.Remotes {
		fmt.Println(fr.Finder, fr.Remote, fr.Refs[0].CollectionRef)
	}
	pulled, err := remote.PullFound(ctx, machine, found, []remote.CollectionRef{ref}, remote.PullOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pulled[0].Ref, pulled[0].New == c.Commit)
	// Output:
	// mount origin (org.example.Os, os/stable)
	// origin:os/stable true
}
