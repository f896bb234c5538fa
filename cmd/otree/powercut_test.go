package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otree/otree/internal/debroot"
	"github.com/otree/otree/internal/testbin"
	"github.com/otree/otree/internal/testtree"
)

// pcKillsEnv sets how many times TestPowerCutVM cuts the power of each
// workload, pcKills unless set; odd cuts fall inside an operation, even
// ones in the pause after one.
const (
	pcKillsEnv = "OTREE_TEST_POWERCUT_KILLS"
	pcKills    = 2
)

// pcWorkEnv, when set, names the workloads TestPowerCutVM runs, commit,
// deploy and commit-btrfs (default all three), comma-separated.
const pcWorkEnv = "OTREE_TEST_POWERCUT_WORKLOADS"

// pcPause is how long the guest waits between operations.
const pcPause = 2 * time.Second

// pcPrefix starts each line the guest's workload reports on its second
// serial port.
const pcPrefix = "OTREE-POWERCUT "

// pcInit is the guest's init (init=): it makes the kernel write nothing
// back on its own, so that only otree's syncs make its writes durable, and
// then runs the workload the kernel command line names, reporting each
// operation as it starts and as it ends, until the power goes.
//
// ext4 is remounted with noauto_da_alloc (a file renamed over another is
// not flushed for the program) and a journal commit interval longer than
// any run, so that neither the journal's timer nor that heuristic makes a
// missing fsync good. commit-btrfs is the commit workload with the
// repositories on a btrfs disk (/dev/vdb), whose transaction interval is
// as long: there an fsync writes only its inode to btrfs's log tree, so a
// rename that no sync made durable is lost even when a later fsync (the
// ref's) was not, where ext4's journal commit would carry it.
const pcInit = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# The initramfs moved its /proc and /sys here.
[ -e /proc/cmdline ] || mount -t proc proc /proc
[ -d /sys/kernel ] || mount -t sysfs sys /sys
exec >/dev/ttyS1 2>&1
say() { echo "` + pcPrefix + `$*"; }
mount -o remount,rw,noauto_da_alloc,commit=3600 / || say "fail 0 remount 1"
echo 0 >/proc/sys/vm/dirty_writeback_centisecs
echo 360000 >/proc/sys/vm/dirty_expire_centisecs
echo 90 >/proc/sys/vm/dirty_ratio
echo 80 >/proc/sys/vm/dirty_background_ratio
arg=$(sed -n 's/.*otree_powercut=\([a-z-]*\):\([0-9]*\).*/\1 \2/p' /proc/cmdline)
set -- $arg
work=$1 boot=$2 pre=
if [ "$work" = commit-btrfs ]; then
	modprobe btrfs && mount -t btrfs -o commit=3600 /dev/vdb /repos/btrfs || say "fail 0 mount 1"
	work=commit pre=btrfs/
fi
say "ready $1 $boot"
n=0
while :; do
	n=$((n+1))
	case $work in
	commit)
		# Every file object is new in each commit: its owner is. Boots 1
		# and 2 (of each four) start with bu, so that the cut inside the
		# second commit falls in ar, 3 and 4 with ar.
		order="bu ar"
		case $((boot%4)) in 0|3) order="ar bu" ;; esac
		for r in $order; do
			r=$pre$r s="boot$boot-$n"
			say "start $n $r $s"
			if out=$(otree --repo=/repos/$r commit -b main -s "$s" --owner-uid=$((boot*1000+n)) /src 2>&1); then
				say "done $n $r $out"
			else
				say "fail $n $r $? $(echo "$out" | tr '\n' ' ')"
			fi
			sleep 2
		done
		;;
	deploy)
		ref=debian/$(echo a b c | cut -d' ' -f$(((boot+n)%3+1)))
		say "start $n deploy $ref"
		if out=$(otree admin --sysroot=/sysroot deploy --os=debian --karg=n=$boot-$n $ref 2>&1); then
			say "done $n deploy $ref"
		else
			say "fail $n deploy $? $(echo "$out" | tr '\n' ' ')"
		fi
		sleep 2
		;;
	esac
done
`

// TestPowerCutVM cuts the power of a machine while otree writes: otree
// runs in a QEMU guest, which is killed (SIGKILL) at a random moment
// inside an operation, and the disk image is then checked from the host
// (mounting it replays ext4's journal, or btrfs's log tree). Unlike the
// tests that kill the otree process, a kill of the machine loses what its
// kernel had not yet written to the disk, so a missing or misordered sync
// shows.
//
// What it models: the guest's page cache is lost, while everything the
// guest had submitted to its disk is kept (QEMU's disk, cache=writeback,
// writes to the host's page cache, which the kill does not lose): a disk
// that writes through, not one that reorders writes in a cache of its
// own. The guest holds back all write-back (pcInit), so what is on the
// disk after the cut is what otree's syncs, and ext4's journal commits
// that they force, put there.
//
// commit: otree commit in a loop into a bare-user and an archive
// repository, each commit of a new tree (3,700 files, two of 8 MiB,
// every object new); after each cut each branch must be at the last
// commit the guest reported done or at the one in progress (whose parent
// that is), and fsck must find nothing wrong. commit-btrfs: the same with
// the repositories on a second disk, btrfs, where an fsync does not carry
// other files' renames as ext4's journal does. deploy: otree admin deploy
// in a loop into a sysroot; after each cut otree admin status must work,
// the default boot entry must boot the last deployment reported done or
// the one in progress, and every entry a deployment that is complete: its
// /usr as its commit has it, its kernel and initramfs those of the commit.
// Each boot after a cut first completes an operation from the state the
// cut left.
func TestPowerCutVM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs otree in a virtual machine")
	}
	if os.Getenv(vmEnv) != "1" {
		t.Skipf("set %s=1 to cut the power of a QEMU guest running otree (debootstraps a Debian tree on first use; CI installs qemu-system-x86)", vmEnv)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: a Debian tree, chroot, mount")
	}
	for _, tool := range []string{"qemu-system-x86_64", "mkfs.ext4", "debootstrap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (qemu-system-x86, e2fsprogs, debootstrap)", tool)
		}
	}
	kills := pcKills
	if s := os.Getenv(pcKillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", pcKillsEnv, s)
		}
		kills = n
	}
	otreeBin := testbin.BuildStatic(t, "github.com/otree/otree/cmd/otree")
	ctx := context.Background()
	deb, err := debroot.GetBootable(ctx)
	if errors.Is(err, debroot.ErrUnreachable) {
		t.Skipf("no Debian tree: %v", err)
	}
	realMust(t, err)
	kver := deb.KernelVersion
	m := &pcMachine{tmp: t.TempDir(), rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))}
	root := filepath.Join(m.tmp, "root")
	realMust(t, os.Mkdir(root, 0o755))
	realMust(t, deb.Extract(ctx, root))
	m.kernel = filepath.Join(root, "boot", "vmlinuz-"+kver)
	m.accel = vmAccel(t, m.kernel)

	// An initramfs that mounts a virtio disk with ext4 as root and runs
	// init= on it.
	start := time.Now()
	vmWrite(t, filepath.Join(root, "etc/initramfs-tools/conf.d/otree-test"), "MODULES=list\n", 0o644)
	vmWrite(t, filepath.Join(root, "etc/initramfs-tools/modules"), "virtio_pci\nvirtio_blk\next4\n", 0o644)
	realCmd(t, "chroot", root, "update-initramfs", "-c", "-k", kver)
	m.initrd = filepath.Join(m.tmp, "initrd.img")
	realMust(t, os.Rename(filepath.Join(root, "boot", "initrd.img-"+kver), m.initrd))
	realMust(t, os.Rename(m.kernel, filepath.Join(m.tmp, "vmlinuz")))
	m.kernel = filepath.Join(m.tmp, "vmlinuz")
	t.Logf("made the initramfs in %v", time.Since(start))
	vmInstall(t, otreeBin, filepath.Join(root, "usr/bin/otree"), 0o755)
	vmWrite(t, filepath.Join(root, "otree-powercut"), pcInit, 0o755)

	// The commit workload's source: a copy of /usr/share and two large
	// files of random bytes (random, so that the archive repository cannot
	// compress them away).
	src := filepath.Join(root, "src")
	realMust(t, os.Mkdir(src, 0o755))
	realCmd(t, "cp", "-a", filepath.Join(root, "usr/share"), filepath.Join(src, "share"))
	for i := range 2 {
		vmWrite(t, filepath.Join(src, "big", strconv.Itoa(i)), string(pcRandom(m.rng, 8<<20)), 0o644)
	}
	m.lastDone = map[string]string{}
	repos := filepath.Join(root, "repos")
	if pcHasBtrfs() {
		// commit-btrfs's repositories, on their own disk, mounted at
		// repos/btrfs.
		realMust(t, os.MkdirAll(filepath.Join(repos, "btrfs"), 0o755))
		m.btrfs = filepath.Join(m.tmp, "btrfs.img")
		repos = filepath.Join(m.tmp, "btrfs")
	}
	for _, r := range []struct{ name, mode string }{{"bu", "bare-user"}, {"ar", "archive"}, {"btrfs/bu", "bare-user"}, {"btrfs/ar", "archive"}} {
		repo := filepath.Join(root, "repos", r.name)
		if dir, ok := strings.CutPrefix(r.name, "btrfs/"); ok {
			if m.btrfs == "" {
				continue
			}
			repo = filepath.Join(repos, dir)
		}
		realOK(t, "init", "--repo="+repo, "--mode="+r.mode)
		m.lastDone[r.name] = realCommitID(t, realOK(t, "--repo="+repo, "commit", "-b", "main", "-s", "host", "--owner-uid=1", src))
	}
	if m.btrfs != "" {
		realMust(t, os.WriteFile(m.btrfs, nil, 0o644))
		realMust(t, os.Truncate(m.btrfs, 4<<30))
		realCmd(t, "mkfs.btrfs", "-q", "-r", repos, m.btrfs)
		realMust(t, os.RemoveAll(repos))
	}

	// The deploy workload's sysroot, as an installer makes it, with three
	// commits of a tree with its own kernel and initramfs each.
	sys := filepath.Join(root, "sysroot")
	realMust(t, os.Mkdir(sys, 0o755))
	realOK(t, "admin", "init-fs", sys)
	realOK(t, "admin", "--sysroot="+sys, "os-init", "debian")
	m.commits = map[string]string{}
	for _, b := range []string{"a", "b", "c"} {
		tree := filepath.Join(m.tmp, "tree-"+b)
		realMust(t, os.MkdirAll(filepath.Join(tree, "usr"), 0o755))
		realCmd(t, "cp", "-a", filepath.Join(root, "usr/share"), filepath.Join(tree, "usr/share"))
		mods := filepath.Join(tree, "usr/lib/modules", kver)
		vmWrite(t, filepath.Join(mods, "vmlinuz"), string(pcRandom(m.rng, 6<<20)), 0o644)
		vmWrite(t, filepath.Join(mods, "initramfs.img"), string(pcRandom(m.rng, 10<<20)), 0o644)
		vmWrite(t, filepath.Join(tree, "usr/etc/os-release"), "ID=debian\nVERSION_ID="+b+"\n", 0o644)
		vmWrite(t, filepath.Join(tree, "usr/etc/hostname"), "powercut-"+b+"\n", 0o644)
		m.commits["debian/"+b] = realCommitID(t, realOK(t, "--repo="+filepath.Join(sys, "otree/repo"), "commit", "-b", "debian/"+b, "-s", b, tree))
	}
	realOK(t, "admin", "--sysroot="+sys, "deploy", "--os=debian", "debian/a")
	m.lastDone["deploy"] = m.commits["debian/a"]

	// The disk: ext4 with a journal, made from the tree, the whole disk.
	m.disk = filepath.Join(m.tmp, "disk.img")
	start = time.Now()
	realCmd(t, "mkfs.ext4", "-q", "-d", root, m.disk, "4G")
	t.Logf("made the disk image in %v", time.Since(start))
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			testtree.SetImmutable(p, false)
		}
		return nil
	})
	realMust(t, os.RemoveAll(root))
	m.mnt = filepath.Join(m.tmp, "mnt")
	realMust(t, os.Mkdir(m.mnt, 0o755))
	m.kver = kver

	boot := 0
	works := []string{"commit", "deploy", "commit-btrfs"}
	if s := os.Getenv(pcWorkEnv); s != "" {
		works = strings.Split(s, ",")
	}
	for _, work := range works {
		if work != "commit" && work != "deploy" && work != "commit-btrfs" {
			t.Fatalf("%s=%q: want some of commit, deploy, commit-btrfs", pcWorkEnv, os.Getenv(pcWorkEnv))
		}
	}
	for _, work := range works {
		t.Run(work, func(t *testing.T) {
			if work == "commit-btrfs" && m.btrfs == "" {
				t.Skip("needs mkfs.btrfs (btrfs-progs) and btrfs in the host's kernel")
			}
			for k := range kills {
				boot++
				m.run(t, work, boot, k%2 == 1)
				m.check(t, work, boot)
				if t.Failed() {
					rep, _ := os.ReadFile(filepath.Join(m.tmp, fmt.Sprintf("boot%d", boot), "report.log"))
					t.Fatalf("after power cut %d of the %s workload (boot %d); the guest reported:\n%s", k+1, work, boot, rep)
				}
			}
			m.next(t, work)
		})
	}
	t.Logf("power cuts: %d; landed: %v", boot, m.landed)
}

// pcMachine is the disk image and what the guest has reported so far.
type pcMachine struct {
	tmp, disk, mnt, kernel, initrd, accel, kver string
	// btrfs is commit-btrfs's disk image, if the host can make one.
	btrfs string
	rng   *rand.Rand
	// commits are the deploy workload's commits by ref.
	commits map[string]string
	// lastDone is, by repository (bu, ar, btrfs/bu, btrfs/ar) or
	// "deploy", the last commit
	// the guest reported done (or the host made).
	lastDone map[string]string
	// took is how long an operation took, by repository or "deploy".
	took map[string]time.Duration
	// inflight is the operation under way when the power went, if any:
	// what and its subject (commit) or ref (deploy).
	inflight [2]string
	// landed counts the cuts by when they came.
	landed map[string]int
}

// run boots the machine with workload work and cuts its power at a random
// moment inside the second operation of the boot (the first, which starts
// from what the last cut left, must succeed), or, with after, in the pause
// after the first, when what it reported done must be on the disk.
func (m *pcMachine) run(t *testing.T, work string, boot int, after bool) {
	t.Helper()
	if m.took == nil {
		m.took, m.landed = map[string]time.Duration{}, map[string]int{}
	}
	dir := filepath.Join(m.tmp, fmt.Sprintf("boot%d", boot))
	realMust(t, os.Mkdir(dir, 0o755))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	args := []string{"-accel", m.accel, "-m", "1024", "-smp", "2",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-drive", "file=" + m.disk + ",format=raw,if=virtio,cache=writeback"}
	if work == "commit-btrfs" {
		args = append(args, "-drive", "file="+m.btrfs+",format=raw,if=virtio,cache=writeback")
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", append(args,
		"-kernel", m.kernel, "-initrd", m.initrd,
		"-append", fmt.Sprintf("root=/dev/vda rw console=ttyS0 quiet panic=-1 init=/otree-powercut otree_powercut=%s:%d", work, boot),
		"-serial", "file:"+filepath.Join(dir, "console.log"), "-serial", "stdio")...)
	out, err := cmd.StdoutPipe()
	realMust(t, err)
	report, err := os.Create(filepath.Join(dir, "report.log"))
	realMust(t, err)
	defer report.Close()
	realMust(t, cmd.Start())
	// kill cuts the power, once; a timer calls it as well as this loop.
	killed := make(chan struct{})
	var once sync.Once
	kill := func() {
		once.Do(func() {
			close(killed)
			cmd.Process.Signal(syscall.SIGKILL)
		})
	}
	defer kill()
	started := time.Now()
	var opStart time.Time
	var cur [2]string
	ops := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		report.WriteString(line + "\n")
		rest, ok := strings.CutPrefix(line, pcPrefix)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		select {
		case <-killed:
			continue // reported after the cut was decided: it may not be on the disk
		default:
		}
		switch f[0] {
		case "ready":
			t.Logf("boot %d (%s): the guest is up after %v", boot, work, time.Since(started))
		case "start":
			ops++
			opStart, cur = time.Now(), [2]string{f[2], f[3]}
			if after || ops < 2 {
				continue
			}
			// How long this kind of operation took, else the longest
			// other: a cut past the end lands in the pause or the next
			// operation, which tests as well.
			d, known := m.took[f[2]]
			for _, o := range m.took {
				if !known && o > d {
					d = o
				}
			}
			time.AfterFunc(time.Duration(m.rng.Int64N(int64(d))), kill)
		case "done":
			d := time.Since(opStart)
			t.Logf("boot %d: %s %s took %v", boot, f[2], f[3], d)
			m.took[f[2]] = d
			if f[2] == "deploy" {
				m.lastDone["deploy"] = m.commits[f[3]]
			} else {
				m.lastDone[f[2]] = f[3]
			}
			cur = [2]string{}
			if after {
				// Inside the guest's pause before its next operation.
				time.AfterFunc(time.Duration(m.rng.Int64N(int64(pcPause))), kill)
			}
		case "fail":
			kill()
			t.Errorf("boot %d: the guest's %s", boot, rest)
		}
	}
	cmd.Wait()
	select {
	case <-killed:
	default:
		cons, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		rep, _ := os.ReadFile(report.Name())
		t.Fatalf("boot %d: the guest stopped before its power was cut: %v\nreport:\n%s\nconsole ends:\n%s", boot, ctx.Err(), rep, vmTail(cons, 4000))
	}
	m.inflight = cur
	when := "after " + work
	if cur[0] != "" {
		when = "inside " + cur[0]
	}
	m.landed[when]++
	t.Logf("boot %d (%s): power cut after %v, %s (%d operations started)", boot, work, time.Since(started), when, ops)
}

// next runs the workload's operation once more, on the host, from what
// the last cut left: it must succeed.
func (m *pcMachine) next(t *testing.T, work string) {
	t.Helper()
	defer m.mount(t, work)()
	if work != "deploy" {
		for _, r := range pcRepos(work) {
			if code, _, stderr := pcRun("--repo="+filepath.Join(m.mnt, "repos", r), "commit", "-b", "main", "-s", "host again", "--owner-uid=2", filepath.Join(m.mnt, "src")); code != 0 {
				t.Errorf("%s: otree commit after the last cut: exit %d: %s", r, code, stderr)
			}
		}
		return
	}
	if code, _, stderr := pcRun("admin", "--sysroot="+filepath.Join(m.mnt, "sysroot"), "deploy", "--os=debian", "debian/a"); code != 0 {
		t.Errorf("otree admin deploy after the last cut: exit %d: %s", code, stderr)
	}
}

// check mounts the disk image and checks what the cut left.
func (m *pcMachine) check(t *testing.T, work string, boot int) {
	t.Helper()
	defer m.mount(t, work)()
	if work != "deploy" {
		for _, r := range pcRepos(work) {
			m.checkRepo(t, boot, r)
		}
		return
	}
	m.checkSysroot(t, boot)
}

// mount mounts the disk image at m.mnt, and for commit-btrfs the btrfs
// one at repos/btrfs (replaying its log tree), and returns what unmounts
// them.
func (m *pcMachine) mount(t *testing.T, work string) func() {
	t.Helper()
	realCmd(t, "mount", "-o", "loop", m.disk, m.mnt)
	if work != "commit-btrfs" {
		return func() { realCmd(t, "umount", m.mnt) }
	}
	bt := filepath.Join(m.mnt, "repos/btrfs")
	if out, err := exec.Command("mount", "-o", "loop", m.btrfs, bt).CombinedOutput(); err != nil {
		realCmd(t, "umount", m.mnt)
		t.Fatalf("mounting %s: %v: %s", m.btrfs, err, out)
	}
	return func() {
		realCmd(t, "umount", bt)
		realCmd(t, "umount", m.mnt)
	}
}

// pcRepos names the repositories of commit workload work.
func pcRepos(work string) []string {
	if work == "commit-btrfs" {
		return []string{"btrfs/bu", "btrfs/ar"}
	}
	return []string{"bu", "ar"}
}

// pcHasBtrfs tells whether the host can make a btrfs image and mount it.
func pcHasBtrfs() bool {
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		return false
	}
	exec.Command("modprobe", "btrfs").Run()
	b, err := os.ReadFile("/proc/filesystems")
	return err == nil && bytes.Contains(b, []byte("\tbtrfs\n"))
}

// checkRepo checks that repository r's branch is at the last commit
// reported done, or at the one in progress when the power went, whose
// parent that is, and that fsck finds nothing wrong.
func (m *pcMachine) checkRepo(t *testing.T, boot int, r string) {
	t.Helper()
	repo := "--repo=" + filepath.Join(m.mnt, "repos", r)
	code, stdout, stderr := pcRun(repo, "rev-parse", "main")
	if code != 0 {
		t.Errorf("boot %d: %s: rev-parse main: exit %d: %s", boot, r, code, stderr)
		return
	}
	got := strings.TrimSpace(stdout)
	if got != m.lastDone[r] {
		var c struct{ Parent, Subject string }
		_, show, _ := pcRun(repo, "show", "--json", got)
		json.Unmarshal([]byte(show), &c)
		if m.inflight[0] != r || c.Subject != m.inflight[1] || c.Parent != m.lastDone[r] {
			t.Errorf("boot %d: %s: main is at %s (%q, parent %s), want the last commit reported done, %s%s",
				boot, r, got, c.Subject, c.Parent, m.lastDone[r], m.inProgress())
		}
		m.lastDone[r] = got
	}
	if code, stdout, stderr := pcRun(repo, "fsck"); code != 0 {
		t.Errorf("boot %d: %s: fsck: exit %d:\n%s%s", boot, r, code, stdout, stderr)
	}
}

// checkSysroot checks that otree admin status works, that the default
// entry boots the last deployment reported done or the one in progress,
// and that every entry boots a complete deployment.
func (m *pcMachine) checkSysroot(t *testing.T, boot int) {
	t.Helper()
	sys := filepath.Join(m.mnt, "sysroot")
	code, stdout, stderr := pcRun("admin", "--sysroot="+sys, "status", "--json")
	if code != 0 {
		t.Errorf("boot %d: otree admin status: exit %d: %s", boot, code, stderr)
		return
	}
	var st struct {
		Deployments []realDeployment `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Errorf("boot %d: otree admin status --json: %v: %s", boot, err, stdout)
		return
	}
	files, err := filepath.Glob(filepath.Join(sys, "boot/loader/entries/*.conf"))
	realMust(t, err)
	if len(files) == 0 || len(files) != len(st.Deployments) {
		t.Errorf("boot %d: %d boot entries for %d deployments", boot, len(files), len(st.Deployments))
	}
	// The default entry: the highest version.
	best, def, defCommit := -1, "", ""
	for _, f := range files {
		e := map[string]string{}
		b, err := os.ReadFile(f)
		realMust(t, err)
		for line := range strings.Lines(string(b)) {
			k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
			e[k] = strings.TrimSpace(v)
		}
		var arg string
		for _, o := range strings.Fields(e["options"]) {
			if a, ok := strings.CutPrefix(o, "otree="); ok {
				arg = a
			}
		}
		dep, err := filepath.EvalSymlinks(filepath.Join(sys, arg))
		if arg == "" || err != nil {
			t.Errorf("boot %d: %s: otree=%s does not name a deployment: %v", boot, f, arg, err)
			continue
		}
		var d *realDeployment
		for i := range st.Deployments {
			if p, _ := filepath.EvalSymlinks(st.Deployments[i].Path); p == dep {
				d = &st.Deployments[i]
			}
		}
		if d == nil {
			t.Errorf("boot %d: %s: otree=%s is %s, which otree admin status does not list", boot, f, arg, dep)
			continue
		}
		if v, _ := strconv.Atoi(e["version"]); v > best {
			best, def, defCommit = v, f, d.Commit
		}
		// The deployment's /usr is its commit's.
		_, diff, stderr := pcRun("--repo="+filepath.Join(sys, "otree/repo"), "diff", d.Commit, dep)
		for line := range strings.Lines(diff) {
			if f := strings.Fields(line); len(f) == 2 && (f[1] == "/usr" || strings.HasPrefix(f[1], "/usr/")) {
				t.Errorf("boot %d: deployment %s of %s: %s", boot, dep, d.Commit, strings.TrimSpace(line))
			}
		}
		if stderr != "" {
			t.Errorf("boot %d: otree diff %s %s: %s", boot, d.Commit, dep, stderr)
		}
		mods := filepath.Join(dep, "usr/lib/modules", m.kver)
		for k, name := range map[string]string{"linux": "vmlinuz", "initrd": "initramfs.img"} {
			want, err := os.ReadFile(filepath.Join(mods, name))
			realMust(t, err)
			got, err := os.ReadFile(filepath.Join(sys, e[k]))
			if !bytes.Equal(got, want) {
				t.Errorf("boot %d: %s: %s %s is not the deployment's %s (%d bytes, %v; want %d)", boot, f, k, e[k], name, len(got), err, len(want))
			}
		}
	}
	if c := defCommit; best >= 0 && c != m.lastDone["deploy"] && (m.inflight[0] != "deploy" || c != m.commits[m.inflight[1]]) {
		t.Errorf("boot %d: the default entry %s boots %s, want the last deployment reported done, %s%s",
			boot, def, c, m.lastDone["deploy"], m.inProgress())
	}
	if t.Failed() {
		var dump strings.Builder
		for _, f := range files {
			b, _ := os.ReadFile(f)
			fmt.Fprintf(&dump, "%s:\n%s", f, b)
		}
		t.Logf("otree admin status --json:\n%s\nentries:\n%s", stdout, dump.String())
	}
	if best >= 0 {
		// What the default entry boots is now the last deployment done.
		m.lastDone["deploy"] = defCommit
	}
}

// inProgress says what was under way when the power went, if anything.
func (m *pcMachine) inProgress() string {
	if m.inflight[0] == "" {
		return " (none was under way)"
	}
	return fmt.Sprintf(", or the one under way, %s %s", m.inflight[0], m.inflight[1])
}

// pcRun runs otree in-process and returns its exit status and output.
func pcRun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// pcRandom returns n random bytes.
func pcRandom(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
