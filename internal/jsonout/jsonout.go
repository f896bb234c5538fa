// Package jsonout writes otree's --json output: encoding/json's encoding,
// plus the bytes of every string that is not UTF-8, which a JSON string
// cannot carry (encoding/json writes U+FFFD in their place, so two names
// that differ only there would print alike, and a script could not act
// on the path it read).
//
// The convention, for a struct field NAME whose value is not UTF-8:
//
//   - a string: NAME keeps the text (U+FFFD for each bad byte) and
//     NAME_base64 beside it holds the raw bytes in standard base64;
//   - a list of strings: NAME_base64 is a list as long as NAME, holding
//     the base64 of each element that is not UTF-8 and null for the others;
//   - a map of strings: NAME_base64 maps each key whose value is not UTF-8
//     to the base64 of that value.
//
// Map keys are written as encoding/json writes them.
//
// NAME_base64 is left out when every string of NAME is UTF-8, so UTF-8
// data prints exactly as encoding/json prints it.
package jsonout

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Suffix ends the name of the field that holds a field's raw bytes.
const Suffix = "_base64"

// Marshal is json.Marshal with the NAME_base64 fields of the package
// comment added where a string is not UTF-8. Values that marshal
// themselves (json.Marshaler, encoding.TextMarshaler) are written as they
// write themselves. A field tag's ",string" option is not honoured (no
// output uses it): such a field is written as without it.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Unmarshal reads what Marshal writes into the struct v points to: it is
// json.Unmarshal, then each string field NAME (or list of strings) takes
// its bytes from NAME_base64 where the data has one. Other values are
// decoded as json.Unmarshal decodes them.
func Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	sv := rv.Elem()
	for _, f := range fieldsOf(sv.Type()) {
		enc, ok := raw[f.name+Suffix]
		if !ok || f.hasRaw {
			continue
		}
		fv, ok := fieldByIndex(sv, f.index)
		if !ok || marshals(fv.Type()) {
			continue
		}
		switch {
		case fv.Kind() == reflect.String:
			var b []byte // a base64 string decodes into []byte
			if err := json.Unmarshal(enc, &b); err != nil {
				return fmt.Errorf("%s%s: %w", f.name, Suffix, err)
			}
			fv.SetString(string(b))
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String && !marshals(fv.Type().Elem()):
			var l []*[]byte
			if err := json.Unmarshal(enc, &l); err != nil {
				return fmt.Errorf("%s%s: %w", f.name, Suffix, err)
			}
			if len(l) != fv.Len() {
				return fmt.Errorf("%s%s: %d elements for %d", f.name, Suffix, len(l), fv.Len())
			}
			for i, b := range l {
				if b != nil {
					fv.Index(i).SetString(string(*b))
				}
			}
		}
	}
	return nil
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func marshals(t reflect.Type) bool {
	return t.Implements(marshalerType) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(marshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)
}

func encode(b *bytes.Buffer, v reflect.Value) error {
	if !v.IsValid() {
		b.WriteString("null")
		return nil
	}
	if t := v.Type(); t.Implements(marshalerType) || t.Implements(textMarshalerType) {
		return writeMarshal(b, v)
	}
	if v.Kind() != reflect.Pointer && v.CanAddr() && marshals(v.Type()) {
		return writeMarshal(b, v.Addr()) // a method on the pointer, as encoding/json calls it
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		return encode(b, v.Elem())
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Struct:
		return encodeStruct(b, v)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return writeMarshal(b, v) // keys encoding/json formats itself
		}
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		b.WriteByte('{')
		for i, k := range sortedKeys(v) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k.String())
			b.WriteByte(':')
			if err := encode(b, v.MapIndex(k)); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && (v.IsNil() || v.Type().Elem().Kind() == reflect.Uint8) {
			return writeMarshal(b, v) // null, or base64 as encoding/json writes []byte
		}
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encode(b, v.Index(i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default: // strings, floats, and what encoding/json refuses
		return writeMarshal(b, v)
	}
	return nil
}

func writeMarshal(b *bytes.Buffer, v reflect.Value) error {
	out, err := json.Marshal(v.Interface())
	if err != nil {
		return err
	}
	b.Write(out)
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	out, _ := json.Marshal(s) // a string always marshals
	b.Write(out)
}

func sortedKeys(v reflect.Value) []reflect.Value {
	keys := v.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
	return keys
}

func encodeStruct(b *bytes.Buffer, v reflect.Value) error {
	b.WriteByte('{')
	n := 0
	for _, f := range fieldsOf(v.Type()) {
		fv, ok := fieldByIndex(v, f.index)
		if !ok || f.omitEmpty && isEmpty(fv) || f.omitZero && isZero(fv) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		writeString(b, f.name)
		b.WriteByte(':')
		if err := encode(b, fv); err != nil {
			return err
		}
		if f.hasRaw {
			continue // the struct names its own NAME_base64
		}
		if raw, ok := rawBytes(fv); ok {
			b.WriteByte(',')
			writeString(b, f.name+Suffix)
			b.WriteByte(':')
			if err := encode(b, raw); err != nil {
				return err
			}
		}
	}
	b.WriteByte('}')
	return nil
}

// rawBytes is the NAME_base64 value of a field holding v: a string, a
// list of strings or a map of strings with one that is not UTF-8.
func rawBytes(v reflect.Value) (reflect.Value, bool) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return reflect.Value{}, false
		}
		v = v.Elem()
	}
	isStr := func(t reflect.Type) bool { return t.Kind() == reflect.String && !marshals(t) }
	switch {
	case isStr(v.Type()):
		if utf8.ValidString(v.String()) {
			return reflect.Value{}, false
		}
		return reflect.ValueOf(base64.StdEncoding.EncodeToString([]byte(v.String()))), true
	case (v.Kind() == reflect.Slice || v.Kind() == reflect.Array) && isStr(v.Type().Elem()):
		var out []*string
		bad := false
		for i := range v.Len() {
			s := v.Index(i).String()
			if utf8.ValidString(s) {
				out = append(out, nil)
				continue
			}
			e := base64.StdEncoding.EncodeToString([]byte(s))
			out = append(out, &e)
			bad = true
		}
		return reflect.ValueOf(out), bad
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && isStr(v.Type().Elem()):
		out := map[string]string{}
		for _, k := range v.MapKeys() {
			if s := v.MapIndex(k).String(); !utf8.ValidString(s) {
				out[k.String()] = base64.StdEncoding.EncodeToString([]byte(s))
			}
		}
		return reflect.ValueOf(out), len(out) > 0
	}
	return reflect.Value{}, false
}

// fieldByIndex is v's field at index, false when an embedded pointer on
// the way is nil (encoding/json leaves such fields out).
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 {
			if v.Kind() == reflect.Pointer {
				if v.IsNil() {
					return reflect.Value{}, false
				}
				v = v.Elem()
			}
		}
		v = v.Field(x)
	}
	return v, true
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

func isZero(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	return v.IsZero()
}

// field is a struct field as encoding/json names it.
type field struct {
	name                string
	index               []int
	tagged              bool
	omitEmpty, omitZero bool
	hasRaw              bool // the struct has a field named name+Suffix
}

var fieldCache sync.Map // reflect.Type → []field

// fieldsOf lists t's fields in encoding/json's order, embedded structs'
// fields promoted, and of fields of one name the one encoding/json keeps.
func fieldsOf(t reflect.Type) []field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]field)
	}
	var all []field
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
				walk(ft, idx)
				continue
			}
			if !sf.IsExported() {
				continue
			}
			f := field{name: name, index: idx, tagged: name != ""}
			if name == "" {
				f.name = sf.Name
			}
			for o := range strings.SplitSeq(opts, ",") {
				f.omitEmpty = f.omitEmpty || o == "omitempty"
				f.omitZero = f.omitZero || o == "omitzero"
			}
			all = append(all, f)
		}
	}
	walk(t, nil)
	// Of fields of one name, the shallowest wins, the tagged one among
	// equals; a tie drops them all, as encoding/json does.
	var out []field
	for i, f := range all {
		keep := true
		for j, g := range all {
			if i == j || g.name != f.name {
				continue
			}
			if len(g.index) < len(f.index) || len(g.index) == len(f.index) && (g.tagged && !f.tagged || g.tagged == f.tagged) {
				keep = false
			}
		}
		if keep {
			out = append(out, f)
		}
	}
	names := map[string]bool{}
	for _, f := range out {
		names[f.name] = true
	}
	for i := range out {
		out[i].hasRaw = names[out[i].name+Suffix]
	}
	fieldCache.Store(t, out)
	return out
}
