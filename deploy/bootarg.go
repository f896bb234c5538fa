package deploy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// BootArg is the parsed value of the otree= kernel argument:
// /otree/boot.<B>/<os>/<bootcsum>/<n>.
type BootArg struct {
	BootVersion int    // B: 0 or 1
	OS          string // stateroot name
	BootCsum    string // lowercase hex
	Serial      int    // n
}

const bootArgShape = "/otree/boot.<B>/<os>/<bootcsum>/<n>"

// ParseBootArg parses the value of an otree= kernel argument. It accepts
// only the exact shape /otree/boot.<B>/<os>/<bootcsum>/<n>: B is 0 or 1, os
// a stateroot name (non-empty, not "." or ".."), bootcsum lowercase hex and
// n a decimal number without sign or leading zeros, so that String gives
// back s.
func ParseBootArg(s string) (BootArg, error) {
	bad := func(why string) (BootArg, error) {
		return BootArg{}, fmt.Errorf("invalid otree= value %q: %s", s, why)
	}
	rest, ok := strings.CutPrefix(s, "/otree/boot.")
	if !ok {
		return bad("want " + bootArgShape)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 {
		return bad("want " + bootArgShape)
	}
	var a BootArg
	switch parts[0] {
	case "0":
		a.BootVersion = 0
	case "1":
		a.BootVersion = 1
	default:
		return bad(fmt.Sprintf("boot version %q is not 0 or 1", parts[0]))
	}
	a.OS = parts[1]
	switch {
	case a.OS == "":
		return bad("empty stateroot name")
	case a.OS == "." || a.OS == "..":
		return bad(fmt.Sprintf("stateroot name %q", a.OS))
	case strings.IndexByte(a.OS, 0) >= 0:
		return bad("stateroot name contains a NUL byte")
	}
	a.BootCsum = parts[2]
	if a.BootCsum == "" || strings.Trim(a.BootCsum, "0123456789abcdef") != "" {
		return bad(fmt.Sprintf("boot checksum %q is not lowercase hex", a.BootCsum))
	}
	n := parts[3]
	if n == "" || strings.Trim(n, "0123456789") != "" || (len(n) > 1 && n[0] == '0') {
		return bad(fmt.Sprintf("serial %q is not a decimal number", n))
	}
	serial, err := strconv.Atoi(n)
	if err != nil {
		return bad(fmt.Sprintf("serial %q out of range", n))
	}
	a.Serial = serial
	return a, nil
}

// String formats a as the otree= value /otree/boot.<B>/<os>/<bootcsum>/<n>.
func (a BootArg) String() string {
	return fmt.Sprintf("/otree/boot.%d/%s/%s/%d", a.BootVersion, a.OS, a.BootCsum, a.Serial)
}

// BootArgFromCmdline returns the value of the last otree= argument on the
// kernel command line cmdline, and false if there is none. Arguments are
// split as the kernel splits them: at whitespace outside double quotes,
// with the quotes around a whole argument or around its value dropped
// (otree="/a b" gives /a b). A bare "--" ends the kernel's arguments; what
// follows it belongs to init and is not searched.
func BootArgFromCmdline(cmdline string) (string, bool) {
	var val string
	found := false
	for rest := cmdline; rest != ""; {
		var param, v string
		var hasVal bool
		param, v, hasVal, rest = bootArgNextParam(rest)
		if param == "--" && !hasVal {
			break
		}
		if param == "otree" && hasVal {
			val, found = v, true
		}
	}
	return val, found
}

func bootArgIsSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// bootArgNextParam splits the first argument off s the way the kernel's
// command-line parser does, quote handling included.
func bootArgNextParam(s string) (param, val string, hasVal bool, rest string) {
	i := 0
	for i < len(s) && bootArgIsSpace(s[i]) {
		i++
	}
	s = s[i:]
	quoted := len(s) > 0 && s[0] == '"'
	if quoted {
		s = s[1:]
	}
	inQuote, equals, end := quoted, -1, 0
	for ; end < len(s); end++ {
		c := s[end]
		if bootArgIsSpace(c) && !inQuote {
			break
		}
		if equals < 0 && c == '=' {
			equals = end
		}
		if c == '"' {
			inQuote = !inQuote
		}
	}
	rest = s[end:]
	trailingQuote := end > 0 && s[end-1] == '"'
	if equals < 0 {
		param = s[:end]
		if quoted && trailingQuote {
			param = param[:len(param)-1]
		}
		return param, "", false, rest
	}
	param, val = s[:equals], s[equals+1:end]
	switch {
	case strings.HasPrefix(val, `"`):
		val = val[1:]
		// A lone opening quote is also the last character: nothing more to drop.
		if trailingQuote && val != "" {
			val = val[:len(val)-1]
		}
	case quoted && trailingQuote:
		val = val[:len(val)-1]
	}
	return param, val, true, rest
}

// bootArgMaxLinks bounds symlink expansions during resolution, like the
// kernel's limit of 40.
const bootArgMaxLinks = 40

// ResolveBootArg resolves arg inside the sysroot at sysroot (a directory path) to the deployment
// directory it names, following the symlinks of the layout but never leaving sysroot
// (a symlink pointing outside, or "..", is an error naming it). It returns the deployment
// directory's path (under sysroot, cleaned, e.g. sysroot+"/otree/deploy/<os>/deploy/<id>.<serial>")
// and checks the result is a directory whose parent is otree/deploy/<os>/deploy for the same os.
//
// Absolute link targets are taken relative to sysroot, as they will be once
// sysroot is the machine's root. A ".." that would climb above sysroot is an
// error, not clamped, so that a hostile link cannot quietly name something
// else.
func ResolveBootArg(sysroot string, arg BootArg) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("resolving otree=%s in %s: %w", arg, sysroot, err)
	}
	root, err := os.OpenRoot(sysroot)
	if err != nil {
		return fail(err)
	}
	defer root.Close()

	// Each pending component remembers the link whose target it came from,
	// so that an escape names the link responsible.
	type component struct{ name, from string }
	var todo []component
	push := func(p, from string) {
		var cs []component
		for _, name := range strings.Split(p, "/") {
			cs = append(cs, component{name, from})
		}
		todo = append(cs, todo...)
	}
	push(strings.TrimPrefix(arg.String(), "/"), "")

	// done holds the components resolved so far, relative to sysroot; every
	// one is a real directory, except possibly the last once todo is empty,
	// so ".." can simply drop one.
	var done []string
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c.name {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				if c.from == "" {
					return fail(errors.New(`".." leaves the sysroot`))
				}
				return fail(fmt.Errorf("symlink %s leads outside the sysroot", c.from))
			}
			done = done[:len(done)-1]
			continue
		}
		rel := path.Join(append(done, c.name)...)
		fi, err := root.Lstat(rel)
		if err != nil {
			// The os.Root operation name ("statat") means nothing to a reader.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = fmt.Errorf("%s: %w", rel, pe.Err)
			}
			return fail(bootArgWhere(err, rel, c.from))
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			links++
			if links > bootArgMaxLinks {
				return fail(fmt.Errorf("too many levels of symbolic links at %s", rel))
			}
			target, err := root.Readlink(rel)
			if err != nil {
				return fail(err)
			}
			if strings.HasPrefix(target, "/") {
				done = done[:0]
			}
			push(target, rel+" -> "+target)
			continue
		}
		if len(todo) > 0 && !fi.IsDir() {
			return fail(bootArgWhere(fmt.Errorf("%s is not a directory", rel), rel, c.from))
		}
		done = append(done, c.name)
	}

	rel := path.Join(done...)
	if len(done) != 5 || done[0] != "otree" || done[1] != "deploy" || done[2] != arg.OS || done[3] != "deploy" {
		return fail(fmt.Errorf("resolves to %s, not a deployment otree/deploy/%s/deploy/<id>.<serial>", rel, arg.OS))
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		return fail(err)
	}
	if !fi.IsDir() {
		return fail(fmt.Errorf("deployment %s is not a directory", rel))
	}
	return filepath.Join(sysroot, filepath.FromSlash(rel)), nil
}

// bootArgWhere adds the link that led to a failing component, if any.
func bootArgWhere(err error, rel, from string) error {
	if from == "" {
		return err
	}
	return fmt.Errorf("%w (reached through symlink %s)", err, from)
}
