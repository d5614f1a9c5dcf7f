// Package http implements journeys of kind "http": one or more requests
// made in order, each timed phase by phase with net/http/httptrace (dns,
// connect, tls, ttfb, transfer) and checked against its expected statuses
// and assertions. Values captured from a JSON response feed later steps as
// ${name}. Every run uses its own connections (a fresh transport), so that
// each run measures what a new user sees, and every connection carries the
// run's deadline, so a silent server cannot hold a run past it.
//
// It must not import another journey kind or anything under cmd/.
package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	nethttp "net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// Kind is the journey kind this package implements.
const Kind = "http"

// Defaults of the journey's bounds.
const (
	// DefaultMaxBodyBytes bounds how much of a response body is read.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxRedirects is how many redirects a step follows.
	DefaultMaxRedirects = 10
	// maxHeaderBytes bounds the response headers of one request.
	maxHeaderBytes = 64 << 10
	// maxPEMBytes bounds a CA bundle or client certificate file.
	maxPEMBytes = 1 << 20
)

// Step attribute keys that have no OpenTelemetry semantic convention.
const (
	AttrPhaseDNS      = attribute.Key("vantage.http.phase.dns_ms")
	AttrPhaseConnect  = attribute.Key("vantage.http.phase.connect_ms")
	AttrPhaseTLS      = attribute.Key("vantage.http.phase.tls_ms")
	AttrPhaseTTFB     = attribute.Key("vantage.http.phase.ttfb_ms")
	AttrPhaseTransfer = attribute.Key("vantage.http.phase.transfer_ms")
	AttrRedirects     = attribute.Key("vantage.http.redirects")
	AttrCertDaysLeft  = attribute.Key("vantage.tls.cert.days_left")
)

// Journey is one configured HTTP journey, ready to run many times.
type Journey struct {
	name         string
	steps        []step
	tls          *tls.Config
	basicUser    string
	basicPass    string
	bearer       string
	maxBody      int64
	maxRedirects int
	redact       *report.Redactor
	// attrs are the journey-level attributes: the journey is known by its
	// first request, which is what alerts name.
	attrs []attribute.KeyValue
}

// step is a configured step with its regular expressions compiled once.
type step struct {
	cfg           config.HTTPStep
	name          string
	method        string
	expect        []int
	headerMatches map[string]*regexp.Regexp
	bodyMatches   []*regexp.Regexp
	// The maps' keys, sorted once, so that checks run in a stable order.
	headerEqualsKeys, headerMatchesKeys, jsonEqualsKeys, captureKeys []string
}

// New builds an HTTP journey from its validated config. It reads the CA
// bundle and client certificate now, so that a bad file is a startup error
// rather than a failed run.
func New(j *config.Journey, env probes.Env) (probes.Journey, error) {
	h := j.HTTP
	if h == nil {
		return nil, fmt.Errorf("journey %s: missing [journey.http]", j.Name)
	}
	jr := &Journey{
		name:         j.Name,
		basicUser:    h.BasicUser,
		basicPass:    h.BasicPassword.Value(),
		bearer:       h.BearerToken.Value(),
		maxBody:      h.MaxBodyBytes,
		maxRedirects: DefaultMaxRedirects,
		redact:       env.Redact,
	}
	if jr.maxBody == 0 {
		jr.maxBody = DefaultMaxBodyBytes
	}
	if h.MaxRedirects != nil {
		jr.maxRedirects = *h.MaxRedirects
	}
	tc, err := tlsConfig(h)
	if err != nil {
		return nil, fmt.Errorf("journey %s: %w", j.Name, err)
	}
	jr.tls = tc
	if h.InsecureSkipVerify && env.Log != nil {
		env.Log.Warn("TLS verification is disabled for this journey", "journey", j.Name)
	}
	for i, sc := range h.Step {
		s := step{cfg: sc, name: sc.Name, method: strings.ToUpper(sc.Method), expect: sc.ExpectStatus,
			headerMatches:    map[string]*regexp.Regexp{},
			headerEqualsKeys: sortedKeys(sc.HeaderEquals), headerMatchesKeys: sortedKeys(sc.HeaderMatches),
			jsonEqualsKeys: sortedKeys(sc.JSONEquals), captureKeys: sortedKeys(sc.Capture)}
		if s.name == "" {
			s.name = fmt.Sprintf("step-%d", i+1)
		}
		if s.method == "" {
			s.method = nethttp.MethodGet
		}
		for k, re := range sc.HeaderMatches {
			c, err := regexp.Compile(re)
			if err != nil {
				return nil, fmt.Errorf("journey %s step %s: header_matches.%s: %w", j.Name, s.name, k, err)
			}
			s.headerMatches[k] = c
		}
		for _, re := range sc.BodyMatches {
			c, err := regexp.Compile(re)
			if err != nil {
				return nil, fmt.Errorf("journey %s step %s: body_matches: %w", j.Name, s.name, err)
			}
			s.bodyMatches = append(s.bodyMatches, c)
		}
		jr.steps = append(jr.steps, s)
	}
	if len(jr.steps) == 0 {
		return nil, fmt.Errorf("journey %s: no steps", j.Name)
	}
	first := jr.steps[0].cfg.URL
	jr.attrs = append(jr.attrs, semconv.URLFullKey.String(jr.redactURL(first)))
	if u, err := url.Parse(first); err == nil {
		jr.attrs = append(jr.attrs, semconv.ServerAddressKey.String(u.Hostname()))
	}
	return jr, nil
}

func tlsConfig(h *config.HTTPJourney) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: h.InsecureSkipVerify}
	if h.CAFile != "" {
		pem, err := readBounded(h.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate found", h.CAFile)
		}
		tc.RootCAs = pool
	}
	if h.ClientCert != "" {
		certPEM, err := readBounded(h.ClientCert)
		if err != nil {
			return nil, fmt.Errorf("client_cert: %w", err)
		}
		// The key's parse error is not wrapped: it could quote key material.
		cert, err := tls.X509KeyPair(certPEM, []byte(h.ClientKey.Value()))
		if err != nil {
			return nil, fmt.Errorf("client_cert %s and client_key %s do not form a valid key pair", h.ClientCert, h.ClientKey.Ref)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPEMBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxPEMBytes)
	}
	return b, nil
}

// Run performs the steps in order; the first failing step ends the run.
func (j *Journey) Run(ctx context.Context, run *probes.Run) error {
	deadline, hasDeadline := ctx.Deadline()
	dialer := &net.Dialer{}
	tr := &nethttp.Transport{
		Proxy: nil, // a prober measures the product, not a proxy picked up from the environment
		DialContext: func(dctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(dctx, network, addr)
			if err == nil && hasDeadline {
				// The deadline sits on the connection itself, so that it holds
				// whatever the layers above do with the context.
				_ = c.SetDeadline(deadline)
			}
			return c, err
		},
		TLSClientConfig:     j.tls.Clone(),
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 2,
		DisableCompression:  true,
		// Response headers are bounded like bodies (net/http's default is 1 MiB).
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	defer tr.CloseIdleConnections()
	run.Rec.SetAttrs(j.attrs...)
	vars := map[string]string{}
	for i := range j.steps {
		if err := j.runStep(ctx, tr, run, &j.steps[i], vars); err != nil {
			return err
		}
	}
	return nil
}

// phases collects the httptrace timings of one step (all its requests,
// redirects included). The hooks run on the transport's goroutines (a dial
// may still be finishing after a failed request returned), hence the lock.
type phases struct {
	mu                                              sync.Mutex
	dnsStart, connStart, tlsStart, wrote, firstByte time.Time
	dns, connect, tls                               time.Duration
}

// mark runs f under the lock; the hooks are one-liners through it.
func (p *phases) mark(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
}

func (p *phases) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { p.mark(func() { p.dnsStart = time.Now() }) },
		DNSDone: func(httptrace.DNSDoneInfo) {
			p.mark(func() {
				if !p.dnsStart.IsZero() {
					p.dns += time.Since(p.dnsStart)
				}
			})
		},
		ConnectStart: func(_, _ string) { p.mark(func() { p.connStart = time.Now() }) },
		ConnectDone: func(_, _ string, _ error) {
			p.mark(func() {
				if !p.connStart.IsZero() {
					p.connect += time.Since(p.connStart)
				}
			})
		},
		TLSHandshakeStart: func() { p.mark(func() { p.tlsStart = time.Now() }) },
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			p.mark(func() {
				if !p.tlsStart.IsZero() {
					p.tls += time.Since(p.tlsStart)
				}
			})
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { p.mark(func() { p.wrote = time.Now() }) },
		GotFirstResponseByte: func() { p.mark(func() { p.firstByte = time.Now() }) },
	}
}

func ms(d time.Duration) float64 { return report.Millis(d) }

func (j *Journey) runStep(ctx context.Context, tr nethttp.RoundTripper, run *probes.Run, s *step, vars map[string]string) error {
	st := run.Rec.Step(s.name)
	rawURL := substitute(s.cfg.URL, vars, urlEscape)
	st.Set(semconv.HTTPRequestMethodKey.String(s.method), semconv.URLFullKey.String(j.redactURL(rawURL)))
	var body io.Reader
	if s.cfg.Body != "" {
		body = strings.NewReader(substitute(s.cfg.Body, vars, nil))
	}
	var ph phases
	req, err := nethttp.NewRequestWithContext(httptrace.WithClientTrace(ctx, ph.trace()), s.method, rawURL, body)
	if err != nil {
		// The URL passed validation, so only a captured value can break it.
		return st.End(probes.Errorf(report.ErrAssertion, "step %s: request URL is invalid after substitution", s.name))
	}
	st.Set(semconv.ServerAddressKey.String(req.URL.Hostname()))
	req.Header.Set("User-Agent", "vantage-prober")
	for k, v := range s.cfg.Headers {
		v = substitute(v, vars, nil)
		if strings.EqualFold(k, "Host") {
			// net/http sends req.Host, not a Host header: this is how a
			// journey probes one edge by address under the product's name.
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	switch {
	case j.bearer != "":
		req.Header.Set("Authorization", "Bearer "+j.bearer)
	case j.basicUser != "":
		req.SetBasicAuth(j.basicUser, j.basicPass)
	}
	redirects := 0
	client := &nethttp.Client{Transport: tr, CheckRedirect: func(r *nethttp.Request, via []*nethttp.Request) error {
		if len(via) > j.maxRedirects {
			return nethttp.ErrUseLastResponse
		}
		redirects = len(via)
		return nil
	}}
	resp, err := client.Do(req)
	if err != nil {
		j.setPhases(st, &ph, time.Time{})
		return st.End(fmt.Errorf("step %s: %s %s: %w", s.name, s.method, j.redactURL(rawURL), unwrapURLError(err)))
	}
	defer resp.Body.Close()
	b, readErr := io.ReadAll(io.LimitReader(resp.Body, j.maxBody+1))
	end := time.Now()
	j.setPhases(st, &ph, end)
	st.Set(semconv.HTTPResponseStatusCodeKey.Int(resp.StatusCode),
		semconv.HTTPResponseBodySizeKey.Int(len(b)), AttrRedirects.Int(redirects))
	if readErr != nil {
		return st.End(fmt.Errorf("step %s: reading the response body: %w", s.name, readErr))
	}
	if int64(len(b)) > j.maxBody {
		return st.End(probes.Errorf(report.ErrProtocol, "step %s: response body exceeds max_body_bytes (%d)", s.name, j.maxBody))
	}
	if err := checkStatus(s, resp.StatusCode); err != nil {
		return st.End(err)
	}
	if err := j.assert(st, s, resp, b, vars); err != nil {
		return st.End(err)
	}
	return st.End(nil)
}

// setPhases records the step's phase timings. ttfb is from the request
// being written to the first response byte (server time plus one round
// trip); transfer is from the first byte to the end of the body.
func (j *Journey) setPhases(st *probes.StepTimer, ph *phases, end time.Time) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	kv := []attribute.KeyValue{AttrPhaseDNS.Float64(ms(ph.dns)), AttrPhaseConnect.Float64(ms(ph.connect)),
		AttrPhaseTLS.Float64(ms(ph.tls))}
	if !ph.wrote.IsZero() && !ph.firstByte.IsZero() && ph.firstByte.After(ph.wrote) {
		kv = append(kv, AttrPhaseTTFB.Float64(ms(ph.firstByte.Sub(ph.wrote))))
	}
	if !ph.firstByte.IsZero() && !end.IsZero() {
		kv = append(kv, AttrPhaseTransfer.Float64(ms(end.Sub(ph.firstByte))))
	}
	st.Set(kv...)
}

// unwrapURLError drops net/http's *url.Error wrapper, whose message
// repeats the URL unredacted; the caller names the redacted URL instead.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (j *Journey) redactURL(u string) string {
	if j.redact != nil {
		return j.redact.String(u)
	}
	return (&report.Redactor{}).String(u)
}

// checkStatus compares the status with the expected ones (default any
// 2xx) and classifies an unexpected one.
func checkStatus(s *step, code int) error {
	ok := code >= 200 && code < 300
	if len(s.expect) > 0 {
		ok = false
		for _, c := range s.expect {
			ok = ok || c == code
		}
	}
	if ok {
		return nil
	}
	want := "2xx"
	if len(s.expect) > 0 {
		want = strings.Trim(fmt.Sprint(s.expect), "[]")
	}
	t := report.ErrAssertion
	switch {
	case code == nethttp.StatusUnauthorized || code == nethttp.StatusForbidden:
		t = report.ErrAuth
	case code == nethttp.StatusTooManyRequests:
		t = report.ErrRateLimited
	case code >= 500:
		t = report.ErrHTTP5xx
	case code >= 400:
		t = report.ErrHTTP4xx
	}
	return probes.Errorf(t, "step %s: status %d, want %s", s.name, code, want)
}

// assert checks headers, body, JSON paths and the certificate, then takes
// the step's captures.
func (j *Journey) assert(st *probes.StepTimer, s *step, resp *nethttp.Response, body []byte, vars map[string]string) error {
	fail := func(format string, args ...any) error {
		return probes.Errorf(report.ErrAssertion, "step %s: "+format, append([]any{s.name}, args...)...)
	}
	for _, k := range s.headerEqualsKeys {
		if got := resp.Header.Get(k); got != s.cfg.HeaderEquals[k] {
			return fail("header %s is %q, want %q", k, clip(got), s.cfg.HeaderEquals[k])
		}
	}
	for _, k := range s.headerMatchesKeys {
		if got := resp.Header.Get(k); !s.headerMatches[k].MatchString(got) {
			return fail("header %s is %q, which does not match %q", k, clip(got), s.cfg.HeaderMatches[k])
		}
	}
	for _, want := range s.cfg.BodyContains {
		if !bytes.Contains(body, []byte(want)) {
			return fail("body does not contain %q", want)
		}
	}
	for _, re := range s.bodyMatches {
		if !re.Match(body) {
			return fail("body does not match %q", re.String())
		}
	}
	if s.cfg.CertMinDays > 0 {
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
			return fail("cert_min_days is set but the response did not come over TLS")
		}
		left := int(time.Until(resp.TLS.PeerCertificates[0].NotAfter).Hours() / 24)
		st.Set(AttrCertDaysLeft.Int(left))
		if left < s.cfg.CertMinDays {
			return fail("server certificate expires in %d days, want at least %d", left, s.cfg.CertMinDays)
		}
	}
	if len(s.cfg.JSONEquals) == 0 && len(s.cfg.Capture) == 0 {
		return nil
	}
	doc, err := decodeJSON(body)
	if err != nil {
		return fail("response is not JSON: %v", err)
	}
	for _, path := range s.jsonEqualsKeys {
		got, err := lookup(doc, path)
		if err != nil {
			return fail("JSON path %s: %v", path, err)
		}
		if got != s.cfg.JSONEquals[path] {
			return fail("JSON path %s is %q, want %q", path, clip(got), s.cfg.JSONEquals[path])
		}
	}
	for _, name := range s.captureKeys {
		got, err := lookup(doc, s.cfg.Capture[name])
		if err != nil {
			return fail("capture %s: JSON path %s: %v", name, s.cfg.Capture[name], err)
		}
		vars[name] = got
	}
	return nil
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// lookup walks a dotted path ("data.items.0.state") through a decoded
// JSON document and returns the element as text: strings as they are,
// numbers, booleans and null as JSON writes them, objects and arrays as
// compact JSON.
func lookup(doc any, path string) (string, error) {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[part]
			if !ok {
				return "", fmt.Errorf("no key %q", part)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return "", fmt.Errorf("no index %q in an array of %d", part, len(v))
			}
			cur = v[i]
		default:
			return "", fmt.Errorf("cannot descend into a scalar at %q", part)
		}
	}
	switch v := cur.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case nil:
		return "null", nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		b, err := json.Marshal(v)
		return string(b), err
	}
}

// substitute replaces ${name} with captured values, escaped by esc if given.
func substitute(s string, vars map[string]string, esc func(string) string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	for name, v := range vars {
		if esc != nil {
			v = esc(v)
		}
		s = strings.ReplaceAll(s, "${"+name+"}", v)
	}
	return s
}

// urlEscape escapes a captured value for use anywhere in a URL (path or query).
func urlEscape(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
}

// clip shortens a value quoted from a response in an error message.
func clip(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
