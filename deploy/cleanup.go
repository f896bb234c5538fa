package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/delta"
)

// CleanupOptions configure Cleanup.
type CleanupOptions struct {
	// NoPrune leaves the repository alone.
	NoPrune bool
}

// CleanupReport lists what Cleanup removed.
type CleanupReport struct {
	Deployments []string `json:"deployments"` // deployment directories (and their origins)
	Boot        []string `json:"boot"`        // boot versions, link sets and kernel directories
	Refs        []string `json:"refs"`        // deployment refs of removed deployments
	// Unlocks lists the overlay directories of development unlocks of
	// earlier boots (under /var/tmp), which nothing mounts any more.
	Unlocks []string          `json:"unlocks,omitempty"`
	Prune   *repo.PruneReport `json:"prune,omitempty"` // what pruning the repository deleted; nil with NoPrune
}

// Cleanup removes what no current deployment uses: deployment directories
// left by interrupted or undone deployments, the other boot version, old
// link sets and kernels, then prunes the repository to the commits refs
// name (deployments hold refs to theirs), with the static deltas that
// lead to the commits it deletes.
func (s *Sysroot) Cleanup(ctx context.Context, opts CleanupOptions) (*CleanupReport, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep, err := s.cleanup(ctx, opts)
	return rep, s.nameCancel(ctx, err)
}

// nameCancel names the sysroot in err when it is ctx's own error, which
// names nothing.
func (s *Sysroot) nameCancel(ctx context.Context, err error) error {
	if err != nil && err == ctx.Err() {
		return fmt.Errorf("sysroot %s: %w", s.root, err)
	}
	return err
}

// cleanup runs under the lock. Everything it removes is unreachable from
// the current boot version, so a crash part way leaves only more to
// remove next time.
func (s *Sysroot) cleanup(ctx context.Context, opts CleanupOptions) (*CleanupReport, error) {
	// The switch this cleanup goes by may be one a killed deploy renamed
	// into place and never synced: make it durable before removing what
	// the previous one booted.
	for _, dir := range []string{filepath.Join(s.path, "boot"), filepath.Join(s.root, "otree")} {
		if err := durable.SyncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	rep := &CleanupReport{}
	live := map[string]bool{}    // deployment paths
	kernels := map[string]bool{} // boot/otree directory names
	overlays := map[string]bool{}
	refs := map[string]bool{}
	// What a listed or staged deployment holds; a staged one's kernel is
	// installed only when it is finalized.
	hold := func(d *Deployment) {
		live[d.Path] = true
		refs[deployRef(d)] = true
		for _, id := range d.OverlayInitrds {
			overlays[overlayRel(id)] = true
		}
	}
	for _, d := range s.deployments {
		hold(d)
		kernels[d.OS+"-"+d.BootCsum] = true
	}
	if s.staged != nil {
		hold(s.staged)
	}
	stateroots, err := s.stateroots()
	if err != nil {
		return nil, err
	}
	// The directory the running system is rooted at, were no entry to list
	// it (entries edited by another tool): deleting it would take the
	// running system's /etc. That is the sysroot opened as /, or, opened
	// by its physical root (/sysroot), the running /.
	var roots []os.FileInfo
	for _, p := range []string{s.path, "/"} {
		if fi, err := os.Stat(p); err == nil {
			roots = append(roots, fi)
		}
	}
	running := func(fi os.FileInfo) bool {
		return slices.ContainsFunc(roots, func(r os.FileInfo) bool { return os.SameFile(fi, r) })
	}
	for _, osName := range stateroots {
		if err := s.checkDeployDir(osName); err != nil {
			return nil, err
		}
		dir := filepath.Join(s.root, "otree", "deploy", osName, "deploy")
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if live[strings.TrimSuffix(p, ".origin")] {
				continue
			}
			if _, _, err := parseDeployName(strings.TrimSuffix(e.Name(), ".origin")); err != nil {
				continue // not otree's: left alone
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if fi, err := os.Lstat(p); err == nil && running(fi) {
				return nil, fmt.Errorf("%s is the running system's root, but no boot entry lists it: not removing it (boot a deployment an entry lists, or restore its entry in %s)", p, filepath.Join(s.path, "boot", "loader", "entries"))
			}
			if err := removeTree(p); err != nil {
				return nil, err
			}
			if !strings.HasSuffix(p, ".origin") {
				rep.Deployments = append(rep.Deployments, p)
			}
		}
	}
	have, err := s.repo.ListRefs("otree/")
	if err != nil {
		return nil, err
	}
	for _, r := range have {
		if !refs[r.Name] && isDeployRef(r.Name) {
			rep.Refs = append(rep.Refs, r.Name)
		}
	}
	if err := s.setRefs(ctx, nil, rep.Refs); err != nil {
		return nil, err
	}

	// The other boot version and the other sub-version's links.
	var old []string
	if len(s.deployments) > 0 || s.hasLoader() {
		nb := 1 - s.bootVersion
		old = append(old,
			filepath.Join(s.path, "boot", fmt.Sprintf("loader.%d", nb)),
			filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d", nb)),
			filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d.0", nb)),
			filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d.1", nb)),
			filepath.Join(s.root, "otree", fmt.Sprintf("boot.%d.%d", s.bootVersion, 1-s.subVersion)))
	}
	if err := s.checkBootDirs(); err != nil {
		return nil, err
	}
	kdir := filepath.Join(s.path, "boot", "otree")
	if ents, err := os.ReadDir(kdir); err == nil {
		for _, e := range ents {
			if !kernels[e.Name()] && kernelDirName.MatchString(e.Name()) {
				old = append(old, filepath.Join(kdir, e.Name()))
			}
		}
	}
	if ents, err := os.ReadDir(filepath.Join(s.path, "boot", overlayDir)); err == nil {
		for _, e := range ents {
			if rel := overlayDir + "/" + e.Name(); !overlays[rel] && overlayFileName.MatchString(e.Name()) {
				old = append(old, filepath.Join(s.path, "boot", rel))
			}
		}
	}
	for _, p := range old {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := removeTree(p); err != nil {
			return nil, err
		}
		rep.Boot = append(rep.Boot, p)
	}
	if rep.Unlocks, err = s.cleanupUnlocks(); err != nil {
		return nil, err
	}
	if !opts.NoPrune {
		if rep.Prune, err = delta.Prune(ctx, s.repo, repo.PruneOptions{RefsOnly: true, Depth: 0}); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// isDeployRef tells whether ref has the shape of a deployment's ref,
// otree/<os>/<id>.<serial>: a branch the admin made under otree/ is not
// otree's to delete.
func isDeployRef(ref string) bool {
	parts := strings.Split(ref, "/")
	if len(parts) != 3 || parts[0] != "otree" || validOSName(parts[1]) != nil {
		return false
	}
	_, _, err := parseDeployName(parts[2])
	return err == nil
}

func (s *Sysroot) hasLoader() bool {
	_, err := os.Lstat(filepath.Join(s.path, "boot", "loader"))
	return err == nil
}

// What cleanup removes in /boot is only what otree names so: kernel
// directories <os>-<bootcsum>, overlay images <id>.img and the temporary
// files of either (durable's .tmp-N in the overlay directory, which is
// otree's own; .<id>.img.tmp-N of older versions). Anything else there is the admin's, and stays, as do
// names in a stateroot's deploy/ that are not <commit>.<serial>[.origin].
var (
	kernelDirName   = regexp.MustCompile(`^.+-[0-9a-f]{64}$`)
	overlayFileName = regexp.MustCompile(`^(\.?[0-9a-f]{64}\.img(\.tmp-[0-9]+)?|\.tmp-[0-9]+)$`)
)

// removeTree deletes p, first making a deployment's directory mutable
// again (setImmutable) and directories writable: a deployment may hold
// read-only directories its owner could not otherwise empty.
func removeTree(p string) error {
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		setImmutable(p, false) // a deployment's; if it fails, so does the removal, saying why
	}
	err := os.RemoveAll(p)
	if err == nil {
		return nil
	}
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}
