package revlog

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// metaMarker frames copy metadata at the start of a filelog text.
var metaMarker = []byte("\x01\n")

// FileText wraps content in the filelog format: when meta is non-empty or
// the content itself starts with "\x01\n", the text is
// "\x01\n" + "key: value\n"… + "\x01\n" + content.
func FileText(content []byte, meta map[string]string) []byte {
	if len(meta) == 0 && !bytes.HasPrefix(content, metaMarker) {
		return content
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.Write(metaMarker)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, meta[k])
	}
	b.Write(metaMarker)
	b.Write(content)
	return b.Bytes()
}

// SplitFileText separates a filelog text into its content and metadata
// (copy, copyrev). A text without the "\x01\n" frame is all content.
func SplitFileText(text []byte) (content []byte, meta map[string]string, err error) {
	if !bytes.HasPrefix(text, metaMarker) {
		return text, nil, nil
	}
	end := bytes.Index(text[2:], metaMarker)
	if end < 0 {
		return nil, nil, fmt.Errorf("filelog: metadata frame not closed")
	}
	block := string(text[2 : 2+end])
	meta = map[string]string{}
	for _, line := range strings.Split(block, "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, nil, fmt.Errorf("filelog: bad metadata line %q", truncate(line))
		}
		meta[k] = v
	}
	return text[2+end+2:], meta, nil
}
