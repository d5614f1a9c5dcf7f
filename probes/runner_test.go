package probes

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
)

type journeyFunc func(ctx context.Context, run *Run) error

func (f journeyFunc) Run(ctx context.Context, run *Run) error { return f(ctx, run) }

func testJourney() *config.Journey {
	return &config.Journey{Name: "j", Kind: "http", Timeout: config.Dur(200 * time.Millisecond), Interval: config.Dur(time.Second)}
}

func TestRunner_PanicIsProbeError(t *testing.T) {
	r := &Runner{Agent: "a", Region: "eu"}
	res := r.Execute(context.Background(), journeyFunc(func(ctx context.Context, run *Run) error {
		run.Rec.Step("boom")
		panic("nil map")
	}), Spec{Journey: testJourney(), Slot: time.Unix(60, 0), Trigger: report.TriggerSchedule})
	if res.Status != report.StatusProbeError || res.ErrorType != report.ErrProbeInternal {
		t.Fatalf("panic gave %s/%s", res.Status, res.ErrorType)
	}
	if len(res.Steps) != 1 || res.Steps[0].Status != report.StatusProbeError {
		t.Fatalf("unended step not closed as probe error: %+v", res.Steps)
	}
}

func TestRunner_DeadlineIsTimeoutEvenWhenWrapped(t *testing.T) {
	r := &Runner{Agent: "a", Region: "eu"}
	res := r.Execute(context.Background(), journeyFunc(func(ctx context.Context, run *Run) error {
		s := run.Rec.Step("wait")
		<-ctx.Done()
		return s.End(errors.New("library said: operation aborted"))
	}), Spec{Journey: testJourney(), Slot: time.Unix(60, 0), Trigger: report.TriggerSchedule})
	if res.Status != report.StatusFail || res.ErrorType != report.ErrTimeout {
		t.Fatalf("got %s/%s", res.Status, res.ErrorType)
	}
	if res.ID != report.ResultID("j", "eu", "a", time.Unix(60, 0), report.TriggerSchedule) || len(res.TraceID) != 32 {
		t.Fatalf("bad ID or trace ID: %s %s", res.ID, res.TraceID)
	}
}

func TestRunner_RedactsSecrets(t *testing.T) {
	r := &Runner{Agent: "a", Region: "eu", Redact: report.NewRedactor("canary-tok-42")}
	res := r.Execute(context.Background(), journeyFunc(func(ctx context.Context, run *Run) error {
		s := run.Rec.Step("get")
		return s.End(Errorf(report.ErrAuth, "401 for https://u:canary-tok-42@h/x"))
	}), Spec{Journey: testJourney(), Slot: time.Unix(60, 0), Trigger: report.TriggerManual})
	if res.ErrorType != report.ErrAuth || strings.Contains(res.Error+res.Steps[0].Error, "canary") {
		t.Fatalf("got %s %q %q", res.ErrorType, res.Error, res.Steps[0].Error)
	}
}

func TestClassify(t *testing.T) {
	_, refused := net.Dial("tcp", "127.0.0.1:1")
	cases := []struct {
		err    error
		status report.Status
		typ    report.ErrorType
	}{
		{nil, report.StatusPass, ""},
		{Errorf(report.ErrStaleRead, "not visible"), report.StatusFail, report.ErrStaleRead},
		{Internal(errors.New("disk full")), report.StatusProbeError, report.ErrProbeInternal},
		{context.DeadlineExceeded, report.StatusFail, report.ErrTimeout},
		{context.Canceled, report.StatusProbeError, report.ErrProbeInternal},
		{&net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, report.StatusFail, report.ErrDNS},
		{refused, report.StatusFail, report.ErrConnect},
		{errors.New("garbage"), report.StatusFail, report.ErrProtocol},
	}
	for i, c := range cases {
		s, typ := Classify(c.err)
		if s != c.status || typ != c.typ {
			t.Errorf("case %d (%v): got %s/%s, want %s/%s", i, c.err, s, typ, c.status, c.typ)
		}
	}
}

func TestRunner_RunLoggerCarriesTheRunAttributes(t *testing.T) {
	var buf strings.Builder
	r := &Runner{Agent: "a", Region: "eu", Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	res := r.Execute(context.Background(), journeyFunc(func(ctx context.Context, run *Run) error {
		run.Log.With("step", "x").Info("journey says hello")
		return Errorf(report.ErrHTTP5xx, "503")
	}), Spec{Journey: testJourney(), Slot: time.Unix(60, 0), Trigger: report.TriggerConfirm})
	if res.ErrorType != report.ErrHTTP5xx {
		t.Fatalf("got %s", res.ErrorType)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want the journey's line and the failure line, got:\n%s", buf.String())
	}
	for _, want := range []string{`"journey":"j"`, `"kind":"http"`, `"slot":"1970-01-01T00:01:00Z"`, `"trigger":"confirm"`} {
		for _, l := range lines {
			if !strings.Contains(l, want) {
				t.Errorf("line lacks %s: %s", want, l)
			}
		}
	}
	if !strings.Contains(lines[0], `"step":"x"`) {
		t.Errorf("journey's own attribute lost: %s", lines[0])
	}
}
