package deploy

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// grubRead reads an environment block as GRUB's load_env does: a line
// starting with '#' is a comment, any other runs to the first '=' for the
// name and on to the first newline not escaped by a backslash for the
// value, whose escapes are then undone; a backslash escapes the next byte
// wherever it is. clean is false when GRUB stops at a broken block or
// reads a name across lines: a block no GRUB tool writes.
func grubRead(b []byte) (vars [][2]string, clean bool) {
	nextLine := func(p int) int {
		for p < len(b) {
			if b[p] == '\\' {
				p += 2
			} else if b[p] == '\n' {
				break
			} else {
				p++
			}
		}
		return p + 1
	}
	clean = true
	for p := len(grubEnvHeader); p < len(b); p = nextLine(p) {
		if b[p] == '#' {
			continue
		}
		eq := bytes.IndexByte(b[p:], '=')
		if eq < 0 {
			return vars, false
		}
		name := string(b[p : p+eq])
		if strings.Contains(name, "\n") {
			clean = false
		}
		p += eq + 1
		var v []byte
		for p < len(b) && b[p] != '\n' {
			if b[p] == '\\' {
				p++
				if p < len(b) {
					v = append(v, b[p])
				}
			} else {
				v = append(v, b[p])
			}
			p++
		}
		if p >= len(b) {
			return vars, false
		}
		vars = append(vars, [2]string{name, string(v)})
	}
	return vars, clean
}

// grubUnescape undoes the backslash escapes GRUB writes in a value.
func grubUnescape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// FuzzGrubEnv checks that every environment block GRUB reads cleanly is
// read by otree with the same variables, and that one otree reads is
// written back, at the same size, with the same variables.
func FuzzGrubEnv(f *testing.F) {
	pad := func(s string) []byte {
		b := []byte(grubEnvHeader + s)
		if len(b) < grubEnvSize {
			b = append(b, bytes.Repeat([]byte{'#'}, grubEnvSize-len(b))...)
		}
		return b
	}
	for _, s := range []string{
		"",
		"saved_entry=0\nboot_success=1\n",
		"# a comment\nboot_counter=3\n",
		"a=b=c\n",
		`x=a\\` + "\n",
		"no value line\n",
	} {
		f.Add(pad(s))
	}
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vars, err := parseGrubEnv(b)
		if want, clean := grubRead(b); clean && len(b) == grubEnvSize && bytes.HasPrefix(b, []byte(grubEnvHeader)) {
			if err != nil {
				t.Fatalf("block %q, which GRUB reads as %q, is refused: %v", b, want, err)
			}
			got := make([][2]string, len(vars))
			for i, kv := range vars {
				got[i] = [2]string{kv[0], grubUnescape(kv[1])}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("block %q reads as %q; GRUB reads %q", b, got, want)
			}
		}
		if err != nil {
			if !strings.Contains(err.Error(), "GRUB environment block") {
				t.Fatalf("parseGrubEnv error %q does not say what it read", err)
			}
			return
		}
		out, err := renderGrubEnv(vars)
		if err != nil {
			t.Fatalf("block %q reads as %q, which does not fit back: %v", b, vars, err)
		}
		if len(out) != grubEnvSize {
			t.Fatalf("block of %d bytes written back as %d", len(b), len(out))
		}
		again, err := parseGrubEnv(out)
		if err != nil || !slices.Equal(again, vars) {
			t.Fatalf("block %q reads as %q; written back as %q it reads %s", b, vars, out, fmt.Sprint(again, err))
		}
	})
}
