package probes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
)

// Runner turns one execution of a Journey into exactly one report.Result:
// it sets the deadline, recovers panics (probe_error, never fail), maps a
// missed deadline to timeout, and redacts every string of the Result.
type Runner struct {
	Agent  string
	Region string
	Redact *report.Redactor
	Log    *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Spec says which run to execute.
type Spec struct {
	Journey *config.Journey
	Slot    time.Time
	Trigger report.Trigger
}

// TraceIDFor derives a run's trace ID from its Result ID, so that a re-sent
// Result and its spans always agree.
func TraceIDFor(resultID string) string {
	sum := sha256.Sum256([]byte("vantage-trace:" + resultID))
	return hex.EncodeToString(sum[:16])
}

// Execute runs j once under ctx bounded by the journey's timeout.
func (r *Runner) Execute(ctx context.Context, j Journey, spec Spec) report.Result {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	jc := spec.Journey
	id := report.ResultID(jc.Name, r.Region, r.Agent, spec.Slot, spec.Trigger)
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	log = slog.New(&lazyHandler{base: log.Handler(), attrs: []slog.Attr{
		slog.String("journey", jc.Name), slog.String("kind", jc.Kind),
		slog.Any("slot", slotText(spec.Slot)), slog.String("trigger", string(spec.Trigger))}})
	rec := NewRecorder(now)
	run := &Run{ID: id, Journey: jc.Name, Region: r.Region, Agent: r.Agent, Slot: spec.Slot,
		Trigger: spec.Trigger, Rec: rec, Log: log}

	res := report.Result{
		ID: id, Journey: jc.Name, Kind: jc.Kind, Region: r.Region, Agent: r.Agent,
		Slot: spec.Slot.UTC(), Trigger: spec.Trigger, Interval: jc.Interval.D,
		Components: append([]string(nil), jc.Components...), Runbook: jc.Runbook,
		TraceID: TraceIDFor(id),
	}
	res.Start = now()
	ctx, cancel := context.WithTimeout(ctx, jc.Timeout.D)
	err := runRecovered(ctx, j, run)
	cancel()
	res.Duration = now().Sub(res.Start)
	res.Steps = rec.Steps()
	res.Attrs = rec.Attrs()

	switch {
	case err == nil:
		res.Status = report.StatusPass
		// A journey that reports success but left a failed step is a bug in
		// the journey; trust the step.
		if s := res.FailingStep(); s != nil {
			res.Status, res.ErrorType, res.Error = s.Status, s.ErrorType, s.Error
		}
	default:
		res.Status, res.ErrorType = Classify(err)
		res.Error = err.Error()
		var pe *Error
		explicit := errors.As(err, &pe)
		if !explicit && ctx.Err() == context.DeadlineExceeded {
			// go-git and friends wrap a missed deadline in their own errors.
			res.Status, res.ErrorType = report.StatusFail, report.ErrTimeout
		}
	}
	if r.Redact != nil {
		r.Redact.Result(&res)
	} else {
		(&report.Redactor{}).Result(&res)
	}
	if res.Status != report.StatusPass {
		log.Info("journey failed", "status", string(res.Status), "error_type", string(res.ErrorType), "error", res.Error)
	}
	return res
}

// runRecovered runs the journey, turning a panic into a probe error.
func runRecovered(ctx context.Context, j Journey, run *Run) (err error) {
	defer func() {
		if p := recover(); p != nil {
			run.Log.Error("journey panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = Internal(fmt.Errorf("journey panicked: %v", p))
		}
	}()
	return j.Run(ctx, run)
}

// lazyHandler adds a run's attributes to its logger only when something is
// logged: most runs log nothing, and formatting the attributes up front
// (slog's With) was the largest single cost of a run's bookkeeping.
type lazyHandler struct {
	base  slog.Handler
	attrs []slog.Attr
	once  sync.Once
	with  slog.Handler
}

func (l *lazyHandler) handler() slog.Handler {
	l.once.Do(func() { l.with = l.base.WithAttrs(l.attrs) })
	return l.with
}

func (l *lazyHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return l.base.Enabled(ctx, lv)
}

func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return l.handler().Handle(ctx, r)
}

func (l *lazyHandler) WithAttrs(as []slog.Attr) slog.Handler { return l.handler().WithAttrs(as) }
func (l *lazyHandler) WithGroup(name string) slog.Handler    { return l.handler().WithGroup(name) }

// slotText logs a slot as RFC 3339 in UTC, formatted only when logged.
type slotText time.Time

func (s slotText) LogValue() slog.Value {
	return slog.StringValue(time.Time(s).UTC().Format(time.RFC3339))
}
