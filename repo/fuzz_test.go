package repo_test

import (
	"bytes"
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
