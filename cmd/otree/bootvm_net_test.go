package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otree/otree/internal/testnginx"
)

// vmNetScript is the test service of a machine with a network
// (vmLayout.network). On commit A, as an admin would, it adds the server's
// repository as the remote origin, verifying signatures of commits and
// summary with the server's public key, and points the deployment's origin
// at a branch whose commit an unknown key signed; dist/systemd's
// otree-upgrade.service must refuse it. It then points the origin at
// debian/x, whose commit B the server signed, and starts the unit again,
// which stages B; the shutdown finalizes it. On commit B it checks the
// deployments' signatures and starts the unit once more, when the server
// replays an older summary naming A; then it rolls back.
const vmNetScript = vmScriptReport + `# Starts the unit and reports its exit and what it logged.
upgrade() {
	cursor=$(journalctl -n 0 --show-cursor | sed -n 's/^-- cursor: //p')
	systemctl start otree-upgrade.service 2>/dev/null; rc=$?
	say "$1=$rc $(journalctl -o cat --after-cursor="$cursor" -u otree-upgrade.service 2>&1 | tr '\n' ' ')"
}
case "$(cat /usr/share/otree-boot-test/commit)" in
A)
	if [ ! -e /etc/otree-boot-test.conf ]; then
		read -r url key </var/lib/otree-boot-test/server
		out=$(otree remote add --sign-verify=ed25519=inline:$key --set=sign-verify-summary=true origin "$url" debian/x 2>&1)
		say "remote-add=$? $(echo "$out" | tr '\n' ' ')"
		out=$(otree admin set-origin origin "$url" debian/untrusted 2>&1)
		say "set-origin-untrusted=$? $(echo "$out" | tr '\n' ' ')"
		upgrade untrusted
		say "status-untrusted=$(otree admin status --json 2>&1 | tr -d '\n')"
		out=$(otree admin set-origin origin "$url" debian/x 2>&1)
		say "set-origin=$? $(echo "$out" | tr '\n' ' ')"
		echo admin-host >/etc/hostname
		upgrade upgrade
		# Made after staging: the finalize at shutdown merges it.
		echo "edited on A" >/etc/otree-boot-test.conf
		for i in $(seq 60); do
			systemctl -q is-active otree-finalize-staged.service && break
			sleep 1
		done
		say "finalize-unit=$(systemctl is-active otree-finalize-staged.service)"
	fi
	;;
B)
	out=$(otree admin status --verify 2>&1)
	say "verify=$? $(echo "$out" | tr '\n' ' ')"
	upgrade replay
	say "status-replay=$(otree admin status --json 2>&1 | tr -d '\n')"
	say "ref-replay=$(otree rev-parse origin:debian/x 2>&1)"
	out=$(otree admin rollback 2>&1); rc=$?
	say "rollback=$rc $(echo "$out" | tr '\n' ' ')"
	;;
esac
sync
say end
`

// vmNetInstall gives tree (its /etc not yet moved to /usr/etc) a static
// address on QEMU's user network, through systemd-networkd, and
// dist/systemd's otree-upgrade.service, as DEPLOY.md's "Booting a machine"
// installs it (the timer stays off: the test starts the unit).
func vmNetInstall(t *testing.T, tree string) {
	t.Helper()
	vmWrite(t, filepath.Join(tree, "etc/systemd/network/50-qemu.network"),
		"[Match]\nName=en*\n\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n", 0o644)
	// Enables systemd-networkd-wait-online.service too, which
	// network-online.target, which otree-upgrade.service wants, waits for.
	realCmd(t, "chroot", tree, "systemctl", "enable", "systemd-networkd.service")
	vmInstall(t, filepath.Join("..", "..", "dist", "systemd", "otree-upgrade.service"),
		filepath.Join(tree, "usr/lib/systemd/system/otree-upgrade.service"), 0o644)
}

// vmServer is an archive repository served over HTTP by nginx on the
// host, for a machine's upgrades: commit A (the deployed one) and B on
// debian/x, signed by the trusted key, with a static delta from A to B;
// commit U on debian/untrusted, signed by a key the machine does not
// trust; a summary signed by the trusted key.
type vmServer struct {
	root, repo    string // root is what nginx serves; repo is in it
	idB, idU      string
	oldSummary    []byte // the signed summary of when debian/x was A
	oldSummarySig []byte
	log           string // nginx's access log
	seen          int    // lines of log requests already returned
}

// vmNewServer makes m's server (m's disk mounted) from commit A in the
// system repository and treeB, starts nginx on it until the test ends, and
// writes where it is and its public key to the stateroot's
// /var/lib/otree-boot-test/server, which vmNetScript reads.
func vmNewServer(t *testing.T, m *vmMachine, treeB string) *vmServer {
	t.Helper()
	if _, err := os.Stat(testnginx.Binary); err != nil {
		t.Skipf("nginx is not installed (Debian package nginx): %v", err)
	}
	s := &vmServer{root: filepath.Join(m.tmp, "www")}
	s.repo = filepath.Join(s.root, "repo")
	repoFlag := "--repo=" + s.repo
	key, unknown := filepath.Join(m.tmp, "trusted.key"), filepath.Join(m.tmp, "unknown.key")
	pub := strings.TrimSpace(realOK(t, "sign", "--generate-key="+key))
	realOK(t, "sign", "--generate-key="+unknown)
	start := time.Now()
	realOK(t, repoFlag, "init", "--mode=archive")
	realOK(t, repoFlag, "pull-local", filepath.Join(m.mnt, "otree/repo"), "debian/x")
	realOK(t, repoFlag, "sign", m.idA, "--keys-file="+key)
	realOK(t, repoFlag, "summary", "-u", "--sign-from-file="+key)
	var err error
	s.oldSummary, err = os.ReadFile(filepath.Join(s.repo, "summary"))
	realMust(t, err)
	s.oldSummarySig, err = os.ReadFile(filepath.Join(s.repo, "summary.sig"))
	realMust(t, err)
	s.idB = realCommitID(t, realOK(t, repoFlag, "commit", "-b", "debian/x", "-s", "B", "--sign-from-file="+key, treeB))
	s.idU = realCommitID(t, realOK(t, repoFlag, "commit", "-b", "debian/untrusted", "-s", "U", "--sign-from-file="+unknown, treeB))
	realOK(t, repoFlag, "static-delta", "generate", "--from="+m.idA, "--to="+s.idB)
	realOK(t, repoFlag, "summary", "-u", "--sign-from-file="+key)
	t.Logf("made the server's repository in %v", time.Since(start))
	port := testnginx.Start(t, s.root, filepath.Join(m.tmp, "nginx"), "$status $uri")
	s.log = filepath.Join(m.tmp, "nginx", "access.log")
	vmWrite(t, filepath.Join(m.mnt, "otree/deploy/debian/var/lib/otree-boot-test/server"),
		fmt.Sprintf("http://10.0.2.2:%d/repo %s\n", port, pub), 0o644)
	return s
}

// replay makes the server serve the summary it served when debian/x was
// A: validly signed, and older than what the machine runs.
func (s *vmServer) replay(t *testing.T) {
	t.Helper()
	realMust(t, os.WriteFile(filepath.Join(s.repo, "summary"), s.oldSummary, 0o644))
	realMust(t, os.WriteFile(filepath.Join(s.repo, "summary.sig"), s.oldSummarySig, 0o644))
}

// requests returns the paths of the GET requests the server answered
// since the last call, with their status: "200 /repo/config".
func (s *vmServer) requests(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(s.log)
	realMust(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		if i < s.seen {
			continue
		}
		s.seen++
		out = append(out, sc.Text())
	}
	realMust(t, sc.Err())
	return out
}

// vmTestNetwork boots a machine through UEFI whose upgrades come from a
// server, as TestBootDebianVM's uefi-network subtest describes: A refuses
// an untrusted commit and stages B, fetched by its delta; B, merged, and
// counted by GRUB, refuses the server's replay of A and rolls back; A
// boots. One machine does both, for the time each boot takes.
func vmTestNetwork(t *testing.T, bins *vmBins) {
	for _, f := range []string{vmOVMFCode, vmOVMFVars, filepath.Join(vmGrubEFIDir, "linux.mod")} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("OVMF or GRUB for UEFI is not installed (apt-get install ovmf grub-efi-amd64-bin): %v", err)
		}
	}
	for _, tool := range []string{"mkfs.fat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (dosfstools, mtools): %v", tool, err)
		}
	}
	m := vmNewMachine(t, bins, vmLayout{network: true, uefi: true})
	srv := m.srv
	// Boot counting, so that GRUB for UEFI loads and saves its
	// environment block by the grub.cfg's ${prefix} too.
	m.mount(t)
	realOK(t, "--repo="+filepath.Join(m.mnt, "otree/repo"), "config", "set", "sysroot.boot-counting-tries", "3")
	m.umount(t)

	// Boot 1: A. The commit of debian/untrusted is refused, nothing
	// staged; debian/x's B is pulled by its delta and staged.
	r := m.boot(t, 1)
	vmCommon(t, r, "A")
	vmBooted(t, r, m.idA)
	for _, k := range []string{"remote-add", "set-origin-untrusted", "set-origin"} {
		if r[k] != "0" && !strings.HasPrefix(r[k], "0 ") {
			t.Fatalf("%s in the guest: %q", k, r[k])
		}
	}
	if strings.HasPrefix(r["untrusted"], "0 ") || !strings.Contains(r["untrusted"], srv.idU) || !strings.Contains(r["untrusted"], "signature") {
		t.Errorf("otree-upgrade.service of debian/untrusted, signed by an unknown key: %q; want it to fail naming the commit and its signature", r["untrusted"])
	}
	// Nothing staged: the status lists A alone.
	vmBooted(t, map[string]string{"status": r["status-untrusted"]}, m.idA)
	vmStaged(t, r)
	reqs := srv.requests(t)
	var superblock, parts, trees int
	for _, q := range reqs {
		status, path, _ := strings.Cut(q, " ")
		switch {
		case strings.Contains(path, "/objects/") && (strings.HasSuffix(path, ".dirtree") || strings.HasSuffix(path, ".dirmeta")):
			trees++
		case strings.HasPrefix(path, "/repo/deltas/") && strings.HasSuffix(path, "/superblock"):
			superblock++
		case strings.HasPrefix(path, "/repo/deltas/") && status == "200":
			parts++
		}
	}
	if superblock != 1 || parts == 0 || trees != 0 {
		t.Errorf("the server answered %d superblock, %d delta part and %d dirtree or dirmeta requests, want 1, some and none (the pull by the delta); requests:\n%s",
			superblock, parts, trees, strings.Join(reqs, "\n"))
	}
	t.Logf("the upgrade made %d requests, %d of them for delta parts", len(reqs), parts)

	// Boot 2: B, with the admin's edits merged, and counted: GRUB took one
	// of its 3 tries. The server replays the summary naming A: refused,
	// nothing staged, B still the default. Then B rolls back.
	srv.replay(t)
	r = m.boot(t, 2)
	vmCommon(t, r, "B")
	vmBooted(t, r, m.idB, m.idA)
	for k, want := range map[string]string{"hostname": "admin-host", "etc-local": "edited on A", "etc-b-default": "default of B", "grubenv": "otree_boot_tries=2"} {
		if r[k] != want {
			t.Errorf("boot 2: %s = %q, want %q", k, r[k], want)
		}
	}
	// B came from the server with its signature; A, installed from the
	// system repository, has none, which --verify reports.
	if !strings.Contains(r["verify"], "signature: good") || !strings.Contains(r["verify"], "NOT VERIFIED") {
		t.Errorf("otree admin status --verify on B: %q; want B's signature good and A's not verified", r["verify"])
	}
	if strings.HasPrefix(r["replay"], "0 ") || !strings.Contains(r["replay"], m.idA) || !strings.Contains(r["replay"], "older") {
		t.Errorf("otree-upgrade.service with the server replaying A: %q; want it to fail naming A as older", r["replay"])
	}
	vmBooted(t, map[string]string{"status": r["status-replay"]}, m.idB, m.idA)
	// Refused by the pull, before the remote-tracking ref moved.
	if r["ref-replay"] != m.idB {
		t.Errorf("after the replay, origin:debian/x is %q, want B %s", r["ref-replay"], m.idB)
	}
	if !strings.HasPrefix(r["rollback"], "0 ") {
		t.Fatalf("otree admin rollback in the guest: %q", r["rollback"])
	}

	// Boot 3: A, the default again, counted anew.
	r = m.boot(t, 3)
	vmCommon(t, r, "A")
	vmBooted(t, r, m.idA, m.idB)
	if r["grubenv"] != "otree_boot_tries=2" {
		t.Errorf("boot 3: grubenv has %q, want otree_boot_tries=2", r["grubenv"])
	}
}
