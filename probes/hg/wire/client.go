// Package wire is a Mercurial HTTP wire-protocol v1 client: the commands a
// clone, pull and push need (capabilities, heads, lookup, getbundle,
// unbundle), the bundle2 container and the changegroup format. Everything
// read from the network is bounded by Limits; malformed input is an error
// wrapping ErrMalformed, never a panic.
package wire

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/vantage-fleet/vantage/probes/hg/revlog"
)

// Client talks to one repository over HTTP(S).
type Client struct {
	// URL is the repository URL, without a query.
	URL string
	// HTTP carries the requests; its transport should bound dial and
	// response-header times. Every request also carries the caller's context.
	HTTP *http.Client
	// User and Password are sent with basic authentication when User is set.
	User, Password string
	// Limits bound what the server may send.
	Limits Limits
	// Caps are the server's capabilities, filled by Capabilities.
	Caps map[string]string
	// CGVersions are the changegroup versions offered to getbundle
	// (01 and 02 when empty; the server picks the highest).
	CGVersions []string
	// BytesRead counts response body bytes as received (compressed).
	BytesRead int64
}

// HTTPError is a non-200 answer.
type HTTPError struct {
	Status int
	// Message is the server's explanation, at most a few hundred bytes.
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
}

// RemoteError is an application/hg-error answer (the server refused the
// command, e.g. an unknown revision).
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return "server error: " + e.Message }

// maxSmallBody bounds the answer of commands other than getbundle.
const maxSmallBody = 4 << 20

// argHeaderPrefix is what every X-HgArg-N header costs besides its value.
const argHeaderOverhead = len("X-HgArg-000") + len(": \r\n")

func (c *Client) do(ctx context.Context, cmd string, args map[string]string, body []byte) (*http.Response, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("repository URL: %w", err)
	}
	q := url.Values{"cmd": {cmd}}
	enc := encodeArgs(args)
	chunk := 0
	if v, ok := c.Caps["httpheader"]; ok {
		chunk, _ = strconv.Atoi(v)
		chunk -= argHeaderOverhead
	}
	if chunk <= 0 && enc != "" {
		for k, v := range args {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	method := http.MethodGet
	var rd io.Reader
	if body != nil {
		method = http.MethodPost
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/mercurial-0.1")
	req.Header.Set("User-Agent", "mercurial/proto-1.0 (vantage)")
	req.Header.Set("X-HgProto-1", "0.1 0.2 comp=zlib,none")
	if body != nil {
		req.Header.Set("Content-Type", "application/mercurial-0.1")
		req.ContentLength = int64(len(body))
	}
	if chunk > 0 && enc != "" {
		var names []string
		for i := 1; enc != ""; i++ {
			n := min(chunk, len(enc))
			name := "X-HgArg-" + strconv.Itoa(i)
			req.Header.Set(name, enc[:n])
			names = append(names, name)
			enc = enc[n:]
		}
		req.Header.Set("Vary", strings.Join(append(names, "X-HgProto-1"), ","))
	}
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.BytesRead}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		m := strings.TrimSpace(strings.TrimPrefix(string(msg), "0\n"))
		if m == "" {
			m = http.StatusText(resp.StatusCode)
		}
		return nil, fmt.Errorf("%s: %w", cmd, &HTTPError{Status: resp.StatusCode, Message: m})
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "application/hg-error" {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: %w", cmd, &RemoteError{Message: strings.TrimSpace(string(msg))})
	}
	if !strings.HasPrefix(ct, "application/mercurial-") {
		resp.Body.Close()
		return nil, malformed("%s: unexpected content type %q (is the URL a Mercurial repository?)", cmd, ct)
	}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	*b.n += int64(n)
	return n, err
}

// encodeArgs is Python's urlencode(sorted(args)).
func encodeArgs(args map[string]string) string {
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = url.QueryEscape(k) + "=" + url.QueryEscape(args[k])
	}
	return strings.Join(parts, "&")
}

func (c *Client) small(ctx context.Context, cmd string, args map[string]string) ([]byte, error) {
	resp, err := c.do(ctx, cmd, args, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if len(b) > maxSmallBody {
		return nil, malformed("%s: answer larger than %d bytes", cmd, maxSmallBody)
	}
	return b, nil
}

// Capabilities fetches and remembers the server's capabilities.
func (c *Client) Capabilities(ctx context.Context) (map[string]string, error) {
	b, err := c.small(ctx, "capabilities", nil)
	if err != nil {
		return nil, err
	}
	caps := map[string]string{}
	for _, tok := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(tok, "=")
		caps[k] = v
	}
	if _, ok := caps["getbundle"]; !ok {
		return nil, malformed("capabilities: server lacks getbundle")
	}
	c.Caps = caps
	return caps, nil
}

// Bundle2Caps decodes the server's bundle2 capability blob.
func (c *Client) Bundle2Caps() map[string][]string {
	blob, err := url.QueryUnescape(c.Caps["bundle2"])
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	for _, line := range strings.Split(blob, "\n") {
		k, v, _ := strings.Cut(line, "=")
		k, _ = url.PathUnescape(k)
		var vs []string
		if v != "" {
			for _, x := range strings.Split(v, ",") {
				x, _ = url.PathUnescape(x)
				vs = append(vs, x)
			}
		}
		out[k] = vs
	}
	return out
}

// Heads returns the repository's heads ([Null] for an empty repository).
func (c *Client) Heads(ctx context.Context) ([]revlog.Node, error) {
	b, err := c.small(ctx, "heads", nil)
	if err != nil {
		return nil, err
	}
	return parseNodes("heads", strings.TrimSpace(string(b)))
}

func parseNodes(what, s string) ([]revlog.Node, error) {
	var out []revlog.Node
	for _, f := range strings.Fields(s) {
		n, err := revlog.ParseNode(f)
		if err != nil {
			return nil, malformed("%s: %v", what, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Lookup resolves key (a revision, tag, bookmark or hex node). found is
// false when the server does not know it.
func (c *Client) Lookup(ctx context.Context, key string) (node revlog.Node, found bool, err error) {
	b, err := c.small(ctx, "lookup", map[string]string{"key": key})
	if err != nil {
		return node, false, err
	}
	ok, rest, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	switch ok {
	case "1":
		n, err := revlog.ParseNode(rest)
		if err != nil {
			return node, false, malformed("lookup: %v", err)
		}
		return n, true, nil
	case "0":
		return node, false, nil
	}
	return node, false, malformed("lookup: answer %q", truncate(string(b)))
}

// Known reports, for each node, whether the server has it.
func (c *Client) Known(ctx context.Context, nodes []revlog.Node) ([]bool, error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	b, err := c.small(ctx, "known", map[string]string{"nodes": joinNodes(nodes)})
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\n")
	if len(b) != len(nodes) {
		return nil, malformed("known: %d answers for %d nodes", len(b), len(nodes))
	}
	out := make([]bool, len(b))
	for i, x := range b {
		switch x {
		case '1':
			out[i] = true
		case '0':
		default:
			return nil, malformed("known: answer byte %q", x)
		}
	}
	return out, nil
}

func joinNodes(ns []revlog.Node) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.Hex()
	}
	return strings.Join(s, " ")
}

// ClientCaps is the bundle2 capability blob this client sends: it only
// takes changegroups 01 and 02, which keeps the server from sending parts
// this client does not parse.
var clientCaps = map[string][]string{"HG20": nil, "changegroup": {"01", "02"},
	"error": {"abort", "unsupportedcontent", "pushraced", "pushkey"}}

func (c *Client) bundleCaps() map[string][]string {
	if len(c.CGVersions) == 0 {
		return clientCaps
	}
	caps := map[string][]string{}
	for k, v := range clientCaps {
		caps[k] = v
	}
	caps["changegroup"] = c.CGVersions
	return caps
}

// GetBundle asks for the changesets reachable from heads but not from
// common, as a bundle2, and returns the decompressed stream. Close it.
func (c *Client) GetBundle(ctx context.Context, heads, common []revlog.Node) (io.ReadCloser, error) {
	if len(common) == 0 {
		common = []revlog.Node{revlog.Null}
	}
	args := map[string]string{
		"bundlecaps": "HG20,bundle2=" + quote(EncodeCaps(c.bundleCaps())),
		"cg":         "1",
		"common":     joinNodes(common),
		"heads":      joinNodes(heads),
	}
	resp, err := c.do(ctx, "getbundle", args, nil)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	br := bufio.NewReader(resp.Body)
	engine := "zlib"
	if ct == "application/mercurial-0.2" {
		n, err := br.ReadByte()
		if err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("getbundle: compression engine: %w", noEOF(err))
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(br, name); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("getbundle: compression engine: %w", noEOF(err))
		}
		engine = string(name)
	}
	var r io.Reader
	switch engine {
	case "zlib":
		z, err := zlib.NewReader(br)
		if err != nil {
			resp.Body.Close()
			return nil, malformed("getbundle: zlib stream: %v", err)
		}
		r = z
	case "none":
		r = br
	default:
		resp.Body.Close()
		return nil, malformed("getbundle: server chose compression %q that was not offered", engine)
	}
	return &boundedBody{r: r, left: c.Limits.MaxTotal, c: resp.Body}, nil
}

// boundedBody fails (rather than truncates) past its limit.
type boundedBody struct {
	r    io.Reader
	left int64
	c    io.Closer
}

// ErrTooLarge marks a response that exceeds Limits.MaxTotal.
var ErrTooLarge = errors.New("response exceeds the size limit")

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("%w (%w)", ErrTooLarge, ErrMalformed)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.c.Close() }

// Unbundle posts a bundle. It returns the reply stream: an HG20 bundle for
// a bundle2 push. Close it.
func (c *Client) Unbundle(ctx context.Context, bundle []byte) (io.ReadCloser, error) {
	// heads=hex("force"): the check happens inside the bundle (check:heads).
	resp, err := c.do(ctx, "unbundle", map[string]string{"heads": "666f726365"}, bundle)
	if err != nil {
		return nil, err
	}
	return &boundedBody{r: resp.Body, left: c.Limits.MaxTotal, c: resp.Body}, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
