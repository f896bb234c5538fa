// Package testtree declares filesystem trees as literals for tests: create
// one on disk, read one back, and compare them with cmp.Diff.
package testtree

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Entry is one path of a tree. The zero Mode means a regular 0644 file.
type Entry struct {
	Mode    fs.FileMode       // type bits and permissions (fs.ModeDir, fs.ModeSymlink, ...)
	Content string            // regular files
	Target  string            // symlinks
	UID     int               // applied only when running as root
	GID     int               // applied only when running as root
	Xattrs  map[string]string // user.* works unprivileged on most filesystems
	Link    string            // hardlink to this other path of the tree
}

// Tree maps slash-separated relative paths to entries. Parent directories
// not listed are created 0755.
type Tree map[string]Entry

// Dir is a directory entry with the permissions perm.
func Dir(perm fs.FileMode) Entry { return Entry{Mode: fs.ModeDir | perm} }

// File is a regular file entry holding content.
func File(content string, perm fs.FileMode) Entry { return Entry{Mode: perm, Content: content} }

// Symlink is a symbolic link entry to target.
func Symlink(target string) Entry { return Entry{Mode: fs.ModeSymlink | 0o777, Target: target} }

// Create builds tree under root (which must exist).
func Create(t testing.TB, root string, tree Tree) {
	t.Helper()
	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	sort.Strings(paths) // parents before children
	root0 := os.Getuid() == 0
	var dirs []string
	for _, p := range paths {
		e := tree[p]
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		perm := e.Mode.Perm()
		switch {
		case e.Link != "":
			if err := os.Link(filepath.Join(root, filepath.FromSlash(e.Link)), full); err != nil {
				t.Fatal(err)
			}
			continue
		case e.Mode.IsDir():
			if err := os.Mkdir(full, 0o755); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
			dirs = append(dirs, p)
		case e.Mode&fs.ModeSymlink != 0:
			if err := os.Symlink(e.Target, full); err != nil {
				t.Fatal(err)
			}
		case e.Mode&fs.ModeNamedPipe != 0:
			if err := unix.Mkfifo(full, uint32(perm)); err != nil {
				t.Fatal(err)
			}
		default:
			if perm == 0 && e.Mode == 0 {
				perm = 0o644
			}
			if err := os.WriteFile(full, []byte(e.Content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range e.Xattrs {
			if err := unix.Lsetxattr(full, k, []byte(v), 0); err != nil {
				t.Skipf("xattrs unsupported here: %v", err)
			}
		}
		if root0 {
			if err := os.Lchown(full, e.UID, e.GID); err != nil {
				t.Fatal(err)
			}
		}
		if e.Mode&fs.ModeSymlink == 0 && !e.Mode.IsDir() {
			if err := unix.Fchmodat(unix.AT_FDCWD, full, unixPerm(e.Mode, perm), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Directories last, so a read-only directory does not block its children.
	for i := len(dirs) - 1; i >= 0; i-- {
		e := tree[dirs[i]]
		if err := unix.Fchmodat(unix.AT_FDCWD, filepath.Join(root, dirs[i]), unixPerm(e.Mode, e.Mode.Perm()), 0); err != nil {
			t.Fatal(err)
		}
	}
}

func unixPerm(m fs.FileMode, perm fs.FileMode) uint32 {
	u := uint32(perm)
	if m&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

// ReadOptions say which properties Read records.
type ReadOptions struct {
	Owners bool // record UID/GID
	Xattrs bool // record xattrs (user.otreemeta is always left out)
}

// Read returns the tree under root. Hardlinks are not reported as Link (two
// paths with one inode read as two files); the root itself is left out.
func Read(t testing.TB, root string, o ReadOptions) Tree {
	t.Helper()
	tree := Tree{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := Entry{Mode: fi.Mode()}
		if fi.Mode()&fs.ModeSymlink != 0 {
			e.Target, _ = os.Readlink(p)
		} else if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Content = string(b)
		}
		if o.Owners {
			var s unix.Stat_t
			unix.Lstat(p, &s)
			e.UID, e.GID = int(s.Uid), int(s.Gid)
		}
		if o.Xattrs {
			e.Xattrs = readXattrs(p)
		}
		tree[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func readXattrs(p string) map[string]string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return nil
	}
	m := map[string]string{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || name == "user.otreemeta" {
			continue
		}
		v := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(p, name, v)
		if err == nil {
			m[name] = string(v[:vn])
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// DeepName is the name of each directory Deep nests: 200 bytes, so that
// the path of anything below 21 of them is longer than PATH_MAX (4096).
var DeepName = strings.Repeat("d", 200)

// Deep creates levels directories, each named DeepName inside the last,
// below root (which must exist), then tree inside the last one; it returns
// that directory's slash-separated path relative to root. Everything is
// made relative to open directories (os.Root), since the kernel takes no
// path longer than PATH_MAX; os.RemoveAll removes such a tree, and os.Root
// reads and changes it. Tree entries are regular files (with xattrs),
// symlinks and FIFOs, below directories Deep creates 0755.
func Deep(t testing.TB, root string, levels int, tree Tree) string {
	t.Helper()
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	chain := strings.TrimSuffix(strings.Repeat(DeepName+"/", levels), "/")
	if err := r.MkdirAll(chain, 0o755); err != nil {
		t.Fatal(err)
	}
	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		e, full := tree[p], chain+"/"+p
		if err := r.MkdirAll(path.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if e.Mode&fs.ModeSymlink != 0 {
			if err := r.Symlink(e.Target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if e.Mode&fs.ModeNamedPipe != 0 {
			d, err := r.Open(path.Dir(full))
			if err != nil {
				t.Fatal(err)
			}
			err = unix.Mkfifoat(int(d.Fd()), path.Base(full), uint32(e.Mode.Perm()))
			d.Close()
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := r.WriteFile(full, []byte(e.Content), 0o600); err != nil {
			t.Fatal(err)
		}
		perm := e.Mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if e.Mode == 0 {
			perm = 0o644
		}
		if err := r.Chmod(full, perm); err != nil {
			t.Fatal(err)
		}
		if len(e.Xattrs) > 0 {
			f, err := r.Open(full)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range e.Xattrs {
				if err := unix.Fsetxattr(int(f.Fd()), k, []byte(v), 0); err != nil {
					f.Close()
					t.Skipf("xattrs unsupported here: %v", err)
				}
			}
			f.Close()
		}
	}
	return chain
}
