package mountinfo

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// escape writes s as the kernel writes a path in mountinfo: space, tab,
// newline and backslash as octal escapes, every other byte as it is.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// format writes m as a mountinfo line.
func format(m Mount) string {
	opt := ""
	if m.Shared {
		opt = " shared:7"
	}
	return fmt.Sprintf("%d %d %s %s %s rw,relatime%s - %s src rw\n", m.ID, m.Parent, m.Dev, escape(m.Root), escape(m.MountPoint), opt, m.FSType)
}

// FuzzParseRoundTrip checks that every mount the kernel could list reads
// back as it was: paths hold any byte but NUL, the kernel escaping only
// space, tab, newline and backslash.
func FuzzParseRoundTrip(f *testing.F) {
	f.Add(uint64(22), uint64(1), "/", "/", "ext4", true)
	f.Add(uint64(31), uint64(22), "/srv/repo refs", "/mnt/my\trefs\\x", "tmpfs", false)
	f.Add(uint64(66), uint64(46), "/", "/tmp/a\rb", "tmpfs", false)
	f.Add(uint64(67), uint64(46), "/", "/tmp/c\u3000d", "tmpfs", false)
	f.Add(uint64(68), uint64(46), "/x\u00a0y", "/tmp/e\u00a0f", "fuse.sshfs", true)
	f.Fuzz(func(t *testing.T, id, parent uint64, root, mp, fstype string, shared bool) {
		if root == "" || mp == "" || strings.ContainsRune(root+mp, 0) ||
			fstype == "" || fstype == "-" || strings.ContainsAny(fstype, " \t\n\\\x00") {
			return
		}
		want := Mount{ID: id, Parent: parent, Dev: "0:42", Root: root, MountPoint: mp, FSType: fstype, Shared: shared}
		line := format(want)
		got := Parse([]byte(line))
		if len(got) != 1 || got[0] != want {
			t.Fatalf("Parse(%q) = %+v, want [%+v]", line, got, want)
		}
	})
}

// FuzzParse checks that each mount Parse reads from any text, written out
// again as the kernel would, reads back the same.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n31 22 8:1 /srv/repo/refs /mnt/my\\040refs rw - ext4 /dev/sda1 rw\n"))
	f.Add([]byte("1 2 3 4 5 6 7\n\n8 9 a b c d e - \n30 22 0:25 / /t\\13 rw - tmpfs tmpfs rw"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range Parse(data) {
			if strings.ContainsAny(m.Dev, " \n") || m.FSType == "-" {
				continue // no kernel lists these
			}
			if m.FSType == "" || strings.ContainsAny(m.FSType, " \t\n\\") || strings.ContainsAny(m.Dev, "\t\\") || m.Root == "" || m.MountPoint == "" {
				continue
			}
			line := format(m)
			if got := Parse([]byte(line)); len(got) != 1 || got[0] != m {
				t.Fatalf("%+v written as %q reads back as %+v", m, line, got)
			}
		}
	})
}
