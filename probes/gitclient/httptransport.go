package gitclient

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// installOnce guards go-git's global protocol map: the one RoundTripper is
// installed for http and https exactly once per process. This is the only
// package-level state in Vantage.
var installOnce sync.Once

// installHTTP installs the phase-recording RoundTripper into go-git.
func installHTTP() {
	installOnce.Do(func() {
		t := githttp.NewClient(&http.Client{Transport: roundTripper{}})
		client.InstallProtocol("http", t)
		client.InstallProtocol("https", t)
	})
}

type baseKey struct{}

// withBase makes requests under ctx go through base (the client's own
// connection pool and TLS settings).
func withBase(ctx context.Context, base *http.Transport) context.Context {
	return context.WithValue(ctx, baseKey{}, base)
}

// roundTripper is the one RoundTripper go-git's HTTP transport uses. It
// finds the calling client's base transport and the run's Phases in the
// request context, so one global installation serves every journey.
type roundTripper struct{}

func (roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	base, _ := ctx.Value(baseKey{}).(*http.Transport)
	var rt http.RoundTripper = http.DefaultTransport
	if base != nil {
		rt = base
	}
	ph := phasesFrom(ctx)
	if ph == nil {
		return rt.RoundTrip(req)
	}
	phase := PhasePackTransfer
	if strings.HasSuffix(req.URL.Path, "/info/refs") {
		phase = PhaseAdvertisement
	}
	var dnsStart, connStart, tlsStart time.Time
	trace := &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { dnsStart = time.Now() },
		DNSDone:           func(httptrace.DNSDoneInfo) { ph.add(PhaseDNS, time.Since(dnsStart)) },
		ConnectStart:      func(string, string) { connStart = time.Now() },
		ConnectDone:       func(string, string, error) { ph.add(PhaseConnect, time.Since(connStart)) },
		TLSHandshakeStart: func() { tlsStart = time.Now() },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { ph.add(PhaseTLS, time.Since(tlsStart)) },
	}
	start := time.Now()
	resp, err := rt.RoundTrip(req.WithContext(httptrace.WithClientTrace(ctx, trace)))
	if err != nil {
		ph.add(phase, time.Since(start))
		return nil, err
	}
	ph.setStatus(resp.StatusCode)
	resp.Body = &timedBody{rc: resp.Body, done: func(n int64) {
		ph.add(phase, time.Since(start))
		ph.addBytes(n)
	}}
	return resp, nil
}

// timedBody reports, once, how long the response took to read to its end
// (or to be closed) and how many bytes it had.
type timedBody struct {
	rc   io.ReadCloser
	n    int64
	once sync.Once
	done func(n int64)
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err != nil {
		b.once.Do(func() { b.done(b.n) })
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.once.Do(func() { b.done(b.n) })
	return b.rc.Close()
}
