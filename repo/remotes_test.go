package repo_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// A tree's remotes directory is read as the tree sees it: a file linked by
// an absolute path, or the directory itself so linked, resolves inside the
// tree's root, never to the machine's file of that path, which is neither
// listed nor quoted; a relative link inside the tree is followed.
func TestRemotesDirInTree(t *testing.T) {
	base := t.TempDir()
	host := filepath.Join(base, "host.conf") // the machine's, outside the tree
	os.WriteFile(host, []byte("[remote \"host\"]\nurl=http://host-secret/\n"), 0o644)
	root := filepath.Join(base, "deploy")
	dir := filepath.Join(root, "etc/otree/remotes.d")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(root, "inner.conf"), []byte("[remote \"inner\"]\nurl=http://inner/\n"), 0o644)
	os.Symlink(host, filepath.Join(dir, "a.conf"))
	os.Symlink("../../../inner.conf", filepath.Join(dir, "b.conf"))
	other := filepath.Join(root, "usr/remotes")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "c.conf"), []byte("[remote \"usr\"]\nurl=http://usr/\n"), 0o644)
	os.Symlink("/usr/remotes", filepath.Join(root, "etc/otree/linked.d"))

	r := newIntegrityRepo(t, repo.ModeBareUser)
	for _, tc := range []struct {
		dir  string
		want []string
	}{{"etc/otree/remotes.d", []string{"inner"}}, {"etc/otree/linked.d", []string{"usr"}}} {
		r.SetRemotesDirIn(root, tc.dir)
		secs, err := r.RemoteSections()
		var names []string
		for _, s := range secs {
			names = append(names, s.Name)
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("%s: remotes %v, want %v", tc.dir, names, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "host-secret") {
			t.Errorf("%s: the machine's file was read: %v", tc.dir, err)
		}
	}
	r.SetRemotesDirIn(root, "etc/otree/remotes.d")
	if _, err := r.RemoteSections(); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "a.conf")) {
		t.Errorf("a link to a file the tree lacks: %v, want an error naming %s", err, filepath.Join(dir, "a.conf"))
	}
}
