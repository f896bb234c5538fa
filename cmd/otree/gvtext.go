package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// gvariantValue parses the value of OSTree's --add-metadata=KEY=VALUE, a
// value in GVariant text, into the bytes otree stores (its metadata values
// are bytes, not typed): a string ('…' or "…", optionally @s) as its text,
// a bytestring (b'…') as its bytes, a boolean as "true" or "false", and a
// number (optionally after its type: uint64 5, @t 5) as written. Arrays,
// tuples, dictionaries and variants are refused: they have no one text.
func gvariantValue(text string) ([]byte, error) {
	s := strings.TrimSpace(text)
	bad := func(why string) ([]byte, error) {
		return nil, fmt.Errorf("value %q: %s (otree stores metadata as bytes: give a string, bytestring, boolean or number, or use --add-metadata-string)", text, why)
	}
	if strings.HasPrefix(s, "@") { // a type annotation: "@s 'x'"
		typ, rest, ok := strings.Cut(s[1:], " ")
		if !ok || !strings.Contains("sbynqiuxthd", typ) || len(typ) != 1 {
			return bad("unsupported type annotation")
		}
		s = strings.TrimSpace(rest)
	}
	switch {
	case s == "":
		return bad("empty")
	case s == "true" || s == "false":
		return []byte(s), nil
	case s[0] == '\'' || s[0] == '"':
		v, err := unquoteGVariant(s, false)
		if err != nil {
			return bad(err.Error())
		}
		return v, nil
	case strings.HasPrefix(s, "b'") || strings.HasPrefix(s, `b"`):
		v, err := unquoteGVariant(s[1:], true)
		if err != nil {
			return bad(err.Error())
		}
		return v, nil
	case strings.ContainsAny(s[:1], "[({<"):
		return bad("containers have no single text")
	}
	num := s
	if kw, rest, ok := strings.Cut(s, " "); ok {
		switch kw {
		case "byte", "int16", "uint16", "int32", "uint32", "int64", "uint64", "handle", "double":
			num = strings.TrimSpace(rest)
		default:
			return bad("unknown keyword " + kw)
		}
	}
	if _, err := strconv.ParseInt(num, 0, 64); err == nil {
		return []byte(num), nil
	}
	if _, err := strconv.ParseUint(num, 0, 64); err == nil {
		return []byte(num), nil
	}
	if _, err := strconv.ParseFloat(num, 64); err == nil && !strings.ContainsAny(num, "_xXpP") {
		return []byte(num), nil
	}
	return bad("not a string, boolean or number")
}

// cEscapes are the one-character escapes of GVariant text, as in C.
var cEscapes = map[byte]byte{'\\': '\\', '\'': '\'', '"': '"', 'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

// unquoteGVariant decodes a quoted GVariant string (or, bytes set, the
// quoted part of a bytestring) with its C-style escapes.
func unquoteGVariant(s string, bytes bool) ([]byte, error) {
	if len(s) < 2 || s[len(s)-1] != s[0] {
		return nil, fmt.Errorf("unterminated string")
	}
	q, body := s[0], s[1:len(s)-1]
	var out []byte
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == q {
			return nil, fmt.Errorf("unescaped %c inside the string", q)
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(body) {
			return nil, fmt.Errorf("string ends in a backslash")
		}
		e := body[i]
		if b, ok := cEscapes[e]; ok {
			out = append(out, b)
			continue
		}
		switch e {
		case 'u', 'U':
			n := 4
			if e == 'U' {
				n = 8
			}
			if bytes || i+1+n > len(body) {
				return nil, fmt.Errorf("bad \\%c escape", e)
			}
			r, err := strconv.ParseUint(body[i+1:i+1+n], 16, 32)
			if err != nil || !utf8.ValidRune(rune(r)) {
				return nil, fmt.Errorf("bad \\%c escape", e)
			}
			out = utf8.AppendRune(out, rune(r))
			i += n
		default:
			if !bytes || e < '0' || e > '7' {
				return nil, fmt.Errorf("unknown escape \\%c", e)
			}
			// Octal, up to three digits, in bytestrings.
			j := i
			for j < len(body) && j < i+3 && body[j] >= '0' && body[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(body[i:j], 8, 16)
			if v > 255 {
				return nil, fmt.Errorf("octal escape \\%s out of range", body[i:j])
			}
			out = append(out, byte(v))
			i = j - 1
		}
	}
	if !bytes && !utf8.Valid(out) {
		return nil, fmt.Errorf("not UTF-8")
	}
	return out, nil
}
