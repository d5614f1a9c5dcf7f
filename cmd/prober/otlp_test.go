package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/config"
)

func TestOTLPWiring_BuildsOneExportPerOTLPEntry_AndServesCounters(t *testing.T) {
	dir := t.TempDir()
	toml := `
[agent]
name = "eu-1"
region = "eu"
data_dir = "` + dir + `"
[[export]]
type = "jsonl"
[[export]]
type = "otlp"
endpoint = "127.0.0.1:1"
[export.tls]
insecure = true
[[export]]
type = "otlp"
name = "second"
protocol = "http"
endpoint = "127.0.0.1:1"
[export.tls]
insecure = true
`
	cfg, err := config.LoadBytes("p.toml", []byte(toml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	w, err := newOTLPWiring(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		w.Close(ctx) // the endpoint is unreachable: bounded by ctx
	}()
	if len(w.Exporters) != 2 {
		t.Fatalf("%d exporters, want 2", len(w.Exporters))
	}
	rec := httptest.NewRecorder()
	w.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`vantage_agent_results_spooled_total{export="otlp-1"} 0`, `vantage_agent_results_evicted_total{export="second"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in\n%s", want, body)
		}
	}
}
