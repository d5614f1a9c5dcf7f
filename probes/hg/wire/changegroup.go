package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vantage-fleet/vantage/probes/hg/revlog"
)

// Delta is one revision in a changegroup.
type Delta struct {
	Node, P1, P2 revlog.Node
	// Base is the delta base (cg02/03). For cg01 BaseIsPrevious is set: the
	// base is the previous revision of the same group, or P1 for the first.
	Base           revlog.Node
	BaseIsPrevious bool
	LinkNode       revlog.Node
	Flags          uint16
	// Data is an mpatch delta against the base's full text.
	Data []byte
}

// CGReader reads a changegroup (versions 01, 02 and 03): the changelog
// group, the manifest group, then one group per file.
type CGReader struct {
	r       io.Reader
	version string
	lim     Limits
	buf4    [4]byte
}

// NewCGReader reads a changegroup of the given version from r.
func NewCGReader(r io.Reader, version string, lim Limits) (*CGReader, error) {
	switch version {
	case "01", "02", "03":
	default:
		return nil, malformed("changegroup: unsupported version %q", version)
	}
	return &CGReader{r: r, version: version, lim: lim}, nil
}

// chunk reads one chunk; it returns nil for the empty chunk that ends a group.
func (c *CGReader) chunk(what string) ([]byte, error) {
	if _, err := io.ReadFull(c.r, c.buf4[:]); err != nil {
		return nil, fmt.Errorf("changegroup: %s chunk length: %w", what, noEOF(err))
	}
	n := int64(int32(binary.BigEndian.Uint32(c.buf4[:])))
	if n == 0 {
		return nil, nil
	}
	if n <= 4 || n-4 > int64(c.lim.MaxChunk) {
		return nil, malformed("changegroup: %s chunk length %d outside [5,%d]", what, n, int64(c.lim.MaxChunk)+4)
	}
	// Read as the bytes arrive rather than allocating the claimed length
	// up front: a server that claims a large chunk must also send it.
	b, err := io.ReadAll(io.LimitReader(c.r, n-4))
	if err != nil {
		return nil, fmt.Errorf("changegroup: %s chunk: %w", what, err)
	}
	if int64(len(b)) < n-4 {
		return nil, fmt.Errorf("changegroup: %s chunk of %d bytes: %w", what, n-4, io.ErrUnexpectedEOF)
	}
	return b, nil
}

func (c *CGReader) headerSize() int {
	switch c.version {
	case "01":
		return 80
	case "02":
		return 100
	}
	return 102
}

// Delta returns the next revision of the current group, or nil at the
// group's end.
func (c *CGReader) Delta() (*Delta, error) {
	b, err := c.chunk("delta")
	if err != nil || b == nil {
		return nil, err
	}
	hs := c.headerSize()
	if len(b) < hs {
		return nil, malformed("changegroup: delta chunk of %d bytes is shorter than its %d-byte header", len(b), hs)
	}
	d := &Delta{}
	copy(d.Node[:], b[0:20])
	copy(d.P1[:], b[20:40])
	copy(d.P2[:], b[40:60])
	switch c.version {
	case "01":
		d.BaseIsPrevious = true
		copy(d.LinkNode[:], b[60:80])
	default:
		copy(d.Base[:], b[60:80])
		copy(d.LinkNode[:], b[80:100])
		if c.version == "03" {
			d.Flags = binary.BigEndian.Uint16(b[100:102])
		}
	}
	d.Data = b[hs:]
	return d, nil
}

// FileName returns the name of the next file group, or ok=false at the
// end of the changegroup.
func (c *CGReader) FileName() (name string, ok bool, err error) {
	b, err := c.chunk("file name")
	if err != nil || b == nil {
		return "", false, err
	}
	if bytes.IndexByte(b, 0) >= 0 || bytes.IndexByte(b, '\n') >= 0 {
		return "", false, malformed("changegroup: file name %q contains NUL or newline", b)
	}
	return string(b), true, nil
}

// CGWriter writes a changegroup of version 02.
type CGWriter struct {
	buf bytes.Buffer
}

// Delta appends one revision (base Null means the data is a full text delta).
func (w *CGWriter) Delta(d Delta) {
	binary.Write(&w.buf, binary.BigEndian, int32(4+100+len(d.Data)))
	w.buf.Write(d.Node[:])
	w.buf.Write(d.P1[:])
	w.buf.Write(d.P2[:])
	w.buf.Write(d.Base[:])
	w.buf.Write(d.LinkNode[:])
	w.buf.Write(d.Data)
}

// End closes the current group (or, after the file groups, the changegroup).
func (w *CGWriter) End() { w.buf.Write([]byte{0, 0, 0, 0}) }

// FileName starts a file group.
func (w *CGWriter) FileName(name string) {
	binary.Write(&w.buf, binary.BigEndian, int32(4+len(name)))
	w.buf.WriteString(name)
}

// Bytes returns the changegroup written so far.
func (w *CGWriter) Bytes() []byte { return w.buf.Bytes() }
