package sign_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

// Sign a commit while it is made, sign it again with a second key, and
// verify it against a set of trusted public keys.
func ExampleSignCommit() {
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc", "demo.conf"), []byte("greeting=hello\n"), 0o644)
	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	// A release key signs the commit in the commit's own transaction.
	_, release, _ := ed25519.GenerateKey(rand.Reader)
	res, err := commit.Commit(context.Background(), r, commit.Options{
		Branch: "os/stable", Subject: "v1", SignKeys: []ed25519.PrivateKey{release},
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: tree}},
	})
	if err != nil {
		log.Fatal(err)
	}

	// A QA key countersigns later; the release key again adds nothing.
	qaPub, qa, _ := ed25519.GenerateKey(rand.Reader)
	added, err := sign.SignCommit(context.Background(), r, res.Commit, qa, release)
	if err != nil {
		log.Fatal(err)
	}
	sigs, _ := sign.CommitSignatures(r, res.Commit)
	fmt.Println("added:", added, "signatures:", len(sigs))

	// A client that trusts only the QA key accepts the commit.
	pub, err := sign.VerifyCommit(r, res.Commit, []ed25519.PublicKey{qaPub})
	fmt.Println("verified by the QA key:", err == nil && pub.Equal(qaPub))

	// One that trusts another key refuses it.
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	_, err = sign.VerifyCommit(r, res.Commit, []ed25519.PublicKey{otherPub})
	fmt.Println("refused with an untrusted key:", errors.Is(err, sign.ErrBadSignature))
	// Output:
	// added: 1 signatures: 2
	// verified by the QA key: true
	// refused with an untrusted key: true
}
