package remote

import (
	"slices"
	"testing"

	"github.com/otree/otree/internal/mountinfo"
)

func TestParseMountInfo(t *testing.T) {
	text := `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:5 / /proc rw,nosuid shared:12 - proc proc rw
26 22 0:22 / /sys rw shared:2 - sysfs sysfs rw
40 22 0:40 / /mnt/auto rw shared:20 - autofs systemd-1 rw,fd=40
41 22 8:17 / /media/USB\040Stick rw,nosuid shared:30 - vfat /dev/sdb1 rw
42 22 8:17 / /media/back\134slash rw shared:31 opt:1 - exfat /dev/sdc1 rw
43 22 8:17 / /media/USB\040Stick rw shared:32 - vfat /dev/sdb1 rw
44 22 0:50 / /run/user/0 rw - tmpfs tmpfs rw
45 22 0:51 / /srv/nfs rw - nfs4 server:/export rw,hard
46 22 0:52 / /srv/share rw - cifs //server/share rw
47 22 0:53 / /home/u/remote rw - fuse.sshfs u@host:/ rw

`
	got := mountPoints(mountinfo.Parse([]byte(text)))
	want := []string{"/", "/media/USB Stick", `/media/back\slash`, "/run/user/0"}
	if !slices.Equal(got, want) {
		t.Errorf("mount points %q, want %q", got, want)
	}
}
