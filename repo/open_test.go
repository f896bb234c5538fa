package repo_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// Open says what it did not find: the directory or its config.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	noConfig := filepath.Join(dir, "noconfig")
	if err := os.Mkdir(noConfig, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]string{
		filepath.Join(dir, "missing"): {"no such directory"},
		file:                          {"not a directory"},
		noConfig:                      {"no config file"},
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
	}
}
