package mountinfo

import "testing"

// A bind mount's root is the directory mounted: paths through it locate
// as the same paths through the filesystem's own mount point.
func TestLocate(t *testing.T) {
	mounts := Parse([]byte(`22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:25 / /tmp rw shared:5 - tmpfs tmpfs rw
31 22 8:1 /srv/repo/refs /mnt/my\040refs rw - ext4 /dev/sda1 rw
32 30 0:25 /x /tmp/y rw - tmpfs tmpfs rw
33 30 0:26 / /tmp/y rw - tmpfs tmpfs rw
40 30 0:27 / /tmp/o/p rw - tmpfs tmpfs rw
41 30 0:28 / /tmp/o rw - tmpfs tmpfs rw
42 41 0:29 /sub /tmp/o/q rw - tmpfs tmpfs rw
43 42 0:30 / /tmp/o/q rw - tmpfs tmpfs rw
`))
	for _, tc := range []struct{ p, dev, fs string }{
		{"/", "8:1", "/"},
		{"/srv/repo/refs/heads", "8:1", "/srv/repo/refs/heads"},
		{"/mnt/my refs/heads", "8:1", "/srv/repo/refs/heads"},
		{"/mnt/my refs", "8:1", "/srv/repo/refs"},
		{"/mnt/my refsx", "8:1", "/mnt/my refsx"},
		{"/tmp/a", "0:25", "/a"},
		{"/tmp/y/z", "0:26", "/z"}, // the later mount hides the earlier
		// 41 over /tmp/o hides 40, mounted on /tmp's /o/p before it.
		{"/tmp/o/p/z", "0:28", "/p/z"},
		{"/tmp/o/p", "0:28", "/p"},
		{"/tmp/o/q/z", "0:30", "/z"}, // 43 is stacked on 42
		{"/tmp/o", "0:28", "/"},
	} {
		dev, fs, ok := Locate(mounts, tc.p)
		if !ok || dev != tc.dev || fs != tc.fs {
			t.Errorf("Locate(%q) = %q %q %v, want %q %q", tc.p, dev, fs, ok, tc.dev, tc.fs)
		}
	}
	if _, _, ok := Locate(nil, "/x"); ok {
		t.Error("Locate with no mounts found one")
	}
}
