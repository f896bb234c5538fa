package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/internal/testtree"
	"golang.org/x/sys/unix"
)

// etcAdminTime is the mtime of what the admin writes into /etc in the
// parity tests, so that a kept mtime shows.
var etcAdminTime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// etcOps are the admin's edits of the /etc at root; each fails the test
// on an error, but for errors.ErrUnsupported, which says the filesystem
// cannot hold the change.
type etcOps struct {
	t    *testing.T
	root string
}

func (o etcOps) p(rel string) string { return filepath.Join(o.root, rel) }

func (o etcOps) check(err error) {
	o.t.Helper()
	if err != nil {
		o.t.Fatal(err)
	}
}

// write replaces rel with a file holding content, dated etcAdminTime.
func (o etcOps) write(rel, content string) {
	o.t.Helper()
	o.check(os.RemoveAll(o.p(rel)))
	o.check(os.WriteFile(o.p(rel), []byte(content), 0o644))
	o.check(os.Chtimes(o.p(rel), etcAdminTime, etcAdminTime))
}

func (o etcOps) rm(rel string) { o.t.Helper(); o.check(os.RemoveAll(o.p(rel))) }

func (o etcOps) mkdir(rel string) {
	o.t.Helper()
	o.check(os.RemoveAll(o.p(rel)))
	o.check(os.Mkdir(o.p(rel), 0o755))
}

// symlink replaces rel with a link to target, dated etcAdminTime.
func (o etcOps) symlink(target, rel string) {
	o.t.Helper()
	o.check(os.RemoveAll(o.p(rel)))
	o.check(os.Symlink(target, o.p(rel)))
	ts := []unix.Timespec{unix.NsecToTimespec(etcAdminTime.UnixNano()), unix.NsecToTimespec(etcAdminTime.UnixNano())}
	o.check(unix.UtimesNanoAt(unix.AT_FDCWD, o.p(rel), ts, unix.AT_SYMLINK_NOFOLLOW))
}

func (o etcOps) setxattr(rel, name, value string) error {
	err := unix.Lsetxattr(o.p(rel), name, []byte(value), 0)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("setxattr %s: %w", name, errors.ErrUnsupported)
	}
	return err
}

// describeEtc lists what the tests compare of each entry below root:
// type, mode, owner, content or target, link count, xattrs but SELinux's
// label, and whether the mtime is the admin's, 1970 or another.
func describeEtc(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		var b strings.Builder
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "file %04o %q links=%d", st.Mode&0o7777, c, st.Nlink)
		case unix.S_IFDIR:
			fmt.Fprintf(&b, "dir %04o", st.Mode&0o7777)
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, "link -> %s", target)
		case unix.S_IFIFO:
			fmt.Fprintf(&b, "fifo %04o", st.Mode&0o7777)
		case unix.S_IFCHR:
			fmt.Fprintf(&b, "chr %04o %d,%d", st.Mode&0o7777, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		default:
			fmt.Fprintf(&b, "type %o", st.Mode&unix.S_IFMT)
		}
		fmt.Fprintf(&b, " %d:%d", st.Uid, st.Gid)
		buf := make([]byte, 4096)
		if n, err := unix.Llistxattr(p, buf); err == nil {
			names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
			slices.Sort(names)
			for _, name := range names {
				if name == "" || name == "security.selinux" {
					continue
				}
				v := make([]byte, 4096)
				vn, _ := unix.Lgetxattr(p, name, v)
				fmt.Fprintf(&b, " %s=%s", name, v[:max(vn, 0)])
			}
		}
		switch mt := time.Unix(st.Mtim.Unix()); {
		case mt.Equal(etcAdminTime):
			b.WriteString(" mtime=admin's")
		case mt.Unix() == 0:
			b.WriteString(" mtime=1970")
		}
		out[rel] = b.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// etcTwins are an otree and an OSTree sysroot with the stateroot cli,
// deploying the same commits.
type etcTwins struct {
	t    *testing.T
	a    *admin
	o    *ostreeRepo
	osys string
	ost  func(args ...string) string
}

func newEtcTwins(t *testing.T) *etcTwins {
	o := needOSTree(t, "bare")
	tw := &etcTwins{t: t, a: newAdmin(t), o: o}
	tw.osys, tw.ost = newOSTreeSysroot(t, o)
	return tw
}

// commit commits a bootable tree with etc as its usr/etc to cli/stable of
// both sysroots.
func (tw *etcTwins) commit(etc testtree.Tree) {
	tw.t.Helper()
	dir := tw.t.TempDir()
	writeBootableTree(tw.t, dir, "6.1.0-1", "motd\n")
	testtree.Create(tw.t, filepath.Join(dir, "usr/etc"), etc)
	tw.a.ok("commit", "-b", "cli/stable", dir)
	tw.ost("--repo="+filepath.Join(tw.osys, "ostree/repo"), "commit", "-b", "cli/stable", dir)
}

// deploy runs the same admin command with both tools and returns their
// results.
func (tw *etcTwins) deploy(args ...string) (mine, theirs result) {
	tw.t.Helper()
	mine = tw.a.run(append([]string{"admin"}, args...)...)
	cmd := exec.Command(tw.o.bin, append([]string{"admin", "--sysroot=" + tw.osys}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	theirs = result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
	if err != nil && theirs.code == 0 {
		tw.t.Fatalf("ostree %q: %v", args, err)
	}
	return mine, theirs
}

// current returns the directories of both tools' default deployments.
func (tw *etcTwins) current() (mine, theirs string) {
	tw.t.Helper()
	return strings.TrimSpace(tw.a.ok("admin", "--print-current-dir")),
		strings.TrimSpace(tw.ost("admin", "--sysroot="+tw.osys, "--print-current-dir"))
}

// etcMergeCase is one path of /etc, named by the case, in the old
// defaults, changed by the admin, and in the new defaults. Where otree
// holds what OSTree does not, on purpose (docs/DEPLOY.md §"/etc"), ours
// is what otree holds there: a description, or "" for nothing.
type etcMergeCase struct {
	name     string
	old, new testtree.Tree
	admin    func(o etcOps, name string) error
	ours     map[string]string
}

func file(content string) testtree.Entry { return testtree.File(content, 0o644) }

// The new /etc that otree admin upgrade merges holds what OSTree's holds
// for the same old defaults, admin's /etc and new defaults, path by path,
// in type, mode, owner, content, link target, xattrs, link count and
// mtime, but for the differences docs/DEPLOY.md lists; config-diff lists
// the admin's changes as OSTree's does; both keep the stateroot's /var
// and the origin's other groups.
func TestAdminEtcMergeParityWithOSTree(t *testing.T) {
	tw := newEtcTwins(t)
	ok := func(f func(o etcOps, name string)) func(etcOps, string) error {
		return func(o etcOps, name string) error { f(o, name); return nil }
	}
	none := func(etcOps, string) error { return nil }
	cases := []etcMergeCase{
		{name: "admin-modified", old: testtree.Tree{"admin-modified": file("a")}, new: testtree.Tree{"admin-modified": file("a")},
			admin: ok(func(o etcOps, n string) { o.write(n, "mine") })},
		{name: "default-modified", old: testtree.Tree{"default-modified": file("a")}, new: testtree.Tree{"default-modified": file("new")}, admin: none},
		{name: "both-modified", old: testtree.Tree{"both-modified": file("a")}, new: testtree.Tree{"both-modified": file("new")},
			admin: ok(func(o etcOps, n string) { o.write(n, "mine") })},
		{name: "both-same", old: testtree.Tree{"both-same": file("a")}, new: testtree.Tree{"both-same": file("b")},
			admin: ok(func(o etcOps, n string) { o.write(n, "b") })},
		{name: "admin-deleted", old: testtree.Tree{"admin-deleted": file("a")}, new: testtree.Tree{"admin-deleted": file("a")},
			admin: ok(func(o etcOps, n string) { o.rm(n) })},
		{name: "admin-deleted-default-modified", old: testtree.Tree{"admin-deleted-default-modified": file("a")},
			new: testtree.Tree{"admin-deleted-default-modified": file("new")}, admin: ok(func(o etcOps, n string) { o.rm(n) })},
		{name: "default-deleted", old: testtree.Tree{"default-deleted": file("a")}, new: testtree.Tree{}, admin: none},
		{name: "default-deleted-admin-modified", old: testtree.Tree{"default-deleted-admin-modified": file("a")}, new: testtree.Tree{},
			admin: ok(func(o etcOps, n string) { o.write(n, "mine") })},
		{name: "admin-added", admin: ok(func(o etcOps, n string) { o.write(n, "mine") })},
		{name: "default-added", new: testtree.Tree{"default-added": file("new")}, admin: none},
		{name: "both-added", new: testtree.Tree{"both-added": file("new")}, admin: ok(func(o etcOps, n string) { o.write(n, "mine") })},
		{name: "admin-file-to-dir", old: testtree.Tree{"admin-file-to-dir": file("a")}, new: testtree.Tree{"admin-file-to-dir": file("a")},
			admin: ok(func(o etcOps, n string) { o.mkdir(n); o.write(n+"/f", "mine") })},
		{name: "admin-file-to-link", old: testtree.Tree{"admin-file-to-link": file("a")}, new: testtree.Tree{"admin-file-to-link": file("a")},
			admin: ok(func(o etcOps, n string) { o.symlink("elsewhere", n) })},
		{name: "admin-link-to-file", old: testtree.Tree{"admin-link-to-file": testtree.Symlink("x")},
			new: testtree.Tree{"admin-link-to-file": testtree.Symlink("x")}, admin: ok(func(o etcOps, n string) { o.write(n, "mine") })},
		{name: "default-file-to-dir", old: testtree.Tree{"default-file-to-dir": file("a")}, new: testtree.Tree{"default-file-to-dir/f": file("new")}, admin: none},
		{name: "default-file-to-link", old: testtree.Tree{"default-file-to-link": file("a")},
			new: testtree.Tree{"default-file-to-link": testtree.Symlink("x")}, admin: none},
		{name: "default-dir-to-file", old: testtree.Tree{"default-dir-to-file/f": file("a")}, new: testtree.Tree{"default-dir-to-file": file("new")}, admin: none},
		{name: "default-dir-to-link", old: testtree.Tree{"default-dir-to-link/f": file("a")},
			new: testtree.Tree{"default-dir-to-link": testtree.Symlink("x")}, admin: none},
		{name: "default-link-to-file", old: testtree.Tree{"default-link-to-file": testtree.Symlink("x")},
			new: testtree.Tree{"default-link-to-file": file("new")}, admin: none},
		{name: "link-admin", old: testtree.Tree{"link-admin": testtree.Symlink("x")}, new: testtree.Tree{"link-admin": testtree.Symlink("x")},
			admin: ok(func(o etcOps, n string) { o.symlink("y", n) })},
		{name: "link-default", old: testtree.Tree{"link-default": testtree.Symlink("x")}, new: testtree.Tree{"link-default": testtree.Symlink("y")}, admin: none},
		{name: "link-both", old: testtree.Tree{"link-both": testtree.Symlink("x")}, new: testtree.Tree{"link-both": testtree.Symlink("z")},
			admin: ok(func(o etcOps, n string) { o.symlink("y", n) })},
		{name: "chmod", old: testtree.Tree{"chmod": file("a")}, new: testtree.Tree{"chmod": file("a")},
			admin: ok(func(o etcOps, n string) { o.check(os.Chmod(o.p(n), 0o600)) })},
		{name: "chmod-default-modified", old: testtree.Tree{"chmod-default-modified": file("a")}, new: testtree.Tree{"chmod-default-modified": file("new")},
			admin: ok(func(o etcOps, n string) { o.check(os.Chmod(o.p(n), 0o600)) })},
		{name: "chown", old: testtree.Tree{"chown": file("a")}, new: testtree.Tree{"chown": file("a")},
			admin: ok(func(o etcOps, n string) { o.check(os.Lchown(o.p(n), 1000, 1001)) })},
		{name: "mtime", old: testtree.Tree{"mtime": file("a")}, new: testtree.Tree{"mtime": file("a")},
			admin: ok(func(o etcOps, n string) { o.check(os.Chtimes(o.p(n), etcAdminTime, etcAdminTime)) })},
		{name: "xattr-user", old: testtree.Tree{"xattr-user": file("a")}, new: testtree.Tree{"xattr-user": file("a")},
			admin: func(o etcOps, n string) error { return o.setxattr(n, "user.mine", "1") },
			ours:  map[string]string{"xattr-user": `file 0644 "a" links=1 0:0 user.mine=1`}},
		{name: "xattr-security", old: testtree.Tree{"xattr-security": file("a")}, new: testtree.Tree{"xattr-security": file("a")},
			admin: func(o etcOps, n string) error { return o.setxattr(n, "security.otreetest", "1") },
			ours:  map[string]string{"xattr-security": `file 0644 "a" links=1 0:0 security.otreetest=1`}},
		{name: "xattr-and-content", old: testtree.Tree{"xattr-and-content": file("a")}, new: testtree.Tree{"xattr-and-content": file("a")},
			admin: func(o etcOps, n string) error { o.write(n, "mine"); return o.setxattr(n, "user.mine", "1") }},
		{name: "xattr-default", old: testtree.Tree{"xattr-default": file("a")},
			new: testtree.Tree{"xattr-default": {Mode: 0o644, Content: "a", Xattrs: map[string]string{"user.new": "1"}}}, admin: none},
		{name: "hardlinks-admin", admin: ok(func(o etcOps, n string) {
			o.mkdir(n)
			o.write(n+"/a", "mine")
			o.check(os.Link(o.p(n+"/a"), o.p(n+"/b")))
		})},
		{name: "hardlinks-default", old: testtree.Tree{"hardlinks-default/a": file("same"), "hardlinks-default/b": file("same")},
			new:   testtree.Tree{"hardlinks-default/a": file("same"), "hardlinks-default/b": file("same")},
			admin: ok(func(o etcOps, n string) { o.write(n+"/a", "mine") })},
		{name: "dir-mode", old: testtree.Tree{"dir-mode/f": file("a")}, new: testtree.Tree{"dir-mode/f": file("new")},
			admin: ok(func(o etcOps, n string) { o.check(os.Chmod(o.p(n), 0o700)) }),
			ours:  map[string]string{"dir-mode": "dir 0700 0:0"}},
		{name: "dir-owner", old: testtree.Tree{"dir-owner/f": file("a")}, new: testtree.Tree{"dir-owner/f": file("new")},
			admin: ok(func(o etcOps, n string) { o.check(os.Lchown(o.p(n), 1000, 1000)) }),
			ours:  map[string]string{"dir-owner": "dir 0755 1000:1000"}},
		{name: "empty-dir-admin", admin: ok(func(o etcOps, n string) { o.mkdir(n) })},
		{name: "empty-dir-default", new: testtree.Tree{"empty-dir-default": testtree.Dir(0o750)}, admin: none},
		{name: "empty-dir-admin-deleted", old: testtree.Tree{"empty-dir-admin-deleted": testtree.Dir(0o755)},
			new: testtree.Tree{"empty-dir-admin-deleted": testtree.Dir(0o755)}, admin: ok(func(o etcOps, n string) { o.rm(n) })},
		// The new default's mode holds for a directory the admin left
		// alone; OSTree gives it the old /etc's as it copies the file
		// added below.
		{name: "dir-default-mode-admin-added-below", old: testtree.Tree{"dir-default-mode-admin-added-below/f": file("a")},
			new:   testtree.Tree{"dir-default-mode-admin-added-below": testtree.Dir(0o750), "dir-default-mode-admin-added-below/f": file("a")},
			admin: ok(func(o etcOps, n string) { o.write(n+"/mine", "mine") }),
			ours:  map[string]string{"dir-default-mode-admin-added-below": "dir 0750 0:0"}},
		// The admin's mode stays on a directory the new defaults remove;
		// the defaults below it go with the new defaults, where OSTree
		// keeps them.
		{name: "dir-mode-default-deleted", old: testtree.Tree{"dir-mode-default-deleted/f": file("a")},
			admin: ok(func(o etcOps, n string) { o.check(os.Chmod(o.p(n), 0o700)) }),
			ours:  map[string]string{"dir-mode-default-deleted": "dir 0700 0:0", "dir-mode-default-deleted/f": ""}},
		// A file the admin made a directory, which the new defaults make
		// one too: what the admin put there is kept; OSTree drops it.
		{name: "admin-file-to-dir-default-file-to-dir", old: testtree.Tree{"admin-file-to-dir-default-file-to-dir": file("a")},
			new:   testtree.Tree{"admin-file-to-dir-default-file-to-dir/new": file("new")},
			admin: ok(func(o etcOps, n string) { o.mkdir(n); o.write(n+"/f", "mine") }),
			ours:  map[string]string{"admin-file-to-dir-default-file-to-dir/f": `file 0644 "mine" links=1 0:0 mtime=admin's`}},
		{name: "default-dir-deleted-admin-added-below", old: testtree.Tree{"default-dir-deleted-admin-added-below/f": file("a")},
			admin: ok(func(o etcOps, n string) { o.write(n+"/mine", "mine") })},
		{name: "fifo", admin: ok(func(o etcOps, n string) { o.check(unix.Mkfifo(o.p(n), 0o640)) }),
			ours: map[string]string{"fifo": "fifo 0640 0:0"}},
		{name: "device", admin: ok(func(o etcOps, n string) { o.check(unix.Mknod(o.p(n), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3)))) }),
			ours: map[string]string{"device": "chr 0600 1,3 0:0"}},
		{name: "socket", admin: ok(func(o etcOps, n string) {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			o.check(err)
			defer unix.Close(fd)
			// A socket's path is at most 107 bytes: bind through the
			// directory's descriptor.
			dir, err := os.Open(o.root)
			o.check(err)
			defer dir.Close()
			o.check(unix.Bind(fd, &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), n)}))
		})},
		{name: "unreadable", old: testtree.Tree{"unreadable": file("a")}, new: testtree.Tree{"unreadable": file("a")},
			admin: ok(func(o etcOps, n string) { o.check(os.Chmod(o.p(n), 0)) })},
		{name: "unreadable-added", admin: ok(func(o etcOps, n string) { o.write(n, "secret"); o.check(os.Chmod(o.p(n), 0)) })},
		{name: "link-out-of-etc", admin: ok(func(o etcOps, n string) { o.symlink("../usr/lib/os-release", n) })},
		{name: "link-loop", admin: ok(func(o etcOps, n string) {
			o.mkdir(n)
			o.symlink("b", n+"/a")
			o.symlink("a", n+"/b")
		})},
		{name: "name-not-utf8\xff", admin: ok(func(o etcOps, n string) { o.write(n, "mine") })},
		{name: "mount", old: testtree.Tree{"mount/under": file("a")}, new: testtree.Tree{"mount/under": file("a")},
			admin: ok(func(o etcOps, n string) {
				o.check(unix.Mount("none", o.p(n), "tmpfs", 0, "size=1m,mode=0755"))
				o.t.Cleanup(func() { unix.Unmount(o.p(n), unix.MNT_DETACH) })
				o.write(n+"/mounted", "mine")
			})},
	}
	oldEtc, newEtc := testtree.Tree{}, testtree.Tree{}
	for _, c := range cases {
		for k, v := range c.old {
			oldEtc[k] = v
		}
		for k, v := range c.new {
			newEtc[k] = v
		}
	}
	tw.commit(oldEtc)
	tw.deploy("deploy", "--os=cli", "cli/stable")
	mineDep, theirsDep := tw.current()
	unsupported := map[string]bool{}
	for _, dep := range []string{mineDep, theirsDep} {
		for _, c := range cases {
			if err := c.admin(etcOps{t, filepath.Join(dep, "etc")}, c.name); errors.Is(err, errors.ErrUnsupported) {
				t.Logf("%s: %v", c.name, err)
				unsupported[c.name] = true
			} else if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		// The origin's other groups are the admin's too.
		f, err := os.OpenFile(dep+".origin", os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, "[mine]\nkey=1\n")
		f.Close()
	}
	stateVar := []string{filepath.Join(tw.a.sys, "otree/deploy/cli/var"), filepath.Join(tw.osys, "ostree/deploy/cli/var")}
	for _, v := range stateVar {
		if err := os.WriteFile(filepath.Join(v, "lib/state"), []byte("kept"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// What the admin changed, as config-diff lists it.
	lines := func(s string) []string {
		l := strings.Split(strings.TrimSpace(s), "\n")
		slices.Sort(l)
		return l
	}
	mineDiff, theirsDiff := lines(tw.a.ok("admin", "config-diff", "--os=cli")), lines(tw.ost("admin", "--sysroot="+tw.osys, "config-diff", "--os=cli"))
	mineDiff = slices.DeleteFunc(mineDiff, func(l string) bool {
		return strings.HasPrefix(l, "M    xattr-user") || strings.HasPrefix(l, "M    xattr-security")
	})
	// otree quotes a name that is not printable UTF-8 (as diff does);
	// OSTree writes its bytes.
	for i, l := range mineDiff {
		if st, name, ok := strings.Cut(l, "    "); ok && strings.HasPrefix(name, `"`) {
			if raw, err := strconv.Unquote(name); err == nil {
				mineDiff[i] = st + "    " + raw
			}
		}
	}
	slices.Sort(mineDiff)
	if !slices.Equal(mineDiff, theirsDiff) {
		t.Errorf("config-diff, the xattr-only changes aside: otree\n%s\nOSTree\n%s", strings.Join(mineDiff, "\n"), strings.Join(theirsDiff, "\n"))
	}

	tw.commit(newEtc)
	if mine, theirs := tw.deploy("upgrade", "--os=cli"); mine.code != 0 || theirs.code != 0 {
		t.Fatalf("upgrade: otree exit %d %s%s\nOSTree exit %d %s%s", mine.code, mine.stdout, mine.stderr, theirs.code, theirs.stdout, theirs.stderr)
	}
	newMine, newTheirs := tw.current()
	if newMine == mineDep || newTheirs == theirsDep {
		t.Fatalf("upgrade made no new default deployment: otree %s, OSTree %s", newMine, newTheirs)
	}
	mine, theirs := describeEtc(t, filepath.Join(newMine, "etc")), describeEtc(t, filepath.Join(newTheirs, "etc"))
	for _, c := range cases {
		if unsupported[c.name] {
			continue
		}
		var paths []string
		for _, m := range []map[string]string{mine, theirs, c.ours} {
			for p := range m {
				if (p == c.name || strings.HasPrefix(p, c.name+"/")) && !slices.Contains(paths, p) {
					paths = append(paths, p)
				}
			}
		}
		slices.Sort(paths)
		for _, p := range paths {
			if want, ok := c.ours[p]; ok {
				if mine[p] != want {
					t.Errorf("%s: otree's /etc/%s is %q, want %q (OSTree's: %q)", c.name, p, mine[p], want, theirs[p])
				}
			} else if mine[p] != theirs[p] {
				t.Errorf("%s: otree's /etc/%s is %q, OSTree's %q", c.name, p, mine[p], theirs[p])
			}
		}
	}

	for _, v := range stateVar {
		if b, err := os.ReadFile(filepath.Join(v, "lib/state")); string(b) != "kept" {
			t.Errorf("%s after the upgrade: %q, %v", v, b, err)
		}
	}
	readOrigin := func(dep string) []string {
		b, err := os.ReadFile(dep + ".origin")
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(strings.Split(string(b), "\n"), func(l string) bool { return l == "" })
	}
	if m, th := readOrigin(newMine), readOrigin(newTheirs); !slices.Equal(m, th) {
		t.Errorf("new origin: otree %q, OSTree %q", m, th)
	}
}

// Where the new defaults and the admin's /etc cannot be merged, or where
// the two tools decide differently on purpose (docs/DEPLOY.md §"/etc"),
// a deploy of each case refuses, naming the path, or succeeds as
// documented; a refused deploy leaves the sysroot booting the deployment
// it booted, with no new deployment directory.
func TestAdminEtcMergeOutcomesWithOSTree(t *testing.T) {
	deep := func(o etcOps, n string) error {
		o.mkdir(n)
		testtree.Deep(o.t, o.p(n), 22, testtree.Tree{"f": file("deep")})
		return nil
	}
	for _, c := range []struct {
		label         string
		name          string
		old, new      testtree.Tree
		admin         func(o etcOps, n string) error
		mineOK, ostOK bool
		keep          string // a path of otree's new /etc that holds the admin's file, when it deploys
		sameEtcCounts bool   // both print the same "Copying /etc changes:" line
	}{
		{label: "modified-file-new-dir", name: "x", old: testtree.Tree{"x": file("a")}, new: testtree.Tree{"x/f": file("a")},
			admin: func(o etcOps, n string) error { o.write(n, "mine"); return nil }},
		{label: "added-file-new-dir", name: "x", new: testtree.Tree{"x/f": file("a")},
			admin: func(o etcOps, n string) error { o.write(n, "mine"); return nil }},
		{label: "added-link-new-dir", name: "x", new: testtree.Tree{"x/f": file("a")},
			admin: func(o etcOps, n string) error { o.symlink("y", n); return nil }},
		{label: "changed-below-dir-new-file", name: "x", old: testtree.Tree{"x/f": file("a")}, new: testtree.Tree{"x": file("a")},
			admin: func(o etcOps, n string) error { o.write(n+"/f", "mine"); return nil }},
		// Documented differences: otree refuses what OSTree merges, and
		// the other way round.
		{label: "dir-mode-dir-new-file", name: "x", old: testtree.Tree{"x/f": file("a")}, new: testtree.Tree{"x": file("a")},
			admin: func(o etcOps, n string) error { return os.Chmod(o.p(n), 0o700) }, ostOK: true},
		{label: "dir-to-file", name: "x", old: testtree.Tree{"x/f": file("a")}, new: testtree.Tree{"x/f": file("a")},
			admin:  func(o etcOps, n string) error { o.rm(n); o.write(n, "mine"); return nil },
			mineOK: true, keep: "x", sameEtcCounts: true},
		{label: "dir-to-link", name: "x", old: testtree.Tree{"x/f": file("a")}, new: testtree.Tree{"x/f": file("a")},
			admin:  func(o etcOps, n string) error { o.rm(n); o.symlink("y", n); return nil },
			mineOK: true, keep: "x", sameEtcCounts: true},
		// OSTree fails removing the deleted entry below what is now a
		// file ("unlinkat(x/f): Not a directory").
		{label: "deleted-below-dir-new-file", name: "x", old: testtree.Tree{"x/f": file("a"), "x/g": file("a")}, new: testtree.Tree{"x": file("new")},
			admin: func(o etcOps, n string) error { o.rm(n + "/f"); return nil }, mineOK: true, keep: "x"},
		{label: "deep", name: "deep", admin: deep, mineOK: true,
			keep: "deep/" + strings.TrimSuffix(strings.Repeat(testtree.DeepName+"/", 22), "/") + "/f"},
	} {
		t.Run(c.label, func(t *testing.T) {
			tw := newEtcTwins(t)
			tw.commit(c.old)
			tw.deploy("deploy", "--os=cli", "cli/stable")
			mineDep, theirsDep := tw.current()
			for _, dep := range []string{mineDep, theirsDep} {
				if err := c.admin(etcOps{t, filepath.Join(dep, "etc")}, c.name); err != nil {
					t.Fatal(err)
				}
			}
			entries, _ := os.ReadDir(filepath.Dir(mineDep))
			tw.commit(c.new)
			mine, theirs := tw.deploy("deploy", "--os=cli", "cli/stable")
			if (mine.code == 0) != c.mineOK || (theirs.code == 0) != c.ostOK {
				t.Fatalf("deploy: otree exit %d %s%s\nOSTree exit %d %s%s", mine.code, mine.stdout, mine.stderr, theirs.code, theirs.stdout, theirs.stderr)
			}
			if c.sameEtcCounts {
				counts := regexp.MustCompile(`Copying /etc changes: .*`)
				if m, th := counts.FindString(mine.stdout), counts.FindString(theirs.stdout); m == "" || m != th {
					t.Errorf("otree printed %q, OSTree %q", m, th)
				}
			}
			newMine, _ := tw.current()
			if !c.mineOK {
				if !strings.Contains(mine.stderr, "/etc/"+c.name) {
					t.Errorf("otree's error does not name /etc/%s: %s", c.name, mine.stderr)
				}
				after, _ := os.ReadDir(filepath.Dir(mineDep))
				if newMine != mineDep || len(after) != len(entries) {
					t.Errorf("after the refused deploy: default %s (was %s), %d entries in deploy/ (were %d)", newMine, mineDep, len(after), len(entries))
				}
				return
			}
			r, err := os.OpenRoot(filepath.Join(newMine, "etc"))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if fi, err := r.Lstat(c.keep); err != nil || newMine == mineDep {
				t.Errorf("otree's new /etc: %v, %v (deployment %s, was %s)", fi, err, newMine, mineDep)
			}
		})
	}
}
