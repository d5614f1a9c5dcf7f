package alert

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/status"
	"github.com/vantage-fleet/vantage/pkg/verdict"
)

// Options configure an Engine.
type Options struct {
	// DataDir holds alerts.db (verdict state, alerts, notification log).
	DataDir string
	// Verdict holds the thresholds (verdict.FromConfig(cfg.Verdict)).
	Verdict verdict.Config
	// Alerts is the [alerts] section; its sinks are built unless Sinks is set.
	Alerts config.Alerts
	// Sinks, when non-nil, replaces the sinks built from Alerts.Sink.
	Sinks []Sink
	// Redactor masks the config's secrets in every alert.
	Redactor *report.Redactor
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives one line per delivery failure (slog.Default when nil).
	Logger *slog.Logger
	// HTTPClient is used by the sinks (a client without timeout is fine:
	// every sink puts its own timeout on the request).
	HTTPClient *http.Client
	// RetryBase is the first retry backoff (1s when zero).
	RetryBase time.Duration
}

// Engine is the façade the aggregator calls: it feeds Results and
// membership into the verdict tracker, turns condition changes into
// alerts, persists everything, and hands notifications to the sink
// pipeline. It is safe for concurrent use. It implements status.Provider.
type Engine struct {
	mu        sync.Mutex
	tr        *verdict.Tracker
	store     *Store
	pipe      *pipeline
	alerts    map[string]Alert
	red       *report.Redactor
	runbook   string
	resend    time.Duration
	now       func() time.Time
	latency   status.Histogram
	dirty     bool
	lastSave  time.Time
	lastSend  time.Time
	cancel    context.CancelFunc
	log       *slog.Logger
	closeOnce sync.Once
}

// Open opens the durable state under opts.DataDir, restores verdicts and
// alerts, and starts one delivery goroutine per sink; they stop when ctx
// ends or Close is called. Pending notifications (a resolution that was not
// delivered before a restart) are sent at the first Tick.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Second
	}
	if opts.Redactor == nil {
		opts.Redactor = report.NewRedactor()
	}
	resend := opts.Alerts.ResendInterval.D
	if resend <= 0 {
		resend = time.Minute
	}
	specs, err := buildSinks(opts, resend)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(opts.DataDir)
	if err != nil {
		return nil, err
	}
	e := &Engine{tr: verdict.New(opts.Verdict), store: store, alerts: map[string]Alert{}, red: opts.Redactor,
		runbook: opts.Alerts.RunbookBase, resend: resend, now: opts.Now, log: opts.Logger,
		latency: status.NewHistogram(status.DefaultLatencyBounds()), lastSend: opts.Now()}
	restored := false
	alerts, err := store.Load(func(meta []byte, journeys iter.Seq2[string, []byte]) error {
		restored = true
		return e.tr.RestoreRecords(meta, journeys)
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("alert engine: restore: %w", err)
	}
	if restored {
		e.alerts = alerts
		// Results could not arrive while the aggregator was down.
		e.tr.HoldNoData(opts.Now())
	}
	e.pipe = newPipeline(store, specs, opts.RetryBase, opts.Logger, opts.Now)
	ctx, e.cancel = context.WithCancel(ctx)
	e.pipe.start(ctx)
	return e, nil
}

// buildSinks turns [[alerts.sink]] into sinks with their limits.
func buildSinks(opts Options, resend time.Duration) ([]sinkSpec, error) {
	if opts.Sinks != nil {
		var specs []sinkSpec
		for _, s := range opts.Sinks {
			specs = append(specs, sinkSpec{sink: s, timeout: 5 * time.Second, queueSize: 256, attempts: 3})
		}
		return specs, nil
	}
	var specs []sinkSpec
	for _, c := range opts.Alerts.Sink {
		var s Sink
		switch c.Type {
		case "alertmanager":
			s = NewAlertmanager(c.Name, c.URL, opts.Alerts.StatusURL, c.Secret.Value(), resend, opts.HTTPClient, opts.Now)
		case "pagerduty":
			s = NewPagerDuty(c.Name, c.URL, c.Secret.Value(), opts.HTTPClient)
		case "slack":
			s = NewSlack(c.Name, c.Secret.Value(), opts.HTTPClient)
		case "webhook":
			s = NewWebhook(c.Name, c.URL, c.Secret.Value(), opts.HTTPClient)
		default:
			return nil, fmt.Errorf("alert engine: unknown sink type %q", c.Type)
		}
		specs = append(specs, sinkSpec{sink: s, timeout: c.Timeout.D, queueSize: c.QueueSize, attempts: c.MaxAttempts})
	}
	return specs, nil
}

// Accept classifies one deduplicated Result at the engine's clock. A
// rejected result (invalid, duplicate, skewed clock, too old) returns an
// error wrapping the verdict error and changes nothing.
func (e *Engine) Accept(r report.Result) error {
	errs := e.AcceptBatch([]report.Result{r})
	return errs[0]
}

// AcceptBatch is Accept for a batch, evaluated once; errs[i] is r[i]'s.
func (e *Engine) AcceptBatch(rs []report.Result) []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	errs := make([]error, len(rs))
	any := false
	for i, r := range rs {
		errs[i] = e.tr.Accept(r, now)
		any = any || errs[i] == nil
	}
	if any {
		e.dirty = true
		e.evaluate(now)
	}
	return errs
}

// SetMembership replaces the fleet view (from gossip).
func (e *Engine) SetMembership(m verdict.Membership) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tr.SetMembership(m)
	e.dirty = true
}

// Forget drops a journey removed from config; its alerts resolve.
func (e *Engine) Forget(journey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tr.Forget(journey)
	e.dirty = true
	e.evaluate(e.now())
}

// saveEvery bounds how often state without alert changes is persisted.
const saveEvery = 5 * time.Second

// Tick evaluates time-driven rules (no data, expiry), re-sends firing
// alerts to Alertmanager every resend interval, re-queues notifications
// that a sink has not acknowledged, and persists dirty state. Call it about
// once a second.
func (e *Engine) Tick(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evaluate(now)
	all := e.list()
	e.pipe.submit(all, e.alerts)
	if now.Sub(e.lastSend) >= e.resend {
		e.pipe.resend(all)
		e.lastSend = now
	}
	// Drop resolved alerts once every sink has their resolution.
	for k, a := range e.alerts {
		if !a.Firing() && e.pipe.delivered(a) {
			delete(e.alerts, k)
			_ = e.store.ForgetDelivered(e.pipe.names(), k)
			e.dirty = true
		}
	}
	if e.dirty && now.Sub(e.lastSave) >= saveEvery {
		e.save(now)
	}
}

// evaluate applies one verdict evaluation; e.mu is held.
func (e *Engine) evaluate(now time.Time) {
	out := e.tr.Evaluate(now)
	if len(out.Changes) == 0 {
		return
	}
	var changed []Alert
	for _, ch := range out.Changes {
		switch ch.Type {
		case verdict.Opened, verdict.Updated:
			a := FromCondition(ch.Condition, e.red, e.runbook)
			e.alerts[a.Key] = a
			changed = append(changed, a)
			if ch.Type == verdict.Opened && !ch.Condition.FirstFailingSlot.IsZero() {
				e.latency.Observe(ch.At.Sub(ch.Condition.FirstFailingSlot).Seconds())
			}
		case verdict.Resolved:
			a, ok := e.alerts[ch.Condition.Key]
			if !ok {
				a = FromCondition(ch.Condition, e.red, e.runbook)
			}
			a.EndsAt = ch.At
			e.alerts[a.Key] = a
			changed = append(changed, a)
		}
	}
	// Persist before notifying: after a crash the log and the state agree
	// that an alert is open, so it is neither paged twice nor left unresolved.
	e.save(now)
	e.pipe.submit(changed, e.alerts)
}

func (e *Engine) save(now time.Time) {
	// Only the journeys changed since the last save are encoded and written.
	ch, err := e.tr.Changes()
	if err == nil {
		err = e.store.SaveVerdict(ch, e.tr.AppendRecord, e.alerts)
	}
	if err != nil {
		e.log.Error("saving verdict state failed", "err", err)
		return
	}
	e.tr.MarkSaved()
	e.dirty, e.lastSave = false, now
}

func (e *Engine) list() []Alert {
	out := make([]Alert, 0, len(e.alerts))
	for _, a := range e.alerts {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Close stops the sink goroutines, saves the state and closes the store.
// Notifications still queued are delivered after the next start (the
// notification log says what is missing).
func (e *Engine) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.cancel()
		e.pipe.wait()
		e.mu.Lock()
		defer e.mu.Unlock()
		e.save(e.now())
		err = e.store.Close()
	})
	return err
}

// Snapshot implements status.Provider.
func (e *Engine) Snapshot() verdict.Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tr.Snapshot()
}

// Alerts implements status.Provider.
func (e *Engine) Alerts() []status.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []status.Alert
	for _, a := range e.list() {
		v := status.Alert{Key: a.Key, Status: a.Status(), Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt}
		if !a.Firing() {
			t := a.EndsAt
			v.EndsAt = &t
		}
		out = append(out, v)
	}
	return out
}

// DetectionLatency implements status.Provider.
func (e *Engine) DetectionLatency() status.Histogram {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.latency.Clone()
}

// SinkStats returns every sink's counters.
func (e *Engine) SinkStats() []SinkStats { return e.pipe.stats() }

// Counters returns what the verdict tracker counted (rejected results).
func (e *Engine) Counters() verdict.Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tr.Counters()
}

// IsRejected reports whether err from Accept is a rejected result (as
// opposed to nil); ingest counts these but does not retry them.
func IsRejected(err error) bool {
	return errors.Is(err, verdict.ErrInvalid) || errors.Is(err, verdict.ErrDuplicate) ||
		errors.Is(err, verdict.ErrSlotFuture) || errors.Is(err, verdict.ErrSlotOld)
}
