package repo_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/internal/testtree"
	"github.com/otree/otree/repo"
)

// List every path of a commit, as `otree ls -R` does.
func ExampleRepo_Walk() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "otree-example-")
	defer os.RemoveAll(tmp)
	r, err := repo.Init(filepath.Join(tmp, "repo"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	src := filepath.Join(tmp, "src")
	os.MkdirAll(filepath.Join(src, "etc/ssh"), 0o755)
	os.MkdirAll(filepath.Join(src, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("demo\n"), 0o644)
	os.WriteFile(filepath.Join(src, "etc/ssh/sshd_config"), []byte("Port 22\n"), 0o600)
	os.WriteFile(filepath.Join(src, "usr/bin/hello"), []byte("#!/bin/sh\necho hello\n"), 0o755)
	res, err := commit.Commit(ctx, r, commit.Options{Branch: "main", NoSync: true,
		Sources: []commit.Source{{Kind: commit.SourceDir, Path: src}}})
	if err != nil {
		log.Fatal(err)
	}

	root, err := r.Lookup(res.Commit, "/")
	if err != nil {
		log.Fatal(err)
	}
	err = r.Walk(ctx, root, func(e repo.Entry) error {
		if e.IsDir() {
			fmt.Println(strings.TrimSuffix(e.Path, "/") + "/")
			return nil
		}
		h, err := r.StatFile(e.ID)
		if err != nil {
			return err
		}
		fmt.Printf("%s %o %d\n", e.Path, h.Mode, h.Size)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// /
	// /etc/
	// /etc/hostname 644 5
	// /etc/ssh/
	// /etc/ssh/sshd_config 600 8
	// /usr/
	// /usr/bin/
	// /usr/bin/hello 755 21
}

func walkRepo(t *testing.T) (*repo.Repo, func(parent repo.ID, tree testtree.Tree) repo.ID) {
	t.Helper()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	n := 0
	return r, func(parent repo.ID, tree testtree.Tree) repo.ID {
		t.Helper()
		dir := t.TempDir()
		testtree.Create(t, dir, tree)
		n++
		res, err := commit.Commit(t.Context(), r, commit.Options{Parent: parent, Orphan: true, NoSync: true,
			Timestamp: time.Unix(int64(1700000000+n), 0), Sources: []commit.Source{{Kind: commit.SourceDir, Path: dir}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Commit
	}
}

// Walk's order, SkipDir on a directory and on a file, SkipAll, an error
// from the function, and a missing dirtree.
func TestWalk(t *testing.T) {
	r, commitTree := walkRepo(t)
	id := commitTree(repo.ID{}, testtree.Tree{
		"b":     testtree.File("b", 0o644),
		"a/z":   testtree.File("z", 0o644),
		"a/y/x": testtree.File("x", 0o644),
		"c/1":   testtree.File("1", 0o644),
		"c/2":   testtree.File("2", 0o644),
		"d":     testtree.Symlink("b"),
	})
	root, err := r.Lookup(id, "/")
	if err != nil {
		t.Fatal(err)
	}
	walk := func(start repo.Entry, skip map[string]error) ([]string, error) {
		var paths []string
		err := r.Walk(t.Context(), start, func(e repo.Entry) error {
			paths = append(paths, e.Path)
			return skip[e.Path]
		})
		return paths, err
	}
	for _, tc := range []struct {
		name string
		skip map[string]error
		want []string
		err  error
	}{
		{"all", nil, []string{"/", "/b", "/d", "/a", "/a/z", "/a/y", "/a/y/x", "/c", "/c/1", "/c/2"}, nil},
		{"skip a dir", map[string]error{"/a": fs.SkipDir}, []string{"/", "/b", "/d", "/a", "/c", "/c/1", "/c/2"}, nil},
		{"skip the rest of a dir from a file", map[string]error{"/c/1": fs.SkipDir}, []string{"/", "/b", "/d", "/a", "/a/z", "/a/y", "/a/y/x", "/c", "/c/1"}, nil},
		{"skip all", map[string]error{"/a/z": fs.SkipAll}, []string{"/", "/b", "/d", "/a", "/a/z"}, nil},
		{"skip the start", map[string]error{"/": fs.SkipDir}, []string{"/"}, nil},
		{"an error", map[string]error{"/a/y": errors.New("stop")}, []string{"/", "/b", "/d", "/a", "/a/z", "/a/y"}, errors.New("stop")},
	} {
		got, err := walk(root, tc.skip)
		if fmt.Sprint(err) != fmt.Sprint(tc.err) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	// From a subdirectory, paths continue its path.
	sub, _ := r.Lookup(id, "/a")
	if got, _ := walk(sub, nil); !cmp.Equal(got, []string{"/a", "/a/z", "/a/y", "/a/y/x"}) {
		t.Errorf("walk of /a: %v", got)
	}
	// A missing dirtree is an error naming the directory.
	y, _ := r.Lookup(id, "/a/y")
	os.Remove(r.ObjectPath(repo.KindDirTree, y.ID))
	if _, err := walk(root, nil); !errors.As(err, new(*repo.ObjectMissingError)) || !strings.Contains(err.Error(), "/a/y") {
		t.Errorf("walk through a missing dirtree: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Walk(ctx, root, func(repo.Entry) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("walk with a cancelled context: %v", err)
	}
}

func TestIsAncestor(t *testing.T) {
	r, commitTree := walkRepo(t)
	a := commitTree(repo.ID{}, testtree.Tree{"f": testtree.File("a", 0o644)})
	b := commitTree(a, testtree.Tree{"f": testtree.File("b", 0o644)})
	c := commitTree(b, testtree.Tree{"f": testtree.File("c", 0o644)})
	other := commitTree(repo.ID{}, testtree.Tree{"g": testtree.File("o", 0o644)})
	for _, tc := range []struct {
		anc, id repo.ID
		want    bool
	}{{a, c, true}, {b, c, true}, {c, c, false}, {c, a, false}, {other, c, false}, {a, other, false}} {
		if got, err := r.IsAncestor(t.Context(), tc.anc, tc.id); err != nil || got != tc.want {
			t.Errorf("IsAncestor(%s, %s) = %v, %v; want %v", tc.anc.Short(), tc.id.Short(), got, err, tc.want)
		}
	}
	// History cut at b: a cannot be told.
	os.Remove(r.ObjectPath(repo.KindCommit, b))
	_, err := r.IsAncestor(t.Context(), a, c)
	var missing *repo.ObjectMissingError
	if !errors.Is(err, repo.ErrHistoryMissing) || !errors.As(err, &missing) || missing.ID != b {
		t.Errorf("IsAncestor past a missing parent: %v", err)
	}
}
