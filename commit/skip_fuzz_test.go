package commit

import (
	"strings"
	"testing"
)

// FuzzSkipList checks that a skip list takes the paths it accepts as
// written, in their plain form, and leaves out exactly the entries at or
// below one of them, whatever the lengths of the paths and the probe.
func FuzzSkipList(f *testing.F) {
	f.Add("/usr/share/doc\n/etc/a b\n", "/usr/share/doc/x")
	f.Add("/a\n/a/b/c\n", "/a/b")
	f.Add("/a/\n", "/a")
	f.Add("/a/./b\n", "/a/b")
	f.Add("/ab\n", "/a")
	f.Add("/\n", "/x")
	f.Add("/x\r\n", "/x")
	f.Fuzz(func(t *testing.T, list, probe string) {
		paths := strings.Split(list, "\n")
		s, err := newSkipList(paths)
		if err != nil {
			if !strings.Contains(err.Error(), "skip-list path") {
				t.Fatalf("newSkipList error %q does not say what it read", err)
			}
			return
		}
		for _, p := range paths {
			if p == "/" || !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") ||
				strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
				t.Fatalf("newSkipList accepts %q, which names no entry below the root", p)
			}
			if !s.skipsFrom(p) || !s.skipsFrom(p+"/x") {
				t.Fatalf("skip list %q keeps %q or what is below it", paths, p)
			}
		}
		if checkTreePath("probe", probe) != nil {
			return
		}
		want := false
		for _, p := range paths {
			want = want || probe == p || strings.HasPrefix(probe, p+"/")
		}
		if got := s.skipsFrom(probe); got != want {
			t.Fatalf("skip list %q: skipsFrom(%q) = %v, want %v", paths, probe, got, want)
		}
		if got := s.covers(probe); got != want {
			t.Fatalf("skip list %q: covers(%q) = %v, want %v", paths, probe, got, want)
		}
	})
}
