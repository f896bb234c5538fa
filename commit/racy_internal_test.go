package commit

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/otree/otree/repo"
)

// An entry is trusted (its stat recorded in the cache) only when both its
// ctime and its mtime are older than the run's start by the racy window:
// a write in the same tick as either would leave that time unmoved. The
// window is 2 s where both times are whole seconds (a filesystem without
// sub-second times), else 100 ms.
func TestTrustedNeedsBothTimesOld(t *testing.T) {
	const start = int64(1000e9) // the run's start, ns
	ts := func(ns int64) unix.Timespec { return unix.NsecToTimespec(ns) }
	for _, c := range []struct {
		name         string
		ctime, mtime int64 // ns
		want         bool
	}{
		{"both old", start - 5e9, start - 5e9, true},
		{"ctime new, mtime set back", start - 50e6, start - 5e9, false},
		{"mtime new, ctime old", start - 5e9, start - 50e6 + 1, false},
		{"fine times past the window", start - 150e6 + 7, start - 150e6 + 7, true},
		{"fine times within the window", start - 50e6 + 7, start - 50e6 + 7, false},
		// Whole seconds: the filesystem's tick may be a second, so one
		// second back is within the window.
		{"whole seconds within the window", start - 1e9, start - 1e9, false},
		{"whole seconds past the window", start - 3e9, start - 3e9, true},
		{"the window's edge", start - 2e9, start - 2e9, false},
		{"mtime at the window's edge", start - 5e9, start - 100e6, false},
		{"ctime at the window's edge", start - 100e6, start - 5e9 + 1, false},
		// One time with a sub-second part shows the filesystem has them.
		{"one fine time", start - 1e9, start - 1e9 + 500, true},
	} {
		st := unix.Stat_t{Ctim: ts(c.ctime), Mtim: ts(c.mtime)}
		if got := trusted(&st, start); got != c.want {
			t.Errorf("%s (ctime %d, mtime %d ns before the start): trusted %v, want %v", c.name, start-c.ctime, start-c.mtime, got, c.want)
		}
	}
}

// A filesystem whose ctime a change need not move is never cached: FAT's
// ctime is its mtime, which touch -r puts back along with it.
func TestNoChangeTimesFS(t *testing.T) {
	for _, c := range []struct {
		name string
		fs   uint32
		want bool
	}{
		{"vfat", unix.MSDOS_SUPER_MAGIC, true},
		{"squashfs", unix.SQUASHFS_MAGIC, true},
		{"overlay", unix.OVERLAYFS_SUPER_MAGIC, true},
		{"ext4", unix.EXT4_SUPER_MAGIC, false},
		{"xfs", unix.XFS_SUPER_MAGIC, false},
		{"btrfs", unix.BTRFS_SUPER_MAGIC, false},
		{"tmpfs", unix.TMPFS_MAGIC, false},
	} {
		if got := noChangeTimesFS(c.fs); got != c.want {
			t.Errorf("%s: noChangeTimesFS %v, want %v", c.name, got, c.want)
		}
	}
}

// Another name of a hardlinked file hashed in this walk is taken at its
// id only while its stat is the one hashed, and only for a stat old
// enough to trust: a write since moves the ctime. A name a stat override
// applies to, a file with one name, and a filesystem whose ctime a change
// need not move are always hashed.
func TestInodeSeenOnlyForTheSameTrustedStat(t *testing.T) {
	const start = int64(1000e9)
	wk := &walker{start: start}
	id := repo.Sum([]byte("content"))
	old := unix.Stat_t{Dev: 1, Ino: 2, Nlink: 3, Size: 7, Ctim: unix.NsecToTimespec(start - 5e9), Mtim: unix.NsecToTimespec(start - 5e9)}
	wk.inodeHashed(&old, nil, false, id)
	if got, ok := wk.inodeSeen(&old, nil, false); !ok || got != id {
		t.Fatalf("same stat: %v %v, want %s", got, ok, id)
	}
	moved := old
	moved.Ctim = unix.NsecToTimespec(start + 1e6)
	if _, ok := wk.inodeSeen(&moved, nil, false); ok {
		t.Error("a name whose ctime moved since the hash was taken unread")
	}
	grown := old
	grown.Size++
	if _, ok := wk.inodeSeen(&grown, nil, false); ok {
		t.Error("a name of another size than the one hashed was taken unread")
	}
	if _, ok := wk.inodeSeen(&old, &override{}, false); ok {
		t.Error("a name with a stat override was taken unread")
	}
	if _, ok := wk.inodeSeen(&old, nil, true); ok {
		t.Error("a name on a filesystem without change times was taken unread")
	}
	single := old
	single.Nlink = 1
	if _, ok := wk.inodeSeen(&single, nil, false); ok {
		t.Error("a file of one name was taken unread")
	}
	recent := unix.Stat_t{Dev: 1, Ino: 9, Nlink: 2, Ctim: unix.NsecToTimespec(start - 1e6), Mtim: unix.NsecToTimespec(start - 5e9)}
	wk.inodeHashed(&recent, nil, false, id)
	if _, ok := wk.inodeSeen(&recent, nil, false); ok {
		t.Error("a stat too new to trust was recorded")
	}
}
