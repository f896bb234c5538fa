package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/otree/otree/internal/durable"
	"github.com/otree/otree/repo"
)

// overlayDir holds the overlay initramfs images of deployments, named by
// the id of their content, under the boot directory.
const overlayDir = "otree/initramfs-overlays"

// overlayRel is where the overlay image with id lives, relative to the
// boot directory.
func overlayRel(id string) string { return overlayDir + "/" + id + ".img" }

// overlayID returns the id of the overlay image a boot entry's initrd path
// names, if it names one.
func overlayID(path string) (string, bool) {
	dir, name := filepath.Split(path)
	if !strings.HasSuffix(strings.TrimSuffix(dir, "/"), "/"+overlayDir) {
		return "", false
	}
	id, ok := strings.CutSuffix(name, ".img")
	if _, err := repo.ParseID(id); !ok || err != nil {
		return "", false
	}
	return id, true
}

// installOverlays copies each file (an initramfs image, a cpio archive the
// kernel loads after the tree's own) into the boot directory under the id
// of its content, unless it is there, and returns the ids in order.
func (s *Sysroot) installOverlays(files []string) ([]string, error) {
	if len(files) > 0 {
		if err := s.checkBootDirs(); err != nil {
			return nil, err
		}
	}
	var ids []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("overlay initrd: %w", err)
		}
		if len(data) == 0 {
			return nil, fmt.Errorf("overlay initrd %s is empty", f)
		}
		id := repo.Sum(data).String()
		dst := filepath.Join(s.path, "boot", overlayRel(id))
		if _, err := os.Lstat(dst); err != nil {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, fmt.Errorf("overlay initrd %s: %w", f, err)
			}
			if err := durable.WriteFile(dst, data, 0o644, true); err != nil {
				return nil, fmt.Errorf("overlay initrd %s: %w", f, err)
			}
		}
		ids = append(ids, id)
	}
	return ids, nil
}
