package remote_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
	"golang.org/x/sys/unix"
)

// initRepo makes an empty repository of mode at dir.
func initRepo(t *testing.T, dir string, mode repo.Mode) *repo.Repo {
	t.Helper()
	r, err := repo.Init(dir, repo.InitOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// fileObjects lists the paths of r's file objects relative to objects/.
func fileObjects(t *testing.T, r *repo.Repo) []string {
	t.Helper()
	var out []string
	for o := range storedObjects(t, r) {
		if strings.HasSuffix(o, ".file") {
			out = append(out, o[:2]+"/"+o[2:])
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no file objects", r.Path())
	}
	return out
}

// shared counts the file objects of dst that are hardlinks of src's; it
// fails the test unless every file object of src is in dst.
func shared(t *testing.T, src, dst *repo.Repo) int {
	t.Helper()
	n := 0
	for _, o := range fileObjects(t, src) {
		a, err := os.Lstat(src.Path("objects", o))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.Lstat(dst.Path("objects", o))
		if err != nil {
			t.Fatalf("pulled repository lacks %s: %v", o, err)
		}
		if os.SameFile(a, b) {
			n++
		}
	}
	return n
}

// pull-local between repositories of the same mode on one filesystem
// stores file objects as hardlinks of the source's, verified: both
// repositories pass fsck and check out the same tree. --no-hardlinks
// copies, and so does a pull between different modes. A local cache of
// the same mode gives links too.
func TestPullLocalHardlinks(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	modes := []repo.Mode{repo.ModeBareUser, repo.ModeBareUserOnly, repo.ModeArchive}
	if os.Geteuid() == 0 {
		modes = append(modes, repo.ModeBare)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			a := initRepo(t, filepath.Join(dir, "a"), mode)
			if _, err := remote.PullLocal(ctx, a, o.dir, remote.PullOptions{NoSync: true}); err != nil {
				t.Fatal(err)
			}
			n := len(fileObjects(t, a))
			// With syncs: a linked object is synced as a copy is.
			b := initRepo(t, filepath.Join(dir, "b"), mode)
			res, err := remote.PullLocal(ctx, b, a.Path(), remote.PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := shared(t, a, b); got != n || res.ContentLinked != int64(n) || res.ContentFetched != int64(n) || res.ContentWritten != 0 {
				t.Errorf("%d of %d file objects linked (result: %d linked of %d, %d bytes written)", got, n, res.ContentLinked, res.ContentFetched, res.ContentWritten)
			}
			checkFsck(t, a)
			checkFsck(t, b)
			checkSameTree(t, o.r, b, id)

			c := initRepo(t, filepath.Join(dir, "c"), mode)
			res, err = remote.PullLocal(ctx, c, a.Path(), remote.PullOptions{NoSync: true, NoHardlinks: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := shared(t, a, c); got != 0 || res.ContentLinked != 0 {
				t.Errorf("NoHardlinks: %d file objects linked (result: %d)", got, res.ContentLinked)
			}
			checkFsck(t, c)

			// A local cache of the same mode gives links.
			d := newDest(t, mode, o.srv.URL)
			opts := fastOpts()
			opts.LocalCaches = []string{a.Path()}
			res, err = remote.Pull(ctx, d, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := shared(t, a, d); got != n || res.ContentLinked != int64(n) || res.ContentFromCaches != int64(n) {
				t.Errorf("pull -L: %d of %d file objects linked (result: %+v)", got, n, res)
			}
			checkFsck(t, d)
		})
	}

	// Between modes, objects are copied.
	bu := initRepo(t, filepath.Join(t.TempDir(), "bu"), repo.ModeBareUser)
	if _, err := remote.PullLocal(ctx, bu, o.dir, remote.PullOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []repo.Mode{repo.ModeArchive, repo.ModeBareUserOnly} {
		r := initRepo(t, filepath.Join(t.TempDir(), "r"), mode)
		res, err := remote.PullLocal(ctx, r, bu.Path(), remote.PullOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := shared(t, bu, r); got != 0 || res.ContentLinked != 0 || res.ContentWritten == 0 {
			t.Errorf("bare-user to %s: %d file objects linked (result: %+v)", mode, got, res)
		}
		checkFsck(t, r)
		checkSameTree(t, o.r, r, id)
	}
}

// A source object whose content was changed (its inode otherwise as a
// copy would be, so it is linked) fails the pull, naming it: no ref moves,
// and the link is removed, so the destination keeps nothing of it.
func TestPullLocalHardlinkCorrupt(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	src := initRepo(t, filepath.Join(t.TempDir(), "src"), repo.ModeBareUser)
	if _, err := remote.PullLocal(ctx, src, o.dir, remote.PullOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	f := lookup(t, src, id, "/etc/demo.conf").ID
	path := src.ObjectPath(repo.KindFile, f)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if err := os.WriteFile(path, b, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, time.Unix(0, 0), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	dst := initRepo(t, filepath.Join(t.TempDir(), "dst"), repo.ModeBareUser)
	_, err = remote.PullLocal(ctx, dst, src.Path(), remote.PullOptions{NoSync: true,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	errContains(t, err, path, "content hashes to")
	// The error of the link's verification names the source's object.
	if ce := (*repo.CorruptObjectError)(nil); !errors.As(err, &ce) || ce.Path != path {
		t.Errorf("%v: want a CorruptObjectError with the path %s", err, path)
	}
	if strings.Contains(log.String(), "copying") {
		t.Errorf("the pull copied objects instead of linking them:\n%s", log.String())
	}
	checkNothingMoved(t, dst)
	if has, _ := dst.HasObject(repo.KindFile, f); has {
		t.Errorf("the corrupt object was stored")
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Nlink != 1 {
		t.Errorf("corrupt source object: %v, %d links; want 1", err, st.Nlink)
	}
}

// A source on another filesystem, or reached through another mount of the
// same one (where link(2) fails with EXDEV), is copied from.
func TestPullLocalHardlinkFallback(t *testing.T) {
	o := newOrigin(t)
	id := o.commit("os/stable", tree, 1700000000)
	other := testtree.SmallFS(t, 64<<20)
	src := initRepo(t, filepath.Join(other, "src"), repo.ModeBareUser)
	if _, err := remote.PullLocal(ctx, src, o.dir, remote.PullOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	check := func(what, from string, src *repo.Repo, why string) {
		t.Helper()
		var log bytes.Buffer
		dst := initRepo(t, filepath.Join(t.TempDir(), "dst"), repo.ModeBareUser)
		res, err := remote.PullLocal(ctx, dst, from, remote.PullOptions{
			Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !strings.Contains(log.String(), why) {
			t.Errorf("%s: the log does not say %q:\n%s", what, why, log.String())
		}
		if got := shared(t, src, dst); got != 0 || res.ContentLinked != 0 || res.ContentFetched == 0 {
			t.Errorf("%s: %d file objects linked (result: %+v)", what, got, res)
		}
		checkFsck(t, dst)
		checkSameTree(t, o.r, dst, id)
	}
	check("another filesystem", src.Path(), src, "different filesystems")

	// The same filesystem through a bind mount: same st_dev, but no links.
	near := initRepo(t, filepath.Join(t.TempDir(), "near"), repo.ModeBareUser)
	if _, err := remote.PullLocal(ctx, near, o.dir, remote.PullOptions{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if err := unix.Mount(near.Path(), mnt, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	check("a bind mount", mnt, near, "cross-device")
}
