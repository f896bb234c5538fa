package repo_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/otree/otree/repo"
)

// Every decoder must survive arbitrary input, and every input a
// whole-object decoder accepts must be the canonical encoding of what it
// decoded: re-encoding gives back exactly the input bytes.

func addSeeds(f *testing.F, kind string) {
	for _, enc := range validEncodings()[kind] {
		f.Add(enc)
		if kind == "file" {
			f.Add(dup(enc, []byte("content")...))
		}
	}
	for _, c := range append(append(append(append(append(fileHeaderCases(), dirMetaCases()...), dirTreeCases()...), commitCases()...), commitMetaCases()...), tombstoneCases()...) {
		if c.kind == kind {
			f.Add(c.in)
		}
	}
}

func FuzzDecodeFileHeader(f *testing.F) {
	addSeeds(f, "file")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := repo.DecodeFileHeader(b)
		if err != nil {
			return
		}
		if n < 0 || n > len(b) {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("decoded header is invalid: %v", err)
		}
		if enc := repo.AppendFileHeader(nil, h); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b[:n], enc)
		}
	})
}

func FuzzDecodeDirMeta(f *testing.F) {
	addSeeds(f, "dirmeta")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := repo.DecodeDirMeta(b)
		if err != nil {
			return
		}
		if enc := m.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
	})
}

func FuzzDecodeDirTree(f *testing.F) {
	addSeeds(f, "dirtree")
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := repo.DecodeDirTree(b)
		if err != nil {
			return
		}
		if enc := tr.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
		for _, e := range tr.Files {
			if !repo.ValidName(e.Name) {
				t.Fatalf("accepted file name %q", e.Name)
			}
			if _, ok := tr.Dir(e.Name); ok {
				t.Fatalf("accepted %q as both file and directory", e.Name)
			}
		}
		for _, e := range tr.Dirs {
			if !repo.ValidName(e.Name) {
				t.Fatalf("accepted dir name %q", e.Name)
			}
		}
	})
}

func FuzzDecodeCommit(f *testing.F) {
	addSeeds(f, "commit")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := repo.DecodeCommit(b)
		if err != nil {
			return
		}
		if enc := c.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
	})
}

func FuzzDecodeCommitMeta(f *testing.F) {
	addSeeds(f, "commitmeta")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := repo.DecodeCommitMeta(b)
		if err != nil {
			return
		}
		if enc := repo.EncodeCommitMeta(m); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
	})
}

func FuzzDecodeTombstone(f *testing.F) {
	addSeeds(f, "tombstone-commit")
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := repo.DecodeTombstone(b)
		if err != nil {
			return
		}
		if id.IsZero() {
			t.Fatal("accepted a tombstone of the zero id")
		}
		if enc := repo.EncodeTombstone(id); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
	})
}

// FuzzParseConfig checks that a config that parses survives being written
// back: Bytes gives a file that parses to the same values, and writing that
// again gives the same bytes.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"[core]\nrepo_version=1\nmode=bare-user\n",
		"[core]\nrepo_version=1\nmode=archive\nlock-timeout-secs=5\n\n[remote \"origin\"]\nurl=https://example.com/repo\n",
		"# comment\n; other comment\n[core]\n  mode = bare  \n\n",
		"[a]\nk=v=w\n[a]\nk=again\n",
		"[core]\r\nmode=bare\r\n",
		"key=outside\n",
		"[unterminated\n",
		"[]\n",
		"[ ]\n", // an empty section name: refused
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := repo.ParseConfig(b)
		if err != nil {
			return
		}
		out := c.Bytes()
		c2, err := repo.ParseConfig(out)
		if err != nil {
			t.Fatalf("Bytes of a parsed config does not parse: %v\n in  %q\n out %q", err, b, out)
		}
		if out2 := c2.Bytes(); !bytes.Equal(out, out2) {
			t.Fatalf("config changed on a second round trip:\n in  %q\n out %q\n out2 %q", b, out, out2)
		}
	})
}

func FuzzParseID(f *testing.F) {
	f.Add(sampleHex)
	f.Add(strings.ToUpper(sampleHex))
	f.Add(strings.Repeat("0", 64))
	f.Add(sampleHex[:63] + "g")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := repo.ParseID(s)
		if err != nil {
			return
		}
		if !strings.EqualFold(id.String(), s) {
			t.Fatalf("ParseID(%q).String() = %s", s, id)
		}
		var back repo.ID
		text, _ := id.MarshalText()
		if err := back.UnmarshalText(text); err != nil || back != id {
			t.Fatalf("text round trip of %s: %s, %v", id, back, err)
		}
	})
}

func FuzzDecodeSizes(f *testing.F) {
	f.Add(repo.EncodeSizes([]repo.ObjectSize{{Kind: repo.KindFile, ID: repo.Sum([]byte("a")), Stored: 300, Unpacked: 1 << 20},
		{Kind: repo.KindDirTree, ID: repo.Sum([]byte("b")), Stored: 5, Unpacked: 5}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sizes, err := repo.DecodeSizes(b)
		if err != nil {
			return
		}
		if enc := repo.EncodeSizes(sizes); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
	})
}

// FuzzConfigSet checks that a value Set in a config is what Get returns,
// both at once and once the config is written and read back, that the
// keys already there keep their values, and that a section and key Set
// takes are what their joined SECTION.KEY splits into, where the section
// has no dot outside its quotes.
func FuzzConfigSet(f *testing.F) {
	base := "[core]\nrepo_version=1\nmode=bare-user\n\n[remote \"origin\"]\nurl=https://example.com/repo\nxa.title=Example\n"
	f.Add([]byte(base), "core", "mode", "archive")
	f.Add([]byte(base), `remote "org.example.Os"`, "url", "file:///srv/repo")
	f.Add([]byte(base), `remote "flathub"`, "xa.title", "Flathub = apps")
	f.Add([]byte("[a]\nk=v\n"), "a b", "#k", "v")
	f.Add([]byte(""), "sysroot", "bootloader", "c:\\path ; x")
	f.Fuzz(func(t *testing.T, data []byte, section, key, value string) {
		c, err := repo.ParseConfig(data)
		if err != nil {
			return
		}
		before := c.Bytes()
		if err := c.SetIn(section, key, value); err != nil {
			return
		}
		if v, ok := c.GetIn(section, key); !ok || v != value {
			t.Fatalf("SetIn(%q, %q, %q) then GetIn = %q, %v", section, key, value, v, ok)
		}
		out := c.Bytes()
		c2, err := repo.ParseConfig(out)
		if err != nil {
			t.Fatalf("config after SetIn(%q, %q, %q) does not parse: %v\n%q", section, key, value, err, out)
		}
		if v, ok := c2.GetIn(section, key); !ok || v != value {
			t.Fatalf("SetIn(%q, %q, %q), written as %q, reads back as %q, %v", section, key, value, out, v, ok)
		}
		// Undoing the change gives the file as it was, so no other key moved.
		// A value read but not UTF-8 cannot be Set back (OSTree could not
		// read it), so nothing is restored then.
		old, had := mustParse(t, before).GetIn(section, key)
		restored := true
		if had {
			restored = c2.SetIn(section, key, old) == nil
		} else {
			c2.UnsetIn(section, key)
		}
		// (Unset drops a section it leaves empty, even one that was empty.)
		emptied := !had && bytes.Contains(before, []byte("["+section+"]\n"))
		if got := c2.Bytes(); restored && !bytes.Equal(got, before) && !emptied {
			t.Fatalf("setting and restoring %s.%s changed the config:\n %q\n %q", section, key, before, got)
		}
		if strings.Count(section, `"`)%2 == 0 && !strings.Contains(unquoted(section), ".") {
			if s, k, err := repo.SplitConfigKey(section + "." + key); err != nil || s != section || k != key {
				t.Fatalf("SplitConfigKey(%q) = %q, %q, %v; want %q, %q", section+"."+key, s, k, err, section, key)
			}
		}
	})
}

func mustParse(t *testing.T, b []byte) *repo.Config {
	c, err := repo.ParseConfig(b)
	if err != nil {
		t.Fatalf("ParseConfig(%q): %v", b, err)
	}
	return c
}

// unquoted is s without its double-quoted parts.
func unquoted(s string) string {
	var b strings.Builder
	for i, part := range strings.Split(s, `"`) {
		if i%2 == 0 {
			b.WriteString(part)
		}
	}
	return b.String()
}

// FuzzSplitRev checks that a revision's suffixes are all taken off its
// base, and that the base with the count written as one "~N" reads the
// same.
func FuzzSplitRev(f *testing.F) {
	for _, s := range []string{"os/x86_64/stable", "origin:stable^^", "abcd~3^", "x~", "x^~2~", "~1", "^", "a~+1", "a~9223372036854775807^", "x~0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		base, ups, err := repo.SplitRev(s)
		if err != nil {
			return
		}
		if base == "" || strings.HasSuffix(base, "^") || strings.Contains(base, "~") || ups < 0 {
			t.Fatalf("SplitRev(%q) = %q, %d", s, base, ups)
		}
		again := fmt.Sprintf("%s~%d", base, ups)
		if b2, u2, err := repo.SplitRev(again); err != nil || b2 != base || u2 != ups {
			t.Fatalf("SplitRev(%q) = %q, %d; but %q gives %q, %d, %v", s, base, ups, again, b2, u2, err)
		}
	})
}
