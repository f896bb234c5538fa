package remote

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/internal/testtree"
)

// A partial download that cannot grow (its disk filled after it was
// begun) is emptied and no error: the object's own writes get the room,
// and what the download yields still reaches the object.
func TestAppenderOnFullDisk(t *testing.T) {
	mnt := testtree.SmallFS(t, 1<<20)
	f, err := os.Create(filepath.Join(mnt, "partial"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	testtree.FillTo(t, mnt, 64<<10)
	a := &appender{f: f}
	chunk := bytes.Repeat([]byte{1}, 32<<10)
	for i := range 4 {
		if n, err := a.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("write %d of 32 KiB with 64 KiB free: %d, %v; want all of it and no error", i, n, err)
		}
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
		t.Errorf("the partial download after the disk filled: %v, %v; want it empty", fi.Size(), err)
	}
}

// A partial download is begun only where the filesystem has room for it
// three times over (the object it makes needs as much again, or more).
func TestPartialNeedsRoom(t *testing.T) {
	mnt := testtree.SmallFS(t, 4<<20)
	testtree.FillTo(t, mnt, 2<<20)
	for _, c := range []struct {
		size int64
		kept bool
	}{{1 << 20, false}, {512 << 10, true}} {
		p := &partial{dir: filepath.Join(mnt, "pull-partial"), path: filepath.Join(mnt, "pull-partial", "x.file")}
		p.create(c.size)
		if kept := p.f != nil; kept != c.kept {
			t.Errorf("%d bytes with 2 MiB free: kept %v, want %v", c.size, kept, c.kept)
		}
		p.remove()
	}
}

// A partial download left empty (its disk filled, or nothing arrived) is
// not kept when let go: a 0-byte file resumes nothing.
func TestPartialCloseDropsEmpty(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		data []byte
		kept bool
	}{{nil, false}, {[]byte("some bytes"), true}} {
		p := &partial{dir: dir, path: filepath.Join(dir, "x.file")}
		p.create(1)
		if p.f == nil {
			t.Fatal("no partial download begun")
		}
		if _, err := p.f.Write(c.data); err != nil {
			t.Fatal(err)
		}
		p.close()
		_, err := os.Stat(p.path)
		if kept := err == nil; kept != c.kept {
			t.Errorf("after close with %d bytes kept: the file exists %v, want %v", len(c.data), kept, c.kept)
		}
		os.Remove(p.path)
	}
}

// A partial download removed as abandoned (core.tmp-expiry-secs) between
// a pull's opening it and locking it is not kept: the pull's bytes would
// go to a file no later pull finds, and its removal of the path to
// another pull's file.
func TestPartialRemovedBeforeLock(t *testing.T) {
	dir := t.TempDir()
	p := &partial{dir: dir, path: filepath.Join(dir, "x.file")}
	if err := os.WriteFile(p.path, []byte("kept bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	testHookPartialOpened = func() { durable.RemoveAbandoned(p.path) }
	defer func() { testHookPartialOpened = nil }()
	for name, open := range map[string]func(){"open": p.open, "create": func() { p.create(1) }} {
		open()
		if p.f != nil {
			var a, b unix.Stat_t
			unix.Fstat(int(p.f.Fd()), &a)
			if err := unix.Stat(p.path, &b); err != nil || a.Ino != b.Ino {
				t.Errorf("%s: the pull holds a partial download that is no longer at %s (%v)", name, p.path, err)
			}
			p.f.Close()
			p.f = nil
		}
	}
}
