package repo_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

const sampleHex = "00112233445566778899aabbccddeeff0123456789abcdef0f1e2d3c4b5a6978"

func TestIDParseString(t *testing.T) {
	id, err := repo.ParseID(sampleHex)
	if err != nil {
		t.Fatal(err)
	}
	if id[0] != 0x00 || id[1] != 0x11 || id[31] != 0x78 {
		t.Errorf("ParseID bytes %x", id[:])
	}
	if id.String() != sampleHex {
		t.Errorf("String %s, want %s", id, sampleHex)
	}
	if id.Short() != sampleHex[:10] {
		t.Errorf("Short %s, want %s", id.Short(), sampleHex[:10])
	}
	if id.IsZero() {
		t.Error("IsZero on a non-zero id")
	}
	// Upper case parses to the same id; String is always lower case.
	up, err := repo.ParseID(strings.ToUpper(sampleHex))
	if err != nil || up != id {
		t.Errorf("ParseID(upper) = %s, %v", up, err)
	}
	var zero repo.ID
	if !zero.IsZero() || zero.String() != strings.Repeat("0", 64) || zero.Short() != "0000000000" {
		t.Errorf("zero id: IsZero %v String %s Short %s", zero.IsZero(), zero, zero.Short())
	}
	if p, err := repo.ParseID(zero.String()); err != nil || p != zero {
		t.Errorf("ParseID(zero) = %s, %v", p, err)
	}
}

func TestIDParseRejects(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "want 64 hex characters, got 0"},
		{sampleHex[:63], "got 63"},
		{sampleHex + "0", "got 65"},
		{sampleHex[:10], "got 10"},
		{sampleHex[:63] + "g", "invalid byte"},
		{" " + sampleHex[1:], "invalid byte"},
		{sampleHex[:62] + "\x00\x00", "invalid byte"},
		{strings.Repeat("é", 32), "invalid byte"}, // 64 bytes, not 64 hex characters
	} {
		_, err := repo.ParseID(c.in)
		if err == nil {
			t.Errorf("ParseID(%q) succeeded", c.in)
			continue
		}
		if !strings.Contains(err.Error(), "invalid object id") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseID(%q): error %q does not mention %q", c.in, err, c.want)
		}
	}
}

func TestIDText(t *testing.T) {
	id, _ := repo.ParseID(sampleHex)
	b, err := id.MarshalText()
	if err != nil || string(b) != sampleHex {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
	var back repo.ID
	if err := back.UnmarshalText(b); err != nil || back != id {
		t.Errorf("UnmarshalText = %s, %v", back, err)
	}
	// The zero id is "none": it marshals as "" and "" unmarshals to it.
	var zero repo.ID
	if b, err := zero.MarshalText(); err != nil || len(b) != 0 {
		t.Errorf("zero MarshalText = %q, %v", b, err)
	}
	back = id
	if err := back.UnmarshalText(nil); err != nil || !back.IsZero() {
		t.Errorf("UnmarshalText(\"\") = %s, %v", back, err)
	}
	if err := back.UnmarshalText([]byte("xyz")); err == nil {
		t.Error("UnmarshalText(xyz) succeeded")
	}
}

func TestIDJSON(t *testing.T) {
	id, _ := repo.ParseID(sampleHex)
	type doc struct {
		A repo.ID   `json:"a"`
		B repo.ID   `json:"b"`
		L []repo.ID `json:"l"`
	}
	in := doc{A: id, L: []repo.ID{id, {}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"` + sampleHex + `","b":"","l":["` + sampleHex + `",""]}`
	if string(b) != want {
		t.Errorf("json %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.A != in.A || out.B != in.B || len(out.L) != 2 || out.L[0] != id || !out.L[1].IsZero() {
		t.Errorf("json round trip %+v, want %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"a":"1234"}`), &out); err == nil {
		t.Error("json accepted a short id")
	}
}

func TestSum(t *testing.T) {
	// BLAKE3-256 of the empty input (from the BLAKE3 test vectors).
	const empty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	if got := repo.Sum().String(); got != empty {
		t.Errorf("Sum() = %s, want %s", got, empty)
	}
	if repo.Sum([]byte("ab"), []byte("c")) != repo.Sum([]byte("abc")) {
		t.Error("Sum of parts differs from Sum of their concatenation")
	}
}
