package repo_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// Open says what it did not find: the directory, its config, or the
// repo_version in the config (naming the file). Only a directory without
// a config matches ErrNoConfig.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	empty := filepath.Join(dir, "empty")
	noConfig := filepath.Join(dir, "noconfig")
	for _, d := range []string{empty, noConfig} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, content := range map[string]string{file: "", filepath.Join(empty, "config"): "", filepath.Join(dir, "v2", "config"): "[core]\nrepo_version=2\n"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string][]string{
		filepath.Join(dir, "missing"): {"no such directory"},
		file:                          {"not a directory"},
		noConfig:                      {"no config file"},
		empty:                         {filepath.Join(empty, "config"), "has no repo_version in [core]"},
		filepath.Join(dir, "v2"):      {filepath.Join(dir, "v2", "config"), `unsupported core.repo_version "2"`},
	} {
		_, err := repo.Open(path)
		if err == nil {
			t.Errorf("Open(%s) succeeded", path)
			continue
		}
		for _, w := range append(want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%s) = %v, want it to say %q", path, err, w)
			}
		}
		if got := errors.Is(err, repo.ErrNoConfig); got != (path == noConfig) {
			t.Errorf("Open(%s) = %v: matches ErrNoConfig %v", path, err, got)
		}
	}
}

// A directory whose config file is not an otree repository's (a Git
// directory's, or one with no repo_version) holds no repository: Open's
// error matches ErrNotRepository, as for a directory without a config.
func TestOpenForeignConfigIsNotRepository(t *testing.T) {
	dir := t.TempDir()
	for name, config := range map[string]string{
		"git":   "[core]\n\trepositoryformatversion = 0\n\tbare = false\n",
		"empty": "",
	} {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "config"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := repo.Open(p)
		if !errors.Is(err, repo.ErrNotRepository) || errors.Is(err, repo.ErrNoConfig) || !strings.Contains(fmt.Sprint(err), filepath.Join(p, "config")) {
			t.Errorf("Open(%s) = %v; want an error naming its config and matching ErrNotRepository (not ErrNoConfig)", name, err)
		}
	}
}

// A path below a regular file holds no repository: Open's error matches
// ErrNotRepository and names the path.
func TestOpenBelowFileIsNotRepository(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(file, "repo")
	_, err := repo.Open(p)
	if !errors.Is(err, repo.ErrNotRepository) || !strings.Contains(fmt.Sprint(err), p) {
		t.Errorf("Open(%s) = %v; want an error naming it and matching ErrNotRepository", p, err)
	}
}
