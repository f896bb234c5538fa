// Package mountinfo parses the mount table of a mount namespace, as
// /proc/self/mountinfo shows it.
package mountinfo

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
)

// Mount is one line of mountinfo.
type Mount struct {
	ID         uint64
	Parent     uint64 // the ID of the mount this one is mounted on
	Dev        string // the filesystem's device, "major:minor"
	Root       string // the directory of the filesystem mounted (unescaped): not "/" for a bind mount
	MountPoint string // unescaped
	FSType     string
	// Shared tells that the mount propagates to a peer group (an
	// optional field "shared:N").
	Shared bool
}

// Self reads and parses the mount table of this process's namespace.
func Self() ([]Mount, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	return Parse(data), nil
}

// Parse reads the lines of a mountinfo text, in the order mounted:
//
//	ID parent major:minor root mount-point options [optional...] - type source super-options
//
// Lines that do not have that shape are skipped. Fields are split at
// spaces only: the kernel escapes space, tab, newline and backslash in a
// path, but leaves every other byte (a carriage return, a no-break or
// ideographic space) as it is.
func Parse(data []byte) []Mount {
	var out []Mount
	for line := range strings.Lines(string(data)) {
		fields := strings.FieldsFunc(strings.TrimSuffix(line, "\n"), func(r rune) bool { return r == ' ' })
		if len(fields) < 7 {
			continue
		}
		id, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		parent, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			continue
		}
		m := Mount{ID: id, Parent: parent, Dev: fields[2], Root: unescape(fields[3]), MountPoint: unescape(fields[4])}
		for i, f := range fields[6:] {
			if f == "-" {
				if rest := fields[6+i+1:]; len(rest) > 0 {
					m.FSType = rest[0]
				}
				break
			}
			if strings.HasPrefix(f, "shared:") {
				m.Shared = true
			}
		}
		out = append(out, m)
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space, \134 for a
// backslash, and so on).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			n, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
			b.WriteByte(byte(n))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	return len(s) == 3 && s[0] >= '0' && s[0] <= '3' &&
		s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7'
}

// Locate names the file at the absolute, clean path p (no symlinks) by its
// filesystem's device and its path from that filesystem's root, through
// the mount that p is under in mounts: two paths that reach one directory
// through different bind mounts locate alike. ok is false when no mount
// covers p.
//
// The mount is found as the kernel walks p: from the root mount down,
// each step to the child mount that covers p with the shortest mount
// point. A longer one among that mount's children is mounted on a
// directory the shorter one hides (it was there before the shorter one
// was mounted over a directory above it), and a mount stacked on
// another's mount point is that one's child.
func Locate(mounts []Mount, p string) (dev, fsPath string, ok bool) {
	listed := make(map[uint64]bool, len(mounts))
	for _, m := range mounts {
		listed[m.ID] = true
	}
	covering := func(child func(Mount) bool) int {
		best := -1
		for i, m := range mounts {
			mp := m.MountPoint
			if !child(m) || p != mp && mp != "/" && !strings.HasPrefix(p, mp+"/") {
				continue
			}
			// Of equal mount points, the last listed (mounted).
			if best < 0 || len(mp) <= len(mounts[best].MountPoint) {
				best = i
			}
		}
		return best
	}
	// The roots: mounts whose parent is not shown (outside this root).
	cur := covering(func(m Mount) bool { return m.Parent == m.ID || !listed[m.Parent] })
	for range mounts { // bounded, should the parents loop
		if cur < 0 {
			break
		}
		id := mounts[cur].ID
		next := covering(func(m Mount) bool { return m.Parent == id && m.ID != id })
		if next < 0 {
			break
		}
		cur = next
	}
	if cur < 0 {
		return "", "", false
	}
	m := mounts[cur]
	return m.Dev, path.Join(m.Root, strings.TrimPrefix(p, m.MountPoint)), true
}
