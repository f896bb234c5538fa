package repo_test

import (
	"context"
	"os"
	"testing"

	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// A program that tightens its umask after a Repo has written objects
// (or a goroutine that creates a private file under umask 077 while a
// commit runs) still gets objects with the modes they record: a bare
// object whose mode the umask cut would be corrupt, and a bare-user one
// damaged. Metadata objects stay 0644.
func TestObjectModesAfterUmaskChange(t *testing.T) {
	for _, mode := range integrityModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := newIntegrityRepo(t, mode)
			storeFiles(t, r, "written under the first umask")
			defer unix.Umask(unix.Umask(0o077))
			ids := storeFiles(t, r, "written under umask 077")
			txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer txn.Abort()
			meta, err := txn.WriteMeta(repo.KindDirMeta, (&repo.DirMeta{Mode: 0o755}).Encode())
			if err != nil {
				t.Fatal(err)
			}
			if err := txn.Commit(); err != nil {
				t.Fatal(err)
			}
			want := map[string]uint32{r.ObjectPath(repo.KindDirMeta, meta): 0o644}
			switch mode {
			case repo.ModeArchive:
				want[r.ObjectPath(repo.KindFile, ids[0])] = 0o644
			case repo.ModeBareUser:
				want[r.ObjectPath(repo.KindFile, ids[0])] = repo.BareUserDiskMode(0o644)
			default:
				want[r.ObjectPath(repo.KindFile, ids[0])] = 0o644 // the file itself
			}
			for p, m := range want {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := uint32(st.Mode().Perm()); got != m {
					t.Errorf("%s: mode %04o under umask 077, want %04o", p, got, m)
				}
			}
			rep, err := r.Fsck(context.Background(), repo.FsckOptions{})
			if err != nil || !rep.OK() {
				t.Errorf("fsck after the umask change: %v", err)
			}
		})
	}
}
