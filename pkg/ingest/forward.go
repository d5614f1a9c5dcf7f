package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

// Forwarder sends what the aggregator receives to one downstream OTLP
// endpoint. Enqueue never blocks: requests wait in a bounded queue and
// are dropped (counted) when it is full, so a slow or dead downstream
// cannot slow ingest. Forwarding is best-effort: a failed send is counted
// and not retried.
type Forwarder struct {
	name    string
	q       chan proto.Message
	send    func(context.Context, proto.Message) error
	timeout time.Duration
	close   func() error
	log     *slog.Logger
	dropped *telemetry.Counter
	sent    *telemetry.Counter
	failed  *telemetry.Counter
	done    chan struct{}
}

// NewForwarder connects (lazily) to f's endpoint. Start its loop with Run.
func NewForwarder(f *config.Forward, reg *telemetry.Registry, log *slog.Logger) (*Forwarder, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fw := &Forwarder{
		name: f.Name, q: make(chan proto.Message, f.QueueSize), timeout: f.Timeout.D,
		log:     log.With("forward", f.Name),
		dropped: reg.Counter("vantage.aggregator.forward.dropped", "Requests dropped because a forward queue was full.", "forward", f.Name),
		sent:    reg.Counter("vantage.aggregator.forward.sent", "Requests forwarded downstream.", "forward", f.Name),
		failed:  reg.Counter("vantage.aggregator.forward.failed", "Forwarded requests the downstream did not accept.", "forward", f.Name),
		done:    make(chan struct{}),
	}
	switch f.Protocol {
	case "grpc":
		creds := insecure.NewCredentials()
		if !f.Insecure {
			creds = credentials.NewClientTLSFromCert(nil, "")
		}
		conn, err := grpc.NewClient(f.Endpoint, grpc.WithTransportCredentials(creds))
		if err != nil {
			return nil, fmt.Errorf("forward %s: %w", f.Name, err)
		}
		md := metadata.New(f.Headers)
		logs, traces, metrics := collogspb.NewLogsServiceClient(conn), coltracepb.NewTraceServiceClient(conn), colmetricspb.NewMetricsServiceClient(conn)
		fw.close = conn.Close
		fw.send = func(ctx context.Context, m proto.Message) error {
			ctx = metadata.NewOutgoingContext(ctx, md)
			var err error
			switch req := m.(type) {
			case *collogspb.ExportLogsServiceRequest:
				_, err = logs.Export(ctx, req)
			case *coltracepb.ExportTraceServiceRequest:
				_, err = traces.Export(ctx, req)
			case *colmetricspb.ExportMetricsServiceRequest:
				_, err = metrics.Export(ctx, req)
			}
			return err
		}
	case "http":
		scheme := "https"
		if f.Insecure {
			scheme = "http"
		}
		client := &http.Client{Timeout: f.Timeout.D}
		fw.close = func() error { client.CloseIdleConnections(); return nil }
		fw.send = func(ctx context.Context, m proto.Message) error {
			path := "/v1/logs"
			switch m.(type) {
			case *coltracepb.ExportTraceServiceRequest:
				path = "/v1/traces"
			case *colmetricspb.ExportMetricsServiceRequest:
				path = "/v1/metrics"
			}
			body, err := proto.Marshal(m)
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+f.Endpoint+path, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/x-protobuf")
			for k, v := range f.Headers {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("downstream answered %s", resp.Status)
			}
			return nil
		}
	default:
		return nil, fmt.Errorf("forward %s: unknown protocol %q", f.Name, f.Protocol)
	}
	return fw, nil
}

// Enqueue queues m for the downstream, or drops it (counted) when the
// queue is full.
func (f *Forwarder) Enqueue(m proto.Message) {
	select {
	case f.q <- m:
	default:
		f.dropped.Inc()
	}
}

// Run sends queued requests until ctx ends, then closes the connection.
func (f *Forwarder) Run(ctx context.Context) {
	defer close(f.done)
	defer f.close()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-f.q:
			sctx, cancel := context.WithTimeout(ctx, f.timeout)
			err := f.send(sctx, m)
			cancel()
			if err != nil {
				f.failed.Inc()
				f.log.Debug("forward failed", "err", err)
				continue
			}
			f.sent.Inc()
		}
	}
}

// Done is closed when Run has returned.
func (f *Forwarder) Done() <-chan struct{} { return f.done }
