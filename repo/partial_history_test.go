package repo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// A deep pull completes every commit of the history at once and unmarks
// them all with one sync: it used to sync the filesystem once per commit
// when the pull itself did not sync (--disable-fsync), so that a pull of
// a long history spent most of its time in syncfs. A pull without fsync
// does not sync the marks either.
func TestPullLocalDeepHistoryUnmarksWithOneSync(t *testing.T) {
	src := newIntegrityRepo(t, repo.ModeArchive)
	dir := integritySource(t, integrityTree)
	const n = 12
	var commits []repo.ID
	for i := 0; i < n; i++ {
		os.WriteFile(filepath.Join(dir, "counter"), []byte(fmt.Sprintf("%d\n", i)), 0o644)
		commits = append(commits, integrityCommit(t, src, "main", dir, int64(1700000000+i*100)))
	}
	r := newIntegrityRepo(t, repo.ModeArchive)
	syncs, marks, syncedMarks := 0, 0, 0
	defer repo.SetPartialMarkHook(func(_ repo.ID, sync bool) {
		marks++
		if sync {
			syncedMarks++
		}
	})()
	defer repo.SetUnsyncedHook(func(step string) {
		if step == "sync: synced" {
			syncs++
		}
	})()
	if _, err := remote.PullLocal(context.Background(), r, src.Path(), remote.PullOptions{Refs: []string{"main"}, Depth: -1, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if syncs > 1 {
		t.Errorf("a pull of %d commits without fsync synced the filesystem %d times, want at most once", n, syncs)
	}
	// Nor are the marks synced, as OSTree's pull --disable-fsync does not
	// sync them: two fsyncs a commit.
	if marks == 0 || syncedMarks > 0 {
		t.Errorf("a pull of %d commits without fsync wrote %d partial marks, %d of them synced: want some, none synced", n, marks, syncedMarks)
	}
	for i, c := range commits {
		if r.IsCommitPartial(c) {
			t.Errorf("commit %d (%s) still marked partial", i, c)
		}
	}
	mustFsckClean(t, r)
}
