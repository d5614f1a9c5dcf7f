package revlog

import (
	"bytes"
	"errors"
	"testing"
)

func frag(start, end int, data string) []byte {
	b := []byte{byte(start >> 24), byte(start >> 16), byte(start >> 8), byte(start),
		byte(end >> 24), byte(end >> 16), byte(end >> 8), byte(end),
		byte(len(data) >> 24), byte(len(data) >> 16), byte(len(data) >> 8), byte(len(data))}
	return append(b, data...)
}

func TestPatch_Fragments(t *testing.T) {
	base := []byte("line1\nline2\nline3\n")
	for _, tc := range []struct {
		name, want string
		delta      []byte
	}{
		{"empty delta keeps the base", string(base), nil},
		{"replace middle", "line1\nLINE2\nline3\n", frag(6, 12, "LINE2\n")},
		{"insert at start and delete end", "zero\nline1\nline2\n", append(frag(0, 0, "zero\n"), frag(12, 18, "")...)},
		{"full replacement", "new", frag(0, 18, "new")},
	} {
		got, err := Patch(base, tc.delta, 1<<20)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestPatch_MalformedDeltas_AreErrors(t *testing.T) {
	base := []byte("0123456789")
	for name, delta := range map[string][]byte{
		"truncated header":       {0, 0, 0},
		"end past base":          frag(0, 11, ""),
		"start after end":        frag(5, 4, ""),
		"overlapping fragments":  append(frag(0, 5, ""), frag(3, 6, "")...),
		"data longer than delta": frag(0, 0, "abc")[:13],
	} {
		if _, err := Patch(base, delta, 1<<20); !errors.Is(err, ErrBadDelta) {
			t.Errorf("%s: err = %v, want ErrBadDelta", name, err)
		}
	}
	if _, err := Patch(nil, FullDelta(make([]byte, 100)), 99); !errors.Is(err, ErrBadDelta) {
		t.Errorf("result over the limit: err = %v", err)
	}
}

func TestHash_IsOrderIndependentInParents(t *testing.T) {
	var a, b Node
	a[0], b[0] = 1, 2
	if Hash(a, b, []byte("x")) != Hash(b, a, []byte("x")) {
		t.Fatal("hash depends on parent order")
	}
	// sha1 of 40 zero bytes + "" : the node of an empty revision with null parents.
	if got := Hash(Null, Null, nil).Hex(); got != "b80de5d138758541c5f05265ad144ab9fa86d1db" {
		t.Fatalf("empty revision node = %s", got)
	}
}

func TestChangeset_TextRoundTrip(t *testing.T) {
	c := &Changeset{User: "A <a@b>", Time: 1700000000, TZ: -3600,
		Extra: map[string]string{"branch": "stable", "note": "a\nb\x00c\\"}, Files: []string{"z", "a"}, Desc: "msg  \n\n"}
	text := c.Text()
	want := "0000000000000000000000000000000000000000\nA <a@b>\n1700000000 -3600 branch:stable\x00note:a\\nb\\0c\\\\\na\nz\n\nmsg"
	if string(text) != want {
		t.Fatalf("text = %q\nwant   %q", text, want)
	}
	p, err := ParseChangeset(text)
	if err != nil || p.Branch() != "stable" || p.Extra["note"] != "a\nb\x00c\\" || len(p.Files) != 2 || p.Desc != "msg" {
		t.Fatalf("parsed %+v, %v", p, err)
	}
	c.Extra = map[string]string{"branch": "default"}
	c.Files = nil
	if got := string(c.Text()); got != "0000000000000000000000000000000000000000\nA <a@b>\n1700000000 -3600\n\nmsg" {
		t.Fatalf("default branch is not omitted: %q", got)
	}
}

func TestFileText_MetadataFraming(t *testing.T) {
	plain := []byte("hello")
	if !bytes.Equal(FileText(plain, nil), plain) {
		t.Fatal("plain content must not be framed")
	}
	tricky := []byte("\x01\nlooks like metadata")
	framed := FileText(tricky, nil)
	if !bytes.HasPrefix(framed, []byte("\x01\n\x01\n")) {
		t.Fatalf("content starting with \\x01\\n must get an empty frame: %q", framed)
	}
	content, meta, err := SplitFileText(framed)
	if err != nil || !bytes.Equal(content, tricky) || len(meta) != 0 {
		t.Fatalf("split = %q %v %v", content, meta, err)
	}
	copied := FileText(plain, map[string]string{"copyrev": "ab", "copy": "old"})
	if string(copied) != "\x01\ncopy: old\ncopyrev: ab\n\x01\nhello" {
		t.Fatalf("copy frame = %q", copied)
	}
	if _, _, err := SplitFileText([]byte("\x01\nunclosed")); err == nil {
		t.Fatal("an unclosed frame must be an error")
	}
}

func TestManifest_ParseRejectsMalformed(t *testing.T) {
	n := "0123456789012345678901234567890123456789"
	good := "a\x00" + n + "\nb\x00" + n + "x\n"
	m, err := ParseManifest([]byte(good))
	if err != nil || len(m) != 2 || m[1].Flag != "x" || string(m.Text()) != good {
		t.Fatalf("parse = %+v, %v", m, err)
	}
	for name, text := range map[string]string{
		"no newline":   "a\x00" + n,
		"out of order": "b\x00" + n + "\na\x00" + n + "\n",
		"bad flag":     "a\x00" + n + "q\n",
		"short node":   "a\x00" + n[:39] + "\n",
		"no separator": "a" + n + "\n",
	} {
		if _, err := ParseManifest([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzPatch(f *testing.F) {
	f.Add([]byte("line1\nline2\n"), frag(6, 12, "LINE2\n"))
	f.Add([]byte(""), FullDelta([]byte("abc")))
	f.Add([]byte("abc"), append(frag(0, 1, "x"), frag(2, 3, "y")...))
	f.Fuzz(func(t *testing.T, base, delta []byte) {
		const limit = 1 << 16
		out, err := Patch(base, delta, limit)
		if err != nil {
			return
		}
		if len(out) > limit {
			t.Fatalf("result of %d bytes exceeds the limit", len(out))
		}
		if len(out) > len(base)+len(delta) {
			t.Fatalf("result of %d bytes from a %d-byte base and %d-byte delta", len(out), len(base), len(delta))
		}
		// A full-text delta of the result reproduces it from nothing.
		again, err := Patch(nil, FullDelta(out), limit)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("full-text delta did not round-trip: %v", err)
		}
	})
}
