package canon

import (
	"errors"
	"strings"
	"testing"
)

var errTest = errors.New("non-canonical test")

func TestDecoder(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		read func(d *Decoder)
		want string // "" for success
	}{
		{"uvarint", []byte{0xac, 0x02}, func(d *Decoder) { d.Uvarint() }, ""},
		{"zero", []byte{0x00}, func(d *Decoder) { d.Uvarint() }, ""},
		{"non-minimal", []byte{0x80, 0x00}, func(d *Decoder) { d.Uvarint() }, "at byte 0: varint not minimally encoded"},
		{"non-minimal large", []byte{0xac, 0x82, 0x00}, func(d *Decoder) { d.Uvarint() }, "not minimally encoded"},
		{"truncated", []byte{0x80}, func(d *Decoder) { d.Uvarint() }, "truncated or overlong varint"},
		{"overlong", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, func(d *Decoder) { d.Uvarint() }, "truncated or overlong"},
		{"bytes", []byte{0x02, 'h', 'i'}, func(d *Decoder) {
			if string(d.Bytes()) != "hi" {
				d.Fail("wrong bytes")
			}
		}, ""},
		{"bytes past the end", []byte{0x03, 'h', 'i'}, func(d *Decoder) { d.Bytes() }, "at byte 1: length 3 past the end"},
		{"id past the end", make([]byte, 31), func(d *Decoder) { d.ID() }, "length 32 past the end"},
		{"count fits", []byte{0x02, 1, 2, 3, 4}, func(d *Decoder) { d.Count(2); d.Raw(4) }, ""},
		{"count too large for the rest", []byte{0x03, 1, 2, 3, 4}, func(d *Decoder) { d.Count(2) }, "count 3 past the end"},
		{"trailing", []byte{0x01, 0x00}, func(d *Decoder) { d.Uvarint() }, "at byte 1: 1 trailing bytes"},
		{"first failure sticks", []byte{0x80, 0x00, 0x05}, func(d *Decoder) {
			d.Uvarint()
			if d.Uvarint() != 0 || d.Raw(1) != nil || d.Offset() != 0 {
				d.Fail("read on after a failure")
			}
		}, "varint not minimally encoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.in, errTest)
			tc.read(d)
			err := d.End()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errTest)):
				t.Fatalf("error %v, want one wrapping %v and naming %q", err, errTest, tc.want)
			}
		})
	}
}
