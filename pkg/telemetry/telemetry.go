// Package telemetry owns Vantage's self-telemetry: named counters that
// the agent's export and the aggregator's ingest increment, exposed in the
// Prometheus text format at /metrics and as OTLP observable counters. It
// holds no package-level state; each binary creates one Registry.
package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Counter is a monotonically increasing count.
type Counter struct {
	name  string // OTLP name, dotted ("vantage.agent.results.spooled")
	help  string
	label attribute.KeyValue // optional single label (export or forward name)
	v     atomic.Int64
}

// Add increases the counter by n (n ≥ 0).
func (c *Counter) Add(n int64) {
	if n > 0 {
		c.v.Add(n)
	}
}

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Value returns the current count.
func (c *Counter) Value() int64 { return c.v.Load() }

// Registry holds a binary's counters.
type Registry struct {
	mu       sync.Mutex
	counters []*Counter
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Counter returns the counter with this name and optional label (key,
// value), creating it on first use. name is the dotted OTLP name.
func (r *Registry) Counter(name, help string, label ...string) *Counter {
	var kv attribute.KeyValue
	if len(label) == 2 {
		kv = attribute.String(label[0], label[1])
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.counters {
		if c.name == name && c.label == kv {
			return c
		}
	}
	c := &Counter{name: name, help: help, label: kv}
	r.counters = append(r.counters, c)
	return c
}

func (r *Registry) snapshot() []*Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := append([]*Counter(nil), r.counters...)
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}

// promName turns "vantage.agent.results.spooled" into
// "vantage_agent_results_spooled_total".
func promName(n string) string { return strings.ReplaceAll(n, ".", "_") + "_total" }

// WriteText writes every counter in the Prometheus text exposition format.
func (r *Registry) WriteText(w interface{ Write([]byte) (int, error) }) error {
	var b strings.Builder
	last := ""
	for _, c := range r.snapshot() {
		pn := promName(c.name)
		if c.name != last {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", pn, c.help, pn)
			last = c.name
		}
		if c.label.Key != "" {
			v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(c.label.Value.AsString())
			fmt.Fprintf(&b, "%s{%s=\"%s\"} %d\n", pn, c.label.Key, v, c.Value())
		} else {
			fmt.Fprintf(&b, "%s %d\n", pn, c.Value())
		}
	}
	_, err := w.Write([]byte(b.String()))
	return err
}

// Handler serves WriteText, for /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = r.WriteText(w)
	})
}

// RegisterOTLP publishes every counter, present and future, as an OTLP
// observable counter of meter (cumulative, read at each collection).
// Counters created after the call are published when they are first
// created under a name already registered; call it after creating the
// counters of every name.
func (r *Registry) RegisterOTLP(meter metric.Meter) error {
	names := map[string]string{}
	for _, c := range r.snapshot() {
		names[c.name] = c.help
	}
	var obs []metric.Observable
	insts := map[string]metric.Int64ObservableCounter{}
	for n, help := range names {
		oc, err := meter.Int64ObservableCounter(n, metric.WithDescription(help))
		if err != nil {
			return fmt.Errorf("telemetry: %s: %w", n, err)
		}
		insts[n] = oc
		obs = append(obs, oc)
	}
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, c := range r.snapshot() {
			if inst, ok := insts[c.name]; ok {
				if c.label.Key != "" {
					o.ObserveInt64(inst, c.Value(), metric.WithAttributes(c.label))
				} else {
					o.ObserveInt64(inst, c.Value())
				}
			}
		}
		return nil
	}, obs...)
	return err
}
