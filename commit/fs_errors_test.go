package commit_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

func TestFullRepositoryLosesNothing(t *testing.T) {
	mnt := testtree.SmallFS(t, 3<<20)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// No free-space reserve: the filesystem itself must run out.
	r.Config().Set(repo.ConfigMinFreePercent, "0")
	small := makeTree(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	good := commitDir(t, r, "main", small)

	big := makeTree(t, testtree.Tree{"big": testtree.File(strings.Repeat("z", 4<<20), 0o644)})
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceDir, Path: big}}})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit into a full repository: err = %v, want ENOSPC", err)
	}
	if id, _ := r.ReadRef("main"); id != good.Commit {
		t.Fatal("a failed commit moved the branch")
	}
	// The staged data is gone, so the repository works again.
	again := commitDir(t, r, "main", small, func(o *commit.Options) { o.Subject = "after" })
	if again.Parent != good.Commit {
		t.Fatalf("commit after ENOSPC: parent %s, want %s", again.Parent, good.Commit)
	}
}

func TestReadOnlyRepository(t *testing.T) {
	mnt := testtree.SmallFS(t, 8<<20)
	r, err := repo.Init(filepath.Join(mnt, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	src := makeTree(t, testtree.Tree{"a": testtree.File("a", 0o644)})
	good := commitDir(t, r, "main", src)
	r.Close()
	// Without lock files (as a repository of an older otree may be), and
	// none can be made on a read-only filesystem: reading still works.
	for _, l := range []string{"lock", "lock.intent"} {
		if err := os.Remove(filepath.Join(mnt, "repo", l)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	r, err = repo.Open(filepath.Join(mnt, "repo"))
	if err != nil {
		t.Fatalf("opening a read-only repository to read it: %v", err)
	}
	defer r.Close()
	_, err = commit.Commit(ctx, r, commit.Options{Branch: "main", Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err == nil || !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), mnt) {
		t.Fatalf("commit into a read-only repository: err = %v, want a read-only error naming it", err)
	}
	if id, err := r.ReadRef("main"); err != nil || id != good.Commit {
		t.Fatalf("branch after refused commit: %v %v", id, err)
	}
	if _, err := r.ReadCommit(good.Commit); err != nil {
		t.Fatalf("reading a read-only repository: %v", err)
	}
	if rep, err := r.Fsck(ctx, repo.FsckOptions{}); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck of a read-only repository: %v %+v", err, rep)
	}
}

// A /proc or /sys file bound into the source shows a size (0, 4096) that
// is not its content's: the commit fails naming it and its filesystem,
// not as a file being written, and records nothing on the branch.
func TestPseudoFileRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	for _, tc := range []struct{ file, fs string }{
		{"/proc/version", "procfs"},
		{"/sys/kernel/uevent_seqnum", "sysfs"},
	} {
		t.Run(tc.fs, func(t *testing.T) {
			if _, err := os.Stat(tc.file); err != nil {
				t.Skipf("%s is not mounted", tc.file)
			}
			src := makeTree(t, testtree.Tree{"f": testtree.File("", 0o644)})
			f := filepath.Join(src, "f")
			if err := syscall.Mount(tc.file, f, "", syscall.MS_BIND, ""); err != nil {
				t.Skipf("bind mount: %v", err)
			}
			defer syscall.Unmount(f, syscall.MNT_DETACH)
			r := newRepo(t, repo.ModeBareUser)
			_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", Subject: "test",
				Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
			if err == nil {
				t.Fatalf("committing %s bound at %s succeeded", tc.file, f)
			}
			if msg := err.Error(); !strings.Contains(msg, f+": a file of "+tc.fs) || strings.Contains(msg, "changed while") {
				t.Errorf("committing %s bound at %s: %v", tc.file, f, err)
			}
			// The length given is the content's, not what the read
			// sized by the stat happened to get.
			content, rerr := os.ReadFile(tc.file)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if want := fmt.Sprintf("(%d bytes)", len(content)); !strings.Contains(err.Error(), want) {
				t.Errorf("committing %s bound at %s: %v; want its length %s", tc.file, f, err, want)
			}
			if _, err := r.ResolveRev("main"); err == nil {
				t.Error("the branch was created")
			}
		})
	}
}
