package quote

import "testing"

func TestPath(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/motd":      "/etc/motd",
		"/a b":           "/a b",
		"/new\nline":     `"/new\nline"`,
		"/bad\xff":       `"/bad\xff"`,
		"/rtl\u202eevil": `"/rtl\u202eevil"`,
		`"quoted"`:       `"\"quoted\""`,
		"/caf\u00e9":     "/caf\u00e9",
	} {
		if got := Path(in); got != want {
			t.Errorf("Path(%q) = %s, want %s", in, got, want)
		}
	}
}
