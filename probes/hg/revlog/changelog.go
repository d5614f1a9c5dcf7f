package revlog

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Changeset is a parsed changelog entry.
type Changeset struct {
	Manifest Node
	User     string
	// Time is seconds since the Unix epoch; TZ is seconds west of UTC.
	Time  int64
	TZ    int
	Extra map[string]string
	Files []string
	Desc  string
}

// Branch returns the changeset's named branch ("default" when unset).
func (c *Changeset) Branch() string {
	if b := c.Extra["branch"]; b != "" {
		return b
	}
	return "default"
}

// ParseChangeset parses a changelog text.
func ParseChangeset(text []byte) (*Changeset, error) {
	head, desc, ok := bytes.Cut(text, []byte("\n\n"))
	if !ok {
		// A changeset with no files and no description still has the blank line.
		return nil, fmt.Errorf("changelog: no blank line before the description")
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("changelog: want manifest, user and date lines, got %d lines", len(lines))
	}
	mf, err := ParseNode(lines[0])
	if err != nil {
		return nil, fmt.Errorf("changelog: manifest: %w", err)
	}
	c := &Changeset{Manifest: mf, User: lines[1], Desc: string(desc), Files: lines[3:]}
	f := strings.SplitN(lines[2], " ", 3)
	if len(f) < 2 {
		return nil, fmt.Errorf("changelog: bad date line %q", truncate(lines[2]))
	}
	if c.Time, err = strconv.ParseInt(strings.SplitN(f[0], ".", 2)[0], 10, 64); err != nil {
		return nil, fmt.Errorf("changelog: bad time %q", truncate(f[0]))
	}
	if c.TZ, err = strconv.Atoi(f[1]); err != nil {
		return nil, fmt.Errorf("changelog: bad timezone %q", truncate(f[1]))
	}
	if len(f) == 3 {
		c.Extra = map[string]string{}
		for _, kv := range strings.Split(f[2], "\x00") {
			k, v, _ := strings.Cut(unescapeExtra(kv), ":")
			c.Extra[k] = v
		}
	}
	return c, nil
}

// Text renders the changeset in Mercurial's changelog format.
func (c *Changeset) Text() []byte {
	date := fmt.Sprintf("%d %d", c.Time, c.TZ)
	var extra []string
	for k, v := range c.Extra {
		if k == "branch" && v == "default" {
			continue
		}
		extra = append(extra, escapeExtra(k+":"+v))
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		date += " " + strings.Join(extra, "\x00")
	}
	files := append([]string(nil), c.Files...)
	sort.Strings(files)
	parts := append([]string{c.Manifest.Hex(), c.User, date}, files...)
	parts = append(parts, "", stripDesc(c.Desc))
	return []byte(strings.Join(parts, "\n"))
}

// stripDesc drops trailing whitespace of every line and leading and
// trailing empty lines of the description, as hg does.
func stripDesc(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r\v\f")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

var extraEscaper = strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r", "\x00", "\\0")
var extraUnescaper = strings.NewReplacer("\\\\", "\\", "\\n", "\n", "\\r", "\r", "\\0", "\x00")

func escapeExtra(s string) string   { return extraEscaper.Replace(s) }
func unescapeExtra(s string) string { return extraUnescaper.Replace(s) }
