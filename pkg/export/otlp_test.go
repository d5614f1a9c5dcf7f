package export

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab/labtest"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/report/reporttest"
	"github.com/vantage-fleet/vantage/pkg/spool"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rejectingReceiver is a real OTLP/gRPC logs server that rejects the first
// record of every request (partial success) and records what it saw.
type rejectingReceiver struct {
	collogspb.UnimplementedLogsServiceServer
	mu       sync.Mutex
	requests int
	records  int
	auth     []string
}

func (s *rejectingReceiver) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.auth = append(s.auth, md.Get("authorization")...)
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			s.records += len(sl.LogRecords)
		}
	}
	return &collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{
		RejectedLogRecords: 1, ErrorMessage: "first record is bad"}}, nil
}

func serve(t *testing.T, impl collogspb.LogsServiceServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	collogspb.RegisterLogsServiceServer(s, impl)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ln.Addr().String()
}

func result(i int) report.Result {
	slot := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r := report.Result{Journey: fmt.Sprint("j", i), Kind: "http", Region: "eu", Agent: "eu-1", Slot: slot,
		Trigger: report.TriggerSchedule, Start: slot, Duration: time.Millisecond, Status: report.StatusPass}
	r.ID = report.ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
	return r
}

func newExport(t *testing.T, endpoint string, batch int) (*OTLP, *telemetry.Registry) {
	t.Helper()
	db, err := spool.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := telemetry.NewRegistry()
	e := &config.Export{Type: "otlp", Name: "otlp-0", Endpoint: endpoint, Protocol: "grpc",
		TLS: config.ExportTLS{Insecure: true}, SpoolMaxBytes: 1 << 20, SpoolMaxAge: config.Dur(time.Hour),
		BatchSize: batch, Timeout: config.Dur(time.Second), MaxBackoff: config.Dur(100 * time.Millisecond),
		BearerToken: config.SecretValue("env:T", "canary-bearer")}
	x, err := NewOTLP(e, OTLPOptions{Agent: "eu-1", Region: "eu", Spool: db, Telemetry: reg, InitialBackoff: 10 * time.Millisecond})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		x.Close(ctx)
		db.Close()
	})
	return x, reg
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOTLP_PartialSuccess_RejectedAreDroppedAndCounted_NotRetried(t *testing.T) {
	recv := &rejectingReceiver{}
	x, reg := newExport(t, serve(t, recv), 10)
	for i := 0; i < 10; i++ {
		if err := x.Put(context.Background(), result(i)); err != nil {
			t.Fatal(err)
		}
	}
	c := func(n string) int64 { return reg.Counter(n, "", "export", "otlp-0").Value() }
	waitFor(t, "the spool to empty", func() bool {
		return x.Stats().Entries == 0 && c("vantage.agent.results.exported")+c("vantage.agent.results.rejected") == 10
	})
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.records != 10 {
		t.Fatalf("receiver saw %d records in %d requests, want each of the 10 once", recv.records, recv.requests)
	}
	if got := c("vantage.agent.results.rejected"); got != int64(recv.requests) {
		t.Fatalf("rejected = %d, want one per request (%d)", got, recv.requests)
	}
	for _, a := range recv.auth {
		if a != "Bearer canary-bearer" {
			t.Fatalf("authorization header %q", a)
		}
	}
}

// flakyReceiver fails the first n requests.
type flakyReceiver struct {
	collogspb.UnimplementedLogsServiceServer
	fail    atomic.Int32
	records atomic.Int32
}

func (s *flakyReceiver) Export(_ context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	if s.fail.Add(-1) >= 0 {
		return nil, errors.New("temporarily broken")
	}
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			s.records.Add(int32(len(sl.LogRecords)))
		}
	}
	return &collogspb.ExportLogsServiceResponse{}, nil
}

func TestOTLP_FailingEndpoint_BacksOffThenDrainsInBatches(t *testing.T) {
	recv := &flakyReceiver{}
	recv.fail.Store(3)
	x, reg := newExport(t, serve(t, recv), 4)
	for i := 0; i < 10; i++ {
		x.Put(context.Background(), result(i))
	}
	waitFor(t, "the backlog", func() bool { return recv.records.Load() == 10 && x.Stats().Entries == 0 })
	if f := reg.Counter("vantage.agent.export.failures", "", "export", "otlp-0").Value(); f != 3 {
		t.Fatalf("failures = %d, want 3", f)
	}
}

func TestPartialSuccess_OtherErrorsAreFailures(t *testing.T) {
	if _, ok := partialSuccess(errors.New("connection refused")); ok {
		t.Fatal("a plain error counted as partial success")
	}
	if n, ok := partialSuccess(nil); !ok || n != 0 {
		t.Fatal("nil is success")
	}
}

func TestOTLP_PutOfUnencodableResult_IsRejectedNotSpooled(t *testing.T) {
	x, reg := newExport(t, "127.0.0.1:1", 10)
	r := result(1)
	r.Status = "bogus"
	if err := x.Put(context.Background(), r); err == nil {
		t.Fatal("Put accepted an invalid result")
	}
	if x.Stats().Entries != 0 || reg.Counter("vantage.agent.results.rejected", "", "export", "otlp-0").Value() != 1 {
		t.Fatal("invalid result spooled or not counted")
	}
}

// refusingReceiver answers every request Unauthenticated.
type refusingReceiver struct {
	collogspb.UnimplementedLogsServiceServer
	calls atomic.Int32
}

func (s *refusingReceiver) Export(context.Context, *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	s.calls.Add(1)
	return nil, status.Error(codes.Unauthenticated, "wrong token")
}

func TestOTLP_BearerTokenNeverReachesLogsOrErrors(t *testing.T) {
	recv := &refusingReceiver{}
	addr := serve(t, recv)
	var buf labtest.Buffer
	db, err := spool.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e := &config.Export{Type: "otlp", Name: "otlp-0", Endpoint: addr, Protocol: "grpc", TLS: config.ExportTLS{Insecure: true},
		SpoolMaxBytes: 1 << 20, BatchSize: 10, Timeout: config.Dur(time.Second), MaxBackoff: config.Dur(50 * time.Millisecond),
		BearerToken: config.SecretValue("env:T", "canary-S3cr3t-token")}
	x, err := NewOTLP(e, OTLPOptions{Agent: "a", Region: "r", Spool: db, Telemetry: telemetry.NewRegistry(),
		Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), InitialBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	x.Put(context.Background(), result(1))
	waitFor(t, "refused attempts", func() bool { return recv.calls.Load() >= 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	closeErr := x.Close(ctx)
	out := buf.String()
	if !strings.Contains(out, "OTLP export failing") {
		t.Fatalf("no failure logged:\n%s", out)
	}
	if strings.Contains(out, "canary-S3cr3t-token") || (closeErr != nil && strings.Contains(closeErr.Error(), "canary-S3cr3t-token")) {
		t.Fatal("the bearer token leaked into a log line or error")
	}
}

// traceReceiver records every span it is sent.
type traceReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (s *traceReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			s.spans = append(s.spans, ss.Spans...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func TestOTLP_OneTracePerRun_WithTheResultsTraceID_StepsAsTimedChildSpans(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &traceReceiver{}
	s := grpc.NewServer()
	collogspb.RegisterLogsServiceServer(s, &flakyReceiver{})
	coltracepb.RegisterTraceServiceServer(s, tr)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })

	x, _ := newExport(t, ln.Addr().String(), 10)
	r := reporttest.Full()
	if err := x.Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := x.Close(ctx); err != nil { // flushes the spans
		t.Logf("close: %v", err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.spans) != 1+len(r.Steps) {
		t.Fatalf("%d spans, want root + %d steps", len(tr.spans), len(r.Steps))
	}
	byName := map[string]*tracepb.Span{}
	for _, sp := range tr.spans {
		if hex.EncodeToString(sp.TraceId) != r.TraceID {
			t.Fatalf("span %s in trace %x, want %s", sp.Name, sp.TraceId, r.TraceID)
		}
		byName[sp.Name] = sp
	}
	root := byName["journey "+r.Journey]
	if root == nil || len(root.ParentSpanId) != 0 || root.StartTimeUnixNano != uint64(r.Start.UnixNano()) ||
		root.EndTimeUnixNano != uint64(r.Start.Add(r.Duration).UnixNano()) {
		t.Fatalf("root span %v", root)
	}
	for _, st := range r.Steps {
		sp := byName[st.Name]
		if sp == nil || !bytes.Equal(sp.ParentSpanId, root.SpanId) || sp.StartTimeUnixNano != uint64(st.Start.UnixNano()) ||
			sp.EndTimeUnixNano != uint64(st.Start.Add(st.Duration).UnixNano()) {
			t.Fatalf("step span %s: %v", st.Name, sp)
		}
		if (st.Status == report.StatusFail) != (sp.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR) {
			t.Fatalf("step %s status %v", st.Name, sp.Status)
		}
	}
}

// smallReceiver refuses requests of more than 3 records, as a receiver
// with a small size limit does.
type smallReceiver struct {
	collogspb.UnimplementedLogsServiceServer
	records atomic.Int32
}

func (s *smallReceiver) Export(_ context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	n := 0
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			n += len(sl.LogRecords)
		}
	}
	if n > 3 {
		return nil, status.Error(codes.ResourceExhausted, "request too large")
	}
	s.records.Add(int32(n))
	return &collogspb.ExportLogsServiceResponse{}, nil
}

func TestOTLP_ReceiverRefusingLargeBatches_SmallerBatchesStillDrain(t *testing.T) {
	recv := &smallReceiver{}
	x, _ := newExport(t, serve(t, recv), 16)
	for i := 0; i < 20; i++ {
		x.Put(context.Background(), result(i))
	}
	waitFor(t, "the spool to drain in smaller batches", func() bool { return recv.records.Load() == 20 && x.Stats().Entries == 0 })
}
