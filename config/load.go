package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// maxConfigBytes bounds a config file; real ones are a few KiB.
const maxConfigBytes = 4 << 20

// Problem is one thing wrong with a config file.
type Problem struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Key, p.Msg)
}

// Problems is every problem found in a config file, in line order. It is
// the error Load returns when the file is invalid.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects problems by key path while a file is checked.
type problems struct {
	file  string
	index *lineIndex
	list  Problems
}

func (p *problems) add(key, msg string) {
	line := 0
	if p.index != nil {
		line = p.index.line(key)
	}
	p.list = append(p.list, Problem{File: p.file, Line: line, Key: key, Msg: msg})
}

func (p *problems) addAt(line int, key, msg string) {
	p.list = append(p.list, Problem{File: p.file, Line: line, Key: key, Msg: msg})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool { return p.list[i].Line < p.list[j].Line })
	return p.list
}

// decodeFile reads path strictly into v: syntax and type errors, unknown
// keys, and field-level problems (bad durations, malformed secret
// references) are all reported. It returns the collector for further checks.
func decodeFile(path string, v any) (*problems, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Size() > maxConfigBytes {
		return nil, fmt.Errorf("%s: config file is larger than %d bytes", path, maxConfigBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return decodeBytes(path, b, v)
}

func decodeBytes(path string, b []byte, v any) (*problems, error) {
	p := &problems{file: path, index: buildLineIndex(string(b))}
	md, err := toml.Decode(string(b), v)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			key := pe.LastKey
			if key == "" {
				key = "(syntax)"
			}
			p.addAt(pe.Position.Line, key, pe.Message)
		} else {
			line, key := 0, "(type)"
			// "toml: line N (last key "x"): incompatible types: …"
			msg := err.Error()
			if rest, ok := strings.CutPrefix(msg, "toml: line "); ok {
				if sp := strings.IndexByte(rest, ' '); sp > 0 {
					line, _ = strconv.Atoi(rest[:sp])
				}
				if i := strings.Index(rest, `(last key "`); i >= 0 {
					k := rest[i+len(`(last key "`):]
					if j := strings.Index(k, `")`); j >= 0 {
						key = k[:j]
					}
				}
				if i := strings.Index(rest, "): "); i >= 0 {
					msg = rest[i+3:]
				}
			}
			p.addAt(line, key, msg)
		}
		return p, p.err()
	}
	seen := map[string]int{}
	for _, k := range md.Undecoded() {
		bare := k.String()
		path, line := p.index.occurrence(bare, seen[bare])
		seen[bare]++
		p.addAt(line, path, "unknown key")
	}
	walk(reflect.ValueOf(v), "", func(key string, f reflect.Value) {
		if pr, ok := f.Interface().(problemer); ok {
			if msg := pr.problem(); msg != "" {
				p.add(key, msg)
			}
		}
	})
	return p, nil
}

// resolveSecrets resolves every Secret in v and returns their values.
func resolveSecrets(v any, p *problems, lookup func(string) (string, bool)) []string {
	var values []string
	walk(reflect.ValueOf(v), "", func(key string, f reflect.Value) {
		s, ok := f.Addr().Interface().(*Secret)
		if !ok {
			return
		}
		if s.err != "" {
			return // already reported by decodeBytes
		}
		s.resolve(lookup)
		if s.err != "" {
			p.add(key, s.err)
		} else if s.value != "" {
			values = append(values, s.value)
		}
	})
	return values
}

// walk calls fn for every Duration and Secret field reachable from v, with
// its TOML key path ("journey[1].http.bearer_token").
func walk(v reflect.Value, key string, fn func(key string, f reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem(), key, fn)
		}
	case reflect.Struct:
		switch v.Interface().(type) {
		case Duration, Secret:
			if v.CanAddr() {
				fn(key, v)
			}
			return
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name := strings.Split(sf.Tag.Get("toml"), ",")[0]
			if name == "-" {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			walk(v.Field(i), joinKey(key, name), fn)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), key+"["+strconv.Itoa(i)+"]", fn)
		}
	}
}

func joinKey(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
