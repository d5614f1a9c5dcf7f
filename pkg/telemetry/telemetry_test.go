package telemetry

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestRegistry_PrometheusTextAndOTLP_ShowTheSameCounts(t *testing.T) {
	r := NewRegistry()
	r.Counter("vantage.agent.results.spooled", "Results spooled.", "export", "a").Add(3)
	r.Counter("vantage.agent.results.spooled", "Results spooled.", "export", `b"q`).Inc()
	r.Counter("vantage.aggregator.results.received", "Received.").Add(7)
	r.Counter("vantage.aggregator.results.received", "Received.").Add(-5) // ignored: counters only grow

	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	want := `# HELP vantage_agent_results_spooled_total Results spooled.
# TYPE vantage_agent_results_spooled_total counter
vantage_agent_results_spooled_total{export="a"} 3
vantage_agent_results_spooled_total{export="b\"q"} 1
# HELP vantage_aggregator_results_received_total Received.
# TYPE vantage_aggregator_results_received_total counter
vantage_aggregator_results_received_total 7
`
	if got := rec.Body.String(); got != want {
		t.Fatalf("text format:\n%s\nwant:\n%s", got, want)
	}
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", rec.Header().Get("Content-Type"))
	}

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	if err := r.RegisterOTLP(mp.Meter("test")); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				got[m.Name] += dp.Value
			}
		}
	}
	if got["vantage.agent.results.spooled"] != 4 || got["vantage.aggregator.results.received"] != 7 {
		t.Fatalf("OTLP values %v", got)
	}
}
