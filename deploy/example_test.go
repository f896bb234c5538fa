package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/deploy"
)

// writeOS writes a tiny bootable tree: a kernel where deploy looks for
// it, and a default /etc.
func writeOS(dir, motd string) {
	for p, c := range map[string]string{
		"usr/lib/modules/6.1.0/vmlinuz": "kernel",
		"usr/etc/motd":                  motd,
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
}

// Lay out a sysroot, commit two versions of an OS to its repository,
// deploy them, and roll back to the first.
func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "sysroot")
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "sysroot")
	if err := deploy.InitFS(root); err != nil {
		log.Fatal(err)
	}
	s, err := deploy.Open(root, deploy.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.OSInit(context.Background(), "demo"); err != nil {
		log.Fatal(err)
	}

	for _, motd := range []string{"version one\n", "version two\n"} {
		src := filepath.Join(tmp, "tree")
		os.RemoveAll(src)
		writeOS(src, motd)
		if _, err := commit.Commit(ctx, s.Repo(), commit.Options{Branch: "demo/stable",
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}}); err != nil {
			log.Fatal(err)
		}
		res, err := s.Deploy(ctx, "demo/stable", deploy.DeployOptions{Kargs: []string{"root=LABEL=root"}})
		if err != nil {
			log.Fatal(err)
		}
		for _, c := range res.Etc {
			fmt.Println("etc:", c.Path, c.Fate)
		}
	}
	show := func() {
		for _, d := range s.Deployments() {
			motd, _ := os.ReadFile(filepath.Join(d.Path, "etc/motd"))
			fmt.Printf("%d %s %q\n", d.Index, d.Options, motd)
		}
	}
	show()
	if _, err := s.Rollback(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after rollback:")
	show()
	// Undeploying removes a deployment, its directory included.
	var dirs []string
	for _, d := range s.Deployments() {
		dirs = append(dirs, d.Path)
	}
	for len(s.Deployments()) > 0 {
		if _, err := s.Undeploy(ctx, 0); err != nil {
			log.Fatal(err)
		}
	}
	for _, d := range dirs {
		_, err := os.Stat(d)
		fmt.Println("undeployed, directory gone:", errors.Is(err, fs.ErrNotExist))
	}
	// Output:
	// etc: /etc/motd default
	// 0 root=LABEL=root "version two\n"
	// 1 root=LABEL=root "version one\n"
	// after rollback:
	// 0 root=LABEL=root "version one\n"
	// 1 root=LABEL=root "version two\n"
	// undeployed, directory gone: true
	// undeployed, directory gone: true
}

// Deploy an OS, telling a failed deploy from one whose change is made but
// whose cleanup failed, then deploy an update and roll back to the first.
func ExampleSysroot_Rollback() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "sysroot")
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "sysroot")
	if err := deploy.InitFS(root); err != nil {
		log.Fatal(err)
	}
	s, err := deploy.Open(root, deploy.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.OSInit(context.Background(), "demo"); err != nil {
		log.Fatal(err)
	}
	for _, motd := range []string{"version one\n", "version two\n"} {
		src := filepath.Join(tmp, "tree")
		os.RemoveAll(src)
		writeOS(src, motd)
		if _, err := commit.Commit(ctx, s.Repo(), commit.Options{Branch: "demo/stable",
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}}); err != nil {
			log.Fatal(err)
		}
		_, err := s.Deploy(ctx, "demo/stable", deploy.DeployOptions{})
		var cleanup *deploy.CleanupError
		switch {
		case errors.As(err, &cleanup):
			// Deployed: what the cleanup left goes at the next one.
			log.Print(err)
		case err != nil:
			// The deployment list is as it was.
			log.Fatal(err)
		}
	}
	sw, err := s.Rollback(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// Both deployments share a kernel and its arguments: only the links
	// the boot entries resolve through were switched.
	fmt.Println("switch:", sw)
	for _, d := range s.Deployments() {
		motd, _ := os.ReadFile(filepath.Join(d.Path, "etc/motd"))
		fmt.Printf("%d %q\n", d.Index, motd)
	}
	// Deployments are immutable: undeploy them before removing the sysroot.
	for len(s.Deployments()) > 0 {
		if _, err := s.Undeploy(ctx, 0); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// switch: sub
	// 0 "version one\n"
	// 1 "version two\n"
}
