package jsonout

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// oddNames are names a tree may hold: every one must come back byte for
// byte from the JSON.
var oddNames = []string{
	"\xff", "caf\xe9", "nl\nfake  entry", "cr\rx", "tab\tx", `back\slash`, `dq"x`,
	"-dash", " lead", "trail ", "esc\x1b[31mred", "rlo\u202etxt.exe", strings.Repeat("L", 255),
	"<&>", "\u2028", "\xed\xa0\x80", "\xc0\xaf", "a\x00b", "",
}

type id [2]byte

func (i id) MarshalText() ([]byte, error) { return []byte("id"), nil }
func (i id) IsZero() bool                 { return i == id{} }

type self struct{ s string }

func (p *self) MarshalJSON() ([]byte, error) { return json.Marshal("self:" + p.s) }

type kind string

type tieA struct{ X string }

type tieB struct {
	X string
	Y string `json:"y"`
}

type inner struct {
	Target string `json:"target,omitempty"`
	Hidden string `json:"-"`
	Shadow string `json:"shadow"`
}

type outer struct {
	*inner
	Path       string            `json:"path"`
	PathBase64 string            `json:"path_base64,omitempty"`
	Name       string            `json:"name"`
	Kind       kind              `json:"kind"`
	ID         id                `json:"id,omitzero"`
	Shadow     string            `json:"shadow"`
	List       []string          `json:"list,omitempty"`
	Map        map[string]string `json:"map,omitempty"`
	Nums       map[int]string    `json:"nums,omitempty"`
	Bytes      []byte            `json:"bytes,omitempty"`
	Any        any               `json:"any"`
	Self       *self             `json:"self,omitempty"`
	Val        self              `json:"val"`
	When       time.Time         `json:"when,omitzero"`
	F          float64           `json:"f"`
	Untagged   int
	private    string
}

// Where every string is UTF-8, Marshal writes what encoding/json writes.
func TestMarshalMatchesEncodingJSON(t *testing.T) {
	for i, v := range []any{
		nil, 1, "x<&>", []string{"a"}, map[string]int{"b": 1, "a": 2},
		outer{},
		&outer{inner: &inner{Target: "t", Hidden: "h", Shadow: "s"}, Path: "/p", Name: "n", Kind: "k",
			ID: id{1}, Shadow: "o", List: []string{"x", "y"}, Map: map[string]string{"k": "v", "a": "<"},
			Nums: map[int]string{2: "b", 10: "a"}, Bytes: []byte{0, 1}, Any: map[string]any{"z": []any{1.5, "q"}},
			Self: &self{"a"}, Val: self{"b"}, When: time.Unix(5, 0).UTC(), F: 0.5, Untagged: 3, private: "p"},
		[]*outer{nil, {Path: "\u2028"}},
		struct {
			tieA
			tieB // X of both left out, Y of tieB kept
			C    string
		}{tieA{"1"}, tieB{"2", "y"}, "3"},
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%d: Marshal wrote\n%s\nencoding/json\n%s", i, got, want)
		}
	}
}

// Every odd name comes back from the JSON byte for byte, through a string
// field, a list, a map value and an embedded struct's field.
func TestMarshalKeepsBytes(t *testing.T) {
	for _, name := range oddNames {
		v := outer{inner: &inner{Target: name}, Path: name, Name: name, List: []string{"ok", name}, Map: map[string]string{"k": name, "ok": "v"}}
		out, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: not JSON: %v\n%s", name, err, out)
		}
		str := func(key string, v any) string {
			t.Helper()
			s, _ := v.(string)
			return s
		}
		b64 := func(v any) (string, bool) {
			s, ok := v.(string)
			if !ok {
				return "", false
			}
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			return string(raw), true
		}
		back := func(key string, text, raw any) string {
			t.Helper()
			if r, ok := b64(raw); ok {
				if utf8.ValidString(name) {
					t.Errorf("%q: %s has %s_base64, yet it is UTF-8", name, key, key)
				}
				return r
			}
			return str(key, text)
		}
		for _, key := range []string{"name", "target"} {
			if got := back(key, got[key], got[key+"_base64"]); got != name {
				t.Errorf("%s %q came back as %q\n%s", key, name, got, out)
			}
		}
		if _, ok := got["path_base64"]; ok {
			t.Errorf("%q: path_base64 added to a struct that has its own", name)
		}
		list, _ := got["list"].([]any)
		listRaw, _ := got["list_base64"].([]any)
		if len(list) != 2 || listRaw != nil && (len(listRaw) != 2 || listRaw[0] != nil) {
			t.Fatalf("%q: list %v, list_base64 %v", name, list, listRaw)
		}
		var raw1 any
		if listRaw != nil {
			raw1 = listRaw[1]
		}
		if got := back("list[1]", list[1], raw1); got != name {
			t.Errorf("list element %q came back as %q", name, got)
		}
		m, _ := got["map"].(map[string]any)
		mRaw, _ := got["map_base64"].(map[string]any)
		if _, ok := mRaw["ok"]; ok {
			t.Errorf("%q: map_base64 holds a UTF-8 value", name)
		}
		if got := back("map.k", m["k"], mRaw["k"]); got != name {
			t.Errorf("map value %q came back as %q", name, got)
		}
	}
}

// Unmarshal reads back what Marshal wrote: every string and list of
// strings byte for byte, and output without NAME_base64 fields (written
// by encoding/json) as encoding/json reads it.
func TestUnmarshalReadsBytesBack(t *testing.T) {
	type record struct {
		Name    string   `json:"name"`
		List    []string `json:"list,omitempty"`
		Version string   `json:"version,omitempty"`
		N       int      `json:"n"`
	}
	for _, name := range oddNames {
		in := record{Name: name, List: []string{"ok", name, ""}, Version: "1.0", N: 7}
		out, err := Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var got record
		if err := Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: %v\n%s", name, err, out)
		}
		if got.Name != in.Name || strings.Join(got.List, "/") != strings.Join(in.List, "/") || got.Version != in.Version || got.N != 7 {
			t.Errorf("%q came back as %+v\n%s", name, got, out)
		}
		plain, _ := json.Marshal(in)
		var want, std record
		json.Unmarshal(plain, &want)
		if err := Unmarshal(plain, &std); err != nil || std.Name != want.Name {
			t.Errorf("%q: encoding/json's output read as %q (%v), want %q", name, std.Name, err, want.Name)
		}
	}
	var r record
	if err := Unmarshal([]byte(`{"list":["a"],"list_base64":["eA==","eQ=="]}`), &r); err == nil {
		t.Error("a list_base64 longer than its list was taken")
	}
}
