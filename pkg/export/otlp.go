package export

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/spool"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

// OTLPOptions are what an OTLP export needs beyond its config.Export.
type OTLPOptions struct {
	// Agent and Region name this prober in the traces' and metrics'
	// resource (a Result's log record carries its own).
	Agent, Region string
	// Spool is the agent's open spool file; the export uses the queue
	// named after it.
	Spool *spool.DB
	// Telemetry receives the export's counters.
	Telemetry *telemetry.Registry
	// Log receives one line per state change (endpoint down, back up).
	Log *slog.Logger
	// MetricInterval is how often metrics are exported. Default 30s.
	MetricInterval time.Duration
	// InitialBackoff is the first wait after a failed export; it doubles
	// up to the export's max_backoff. Default 250ms.
	InitialBackoff time.Duration
}

// OTLP is the durable OTLP export: Put spools a Result, a drain loop sends
// the spool in batches as OTLP logs and deletes what the receiver
// acknowledged. Traces (one per run, steps as child spans) and metrics go
// out best-effort from memory.
type OTLP struct {
	name    string
	batch   int
	size    int // current batch size: halves on failure, doubles back on success (under pass)
	timeout time.Duration
	backoff [2]time.Duration // initial, max
	queue   *spool.Queue
	logs    sdklog.Exporter
	records *recordBuilder
	log     *slog.Logger

	tp    *sdktrace.TracerProvider
	mp    *sdkmetric.MeterProvider
	inst  instruments
	count struct{ spooled, exported, rejected, evicted, failed *telemetry.Counter }

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	pass   sync.Mutex // one drain pass at a time (loop or Close)

	evictMu   sync.Mutex
	closeOnce sync.Once
	evictSeen int64
}

type instruments struct {
	tracer      trace.Tracer
	runDuration metric.Float64Histogram
	runs        metric.Int64Counter
	stepDur     metric.Float64Histogram
}

// NewOTLP builds an OTLP export from its config and starts its drain loop.
// Close stops it.
func NewOTLP(e *config.Export, o OTLPOptions) (*OTLP, error) {
	if e.Type != "otlp" {
		return nil, fmt.Errorf("export %s: type %q is not otlp", e.Name, e.Type)
	}
	if o.Spool == nil || o.Telemetry == nil {
		return nil, errors.New("export: OTLP needs a spool and a telemetry registry")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MetricInterval <= 0 {
		o.MetricInterval = 30 * time.Second
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = 250 * time.Millisecond
	}
	q, err := o.Spool.Queue(e.Name, spool.Limits{MaxBytes: e.SpoolMaxBytes, MaxAge: e.SpoolMaxAge.D})
	if err != nil {
		return nil, err
	}
	cl, err := newClients(e)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", e.Name, err)
	}
	x := &OTLP{
		name: e.Name, batch: e.BatchSize, size: e.BatchSize, timeout: e.Timeout.D,
		backoff: [2]time.Duration{o.InitialBackoff, max(e.MaxBackoff.D, o.InitialBackoff)},
		queue:   q, logs: cl.logs, records: newRecordBuilder(), log: o.Log.With("export", e.Name),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	label := []string{"export", e.Name}
	reg := o.Telemetry
	x.count.spooled = reg.Counter("vantage.agent.results.spooled", "Results written to the spool.", label...)
	x.count.exported = reg.Counter("vantage.agent.results.exported", "Results acknowledged by the OTLP receiver.", label...)
	x.count.rejected = reg.Counter("vantage.agent.results.rejected", "Results the receiver rejected (partial success) or that could not be encoded; dropped.", label...)
	x.count.evicted = reg.Counter("vantage.agent.results.evicted", "Results evicted from a full or expired spool before export.", label...)
	x.count.failed = reg.Counter("vantage.agent.export.failures", "Export requests that failed and will be retried.", label...)

	res := resource.NewSchemaless(semconv.ServiceName(report.ServiceName),
		semconv.ServiceInstanceID(o.Agent), semconv.CloudRegion(o.Region))
	x.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(cl.traces),
		sdktrace.WithIDGenerator(runIDs{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	x.mp = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(cl.metrics, sdkmetric.WithInterval(o.MetricInterval))))
	if err := x.initInstruments(reg); err != nil {
		x.shutdownSDK(context.Background())
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	go x.drain(ctx)
	x.signal()
	return x, nil
}

func (x *OTLP) initInstruments(reg *telemetry.Registry) error {
	m := x.mp.Meter(report.ScopeName)
	x.inst.tracer = x.tp.Tracer(report.ScopeName)
	var err error
	buckets := metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
	if x.inst.runDuration, err = m.Float64Histogram("vantage.journey.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of journey runs."), buckets); err != nil {
		return err
	}
	if x.inst.runs, err = m.Int64Counter("vantage.journey.runs", metric.WithUnit("{run}"),
		metric.WithDescription("Journey runs by status.")); err != nil {
		return err
	}
	if x.inst.stepDur, err = m.Float64Histogram("vantage.step.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of journey steps."), buckets); err != nil {
		return err
	}
	return reg.RegisterOTLP(m)
}

// Name returns the export's name (its spool queue).
func (x *OTLP) Name() string { return x.name }

// Put writes r to the spool (committed to disk when Put returns nil) and
// wakes the drain loop; it also records r's trace and metrics in memory.
// A Result that cannot be encoded is counted as rejected and returned as
// an error: spooling it would only have the receiver reject it.
func (x *OTLP) Put(ctx context.Context, r report.Result) error {
	b, err := report.MarshalOTLP(r)
	if err != nil {
		x.count.rejected.Inc()
		return fmt.Errorf("export %s: %w", x.name, err)
	}
	n, err := x.queue.Put(b)
	if err != nil {
		return fmt.Errorf("export %s: %w", x.name, err)
	}
	x.count.spooled.Inc()
	x.syncEvicted()
	if n > 0 {
		x.log.Warn("spool full: evicted oldest results", "evicted", n)
	}
	x.signal()
	x.observe(ctx, &r)
	return nil
}

func (x *OTLP) signal() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// observe records r's trace and metrics (best-effort, in memory).
func (x *OTLP) observe(ctx context.Context, r *report.Result) {
	ctx = context.WithoutCancel(ctx)
	common := []attribute.KeyValue{report.KeyJourneyName.String(r.Journey), report.KeyJourneyKind.String(r.Kind),
		report.KeyStatus.String(string(r.Status))}
	if r.ErrorType != "" {
		common = append(common, semconv.ErrorTypeKey.String(string(r.ErrorType)))
	}
	x.inst.runs.Add(ctx, 1, metric.WithAttributes(common...))
	x.inst.runDuration.Record(ctx, r.Duration.Seconds(), metric.WithAttributes(common...))
	for _, s := range r.Steps {
		x.inst.stepDur.Record(ctx, s.Duration.Seconds(), metric.WithAttributes(
			report.KeyJourneyName.String(r.Journey), attribute.String("vantage.step.name", s.Name),
			report.KeyStatus.String(string(s.Status))))
	}
	tid, err := report.TraceIDBytes(r)
	if err != nil || tid == nil {
		return
	}
	var id trace.TraceID
	copy(id[:], tid)
	ctx = context.WithValue(ctx, traceIDKey{}, id)
	attrs := append([]attribute.KeyValue{report.KeyRunID.String(r.ID), report.KeyRunTrigger.String(string(r.Trigger))}, common...)
	attrs = append(attrs, r.Attrs...)
	ctx, root := x.inst.tracer.Start(ctx, "journey "+r.Journey, trace.WithTimestamp(r.Start),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	setStatus(root, r.Status, r.Error)
	for _, s := range r.Steps {
		_, sp := x.inst.tracer.Start(ctx, s.Name, trace.WithTimestamp(s.Start), trace.WithAttributes(s.Attrs...))
		setStatus(sp, s.Status, s.Error)
		if s.ErrorType != "" {
			sp.SetAttributes(semconv.ErrorTypeKey.String(string(s.ErrorType)))
		}
		sp.End(trace.WithTimestamp(s.Start.Add(s.Duration)))
	}
	root.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
}

func setStatus(s trace.Span, st report.Status, msg string) {
	if st != report.StatusPass {
		s.SetStatus(codes.Error, msg)
	}
}

// drain sends the spool until ctx ends, backing off while the endpoint fails.
func (x *OTLP) drain(ctx context.Context) {
	defer close(x.done)
	wait := time.Duration(0)
	down := false
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		} else {
			select {
			case <-ctx.Done():
				return
			case <-x.wake:
			}
		}
		for {
			more, err := x.sendBatch(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				x.count.failed.Inc()
				if !down {
					x.log.Warn("OTLP export failing; results stay in the spool", "err", err)
					down = true
				}
				wait = min(max(2*wait, x.backoff[0]), x.backoff[1])
				break
			}
			if down {
				x.log.Info("OTLP export recovered; draining the spool", "backlog", x.queue.Stats().Entries)
				down = false
			}
			wait = 0
			if !more {
				break
			}
		}
	}
}

// maxBatchBytes caps the spooled bytes of one batch, well under the
// exporters' request limit.
const maxBatchBytes = maxRequestBytes / 2

// sendBatch exports the oldest batch and acknowledges it. It reports
// whether more entries may be waiting. A failed export halves the next
// batch (down to one Result), so that a request the receiver refuses as too
// large, or one poisoned record, cannot block the spool; each success
// doubles it back up to batch_size.
func (x *OTLP) sendBatch(ctx context.Context) (more bool, err error) {
	x.pass.Lock()
	defer x.pass.Unlock()
	want := x.size
	entries, err := x.queue.Peek(want)
	if err != nil {
		return false, err
	}
	x.syncEvicted()
	if len(entries) == 0 {
		return false, nil
	}
	more = len(entries) == want
	total := 0
	for i, en := range entries {
		total += len(en.Data)
		if i > 0 && total > maxBatchBytes {
			entries, more = entries[:i], true
			break
		}
	}
	defer func() {
		if err != nil {
			x.size = max(1, x.size/2)
		} else {
			x.size = min(x.batch, 2*x.size)
		}
	}()
	seqs := make([]uint64, 0, len(entries))
	recs := make([]sdklog.Record, 0, len(entries))
	var bad []uint64
	for _, en := range entries {
		r, err := report.UnmarshalOTLP(en.Data)
		if err != nil {
			// A corrupt or outdated entry: it can never be sent.
			x.log.Error("dropping undecodable spool entry", "seq", en.Seq, "err", err)
			bad = append(bad, en.Seq)
			continue
		}
		rec, err := x.records.build(&r)
		if err != nil {
			x.log.Error("dropping result the SDK cannot carry", "id", r.ID, "err", err)
			bad = append(bad, en.Seq)
			continue
		}
		seqs = append(seqs, en.Seq)
		recs = append(recs, rec)
	}
	if len(bad) > 0 {
		x.count.rejected.Add(int64(len(bad)))
		if err := x.queue.Ack(bad...); err != nil {
			return false, err
		}
	}
	if len(recs) > 0 {
		ectx, cancel := context.WithTimeout(ctx, x.timeout)
		err = x.logs.Export(ectx, recs)
		cancel()
		rejected, ok := partialSuccess(err)
		if err != nil && !ok {
			return false, err
		}
		if rejected > 0 {
			x.log.Warn("receiver rejected results; dropped", "rejected", rejected, "err", err)
		}
		if err := x.queue.Ack(seqs...); err != nil {
			return false, err
		}
		rejected = min(rejected, int64(len(recs)))
		x.count.rejected.Add(rejected)
		x.count.exported.Add(int64(len(recs)) - rejected)
	}
	return more, nil
}

// syncEvicted adds the spool's evictions (by Put for space, by Peek for
// age) not yet counted.
func (x *OTLP) syncEvicted() {
	x.evictMu.Lock()
	defer x.evictMu.Unlock()
	cur := x.queue.Stats().Evicted
	x.count.evicted.Add(cur - x.evictSeen)
	x.evictSeen = cur
}

// partialSuccess reports whether err is made only of OTLP partial-success
// errors (the request was accepted, some records rejected) and how many
// records were rejected. The exporters return partial success as an
// internal type (internal.PartialSuccess with RejectedItems) joined into
// the error; it is recognised by its type name and field, not its text.
func partialSuccess(err error) (rejected int64, ok bool) {
	if err == nil {
		return 0, true
	}
	ok = true
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if j, isJoin := e.(interface{ Unwrap() []error }); isJoin {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		v := reflect.ValueOf(e)
		if v.Kind() == reflect.Struct && v.Type().Name() == "PartialSuccess" {
			if f := v.FieldByName("RejectedItems"); f.IsValid() && f.CanInt() {
				rejected += f.Int()
				return
			}
		}
		ok = false
	}
	walk(err)
	return rejected, ok
}

// Stats returns the export's spool snapshot.
func (x *OTLP) Stats() spool.Stats { return x.queue.Stats() }

// Close stops the drain loop, makes one last attempt (within ctx) to send
// what is spooled, and flushes traces and metrics. Results left in the
// spool are sent after the next start. It does not close the spool file
// (shared by every export); a second Close returns an error.
func (x *OTLP) Close(ctx context.Context) error {
	err := errors.New("export: already closed")
	x.closeOnce.Do(func() { err = x.close(ctx) })
	return err
}

func (x *OTLP) close(ctx context.Context) error {
	x.cancel()
	<-x.done
	for ctx.Err() == nil {
		more, err := x.sendBatch(ctx)
		if err != nil || !more {
			break
		}
	}
	return x.shutdownSDK(ctx)
}

func (x *OTLP) shutdownSDK(ctx context.Context) error {
	return errors.Join(x.tp.Shutdown(ctx), x.mp.Shutdown(ctx), x.logs.Shutdown(ctx), x.records.shutdown(ctx))
}

// recordBuilder turns Results into SDK log records. The SDK only makes
// records inside a Logger, so it emits through a LoggerProvider per
// resource (agent, region) whose processor captures the record.
type recordBuilder struct {
	providers map[[2]string]*sdklog.LoggerProvider
	capture   *captureProcessor
}

// maxProviders bounds the cached providers (an agent has one resource;
// more appear only when a spool outlives a rename).
const maxProviders = 8

func newRecordBuilder() *recordBuilder {
	return &recordBuilder{providers: map[[2]string]*sdklog.LoggerProvider{}, capture: &captureProcessor{}}
}

func (b *recordBuilder) build(r *report.Result) (sdklog.Record, error) {
	attrs, err := report.RecordAttributes(r)
	if err != nil {
		return sdklog.Record{}, err
	}
	tid, err := report.TraceIDBytes(r)
	if err != nil {
		return sdklog.Record{}, err
	}
	key := [2]string{r.Agent, r.Region}
	p, ok := b.providers[key]
	if !ok {
		if len(b.providers) >= maxProviders {
			_ = b.shutdown(context.Background())
		}
		p = sdklog.NewLoggerProvider(
			sdklog.WithResource(resource.NewSchemaless(report.ResourceAttributes(r)...)),
			sdklog.WithProcessor(b.capture),
			sdklog.WithAttributeCountLimit(-1),
			sdklog.WithAttributeValueLengthLimit(-1),
			sdklog.WithAllowKeyDuplication(),
		)
		b.providers[key] = p
	}
	var rec otellog.Record
	rec.SetEventName(report.EventName)
	rec.SetTimestamp(r.Start)
	rec.SetObservedTimestamp(r.Start.Add(r.Duration))
	sev, text := report.Severity(r.Status)
	rec.SetSeverity(otellog.Severity(sev))
	rec.SetSeverityText(text)
	if r.Error != "" {
		rec.SetBody(attribute.StringValue(r.Error))
	}
	rec.AddAttributes(attrs...)
	ctx := context.Background()
	if tid != nil {
		var id trace.TraceID
		copy(id[:], tid)
		ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: id}))
	}
	b.capture.got = nil
	p.Logger(report.ScopeName).Emit(ctx, rec)
	if b.capture.got == nil {
		return sdklog.Record{}, errors.New("the log SDK did not emit the record")
	}
	return *b.capture.got, nil
}

func (b *recordBuilder) shutdown(ctx context.Context) error {
	var errs []error
	for k, p := range b.providers {
		errs = append(errs, p.Shutdown(ctx))
		delete(b.providers, k)
	}
	return errors.Join(errs...)
}

// captureProcessor keeps the last record emitted. recordBuilder is used
// by one drain pass at a time (OTLP.pass), so no lock is needed.
type captureProcessor struct{ got *sdklog.Record }

func (c *captureProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (c *captureProcessor) OnEmit(_ context.Context, r *sdklog.Record) error {
	cl := r.Clone()
	c.got = &cl
	return nil
}
func (c *captureProcessor) Shutdown(context.Context) error   { return nil }
func (c *captureProcessor) ForceFlush(context.Context) error { return nil }

// runIDs gives a run's root span the Result's trace ID (carried in the
// context), so that the trace an alert links to is the one exported.
type runIDs struct{}

type traceIDKey struct{}

func (runIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	tid, _ := ctx.Value(traceIDKey{}).(trace.TraceID)
	if !tid.IsValid() {
		_, _ = rand.Read(tid[:])
	}
	return tid, newSpanID()
}

func (runIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var s trace.SpanID
	for !s.IsValid() {
		_, _ = rand.Read(s[:])
	}
	return s
}
