package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Limits bound what the client accepts from the wire. Every length read
// is checked against them before anything is allocated.
type Limits struct {
	// MaxHeader bounds a bundle2 part header and the stream parameters.
	MaxHeader int
	// MaxChunk bounds one bundle2 payload chunk and one changegroup chunk
	// (a delta, so about one revision).
	MaxChunk int
	// MaxText bounds the full text of one revision after applying a delta.
	MaxText int
	// MaxTotal bounds the decompressed bytes of one response.
	MaxTotal int64
}

// DefaultLimits fit a monitoring scratch repository with room to spare.
func DefaultLimits() Limits {
	return Limits{MaxHeader: 64 << 10, MaxChunk: 64 << 20, MaxText: 128 << 20, MaxTotal: 1 << 30}
}

// ErrMalformed marks input that does not follow the protocol.
var ErrMalformed = errors.New("malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Part is one bundle2 part. Read its payload from the Part itself before
// asking the reader for the next part.
type Part struct {
	// Type is lower-cased; Mandatory says whether the sender upper-cased it.
	Type      string
	Mandatory bool
	ID        uint32
	Params    map[string]string
	r         *Bundle2Reader
	chunkLeft int
	done      bool
}

// Bundle2Reader reads an HG20 bundle.
type Bundle2Reader struct {
	r    io.Reader
	lim  Limits
	cur  *Part
	buf4 [4]byte
}

// NewBundle2Reader checks the magic and the stream parameters.
func NewBundle2Reader(r io.Reader, lim Limits) (*Bundle2Reader, error) {
	b := &Bundle2Reader{r: r, lim: lim}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("bundle2: reading magic: %w", err)
	}
	if string(magic[:]) != "HG20" {
		return nil, malformed("bundle2: magic %q, want HG20", magic[:])
	}
	n, err := b.int32()
	if err != nil {
		return nil, fmt.Errorf("bundle2: stream parameters size: %w", err)
	}
	if n < 0 || int(n) > lim.MaxHeader {
		return nil, malformed("bundle2: stream parameters size %d outside [0,%d]", n, lim.MaxHeader)
	}
	params := make([]byte, n)
	if _, err := io.ReadFull(r, params); err != nil {
		return nil, fmt.Errorf("bundle2: stream parameters: %w", err)
	}
	for _, p := range strings.Fields(string(params)) {
		k, v, _ := strings.Cut(p, "=")
		k, _ = url.PathUnescape(k)
		v, _ = url.PathUnescape(v)
		if k == "" {
			return nil, malformed("bundle2: empty stream parameter name")
		}
		if strings.EqualFold(k, "compression") && v != "UN" {
			return nil, malformed("bundle2: compressed bundles (%q) are not supported", v)
		}
		if unicode.IsUpper(rune(k[0])) && !strings.EqualFold(k, "compression") {
			return nil, malformed("bundle2: unknown mandatory stream parameter %q", k)
		}
	}
	return b, nil
}

func (b *Bundle2Reader) int32() (int32, error) {
	if _, err := io.ReadFull(b.r, b.buf4[:]); err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(b.buf4[:])), nil
}

// Next returns the next part, or io.EOF at the end of the bundle. An
// unread payload of the previous part is skipped.
func (b *Bundle2Reader) Next() (*Part, error) {
	if b.cur != nil {
		if _, err := io.Copy(io.Discard, b.cur); err != nil {
			return nil, err
		}
		b.cur = nil
	}
	n, err := b.int32()
	if err != nil {
		return nil, fmt.Errorf("bundle2: part header size: %w", noEOF(err))
	}
	if n == 0 {
		return nil, io.EOF
	}
	if n < 0 || int(n) > b.lim.MaxHeader {
		return nil, malformed("bundle2: part header size %d outside [1,%d]", n, b.lim.MaxHeader)
	}
	h := make([]byte, n)
	if _, err := io.ReadFull(b.r, h); err != nil {
		return nil, fmt.Errorf("bundle2: part header: %w", noEOF(err))
	}
	p, err := parsePartHeader(h)
	if err != nil {
		return nil, err
	}
	p.r = b
	b.cur = p
	return p, nil
}

func parsePartHeader(h []byte) (*Part, error) {
	take := func(n int) ([]byte, error) {
		if n > len(h) {
			return nil, malformed("bundle2: part header truncated")
		}
		v := h[:n]
		h = h[n:]
		return v, nil
	}
	tl, err := take(1)
	if err != nil {
		return nil, err
	}
	typ, err := take(int(tl[0]))
	if err != nil {
		return nil, err
	}
	if len(typ) == 0 {
		return nil, malformed("bundle2: empty part type")
	}
	id, err := take(4)
	if err != nil {
		return nil, err
	}
	counts, err := take(2)
	if err != nil {
		return nil, err
	}
	np := int(counts[0]) + int(counts[1])
	sizes, err := take(2 * np)
	if err != nil {
		return nil, err
	}
	p := &Part{
		Type:      strings.ToLower(string(typ)),
		Mandatory: string(typ) != strings.ToLower(string(typ)),
		ID:        binary.BigEndian.Uint32(id),
		Params:    make(map[string]string, np),
	}
	for i := 0; i < np; i++ {
		k, err := take(int(sizes[2*i]))
		if err != nil {
			return nil, err
		}
		v, err := take(int(sizes[2*i+1]))
		if err != nil {
			return nil, err
		}
		p.Params[string(k)] = string(v)
	}
	if len(h) != 0 {
		return nil, malformed("bundle2: %d stray bytes after the part header", len(h))
	}
	return p, nil
}

// Read reads the part's payload, chunk by chunk.
func (p *Part) Read(out []byte) (int, error) {
	if p.done {
		return 0, io.EOF
	}
	for p.chunkLeft == 0 {
		n, err := p.r.int32()
		if err != nil {
			return 0, fmt.Errorf("bundle2: %s payload chunk size: %w", p.Type, noEOF(err))
		}
		switch {
		case n == 0:
			p.done = true
			return 0, io.EOF
		case n == -1:
			return 0, malformed("bundle2: %s payload interrupted by the server", p.Type)
		case n < 0 || int(n) > p.r.lim.MaxChunk:
			return 0, malformed("bundle2: %s payload chunk size %d outside [0,%d]", p.Type, n, p.r.lim.MaxChunk)
		}
		p.chunkLeft = int(n)
	}
	if len(out) > p.chunkLeft {
		out = out[:p.chunkLeft]
	}
	n, err := p.r.r.Read(out)
	p.chunkLeft -= n
	if err == io.EOF {
		if p.chunkLeft > 0 {
			return n, fmt.Errorf("bundle2: %s payload: %w", p.Type, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	return n, err
}

// ReadAll reads the whole payload, refusing more than max bytes.
func (p *Part) ReadAll(max int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(p, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, malformed("bundle2: %s payload larger than %d bytes", p.Type, max)
	}
	return b, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Param is one part parameter; keys and values are at most 255 bytes.
type Param struct{ Key, Value string }

// Bundle2Writer writes an HG20 bundle with no stream parameters.
type Bundle2Writer struct {
	w      io.Writer
	nextID uint32
	err    error
}

// preferredChunk is the payload chunk size Mercurial itself writes.
const preferredChunk = 32768

// NewBundle2Writer writes the magic and empty stream parameters.
func NewBundle2Writer(w io.Writer) *Bundle2Writer {
	b := &Bundle2Writer{w: w}
	_, b.err = w.Write([]byte("HG20\x00\x00\x00\x00"))
	return b
}

// AddPart writes a part and returns its ID. A mandatory part has its type
// upper-cased, as Mercurial does.
func (b *Bundle2Writer) AddPart(typ string, mandatory bool, mand, adv []Param, payload []byte) (uint32, error) {
	if b.err != nil {
		return 0, b.err
	}
	if mandatory {
		typ = strings.ToUpper(typ)
	}
	if len(typ) > 255 || len(mand) > 255 || len(adv) > 255 {
		return 0, fmt.Errorf("bundle2: part %q has an oversized header field", typ)
	}
	var h bytes.Buffer
	h.WriteByte(byte(len(typ)))
	h.WriteString(typ)
	binary.Write(&h, binary.BigEndian, b.nextID)
	h.WriteByte(byte(len(mand)))
	h.WriteByte(byte(len(adv)))
	all := append(append([]Param(nil), mand...), adv...)
	for _, p := range all {
		if len(p.Key) > 255 || len(p.Value) > 255 {
			return 0, fmt.Errorf("bundle2: part %q parameter %q is longer than 255 bytes", typ, p.Key)
		}
		h.WriteByte(byte(len(p.Key)))
		h.WriteByte(byte(len(p.Value)))
	}
	for _, p := range all {
		h.WriteString(p.Key)
		h.WriteString(p.Value)
	}
	var out bytes.Buffer
	binary.Write(&out, binary.BigEndian, int32(h.Len()))
	out.Write(h.Bytes())
	for len(payload) > 0 {
		n := min(len(payload), preferredChunk)
		binary.Write(&out, binary.BigEndian, int32(n))
		out.Write(payload[:n])
		payload = payload[n:]
	}
	binary.Write(&out, binary.BigEndian, int32(0))
	if _, err := b.w.Write(out.Bytes()); err != nil {
		b.err = err
		return 0, err
	}
	id := b.nextID
	b.nextID++
	return id, nil
}

// Close writes the end-of-bundle marker.
func (b *Bundle2Writer) Close() error {
	if b.err != nil {
		return b.err
	}
	_, b.err = b.w.Write([]byte{0, 0, 0, 0})
	return b.err
}

// EncodeCaps renders a bundle2 capabilities blob: "key=v1,v2" lines with
// every piece URL-quoted, sorted by key.
func EncodeCaps(caps map[string][]string) string {
	keys := make([]string, 0, len(caps))
	for k := range caps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		line := quote(k)
		if vs := caps[k]; len(vs) > 0 {
			q := make([]string, len(vs))
			for i, v := range vs {
				q[i] = quote(v)
			}
			line += "=" + strings.Join(q, ",")
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// quote is Python's urllib.parse.quote with safe="/".
func quote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// ReplyReturn reads the "return" parameter of a reply:changegroup part.
func ReplyReturn(p *Part) (int, error) {
	v, ok := p.Params["return"]
	if !ok {
		return 0, malformed("bundle2: reply:changegroup without a return parameter")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, malformed("bundle2: reply:changegroup return %q is not a number", v)
	}
	return n, nil
}
