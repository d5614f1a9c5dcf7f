package revlog

import (
	"bytes"
	"fmt"
	"sort"
)

// ManifestEntry is one file of a manifest.
type ManifestEntry struct {
	Path string
	Node Node
	// Flag is "", "x" (executable), "l" (symlink) or "t" (tree).
	Flag string
}

// Manifest is a parsed manifest: entries in sorted byte order of path.
type Manifest []ManifestEntry

// ParseManifest parses a manifest text: lines "path\0<40 hex><flag>\n".
func ParseManifest(text []byte) (Manifest, error) {
	var m Manifest
	prev := ""
	for len(text) > 0 {
		nl := bytes.IndexByte(text, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("manifest: line without newline")
		}
		line := text[:nl]
		text = text[nl+1:]
		z := bytes.IndexByte(line, 0)
		if z <= 0 {
			return nil, fmt.Errorf("manifest: line without path or separator")
		}
		path, rest := string(line[:z]), line[z+1:]
		if len(rest) < 2*NodeSize || len(rest) > 2*NodeSize+1 {
			return nil, fmt.Errorf("manifest: entry %q: bad node field", path)
		}
		n, err := ParseNode(string(rest[:2*NodeSize]))
		if err != nil {
			return nil, fmt.Errorf("manifest: entry %q: %w", path, err)
		}
		flag := string(rest[2*NodeSize:])
		switch flag {
		case "", "x", "l", "t":
		default:
			return nil, fmt.Errorf("manifest: entry %q: unknown flag %q", path, flag)
		}
		if len(m) > 0 && path <= prev {
			return nil, fmt.Errorf("manifest: entry %q out of order", path)
		}
		prev = path
		m = append(m, ManifestEntry{Path: path, Node: n, Flag: flag})
	}
	return m, nil
}

// Text renders the manifest in Mercurial's format (entries sorted by path).
func (m Manifest) Text() []byte {
	s := append(Manifest(nil), m...)
	sort.Slice(s, func(i, j int) bool { return s[i].Path < s[j].Path })
	var b bytes.Buffer
	for _, e := range s {
		b.WriteString(e.Path)
		b.WriteByte(0)
		b.WriteString(e.Node.Hex())
		b.WriteString(e.Flag)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Lookup returns the entry for path.
func (m Manifest) Lookup(path string) (ManifestEntry, bool) {
	i := sort.Search(len(m), func(i int) bool { return m[i].Path >= path })
	if i < len(m) && m[i].Path == path {
		return m[i], true
	}
	return ManifestEntry{}, false
}

// With returns a copy of m where path has node and flag (added or replaced).
func (m Manifest) With(path string, node Node, flag string) Manifest {
	out := make(Manifest, 0, len(m)+1)
	done := false
	for _, e := range m {
		if !done && e.Path >= path {
			out = append(out, ManifestEntry{Path: path, Node: node, Flag: flag})
			done = true
			if e.Path == path {
				continue
			}
		}
		out = append(out, e)
	}
	if !done {
		out = append(out, ManifestEntry{Path: path, Node: node, Flag: flag})
	}
	return out
}
