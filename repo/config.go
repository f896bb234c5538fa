package repo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Config is a repository's `config` file: INI-style sections of key=value
// pairs, the same shape OSTree uses, so `otree config get core.mode` works
// the way `ostree config get core.mode` does. It is safe for concurrent
// use.
type Config struct {
	mu       sync.RWMutex
	sections map[string]map[string]string
	// The file's layout, which Bytes keeps, so that a change leaves what
	// an admin wrote around it in place: the lines before the first
	// section, the sections in the order they first came, and the lines
	// of each.
	head  []string
	order []string
	lines map[string][]configLine
	lead  map[string][]string // the comment lines right above a section's header
}

// configLine is a line of a section: the key it sets, or when key is ""
// (no key is), text kept as it was read (a comment or a blank line). For
// a key read from the file, text is its value as written there, which
// Bytes keeps until the key is set.
type configLine struct{ key, text string }

func newConfig() *Config {
	return &Config{sections: map[string]map[string]string{}, lines: map[string][]configLine{}, lead: map[string][]string{}}
}

// addSection adds section s, last, if it is new. c.mu is held.
func (c *Config) addSection(s string) {
	if c.sections[s] == nil {
		c.sections[s] = map[string]string{}
		c.order = append(c.order, s)
	}
}

// takeLead removes the comment lines that end section prev ("": the lines
// before the first section), back to a key or blank line, and returns
// them: they are the comment of the section whose header follows, and go
// with it.
func (c *Config) takeLead(prev string) []string {
	var lead []string
	if prev == "" {
		i := len(c.head)
		for i > 0 && c.head[i-1] != "" {
			i--
		}
		lead, c.head = c.head[i:], c.head[:i]
		return lead
	}
	ls := c.lines[prev]
	i := len(ls)
	for i > 0 && ls[i-1].key == "" && ls[i-1].text != "" {
		i--
	}
	for _, l := range ls[i:] {
		lead = append(lead, l.text)
	}
	c.lines[prev] = ls[:i]
	return lead
}

// addKey gives key k of section s a line, after the section's last key
// line (so before the comments and blank lines that end it), if it has
// none. c.mu is held.
func (c *Config) addKey(s, k string) {
	if _, ok := c.sections[s][k]; ok {
		return
	}
	ls := c.lines[s]
	at := 0
	for i, l := range ls {
		if l.key != "" {
			at = i + 1
		}
	}
	c.lines[s] = slices.Insert(ls, at, configLine{key: k})
}

// KeyFileSpace is what GLib's key-file reader trims around lines, keys
// and values (g_ascii_isspace, which leaves out \v): other spaces, such
// as \v, U+00A0 or U+3000, are part of a value or key. The files of that
// syntax read elsewhere (a deployment's origin) trim the same.
const KeyFileSpace = " \t\n\f\r"

// trimSpace trims the whitespace GLib trims from either end of s.
func trimSpace(s string) string { return strings.Trim(s, KeyFileSpace) }

// maxConfigLine is the longest config line, newline aside, that parses.
const maxConfigLine = 64 << 10

// ParseConfig parses config file content.
func ParseConfig(data []byte) (*Config, error) {
	c := newConfig()
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	// The scanner needs room for the newline too, or a line of exactly
	// maxConfigLine bytes would be too long.
	sc.Buffer(nil, maxConfigLine+1)
	n := 1
	for ; sc.Scan(); n++ {
		line := trimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			kept := strings.TrimRight(sc.Text(), KeyFileSpace)
			if section == "" {
				c.head = append(c.head, kept)
			} else {
				c.lines[section] = append(c.lines[section], configLine{text: kept})
			}
		case line[0] == '[':
			prev := section
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("config line %d: malformed section %q", n, line)
			}
			section = trimSpace(line[1 : len(line)-1])
			if section == "" || strings.ContainsAny(section, "[]") {
				return nil, fmt.Errorf("config line %d: malformed section %q", n, line)
			}
			if c.sections[section] == nil {
				c.lead[section] = c.takeLead(prev)
			}
			c.addSection(section)
		default:
			k, v, ok := strings.Cut(line, "=")
			// An empty key is refused as GLib refuses it: it could be
			// neither addressed nor set.
			if !ok || section == "" || trimSpace(k) == "" {
				return nil, fmt.Errorf("config line %d: expected key=value inside a section, got %q", n, line)
			}
			k = trimSpace(k)
			// GLib keeps the whitespace that ends a value: kept
			// (though read trimmed), a rewrite leaves GLib's value.
			_, raw, _ := strings.Cut(sc.Text(), "=")
			raw = strings.TrimLeft(raw, KeyFileSpace)
			if _, ok := c.sections[section][k]; !ok {
				c.lines[section] = append(c.lines[section], configLine{key: k, text: raw})
			} else {
				// The last of a key repeated counts, in its first
				// one's place.
				ls := c.lines[section]
				ls[slices.IndexFunc(ls, func(l configLine) bool { return l.key == k })].text = raw
			}
			c.sections[section][k] = unescapeValue(trimSpace(v))
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return nil, fmt.Errorf("config line %d: longer than %d bytes", n, maxConfigLine)
	}
	return c, sc.Err()
}

// valueEscapes are the escapes of GLib's key files, which OSTree's config
// is: read as OSTree reads them, and written so that OSTree reads back
// what was set (a backslash is written \\).
var valueEscapes = map[byte]byte{'s': ' ', 'n': '\n', 't': '\t', 'r': '\r', '\\': '\\'}

// unescapeValue reads the escapes of a config value. A backslash before
// anything else stays as it is, where GLib refuses the line.
func unescapeValue(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			if c, ok := valueEscapes[v[i+1]]; ok {
				b.WriteByte(c)
				i++
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// UnescapeConfigValue reads the GLib key-file escapes of a value as
// ParseConfig does, for the files of that syntax read elsewhere (a
// deployment's origin).
func UnescapeConfigValue(v string) string { return unescapeValue(v) }

// EscapeConfigValue writes v as Config.Bytes writes a value, so that
// UnescapeConfigValue and GLib read it back.
func EscapeConfigValue(v string) string { return escapeValue(v) }

// escapeValue writes v so that unescapeValue, and GLib, read it back:
// backslashes, line breaks and tabs escaped, and spaces at either end,
// which a reader would trim.
func escapeValue(v string) string {
	if !strings.ContainsAny(v, "\\\n\t\r") && trimSpace(v) == v {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == ' ' && (strings.TrimLeft(v[:i], " ") == "" || strings.TrimRight(v[i:], " ") == ""):
			b.WriteString(`\s`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// SplitConfigKey splits "section.key" at the first dot, as OSTree does, so
// a key may hold dots (flatpak's `remote "flathub".xa.title` is key
// xa.title of section `remote "flathub"`). A quoted part of the section
// before that dot is taken whole: `remote "org.example.Os".url` is key url
// of section `remote "org.example.Os"` (OSTree 2022.7 splits inside the
// quotes, at "org").
func SplitConfigKey(key string) (section, name string, err error) {
	i := strings.IndexByte(key, '.')
	if q := strings.IndexByte(key, '"'); q >= 0 && (i < 0 || q < i) {
		if e := strings.IndexByte(key[q+1:], '"'); e >= 0 {
			end := q + e + 2 // just past the closing quote
			if i = strings.IndexByte(key[end:], '.'); i >= 0 {
				i += end
			}
		}
	}
	if i <= 0 || i >= len(key)-1 {
		return "", "", fmt.Errorf("config key %q must look like SECTION.KEY", key)
	}
	return key[:i], key[i+1:], nil
}

// Get returns the value of "section.key".
func (c *Config) Get(key string) (string, bool) {
	s, k, err := SplitConfigKey(key)
	if err != nil {
		return "", false
	}
	return c.GetIn(s, k)
}

// GetIn returns the value of key in section.
func (c *Config) GetIn(section, key string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.sections[section][key]
	return v, ok
}

// Bool returns the boolean value of "section.key" ("true" or "1", "false"
// or "0"), or def when it is not set.
func (c *Config) Bool(key string, def bool) (bool, error) {
	v, ok := c.Get(key)
	if !ok {
		return def, nil
	}
	return parseBool(key, v)
}

func parseBool(key, v string) (bool, error) {
	switch v {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("config %s=%q is not a boolean (want true or false)", key, v)
}

// Set sets "section.key" to value.
func (c *Config) Set(key, value string) error {
	s, k, err := SplitConfigKey(key)
	if err != nil {
		return err
	}
	return c.SetIn(s, k, value)
}

// SetIn sets key k in section s to value.
func (c *Config) SetIn(s, k, value string) error {
	// Refuse what would not read back as written.
	badSection := s == "" || trimSpace(s) != s || strings.ContainsAny(s, "[]\n\r")
	badKey := k == "" || trimSpace(k) != k || strings.ContainsAny(k, "=[]\n\r") || k[0] == '#' || k[0] == ';'
	// Line breaks, tabs and spaces at either end are escaped; \f there
	// would be trimmed on reading.
	esc := escapeValue(value)
	badValue := trimSpace(esc) != esc
	if badSection || badKey || badValue {
		return fmt.Errorf("config key %q of section %q or its value cannot be written to a config file and read back unchanged", k, s)
	}
	// OSTree refuses to open a repository whose config is not UTF-8, and
	// GLib a file with a section named with a control character: written,
	// either would lock OSTree out of the repository.
	if !utf8.ValidString(s) || !utf8.ValidString(k) || !utf8.ValidString(value) {
		return fmt.Errorf("config key %q of section %q: the section, key or value is not valid UTF-8, which OSTree cannot read", k, s)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("config section %q holds a control character, which OSTree cannot read", s)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addSection(s)
	c.addKey(s, k)
	c.sections[s][k] = value
	// Set, the value is written as set, even when it is the one read:
	// the text read may end in spaces otree trims and GLib keeps, which
	// would make OSTree read another value than the one set.
	ls := c.lines[s]
	ls[slices.IndexFunc(ls, func(l configLine) bool { return l.key == k })].text = ""
	return nil
}

// Unset removes "section.key", reporting whether it was present.
func (c *Config) Unset(key string) bool {
	s, k, err := SplitConfigKey(key)
	if err != nil {
		return false
	}
	return c.UnsetIn(s, k)
}

// UnsetIn removes key from section, reporting whether it was present. A
// section left empty goes too, with its comments.
func (c *Config) UnsetIn(section, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.sections[section][key]
	if ok {
		delete(c.sections[section], key)
		c.lines[section] = slices.DeleteFunc(c.lines[section], func(l configLine) bool { return l.key == key })
	}
	if len(c.sections[section]) == 0 {
		delete(c.sections, section)
		delete(c.lines, section)
		delete(c.lead, section)
		c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == section })
	}
	return ok
}

// Bytes returns the file form: the sections, keys, comments and blank
// lines in the order they were read, keys set since after the last key
// of their section and new sections at the end. A key line is written
// key=value (escaped), each section but a first with nothing before it
// has a blank line before it (and before the comment above it), and the
// file ends with no blank line.
func (c *Config) Bytes() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var b bytes.Buffer
	line := func(l string) {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for _, l := range c.head {
		line(l)
	}
	for _, s := range c.order {
		// A blank line parts a section (and the comment above it) from
		// what comes before, so that a comment there is not taken for
		// this section's when the file is read again.
		if b.Len() > 0 && b.String() != "\n" && !bytes.HasSuffix(b.Bytes(), []byte("\n\n")) {
			b.WriteByte('\n')
		}
		for _, l := range c.lead[s] {
			line(l)
		}
		line("[" + s + "]")
		for _, l := range c.lines[s] {
			v := c.sections[s][l.key]
			switch {
			case l.key == "":
				line(l.text)
			case l.text != "" && unescapeValue(trimSpace(l.text)) == v && !strings.HasSuffix(l.text, "\r"):
				// As read: what GLib reads stays too. (A value
				// ending in \r would lose it to the line end.)
				line(l.key + "=" + l.text)
			default:
				line(l.key + "=" + escapeValue(v))
			}
		}
	}
	// Blank lines at the end are dropped: one may be the separator
	// written before a section since removed.
	out := b.Bytes()
	for bytes.HasSuffix(out, []byte("\n\n")) {
		out = out[:len(out)-1]
	}
	return out
}

// replace makes c hold the contents of fresh, which no one else holds.
func (c *Config) replace(fresh *Config) {
	c.mu.Lock()
	c.sections, c.head, c.order, c.lines, c.lead = fresh.sections, fresh.head, fresh.order, fresh.lines, fresh.lead
	c.mu.Unlock()
}
