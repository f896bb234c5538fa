package checkout_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// parFixture has the shapes where two implementations could disagree.
func parFixture(root bool) testtree.Tree {
	tree := testtree.Tree{
		"plain":                  testtree.File("plain\n", 0o644),
		"secret":                 testtree.File("s3cret", 0o600),
		"empty":                  testtree.File("", 0o644),
		"exec":                   testtree.File("#!/bin/sh\n", 0o755),
		"bin/suid":               {Mode: fs.ModeSetuid | 0o755, Content: "suid"},
		"bin/sgid":               {Mode: fs.ModeSetgid | 0o755, Content: "sgid"},
		"link-rel":               testtree.Symlink("plain"),
		"link-abs":               testtree.Symlink("/etc/passwd"),
		"dangling":               testtree.Symlink("does/not/exist"),
		"hard1":                  testtree.File("same inode", 0o644),
		"hard2":                  {Link: "hard1"},
		"d1/d2/d3/d4/d5/d6/leaf": testtree.File("deep", 0o644),
		"priv":                   testtree.Dir(0o700),
		"priv/f":                 testtree.File("p", 0o640),
		"ro":                     testtree.Dir(0o555),
		"ro/f":                   testtree.File("r", 0o444),
		"shared":                 testtree.Dir(0o775),
		"shared/f":               testtree.File("g", 0o664),
		"sticky":                 testtree.Dir(fs.ModeSticky | 0o777),
		"sgdir":                  testtree.Dir(fs.ModeSetgid | 0o755),
		"sgdir/f":                testtree.File("in sgdir", 0o644),
		"wwdir":                  testtree.Dir(0o777),
		"xattr":                  {Mode: 0o644, Content: "x", Xattrs: map[string]string{"user.a": "1", "user.b": "two"}},
		"with space":             testtree.File("sp", 0o644),
		"ünïcødé":                testtree.File("u", 0o644),
		"tab\there":              testtree.File("t", 0o644),
		"-dash":                  testtree.File("d", 0o644),
		"big":                    testtree.File(string(make([]byte, 3<<20)), 0o644),
	}
	if root {
		tree["owned"] = testtree.Entry{Mode: 0o640, Content: "o", UID: 1234, GID: 5678}
		tree["owned-dir"] = testtree.Entry{Mode: fs.ModeDir | 0o750, UID: 4321, GID: 8765}
	}
	return tree
}

// parMtimes returns the mtime of every non-directory entry under root.
func parMtimes(t *testing.T, root string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		m[rel] = st.Mtim.Sec
		return nil
	})
	return m
}

// The same fixture committed and checked out by otree and by OSTree gives
// identical trees: content, type, mode, symlink targets, and in bare mode
// as root also owners and xattrs.
func TestParityWithOSTree(t *testing.T) {
	ostree, err := exec.LookPath("ostree")
	if err != nil {
		t.Skip("ostree is not installed (CI installs Debian's ostree package)")
	}
	root := os.Getuid() == 0
	for _, c := range []struct {
		mode      repo.Mode
		user      bool
		needRoot  bool
		canonical bool // --canonical-permissions
		fromRef   bool // committed plainly to "base", then --tree=ref=base
		// statoverride is a --statoverride file (OSTree leaves directories
		// it names as they are, so it names files only).
		statoverride string
		dirs         bool // checkout -M, --bareuseronly-dirs
	}{
		{repo.ModeBareUser, true, false, false, false, "", false},
		{repo.ModeArchive, true, false, false, false, "", false},
		{repo.ModeBare, false, true, false, false, "", false},
		{repo.ModeBareUserOnly, true, false, false, false, "", false},
		{repo.ModeBareUser, true, false, true, false, "", false},
		{repo.ModeBareUser, true, false, true, true, "", false},
		{repo.ModeBareUser, true, false, false, false, "=448 /plain\n16 /exec\n+0x40 /ro/f\n", false},
		{repo.ModeBareUser, true, false, true, true, "=448 /plain\n16 /exec\n", false},
		{repo.ModeBareUser, true, false, false, false, "", true},
		{repo.ModeBare, false, true, false, false, "", true},
	} {
		name := c.mode.String()
		if c.canonical {
			name += "/canonical-permissions"
		}
		if c.fromRef {
			name += "/from-ref"
		}
		if c.statoverride != "" {
			name += "/statoverride"
		}
		if c.dirs {
			name += "/bareuseronly-dirs"
		}
		t.Run(name, func(t *testing.T) {
			if c.needRoot && !root {
				t.Skip("bare mode needs root")
			}
			tmp := t.TempDir()
			// Read-only directories of the fixture would stop TempDir's
			// cleanup when not running as root.
			t.Cleanup(func() {
				filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						os.Chmod(p, 0o755)
					}
					return nil
				})
			})
			src := filepath.Join(tmp, "src")
			os.Mkdir(src, 0o755)
			testtree.Create(t, src, parFixture(root && !c.user))

			// otree
			r, err := repo.Init(filepath.Join(tmp, "otree-repo"), repo.InitOptions{Mode: c.mode})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			source := commit.Source{Kind: commit.SourceDir, Path: src}
			if c.fromRef {
				if _, err := commit.Commit(context.Background(), r, commit.Options{Branch: "base",
					Sources: []commit.Source{source}}); err != nil {
					t.Fatal(err)
				}
				source = commit.Source{Kind: commit.SourceRef, Path: "base"}
			}
			overrides, err := commit.ParseStatOverrides([]byte(c.statoverride))
			if err != nil {
				t.Fatal(err)
			}
			res, err := commit.Commit(context.Background(), r, commit.Options{Branch: "main",
				CanonicalPermissions: c.canonical, StatOverrides: overrides, Sources: []commit.Source{source}})
			if err != nil {
				t.Fatal(err)
			}
			outA := filepath.Join(tmp, "otree-out")
			if _, err := checkout.Checkout(context.Background(), r, res.Commit, outA, checkout.Options{UserMode: c.user, BareUserOnlyDirs: c.dirs}); err != nil {
				t.Fatal(err)
			}

			// OSTree
			orepo := filepath.Join(tmp, "ostree-repo")
			outB := filepath.Join(tmp, "ostree-out")
			run := func(args ...string) {
				t.Helper()
				if out, err := exec.Command(ostree, append([]string{"--repo=" + orepo}, args...)...).CombinedOutput(); err != nil {
					t.Fatalf("ostree %v: %v\n%s", args, err, out)
				}
			}
			run("init", "--mode="+c.mode.String())
			ci := []string{"commit", "--branch=main", "--tree=dir=" + src}
			if c.fromRef {
				run("commit", "--branch=base", "--tree=dir="+src)
				ci[2] = "--tree=ref=base"
			}
			if c.canonical {
				ci = append(ci, "--canonical-permissions")
			}
			if c.statoverride != "" {
				so := filepath.Join(tmp, "statoverride")
				os.WriteFile(so, []byte(c.statoverride), 0o644)
				ci = append(ci, "--statoverride="+so)
			}
			run(ci...)
			co := []string{"checkout"}
			if c.user {
				co = append(co, "-U")
			}
			if c.dirs {
				co = append(co, "-M")
			}
			run(append(co, "main", outB)...)

			opts := testtree.ReadOptions{Owners: !c.user, Xattrs: !c.user}
			want := testtree.Read(t, outB, opts)
			got := testtree.Read(t, outA, opts)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("otree checkout differs from OSTree's (-ostree +otree):\n%s", d)
			}
			// OSTree gives hardlinked files mtime 0 but copies (empty
			// files, symlinks, anything from an archive repo) the time
			// of the checkout; otree gives every entry mtime 0.
			for p, sec := range parMtimes(t, outA) {
				if sec != 0 {
					t.Errorf("otree checkout: %s has mtime %d, want 0", p, sec)
				}
			}
		})
	}
}
