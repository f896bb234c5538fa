package limitread

import (
	"bytes"
	"strings"
	"testing"
)

func TestReadAll(t *testing.T) {
	for _, n := range []int{0, 9, 10} {
		got, err := ReadAll(bytes.NewReader(make([]byte, n)), 10)
		if err != nil || len(got) != n {
			t.Errorf("%d bytes, limit 10: %d, %v", n, len(got), err)
		}
	}
	r := bytes.NewReader(make([]byte, 100))
	if _, err := ReadAll(r, 10); err == nil || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Errorf("100 bytes, limit 10: %v", err)
	}
	if r.Len() != 100-11 {
		t.Errorf("read %d bytes past the limit, want 1", 100-r.Len()-10)
	}
}
