package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/otree/otree/repo"
)

// bootEntry is one Boot Loader Specification type #1 entry.
type bootEntry struct {
	file    string // the .conf file's name
	path    string // where it was read from, for errors; "" for a new one
	os      string // the deployment's stateroot; "" when read back from disk
	title   string
	version int // orders entries: the highest boots by default
	options string
	linux   string
	initrds []string // the kernel's initramfs, then overlays, in load order
	// devicetree is the board's devicetree blob the loader hands the
	// kernel; "" for none.
	devicetree string
	// fdtdir is a directory of device trees from which the loader
	// (U-Boot) picks the board's; "" for none.
	fdtdir string
}

// render writes the entry in the key/value form of the specification.
func (e *bootEntry) render() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "title %s\n", e.title)
	fmt.Fprintf(&b, "version %d\n", e.version)
	fmt.Fprintf(&b, "options %s\n", e.options)
	fmt.Fprintf(&b, "linux %s\n", e.linux)
	for _, i := range e.initrds {
		fmt.Fprintf(&b, "initrd %s\n", i)
	}
	if e.devicetree != "" {
		fmt.Fprintf(&b, "devicetree %s\n", e.devicetree)
	}
	if e.fdtdir != "" {
		fmt.Fprintf(&b, "fdtdir %s\n", e.fdtdir)
	}
	return b.Bytes()
}

// parseEntry reads the entry file in the entries directory dir; unknown
// keys are ignored and repeated options lines are joined, as the
// specification says.
func parseEntry(dir, file string, data []byte) (*bootEntry, error) {
	e := &bootEntry{file: file, path: filepath.Join(dir, file), version: -1}
	// Split by hand: a bufio.Scanner stops at a line over 64 KiB, and a
	// long options line, which deploy writes, would read as no line at all.
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		// Key and value are separated by spaces or tabs, as the
		// specification and OSTree's reader have it.
		key, val := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, val = line[:i], strings.TrimSpace(line[i+1:])
		}
		switch key {
		case "title":
			e.title = val
		case "version":
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("boot entry %s: version %q is not a number", e.path, val)
			}
			e.version = n
		case "options":
			if val == "" {
				// Nothing to add: joined, it would leave a trailing
				// space the written entry does not have.
				break
			}
			if e.options != "" {
				e.options += " "
			}
			e.options += val
		case "linux":
			e.linux = val
		case "initrd":
			e.initrds = append(e.initrds, val)
		case "devicetree":
			e.devicetree = val
		case "fdtdir":
			e.fdtdir = val
		}
	}
	if e.version < 0 || e.linux == "" {
		return nil, fmt.Errorf("boot entry %s lacks a version or linux line", e.path)
	}
	return e, nil
}

// readEntries reads otree's entries in dir, highest version first.
func readEntries(dir string) ([]*bootEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*bootEntry
	for _, de := range ents {
		n := de.Name()
		if !strings.HasPrefix(n, "otree-") || !strings.HasSuffix(n, ".conf") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		e, err := parseEntry(dir, n, data)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].version > out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("boot entries %s and %s have the same version %d", out[i-1].path, out[i].path, out[i].version)
		}
	}
	return out, nil
}

// splitArgs splits a kernel command line into arguments at the whitespace
// the kernel splits at, keeping double quotes inside an argument as the
// kernel does ("a=\"b c\"" is one). It works on bytes, so an argument keeps
// bytes that are not UTF-8.
func splitArgs(s string) []string {
	var out []string
	quoted, start := false, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			quoted = !quoted
		}
		switch {
		case !quoted && bootArgIsSpace(c):
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		case start < 0:
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

func argKey(a string) string {
	k, _, _ := strings.Cut(a, "=")
	return k
}

// removeArg drops every argument with the given key.
func removeArg(cmdline, key string) string {
	var keep []string
	for _, a := range splitArgs(cmdline) {
		if argKey(a) != key {
			keep = append(keep, a)
		}
	}
	return strings.Join(keep, " ")
}

// KargsEdit changes a deployment's kernel arguments. The edits apply in
// the order Replace, Delete, Append, AppendIfMissing.
type KargsEdit struct {
	// Replace sets KEY=VALUE (or a bare KEY), removing every other value
	// of KEY first; KEY=OLD=NEW replaces only the argument KEY=OLD when
	// there is one.
	Replace []string
	// Delete removes KEY=VALUE exactly, or every value of a bare KEY. An
	// argument not present fails the edit, naming it.
	Delete []string
	// Append adds arguments at the end, even if their key is present
	// (console= may be given several times).
	Append []string
	// AppendIfMissing adds each argument whose key is not present yet.
	AppendIfMissing []string
	// wholeValues reads each Replace as KEY=VALUE alone, VALUE holding
	// any '=' (deploy's --karg, as OSTree's: root=ZFS=rpool/os sets root
	// even where root=ZFS is present).
	wholeValues bool
}

// apply returns the edited command line, or an error naming an argument
// that is invalid or that Delete did not find.
func (k KargsEdit) apply(cmdline string) (string, error) {
	args := splitArgs(cmdline)
	for _, r := range k.Replace {
		if err := checkArg(r); err != nil {
			return "", err
		}
		key, rest, _ := strings.Cut(r, "=")
		// KEY=OLD=NEW replaces one value when KEY=OLD is present; otherwise
		// the whole is a value (root=LABEL=root).
		if old, nw, ok := strings.Cut(rest, "="); ok && !k.wholeValues {
			found := false
			for i, a := range args {
				if a == key+"="+old {
					args[i], found = key+"="+nw, true
				}
			}
			if found {
				continue
			}
		}
		var out []string
		placed := false
		for _, a := range args {
			if argKey(a) == key {
				if !placed {
					out, placed = append(out, r), true
				}
				continue
			}
			out = append(out, a)
		}
		if !placed {
			out = append(out, r)
		}
		args = out
	}
	for _, d := range k.Delete {
		var out []string
		found := false
		for _, a := range args {
			if a == d || (!strings.Contains(d, "=") && argKey(a) == d) {
				found = true
				continue
			}
			out = append(out, a)
		}
		if !found {
			return "", fmt.Errorf("kernel argument %s not found", d)
		}
		args = out
	}
	for _, a := range k.Append {
		if err := checkArg(a); err != nil {
			return "", err
		}
		args = append(args, a)
	}
	for _, a := range k.AppendIfMissing {
		if err := checkArg(a); err != nil {
			return "", err
		}
		if !slices.ContainsFunc(args, func(x string) bool { return argKey(x) == argKey(a) }) {
			args = append(args, a)
		}
	}
	// An argument kept from the command line edited may hold a newline
	// inside quotes (a booted command line's, as the boot loader passed
	// it): written, it would end the boot entry's options line.
	for _, a := range args {
		if strings.Contains(a, "\n") {
			return "", fmt.Errorf("kernel argument %q holds a line break, which a boot entry's options line cannot", a)
		}
	}
	return strings.Join(args, " "), nil
}

func checkArg(a string) error {
	// One argument as the kernel splits them ("a b\"" is two), and no
	// line break even inside quotes, which would end the boot entry's
	// options line.
	if strings.ContainsAny(a, "\n\t\r\v\f") {
		return fmt.Errorf("invalid kernel argument %q: it holds a line break or tab", a)
	}
	args := splitArgs(a)
	if len(args) > 1 {
		return fmt.Errorf("invalid kernel argument %q: it is %d arguments (quote a value with spaces, x=\"a b\"; give each argument its own flag)", a, len(args))
	}
	if len(args) != 1 || args[0] != a {
		return fmt.Errorf("invalid kernel argument %q", a)
	}
	if argKey(a) == "otree" {
		return fmt.Errorf("kernel argument otree= is managed by otree")
	}
	return nil
}

// origin is what a deployment's .origin file records.
type origin struct {
	Refspec        string
	OverrideCommit string // [origin] override-commit: deployed instead of the refspec's commit
	Unlocked       string // [origin] unlocked: "hotfix" once Unlock made one
	Unconfigured   string // [origin] unconfigured-state: what to set up before upgrades; a switch drops it
	Pinned         bool
	raw            []byte // the file as read, rewritten with edits
}

// readOrigin parses an INI origin file; a missing one is empty.
func readOrigin(path string) (*origin, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &origin{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseOrigin(path, data)
}

func parseOrigin(path string, data []byte) (*origin, error) {
	o := &origin{raw: data}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.Trim(line, repo.KeyFileSpace)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			var ok bool
			if section, ok = originSection(line); !ok {
				return nil, fmt.Errorf("%s:%d: bad section header", path, i+1)
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: expected key=value", path, i+1)
		}
		k, v = strings.Trim(k, repo.KeyFileSpace), strings.Trim(v, repo.KeyFileSpace)
		switch {
		case section == "origin":
			// GLib's escapes, as OSTree reads them: an installer's
			// unconfigured-state message may hold \n or \s.
			if f := o.field(k); f != nil {
				*f = repo.UnescapeConfigValue(v)
			}
		case section == "otree" && k == "pinned":
			o.Pinned = v == "true"
		}
	}
	return o, nil
}

// originSection is the name of the section a trimmed line starting with
// "[" opens, and false if it is malformed. Reading and writing share it so
// that keys are written into the section they are read from.
func originSection(line string) (string, bool) {
	if len(line) < 2 || !strings.HasSuffix(line, "]") {
		return "", false
	}
	return line[1 : len(line)-1], true
}

// originFields are the keys of [origin] that otree reads and writes, in
// the order written, with the field each is kept in.
var originFields = []struct {
	key   string
	field func(*origin) *string
}{
	{"refspec", func(o *origin) *string { return &o.Refspec }},
	{"override-commit", func(o *origin) *string { return &o.OverrideCommit }},
	{"unlocked", func(o *origin) *string { return &o.Unlocked }},
	{"unconfigured-state", func(o *origin) *string { return &o.Unconfigured }},
}

// field is the struct field of [origin] key k, nil for a key otree does
// not own.
func (o *origin) field(k string) *string {
	for _, f := range originFields {
		if f.key == k {
			return f.field(o)
		}
	}
	return nil
}

// originKeys are the lines of the keys of [origin] that otree writes.
func (o *origin) originKeys() []string {
	var keys []string
	for _, f := range originFields {
		if v := *f.field(o); v != "" {
			keys = append(keys, f.key+"="+repo.EscapeConfigValue(v))
		}
	}
	return keys
}

// applyTo gives d what the origin records.
func (o *origin) applyTo(d *Deployment) {
	d.Origin, d.Pinned, d.OverrideCommit, d.Unlocked = o.Refspec, o.Pinned, o.OverrideCommit, UnlockMode(o.Unlocked)
}

// encode writes the origin: the sections of raw other than [otree] (so
// keys otree does not know survive), refspec first in [origin], then the
// [otree] state.
func (o *origin) encode() []byte {
	var body []string
	section, hasOrigin := "", false
	for _, line := range strings.Split(string(o.raw), "\n") {
		t := strings.Trim(line, repo.KeyFileSpace)
		if t == "" {
			continue
		}
		if t[0] == '[' {
			section, _ = originSection(t)
			if section == "otree" {
				continue
			}
			body = append(body, t)
			if section == "origin" {
				hasOrigin = true
				body = append(body, o.originKeys()...)
			}
			continue
		}
		k, _, _ := strings.Cut(t, "=")
		if section == "otree" || (section == "origin" && o.field(strings.Trim(k, repo.KeyFileSpace)) != nil) {
			continue
		}
		// Kept as it was but for the indent: GLib keeps the spaces
		// that end a value.
		body = append(body, strings.TrimLeft(line, repo.KeyFileSpace))
	}
	if keys := o.originKeys(); !hasOrigin && len(keys) > 0 {
		// First, unless lines outside any section come first: put
		// before them, [origin] would take them in.
		if len(body) == 0 || body[0][0] == '[' {
			body = append(append([]string{"[origin]"}, keys...), body...)
		} else {
			body = append(append(body, "[origin]"), keys...)
		}
	}
	if o.Pinned {
		body = append(body, "[otree]", "pinned=true")
	}
	if len(body) == 0 {
		return nil
	}
	return []byte(strings.Join(body, "\n") + "\n")
}
