package commit_test

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

	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
)

// Commit a directory to a branch, then commit it again: the second commit
// finds every object already stored and writes only the commit itself.
func ExampleCommit() {
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

	opts := commit.Options{
		Branch:  "uat",
		Subject: "First version",
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}},
	}
	first, err := commit.Commit(context.Background(), r, opts)
	if err != nil {
		log.Fatal(err)
	}
	opts.Subject = "Same tree again"
	opts.Timestamp = time.Now().Add(time.Second)
	second, err := commit.Commit(context.Background(), r, opts)
	if err != nil {
		log.Fatal(err)
	}
	head, _ := r.ReadRef("uat")
	fmt.Println("branch at second commit:", head == second.Commit)
	fmt.Println("parent is first commit:", second.Parent == first.Commit)
	fmt.Println("objects written the second time:", second.Stats.Objects)
	// Output:
	// branch at second commit: true
	// parent is first commit: true
	// objects written the second time: 1
}

// Read one file back from a commit: find its object by path, then stream
// its content (verified against the object id as it is read).
func Example_readFile() {
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "tree")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "demo.conf"), []byte("greeting=hello\n"), 0o644)

	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if _, err := commit.Commit(context.Background(), r, commit.Options{
		Branch:  "uat",
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}},
	}); err != nil {
		log.Fatal(err)
	}

	id, err := r.ResolveRev("uat")
	if err != nil {
		log.Fatal(err)
	}
	entry, err := r.Lookup(id, "/demo.conf")
	if err != nil {
		log.Fatal(err)
	}
	hdr, content, err := r.OpenFile(entry.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer content.Close()
	fmt.Printf("mode %o, %d bytes: ", hdr.Mode, hdr.Size)
	io.Copy(os.Stdout, content)
	// Output:
	// mode 644, 15 bytes: greeting=hello
}

// Commit a stored tree again with OSTree's modifiers: a stat override
// makes one file setuid, canonical permissions then mask every mode with
// 0755 (taking that setuid bit away again, as in OSTree) and the skip list
// leaves a directory out.
func ExampleParseStatOverrides() {
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "tree")
	os.MkdirAll(filepath.Join(src, "usr", "bin"), 0o755)
	os.MkdirAll(filepath.Join(src, "usr", "share", "doc"), 0o755)
	os.WriteFile(filepath.Join(src, "usr", "bin", "tool"), []byte("#!/bin/sh\n"), 0o775)
	os.Chmod(filepath.Join(src, "usr", "bin", "tool"), 0o775) // whatever the umask
	os.WriteFile(filepath.Join(src, "usr", "share", "doc", "README"), []byte("docs\n"), 0o644)

	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if _, err := commit.Commit(ctx, r, commit.Options{Branch: "base",
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}}); err != nil {
		log.Fatal(err)
	}

	overrides, err := commit.ParseStatOverrides([]byte("2048 /usr/bin/tool\n"))
	if err != nil {
		log.Fatal(err)
	}
	for _, canonical := range []bool{false, true} {
		res, err := commit.Commit(ctx, r, commit.Options{Branch: "release",
			StatOverrides: overrides, CanonicalPermissions: canonical, SkipList: []string{"/usr/share/doc"},
			Sources: []commit.Source{{Kind: commit.SourceRef, Path: "base"}}})
		if err != nil {
			log.Fatal(err)
		}
		tool, _ := r.Lookup(res.Commit, "/usr/bin/tool")
		h, _ := r.StatFile(tool.ID)
		_, docErr := r.Lookup(res.Commit, "/usr/share/doc")
		fmt.Printf("canonical=%v: /usr/bin/tool %04o, /usr/share/doc kept: %v\n", canonical, h.Mode, docErr == nil)
	}
	// Output:
	// canonical=false: /usr/bin/tool 4775, /usr/share/doc kept: false
	// canonical=true: /usr/bin/tool 0755, /usr/share/doc kept: false
}

// Commit a tar read from an io.Reader (here one built in memory; a
// download or a pipe would do as well), then list what the commit holds.
func ExampleCommit_tarReader() {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{
		{"etc/demo.conf", "greeting=hello\n"},
		{"usr/bin/tool", "#!/bin/sh\n"},
	} {
		tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body))})
		tw.Write([]byte(f.body))
	}
	if err := tw.Close(); err != nil {
		log.Fatal(err)
	}

	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	res, err := commit.Commit(context.Background(), r, commit.Options{
		Branch: "uat",
		// Path names the stream in errors.
		Sources: []commit.Source{{Kind: commit.SourceTar, Path: "demo.tar", Reader: &buf}},
	})
	if err != nil {
		log.Fatal(err)
	}

	c, err := r.ReadCommit(res.Commit)
	if err != nil {
		log.Fatal(err)
	}
	var list func(tree repo.ID, dir string)
	list = func(tree repo.ID, dir string) {
		t, err := r.ReadDirTree(tree)
		if err != nil {
			log.Fatal(err)
		}
		for _, f := range t.Files {
			fmt.Println(dir + f.Name)
		}
		for _, d := range t.Dirs {
			fmt.Println(dir + d.Name + "/")
			list(d.TreeID, dir+d.Name+"/")
		}
	}
	list(c.RootTree, "/")
	// Output:
	// /etc/
	// /etc/demo.conf
	// /usr/
	// /usr/bin/
	// /usr/bin/tool
}
