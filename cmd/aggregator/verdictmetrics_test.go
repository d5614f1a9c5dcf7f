package main

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vantage-fleet/vantage/pkg/alert"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/verdict"
)

func TestVerdictMetrics_PublishStateAndScopeOverOTLP(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	e, err := alert.Open(context.Background(), alert.Options{DataDir: t.TempDir(), Verdict: verdict.DefaultConfig(),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	slot := now.Add(-5 * time.Second)
	for _, agent := range []string{"eu-1", "eu-2"} {
		trig := report.TriggerSchedule
		if agent == "eu-2" {
			trig = report.TriggerConfirm
		}
		r := report.Result{Journey: "clone", Kind: "git", Region: "eu", Agent: agent, Slot: slot, Trigger: trig,
			Status: report.StatusFail, ErrorType: report.ErrHTTP5xx, Error: "503", Interval: 30 * time.Second}
		r.ID = report.ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
		if err := e.Accept(r); err != nil {
			t.Fatal(err)
		}
	}
	ok := report.Result{Journey: "clone", Kind: "git", Region: "us", Agent: "us-1", Slot: slot, Trigger: report.TriggerConfirm,
		Status: report.StatusPass, Interval: 30 * time.Second}
	ok.ID = report.ResultID(ok.Journey, ok.Region, ok.Agent, ok.Slot, ok.Trigger)
	if err := e.Accept(ok); err != nil {
		t.Fatal(err)
	}
	e.Tick(now)

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	if err := registerVerdictMetrics(mp.Meter("test"), e); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			g, ok := m.Data.(metricdata.Gauge[int64])
			if !ok {
				continue
			}
			for _, dp := range g.DataPoints {
				key := m.Name
				if v, ok := dp.Attributes.Value("cloud.region"); ok {
					key += "/" + v.AsString()
				}
				got[key] = dp.Value
			}
		}
	}
	want := map[string]int64{"vantage.journey.state/eu": 2, "vantage.journey.state/us": 0,
		"vantage.journey.scope": 1, "vantage.incidents.open": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
