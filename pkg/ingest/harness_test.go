package ingest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/export"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/spool"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

func TestMain(m *testing.M) {
	if childMain() {
		return
	}
	goleak.VerifyTestMain(m)
}

// aggregator is a real receiver on loopback: gRPC and HTTP listeners, the
// dedup window in dir, a Store as the sink.
type aggregator struct {
	dir      string
	grpcAddr string
	httpAddr string
	token    string
	recv     *Receiver
	store    *Store
	reg      *telemetry.Registry
	dedup    *Dedup
	forward  []*Forwarder
	tls      *tls.Config
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func startAggregator(t *testing.T, dir string, grpcAddr, httpAddr string) *aggregator {
	t.Helper()
	a := &aggregator{dir: dir, reg: telemetry.NewRegistry(), store: NewStore(100000)}
	a.start(t, grpcAddr, httpAddr)
	t.Cleanup(a.stop)
	return a
}

func (a *aggregator) start(t testing.TB, grpcAddr, httpAddr string) {
	t.Helper()
	if grpcAddr == "" {
		grpcAddr = "127.0.0.1:0"
	}
	if httpAddr == "" {
		httpAddr = "127.0.0.1:0"
	}
	var err error
	a.dedup, err = OpenDedup(a.dir, time.Hour, 1_000_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.recv, err = New(Options{MaxRequestBytes: 4 << 20, BearerToken: a.token, Dedup: a.dedup, Sink: a.store, Telemetry: a.reg, Forward: a.forward, TLS: a.tls})
	if err != nil {
		t.Fatal(err)
	}
	gl := listen(t, grpcAddr)
	hl := listen(t, httpAddr)
	a.grpcAddr, a.httpAddr = gl.Addr().String(), hl.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	for _, f := range a.forward {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); f.Run(ctx) }()
	}
	a.wg.Add(2)
	go func() { defer a.wg.Done(); _ = a.recv.ServeGRPC(ctx, gl) }()
	go func() { defer a.wg.Done(); _ = a.recv.ServeHTTP(ctx, hl) }()
}

// listen retries briefly: a just-closed port can take a moment to free.
func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("listen %s: %v", addr, err)
	return nil
}

func (a *aggregator) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.wg.Wait()
	a.dedup.Close()
	a.cancel = nil
}

// restart stops the aggregator and starts it again on the same ports with
// the same data dir and a fresh in-memory store.
func (a *aggregator) restart(t *testing.T) {
	a.stop()
	a.store = NewStore(100000)
	a.start(t, a.grpcAddr, a.httpAddr)
}

func (a *aggregator) counter(name string) int64 {
	return a.reg.Counter(name, "").Value()
}

// waitFor polls cond (no wall-clock assertion: the deadline only stops a
// broken test from hanging).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// agent is a prober's OTLP export with its own spool.
type agent struct {
	db  *spool.DB
	exp *export.OTLP
	reg *telemetry.Registry
}

func exportConfig(endpoint, protocol string) *config.Export {
	return &config.Export{Type: "otlp", Name: "otlp-0", Endpoint: endpoint, Protocol: protocol,
		TLS: config.ExportTLS{Insecure: true}, SpoolMaxBytes: 64 << 20, SpoolMaxAge: config.Dur(time.Hour),
		BatchSize: 64, Timeout: config.Dur(2 * time.Second), MaxBackoff: config.Dur(200 * time.Millisecond)}
}

func startAgent(t *testing.T, dir string, e *config.Export) *agent {
	t.Helper()
	ag, err := newAgent(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ag.close)
	return ag
}

func newAgent(dir string, e *config.Export) (*agent, error) {
	db, err := spool.Open(dir)
	if err != nil {
		return nil, err
	}
	reg := telemetry.NewRegistry()
	exp, err := export.NewOTLP(e, export.OTLPOptions{Agent: "eu-1", Region: "eu-west", Spool: db, Telemetry: reg,
		MetricInterval: 100 * time.Millisecond, InitialBackoff: 20 * time.Millisecond})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &agent{db: db, exp: exp, reg: reg}, nil
}

func childAgent(dir, endpoint string) (*agent, error) {
	return newAgent(dir, exportConfig(endpoint, "grpc"))
}

func (ag *agent) close() {
	if ag.exp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ag.exp.Close(ctx)
	ag.db.Close()
	ag.exp = nil
}

func (ag *agent) counter(name string) int64 {
	return ag.reg.Counter(name, "", "export", "otlp-0").Value()
}

// run returns a distinct valid Result: journey i, so that each is its own
// series in the Store.
func run(i int, region string) report.Result {
	slot := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r := report.Result{Journey: fmt.Sprintf("journey-%04d", i), Kind: "http", Region: region, Agent: "eu-1",
		Slot: slot, Trigger: report.TriggerSchedule, Start: slot.Add(time.Millisecond), Duration: 42 * time.Millisecond,
		Status: report.StatusPass, TraceID: fmt.Sprintf("%032x", i+1),
		Steps: []report.Step{{Name: "get", Start: slot.Add(time.Millisecond), Duration: 40 * time.Millisecond, Status: report.StatusPass}}}
	r.ID = report.ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
	return r
}
