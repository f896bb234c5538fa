package repo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Config is a repository's `config` file: INI-style sections of key=value
// pairs, the same shape OSTree uses, so `otree config get core.mode` works
// the way `ostree config get core.mode` does. It is safe for concurrent
// use.
type Config struct {
	mu       sync.RWMutex
	sections map[string]map[string]string
}

// maxConfigLine is the longest config line, newline aside, that parses.
const maxConfigLine = 64 << 10

// ParseConfig parses config file content.
func ParseConfig(data []byte) (*Config, error) {
	c := &Config{sections: map[string]map[string]string{}}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	// The scanner needs room for the newline too, or a line of exactly
	// maxConfigLine bytes would be too long.
	sc.Buffer(nil, maxConfigLine+1)
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("config line %d: malformed section %q", n, line)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			if section == "" || strings.ContainsAny(section, "[]") {
				return nil, fmt.Errorf("config line %d: malformed section %q", n, line)
			}
			if c.sections[section] == nil {
				c.sections[section] = map[string]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			// An empty key is refused as GLib refuses it: it could be
			// neither addressed nor set.
			if !ok || section == "" || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("config line %d: expected key=value inside a section, got %q", n, line)
			}
			c.sections[section][strings.TrimSpace(k)] = unescapeValue(strings.TrimSpace(v))
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

// escapeValue writes v so that unescapeValue, and GLib, read it back:
// backslashes, line breaks and tabs escaped, and spaces at either end,
// which a reader would trim.
func escapeValue(v string) string {
	if !strings.ContainsAny(v, "\\\n\t\r") && strings.TrimSpace(v) == v {
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
	badSection := s == "" || strings.TrimSpace(s) != s || strings.ContainsAny(s, "[]\n\r")
	badKey := k == "" || strings.TrimSpace(k) != k || strings.ContainsAny(k, "=[]\n\r") || k[0] == '#' || k[0] == ';'
	// Line breaks, tabs and spaces at either end are escaped; other
	// whitespace there (\v, U+00A0) would be trimmed on reading.
	esc := escapeValue(value)
	badValue := strings.TrimSpace(esc) != esc
	if badSection || badKey || badValue {
		return fmt.Errorf("config key %q of section %q or its value cannot be written to a config file and read back unchanged", k, s)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sections[s] == nil {
		c.sections[s] = map[string]string{}
	}
	c.sections[s][k] = value
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
// section left empty goes too.
func (c *Config) UnsetIn(section, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.sections[section][key]
	delete(c.sections[section], key)
	if len(c.sections[section]) == 0 {
		delete(c.sections, section)
	}
	return ok
}

// Bytes returns the file form, sections and keys sorted with [core] first.
func (c *Config) Bytes() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var names []string
	for s := range c.sections {
		names = append(names, s)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "core") != (names[j] == "core") {
			return names[i] == "core"
		}
		return names[i] < names[j]
	})
	var b bytes.Buffer
	for i, s := range names {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[%s]\n", s)
		var keys []string
		for k := range c.sections[s] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s\n", k, escapeValue(c.sections[s][k]))
		}
	}
	return b.Bytes()
}

// replace makes c hold the contents of fresh, which no one else holds.
func (c *Config) replace(fresh *Config) {
	c.mu.Lock()
	c.sections = fresh.sections
	c.mu.Unlock()
}
