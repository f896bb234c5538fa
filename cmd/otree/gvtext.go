package main

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/sign"
)

// gvariantValue parses the value of OSTree's --add-metadata=KEY=VALUE, a
// value in GVariant text, into the bytes otree stores (its metadata values
// are bytes, not typed): a string ('…' or "…") as its text, a bytestring
// (b'…') as its bytes, a boolean as "true" or "false", and a number as
// written. Arrays, tuples, dictionaries and variants are refused: they have
// no one text. A type, given as an annotation (@t 5) or a keyword (uint64
// 5), must fit the value, and a number must fit its type, an untyped
// integer being an int32, as GVariant text reads them: OSTree refuses
// "@s 5", "byte 300" and "5000000000".
func gvariantValue(text string) ([]byte, error) {
	s := strings.TrimSpace(text)
	bad := func(why string) ([]byte, error) {
		return nil, fmt.Errorf("value %q: %s (otree stores metadata as bytes: give a string, bytestring, boolean or number)", text, why)
	}
	// typ is the type given, as an annotation ("@s 'x'") or a keyword
	// ("uint64 5"), or 0.
	var typ byte
	if strings.HasPrefix(s, "@") {
		t, rest, ok := strings.Cut(s[1:], " ")
		if !ok || len(t) != 1 || gvTypeNames[t[0]] == "" {
			return bad("unsupported type annotation")
		}
		typ, s = t[0], strings.TrimSpace(rest)
	} else if kw, rest, ok := strings.Cut(s, " "); ok && isKeyword(kw) {
		t, known := gvKeywords[kw]
		if kw == "objectpath" || kw == "signature" {
			return bad(kw + "s are not taken")
		}
		if !known {
			return bad(fmt.Sprintf("%q is not a type keyword (boolean, byte, int16, uint16, int32, uint32, int64, uint64, handle, double, string)", kw))
		}
		typ, s = t, strings.TrimSpace(rest)
	}
	// want reports whether the value's kind k suits the type given.
	want := func(k byte) bool { return typ == 0 || typ == k }
	switch {
	case s == "":
		return bad("empty")
	case s == "true" || s == "false":
		if !want('b') {
			return bad("not " + gvTypeNames[typ])
		}
		return []byte(s), nil
	case s[0] == '\'' || s[0] == '"':
		if !want('s') {
			return bad("not " + gvTypeNames[typ])
		}
		v, err := unquoteGVariant(s, false)
		if err != nil {
			return bad(err.Error())
		}
		return v, nil
	case strings.HasPrefix(s, "b'") || strings.HasPrefix(s, `b"`):
		if typ != 0 {
			return bad("not " + gvTypeNames[typ])
		}
		v, err := unquoteGVariant(s[1:], true)
		if err != nil {
			return bad(err.Error())
		}
		return v, nil
	case strings.ContainsAny(s[:1], "[({<"):
		return bad("containers have no single text")
	case typ == 'b' || typ == 's':
		return bad("not " + gvTypeNames[typ])
	}
	if err := checkGVariantNumber(s, typ); err != nil {
		return bad(err.Error())
	}
	return []byte(s), nil
}

// gvTypeNames names the basic GVariant types --add-metadata takes, by
// type character.
var gvTypeNames = map[byte]string{'b': "a boolean", 'y': "a byte", 'n': "an int16", 'q': "a uint16", 'i': "an int32",
	'u': "a uint32", 'x': "an int64", 't': "a uint64", 'h': "a handle", 'd': "a double", 's': "a string"}

// gvKeywords are GVariant text's type keywords ("uint64 5"), by the type
// character they stand for.
var gvKeywords = map[string]byte{"boolean": 'b', "byte": 'y', "int16": 'n', "uint16": 'q', "int32": 'i',
	"uint32": 'u', "int64": 'x', "uint64": 't', "handle": 'h', "double": 'd', "string": 's'}

// isKeyword reports whether w is a word, where GVariant text would read a
// keyword: a letter, then letters and digits.
func isKeyword(w string) bool {
	for i, c := range w {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return w != ""
}

// gvFloat is a double in GVariant text: decimal, with an optional point
// and exponent, or inf or nan.
var gvFloat = regexp.MustCompile(`^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|nan)$`)

// checkGVariantNumber reports why num is not a number of type typ (0: the
// type GVariant text infers, a double where num has a point, an exponent,
// inf or nan, else an int32). An integer is decimal, hexadecimal after 0x
// or octal after 0, with an optional sign, and must fit its type.
func checkGVariantNumber(num string, typ byte) error {
	mag := num // without its sign
	if num != "" && (num[0] == '-' || num[0] == '+') {
		mag = num[1:]
	}
	hex := len(mag) > 1 && mag[0] == '0' && (mag[1] == 'x' || mag[1] == 'X')
	what := "a string, boolean or number" // what num should have been
	if typ != 0 {
		what = gvTypeNames[typ]
	} else {
		typ = 'i'
		if strings.Contains(num, ".") || strings.Contains(num, "inf") || strings.Contains(num, "nan") || !hex && strings.Contains(num, "e") {
			typ = 'd'
		}
	}
	if typ == 'd' && gvFloat.MatchString(num) {
		if _, err := strconv.ParseFloat(num, 64); err != nil {
			return fmt.Errorf("too big for a double")
		}
		return nil
	}
	digits, base := mag, 10
	switch {
	case hex:
		digits, base = mag[2:], 16
	case len(mag) > 1 && mag[0] == '0':
		digits, base = mag[1:], 8
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil && errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("too big for any number")
	}
	if err != nil {
		return fmt.Errorf("not %s", what)
	}
	var neg uint64 // 1 for a negative value, which may reach one further
	if num[0] == '-' && v != 0 {
		neg = 1
	}
	var limit uint64 // of the magnitude
	switch typ {
	case 'y':
		limit = math.MaxUint8
	case 'n':
		limit = math.MaxInt16 + neg
	case 'q':
		limit = math.MaxUint16
	case 'i', 'h':
		limit = math.MaxInt32 + neg
	case 'u':
		limit = math.MaxUint32
	case 'x':
		limit = math.MaxInt64 + neg
	case 't':
		limit = math.MaxUint64
	case 'd':
		return nil // an integer, read as a double
	}
	if v > limit || neg == 1 && strings.ContainsRune("yqut", rune(typ)) {
		if what != gvTypeNames[typ] {
			return fmt.Errorf("out of range for an int32, the type of an integer given without one (give it as int64 or uint64)")
		}
		return fmt.Errorf("out of range for %s", gvTypeNames[typ])
	}
	return nil
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

// metadataText writes metadata value v of key as OSTree's show
// --print-metadata-key prints a value: in GVariant text. otree's values
// are bytes; the type is the one OSTree gives the same fact: a boolean for
// ostree.bootable, an array of strings for the ref binding (one ref a line
// here), an array of 64-byte signatures for otree.sign.ed25519. Any other
// value is a string ('…') when it is UTF-8 without NUL, as the values of
// --add-metadata-string are, else a bytestring (b'…'), or an array of
// bytes when it holds a NUL. (A value --add-metadata gave as a number or
// boolean is stored as its text, and printed as a string.)
func metadataText(key string, v []byte) string {
	switch {
	case key == "ostree.bootable" && (string(v) == "true" || string(v) == "false"):
		return string(v)
	case key == repo.RefBindingKey && len(v) == 0:
		return "@as []"
	case key == repo.RefBindingKey && utf8.Valid(v) && bytes.IndexByte(v, 0) < 0:
		refs := strings.Split(string(v), "\n")
		for i, r := range refs {
			refs[i] = gvariantString(r)
		}
		return "[" + strings.Join(refs, ", ") + "]"
	case key == sign.MetadataKey && len(v) > 0 && len(v)%ed25519.SignatureSize == 0:
		var sigs []string
		for i := 0; i < len(v); i += ed25519.SignatureSize {
			sigs = append(sigs, gvariantByteArray(v[i:i+ed25519.SignatureSize], i == 0))
		}
		return "[" + strings.Join(sigs, ", ") + "]"
	case bytes.IndexByte(v, 0) >= 0:
		return gvariantByteArray(v, true)
	case utf8.Valid(v):
		return gvariantString(string(v))
	}
	return gvariantBytestring(v)
}

// gvariantString quotes s as GVariant text does: in single quotes, or
// double quotes when s holds a single quote; C escapes for the quote, the
// backslash and the control characters that have one, \uXXXX (or
// \UXXXXXXXX) for other characters that do not print (controls, formats,
// unassigned code points).
func gvariantString(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case strings.ContainsRune("\a\b\f\n\r\t\v", r):
			b.WriteString(cEscape(byte(r)))
		case unicode.In(r, unicode.Cc, unicode.Cf) || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Co):
			if r > 0xffff {
				fmt.Fprintf(&b, "\\U%08x", r)
			} else {
				fmt.Fprintf(&b, "\\u%04x", r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// gvariantBytestring writes v as GVariant text writes a bytestring, an
// array of bytes ending in its only NUL (not written): b'…', in double
// quotes when v holds a single quote; a double quote and the backslash
// escaped, C escapes for \b \f \n \r \t \v, octal for other bytes that are
// not printable ASCII.
func gvariantBytestring(v []byte) string {
	q := byte('\'')
	if bytes.IndexByte(v, '\'') >= 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteString("b")
	b.WriteByte(q)
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c != '\a' && strings.IndexByte("\b\f\n\r\t\v", c) >= 0:
			b.WriteString(cEscape(c))
		case c < 0x20 || c > 0x7e:
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// gvariantByteArray writes v as GVariant text writes an array of bytes: a
// bytestring when it ends in its only NUL, else the bytes in hex (with
// their type when annotate, as for a value that stands alone or comes
// first: "@ay []" when empty, else on the first byte).
func gvariantByteArray(v []byte, annotate bool) string {
	switch {
	case len(v) == 0 && annotate:
		return "@ay []"
	case len(v) == 0:
		return "[]"
	case bytes.IndexByte(v, 0) == len(v)-1:
		return gvariantBytestring(v[:len(v)-1])
	}
	var b strings.Builder
	b.WriteString("[")
	for i, c := range v {
		switch {
		case i == 0 && annotate:
			b.WriteString("byte ")
		case i > 0:
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "0x%02x", c)
	}
	b.WriteString("]")
	return b.String()
}

// cEscape is the one-letter C escape of c (one of cEscapes' values).
func cEscape(c byte) string {
	for k, v := range cEscapes {
		if v == c && k != c {
			return "\\" + string(k)
		}
	}
	return string(c)
}

// gvariantXattrs writes xattrs as OSTree prints them (ls -X, show): the
// GVariant text of its a(ayay), each name a bytestring (OSTree stores it
// with its NUL), each value an array of bytes, the first annotated.
func gvariantXattrs(xs []repo.Xattr) string {
	if len(xs) == 0 {
		return "@a(ayay) []"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = "(" + gvariantBytestring([]byte(x.Name)) + ", " + gvariantByteArray(x.Value, i == 0) + ")"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
