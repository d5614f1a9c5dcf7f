package gitclient

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// Phase names recorded by the transports.
const (
	PhaseDNS           = "dns"
	PhaseConnect       = "connect"
	PhaseTLS           = "tls"
	PhaseHandshake     = "handshake"
	PhaseAdvertisement = "advertisement"
	PhasePackTransfer  = "pack_transfer"
)

// Phases is the sink a run's transports record into: the time spent in each
// network phase and the last HTTP status seen. An operation finds it in its
// context (WithPhases); without one, nothing is recorded. Safe for
// concurrent use.
type Phases struct {
	mu     sync.Mutex
	d      map[string]time.Duration
	order  []string
	status int
	bytes  int64
}

type phasesKey struct{}

// WithPhases returns ctx carrying p: operations under it record their phases in p.
func WithPhases(ctx context.Context, p *Phases) context.Context {
	return context.WithValue(ctx, phasesKey{}, p)
}

func phasesFrom(ctx context.Context) *Phases {
	p, _ := ctx.Value(phasesKey{}).(*Phases)
	return p
}

// add accumulates d into phase name (a nil receiver records nothing).
func (p *Phases) add(name string, d time.Duration) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.d == nil {
		p.d = map[string]time.Duration{}
	}
	if _, ok := p.d[name]; !ok {
		p.order = append(p.order, name)
	}
	p.d[name] += d
}

func (p *Phases) setStatus(code int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.status = code
	p.mu.Unlock()
}

func (p *Phases) addBytes(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.bytes += n
	p.mu.Unlock()
}

// Duration returns the time recorded for phase name.
func (p *Phases) Duration(name string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.d[name]
}

// Status returns the last HTTP status code seen (0 over SSH or before any response).
func (p *Phases) Status() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Attrs returns the phases as step attributes "vantage.phase.<name>_ms"
// (float milliseconds), plus http.response.status_code when one was seen.
func (p *Phases) Attrs() []attribute.KeyValue {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]attribute.KeyValue, 0, len(p.order)+1)
	for _, n := range p.order {
		out = append(out, attribute.Float64("vantage.phase."+n+"_ms", float64(p.d[n].Microseconds())/1000))
	}
	if p.status != 0 {
		out = append(out, attribute.Int("http.response.status_code", p.status))
	}
	return out
}
