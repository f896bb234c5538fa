package repo_test

import (
	"errors"
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
