package checkout_test

import (
	"archive/tar"
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/otree/otree/checkout"
	"github.com/otree/otree/commit"
	"github.com/otree/otree/repo"
)

// umTar is a tar of the modes a user-mode checkout changes: files without
// their owner's read bit (a 0000 /etc/shadow, a 0070 group file, a setgid
// one), a setuid file and a 0000 directory. A tar lets a user other than
// root commit what it could not read from a directory.
func umTar(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range []*tar.Header{
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0},
		{Name: "f", Typeflag: tar.TypeReg, Mode: 0, Size: 1},
		{Name: "g", Typeflag: tar.TypeReg, Mode: 0o070, Size: 1},
		{Name: "t", Typeflag: tar.TypeReg, Mode: 0o2070, Size: 1},
		{Name: "s", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("x"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A user-mode checkout gives regular files their owner's read bit and
// clears setuid and setgid, and leaves directories' modes alone, as
// OSTree's does (0000 -> 0400, 0070 -> 0470), in every repository mode,
// whether it copies or hardlinks: it hardlinks only objects whose mode on
// disk is already the file's, and no object's mode changes.
func TestUserModeOwnerRead(t *testing.T) {
	want := map[string]uint32{"d": 0, "f": 0o400, "g": 0o470, "t": 0o470, "s": 0o755}
	for _, tc := range []struct {
		mode repo.Mode
		root bool // committing or reading the objects needs root
		want map[string]uint32
		// linked counts the files a checkout without ForceCopy links,
		// the second time (from the uncompressed-object cache).
		linked int64
	}{
		// Objects are stored mode&0775|0400: 0400, 0470, 0470, 0755.
		{repo.ModeBareUser, false, want, 4},
		// Only s has its owner's read bit and goes through the cache.
		{repo.ModeArchive, false, want, 1},
		// User mode never links a bare repository's objects.
		{repo.ModeBare, true, want, 0},
		// Stored with canonical permissions (masked with 0755), without
		// the owner's read bit: copied, which only root can, but s.
		{repo.ModeBareUserOnly, true, map[string]uint32{"d": 0, "f": 0o400, "g": 0o450, "t": 0o450, "s": 0o755}, 1},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			if tc.root && !coRoot() {
				t.Skip("needs root")
			}
			r := coRepo(t, tc.mode)
			res, err := commit.Commit(coCtx, r, commit.Options{Branch: "main", Subject: "modes", Timestamp: time.Unix(1700000000, 0),
				NoSync: true, Sources: []commit.Source{{Kind: commit.SourceTar, Path: "modes.tar", Reader: bytes.NewReader(umTar(t))}}})
			if err != nil {
				t.Fatal(err)
			}
			objModes := func() map[string]uint32 {
				m := map[string]uint32{}
				for _, p := range []string{"f", "g", "t", "s"} {
					m[p] = coObject(t, r, res.Commit, "/"+p).Mode & 0o7777
				}
				return m
			}
			before := objModes()
			for i, o := range []checkout.Options{
				{UserMode: true, UncompressedCache: true},
				{UserMode: true, UncompressedCache: true}, // links from the cache
				{UserMode: true, ForceCopy: true},
			} {
				what := [...]string{"link", "link again", "copy"}[i]
				st, dest := coCheckout(t, r, res.Commit, "", o)
				for p, m := range tc.want {
					if got := coStat(t, filepath.Join(dest, p)).Mode & 0o7777; got != m {
						t.Errorf("%s: %s has mode %04o, want %04o (OSTree's)", what, p, got, m)
					}
				}
				linked := tc.linked
				if o.ForceCopy {
					linked = 0
				}
				if tc.mode == repo.ModeArchive && i == 0 {
					linked = 0 // the first checkout fills the cache
				}
				if st.Hardlinked != linked || tc.mode == repo.ModeArchive && st.FromCache != linked {
					t.Errorf("%s: stats %+v, want %d files hardlinked", what, *st, linked)
				}
			}
			for p, m := range objModes() {
				if m != before[p] {
					t.Errorf("the object of %s changed mode from %04o to %04o", p, before[p], m)
				}
			}
			rep, err := r.Fsck(coCtx, repo.FsckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Problems {
				t.Errorf("fsck: %v", p)
			}
		})
	}
}
