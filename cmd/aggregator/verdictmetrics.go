package main

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/vantage-fleet/vantage/pkg/alert"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/verdict"
)

// stateCode orders verdicts for dashboards: 0 ok, 1 degraded, 2 failing,
// 3 no data (blind, results missing, no data).
func stateCode(s verdict.State) int64 {
	switch s {
	case verdict.StateOK:
		return 0
	case verdict.StateDegraded:
		return 1
	case verdict.StateFailing:
		return 2
	}
	return 3
}

// scopeCode: 0 none, 1 regional, 2 global, 3 unknown (one region of data).
func scopeCode(s verdict.Scope) int64 {
	switch s {
	case verdict.ScopeRegional:
		return 1
	case verdict.ScopeGlobal:
		return 2
	case verdict.ScopeUnknown:
		return 3
	}
	return 0
}

// registerVerdictMetrics publishes the verdicts over OTLP as observable
// gauges read from the engine at each export: vantage.journey.state per
// journey and region, vantage.journey.scope per journey, and
// vantage.incidents.open. (The same figures are on /metrics as state sets.)
func registerVerdictMetrics(m metric.Meter, e *alert.Engine) error {
	state, err := m.Int64ObservableGauge("vantage.journey.state",
		metric.WithDescription("Verdict of a journey in a region: 0 ok, 1 degraded, 2 failing, 3 no data."))
	if err != nil {
		return err
	}
	scope, err := m.Int64ObservableGauge("vantage.journey.scope",
		metric.WithDescription("Scope of a journey's failure: 0 none, 1 regional, 2 global, 3 unknown."))
	if err != nil {
		return err
	}
	open, err := m.Int64ObservableGauge("vantage.incidents.open",
		metric.WithDescription("Open product incidents (global or regional alerts)."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		snap := e.Snapshot()
		for _, j := range snap.Journeys {
			name := report.KeyJourneyName.String(j.Name)
			o.ObserveInt64(scope, scopeCode(j.Scope), metric.WithAttributes(name))
			for region, c := range j.Cells {
				o.ObserveInt64(state, stateCode(c.State), metric.WithAttributes(name,
					semconv.CloudRegionKey.String(region), attribute.String("vantage.journey.verdict", string(c.State))))
			}
		}
		n := int64(0)
		for _, c := range snap.Open {
			if c.Alert == verdict.AlertGlobal || c.Alert == verdict.AlertRegional {
				n++
			}
		}
		o.ObserveInt64(open, n)
		return nil
	}, state, scope, open)
	return err
}
