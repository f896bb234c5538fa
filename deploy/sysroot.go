package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
	"golang.org/x/sys/unix"
)

// Sysroot is a machine's root filesystem (or any directory laid out like
// one) holding a system repository and deployments. Reading methods see the
// state as it was when the Sysroot was opened or last changed through it;
// every change takes the sysroot lock and starts from the state on disk, so
// several processes may work on one sysroot. A Sysroot is for one
// goroutine at a time.
type Sysroot struct {
	path    string // the sysroot as given: where boot/ is
	root    string // the physical root holding otree/ (differs on a booted system)
	repo    *repo.Repo
	cmdline string // kernel command line that names the booted deployment
	// runningDir is the deployment directory of the sysroot that is the
	// running / (whether the sysroot is opened as / or by its physical
	// root, /sysroot), if one is: the booted deployment must then be
	// listed, and is the one that is /.
	runningDir string

	bootVersion int // B: boot/loader -> loader.B
	subVersion  int // S: otree/boot.B -> boot.B.S
	deployments []*Deployment
	booted      *Deployment
	staged      *Deployment   // written by a staged deploy, not in the boot entries
	stagedRec   *stagedRecord // how FinalizeStaged switches to it
	staleStaged bool          // a staged record names a listed deployment, or a missing one
	lostStaged  string        // the missing deployment directory a staged record named
	// rootBooted: the sysroot's own directory is the booted deployment
	// (a running system's /), whose /usr is what runs, overlay and all.
	rootBooted bool
	log        *slog.Logger
	// held counts the lock calls of this Sysroot's holder of the
	// sysroot lock: an operation that holds it (an upgrade, across its
	// pull and deploy) calls others that take it again.
	held int
	// closed is set by Close: changes then fail (checkOpen), rather than
	// go on with the sysroot without its repository.
	closed bool
	// links are the boot links as the deployments were last read.
	links [3]linkStamp
}

// Deployment is one bootable checkout of a commit.
type Deployment struct {
	Index   int     `json:"index"`   // position in boot order; 0 boots by default
	OS      string  `json:"os"`      // stateroot
	Commit  repo.ID `json:"commit"`  // the commit checked out
	Serial  int     `json:"serial"`  // tells deployments of one commit apart
	Version string  `json:"version"` // the commit's "version" metadata, if any
	Origin  string  `json:"origin"`  // the refspec upgrades follow; "" if none
	// OverrideCommit is the commit an upgrade deployed instead of the
	// one the refspec named (empty if none).
	OverrideCommit string `json:"override_commit,omitempty"`
	// Staged marks the deployment a staged deploy wrote: not in the boot
	// entries until FinalizeStaged (Index is then -1).
	Staged bool `json:"staged"`
	Pinned bool `json:"pinned"` // never dropped by a deploy nor undeployed until unpinned
	// Unlocked is how Unlock opened the deployment's /usr, if it did: a
	// hotfix (kept across reboots) or, for the booted deployment, a
	// development or transient overlay.
	Unlocked UnlockMode `json:"unlocked,omitempty"`
	Booted   bool       `json:"booted"`   // the running system's deployment
	Pending  bool       `json:"pending"`  // will boot next instead of the booted one
	Rollback bool       `json:"rollback"` // what `rollback` would make the default
	Path     string     `json:"path"`     // the deployment's directory
	BootCsum string     `json:"bootcsum"` // identifies its kernel and initramfs
	Kernel   string     `json:"kernel"`   // kernel version (the usr/lib/modules directory name, or a legacy kernel's; "" for vmlinuz-<sha256>)
	// Options are the kernel arguments of its boot entry, without otree=.
	Options string `json:"options"`
	// Initramfs tells whether the tree had an initramfs beside its kernel.
	Initramfs bool `json:"initramfs"`
	// Devicetree tells whether it had a devicetree, which the boot entry
	// names.
	Devicetree bool `json:"devicetree"`
	// FdtDir tells whether it had, instead, a dtb/ directory of device
	// trees, which the boot entry names as fdtdir.
	FdtDir bool `json:"fdtdir"`
	// OverlayInitrds are the ids of the initramfs images loaded after the
	// tree's own (DeployOptions.OverlayInitrds), in order.
	OverlayInitrds []string `json:"overlay_initrds,omitempty"`

	bootSerial int
}

// Name is the deployment directory's name, <commit>.<serial>.
func (d *Deployment) Name() string { return fmt.Sprintf("%s.%d", d.Commit, d.Serial) }

// OpenOptions configure Open.
type OpenOptions struct {
	// Cmdline is the kernel command line whose otree= argument names the
	// booted deployment. When nil, /proc/cmdline is read if the sysroot is
	// "/" (a running deployed system); otherwise nothing is booted.
	Cmdline *string
	// Logger hears of waits for the sysroot lock another process holds.
	// Nil discards.
	Logger *slog.Logger
}

// InitFS lays out an empty sysroot at path (which may exist): the system
// repository in bare mode, otree/deploy, boot/ with an empty first boot
// version, and the top-level directories a root filesystem mounts over.
// An empty path is refused rather than taken as the current directory.
func InitFS(path string) error { return InitFSWithOptions(path, InitFSOptions{}) }

// InitFSOptions configure InitFSWithOptions.
type InitFSOptions struct {
	// Modern makes only boot/ and otree/ (OSTree's init-fs --modern): a
	// deployment has its own mount points, and the physical root needs no
	// others.
	Modern bool
}

// chmodDir sets the mode of the directory at p, as OSTree's init-fs sets
// an existing tmp's, but never of what a symlink there points to: a
// sysroot laid out in an image someone else made may hold tmp -> /etc.
// A symlink is left as it is.
func chmodDir(p string, mode os.FileMode) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return nil
		}
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	perm := uint32(mode.Perm())
	if mode&os.ModeSticky != 0 {
		perm |= unix.S_ISVTX
	}
	if err := unix.Fchmod(fd, perm); err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	return nil
}

// InitFSWithOptions is InitFS with options.
func InitFSWithOptions(path string, opts InitFSOptions) error {
	if path == "" {
		// Unset, not the current directory, as repo.Init takes it.
		return errors.New(`init-fs: empty sysroot path (give "." for the current directory)`)
	}
	dirs := []struct {
		name string
		mode os.FileMode
	}{
		{"", 0o755}, {"otree", 0o755}, {"otree/deploy", 0o755}, {"boot", 0o755},
		{"dev", 0o755}, {"proc", 0o755}, {"run", 0o755}, {"sys", 0o755},
		{"sysroot", 0o755}, {"home", 0o755}, {"root", 0o700}, {"tmp", 0o777 | os.ModeSticky},
	}
	if opts.Modern {
		dirs = dirs[:4]
	}
	for _, d := range dirs {
		p := filepath.Join(path, d.name)
		if err := os.Mkdir(p, d.mode.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("init-fs: %w", err)
		}
		if d.mode&os.ModeSticky != 0 { // past the umask too
			if err := chmodDir(p, d.mode); err != nil {
				return fmt.Errorf("init-fs: %w", err)
			}
		}
	}
	rp := filepath.Join(path, "otree", "repo")
	if _, err := os.Stat(filepath.Join(rp, "config")); errors.Is(err, fs.ErrNotExist) {
		r, err := repo.Init(rp, repo.InitOptions{Mode: repo.ModeBare})
		if err != nil {
			return fmt.Errorf("init-fs: %w", err)
		}
		r.Close()
	} else if err != nil {
		return fmt.Errorf("init-fs: %w", err)
	}
	return syncDirs(filepath.Join(path, "otree"), filepath.Join(path, "boot"), path)
}

// ErrNotSysroot is matched (with errors.Is) by Open's error for a path
// that holds no sysroot (no otree/deploy), which InitFS would lay out.
var ErrNotSysroot = errors.New("not a sysroot")

// Open opens the sysroot at path and reads its deployments. An empty path
// is refused rather than taken as the current directory.
func Open(path string, opts OpenOptions) (*Sysroot, error) {
	if path == "" {
		return nil, errors.New(`opening sysroot: empty path (give "." for the current directory)`)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, "otree", "deploy")); err != nil {
		return nil, fmt.Errorf("%s is %w: %w", abs, ErrNotSysroot, err)
	}
	// On a booted system / is a deployment whose otree is a link to
	// sysroot/otree: deployments and links live under the physical root,
	// while boot/ is the boot filesystem mounted in the deployment.
	root := abs
	if p, err := filepath.EvalSymlinks(filepath.Join(abs, "otree")); err == nil {
		root = filepath.Dir(p)
	}
	r, err := repo.Open(filepath.Join(root, "otree", "repo"))
	if err != nil {
		return nil, err
	}
	s := &Sysroot{path: abs, root: root, repo: r, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	r.SetLogger(opts.Logger)
	if opts.Cmdline == nil {
		s.runningDir = runningDir(root)
	}
	switch {
	case opts.Cmdline != nil:
		s.cmdline = *opts.Cmdline
	case abs == "/" || s.runningDir != "":
		// The running system's sysroot, by either path: what it booted
		// must be known, or a missing boot/loader would read as no
		// deployments and cleanup delete the running one.
		b, err := os.ReadFile("/proc/cmdline")
		if err == nil {
			s.cmdline = string(b)
		}
	}
	if err := s.load(); err != nil {
		r.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the repository. Afterwards every change (a deploy,
// OSInit, Pin, SetKargs, Cleanup ...) fails with an error matching
// repo.ErrClosed; what the Sysroot read before (Deployments, Booted) is
// still returned. Closing again does nothing.
func (s *Sysroot) Close() error {
	s.closed = true
	return s.repo.Close()
}

// checkOpen fails, matching repo.ErrClosed, once s is closed.
func (s *Sysroot) checkOpen() error {
	if s.closed {
		return fmt.Errorf("sysroot %s: %w", s.path, repo.ErrClosed)
	}
	return nil
}

// Path is the sysroot's absolute path, as given to Open.
func (s *Sysroot) Path() string { return s.path }

// Repo is the system repository.
func (s *Sysroot) Repo() *repo.Repo { return s.repo }

// Deployments lists the deployments in boot order. The slice is the
// caller's to change; the Deployments it points to are the Sysroot's, to
// be read only.
func (s *Sysroot) Deployments() []*Deployment { return slices.Clone(s.deployments) }

// Booted is the deployment the running system booted, or nil.
func (s *Sysroot) Booted() *Deployment { return s.booted }

// BootVersion reports the current boot version and sub-version.
func (s *Sysroot) BootVersion() (boot, sub int) { return s.bootVersion, s.subVersion }

// OSInit creates the stateroot name with its shared var. It takes the
// sysroot lock (OSTree 2022.7's os-init takes none), so that a deploy
// choosing a stateroot never sees one half made, nor boots one whose
// directories are not yet durable. A ctx done while it waits for the
// lock stops the wait and nothing is made.
func (s *Sysroot) OSInit(ctx context.Context, name string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := validOSName(name); err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("os-init %s: %w", name, err)
	}
	defer unlock()
	root := filepath.Join(s.root, "otree", "deploy", name)
	for _, d := range []struct {
		name string
		mode os.FileMode
	}{{"", 0o755}, {"deploy", 0o755}, {"var", 0o755}, {"var/lib", 0o755}, {"var/log", 0o755}, {"var/tmp", 0o777 | os.ModeSticky}} {
		p := filepath.Join(root, d.name)
		err := os.Mkdir(p, d.mode.Perm())
		if errors.Is(err, fs.ErrExist) {
			// Kept as it is: the admin may have changed its mode, and a
			// chmod would follow a symlink there. The stateroot, its
			// deploy/ and var/ must be directories: what is made below
			// them would go where a link points, and prepare-root
			// refuses to boot with a var that is not one.
			if d.name == "" || d.name == "deploy" || d.name == "var" {
				if err := checkDirs(p); err != nil {
					return fmt.Errorf("os-init %s: %w", name, err)
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("os-init %s: %w", name, err)
		}
		if d.mode&os.ModeSticky != 0 { // past the umask too
			if err := os.Chmod(p, d.mode); err != nil {
				return fmt.Errorf("os-init %s: %w", name, err)
			}
		}
	}
	// As OSTree's: the legacy paths lead to /run.
	for link, target := range map[string]string{"var/run": "../run", "var/lock": "../run/lock"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("os-init %s: %w", name, err)
		}
	}
	return syncDirs(filepath.Join(root, "var"), root, filepath.Dir(root))
}

// validOSName checks a stateroot name: one component of a ref name
// (a letter, digit or '_', then letters, digits and "._-"), since each
// deployment holds the ref otree/<os>/<id>.<serial>. A name a deploy
// could not use is refused by os-init; it also keeps the otree= kernel
// argument free of what the kernel would split it at (whitespace, 0xA0)
// or read as a quote.
func validOSName(name string) error {
	if name == "" || len(name) > maxOSName {
		return fmt.Errorf("invalid stateroot name %q: want 1 to %d bytes", name, maxOSName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '-')) {
			b := fmt.Sprintf("%q", c)
			if c >= 0x80 {
				b = fmt.Sprintf("'\\x%02x'", c)
			}
			return fmt.Errorf("invalid stateroot name %q: byte %s at %d (a name starts with a letter, digit or '_' and holds only letters, digits and \"._-\")", name, b, i)
		}
	}
	return nil
}

// maxOSName is the longest stateroot name: a kernel's directory in /boot,
// <os>-<bootcsum>, is a file name of at most 255 bytes.
const maxOSName = 255 - 1 - 64

// stateroots lists the stateroots present in otree/deploy.
func (s *Sysroot) stateroots() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "otree", "deploy"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && validOSName(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// deploymentDir is where a deployment is checked out.
func (s *Sysroot) deploymentDir(osName string, commit repo.ID, serial int) string {
	return filepath.Join(s.root, "otree", "deploy", osName, "deploy", fmt.Sprintf("%s.%d", commit, serial))
}

// loadTries bounds how many times load reads the state again because a
// switch replaced the links it was reading through.
const loadTries = 10

// load reads the current boot version's entries: they are the deployments.
// Without the sysroot lock (status), a switch and its cleanup can remove
// the entries or deployments being read, failing the read or leaving it
// short; the links then differ from before the read, and it reads again
// from the new ones.
func (s *Sysroot) load() error {
	defer s.loadStaged()
	defer s.loadUnlocked()
	for try := 1; ; try++ {
		before := s.bootLinks()
		err := s.loadOnce()
		if try == loadTries || s.bootLinks() == before {
			s.links = before
			return err
		}
	}
}

// Switched reports whether the boot entries have switched since the
// deployments were read, by this process or another: a deployment
// Deployments lists may then be gone, or going, from the disk, so what a
// reader found reading its files is not to be trusted.
func (s *Sysroot) Switched() bool { return s.bootLinks() != s.links }

// bootLinks identifies boot/loader and otree/boot.0 and boot.1, the links
// a switch replaces, by inode and change time, so that a switch shows even
// when a link comes back with the same target.
func (s *Sysroot) bootLinks() [3]linkStamp {
	var l [3]linkStamp
	for i, p := range []string{
		filepath.Join(s.path, "boot", "loader"),
		filepath.Join(s.root, "otree", "boot.0"),
		filepath.Join(s.root, "otree", "boot.1"),
	} {
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil {
			l[i] = linkStamp{st.Ino, st.Ctim}
		}
	}
	return l
}

type linkStamp struct {
	ino   uint64
	ctime unix.Timespec
}

// testHookLoadRead, when set by a test, runs in load right after the
// boot/loader link is read.
var testHookLoadRead func()

func (s *Sysroot) loadOnce() error {
	s.deployments, s.booted = nil, nil
	s.bootVersion, s.subVersion = 0, 0
	link, err := os.Readlink(filepath.Join(s.path, "boot", "loader"))
	if testHookLoadRead != nil {
		testHookLoadRead()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A system booted from a deployment has boot entries: without
		// them it is the boot filesystem that is missing (not mounted on
		// boot/), not the deployments, and taking the list as empty
		// would have cleanup delete the booted deployment.
		if _, ok := BootArgFromCmdline(s.cmdline); ok {
			return fmt.Errorf("%s does not exist, but the system was booted from a deployment (otree= on the kernel command line): is the boot filesystem mounted on %s?", filepath.Join(s.path, "boot", "loader"), filepath.Join(s.path, "boot"))
		}
		return nil
	case errors.Is(err, unix.EINVAL):
		// A boot loader's own directory, say, where otree needs the link
		// it replaces to switch.
		return fmt.Errorf("%s is not a symlink: otree switches boot entries by replacing the link boot/loader -> loader.0 or loader.1", filepath.Join(s.path, "boot", "loader"))
	case err != nil:
		return fmt.Errorf("reading boot/loader: %w", err)
	}
	switch link {
	case "loader.0":
	case "loader.1":
		s.bootVersion = 1
	default:
		return fmt.Errorf("boot/loader points at %q, not loader.0 or loader.1", link)
	}
	sub, err := os.Readlink(filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d", s.bootVersion)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case sub == fmt.Sprintf("boot.%d.1", s.bootVersion):
		s.subVersion = 1
	case sub != fmt.Sprintf("boot.%d.0", s.bootVersion):
		return fmt.Errorf("otree/boot.%d points at %q", s.bootVersion, sub)
	}
	entries, err := readEntries(filepath.Join(s.path, "boot", link, "entries"))
	if err != nil {
		return err
	}
	for i, e := range entries {
		d, err := s.fromEntry(e)
		if err != nil {
			return err
		}
		d.Index = i
		s.deployments = append(s.deployments, d)
	}
	s.rootBooted = false
	if s.booted = s.findBooted(); s.booted != nil {
		s.booted.Booted = true
	} else if _, ok := BootArgFromCmdline(s.cmdline); ok && s.runningDir != "" {
		// Booted from this sysroot, whose entries do not list what runs:
		// another boot filesystem is mounted, or the entry went. Taken
		// as it is, the list would have cleanup delete the running
		// deployment.
		return fmt.Errorf("the running system is deployment %s, which no boot entry in %s lists: is the boot filesystem it booted from mounted on %s?", s.runningDir, filepath.Join(s.path, "boot", link, "entries"), filepath.Join(s.path, "boot"))
	}
	s.markRoles()
	if d := s.remotesDeployment(); d != nil {
		s.repo.SetRemotesDirIn(d.Path, RemotesDir) // its links resolved in it
	} else {
		s.repo.SetRemotesDir("")
	}
	return nil
}

// RemotesDir is where the system repository's remotes are defined beside
// its config, as OSTree's /etc/ostree/remotes.d: etc/otree/remotes.d of
// the booted deployment (/etc/otree/remotes.d on the running system), or,
// on a sysroot not booted, of the default deployment. So an OS can ship the
// remote it updates from (usr/etc/otree/remotes.d/NAME.conf, merged into
// /etc like any default) and change it with an update.
const RemotesDir = "etc/otree/remotes.d"

// remotesDeployment is the deployment whose RemotesDir holds the remotes:
// the booted one, else the default; nil without deployments.
func (s *Sysroot) remotesDeployment() *Deployment {
	if s.booted != nil {
		return s.booted
	}
	if len(s.deployments) > 0 {
		return s.deployments[0]
	}
	return nil
}

// runningDir returns the deployment directory of the sysroot whose
// physical root is root that is the running / (by device and inode), or
// "". Directories are read, not globbed: root may hold '[' or '*'.
func runningDir(root string) string {
	fi, err := os.Stat("/")
	if err != nil {
		return ""
	}
	base := filepath.Join(root, "otree", "deploy")
	stateroots, _ := os.ReadDir(base)
	for _, sr := range stateroots {
		dir := filepath.Join(base, sr.Name(), "deploy")
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			d := filepath.Join(dir, e.Name())
			if di, err := os.Stat(d); err == nil && di.IsDir() && os.SameFile(di, fi) {
				return d
			}
		}
	}
	return ""
}

// findBooted returns the booted deployment, if the kernel command line
// has an otree= argument: the deployment that is the sysroot's own
// directory (by device and inode, as a booted / is its deployment), or,
// for the sysroot opened by its physical root, the running /; else the
// one the argument's links lead to. The first holds after a switch
// too, which removes the links of the boot version the machine booted
// with, and may later reuse their names for other deployments.
func (s *Sysroot) findBooted() *Deployment {
	v, ok := BootArgFromCmdline(s.cmdline)
	if !ok {
		return nil
	}
	if root, err := os.Stat(s.path); err == nil {
		for _, d := range s.deployments {
			if fi, err := os.Stat(d.Path); err == nil && os.SameFile(fi, root) {
				s.rootBooted = true
				return d
			}
		}
	}
	if s.runningDir != "" {
		// Found by Open, by device and inode, under the same root the
		// entries resolve in.
		for _, d := range s.deployments {
			if d.Path == s.runningDir {
				return d
			}
		}
	}
	a, err := ParseBootArg(v)
	if err != nil {
		return nil
	}
	dir, err := ResolveBootArg(s.root, a)
	if err != nil {
		return nil
	}
	for _, d := range s.deployments {
		if d.Path == dir {
			return d
		}
	}
	return nil
}

// fromEntry rebuilds a deployment from its boot entry and its directory.
func (s *Sysroot) fromEntry(e *bootEntry) (*Deployment, error) {
	v, ok := BootArgFromCmdline(e.options)
	if !ok {
		return nil, fmt.Errorf("boot entry %s has no otree= argument", e.path)
	}
	a, err := ParseBootArg(v)
	if err != nil {
		return nil, fmt.Errorf("boot entry %s: %w", e.path, err)
	}
	if a.BootVersion != s.bootVersion {
		return nil, fmt.Errorf("boot entry %s names boot version %d, current is %d", e.path, a.BootVersion, s.bootVersion)
	}
	dir, err := ResolveBootArg(s.root, a)
	if err != nil {
		return nil, fmt.Errorf("boot entry %s: %w", e.path, err)
	}
	commit, serial, err := parseDeployName(filepath.Base(dir))
	if err != nil {
		return nil, fmt.Errorf("boot entry %s: %w", e.path, err)
	}
	d := &Deployment{
		OS: a.OS, Commit: commit, Serial: serial, Path: dir, BootCsum: a.BootCsum,
		Options: removeArg(e.options, "otree"), bootSerial: a.Serial,
	}
	for _, i := range e.initrds {
		if id, ok := overlayID(i); ok {
			d.OverlayInitrds = append(d.OverlayInitrds, id)
		} else {
			d.Initramfs = true
		}
	}
	// A kernel without a version (a legacy vmlinuz-<sha256>) is vmlinuz.
	if base := filepath.Base(e.linux); base != "vmlinuz" {
		d.Kernel = strings.TrimPrefix(base, "vmlinuz-")
	}
	d.Devicetree = e.devicetree != ""
	d.FdtDir = e.fdtdir != ""
	o, err := readOrigin(dir + ".origin")
	if err != nil {
		return nil, err
	}
	o.applyTo(d)
	d.Version = s.commitVersion(commit)
	return d, nil
}

// commitVersion is the commit's "version" metadata ("" if none, or if the
// commit cannot be read).
func (s *Sysroot) commitVersion(commit repo.ID) string {
	if c, err := s.repo.ReadCommit(commit); err == nil {
		if v, ok := c.Metadata.Get("version"); ok {
			return string(v)
		}
	}
	return ""
}

// markRoles sets Pending and Rollback. With a booted deployment, pending
// is the first of its stateroot ahead of it and rollback the first after
// it; otherwise rollback is the deployment Rollback would promote.
func (s *Sysroot) markRoles() {
	for i, d := range s.deployments {
		d.Index = i
		d.Pending, d.Rollback = false, false
	}
	if b := s.booted; b != nil {
		for _, d := range s.deployments[:b.Index] {
			if d.OS == b.OS {
				d.Pending = true
				break
			}
		}
		for _, d := range s.deployments[b.Index+1:] {
			if d.OS == b.OS {
				d.Rollback = true
				break
			}
		}
		return
	}
	if d, err := s.rollbackTarget(); err == nil {
		d.Rollback = true
	}
}

func parseDeployName(name string) (repo.ID, int, error) {
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return repo.ID{}, 0, fmt.Errorf("deployment directory %q is not <commit>.<serial>", name)
	}
	id, err := repo.ParseID(name[:dot])
	if err != nil {
		return repo.ID{}, 0, fmt.Errorf("deployment directory %q: %w", name, err)
	}
	n, err := strconv.Atoi(name[dot+1:])
	if err != nil || n < 0 || strconv.Itoa(n) != name[dot+1:] {
		return repo.ID{}, 0, fmt.Errorf("deployment directory %q has a bad serial", name)
	}
	return id, n, nil
}

// Lock takes the sysroot lock, waiting while another process holds it,
// and re-reads the state; the returned func releases it. Deployments and
// their indices read while it is held are those the changes made meanwhile
// (which take it again without waiting) act on, so a caller that picks a
// deployment by index holds it from before the pick until its change is
// made, as OSTree's admin commands hold the sysroot lock throughout.
func (s *Sysroot) Lock(ctx context.Context) (func(), error) { return s.lock(ctx) }

// lock takes the sysroot lock and re-reads the state, so a change starts
// from what is on disk now. The returned func releases it. A ctx already
// done fails it: a change asked with a cancelled context is not made.
func (s *Sysroot) lock(ctx context.Context) (func(), error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if s.held > 0 {
		s.held++
		return func() { s.held-- }, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sysroot %s: %w", s.root, err)
	}
	f, err := os.OpenFile(filepath.Join(s.root, "otree", "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, fs.ErrPermission) {
		// A user other than root running a command that changes the
		// sysroot: say what it takes, as a bare permission error does not.
		return nil, fmt.Errorf("sysroot lock: %w (changing the sysroot %s needs root)", err, s.root)
	}
	if err != nil {
		return nil, fmt.Errorf("sysroot lock: %w", err)
	}
	for waited := false; ; waited = true {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("sysroot lock %s: %w", f.Name(), err)
		}
		if !waited && s.log != nil {
			// Another deploy, upgrade or cleanup: it may take a while.
			s.log.Info("waiting for the sysroot lock another process holds", "lock", f.Name())
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the sysroot lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	if err := s.dropStaleStaged(); err != nil {
		f.Close()
		return nil, err
	}
	s.held = 1
	return func() { s.held = 0; f.Close() }, nil
}

// syncDirs fsyncs directories so that entries made in them are durable.
func syncDirs(dirs ...string) error {
	for _, d := range dirs {
		if err := durable.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}
