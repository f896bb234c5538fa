package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/otree/otree/internal/durable"
	"golang.org/x/sys/unix"
)

// GRUB keeps variables that must outlive a boot (load_env, save_env) in an
// environment block: a file of exactly 1024 bytes, a header line, then
// NAME=VALUE lines, padded with '#'. save_env rewrites it in place, block
// by block, so its size must never change; otree edits it the same way.

const (
	grubEnvSize   = 1024
	grubEnvHeader = "# GRUB Environment Block\n"
)

// grubEnvPath is where GRUB's load_env and save_env find the block:
// $prefix/grubenv, GRUB's own directory on the boot filesystem. That is
// boot/grub, where Debian's grub-install puts it, or boot/grub2, Fedora's,
// when only that one is a directory: a count set elsewhere would never
// be read, and GRUB would never fall back.
func (s *Sysroot) grubEnvPath() string {
	dir := filepath.Join(s.path, "boot", "grub")
	if !isDirPath(dir) && isDirPath(dir+"2") {
		dir += "2"
	}
	return filepath.Join(dir, "grubenv")
}

// isDirPath tells whether p is a directory (or a link to one).
func isDirPath(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// parseGrubEnv reads an environment block's variables in their order.
// Escaped characters (\\, and a newline after a backslash) are kept as
// written: otree's own values never need them, and others are written
// back unchanged.
func parseGrubEnv(b []byte) ([][2]string, error) {
	if len(b) != grubEnvSize || !bytes.HasPrefix(b, []byte(grubEnvHeader)) {
		return nil, fmt.Errorf("not a GRUB environment block (%d bytes; want %d starting %q)", len(b), grubEnvSize, strings.TrimSpace(grubEnvHeader))
	}
	var vars [][2]string
	for rest := string(b[len(grubEnvHeader):]); rest != ""; {
		line, more := grubEnvLine(rest)
		rest = rest[len(line):]
		if !more {
			if line != "" && line[0] != '#' {
				// GRUB reads no variable from it, and will not set one.
				return nil, fmt.Errorf("GRUB environment block: last line %q has no newline", line)
			}
			break
		}
		rest = rest[1:]
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("GRUB environment block: line %q is not NAME=VALUE", line)
		}
		vars = append(vars, [2]string{k, v})
	}
	return vars, nil
}

// grubEnvLine returns the line s starts with, up to its first newline not
// escaped by a backslash (GRUB escapes a newline in a value so), and
// whether that newline is there.
func grubEnvLine(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\n':
			return s[:i], true
		}
	}
	return s, false
}

// renderGrubEnv writes vars as a 1024-byte environment block.
func renderGrubEnv(vars [][2]string) ([]byte, error) {
	b := []byte(grubEnvHeader)
	for _, kv := range vars {
		b = append(b, kv[0]+"="+kv[1]+"\n"...)
	}
	if len(b) > grubEnvSize {
		return nil, fmt.Errorf("GRUB environment block: %d bytes of variables do not fit in %d", len(b), grubEnvSize)
	}
	return append(b, bytes.Repeat([]byte{'#'}, grubEnvSize-len(b))...), nil
}

// readGrubVar returns the value of name in the block at path, and whether
// it is set; a missing block sets nothing.
func readGrubVar(path, name string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	vars, err := parseGrubEnv(b)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", path, err)
	}
	for _, kv := range vars {
		if kv[0] == name {
			return kv[1], true, nil
		}
	}
	return "", false, nil
}

// setGrubVar sets name to value in the block at path (unset is true:
// removes it), durably. An existing block is rewritten in place, as
// save_env does; a missing one is created (unless only unsetting).
func setGrubVar(path, name, value string, unset bool) error {
	b, err := os.ReadFile(path)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missing {
		return err
	}
	var vars [][2]string
	if !missing {
		if vars, err = parseGrubEnv(b); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if unset {
		return nil
	}
	out := vars[:0:0]
	for _, kv := range vars {
		if kv[0] != name {
			out = append(out, kv)
		}
	}
	if !unset {
		out = append(out, [2]string{name, value})
	}
	data, err := renderGrubEnv(out)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if missing {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return durable.WriteFile(path, data, 0o644, true)
	}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer unix.Close(fd)
	if n, err := unix.Pwrite(fd, data, 0); err != nil || n != len(data) {
		return fmt.Errorf("writing %s: %d of %d bytes: %v", path, n, len(data), err)
	}
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}
