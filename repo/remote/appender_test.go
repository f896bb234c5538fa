package remote

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

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
