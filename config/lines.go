package config

import (
	"strconv"
	"strings"
)

// lineIndex maps TOML key paths to the line where they are written.
// BurntSushi/toml keeps key positions private, so this is a small scanner
// over the file's lines: it follows [table] and [[array]] headers (counting
// array entries), `key = value` lines with bare, quoted and dotted keys, and
// skips multi-line strings and arrays. Paths look like
// "journey[1].http.url". It only locates keys for messages; the real
// parsing is BurntSushi/toml's.
type lineIndex struct {
	lines map[string]int
	order []indexedKey // in file order, for matching md.Undecoded()
}

type indexedKey struct {
	path, bare string // bare has no [n] indices, like toml.Key.String()
	line       int
}

func buildLineIndex(src string) *lineIndex {
	idx := &lineIndex{lines: map[string]int{}}
	counts := map[string]int{} // array-table path (with parent indices) → entries seen
	table := ""                // current table path, with indices
	inMulti := ""              // closing delimiter of a multi-line string
	depth := 0                 // open brackets of a multi-line array or inline table
	for n, raw := range strings.Split(src, "\n") {
		line := n + 1
		s := raw
		if inMulti != "" {
			if i := strings.Index(s, inMulti); i >= 0 {
				s = s[i+len(inMulti):]
				inMulti = ""
			} else {
				continue
			}
		}
		if depth > 0 {
			depth, inMulti = scanValue(s, depth)
			continue
		}
		t := strings.TrimSpace(s)
		if t == "" || t[0] == '#' {
			continue
		}
		if strings.HasPrefix(t, "[[") {
			name := keyPath(strings.TrimSpace(strings.SplitN(t[2:], "]]", 2)[0]))
			// An array header names a new entry: resolve its parent against
			// the current table, then add the array's own name.
			full := name
			if i := strings.LastIndex(name, "."); i >= 0 {
				full = joinUnder(table, name[:i]) + name[i:]
			}
			counts[full]++
			table = full + "[" + strconv.Itoa(counts[full]-1) + "]"
			idx.add(table, line)
			continue
		}
		if strings.HasPrefix(t, "[") {
			name := keyPath(strings.TrimSpace(strings.SplitN(t[1:], "]", 2)[0]))
			table = joinUnder(table, name)
			idx.add(table, line)
			continue
		}
		eq := keyEnd(t)
		if eq < 0 {
			continue
		}
		key := keyPath(strings.TrimSpace(t[:eq]))
		full := key
		if table != "" {
			full = table + "." + key
		}
		idx.add(full, line)
		depth, inMulti = scanValue(t[eq+1:], 0)
	}
	return idx
}

// joinUnder resolves a table header against the current table: a header
// that extends an array-table entry ("journey.http" after "[[journey]]")
// belongs to the latest entry of that array.
func joinUnder(current, name string) string {
	parts := strings.Split(name, ".")
	base := current
	for base != "" {
		if b := stripIndices(base); b == name || strings.HasPrefix(name, b+".") {
			rest := strings.TrimPrefix(strings.TrimPrefix(name, b), ".")
			if rest == "" {
				return base
			}
			return base + "." + rest
		}
		i := strings.LastIndex(base, ".")
		if i < 0 {
			break
		}
		base = base[:i]
	}
	return strings.Join(parts, ".")
}

func (x *lineIndex) add(path string, line int) {
	if _, ok := x.lines[path]; !ok {
		x.lines[path] = line
	}
	x.order = append(x.order, indexedKey{path: path, bare: stripIndices(path), line: line})
}

// line returns the line of path, or of its nearest written parent, or 0.
func (x *lineIndex) line(path string) int {
	for p := path; p != ""; {
		if l, ok := x.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// undecoded returns the n-th written occurrence (0-based) of a key named
// bare (no indices), with its indexed path and line.
func (x *lineIndex) occurrence(bare string, n int) (string, int) {
	for _, k := range x.order {
		if k.bare == bare {
			if n == 0 {
				return k.path, k.line
			}
			n--
		}
	}
	return bare, 0
}

func stripIndices(p string) string {
	var b strings.Builder
	skip := false
	for _, r := range p {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// keyPath normalises a TOML key ("a . \"b.c\"") to dotted form ("a.b.c").
// Quoted parts keep their content; dots inside quotes are rare in configs
// and only affect message locations.
func keyPath(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		p = strings.Trim(p, `"'`)
		parts[i] = p
	}
	return strings.Join(parts, ".")
}

// keyEnd returns the index of the '=' that ends the key, outside quotes.
func keyEnd(s string) int {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '=':
			return i
		case r == '#':
			return -1
		}
	}
	return -1
}

// scanValue follows a value across lines: it returns the bracket depth still
// open at the end of s, and the delimiter of a multi-line string left open.
func scanValue(s string, depth int) (int, string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '#':
			return depth, ""
		case '[', '{':
			depth++
		case ']', '}':
			if depth > 0 {
				depth--
			}
		case '"', '\'':
			delim := string(c)
			if strings.HasPrefix(s[i:], strings.Repeat(delim, 3)) {
				delim = strings.Repeat(delim, 3)
			}
			end := strings.Index(s[i+len(delim):], delim)
			if end < 0 {
				if len(delim) == 3 {
					return depth, delim
				}
				return depth, ""
			}
			i += len(delim) + end + len(delim) - 1
		case '\\':
			i++
		}
	}
	return depth, ""
}
