package commit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// writeAtEOF reads r and, once r is read to its end, overwrites the first
// byte of the file at path: a writer that changes a file between the read
// that hashes it and the copy that stores it.
type writeAtEOF struct {
	r    io.Reader
	path string
	done bool
}

func (w *writeAtEOF) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err == io.EOF && !w.done {
		w.done = true
		f, ferr := os.OpenFile(w.path, os.O_WRONLY, 0)
		if ferr != nil {
			return n, ferr
		}
		_, ferr = f.WriteAt([]byte("B"), 0)
		f.Close()
		if ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

// A large file is hashed as it is read and then copied into the store, a
// second read. One written in between fails the commit, naming the file:
// nothing of other content is stored under the id that was hashed (fsck
// finds no corrupt object), and the branch is not made.
func TestLargeFileChangedWhileCommitted(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		r := newRepo(t, mode)
		src := t.TempDir()
		p := filepath.Join(src, "big")
		if err := os.WriteFile(p, bytes.Repeat([]byte("a"), 3<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		// Times of long ago, so that the write in the hook changes the
		// modification time whatever the timestamps' granularity.
		if err := os.Chtimes(p, time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
			t.Fatal(err)
		}
		restore := commit.SetLargeReadHook(func(rd io.Reader) io.Reader { return &writeAtEOF{r: rd, path: p} })
		_, err := commit.Commit(context.Background(), r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		restore()
		wantChangedRefused(t, r, mode, err, p, "written while committed")
		if _, err := r.ReadRef("main"); err == nil {
			t.Errorf("%s: the failed commit made the branch", mode)
		}
	}
}

// A write that leaves the file's times as they were (here through a
// mapping already written to, as a write under way when the file was
// opened or one in the same timestamp tick does) between the read that
// hashes a large file and the copy that stores it fails the commit too:
// the copy is hashed again, so no object is stored under an id its
// content does not have.
func TestLargeFileWrittenUnseenWhileCommitted(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		r := newRepo(t, mode)
		src := t.TempDir()
		p := filepath.Join(src, "big")
		if err := os.WriteFile(p, bytes.Repeat([]byte("a"), 3<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		m, err := unix.Mmap(int(f.Fd()), 0, 3<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		m[0] = 'x' // the first write maps the page writable, stamping the times
		var before, after unix.Stat_t
		if err := unix.Stat(p, &before); err != nil {
			t.Fatal(err)
		}
		restore := commit.SetLargeReadHook(func(rd io.Reader) io.Reader {
			return readThen{rd, func() { m[0] = 'B' }}
		})
		_, err = commit.Commit(context.Background(), r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		restore()
		if serr := unix.Stat(p, &after); serr != nil {
			t.Fatal(serr)
		}
		unix.Munmap(m)
		if after.Mtim != before.Mtim || after.Ctim != before.Ctim {
			t.Skipf("%s: the write through the mapping moved the file's times", mode)
		}
		wantChangedRefused(t, r, mode, err, p, "written unseen while committed")
	}
}

// The stored copy of a large file is hashed again with its holes as the
// zeros they read as: a sparse file, holes at its start, middle and end,
// commits in each mode to the id of a dense file of the same bytes.
func TestLargeSparseFileHashedAgain(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		r := newRepo(t, mode)
		sparse, dense := t.TempDir(), t.TempDir()
		data := bytes.Repeat([]byte("d"), 5000)
		f, err := os.Create(filepath.Join(sparse, "f"))
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{3 << 20, 7<<20 + 5} {
			if _, err := f.WriteAt(data, off); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Truncate(9 << 20); err != nil {
			t.Fatal(err)
		}
		f.Close()
		whole, err := os.ReadFile(filepath.Join(sparse, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dense, "f"), whole, 0o644); err != nil {
			t.Fatal(err)
		}
		ids := map[string]string{}
		for _, src := range []string{sparse, dense} {
			res, err := commit.Commit(context.Background(), r, commit.Options{Branch: "main", NoSync: true,
				Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
			if err != nil {
				t.Fatalf("%s: commit of %s: %v", mode, src, err)
			}
			c, err := r.ReadCommit(res.Commit)
			if err != nil {
				t.Fatal(err)
			}
			ids[src] = c.RootTree.String()
		}
		if ids[sparse] != ids[dense] {
			t.Errorf("%s: sparse tree %s, dense tree %s", mode, ids[sparse], ids[dense])
		}
	}
}

// readThen reads r and calls then once r is read to its end.
type readThen struct {
	r    io.Reader
	then func()
}

func (rt readThen) Read(p []byte) (int, error) {
	n, err := rt.r.Read(p)
	if err == io.EOF && rt.then != nil {
		rt.then()
	}
	return n, err
}

// A file replaced (by a rename over it) between the listing that stats it
// and the open that reads it is recorded as the file that was read: its
// mode with its content, never the listed file's mode with the new
// content. The stat cache then answers as a commit without it does.
func TestFileReplacedBeforeRead(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeBare, repo.ModeArchive} {
		for _, size := range []int{5, 3 << 20} {
			r := newRepo(t, mode)
			src := t.TempDir()
			p := filepath.Join(src, "f")
			if err := os.WriteFile(p, bytes.Repeat([]byte("a"), size), 0o644); err != nil {
				t.Fatal(err)
			}
			done := false
			restore := commit.SetHashHook(func(path string) {
				if path != p || done {
					return
				}
				done = true
				if err := os.WriteFile(p+".new", bytes.Repeat([]byte("b"), size), 0o755); err != nil {
					t.Error(err)
				}
				if err := os.Chmod(p+".new", 0o755); err != nil {
					t.Error(err)
				}
				if err := os.Rename(p+".new", p); err != nil {
					t.Error(err)
				}
			})
			res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
				Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
			restore()
			if err != nil {
				t.Fatalf("%s, %d bytes: %v", mode, size, err)
			}
			got := readCommit(t, r, res.Commit, false)["f"]
			want := string(bytes.Repeat([]byte("b"), size))
			if got.Mode != 0o755 || got.Content != want {
				t.Errorf("%s, %d bytes: recorded mode %v with content %.10q...; want the replacing file's 0755 with %.10q...",
					mode, size, got.Mode, got.Content, want)
			}
			fr := newRepo(t, mode)
			again := rootTree(t, r, commitDir(t, r, "main", src).Commit)
			fresh := rootTree(t, fr, commitDir(t, fr, "main", src, func(o *commit.Options) { o.NoStatCache = true }).Commit)
			if again != fresh {
				t.Errorf("%s, %d bytes: re-commit with the stat cache gives tree %x, a fresh commit %x", mode, size, again, fresh)
			}
		}
	}
}

// A small file written between the open and the end of its read fails
// the commit, naming it: the read may hold part of each write. The
// branch is not made and no stored object disagrees with its id.
func TestSmallFileWrittenWhileRead(t *testing.T) {
	for _, mode := range []repo.Mode{repo.ModeBareUser, repo.ModeArchive} {
		r := newRepo(t, mode)
		src := t.TempDir()
		p := filepath.Join(src, "f")
		if err := os.WriteFile(p, []byte("aaaa"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
			t.Fatal(err)
		}
		restore := commit.SetOpenedHook(func(path string) {
			if path == p {
				if err := os.WriteFile(p, []byte("bbbb"), 0o644); err != nil {
					t.Error(err)
				}
			}
		})
		_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
			Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
		restore()
		if !errors.Is(err, repo.ErrSourceChanged) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: commit of a file written while read: %v; want it refused, naming %s", mode, err, p)
		}
		if _, err := r.ReadRef("main"); err == nil {
			t.Errorf("%s: the failed commit made the branch", mode)
		}
		rep, err := r.Fsck(ctx, repo.FsckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range rep.Problems {
			t.Errorf("%s: fsck after the failed commit: %v", mode, pr)
		}
	}
}

// A file replaced by a FIFO between the listing and the open fails the
// commit, naming it, instead of the open waiting for a writer forever.
func TestFileReplacedByFIFOBeforeRead(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := t.TempDir()
	p := filepath.Join(src, "f")
	if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	restore := commit.SetHashHook(func(path string) {
		if path != p {
			return
		}
		if err := os.Remove(p); err != nil {
			t.Error(err)
		}
		if err := unix.Mkfifo(p, 0o644); err != nil {
			t.Error(err)
		}
	})
	_, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	restore()
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("commit of a file replaced by a FIFO: %v; want it refused, naming %s", err, p)
	}
	if _, err := r.ReadRef("main"); err == nil {
		t.Error("the failed commit made the branch")
	}
}

// A directory replaced by another between the listing that stats it and
// the open that lists it is recorded as the directory listed: its mode
// with its entries, never the replaced one's mode.
func TestDirReplacedBeforeOpen(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := makeTree(t, testtree.Tree{"d": testtree.Dir(0o700), "d/old": testtree.File("o", 0o644)})
	d := filepath.Join(src, "d")
	restore := commit.SetListedHook(func(path string) {
		if path != d {
			return
		}
		if err := os.Rename(d, d+".gone"); err != nil {
			t.Error(err)
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Error(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(filepath.Join(d, "new"), []byte("n"), 0o644); err != nil {
			t.Error(err)
		}
	})
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	restore()
	if err != nil {
		t.Fatal(err)
	}
	got := readCommit(t, r, res.Commit, false)
	if got["d"].Mode != fs.ModeDir|0o755 || got["d/new"].Content != "n" {
		t.Errorf("directory replaced before its open: recorded mode %v with entries %v; want the replacing directory's 0755 with new", got["d"].Mode, got)
	}
}

// A symlink replaced by another between the listing that stats it and the
// read of its target fails the commit, naming it, rather than record the
// first link's owner with the second one's target.
func TestSymlinkReplacedBeforeRead(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to own a symlink by another user (CI runs as root)")
	}
	r := newRepo(t, repo.ModeBare)
	src := t.TempDir()
	l := filepath.Join(src, "l")
	if err := os.Symlink("old", l); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(l, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	restore := commit.SetListedHook(func(path string) {
		if path != l {
			return
		}
		if err := os.Symlink("new", l+".tmp"); err != nil {
			t.Error(err)
		}
		if err := os.Rename(l+".tmp", l); err != nil {
			t.Error(err)
		}
	})
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	restore()
	if err == nil {
		got := readCommit(t, r, res.Commit, true)["l"]
		t.Errorf("commit of a symlink replaced while committed recorded owner %d with target %q; want it refused", got.UID, got.Target)
	} else if !strings.Contains(err.Error(), l) {
		t.Errorf("commit of a symlink replaced while committed: %v; want it to name %s", err, l)
	}
	if _, err := r.ReadRef("main"); err == nil {
		t.Error("the failed commit made the branch")
	}
}

// The names of a hardlinked file are one inode: the walk reads it once
// (or once a batch of names hashed at the same time), not once a name
// (1,000 names of a 20 MiB file read 20 GB), and every name gets the id
// of its content.
func TestHardlinkGroupHashedOnce(t *testing.T) {
	r := newRepo(t, repo.ModeBareUser)
	src := t.TempDir()
	first := filepath.Join(src, "n000")
	if err := os.WriteFile(first, []byte("one inode"), 0o644); err != nil {
		t.Fatal(err)
	}
	const names = 100
	for i := 1; i < names; i++ {
		if err := os.Link(first, filepath.Join(src, fmt.Sprintf("n%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond) // past the racy window: trusted stats
	var mu sync.Mutex
	hashed := 0
	restore := commit.SetHashHook(func(string) {
		mu.Lock()
		hashed++
		mu.Unlock()
	})
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	restore()
	if err != nil {
		t.Fatal(err)
	}
	// Names in batches that run at once may each read it, once a batch
	// (of up to 32 names) at most.
	if hashed > (names+31)/32 {
		t.Errorf("%d names of one inode hashed %d times, want at most %d", names, hashed, (names+31)/32)
	}
	want := testtree.Tree{}
	for i := range names {
		want[fmt.Sprintf("n%03d", i)] = testtree.File("one inode", 0o644)
	}
	got := readCommit(t, r, res.Commit, false)
	delete(got, "")
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// wantChangedRefused fails t unless err refuses the commit of p as a file
// that changed (what), and fsck finds r clean after it.
func wantChangedRefused(t *testing.T, r *repo.Repo, mode repo.Mode, err error, p, what string) {
	t.Helper()
	if !errors.Is(err, repo.ErrSourceChanged) || !strings.Contains(err.Error(), p) {
		t.Errorf("%s: commit of a file %s: %v; want it refused, naming %s", mode, what, err, p)
	}
	rep, ferr := r.Fsck(context.Background(), repo.FsckOptions{})
	if ferr != nil {
		t.Fatal(ferr)
	}
	for _, pr := range rep.Problems {
		t.Errorf("%s: fsck after the refused commit: %v", mode, pr)
	}
}
