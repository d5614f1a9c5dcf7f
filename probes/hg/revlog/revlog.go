// Package revlog owns Mercurial's revision formats as they travel over the
// wire: node hashing, mpatch delta application, and the texts of changelog,
// manifest and filelog revisions. It does no I/O.
package revlog

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// NodeSize is the length of a binary node.
const NodeSize = 20

// Node is a revision's SHA-1 identity.
type Node [NodeSize]byte

// Null is the null revision (20 zero bytes).
var Null Node

// Hex returns the 40-digit hex form.
func (n Node) Hex() string { return hex.EncodeToString(n[:]) }

// String returns the hex form.
func (n Node) String() string { return n.Hex() }

// IsNull reports whether n is the null revision.
func (n Node) IsNull() bool { return n == Null }

// ParseNode parses a 40-digit hex node.
func ParseNode(s string) (Node, error) {
	var n Node
	if len(s) != 2*NodeSize {
		return n, fmt.Errorf("node %q: want %d hex digits", truncate(s), 2*NodeSize)
	}
	if _, err := hex.Decode(n[:], []byte(s)); err != nil {
		return n, fmt.Errorf("node %q: %w", truncate(s), err)
	}
	return n, nil
}

// Hash computes a revision's node as Mercurial does:
// sha1(min(p1,p2) + max(p1,p2) + text).
func Hash(p1, p2 Node, text []byte) Node {
	a, b := p1, p2
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	h := sha1.New()
	h.Write(a[:])
	h.Write(b[:])
	h.Write(text)
	var n Node
	h.Sum(n[:0])
	return n
}

// ErrBadDelta marks a delta that does not apply to its base.
var ErrBadDelta = errors.New("malformed delta")

// Patch applies an mpatch delta (a series of (start, end, newlen, data)
// fragments, in increasing non-overlapping order, offsets into base) to
// base. The result may be at most maxLen bytes; the size is computed and
// checked before anything is allocated.
func Patch(base, delta []byte, maxLen int) ([]byte, error) {
	// First pass: validate every fragment and compute the output size.
	size := 0
	last := 0
	for p := 0; p < len(delta); {
		if len(delta)-p < 12 {
			return nil, fmt.Errorf("%w: truncated fragment header at offset %d", ErrBadDelta, p)
		}
		start := int64(binary.BigEndian.Uint32(delta[p:]))
		end := int64(binary.BigEndian.Uint32(delta[p+4:]))
		n := int64(binary.BigEndian.Uint32(delta[p+8:]))
		p += 12
		if start < int64(last) || end < start || end > int64(len(base)) {
			return nil, fmt.Errorf("%w: fragment [%d,%d) out of order or outside the base of %d bytes", ErrBadDelta, start, end, len(base))
		}
		if n > int64(len(delta)-p) {
			return nil, fmt.Errorf("%w: fragment claims %d bytes, %d remain", ErrBadDelta, n, len(delta)-p)
		}
		size += int(start) - last + int(n)
		if size > maxLen {
			return nil, fmt.Errorf("%w: result exceeds %d bytes", ErrBadDelta, maxLen)
		}
		last = int(end)
		p += int(n)
	}
	size += len(base) - last
	if size > maxLen {
		return nil, fmt.Errorf("%w: result exceeds %d bytes", ErrBadDelta, maxLen)
	}
	out := make([]byte, 0, size)
	last = 0
	for p := 0; p < len(delta); {
		start := int(binary.BigEndian.Uint32(delta[p:]))
		end := int(binary.BigEndian.Uint32(delta[p+4:]))
		n := int(binary.BigEndian.Uint32(delta[p+8:]))
		p += 12
		out = append(out, base[last:start]...)
		out = append(out, delta[p:p+n]...)
		p += n
		last = end
	}
	return append(out, base[last:]...), nil
}

// FullDelta returns the delta that produces text from an empty base
// (Mercurial's trivial diff header).
func FullDelta(text []byte) []byte {
	d := make([]byte, 12, 12+len(text))
	binary.BigEndian.PutUint32(d[8:], uint32(len(text)))
	return append(d, text...)
}

func truncate(s string) string {
	if len(s) > 50 {
		return s[:50] + "…"
	}
	return s
}
