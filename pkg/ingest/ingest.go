// Package ingest owns the aggregator's OTLP receiver: gRPC and HTTP
// (protobuf and JSON, gzip) for logs, traces and metrics, with request size
// limits and an optional bearer token. Result records are decoded with
// pkg/report; invalid ones are answered with partial success and change no
// state; valid ones are deduplicated by ID (Dedup, persisted in bbolt) and
// handed once to a Sink. Everything received may be forwarded downstream.
// It does not judge Results: that is the verdict engine's job, behind Sink.
package ingest

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // gzip-compressed OTLP/gRPC requests
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

// Options configure a Receiver.
type Options struct {
	// MaxRequestBytes bounds one request after decompression.
	MaxRequestBytes int
	// BearerToken, when not empty, is required on every request.
	BearerToken string
	// Dedup is the window of seen Result IDs. Required.
	Dedup *Dedup
	// Sink receives each new Result once. Required.
	Sink Sink
	// Forward lists downstream forwarders (may be empty).
	Forward []*Forwarder
	// Telemetry receives the receiver's counters. Required.
	Telemetry *telemetry.Registry
	// Log receives rejected-request lines.
	Log *slog.Logger
	// TLS, when set, serves both transports over TLS (see ServerTLS).
	TLS *tls.Config
}

// Receiver handles OTLP export requests.
type Receiver struct {
	o     Options
	count struct {
		received, invalid, duplicates, refused, logs, spans, points, badRequests *telemetry.Counter
	}
}

// maxRejectReasons bounds the reasons quoted in a partial-success message.
const maxRejectReasons = 3

// New returns a Receiver.
func New(o Options) (*Receiver, error) {
	if o.Dedup == nil || o.Sink == nil || o.Telemetry == nil {
		return nil, errors.New("ingest: Dedup, Sink and Telemetry are required")
	}
	if o.MaxRequestBytes <= 0 {
		return nil, errors.New("ingest: MaxRequestBytes must be positive")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{o: o}
	reg := o.Telemetry
	r.count.received = reg.Counter("vantage.aggregator.results.received", "Valid Result records received (duplicates included).")
	r.count.invalid = reg.Counter("vantage.aggregator.results.invalid", "Result records rejected as malformed (partial success).")
	r.count.duplicates = reg.Counter("vantage.aggregator.results.duplicates", "Results dropped because their ID was seen within the dedup window.")
	r.count.refused = reg.Counter("vantage.aggregator.results.refused", "New Results the sink (verdict engine) refused, e.g. a skewed clock.")
	r.count.logs = reg.Counter("vantage.aggregator.logs.received", "Log records received, results included.")
	r.count.spans = reg.Counter("vantage.aggregator.spans.received", "Spans received.")
	r.count.points = reg.Counter("vantage.aggregator.metrics.received", "Metric data streams received.")
	r.count.badRequests = reg.Counter("vantage.aggregator.requests.rejected", "Requests rejected whole (undecodable, too large, unauthorized).")
	return r, nil
}

// errUnavailable marks failures the sender should retry (the dedup window
// could not be written).
var errUnavailable = errors.New("ingest temporarily unavailable")

// ExportLogs handles one logs request: it is the core both transports call.
func (r *Receiver) ExportLogs(req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	var valid []report.Result
	var rejected, logs int64
	var reasons []string
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				logs++
				if !report.IsResult(lr) {
					continue
				}
				res, err := report.DecodeOTLP(rl.GetResource(), lr)
				if err != nil {
					rejected++
					if len(reasons) < maxRejectReasons {
						reasons = append(reasons, err.Error())
					}
					continue
				}
				valid = append(valid, res)
			}
		}
	}
	fresh, err := r.o.Dedup.Admit(valid)
	if err != nil {
		r.o.Log.Error("dedup window cannot be written; asking senders to retry", "err", err)
		return nil, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	r.count.logs.Add(logs)
	r.count.received.Add(int64(len(valid)))
	r.count.invalid.Add(rejected)
	r.count.duplicates.Add(int64(len(valid) - len(fresh)))
	var refused int64
	if bs, ok := r.o.Sink.(BatchSink); ok && len(fresh) > 0 {
		for _, err := range bs.AcceptBatch(fresh) {
			if err != nil {
				refused++
			}
		}
	} else {
		for _, res := range fresh {
			if err := r.o.Sink.Accept(res); err != nil {
				refused++
			}
		}
	}
	r.count.refused.Add(refused)
	r.forward(req)
	resp := &collogspb.ExportLogsServiceResponse{}
	if rejected > 0 {
		msg := fmt.Sprintf("%d invalid vantage.journey.result record(s): %s", rejected, strings.Join(reasons, "; "))
		r.o.Log.Warn("rejected result records", "rejected", rejected, "reason", reasons[0])
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: rejected, ErrorMessage: msg}
	}
	return resp, nil
}

// ExportTraces counts and forwards a traces request.
func (r *Receiver) ExportTraces(req *coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTraceServiceResponse {
	var n int64
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += int64(len(ss.GetSpans()))
		}
	}
	r.count.spans.Add(n)
	r.forward(req)
	return &coltracepb.ExportTraceServiceResponse{}
}

// ExportMetrics counts and forwards a metrics request.
func (r *Receiver) ExportMetrics(req *colmetricspb.ExportMetricsServiceRequest) *colmetricspb.ExportMetricsServiceResponse {
	var n int64
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			n += int64(len(sm.GetMetrics()))
		}
	}
	r.count.points.Add(n)
	r.forward(req)
	return &colmetricspb.ExportMetricsServiceResponse{}
}

func (r *Receiver) forward(m proto.Message) {
	for _, f := range r.o.Forward {
		f.Enqueue(m)
	}
}

// authorized checks a presented "Authorization" value in constant time.
func (r *Receiver) authorized(auth string) bool {
	if r.o.BearerToken == "" {
		return true
	}
	want := "Bearer " + r.o.BearerToken
	return subtle.ConstantTimeCompare([]byte(auth), []byte(want)) == 1
}

// GRPCServer returns a gRPC server with the three OTLP services, the size
// limit, the token check and connection deadlines.
func (r *Receiver) GRPCServer() *grpc.Server {
	var creds []grpc.ServerOption
	if r.o.TLS != nil {
		creds = append(creds, grpc.Creds(credentials.NewTLS(r.o.TLS)))
	}
	s := grpc.NewServer(append(creds,
		grpc.MaxRecvMsgSize(r.o.MaxRequestBytes),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			if !r.authorized(strings.Join(md.Get("authorization"), "")) {
				r.count.badRequests.Inc()
				return nil, status.Error(codes.Unauthenticated, "missing or wrong bearer token")
			}
			return h(ctx, req)
		}),
	)...)
	collogspb.RegisterLogsServiceServer(s, grpcLogs{r: r})
	coltracepb.RegisterTraceServiceServer(s, grpcTraces{r: r})
	colmetricspb.RegisterMetricsServiceServer(s, grpcMetrics{r: r})
	return s
}

type grpcLogs struct {
	collogspb.UnimplementedLogsServiceServer
	r *Receiver
}

func (g grpcLogs) Export(_ context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	resp, err := g.r.ExportLogs(req)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return resp, nil
}

type grpcTraces struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (g grpcTraces) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	return g.r.ExportTraces(req), nil
}

type grpcMetrics struct {
	colmetricspb.UnimplementedMetricsServiceServer
	r *Receiver
}

func (g grpcMetrics) Export(_ context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	return g.r.ExportMetrics(req), nil
}

// ServeGRPC serves OTLP/gRPC on ln until ctx ends.
func (r *Receiver) ServeGRPC(ctx context.Context, ln net.Listener) error {
	s := r.GRPCServer()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		t := time.AfterFunc(5*time.Second, s.Stop)
		s.GracefulStop()
		t.Stop()
		err = <-errc
	}
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}
