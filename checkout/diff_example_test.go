package checkout_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
)

// exampleCommit commits the directory src to branch uat with owners 0:0.
func exampleCommit(r *repo.Repo, src string, ts int64) repo.ID {
	zero := uint32(0)
	res, err := commit.Commit(context.Background(), r, commit.Options{
		Branch: "uat", Subject: "example", Timestamp: time.Unix(ts, 0),
		OwnerUID: &zero, OwnerGID: &zero,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}},
	})
	if err != nil {
		log.Fatal(err)
	}
	return res.Commit
}

// Compare two commits of a branch: a changed file, a file whose mode alone
// changed, a removed file and an added directory.
func ExampleDiff() {
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	src := filepath.Join(tmp, "tree")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.Chmod(src, 0o755)
	os.WriteFile(filepath.Join(src, "etc", "demo.conf"), []byte("level=1\n"), 0o644)
	os.WriteFile(filepath.Join(src, "etc", "motd"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(src, "etc", "old"), []byte("bye\n"), 0o644)
	first := exampleCommit(r, src, 1700000000)

	os.WriteFile(filepath.Join(src, "etc", "demo.conf"), []byte("level=2\n"), 0o644)
	os.Chmod(filepath.Join(src, "etc", "motd"), 0o600)
	os.Remove(filepath.Join(src, "etc", "old"))
	os.MkdirAll(filepath.Join(src, "srv", "www"), 0o755)
	os.WriteFile(filepath.Join(src, "srv", "www", "index.html"), []byte("<p>hi</p>\n"), 0o644)
	second := exampleCommit(r, src, 1700000060)

	changes, err := checkout.Diff(context.Background(), r, first, second, checkout.DiffOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range changes {
		fmt.Printf("%s    %s %v\n", c.Kind, c.Path, c.Fields)
	}
	s := checkout.Summarize(changes)
	fmt.Printf("files: %d added, %d modified, %d removed\n", s.FilesAdded, s.FilesModified, s.FilesDeleted)
	// Output:
	// M    /etc/demo.conf [content]
	// M    /etc/motd [mode]
	// D    /etc/old []
	// A    /srv []
	// A    /srv/www []
	// A    /srv/www/index.html []
	// files: 1 added, 2 modified, 1 removed
}

// Export a commit to a tar in memory and list its entries.
func ExampleExport() {
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	src := filepath.Join(tmp, "tree")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.Chmod(src, 0o755)
	os.WriteFile(filepath.Join(src, "etc", "demo.conf"), []byte("level=1\n"), 0o640)
	os.Symlink("etc/demo.conf", filepath.Join(src, "demo"))
	id := exampleCommit(r, src, 1700000000)

	var buf bytes.Buffer
	if err := checkout.Export(context.Background(), r, id, &buf, checkout.ExportOptions{}); err != nil {
		log.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		link := ""
		if h.Linkname != "" {
			link = " -> " + h.Linkname
		}
		fmt.Printf("%c %04o %d:%d mtime=%d %s%s\n", h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.Unix(), h.Name, link)
	}
	// Output:
	// 5 0755 0:0 mtime=0 ./
	// 2 0777 0:0 mtime=0 demo -> etc/demo.conf
	// 5 0755 0:0 mtime=0 etc/
	// 0 0640 0:0 mtime=0 etc/demo.conf
}
