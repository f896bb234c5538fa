package repo_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otree/otree/repo"
)

// core.tmp-expiry-secs (OSTree's key) is how long a partial download may
// go unwritten before a transaction's start removes it: a day when unset.
func TestTmpExpiryRemovesPartialDownloads(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "r"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.MkdirAll(r.PartialDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	partial := func(name string, age time.Duration) string {
		t.Helper()
		p := filepath.Join(r.PartialDir(), name)
		if err := os.WriteFile(p, []byte("some bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	begin := func() {
		t.Helper()
		txn, err := r.Begin(context.Background(), repo.TxnOptions{})
		if err != nil {
			t.Fatal(err)
		}
		txn.Abort()
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	twoHours, twoDays := partial("a.file", 2*time.Hour), partial("b.file", 48*time.Hour)
	begin()
	if !exists(twoHours) || exists(twoDays) {
		t.Errorf("unset: 2 hours old kept %v, 2 days old kept %v; want only the first kept", exists(twoHours), exists(twoDays))
	}
	if err := repo.CheckConfigValue(repo.ConfigTmpExpiry, "-1"); err == nil {
		t.Errorf("%s=-1 accepted", repo.ConfigTmpExpiry)
	}
	if err := r.UpdateConfig(func(c *repo.Config) error { return c.Set(repo.ConfigTmpExpiry, "3600") }); err != nil {
		t.Fatal(err)
	}
	halfHour := partial("c.file", 30*time.Minute)
	begin()
	if exists(twoHours) || !exists(halfHour) {
		t.Errorf("%s=3600: 2 hours old kept %v, half an hour old kept %v; want only the second kept", repo.ConfigTmpExpiry, exists(twoHours), exists(halfHour))
	}
}

// A partial download whose object is stored (a pull killed after it
// published the object and before it removed the download) is of no use:
// the next transaction's start removes it, however young. One whose object
// is missing stays for a later pull to continue, as does one a pull holds.
func TestStoredObjectsPartialDownloadRemoved(t *testing.T) {
	r, err := repo.Init(filepath.Join(t.TempDir(), "r"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := &repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: 3}
	stored, missing := repo.FileID(h, []byte("abc")), repo.FileID(h, []byte("xyz"))
	txn, err := r.Begin(context.Background(), repo.TxnOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txn.WriteFile(h, stored, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.PartialDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	partial := func(id repo.ID) string {
		p := filepath.Join(r.PartialDir(), id.String()+".file")
		if err := os.WriteFile(p, []byte("some bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	done, kept := partial(stored), partial(missing)
	if txn, err = r.Begin(context.Background(), repo.TxnOptions{}); err != nil {
		t.Fatal(err)
	}
	txn.Abort()
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if exists(done) {
		t.Errorf("%s kept, though its object is stored", done)
	}
	if !exists(kept) {
		t.Errorf("%s removed, though its object is missing", kept)
	}

	// A pull that holds one removes it itself, once it is done with it.
	held := partial(stored)
	f, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if txn, err = r.Begin(context.Background(), repo.TxnOptions{}); err != nil {
		t.Fatal(err)
	}
	txn.Abort()
	if !exists(held) {
		t.Errorf("%s removed while a pull holds it", held)
	}
}
