package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// BootCount is the state of boot counting (ConfigBootTries): whether the
// default deployment still awaits a completed boot, and how many tries it
// has left before GRUB boots the previous deployment instead.
type BootCount struct {
	// Tries is the configured number of tries; 0 means counting is off.
	Tries int `json:"tries"`
	// Counting tells whether the default deployment's boots are being
	// counted: it has not completed a boot since it became the default.
	Counting bool `json:"counting"`
	// Left is how many tries it has left (while Counting).
	Left int `json:"left"`
	// FellBack tells that none are left: GRUB boots deployment Fallback.
	FellBack bool `json:"fell_back"`
	// Fallback is the index of the deployment GRUB boots once no tries
	// are left: the first of the default's stateroot behind it (1 when
	// it has none), as Rollback picks (while Counting).
	Fallback int `json:"fallback,omitempty"`
	// Completed tells that BootComplete ended the count.
	Completed bool `json:"completed,omitempty"`
	// RolledBack tells that, after GRUB's fallback, BootComplete made
	// the booted deployment the default (BootCompleteOptions), which
	// ended the count.
	RolledBack bool `json:"rolled_back,omitempty"`
}

// BootCompleteOptions configure BootComplete.
type BootCompleteOptions struct {
	// RollbackAfterFallback: when GRUB fell back because the default
	// deployment never completed a boot, and this boot of the one it
	// fell back to did, make the booted deployment the default, as
	// Rollback would. The failed deployment stays, second, for
	// inspection. Without it, such a boot is an error (ErrFellBack) and
	// GRUB keeps booting the fallback until a rollback.
	RollbackAfterFallback bool
}

// BootCount reads the state of boot counting from GRUB's environment
// block.
func (s *Sysroot) BootCount() (*BootCount, error) {
	lc, err := s.loaderConfig()
	if err != nil {
		return nil, err
	}
	bc := &BootCount{Tries: lc.tries}
	if lc.tries == 0 {
		return bc, nil
	}
	v, ok, err := readGrubVar(s.grubEnvPath(), grubTriesVar)
	if err != nil || !ok || !s.grubCounts() {
		// A count the current grub.cfg does not read (left by a crash
		// after a switch that ended it) counts nothing.
		return bc, err
	}
	bc.Counting = true
	bc.Fallback = fallbackIndex(len(s.deployments), func(i int) string { return s.deployments[i].OS })
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		bc.Left = n
	} else {
		bc.FellBack = true
	}
	return bc, nil
}

// ErrNotBooted is returned by operations that need the running system's
// own sysroot, when nothing in this one is booted.
var ErrNotBooted = errors.New("no deployment of this sysroot is booted")

// ErrFellBack is matched (with errors.Is) by BootComplete's error when
// GRUB fell back from a default deployment that never completed a boot
// and the options did not ask to make the booted one the default:
// Rollback does that.
var ErrFellBack = errors.New("GRUB fell back")

// BootComplete records that the running system's boot completed (what
// otree-boot-complete.service runs once boot-complete.target is reached).
// When the booted deployment is the default one and its boots were being
// counted, the count stops (Completed): GRUB boots it from now on without
// falling back. A boot of another deployment leaves the count as it is;
// when that is GRUB's fallback (Fallback, not one picked by hand in the
// menu once the tries were spent), the booted deployment becomes the default
// if opts ask for it (RolledBack), and otherwise the error, matching
// ErrFellBack, says so, since a Rollback should make it the default. It
// returns the state it found.
func (s *Sysroot) BootComplete(ctx context.Context, opts BootCompleteOptions) (*BootCount, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	bc, err := s.BootCount()
	if err != nil || !bc.Counting {
		return bc, err
	}
	if s.booted == nil {
		// Named: --sysroot may point at a sysroot other than the
		// running system's, whose boots this cannot complete.
		return bc, fmt.Errorf("sysroot %s: %w, so it has no boot to complete (run boot-complete on the system it boots)", s.path, ErrNotBooted)
	}
	if d := s.deployments[0]; !sameDeployment(s.booted, d) {
		// Another deployment than GRUB's fallback was chosen by hand
		// (after a fallback too: another system's, maybe): the
		// default's count goes on.
		if !bc.FellBack || s.booted.Index != bc.Fallback {
			return bc, nil
		}
		if opts.RollbackAfterFallback {
			// The booted deployment becomes the default: countBoots
			// stops the count.
			if _, err := s.writeDeployments(ctx, s.moveFirst(s.booted)); err != nil {
				return bc, fmt.Errorf("the default deployment %d (%s) did not complete a boot in %d tries; making the booted deployment %d the default: %w",
					d.Index, d.Name(), bc.Tries, s.booted.Index, err)
			}
			bc.RolledBack = true
			return bc, nil
		}
		return bc, fmt.Errorf("%w: the default deployment %d (%s, commit %s) did not complete a boot in %d tries, and GRUB booted deployment %d instead",
			ErrFellBack, d.Index, d.Name(), d.Commit, bc.Tries, s.booted.Index)
	}
	if err := setGrubVar(s.grubEnvPath(), grubTriesVar, "", true); err != nil {
		return bc, err
	}
	bc.Completed = true
	return bc, nil
}
